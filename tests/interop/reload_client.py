#!/usr/bin/env python3
"""Hot reload seen by the official MCP Python SDK: while this client is connected to
`capmux serve`, a package is installed and then removed with the capmux CLI, and the
client must get `notifications/tools/list_changed` each time, with the new tool listed
and callable after the install and gone after the removal.

Usage:
    python reload_client.py --capmux BIN --package DIR --tool NAME --expect TEXT -- CMD [ARGS...]

CMD is the server to connect to (`BIN --no-bundled serve`); `BIN install DIR --yes` and
`BIN remove ID` run with this process's environment (the same HOME and XDG folders).

Output: one line per check, `ok NAME` or `FAIL NAME: REASON`, then `N passed, M failed`;
exit code 0 only if M == 0.  Written against mcp==2.3.0 (see setup.sh).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Any

import anyio
from mcp import ClientSession
from mcp.client.stdio import stdio_client
from mcp.shared.message import SessionMessage

from harness import CheckFailed, Report, add_timeout_option, content_text, expect, run_check, run_session, short, tap_messages

CHANGED = "notifications/tools/list_changed"


class Ctx:
    def __init__(self, session: ClientSession, args: argparse.Namespace, seen: list[dict[str, Any]]) -> None:
        self.session = session
        self.args = args
        self.seen = seen
        self.init: Any = None

    def changes(self) -> int:
        return sum(1 for m in self.seen if m.get("method") == CHANGED)

    async def wait_for_change(self, before: int, within: float = 15.0) -> None:
        deadline = time.monotonic() + within
        while self.changes() <= before:
            if time.monotonic() > deadline:
                raise CheckFailed(f"no {CHANGED} within {within:g}s")
            await anyio.sleep(0.05)

    async def tools(self) -> set[str]:
        return {t.name for t in (await self.session.list_tools()).tools}

    def cli(self, *argv: str) -> str:
        out = subprocess.run([self.args.capmux, *argv], capture_output=True, text=True, stdin=subprocess.DEVNULL)
        expect(out.returncode == 0, f"capmux {' '.join(argv)} failed: {out.stderr.strip()}")
        return out.stdout


async def check_initialize(ctx: Ctx) -> str:
    ctx.init = await ctx.session.initialize()
    caps = ctx.init.capabilities
    expect(caps.tools is not None and caps.tools.list_changed is True, f"tools.listChanged not declared: {caps.tools}")
    expect(ctx.args.tool not in await ctx.tools(), f"{ctx.args.tool} is listed before the install")
    return None


async def check_install(ctx: Ctx) -> str:
    before = ctx.changes()
    ctx.cli("install", ctx.args.package, "--yes")
    await ctx.wait_for_change(before)
    tools = await ctx.tools()
    expect(ctx.args.tool in tools, f"{ctx.args.tool} not listed after the install: {sorted(tools)}")
    result = await ctx.session.call_tool(ctx.args.tool, {})
    text = content_text(result.content)
    expect(not result.is_error and ctx.args.expect in text, f"call: {short(text)}")
    return "list_changed, then listed and callable"


async def check_remove(ctx: Ctx) -> str:
    before = ctx.changes()
    ctx.cli("remove", ctx.args.tool.split("__")[0])
    await ctx.wait_for_change(before)
    tools = await ctx.tools()
    expect(ctx.args.tool not in tools, f"{ctx.args.tool} still listed after the removal")
    return "list_changed, then gone"


CHECKS = [("initialize", check_initialize), ("install", check_install), ("remove", check_remove)]


async def main_async(command: list[str], args: argparse.Namespace) -> int:
    report = Report()
    seen: list[dict[str, Any]] = []

    async def run(server: Any) -> None:
        async with stdio_client(server, errlog=sys.stderr) as (read, write), anyio.create_task_group() as taps:
            in_send, in_recv = anyio.create_memory_object_stream[SessionMessage | Exception](0)
            taps.start_soon(tap_messages, read, in_send, seen.append)
            async with ClientSession(in_recv, write) as session:
                ctx = Ctx(session, args, seen)
                for name, fn in CHECKS:
                    await run_check(report, ctx, name, fn, args.timeout)
            taps.cancel_scope.cancel()

    return await run_session(report, command, [n for n, _ in CHECKS], run)


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    split = argv.index("--")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--capmux", required=True)
    parser.add_argument("--package", required=True)
    parser.add_argument("--tool", required=True)
    parser.add_argument("--expect", required=True)
    add_timeout_option(parser, 30.0)
    args = parser.parse_args(argv[:split])
    return anyio.run(main_async, argv[split + 1 :], args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
