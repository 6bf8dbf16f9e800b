"""Shared helpers for the attack-case generators (see README.md).

Everything below the transport payload is built by scapy (Ethernet, IPv4/IPv6, SCTP with its
CRC32c, UDP and TCP with their checksums); the payloads come from scapy's contrib layers
(Diameter, GTP, GTPv2) and pycrate (TCAP/MAP ASN.1 BER, SCCP, M3UA). Nothing here is shared with
sigwall's own packet builder (`testkit/src/packets.rs`).

Output: one JSON object per line, {"case": name, "frames": [hex, ...]}; the first frame of a
case is the message under test, the others are later packets of the same flow (same 5-tuple).
With `--pcap FILE` every frame is also written to a classic pcap (Ethernet), in the same order,
so tshark can check the encodings.
"""

import argparse
import json
import logging
import struct
import sys

logging.getLogger("scapy").setLevel(logging.ERROR)

from scapy.all import Dot1Q, Ether, IP, IPv6, TCP, UDP  # noqa: E402
from scapy.layers.sctp import SCTP, SCTPChunkData  # noqa: E402

# The lab: the ipx side is 198.18.0.1 / 2001:db8::1, sigwall's edge interface 198.18.0.2 /
# 2001:db8::2. Peers' sources are routed prefixes in 198.18.0.0/15 and 2001:db8::/32; XDP sees
# the frames whatever their MACs, so locally administered ones do.
EDGE4 = "198.18.0.2"
EDGE6 = "2001:db8::2"
SRC_MAC = "02:00:5e:00:00:01"
DST_MAC = "02:00:5e:00:00:02"


def ip_layer(src, dst=None):
    if ":" in src:
        return IPv6(src=src, dst=dst or EDGE6, hlim=64)
    return IP(src=src, dst=dst or EDGE4, ttl=64, id=0x4242)


def frame(src, l4, dst=None, vlan=None):
    """A whole Ethernet frame (802.1Q-tagged with `vlan`); scapy fills in lengths and checksums."""
    eth = Ether(src=SRC_MAC, dst=DST_MAC)
    if vlan is not None:
        eth = eth / Dot1Q(vlan=vlan)
    return bytes(eth / ip_layer(src, dst) / l4)


def data_chunk(tsn, ppid, payload, stream=0, ssn=0, begin=True, end=True):
    return SCTPChunkData(
        beginning=int(begin), ending=int(end), tsn=tsn, stream_id=stream, stream_seq=ssn, proto_id=ppid, data=payload
    )


def sctp(src, sport, dport, vtag, chunks, dst=None, vlan=None):
    """One SCTP packet with `chunks` bundled; scapy computes the CRC32c."""
    pkt = SCTP(sport=sport, dport=dport, tag=vtag)
    for c in chunks:
        pkt = pkt / c
    return frame(src, pkt, dst, vlan)


def sctp_data(src, sport, dport, vtag, tsn, ppid, payload, stream=0, ssn=0, dst=None, vlan=None):
    """One SCTP packet with one complete (B and E) DATA chunk."""
    return sctp(src, sport, dport, vtag, [data_chunk(tsn, ppid, payload, stream, ssn)], dst, vlan)


def udp(src, sport, dport, payload, dst=None):
    return frame(src, UDP(sport=sport, dport=dport) / payload, dst)


class TcpStream:
    """Segments of one established TCP connection (no handshake: XDP and inspection judge each
    segment on its own; the sequence numbers advance as a real sender's would)."""

    def __init__(self, src, sport, dport, dst=None, isn=0x10000000):
        self.src, self.sport, self.dport, self.dst = src, sport, dport, dst
        self.seq = isn

    def segment(self, payload):
        payload = bytes(payload)
        f = frame(
            self.src,
            TCP(sport=self.sport, dport=self.dport, seq=self.seq, ack=0x20000000, flags="PA", window=65535)
            / payload,
            self.dst,
        )
        self.seq = (self.seq + len(payload)) & 0xFFFFFFFF
        return f


def tbcd(digits):
    """TBCD (3GPP TS 29.002 / 29.274): low nibble first, 0xF filler for an odd count."""
    if len(digits) % 2:
        digits += "F"
    return bytes(int(digits[i + 1], 16) << 4 | int(digits[i], 16) for i in range(0, len(digits), 2))


class Output:
    def __init__(self, description):
        p = argparse.ArgumentParser(description=description)
        p.add_argument("--pcap", help="also write every frame to this pcap file")
        self.args = p.parse_args()
        self.cases = []

    def case(self, name, frames):
        assert name not in [c for c, _ in self.cases], f"duplicate case {name}"
        assert frames, name
        self.cases.append((name, [bytes(f) for f in frames]))

    def finish(self):
        for name, frames in self.cases:
            sys.stdout.write(json.dumps({"case": name, "frames": [f.hex() for f in frames]}) + "\n")
        if self.args.pcap:
            write_pcap(self.args.pcap, [f for _, fs in self.cases for f in fs])


def write_pcap(path, frames):
    """Classic pcap, microsecond stamps, link type Ethernet; the frames exactly as emitted."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1_700_000_000 + i, 0, len(fr), len(fr)))
            f.write(fr)
