#!/usr/bin/env python3
"""Interop checks for packages of other agents' formats, driven by the official MCP
Python SDK.

capmux serves the fixtures of tests/fixtures/formats (a Claude Code plugin, a Gemini
CLI extension, an AionUi extension and a Codex plugin, each with `tiny_mcp.py` as its
child server and every grant); this script connects to it over stdio and checks what
a client sees: the merged instructions, the tools and prompts of each format, calls
through each plugin's child server, each format's hook blocking a call, a slash
command's arguments and a skill file.

Usage:
    python formats_client.py [--timeout S] -- CMD [ARGS...]

Output: one line per check, `ok NAME`, `FAIL NAME: REASON` or `skip NAME: REASON`,
then `N passed, M failed`; exit code 0 only if M == 0.

Written against mcp==2.3.0 (see setup.sh); only the SDK, anyio and the standard
library are used.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import anyio
from mcp import ClientSession
from mcp.client.stdio import stdio_client

from harness import (
    Report,
    add_timeout_option,
    content_text,
    expect,
    run_check,
    run_session,
    short,
)


class Ctx:
    def __init__(self, session: ClientSession) -> None:
        self.session = session
        self.init: Any = None


async def check_initialize(ctx: Ctx) -> str:
    ctx.init = await ctx.session.initialize()
    text = ctx.init.instructions or ""
    for wanted in ['Output style "Terse"', "Imported guidance: prefer small diffs.", "Run the test suite"]:
        expect(wanted in text, f"instructions lack {wanted!r}: {short(text)}")
    return "instructions carry the output style, GEMINI.md with its import and AGENTS.md"


async def check_tools(ctx: Ctx) -> str:
    names = {t.name for t in (await ctx.session.list_tools()).tools}
    wanted = {
        "review-kit__echo",
        "review-kit__greet",
        "gem-tools__echo",
        "gem-tools__greet",
        "aion-helper__echo",
        "codex-kit__echo",
    }
    expect(wanted <= names, f"missing {sorted(wanted - names)} in {sorted(names)}")
    expect("gem-tools__echo_hidden" not in names, "excludeTools did not hide gem-tools__echo_hidden")
    return f"{len(names)} tools"


async def check_prompts(ctx: Ctx) -> str:
    prompts = {p.name: p for p in (await ctx.session.list_prompts()).prompts}
    wanted = {
        "review-kit__review",
        "review-kit__code-reviewer",
        "gem-tools__gcs_sync",
        "aion-helper__helper",
        "codex-kit__explain",
    }
    expect(wanted <= set(prompts), f"missing {sorted(wanted - set(prompts))}")
    args = [a.name for a in prompts["gem-tools__gcs_sync"].arguments or []]
    expect(args == ["args"], f"gcs_sync arguments {args}")
    return f"{len(prompts)} prompts"


async def check_calls(ctx: Ctx) -> str:
    for tool in ["review-kit__echo", "gem-tools__echo", "aion-helper__echo", "codex-kit__echo"]:
        result = await ctx.session.call_tool(tool, {"text": "hello there"})
        text = content_text(result.content)
        # codex-kit's PostToolUse hook (matcher `echo`) adds its context to every echo.
        expect(not result.is_error and text.startswith("hello there"), f"{tool}: {short(text)}")
    return "each format's child server answers"


async def check_hooks_block(ctx: Ctx) -> str:
    for tool, reason in [
        # greet takes no argument, but the guard reads every tool_input.
        ("review-kit__greet", "review-kit guard: forbidden word"),
        ("gem-tools__echo", "gem-tools: forbidden word"),
    ]:
        result = await ctx.session.call_tool(tool, {"text": "something forbidden"})
        text = content_text(result.content)
        expect(result.is_error is True and reason in text, f"{tool} not blocked: {short(text)}")
    return "the Claude Code and the Gemini CLI hook scripts block"


async def check_slash_command(ctx: Ctx) -> str:
    result = await ctx.session.get_prompt("review-kit__review", {"arguments": "7 low"})
    text = content_text([m.content for m in result.messages])
    expect(text == "Review PR #7 with priority low. Focus on correctness.", f"got {short(text)}")
    return None


async def check_skill_file(ctx: Ctx) -> str:
    uri = "skill://review-kit/summarize/SKILL.md"
    uris = {str(r.uri) for r in (await ctx.session.list_resources()).resources}
    expect(uri in uris, f"{uri} not listed")
    read = await ctx.session.read_resource(uri)
    text = getattr(read.contents[0], "text", "")
    expect("name: summarize" in text, f"read {short(text)}")
    return None


CHECKS = [
    ("initialize", check_initialize),
    ("tools", check_tools),
    ("prompts", check_prompts),
    ("calls", check_calls),
    ("hooks_block", check_hooks_block),
    ("slash_command", check_slash_command),
    ("skill_file", check_skill_file),
]


async def main_async(command: list[str], timeout: float) -> int:
    report = Report()

    async def run(server: Any) -> None:
        async with stdio_client(server) as (read, write), ClientSession(read, write) as session:
            ctx = Ctx(session)
            for name, fn in CHECKS:
                await run_check(report, ctx, name, fn, timeout)

    return await run_session(report, command, [n for n, _ in CHECKS], run)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_timeout_option(parser, 30.0)
    if "--" not in argv:
        print(__doc__, file=sys.stderr)
        return 2
    split = argv.index("--")
    args = parser.parse_args(argv[:split])
    return anyio.run(main_async, argv[split + 1 :], args.timeout)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
