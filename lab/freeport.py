#!/usr/bin/env python3
"""Print N distinct loopback ports that are free for both UDP and TCP right now.

Usage: freeport.py [N] [ADDR]   (default N=1, ADDR=127.0.0.1)

Each port comes from the kernel (bind to port 0 over TCP), and is then checked by
binding the same port over UDP. DNS servers need both, so a port taken on either
protocol is skipped. The sockets are closed before printing, so a port can still be
taken by someone else before our server binds it: callers must check that their
server actually came up (lab.sh waits for an answer on every port it starts).
"""

import socket
import sys


def free_port(addr: str, taken: set[int]) -> int:
    for _ in range(200):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            tcp.bind((addr, 0))
            port = tcp.getsockname()[1]
            if port in taken:
                continue
            try:
                udp.bind((addr, port))
            except OSError:
                continue
            return port
        finally:
            tcp.close()
            udp.close()
    raise SystemExit(f"freeport: no free TCP+UDP port on {addr} after 200 tries")


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    addr = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1"
    if not addr.startswith("127.") and addr != "::1":
        raise SystemExit(f"freeport: {addr} is not a loopback address")
    taken: set[int] = set()
    ports = []
    for _ in range(count):
        port = free_port(addr, taken)
        taken.add(port)
        ports.append(port)
    print(" ".join(str(p) for p in ports))

if __name__ == "__main__":
    main()
