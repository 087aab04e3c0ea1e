#!/usr/bin/env python3
"""capmux command tool `pseudonymize`: stdin {"text": str}, stdout one ToolResult.

The secret `salt` setting arrives in CAPMUX_SETTINGS (all settings as one JSON
object) and in CAPMUX_SETTING_SALT. capmux refuses the call before this script
starts when the required setting has no value, so it is always set here.
"""
import hashlib
import hmac
import json
import os
import re
import sys

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")


def reply(result):
    print(json.dumps(result))


def main():
    args = json.load(sys.stdin)
    settings = json.loads(os.environ.get("CAPMUX_SETTINGS", "{}"))
    key = settings["salt"].encode("utf-8")
    found = {}

    def replace(match):
        email = match.group(0).lower()
        digest = hmac.new(key, email.encode("utf-8"), hashlib.sha256).hexdigest()
        found[email] = f"user-{digest[:8]}"
        return found[email]

    text = EMAIL.sub(replace, args["text"])
    # Logs go to stderr: stdout must hold nothing but the result.
    print(f"pseudonymize: replaced {len(found)} address(es)", file=sys.stderr)
    reply({"success": True,
           "data": {"text": text, "replaced": len(found)},
           "display": {"type": "text", "content": text}})


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # report, don't crash: the model reads `error`
        reply({"success": False, "error": f"pseudonymize failed: {exc}"})
