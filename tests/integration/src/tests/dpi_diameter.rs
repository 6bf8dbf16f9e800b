//! `dpi::diameter` against tshark, field by field, on every Diameter message of the third-party
//! captures in `testdata/captures/`: over SCTP (`gx_gy_combined_03`, `gx_gy_combined_05`,
//! `inbound_roaming_01`) and over TCP (`nsa_connection`, Linux cooked capture).
//!
//! Frames are read with `filter_testkit::pcap::load_ethernet`; Ethernet, IPv4/IPv6, TCP and SCTP are
//! parsed here (SCTP minimally: DATA chunks with B and E set, PPID 46/47 or port 3868). Every
//! SCTP user message and every TCP segment goes through a `StreamReassembler` per direction, so
//! a message is compared in the frame where it is complete, which is where tshark's TCP
//! reassembly shows it too.
//!
//! tshark is the oracle: `tshark -T json -J "frame diameter"`, parsed keeping duplicate keys in
//! order (one frame can hold several messages, a message holds many `diameter.avp` entries).
//! Needs `tshark` (4.0) and `editcap`; the test fails, not skips, when they are missing.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use filter_dpi::diameter::{self, DiameterMessage, DiameterSlice, StreamReassembler};
use filter_testkit::{
    pcap::load_ethernet,
    tshark::{Agreement, Tree},
};

// ---------------------------------------------------------------------------------------------
// tshark's JSON: filter_testkit::tshark::Tree.

fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/captures")
}

/// Per frame number, tshark's `diameter` layers in order.
fn tshark_diameter(capture: &Path) -> BTreeMap<u64, Vec<Tree>> {
    let out = Command::new("tshark")
        .args(["-n", "-T", "json", "-J", "frame diameter", "-Y", "diameter", "-r"])
        .arg(capture)
        .output()
        .unwrap_or_else(|e| panic!("tshark is needed: {e}"));
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    let Tree::List(packets) = serde_json::from_slice::<Tree>(&out.stdout).expect("tshark JSON") else {
        panic!("tshark JSON is not a list")
    };
    let mut by_frame = BTreeMap::new();
    for p in packets {
        let layers = p.get("_source").and_then(|s| s.get("layers")).expect("layers");
        let frame = layers.get("frame").and_then(|f| f.num("frame.number")).expect("frame.number");
        let msgs: Vec<Tree> = match p {
            Tree::Obj(v) => v,
            _ => unreachable!(),
        }
        .into_iter()
        .find(|(k, _)| k == "_source")
        .and_then(|(_, s)| match s {
            Tree::Obj(v) => v.into_iter().find(|(k, _)| k == "layers").map(|(_, l)| l),
            _ => None,
        })
        .map(|l| match l {
            Tree::Obj(v) => v.into_iter().filter(|(k, _)| k == "diameter").map(|(_, t)| t).collect(),
            _ => Vec::new(),
        })
        .unwrap_or_default();
        by_frame.insert(frame, msgs);
    }
    by_frame
}

// ---------------------------------------------------------------------------------------------
// Frames: Ethernet, VLAN, IPv4/IPv6, TCP and SCTP, just enough for these captures.

struct Ip<'a> {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    payload: &'a [u8],
}

fn ip_of(frame: &[u8]) -> Option<Ip<'_>> {
    let mut et = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let mut at = 14;
    while et == 0x8100 || et == 0x88a8 {
        et = u16::from_be_bytes([*frame.get(at + 2)?, *frame.get(at + 3)?]);
        at += 4;
    }
    let p = frame.get(at..)?;
    match et {
        0x0800 => {
            let ihl = usize::from(p.first()? & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([*p.get(2)?, *p.get(3)?]));
            let frag = u16::from_be_bytes([*p.get(6)?, *p.get(7)?]);
            if frag & 0x3fff != 0 {
                return None; // fragments carry no Diameter in these captures
            }
            let src: [u8; 4] = p.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = p.get(16..20)?.try_into().ok()?;
            Some(Ip { src: src.into(), dst: dst.into(), proto: *p.get(9)?, payload: p.get(ihl..total)? })
        }
        0x86dd => {
            let len = usize::from(u16::from_be_bytes([*p.get(4)?, *p.get(5)?]));
            let src: [u8; 16] = p.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = p.get(24..40)?.try_into().ok()?;
            Some(Ip { src: src.into(), dst: dst.into(), proto: *p.get(6)?, payload: p.get(40..40 + len)? })
        }
        _ => None,
    }
}

/// An SCTP DATA chunk: stream id, PPID, flags, user data.
type Chunk<'a> = (u16, u32, u8, &'a [u8]);

/// Source and destination ports, and the DATA chunks.
fn sctp_data(sctp: &[u8]) -> Option<(u16, u16, Vec<Chunk<'_>>)> {
    let sport = u16::from_be_bytes([*sctp.first()?, *sctp.get(1)?]);
    let dport = u16::from_be_bytes([*sctp.get(2)?, *sctp.get(3)?]);
    let mut out = Vec::new();
    let mut at = 12;
    while at + 4 <= sctp.len() {
        let ty = sctp[at];
        let flags = sctp[at + 1];
        let len = usize::from(u16::from_be_bytes([sctp[at + 2], sctp[at + 3]]));
        if len < 4 || at + len > sctp.len() {
            break;
        }
        if ty == 0 && len >= 16 {
            let sid = u16::from_be_bytes([sctp[at + 8], sctp[at + 9]]);
            let ppid = u32::from_be_bytes([sctp[at + 12], sctp[at + 13], sctp[at + 14], sctp[at + 15]]);
            out.push((sid, ppid, flags, &sctp[at + 16..at + len]));
        }
        at += (len + 3) & !3;
    }
    Some((sport, dport, out))
}

// ---------------------------------------------------------------------------------------------
// Comparison.

#[derive(Default)]
struct Tally {
    agree: Agreement,
    messages: usize,
}

impl std::ops::Deref for Tally {
    type Target = Agreement;
    fn deref(&self) -> &Agreement {
        &self.agree
    }
}

impl std::ops::DerefMut for Tally {
    fn deref_mut(&mut self) -> &mut Agreement {
        &mut self.agree
    }
}

fn top_level<'a>(t: &'a Tree, field: &str) -> Option<&'a str> {
    t.all("diameter.avp_tree").find_map(|a| a.str(field))
}

fn compare(ctx: &str, t: &Tree, raw: &[u8], m: &DiameterMessage, tally: &mut Tally) {
    tally.messages += 1;
    tally.field(ctx, "version", t.num("diameter.version"), Some(u64::from(m.version)));
    tally.field(ctx, "length", t.num("diameter.length"), Some(u64::from(m.length)));
    tally.field(ctx, "flags", t.num("diameter.flags"), Some(u64::from(m.flags)));
    tally.field(ctx, "command code", t.num("diameter.cmd.code"), Some(u64::from(m.command_code)));
    tally.field(ctx, "application id", t.num("diameter.applicationId"), Some(u64::from(m.application_id)));
    tally.field(ctx, "hop-by-hop id", t.num("diameter.hopbyhopid"), Some(u64::from(m.hop_by_hop)));
    tally.field(ctx, "end-to-end id", t.num("diameter.endtoendid"), Some(u64::from(m.end_to_end)));
    let s = |o: &Option<String>| o.clone();
    let ts = |f: &str| top_level(t, f).map(str::to_owned);
    tally.field(ctx, "Session-Id", ts("diameter.Session-Id"), s(&m.session_id));
    tally.field(ctx, "Origin-Host", ts("diameter.Origin-Host"), s(&m.origin_host));
    tally.field(ctx, "Origin-Realm", ts("diameter.Origin-Realm"), s(&m.origin_realm));
    tally.field(ctx, "Destination-Host", ts("diameter.Destination-Host"), s(&m.destination_host));
    tally.field(ctx, "Destination-Realm", ts("diameter.Destination-Realm"), s(&m.destination_realm));
    tally.field(ctx, "User-Name", ts("diameter.User-Name"), s(&m.user_name));
    let plmn = t.all("diameter.avp_tree").find(|a| a.get("diameter.Visited-PLMN-Id").is_some());
    tally.field(
        ctx,
        "Visited-PLMN-Id (MCC, MNC)",
        plmn.map(|a| (a.num("e212.mcc"), a.num("e212.mnc"))),
        m.visited_plmn.map(|p| (Some(u64::from(p.mcc)), Some(u64::from(p.mnc)))),
    );
    // Application ids named in AVPs (top level and inside Vendor-Specific-Application-Id).
    let mut t_auth: Vec<u64> = Vec::new();
    let mut t_acct: Vec<u64> = Vec::new();
    for a in t.all("diameter.avp_tree") {
        t_auth.extend(a.num("diameter.Auth-Application-Id"));
        t_acct.extend(a.num("diameter.Acct-Application-Id"));
        // Grouped members sit in `diameter.<AVP name>_tree`.
        let members = a.get("diameter.Vendor-Specific-Application-Id_tree");
        for inner in members.into_iter().flat_map(|g| g.all("diameter.avp_tree")) {
            t_auth.extend(inner.num("diameter.Auth-Application-Id"));
            t_acct.extend(inner.num("diameter.Acct-Application-Id"));
        }
    }
    let mut o_auth: Vec<u64> = m.auth_application_ids.iter().map(|&x| u64::from(x)).collect();
    let mut o_acct: Vec<u64> = m.acct_application_ids.iter().map(|&x| u64::from(x)).collect();
    for v in &m.vendor_specific_application_ids {
        o_auth.extend(v.auth_application_id.map(u64::from));
        o_acct.extend(v.acct_application_id.map(u64::from));
    }
    let nonempty = |v: Vec<u64>| if v.is_empty() { None } else { Some(v) };
    tally.field(ctx, "Auth-Application-Id (all)", nonempty(t_auth), nonempty(o_auth));
    tally.field(ctx, "Acct-Application-Id (all)", nonempty(t_acct), nonempty(o_acct));
    let top = DiameterSlice::from_slice(raw).expect("decoded above").avps().count();
    tally.field(ctx, "top-level AVP count", Some(t.all("diameter.avp").count()), Some(top));
}

/// One direction of a connection: addresses, ports, SCTP stream (`u16::MAX` for TCP).
type Flow = (IpAddr, IpAddr, u16, u16, u16);

/// Decodes every Diameter message of a capture through per-direction reassemblers and compares
/// with tshark frame by frame.
fn check_capture(name: &str, tally: &mut Tally) {
    let capture = captures().join(name);
    let tmp = std::env::temp_dir().join(format!("sigwall-dpi-diameter-{}-{name}.pcap", std::process::id()));
    let frames = load_ethernet(&capture, &tmp);
    let _ = std::fs::remove_file(&tmp);
    let oracle = tshark_diameter(&capture);

    // (src, dst, sport, dport, SCTP stream or u16::MAX for TCP) → reassembler; TCP also tracks
    // the next expected sequence number to drop retransmissions.
    let mut streams: HashMap<Flow, (StreamReassembler, Option<u32>)> = HashMap::new();
    let mut ours: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
    for (i, f) in frames.iter().enumerate() {
        let frame_no = i as u64 + 1;
        let Some(ip) = ip_of(&f.data) else { continue };
        let mut segments: Vec<(Flow, &[u8], Option<u32>)> = Vec::new();
        match ip.proto {
            132 => {
                let Some((sp, dp, chunks)) = sctp_data(ip.payload) else { continue };
                for (sid, ppid, flags, data) in chunks {
                    if ppid == 46 || ppid == 47 || sp == 3868 || dp == 3868 {
                        // B and E set: whole user messages (tshark agrees: no Diameter chunk of
                        // these captures is a fragment), so no SCTP reassembly is needed here.
                        assert_eq!(flags & 0x03, 0x03, "{name} frame {frame_no}: fragmented Diameter user message");
                        segments.push(((ip.src, ip.dst, sp, dp, sid), data, None));
                    }
                }
            }
            6 => {
                let t = ip.payload;
                if t.len() < 20 {
                    continue;
                }
                let sp = u16::from_be_bytes([t[0], t[1]]);
                let dp = u16::from_be_bytes([t[2], t[3]]);
                let seq = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
                let off = usize::from(t[12] >> 4) * 4;
                let data = &t[off.min(t.len())..];
                if (sp == 3868 || dp == 3868) && !data.is_empty() {
                    segments.push(((ip.src, ip.dst, sp, dp, u16::MAX), data, Some(seq)));
                }
            }
            _ => {}
        }
        for (key, data, seq) in segments {
            let (r, next) = streams.entry(key).or_default();
            if let Some(seq) = seq {
                // In order, no retransmissions in these captures; checked rather than assumed.
                if let Some(n) = *next {
                    assert_eq!(seq, n, "{name} frame {frame_no}: TCP segment out of order");
                }
                *next = Some(seq.wrapping_add(data.len() as u32));
            }
            let out = ours.entry(frame_no).or_default();
            r.push(data, |m| out.push(m.to_vec())).unwrap_or_else(|e| panic!("{name} frame {frame_no}: {e}"));
        }
    }
    ours.retain(|_, v| !v.is_empty());

    let frames_t: Vec<u64> = oracle.keys().copied().collect();
    let frames_o: Vec<u64> = ours.keys().copied().collect();
    assert_eq!(frames_t, frames_o, "{name}: frames with Diameter messages differ");
    for (frame_no, tmsgs) in &oracle {
        let omsgs = &ours[frame_no];
        assert_eq!(tmsgs.len(), omsgs.len(), "{name} frame {frame_no}: message count");
        for (k, (t, raw)) in tmsgs.iter().zip(omsgs).enumerate() {
            let ctx = format!("{name} frame {frame_no} message {k}");
            let m = diameter::decode(raw).unwrap_or_else(|e| panic!("{ctx}: {e}"));
            compare(&ctx, t, raw, &m, tally);
        }
    }
}

#[test]
fn diameter_agrees_with_tshark() {
    let mut tally = Tally::default();
    let mut per_capture = Vec::new();
    for name in [
        "gx_gy_combined_03_210505_132953-1.pcapng",
        "gx_gy_combined_05_210505_133111-1.pcapng",
        "inbound_roaming_01_210505_130828-1.pcapng",
        "nsa_connection.pcap",
    ] {
        let before = tally.messages;
        check_capture(name, &mut tally);
        per_capture.push((name, tally.messages - before));
    }
    eprintln!("Diameter messages compared with tshark:");
    for (name, n) in &per_capture {
        eprintln!("  {name}: {n}");
    }
    eprintln!("{:<30} {:>9} {:>13}", "field", "compared", "disagreements");
    for (f, (n, bad)) in &tally.fields {
        eprintln!("{f:<30} {n:>9} {bad:>13}");
    }
    assert!(tally.messages >= 300, "only {} messages compared", tally.messages);
    assert!(tally.problems.is_empty(), "disagreements with tshark:\n{}", tally.problems.join("\n"));
}

/// The TCP stream of `nsa_connection` re-cut into segments of 1, 3, 17, 64 and 1500 bytes gives
/// the same messages as the captured segmentation.
#[test]
fn reassembly_does_not_depend_on_segmentation() {
    let capture = captures().join("nsa_connection.pcap");
    let tmp = std::env::temp_dir().join(format!("sigwall-dpi-diameter-resplit-{}.pcap", std::process::id()));
    let frames = load_ethernet(&capture, &tmp);
    let _ = std::fs::remove_file(&tmp);
    let mut directions: BTreeMap<(u16, u16), Vec<Vec<u8>>> = BTreeMap::new();
    for f in &frames {
        let Some(ip) = ip_of(&f.data) else { continue };
        let t = ip.payload;
        if ip.proto != 6 || t.len() < 20 {
            continue;
        }
        let (sp, dp) = (u16::from_be_bytes([t[0], t[1]]), u16::from_be_bytes([t[2], t[3]]));
        let data = &t[(usize::from(t[12] >> 4) * 4).min(t.len())..];
        if (sp == 3868 || dp == 3868) && !data.is_empty() {
            directions.entry((sp, dp)).or_default().push(data.to_vec());
        }
    }
    assert_eq!(directions.len(), 2);
    for (dir, segments) in &directions {
        let mut r = StreamReassembler::new();
        let mut want = Vec::new();
        for s in segments {
            r.push(s, |m| want.push(m.to_vec())).unwrap();
        }
        assert!(want.len() >= 6, "{dir:?}: {} messages", want.len());
        let stream = segments.concat();
        for step in [1, 3, 17, 64, 1500] {
            let mut r = StreamReassembler::new();
            let mut got = Vec::new();
            for s in stream.chunks(step) {
                r.push(s, |m| got.push(m.to_vec())).unwrap();
            }
            assert_eq!(got, want, "{dir:?} step {step}");
            assert_eq!(r.buffered(), 0);
        }
    }
}
