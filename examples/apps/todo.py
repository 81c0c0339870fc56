#!/usr/bin/env python3
"""A shared to-do list on every device, offline first: items live in cnspr's replicated
store (one key per item under ``todo/``), so adding one on the laptop on a train shows up
on the desk when they meet again, and ``watch`` keeps every device's view current.

    todo.py add "buy milk"      # prints the item's id
    todo.py done ID             # ticks it off (on any device)
    todo.py remove ID
    todo.py list
    todo.py watch               # the list, printed again on every change, anywhere

Needs the Python client: ``pip install ./clients/python``. ``--home DIR`` picks a device
as ``cnspr --home`` does.
"""

import argparse
import json
import sys
import time

import cnspr

PREFIX = "todo/"


def items(client):
    """Every item, oldest first: (id, text, done)."""
    listed = []
    for key, value in client.kv.list(PREFIX).items():
        item = json.loads(value)
        listed.append((key[len(PREFIX):], item["text"], item["done"]))
    return sorted(listed)


def show(client, out=sys.stdout):
    for item_id, text, done in items(client):
        print(f"[{'x' if done else ' '}] {item_id}  {text}", file=out)
    out.flush()


def add(client, text):
    # Time first, so ids sort by age; the device's short id keeps two devices apart.
    item_id = f"{time.time_ns():020d}-{client.id()['id'][:7]}"
    client.kv.put(PREFIX + item_id, json.dumps({"text": text, "done": False}))
    return item_id


def done(client, item_id):
    item = json.loads(client.kv.get(PREFIX + item_id))
    item["done"] = True
    client.kv.put(PREFIX + item_id, json.dumps(item))


def watch(client, out=sys.stdout):
    """Prints the list now and again after every change (a burst of changes once)."""
    with client.kv.watch(PREFIX) as changes:
        show(client, out)
        for _ in changes:
            print("--", file=out)
            show(client, out)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--home", help="the device's home, as cnspr --home")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("add").add_argument("text")
    commands.add_parser("done").add_argument("id")
    commands.add_parser("remove").add_argument("id")
    commands.add_parser("list")
    commands.add_parser("watch")
    args = parser.parse_args()
    client = cnspr.Client(home=args.home)
    try:
        if args.command == "add":
            print(add(client, args.text))
        elif args.command == "done":
            done(client, args.id)
        elif args.command == "remove":
            client.kv.delete(PREFIX + args.id)
        elif args.command == "list":
            show(client)
        else:
            watch(client)
    except cnspr.Error as error:
        print(f"todo: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
