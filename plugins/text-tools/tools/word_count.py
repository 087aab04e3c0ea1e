#!/usr/bin/env python3
"""capmux command tool `word_count`.

Reads one JSON object {"text": string} on stdin and prints one JSON result
object on stdout. Always exits 0; failures are reported as success:false.
"""
import json
import re
import sys

# A sentence ends at a run of . ! or ? (optionally followed by closing quotes or
# brackets) that is followed by whitespace or the end of the text.
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]\u201d\u2019]*(?=\s|$)")
_WORD_CHAR = re.compile(r"\w")


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


def plural(n, word):
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def count(text):
    words = len(text.split())
    lines = len(text.splitlines())
    characters = len(text)
    # Count sentence fragments that contain at least one word character; a
    # trailing fragment without final punctuation still counts as a sentence.
    sentences = sum(1 for part in _SENTENCE_END.split(text) if _WORD_CHAR.search(part))
    return {"words": words, "lines": lines, "characters": characters, "sentences": sentences}


def main():
    try:
        args = read_args(["text"], ["text"])
        text = args["text"]
        if not isinstance(text, str):
            return fail("argument 'text' must be a string")
        data = count(text)
        display = ", ".join([
            plural(data["words"], "word"),
            plural(data["lines"], "line"),
            plural(data["characters"], "character"),
            plural(data["sentences"], "sentence"),
        ])
        emit({"success": True, "data": data, "display": {"type": "text", "content": display}})
    except ValueError as exc:
        fail(str(exc))
    except Exception as exc:  # never crash: report instead
        fail(f"word_count failed unexpectedly: {type(exc).__name__}: {exc}")


if __name__ == "__main__":
    main()
