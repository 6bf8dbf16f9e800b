#!/usr/bin/env python3
"""Diameter attack cases (scapy.contrib.diameter), over TCP port 3868 and over SCTP with PPID 46.

Each case is one connection or association of its own: the first frame carries the request
under test, the next ones further requests on the same 5-tuple (new Session-Id, hop-by-hop
and end-to-end ids; TCP sequence numbers and SCTP TSNs advance). See README.md.
"""

import os
import struct
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Output, TcpStream, sctp_data  # noqa: E402
from scapy.all import load_contrib  # noqa: E402

load_contrib("diameter")
from scapy.contrib.diameter import AVP, AVP_Unknown, DiamReq  # noqa: E402

HOME_REALM = "epc.mnc001.mcc001.3gppnetwork.org"  # home_realms
HOME_IMSI = "001010000000042"  # home_imsi_prefixes = ["00101"]
PARTNER_IMSI = "228020000000007"  # a partner subscriber
PARTNER_REALM = "epc.mnc002.mcc228.3gppnetwork.org"  # partner's realms
PARTNER_B_REALM = "epc.mnc003.mcc228.3gppnetwork.org"  # partner-b's realms

PARTNER_V4 = "198.18.1.20"
PARTNER_V6 = "2001:db8:1::20"
PARTNER_B_V4 = "198.18.2.20"
DIAMETER_PORT = 3868

APP_S6A = 16777251
APP_S13 = 16777252
APP_SLG = 16777255
VENDOR_3GPP = 10415


def vendor_avp(code, val):
    """A 3GPP vendor AVP (V and M set) scapy's dictionary does not know."""
    return AVP_Unknown(avpCode=code, avpFlags=0xC0, avpVnd=VENDOR_3GPP, val=val)


def u32(v):
    return struct.pack(">I", v)


def request(cmd, app, origin_host, origin_realm, n, avps, dest_realm=HOME_REALM):
    """A request with the base AVPs every S6a/SLg request has, then `avps`."""
    head = [
        AVP("Session-Id", val=f"{origin_host};1700000000;{n}"),
        AVP("Vendor-Specific-Application-Id", val=[AVP("Vendor-Id", val=VENDOR_3GPP),
                                                  AVP("Auth-Application-Id", val=app)]),
        AVP("Auth-Session-State", val=1),  # NO_STATE_MAINTAINED
        AVP("Origin-Host", val=origin_host),
        AVP("Origin-Realm", val=origin_realm),
        AVP("Destination-Realm", val=dest_realm),
    ]
    return bytes(
        DiamReq(cmd, drAppId=app, drHbHId=0x7000_0000 + n, drEtEId=0x0C00_0000 + n, avpList=head + avps)
    )


def plr(host, realm, n):
    """Provide-Location-Request (SLg, TS 29.172): where is this (home) subscriber, now."""
    return request("PLR", APP_SLG, host, realm, n, [
        AVP("SLg-Location-Type", val=0),  # CURRENT_LOCATION
        AVP("User-Name", val=HOME_IMSI),
        AVP("LCS-EPS-Client-Name", val=[vendor_avp(1238, b"sigwall-attack-client"),  # LCS-Name-String
                                        vendor_avp(1237, u32(2))]),  # LCS-Format-Indicator: MSISDN
        vendor_avp(1241, u32(0)),  # LCS-Client-Type: EMERGENCY_SERVICES
    ])


def idr(host, realm, n, imsi=HOME_IMSI):
    """Insert-Subscriber-Data-Request (S6a, TS 29.272) for `imsi`."""
    return request("IDR", APP_S6A, host, realm, n, [
        AVP("Destination-Host", val="mme1." + HOME_REALM),
        AVP("User-Name", val=imsi),
        AVP("Subscription-Data", val=[AVP("Subscriber-Status", val=0)]),  # SERVICE_GRANTED
        AVP("IDR-Flags", val=0),
    ])


def clr(host, realm, n, imsi=HOME_IMSI):
    """Cancel-Location-Request (S6a) for `imsi`."""
    return request("CLR", APP_S6A, host, realm, n, [
        AVP("Destination-Host", val="mme1." + HOME_REALM),
        AVP("User-Name", val=imsi),
        AVP("Cancellation-Type", val=2),  # SUBSCRIPTION_WITHDRAWAL
    ])


def ulr(host, realm, n, imsi=HOME_IMSI):
    """Update-Location-Request (S6a): a home subscriber attaches in the partner's network."""
    return request("ULR", APP_S6A, host, realm, n, [
        AVP("User-Name", val=imsi),
        AVP("RAT-Type", val=1004),  # EUTRAN
        AVP("ULR-Flags", val=0x22),  # S6a/S6d indicator, initial attach
        AVP("Visited-PLMN-Id", val=b"\x22\xf8\x20"),  # MCC 228, MNC 02
    ])


def air(host, realm, n, imsi=HOME_IMSI):
    """Authentication-Information-Request (S6a)."""
    return request("AIR", APP_S6A, host, realm, n, [
        AVP("User-Name", val=imsi),
        AVP("Requested-EUTRAN-Authentication-Info", val=[AVP("Number-Of-Requested-Vectors", val=1)]),
        AVP("Visited-PLMN-Id", val=b"\x22\xf8\x20"),
    ])


def ecr(host, realm, n):
    """ME-Identity-Check-Request (S13, TS 29.272): an application the partner may not use."""
    return request("ECR", APP_S13, host, realm, n, [
        AVP("Terminal-Information", val=[AVP("IMEI", val="35291100123456")]),
        AVP("User-Name", val=HOME_IMSI),
    ])


def over_tcp(src, sport, messages):
    s = TcpStream(src, sport, DIAMETER_PORT)
    return [s.segment(m) for m in messages]


def over_sctp(src, sport, messages):
    return [
        sctp_data(src, sport, DIAMETER_PORT, 0xD1A00000 + sport, tsn=5000 + i, ppid=46, payload=m, ssn=i)
        for i, m in enumerate(messages)
    ]


def main():
    out = Output(__doc__)
    gmlc = "gmlc1." + PARTNER_REALM
    hss = "hss1." + PARTNER_REALM
    mme = "mme1." + PARTNER_REALM
    n4 = range(4)  # the message under test and three more on the same flow

    # 4. Location requests (blocked commands) and IDR/CLR for a home subscriber from a foreign realm.
    out.case("dia-plr-tcp", over_tcp(PARTNER_V4, 40101, [plr(gmlc, PARTNER_REALM, i) for i in n4]))
    out.case("dia-plr-sctp", over_sctp(PARTNER_V4, 40102, [plr(gmlc, PARTNER_REALM, 10 + i) for i in n4]))
    out.case("dia-idr-tcp", over_tcp(PARTNER_V4, 40103, [idr(hss, PARTNER_REALM, 20 + i) for i in n4]))
    out.case("dia-clr-sctp-v6", over_sctp(PARTNER_V6, 40104, [clr(hss, PARTNER_REALM, 30 + i) for i in n4]))
    # An application outside the partner's diameter_apps.
    out.case("dia-app-not-allowed", over_tcp(PARTNER_V4, 40105, [ecr(mme, PARTNER_REALM, 40 + i) for i in n4]))

    # Transport variations: a legitimate ULR and the PLR in one TCP segment; a PLR split over two
    # segments; Diameter over SCTP with PPID 0 (unspecified) on the Diameter port.
    s = TcpStream(PARTNER_V4, 40106, DIAMETER_PORT)
    out.case("dia-ulr-plr-one-segment", [s.segment(ulr(mme, PARTNER_REALM, 100) + plr(gmlc, PARTNER_REALM, 101))]
             + [s.segment(plr(gmlc, PARTNER_REALM, 102 + i)) for i in range(3)])
    s = TcpStream(PARTNER_V4, 40107, DIAMETER_PORT)
    m = plr(gmlc, PARTNER_REALM, 110)
    out.case("dia-plr-split", [s.segment(m[:60]), s.segment(m[60:])]
             + [s.segment(plr(gmlc, PARTNER_REALM, 111 + i)) for i in range(2)])
    out.case("dia-plr-sctp-ppid0", [
        sctp_data(PARTNER_V4, 40108, DIAMETER_PORT, 0xD1A09CAC, 6000 + i, 0, plr(gmlc, PARTNER_REALM, 120 + i), ssn=i)
        for i in n4
    ])

    # 3. Binding: partner-b claims the partner's realm (rule configured block-peer in the test).
    out.case("dia-realm-binding",
             over_tcp(PARTNER_B_V4, 40111, [ulr(mme, PARTNER_REALM, 50 + i) for i in range(1)]))
    # partner-b's next packets on a different connection (and a legitimate one): quarantined.
    out.case("dia-partner-b-other-flow",
             over_tcp(PARTNER_B_V4, 40112, [ulr("mme1." + PARTNER_B_REALM, PARTNER_B_REALM, 60 + i) for i in range(2)]))

    # 7. Legitimate: ULR and AIR from the partner's MME for a home subscriber roaming there.
    out.case("dia-ulr-legit", over_tcp(PARTNER_V4, 40121, [ulr(mme, PARTNER_REALM, 70 + i) for i in range(3)]))
    out.case("dia-air-legit-sctp",
             over_sctp(PARTNER_V4, 40122, [air(mme, PARTNER_REALM, 80 + i) for i in range(3)]))
    # Negative control: an IDR from the partner's HSS for the partner's own subscriber.
    out.case("dia-idr-foreign-imsi",
             over_tcp(PARTNER_V4, 40123, [idr(hss, PARTNER_REALM, 90 + i, PARTNER_IMSI) for i in range(3)]))

    out.finish()


if __name__ == "__main__":
    main()
