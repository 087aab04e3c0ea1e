#!/usr/bin/env python3
"""Interop checks for capmux's child servers, driven by the official MCP Python SDK.

capmux runs the reference servers `@modelcontextprotocol/server-everything` and
`mcp-server-time` (installed by setup.sh) as child servers and serves their tools
as `<server>__<tool>`.  This script connects to a command over stdio as an MCP
client that supports sampling, and checks what those children's tools do through
it: the tool lists, plain calls, progress notifications and a sampling request
sent back by a child.

Usage:
    python children_client.py [OPTIONS] [--] CMD [ARGS...]

    # capmux with a config naming the children "everything" and "time":
    python children_client.py target/debug/capmux serve --package /tmp/x/servers.json
    # a real server directly (no prefix, the other server's checks skipped):
    python children_client.py --only everything --prefix-everything '' -- \\
        node target/interop/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js stdio
    python children_client.py --only time --prefix-time '' -- \\
        target/interop/venv/bin/mcp-server-time --local-timezone UTC

Options (before the command; `--` ends them, and is needed only if the command
itself starts with `-`):
    --prefix-everything P   names of server-everything's tools are P + tool
                            (default `everything__`, env CAPMUX_INTEROP_PREFIX_EVERYTHING)
    --prefix-time P         likewise for mcp-server-time (default `time__`,
                            env CAPMUX_INTEROP_PREFIX_TIME)
    --only everything|time  run only that server's checks (the others print `skip`)
    --child-caps LIST       client capabilities the children are expected to have
                            been initialized with, comma-separated from sampling,
                            roots, elicitation, elicitation.url (default `sampling`,
                            env CAPMUX_INTEROP_CHILD_CAPS; `none` for none);
                            server-everything registers some tools only for
                            clients that declare them, so this sets its exact list
    --timeout S             seconds allowed per check (default 30,
                            env CAPMUX_INTEROP_TIMEOUT)

The server's stderr is passed through to this process's stderr, and the server
inherits this process's environment.

Output: one line per check on stdout, `ok NAME` (optionally followed by a note in
parentheses), `FAIL NAME: REASON` or `skip NAME: REASON`, then exactly
`N passed, M failed`.  Exit code 0 only if M == 0 (2 for a usage error).

Written against mcp==2.3.0, @modelcontextprotocol/server-everything@2026.8.31 and
mcp-server-time==2026.10.19 (see setup.sh).  Only the SDK, anyio and the standard
library are used.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
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
    Report,
    add_timeout_option,
    content_text,
    expect,
    run_check,
    run_session,
    tap_messages,
)
from harness import short_text as short  # noqa: E402 - strings unquoted in this script's messages

# --------------------------------------------------------------------------
# Expectations (adjust here when a pin in setup.sh moves).
# --------------------------------------------------------------------------
SERVERS = ("everything", "time")
DEFAULT_PREFIXES = {"everything": "everything__", "time": "time__"}

# server-everything 2026.8.31: the tools it always registers (tools/index.js
# registerTools, plus the task tool simulate-research-query, which
# registerConditionalTools adds whatever the client declares) ...
EVERYTHING_TOOLS = [
    "echo",
    "get-annotated-message",
    "get-env",
    "get-resource-links",
    "get-resource-reference",
    "get-structured-content",
    "get-sum",
    "get-tiny-image",
    "gzip-file-as-resource",
    "toggle-simulated-logging",
    "toggle-subscriber-updates",
    "trigger-long-running-operation",
    "simulate-research-query",
]
# ... and the ones it registers (after `notifications/initialized`) only for a client
# whose initialize declared the capability.  (trigger-sampling-request-async and
# trigger-elicitation-request-async also need capabilities.tasks.requests.*, which
# the SDK's ClientSession does not declare; they are not expected here.)
EVERYTHING_CONDITIONAL_TOOLS = {
    "sampling": ["trigger-sampling-request"],
    "roots": ["get-roots-list"],
    "elicitation": ["trigger-elicitation-request"],
    "elicitation.url": ["trigger-url-elicitation"],
}
DEFAULT_CHILD_CAPS = "sampling"

# mcp-server-time 2026.10.19.
TIME_TOOLS = ["get_current_time", "convert_time"]

ECHO_TOOL = "echo"  # {"message"} -> "Echo: <message>"
SUM_TOOL = "get-sum"  # {"a", "b"} -> "The sum of <a> and <b> is <a+b>."
PROGRESS_TOOL = "trigger-long-running-operation"  # {"duration" s, "steps"}
PROGRESS_STEPS = 4
PROGRESS_DURATION = 1  # seconds, for all the steps together
SAMPLING_TOOL = "trigger-sampling-request"  # {"prompt", "maxTokens"}
SAMPLING_MAX_TOKENS = 64
SAMPLING_REPLY = "capmux-interop sampled reply: the owl flies at noon"
SAMPLING_MODEL = "capmux-interop-fixed-model"

NOW_TOOL = "get_current_time"  # {"timezone"} -> structured TimeResult
NOW_TIMEZONE = "Asia/Tokyo"  # UTC+9 all year: no DST to reason about
NOW_OFFSET = timedelta(hours=9)
NOW_SLACK = timedelta(minutes=2)
CONVERT_TOOL = "convert_time"
CONVERT_ARGS = {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Kolkata"}
CONVERT_EXPECT_TARGET_HHMM = "17:30"
CONVERT_EXPECT_DIFF = "+5.5h"

DEFAULT_CHECK_TIMEOUT = 30.0
# After a call returns, how long to keep listening for stray progress notifications.
LATE_GRACE = 0.5
MAX_PAGES = 1000


# --------------------------------------------------------------------------
# Plumbing (the shared part is in harness.py).
# --------------------------------------------------------------------------
@dataclass
class Wire:
    """Every JSON-RPC message of the session, both ways, in order."""

    # (monotonic seconds, "in" = server to client / "out" = client to server, message as JSON)
    messages: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)

    def mark(self) -> int:
        return len(self.messages)

    def since(self, mark: int) -> list[tuple[float, str, dict[str, Any]]]:
        return self.messages[mark:]

    def recorder(self, direction: str) -> Callable[[dict[str, Any]], None]:
        """A `record` for harness.tap_messages: appends (now, direction, message)."""

        def record(dumped: dict[str, Any]) -> None:
            self.messages.append((time.monotonic(), direction, dumped))

        return record


@dataclass
class Sampling:
    """What the sampling callback saw."""

    calls: list[types.CreateMessageRequestParams] = field(default_factory=list)


def make_sampling_callback(record: Sampling) -> Callable[..., Awaitable[Any]]:
    # mcp 2.3.0: SamplingFnT is `async (context: ClientRequestContext,
    # params: CreateMessageRequestParams) -> CreateMessageResult | ... | ErrorData`.
    # Passing one makes ClientSession declare `capabilities.sampling` on initialize.
    async def sampling_callback(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        record.calls.append(params)
        return types.CreateMessageResult(
            role="assistant",
            content=types.TextContent(type="text", text=SAMPLING_REPLY),
            model=SAMPLING_MODEL,
            stop_reason="endTurn",
        )

    return sampling_callback


@dataclass
class Options:
    prefixes: dict[str, str]
    only: str | None
    child_caps: list[str]

    def name(self, server: str, tool: str) -> str:
        return self.prefixes[server] + tool


@dataclass
class Ctx:
    session: ClientSession
    opts: Options
    wire: Wire
    sampling: Sampling
    init: types.InitializeResult | None = None
    tools: list[types.Tool] | None = None


CheckFn = Callable[[Ctx], Awaitable[str | None]]
# (name, server the check is about or None for both, function)
CHECKS: list[tuple[str, str | None, CheckFn]] = []


def check(name: str, server: str | None = None) -> Callable[[CheckFn], CheckFn]:
    def register(fn: CheckFn) -> CheckFn:
        CHECKS.append((name, server, fn))
        return fn

    return register


async def all_tools(ctx: Ctx) -> list[types.Tool]:
    if ctx.tools is None:
        tools: list[types.Tool] = []
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(MAX_PAGES):
            params = None if cursor is None else types.PaginatedRequestParams(cursor=cursor)
            page = await ctx.session.list_tools(params=params)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
            expect(cursor not in seen, f"tools/list nextCursor {cursor!r} repeated")
            seen.add(cursor)
        else:
            raise CheckFailed(f"tools/list: more than {MAX_PAGES} pages")
        ctx.tools = tools
    return ctx.tools


async def call_ok(ctx: Ctx, name: str, args: dict[str, Any], **kwargs: Any) -> types.CallToolResult:
    result = await ctx.session.call_tool(name, args, **kwargs)
    expect(
        not result.is_error,
        f"{name} {json.dumps(args)}: isError=true: {short(content_text(result.content))}",
    )
    return result


def compare_tool_names(ctx: Ctx, server: str, tools: list[types.Tool], want_bare: list[str]) -> str:
    prefix = ctx.opts.prefixes[server]
    names = [t.name for t in tools]
    dupes = sorted({n for n in names if names.count(n) > 1})
    expect(not dupes, f"tools/list repeats {dupes}")
    got = sorted(n for n in names if n.startswith(prefix))
    want = sorted(prefix + n for n in want_bare)
    missing = [n for n in want if n not in got]
    extra = [n for n in got if n not in want]
    expect(not missing and not extra, f"missing {missing}, unexpected {extra} (all tools: {names})")
    return f"{len(want)} tools"


# --------------------------------------------------------------------------
# The checks, run in this order.  A check returns an optional note for its
# "ok" line, or raises (CheckFailed or anything else) to fail.
# --------------------------------------------------------------------------
@check("initialize")
async def check_initialize(ctx: Ctx) -> str | None:
    ctx.init = await ctx.session.initialize()
    caps = ctx.session.server_capabilities
    expect(caps is not None and caps.tools is not None, f"capabilities lack tools: {short(caps)}")
    info = ctx.session.server_info
    return f"{info.name if info else '?'} {info.version if info else '?'}, protocol {ctx.init.protocol_version}"


@check("tools_everything", "everything")
async def check_tools_everything(ctx: Ctx) -> str | None:
    want = list(EVERYTHING_TOOLS)
    for cap in ctx.opts.child_caps:
        want += EVERYTHING_CONDITIONAL_TOOLS[cap]
    return compare_tool_names(ctx, "everything", await all_tools(ctx), want)


@check("tools_time", "time")
async def check_tools_time(ctx: Ctx) -> str | None:
    return compare_tool_names(ctx, "time", await all_tools(ctx), TIME_TOOLS)


@check("everything_echo", "everything")
async def check_echo(ctx: Ctx) -> str | None:
    message = f"capmux interop echo {secrets.token_hex(4)} ✓ \"quoted\" \\ back"
    name = ctx.opts.name("everything", ECHO_TOOL)
    result = await call_ok(ctx, name, {"message": message})
    text = content_text(result.content)
    want = f"Echo: {message}"
    expect(text == want, f"{name}: text {text!r}, expected {want!r}")
    return None


@check("everything_sum", "everything")
async def check_sum(ctx: Ctx) -> str | None:
    name = ctx.opts.name("everything", SUM_TOOL)
    result = await call_ok(ctx, name, {"a": 40, "b": 2.5})
    text = content_text(result.content)
    want = "The sum of 40 and 2.5 is 42.5."
    expect(text == want, f"{name}: text {text!r}, expected {want!r}")
    return None


@check("everything_progress", "everything")
async def check_progress(ctx: Ctx) -> str | None:
    name = ctx.opts.name("everything", PROGRESS_TOOL)
    seen: list[tuple[float, float | None, str | None]] = []

    # mcp 2.3.0: ProgressFnT is `async (progress: float, total: float | None,
    # message: str | None) -> None`, given per request (call_tool's 4th parameter /
    # keyword progress_callback); the SDK sends the request id as the progressToken.
    # The dispatcher runs each callback as its own task, so it is awaited nowhere:
    # the count when call_tool returns is what the client had seen "before the result".
    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    mark = ctx.wire.mark()
    args = {"duration": PROGRESS_DURATION, "steps": PROGRESS_STEPS}
    result = await call_ok(ctx, name, args, progress_callback=on_progress)
    count_at_return = len(seen)
    text = content_text(result.content)
    want_text = f"Long running operation completed. Duration: {PROGRESS_DURATION} seconds, Steps: {PROGRESS_STEPS}."
    expect(text == want_text, f"{name}: text {text!r}, expected {want_text!r}")
    await anyio.sleep(LATE_GRACE)  # let stray (late or duplicate) notifications show

    # On the wire: the request's progressToken, and every notifications/progress
    # carrying it before the response, none after, none with another token.
    request_id: Any = None
    token: Any = None
    response_at: int | None = None
    progress_at: list[int] = []
    stray: list[dict[str, Any]] = []
    for index, (_, direction, msg) in enumerate(ctx.wire.since(mark)):
        if direction == "out" and msg.get("method") == "tools/call" and msg.get("params", {}).get("name") == name:
            request_id = msg.get("id")
            token = msg.get("params", {}).get("_meta", {}).get("progressToken")
        elif direction == "in" and request_id is not None and msg.get("id") == request_id and "method" not in msg:
            response_at = index
        elif direction == "in" and msg.get("method") == "notifications/progress":
            if token is not None and msg.get("params", {}).get("progressToken") == token:
                progress_at.append(index)
            else:
                stray.append(msg)
    expect(request_id is not None, "the tools/call request was not seen on the wire")
    expect(token is not None, "the SDK sent no progressToken (no _meta.progressToken in tools/call)")
    expect(response_at is not None, f"no response with id {request_id!r} seen on the wire")
    expect(not stray, f"progress notifications with another token than {token!r}: {short(stray, 600)}")
    late = [i for i in progress_at if i > response_at]
    expect(len(progress_at) == PROGRESS_STEPS, f"{len(progress_at)} progress notifications on the wire, expected {PROGRESS_STEPS}")
    expect(not late, f"{len(late)} progress notifications came after the response")

    # And in the client: the callback saw each of them, in order, by the time call_tool returned.
    want = [(float(i), float(PROGRESS_STEPS), None) for i in range(1, PROGRESS_STEPS + 1)]
    expect(seen == want, f"progress callback got {seen}, expected {want} (progress, total, message)")
    expect(
        count_at_return == PROGRESS_STEPS,
        f"only {count_at_return} of {PROGRESS_STEPS} progress callbacks had run when call_tool returned",
    )
    return f"{PROGRESS_STEPS} notifications, increasing, all before the result"


@check("everything_sampling", "everything")
async def check_sampling(ctx: Ctx) -> str | None:
    if "sampling" not in ctx.opts.child_caps:
        raise CheckSkipped("--child-caps lacks sampling")
    name = ctx.opts.name("everything", SAMPLING_TOOL)
    prompt = f"capmux interop prompt {secrets.token_hex(4)}"
    before = len(ctx.sampling.calls)
    mark = ctx.wire.mark()
    result = await call_ok(ctx, name, {"prompt": prompt, "maxTokens": SAMPLING_MAX_TOKENS})
    text = content_text(result.content)
    calls = ctx.sampling.calls[before:]
    expect(len(calls) == 1, f"the sampling callback ran {len(calls)} times, expected once (tool result: {short(text)})")
    params = calls[0]
    asked = content_text([m.content for m in params.messages if not isinstance(m.content, list)])
    expect(prompt in asked, f"sampling/createMessage messages {short(asked)!r} lack the prompt {prompt!r}")
    expect(
        params.max_tokens == SAMPLING_MAX_TOKENS,
        f"sampling/createMessage maxTokens {params.max_tokens}, expected {SAMPLING_MAX_TOKENS}",
    )
    expect(SAMPLING_REPLY in text, f"{name}: result lacks the callback's reply {SAMPLING_REPLY!r}: {short(text)}")
    expect(SAMPLING_MODEL in text, f"{name}: result lacks the callback's model {SAMPLING_MODEL!r}: {short(text)}")
    # On the wire: the server's sampling/createMessage came (and was answered)
    # while the tools/call was pending.
    order = [
        ("request" if m.get("method") == "sampling/createMessage" else "response")
        for _, d, m in ctx.wire.since(mark)
        if d == "in" and (m.get("method") == "sampling/createMessage" or ("result" in m and "method" not in m))
    ]
    expect(order[:1] == ["request"], f"server messages in order: {order}; expected the sampling request first")
    return None


@check("time_now", "time")
async def check_time_now(ctx: Ctx) -> str | None:
    name = ctx.opts.name("time", NOW_TOOL)
    result = await call_ok(ctx, name, {"timezone": NOW_TIMEZONE})
    data = result.structured_content
    if data is None:  # fall back to the JSON text block
        data = json.loads(content_text(result.content))
    expect(isinstance(data, dict), f"{name}: result is not an object: {short(data)}")
    expect(data.get("timezone") == NOW_TIMEZONE, f"{name}: timezone {data.get('timezone')!r}, expected {NOW_TIMEZONE!r}")
    stamp = data.get("datetime")
    try:
        when = datetime.fromisoformat(stamp)
    except (TypeError, ValueError):
        raise CheckFailed(f"{name}: datetime {stamp!r} is not ISO 8601") from None
    expect(when.utcoffset() == NOW_OFFSET, f"{name}: datetime {stamp} has offset {when.utcoffset()}, expected {NOW_OFFSET}")
    now = datetime.now(timezone.utc)
    expect(abs(when - now) <= NOW_SLACK, f"{name}: datetime {stamp} is not now ({now.isoformat(timespec='seconds')})")
    return stamp


@check("time_convert", "time")
async def check_time_convert(ctx: Ctx) -> str | None:
    name = ctx.opts.name("time", CONVERT_TOOL)
    result = await call_ok(ctx, name, CONVERT_ARGS)
    data = result.structured_content
    if data is None:
        data = json.loads(content_text(result.content))
    target = (data or {}).get("target", {}).get("datetime", "")
    expect(
        re.search(rf"T{CONVERT_EXPECT_TARGET_HHMM}:00\+05:30$", target) is not None,
        f"{name} {json.dumps(CONVERT_ARGS)}: target datetime {target!r}, expected {CONVERT_EXPECT_TARGET_HHMM} at +05:30",
    )
    diff = data.get("time_difference")
    expect(diff == CONVERT_EXPECT_DIFF, f"{name}: time_difference {diff!r}, expected {CONVERT_EXPECT_DIFF!r}")
    return None


@check("ping")
async def check_ping(ctx: Ctx) -> str | None:
    await ctx.session.send_ping()
    return None


# --------------------------------------------------------------------------
# Runner (harness.run_session and run_check do the rest).
# --------------------------------------------------------------------------
async def run_checks(report: Report, server: StdioServerParameters, timeout: float, opts: Options) -> None:
    wire = Wire()
    sampling = Sampling()
    async with stdio_client(server, errlog=sys.stderr) as (read, write), anyio.create_task_group() as taps:
        in_send, in_recv = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        out_send, out_recv = anyio.create_memory_object_stream[SessionMessage](0)
        taps.start_soon(tap_messages, read, in_send, wire.recorder("in"))
        taps.start_soon(tap_messages, out_recv, write, wire.recorder("out"))
        async with ClientSession(
            in_recv,
            out_send,
            read_timeout_seconds=timeout,
            sampling_callback=make_sampling_callback(sampling),
        ) as session:
            ctx = Ctx(session, opts, wire, sampling)
            for name, about, fn in CHECKS:
                if opts.only is not None and about is not None and about != opts.only:
                    report.skip(name, f"--only {opts.only}")
                    continue
                await run_check(report, ctx, name, fn, timeout)
        taps.cancel_scope.cancel()


async def main_async(command: list[str], timeout: float, opts: Options) -> int:
    report = Report(ok_tag="ok", shorten=short)
    names = [name for name, _, _ in CHECKS]
    return await run_session(report, command, names, lambda server: run_checks(report, server, timeout, opts))


def parse_args(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        description="MCP SDK interop checks for capmux's child servers",
        usage="%(prog)s [OPTIONS] [--] CMD [ARGS...]",
    )
    parser.add_argument(
        "--prefix-everything",
        default=os.environ.get("CAPMUX_INTEROP_PREFIX_EVERYTHING", DEFAULT_PREFIXES["everything"]),
        metavar="P",
    )
    parser.add_argument(
        "--prefix-time",
        default=os.environ.get("CAPMUX_INTEROP_PREFIX_TIME", DEFAULT_PREFIXES["time"]),
        metavar="P",
    )
    parser.add_argument("--only", choices=SERVERS)
    parser.add_argument("--child-caps", default=os.environ.get("CAPMUX_INTEROP_CHILD_CAPS", DEFAULT_CHILD_CAPS))
    add_timeout_option(parser, DEFAULT_CHECK_TIMEOUT)
    if "--" in argv:
        split = argv.index("--")
        args = parser.parse_args(argv[:split])
        return args, argv[split + 1 :]
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    return args, args.command


def main(argv: list[str]) -> int:
    args, command = parse_args(argv)
    if not command:
        print(__doc__, file=sys.stderr)
        print("error: no server command", file=sys.stderr)
        return 2
    prefixes = {"everything": args.prefix_everything, "time": args.prefix_time}
    overlapping = [
        (a, b)
        for a in SERVERS
        for b in SERVERS
        if a < b and (prefixes[a].startswith(prefixes[b]) or prefixes[b].startswith(prefixes[a]))
    ]
    if overlapping and args.only is None:
        print(f"error: the prefixes {prefixes} overlap; give distinct ones or --only", file=sys.stderr)
        return 2
    caps = [] if args.child_caps in ("", "none") else [c.strip() for c in args.child_caps.split(",")]
    unknown = [c for c in caps if c not in EVERYTHING_CONDITIONAL_TOOLS]
    if unknown:
        print(f"error: --child-caps: unknown {unknown}; known: {sorted(EVERYTHING_CONDITIONAL_TOOLS)}", file=sys.stderr)
        return 2
    opts = Options(prefixes=prefixes, only=args.only, child_caps=caps)
    return anyio.run(main_async, command, args.timeout, opts)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
