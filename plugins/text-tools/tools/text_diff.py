#!/usr/bin/env python3
"""capmux command tool `text_diff`.

Reads one JSON object {"before": string, "after": string, "context"?: 0..20}
on stdin and prints one JSON result object with a unified diff on stdout.
Always exits 0; failures are reported as success:false.
"""
import difflib
import json
import sys

NO_NEWLINE = "\\ No newline at end of file\n"


def emit(result):
    sys.stdout.write(json.dumps(result))
    sys.stdout.write("\n")
    sys.stdout.flush()


def fail(message):
    emit({"success": False, "error": message})


def read_args(allowed, required):
    if sys.stdin is None or sys.stdin.isatty():
        raise ValueError("expected the tool arguments as one JSON object on stdin")
    raw = sys.stdin.buffer.read()
    try:
        args = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"stdin is not valid JSON: {exc}") from None
    if not isinstance(args, dict):
        raise ValueError("the tool arguments must be a JSON object")
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise ValueError(f"unknown argument(s): {', '.join(unknown)}; allowed: {', '.join(allowed)}")
    missing = [name for name in required if name not in args]
    if missing:
        raise ValueError(f"missing required argument(s): {', '.join(missing)}")
    return args


def parse_context(value):
    if value is None:
        return 3
    # bool is a subclass of int in Python; reject it explicitly.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("argument 'context' must be an integer from 0 to 20")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("argument 'context' must be an integer from 0 to 20")
        value = int(value)
    if not 0 <= value <= 20:
        raise ValueError(f"argument 'context' must be from 0 to 20, got {value}")
    return value


def unified(before, after, context):
    out = []
    added = removed = 0
    for line in difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile="before",
        tofile="after",
        n=context,
    ):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
        if line.endswith("\n"):
            out.append(line)
        else:
            # Last line without a trailing newline: mark it like `diff -u` does,
            # so "a" vs "a\n" still shows a visible difference.
            out.append(line + "\n")
            out.append(NO_NEWLINE)
    return "".join(out), added, removed


def main():
    try:
        args = read_args(["before", "after", "context"], ["before", "after"])
        before, after = args["before"], args["after"]
        for name, value in (("before", before), ("after", after)):
            if not isinstance(value, str):
                return fail(f"argument '{name}' must be a string")
        context = parse_context(args.get("context"))
        if before == after:
            emit({
                "success": True,
                "data": {"identical": True, "diff": "", "added": 0, "removed": 0},
                "display": {"type": "text", "content": "no differences"},
            })
            return
        diff, added, removed = unified(before, after, context)
        emit({
            "success": True,
            "data": {"identical": False, "diff": diff, "added": added, "removed": removed},
            "display": {"type": "diff", "content": diff},
        })
    except ValueError as exc:
        fail(str(exc))
    except Exception as exc:  # never crash: report instead
        fail(f"text_diff failed unexpectedly: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
