#!/usr/bin/env python3
"""A home router's NAT-PMP server (RFC 6886) for the network lab, run inside the router's
namespace: it answers on UDP 5351 of the LAN address and installs each mapping as a real
nftables `dnat` from the WAN interface (Debian's miniupnpd refuses the documentation
addresses the lab's internet uses).

    nat_pmp_gateway.py LAN_ADDRESS WAN_INTERFACE WAN_ADDRESS MAX_LIFETIME

Speaks NAT-PMP only, and says nothing to a PCP request (version 2), as many routers do:
a client must fall back by itself. UDP mappings only; lifetimes are granted up to
MAX_LIFETIME seconds (a short one makes the client renew within a test) and not expired.
Each request is printed on a line after `ready`, for the test's log.
"""

import socket
import struct
import subprocess
import sys
import time

PORT = 5351
UNSUPPORTED_OPCODE = 5


def nft(script):
    subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True)


def install(wan_interface, mappings):
    """Makes the router's dnat rules exactly `mappings`: {(client, port): external}."""
    rules = "".join(
        f'add rule ip portmap prerouting iifname "{wan_interface}" udp dport {external} '
        f"dnat to {client}:{port}\n"
        for (client, port), external in mappings.items()
    )
    nft("flush chain ip portmap prerouting\n" + rules)


def main():
    lan_address, wan_interface, wan_address = sys.argv[1:4]
    max_lifetime = int(sys.argv[4])
    nft(
        "table ip portmap {\n"
        "    chain prerouting { type nat hook prerouting priority -100; }\n"
        "}\n"
        "add rule inet filter forward ct status dnat accept\n"
    )
    started = time.monotonic()
    mappings = {}
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind((lan_address, PORT))
    print("ready", flush=True)
    while True:
        request, (client, client_port) = server.recvfrom(1100)
        epoch = int(time.monotonic() - started)
        print(f"{client}:{client_port} {request.hex()}", flush=True)
        if len(request) < 2:
            continue
        version, opcode = request[0], request[1]
        if version != 0 or opcode >= 128:
            continue  # PCP, or an answer: not for a NAT-PMP server
        elif opcode == 0 and len(request) == 2:
            address = socket.inet_aton(wan_address)
            answer = struct.pack("!BBHI4s", 0, 0x80, 0, epoch, address)
        elif opcode == 1 and len(request) == 12:
            _, _, _, port, suggested, lifetime = struct.unpack("!BBHHHI", request)
            if lifetime == 0:
                # A delete: this client's mapping of `port`, or all of its mappings (port 0).
                for key in [k for k in mappings if k[0] == client and port in (0, k[1])]:
                    del mappings[key]
                external = 0
            else:
                external = mappings.get((client, port)) or suggested or port
                mappings[(client, port)] = external
                lifetime = min(lifetime, max_lifetime)
            install(wan_interface, mappings)
            answer = struct.pack("!BBHIHHI", 0, 0x81, 0, epoch, port, external, lifetime)
        else:
            # The request back, its opcode marked an answer, result "unsupported opcode".
            answer = bytes([0, opcode | 0x80]) + struct.pack("!H", UNSUPPORTED_OPCODE) + request[4:]
        server.sendto(answer, (client, client_port))


if __name__ == "__main__":
    main()
