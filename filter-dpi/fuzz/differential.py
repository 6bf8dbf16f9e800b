#!/usr/bin/env python3
"""Differential fuzzing: sigwall's decoders against an independent one, per decoder family.

Generates messages with random field values, mutates most of them (byte flips, interesting
values, truncation, insertion, duplication), decodes each with pycrate (the oracle) and with
sigwall (`dpi-fields`, a small binary on filter-dpi that prints the fields as JSON lines), and
compares the security-relevant fields:

  tcap_map   M3UA/SCCP fixed, TCAP/MAP generated and mutated: message type, transaction ids,
             per component kind, invoke id, operation code, IMSI, MSISDN   (pycrate TCAP_MAPv2v3)
  sccp_m3ua  TCAP fixed, M3UA and SCCP generated and mutated: OPC, DPC, SI, called and calling
             routing indicator, SSN, global-title digits                 (pycrate SIGTRAN, SCCP)
  diameter   command code, R flag, application id, Origin/Destination Host/Realm, User-Name
             (first top-level occurrence)                                 (pycrate_diameter)
  gtp        GTPv2-C: message type, TEID, sequence, IMSI, MSISDN, APN    (pycrate TS29274_GTPC)

Each execution lands in one class:
  agree       both decode and every compared field is equal;
  both_reject neither decodes it cleanly;
  flagged     pycrate decodes, sigwall reports an error or a non-canonical finding: the message
              is judged malformed (fail closed) - safe, counted, not a disagreement;
  lenient     sigwall decodes cleanly what pycrate rejects (sigwall reads more than the oracle;
              the receiver, not pycrate, decides what is delivered) - counted, sampled;
  disagree    both decode cleanly and a field differs: a bug in one of them. Every one is
              written to --out with its hex for explanation;
  oracle_desync  (gtp) pycrate lost the IE boundaries (it sizes fixed-length IEs by their
              definition, not by the Length field TS 29.274 §8.1 says to follow): no oracle.

Usage: differential.py [--seconds N] [--families a,b] [--seed S] [--batch B] [--out DIR]
Needs the release build of dpi-fields (`cargo build --release -p filter-dpi --bin dpi-fields`;
`cargo xtask fuzz` builds it) and pycrate. Exit status 1 when a disagreement was found.
"""

import argparse
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


def cmp_tcap_map(exp, got):
    """(class, detail)"""
    clean = got.get("ok") and got.get("error") is None and not got.get("anomalies")
    if exp is None:
        return ("agree", None) if not clean else ("lenient", None)
    if not clean:
        return "flagged", None
    g = {"type": got.get("tcap_type"), "components": [sigwall_comp(c) for c in got.get("components", [])]}
    e = {"type": exp["type"], "components": [{k: v for k, v in c.items() if k != "raw_arg"} for c in exp["components"]]}
    # An argument pycrate's schema rejects (wrong or unknown field tags) has no oracle for its
    # identities; sigwall reads MAP fields by tag without a schema, so it may still find some:
    # lenient, not a disagreement.
    lenient = False
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
        sccp, err = parse_SCCP(v["Data"].get_val())
        if err or sccp is None or sccp[0].get_val() not in (0x09,):
            return None

        def party(name):
            v = sccp[name]["Value"]
            ai = v["AddrInd"]
            gt = None
            if ai["GTInd"].get_val() == 4:
                g = v["GT"].get_alt()
                gt = g["Addr"].get_alt().decode()
                # Q.713 §3.4.2.3.1: an odd count (ES 1) ends with a filler nibble 0, which
                # pycrate renders as a digit when it is 0 (it only stops at 0xF)
                if g["EncodingScheme"].get_val() == 1 and len(gt) == 2 * len(g["Addr"].get_alt().to_bytes()):
                    gt = gt[:-1]
                # pycrate names signals 11, 12 and spares; sigwall renders them as hex digits
                gt = re.sub(r"_code(1[12])_|_spare(\d+)_", lambda x: "%X" % int(x.group(1) or x.group(2)), gt)
            return {
                # digits compared for GTI 4 only (what the generator makes; other GTIs come
                # from mutations, and this oracle reads only GTI 4's layout)
                "gti4": ai["GTInd"].get_val() == 4,
                "ri": ai["RoutingInd"].get_val(),
                "pc": v["PC"].get_val() if ai["PCInd"].get_val() else None,
                "ssn": v["SSN"].get_val() if ai["SSNInd"].get_val() else None,
                "gt": gt,
            }

        return {"opc": opc, "dpc": dpc, "si": si, "called": party("CalledPartyAddr"), "calling": party("CallingPartyAddr")}
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
        if not exp[side].pop("gti4"):
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


FAMILIES = {
    "tcap_map": (gen_tcap_map, cmp_tcap_map),
    "sccp_m3ua": (gen_sccp_m3ua, cmp_sccp_m3ua),
    "diameter": (gen_diameter, cmp_diameter),
    "gtp": (gen_gtp, cmp_gtp),
}


def run_family(fam, seconds, seed, batch, out):
    gen, cmp = FAMILIES[fam]
    rng = random.Random(seed)
    counts = {"agree": 0, "both_reject": 0, "flagged": 0, "lenient": 0, "disagree": 0, "oracle_desync": 0}
    n = 0
    t0 = time.time()
    samples = out / f"{fam}.jsonl"
    with samples.open("w") as f:
        while time.time() - t0 < seconds:
            items = [gen(rng) for _ in range(batch)]
            inp = "".join(f"{k} {m.hex()}\n" for k, m, _ in items)
            res = subprocess.run([str(BIN)], input=inp, capture_output=True, text=True, check=True)
            lines = res.stdout.splitlines()
            if len(lines) != len(items):
                raise SystemExit(f"{fam}: dpi-fields answered {len(lines)} lines for {len(items)}")
            for (k, m, exp), line in zip(items, lines):
                got = json.loads(line)
                cls, detail = cmp(exp, got)
                if cls == "agree" and exp is None:
                    cls = "both_reject"
                counts[cls] += 1
                n += 1
                if cls == "disagree" or (cls == "lenient" and counts[cls] <= 20):
                    f.write(json.dumps({"class": cls, "hex": m.hex(), "detail": detail, "sigwall": got}) + "\n")
    dt = time.time() - t0
    return n, dt, counts


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
        n, dt, c = run_family(fam, a.seconds, seed, a.batch, out)
        bad += c["disagree"]
        print(
            f"{fam:10} {n:9} execs {n / dt:8.0f}/s  agree {c['agree']}  both_reject {c['both_reject']}  flagged {c['flagged']}  "
            f"lenient {c['lenient']}  disagree {c['disagree']}  oracle_desync {c['oracle_desync']}  "
            f"(samples: {out / (fam + '.jsonl')})"
        )
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
