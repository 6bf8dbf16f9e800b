#!/usr/bin/env python3
"""SMS TPDU test vectors for filter-dpi's `sms` decoder, read back by pycrate
(pycrate_mobile.TS23040_SMS), the independent oracle. Prints one JSON object per line: name,
direction ("to_ms": SMS-DELIVER, "from_ms": SMS-SUBMIT), the TPDU in hex, and pycrate's reading
of TP-OA/TP-DA, TP-PID, TP-DCS, TP-UDHI, TP-UDL and the UDH elements. `src/sms/tests.rs` holds
the output; rerun this and compare after changing either."""

import json
import sys

sys.dont_write_bytecode = True
from pycrate_mobile.TS23040_SMS import SMS_DELIVER, SMS_SUBMIT  # noqa: E402


def addr(digits, ton_npi=0x91):
    d = digits + ("F" if len(digits) % 2 else "")
    return bytes([len(digits), ton_npi]) + bytes(int(d[i + 1], 16) << 4 | int(d[i], 16) for i in range(0, len(d), 2))


SCTS = bytes.fromhex("62102102000000")


def deliver(oa, pid, dcs, udl, ud, udhi=False):
    return bytes([0x04 | (0x40 if udhi else 0)]) + addr(oa) + bytes([pid, dcs]) + SCTS + bytes([udl]) + ud


def submit(da, pid, dcs, udl, ud, vp=0xA7):
    return bytes([0x11, 0x07]) + addr(da) + bytes([pid, dcs, vp, udl]) + ud


def describe(name, direction, raw):
    cls = SMS_DELIVER if direction == "to_ms" else SMS_SUBMIT
    p = cls()
    p.from_bytes(raw)
    assert p.to_bytes() == raw, name
    a = p["TP_OA"] if direction == "to_ms" else p["TP_DA"]
    udh = p["TP_UD"]["UDH"]
    ies = [] if udh.get_trans() else [[ie["T"].get_val(), ie["V"].to_bytes().hex()] for ie in udh["UDH"]]
    print(json.dumps({
        "name": name, "dir": direction, "hex": raw.hex(),
        "addr": a["Num"].decode(), "pid": p["TP_PID"].to_bytes()[0], "dcs": p["TP_DCS"].to_bytes()[0],
        "udhi": p["TP_UDHI"].get_val(), "udl": p["TP_UD"]["UDL"].get_val(), "ies": ies,
    }))


# A plain text SMS: GSM 7-bit "hello" (5 septets, 5 octets packed).
describe("text", "to_ms", deliver("447700900123", 0x00, 0x00, 5, bytes.fromhex("e8329bfd06")))
# Simjacker-style: (U)SIM data download, class-2 8-bit, UDH with a command packet header (IEI
# 0x70, empty), then the secured packet.
cp = bytes.fromhex("0270000016021212b00000000000000000000000") + b"\xd0" * 8
ud = bytes([2, 0x70, 0x00]) + cp
describe("sim-ota", "to_ms", deliver("33609000001", 0x7F, 0xF6, len(ud), ud, udhi=True))
# A concatenated 8-bit SMS: UDH IEI 0x00 (not OTA).
ud = bytes([5, 0x00, 0x03, 0x2A, 0x02, 0x01]) + b"\x01\x02\x03"
describe("concat-8bit", "to_ms", deliver("447700900123", 0x00, 0x04, len(ud), ud, udhi=True))
# SUBMIT, relative validity period, 7-bit "hi" (2 septets).
describe("submit", "from_ms", submit("351910000042", 0x00, 0x00, 2, bytes.fromhex("e834")))
