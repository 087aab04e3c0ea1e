"""What the interop scripts (sdk_client.py, children_client.py) share: the check
runner, its report on stdout, and the session plumbing around the official MCP
Python SDK client.

The scripts are run as ``python tests/interop/<script>.py ...``, which puts this
folder on sys.path, so they import this module as ``harness``.

A check is ``async (ctx) -> str | None``: it returns an optional note for its
``ok`` line, raises CheckSkipped to be skipped, or raises anything else to fail
(CheckFailed for a plain reason).  Every check runs under its own timeout.

Written against mcp==2.3.0 (see setup.sh).  Only the SDK, anyio and the standard
library are used.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
import mcp
from mcp import StdioServerParameters, types
from mcp.shared.message import SessionMessage

# mcp 2.x spells it MCPError; 1.x spelled it McpError.
MCPError: type[Exception] = getattr(mcp, "MCPError", None) or getattr(mcp, "McpError")

# Environment: the default of --timeout, and (if set) print the traceback of a
# check that fails with an unexpected exception to stderr.
TIMEOUT_ENV = "CAPMUX_INTEROP_TIMEOUT"
DEBUG_ENV = "CAPMUX_INTEROP_DEBUG"

# Longest failure reason printed (longer ones are cut).
MAX_REASON = 1000

CheckFn = Callable[[Any], Awaitable[str | None]]


# --------------------------------------------------------------------------
# Checks and values.
# --------------------------------------------------------------------------
class CheckFailed(Exception):
    """A check's expectation did not hold; the message is the reason."""


class CheckSkipped(Exception):
    """A check does not apply to this run (or lacks inputs); the message says why."""


def expect(cond: bool, reason: str) -> None:
    if not cond:
        raise CheckFailed(reason)


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short(value: Any, limit: int = 300) -> str:
    """`value`'s repr, cut to `limit` characters (strings come out quoted)."""
    return clip(repr(value), limit)


def short_text(value: Any, limit: int = 300) -> str:
    """Like short, but a string comes out as it is, unquoted."""
    return clip(value if isinstance(value, str) else repr(value), limit)


def describe_error(exc: BaseException, shorten: Callable[[Any, int], str] = short) -> str:
    if isinstance(exc, MCPError):
        err = exc.error  # type: ignore[attr-defined]
        data = "" if err.data is None else f", data={shorten(err.data, 200)}"
        return f"MCPError(code={err.code}, message={err.message!r}{data})"
    return f"{type(exc).__name__}: {exc}"


def flatten(exc: BaseException) -> list[BaseException]:
    """The leaf exceptions of a (nested) exception group; [exc] for any other."""
    if isinstance(exc, BaseExceptionGroup):
        out: list[BaseException] = []
        for sub in exc.exceptions:
            out.extend(flatten(sub))
        return out
    return [exc]


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


# --------------------------------------------------------------------------
# Report and runner.
# --------------------------------------------------------------------------
class Report:
    """The lines on stdout: one per check, ``OK_TAG NAME[ (NOTE)]``, ``FAIL NAME: REASON``
    or ``skip NAME: REASON``, then ``N passed, M failed`` (printed by run_session).

    ok_tag opens a passed check's line ("ok", or "ok  " to line up with FAIL and skip);
    shorten (short or short_text) cuts values in the descriptions of errors."""

    def __init__(self, ok_tag: str = "ok", shorten: Callable[[Any, int], str] = short) -> None:
        self.ok_tag = ok_tag
        self.shorten = shorten
        self.passed = 0
        self.failed = 0
        self.done: set[str] = set()

    def ok(self, name: str, note: str | None = None) -> None:
        self.done.add(name)
        self.passed += 1
        print(f"{self.ok_tag} {name}" + (f" ({note})" if note else ""), flush=True)

    def skip(self, name: str, reason: str) -> None:
        self.done.add(name)
        print(f"skip {name}: {reason}", flush=True)

    def fail(self, name: str, reason: str) -> None:
        self.done.add(name)
        self.failed += 1
        reason = reason.replace("\r", "\\r").replace("\n", "\\n")  # keep one line per check
        if len(reason) > MAX_REASON:
            reason = reason[: MAX_REASON - 3] + "..."
        print(f"FAIL {name}: {reason}", flush=True)

    def describe(self, exc: BaseException) -> str:
        return describe_error(exc, self.shorten)


async def run_check(report: Report, ctx: Any, name: str, fn: CheckFn, timeout: float) -> None:
    """Run one check on `ctx` (which has `init`, set by the "initialize" check) and report it.
    Every check but "initialize" fails unrun while initialize has not succeeded."""
    if name != "initialize" and ctx.init is None:
        report.fail(name, "not run: initialize failed")
        return
    try:
        with anyio.fail_after(timeout):
            note = await fn(ctx)
    except CheckSkipped as exc:
        report.skip(name, str(exc))
    except CheckFailed as exc:
        report.fail(name, str(exc))
    except TimeoutError:
        report.fail(name, f"timed out after {timeout:g}s")
    except Exception as exc:  # noqa: BLE001 - any error fails just this check
        if os.environ.get(DEBUG_ENV):
            traceback.print_exc(file=sys.stderr)
        report.fail(name, report.describe(exc))
    else:
        report.ok(name, note)


async def run_session(
    report: Report,
    command: list[str],
    names: Iterable[str],
    run: Callable[[StdioServerParameters], Awaitable[None]],
) -> int:
    """Spawn `command` (passing this process's environment on) and `run` the checks
    called `names` against it.  If the session breaks, every check not yet reported
    fails; if it breaks only in the teardown, after all checks, a warning goes to
    stderr instead.  Prints the final count; returns the exit code (0: no failure)."""
    all_names = list(names)
    server = StdioServerParameters(command=command[0], args=command[1:], env=dict(os.environ))
    try:
        await run(server)
    except BaseException as exc:  # noqa: BLE001 - includes ExceptionGroup from the task groups
        if isinstance(exc, KeyboardInterrupt):
            raise
        errors = [e for e in flatten(exc) if not isinstance(e, anyio.get_cancelled_exc_class())] or [exc]
        reason = "; ".join(report.describe(e) for e in errors)
        if report.done >= set(all_names):
            # Every check ran; only the teardown broke.  Say so, but do not count it.
            print(f"warning: error while shutting the server down: {reason}", file=sys.stderr, flush=True)
        else:
            for name in all_names:
                if name not in report.done:
                    report.fail(name, f"not run: session aborted: {reason}")
    print(f"{report.passed} passed, {report.failed} failed", flush=True)
    return 0 if report.failed == 0 else 1


async def tap_messages(source: Any, sink: Any, record: Callable[[dict[str, Any]], Any]) -> None:
    """Forward items from `source` to `sink`, passing each SessionMessage to `record`
    first, as its JSON value.  Ends when `source` ends or `sink` is closed."""
    async with sink:
        async for item in source:
            if isinstance(item, SessionMessage):
                record(item.message.model_dump(by_alias=True, mode="json", exclude_none=True))
            try:
                await sink.send(item)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                return


# --------------------------------------------------------------------------
# Arguments.
# --------------------------------------------------------------------------
def add_timeout_option(parser: argparse.ArgumentParser, default: float, help: str | None = None) -> None:
    """--timeout SECONDS allowed per check; default from $CAPMUX_INTEROP_TIMEOUT, else `default`."""
    parser.add_argument(
        "--timeout",
        type=float,
        default=float(os.environ.get(TIMEOUT_ENV, default)),
        help=help,
    )
