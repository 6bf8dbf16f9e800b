#!/usr/bin/env python3
"""SS7 attack cases over SIGTRAN: SCTP (scapy) / M3UA DATA (pycrate_mobile.M3UA) / SCCP UDT
(pycrate_mobile.SCCP) / TCAP Begin with a MAP Invoke (pycrate_asn1dir.TCAP_MAPv2v3, real BER
with the operation's argument and a dialogue portion carrying the application context).

Each case is one SCTP association (its own source port and verification tag): the first frame
carries the message under test, the next ones further Begins of the same association (new
TSN, stream sequence number and transaction id), which sigwall must drop in XDP once the flow
is blocked. See README.md for the numbering plan used.
"""

import os
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Output, data_chunk, sctp, sctp_data, tbcd  # noqa: E402
from pycrate_asn1dir import TCAP_MAPv2v3  # noqa: E402
from pycrate_mobile.M3UA import M3UA_DATA  # noqa: E402
from pycrate_mobile.SCCP import SCCPExtUnitData, SCCPUnitData  # noqa: E402

TCAP_MAP = TCAP_MAPv2v3.GLOBAL.MOD["TCAP-MAP-Messages"]["TCAP-MAP-Message"]

# Numbering plan (E.164 GTs, E.212 IMSIs): all fictional.
HOME_HLR_GT = "35191000001"  # our HLR (home_gt_prefixes = ["35191"])
HOME_VLR_GT = "35191000002"  # our MSC/VLR
HOME_MSISDN = "351910000042"  # one of our subscribers
HOME_IMSI = "001010000000042"  # home_imsi_prefixes = ["00101"]
PARTNER_GT = "41790000010"  # partner's MSC/VLR/gsmSCF (its gt_prefixes = ["4179"])
PARTNER_IMSI = "228020000000007"  # a partner subscriber (its plmn_ids = ["22802"])
OTHER_GT = "33609000001"  # a GT belonging to nobody configured (binding violation)

PARTNER_V4 = "198.18.1.10"
PARTNER_V6 = "2001:db8:1::10"
M3UA_PORT = 2905

# MAP application contexts (3GPP TS 29.002 §17.3.2), version last.
ACN = {
    "networkLocUp-v3": (0, 4, 0, 0, 1, 0, 1, 3),
    "locationCancellation-v3": (0, 4, 0, 0, 1, 0, 2, 3),
    "subscriberDataMngt-v3": (0, 4, 0, 0, 1, 0, 16, 3),
    "imsiRetrieval-v2": (0, 4, 0, 0, 1, 0, 26, 2),
    "subscriberInfoEnquiry-v3": (0, 4, 0, 0, 1, 0, 28, 3),
    "anyTimeInfoEnquiry-v3": (0, 4, 0, 0, 1, 0, 29, 3),
    "locationSvcGateway-v3": (0, 4, 0, 0, 1, 0, 37, 3),
    "locationSvcEnquiry-v3": (0, 4, 0, 0, 1, 0, 38, 3),
}

# SSNs (TS 23.003 / Q.713)
SSN_HLR, SSN_VLR, SSN_MSC, SSN_GMLC, SSN_SCF = 6, 7, 8, 145, 147


def isdn(digits):
    """ISDN-AddressString: international number, E.164, TBCD digits."""
    return b"\x91" + tbcd(digits)


def tcap_begin(otid, acn, op, arg_type, arg, invoke_id=1):
    """TCAP Begin: AARQ dialogue portion with `acn`, one Invoke of `op` with its argument."""
    TCAP_MAP.set_val(
        (
            "begin",
            {
                "otid": otid.to_bytes(4, "big"),
                "dialoguePortion": {
                    "direct-reference": (0, 0, 17, 773, 1, 1, 1),
                    "encoding": (
                        "single-ASN1-type",
                        (
                            "DialoguePDU",
                            ("dialogueRequest", {"protocol-version": (1, 1), "application-context-name": ACN[acn]}),
                        ),
                    ),
                },
                "components": [
                    (
                        "basicROS",
                        (
                            "invoke",
                            {
                                "invokeId": ("present", invoke_id),
                                "opcode": ("local", op),
                                "argument": (arg_type, arg),
                            },
                        ),
                    )
                ],
            },
        )
    )
    return TCAP_MAP.to_ber()


def party(addr, ssn, digits):
    """An SCCP party address: route on GT, GTI 4 (TT 0, E.164, BCD, international), SSN."""
    addr["Value"]["AddrInd"].set_val({"RoutingInd": 0, "GTInd": 4, "SSNInd": 1, "PCInd": 0})
    addr["Value"]["SSN"].set_val(ssn)
    gt = addr.get_gt()
    gt["TranslationType"].set_val(0)
    gt["NumberingPlan"].set_val(1)
    gt["NAI"].set_val(4)
    gt.set_addr_bcd(digits)


def sccp_udt(called, calling, data):
    """SCCP UDT, class 0 with return-on-error; `called`/`calling` are (ssn, gt digits)."""
    u = SCCPUnitData()
    u["ProtocolClass"].set_val({"Handling": 8, "Class": 0})
    party(u["CalledPartyAddr"], *called)
    party(u["CallingPartyAddr"], *calling)
    u["Data"].set_val({"Value": data})
    return u.to_bytes()


def sccp_xudt(called, calling, data):
    """SCCP XUDT (extended unitdata: hop counter, no segmentation)."""
    x = SCCPExtUnitData()
    x["ProtocolClass"].set_val({"Handling": 8, "Class": 1})
    x["HopCounter"].set_val(12)
    party(x["CalledPartyAddr"], *called)
    party(x["CallingPartyAddr"], *calling)
    x["Data"].set_val({"Value": data})
    return x.to_bytes()


def m3ua_data(opc, dpc, sls, sccp):
    """M3UA DATA (class 1 type 1) with one Protocol Data parameter: SI 3 (SCCP), NI 0."""
    m = M3UA_DATA()
    m["ParamsDATA"][0][2].set_val({"OPC": opc, "DPC": dpc, "SI": 3, "NI": 0, "MP": 0, "SLS": sls, "Data": sccp})
    return m.to_bytes()


def association(src, sport, vtag, messages, vlan=None):
    """One SCTP association from the partner to our STP: one DATA chunk (PPID 3) per message."""
    return [
        sctp_data(src, sport, M3UA_PORT, vtag, tsn=1000 + i, ppid=3, payload=m, stream=1, ssn=i, vlan=vlan)
        for i, m in enumerate(messages)
    ]


def messages(sport, called, calling, acn, op, arg_type, arg, n, sccp=sccp_udt):
    """`n` M3UA DATA messages, each a TCAP Begin (its own transaction id) with the Invoke."""
    out = []
    for i in range(n):
        tcap = tcap_begin(0x51000000 + sport * 16 + i, acn, op, arg_type, arg, invoke_id=1 + i)
        out.append(m3ua_data(opc=0x1234, dpc=0x0A0B, sls=i & 0x0F, sccp=sccp(called, calling, tcap)))
    return out


def case(out, name, sport, called, calling, acn, op, arg_type, arg, src=PARTNER_V4, followups=3, **kw):
    msgs = messages(sport, called, calling, acn, op, arg_type, arg, 1 + followups, **kw)
    out.case(name, association(src, sport, 0x5E000000 + sport, msgs))


def main():
    out = Output(__doc__)
    to_hlr = (SSN_HLR, HOME_HLR_GT)
    from_partner = lambda ssn: (ssn, PARTNER_GT)  # noqa: E731

    # 1. Category 1 from the partner (its own GT, so no binding issue): always blocked.
    ati = {
        "subscriberIdentity": ("msisdn", isdn(HOME_MSISDN)),
        "requestedInfo": {"locationInformation": 0, "subscriberState": 0},
        "gsmSCF-Address": isdn(PARTNER_GT),
    }
    case(out, "ss7-ati", 30001, to_hlr, from_partner(SSN_SCF), "anyTimeInfoEnquiry-v3", 71,
         "AnyTimeInterrogationArg", ati)
    psl = {
        "locationType": {"locationEstimateType": "currentLocation"},
        "mlc-Number": isdn(PARTNER_GT),
        "msisdn": isdn(HOME_MSISDN),
    }
    case(out, "ss7-psl", 30002, (SSN_MSC, HOME_VLR_GT), from_partner(SSN_GMLC), "locationSvcEnquiry-v3", 83,
         "ProvideSubscriberLocation-Arg", psl)
    sri_lcs = {"mlcNumber": isdn(PARTNER_GT), "targetMS": ("msisdn", isdn(HOME_MSISDN))}
    case(out, "ss7-sri-lcs", 30003, to_hlr, from_partner(SSN_GMLC), "locationSvcGateway-v3", 85,
         "RoutingInfoForLCS-Arg", sri_lcs)
    # sendIMSI over IPv6: its argument is a bare ISDN-AddressString.
    case(out, "ss7-send-imsi-v6", 30004, to_hlr, from_partner(SSN_VLR), "imsiRetrieval-v2", 58,
         "ISDN-AddressString", isdn(HOME_MSISDN), src=PARTNER_V6)

    # Transport variations of the same ATI: what a real STP may send and the decoders must follow.
    ati_args = (to_hlr, from_partner(SSN_SCF), "anyTimeInfoEnquiry-v3", 71, "AnyTimeInterrogationArg", ati)
    # SCCP XUDT instead of UDT.
    case(out, "ss7-ati-xudt", 30005, *ati_args, sccp=sccp_xudt)
    # An 802.1Q-tagged link.
    out.case("ss7-ati-vlan", association(PARTNER_V4, 30006, 0x5E007536, messages(30006, *ati_args, 4), vlan=100))
    # Bundled: a legitimate updateLocation and the ATI in two DATA chunks of one packet.
    sport, vtag = 30007, 0x5E007537
    ul_partner = {"imsi": tbcd(PARTNER_IMSI), "msc-Number": isdn(PARTNER_GT), "vlr-Number": isdn(PARTNER_GT)}
    ul = messages(sport + 100, to_hlr, from_partner(SSN_VLR), "networkLocUp-v3", 2, "UpdateLocationArg",
                  ul_partner, 1)[0]
    atis = messages(sport, *ati_args, 4)
    first = sctp(PARTNER_V4, sport, M3UA_PORT, vtag, [data_chunk(2000, 3, ul, stream=1, ssn=0),
                                                       data_chunk(2001, 3, atis[0], stream=2, ssn=0)])
    rest = [sctp_data(PARTNER_V4, sport, M3UA_PORT, vtag, 2002 + i, 3, m, stream=2, ssn=1 + i)
            for i, m in enumerate(atis[1:])]
    out.case("ss7-ati-bundled", [first] + rest)
    # Fragmented: the ATI's user message split over two DATA chunks in two packets (B, then E).
    sport, vtag = 30008, 0x5E007538
    atis = messages(sport, *ati_args, 3)
    h = len(atis[0]) // 2
    frags = [sctp(PARTNER_V4, sport, M3UA_PORT, vtag, [data_chunk(3000, 3, atis[0][:h], 1, 0, end=False)]),
             sctp(PARTNER_V4, sport, M3UA_PORT, vtag, [data_chunk(3001, 3, atis[0][h:], 1, 0, begin=False)])]
    rest = [sctp_data(PARTNER_V4, sport, M3UA_PORT, vtag, 3002 + i, 3, m, stream=1, ssn=1 + i)
            for i, m in enumerate(atis[1:])]
    out.case("ss7-ati-fragmented", frags + rest)

    # 2. Category 2 for a home subscriber from a foreign (non-home) GT.
    isd = lambda imsi: {  # noqa: E731
        "imsi": tbcd(imsi),
        "msisdn": isdn(HOME_MSISDN if imsi == HOME_IMSI else "41790001234"),
        "category": b"\x0a",
        "subscriberStatus": "serviceGranted",
    }
    case(out, "ss7-isd-home", 30011, (SSN_VLR, HOME_VLR_GT), from_partner(SSN_HLR), "subscriberDataMngt-v3", 7,
         "InsertSubscriberDataArg", isd(HOME_IMSI))
    cl = {"identity": ("imsi", tbcd(HOME_IMSI)), "cancellationType": "updateProcedure"}
    case(out, "ss7-cl-home", 30012, (SSN_VLR, HOME_VLR_GT), from_partner(SSN_HLR), "locationCancellation-v3", 3,
         "CancelLocationArg", cl)
    psi = {"imsi": tbcd(HOME_IMSI), "requestedInfo": {"locationInformation": 0, "subscriberState": 0}}
    case(out, "ss7-psi-home", 30013, (SSN_VLR, HOME_VLR_GT), from_partner(SSN_HLR), "subscriberInfoEnquiry-v3", 70,
         "ProvideSubscriberInfoArg", psi)
    # Negative control: the same ISD for the partner's own subscriber is legitimate.
    case(out, "ss7-isd-foreign-imsi", 30014, (SSN_VLR, HOME_VLR_GT), from_partner(SSN_HLR),
         "subscriberDataMngt-v3", 7, "InsertSubscriberDataArg", isd(PARTNER_IMSI))

    # 3. Binding: an otherwise legitimate updateLocation whose calling GT is not the partner's.
    ul = lambda gt: {  # noqa: E731
        "imsi": tbcd(PARTNER_IMSI),
        "msc-Number": isdn(gt),
        "vlr-Number": isdn(gt),
    }
    case(out, "ss7-gt-binding", 30021, to_hlr, (SSN_VLR, OTHER_GT), "networkLocUp-v3", 2, "UpdateLocationArg",
         ul(OTHER_GT))

    # 7. Legitimate: updateLocation for a partner subscriber from the partner's VLR.
    case(out, "ss7-ul-legit", 30031, to_hlr, from_partner(SSN_VLR), "networkLocUp-v3", 2, "UpdateLocationArg",
         ul(PARTNER_GT))

    out.finish()


if __name__ == "__main__":
    main()
