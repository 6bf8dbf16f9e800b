#!/usr/bin/env python3
"""Subscriber-state cases (location plausibility, velocity, SMS firewall, correlation) for
`tests/integration/src/tests/subscriber.rs`, from the same independent encoders as ss7.py,
diameter.py and gtp.py: scapy below the payload, pycrate's M3UA, SCCP and TCAP/MAP (with the
MAP-OpenInfo user information that names the subscriber of a registerSS), scapy's Diameter and
GTPv2. The SMS TPDUs are laid out by hand after TS 23.040 and read back by pycrate's
TS23040_SMS decoder here (and by tshark in the test) before use.

Unlike the other generators, the cases are stateful: the test sends them in the order below
(see subscriber.rs), each on its own flow. Names say what they are; `n` followups each.

A registration counts only once the home network accepts it (docs/subscriber.md): the
`*-accepted` cases are the home HLR's and HSS's answers, sent from the `home` peer (the home
network's own link, bound to the home GTs and realm), one per request frame of the case they
answer (same transaction ids).
"""

import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import Output, tbcd, udp  # noqa: E402
from diameter import APP_S6A, HOME_REALM, VENDOR_3GPP, over_tcp, ulr  # noqa: E402
from gtp import create_session  # noqa: E402
from pycrate_mobile.TS23040_SMS import SMS_DELIVER, SMS_SUBMIT  # noqa: E402
from scapy.contrib.diameter import AVP, DiamAns  # noqa: E402
from ss7 import (  # noqa: E402
    HOME_HLR_GT,
    HOME_IMSI,
    HOME_MSISDN,
    HOME_VLR_GT,
    PARTNER_GT,
    SSN_HLR,
    SSN_MSC,
    SSN_VLR,
    TCAP_MAP,
    association,
    isdn,
    m3ua_data,
    sccp_udt,
)

HOME_IMSI2 = "001010000000043"  # a second home subscriber, never SRI-SM'd
PARTNER_CH2_GT = "41760000010"  # a second Swiss network (partner-ch2, +41 76)
PARTNER_AU_GT = "61400000010"  # an Australian network (partner-au)
PARTNER_B_GT = "33609000001"  # partner-b (France)
OTA_GT = "41790000990"  # the partner-hosted OTA platform (ota_platforms = ["4179000099"])
PARTNER_SMSC = "41790000050"
HOME_SMSC = "35191000099"

SRC = {"partner": "198.18.1.30", "partner-b": "198.18.2.30", "partner-ch2": "198.18.3.30",
       "partner-au": "198.18.4.30", "home": "198.18.9.30"}

MAP_DIALOGUE_AS = (0, 4, 0, 0, 1, 1, 1, 1)
ACN = {
    "networkLocUp-v3": (0, 4, 0, 0, 1, 0, 1, 3),
    "networkFunctionalSs-v2": (0, 4, 0, 0, 1, 0, 18, 2),
    "shortMsgGateway-v3": (0, 4, 0, 0, 1, 0, 20, 3),
    "shortMsgMO-Relay-v3": (0, 4, 0, 0, 1, 0, 21, 3),
    "shortMsgMT-Relay-v3": (0, 4, 0, 0, 1, 0, 25, 3),
}


def begin(otid, acn, op, arg_type, arg, dest_ref=None, orig_ref=None):
    """TCAP Begin: AARQ with `acn` (and MAP-OpenInfo references if given), one Invoke."""
    req = {"protocol-version": (1, 1), "application-context-name": ACN[acn]}
    if dest_ref or orig_ref:
        oi = {}
        if dest_ref:
            oi["destinationReference"] = dest_ref
        if orig_ref:
            oi["originationReference"] = orig_ref
        req["user-information"] = [{"direct-reference": MAP_DIALOGUE_AS,
                                    "encoding": ("single-ASN1-type", ("MAP-DialoguePDU", ("map-open", oi)))}]
    TCAP_MAP.set_val(("begin", {
        "otid": otid.to_bytes(4, "big"),
        "dialoguePortion": {"direct-reference": (0, 0, 17, 773, 1, 1, 1),
                            "encoding": ("single-ASN1-type", ("DialoguePDU", ("dialogueRequest", req)))},
        "components": [("basicROS", ("invoke", {"invokeId": ("present", 1), "opcode": ("local", op),
                                                "argument": (arg_type, arg)}))],
    }))
    return TCAP_MAP.to_ber()


def end_result(dtid, op, res_type, res):
    """TCAP End with a ReturnResultLast of `op`."""
    TCAP_MAP.set_val(("end", {
        "dtid": dtid.to_bytes(4, "big"),
        "components": [("basicROS", ("returnResult", {"invokeId": ("present", 1),
                                                      "result": {"opcode": ("local", op),
                                                                 "result": (res_type, res)}}))],
    }))
    return TCAP_MAP.to_ber()


def ula(origin_host, n, result=2001):
    """The HSS's Update-Location-Answer to diameter.ulr(origin_host, …, n): same Session-Id and
    End-to-End Identifier (the Hop-by-Hop one is the home side's own)."""
    return bytes(DiamAns("ULA", drAppId=APP_S6A, drHbHId=0x7100_0000 + n, drEtEId=0x0C00_0000 + n, avpList=[
        AVP("Session-Id", val=f"{origin_host};1700000000;{n}"),
        AVP("Vendor-Specific-Application-Id", val=[AVP("Vendor-Id", val=VENDOR_3GPP),
                                                  AVP("Auth-Application-Id", val=APP_S6A)]),
        AVP("Result-Code", val=result),
        AVP("Auth-Session-State", val=1),
        AVP("Origin-Host", val="hss1." + HOME_REALM),
        AVP("Origin-Realm", val=HOME_REALM),
    ]))


def ss7_case(out, name, src, sport, called, calling, tcaps):
    """One association; each TCAP message in its own M3UA DATA and packet."""
    msgs = [m3ua_data(opc=0x1234, dpc=0x0A0B, sls=i & 0x0F, sccp=sccp_udt(called, calling, t))
            for i, t in enumerate(tcaps)]
    out.case(name, association(SRC[src], sport, 0x5F000000 + sport, msgs))


def repeat(n, sport, make):
    """`n` TCAP messages from `make(otid)`, distinct transaction ids."""
    return [make(0x52000000 + sport * 16 + i) for i in range(n)]


def addr(digits, ton_npi=0x91):
    d = digits + ("F" if len(digits) % 2 else "")
    return bytes([len(digits), ton_npi]) + bytes(int(d[i + 1], 16) << 4 | int(d[i], 16) for i in range(0, len(d), 2))


def checked(raw, cls):
    p = cls()
    p.from_bytes(raw)
    assert p.to_bytes() == raw, "pycrate reads the TPDU back differently"
    return raw


SCTS = bytes.fromhex("62102102000000")


def deliver(oa, pid, dcs, ud, udhi=False, septets=None):
    udl = septets if septets is not None else len(ud)
    raw = bytes([0x04 | (0x40 if udhi else 0)]) + addr(oa) + bytes([pid, dcs]) + SCTS + bytes([udl]) + ud
    return checked(raw, SMS_DELIVER)


# The Simjacker-style push: (U)SIM data download, class-2 8-bit, UDH command packet (IEI 0x70).
OTA_UD = bytes([2, 0x70, 0x00]) + bytes.fromhex("0270000016021212b00000000000000000000000") + b"\xd0" * 8
OTA_TPDU = deliver("41790000990", 0x7F, 0xF6, OTA_UD, udhi=True)
TEXT_TPDU = deliver("41791234567", 0x00, 0x00, bytes.fromhex("e8329bfd06"), septets=5)  # "hello"
SUBMIT_TPDU = checked(bytes([0x11, 0x07]) + addr("41791234567") + bytes([0, 0, 0xA7, 2]) + bytes.fromhex("e834"),
                      SMS_SUBMIT)


def mt_fsm(imsi, sc, tpdu):
    return ("MT-ForwardSM-Arg", {"sm-RP-DA": ("imsi", tbcd(imsi)), "sm-RP-OA": ("serviceCentreAddressOA", isdn(sc)),
                                 "sm-RP-UI": tpdu})


def main():
    out = Output(__doc__)
    to_hlr, to_vlr, to_msc = (SSN_HLR, HOME_HLR_GT), (SSN_VLR, HOME_VLR_GT), (SSN_MSC, HOME_VLR_GT)
    imsi_ref = b"\x91" + tbcd(HOME_IMSI)  # destinationReference: the IMSI as an AddressString

    # registerSS: unconditional call forwarding to a partner number, for a home subscriber.
    def register_ss(gt, sport):
        return lambda otid: begin(otid, "networkFunctionalSs-v2", 10, "RegisterSS-Arg",
                                  {"ss-Code": b"\x21", "forwardedToNumber": isdn(gt[:-3] + "999")},
                                  dest_ref=imsi_ref, orig_ref=isdn(gt))
    # 1-3: from the partner, subscriber at home: learn, alert, enforce (three flows).
    for i, mode in enumerate(["learn", "alert", "enforce"]):
        sport = 31001 + i
        ss7_case(out, f"register-ss-at-home-{mode}", "partner", sport, to_hlr, (SSN_VLR, PARTNER_GT),
                 repeat(4, sport, register_ss(PARTNER_GT, sport)))

    def ul(gt, imsi=HOME_IMSI):
        return lambda otid: begin(otid, "networkLocUp-v3", 2, "UpdateLocationArg",
                                  {"imsi": tbcd(imsi), "msc-Number": isdn(gt), "vlr-Number": isdn(gt)})
    # The home HLR accepts the updateLocations of the case sent from `sport` (TC-END with a
    # ReturnResultLast, dtid: each request's otid), on the home network's own link.
    def ul_accepted(name, sport, vlr_gt, answer_sport):
        ss7_case(out, name, "home", answer_sport, (SSN_VLR, vlr_gt), (SSN_HLR, HOME_HLR_GT),
                 [end_result(0x52000000 + sport * 16 + i, 2, "UpdateLocationRes", {"hlr-Number": isdn(HOME_HLR_GT)})
                  for i in range(2)])
    # 4: the subscriber registers in the partner's network (Switzerland), and the HLR accepts.
    ss7_case(out, "ul-partner", "partner", 31011, to_hlr, (SSN_VLR, PARTNER_GT), repeat(2, 31011, ul(PARTNER_GT)))
    ul_accepted("ul-partner-accepted", 31011, PARTNER_GT, 31111)
    # 5: negative control: registerSS from that same network.
    ss7_case(out, "register-ss-from-serving-network", "partner", 31012, to_hlr, (SSN_VLR, PARTNER_GT),
             repeat(2, 31012, register_ss(PARTNER_GT, 31012)))
    # 6: registerSS from partner-b (France), where the subscriber is not.
    ss7_case(out, "register-ss-from-other-network", "partner-b", 31013, to_hlr, (SSN_VLR, PARTNER_B_GT),
             repeat(2, 31013, register_ss(PARTNER_B_GT, 31013)))
    # 7: negative control for velocity: another Swiss network a moment later (possible).
    ss7_case(out, "ul-partner-ch2", "partner-ch2", 31014, to_hlr, (SSN_VLR, PARTNER_CH2_GT),
             repeat(2, 31014, ul(PARTNER_CH2_GT)))
    ul_accepted("ul-partner-ch2-accepted", 31014, PARTNER_CH2_GT, 31114)
    # 8: Australia a moment later: impossible travel.
    ss7_case(out, "ul-partner-au", "partner-au", 31015, to_hlr, (SSN_VLR, PARTNER_AU_GT),
             repeat(2, 31015, ul(PARTNER_AU_GT)))
    # (The HLR accepts it: velocity alerts, it does not decide what the HLR does.)
    ul_accepted("ul-partner-au-accepted", 31015, PARTNER_AU_GT, 31115)
    # 8b: a French VLR's updateLocation for the second home subscriber that the HLR never
    #     answers: a claim only; registerSS from there afterwards is still implausible (state
    #     poisoning, docs/subscriber.md).
    ss7_case(out, "ul-partner-b-unanswered", "partner-b", 31016, to_hlr, (SSN_VLR, PARTNER_B_GT),
             repeat(2, 31016, ul(PARTNER_B_GT, HOME_IMSI2)))
    imsi2_ref = b"\x91" + tbcd(HOME_IMSI2)
    ss7_case(out, "register-ss-after-unanswered-ul", "partner-b", 31017, to_hlr, (SSN_VLR, PARTNER_B_GT),
             repeat(2, 31017, lambda otid: begin(otid, "networkFunctionalSs-v2", 10, "RegisterSS-Arg",
                                                 {"ss-Code": b"\x21", "forwardedToNumber": isdn("33609000999")},
                                                 dest_ref=imsi2_ref, orig_ref=isdn(PARTNER_B_GT))))

    # 9: the home HLR answers an SRI-SM for the home subscriber (seen leaving through the edge).
    sri_res = {"imsi": tbcd(HOME_IMSI), "locationInfoWithLMSI": {"networkNode-Number": isdn(HOME_VLR_GT)}}
    ss7_case(out, "sri-sm-answered-by-home", "home", 31021, (8, PARTNER_SMSC), (SSN_HLR, HOME_HLR_GT),
             [end_result(0x53000000 + i, 45, "RoutingInfoForSM-Res", sri_res) for i in range(2)])
    # 10: MT-forwardSM with a SIM OTA command packet from the partner's SMSC.
    ss7_case(out, "mt-sms-sim-ota", "partner", 31022, to_msc, (8, PARTNER_SMSC),
             repeat(3, 31022, lambda o: begin(o, "shortMsgMT-Relay-v3", 44, *mt_fsm(HOME_IMSI, PARTNER_SMSC, OTA_TPDU))))
    # 11: negative control: the same TPDU from the configured OTA platform.
    ss7_case(out, "mt-sms-sim-ota-from-platform", "partner", 31023, to_msc, (8, OTA_GT),
             repeat(2, 31023, lambda o: begin(o, "shortMsgMT-Relay-v3", 44, *mt_fsm(HOME_IMSI, OTA_GT, OTA_TPDU))))
    # 12: a text SMS whose service centre address claims the home network (faked).
    ss7_case(out, "mt-sms-faked-sc", "partner", 31024, to_msc, (8, PARTNER_SMSC),
             repeat(2, 31024, lambda o: begin(o, "shortMsgMT-Relay-v3", 44, *mt_fsm(HOME_IMSI, HOME_SMSC, TEXT_TPDU))))
    # 13: a text SMS for a home subscriber nobody asked the home HLR about (home-routing bypass).
    ss7_case(out, "mt-sms-no-sri-sm", "partner", 31025, to_msc, (8, PARTNER_SMSC),
             repeat(2, 31025, lambda o: begin(o, "shortMsgMT-Relay-v3", 44, *mt_fsm(HOME_IMSI2, PARTNER_SMSC, TEXT_TPDU))))
    # 14: negative control: a text SMS after the SRI-SM, from the partner's SMSC.
    ss7_case(out, "mt-sms-legit", "partner", 31026, to_msc, (8, PARTNER_SMSC),
             repeat(2, 31026, lambda o: begin(o, "shortMsgMT-Relay-v3", 44, *mt_fsm(HOME_IMSI, PARTNER_SMSC, TEXT_TPDU))))
    mo = {"sm-RP-DA": ("serviceCentreAddressDA", isdn(HOME_SMSC)), "sm-RP-OA": ("msisdn", isdn(HOME_MSISDN)),
          "sm-RP-UI": SUBMIT_TPDU, "imsi": tbcd(HOME_IMSI)}
    # 15: MO SMS "from" the home subscriber out of France, where it is not registered (spoofed).
    ss7_case(out, "mo-sms-spoofed", "partner-b", 31031, (8, HOME_SMSC), (SSN_MSC, PARTNER_B_GT),
             repeat(2, 31031, lambda o: begin(o, "shortMsgMO-Relay-v3", 46, "MO-ForwardSM-Arg", mo)))
    # 16: negative control: the same from Australia, where it is registered now.
    ss7_case(out, "mo-sms-from-serving-network", "partner-au", 31032, (8, HOME_SMSC), (SSN_MSC, PARTNER_AU_GT),
             repeat(2, 31032, lambda o: begin(o, "shortMsgMO-Relay-v3", 46, "MO-ForwardSM-Arg", mo)))

    # 17: Diameter ULR from the partner's MME (Switzerland) while MAP has the subscriber in
    #     Australia seconds ago: one correlated event naming both.
    realm = "epc.mnc002.mcc228.3gppnetwork.org"
    out.case("dia-ulr-while-map-in-au", over_tcp(SRC["partner"], 31041, [ulr("mme1." + realm, realm, 41)] * 1))
    # 17b: the HSS accepts it (ULA 2001 from the home realm on the home link).
    out.case("dia-ula-accepted", over_tcp(SRC["home"], 31042, [ula("mme1." + realm, 41)]))
    # 18: GTPv2 Create Session from the partner, serving network 228/02, like the ULR: clean.
    out.case("gtpc-csr-matches-eps", [udp(SRC["partner"], 2123, 2123, create_session(0x4101, HOME_IMSI, "228", "02",
                                                                                          SRC["partner"]))])
    # 19: GTPv2 Create Session claiming serving network 208/01 (France) from partner-b.
    out.case("gtpc-csr-other-network", [udp(SRC["partner-b"], 2123, 2123, create_session(0x4102, HOME_IMSI, "208", "01",
                                                                                              SRC["partner-b"]))])
    out.finish()


if __name__ == "__main__":
    main()
