#!/usr/bin/env python3
"""Interop checks for capmux, driven by the official MCP Python SDK client.

Usage:
    python sdk_client.py [--timeout SECONDS] [--repo DIR]
                         [--link-skill NS__NAME --link-marker TEXT] -- CMD [ARGS...]

Everything after ``--`` is the server command, spawned over stdio.  The server's
stderr is passed through to this process's stderr, and the server inherits this
process's environment.

``--repo DIR`` is the capmux checkout whose bundled ``skills/`` the server serves
(default: the current directory); the skill checks compare what is served with
the files there.  ``--link-skill NS__NAME`` names a served skill holding a file
``outside.md`` that is a symlink to a file outside the skill, whose content
contains ``--link-marker TEXT``; only then does ``read_skill_file_link`` run.

Output: one line per check on stdout, ``ok   NAME`` (optionally followed by a
note in parentheses), ``FAIL NAME: REASON`` or ``skip NAME: REASON`` (a check
whose inputs were not given; counted neither passed nor failed), then exactly
``N passed, M failed``.  Exit code 0 only if M == 0 (2 for a usage error).

Written against mcp==2.3.0 (see setup.sh).  Only the SDK, anyio and the standard
library are used.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import os
import re
import sys
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.shared.message import SessionMessage

# tests/interop/harness.py: the runner and plumbing both interop scripts share, imported
# from this script's folder.
from harness import (
    CheckFailed,
    CheckSkipped,
    MCPError,
    Report,
    add_timeout_option,
    content_text,
    describe_error,
    expect,
    run_check,
    run_session,
    short,
    tap_messages,
)

# --------------------------------------------------------------------------
# Expectations (adjust here).
# --------------------------------------------------------------------------
SERVER_NAME = "capmux"
INSTRUCTIONS_MARKER = "House rules:"

EXPECTED_TOOLS = [
    "text-tools__word_count",
    "text-tools__text_diff",
    "text-tools__json_query",
    "text-tools__sha256",
    "notes__add_note",
]
TOOL_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
TOOL_NAME_MAX_LEN = 64

WORD_COUNT_TOOL = "text-tools__word_count"
WORD_COUNT_ARGS = {"text": "hello brave new world"}
WORD_COUNT_EXPECT = "4 words"

SHA256_TOOL = "text-tools__sha256"
SHA256_ARGS = {"text": "abc"}
SHA256_EXPECT = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

BAD_ARGS_TOOL = WORD_COUNT_TOOL
BAD_ARGS = {"text": 5}
BAD_ARGS_EXPECT = "text"

UNKNOWN_TOOL = "nope__nothing"

REVIEW_PROMPT = "house-rules__review"
EXPECTED_PROMPTS = [REVIEW_PROMPT, "house-rules__commit_message", "system"]
# argument name -> required?
REVIEW_PROMPT_ARGS = {"diff": True, "focus": False}
REVIEW_PROMPT_CALL_ARGS = {"diff": "-a\n+b", "focus": "naming"}
REVIEW_PROMPT_EXPECT = ["-a\n+b", "naming"]
REVIEW_MISSING_ARG = "diff"

SYSTEM_PROMPT = "system"
SYSTEM_PROMPT_EXPECT = INSTRUCTIONS_MARKER

SYSTEM_RESOURCE_URI = "capmux://system-prompt"
SYSTEM_RESOURCE_EXPECT = INSTRUCTIONS_MARKER

# Skills.  The bundled skills/ folder of the repo is the package `capmux-skills`,
# served under the namespace `skills`.
SKILLS_DIR = "skills"  # relative to --repo
SKILLS_NAMESPACE = "skills"
BUNDLED_SKILLS = ["writing-capmux-packages", "debugging-mcp-through-capmux"]
SKILL_ENTRY = "SKILL.md"
# Files every listing must hold, besides each skill's SKILL.md: (skill, path).
REQUIRED_SKILL_FILES = [("writing-capmux-packages", "reference.md")]
SKILL_URI_SCHEME = "skill://"
SKILL_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
# capmux serves a skill's regular files below its folder, except hidden ones,
# links and files over this size (src/package/skill.rs).
SKILL_MAX_FILE_BYTES = 8 * 1024 * 1024

SKILLS_EXTENSION = "io.modelcontextprotocol/skills"

INDEX_SKILL = "writing-capmux-packages"
INDEX_PUBLIC = f"{SKILLS_NAMESPACE}__{INDEX_SKILL}"
SKILLS_INDEX_EXPECT = [
    "<available_skills>",
    INDEX_PUBLIC,
    f"{SKILL_URI_SCHEME}{SKILLS_NAMESPACE}/{INDEX_SKILL}/{SKILL_ENTRY}",
    "</available_skills>",  # the index is whole, not cut
]

SKILL_PROMPT = INDEX_PUBLIC
SKILL_PROMPT_ARG = "arguments"
SKILL_PROMPT_ARG_VALUE = "a Jira package"

LOAD_SKILL_TOOL = "capmux__load_skill"
LOAD_SKILL_ARGS = {"name": INDEX_PUBLIC}
LOAD_SKILL_EXPECT = ["<skill_content", "reference.md"]

READ_SKILL_FILE_TOOL = "capmux__read_skill_file"
READ_SKILL_FILE_SKILL = INDEX_PUBLIC
READ_SKILL_FILE_PATH = "reference.md"  # in SKILLS_DIR/INDEX_SKILL of --repo
# Paths that leave the skill folder: (path, file whose text must not leak,
# relative to --repo unless absolute).
READ_SKILL_FILE_ESCAPES = [
    ("../../README.md", "README.md"),
    ("/etc/passwd", "/etc/passwd"),
    ("scripts/../../../Cargo.toml", "Cargo.toml"),
]
# A line of a forbidden file at least this long (stripped) must not show up in
# a refusal; shorter ones ("}", "---") are too common to mean a leak.
LEAK_MIN_LINE = 12

LINK_FILE = "outside.md"

# Seconds allowed for each check (every await runs inside one of these).
DEFAULT_CHECK_TIMEOUT = 20.0
# Upper bound on pages followed through nextCursor before giving up.
MAX_PAGES = 1000


# --------------------------------------------------------------------------
# Plumbing (the shared part is in harness.py).
# --------------------------------------------------------------------------
def prompt_text(result: types.GetPromptResult) -> str:
    return content_text([m.content for m in result.messages])


async def list_all(fetch: Callable[[str | None], Awaitable[Any]], attr: str) -> tuple[list[Any], int]:
    """Follow nextCursor until it is absent; returns (items, pages)."""
    items: list[Any] = []
    cursor: str | None = None
    seen: set[str] = set()
    pages = 0
    while True:
        result = await fetch(cursor)
        pages += 1
        items.extend(getattr(result, attr))
        cursor = result.next_cursor
        if cursor is None:
            return items, pages
        expect(cursor not in seen, f"nextCursor {cursor!r} repeated (pagination loop)")
        expect(pages < MAX_PAGES, f"more than {MAX_PAGES} pages")
        seen.add(cursor)


def page_params(cursor: str | None) -> types.PaginatedRequestParams | None:
    return None if cursor is None else types.PaginatedRequestParams(cursor=cursor)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def skill_uri(namespace: str, skill: str, path: str) -> str:
    """A skill file's URI as capmux builds it: the path percent-encoded, `/` kept."""
    return f"{SKILL_URI_SCHEME}{namespace}/{skill}/{urllib.parse.quote(path, safe='/-._~')}"


def meta_digest(meta: Any) -> Any:
    return meta.get("digest") if isinstance(meta, dict) else None


def skill_files_on_disk(folder: Path) -> list[str]:
    """The files capmux serves from a skill folder: regular files below it, with hidden
    entries and links left out and nothing over SKILL_MAX_FILE_BYTES; `/`-separated."""
    found: list[str] = []
    for root, dirs, files in os.walk(folder):  # os.walk does not follow links to folders
        dirs[:] = [d for d in dirs if not d.startswith(".") and not os.path.islink(os.path.join(root, d))]
        for name in files:
            full = os.path.join(root, name)
            if name.startswith(".") or os.path.islink(full) or not os.path.isfile(full):
                continue
            if os.path.getsize(full) > SKILL_MAX_FILE_BYTES:
                continue
            found.append(Path(full).relative_to(folder).as_posix())
    return sorted(found)


def leaked_lines(text: str, secret: str) -> list[str]:
    """The lines of `secret` (long enough to be telling) that appear in `text`."""
    lines = {line.strip() for line in secret.splitlines()}
    return sorted(line for line in lines if len(line) >= LEAK_MIN_LINE and line in text)


def strings_in(value: Any) -> list[str]:
    """Every string in a JSON value (keys too), plus the decoded text of `blob` fields."""
    out: list[str] = []
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            out.append(str(key))
            out.extend(strings_in(item))
            if key == "blob" and isinstance(item, str):
                try:
                    out.append(base64.b64decode(item, validate=True).decode("utf-8", "replace"))
                except (binascii.Error, ValueError):
                    pass
    elif isinstance(value, list):
        for item in value:
            out.extend(strings_in(item))
    return out


@dataclass
class Options:
    repo: Path
    link_skill: str | None = None
    link_marker: str | None = None


@dataclass
class Ctx:
    session: ClientSession
    opts: Options
    # Every message the server sent, as JSON values, in order (see run_checks).
    transcript: list[Any] = field(default_factory=list)
    init: types.InitializeResult | None = None
    notes: dict[str, str] = field(default_factory=dict)

    def note(self, name: str, text: str) -> None:
        self.notes[name] = text


CheckFn = Callable[[Ctx], Awaitable[str | None]]
CHECKS: list[tuple[str, CheckFn]] = []


def check(name: str) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        CHECKS.append((name, fn))
        return fn

    return register


# --------------------------------------------------------------------------
# The checks, run in this order.  A check returns an optional note for its
# "ok" line, or raises (CheckFailed or anything else) to fail.
# --------------------------------------------------------------------------
@check("initialize")
async def check_initialize(ctx: Ctx) -> str | None:
    result = await ctx.session.initialize()
    ctx.init = result
    # The session's accessors must agree with the raw result.
    info = ctx.session.server_info
    expect(info is not None, "session.server_info is None after initialize")
    expect(info.name == SERVER_NAME, f"serverInfo.name is {info.name!r}, expected {SERVER_NAME!r}")
    instructions = ctx.session.instructions
    expect(isinstance(instructions, str) and instructions.strip() != "", f"instructions missing/empty: {short(instructions)}")
    expect(
        INSTRUCTIONS_MARKER in instructions,
        f"instructions lack {INSTRUCTIONS_MARKER!r}: {short(instructions)}",
    )
    caps = ctx.session.server_capabilities
    expect(caps is not None, "no server capabilities")
    missing = [c for c in ("tools", "prompts", "resources") if getattr(caps, c) is None]
    expect(not missing, f"capabilities do not advertise {missing}: {short(caps.model_dump(exclude_none=True))}")
    return f"protocol {result.protocol_version}, server {info.name} {info.version}"


@check("tools_list")
async def check_tools_list(ctx: Ctx) -> str | None:
    tools, pages = await list_all(lambda c: ctx.session.list_tools(params=page_params(c)), "tools")
    names = [t.name for t in tools]
    missing = [n for n in EXPECTED_TOOLS if n not in names]
    expect(not missing, f"missing tools {missing}; got {names}")
    bad = [n for n in names if not TOOL_NAME_RE.match(n) or len(n) > TOOL_NAME_MAX_LEN]
    expect(not bad, f"tool names not matching {TOOL_NAME_RE.pattern} / <= {TOOL_NAME_MAX_LEN} chars: {bad}")
    dups = sorted({n for n in names if names.count(n) > 1})
    expect(not dups, f"duplicate tool names: {dups}")
    expect(names == sorted(names), f"tools not sorted by name: {names}")
    return f"{len(names)} tools in {pages} page(s)"


@check("call_word_count")
async def check_call_word_count(ctx: Ctx) -> str | None:
    result = await ctx.session.call_tool(WORD_COUNT_TOOL, WORD_COUNT_ARGS)
    text = content_text(result.content)
    expect(not result.is_error, f"isError=true: {short(text)}")
    expect(WORD_COUNT_EXPECT in text, f"text lacks {WORD_COUNT_EXPECT!r}: {short(text)}")
    return None


@check("call_sha256")
async def check_call_sha256(ctx: Ctx) -> str | None:
    result = await ctx.session.call_tool(SHA256_TOOL, SHA256_ARGS)
    text = content_text(result.content)
    expect(not result.is_error, f"isError=true: {short(text)}")
    expect(SHA256_EXPECT in text, f"text lacks {SHA256_EXPECT}: {short(text)}")
    return None


async def call_expecting_error(ctx: Ctx, name: str, args: dict[str, Any]) -> tuple[str, str]:
    """Call a tool that must fail; returns (how, message) where how is 'isError' or 'jsonrpc'."""
    try:
        result = await ctx.session.call_tool(name, args)
    except MCPError as exc:
        return f"JSON-RPC error {exc.error.code}", exc.error.message  # type: ignore[attr-defined]
    text = content_text(result.content)
    expect(result.is_error, f"expected an error, got a successful result: {short(text)}")
    return "isError result", text


@check("call_bad_arguments")
async def check_call_bad_arguments(ctx: Ctx) -> str | None:
    how, message = await call_expecting_error(ctx, BAD_ARGS_TOOL, BAD_ARGS)
    expect(BAD_ARGS_EXPECT in message, f"{how} message lacks {BAD_ARGS_EXPECT!r}: {short(message)}")
    return f"via {how}"


@check("call_unknown_tool")
async def check_call_unknown_tool(ctx: Ctx) -> str | None:
    how, message = await call_expecting_error(ctx, UNKNOWN_TOOL, {})
    expect(UNKNOWN_TOOL in message, f"{how} message lacks {UNKNOWN_TOOL!r}: {short(message)}")
    return f"via {how}"


@check("prompts_list")
async def check_prompts_list(ctx: Ctx) -> str | None:
    prompts, pages = await list_all(lambda c: ctx.session.list_prompts(params=page_params(c)), "prompts")
    by_name = {p.name: p for p in prompts}
    names = [p.name for p in prompts]
    missing = [n for n in EXPECTED_PROMPTS if n not in by_name]
    expect(not missing, f"missing prompts {missing}; got {names}")
    review = by_name[REVIEW_PROMPT]
    args = {a.name: bool(a.required) for a in review.arguments or []}
    for arg, required in REVIEW_PROMPT_ARGS.items():
        expect(arg in args, f"{REVIEW_PROMPT} lacks argument {arg!r}; has {sorted(args)}")
        expect(
            args[arg] == required,
            f"{REVIEW_PROMPT} argument {arg!r} required={args[arg]}, expected {required}",
        )
    return f"{len(names)} prompts in {pages} page(s)"


@check("get_prompt")
async def check_get_prompt(ctx: Ctx) -> str | None:
    result = await ctx.session.get_prompt(REVIEW_PROMPT, REVIEW_PROMPT_CALL_ARGS)
    text = prompt_text(result)
    for want in REVIEW_PROMPT_EXPECT:
        expect(want in text, f"prompt text lacks {want!r}: {short(text)}")
    return None


@check("get_prompt_missing_argument")
async def check_get_prompt_missing_argument(ctx: Ctx) -> str | None:
    try:
        result = await ctx.session.get_prompt(REVIEW_PROMPT, {})
    except MCPError as exc:
        message = exc.error.message  # type: ignore[attr-defined]
        expect(REVIEW_MISSING_ARG in message, f"error message lacks {REVIEW_MISSING_ARG!r}: {describe_error(exc)}")
        return f"JSON-RPC error {exc.error.code}"  # type: ignore[attr-defined]
    raise CheckFailed(f"expected a JSON-RPC error, got a result: {short(prompt_text(result))}")


@check("system_prompt")
async def check_system_prompt(ctx: Ctx) -> str | None:
    result = await ctx.session.get_prompt(SYSTEM_PROMPT)
    text = prompt_text(result)
    expect(SYSTEM_PROMPT_EXPECT in text, f"prompt text lacks {SYSTEM_PROMPT_EXPECT!r}: {short(text)}")
    return None


COMPOSE_PROMPT = "compose"
COMPOSE_MESSAGE = "Please review my change."
COMPOSE_RULES_HEADER = "[Assistant Rules - You MUST follow these instructions]"
COMPOSE_REQUEST_HEADER = "[User Request]"
COMPOSE_CLAUDE_ONLY = "# Tips for Claude"


@check("compose_prompt")
async def check_compose_prompt(ctx: Ctx) -> str | None:
    """The host API's first message through MCP: the RFC layout, provider parts kept or left out."""
    generic = prompt_text(await ctx.session.get_prompt(COMPOSE_PROMPT, {"message": COMPOSE_MESSAGE}))
    claude = prompt_text(
        await ctx.session.get_prompt(COMPOSE_PROMPT, {"message": COMPOSE_MESSAGE, "provider": "claude"})
    )
    for text in (generic, claude):
        expect(text.startswith(COMPOSE_RULES_HEADER), f"does not open with the rules header: {short(text)}")
        expect(SYSTEM_PROMPT_EXPECT in text, f"lacks the package rules: {short(text)}")
        expect(
            text.endswith(f"{COMPOSE_REQUEST_HEADER}\n\n{COMPOSE_MESSAGE}"),
            f"does not end with the request: {short(text[-200:])}",
        )
    expect(COMPOSE_CLAUDE_ONLY in claude, "the claude-only system prompt is missing for provider claude")
    expect(COMPOSE_CLAUDE_ONLY not in generic, "the claude-only system prompt is in a generic compose")
    return None


@check("resources")
async def check_resources(ctx: Ctx) -> str | None:
    resources, pages = await list_all(lambda c: ctx.session.list_resources(params=page_params(c)), "resources")
    uris = [str(r.uri) for r in resources]
    expect(SYSTEM_RESOURCE_URI in uris, f"resources lack {SYSTEM_RESOURCE_URI!r}; got {uris}")
    result = await ctx.session.read_resource(SYSTEM_RESOURCE_URI)
    texts = [c.text for c in result.contents if isinstance(c, types.TextResourceContents)]
    text = "\n".join(texts)
    expect(texts, f"no text contents in {SYSTEM_RESOURCE_URI}: {short(result.contents)}")
    expect(SYSTEM_RESOURCE_EXPECT in text, f"resource text lacks {SYSTEM_RESOURCE_EXPECT!r}: {short(text)}")
    return f"{len(uris)} resources in {pages} page(s)"


@check("skills_index")
async def check_skills_index(ctx: Ctx) -> str | None:
    instructions = ctx.session.instructions or ""
    missing = [want for want in SKILLS_INDEX_EXPECT if want not in instructions]
    tail = instructions[-600:]
    expect(not missing, f"instructions ({len(instructions)} chars) lack {missing}; they end with: {short(tail, 700)}")
    return f"{len(instructions)} chars"


@check("skills_extension")
async def check_skills_extension(ctx: Ctx) -> str | None:
    # mcp 2.3.0 models ServerCapabilities.extensions (dict[str, dict]); the SDK keeps it.
    caps = ctx.session.server_capabilities
    expect(caps is not None, "no server capabilities")
    extensions = caps.extensions
    expect(
        isinstance(extensions, dict) and SKILLS_EXTENSION in extensions,
        f"capabilities.extensions lacks {SKILLS_EXTENSION!r}: {short(caps.model_dump(by_alias=True, exclude_none=True))}",
    )
    settings = extensions[SKILLS_EXTENSION]
    expect(isinstance(settings, dict), f"extension settings are not an object: {short(settings)}")
    return f"settings {json.dumps(settings)}"


async def list_resources(ctx: Ctx) -> tuple[list[types.Resource], int]:
    return await list_all(lambda c: ctx.session.list_resources(params=page_params(c)), "resources")


@check("skill_resources")
async def check_skill_resources(ctx: Ctx) -> str | None:
    resources, pages = await list_resources(ctx)
    by_uri: dict[str, types.Resource] = {}
    for res in resources:
        uri = str(res.uri)
        expect(uri not in by_uri, f"resource {uri!r} listed twice")
        by_uri[uri] = res
    skills_root = ctx.opts.repo / SKILLS_DIR
    expected: dict[str, Path] = {}
    for skill in BUNDLED_SKILLS:
        folder = skills_root / skill
        files = skill_files_on_disk(folder)
        expect(SKILL_ENTRY in files, f"{folder / SKILL_ENTRY} does not exist (is --repo {ctx.opts.repo} right?)")
        for path in files:
            expected[skill_uri(SKILLS_NAMESPACE, skill, path)] = folder / path
    for skill, path in REQUIRED_SKILL_FILES:
        expect((skills_root / skill / path).is_file(), f"{skills_root / skill / path} does not exist")
    missing = sorted(uri for uri in expected if uri not in by_uri)
    expect(not missing, f"resources/list lacks {len(missing)} skill file(s): {missing}")
    prefixes = tuple(f"{SKILL_URI_SCHEME}{SKILLS_NAMESPACE}/{skill}/" for skill in BUNDLED_SKILLS)
    extra = sorted(uri for uri in by_uri if uri.startswith(prefixes) and uri not in expected)
    expect(not extra, f"resources/list holds skill files that are not in {skills_root}: {extra}")

    problems: list[str] = []
    for uri, disk in sorted(expected.items()):
        res = by_uri[uri]
        listed_digest = meta_digest(res.meta)
        if not res.mime_type:
            problems.append(f"{uri}: no mimeType in resources/list")
        if not (isinstance(listed_digest, str) and SKILL_DIGEST_RE.match(listed_digest)):
            problems.append(f"{uri}: _meta.digest is {short(listed_digest)}, expected sha256:<64 hex>")
            continue
        result = await ctx.session.read_resource(uri)
        if len(result.contents) != 1:
            problems.append(f"{uri}: read gave {len(result.contents)} contents, expected 1")
            continue
        item = result.contents[0]
        if isinstance(item, types.TextResourceContents):
            data = item.text.encode("utf-8")
        elif isinstance(item, types.BlobResourceContents):
            try:
                data = base64.b64decode(item.blob, validate=True)
            except (binascii.Error, ValueError) as exc:
                problems.append(f"{uri}: blob is not base64: {exc}")
                continue
        else:
            problems.append(f"{uri}: unexpected contents {type(item).__name__}")
            continue
        got = sha256_digest(data)
        if got != listed_digest:
            problems.append(f"{uri}: sha256 of the content read is {got}, _meta.digest listed {listed_digest}")
        read_digest = meta_digest(item.meta)
        if read_digest is not None and read_digest != listed_digest:
            problems.append(f"{uri}: _meta.digest read {read_digest} != listed {listed_digest}")
        if item.mime_type != res.mime_type:
            problems.append(f"{uri}: mimeType read {item.mime_type!r} != listed {res.mime_type!r}")
        if str(item.uri) != uri:
            problems.append(f"{uri}: contents carry uri {str(item.uri)!r}")
        on_disk = sha256_digest(disk.read_bytes())
        if on_disk != got:
            problems.append(f"{uri}: content differs from {disk} ({on_disk})")
    expect(not problems, "; ".join(problems))
    return f"{len(expected)} files of {len(BUNDLED_SKILLS)} skills read and hashed, {pages} page(s)"


@check("skill_prompt")
async def check_skill_prompt(ctx: Ctx) -> str | None:
    prompts, _ = await list_all(lambda c: ctx.session.list_prompts(params=page_params(c)), "prompts")
    by_name = {p.name: p for p in prompts}
    expect(SKILL_PROMPT in by_name, f"prompts/list lacks {SKILL_PROMPT!r}; got {sorted(by_name)}")
    args = {a.name: bool(a.required) for a in by_name[SKILL_PROMPT].arguments or []}
    expect(
        args == {SKILL_PROMPT_ARG: False},
        f"{SKILL_PROMPT} arguments are {args} (name -> required), expected {{{SKILL_PROMPT_ARG!r}: False}}",
    )
    result = await ctx.session.get_prompt(SKILL_PROMPT, {SKILL_PROMPT_ARG: SKILL_PROMPT_ARG_VALUE})
    text = prompt_text(result)
    expect(SKILL_PROMPT_ARG_VALUE in text, f"prompt text lacks {SKILL_PROMPT_ARG_VALUE!r}; it ends with: {short(text[-300:])}")
    expect("$ARGUMENTS" not in text, "prompt text still holds $ARGUMENTS")
    how = "appended" if f"ARGUMENTS: {SKILL_PROMPT_ARG_VALUE}" in text else "substituted"
    return f"argument {how}"


@check("load_skill_tool")
async def check_load_skill_tool(ctx: Ctx) -> str | None:
    result = await ctx.session.call_tool(LOAD_SKILL_TOOL, LOAD_SKILL_ARGS)
    text = content_text(result.content)
    expect(not result.is_error, f"isError=true: {short(text)}")
    missing = [want for want in LOAD_SKILL_EXPECT if want not in text]
    expect(not missing, f"text lacks {missing}: {short(text)}")
    return None


async def call_refused(ctx: Ctx, name: str, args: dict[str, Any]) -> str:
    """Call a tool that must refuse with an isError result; returns its text."""
    result = await ctx.session.call_tool(name, args)
    text = content_text(result.content)
    expect(result.is_error, f"{name} {json.dumps(args)} succeeded: {short(text)}")
    return text


@check("read_skill_file_tool")
async def check_read_skill_file_tool(ctx: Ctx) -> str | None:
    disk = ctx.opts.repo / SKILLS_DIR / INDEX_SKILL / READ_SKILL_FILE_PATH
    want = disk.read_bytes().decode("utf-8")
    args = {"skill": READ_SKILL_FILE_SKILL, "path": READ_SKILL_FILE_PATH}
    result = await ctx.session.call_tool(READ_SKILL_FILE_TOOL, args)
    text = content_text(result.content)
    expect(not result.is_error, f"{json.dumps(args)}: isError=true: {short(text)}")
    expect(
        text == want,
        f"{json.dumps(args)}: text ({len(text)} chars) differs from {disk} ({len(want)} chars): {short(text)}",
    )
    for path, secret_file in READ_SKILL_FILE_ESCAPES:
        secret_path = Path(secret_file) if os.path.isabs(secret_file) else ctx.opts.repo / secret_file
        secret = secret_path.read_text(encoding="utf-8", errors="replace")
        args = {"skill": READ_SKILL_FILE_SKILL, "path": path}
        refusal = await call_refused(ctx, READ_SKILL_FILE_TOOL, args)
        leaks = leaked_lines(refusal, secret)
        expect(not leaks, f"{json.dumps(args)}: the refusal holds lines of {secret_path}: {short(leaks)}")
    return f"{len(READ_SKILL_FILE_ESCAPES)} escapes refused"


@check("read_skill_file_link")
async def check_read_skill_file_link(ctx: Ctx) -> str | None:
    public, marker = ctx.opts.link_skill, ctx.opts.link_marker
    if public is None or marker is None:
        raise CheckSkipped("no --link-skill given")
    namespace, sep, skill = public.partition("__")
    expect(bool(sep and namespace and skill), f"--link-skill {public!r} is not NS__NAME")
    entry_uri = skill_uri(namespace, skill, SKILL_ENTRY)
    link_uri = skill_uri(namespace, skill, LINK_FILE)

    # The skill itself is served (else every refusal below would prove nothing).
    resources, _ = await list_resources(ctx)
    uris = [str(r.uri) for r in resources]
    expect(entry_uri in uris, f"resources/list lacks {entry_uri!r}: is {public} served? got {uris}")
    expect(link_uri not in uris, f"resources/list holds the link {link_uri!r}")
    loaded = await ctx.session.call_tool(LOAD_SKILL_TOOL, {"name": public})
    loaded_text = content_text(loaded.content)
    expect(not loaded.is_error, f"{LOAD_SKILL_TOOL} {public}: isError=true: {short(loaded_text)}")
    expect(f"<file>{LINK_FILE}</file>" not in loaded_text, f"{LOAD_SKILL_TOOL} {public} lists {LINK_FILE}: {short(loaded_text)}")

    await call_refused(ctx, READ_SKILL_FILE_TOOL, {"skill": public, "path": LINK_FILE})
    try:
        read = await ctx.session.read_resource(link_uri)
    except MCPError as exc:
        how = f"JSON-RPC error {exc.error.code}"  # type: ignore[attr-defined]
    else:
        raise CheckFailed(f"resources/read {link_uri} succeeded: {short(read.contents)}")

    # Nothing the server sent this session (initialize included) holds the marker,
    # in any string of any message or inside a base64 blob.
    for index, message in enumerate(ctx.transcript):
        for text in strings_in(message):
            expect(marker not in text, f"message #{index} from the server holds the marker: {short(message, 600)}")
    return f"refused by the tool and by resources/read ({how}); {len(ctx.transcript)} messages free of the marker"


@check("ping")
async def check_ping(ctx: Ctx) -> str | None:
    await ctx.session.send_ping()
    return None


# --------------------------------------------------------------------------
# Runner (harness.run_session and run_check do the rest).
# --------------------------------------------------------------------------
async def run_checks(report: Report, server: StdioServerParameters, timeout: float, opts: Options) -> None:
    async with stdio_client(server, errlog=sys.stderr) as (read, write), anyio.create_task_group() as tap:
        # Keep a JSON copy of each message the server sends to the session.
        transcript: list[Any] = []
        tapped_send, tapped_read = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        tap.start_soon(tap_messages, read, tapped_send, transcript.append)
        async with ClientSession(tapped_read, write, read_timeout_seconds=timeout) as session:
            ctx = Ctx(session, opts, transcript)
            for name, fn in CHECKS:
                await run_check(report, ctx, name, fn, timeout)
        tap.cancel_scope.cancel()


async def main_async(command: list[str], timeout: float, opts: Options) -> int:
    report = Report(ok_tag="ok  ")  # "ok   NAME", lined up with "FAIL NAME" and "skip NAME"
    names = [name for name, _ in CHECKS]
    return await run_session(report, command, names, lambda server: run_checks(report, server, timeout, opts))


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print(__doc__, file=sys.stderr)
        print("error: missing '-- CMD [ARGS...]'", file=sys.stderr)
        return 2
    split = argv.index("--")
    own, command = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(description="MCP SDK interop checks for capmux")
    add_timeout_option(
        parser,
        DEFAULT_CHECK_TIMEOUT,
        help=f"seconds allowed per check (default {DEFAULT_CHECK_TIMEOUT:g}, env CAPMUX_INTEROP_TIMEOUT)",
    )
    parser.add_argument(
        "--repo",
        type=Path,
        default=Path.cwd(),
        help="the capmux checkout whose skills/ the server serves (default: the current directory)",
    )
    parser.add_argument(
        "--link-skill",
        metavar="NS__NAME",
        help="a served skill whose outside.md links to a file outside it; enables read_skill_file_link",
    )
    parser.add_argument(
        "--link-marker",
        metavar="TEXT",
        help="text in the linked file that must never reach the client (required with --link-skill)",
    )
    args = parser.parse_args(own)
    if not command:
        print("error: no server command after '--'", file=sys.stderr)
        return 2
    if (args.link_skill is None) != (args.link_marker is None) or args.link_marker == "":
        print("error: --link-skill and a non-empty --link-marker go together", file=sys.stderr)
        return 2
    opts = Options(repo=args.repo.resolve(), link_skill=args.link_skill, link_marker=args.link_marker)
    return anyio.run(main_async, command, args.timeout, opts)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
