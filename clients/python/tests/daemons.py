"""Real daemons for the tests: devices on loopback under a scratch root, each with its own
home, started with stand-ins for desktop tools (notify-send, xclip, wl-copy, paplay) first
on their PATH so that handlers can be checked without a desktop."""

import os
import shutil
import subprocess
import tempfile
import time


import cnspr

STAND_INS = ("notify-send", "xclip", "wl-copy", "paplay")


def stand_ins(root):
    """A directory of stand-ins, each appending one line to ROOT/desktop.log: the device
    it ran on, its name, its arguments, and what it read."""
    directory = os.path.join(root, "bin")
    os.makedirs(directory)
    log = os.path.join(root, "desktop.log")
    for tool in STAND_INS:
        path = os.path.join(directory, tool)
        with open(path, "w") as file:
            file.write(
                "#!/bin/sh\n"
                f'input=""; [ "{tool}" = xclip ] || [ "{tool}" = wl-copy ] && input=$(cat)\n'
                f'echo "$CNSPRCY_SELF_NAME {tool} $* $input" >> {log}\n'
            )
        os.chmod(path, 0o755)
    return directory, log


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
    def __init__(self, root, name, path):
        self.home = os.path.join(root, name)
        subprocess.run([BINARY, "--home", self.home, "init", "--name", name], check=True, capture_output=True)
        self.log = open(os.path.join(root, f"{name}.log"), "wb")
        self.process = subprocess.Popen(
            [BINARY, "--home", self.home, "serve", "--listen", "127.0.0.1:0"],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            env={**os.environ, "PATH": path + os.pathsep + os.environ.get("PATH", "")},
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


class Mesh:
    """Two paired devices, and the log their desktop stand-ins write."""

    def __init__(self, desk, laptop, desktop_log):
        self.desk = desk
        self.laptop = laptop
        self.desktop_log = desktop_log

    def desktop(self):
        """The stand-ins' lines so far."""
        if not os.path.exists(self.desktop_log):
            return []
        with open(self.desktop_log) as file:
            return file.read().splitlines()


def started_mesh():
    """A generator for a fixture: the mesh, then its teardown."""
    root = tempfile.mkdtemp(prefix="cnspr-py-")
    path, desktop_log = stand_ins(root)
    desk = Device(root, "desk", path)
    laptop = Device(root, "laptop", path)
    try:
        token = desk.client.invite()["token"]
        laptop.client.join(token)

        def both_active():
            return all(
                any(m["name"] == other and m["state"] == "active" for m in device.client.members())
                for device, other in ((desk, "laptop"), (laptop, "desk"))
            )

        wait_until("both devices are active", both_active)
        yield Mesh(desk, laptop, desktop_log)
    finally:
        desk.stop()
        laptop.stop()
        shutil.rmtree(root, ignore_errors=True)


