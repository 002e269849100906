#!/usr/bin/env python3
"""A hostile device on a test link, outside the devices' group (docs/BUS.md).

Usage: hostile_bus.py NETDEV [SECONDS]

NETDEV is the harness's @LINK@ value (socket,id=n0,mcast=GROUP:PORT,...):
the QEMU socket netdev of the link, on which every datagram is one
Ethernet frame. The script joins the link and records the soft bus's
frames (UDP port 4747) until it has seen a session's data message, or
SECONDS (default 30) have passed. Then it attacks with what it recorded:

- every recorded frame again, as it was (replays);
- every recorded frame with one byte of the bus packet changed (tampered;
  the UDP checksum is set to 0, "none", so that the stack hands the packet
  to the bus instead of dropping it);
- announcements it forges itself, well-formed but sealed with no key.

It prints one line per kind, then `hostile: done`. The devices must list
each other as before, and count what they refused.
"""

import os
import socket
import struct
import sys
import time

BUS_PORT = 4747


def link_of(netdev):
    for part in netdev.split(","):
        if part.startswith("mcast="):
            group, port = part[len("mcast="):].rsplit(":", 1)
            return group, int(port)
    sys.exit(f"hostile: no mcast= in {netdev!r}")


def join(group, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((group, port))
    local = socket.inet_aton("127.0.0.1")
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, socket.inet_aton(group) + local)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, local)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
    return s


def bus_payload_at(frame):
    """Offset of the bus packet in an Ethernet/IPv4/UDP frame to port 4747, or None."""
    if len(frame) < 14 + 20 + 8 or frame[12:14] != b"\x08\x00":
        return None
    ihl = (frame[14] & 0x0F) * 4
    if frame[14 + 9] != 17:
        return None
    udp = 14 + ihl
    dport = struct.unpack("!H", frame[udp + 2:udp + 4])[0]
    if dport != BUS_PORT or frame[udp + 8:udp + 10] != b"KB":
        return None
    return udp + 8


def ip_checksum(header):
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total) & 0xFFFF


def forged_announcement(n):
    body = b"KB\x01\x01" + os.urandom(8) + bytes(8) + struct.pack("<Q", 1000 + n) + os.urandom(48)
    udp = struct.pack("!HHHH", BUS_PORT, BUS_PORT, 8 + len(body), 0) + body
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), n, 0, 64, 17, 0,
                               socket.inet_aton("169.254.9.9"), socket.inet_aton("255.255.255.255")))
    ip[10:12] = struct.pack("!H", ip_checksum(bytes(ip)))
    eth = b"\xff" * 6 + bytes.fromhex("525400000909") + b"\x08\x00"
    return eth + bytes(ip) + udp


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    group, port = link_of(sys.argv[1])
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 30.0
    s = join(group, port)
    s.settimeout(0.2)
    recorded, seen_data, until = [], False, time.time() + seconds
    while time.time() < until and not seen_data:
        try:
            frame = s.recv(65536)
        except socket.timeout:
            continue
        at = bus_payload_at(frame)
        if at is None:
            continue
        recorded.append((frame, at))
        seen_data |= frame[at + 3] == 5
    kinds = sorted({f[a + 3] for f, a in recorded})
    print(f"hostile: recorded {len(recorded)} bus packets (kinds {kinds}), a data message: {'yes' if seen_data else 'no'}")
    # Let the devices settle, then replay everything.
    time.sleep(0.5)
    for frame, _ in recorded:
        s.sendto(frame, (group, port))
        time.sleep(0.005)
    print(f"hostile: replayed {len(recorded)}")
    tampered = 0
    for frame, at in recorded:
        for where in (at + 5, len(frame) - 1, at + 30):
            if where >= len(frame):
                continue
            bad = bytearray(frame)
            bad[where] ^= 0x20
            udp = at - 8
            bad[udp + 6:udp + 8] = b"\x00\x00"
            s.sendto(bytes(bad), (group, port))
            tampered += 1
            time.sleep(0.005)
    print(f"hostile: tampered {tampered}")
    for n in range(10):
        s.sendto(forged_announcement(n), (group, port))
        time.sleep(0.01)
    print("hostile: forged 10")
    print("hostile: done")


if __name__ == "__main__":
    main()
