"""The Python client against real daemons: two devices on loopback, paired, each driven
through ``cnspr.Client`` exactly as an application would."""

import os
import shutil
import subprocess
import tempfile
import time

import pytest

import cnspr

BINARY = os.environ.get(
    "CNSPR_BINARY",
    os.path.join(os.path.dirname(__file__), "..", "..", "..", "target", "debug", "cnspr"),
)
DEADLINE = 40.0


def wait_until(what, condition):
    """Waits for ``condition`` with a deadline (no sleeping and hoping)."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < DEADLINE, f"timed out waiting until {what}"
        time.sleep(0.05)


class Device:
    def __init__(self, root, name):
        self.home = os.path.join(root, name)
        subprocess.run([BINARY, "--home", self.home, "init", "--name", name], check=True, capture_output=True)
        self.log = open(os.path.join(root, f"{name}.log"), "wb")
        self.process = subprocess.Popen(
            [BINARY, "--home", self.home, "serve", "--listen", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        self.client = cnspr.Client(home=self.home, timeout=DEADLINE)
        wait_until(f"{name} answers", self.answers)

    def answers(self):
        try:
            self.client.status()
            return True
        except cnspr.Error:
            return False

    def handler(self, path, script):
        full = os.path.join(self.home, "handlers", path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as file:
            file.write("#!/bin/sh\n" + script + "\n")
        os.chmod(full, 0o755)

    def stop(self):
        self.client.close()
        self.process.kill()
        self.process.wait()
        self.log.close()


@pytest.fixture(scope="module")
def mesh():
    root = tempfile.mkdtemp(prefix="cnspr-py-")
    desk = Device(root, "desk")
    laptop = Device(root, "laptop")
    try:
        token = desk.client.invite()["token"]
        laptop.client.join(token)

        def both_active():
            return all(
                any(m["name"] == other and m["state"] == "active" for m in device.client.members())
                for device, other in ((desk, "laptop"), (laptop, "desk"))
            )

        wait_until("both devices are active", both_active)
        yield desk, laptop
    finally:
        desk.stop()
        laptop.stop()
        shutil.rmtree(root, ignore_errors=True)


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
    desk, laptop = mesh
    status = desk.client.status()
    assert status["name"] == "desk" and status["devices"] == 2
    assert status["disk"]["state"] == "ok"
    members = desk.client.members()
    assert members[0]["self"] and members[0]["name"] == "desk"
    assert desk.client.ping("laptop")["rtt_ms"] > 0
    assert laptop.client.id()["name"] == "laptop"


def test_the_store_takes_text_and_bytes_and_replicates(mesh):
    desk, laptop = mesh
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
    desk, _ = mesh
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
    desk, laptop = mesh
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
    desk, laptop = mesh
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
    query = desk.client.query("py.ask", peers=["laptop"], timeout_ms=10000)
    answers = list(query)
    assert [(name, answer) for _, name, answer in answers] == [("laptop", b"pong from laptop")]
    assert query.result["answers"] == 1 and query.result["unreachable"] == []
    listed = laptop.client.handlers.list()["handlers"]
    assert {h["handler"] for h in listed} >= {"py/note.sh", "py/ask.sh"}
