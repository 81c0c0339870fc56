"""The Python client against real daemons: two devices on loopback, paired, each driven
through ``cnspr.Client`` exactly as an application would."""

import os

import pytest

import cnspr
from daemons import wait_until

def test_the_socket_is_found_as_the_cli_finds_it(monkeypatch):
    monkeypatch.setenv("CNSPRCY_HOME", "/srv/device")
    assert cnspr.socket_path() == "/srv/device/cnspr.sock"
    assert cnspr.socket_path("/elsewhere") == "/elsewhere/cnspr.sock"
    monkeypatch.delenv("CNSPRCY_HOME")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert cnspr.socket_path() == "/run/user/1000/cnsprcy/cnspr.sock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", "/home/u/.data")
    assert cnspr.socket_path() == "/home/u/.data/cnsprcy/cnspr.sock"


def test_status_members_and_ping(mesh):
    desk, laptop = mesh.desk, mesh.laptop
    status = desk.client.status()
    assert status["name"] == "desk" and status["devices"] == 2
    assert status["disk"]["state"] == "ok"
    members = desk.client.members()
    assert members[0]["self"] and members[0]["name"] == "desk"
    assert desk.client.ping("laptop")["rtt_ms"] > 0
    assert laptop.client.id()["name"] == "laptop"


def test_the_store_takes_text_and_bytes_and_replicates(mesh):
    desk, laptop = mesh.desk, mesh.laptop
    desk.client.kv.put("py/text", "buy milk")
    blob = bytes(range(256)) * 4
    desk.client.kv.put("py/blob", blob)
    wait_until("the laptop has both", lambda: set(laptop.client.kv.list("py/")) >= {"py/text", "py/blob"})
    assert laptop.client.kv.get("py/text") == b"buy milk"
    assert laptop.client.kv.get("py/blob") == blob
    entry = laptop.client.kv.get("py/text", all=True)
    assert not entry["conflict"] and entry["values"][0]["value"] == b"buy milk"
    laptop.client.kv.delete("py/text")
    wait_until("the delete reached the desk", lambda: "py/text" not in desk.client.kv.list("py/"))
    with pytest.raises(cnspr.Error) as missing:
        desk.client.kv.get("py/text")
    assert missing.value.code == 30 and missing.value.kind == "no_key"


def test_errors_carry_their_code_and_data(mesh):
    desk = mesh.desk
    with pytest.raises(cnspr.Error) as unknown:
        desk.client.send("phone", "util.notify", "hello")
    assert unknown.value.code == 10 and unknown.value.data["given"] == "phone"
    with pytest.raises(cnspr.Error) as reserved:
        desk.client.kv.put("_roster/x", "no")
    assert reserved.value.kind == "key_reserved"
    with pytest.raises(cnspr.Error) as no_method:
        desk.client.call("fly")
    assert no_method.value.code == -32601 and no_method.value.kind is None
    # The shared connection still works after an error.
    assert desk.client.status()["name"] == "desk"


def test_watch_streams_changes_and_resumes_from_a_cursor(mesh):
    desk, laptop = mesh.desk, mesh.laptop
    watch = desk.client.kv.watch("notes/")
    laptop.client.kv.put("notes/a", "first")
    change = next(watch)
    assert change["key"] == "notes/a" and change["value"] == b"first"
    cursor = change["cursor"]
    watch.close()
    desk.client.kv.put("notes/b", b"\x00\x01")
    resumed = desk.client.kv.watch("notes/", cursor=cursor)
    change = next(resumed)
    assert change["key"] == "notes/b" and change["value"] == b"\x00\x01" and change["cursor"] > cursor
    resumed.close()


def test_messages_events_queries_and_monitor(mesh):
    desk, laptop = mesh.desk, mesh.laptop
    received = os.path.join(laptop.home, "received")
    laptop.handler("py/note.sh", f"cat >> {received}")
    laptop.handler("py/ask.sh", "printf 'pong from %s' \"$CNSPRCY_SELF_NAME\"")
    notices = laptop.client.monitor()
    sent = desk.client.send("laptop", "py.note", "direct\n")
    assert sent["delivered"]
    assert desk.client.event("py.note", b"to all\n")["seq"] >= 1
    wait_until("both reached the laptop's handler", lambda: os.path.exists(received)
               and sorted(open(received).read().splitlines()) == ["direct", "to all"])
    kinds = set()
    while not {"message", "event"} <= kinds:
        kinds.add(next(notices)["event"])
    notices.close()
    query = desk.client.query("py.ask", peers=["laptop"], timeout_ms=3000)
    answers = list(query)
    assert [(name, answer) for _, name, answer in answers] == [("laptop", b"pong from laptop")]
    assert query.result["answers"] == 1 and query.result["unreachable"] == []
    listed = laptop.client.handlers.list()["handlers"]
    assert {h["handler"] for h in listed} >= {"py/note.sh", "py/ask.sh"}
