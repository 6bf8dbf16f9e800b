#!/usr/bin/env python3
"""GTP attack cases: GTPv2-C (scapy.contrib.gtp_v2) on UDP 2123 and GTP-U G-PDUs
(scapy.contrib.gtp) on UDP 2152, including GTP-in-GTP.

Each case is one UDP flow of its own (a distinct source address): the first frame carries the
message under test, the next ones further messages of the same 5-tuple (new sequence numbers,
or ordinary user-plane G-PDUs). See README.md.
"""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Output, tbcd, udp  # noqa: E402
from scapy.all import IP, IPv6, UDP, load_contrib  # noqa: E402

load_contrib("gtp")
load_contrib("gtp_v2")
import scapy.contrib.gtp_v2 as g2  # noqa: E402
from scapy.contrib.gtp import GTP_U_Header, GTPHeader, GTPPDUSessionContainer  # noqa: E402

HOME_IMSI = "001010000000042"
PARTNER_IMSI = "228020000000007"  # partner plmn_ids = ["22802"]
THIRD_IMSI = "310150000000099"  # a PLMN that is neither ours nor the partner's
GTPC, GTPU = 2123, 2152

# F-TEID interface types (TS 29.274 §8.22)
S8_SGW_GTPC, S8_PGW_GTPC, S16_SGSN_GTPC, S10_MME_GTPC = 7, 9, 16, 12


def gtpv2(msg_type, teid, seq, ies):
    """A GTPv2-C message with a TEID; scapy computes the length."""
    hdr = g2.GTPHeader(version=2, P=0, T=1, MP=0, gtp_type=msg_type, teid=teid, seq=seq)  # scapy defaults P to 1
    body = b"".join(bytes(ie) for ie in ies)
    return bytes(hdr / body)


def create_session(seq, imsi, mcc, mnc, sgw_addr):
    """Create Session Request on S8 (SGW → PGW): IMSI, MSISDN, RAT, serving network, sender
    F-TEID, APN."""
    return gtpv2(32, 0, seq, [
        g2.IE_IMSI(IMSI=imsi),
        g2.IE_MSISDN(digits="41790001234"),
        g2.IE_ServingNetwork(MCC=mcc, MNC=mnc),
        g2.IE_RAT(RAT_type=6),  # EUTRAN
        g2.IE_FTEID(ipv4_present=1, InterfaceType=S8_SGW_GTPC, GRE_Key=0x1000 + seq, ipv4=sgw_addr),
        g2.IE_APN(APN="internet"),
    ])


def delete_pdn_connection_set(seq, node):
    """Delete PDN Connection Set Request (101, S5/S8 partial failure handling between an
    operator's own nodes): tears down every PDN connection of the node's CSID."""
    return gtpv2(101, 0, seq, [g2.IE_FQCSID(nodeid_type=0, num_csid=1, nodeid_v4=node, csid=0x0101)])


def context_request(seq, imsi, node):
    """Context Request (130, S3/S10/S16): asks for a subscriber's MM and bearer contexts."""
    return gtpv2(130, 0, seq, [
        g2.IE_IMSI(IMSI=imsi),
        g2.IE_FTEID(ipv4_present=1, InterfaceType=S10_MME_GTPC, GRE_Key=0x2000 + seq, ipv4=node),
        g2.IE_RAT(RAT_type=6),
    ])


def inner_v4(src, dst, sport, dport, payload):
    return bytes(IP(src=src, dst=dst, ttl=63) / UDP(sport=sport, dport=dport) / payload)


def gpdu(teid, inner):
    """GTPv1-U G-PDU (message type 255) carrying an inner IP packet."""
    return bytes(GTP_U_Header(teid=teid, gtp_type=255) / inner)


def gpdu_5g(teid, qfi, inner):
    """A G-PDU with a PDU Session Container extension header (TS 38.415, N3/N9), as a 5G UPF
    sends it: E flag, sequence number and N-PDU fields present, next extension type 0x85."""
    return bytes(GTP_U_Header(teid=teid, gtp_type=255, E=1, next_ex=0x85) / GTPPDUSessionContainer(type=1, QFI=qfi)
                 / inner)


def gtpv1c_sgsn_context_request(seq, imsi):
    """GTPv1-C SGSN Context Request (50, Gn/Gp between SGSNs): IMSI IE (type 2, TV, 8 octets)."""
    return bytes(GTPHeader(version=1, PT=1, S=1, gtp_type=50, teid=0, seq=seq) / (bytes([2]) + tbcd(imsi)))


def main():
    out = Output(__doc__)

    # 5. Messages that do not belong on the roaming interface, from the roaming partner.
    src = "198.18.1.31"
    out.case("gtpc-delete-pdn-connection-set",
             [udp(src, GTPC, GTPC, delete_pdn_connection_set(0x100 + i, src)) for i in range(4)])
    src = "198.18.1.32"
    out.case("gtpc-context-request",
             [udp(src, GTPC, GTPC, context_request(0x200 + i, HOME_IMSI, src)) for i in range(4)])

    # An IMSI of a third PLMN from the partner: an alert only (default), the flow keeps flowing.
    src = "198.18.1.33"
    out.case("gtpc-imsi-plmn-alert",
             [udp(src, GTPC, GTPC, create_session(0x300 + i, THIRD_IMSI, "310", "15", src)) for i in range(4)])

    # 6. GTP-in-GTP: a G-PDU whose inner packet is GTPv2-C (a Create Session Request towards an
    # inner PGW address), then ordinary user-plane G-PDUs on the same outer flow.
    src = "198.18.1.40"
    inner_cs = inner_v4("198.19.10.1", "198.19.20.1", GTPC, GTPC,
                        create_session(0x400, PARTNER_IMSI, "228", "02", "198.19.10.1"))
    user = lambda i: inner_v4("198.19.0.10", "198.19.99.1", 40000 + i, 9999, b"user-plane %d" % i)  # noqa: E731
    out.case("gtpu-gtp-in-gtp", [udp(src, GTPU, GTPU, gpdu(0x0A0B0C01, inner_cs))]
             + [udp(src, GTPU, GTPU, gpdu(0x0A0B0C01, user(i))) for i in range(3)])
    # The same over IPv6, the inner packet being a GTP-U G-PDU itself (tunnel in a tunnel).
    src6 = "2001:db8:1::40"
    inner_gtpu = inner_v4("198.19.10.2", "198.19.20.2", GTPU, GTPU, gpdu(0x0000BEEF, user(9)))
    out.case("gtpu-gtp-in-gtp-v6", [udp(src6, GTPU, GTPU, gpdu(0x0A0B0C02, inner_gtpu))]
             + [udp(src6, GTPU, GTPU, gpdu(0x0A0B0C02, user(i))) for i in range(3)])

    # A G-PDU with an extension header (5G PDU Session Container) around the inner GTPv2-C.
    src = "198.18.1.42"
    out.case("gtpu-gtp-in-gtp-ext-header", [udp(src, GTPU, GTPU, gpdu_5g(0x0A0B0C04, 9, inner_cs))]
             + [udp(src, GTPU, GTPU, gpdu_5g(0x0A0B0C04, 9, user(i))) for i in range(3)])
    # GTPv1-C on Gp: an SGSN Context Request for a home subscriber from the partner.
    src = "198.18.1.35"
    out.case("gtpv1c-sgsn-context-request",
             [udp(src, GTPC, GTPC, gtpv1c_sgsn_context_request(0x600 + i, HOME_IMSI)) for i in range(4)])

    # 7. Legitimate: a Create Session Request for a partner subscriber served in the partner's
    # network, and ordinary user-plane traffic.
    src = "198.18.1.34"
    out.case("gtpc-create-session-legit",
             [udp(src, GTPC, GTPC, create_session(0x500 + i, PARTNER_IMSI, "228", "02", src)) for i in range(3)])
    src = "198.18.1.41"
    out.case("gtpu-legit", [udp(src, GTPU, GTPU, gpdu(0x0A0B0C03, user(i))) for i in range(3)])

    out.finish()


if __name__ == "__main__":
    main()
