"""Runs inside the server namespace: records which UDP datagrams the kernel delivered.

Usage: python receiver.py PORTS OUT.json — listens on each of the comma-separated
PORTS over IPv4 and IPv6; each datagram's first 8 bytes are a packet id. On SIGTERM
it writes the ids it received.
"""

import json
import selectors
import signal
import socket
import sys


def main() -> None:
    ports, out_path = [int(port) for port in sys.argv[1].split(",")], sys.argv[2]
    selector = selectors.DefaultSelector()
    for port in ports:
        v4 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        v4.bind(("0.0.0.0", port))
        v6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        v6.bind(("::", port))
        for sock in (v4, v6):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
    received: list[int] = []
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
    print("ready", flush=True)
    while not stop:
        for key, _ in selector.select(timeout=0.05):
            while True:
                try:
                    data = key.fileobj.recv(2048)  # type: ignore[union-attr]
                except BlockingIOError:
                    break
                received.append(int.from_bytes(data[:8], "big"))
    with open(out_path, "w") as out:
        json.dump(received, out)


if __name__ == "__main__":
    main()
