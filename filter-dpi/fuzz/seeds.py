#!/usr/bin/env python3
"""Regenerates the committed fuzz seeds in seeds/<target>/ from testdata/captures/.

tshark (`-T json -x`) dissects every capture and gives each protocol layer's raw bytes; the
messages are written in the input format of each target (see fuzz_targets/*.rs), one file per
distinct input, named by the first 16 hex digits of its SHA-256. `cargo xtask fuzz` hands the
seeds to libFuzzer next to the (ignored) working corpus, so a run starts from real M2PA, M3UA,
TCAP/MAP, Diameter and GTP messages instead of from nothing.

Run from anywhere: python3 filter-dpi/fuzz/seeds.py (needs tshark; `cargo xtask setup` installs
it). The output is deterministic for a given tshark version (4.0 here).
"""

import hashlib
import json
import pathlib
import shutil
import struct
import subprocess

HERE = pathlib.Path(__file__).resolve().parent
CAPTURES = HERE.parent.parent / "testdata" / "captures"
SEEDS = HERE / "seeds"

# Messages kept per capture and layer: the captures repeat the same few message types (DWR/DWA,
# heartbeats), and a small corpus is what libFuzzer mutates fastest.
MAX_PER_CAPTURE = 40


def raw_values(node, key, out):
    """Every (hex bytes, offset) of `key` (a `<proto>_raw` field) anywhere under `node`."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == key:
                # [hex, offset, length, bitmask, type], or a list of those with --no-duplicate-keys.
                items = v if v and isinstance(v[0], list) else [v]
                for item in items:
                    if item and isinstance(item[0], str):
                        out.append((bytes.fromhex(item[0]), item[1]))
            else:
                raw_values(v, key, out)
    elif isinstance(node, list):
        for v in node:
            raw_values(v, key, out)


def sctp_packet(raw, frame, off):
    """tshark's SCTP layer, if its chunk lengths are consistent (not cut by a snap length)."""
    at = 12
    while at < len(raw):
        n = int.from_bytes(raw[at + 2 : at + 4], "big") if at + 4 <= len(raw) else 0
        if n < 4 or at + n > len(raw):
            return None
        at += (n + 3) & ~3
    return raw if len(raw) >= 12 else None


def sigtran_message(raw, frame, off):
    """M2PA and M3UA: tshark's layer covers the header only; the message length is at +4."""
    if frame is None or frame[off : off + len(raw)] != raw:
        return None
    n = int.from_bytes(frame[off + 4 : off + 8], "big")
    return frame[off : off + n] if n >= 8 and off + n <= len(frame) else None


def ber_element(raw, frame, off):
    """TCAP: one whole BER element (tshark also calls some non-TCAP payloads TCAP)."""
    if len(raw) < 2:
        return None
    n = raw[1]
    if n & 0x80:
        k = n & 0x7F
        total = 2 + k + int.from_bytes(raw[2 : 2 + k], "big") if 0 < k <= 4 else -1
    else:
        total = 2 + n
    return raw if total == len(raw) else None


def whole(raw, frame, off):
    return raw


def layer_messages(layer, check=whole):
    """Distinct messages of `layer` over all captures (those `check` returns), in capture and
    frame order."""
    seen, msgs = set(), []
    for cap in sorted(CAPTURES.glob("*.pcap*")):
        out = subprocess.run(
            ["tshark", "-n", "-r", str(cap), "-T", "json", "-x", "--no-duplicate-keys", "-Y", layer],
            check=True,
            capture_output=True,
        ).stdout
        kept = 0
        for pkt in json.loads(out or b"[]"):
            layers = pkt.get("_source", {}).get("layers", {})
            frame_raw = layers.get("frame_raw")
            frame = bytes.fromhex(frame_raw[0]) if frame_raw else None
            found = []
            raw_values(layers, f"{layer}_raw", found)
            for raw, off in found:
                m = check(raw, frame, off)
                if m and m not in seen and kept < MAX_PER_CAPTURE:
                    seen.add(m)
                    msgs.append(m)
                    kept += 1
    return msgs


def tlv(tag, value):
    """A SIGTRAN parameter, padded to 4 bytes."""
    p = struct.pack(">HH", tag, 4 + len(value)) + value
    return p + b"\0" * (-len(p) % 4)


def xua(klass, mtype, params):
    body = b"".join(params)
    return bytes([1, 0, klass, mtype]) + struct.pack(">I", 8 + len(body)) + body


def m3ua_protocol_data(m):
    """(OPC, DPC, SI, NI, SLS, user data) of an M3UA DATA message, or None."""
    if len(m) < 8 or m[2:4] != b"\x01\x01":
        return None
    at = 8
    while at + 4 <= len(m):
        tag, n = struct.unpack(">HH", m[at : at + 4])
        if n < 4:
            return None
        if tag == 0x0210 and n >= 16:
            opc, dpc, si, ni, _mp, sls = struct.unpack(">IIBBBB", m[at + 4 : at + 16])
            return opc, dpc, si, ni, sls, m[at + 16 : at + n]
        at += (n + 3) & ~3
    return None


def as_m2ua(m):
    """The same MTP3 user message as M2UA MAUP DATA (RFC 3331): SIO + ITU routing label."""
    pd = m3ua_protocol_data(m)
    if pd is None:
        return None
    opc, dpc, si, ni, sls, user = pd
    label = (dpc & 0x3FFF) | ((opc & 0x3FFF) << 14) | ((sls & 0xF) << 28)
    mtp3 = bytes([(ni << 6) | (si & 0x0F)]) + struct.pack("<I", label) + user
    return xua(6, 1, [tlv(0x0001, struct.pack(">I", 1)), tlv(0x0300, mtp3)])


def sua_address(a):
    """An SCCP party address (GTI 4, SSN present) as an SUA address parameter, or None."""
    if not a or a[0] & 0x3C != 0x10 or not a[0] & 0x02:
        return None
    at = 1 + (2 if a[0] & 0x01 else 0)
    ssn = a[at]
    tt, npes, nai = a[at + 1 : at + 4]
    digits = a[at + 4 :]
    n = len(digits) * 2 - (1 if npes & 0x0F == 1 else 0)
    ri = 2 if a[0] & 0x40 else 1
    gt = tlv(0x8001, bytes([0, 0, 0, 4, n, tt, npes >> 4, nai & 0x7F]) + digits)
    return struct.pack(">HH", ri, 0x07) + gt + tlv(0x8003, bytes([0, 0, 0, ssn]))


def as_sua(m):
    """An M3UA DATA carrying an SCCP UDT, as an SUA CLDT (RFC 3868) with the same TCAP."""
    pd = m3ua_protocol_data(m)
    if pd is None or pd[2] != 3:
        return None
    u = pd[5]
    if len(u) < 5 or u[0] != 0x09:
        return None
    try:
        # pointers count from their own octet (2, 3, 4); each part is length, contents
        called = u[2 + u[2] + 1 : 2 + u[2] + 1 + u[2 + u[2]]]
        calling = u[3 + u[3] + 1 : 3 + u[3] + 1 + u[3 + u[3]]]
        data = u[4 + u[4] + 1 : 4 + u[4] + 1 + u[4 + u[4]]]
        src, dst = sua_address(calling), sua_address(called)
    except IndexError:
        return None
    if src is None or dst is None or not data:
        return None
    return xua(7, 1, [
        tlv(0x0006, struct.pack(">I", 1)),
        tlv(0x0115, bytes([0, 0, 0, u[1] & 0x8F])),
        tlv(0x0102, src),
        tlv(0x0103, dst),
        tlv(0x0116, bytes(4)),
        tlv(0x010B, data),
    ])


def length_prefixed(selector, msgs):
    """The sigtran target's input: a selector byte, then messages with 2-byte lengths."""
    return bytes([selector]) + b"".join(struct.pack(">H", len(m)) + m for m in msgs)


def main():
    seeds = {
        "sctp": layer_messages("sctp", sctp_packet),
        # Selector & 3: 0 M3UA (PPID 3), 1 M2PA (5), 2 SUA (4), 3 M2UA (2). One message per
        # input, and one input holding a run of them (SCCP segments that the decoder
        # reassembles). The SUA and M2UA seeds are the M3UA captures' messages converted (no
        # capture here has SUA or M2UA).
        "sigtran": [length_prefixed(0, [m]) for m in layer_messages("m3ua", sigtran_message)]
        + [length_prefixed(1, [m]) for m in layer_messages("m2pa", sigtran_message)]
        + [length_prefixed(2, [x]) for x in map(as_sua, layer_messages("m3ua", sigtran_message)) if x]
        + [length_prefixed(3, [x]) for x in map(as_m2ua, layer_messages("m3ua", sigtran_message)) if x],
        "tcap_map": layer_messages("tcap", ber_element),
        # Each message twice: as it is, for the message decoders (its version byte 1 also picks
        # 2-byte segments for the reassembler), and after a byte 0x0f that has the reassembler
        # cut the message every 16 bytes.
        "diameter": [x for m in layer_messages("diameter") for x in (m, b"\x0f" + m)],
        "gtp": layer_messages("gtpv2") + layer_messages("gtp"),
        # The captures carry no SMS TPDU: the pycrate-checked vectors of tests/sms/vectors.py,
        # after the direction byte the target reads first (0: to the MS, 1: from it).
        "sms": sms_seeds(),
    }
    m2pa = layer_messages("m2pa", sigtran_message)
    if m2pa:
        seeds["sigtran"].append(length_prefixed(1, m2pa))
    shutil.rmtree(SEEDS, ignore_errors=True)
    total = 0
    for target, inputs in seeds.items():
        d = SEEDS / target
        d.mkdir(parents=True)
        for data in inputs:
            (d / hashlib.sha256(data).hexdigest()[:16]).write_bytes(data)
            total += len(data)
        print(f"{target}: {len(inputs)} seeds")
    print(f"{total} bytes in all")


def sms_seeds():
    script = pathlib.Path(__file__).resolve().parent.parent / "tests/sms/vectors.py"
    out = subprocess.run(["python3", str(script)], check=True, capture_output=True, text=True).stdout
    seeds = []
    for line in out.splitlines():
        v = json.loads(line)
        seeds.append(bytes([0 if v["dir"] == "to_ms" else 1]) + bytes.fromhex(v["hex"]))
    return seeds


if __name__ == "__main__":
    main()
