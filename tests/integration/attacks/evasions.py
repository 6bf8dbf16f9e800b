#!/usr/bin/env python3
"""Known evasions: attacks that tshark decodes but sigwall's inspection does not see today
(the `known_evasions` test, ignored until they are handled; see README.md).

- a GTPv2-C Context Request piggybacked (P flag) behind a harmless Create Session Request;
- an anyTimeInterrogation in an SCTP I-DATA chunk (RFC 8260) instead of a DATA chunk;
- an anyTimeInterrogation over SUA (RFC 3868, PPID 4) instead of M3UA.
"""

import os
import struct
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gtp  # noqa: E402
import ss7  # noqa: E402
from common import Output, sctp, sctp_data, tbcd, udp  # noqa: E402
from scapy.layers.sctp import SCTPChunkIData  # noqa: E402

PARTNER_V4 = "198.18.1.70"


def ati_tcap(otid):
    arg = {
        "subscriberIdentity": ("msisdn", ss7.isdn(ss7.HOME_MSISDN)),
        "requestedInfo": {"locationInformation": 0, "subscriberState": 0},
        "gsmSCF-Address": ss7.isdn(ss7.PARTNER_GT),
    }
    return ss7.tcap_begin(otid, "anyTimeInfoEnquiry-v3", 71, "AnyTimeInterrogationArg", arg)


def ati_m3ua(otid):
    udt = ss7.sccp_udt((ss7.SSN_HLR, ss7.HOME_HLR_GT), (ss7.SSN_SCF, ss7.PARTNER_GT), ati_tcap(otid))
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


def main():
    out = Output(__doc__)

    # A Create Session Request (fine on S8) with the P flag, then a Context Request (130).
    src = "198.18.1.36"
    msgs = []
    for i in range(4):
        csr = bytearray(gtp.create_session(0x700 + i, gtp.PARTNER_IMSI, "228", "02", src))
        csr[0] |= 0x10  # P: a message is piggybacked
        msgs.append(udp(src, gtp.GTPC, gtp.GTPC, bytes(csr) + gtp.context_request(0x780 + i, gtp.HOME_IMSI, src)))
    out.case("evasion-gtpv2-piggybacked-context-request", msgs)

    # ATI in I-DATA chunks on the SIGTRAN port.
    sport, vtag = 30201, 0x5E0075F9
    out.case("evasion-sctp-idata-ati", [
        sctp(PARTNER_V4, sport, ss7.M3UA_PORT, vtag,
             [SCTPChunkIData(beginning=1, ending=1, tsn=100 + i, stream_id=1, message_id=i, ppid_fsn=3,
                             data=ati_m3ua(0x7100 + i))])
        for i in range(4)
    ])

    # ATI over SUA.
    out.case("evasion-sua-ati", [
        sctp_data(PARTNER_V4, 30202, 14001, 0x5E0075FA, 200 + i, 4, sua_cldt(ati_tcap(0x7200 + i)), ssn=i)
        for i in range(4)
    ])

    out.finish()


if __name__ == "__main__":
    main()
