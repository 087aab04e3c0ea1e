#!/usr/bin/env python3
"""capmux command tools `save_ticket` and `list_tickets`, one script.

package.json runs it as `tickets.py save|list --project ${settings.project}`:
capmux expands ${settings.project} (the default applies when the user set none).
Tickets are kept in $CAPMUX_PLUGIN_DATA/tickets.jsonl; capmux names that folder
but does not create it.
"""
import argparse
import datetime
import json
import os
import sys


def reply(result):
    print(json.dumps(result))


def load(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def main():
    cli = argparse.ArgumentParser()
    cli.add_argument("action", choices=["save", "list"])
    cli.add_argument("--project", required=True)
    opts = cli.parse_args()
    args = json.load(sys.stdin)
    settings = json.loads(os.environ.get("CAPMUX_SETTINGS", "{}"))

    data_dir = os.environ["CAPMUX_PLUGIN_DATA"]
    os.makedirs(data_dir, exist_ok=True)
    path = os.path.join(data_dir, "tickets.jsonl")
    tickets = load(path)

    if opts.action == "list":
        shown = [t for t in reversed(tickets)
                 if "severity" not in args or t["severity"] == args["severity"]]
        lines = [f"{t['id']} [{t['severity']}] {t['title']}" for t in shown]
        return reply({"success": True, "data": {"tickets": shown},
                      "display": {"type": "text", "content": "\n".join(lines) or "no tickets"}})

    if len(tickets) >= int(settings.get("max_tickets", 500)):
        return reply({"success": False,
                      "error": f"the ticket log is full ({len(tickets)} tickets); raise max_tickets"})
    ticket = {
        "id": f"{opts.project}-{len(tickets) + 1}",
        "title": args["title"],
        "body": args.get("body", ""),
        "severity": args["severity"],
        "created": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(ticket) + "\n")
    reply({"success": True, "data": ticket,
           "display": {"type": "text", "content": f"saved {ticket['id']}: {ticket['title']}"}})


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:
        reply({"success": False, "error": f"tickets failed: {exc}"})
