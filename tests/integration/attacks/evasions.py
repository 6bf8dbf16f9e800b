#!/usr/bin/env python3
"""Evasions: attacks shaped so that a firewall parsing differently from the receiving stack
misses them (../shared/docs/evasion-review.md, one case at least per finding), each with a
negative control that must stay clean. The `tests::evasions` layer sends them over the veth lab.

Built with scapy (Ethernet, IP, fragments, SCTP with its CRC32c, TCP, UDP, Diameter, GTPv2) and
pycrate (M3UA, SCCP, TCAP/MAP) through ss7.py, diameter.py and gtp.py: nothing here comes from
sigwall's own packet builder. Each case is one flow; see `tests/integration/src/tests/evasions.rs`
for what each must raise.
"""

import os
import struct
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import diameter  # noqa: E402
import gtp  # noqa: E402
import ss7  # noqa: E402
from common import DST_MAC, EDGE4, EDGE6, SRC_MAC, Output, TcpStream, data_chunk, frame, sctp, sctp_data, tbcd, udp  # noqa: E402
from scapy.all import Dot1Q, Ether, IP, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, PadN, Raw, TCP, UDP, fragment  # noqa: E402
from scapy.layers.sctp import SCTP, SCTPChunkIData, SCTPChunkInit  # noqa: E402

PARTNER_V4 = "198.18.1.70"
PARTNER_V6 = "2001:db8:1::70"
PARTNER_B_V4 = "198.18.2.70"
NOBODY_V4 = "198.18.9.9"  # in no peer's prefixes
NOBODY_V6 = "2001:db8:9::9"
TO_HLR = (ss7.SSN_HLR, ss7.HOME_HLR_GT)
GMLC = "gmlc1." + diameter.PARTNER_REALM
MME = "mme1." + diameter.PARTNER_REALM


def ati_tcap(otid):
    arg = {
        "subscriberIdentity": ("msisdn", ss7.isdn(ss7.HOME_MSISDN)),
        "requestedInfo": {"locationInformation": 0, "subscriberState": 0},
        "gsmSCF-Address": ss7.isdn(ss7.PARTNER_GT),
    }
    return ss7.tcap_begin(otid, "anyTimeInfoEnquiry-v3", 71, "AnyTimeInterrogationArg", arg)


def ati_m3ua(otid):
    udt = ss7.sccp_udt(TO_HLR, (ss7.SSN_SCF, ss7.PARTNER_GT), ati_tcap(otid))
    return ss7.m3ua_data(opc=0x1234, dpc=0x0A0B, sls=0, sccp=udt)


def ul_m3ua(otid):
    """updateLocation for a partner subscriber from the partner's VLR: legitimate."""
    arg = {"imsi": tbcd(ss7.PARTNER_IMSI), "msc-Number": ss7.isdn(ss7.PARTNER_GT), "vlr-Number": ss7.isdn(ss7.PARTNER_GT)}
    tcap = ss7.tcap_begin(otid, "networkLocUp-v3", 2, "UpdateLocationArg", arg)
    udt = ss7.sccp_udt(TO_HLR, (ss7.SSN_VLR, ss7.PARTNER_GT), tcap)
    return ss7.m3ua_data(opc=0x1234, dpc=0x0A0B, sls=0, sccp=udt)


def sua_param(tag, val):
    return struct.pack(">HH", tag, 4 + len(val)) + val + b"\0" * (-len(val) % 4)


def sua_address(ssn, digits):
    """SUA Source/Destination Address (RFC 3868 §3.10.2): routing indicator 1 (route on GT),
    address indicator "GT and SSN included", then the Global Title (GTI 4: TT 0, E.164,
    international) and SSN parameters."""
    gt = bytes([0, 0, 0, 4, len(digits), 0, 1, 4]) + tbcd(digits)
    return struct.pack(">HH", 1, 0x0005) + sua_param(0x8001, gt) + sua_param(0x8003, bytes([0, 0, 0, ssn]))


def sua_cldt(tcap):
    """SUA CLDT (class 7 type 1): routing context, protocol class 0, addresses, sequence
    control, data."""
    body = (
        sua_param(0x0006, struct.pack(">I", 1))
        + sua_param(0x0115, struct.pack(">I", 0))
        + sua_param(0x0102, sua_address(ss7.SSN_SCF, ss7.PARTNER_GT))
        + sua_param(0x0103, sua_address(ss7.SSN_HLR, ss7.HOME_HLR_GT))
        + sua_param(0x0116, struct.pack(">I", 0))
        + sua_param(0x010B, tcap)
    )
    return struct.pack(">BBBBI", 1, 0, 7, 1, 8 + len(body)) + body


def party_no_ssn(addr, digits):
    """An SCCP party address routed on GT (GTI 4) without an SSN: the SSN indicator is 0."""
    ss7.party(addr, 0, digits)
    addr["Value"]["AddrInd"].set_val({"RoutingInd": 0, "GTInd": 4, "SSNInd": 0, "PCInd": 0})


def sccp_udt_no_calling_ssn(called, calling_gt, data):
    """ss7.sccp_udt, but the calling party has no SSN (review item 4: a missing SSN)."""
    from pycrate_mobile.SCCP import SCCPUnitData

    u = SCCPUnitData()
    u["ProtocolClass"].set_val({"Handling": 8, "Class": 0})
    ss7.party(u["CalledPartyAddr"], *called)
    party_no_ssn(u["CallingPartyAddr"], calling_gt)
    u["Data"].set_val({"Value": data})
    return u.to_bytes()


def sccp_udt_on_ssn(called_pc, ssn, calling_pc, data):
    """SCCP UDT, class 0, both parties routed on SSN with a point code and no GT (address
    indicator 0x43, Q.713 §3.4.1): how SCCP management (SCMG) is addressed."""
    def addr(pc):
        return bytes([0x43]) + struct.pack("<H", pc) + bytes([ssn])
    cd, cg = addr(called_pc), addr(calling_pc)
    # Pointers (Q.713 §2.3): each counts from its own octet to its parameter's length octet.
    return bytes([0x09, 0x00, 3, 3 + len(cd), 3 + len(cd) + len(cg)]) + bytes([len(cd)]) + cd \
        + bytes([len(cg)]) + cg + bytes([len(data)]) + data


def m2ua_data(sccp, opc=0x1234, dpc=0x0A0B, sls=0):
    """M2UA MAUP DATA (RFC 3331 §3.3.1.1, class 6 type 1): integer interface identifier 0 and a
    Protocol Data 1 parameter holding one MTP3 message: SIO (NI 0, SI 3 SCCP), the ITU routing
    label (DPC, OPC, SLS: 32 bits little-endian) and the SCCP message."""
    mtp3 = bytes([0x03]) + struct.pack("<I", dpc | opc << 14 | sls << 28) + sccp
    body = sua_param(0x0001, struct.pack(">I", 0)) + sua_param(0x0300, mtp3)
    return struct.pack(">BBBBI", 1, 0, 6, 1, 8 + len(body)) + body


def raw_chunk(ctype, flags, value, length=None):
    """A chunk scapy has no layer for, or with a length field that lies."""
    n = 4 + len(value) if length is None else length
    return Raw(struct.pack(">BBH", ctype, flags, n) + value + b"\0" * (-len(value) % 4))


def sctp_frame(src, sport, dport, vtag, chunks, bad_crc=False):
    """Like common.sctp, and optionally with the CRC32c broken (after scapy computed it)."""
    f = bytearray(sctp(src, sport, dport, vtag, chunks))
    if bad_crc:
        off = 14 + (20 if ":" not in src else 40) + 8
        f[off] ^= 0xFF
    return bytes(f)


def ip_fragments(src, l4, size, dst=None):
    """The IP datagram `l4` from `src`, fragmented by scapy (IPv4 or IPv6 Fragment header)."""
    eth = Ether(src=SRC_MAC, dst=DST_MAC)
    if ":" in src:
        pkt = IPv6(src=src, dst=dst or EDGE6, hlim=64) / IPv6ExtHdrFragment(id=0x1234) / l4
        from scapy.all import fragment6

        return [bytes(eth / p) for p in fragment6(pkt, size + 48)]
    pkt = IP(src=src, dst=dst or EDGE4, ttl=64, id=0x4343) / l4
    return [bytes(eth / p) for p in fragment(pkt, fragsize=size)]


def main():
    out = Output(__doc__)
    m3 = ss7.M3UA_PORT
    dp = diameter.DIAMETER_PORT

    # ---- C4: chunks after the DATA must never hide it ----
    sport, vtag = 31001, 0x5E000001
    out.case("c4-ati-then-128-pad", [
        sctp(PARTNER_V4, sport, m3, vtag, [data_chunk(100, 3, ati_m3ua(0x7001))] + [raw_chunk(0x84, 0, b"")] * 128),
        sctp_data(PARTNER_V4, sport, m3, vtag, 101, 3, ul_m3ua(0x7002)),
    ])
    sport, vtag = 31002, 0x5E000002
    out.case("c4-ati-then-bad-chunk", [
        sctp(PARTNER_V4, sport, m3, vtag, [data_chunk(100, 3, ati_m3ua(0x7003)), raw_chunk(0x85, 0, b"", length=0x100)]),
        sctp_data(PARTNER_V4, sport, m3, vtag, 101, 3, ul_m3ua(0x7004)),
    ])
    sport, vtag = 31003, 0x5E000003
    out.case("control-c4-ul-then-128-pad", [
        sctp(PARTNER_V4, sport, m3, vtag, [data_chunk(100, 3, ul_m3ua(0x7005))] + [raw_chunk(0x84, 0, b"")] * 128),
    ])

    # ---- C5: the PPID is the sender's choice ----
    sport, vtag = 31011, 0x5E000011
    out.case("c5-plr-sctp-ppid1", [
        sctp_data(PARTNER_V4, sport, dp, vtag, 200, 1, diameter.plr(GMLC, diameter.PARTNER_REALM, 1)),
        sctp_data(PARTNER_V4, sport, dp, vtag, 201, 1, diameter.ulr(MME, diameter.PARTNER_REALM, 2)),
    ])
    sport, vtag = 31012, 0x5E000012
    out.case("control-c5-ulr-sctp-ppid1", [
        sctp_data(PARTNER_V4, sport, dp, vtag, 200, 1, diameter.ulr(MME, diameter.PARTNER_REALM, 3,
                                                                     imsi=diameter.PARTNER_IMSI)),
    ])
    # The label and the receiver disagree: a Diameter request labelled M3UA (PPID 3) on the
    # Diameter port. The Diameter stack bound to the port parses it as Diameter.
    sport, vtag = 31018, 0x5E000018
    out.case("c5-plr-sctp-ppid3-diameter-port", [
        sctp_data(PARTNER_V4, sport, dp, vtag, 200, 3, diameter.plr(GMLC, diameter.PARTNER_REALM, 4)),
    ])
    sport, vtag = 31019, 0x5E000019
    out.case("control-c5-ulr-sctp-ppid0", [
        sctp_data(PARTNER_V4, sport, dp, vtag, 200, 0, diameter.ulr(MME, diameter.PARTNER_REALM, 5,
                                                                     imsi=diameter.PARTNER_IMSI)),
    ])
    sport, vtag = 31013, 0x5E000013
    out.case("c5-ati-m3ua-ppid0", [
        sctp_data(PARTNER_V4, sport, m3, vtag, 300, 0, ati_m3ua(0x7011)),
        sctp_data(PARTNER_V4, sport, m3, vtag, 301, 0, ul_m3ua(0x7012)),
    ])
    sport, vtag = 31014, 0x5E000014
    out.case("control-c5-ul-m3ua-ppid0", [sctp_data(PARTNER_V4, sport, m3, vtag, 300, 0, ul_m3ua(0x7013))])
    sport, vtag = 31015, 0x5E000015
    out.case("c5-ati-idata", [
        sctp(PARTNER_V4, sport, m3, vtag, [SCTPChunkIData(beginning=1, ending=1, tsn=400, stream_id=1, message_id=0,
                                                          ppid_fsn=3, data=ati_m3ua(0x7021))]),
        sctp(PARTNER_V4, sport, m3, vtag, [SCTPChunkIData(beginning=1, ending=1, tsn=401, stream_id=1, message_id=1,
                                                          ppid_fsn=3, data=ul_m3ua(0x7022))]),
    ])
    sport, vtag = 31016, 0x5E000016
    out.case("control-c5-ul-idata", [
        sctp(PARTNER_V4, sport, m3, vtag, [SCTPChunkIData(beginning=1, ending=1, tsn=400, stream_id=1, message_id=0,
                                                          ppid_fsn=3, data=ul_m3ua(0x7023))]),
    ])
    sport, vtag = 31017, 0x5E000017
    out.case("c5-sua-ati", [
        sctp_data(PARTNER_V4, sport, 14001, vtag, 500, 4, sua_cldt(ati_tcap(0x7031))),
        sctp_data(PARTNER_V4, sport, 14001, vtag, 501, 4, sua_cldt(ati_tcap(0x7032))),
    ])

    # ---- H1: only what the receiver accepts may change inspection's state ----
    # Decoy behind an unknown chunk type 0x3e (action bits 00: the receiver drops the rest of the
    # packet), then the ATI with the decoy's TSN.
    sport, vtag = 31021, 0x5E000021
    out.case("h1-decoy-behind-unknown-chunk", [
        sctp(PARTNER_V4, sport, m3, vtag, [raw_chunk(0x3E, 0, b""), data_chunk(600, 3, ul_m3ua(0x7041))]),
        sctp_data(PARTNER_V4, sport, m3, vtag, 600, 3, ati_m3ua(0x7042)),
        sctp_data(PARTNER_V4, sport, m3, vtag, 601, 3, ul_m3ua(0x7043)),
    ])
    # Decoy with a broken CRC32c, then the ATI with its TSN.
    sport, vtag = 31022, 0x5E000022
    out.case("h1-decoy-bad-crc", [
        sctp_data(PARTNER_V4, sport, m3, vtag, 700, 3, ul_m3ua(0x7051)),
        sctp_frame(PARTNER_V4, sport, m3, vtag, [data_chunk(701, 3, ul_m3ua(0x7052))], bad_crc=True),
        sctp_data(PARTNER_V4, sport, m3, vtag, 701, 3, ati_m3ua(0x7053)),
        sctp_data(PARTNER_V4, sport, m3, vtag, 702, 3, ul_m3ua(0x7054)),
    ])
    # A "retransmission" of TSN 800 with other content.
    sport, vtag = 31023, 0x5E000023
    out.case("h1-retransmission-rewritten", [
        sctp_data(PARTNER_V4, sport, m3, vtag, 800, 3, ul_m3ua(0x7061)),
        sctp_data(PARTNER_V4, sport, m3, vtag, 800, 3, ati_m3ua(0x7062)),
        sctp_data(PARTNER_V4, sport, m3, vtag, 801, 3, ul_m3ua(0x7063)),
    ])
    sport, vtag = 31024, 0x5E000024
    ul = ul_m3ua(0x7064)
    out.case("control-h1-retransmission", [
        sctp_data(PARTNER_V4, sport, m3, vtag, 800, 3, ul),
        sctp_data(PARTNER_V4, sport, m3, vtag, 800, 3, ul),
    ])

    # ---- H2: fragments of one message on two stream ids (Linux reassembles by TSN) ----
    sport, vtag = 31031, 0x5E000031
    a = ati_m3ua(0x7071)
    out.case("h2-ati-fragments-on-two-streams", [
        sctp(PARTNER_V4, sport, m3, vtag, [data_chunk(900, 3, a[:40], stream=1, begin=True, end=False)]),
        sctp(PARTNER_V4, sport, m3, vtag, [data_chunk(901, 3, a[40:], stream=2, begin=False, end=True)]),
        sctp_data(PARTNER_V4, sport, m3, vtag, 902, 3, ul_m3ua(0x7072)),
    ])
    sport, vtag = 31032, 0x5E000032
    u = ul_m3ua(0x7073)
    out.case("control-h2-ul-fragments-one-stream", [
        sctp(PARTNER_V4, sport, m3, vtag, [data_chunk(900, 3, u[:40], stream=1, begin=True, end=False)]),
        sctp(PARTNER_V4, sport, m3, vtag, [data_chunk(901, 3, u[40:], stream=1, begin=False, end=True)]),
    ])

    # ---- H3: an inner length that understates the message ----
    sport, vtag = 31041, 0x5E000041
    short = bytearray(ati_m3ua(0x7081))
    short[4:8] = struct.pack(">I", 8)
    out.case("h3-ati-m3ua-length-8", [
        sctp_data(PARTNER_V4, sport, m3, vtag, 1000, 3, bytes(short)),
        sctp_data(PARTNER_V4, sport, m3, vtag, 1001, 3, ul_m3ua(0x7082)),
    ])
    sport, vtag = 31042, 0x5E000042
    idr = bytearray(diameter.idr(MME, diameter.PARTNER_REALM, 4))
    idr[1:4] = (20).to_bytes(3, "big")
    out.case("h3-idr-diameter-length-20", [
        sctp_data(PARTNER_V4, sport, dp, vtag, 1100, 46, bytes(idr)),
        sctp_data(PARTNER_V4, sport, dp, vtag, 1101, 46, diameter.ulr(MME, diameter.PARTNER_REALM, 5)),
    ])

    # ---- H4: caps and decode errors must not hide the header rules ----
    plr = bytearray(diameter.plr(GMLC, diameter.PARTNER_REALM, 6))
    plr += struct.pack(">IBBH", 60000, 0, 0, 8) * 4097
    plr[1:4] = len(plr).to_bytes(3, "big")
    s = TcpStream(PARTNER_V4, 41001, dp)
    # 23 segments of at most 1448 bytes (the trigger is the last: evasions.rs says 22).
    segs = [s.segment(bytes(plr[i:i + 1448])) for i in range(0, len(plr), 1448)]
    assert len(segs) == 23, len(segs)
    out.case("h4-plr-with-4097-avps", segs + [s.segment(diameter.ulr(MME, diameter.PARTNER_REALM, 7))])

    # ---- H5: Diameter over TCP, as the receiver reassembles it ----
    p = diameter.plr(GMLC, diameter.PARTNER_REALM, 8)
    s = TcpStream(PARTNER_V4, 41011, dp)
    first, second = s.segment(p[:30]), s.segment(p[30:])
    out.case("h5-plr-segments-reversed", [second, first, s.segment(diameter.ulr(MME, diameter.PARTNER_REALM, 9))])
    s = TcpStream(PARTNER_V4, 41012, dp)
    legit = s.segment(diameter.ulr(MME, diameter.PARTNER_REALM, 10, imsi=diameter.PARTNER_IMSI))
    insert = frame(PARTNER_V4, TCP(sport=41012, dport=dp, seq=(s.seq - 100000000) & 0xFFFFFFFF, ack=0x20000000,
                                   flags="PA", window=65535) / b"\x01\x00\xff\xff\x80\x00\x01\x3c")
    out.case("h5-insertion-out-of-window", [legit, insert, s.segment(p), s.segment(p)])
    s = TcpStream(PARTNER_V4, 41013, dp)
    legit = s.segment(diameter.ulr(MME, diameter.PARTNER_REALM, 11, imsi=diameter.PARTNER_IMSI))
    bad = bytearray(frame(PARTNER_V4, TCP(sport=41013, dport=dp, seq=s.seq, ack=0x20000000, flags="PA",
                                          window=65535) / b"\x01\x00\xff\xff\x80\x00\x01\x3c"))
    bad[14 + 20 + 16] ^= 0xFF  # TCP checksum
    out.case("h5-insertion-bad-checksum", [legit, bytes(bad), s.segment(p), s.segment(p)])
    urg = frame(PARTNER_V4, TCP(sport=41014, dport=dp, seq=0x10000000, ack=0x20000000, flags="PAU", urgptr=1,
                                window=65535) / (b"\x02" + p))
    s = TcpStream(PARTNER_V4, 41014, dp, isn=0x10000000 + 1 + len(p))
    out.case("h5-urgent-byte", [urg, s.segment(diameter.ulr(MME, diameter.PARTNER_REALM, 12))])
    s = TcpStream(PARTNER_V4, 41015, dp)
    u = diameter.ulr(MME, diameter.PARTNER_REALM, 13, imsi=diameter.PARTNER_IMSI)
    isn = s.seq
    seg1 = s.segment(u)
    rewritten = frame(PARTNER_V4, TCP(sport=41015, dport=dp, seq=isn, ack=0x20000000, flags="PA", window=65535)
                      / (p[:len(u)]))
    out.case("h5-overlap-rewritten", [seg1, rewritten, s.segment(u)])
    s = TcpStream(PARTNER_V4, 41016, dp)
    isn = s.seq
    seg = s.segment(u)
    out.case("control-h5-retransmission", [seg, seg])

    # ---- C3: IP fragments, reassembled before inspection ----
    out.case("c3-ati-ipv4-fragments", ip_fragments(PARTNER_V4, SCTP(sport=31051, dport=m3, tag=0x5E000051)
                                                   / data_chunk(1200, 3, ati_m3ua(0x7091)), 24)
             + [sctp_data(PARTNER_V4, 31051, m3, 0x5E000051, 1201, 3, ul_m3ua(0x7092))])
    out.case("c3-ati-ipv6-fragments", ip_fragments(PARTNER_V6, SCTP(sport=31052, dport=m3, tag=0x5E000052)
                                                   / data_chunk(1300, 3, ati_m3ua(0x7093)), 64)
             + [sctp_data(PARTNER_V6, 31052, m3, 0x5E000052, 1301, 3, ul_m3ua(0x7094))])
    out.case("c3-gtpv2-context-request-fragments",
             ip_fragments(PARTNER_V4, UDP(sport=gtp.GTPC, dport=gtp.GTPC)
                          / gtp.context_request(0x900, gtp.HOME_IMSI, PARTNER_V4), 16)
             + [udp(PARTNER_V4, gtp.GTPC, gtp.GTPC, gtp.context_request(0x901, gtp.HOME_IMSI, PARTNER_V4))])
    # Two first fragments of one datagram with different bytes at offset 0.
    l4 = SCTP(sport=31053, dport=m3, tag=0x5E000053) / data_chunk(1400, 3, ul_m3ua(0x7095))
    frags = ip_fragments(PARTNER_V4, l4, 24)
    alt = ip_fragments(PARTNER_V4, SCTP(sport=31053, dport=m3, tag=0x5E000053) / data_chunk(1400, 3, ati_m3ua(0x7096)),
                       24)
    out.case("c3-overlapping-fragments", [frags[0], alt[0], sctp_data(PARTNER_V4, 31053, m3, 0x5E000053, 1401, 3,
                                                                         ul_m3ua(0x7097))])
    out.case("control-c3-ul-ipv4-fragments", ip_fragments(PARTNER_V4, SCTP(sport=31054, dport=m3, tag=0x5E000054)
                                                          / data_chunk(1500, 3, ul_m3ua(0x7098)), 24))

    # ---- TCAP bypass classes (issue 10 item 4), each on an ATI (or ISD): patched BER that a
    # lenient receiver still acts on. Lengths stay in BER short form, so each patch adjusts the
    # Begin (62), component portion (6c) and invoke (a1) lengths by hand.
    def tcap_case(name, sport, tcap, called=TO_HLR):
        udt = ss7.sccp_udt(called, (ss7.SSN_SCF, ss7.PARTNER_GT), bytes(tcap))
        m = ss7.m3ua_data(opc=0x1234, dpc=0x0A0B, sls=0, sccp=udt)
        out.case(name, [sctp_data(PARTNER_V4, sport, m3, 0x5E000000 + sport, 2400, 3, m),
                        sctp_data(PARTNER_V4, sport, m3, 0x5E000000 + sport, 2401, 3, ul_m3ua(0x70E0))])

    def grow(t, n, levels=(0, "6c", "a1")):
        t = bytearray(t)
        t[1] += n  # Begin
        i = t.index(0x6C)
        t[i + 1] += n
        if "a1" in levels:
            j = t.index(0xA1, i)
            t[j + 1] += n
        return t

    base = ati_tcap(0x7301)
    op = base.index(bytes([0x02, 0x01, 0x47]))
    # Global opcode: an OBJECT IDENTIFIER in place of the local value 71.
    t = grow(base, 5)
    t[op:op + 3] = bytes([0x06, 0x06, 0x04, 0x00, 0x00, 0x01, 0x00, 0x47])
    tcap_case("tcap-global-opcode", 31101, t)
    # A transaction id of 5 octets (TCAP allows 1 to 4).
    t = bytearray(ati_tcap(0x7302))
    t[1] += 1
    t[2:8] = bytes([0x48, 0x05, 0x00]) + bytes(t[4:8])
    tcap_case("tcap-otid-5-octets", 31102, t)
    # Indefinite length on the Begin.
    t = bytearray(ati_tcap(0x7303))
    t[1] = 0x80
    t += b"\x00\x00"
    tcap_case("tcap-indefinite-length", 31103, t)
    # Two invokes: the first sendRoutingInfoForSM (45), the ATI second.
    t = bytearray(ati_tcap(0x7304))
    i = t.index(0x6C)
    comp = bytes(t[i + 2:])
    first = bytearray(comp)
    first[first.index(bytes([0x02, 0x01, 0x47])) + 2] = 45
    second = bytearray(comp)
    second[4] = 2  # invokeId 2
    t = t[:i] + bytes([0x6C, len(comp) * 2]) + first + second
    t[1] = len(t) - 2
    tcap_case("tcap-two-components", 31104, t)
    # A linked invoke (linkedId [0] 1).
    t = grow(ati_tcap(0x7305), 3)
    inv = t.index(bytes([0x02, 0x01, 0x01]), t.index(0xA1))
    t[inv + 3:inv + 3] = bytes([0x80, 0x01, 0x01])
    tcap_case("tcap-linked-invoke", 31105, t)
    # The application context of version 1 (a downgrade) for an operation of version 3.
    t = bytearray(ati_tcap(0x7306))
    ac = t.index(bytes([0x04, 0x00, 0x00, 0x01, 0x00, 0x1D, 0x03]))
    t[ac + 6] = 0x01
    tcap_case("tcap-ac-version-downgrade", 31106, t)
    # ISD for a home IMSI whose TBCD carries a filler nibble in the middle.
    imsi = bytearray(tbcd(ss7.HOME_IMSI))
    imsi[3] |= 0xF0
    tcap = ss7.tcap_begin(0x7307, "subscriberDataMngt-v3", 7, "InsertSubscriberDataArg",
                          {"imsi": bytes(imsi), "msisdn": ss7.isdn(ss7.HOME_MSISDN)})
    tcap_case("tcap-isd-imsi-filler-inside", 31107, tcap, called=(ss7.SSN_VLR, ss7.PARTNER_GT))

    # ---- GTPv2-C: a Context Request piggybacked (P flag) behind a harmless Create Session ----
    src = "198.18.1.36"
    msgs = []
    for i in range(2):
        csr = bytearray(gtp.create_session(0x700 + i, gtp.PARTNER_IMSI, "228", "02", src))
        csr[0] |= 0x10  # P: a message is piggybacked
        msgs.append(udp(src, gtp.GTPC, gtp.GTPC, bytes(csr) + gtp.context_request(0x780 + i, gtp.HOME_IMSI, src)))
    out.case("gtpv2-piggybacked-context-request", msgs)

    # ---- H7: a forged packet never installs a block ----
    sport, vtag = 31061, 0x5E000061
    out.case("h7-ati-wrong-vtag", [
        sctp_data(PARTNER_V4, sport, m3, vtag, 1600, 3, ul_m3ua(0x70A1)),
        sctp_data(PARTNER_V4, sport, m3, 0x0BAD0BAD, 1, 3, ati_m3ua(0x70A2)),
        sctp_data(PARTNER_V4, sport, m3, vtag, 1601, 3, ul_m3ua(0x70A3)),
    ])
    sport, vtag = 31062, 0x5E000062
    out.case("h7-ati-bad-crc", [
        sctp_frame(PARTNER_V4, sport, m3, vtag, [data_chunk(1700, 3, ati_m3ua(0x70A4))], bad_crc=True),
        sctp_data(PARTNER_V4, sport, m3, vtag, 1701, 3, ul_m3ua(0x70A5)),
    ])

    # ---- H6: legitimate roaming operations that must stay clean ----
    ussd = {"ussd-DataCodingScheme": b"\x0f", "ussd-String": b"\xaa\x98\xac\xa6\x02", "msisdn": ss7.isdn(ss7.HOME_MSISDN)}
    tcap = ss7.tcap_begin(0x70B1, "networkUnstructuredSsContext-v2", 59, "USSD-Arg", ussd) \
        if "networkUnstructuredSsContext-v2" in ss7.ACN else None
    if tcap is None:
        ss7.ACN["networkUnstructuredSsContext-v2"] = (0, 4, 0, 0, 1, 0, 19, 2)
        tcap = ss7.tcap_begin(0x70B1, "networkUnstructuredSsContext-v2", 59, "USSD-Arg", ussd)
    m = ss7.m3ua_data(opc=0x1234, dpc=0x0A0B, sls=0, sccp=ss7.sccp_udt(TO_HLR, (ss7.SSN_VLR, ss7.PARTNER_GT), tcap))
    out.case("control-h6-ussd-request-59", [sctp_data(PARTNER_V4, 31071, m3, 0x5E000071, 1800, 3, m)])
    ss7.ACN.setdefault("msPurging-v3", (0, 4, 0, 0, 1, 0, 27, 3))
    tcap = ss7.tcap_begin(0x70B2, "msPurging-v3", 67, "PurgeMS-Arg",
                          {"imsi": tbcd(ss7.HOME_IMSI), "vlr-Number": ss7.isdn(ss7.PARTNER_GT)})
    m = ss7.m3ua_data(opc=0x1234, dpc=0x0A0B, sls=0, sccp=ss7.sccp_udt(TO_HLR, (ss7.SSN_VLR, ss7.PARTNER_GT), tcap))
    out.case("control-h6-purge-ms-67", [sctp_data(PARTNER_V4, 31072, m3, 0x5E000072, 1900, 3, m)])

    # ---- H8: identities the sender chooses ----
    isd = {"imsi": tbcd(ss7.HOME_IMSI), "msisdn": ss7.isdn(ss7.HOME_MSISDN)}
    tcap = ss7.tcap_begin(0x70C1, "subscriberDataMngt-v3", 7, "InsertSubscriberDataArg", isd)
    m = ss7.m3ua_data(opc=0x1234, dpc=0x0A0B, sls=0,
                      sccp=ss7.sccp_udt((ss7.SSN_VLR, ss7.PARTNER_GT), (ss7.SSN_HLR, ss7.HOME_HLR_GT), tcap))
    out.case("h8-isd-home-calling-gt", [sctp_data(PARTNER_V4, 31081, m3, 0x5E000081, 2000, 3, m),
                                        sctp_data(PARTNER_V4, 31081, m3, 0x5E000081, 2001, 3, ul_m3ua(0x70C2))])
    out.case("h8-idr-home-origin-realm", [
        sctp_data(PARTNER_V4, 31082, dp, 0x5E000082, 2100, 46,
                  diameter.idr("hss1." + diameter.HOME_REALM, diameter.HOME_REALM, 14)),
        sctp_data(PARTNER_V4, 31082, dp, 0x5E000082, 2101, 46, diameter.ulr(MME, diameter.PARTNER_REALM, 15)),
    ])

    # ---- M2UA: MTP3 backhauled over SCTP (PPID 2), decoded like M3UA below MTP3 ----
    sport, vtag = 31201, 0x5E000201
    out.case("m2ua-ati", [
        sctp_data(PARTNER_V4, sport, m3, vtag, 2500, 2, m2ua_data(ss7.sccp_udt(TO_HLR, (ss7.SSN_SCF, ss7.PARTNER_GT),
                                                                                ati_tcap(0x7401)))),
        sctp_data(PARTNER_V4, sport, m3, vtag, 2501, 2, m2ua_data(ss7.sccp_udt(TO_HLR, (ss7.SSN_SCF, ss7.PARTNER_GT),
                                                                                ati_tcap(0x7402)))),
    ])
    ul = ss7.tcap_begin(0x7403, "networkLocUp-v3", 2, "UpdateLocationArg",
                        {"imsi": tbcd(ss7.PARTNER_IMSI), "msc-Number": ss7.isdn(ss7.PARTNER_GT),
                         "vlr-Number": ss7.isdn(ss7.PARTNER_GT)})
    out.case("control-m2ua-ul", [
        sctp_data(PARTNER_V4, 31202, m3, 0x5E000202, 2500, 2,
                  m2ua_data(ss7.sccp_udt(TO_HLR, (ss7.SSN_VLR, ss7.PARTNER_GT), ul))),
    ])

    # ---- M3: called SSN 1 on a GT-routed message that is not SCCP management ----
    tcap_case("m3-ati-called-ssn-1", 31211, ati_tcap(0x7411), called=(1, ss7.HOME_HLR_GT))
    # A real SCMG message: SST (format id 3) asking about SSN 6 at PC 0x0A0B, SSN 1 to SSN 1,
    # routed on SSN.
    sst = bytes([0x03, 0x06]) + struct.pack("<H", 0x0A0B) + bytes([0x00])
    out.case("control-m3-scmg-sst-ssn-1", [
        sctp_data(PARTNER_V4, 31212, m3, 0x5E000212, 2600, 3,
                  ss7.m3ua_data(opc=0x1234, dpc=0x0A0B, sls=0, sccp=sccp_udt_on_ssn(0x0A0B, 1, 0x1234, sst))),
    ])

    # ---- TCAP bypass classes, continued ----
    # An extended MAP application context (one arc more) and an unknown one (1.2.826.0.1.1.1)
    # on the ATI.
    ss7.ACN.setdefault("anyTimeInfoEnquiry-v3-extended", (0, 4, 0, 0, 1, 0, 29, 3, 1))
    ss7.ACN.setdefault("unknown-ac", (1, 2, 826, 0, 1, 1, 1))
    for name, sport, acn, otid in [("tcap-ac-extended", 31221, "anyTimeInfoEnquiry-v3-extended", 0x7421),
                                   ("tcap-ac-unknown", 31222, "unknown-ac", 0x7422)]:
        arg = {"subscriberIdentity": ("msisdn", ss7.isdn(ss7.HOME_MSISDN)),
               "requestedInfo": {"locationInformation": 0, "subscriberState": 0},
               "gsmSCF-Address": ss7.isdn(ss7.PARTNER_GT)}
        tcap_case(name, sport, ss7.tcap_begin(otid, acn, 71, "AnyTimeInterrogationArg", arg))
    # The standard application context, version 3, on a UL.
    out.case("control-tcap-ul-ac-v3", [sctp_data(PARTNER_V4, 31223, m3, 0x5E000223, 2400, 3, ul_m3ua(0x7423))])
    # Subsystem numbers the receiver's translation fills in: called SSN 0 ("unknown"), and a
    # calling party without SSN.
    tcap_case("tcap-called-ssn-0", 31224, ati_tcap(0x7424), called=(0, ss7.HOME_HLR_GT))
    udt = sccp_udt_no_calling_ssn(TO_HLR, ss7.PARTNER_GT, ati_tcap(0x7425))
    out.case("tcap-no-calling-ssn", [
        sctp_data(PARTNER_V4, 31225, m3, 0x5E000225, 2400, 3, ss7.m3ua_data(opc=0x1234, dpc=0x0A0B, sls=0, sccp=udt)),
        sctp_data(PARTNER_V4, 31225, m3, 0x5E000225, 2401, 3, ul_m3ua(0x7426)),
    ])
    # ISD for a home subscriber whose IMSI is 9 octets (TS 23.003 allows 3 to 8): the home
    # IMSI and one octet more. Built with an 8-octet placeholder, then patched: the IMSI [0]
    # and every enclosing length (argument, invoke, component portion, Begin) grow by one.
    isd = {"imsi": b"\x99" * 8, "msisdn": ss7.isdn(ss7.HOME_MSISDN)}
    t = bytearray(ss7.tcap_begin(0x7427, "subscriberDataMngt-v3", 7, "InsertSubscriberDataArg", isd))
    at = t.index(bytes([0x80, 0x08]) + b"\x99" * 8)
    t[at + 1:at + 10] = bytes([0x09]) + tbcd(ss7.HOME_IMSI) + b"\x00"
    assert t[at - 2] == 0x30, "the argument SEQUENCE right before the IMSI"
    t[at - 1] += 1
    t = grow(t, 1)
    tcap_case("tcap-isd-imsi-9-octets", 31227, t, called=(ss7.SSN_VLR, ss7.PARTNER_GT))
    # The same ISD for a partner subscriber, with a canonical 8-octet IMSI.
    tcap = ss7.tcap_begin(0x7428, "subscriberDataMngt-v3", 7, "InsertSubscriberDataArg",
                          {"imsi": tbcd(ss7.PARTNER_IMSI), "msisdn": ss7.isdn(ss7.PARTNER_GT)})
    udt = ss7.sccp_udt((ss7.SSN_VLR, ss7.PARTNER_GT), (ss7.SSN_HLR, ss7.PARTNER_GT), tcap)
    out.case("control-tcap-isd-partner-imsi", [
        sctp_data(PARTNER_V4, 31228, m3, 0x5E000228, 2400, 3, ss7.m3ua_data(opc=0x1234, dpc=0x0A0B, sls=0, sccp=udt)),
    ])

    # ---- M4: one SCTP packet beyond 2,048 bytes (the lab's MTU is raised for it): the ATI,
    # then the first 3,000 bytes of a longer message ----
    sport, vtag = 31231, 0x5E000231
    out.case("m4-ati-then-3000-byte-chunk", [
        sctp(PARTNER_V4, sport, m3, vtag, [data_chunk(2700, 3, ati_m3ua(0x7431)),
                                           data_chunk(2701, 3, b"\x01" * 3000, begin=True, end=False)]),
        sctp_data(PARTNER_V4, sport, m3, vtag, 2703, 3, ul_m3ua(0x7432)),
    ])

    # ---- M7: a burst of Category 1 on 30 associations of one peer, then one more message on
    # each: the events written are bounded, every flow is blocked all the same ----
    burst = range(32001, 32031)
    out.case("m7-ati-burst-30-associations",
             [sctp_data(PARTNER_V4, p, m3, 0x5E100000 + p, 2800, 3, ati_m3ua(0x75000000 + p)) for p in burst]
             + [sctp_data(PARTNER_V4, p, m3, 0x5E100000 + p, 2801, 3, ul_m3ua(0x76000000 + p)) for p in burst])

    # ---- First pass (XDP): frames whose class XDP cannot establish ----
    ati = SCTP(sport=31091, dport=m3, tag=0x5E000091) / data_chunk(2200, 3, ati_m3ua(0x70D1))
    chain = IPv6(src=NOBODY_V6, dst=EDGE6, hlim=64)
    for _ in range(7):
        chain = chain / IPv6ExtHdrDestOpt(options=[PadN(optdata=b"\0" * 4)])
    out.case("c2-ipv6-seven-destopts-from-nobody", [bytes(Ether(src=SRC_MAC, dst=DST_MAC) / chain / ati)])
    out.case("h9-three-vlan-tags-from-nobody", [bytes(Ether(src=SRC_MAC, dst=DST_MAC) / Dot1Q(vlan=0) / Dot1Q(vlan=0)
                                                      / Dot1Q(vlan=0) / IP(src=NOBODY_V4, dst=EDGE4) / ati)])
    orphan = ip_fragments(NOBODY_V4, SCTP(sport=31092, dport=m3, tag=0x5E000092)
                          / data_chunk(2300, 3, ati_m3ua(0x70D2)), 24)[1:]
    out.case("xdp-later-fragments-from-nobody", orphan)

    # ---- M1: a source port never chooses the class (docs/policy.md, "On a port") ----
    # TCP from the Diameter port to sshd: unclassifiable; the reply to a local Diameter client
    # (an ephemeral destination port) is Diameter.
    s = TcpStream(PARTNER_B_V4, dp, 22)
    out.case("m1-tcp-sport-3868-to-ssh", [s.segment(b"SSH-2.0-OpenSSH_9.6\r\n")])
    s = TcpStream(PARTNER_B_V4, dp, 40001)
    out.case("control-m1-tcp-sport-3868-reply", [s.segment(diameter.ulr("mme1." + diameter.PARTNER_B_REALM,
                                                                         diameter.PARTNER_B_REALM, 30))])
    # SCTP from the M3UA port to the S1AP port with S1AP's PPID 18: class sctp, which the
    # partner may not send; M3UA from the M3UA port to an ephemeral port is SIGTRAN.
    # S1 Setup Request (eNB 1 of PLMN 228-02, TAC 1, paging DRX 128), APER by pycrate.
    s1ap = bytes.fromhex("0011001f000003003b00080022f82000000010004000070000004022f8200089400140")
    out.case("m1-sctp-sport-2905-s1ap", [sctp_data(PARTNER_V4, m3, 36412, 0x5E000241, 2900, 18, s1ap)])
    # 36412 is in the ephemeral range, so the source port 2905 classes what carries no PPID of
    # its own as SIGTRAN, "a reply to a local client": the INIT that opens an association to
    # the S1AP server, and S1AP labelled PPID 0 (evasions.rs: the known gaps).
    out.case("m1-sctp-sport-2905-s1ap-init", [
        sctp(PARTNER_V4, m3, 36412, 0, [SCTPChunkInit(init_tag=0x5E000243, a_rwnd=65535, n_out_streams=2,
                                                      n_in_streams=2, init_tsn=2900)]),
    ])
    out.case("m1-sctp-sport-2905-s1ap-ppid0", [sctp_data(PARTNER_V4, m3, 36412, 0x5E000244, 2900 + i, 0, s1ap)
                                               for i in range(2)])
    out.case("control-m1-sctp-sport-2905-reply", [sctp_data(PARTNER_V4, m3, 40002, 0x5E000242, 2900, 3,
                                                            ul_m3ua(0x7441))])

    out.finish()


if __name__ == "__main__":
    main()
