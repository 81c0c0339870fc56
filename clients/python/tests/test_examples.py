"""The examples, as people would use them, on two real daemons: the handlers of
examples/handlers installed on both devices (with stand-ins for notify-send, xclip and
paplay on their PATH), and the to-do app of examples/apps driven as a command."""

import os
import shutil
import subprocess
import sys

import pytest

from daemons import DEADLINE, wait_until

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples")
TODO = os.path.join(EXAMPLES, "apps", "todo.py")


@pytest.fixture(scope="module")
def handlers(mesh):
    for device in (mesh.desk, mesh.laptop):
        shutil.copytree(
            os.path.join(EXAMPLES, "handlers"),
            os.path.join(device.home, "handlers"),
            dirs_exist_ok=True,
        )
    return mesh


def lines_with(mesh, *words):
    return [line for line in mesh.desktop() if all(word in line for word in words)]


def test_a_notification_shows_on_every_device_with_its_sender(handlers):
    handlers.desk.client.event("util.notify", "the build is done")
    for device in ("desk", "laptop"):
        wait_until(f"{device} shows it", lambda: lines_with(handlers, device + " notify-send", "from desk", "the build is done"))


def test_the_clipboard_is_shared_and_the_senders_is_left_alone(handlers):
    handlers.laptop.client.event("util.clipboard.set", "copied on the laptop")
    wait_until("the desk's clipboard has it", lambda: lines_with(handlers, "desk xclip", "copied on the laptop"))
    assert not lines_with(handlers, "laptop xclip", "copied on the laptop")


def test_ring_my_phone(handlers):
    assert handlers.desk.client.send("laptop", "util.ring")["delivered"]
    wait_until("the laptop rings", lambda: lines_with(handlers, "laptop notify-send", "--urgency=critical", "desk is looking"))


def test_maintenance_answers_from_every_device(handlers):
    # A query runs for its whole timeout: a device may answer once per handler.
    answers = list(handlers.desk.client.query("util.maintain", timeout_ms=5000))
    assert [name for _, name, _ in answers] == ["laptop"]
    assert b"disk: " in answers[0][2] and b"up: " in answers[0][2]


def todo(device, *args):
    return subprocess.run(
        [sys.executable, TODO, "--home", device.home, *args],
        capture_output=True, text=True, check=True, timeout=DEADLINE,
    ).stdout


def test_the_todo_list_is_shared_and_watched(mesh):
    watcher = subprocess.Popen(
        [sys.executable, TODO, "--home", mesh.laptop.home, "watch"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        item = todo(mesh.desk, "add", "buy milk").strip()
        wait_until("the laptop lists it", lambda: f"[ ] {item}  buy milk" in todo(mesh.laptop, "list"))
        todo(mesh.laptop, "done", item)
        wait_until("the desk sees it done", lambda: f"[x] {item}  buy milk" in todo(mesh.desk, "list"))
        # The laptop's watch printed the list again as it changed.
        seen = []
        while f"[x] {item}  buy milk" not in seen:
            line = watcher.stdout.readline()
            assert line, "the watch ended"
            seen.append(line.rstrip("\n"))
        assert f"[ ] {item}  buy milk" in seen, seen
        todo(mesh.desk, "remove", item)
        wait_until("it is gone everywhere", lambda: item not in todo(mesh.laptop, "list"))
    finally:
        watcher.kill()
        watcher.wait()
