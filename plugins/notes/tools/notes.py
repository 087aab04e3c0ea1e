#!/usr/bin/env python3
"""capmux command tools of the Signed Notes package (capmux-plugin-notes).

One script serves all four tools; the tool name comes from the first
command-line argument (see package.json) or, failing that, from CAPMUX_TOOL:

    add_note      {"title": str, "body": str, "tags"?: [str]}
    list_notes    {"tag"?: str}
    search_notes  {"query": str}
    verify_notes  {}

The tool arguments arrive as one JSON object on stdin; one JSON result object
is printed on stdout and the exit code is always 0.

Storage: one JSON object per line in $CAPMUX_PLUGIN_DATA/<file>.jsonl, where
<file> is "notes" for the notebook named "default" and the notebook name
otherwise. Each note is

    {"id", "title", "body", "tags", "author", "created", "sig"}

and sig is the lowercase hex HMAC-SHA256, keyed with the signing_key setting
(UTF-8), of the canonical JSON of the note without "sig": keys sorted, no
whitespace (separators "," and ":"), non-ASCII characters unescaped, UTF-8
encoded. See canonical_bytes() below.

The signing key is never printed, logged or stored.
"""
import datetime
import hashlib
import hmac
import json
import os
import re
import sys
import uuid

try:  # POSIX advisory locking; best effort elsewhere.
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

PACKAGE = "capmux-plugin-notes"
TOOLS = ("add_note", "list_notes", "search_notes", "verify_notes")
NOTEBOOK_RE = re.compile(r"^[A-Za-z0-9_-]+$")
NOTE_FIELDS = ("id", "title", "body", "tags", "author", "created")
MAX_TITLE = 200
MAX_BODY = 100_000
MAX_TAGS = 20
MAX_TAG = 50
MAX_QUERY = 1000
MAX_NOTEBOOK_NAME = 64
DEFAULT_MAX_NOTES = 1000


class ToolError(Exception):
    """An error the model can act on; reported as success:false."""


# --------------------------------------------------------------------- output

def emit(result):
    # ensure_ascii keeps stdout pure ASCII whatever the locale.
    sys.stdout.write(json.dumps(result))
    sys.stdout.write("\n")
    sys.stdout.flush()


def ok(data, display, kind="markdown"):
    emit({"success": True, "data": data, "display": {"type": kind, "content": display}})


def fail(message):
    emit({"success": False, "error": message})


# ---------------------------------------------------------------------- input

def read_args():
    if sys.stdin is None or sys.stdin.isatty():
        raise ToolError("expected the tool arguments as one JSON object on stdin")
    raw = sys.stdin.buffer.read()
    try:
        args = json.loads(raw.decode("utf-8")) if raw.strip() else {}
    except (UnicodeDecodeError, ValueError) as exc:
        raise ToolError(f"stdin is not valid JSON: {exc}") from None
    if not isinstance(args, dict):
        raise ToolError("the tool arguments must be a JSON object")
    return args


def check_keys(args, allowed, required):
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        allowed_text = ", ".join(allowed) if allowed else "none"
        raise ToolError(f"unknown argument(s): {', '.join(unknown)}; allowed: {allowed_text}")
    missing = [k for k in required if k not in args]
    if missing:
        raise ToolError(f"missing required argument(s): {', '.join(missing)}")


def check_text(name, value, max_len, allow_empty=True):
    if not isinstance(value, str):
        raise ToolError(f"argument '{name}' must be a string")
    if not allow_empty and not value.strip():
        raise ToolError(f"argument '{name}' must not be empty")
    if len(value) > max_len:
        raise ToolError(f"argument '{name}' is too long ({len(value)} characters, at most {max_len})")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ToolError(f"argument '{name}' contains invalid Unicode (an unpaired surrogate)") from None
    return value


# ------------------------------------------------------------------- settings

def load_settings():
    """Settings from CAPMUX_SETTINGS, falling back to CAPMUX_SETTING_<KEY>."""
    settings = {}
    raw = os.environ.get("CAPMUX_SETTINGS", "")
    if raw.strip():
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            settings.update(parsed)
    for key in ("author", "notebook", "signing_key", "max_notes"):
        if settings.get(key) is None:
            env = os.environ.get("CAPMUX_SETTING_" + re.sub(r"[^A-Za-z0-9]", "_", key).upper())
            if env is not None:
                settings[key] = env
    return settings


def signing_key(settings):
    key = settings.get("signing_key")
    if not isinstance(key, str) or not key.strip():
        raise ToolError(
            f"the signing_key setting of package {PACKAGE} is not set. Set it in the capmux "
            f"config file under [packages.\"{PACKAGE}\".settings], e.g. signing_key = \"<a long random secret>\", "
            "then try again. Notes cannot be written or verified without it."
        )
    return key.encode("utf-8")


def author_name(settings):
    author = settings.get("author")
    if not isinstance(author, str) or not author.strip():
        return "anonymous"
    return author.strip()[:200]


def notebook_name(settings):
    name = settings.get("notebook")
    if name is None or (isinstance(name, str) and not name.strip()):
        return "default"
    if not isinstance(name, str) or len(name) > MAX_NOTEBOOK_NAME or not NOTEBOOK_RE.match(name):
        raise ToolError(
            f"the notebook setting of package {PACKAGE} is invalid: {str(name)[:80]!r}. Use only letters, "
            f"digits, '_' and '-' (at most {MAX_NOTEBOOK_NAME} characters), e.g. notebook = \"work\"."
        )
    return name


def max_notes(settings):
    value = settings.get("max_notes", DEFAULT_MAX_NOTES)
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_MAX_NOTES
    try:
        if isinstance(value, bool):
            raise ValueError
        number = float(value)
        if not number.is_integer() or number < 1:
            raise ValueError
        return int(number)
    except (TypeError, ValueError):
        raise ToolError(
            f"the max_notes setting of package {PACKAGE} must be a positive whole number, got {str(value)[:40]!r}"
        ) from None


def notebook_path(name):
    data_dir = os.environ.get("CAPMUX_PLUGIN_DATA", "")
    if not data_dir.strip():
        raise ToolError(
            "CAPMUX_PLUGIN_DATA is not set: this tool must run under capmux, or set it to a writable folder"
        )
    filename = "notes.jsonl" if name == "default" else f"{name}.jsonl"
    return os.path.join(data_dir, filename)


# ------------------------------------------------------------------- signing

def canonical_bytes(note):
    unsigned = {k: note[k] for k in note if k != "sig"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def sign(key, note):
    return hmac.new(key, canonical_bytes(note), hashlib.sha256).hexdigest()


def well_formed(note):
    return (
        isinstance(note, dict)
        and set(note) == set(NOTE_FIELDS) | {"sig"}
        and all(isinstance(note[k], str) for k in ("id", "title", "body", "author", "created", "sig"))
        and isinstance(note["tags"], list)
        and all(isinstance(t, str) for t in note["tags"])
    )


def is_valid(key, note):
    if not well_formed(note):
        return False
    try:
        expected = sign(key, note)
    except UnicodeEncodeError:
        return False
    return hmac.compare_digest(expected, note["sig"])


# ------------------------------------------------------------------- storage

def read_entries(path, key):
    """Return a list of (line_number, note_or_None, valid) for every non-blank line."""
    entries = []
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        return entries
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                note = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                entries.append((number, None, False))
                continue
            if not isinstance(note, dict):
                entries.append((number, None, False))
                continue
            entries.append((number, note, is_valid(key, note)))
    return entries


def note_view(note, valid):
    """A copy of a stored note safe to show, without the signature."""
    view = {k: note.get(k) for k in NOTE_FIELDS}
    view["verified"] = valid
    return view


def format_note(view):
    tags = view.get("tags")
    tag_text = ", ".join(str(t) for t in tags) if isinstance(tags, list) and tags else "none"
    warning = "" if view["verified"] else " \u26a0 SIGNATURE INVALID (edited or corrupted; do not trust)"
    lines = [
        f"### {view.get('title')}{warning}",
        f"id `{view.get('id')}` \u00b7 {view.get('created')} \u00b7 by {view.get('author')} \u00b7 tags: {tag_text}",
        "",
        str(view.get("body") or "").rstrip() or "_(empty body)_",
    ]
    return "\n".join(lines)


def format_listing(header, views, unreadable):
    parts = [header]
    for view in views:
        parts.append(format_note(view))
    if unreadable:
        parts.append(
            f"\u26a0 {unreadable} line(s) of the notebook file could not be read as notes; run verify_notes."
        )
    return "\n\n".join(parts)


# --------------------------------------------------------------------- tools

def add_note(args, settings, key):
    check_keys(args, ["title", "body", "tags"], ["title", "body"])
    title = check_text("title", args["title"], MAX_TITLE, allow_empty=False).strip()
    body = check_text("body", args["body"], MAX_BODY)
    tags_in = args.get("tags")
    if tags_in is None:
        tags_in = []
    if not isinstance(tags_in, list):
        raise ToolError("argument 'tags' must be an array of strings")
    if len(tags_in) > MAX_TAGS:
        raise ToolError(f"argument 'tags' has {len(tags_in)} items, at most {MAX_TAGS} are allowed")
    tags = []
    for i, tag in enumerate(tags_in):
        if not isinstance(tag, str):
            raise ToolError(f"argument 'tags' item {i} must be a string")
        tag = check_text(f"tags[{i}]", tag, MAX_TAG, allow_empty=False).strip()
        if any(c in tag for c in "\r\n\t"):
            raise ToolError(f"argument 'tags' item {i} must not contain tabs or line breaks")
        if tag.casefold() not in (t.casefold() for t in tags):
            tags.append(tag)

    name = notebook_name(settings)
    limit = max_notes(settings)
    path = notebook_path(name)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError as exc:
        raise ToolError(f"cannot create the notes data folder: {exc.strerror}") from None

    note = {
        "id": uuid.uuid4().hex[:12],
        "title": title,
        "body": body,
        "tags": tags,
        "author": author_name(settings),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    note["sig"] = sign(key, note)
    line = json.dumps(note, ensure_ascii=False).encode("utf-8") + b"\n"

    try:
        with open(path, "ab+") as handle:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            handle.seek(0)
            existing = sum(1 for raw in handle if raw.strip())
            if existing >= limit:
                raise ToolError(
                    f"notebook '{name}' is full: it has {existing} notes and max_notes is {limit}. "
                    f"Raise the max_notes setting of package {PACKAGE} or switch to another notebook."
                )
            handle.seek(0, os.SEEK_END)
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise ToolError(f"cannot write the notebook file: {exc.strerror}") from None

    view = note_view(note, True)
    ok(
        {"note": view, "notebook": name, "count": existing + 1},
        f"Added note `{note['id']}` \u201c{title}\u201d to notebook '{name}' ({existing + 1} note(s)).",
        kind="text",
    )


def list_notes(args, settings, key):
    check_keys(args, ["tag"], [])
    tag = args.get("tag")
    if tag is not None:
        tag = check_text("tag", tag, MAX_TAG * 4).strip() or None
    name = notebook_name(settings)
    entries = read_entries(notebook_path(name), key)
    unreadable = sum(1 for _, note, _ in entries if note is None)
    views = []
    for _, note, valid in entries:
        if note is None:
            continue
        if tag is not None:
            tags = note.get("tags")
            if not isinstance(tags, list) or tag.casefold() not in (str(t).casefold() for t in tags):
                continue
        views.append(note_view(note, valid))
    scope = f" tagged '{tag}'" if tag else ""
    if not views:
        header = f"No notes{scope} in notebook '{name}'."
    else:
        header = f"{len(views)} note(s){scope} in notebook '{name}', oldest first:"
    ok(
        {"notebook": name, "tag": tag, "count": len(views), "notes": views, "unreadable_lines": unreadable},
        format_listing(header, views, unreadable),
    )


def search_notes(args, settings, key):
    check_keys(args, ["query"], ["query"])
    query = check_text("query", args["query"], MAX_QUERY, allow_empty=False).strip()
    needle = query.casefold()
    name = notebook_name(settings)
    entries = read_entries(notebook_path(name), key)
    unreadable = sum(1 for _, note, _ in entries if note is None)
    views = []
    for _, note, valid in entries:
        if note is None:
            continue
        haystack = f"{note.get('title', '')}\n{note.get('body', '')}".casefold()
        if needle in haystack:
            views.append(note_view(note, valid))
    if not views:
        header = f"No notes in notebook '{name}' mention \u201c{query}\u201d."
    else:
        header = f"{len(views)} note(s) in notebook '{name}' mention \u201c{query}\u201d:"
    ok(
        {"notebook": name, "query": query, "count": len(views), "notes": views, "unreadable_lines": unreadable},
        format_listing(header, views, unreadable),
    )


def verify_notes(args, settings, key):
    check_keys(args, [], [])
    name = notebook_name(settings)
    entries = read_entries(notebook_path(name), key)
    valid = [note.get("id") for _, note, ok_ in entries if ok_]
    tampered = []
    for number, note, ok_ in entries:
        if ok_:
            continue
        ident = note.get("id") if isinstance(note, dict) else None
        tampered.append({"line": number, "id": ident if isinstance(ident, str) else None})
    data = {
        "notebook": name,
        "total": len(entries),
        "valid": len(valid),
        "tampered": len(tampered),
        "tampered_notes": tampered,
    }
    if not entries:
        text = f"Notebook '{name}' is empty: nothing to verify."
    elif not tampered:
        text = f"All {len(valid)} note(s) in notebook '{name}' are valid: every signature verifies."
    else:
        where = ", ".join(
            f"line {t['line']}" + (f" (id {t['id']})" if t["id"] else "") for t in tampered[:50]
        )
        more = f", and {len(tampered) - 50} more" if len(tampered) > 50 else ""
        text = (
            f"Notebook '{name}': {len(valid)} valid, {len(tampered)} tampered out of {len(entries)}.\n"
            f"Tampered (edited, corrupted or signed with a different key): {where}{more}.\n"
            "If the signing_key setting was changed, every older note fails verification."
        )
    ok(data, text, kind="text")


DISPATCH = {
    "add_note": add_note,
    "list_notes": list_notes,
    "search_notes": search_notes,
    "verify_notes": verify_notes,
}


def main():
    secret = None
    try:
        tool = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("CAPMUX_TOOL", "")
        if tool not in DISPATCH:
            # Still drain stdin so the caller never blocks on a full pipe.
            if sys.stdin is not None and not sys.stdin.isatty():
                sys.stdin.buffer.read()
            raise ToolError(f"unknown tool {tool!r}; expected one of: {', '.join(TOOLS)}")
        args = read_args()
        settings = load_settings()
        secret = settings.get("signing_key")
        # The key is checked first, so a missing key is reported by every tool.
        key = signing_key(settings)
        DISPATCH[tool](args, settings, key)
    except ToolError as exc:
        fail(str(exc))
    except Exception as exc:  # never crash, and never echo the signing key
        message = f"{type(exc).__name__}: {exc}"
        if isinstance(secret, str) and secret.strip():
            message = message.replace(secret, "[redacted]")
        fail(f"notes tool failed unexpectedly: {message}")


if __name__ == "__main__":
    main()
