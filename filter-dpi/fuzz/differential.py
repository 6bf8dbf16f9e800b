#!/usr/bin/env python3
"""Differential fuzzing: sigwall's decoders against an independent one, per decoder family.

Generates messages with random field values, mutates most of them (byte flips, interesting
values, truncation, insertion, duplication), decodes each with an oracle (pycrate; tshark where
pycrate lacks the protocol) and with sigwall (`dpi-fields`, a small binary on filter-dpi that
prints the fields as JSON lines), and compares the security-relevant fields:

  family     generated and mutated; compared                                     oracle
  tcap_map   M3UA/SCCP fixed, TCAP/MAP generated and mutated: message type, transaction ids,
             per component kind, invoke id, operation code, IMSI, MSISDN   (pycrate TCAP_MAPv2v3)
  sccp_m3ua  TCAP fixed, M3UA and SCCP generated and mutated: OPC, DPC, SI, called and calling
             routing indicator, SSN, global-title digits                 (pycrate SIGTRAN, SCCP)
  sccp_m2pa  the same SCCP in MTP3 (SIO, ITU routing label) in an M2PA User Data (RFC 4165):
             OPC, DPC, SI, called/calling RI, PC, SSN, GT digits     (pycrate SIGTRAN M2PA, MTP3,
                                                                      SCCP)
  sccp_m2ua  the same in M2UA MAUP DATA (RFC 3331: Interface Identifier, Protocol Data 1):
             the same fields                                            (tshark, m2ua/mtp3/sccp)
  sccp_sua   SUA CLDT (RFC 3868), Source/Destination Address with GT, PC, SSN, TCAP as Data:
             called/calling RI, PC, SSN, GT digits                               (tshark, sua)
  diameter   command code, R flag, application id, Origin/Destination Host/Realm, User-Name
             (first top-level occurrence)                                 (pycrate_diameter)
  gtp        GTPv2-C: message type, TEID, sequence, IMSI, MSISDN, APN    (pycrate TS29274_GTPC)
  gtpv1      GTPv1-C (TS 29.060: Echo, Create PDP Context Request/Response, SGSN Context
             Request): version, type, TEID, sequence, IMSI, MSISDN, APN (pycrate TS29060_GTP)
  sms_tpdu   SMS-DELIVER and SMS-SUBMIT (TS 23.040) with TP-PID (0x7F SIM data download...),
             TP-DCS (class-2 8-bit 0xF6...), UDH IEIs (0x70/0x71 command packets, 0x00/0x08
             concatenation...): TP-MTI, PID, DCS, TON, OA/DA digits, UDHI, the UDH's IEIs in
             order (dpi-fields `sms-deliver` / `sms-submit`)           (pycrate TS23040_SMS)

The tshark families write each batch to one pcap (every message in Ethernet/IPv4/SCTP DATA
with the layer's PPID and port, CRC32c right) and run tshark once per batch.

Each execution lands in one class:
  agree       both decode and every compared field is equal;
  both_reject neither decodes it cleanly;
  flagged     pycrate decodes, sigwall reports an error or a non-canonical finding: the message
              is judged malformed (fail closed) - safe, counted, not a disagreement;
  lenient     sigwall decodes cleanly what pycrate rejects (sigwall reads more than the oracle;
              the receiver, not pycrate, decides what is delivered) - counted, sampled;
  disagree    both decode cleanly and a field differs: a bug in one of them. Every one is
              written to --out with its hex for explanation;
  oracle_desync  (gtp, gtpv1) pycrate lost the IE boundaries (GTPv2: it sizes fixed-length
              IEs by their definition, not by the Length field TS 29.274 §8.1 says to follow;
              GTPv1: it walks IEs against the message's schema and reads what is out of order
              as TLV): no oracle.

Past disagreements are replayed first: every stored case of a family in
differential-regressions/<family>/*.hex (one `<dpi-fields kind> <hex>` line, `#` comments;
provenance in differential-regressions/README.md) is decoded by both sides and compared as a
random input is, and a disagreement there fails the run the same way. The replay draws nothing
from the seed's random stream: a seed generates the same inputs with or without stored cases.
Each random disagreement is also written in that format to
<out>/regressions/<family>/seed<seed>-<execution>.hex (the first 20 per family), with the
command that copies it into the corpus.

Usage: differential.py [--seconds N] [--families a,b] [--seed S] [--batch B] [--out DIR]
(--seconds 0: the stored cases only.)
Needs the release build of dpi-fields (`cargo build --release -p filter-dpi --bin dpi-fields`;
`cargo xtask fuzz` builds it), pycrate and, for sccp_m2ua and sccp_sua, tshark. Exit status 1 when a disagreement was found.
"""

import argparse
import datetime
import json
import pathlib
import random
import re
import struct
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BIN = ROOT / "target" / "release" / "dpi-fields"
REGRESSIONS = HERE / "differential-regressions"

from pycrate_asn1dir import TCAP_MAPv2v3 as T  # noqa: E402
from pycrate_diameter.Diameter import DiameterGeneric  # noqa: E402
from pycrate_mobile.SCCP import parse_SCCP  # noqa: E402
from pycrate_mobile.TS29274_GTPC import parse_GTPC  # noqa: E402

TCAP_MSG = T.TCAP_MAP_Messages.TCAP_MAP_Message

# ---------------------------------------------------------------------------------------------
# helpers


def tbcd(b):
    """TBCD digits, low nibble first, up to the 0xF filler (TS 29.002 §17.7.8)."""
    out = []
    for x in b:
        for n in (x & 0x0F, x >> 4):
            if n == 0x0F:
                return "".join(out)
            out.append("0123456789*#abc"[n])
    return "".join(out)


def tbcd_encode(digits):
    ds = [int(c) for c in digits]
    if len(ds) % 2:
        ds.append(0x0F)
    return bytes(ds[i] | (ds[i + 1] << 4) for i in range(0, len(ds), 2))


def rdigits(rng, lo, hi):
    return "".join(rng.choice("0123456789") for _ in range(rng.randint(lo, hi)))


def mutate(rng, b):
    """1 to 3 mutations of bytes `b`."""
    b = bytearray(b)
    for _ in range(rng.randint(1, 3)):
        if not b:
            break
        k = rng.randrange(6)
        i = rng.randrange(len(b))
        if k == 0:
            b[i] ^= 1 << rng.randrange(8)
        elif k == 1:
            b[i] = rng.choice([0x00, 0x01, 0x7F, 0x80, 0x81, 0x82, 0xFF, (b[i] + 1) & 0xFF, (b[i] - 1) & 0xFF])
        elif k == 2:
            del b[rng.randrange(len(b)) :]
        elif k == 3:
            b.insert(i, rng.randrange(256))
        elif k == 4:
            j = rng.randrange(i, len(b))
            b[j:j] = b[i : j + 1]
        else:
            del b[i]
    return bytes(b)


def maybe_mutate(rng, b):
    return b if rng.random() < 0.25 else mutate(rng, b)


# ---------------------------------------------------------------------------------------------
# SS7: M3UA / SCCP / TCAP / MAP


def address_string(rng):
    return bytes([0x91]) + tbcd_encode(rdigits(rng, 5, 15))


def imsi_bytes(rng):
    return tbcd_encode(rdigits(rng, 6, 15))


def map_argument(rng, op):
    imsi, addr = imsi_bytes(rng), address_string(rng)
    return {
        71: lambda: ("AnyTimeInterrogationArg", {"subscriberIdentity": rng.choice([("imsi", imsi), ("msisdn", addr)]), "requestedInfo": {}, "gsmSCF-Address": address_string(rng)}),
        2: lambda: ("UpdateLocationArg", {"imsi": imsi, "msc-Number": addr, "vlr-Number": address_string(rng)}),
        56: lambda: ("SendAuthenticationInfoArg", {"imsi": imsi, "numberOfRequestedVectors": rng.randint(1, 5)}),
        70: lambda: ("ProvideSubscriberInfoArg", {"imsi": imsi, "requestedInfo": {}}),
        45: lambda: ("RoutingInfoForSM-Arg", {"msisdn": addr, "sm-RP-PRI": True, "serviceCentreAddress": address_string(rng)}),
        67: lambda: ("PurgeMS-Arg", {"imsi": imsi}),
        7: lambda: ("InsertSubscriberDataArg", {"imsi": imsi, "msisdn": addr}),
    }[op]()


MAP_OPS = [71, 2, 56, 70, 45, 67, 7]


def tcap_message(rng):
    kind = rng.choice(["begin", "begin", "continue", "end"])
    tid = lambda: bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))  # noqa: E731
    body = {}
    if kind in ("begin", "continue"):
        body["otid"] = tid()
    if kind in ("continue", "end"):
        body["dtid"] = tid()
    comps = []
    for _ in range(rng.choice([1, 1, 1, 2])):
        op = rng.choice(MAP_OPS)
        inv = {"invokeId": ("present", rng.randint(-128, 127)), "opcode": ("local", op), "argument": map_argument(rng, op)}
        comps.append(("basicROS", ("invoke", inv)))
    body["components"] = comps
    TCAP_MSG.set_val((kind, body))
    return TCAP_MSG.to_ber()


def find_key(v, key):
    """First value under `key` anywhere in a pycrate value (depth first, message order)."""
    if isinstance(v, dict):
        for k, x in v.items():
            if k == key:
                return x
            r = find_key(x, key)
            if r is not None:
                return r
    elif isinstance(v, (list, tuple)):
        if len(v) == 2 and v[0] == key and isinstance(v[0], str):
            return v[1]
        for x in v:
            r = find_key(x, key)
            if r is not None:
                return r
    return None


def ber_tlvs(b):
    """(tag octet, contents) of each BER element in `b`, single-octet tags (TCAP's): None if
    one does not fit."""
    out, i = [], 0
    while i < len(b):
        if i + 2 > len(b):
            return None
        tag, n, i = b[i], b[i + 1], i + 2
        if n & 0x80:
            k = n & 0x7F
            if k == 0 or k > 3 or i + k > len(b):
                return None
            n, i = int.from_bytes(b[i : i + k], "big"), i + k
        if i + n > len(b):
            return None
        out.append((tag, b[i : i + n]))
        i += n
    return out


def ber_component_count(b):
    """Components in a TCAP message's component portion ([APPLICATION 12], 0x6c), by TLV."""
    top = ber_tlvs(b)
    if not top:
        return 0
    portion = [c for t, c in (ber_tlvs(top[0][1]) or []) if t == 0x6C]
    return len(ber_tlvs(portion[0]) or []) if portion else 0


def oracle_tcap(b):
    try:
        TCAP_MSG.from_ber(b)
        kind, body = TCAP_MSG.get_val()
    except Exception:
        return None
    comps = []
    for c in body.get("components", []) or []:
        ros = c[1] if c[0] == "basicROS" else c
        ckind, cv = ros
        op = cv.get("opcode")
        if ckind == "returnResult" and cv.get("result"):
            op = cv["result"].get("opcode")
        entry = {
            "kind": {"invoke": "invoke", "returnResult": "returnResultLast", "returnError": "returnError", "reject": "reject"}.get(ckind, ckind),
            "op": op[1] if op and op[0] == "local" else None,
            "imsi": None,
            "msisdn": None,
        }
        arg = cv.get("argument")
        # pycrate leaves an argument its schema rejects undecoded: ('_unk_…', raw bytes)
        entry["raw_arg"] = isinstance(arg, tuple) and str(arg[0]).startswith("_unk")
        if arg is not None and not entry["raw_arg"]:
            i = find_key(arg, "imsi")
            entry["imsi"] = tbcd(i) or None if isinstance(i, bytes) else None
            m = find_key(arg, "msisdn")
            entry["msisdn"] = tbcd(m[1:]) or None if isinstance(m, bytes) and len(m) > 1 else None
        comps.append(entry)
    return {
        "type": kind,
        # pycrate stops its component list, silently, after a component whose argument holds
        # an element it skips but cannot decode (an unknown extension with broken contents):
        # the TLV count of the component portion tells (cmp_tcap_map)
        "dropped": len(comps) < ber_component_count(b),
        "otid": body["otid"].hex() if "otid" in body else None,
        "dtid": body["dtid"].hex() if "dtid" in body else None,
        "components": comps,
    }


CALLED = bytes([0x12, 0x06, 0x00, 0x11, 0x04]) + tbcd_encode("41792457333")
CALLING = bytes([0x12, 0x08, 0x00, 0x11, 0x04]) + tbcd_encode("41799797800")


def sccp_udt(called, calling, data, ptrs=None):
    p = ptrs or (3, 3 + len(called), 3 + len(called) + len(calling))
    # pointers count from their own octet: ptr0 at 2, ptr1 at 3, ptr2 at 4
    p0, p1, p2 = 3, 2 + 1 + len(called), 1 + 1 + len(called) + 1 + len(calling)
    del p
    return bytes([0x09, 0x81, p0, p1, p2, len(called)]) + called + bytes([len(calling)]) + calling + bytes([len(data) & 0xFF]) + data


def m3ua_data(opc, dpc, si, user, ni=2, sls=5):
    pd = struct.pack(">IIBBBB", opc, dpc, si, ni, 0, sls) + user
    params = struct.pack(">HHI", 0x0006, 8, 7) + struct.pack(">HH", 0x0210, 4 + len(pd)) + pd
    params += b"\0" * ((4 - len(params) % 4) % 4)
    return bytes([1, 0, 1, 1]) + struct.pack(">I", 8 + len(params)) + params


def sigwall_comp(c):
    return {"kind": c["kind"], "op": c["op"], "imsi": c["imsi"], "msisdn": c["msisdn"]}


def gen_tcap_map(rng):
    t = maybe_mutate(rng, tcap_message(rng))
    if len(t) > 255:
        t = t[:255]
    msg = m3ua_data(1, 2, 3, sccp_udt(CALLED, CALLING, t))
    return "m3ua", msg, oracle_tcap(t)


def tcap_of_m3ua(msg):
    """The TCAP message of a tcap_map input (gen_tcap_map's fixed M3UA/SCCP around it), for
    the oracle of a stored case; ValueError if `msg` is not such an input."""
    at = 8 + 8 + 4 + 12 + 5 + 1 + len(CALLED) + 1 + len(CALLING)  # SCCP's data length octet
    t = msg[at + 1 : at + 1 + msg[at]] if at < len(msg) else b""
    if m3ua_data(1, 2, 3, sccp_udt(CALLED, CALLING, t)) != msg:
        raise ValueError("not a tcap_map input: the M3UA/SCCP around the TCAP is not gen_tcap_map's")
    return t


def cmp_tcap_map(exp, got):
    """(class, detail)"""
    clean = got.get("ok") and got.get("error") is None and not got.get("anomalies")
    if exp is None:
        return ("agree", None) if not clean else ("lenient", None)
    if not clean:
        return "flagged", None
    g = {"type": got.get("tcap_type"), "components": [sigwall_comp(c) for c in got.get("components", [])]}
    e = {"type": exp["type"], "components": [{k: v for k, v in c.items() if k != "raw_arg"} for c in exp["components"]]}
    if exp["dropped"] and len(g["components"]) > len(e["components"]):
        # pycrate's list stopped early (oracle_tcap): the components it has are compared
        g["components"] = g["components"][: len(e["components"])]
        lenient = True
    else:
        lenient = False
    # An argument pycrate's schema rejects (wrong or unknown field tags) has no oracle for its
    # identities; sigwall reads MAP fields by tag without a schema, so it may still find some:
    # lenient, not a disagreement.
    # pycrate drops the components after one whose argument it cannot decode; sigwall decodes
    # every component (issue 10: several components are decoded, never skipped).
    if exp["components"] and exp["components"][-1]["raw_arg"] and len(g["components"]) > len(e["components"]):
        g["components"] = g["components"][: len(e["components"])]
        lenient = True
    for ec, gc, raw in zip(e["components"], g["components"], [c["raw_arg"] for c in exp["components"]]):
        # sigwall extracts identities for the operations its rules use (the generated ones);
        # for another operation (a mutated code) only the code is compared
        if ec["op"] not in MAP_OPS:
            ec["imsi"], ec["msisdn"] = gc["imsi"], gc["msisdn"]
        if raw and (gc["imsi"], gc["msisdn"]) != (None, None):
            ec["imsi"], ec["msisdn"] = gc["imsi"], gc["msisdn"]
            lenient = True
    if g != e:
        return "disagree", {"expected": e, "sigwall": g}
    return ("lenient", None) if lenient else ("agree", None)


# SCCP / M3UA


def gen_address(rng):
    # mostly valid SSNs; 1 and 0 are non-canonical for TCAP (sigwall flags them)
    ssn = rng.choice([6, 7, 8, 149, 6, 7, 8, 149, 1, 0])
    digits = rdigits(rng, 1, 15)
    es = 1 if len(digits) % 2 else 2
    route_ssn = rng.random() < 0.3
    with_pc = rng.random() < 0.3
    ai = 0x10 | 0x02 | (0x40 if route_ssn else 0) | (0x01 if with_pc else 0)
    a = bytes([ai])
    if with_pc:
        a += struct.pack("<H", rng.randrange(0x4000))
    a += bytes([ssn, 0x00, 0x10 | es, 0x04]) + tbcd_encode(digits)
    return a


def oracle_sccp_m3ua(msg):
    from pycrate_mobile.M3UA import parse_M3UA

    try:
        m, err = parse_M3UA(msg)
        if err or m is None or m[0]["Class"].get_val() != 1 or m[0]["Type"].get_val() != 1:
            return None
        if m[0]["Len"].get_val() != len(msg):
            return None
        pd = [p for p in m[1] if p["Tag"].get_val() == 0x0210]
        if len(pd) != 1:
            return None
        v = pd[0]["Val"]
        opc, dpc, si = v["OPC"].get_val(), v["DPC"].get_val(), v["SI"].get_val()
        parties = sccp_parties(v["Data"].get_val())
        if parties is None:
            return None
        return {"opc": opc, "dpc": dpc, "si": si, **parties}
    except Exception:
        return None


# Begin, sendRoutingInfoForSM (45, exists since MAP v1, so no version finding without an AC)
FIXED_TCAP = bytes.fromhex("621f4804010203046c17a11502010102012d300d80039141118101ff8203914122")


def gen_sccp_m3ua(rng):
    sccp = sccp_udt(gen_address(rng), gen_address(rng), FIXED_TCAP)
    msg = m3ua_data(rng.randrange(1 << 24), rng.randrange(1 << 24), 3, sccp, ni=rng.randrange(4), sls=rng.randrange(16))
    msg = maybe_mutate(rng, msg)
    return "m3ua", msg, oracle_sccp_m3ua(msg)


def cmp_sccp_m3ua(exp, got):
    ok = got.get("ok") and got.get("called") is not None
    clean = ok and not got.get("anomalies") and got.get("error") in (None,)
    if exp is None:
        return ("agree", None) if not clean else ("lenient", None)
    if not clean:
        return "flagged", None
    g = {k: got.get(k) for k in ("opc", "dpc", "si", "called", "calling")}
    exp = json.loads(json.dumps(exp))
    for side in ("called", "calling"):
        if not exp[side].pop("gt_compared"):
            exp[side]["gt"] = (g[side] or {}).get("gt")
    return ("agree", None) if g == exp else ("disagree", {"expected": exp, "sigwall": g})


# ---------------------------------------------------------------------------------------------
# Diameter

IDENT_AVPS = {264: "origin_host", 296: "origin_realm", 293: "destination_host", 283: "destination_realm", 1: "user_name"}


def avp(code, data, flags=0x40, vendor=None):
    hl = 12 if vendor is not None else 8
    if vendor is not None:
        flags |= 0x80
    ln = hl + len(data)
    b = struct.pack(">IB", code, flags) + ln.to_bytes(3, "big") + (struct.pack(">I", vendor) if vendor is not None else b"") + data
    return b + b"\0" * ((4 - ln % 4) % 4)


def name(rng):
    return ".".join(rdigits(rng, 1, 3) if rng.random() < 0.2 else rng.choice(["mme", "hss", "epc", "mnc001", "mcc001", "example", "3gppnetwork", "org"]) for _ in range(rng.randint(1, 5))).encode()


def gen_diameter(rng):
    avps = []
    for code in rng.sample(list(IDENT_AVPS) + [263, 258, 60000, 1407, 260], rng.randint(2, 8)):
        if code == 1:
            avps.append(avp(1, rdigits(rng, 6, 15).encode()))
        elif code == 258:
            avps.append(avp(258, struct.pack(">I", 16777251)))
        elif code == 1407:
            avps.append(avp(1407, b"\x22\xf2\x10", vendor=10415))
        elif code == 260:
            avps.append(avp(260, avp(266, struct.pack(">I", 10415)) + avp(258, struct.pack(">I", 16777251))))
        elif code == 60000:
            avps.append(avp(60000, bytes(rng.randrange(256) for _ in range(rng.randint(0, 9))), flags=0))
        else:
            avps.append(avp(code, name(rng)))
    body = b"".join(avps)
    cmd = rng.choice([316, 317, 318, 319, 320, 321, 323, 8388620, 8388622, 257, 280, 272])
    flags = rng.choice([0x80, 0xC0, 0x40, 0x00])
    app = rng.choice([0, 16777251, 16777255, 4])
    msg = bytes([1]) + (20 + len(body)).to_bytes(3, "big") + bytes([flags]) + cmd.to_bytes(3, "big") + struct.pack(">III", app, rng.randrange(1 << 32), rng.randrange(1 << 32)) + body
    msg = maybe_mutate(rng, msg)
    return "diameter", msg, oracle_diameter(msg)


def oracle_diameter(msg):
    try:
        d = DiameterGeneric()
        d.from_bytes(msg)
        h = d[0]
        if h["Vers"].get_val() != 1 or h["Len"].get_val() != len(msg):
            return None
        out = {
            "command": h["Cmd"].get_val(),
            "request": bool(h["R"].get_val()),
            "app": h["AppID"].get_val(),
        }
        for k in IDENT_AVPS.values():
            out[k] = None
        for a in d[1]:
            code = a[0]["Code"].get_val()
            if code in IDENT_AVPS and out[IDENT_AVPS[code]] is None and not a[0]["V"].get_val():
                out[IDENT_AVPS[code]] = a[1].get_val().decode("utf-8")
        return out
    except Exception:
        return None


def cmp_diameter(exp, got):
    clean = got.get("ok") and got.get("error") is None
    if exp is None:
        return ("agree", None) if not clean else ("lenient", None)
    if not clean:
        return "flagged", None
    g = {k: got.get(k) for k in exp}
    return ("agree", None) if g == exp else ("disagree", {"expected": exp, "sigwall": g})


# ---------------------------------------------------------------------------------------------
# GTPv2-C


def gtp_ie(t, v, inst=0):
    return struct.pack(">BHB", t, len(v), inst) + v


def apn(rng):
    return b"".join(bytes([len(x)]) + x for x in name(rng).split(b"."))


def gen_gtp(rng):
    ies = []
    for t in rng.sample([1, 76, 71, 82, 3, 99], rng.randint(1, 6)):
        v = {1: lambda: tbcd_encode(rdigits(rng, 6, 15)), 76: lambda: tbcd_encode(rdigits(rng, 5, 15)), 71: lambda: apn(rng), 82: lambda: bytes([rng.randrange(10)]), 3: lambda: bytes([rng.randrange(256)]), 99: lambda: bytes([rng.randint(1, 3)])}[t]()
        ies.append(gtp_ie(t, v))
    body = b"".join(ies)
    mtype = rng.choice([32, 34, 36, 130, 1, 170])
    teid = mtype != 1
    hdr_rest = (struct.pack(">I", rng.randrange(1 << 32)) if teid else b"") + rng.randrange(1 << 24).to_bytes(3, "big") + b"\0"
    msg = bytes([0x48 if teid else 0x40, mtype]) + (len(hdr_rest) + len(body)).to_bytes(2, "big") + hdr_rest + body
    msg = maybe_mutate(rng, msg)
    return "gtpc", msg, oracle_gtp(msg)


def oracle_gtp(msg):
    try:
        m, err = parse_GTPC(msg)
        if err not in (0, 4) or m is None:
            return None
        h = m[0]
        if h["Len"].get_val() + 4 != len(msg) or h["P"].get_val():
            return None
        out = {"version": 2, "type": h["Type"].get_val(), "teid": h["TEID"].get_val() if h["T"].get_val() else None, "seq": h["SeqNum"].get_val(), "imsi": None, "msisdn": None, "apn": None}
        # pycrate decodes a fixed-length IE by its definition, not by its Length field, so an
        # over-long one (TS 29.274 §8.1: the receiver skips the extra octets by the Length)
        # makes it lose the IE boundaries; such inputs are not a comparison.
        if [(ie["Hdr"]["Type"].get_val(), len(ie.to_bytes())) for ie in m[1]] != tliv_types(msg):
            return "desync"
        for ie in m[1]:
            t = ie["Hdr"]["Type"].get_val()
            key = {1: "imsi", 76: "msisdn", 71: "apn"}.get(t)
            if key and out[key] is None and ie["Hdr"]["Inst"].get_val() == 0:
                # an IE the message type does not define is kept untyped by pycrate: no oracle
                if type(ie["Data"]).__name__ not in ("IMSI", "MSISDN", "APN"):
                    out[key] = "untyped"
                    continue
                out[key] = ie["Data"].decode() or None
        return out
    except Exception:
        return None


def tliv_types(msg):
    """(type, whole size) of each IE of a GTPv2 message, walked by each IE's Length (None if
    it does not fit)."""
    at = 12 if msg[0] & 0x08 else 8
    out = []
    while at + 4 <= len(msg):
        n = int.from_bytes(msg[at + 1 : at + 3], "big")
        out.append((msg[at], 4 + n))
        at += 4 + n
    return out if at == len(msg) else None


def cmp_gtp(exp, got):
    clean = got.get("ok") and got.get("error") is None
    if exp == "desync":
        return "oracle_desync", None
    if exp is None:
        return ("agree", None) if not clean else ("lenient", None)
    if not clean:
        return "flagged", None
    g = {k: got.get(k) for k in exp}
    exp = {k: (g[k] if v == "untyped" else v) for k, v in exp.items()}
    return ("agree", None) if g == exp else ("disagree", {"expected": exp, "sigwall": g})


# ---------------------------------------------------------------------------------------------
# SCCP over MTP3: M2PA (pycrate) and M2UA (tshark)


def mtp3(opc, dpc, si, user, ni=2, sls=5):
    """MTP3 message (Q.704): SIO, then the ITU routing label (14-bit DPC and OPC, 4-bit SLS,
    little-endian), then the user part."""
    label = (dpc & 0x3FFF) | ((opc & 0x3FFF) << 14) | ((sls & 0xF) << 28)
    return bytes([(ni << 6) | (si & 0x0F)]) + struct.pack("<I", label) + user


def m2pa_user_data(mtp, bsn=1, fsn=2, prio=0):
    """M2PA User Data (RFC 4165 §2): common header (class 11, type 1), BSN, FSN, priority
    octet, MTP3 message."""
    return bytes([1, 0, 11, 1]) + struct.pack(">III", 17 + len(mtp), bsn & 0xFFFFFF, fsn & 0xFFFFFF) + bytes([prio]) + mtp


def m2ua_data(mtp, iid=7):
    """M2UA MAUP DATA (RFC 3331 §3.3.1.1): class 6 type 1, Interface Identifier (integer),
    Protocol Data 1 (the MTP3 message)."""
    params = struct.pack(">HHI", 0x0001, 8, iid) + struct.pack(">HH", 0x0300, 4 + len(mtp)) + mtp
    params += b"\0" * ((4 - len(params) % 4) % 4)
    return bytes([1, 0, 6, 1]) + struct.pack(">I", 8 + len(params)) + params


def gen_sccp_mtp3(rng):
    sccp = sccp_udt(gen_address(rng), gen_address(rng), FIXED_TCAP)
    return mtp3(rng.randrange(1 << 14), rng.randrange(1 << 14), 3, sccp, ni=rng.randrange(4), sls=rng.randrange(16))


def sccp_parties(sccp_bytes):
    """Called and calling party of an SCCP UDT as pycrate reads them (None if it does not)."""
    sccp, err = parse_SCCP(sccp_bytes)
    if err or sccp is None or sccp[0].get_val() not in (0x09,):
        return None

    def party(name):
        v = sccp[name]["Value"]
        ai = v["AddrInd"]
        gt = None
        if ai["GTInd"].get_val() == 4:
            g = v["GT"].get_alt()
            gt = g["Addr"].get_alt().decode()
            # pycrate names signals 11, 12 and spares; sigwall renders them as hex digits. First,
            # so that the count below is of digits (a spare digit counted as its name, 9 or 10
            # characters, hid the filler of an odd count: found by seed 1557870179)
            gt = re.sub(r"_code(1[12])_|_spare(\d+)_", lambda x: "%X" % int(x.group(1) or x.group(2)), gt)
            # Q.713 §3.4.2.3.1: an odd count (ES 1) ends with a filler nibble 0, which
            # pycrate renders as a digit when it is 0 (it only stops at 0xF)
            if g["EncodingScheme"].get_val() == 1 and len(gt) == 2 * len(g["Addr"].get_alt().to_bytes()):
                gt = gt[:-1]
        return {
            # digits compared for GTI 4 only (what the generator makes; other GTIs come
            # from mutations, and this oracle reads only GTI 4's layout)
            "gt_compared": ai["GTInd"].get_val() == 4,
            "ri": ai["RoutingInd"].get_val(),
            "pc": v["PC"].get_val() if ai["PCInd"].get_val() else None,
            "ssn": v["SSN"].get_val() if ai["SSNInd"].get_val() else None,
            "gt": gt,
        }

    return {"called": party("CalledPartyAddr"), "calling": party("CallingPartyAddr")}


def oracle_sccp_m2pa(msg):
    from pycrate_mobile.SIGTRAN import M2PA, MTP3

    try:
        m = M2PA()
        m.from_bytes(msg)
        h = m[0]
        if h["Version"].get_val() != 1 or h["Class"].get_val() != 11 or h["Type"].get_val() != 1:
            return None
        if h["Len"].get_val() != len(msg) or len(msg) <= 17:
            return None
        # pycrate's User Data runs to the end of the buffer whatever the Message Length says;
        # the length is checked equal to the message above, so it is the MTP3 message
        mtp = m[2]["Data"].get_val()
        if len(mtp) < 5:
            return None
        l3 = MTP3()
        l3.from_bytes(mtp[:5])
        if l3["ServiceInd"].get_val() != 3:
            return None
        parties = sccp_parties(mtp[5:])
        if parties is None:
            return None
        return {"opc": l3["OPC"].get_val(), "dpc": l3["DPC"].get_val(), "si": 3, **parties}
    except Exception:
        return None


def gen_sccp_m2pa(rng):
    msg = m2pa_user_data(gen_sccp_mtp3(rng), bsn=rng.randrange(1 << 24), fsn=rng.randrange(1 << 24))
    msg = maybe_mutate(rng, msg)
    return "m2pa", msg, oracle_sccp_m2pa(msg)


# tshark as the oracle (M2UA, SUA: no pycrate decoder). Each batch is written to one pcap,
# every message in Ethernet/IPv4/SCTP DATA with the layer's PPID and port, and dissected once.

_CRC32C = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC32C.append(_c)


def crc32c(b):
    c = 0xFFFFFFFF
    for x in b:
        c = _CRC32C[(c ^ x) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def sctp_frame(data, ppid, port, tsn):
    """Ethernet/IPv4/SCTP with one DATA chunk (B and E set) carrying `data`; CRC32c right
    (RFC 4960 Appendix B: stored little-endian; checked against scapy's SCTP layer)."""
    chunk = struct.pack(">BBHIHHI", 0, 0x03, 16 + len(data), tsn, 0, tsn & 0xFFFF, ppid) + data
    chunk += b"\0" * ((4 - len(chunk) % 4) % 4)
    common = struct.pack(">HHII", port, port, 1, 0)
    sctp = common + chunk
    sctp = sctp[:8] + struct.pack("<I", crc32c(sctp)) + sctp[12:]
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(sctp), tsn & 0xFFFF, 0x4000, 64, 132, 0, bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    ck = sum(struct.unpack(">10H", ip))
    while ck >> 16:
        ck = (ck & 0xFFFF) + (ck >> 16)
    ip = ip[:10] + struct.pack(">H", ~ck & 0xFFFF) + ip[12:]
    return b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00" + ip + sctp


def tshark_fields(msgs, ppid, port, fields):
    """One dict per message: each field's occurrences (a list of strings), and "error" when
    tshark marks the frame malformed or raises an expert error."""
    import os
    import tempfile

    fd, path = tempfile.mkstemp(suffix=".pcap")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
            for i, m in enumerate(msgs):
                fr = sctp_frame(m, ppid, port, i + 1)
                f.write(struct.pack("<IIII", i, 0, len(fr), len(fr)) + fr)
        allf = ["frame.number", "_ws.malformed", "_ws.expert.severity", "_ws.expert.message"] + fields
        cmd = ["tshark", "-n", "-r", path, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=|"]
        for x in allf:
            cmd += ["-e", x]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    finally:
        os.unlink(path)
    out = [None] * len(msgs)
    # Records end at "\n" only (see sigwall_fields): a field may hold U+0085 or U+2028.
    for line in res.stdout.split("\n"):
        if not line:
            continue
        cols = line.split("\t")
        cols += [""] * (len(allf) - len(cols))
        n = int(cols[0]) - 1
        d = {k: (v.split("|") if v else []) for k, v in zip(allf, cols)}
        # tshark reads an E.164 country code of up to 3 digits from every GT and marks a
        # shorter GT (Q.713 allows one digit) malformed ("Country Code contains non-decimal
        # digits"): not an error of the message, ignored. Any other malformed mark or expert
        # error (PI_ERROR, 0x00800000) is.
        quirk = sum(x == "Country Code contains non-decimal digits" for x in d["_ws.expert.message"])
        others = [sv for sv, x in zip(d["_ws.expert.severity"], d["_ws.expert.message"]) if x != "Country Code contains non-decimal digits"]
        d["error"] = len(d["_ws.malformed"]) > quirk or any(sv == "8388608" for sv in others)
        out[n] = d
    return out


def first_int(d, k):
    """The first occurrence as an integer (tshark prints some fields in hex: 0x...)."""
    v = d.get(k) or []
    return int(v[0], 0) if v else None


SCCP_TS_FIELDS = [
    "sccp.message_type",
    "sccp.called.ri", "sccp.called.gti", "sccp.called.pc", "sccp.called.ssn", "sccp.called.digits",
    "sccp.calling.ri", "sccp.calling.gti", "sccp.calling.pc", "sccp.calling.ssn", "sccp.calling.digits",
]  # fmt: skip


def tshark_party(d, side):
    gti = first_int(d, f"sccp.{side}.gti")
    digits = (d.get(f"sccp.{side}.digits") or [None])[0]
    if digits is None and gti in (1, 2, 3, 4):
        # a GT whose address signals are empty (the address ends after its header): tshark
        # adds no digits field, sigwall gives the empty string
        digits = ""
    if gti == 2 and digits.endswith("ST"):
        # GTI 2 has no odd/even indicator (Q.713 §3.4.2.3.2): tshark renders every nibble, a
        # final 0xF as the signal "ST"; sigwall reads that 0xF as the filler of an odd count
        # (unit test `global_title_digits_checked`), the same address digits. Only the final
        # nibble: an ST before it stays in tshark's digits, and sigwall flags it non-canonical
        # (found by seed 2971977961)
        digits = digits[:-2]
    return {
        # tshark reads every GTI's layout (Q.713 §3.4.2.3: 1-4), so digits are compared for
        # all of them (mutations turn the generated GTI 4 into the others)
        "gt_compared": gti in (1, 2, 3, 4),
        "ri": first_int(d, f"sccp.{side}.ri"),
        "pc": first_int(d, f"sccp.{side}.pc"),
        "ssn": first_int(d, f"sccp.{side}.ssn"),
        # tshark's rendering (see tshark_digits); compared with sigwall's digits so rendered
        "gt": digits,
    }


# tshark renders a GT nibble above 9 (SCCP and SUA alike) as "11" and "12" for the Q.713
# code 11 / code 12 signals (0xB, 0xC), "ST" for 0xF and "(spare)" for 0xA, 0xD and 0xE;
# sigwall as one hex digit. sigwall's digits are rendered tshark's way before comparing (the
# other way round is ambiguous: "(spare)" stands for three values, "11" for two digits).
TSHARK_NIBBLE = {"A": "(spare)", "B": "11", "C": "12", "D": "(spare)", "E": "(spare)", "F": "ST"}


def tshark_digits(d):
    return None if d is None else "".join(TSHARK_NIBBLE.get(c.upper(), c) for c in d)


def cmp_sccp_m2ua(exp, got):
    if exp is not None and got.get("ok"):
        got = json.loads(json.dumps(got))
        for side in ("called", "calling"):
            if got.get(side):
                got[side]["gt"] = tshark_digits(got[side]["gt"])
    return cmp_sccp_m3ua(exp, got)


M2UA_TS_FIELDS = ["m2ua.message_class", "m2ua.message_type", "m2ua.message_length", "mtp3.opc", "mtp3.dpc", "mtp3.service_indicator"] + SCCP_TS_FIELDS


def oracle_sccp_m2ua_batch(msgs):
    out = []
    for m, d in zip(msgs, tshark_fields(msgs, 2, 2904, M2UA_TS_FIELDS)):
        if d is None or d["error"]:
            out.append(None)
            continue
        # one M2UA MAUP DATA whose Message Length is the SCTP user message's, carrying SCCP
        # UDT (tshark dissects a longer or shorter user message as far as it goes)
        if (first_int(d, "m2ua.message_class"), first_int(d, "m2ua.message_type")) != (6, 1) or first_int(d, "m2ua.message_length") != len(m):
            out.append(None)
            continue
        if first_int(d, "mtp3.service_indicator") != 3 or first_int(d, "sccp.message_type") != 0x09 or len(d["sccp.message_type"]) != 1:
            out.append(None)
            continue
        out.append({
            # tshark prints ITU point codes as decimal integers (mtp3.pc_format default)
            "opc": first_int(d, "mtp3.opc"),
            "dpc": first_int(d, "mtp3.dpc"),
            "si": 3,
            "called": tshark_party(d, "called"),
            "calling": tshark_party(d, "calling"),
        })  # fmt: skip
    return out


def gen_sccp_m2ua(rng):
    msg = m2ua_data(gen_sccp_mtp3(rng), iid=rng.randrange(1 << 32))
    msg = maybe_mutate(rng, msg)
    return "m2ua", msg, None  # oracle: the batch's tshark run


# ---------------------------------------------------------------------------------------------
# SUA (tshark)


def sua_tlv(tag, v):
    p = struct.pack(">HH", tag, 4 + len(v)) + v
    return p + b"\0" * ((4 - len(p) % 4) % 4)


def gen_sua_address(rng):
    """RFC 3868 §3.10.2: routing indicator (1 GT, 2 SSN+PC), address indicator (bit 0 SSN,
    bit 1 PC, bit 2 GT), then GT / PC / SSN sub-parameters."""
    route_gt = rng.random() < 0.7
    with_pc = not route_gt or rng.random() < 0.3
    with_gt = route_gt or rng.random() < 0.5
    ssn = rng.choice([6, 7, 8, 149, 6, 7, 8, 149, 1, 0])
    ai = 1 | (2 if with_pc else 0) | (4 if with_gt else 0)
    v = struct.pack(">HH", 1 if route_gt else 2, ai)
    if with_gt:
        digits = rdigits(rng, 1, 15)
        v += sua_tlv(0x8001, bytes([0, 0, 0, 4, len(digits), 0, 1, 4]) + sua_bcd(digits))
    if with_pc:
        v += sua_tlv(0x8002, struct.pack(">I", rng.randrange(1 << 14) if rng.random() < 0.7 else rng.randrange(1 << 24)))
    v += sua_tlv(0x8003, bytes([0, 0, 0, ssn]))
    return v


def sua_bcd(digits):
    """SUA global-title digits: BCD, low nibble first, an odd count padded with 0 (RFC 3868
    §3.10.2.3)."""
    ds = [int(c) for c in digits]
    if len(ds) % 2:
        ds.append(0)
    return bytes(ds[i] | (ds[i + 1] << 4) for i in range(0, len(ds), 2))


def sua_cldt(called, calling, data, rc=1, pclass=0):
    params = sua_tlv(0x0006, struct.pack(">I", rc)) + sua_tlv(0x0115, bytes([0, 0, 0, pclass]))
    params += sua_tlv(0x0102, calling) + sua_tlv(0x0103, called) + sua_tlv(0x0116, bytes(4)) + sua_tlv(0x010B, data)
    return bytes([1, 0, 7, 1]) + struct.pack(">I", 8 + len(params)) + params


def gen_sccp_sua(rng):
    msg = sua_cldt(gen_sua_address(rng), gen_sua_address(rng), FIXED_TCAP, rc=rng.randrange(1 << 32), pclass=rng.choice([0, 1, 0x80, 0x81]))
    msg = maybe_mutate(rng, msg)
    return "sua", msg, None  # oracle: the batch's tshark run


SUA_TS_FIELDS = ["sua.message_class", "sua.message_type", "sua.message_length"] + [
    f"sua.{side}.{f}"
    for side in ("destination", "source")
    for f in ("routing_indicator", "gti", "global_title_digits", "global_title_number_of_digits", "point_code", "ssn")
]


def oracle_sccp_sua_batch(msgs):
    out = []
    for m, d in zip(msgs, tshark_fields(msgs, 4, 14001, SUA_TS_FIELDS)):
        if d is None or d["error"]:
            out.append(None)
            continue
        if (first_int(d, "sua.message_class"), first_int(d, "sua.message_type")) != (7, 1) or first_int(d, "sua.message_length") != len(m):
            out.append(None)
            continue

        def party(side):
            ri = first_int(d, f"sua.{side}.routing_indicator")
            gti = first_int(d, f"sua.{side}.gti")
            digits = (d.get(f"sua.{side}.global_title_digits") or [None])[0]
            n = first_int(d, f"sua.{side}.global_title_number_of_digits")
            if digits is None and gti is not None:
                digits = ""  # no digit octets: tshark adds no digits field (as for SCCP)
            return {
                # SUA's GT sub-parameter has one layout for every GTI (RFC 3868 §3.10.2.3)
                "gt_compared": gti is not None,
                # sigwall maps SUA's routing indicator to SCCP's bit: 1 (route on GT) -> 0,
                # 2-4 (SSN+PC, hostname, SSN+IP: final routing) -> 1
                "ri": None if ri is None else int(ri != 1),
                "pc": first_int(d, f"sua.{side}.point_code"),
                "ssn": first_int(d, f"sua.{side}.ssn"),
                # tshark renders every octet of the GT sub-parameter, past the Number of
                # Digits (RFC 3868 §3.10.2.3: the count), dropping only the last nibble of an
                # odd count: its digits are the count's, then what follows (fillers, checked
                # in cmp_sccp_sua)
                "gt": None if digits is None else {"tshark": digits, "n": n},
            }

        out.append({"called": party("destination"), "calling": party("source")})
    return out


def cmp_sccp_sua(exp, got):
    ok = got.get("ok") and got.get("called") is not None
    clean = ok and not got.get("anomalies") and got.get("error") in (None,)
    if exp is None:
        return ("agree", None) if not clean else ("lenient", None)
    if not clean:
        return "flagged", None
    g = {k: got.get(k) for k in ("called", "calling")}
    exp = json.loads(json.dumps(exp))
    for side in ("called", "calling"):
        sg = (g[side] or {}).get("gt")
        e = exp[side]["gt"]
        if not exp[side].pop("gt_compared"):
            exp[side]["gt"] = sg
        elif e is not None and sg is not None and len(sg) == e["n"] and e["tshark"].startswith(tshark_digits(sg)):
            # tshark's digits past the count must be fillers (0, or 0xF rendered "ST"):
            # sigwall reports any other digit there as non-canonical (never clean)
            if re.fullmatch("(0|ST)*", e["tshark"][len(tshark_digits(sg)) :]):
                exp[side]["gt"] = sg
    return ("agree", None) if g == exp else ("disagree", {"expected": exp, "sigwall": g})


# ---------------------------------------------------------------------------------------------
# GTPv1-C (pycrate TS29060_GTP)


def gtpv1_tv(t, v):
    return bytes([t]) + v


def gtpv1_tlv(t, v):
    return struct.pack(">BH", t, len(v)) + v


def gen_gtpv1(rng):
    # IMSI (TS 29.060 §7.7.2): TV, 8 octets, TBCD padded with 0xF
    imsi = lambda: gtpv1_tv(2, tbcd_encode(rdigits(rng, 6, 15)).ljust(8, b"\xff"))  # noqa: E731
    rai = lambda: gtpv1_tv(3, bytes([0x22, 0xF2, 0x10]) + bytes(rng.randrange(256) for _ in range(3)))  # noqa: E731
    gsn = lambda: gtpv1_tlv(133, bytes(rng.randrange(256) for _ in range(4)))  # noqa: E731
    msisdn = lambda: gtpv1_tlv(134, bytes([rng.choice([0x91, 0x81, 0xA1, 0x91])]) + tbcd_encode(rdigits(rng, 1, 15)))  # noqa: E731
    apn_ie = lambda: gtpv1_tlv(131, apn(rng))  # noqa: E731
    teid = lambda t: gtpv1_tv(t, struct.pack(">I", rng.randrange(1 << 32)))  # noqa: E731
    opt = lambda f: f() if rng.random() < 0.6 else b""  # noqa: E731
    mtype = rng.choice([1, 2, 16, 16, 16, 17, 50, 50])
    if mtype == 1:
        ies = b""
    elif mtype == 2:
        ies = gtpv1_tv(14, bytes([rng.randrange(256)]))
    elif mtype == 16:
        # Create PDP Context Request (TS 29.060 §7.3.1), IEs in ascending type order
        ies = opt(imsi) + opt(rai) + opt(lambda: gtpv1_tv(14, b"\0")) + opt(lambda: gtpv1_tv(15, b"\xfc")) + teid(16) + opt(lambda: teid(17)) + gtpv1_tv(20, bytes([rng.randrange(16)]))
        ies += opt(lambda: gtpv1_tlv(128, b"\xf1\x21")) + opt(apn_ie) + gsn() + gsn() + opt(msisdn) + gtpv1_tlv(135, bytes.fromhex("021b921f7396fefe74f9ffff")) + opt(lambda: gtpv1_tlv(151, bytes([rng.randint(1, 2)])))
    elif mtype == 17:
        # Create PDP Context Response (§7.3.2)
        ies = gtpv1_tv(1, bytes([rng.choice([128, 192, 199])])) + opt(lambda: teid(16)) + opt(lambda: teid(17)) + opt(lambda: gtpv1_tv(20, b"\x05")) + opt(gsn) + opt(gsn)
    else:
        # SGSN Context Request (§7.5.3)
        ies = opt(imsi) + rai() + opt(lambda: gtpv1_tv(4, struct.pack(">I", rng.randrange(1 << 32)))) + teid(17) + gsn()
    # S flag mostly (TS 29.060 §6: always set on GTPv1-C), sometimes PN alone or with it: the
    # optional fields are there, the sequence number only counts with S
    seq = rng.random() < 0.85
    pn = rng.random() < 0.1
    body = (struct.pack(">HBB", rng.randrange(1 << 16), rng.randrange(256) if pn else 0, 0) if seq or pn else b"") + ies
    hdr = bytes([0x30 | (0x02 if seq else 0) | (0x01 if pn else 0), mtype]) + struct.pack(">HI", len(body), 0 if mtype in (1, 2) and rng.random() < 0.8 else rng.randrange(1 << 32))
    msg = maybe_mutate(rng, hdr + body)
    return "gtpc", msg, oracle_gtpv1(msg)


def gtpv1_walk(msg):
    """(type, whole size) of each IE of a GTPv1-C message, TV sizes from TS 29.060 Table 37,
    TLV from their Length (None if an IE is cut or its TV size unknown)."""
    tv = {1: 1, 2: 8, 3: 6, 4: 4, 5: 4, 6: 3, 8: 1, 9: 28, 11: 1, 12: 3, 13: 1, 14: 1, 15: 1, 16: 4, 17: 4, 18: 5, 19: 1, 20: 1, 21: 1, 22: 9, 23: 1, 24: 1, 25: 2, 26: 2, 27: 2, 28: 2, 29: 1, 126: 1, 127: 4}
    at = 12 if msg[0] & 0x07 else 8
    if msg[0] & 0x04:
        return None  # extension headers: not generated
    out = []
    while at < len(msg):
        t = msg[at]
        if t < 128:
            if t not in tv:
                return None
            n = 1 + tv[t]
        else:
            if at + 3 > len(msg):
                return None
            n = 3 + int.from_bytes(msg[at + 1 : at + 3], "big")
        out.append((t, n))
        at += n
    return out if at == len(msg) else None


def oracle_gtpv1(msg):
    from pycrate_mobile.TS29060_GTP import parse_GTP

    try:
        m, err = parse_GTP(msg)
        if err not in (0, 4) or m is None:
            return None
        h = m[0]
        if h["Version"].get_val() != 1 or h["PT"].get_val() != 1 or h["Len"].get_val() + 8 != len(msg):
            return None
        opt_hdr = h["S"].get_val() or h["E"].get_val() or h["PN"].get_val()
        out = {
            "version": 1,
            "type": h["Type"].get_val(),
            "teid": h["TEID"].get_val(),
            "seq": h["GTPHdrOpt"]["SeqNum"].get_val() if h["S"].get_val() else None,
            "imsi": None,
            "msisdn": None,
            "apn": None,
        }
        if opt_hdr and len(msg) < 12:
            return None
        # pycrate walks IEs against the message's schema (in order) and reads whatever follows
        # the last expected one as TLV, also a TV IE: it then sees other IE boundaries than
        # TS 29.060 §7.7 (TV sizes fixed by type). Such inputs are not a comparison.
        ies = [ie for ie in m[1] if not ie.get_trans()]
        walk = gtpv1_walk(msg)
        if walk is None or [(ie.get_type(), len(ie.to_bytes())) for ie in ies] != walk:
            return "desync"
        for ie in ies:
            t = ie.get_type()
            key = {2: "imsi", 134: "msisdn", 131: "apn"}.get(t)
            if not key or out[key] is not None:
                continue
            d = ie["Data"]
            if type(d).__name__ not in ("IMSI", "MSISDN", "APN"):
                # kept raw by pycrate (its structure failed on these bytes): no oracle
                out[key] = "untyped"
            elif t == 134:
                # an AddressString: nature of address / numbering plan octet, then TBCD;
                # pycrate picks the digits' alphabet by the numbering plan
                out[key] = d["Num"].get_alt().decode() or None
            else:
                # pycrate's TBCD goes on past a 0xF filler and renders 0xA-0xE as *#abc;
                # sigwall reports both as errors (flagged), so they never reach a comparison
                out[key] = d.decode() or None
        return out
    except Exception:
        return None


def cmp_gtpv1(exp, got):
    clean = got.get("ok") and got.get("error") is None
    if exp == "desync":
        return "oracle_desync", None
    if exp is None:
        return ("agree", None) if not clean else ("lenient", None)
    if not clean:
        return "flagged", None
    g = {k: got.get(k) for k in exp}
    exp = {k: (g[k] if v == "untyped" else v) for k, v in exp.items()}
    return ("agree", None) if g == exp else ("disagree", {"expected": exp, "sigwall": g})


# ---------------------------------------------------------------------------------------------
# SMS TPDU (pycrate TS23040_SMS)

UDH_IES = {
    0x00: lambda rng: bytes([rng.randrange(256), rng.randint(1, 4), rng.randint(1, 4)]),  # concatenation, 8-bit ref
    0x08: lambda rng: struct.pack(">HBB", rng.randrange(1 << 16), rng.randint(1, 4), rng.randint(1, 4)),  # 16-bit ref
    0x70: lambda rng: b"",  # (U)SIM command packet (TS 31.115)
    0x71: lambda rng: b"",  # response packet
    0x05: lambda rng: struct.pack(">HH", rng.choice([2948, 16000, 9200]), 0),  # port addressing 16-bit
    0x24: lambda rng: bytes([rng.randrange(256)]),  # national language single shift
}


def gen_sms(rng):
    submit = rng.random() < 0.5
    udhi = rng.random() < 0.6
    pid = rng.choice([0x00, 0x00, 0x7F, 0x7F, 0x40, 0x7D, 0x41, 0x3F])
    dcs = rng.choice([0x00, 0x04, 0x08, 0xF6, 0xF6, 0x16, 0xF2, 0x11])
    digits = rdigits(rng, 0, 20)
    ton = rng.choice([1, 1, 0, 2, 5])
    if ton == 5:
        # alphanumeric (TS 23.040 §9.1.2.5): GSM 7-bit text, length in semi-octets
        text = bytes(rng.randrange(0x41, 0x5B) for _ in range(rng.randint(1, 11)))
        septets = sum(c << (7 * i) for i, c in enumerate(text))
        val = septets.to_bytes((7 * len(text) + 7) // 8, "little")
        addr = bytes([2 * len(val), 0xD0]) + val
    else:
        addr = bytes([len(digits), 0x80 | (ton << 4) | 1]) + tbcd_encode(digits)
    ud = b""
    if udhi:
        hdr = b""
        for iei in rng.sample(list(UDH_IES), rng.randint(1, 3)):
            v = UDH_IES[iei](rng)
            hdr += bytes([iei, len(v)]) + v
        ud = bytes([len(hdr)]) + hdr
    body = bytes(rng.randrange(256) for _ in range(rng.randint(0, 30)))
    ud += body
    gsm7 = (dcs & 0xC0 == 0 and (dcs >> 2) & 3 in (0, 3)) or (dcs >> 4 == 0xF and not dcs & 0x04)
    udl = (len(ud) * 8) // 7 if gsm7 else len(ud)
    if submit:
        vpf = rng.choice([0, 2, 2, 3, 1])
        first = 0x01 | (vpf << 3) | (0x40 if udhi else 0) | rng.choice([0, 0x04, 0x20])
        vp = {0: b"", 2: bytes([rng.randrange(256)]), 3: bytes.fromhex("52208141041540"), 1: bytes([0x01, 0x05, 0, 0, 0, 0, 0])}[vpf]
        msg = bytes([first, rng.randrange(256)]) + addr + bytes([pid, dcs]) + vp + bytes([udl]) + ud
    else:
        first = 0x00 | (0x40 if udhi else 0) | rng.choice([0, 0x04, 0x20, 0x80])
        msg = bytes([first]) + addr + bytes([pid, dcs]) + bytes.fromhex("52208141041540") + bytes([udl]) + ud
    msg = maybe_mutate(rng, msg)
    fam = "sms-submit" if submit else "sms-deliver"
    return fam, msg, oracle_sms(msg, submit)


def sms_septets(dcs):
    """TP-UDL counts septets: the GSM 7-bit default alphabet, uncompressed (TS 23.038 §4)."""
    g = dcs >> 4
    if g <= 7:
        return (dcs >> 2) & 3 in (0, 3) and not dcs & 0x20
    if g in (0xC, 0xD):
        return True
    if g == 0xE:
        return False
    if g == 0xF:
        return not dcs & 0x04
    return True  # 1000-1011: reserved, treated as the default alphabet


def oracle_sms(msg, submit):
    from pycrate_mobile.TS23040_SMS import SMS_DELIVER, SMS_SUBMIT

    try:
        if not msg or (msg[0] & 0x03) != (1 if submit else 0):
            # another TP-MTI: not a DELIVER (to the mobile) or a SUBMIT (from it)
            return {"other": msg[0] & 0x03} if msg else None
        t = SMS_SUBMIT() if submit else SMS_DELIVER()
        t.from_bytes(msg)
        # pycrate reads what the structure needs and ignores a shortfall in the user data
        # (its Buf takes what is there) and trailing octets: it has decoded the PDU only
        # when its re-encoding is the input's prefix and holds the user data TP-UDL announces
        # (septets for the GSM 7-bit alphabet, TS 23.038 §4; octets otherwise)
        enc = t.to_bytes()
        if not msg.startswith(enc):
            return None
        a = t["TP_DA" if submit else "TP_OA"]
        udhi = t["TP_UDHI"].get_val()
        ud = t["TP_UD"]
        udl = ud["UDL"].get_val()
        # The alphabet by TS 23.038 §4, not by pycrate's get_dcs(), which takes the reserved
        # coding groups (1000-1011) and the reserved alphabet 11 as 8-bit: TS 23.038 says a
        # receiver treats any reserved coding as the GSM 7-bit default alphabet, and so does
        # sigwall (sms::Dcs::parse). Compressed data counts octets (TS 23.040 §9.2.3.16).
        need = (udl * 7 + 7) // 8 if sms_septets(t["TP_DCS"].to_bytes()[0]) else udl
        if len(ud.to_bytes()) - 1 < need:
            return None
        ies = [ie["T"].get_val() for ie in ud["UDH"]["UDH"]] if udhi else []
        # pycrate stops its UDH walk, silently, at an element whose Length does not fit the
        # structure it knows for that IEI (a concatenation IE of length 0...); TS 23.040
        # §9.2.3.24 walks elements by their Length. Its list is then only a prefix.
        if udhi and sum(2 + ie["L"].get_val() for ie in ud["UDH"]["UDH"]) != ud["UDH"]["UDHL"].get_val():
            ies = {"prefix": ies}
        num = a["Num"].decode() if a["Type"].get_val() != 5 else None
        # pycrate renders every nibble of the address octets: for an odd Address-Length the
        # end mark too when it is not 0xF. TS 23.040 §9.1.2.5: the length counts the useful
        # semi-octets, so only that many digits are the address.
        if num is not None:
            num = num[: a["Len"].get_val()]
        return {
            "mti": t["TP_MTI"].get_val(),
            "pid": t["TP_PID"].to_bytes()[0],
            "dcs": t["TP_DCS"].to_bytes()[0],
            "ton": a["Type"].get_val(),
            "addr": num,
            "udhi": bool(udhi),
            "ies": ies,
        }
    except Exception:
        return None


def cmp_sms(exp, got):
    clean = got.get("ok") and got.get("error") is None
    if isinstance(exp, dict) and "other" in exp:
        # another TPDU type: sigwall only names it; compare the TP-MTI
        if not got.get("ok"):
            return "flagged", None
        return ("agree", None) if got.get("mti") == exp["other"] else ("disagree", {"expected": exp, "sigwall": got})
    if exp is None:
        return ("agree", None) if not clean else ("lenient", None)
    if not clean:
        return "flagged", None
    g = {k: got.get(k) for k in exp}
    lenient = False
    if isinstance(exp["ies"], dict):
        # pycrate's UDH walk stopped early: sigwall must read the same first elements
        exp = dict(exp)
        p = exp["ies"]["prefix"]
        if g["ies"][: len(p)] == p:
            exp["ies"], lenient = g["ies"], True
    if g != exp:
        return "disagree", {"expected": exp, "sigwall": g}
    return ("lenient", None) if lenient else ("agree", None)


FAMILIES = {
    "tcap_map": (gen_tcap_map, cmp_tcap_map),
    "sccp_m3ua": (gen_sccp_m3ua, cmp_sccp_m3ua),
    "diameter": (gen_diameter, cmp_diameter),
    "gtp": (gen_gtp, cmp_gtp),
    "sccp_m2pa": (gen_sccp_m2pa, cmp_sccp_m3ua),
    "sccp_m2ua": (gen_sccp_m2ua, cmp_sccp_m2ua, oracle_sccp_m2ua_batch),
    "sccp_sua": (gen_sccp_sua, cmp_sccp_sua, oracle_sccp_sua_batch),
    "gtpv1": (gen_gtpv1, cmp_gtpv1),
    "sms_tpdu": (gen_sms, cmp_sms),
}


# The oracle of each family for a stored input: what its generator (or, for the tshark
# families, the batch) computes for the message it made, from the dpi-fields kind and bytes.
ORACLES = {
    "tcap_map": lambda kinds, msgs: [oracle_tcap(tcap_of_m3ua(m)) for m in msgs],
    "sccp_m3ua": lambda kinds, msgs: [oracle_sccp_m3ua(m) for m in msgs],
    "diameter": lambda kinds, msgs: [oracle_diameter(m) for m in msgs],
    "gtp": lambda kinds, msgs: [oracle_gtp(m) for m in msgs],
    "sccp_m2pa": lambda kinds, msgs: [oracle_sccp_m2pa(m) for m in msgs],
    "sccp_m2ua": lambda kinds, msgs: oracle_sccp_m2ua_batch(msgs),
    "sccp_sua": lambda kinds, msgs: oracle_sccp_sua_batch(msgs),
    "gtpv1": lambda kinds, msgs: [oracle_gtpv1(m) for m in msgs],
    "sms_tpdu": lambda kinds, msgs: [oracle_sms(m, k == "sms-submit") for k, m in zip(kinds, msgs)],
}
assert ORACLES.keys() == FAMILIES.keys(), "every family needs an oracle for its stored cases"

NEW_CASES_PER_FAMILY = 20


def sigwall_fields(fam, items):
    """dpi-fields' JSON answer for each (kind, message)."""
    inp = "".join(f"{k} {m.hex()}\n" for k, m in items)
    res = subprocess.run([str(BIN)], input=inp, capture_output=True, text=True, check=True)
    # One answer per "\n": str.splitlines() would also split at U+0085, U+2028 and the other
    # Unicode line breaks, which a decoded name may hold (dpi-fields escapes them too).
    lines = res.stdout.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) != len(items):
        raise SystemExit(f"{fam}: dpi-fields answered {len(lines)} lines for {len(items)}")
    return [json.loads(line) for line in lines]


def stored_cases(fam):
    """(path, kind, message) of each stored case of `fam` (differential-regressions/<fam>/*.hex:
    `#` lines are comments, the one other line is `<dpi-fields kind> <hex>`)."""
    out = []
    for p in sorted((REGRESSIONS / fam).glob("*.hex")):
        lines = [x.strip() for x in p.read_text().splitlines() if x.strip() and not x.lstrip().startswith("#")]
        if len(lines) != 1 or len(lines[0].split()) != 2:
            raise SystemExit(f"{p}: want one `<kind> <hex>` line besides # comments")
        kind, hx = lines[0].split()
        out.append((p, kind, bytes.fromhex(hx)))
    return out


def replay(fam, f):
    """Decode and compare every stored case of `fam` as a random input is; a disagreement is
    written to `f` (the family's samples) with the case's path. Returns the class counts."""
    cmp = FAMILIES[fam][1]
    counts = {"agree": 0, "both_reject": 0, "flagged": 0, "lenient": 0, "disagree": 0, "oracle_desync": 0}
    cases = stored_cases(fam)
    if not cases:
        return counts
    exps = ORACLES[fam]([k for _, k, _ in cases], [m for _, _, m in cases])
    for (p, k, m), exp, got in zip(cases, exps, sigwall_fields(fam, [(k, m) for _, k, m in cases])):
        cls, detail = cmp(exp, got)
        if cls == "agree" and exp is None:
            cls = "both_reject"
        counts[cls] += 1
        rel = p.relative_to(ROOT)
        if cls == "disagree":
            print(f"{fam}: stored case {rel} disagrees: {json.dumps(detail)}")
            f.write(json.dumps({"class": cls, "regression": str(rel), "hex": m.hex(), "detail": detail, "sigwall": got}) + "\n")
        elif cls != "agree":
            # not a failure, but the case no longer compares the fields it was kept for
            print(f"{fam}: note: stored case {rel} is now {cls}, not agree: it no longer reaches the comparison")
    return counts


def write_case(out, fam, seed, n, kind, msg, detail):
    """A random disagreement in the corpus format, under <out>/regressions/<fam>/; its path."""
    d = out / "regressions" / fam
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"seed{seed}-{n}.hex"
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    p.write_text(
        f"# family {fam}, seed {seed}, execution {n}, found {when} by differential.py\n"
        f"# oracle:  {json.dumps(detail['expected'], sort_keys=True)}\n"
        f"# sigwall: {json.dumps(detail['sigwall'], sort_keys=True)}\n"
        f"{kind} {msg.hex()}\n"
    )
    return p


def run_family(fam, seconds, seed, batch, out):
    gen, cmp, *batch_oracle = FAMILIES[fam]
    rng = random.Random(seed)
    counts = {"agree": 0, "both_reject": 0, "flagged": 0, "lenient": 0, "disagree": 0, "oracle_desync": 0}
    n = 0
    samples = out / f"{fam}.jsonl"
    new_cases = out / "regressions" / fam
    for old in new_cases.glob("*.hex") if new_cases.is_dir() else []:
        old.unlink()  # a previous run's: this run writes its own
    written = []
    with samples.open("w") as f:
        replayed = replay(fam, f)
        t0 = time.time()
        while time.time() - t0 < seconds:
            items = [gen(rng) for _ in range(batch)]
            if batch_oracle:
                exps = batch_oracle[0]([m for _, m, _ in items])
                items = [(k, m, e) for (k, m, _), e in zip(items, exps)]
            for (k, m, exp), got in zip(items, sigwall_fields(fam, [(k, m) for k, m, _ in items])):
                cls, detail = cmp(exp, got)
                if cls == "agree" and exp is None:
                    cls = "both_reject"
                counts[cls] += 1
                n += 1
                if cls == "disagree" or (cls == "lenient" and counts[cls] <= 20):
                    f.write(json.dumps({"class": cls, "hex": m.hex(), "detail": detail, "sigwall": got}) + "\n")
                if cls == "disagree" and len(written) < NEW_CASES_PER_FAMILY:
                    written.append(write_case(out, fam, seed, n, k, m, detail))
    dt = max(time.time() - t0, 1e-9)
    return n, dt, counts, replayed, written


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=20, help="per family")
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--batch", type=int, default=2000)
    ap.add_argument("--out", default=str(HERE / "differential-out"))
    a = ap.parse_args()
    if not BIN.exists():
        raise SystemExit(f"{BIN} missing: cargo build --release -p filter-dpi --bin dpi-fields")
    out = pathlib.Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    seed = a.seed if a.seed is not None else random.randrange(1 << 32)
    bad = 0
    print(f"differential fuzzing, seed {seed}, {a.seconds:g} s per family")
    for fam in a.families.split(","):
        n, dt, c, r, written = run_family(fam, a.seconds, seed, a.batch, out)
        bad += c["disagree"] + r["disagree"]
        if sum(r.values()):
            print(
                f"{fam:10} {sum(r.values()):9} stored cases replayed ({REGRESSIONS.relative_to(ROOT) / fam}): "
                + "  ".join(f"{k} {v}" for k, v in r.items())
            )
        print(
            f"{fam:10} {n:9} execs {n / dt:8.0f}/s  agree {c['agree']}  both_reject {c['both_reject']}  flagged {c['flagged']}  "
            f"lenient {c['lenient']}  disagree {c['disagree']}  oracle_desync {c['oracle_desync']}  "
            f"(samples: {out / (fam + '.jsonl')})"
        )
        if written:
            more = f" (the first {len(written)} of {c['disagree']})" if c["disagree"] > len(written) else ""
            print(
                f"{fam:10} disagreements written as regression cases{more} in {written[0].parent}; once explained and fixed, keep one with\n"
                f"           cp {written[0]} {REGRESSIONS / fam}/<what-it-catches>.hex\n"
                f"           and a provenance line in {REGRESSIONS / 'README.md'}"
            )
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
