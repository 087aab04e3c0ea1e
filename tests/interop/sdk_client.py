#!/usr/bin/env python3
"""Interop checks for capmux, driven by the official MCP Python SDK client.

Usage:
    python sdk_client.py [--timeout SECONDS] -- CMD [ARGS...]

Everything after ``--`` is the server command, spawned over stdio.  The server's
stderr is passed through to this process's stderr, and the server inherits this
process's environment.

Output: one line per check on stdout, ``ok   NAME`` (optionally followed by a
note in parentheses) or ``FAIL NAME: REASON``, then exactly ``N passed, M failed``.
Exit code 0 only if M == 0 (2 for a usage error).

Written against mcp==2.3.0 (see setup.sh).  Only the SDK, anyio and the standard
library are used.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client

# mcp 2.x spells it MCPError; 1.x spelled it McpError.
MCPError: type[Exception] = getattr(mcp, "MCPError", None) or getattr(mcp, "McpError")

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

# Seconds allowed for each check (every await runs inside one of these).
DEFAULT_CHECK_TIMEOUT = 20.0
# Upper bound on pages followed through nextCursor before giving up.
MAX_PAGES = 1000
# Longest failure reason printed (longer ones are cut).
MAX_REASON = 1000


# --------------------------------------------------------------------------
# Plumbing.
# --------------------------------------------------------------------------
class CheckFailed(Exception):
    """A check's expectation did not hold; the message is the reason."""


def expect(cond: bool, reason: str) -> None:
    if not cond:
        raise CheckFailed(reason)


def short(value: Any, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, MCPError):
        err = exc.error  # type: ignore[attr-defined]
        data = "" if err.data is None else f", data={short(err.data, 200)}"
        return f"MCPError(code={err.code}, message={err.message!r}{data})"
    return f"{type(exc).__name__}: {exc}"


def content_text(blocks: Any) -> str:
    """Concatenate the text carried by a list of content blocks (tool results)."""
    parts: list[str] = []
    for block in blocks or []:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        elif isinstance(block, types.EmbeddedResource):
            res = block.resource
            if isinstance(res, types.TextResourceContents):
                parts.append(res.text)
    return "\n".join(parts)


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


@dataclass
class Ctx:
    session: ClientSession
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


@check("ping")
async def check_ping(ctx: Ctx) -> str | None:
    await ctx.session.send_ping()
    return None


# --------------------------------------------------------------------------
# Runner.
# --------------------------------------------------------------------------
class Report:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0
        self.done: set[str] = set()

    def ok(self, name: str, note: str | None = None) -> None:
        self.done.add(name)
        self.passed += 1
        print(f"ok   {name}" + (f" ({note})" if note else ""), flush=True)

    def fail(self, name: str, reason: str) -> None:
        self.done.add(name)
        self.failed += 1
        reason = reason.replace("\r", "\\r").replace("\n", "\\n")  # keep one line per check
        if len(reason) > MAX_REASON:
            reason = reason[: MAX_REASON - 3] + "..."
        print(f"FAIL {name}: {reason}", flush=True)


def flatten(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        out: list[BaseException] = []
        for sub in exc.exceptions:
            out.extend(flatten(sub))
        return out
    return [exc]


async def run_checks(report: Report, server: StdioServerParameters, timeout: float) -> None:
    async with stdio_client(server, errlog=sys.stderr) as (read, write):
        async with ClientSession(read, write, read_timeout_seconds=timeout) as session:
            ctx = Ctx(session)
            for name, fn in CHECKS:
                if name != "initialize" and ctx.init is None:
                    report.fail(name, "not run: initialize failed")
                    continue
                try:
                    with anyio.fail_after(timeout):
                        note = await fn(ctx)
                except CheckFailed as exc:
                    report.fail(name, str(exc))
                except TimeoutError:
                    report.fail(name, f"timed out after {timeout:g}s")
                except Exception as exc:  # noqa: BLE001 - any error fails just this check
                    if os.environ.get("CAPMUX_INTEROP_DEBUG"):
                        traceback.print_exc(file=sys.stderr)
                    report.fail(name, describe_error(exc))
                else:
                    report.ok(name, note)


async def main_async(command: list[str], timeout: float) -> int:
    report = Report()
    server = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
    try:
        await run_checks(report, server, timeout)
    except BaseException as exc:  # noqa: BLE001 - includes ExceptionGroup from the task groups
        if isinstance(exc, KeyboardInterrupt):
            raise
        errors = [e for e in flatten(exc) if not isinstance(e, anyio.get_cancelled_exc_class())] or [exc]
        reason = "; ".join(describe_error(e) for e in errors)
        if report.done >= {name for name, _ in CHECKS}:
            # Every check ran; only the teardown broke.  Say so, but do not count it.
            print(f"warning: error while shutting the server down: {reason}", file=sys.stderr, flush=True)
        else:
            for name, _ in CHECKS:
                if name not in report.done:
                    report.fail(name, f"not run: session aborted: {reason}")
    print(f"{report.passed} passed, {report.failed} failed", flush=True)
    return 0 if report.failed == 0 else 1


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print(__doc__, file=sys.stderr)
        print("error: missing '-- CMD [ARGS...]'", file=sys.stderr)
        return 2
    split = argv.index("--")
    own, command = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(description="MCP SDK interop checks for capmux")
    parser.add_argument(
        "--timeout",
        type=float,
        default=float(os.environ.get("CAPMUX_INTEROP_TIMEOUT", DEFAULT_CHECK_TIMEOUT)),
        help=f"seconds allowed per check (default {DEFAULT_CHECK_TIMEOUT:g}, env CAPMUX_INTEROP_TIMEOUT)",
    )
    opts = parser.parse_args(own)
    if not command:
        print("error: no server command after '--'", file=sys.stderr)
        return 2
    return anyio.run(main_async, command, opts.timeout)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
