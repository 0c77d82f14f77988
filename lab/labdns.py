#!/usr/bin/env python3
"""Minimal DNS wire helpers for the lab (python3 standard library only).

Builds queries, sends them to loopback only (UDP, TCP, DoH over plain HTTP), and
decodes responses far enough to describe and check them. Not a general DNS library:
just what lab.sh's readiness checks and capture-fixtures.py need.

Command line (used by lab.sh):  labdns.py doh URL QNAME QTYPE   prints the answers
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys
import urllib.parse
import http.client

TYPES = {
    "A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "PTR": 12, "MX": 15, "TXT": 16,
    "AAAA": 28, "SRV": 33, "OPT": 41, "ANY": 255,
}
TYPE_NAMES = {v: k for k, v in TYPES.items()}
RCODES = {
    0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP",
    5: "REFUSED", 16: "BADVERS",
}
OPT_EDE = 15
OPT_NSID = 3


def check_loopback(host: str) -> None:
    """Refuse any destination outside 127.0.0.0/8 and ::1 (house rule)."""
    if not ipaddress.ip_address(host).is_loopback:
        raise SystemExit(f"labdns: {host} is not a loopback address; refusing to send")


def encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.rstrip(".").split("."):
        if not label:
            continue
        raw = label.encode("ascii")
        if len(raw) > 63:
            raise ValueError(f"label too long in {name!r}")
        out.append(len(raw))
        out += raw
    out.append(0)
    return bytes(out)


def build_query(qid: int, qname: str, qtype: str, *, rd: bool = False,
                edns: int | None = None, do: bool = False,
                nsid: bool = False) -> bytes:
    """A standard query with one question; optional EDNS OPT (buffer size, DO, NSID)."""
    flags = 0x0100 if rd else 0
    arcount = 1 if edns is not None else 0
    msg = struct.pack("!HHHHHH", qid, flags, 1, 0, 0, arcount)
    msg += encode_name(qname) + struct.pack("!HH", TYPES[qtype], 1)
    if edns is not None:
        opts = struct.pack("!HH", OPT_NSID, 0) if nsid else b""
        ttl = 0x8000 if do else 0
        msg += b"\x00" + struct.pack("!HHIH", TYPES["OPT"], edns, ttl, len(opts)) + opts
    return msg


def send_udp(host: str, port: int, query: bytes, timeout: float = 2.0) -> bytes:
    check_loopback(host)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.connect((host, port))
        s.send(query)
        while True:
            data = s.recv(65535)
            if data[:2] == query[:2]:  # ignore anything that is not our answer
                return data


def recv_exact(s: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("TCP peer closed before the whole message arrived")
        buf += chunk
    return bytes(buf)


def send_tcp(host: str, port: int, query: bytes, timeout: float = 2.0) -> bytes:
    check_loopback(host)
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(struct.pack("!H", len(query)) + query)
        (length,) = struct.unpack("!H", recv_exact(s, 2))
        return recv_exact(s, length)


def send_doh(url: str, query: bytes, timeout: float = 2.0) -> bytes:
    """RFC 8484 POST over plain HTTP/1.1 (dnsdist's addDOHLocal without TLS)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None:
        raise SystemExit(f"labdns: {url}: only http://127.x.x.x:PORT/path is supported")
    check_loopback(parts.hostname)
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    try:
        conn.request("POST", parts.path or "/dns-query", body=query, headers={
            "content-type": "application/dns-message",
            "accept": "application/dns-message",
        })
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise ConnectionError(f"DoH answered HTTP {resp.status}")
        return body
    finally:
        conn.close()


# --- decoding (for descriptions and checks) -------------------------------------------

def read_name(msg: bytes, off: int) -> tuple[str, int]:
    labels: list[str] = []
    end = None
    hops = 0
    while True:
        length = msg[off]
        if length & 0xC0 == 0xC0:
            if end is None:
                end = off + 2
            ptr = ((length & 0x3F) << 8) | msg[off + 1]
            if ptr >= off or hops > 64:
                raise ValueError("bad compression pointer")
            off = ptr
            hops += 1
            continue
        if length == 0:
            off += 1
            break
        labels.append(msg[off + 1: off + 1 + length].decode("ascii", "backslashreplace"))
        off += 1 + length
    return (".".join(labels) + ".").lower() if labels else ".", end if end is not None else off


def rdata_text(msg: bytes, rtype: int, off: int, rdlen: int) -> str:
    rd = msg[off: off + rdlen]
    if rtype == 1:
        return str(ipaddress.IPv4Address(rd))
    if rtype == 28:
        return str(ipaddress.IPv6Address(rd))
    if rtype in (2, 5, 12):
        return read_name(msg, off)[0]
    if rtype == 6:
        mname, o = read_name(msg, off)
        rname, o = read_name(msg, o)
        nums = struct.unpack("!IIIII", msg[o: o + 20])
        return " ".join([mname, rname] + [str(n) for n in nums])
    if rtype == 33:
        prio, weight, port = struct.unpack("!HHH", rd[:6])
        return f"{prio} {weight} {port} {read_name(msg, off + 6)[0]}"
    if rtype == 15:
        return f"{struct.unpack('!H', rd[:2])[0]} {read_name(msg, off + 2)[0]}"
    if rtype == 16:
        parts, i = [], 0
        while i < len(rd):
            n = rd[i]
            parts.append('"' + rd[i + 1: i + 1 + n].decode("ascii", "backslashreplace") + '"')
            i += 1 + n
        return " ".join(parts)
    return "\\# %d %s" % (rdlen, rd.hex())


def decode(msg: bytes) -> dict:
    """Header fields, the question, the three sections and EDNS details."""
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", msg[:12])
    out: dict = {
        "id": qid, "qr": bool(flags & 0x8000), "opcode": (flags >> 11) & 0xF,
        "aa": bool(flags & 0x0400), "tc": bool(flags & 0x0200),
        "rd": bool(flags & 0x0100), "ra": bool(flags & 0x0080),
        "rcode": flags & 0xF, "question": [], "answer": [], "authority": [],
        "additional": [], "edns": None, "size": len(msg),
    }
    off = 12
    for _ in range(qd):
        name, off = read_name(msg, off)
        qtype, qclass = struct.unpack("!HH", msg[off: off + 4])
        off += 4
        out["question"].append((name, TYPE_NAMES.get(qtype, str(qtype)), qclass))
    for section, count in (("answer", an), ("authority", ns), ("additional", ar)):
        for _ in range(count):
            name, off = read_name(msg, off)
            rtype, rclass, ttl, rdlen = struct.unpack("!HHIH", msg[off: off + 10])
            off += 10
            if rtype == TYPES["OPT"]:
                opts, o = [], off
                while o < off + rdlen:
                    code, olen = struct.unpack("!HH", msg[o: o + 4])
                    opts.append((code, msg[o + 4: o + 4 + olen]))
                    o += 4 + olen
                out["edns"] = {
                    "udp": rclass, "ext_rcode": ttl >> 24, "version": (ttl >> 16) & 0xFF,
                    "do": bool(ttl & 0x8000), "options": opts,
                }
                out["rcode"] |= (ttl >> 24) << 4
            else:
                out[section].append((name, ttl, TYPE_NAMES.get(rtype, str(rtype)),
                                     rdata_text(msg, rtype, off, rdlen)))
            off += rdlen
    out["trailing"] = len(msg) - off
    return out


def ede_of(info: dict) -> list[tuple[int, str]]:
    if not info["edns"]:
        return []
    return [(struct.unpack("!H", data[:2])[0], data[2:].decode("utf-8", "replace"))
            for code, data in info["edns"]["options"] if code == OPT_EDE]


def main(argv: list[str]) -> int:
    if len(argv) == 5 and argv[1] == "doh":
        info = decode(send_doh(argv[2], build_query(0, argv[3], argv[4].upper(), rd=True)))
        for _, _, _, rdata in info["answer"]:
            print(rdata)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
