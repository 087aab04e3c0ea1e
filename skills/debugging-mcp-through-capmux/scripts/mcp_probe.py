#!/usr/bin/env python3
"""Talk to an MCP server over stdio the way a client does, and print what it sees.

    python3 mcp_probe.py [--client NAME] [ACTION ...] -- COMMAND [ARG ...]

COMMAND is the server, e.g. `capmux serve` or `capmux --package ./pkg serve`.
--client sets clientInfo.name (capmux picks provider-only system-prompt parts
from it: a name containing claude, gemini or codex). Actions, in any number:

    --list                 instructions, tools, prompts and resources (the default)
    --call NAME JSON       tools/call, prints the whole result
    --prompt NAME JSON     prompts/get (JSON: the arguments as strings)
    --read URI             resources/read, e.g. capmux://system-prompt

The server's stderr (capmux's log) passes through to this script's stderr.
Standard library only; exit 1 when a request gets a JSON-RPC error.
"""
import argparse
import json
import signal
import subprocess
import sys

PROTOCOL = "2025-06-18"


class Session:
    def __init__(self, command, client):
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, encoding="utf-8")
        self.next_id = 0
        self.init = self.request("initialize", {
            "protocolVersion": PROTOCOL, "capabilities": {},
            "clientInfo": {"name": client, "version": "0"}})
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, message):
        self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def request(self, method, params=None):
        self.next_id += 1
        message = {"jsonrpc": "2.0", "id": self.next_id, "method": method}
        if params is not None:
            message["params"] = params
        self.send(message)
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise SystemExit(f"the server closed stdout during {method} (see its stderr above)")
            try:
                reply = json.loads(line)
            except ValueError:
                raise SystemExit(f"the server wrote a line that is not JSON-RPC: {line[:200]!r}")
            if reply.get("id") != self.next_id:
                continue  # a notification or a request from the server: not ours
            if "error" in reply:
                raise RpcError(f"{method}: error {reply['error'].get('code')}: {reply['error'].get('message')}")
            return reply["result"]

    def all_items(self, method, key):
        items, cursor = [], None
        while True:
            result = self.request(method, {"cursor": cursor} if cursor else {})
            items += result.get(key, [])
            cursor = result.get("nextCursor")
            if not cursor:
                return items

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


class RpcError(Exception):
    pass


def show_list(session):
    info = session.init
    print(f"server: {info.get('serverInfo', {}).get('name')} {info.get('serverInfo', {}).get('version')}"
          f", protocol {info.get('protocolVersion')}, capabilities {sorted(info.get('capabilities', {}))}")
    instructions = info.get("instructions") or ""
    print(f"\n== instructions ({len(instructions.encode('utf-8'))} bytes)\n{instructions}")
    tools = session.all_items("tools/list", "tools")
    print(f"\n== tools ({len(tools)})")
    for tool in tools:
        first = (tool.get("description") or "").splitlines()[:1]
        print(f"{tool['name']:<45} {len(tool['name']):>2}  {first[0] if first else ''}")
    prompts = session.all_items("prompts/list", "prompts")
    print(f"\n== prompts ({len(prompts)})")
    for prompt in prompts:
        args = ", ".join(a["name"] + ("" if a.get("required") else "?") for a in prompt.get("arguments") or [])
        print(f"{prompt['name']}({args})")
    resources = session.all_items("resources/list", "resources")
    print(f"\n== resources ({len(resources)})")
    for resource in resources:
        print(f"{resource['uri']}  {resource.get('mimeType', '')}")


def show_call(session, name, args):
    print(f"\n== tools/call {name}")
    result = session.request("tools/call", {"name": name, "arguments": json.loads(args)})
    print(json.dumps(result, indent=2, ensure_ascii=False))


def show_prompt(session, name, args):
    print(f"\n== prompts/get {name}")
    result = session.request("prompts/get", {"name": name, "arguments": json.loads(args)})
    for message in result.get("messages", []):
        content = message["content"]
        print(f"[{message['role']}]\n{content.get('text', content)}")


def show_read(session, uri):
    print(f"\n== resources/read {uri}")
    for content in session.request("resources/read", {"uri": uri}).get("contents", []):
        print(content.get("text", content))


def main():
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # quiet exit when piped into head
    argv = sys.argv[1:]
    if "--" not in argv:
        sys.exit(__doc__)
    split = argv.index("--")
    own, command = argv[:split], argv[split + 1:]
    cli = argparse.ArgumentParser()
    cli.add_argument("--client", default="mcp-probe")
    cli.add_argument("--list", action="store_true")
    cli.add_argument("--call", nargs=2, action="append", metavar=("NAME", "JSON"), default=[])
    cli.add_argument("--prompt", nargs=2, action="append", metavar=("NAME", "JSON"), default=[])
    cli.add_argument("--read", action="append", metavar="URI", default=[])
    opts = cli.parse_args(own)
    if not command:
        sys.exit("give the server command after --")

    session = Session(command, opts.client)
    actions = []
    if opts.list or not (opts.call or opts.prompt or opts.read):
        actions.append(lambda: show_list(session))
    for name, args in opts.call:
        actions.append(lambda name=name, args=args: show_call(session, name, args))
    for name, args in opts.prompt:
        actions.append(lambda name=name, args=args: show_prompt(session, name, args))
    for uri in opts.read:
        actions.append(lambda uri=uri: show_read(session, uri))
    failed = False
    try:
        for action in actions:
            try:
                action()
            except RpcError as err:
                print(err)
                failed = True
    finally:
        session.close()
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
