#!/usr/bin/env python3
"""Add a command tool to a capmux package, creating the package if needed.

    python3 new_tool.py PACKAGE_DIR TOOL_NAME [--node] [--id PACKAGE_ID] [--description TEXT]

Writes tools/TOOL_NAME.py (or .js with --node): a working tool that takes
{"text": string} on stdin and answers with a ToolResult on stdout; edit its
work() function and the tool's inputSchema. Adds the tool to package.json
(created with the id given by --id, default capmux-plugin-<folder name>) and
adds "shell:execute" to its permissions. package.json is rewritten with
2-space indentation. Then run:

    capmux check PACKAGE_DIR
    capmux --config GRANTS.toml --package PACKAGE_DIR call NAMESPACE__TOOL_NAME '{"text": "hi"}'
"""
import argparse
import json
import os
import re
import sys

PYTHON = '''#!/usr/bin/env python3
"""capmux command tool `{name}`: stdin {{"text": str}}, stdout one ToolResult."""
import json
import os
import sys


def work(args, settings):
    """The tool itself: return (data, display text). Raise ValueError for a clean error."""
    text = args["text"]
    return {{"text": text, "length": len(text)}}, f"{{len(text)}} characters"


def main():
    try:
        args = json.load(sys.stdin)
        settings = json.loads(os.environ.get("CAPMUX_SETTINGS", "{{}}"))
        data, display = work(args, settings)
        result = {{"success": True, "data": data, "display": {{"type": "text", "content": display}}}}
    except Exception as exc:
        result = {{"success": False, "error": f"{name}: {{exc}}"}}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
'''

NODE = '''#!/usr/bin/env node
// capmux command tool `{name}`: stdin {{"text": string}}, stdout one ToolResult.
'use strict';

function work(args, settings) {{
  // The tool itself: return [data, display text]. Throw for a clean error.
  const text = args.text;
  return [{{ text, length: text.length }}, `${{text.length}} characters`];
}}

let raw = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => {{ raw += chunk; }});
process.stdin.on('end', () => {{
  let result;
  try {{
    const settings = JSON.parse(process.env.CAPMUX_SETTINGS || '{{}}');
    const [data, display] = work(JSON.parse(raw || '{{}}'), settings);
    result = {{ success: true, data, display: {{ type: 'text', content: display }} }};
  }} catch (err) {{
    result = {{ success: false, error: `{name}: ${{err.message}}` }};
  }}
  process.stdout.write(JSON.stringify(result) + '\\n');
}});
'''


def main():
    cli = argparse.ArgumentParser(description="Add a command tool to a capmux package.")
    cli.add_argument("package_dir")
    cli.add_argument("tool_name")
    cli.add_argument("--node", action="store_true", help="write a Node tool instead of Python")
    cli.add_argument("--id", help="package id when package.json is created")
    cli.add_argument("--description", help="the tool's description (what it does, when to use it)")
    opts = cli.parse_args()

    name = opts.tool_name
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
        sys.exit(f"tool name `{name}` may only use A-Z a-z 0-9 _ - and must start with a letter or digit")

    root = opts.package_dir
    manifest_path = os.path.join(root, "package.json")
    if os.path.exists(manifest_path):
        with open(manifest_path, encoding="utf-8") as f:
            manifest = json.load(f)
    else:
        folder = os.path.basename(os.path.abspath(root))
        manifest = {"name": opts.id or f"capmux-plugin-{folder}", "version": "0.1.0",
                    "private": True, "capmux": {"manifestVersion": 1}}
    capmux = manifest.setdefault("capmux", {})
    if not isinstance(capmux, dict):
        sys.exit(f"{manifest_path}: \"capmux\" is not an object")
    tools = capmux.setdefault("tools", [])
    if any(t.get("name") == name for t in tools if isinstance(t, dict)):
        sys.exit(f"{manifest_path}: a tool named `{name}` already exists")

    ext, template, program = (".js", NODE, "node") if opts.node else (".py", PYTHON, "python3")
    script_rel = f"tools/{name}{ext}"
    script_path = os.path.join(root, script_rel)
    if os.path.exists(script_path):
        sys.exit(f"{script_path} already exists")

    permissions = capmux.setdefault("permissions", [])
    if "shell:execute" not in permissions:
        permissions.append("shell:execute")
    tools.append({
        "name": name,
        "description": opts.description or f"TODO: say what {name} does and when to use it.",
        "inputSchema": {
            "type": "object",
            "properties": {"text": {"type": "string", "description": "The input text"}},
            "required": ["text"],
            "additionalProperties": False,
        },
        "command": [program, script_rel],
        "timeoutMs": 10000,
    })

    os.makedirs(os.path.dirname(script_path), exist_ok=True)
    with open(script_path, "w", encoding="utf-8") as f:
        f.write(template.format(name=name))
    os.chmod(script_path, 0o755)
    with open(manifest_path, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {script_path} and added tool `{name}` to {manifest_path}")
    print(f"next: capmux check {root}")


if __name__ == "__main__":
    main()
