//! Replay of third-party captures (testdata/captures, provenance in its README.md) through the
//! veth lab with `sigwall run` on the edge side. The oracle is tshark: an independent decoder
//! whose per-frame transport fields (IP protocol, fragment offset, SCTP chunk types and PPIDs,
//! ports) are turned into the class sigwall's rules give, so sigwall's per-class counters must
//! equal what tshark sees in the same file. Needs root, tshark, editcap and tcpreplay.
//!
//! Per capture:
//! 1. `editcap -F pcap` (the captures are pcapng or pcap), then in Rust: Linux cooked (SLL)
//!    frames become Ethernet frames.
//! 2. Every address tshark decodes (every FT_IPv4/FT_IPv6 field: IP headers, GTP-U inner
//!    headers, ARP, and the addresses signaling carries in Diameter AVPs, GTPv2 IEs, S1AP, NAS,
//!    PCO, MAP) is rewritten at the position tshark reports into 198.19.0.0/16 or
//!    2001:db8:5157::/48, one new address per old one, in order of first appearance. The
//!    unspecified addresses (0.0.0.0, ::) are left as they are: they name no host. Checksums
//!    over the changed bytes are updated incrementally (so a checksum that was wrong in the
//!    capture, e.g. because of offload, stays wrong and a good one stays good; tshark checks
//!    that), and an SCTP CRC32c that was valid is recomputed.
//! 3. tshark, with its default reassembly, must find no address outside 198.18.0.0/15 and
//!    2001:db8::/32 in the rewritten file; only then is it replayed.
//! 4. A policy is derived from the rewritten capture: the busiest signaling source is a peer
//!    allowed all it sends, the second one only its main class, the third one a class it does
//!    not send; everything else is unknown. tcpreplay sends the file from the ipx namespace.
//! 5. Asserted: per class, sigwall's total equals tshark's count (exactly for every signaling
//!    class, at least for non-signaling because the namespaces add IPv6 ND/MLD); every
//!    (reason, class) cell equals what the policy gives for tshark's frames (so `allowed`
//!    equals the frames whose peer may send their class); and on the edge side exactly the
//!    frames the policy passes arrived.
//!
//! Everything the test makes (temp dir, namespaces, the daemon and its pins) is removed by
//! guards, also when an assertion fails.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use filter_common::{Class, Reason};
use filter_testkit::{daemon::Daemon, netns::Lab, packets::crc32c, sigwall_bin, tempdir};
use serde_json::Value;

const TOOLS: [(&str, &str); 5] = [
    ("tshark", "tshark"),
    ("editcap", "wireshark-common (editcap)"),
    ("tcpreplay", "tcpreplay"),
    ("nsenter", "util-linux (nsenter)"),
    ("ip", "iproute2"),
];

/// The veth MTU the lab leaves in place; every replayed frame must fit (checked per capture, so
/// nothing is silently excluded). Frames in these captures are at most 1514 bytes.
const VETH_MTU: usize = 1500;

/// Replay rate. veth's XDP ring holds 256 frames per queue; 2000 pps stays far below what the
/// edge drains, and the largest capture takes ~0.2 s.
const REPLAY_PPS: &str = "2000";

const SIGNALING: [Class; 6] =
    [Class::Sigtran, Class::Diameter, Class::GtpC, Class::GtpU, Class::Sctp, Class::Unclassified];

fn captures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/captures")
}

// ---------------------------------------------------------------------------------------------
// Tools, processes, temp files
// ---------------------------------------------------------------------------------------------

fn require_tools() {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for (tool, package) in TOOLS {
        let found = std::env::split_paths(&path).any(|d| d.join(tool).is_file());
        assert!(
            found,
            "the replay test needs `{tool}` on PATH (install {package}); CI installs tshark and \
             tcpreplay for it"
        );
    }
}

/// Run to completion; panic with its stderr unless it succeeds.
fn run(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    out
}

/// Run with a deadline: killed (and the test failed) if it takes longer than `limit`.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => {
            let out = out.expect("wait");
            assert!(
                out.status.success(),
                "{cmd:?} failed ({}):\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            out
        }
        Err(_) => {
            // SAFETY: kill(2) on our own child's pid (nsenter execs the tool in place).
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            let _ = rx.recv_timeout(Duration::from_secs(5));
            panic!("{cmd:?} did not finish within {limit:?}");
        }
    }
}

fn tshark(args: &[&str]) -> Vec<u8> {
    let mut cmd = Command::new("tshark");
    if args.first() != Some(&"-G") {
        // No name resolution, so addresses print as addresses (-G must come first).
        cmd.arg("-n");
    }
    run(cmd.args(args)).stdout
}

// ---------------------------------------------------------------------------------------------
// pcap files
// ---------------------------------------------------------------------------------------------

use filter_testkit::pcap::{Packet, read_pcap, to_ethernet, write_pcap};

// ---------------------------------------------------------------------------------------------
// Address rewriting
// ---------------------------------------------------------------------------------------------

/// Every tshark field of type FT_IPv4 or FT_IPv6 (about 2,800 in tshark 4.0).
fn address_fields() -> &'static HashSet<String> {
    static FIELDS: OnceLock<HashSet<String>> = OnceLock::new();
    FIELDS.get_or_init(|| {
        let out = tshark(&["-G", "fields"]);
        let set: HashSet<String> = String::from_utf8_lossy(&out)
            .lines()
            .filter_map(|l| {
                let cols: Vec<&str> = l.split('\t').collect();
                (cols.len() >= 4 && cols[0] == "F" && matches!(cols[3], "FT_IPv4" | "FT_IPv6"))
                    .then(|| cols[2].to_string())
            })
            .collect();
        assert!(
            set.contains("ip.src") && set.contains("ipv6.src") && set.contains("arp.src.proto_ipv4"),
            "tshark -G fields did not list the address fields"
        );
        set
    })
}

fn in_test_range(a: IpAddr) -> bool {
    match a {
        IpAddr::V4(v) => {
            let o = v.octets();
            v.is_unspecified() || (o[0] == 198 && o[1] & 0xfe == 18)
        }
        IpAddr::V6(v) => {
            let s = v.segments();
            v.is_unspecified() || (s[0] == 0x2001 && s[1] == 0x0db8)
        }
    }
}

/// Old address -> new address, assigned in order of first appearance.
#[derive(Default)]
struct AddrMap {
    map: HashMap<IpAddr, IpAddr>,
    order: Vec<(IpAddr, IpAddr)>,
    v4: u32,
    v6: u32,
}

impl AddrMap {
    fn get(&mut self, old: IpAddr) -> IpAddr {
        if old.is_unspecified() {
            return old;
        }
        if let Some(n) = self.map.get(&old) {
            return *n;
        }
        let new = match old {
            IpAddr::V4(_) => {
                let n = self.v4;
                self.v4 += 1;
                assert!(n < 250 * 250, "too many IPv4 addresses to map");
                IpAddr::V4(Ipv4Addr::new(198, 19, (n / 250 + 1) as u8, (n % 250 + 1) as u8))
            }
            IpAddr::V6(_) => {
                let n = self.v6;
                self.v6 += 1;
                IpAddr::V6(Ipv6Addr::new(0x2001, 0x0db8, 0x5157, 0, 0, 0, (n >> 16) as u16, (n & 0xffff) as u16 + 1))
            }
        };
        self.map.insert(old, new);
        self.order.push((old, new));
        new
    }
}

/// One decoded address field: its name, its bytes in hex and where tshark found them.
struct RawField {
    name: String,
    hex: String,
    pos: usize,
    len: usize,
    bitmask: u64,
}

/// Walk one packet of `tshark -T json -x --no-duplicate-keys` and collect every address field's
/// `_raw` entry `[hex, pos, len, bitmask, type]`.
fn raw_address_fields(v: &Value, fields: &HashSet<String>, out: &mut Vec<RawField>) {
    match v {
        Value::Object(m) => {
            for (k, val) in m {
                match k.strip_suffix("_raw") {
                    Some(name) if fields.contains(name) => {
                        let entries: Vec<&Value> = match val.as_array() {
                            Some(a) if a.first().is_some_and(Value::is_array) => a.iter().collect(),
                            _ => vec![val],
                        };
                        for e in entries {
                            let a = e.as_array().unwrap_or_else(|| panic!("{k}: {e}"));
                            out.push(RawField {
                                name: name.to_string(),
                                hex: a[0].as_str().unwrap_or_default().to_string(),
                                pos: a[1].as_u64().expect("pos") as usize,
                                len: a[2].as_u64().expect("len") as usize,
                                bitmask: a[3].as_u64().unwrap_or(0),
                            });
                        }
                    }
                    _ => raw_address_fields(val, fields, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| raw_address_fields(x, fields, out)),
        _ => {}
    }
}

/// Every address field's displayed value: `(field, value)`.
fn shown_address_fields(v: &Value, fields: &HashSet<String>, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, val) in m {
                if fields.contains(k.as_str()) {
                    match val {
                        Value::String(s) => out.push((k.clone(), s.clone())),
                        Value::Array(a) => {
                            for s in a {
                                out.push((k.clone(), s.as_str().unwrap_or("?").to_string()));
                            }
                        }
                        other => out.push((k.clone(), other.to_string())),
                    }
                } else {
                    shown_address_fields(val, fields, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| shown_address_fields(x, fields, out)),
        _ => {}
    }
}

fn tshark_json(path: &Path, prefs: &[&str]) -> Vec<Value> {
    let p = path.to_str().unwrap();
    let mut args = vec!["-r", p, "-T", "json", "-x", "--no-duplicate-keys"];
    args.extend_from_slice(prefs);
    let out = tshark(&args);
    let v: Value = serde_json::from_slice(&out).expect("tshark JSON");
    match v {
        Value::Array(a) => a,
        other => panic!("tshark JSON is not an array: {:.200}", other.to_string()),
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).expect("hex")).collect()
}

/// Reassembly off, so every field's position is in its own frame.
const PER_FRAME: [&str; 8] = [
    "-o",
    "ip.defragment:FALSE",
    "-o",
    "ipv6.defragment:FALSE",
    "-o",
    "sctp.reassembly:FALSE",
    "-o",
    "tcp.desegment_tcp_streams:FALSE",
];

/// Rewrite every address tshark decodes in `file` (Ethernet frames `packets`).
fn rewrite_addresses(file: &Path, packets: &[Packet], map: &mut AddrMap) -> Vec<Packet> {
    let fields = address_fields();
    let decoded = tshark_json(file, &PER_FRAME);
    assert_eq!(decoded.len(), packets.len(), "tshark frame count");
    let mut out = Vec::with_capacity(packets.len());
    for (i, (pkt, d)) in packets.iter().zip(&decoded).enumerate() {
        let mut found = Vec::new();
        raw_address_fields(&d["_source"]["layers"], fields, &mut found);
        let old = &pkt.data;
        let mut new = old.clone();
        for f in found {
            let bytes = unhex(&f.hex);
            let here = old.get(f.pos..f.pos + f.len);
            assert!(
                f.bitmask == 0 && bytes.len() == f.len && here == Some(&bytes[..]),
                "frame {}: {} = {} is not at byte {} of the frame; cannot rewrite it",
                i + 1,
                f.name,
                f.hex,
                f.pos
            );
            let addr = match f.len {
                4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&bytes[..]).unwrap())),
                16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&bytes[..]).unwrap())),
                _ if bytes.iter().all(|b| *b == 0) => continue,
                n => panic!("frame {}: {} is {n} bytes long, not an address to map", i + 1, f.name),
            };
            let new_bytes = match map.get(addr) {
                IpAddr::V4(a) => a.octets().to_vec(),
                IpAddr::V6(a) => a.octets().to_vec(),
            };
            new[f.pos..f.pos + f.len].copy_from_slice(&new_bytes);
        }
        fix_checksums(old, &mut new);
        out.push(Packet { data: new, ..pkt.clone() });
    }
    out
}

/// Fields of `file` tshark decodes (with its default reassembly) whose address is outside the
/// test ranges, as "frame N: field = value".
fn addresses_outside_test_ranges(file: &Path) -> Vec<String> {
    let fields = address_fields();
    let mut bad = Vec::new();
    for (i, d) in tshark_json(file, &[]).iter().enumerate() {
        let mut shown = Vec::new();
        shown_address_fields(&d["_source"]["layers"], fields, &mut shown);
        for (name, value) in shown {
            if !value.parse::<IpAddr>().is_ok_and(in_test_range) {
                bad.push(format!("frame {}: {name} = {value}", i + 1));
            }
        }
    }
    bad
}

/// Per frame: the status tshark gives the IPv4, UDP, TCP and SCTP checksums (good, bad,
/// unverified).
fn checksum_statuses(file: &Path) -> Vec<String> {
    let out = tshark(&[
        "-r",
        file.to_str().unwrap(),
        "-o",
        "ip.defragment:FALSE",
        "-o",
        "ip.check_checksum:TRUE",
        "-o",
        "udp.check_checksum:TRUE",
        "-o",
        "tcp.check_checksum:TRUE",
        "-o",
        "sctp.checksum:crc-32c",
        "-T",
        "fields",
        "-e",
        "ip.checksum.status",
        "-e",
        "udp.checksum.status",
        "-e",
        "tcp.checksum.status",
        "-e",
        "sctp.checksum.status",
    ]);
    String::from_utf8_lossy(&out).lines().map(str::to_string).collect()
}

// ---------------------------------------------------------------------------------------------
// Checksums of rewritten frames
// ---------------------------------------------------------------------------------------------

/// One's complement sum of 16-bit big-endian words, folded.
fn ones_sum(parts: &[&[u8]]) -> u16 {
    let mut s: u32 = 0;
    for p in parts {
        let mut c = p.chunks_exact(2);
        for w in &mut c {
            s += u16::from_be_bytes([w[0], w[1]]) as u32;
        }
        if let [b] = c.remainder() {
            s += (*b as u32) << 8;
        }
        while s >> 16 != 0 {
            s = (s & 0xffff) + (s >> 16);
        }
    }
    s as u16
}

fn ones_add(a: u16, b: u16) -> u16 {
    let s = a as u32 + b as u32;
    ((s & 0xffff) + (s >> 16)) as u16
}

/// Update the Internet checksum at `field` whose data is `old[start..end]` (now
/// `new[start..end]`) plus an optional pseudo-header (old and new), RFC 1624 eqn. 3:
/// HC' = ~(~HC + ~m + m'). Returns false if `field` is not inside the frame.
fn update_checksum(
    old: &[u8],
    new: &mut [u8],
    start: usize,
    end: usize,
    field: usize,
    pseudo: (&[u8], &[u8]),
    udp: bool,
) {
    if field + 2 > end || end > new.len() || start > field {
        return;
    }
    let hc = u16::from_be_bytes([new[field], new[field + 1]]);
    if udp && hc == 0 {
        return; // IPv4 UDP without a checksum
    }
    let zeroed = |b: &[u8]| {
        let mut v = b[start..end].to_vec();
        v[field - start] = 0;
        v[field - start + 1] = 0;
        v
    };
    let m_old = ones_sum(&[&zeroed(old), pseudo.0]);
    let m_new = ones_sum(&[&zeroed(new), pseudo.1]);
    if m_old == m_new {
        return;
    }
    let mut hc2 = !ones_add(ones_add(!hc, !m_old), m_new);
    if udp && hc2 == 0 {
        hc2 = 0xffff;
    }
    new[field..field + 2].copy_from_slice(&hc2.to_be_bytes());
}

fn fix_checksums(old: &[u8], new: &mut [u8]) {
    if old == new || new.len() < 14 {
        return;
    }
    let mut et = u16::from_be_bytes([new[12], new[13]]);
    let mut off = 14;
    for _ in 0..2 {
        if (et == 0x8100 || et == 0x88a8) && new.len() >= off + 4 {
            et = u16::from_be_bytes([new[off + 2], new[off + 3]]);
            off += 4;
        }
    }
    if et == 0x0800 || et == 0x86dd {
        let limit = new.len();
        fix_ip(old, new, off, limit);
    }
}

/// Fix the checksums of the IP packet at `off` (inner ones first, then those covering them).
fn fix_ip(old: &[u8], new: &mut [u8], off: usize, limit: usize) {
    let Some(&v) = new.get(off) else { return };
    match v >> 4 {
        4 if off + 20 <= limit => {
            let ihl = (new[off] & 0x0f) as usize * 4;
            let total = u16::from_be_bytes([new[off + 2], new[off + 3]]) as usize;
            let end = (off + total).min(limit);
            let frag = u16::from_be_bytes([new[off + 6], new[off + 7]]);
            let pseudo_old = old[off + 12..off + 20].to_vec();
            let pseudo_new = new[off + 12..off + 20].to_vec();
            if frag & 0x1fff == 0 && off + ihl <= end {
                let whole = frag & 0x2000 == 0 && off + total <= limit;
                fix_l4(old, new, new[off + 9], off + ihl, end, (&pseudo_old, &pseudo_new), whole);
            }
            if off + ihl <= limit {
                update_checksum(old, new, off, off + ihl, off + 10, (&[], &[]), false);
            }
        }
        6 if off + 40 <= limit => {
            let plen = u16::from_be_bytes([new[off + 4], new[off + 5]]) as usize;
            let end = (off + 40 + plen).min(limit);
            let pseudo_old = old[off + 8..off + 40].to_vec();
            let pseudo_new = new[off + 8..off + 40].to_vec();
            let mut nh = new[off + 6];
            let mut cur = off + 40;
            let mut whole = off + 40 + plen <= limit;
            for _ in 0..6 {
                match nh {
                    0 | 43 | 60 if cur + 2 <= end => {
                        nh = new[cur];
                        cur += (new[cur + 1] as usize + 1) * 8;
                    }
                    44 if cur + 8 <= end => {
                        let f = u16::from_be_bytes([new[cur + 2], new[cur + 3]]);
                        if f & 0xfff8 != 0 {
                            return;
                        }
                        whole &= f & 1 == 0;
                        nh = new[cur];
                        cur += 8;
                    }
                    _ => break,
                }
            }
            if cur <= end {
                fix_l4(old, new, nh, cur, end, (&pseudo_old, &pseudo_new), whole);
            }
        }
        _ => {}
    }
}

/// Offset of the inner IP packet of a GTP-U G-PDU starting at `gtp`, if there is one.
fn gtpu_inner(b: &[u8], gtp: usize, end: usize) -> Option<usize> {
    if gtp + 8 > end || b[gtp] >> 5 != 1 || b[gtp] & 0x10 == 0 || b[gtp + 1] != 255 {
        return None;
    }
    let mut h = 8;
    if b[gtp] & 0x07 != 0 {
        h = 12;
        if b[gtp] & 0x04 != 0 {
            let mut next = *b.get(gtp + 11)?;
            while next != 0 {
                let len = *b.get(gtp + h)? as usize * 4;
                if len == 0 {
                    return None;
                }
                next = *b.get(gtp + h + len - 1)?;
                h += len;
            }
        }
    }
    let inner = gtp + h;
    (inner < end && matches!(b[inner] >> 4, 4 | 6)).then_some(inner)
}

fn fix_l4(old: &[u8], new: &mut [u8], proto: u8, l4: usize, end: usize, pseudo: (&[u8], &[u8]), whole: bool) {
    match proto {
        17 if l4 + 8 <= end => {
            let sport = u16::from_be_bytes([new[l4], new[l4 + 1]]);
            let dport = u16::from_be_bytes([new[l4 + 2], new[l4 + 3]]);
            if (sport == 2152 || dport == 2152)
                && let Some(inner) = gtpu_inner(new, l4 + 8, end)
            {
                fix_ip(old, new, inner, end);
            }
            update_checksum(old, new, l4, end, l4 + 6, pseudo, true);
        }
        6 => update_checksum(old, new, l4, end, l4 + 16, pseudo, false),
        1 => update_checksum(old, new, l4, end, l4 + 2, (&[], &[]), false),
        58 => update_checksum(old, new, l4, end, l4 + 2, pseudo, false),
        132 if whole && l4 + 12 <= end && old[l4..end] != new[l4..end] => {
            let crc = |b: &[u8]| {
                let mut v = b[l4..end].to_vec();
                v[8..12].fill(0);
                crc32c(&v).to_le_bytes()
            };
            if crc(old) == old[l4 + 8..l4 + 12] {
                let c = crc(new);
                new[l4 + 8..l4 + 12].copy_from_slice(&c);
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// The oracle: sigwall's classification rules applied to tshark's per-frame fields
// ---------------------------------------------------------------------------------------------

const ORACLE_FIELDS: [&str; 28] = [
    "frame.number",
    "frame.len",
    "eth.type",
    "vlan.etype",
    "ip.src",
    "ip.proto",
    "ip.frag_offset",
    "ipv6.src",
    "ipv6.nxt",
    "ipv6.hopopts.nxt",
    "ipv6.routing.nxt",
    "ipv6.dstopts.nxt",
    "ipv6.fraghdr.nxt",
    "ipv6.fraghdr.offset",
    "sctp.srcport",
    "sctp.dstport",
    "sctp.chunk_type",
    "sctp.data_payload_proto_id",
    "udp.srcport",
    "udp.dstport",
    "tcp.srcport",
    "tcp.dstport",
    "ip.dst",
    "ip.id",
    "ip.flags.mf",
    "ipv6.dst",
    "ipv6.fraghdr.ident",
    "ipv6.fraghdr.more",
];

/// What tshark says about one frame, reduced to what sigwall decides on.
#[derive(Clone, Debug)]
struct Expected {
    number: usize,
    /// Outer source address (None for non-IP frames).
    src: Option<IpAddr>,
    class: Class,
    over_sctp: bool,
    later_fragment: bool,
    /// The class cannot be established (sigwall's `unclassifiable`).
    unclassifiable: bool,
    /// Offset 0 with more fragments.
    first_fragment: bool,
    /// (source, destination, protocol, identification) of a fragment, first or later.
    frag_key: Option<String>,
    /// The tshark fields the class came from, for failure messages.
    why: String,
}

fn num(s: &str) -> u64 {
    if let Some(h) = s.strip_prefix("0x") {
        u64::from_str_radix(h, 16).unwrap_or_else(|_| panic!("bad number {s:?}"))
    } else {
        s.parse().unwrap_or_else(|_| panic!("bad number {s:?}"))
    }
}

/// tshark's per-frame fields with IP reassembly off (otherwise a reassembled datagram's
/// transport fields would show in its last fragment), every occurrence, comma-separated: the
/// outer header's value is the first one (GTP-U frames also show their inner packet's fields).
fn oracle(file: &Path) -> Vec<Expected> {
    let mut args: Vec<&str> = vec![
        "-r",
        file.to_str().unwrap(),
        "-o",
        "ip.defragment:FALSE",
        "-o",
        "ipv6.defragment:FALSE",
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "aggregator=,",
        "-E",
        "occurrence=a",
    ];
    for f in ORACLE_FIELDS {
        args.extend(["-e", f]);
    }
    let out = tshark(&args);
    String::from_utf8_lossy(&out)
        .lines()
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), ORACLE_FIELDS.len(), "tshark line {line:?}");
            let f: HashMap<&str, Vec<&str>> = ORACLE_FIELDS
                .iter()
                .zip(&cols)
                .map(|(k, v)| (*k, v.split(',').filter(|s| !s.is_empty()).collect()))
                .collect();
            classify(&f, line)
        })
        .collect()
}

fn classify(f: &HashMap<&str, Vec<&str>>, line: &str) -> Expected {
    let first = |k: &str| f[k].first().copied();
    let number = num(first("frame.number").expect("frame.number")) as usize;
    let mut e = Expected {
        number,
        src: None,
        class: Class::NonSignaling,
        over_sctp: false,
        later_fragment: false,
        unclassifiable: false,
        first_fragment: false,
        frag_key: None,
        why: ORACLE_FIELDS
            .iter()
            .zip(line.split('\t'))
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" "),
    };
    // Ethernet, then at most two VLAN tags.
    let Some(mut et) = first("eth.type").map(num) else {
        return e;
    };
    let mut tags = f["vlan.etype"].iter();
    for _ in 0..2 {
        if et == 0x8100 || et == 0x88a8 {
            match tags.next() {
                Some(t) => et = num(t),
                None => return e,
            }
        }
    }
    let unclassifiable = |mut e: Expected| {
        e.class = Class::Unclassified;
        e.unclassifiable = true;
        e
    };
    // More tags than sigwall follows, MPLS, PPPoE session: unclassifiable, source not read.
    if matches!(et, 0x8100 | 0x88a8 | 0x9100 | 0x8847 | 0x8848 | 0x8864) {
        return unclassifiable(e);
    }
    let proto = match et {
        0x0800 => {
            e.src = first("ip.src").map(|s| s.parse().expect("ip.src"));
            let proto = num(first("ip.proto").expect("ip.proto"));
            let offset = first("ip.frag_offset").map(num).unwrap_or(0);
            let more = first("ip.flags.mf").is_some_and(|v| v == "1" || v == "True");
            if offset != 0 {
                e.later_fragment = true;
            }
            e.first_fragment = offset == 0 && more;
            if offset != 0 || more {
                e.frag_key = Some(format!(
                    "{} {} {proto} {}",
                    first("ip.src").unwrap_or(""),
                    first("ip.dst").unwrap_or(""),
                    first("ip.id").map(num).unwrap_or(0)
                ));
            }
            proto
        }
        0x86dd => {
            e.src = first("ipv6.src").map(|s| s.parse().expect("ipv6.src"));
            let mut nh = num(first("ipv6.nxt").expect("ipv6.nxt"));
            let mut lists: HashMap<u64, std::slice::Iter<&str>> = [
                (0, f["ipv6.hopopts.nxt"].iter()),
                (43, f["ipv6.routing.nxt"].iter()),
                (60, f["ipv6.dstopts.nxt"].iter()),
                (44, f["ipv6.fraghdr.nxt"].iter()),
            ]
            .into_iter()
            .collect();
            let mut offsets = f["ipv6.fraghdr.offset"].iter();
            let mut n = 0;
            while let Some(it) = lists.get_mut(&nh) {
                if n == 6 {
                    // sigwall follows six extension headers; a seventh is unclassifiable.
                    return unclassifiable(e);
                }
                let fragment_header = nh == 44;
                if fragment_header && offsets.next().map(|s| num(s)).unwrap_or(0) != 0 {
                    e.later_fragment = true;
                }
                nh = num(it.next().expect("extension header next header"));
                if fragment_header {
                    let more = first("ipv6.fraghdr.more").is_some_and(|v| v == "1" || v == "True");
                    e.first_fragment = !e.later_fragment && more;
                    e.frag_key = Some(format!(
                        "{} {} {nh} {}",
                        first("ipv6.src").unwrap_or(""),
                        first("ipv6.dst").unwrap_or(""),
                        first("ipv6.fraghdr.ident").map(num).unwrap_or(0)
                    ));
                }
                n += 1;
            }
            nh
        }
        _ => return e,
    };
    if e.later_fragment {
        e.class = Class::Unclassified;
        return e;
    }
    let ports = |p: &str| {
        let s = first(&format!("{p}.srcport")).unwrap_or_else(|| panic!("frame {number}: tshark shows no {p} ports"));
        let d = first(&format!("{p}.dstport")).unwrap();
        (num(s), num(d))
    };
    e.class = match proto {
        132 => {
            e.over_sctp = true;
            let (s, d) = ports("sctp");
            // The first DATA chunk among the first eight; PPIDs are listed for DATA chunks only,
            // so the first PPID is the first DATA chunk's.
            let types = &f["sctp.chunk_type"];
            assert!(
                !types.iter().any(|t| num(t) == 64),
                "frame {number}: I-DATA chunks are not modelled by this oracle"
            );
            let has_data = types.iter().take(8).any(|t| num(t) == 0);
            let ppid = if has_data {
                Some(num(first("sctp.data_payload_proto_id")
                    .unwrap_or_else(|| panic!("frame {number}: DATA chunk without a PPID in tshark"))))
            } else {
                None
            };
            // The destination port; the source port only towards an ephemeral port.
            let port = if d == 3868 || d == 2905 || d < EPHEMERAL_MIN { d } else { s };
            match ppid {
                Some(2..=5) => Class::Sigtran,
                Some(46 | 47) => Class::Diameter,
                Some(p) if p != 0 => Class::Sctp,
                _ if port == 3868 => Class::Diameter,
                _ if port == 2905 => Class::Sigtran,
                _ => Class::Sctp,
            }
        }
        17 => {
            let (s, d) = ports("udp");
            match (s, d) {
                (_, 2123) => Class::GtpC,
                (_, 2152) => Class::GtpU,
                (2123, d) if d >= EPHEMERAL_MIN => Class::GtpC,
                (2152, d) if d >= EPHEMERAL_MIN => Class::GtpU,
                (2123 | 2152, _) => return unclassifiable(e),
                _ => Class::NonSignaling,
            }
        }
        6 => {
            let (s, d) = ports("tcp");
            match (s, d) {
                (_, 3868) => Class::Diameter,
                (3868, d) if d >= EPHEMERAL_MIN => Class::Diameter,
                (3868, _) => return unclassifiable(e),
                _ => Class::NonSignaling,
            }
        }
        // Provably not signaling: ICMP, IGMP, ICMPv6, no next header, OSPF, PIM, VRRP.
        1 | 2 | 58 | 59 | 89 | 103 | 112 => Class::NonSignaling,
        _ => return unclassifiable(e),
    };
    e
}

/// sigwall's lowest ephemeral port: a signaling source port classifies only towards one.
const EPHEMERAL_MIN: u64 = 32768;

// ---------------------------------------------------------------------------------------------
// Policy derived from the capture, and its verdicts
// ---------------------------------------------------------------------------------------------

fn allow_name(c: Class) -> &'static str {
    match c {
        Class::Sigtran => "sigtran",
        Class::Diameter => "diameter",
        Class::GtpC => "gtp-c",
        Class::GtpU => "gtp-u",
        Class::Sctp => "sctp",
        other => panic!("{other:?} cannot be allowed"),
    }
}

struct PolicyPeer {
    name: String,
    addr: IpAddr,
    allow: Vec<&'static str>,
}

/// The three busiest signaling sources become peers: the first may send every class it sends,
/// the second only its most frequent one (preferring a named class over the `sctp` wildcard, so
/// its other classes are refused), the third only a class it never sends. Every other source is
/// unknown.
fn derive_policy(frames: &[Expected]) -> Vec<PolicyPeer> {
    let mut by_src: BTreeMap<IpAddr, BTreeMap<u32, u64>> = BTreeMap::new();
    for f in frames {
        if let Some(src) = f.src
            && !matches!(f.class, Class::NonSignaling | Class::Unclassified)
        {
            *by_src.entry(src).or_default().entry(f.class as u32).or_default() += 1;
        }
    }
    let mut ranked: Vec<(IpAddr, BTreeMap<u32, u64>)> = by_src.into_iter().collect();
    ranked.sort_by_key(|(a, c)| (std::cmp::Reverse(c.values().sum::<u64>()), *a));
    assert!(
        ranked.len() >= 4,
        "the capture has {} signaling sources; the policy needs at least four (three peers and \
         an unknown one)",
        ranked.len()
    );
    let class_of = |k: u32| Class::ALL[k as usize];
    let mut peers = Vec::new();
    let (a, ca) = &ranked[0];
    peers.push(PolicyPeer {
        name: "busiest".into(),
        addr: *a,
        allow: ca.keys().map(|k| allow_name(class_of(*k))).collect(),
    });
    let (b, cb) = &ranked[1];
    let main = cb
        .iter()
        .filter(|(k, _)| cb.len() == 1 || class_of(**k) != Class::Sctp)
        .max_by_key(|(k, n)| (**n, std::cmp::Reverse(**k)))
        .map(|(k, _)| class_of(*k))
        .unwrap();
    peers.push(PolicyPeer { name: "second".into(), addr: *b, allow: vec![allow_name(main)] });
    let (c, cc) = &ranked[2];
    let other = [Class::GtpU, Class::GtpC, Class::Diameter, Class::Sigtran]
        .into_iter()
        .find(|k| !cc.contains_key(&(*k as u32)))
        .expect("third source sends every named class");
    peers.push(PolicyPeer { name: "third".into(), addr: *c, allow: vec![allow_name(other)] });
    peers
}

fn policy_text(peers: &[PolicyPeer]) -> String {
    // Deep inspection off: this test checks the XDP first pass against tshark's classification,
    // and the SS7 capture contains Category 1 operations whose flows inspection would block
    // (tests/inspect.rs and the unit tests in src/inspect/ cover that).
    let mut t = String::from(
        "[defaults]\nmode = \"enforce\"\nunknown_peer = \"drop\"\nnon_signaling = \"pass\"\n\n[inspect]\nenabled = false\n",
    );
    for p in peers {
        let plen = if p.addr.is_ipv4() { 32 } else { 128 };
        let allow: Vec<String> = p.allow.iter().map(|a| format!("\"{a}\"")).collect();
        t.push_str(&format!(
            "\n[[peer]]\nname = \"{}\"\nprefixes = [\"{}/{plen}\"]\nallow = [{}]\n",
            p.name,
            p.addr,
            allow.join(", ")
        ));
    }
    t
}

/// The reason sigwall's `decide` gives a well-formed frame under the derived policy (enforce,
/// unknown peers dropped, non-signaling passed), and whether it passes.
fn verdict(f: &Expected, peers: &[PolicyPeer]) -> (Reason, bool) {
    let peer = f.src.and_then(|s| peers.iter().find(|p| p.addr == s));
    if f.later_fragment {
        // `track_fragments` gave tracked later fragments their first fragment's verdict.
        return (Reason::FragmentUntracked, false);
    }
    if f.unclassifiable {
        // Unknown peers are dropped and these peers keep the default `unclassifiable = "drop"`.
        return (Reason::Unclassifiable, false);
    }
    if f.class == Class::NonSignaling {
        return (Reason::NonSignaling, true);
    }
    let Some(p) = peer else {
        return (Reason::NotAllowlisted, false);
    };
    let allowed = p.allow.contains(&allow_name(f.class)) || (f.over_sctp && p.allow.contains(&"sctp"));
    if !allowed {
        return (Reason::ClassNotAllowed, false);
    }
    // Default fragment policy: GTP-U fragments reassembled, the other classes' dropped.
    if f.first_fragment && f.class != Class::GtpU {
        return (Reason::FragmentPolicy, false);
    }
    (Reason::Allowed, true)
}

/// Verdicts of the frames in capture order, with sigwall's fragment tracking: a later fragment
/// takes its first fragment's class and verdict (reason `fragment`); without one it is dropped
/// (`fragment_untracked`, class `unclassified`).
fn track_fragments(expected: &mut [Expected], peers: &[PolicyPeer]) -> Vec<(Reason, bool)> {
    let mut firsts: HashMap<String, (Class, bool)> = HashMap::new();
    expected
        .iter_mut()
        .map(|f| {
            if f.later_fragment {
                if let Some((class, pass)) = f.frag_key.as_ref().and_then(|k| firsts.get(k)) {
                    f.class = *class;
                    return (Reason::Fragment, *pass);
                }
                return verdict(f, peers);
            }
            let v = verdict(f, peers);
            if f.first_fragment
                && let Some(k) = &f.frag_key
            {
                firsts.insert(k.clone(), (f.class, v.1));
            }
            v
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

fn tcpreplay_count(stdout: &str, label: &str) -> u64 {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {label:?} in tcpreplay output:\n{stdout}"))
}

fn replay(capture: &str) {
    let started = Instant::now();
    require_tools();
    let tmp = tempdir(&format!("replay-{}", capture.split(['.', '_']).take(4).collect::<Vec<_>>().join("-")));

    // 1. Ethernet frames, the capture's own addresses.
    let source = captures_dir().join(capture);
    assert!(source.is_file(), "{} is missing", source.display());
    let normalized = tmp.path().join("normalized.pcap");
    run(Command::new("editcap").args(["-F", "pcap"]).arg(&source).arg(&normalized));
    let (linktype, packets) = read_pcap(&normalized);
    let converted = to_ethernet(linktype, packets);
    let converted_path = tmp.path().join("converted.pcap");
    write_pcap(&converted_path, &converted);

    // 2. Addresses into the test ranges.
    let mut map = AddrMap::default();
    let rewritten = rewrite_addresses(&converted_path, &converted, &mut map);
    let replay_path = tmp.path().join("rewritten.pcap");
    write_pcap(&replay_path, &rewritten);
    eprintln!("{capture}: {} frames, addresses mapped:", rewritten.len());
    for (old, new) in &map.order {
        eprintln!("  {old} -> {new}");
    }

    // 3. Nothing outside the test ranges, checksums as good (or bad) as before, frames fit.
    let outside = addresses_outside_test_ranges(&replay_path);
    assert!(
        outside.is_empty(),
        "{capture}: after rewriting, tshark still decodes addresses outside 198.18.0.0/15 and \
         2001:db8::/32; not replaying it:\n{}",
        outside.join("\n")
    );
    let before = checksum_statuses(&converted_path);
    let after = checksum_statuses(&replay_path);
    assert_eq!(before.len(), after.len(), "{capture}: tshark frame count changed by the rewrite");
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert_eq!(b, a, "{capture} frame {}: checksum status changed by the rewrite (ip, udp, tcp, sctp)", i + 1);
    }
    for (i, p) in rewritten.iter().enumerate() {
        assert!(
            p.data.len() <= VETH_MTU + 14,
            "{capture} frame {} is {} bytes, more than the veth MTU allows; raise the MTU or \
             exclude it from both the oracle and the replay",
            i + 1,
            p.data.len()
        );
    }

    // 4. The oracle and the policy.
    let mut expected = oracle(&replay_path);
    assert_eq!(expected.len(), rewritten.len(), "tshark frame count");
    let peers = derive_policy(&expected);
    let policy = policy_text(&peers);
    eprintln!("{capture}: policy\n{policy}");
    let mut want = [[0u64; Class::ALL.len()]; Reason::ALL.len()];
    let mut want_class = [0u64; Class::ALL.len()];
    let mut pass_count: HashMap<&[u8], (u64, u64)> = HashMap::new();
    let verdicts = track_fragments(&mut expected, &peers);
    for ((f, p), &(r, pass)) in expected.iter().zip(&rewritten).zip(&verdicts) {
        want[r as usize][f.class as usize] += 1;
        want_class[f.class as usize] += 1;
        let e = pass_count.entry(&p.data[..]).or_default();
        e.0 += 1;
        if pass {
            e.1 += 1;
        }
    }
    for r in [Reason::Allowed, Reason::ClassNotAllowed, Reason::NotAllowlisted] {
        assert!(want[r as usize].iter().sum::<u64>() > 0, "{capture}: the derived policy gives no {} frame", r.name());
    }

    // 5. Replay through the lab.
    let lab = Lab::new();
    let policy_path = tmp.path().join("policy.toml");
    std::fs::write(&policy_path, &policy).unwrap();
    let daemon = Daemon::start(&lab, &sigwall_bin(), &policy_path, &[]);
    let edge = lab.capture();
    let out = run_bounded(
        lab.ipx_command("tcpreplay").args(["-i", &lab.ipx_if, "--pps", REPLAY_PPS]).arg(&replay_path),
        Duration::from_secs(20),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        tcpreplay_count(&stdout, "Successful packets:"),
        rewritten.len() as u64,
        "tcpreplay did not send every frame:\n{stdout}"
    );
    assert_eq!(tcpreplay_count(&stdout, "Failed packets:"), 0, "{stdout}");

    // Wait (bounded) until every signaling frame is counted, then a little longer for strays.
    let want_signaling: u64 = SIGNALING.iter().map(|c| want_class[*c as usize]).sum();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let s = daemon.stats();
        if SIGNALING.iter().map(|c| s.class(*c)).sum::<u64>() >= want_signaling {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let s = daemon.stats();
    let arrived = edge.finish(Duration::from_millis(300), Duration::from_secs(5));

    // 6. Compare.
    eprintln!("{capture}: {:<14} {:>7} {:>8}   per reason (tshark+policy / sigwall)", "class", "tshark", "sigwall");
    for c in Class::ALL {
        let reasons: Vec<String> = Reason::ALL
            .iter()
            .filter(|r| want[**r as usize][c as usize] + s.cell(**r, c) > 0)
            .map(|r| format!("{} {}/{}", r.name(), want[*r as usize][c as usize], s.cell(*r, c)))
            .collect();
        eprintln!(
            "{capture}: {:<14} {:>7} {:>8}   {}",
            c.name(),
            want_class[c as usize],
            s.class(c),
            reasons.join(", ")
        );
    }
    let mut problems = Vec::new();
    for c in SIGNALING {
        if s.class(c) != want_class[c as usize] {
            let frames: Vec<String> = expected
                .iter()
                .filter(|f| f.class == c)
                .take(5)
                .map(|f| format!("    frame {}: {}", f.number, f.why))
                .collect();
            problems.push(format!(
                "class {}: tshark {} vs sigwall {} (first tshark frames of the class:\n{})",
                c.name(),
                want_class[c as usize],
                s.class(c),
                frames.join("\n")
            ));
        }
        for r in Reason::ALL {
            if s.cell(r, c) != want[r as usize][c as usize] {
                problems.push(format!(
                    "({}, {}): expected {} from tshark's frames and the policy, sigwall {}",
                    r.name(),
                    c.name(),
                    want[r as usize][c as usize],
                    s.cell(r, c)
                ));
            }
        }
    }
    let non_sig = Class::NonSignaling as usize;
    if s.class(Class::NonSignaling) < want_class[non_sig] {
        problems.push(format!(
            "non-signaling: tshark {} > sigwall {}",
            want_class[non_sig],
            s.class(Class::NonSignaling)
        ));
    }
    // What arrived on the edge side, frame by frame (by content, so repeated frames count as many
    // times as they were sent). veth runs GRO when XDP is attached; it could merge TCP segments,
    // but every Diameter-over-TCP data segment in these captures has PSH set and the rest are
    // pure ACKs, so each frame arrives as it was sent.
    let mut got: HashMap<&[u8], u64> = HashMap::new();
    for f in &arrived {
        *got.entry(&f[..]).or_default() += 1;
    }
    for (i, (f, p)) in expected.iter().zip(&rewritten).enumerate() {
        let (sent, passes) = pass_count[&p.data[..]];
        let seen = got.get(&p.data[..]).copied().unwrap_or(0);
        if seen != passes {
            problems.push(format!(
                "edge capture: frame {} (sent {sent}x, class {}, {}) arrived {seen}x, expected {passes}x",
                i + 1,
                f.class.name(),
                verdict(f, &peers).0.name()
            ));
        }
    }
    assert!(problems.is_empty(), "{capture}: sigwall disagrees with tshark:\n{}", problems.join("\n"));
    eprintln!("{capture}: ok in {:.1} s", started.elapsed().as_secs_f64());
    drop(daemon);
    drop(lab);
}

#[test]
fn replay_gx_gy_combined_03() {
    replay("gx_gy_combined_03_210505_132953-1.pcapng");
}

#[test]
fn replay_gx_gy_combined_05() {
    replay("gx_gy_combined_05_210505_133111-1.pcapng");
}

#[test]
fn replay_inbound_roaming_01() {
    replay("inbound_roaming_01_210505_130828-1.pcapng");
}

#[test]
fn replay_nsa_connection() {
    replay("nsa_connection.pcap");
}

#[test]
fn replay_ss7_map_pcapr() {
    replay("ss7_map_pcapr.pcap");
}
