#!/usr/bin/env python3
"""A minimal userspace SCTP endpoint pair (RFC 9260) over raw IPv4 sockets, for the in-path
corpus layer (`tests::inpath_corpus`): this machine has no SCTP kernel module, so the
association is driven here. scapy builds every chunk and computes every CRC32c; chunks are read
back by hand (type, flags, length, value) and every received CRC32c is checked.

While a raw socket for protocol 132 is open, the kernel sends no ICMP protocol-unreachable for
SCTP (net/ipv4/ip_input.c: `icmp_send` only when no raw socket took the packet), so the two
ends see each other's packets and nothing else interferes.

Subcommands:
- `server`: the core side (STP/HLR). Answers INIT with INIT-ACK and a state cookie, COOKIE-ECHO
  with COOKIE-ACK, SACKs every packet with DATA (cumulative TSN ack; duplicates reported),
  answers HEARTBEAT and SHUTDOWN. Logs one JSON line per event to `--log` (flushed at once):
  every DATA chunk (TSN, stream, SSN, PPID, flags, bytes), every reassembled user message with
  its MAP operations decoded by pycrate (M3UA, SCCP, TCAP), packets with a bad CRC32c or
  verification tag (discarded, as a real stack would).
- `client`: the interconnect side. Sets the association up, then sends the packets of
  `--plan` (JSON: a list of steps, each {"label", "packets": [[chunk, ...], ...]}, a chunk
  {"stream", "ppid", "begin", "end", "data": hex}) with consecutive TSNs and per-stream SSNs,
  sends each step's packets back to back (a message's fragments, as a sender with its window
  open does) and waits for the SACK of the step's last TSN (T3-rtx 1 s, at most 3
  retransmissions of the step), then sends a
  HEARTBEAT and a SHUTDOWN. Writes what it sent and saw to `--out` (JSON).
- `legit`: legitimate messages from the partner, one hex per line: MAP (M3UA DATA, pycrate)
  updateLocation and sendAuthenticationInfo for a partner subscriber, each its own transaction;
  or (`--kind diameter`, scapy) ULR and AIR, then a DWR and its DWA.
- `decode`: the MAP components (pycrate) of M3UA DATA messages (hex on stdin, one per line).
- `chunks`: the DATA chunks of Ethernet frames (hex on stdin, one per line) as plan chunks.
"""

import argparse
import json
import os
import random
import select
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import logging  # noqa: E402

logging.getLogger("scapy").setLevel(logging.ERROR)

from scapy.layers.sctp import (  # noqa: E402
    SCTP,
    SCTPChunkCookieAck,
    SCTPChunkCookieEcho,
    SCTPChunkData,
    SCTPChunkHeartbeatReq,
    SCTPChunkInit,
    SCTPChunkInitAck,
    SCTPChunkParamHeartbeatInfo,
    SCTPChunkParamStateCookie,
    SCTPChunkSACK,
    SCTPChunkShutdown,
    SCTPChunkShutdownAck,
    SCTPChunkShutdownComplete,
    crc32c,
)

DATA, INIT, INIT_ACK, SACK, HEARTBEAT, HEARTBEAT_ACK, ABORT, SHUTDOWN, SHUTDOWN_ACK = 0, 1, 2, 3, 4, 5, 6, 7, 8
COOKIE_ECHO, COOKIE_ACK, SHUTDOWN_COMPLETE = 10, 11, 14
STREAMS = 16
RWND = 1 << 20
T3_S = 1.0
MAX_RTX = 3


def raw_socket(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 132)
    s.bind((addr, 0))
    return s


def send(sock, dst, sport, dport, vtag, chunks):
    """One SCTP packet with `chunks` (scapy layers) bundled; scapy computes the CRC32c."""
    pkt = SCTP(sport=sport, dport=dport, tag=vtag)
    for c in chunks:
        pkt = pkt / c
    sock.sendto(bytes(pkt), (dst, 0))


def parse(ip_packet):
    """(src, sctp common header fields, chunks, crc_ok) of a received IPv4 packet; chunks as
    (type, flags, value bytes). Malformed input gives None."""
    if len(ip_packet) < 20:
        return None
    ihl = (ip_packet[0] & 0x0F) * 4
    src = socket.inet_ntoa(ip_packet[12:16])
    p = ip_packet[ihl:]
    if len(p) < 12:
        return None
    sport, dport, vtag, crc = struct.unpack(">HHII", p[:12])
    zeroed = p[:8] + b"\0\0\0\0" + p[12:]
    crc_ok = crc32c(zeroed) == crc
    chunks, off = [], 12
    while off + 4 <= len(p):
        t, fl, ln = struct.unpack(">BBH", p[off:off + 4])
        if ln < 4 or off + ln > len(p):
            return None
        chunks.append((t, fl, p[off + 4:off + ln]))
        off += (ln + 3) & ~3
    return src, sport, dport, vtag, chunks, crc_ok


def receive(sock, timeout, want):
    """Packets for which `want(parsed)` is true, until one arrives or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            return None
        got = parse(sock.recv(65535))
        if got is not None and want(got):
            return got


def decode_map(m3ua):
    """MAP components of an M3UA DATA message, decoded by pycrate: a list of
    [component, opcode] (opcode None for components without one), or an error string."""
    from pycrate_asn1dir import TCAP_MAPv2v3
    from pycrate_mobile.M3UA import parse_M3UA
    from pycrate_mobile.SCCP import parse_SCCP

    try:
        m, err = parse_M3UA(m3ua)
        if err:
            return f"M3UA error {err}"
        s, err = parse_SCCP(m["ParamsDATA"][0][2]["Data"].get_val())
        if err:
            return f"SCCP error {err}"
        tcap = TCAP_MAPv2v3.GLOBAL.MOD["TCAP-MAP-Messages"]["TCAP-MAP-Message"]
        tcap.from_ber(s["Data"]["Value"].get_val())
        kind, body = tcap.get_val()
        ops = []
        for comp in body.get("components", []) if isinstance(body, dict) else []:
            name, c = comp[1]
            op = c.get("opcode") if isinstance(c, dict) else None
            ops.append([name, op[1] if op and op[0] == "local" else None])
        return ops
    except Exception as e:  # noqa: BLE001 (any decoding failure is reported, not fatal)
        return f"decode error: {type(e).__name__}: {e}"


# ---- server (core side) ----


def server(a):
    sock = raw_socket(a.addr)
    log = open(a.log, "a", buffering=1)
    decode_map(b"")  # pycrate's MAP modules take a second to import: not while a SACK waits

    def note(**kw):
        log.write(json.dumps(kw) + "\n")

    my_tag = random.randint(1, 0xFFFFFFFF)
    cookie = os.urandom(16)
    assoc = None  # {"peer", "sport", "their_tag", "cum", "got": set, "partial": {stream: [...]}, "my_tsn"}
    note(ev="listening", addr=a.addr, port=a.port)
    open(a.ready, "w").close()
    deadline = time.monotonic() + a.seconds
    while time.monotonic() < deadline:
        r, _, _ = select.select([sock], [], [], 0.2)
        if not r:
            continue
        got = parse(sock.recv(65535))
        if got is None:
            note(ev="malformed")
            continue
        src, sport, dport, vtag, chunks, crc_ok = got
        if dport != a.port:
            continue
        if not crc_ok:
            note(ev="bad_crc", src=src, sport=sport)
            continue
        types = [t for t, _, _ in chunks]
        if INIT in types:
            _, _, v = chunks[types.index(INIT)]
            their_tag, _, _, _, their_tsn = struct.unpack(">IIHHI", v[:16])
            my_tsn = random.randint(1, 0x7FFFFFFF)
            assoc = {"peer": src, "sport": sport, "their_tag": their_tag, "cum": (their_tsn - 1) & 0xFFFFFFFF,
                     "got": set(), "partial": {}, "my_tsn": my_tsn, "up": False}
            send(sock, src, a.port, sport, their_tag, [SCTPChunkInitAck(
                init_tag=my_tag, a_rwnd=RWND, n_out_streams=STREAMS, n_in_streams=STREAMS, init_tsn=my_tsn,
                params=[SCTPChunkParamStateCookie(cookie=cookie + struct.pack(">I", their_tag))])])
            note(ev="init", src=src, sport=sport, their_tag=their_tag, initial_tsn=their_tsn)
            continue
        if assoc is None or sport != assoc["sport"] or src != assoc["peer"]:
            note(ev="no_association", src=src, sport=sport, types=types)
            continue
        if vtag != my_tag:
            note(ev="bad_vtag", vtag=vtag, types=types)
            continue
        reply, dups, had_data = [], [], False
        for t, fl, v in chunks:
            if t == COOKIE_ECHO:
                if v != cookie + struct.pack(">I", assoc["their_tag"]):
                    note(ev="bad_cookie")
                    break
                assoc["up"] = True
                reply.append(SCTPChunkCookieAck())
                note(ev="established")
            elif t == DATA and assoc["up"]:
                had_data = True
                tsn, stream, ssn, ppid = struct.unpack(">IHHI", v[:12])
                user = v[12:]
                if tsn in assoc["got"] or ((tsn - assoc["cum"] - 1) & 0xFFFFFFFF) >= 0x80000000:
                    dups.append(tsn)
                    note(ev="dup", tsn=tsn)
                    continue
                assoc["got"].add(tsn)
                while (assoc["cum"] + 1) & 0xFFFFFFFF in assoc["got"]:
                    assoc["cum"] = (assoc["cum"] + 1) & 0xFFFFFFFF
                note(ev="data", tsn=tsn, stream=stream, ssn=ssn, ppid=ppid, flags=fl, data=user.hex())
                # Reassembly per stream (ordered, so fragments of one message are consecutive).
                if fl & 2:
                    assoc["partial"][stream] = []
                part = assoc["partial"].setdefault(stream, [])
                part.append((tsn, user))
                if fl & 1:
                    msg = b"".join(u for _, u in part)
                    note(ev="message", tsns=[n for n, _ in part], stream=stream, ssn=ssn, ppid=ppid, data=msg.hex(),
                         map=decode_map(msg) if ppid == 3 else None)
                    assoc["partial"][stream] = []
            elif t == HEARTBEAT:
                # The HEARTBEAT-ACK carries the same Heartbeat Info parameter back.
                reply.append(bytes([HEARTBEAT_ACK, 0]) + struct.pack(">H", len(v) + 4) + v)
                note(ev="heartbeat")
            elif t == SHUTDOWN:
                reply.append(SCTPChunkShutdownAck())
                note(ev="shutdown", cum_tsn=struct.unpack(">I", v[:4])[0])
            elif t == SHUTDOWN_COMPLETE:
                note(ev="closed")
                assoc["up"] = False
            elif t == ABORT:
                note(ev="abort")
                assoc["up"] = False
        if had_data:
            reply.append(SCTPChunkSACK(cumul_tsn_ack=assoc["cum"], a_rwnd=RWND, dup_tsn_list=dups))
        if reply:
            # HEARTBEAT-ACK is made by hand (scapy has no way to echo the info back verbatim).
            body = b"".join(c if isinstance(c, bytes) else bytes(c) for c in reply)
            sock.sendto(bytes(SCTP(sport=a.port, dport=sport, tag=assoc["their_tag"]) / body), (src, 0))
    note(ev="stopped")


# ---- client (interconnect side) ----


def client(a):
    plan = json.load(open(a.plan))
    sock = raw_socket(a.src)
    my_tag = random.randint(1, 0xFFFFFFFF)
    tsn = random.randint(1, 0x7FFFFFFF)
    out = {"initial_tsn": tsn, "established": False, "steps": [], "retransmissions": 0, "aborts": 0,
           "heartbeat_ack": False, "shutdown_ack": False, "bad_crc": 0}

    def mine(p):
        src, sport, dport, vtag, chunks, crc_ok = p
        if src != a.dst or sport != a.dport or dport != a.sport:
            return False
        if not crc_ok:
            out["bad_crc"] += 1
            return False
        if any(t == ABORT for t, _, _ in chunks):
            out["aborts"] += 1
        return vtag == my_tag

    def exchange(chunks, vtag, want_type, check=lambda v: True):
        """Send `chunks` until a packet with a chunk of `want_type` (and `check(value)`) answers."""
        return exchange_all([chunks], vtag, want_type, check)

    def exchange_all(packets, vtag, want_type, check=lambda v: True):
        """Send the packets back to back (as a sender with the window open sends the fragments of
        one message: RFC 9260 section 6.1), again on each timeout, until one answers."""
        for attempt in range(1 + MAX_RTX):
            if attempt:
                out["retransmissions"] += 1
            for chunks in packets:
                send(sock, a.dst, a.sport, a.dport, vtag, chunks)
            deadline = time.monotonic() + T3_S
            while True:
                got = receive(sock, deadline - time.monotonic(), mine)
                if got is None:
                    break
                for t, _, v in got[4]:
                    if t == want_type and check(v):
                        return v
        return None

    init = SCTPChunkInit(init_tag=my_tag, a_rwnd=RWND, n_out_streams=STREAMS, n_in_streams=STREAMS, init_tsn=tsn)
    ack = exchange([init], 0, INIT_ACK)
    if ack is None:
        json.dump(out, open(a.out, "w"))
        return
    their_tag = struct.unpack(">I", ack[:4])[0]
    params, cookie, off = ack[16:], None, 0
    while off + 4 <= len(params):
        pt, pl = struct.unpack(">HH", params[off:off + 4])
        if pt == 7:
            cookie = params[off + 4:off + pl]
        off += (pl + 3) & ~3
    out["established"] = exchange([SCTPChunkCookieEcho(cookie=cookie)], their_tag, COOKIE_ACK) is not None

    ssn = {}
    for step in plan:
        rec = {"label": step["label"], "chunks": [], "acked": True}
        packets, last = [], None
        for packet in step["packets"]:
            layers = []
            for c in packet:
                stream = c["stream"]
                n = ssn.get(stream, 0)
                if c["end"]:
                    ssn[stream] = (n + 1) & 0xFFFF
                data = bytes.fromhex(c["data"])
                layers.append(SCTPChunkData(beginning=int(c["begin"]), ending=int(c["end"]), tsn=tsn, stream_id=stream,
                                            stream_seq=n, proto_id=c["ppid"], data=data))
                rec["chunks"].append({"tsn": tsn, "stream": stream, "ssn": n, "ppid": c["ppid"], "begin": c["begin"],
                                      "end": c["end"], "data": c["data"]})
                last = tsn
                tsn = (tsn + 1) & 0xFFFFFFFF
            packets.append(layers)

        def acks(v, last=last):
            return ((struct.unpack(">I", v[:4])[0] - last) & 0xFFFFFFFF) < 0x80000000

        # The step's packets (a message's fragments) back to back, then its SACK.
        if exchange_all(packets, their_tag, SACK, acks) is None:
            rec["acked"] = False
        out["steps"].append(rec)
    out["last_tsn"] = (tsn - 1) & 0xFFFFFFFF

    info = os.urandom(8)
    hb = SCTPChunkHeartbeatReq(params=[SCTPChunkParamHeartbeatInfo(data=info)])
    out["heartbeat_ack"] = exchange([hb], their_tag, HEARTBEAT_ACK, lambda v: info in v) is not None
    shut = SCTPChunkShutdown(cumul_tsn_ack=0)
    if exchange([shut], their_tag, SHUTDOWN_ACK) is not None:
        out["shutdown_ack"] = True
        send(sock, a.dst, a.sport, a.dport, their_tag, [SCTPChunkShutdownComplete()])
    json.dump(out, open(a.out, "w"))


# ---- message sources ----


def legit(a):
    if a.kind == "diameter":
        return legit_diameter(a)
    import ss7

    to_hlr = (ss7.SSN_HLR, ss7.HOME_HLR_GT)
    ul = {"imsi": ss7.tbcd(ss7.PARTNER_IMSI), "msc-Number": ss7.isdn(ss7.PARTNER_GT),
          "vlr-Number": ss7.isdn(ss7.PARTNER_GT)}
    ss7.ACN["infoRetrieval-v3"] = (0, 4, 0, 0, 1, 0, 14, 3)
    sai = {"imsi": ss7.tbcd(ss7.PARTNER_IMSI), "numberOfRequestedVectors": 1}
    for i in range(a.count):
        # Each message its own TCAP transaction (the source port number seeds the id).
        if i % 2 == 0:
            m = ss7.messages(50000 + i, to_hlr, (ss7.SSN_VLR, ss7.PARTNER_GT), "networkLocUp-v3", 2,
                             "UpdateLocationArg", ul, 1)[0]
        else:
            m = ss7.messages(50000 + i, to_hlr, (ss7.SSN_VLR, ss7.PARTNER_GT), "infoRetrieval-v3", 56,
                             "SendAuthenticationInfoArg", sai, 1)[0]
        print(m.hex())


def legit_diameter(a):
    """Diameter from the partner's MME (scapy.contrib.diameter through diameter.py): ULR and AIR,
    each with its own Session-Id and ids, then one DWR and the DWA that answers it."""
    import diameter
    from scapy.contrib.diameter import AVP, DiamAns, DiamReq

    mme = "mme1." + diameter.PARTNER_REALM
    for i in range(a.count):
        f = diameter.ulr if i % 2 == 0 else diameter.air
        print(f(mme, diameter.PARTNER_REALM, 500 + i).hex())
    origin = lambda host, realm: [AVP("Origin-Host", val=host), AVP("Origin-Realm", val=realm)]  # noqa: E731
    print(bytes(DiamReq("DWR", drHbHId=0x7000_0999, drEtEId=0x0C00_0999,
                        avpList=origin(mme, diameter.PARTNER_REALM))).hex())
    print(bytes(DiamAns("DWA", drHbHId=0x7000_0999, drEtEId=0x0C00_0999,
                        avpList=[AVP("Result-Code", val=2001)] + origin("hss1." + diameter.HOME_REALM,
                                                                          diameter.HOME_REALM))).hex())


def decode(a):
    for line in sys.stdin:
        print(json.dumps(decode_map(bytes.fromhex(line.strip()))))


def chunks(a):
    from scapy.all import Ether

    for line in sys.stdin:
        f = Ether(bytes.fromhex(line.strip()))
        layer = f[SCTP].payload
        out = []
        while isinstance(layer, SCTPChunkData):
            out.append({"stream": layer.stream_id, "ppid": layer.proto_id, "begin": bool(layer.beginning),
                        "end": bool(layer.ending), "data": bytes(layer.data).hex()})
            layer = layer.payload
        print(json.dumps(out))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server")
    s.add_argument("--addr", required=True)
    s.add_argument("--port", type=int, default=2905)
    s.add_argument("--log", required=True)
    s.add_argument("--ready", required=True, help="created once the socket is open")
    s.add_argument("--seconds", type=float, default=120, help="stop after this long, whatever happens")
    c = sub.add_parser("client")
    c.add_argument("--src", required=True)
    c.add_argument("--dst", required=True)
    c.add_argument("--sport", type=int, required=True)
    c.add_argument("--dport", type=int, default=2905)
    c.add_argument("--plan", required=True)
    c.add_argument("--out", required=True)
    g = sub.add_parser("legit")
    g.add_argument("--count", type=int, required=True)
    g.add_argument("--kind", choices=["map", "diameter"], default="map")
    sub.add_parser("chunks")
    sub.add_parser("decode")
    a = p.parse_args()
    {"server": server, "client": client, "legit": legit, "chunks": chunks, "decode": decode}[a.cmd](a)


if __name__ == "__main__":
    main()
