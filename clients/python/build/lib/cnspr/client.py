"""The connection to the daemon, and one method per JSON-RPC method (docs/api.md)."""

import base64
import itertools
import json
import os
import socket

APP_DIR = "cnsprcy"
HOME_VARIABLE = "CNSPRCY_HOME"


def socket_path(home=None):
    """Where the daemon's control socket is, found as the CLI finds it: ``home`` (or
    ``$CNSPRCY_HOME``) holds it directly; else ``$XDG_RUNTIME_DIR/cnsprcy/``; else the
    data directory (``$XDG_DATA_HOME`` or ``~/.local/share``, then ``cnsprcy/``)."""
    home = home or os.environ.get(HOME_VARIABLE) or None
    if home:
        return os.path.join(home, "cnspr.sock")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, APP_DIR, "cnspr.sock")
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, APP_DIR, "cnspr.sock")


class Error(Exception):
    """A request the daemon understood and did not carry out, or one it did not
    understand. ``code`` is the JSON-RPC code, ``kind`` the error's kind (``data["kind"]``,
    ``None`` for JSON-RPC's own codes), ``data`` its other fields."""

    def __init__(self, code, message, data=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data or {}
        self.kind = self.data.get("kind")


def _payload(field, value):
    """``{field: text}`` for ``str``, ``{field_b64: base64}`` for bytes."""
    if value is None:
        return {}
    if isinstance(value, str):
        return {field: value}
    return {field + "_b64": base64.b64encode(bytes(value)).decode("ascii")}


def _bytes(holder, field):
    """The bytes of ``holder[field]`` (text) or ``holder[field_b64]``; ``None`` if neither."""
    if holder.get(field) is not None:
        return holder[field].encode("utf-8")
    if holder.get(field + "_b64") is not None:
        return base64.b64decode(holder[field + "_b64"])
    return None


def _with_value(entry):
    """An entry with its value as ``bytes`` under ``value`` (and every sibling's too)."""
    entry = dict(entry)
    entry["value"] = _bytes(entry, "value")
    entry.pop("value_b64", None)
    if entry.get("values") is not None:
        entry["values"] = [_with_value(v) for v in entry["values"]]
    return entry


class _Connection:
    """One connection: request lines out, answer and notification lines in."""

    def __init__(self, path, timeout=None):
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.socket.settimeout(timeout)
        try:
            self.socket.connect(path)
        except OSError as error:
            self.socket.close()
            raise Error(None, f"cnspr is not running (nothing answers at {path}): {error}") from error
        self.lines = self.socket.makefile("rb")

    def send(self, request):
        self.socket.sendall(json.dumps(request).encode("utf-8") + b"\n")

    def receive(self):
        line = self.lines.readline()
        if not line:
            raise Error(None, "the daemon closed the connection")
        return json.loads(line)

    def close(self):
        self.lines.close()
        self.socket.close()


def _result(answer):
    if "error" in answer:
        error = answer["error"]
        raise Error(error.get("code"), error.get("message", ""), error.get("data"))
    return answer.get("result")


class Query:
    """The answers to a query as they come: iterate for ``(peer, name, answer_bytes)``;
    once exhausted, ``result`` holds the summary (``answers``, ``unreachable``,
    ``failed``, ``no_answer``)."""

    def __init__(self, connection, request_id):
        self._connection = connection
        self._id = request_id
        self.result = None

    def __iter__(self):
        try:
            while True:
                line = self._connection.receive()
                if line.get("method") == "query.answer":
                    params = line["params"]
                    yield params["peer"], params.get("name"), _bytes(params, "message")
                elif line.get("id") == self._id:
                    self.result = _result(line)
                    return
        finally:
            self._connection.close()


class Subscription:
    """The notifications of a subscription, each as its parameters (a dict), for as
    long as the caller iterates; ``close()`` (or leaving a ``with`` block) ends it."""

    def __init__(self, connection, transform=None):
        self._connection = connection
        self._transform = transform or (lambda params: params)

    def __iter__(self):
        return self

    def __next__(self):
        return self._transform(self._connection.receive()["params"])

    def close(self):
        self._connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()


class _Namespace:
    def __init__(self, client):
        self._client = client


class _Store(_Namespace):
    """The replicated store: ``client.kv``."""

    def put(self, key, value):
        """Writes ``value`` (``str`` or bytes) to ``key``; returns once durable."""
        return self._client.call("kv.put", {"key": key, **_payload("value", value)})

    def get(self, key, all=False):
        """The value of ``key`` as bytes (:class:`Error` with kind ``no_key`` if missing
        or deleted). With ``all=True``, the whole entry: ``value``, ``conflict`` and
        ``values`` (every sibling: writer, time, value)."""
        entry = _with_value(self._client.call("kv.get", {"key": key, "all": all}))
        return entry if all else entry["value"]

    def delete(self, key):
        """Deletes ``key`` everywhere; returns once durable."""
        return self._client.call("kv.delete", {"key": key})

    def list(self, prefix=""):
        """The keys under ``prefix`` that are not deleted: ``{key: value_bytes}``, in key
        order."""
        keys = self._client.call("kv.list", {"prefix": prefix})["keys"]
        return {entry["key"]: _bytes(entry, "value") for entry in keys}

    def watch(self, prefix="", cursor=None):
        """A :class:`Subscription` to every change under ``prefix``: first each key changed
        after ``cursor`` (default: every key), then each change as it happens, as dicts
        with ``key``, ``value``
        (bytes, ``None`` once deleted), ``deleted``, ``conflict`` and ``cursor``. Resuming
        with the last cursor seen misses nothing and repeats nothing."""
        params = {"prefix": prefix}
        if cursor is not None:
            params["cursor"] = cursor
        return self._client.subscribe("kv.watch", params, _with_value)


class _Handlers(_Namespace):
    """The handler directory: ``client.handlers``."""

    def list(self):
        """Every handler, with what it takes, and the ignored executables."""
        return self._client.call("handlers.list")

    def test(self, tag, message=None, sender=None):
        """Runs now the handlers a message with ``tag`` would run (as if from ``sender``)
        and reports each run."""
        params = {"tag": tag, **_payload("message", message)}
        if sender is not None:
            params["from"] = sender
        return self._client.call("handlers.test", params)


class Client:
    """The daemon at ``socket`` (default: found as the CLI finds it, under ``home`` if
    given). Calls share one connection; ``monitor``, ``kv.watch`` and ``query`` each open
    their own. ``timeout`` (seconds) bounds every wait for the daemon (default: none;
    a ``send`` that waits for delivery may take long). Not for use from several threads
    at once."""

    def __init__(self, socket=None, home=None, timeout=None):
        self.path = socket or socket_path(home)
        self.timeout = timeout
        self._connection = None
        self._ids = itertools.count(1)
        self.kv = _Store(self)
        self.handlers = _Handlers(self)

    def close(self):
        """Closes the shared connection (the next call opens another)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.close()

    def call(self, method, params=None):
        """Any method by name: its result, or :class:`Error`."""
        if self._connection is None:
            self._connection = _Connection(self.path, self.timeout)
        request_id = next(self._ids)
        request = {"jsonrpc": "2.0", "id": request_id, "method": method}
        if params is not None:
            request["params"] = params
        try:
            self._connection.send(request)
            while True:
                answer = self._connection.receive()
                if answer.get("id") == request_id:
                    return _result(answer)
        except (OSError, ValueError, Error):
            # A connection that failed mid-call is not used again.
            self.close()
            raise

    def subscribe(self, method, params=None, transform=None):
        """A :class:`Subscription` (``monitor``, ``kv.watch``) on a connection of its
        own, subscribed before this returns: nothing that happens afterwards is missed."""
        connection = _Connection(self.path, self.timeout)
        try:
            request = {"jsonrpc": "2.0", "id": 1, "method": method}
            if params is not None:
                request["params"] = params
            connection.send(request)
            _result(connection.receive())
        except BaseException:
            connection.close()
            raise
        return Subscription(connection, transform)

    # ----- the daemon and the mesh -----

    def id(self):
        """This device's ID and name."""
        return self.call("id")

    def status(self):
        """The daemon: identity, uptime, peers by state, counters, store and disk."""
        return self.call("status")

    def members(self):
        """Every device of the roster, this one first."""
        return self.call("members")["members"]

    def ping(self, peer, timeout_ms=None):
        """One round trip to ``peer``; its result has ``rtt_ms``."""
        params = {"peer": peer}
        if timeout_ms is not None:
            params["timeout_ms"] = timeout_ms
        return self.call("ping", params)

    def interfaces(self):
        """Where the daemon listens and the addresses peers reach it at."""
        return self.call("interfaces")

    def invite(self, ttl_secs=None):
        """A single-use invite: its ``token``, addresses and expiry."""
        return self.call("invite", {} if ttl_secs is None else {"ttl_secs": ttl_secs})

    def join(self, token):
        """Pairs this device with the mesh that made ``token``."""
        return self.call("join", {"token": token})

    def remove(self, peer):
        """Revokes ``peer`` everywhere, for good."""
        return self.call("remove", {"peer": peer})

    def stop(self):
        """Stops the daemon cleanly."""
        return self.call("stop")

    def monitor(self):
        """What the daemon sees: a :class:`Subscription` of one dict per notice
        (``event`` says which)."""
        return self.subscribe("monitor")

    # ----- messages, events, queries -----

    def send(self, peer, tag, message=b"", wait=True):
        """A direct message to ``peer``; with ``wait`` returns once it was delivered."""
        return self.call("send", {"peer": peer, "tag": tag, "wait": wait, **_payload("message", message)})

    def event(self, tag, message=b""):
        """An event for every device of the mesh, this one included."""
        return self.call("event", {"tag": tag, **_payload("message", message)})

    def query(self, tag, message=b"", peers=None, timeout_ms=None):
        """Asks the handlers of ``peers`` (every peer if ``None``): a :class:`Query` to
        iterate for the answers as they come."""
        params = {"tag": tag, **_payload("message", message)}
        if peers is not None:
            params["peers"] = list(peers)
        if timeout_ms is not None:
            params["timeout_ms"] = timeout_ms
        connection = _Connection(self.path, self.timeout)
        request_id = next(self._ids)
        connection.send({"jsonrpc": "2.0", "id": request_id, "method": "query", "params": params})
        return Query(connection, request_id)
