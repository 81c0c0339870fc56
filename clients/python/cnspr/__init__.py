"""A client for the cnspr daemon: every control-socket method as a Python call.

    import cnspr
    client = cnspr.Client()                  # the socket the CLI would use
    client.kv.put("notes/today", "buy milk")
    for change in client.kv.watch("notes/"):
        print(change["key"], change["value"])

Standard library only. Values and messages go out as given (``str`` as text, ``bytes``
exactly) and come back as ``bytes``. A failure the daemon reports is a :class:`Error`
carrying the JSON-RPC code and the error's ``data`` (docs/api.md lists the codes).
"""

from .client import Client, Error, Query, Subscription, socket_path

__all__ = ["Client", "Error", "Query", "Subscription", "socket_path"]
