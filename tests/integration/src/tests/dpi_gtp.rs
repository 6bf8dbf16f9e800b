//! `dpi::gtp` against tshark, field by field, on every GTP message of the third-party captures
//! in `testdata/captures/`: GTPv2-C in `inbound_roaming_01` and `nsa_connection`, GTP-U in
//! `gx_gy_combined_03`, `gx_gy_combined_05` and `inbound_roaming_01` (the `gx_gy` ones with
//! IP-fragmented G-PDUs, which this test reassembles as tshark does and also decodes laxly from
//! the first fragment alone).
//!
//! tshark is the oracle: `tshark -T json -J "frame ip udp gtp gtpv2"`, parsed keeping duplicate
//! keys in order (a G-PDU has an outer and an inner `ip` layer). Needs `tshark` (4.0) and
//! `editcap`; the test fails, not skips, when they are missing.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use filter_dpi::gtp::{self, GtpcMessage, GtpuMessage};
use filter_testkit::{
    pcap::load_ethernet,
    tshark::{Agreement, Tree},
};

// ---------------------------------------------------------------------------------------------
// tshark's JSON: filter_testkit::tshark::Tree.

fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/captures")
}

/// Per frame number, tshark's layers (name, tree) in order, for frames with GTP.
fn tshark_gtp(capture: &Path) -> BTreeMap<u64, Vec<(String, Tree)>> {
    let out = Command::new("tshark")
        .args(["-n", "-T", "json", "-J", "frame ip udp gtp gtpv2", "-Y", "gtp || gtpv2", "-r"])
        .arg(capture)
        .output()
        .unwrap_or_else(|e| panic!("tshark is needed: {e}"));
    assert!(out.status.success(), "tshark: {}", String::from_utf8_lossy(&out.stderr));
    let Tree::List(packets) = serde_json::from_slice::<Tree>(&out.stdout).expect("tshark JSON") else {
        panic!("tshark JSON is not a list")
    };
    let mut by_frame = BTreeMap::new();
    for p in packets {
        let Tree::Obj(top) = p else { panic!("packet is not an object") };
        let Some((_, Tree::Obj(source))) = top.into_iter().find(|(k, _)| k == "_source") else { panic!("_source") };
        let Some((_, Tree::Obj(layers))) = source.into_iter().find(|(k, _)| k == "layers") else { panic!("layers") };
        let frame = layers.iter().find(|(k, _)| k == "frame").and_then(|(_, f)| f.num("frame.number")).expect("frame");
        by_frame.insert(frame, layers);
    }
    by_frame
}

// ---------------------------------------------------------------------------------------------
// Frames: Ethernet, VLAN, IPv4 (with fragment reassembly) / IPv6, UDP.

struct Datagram {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    payload: Vec<u8>,
    /// A first fragment (more to come): the payload is the start of the datagram only.
    first_fragment: bool,
}

/// (src, dst, IP id, protocol).
type FragKey = (IpAddr, IpAddr, u16, u8);
/// (offset, bytes, more fragments).
type Fragment = (usize, Vec<u8>, bool);

#[derive(Default)]
struct Defrag {
    parts: HashMap<FragKey, Vec<Fragment>>,
}

impl Defrag {
    /// Returns whole datagrams, and first fragments as they come (marked).
    fn frame(&mut self, frame: &[u8]) -> Vec<Datagram> {
        let Some(et) = frame.get(12..14).map(|b| u16::from_be_bytes([b[0], b[1]])) else { return vec![] };
        let mut et = et;
        let mut at = 14;
        while et == 0x8100 || et == 0x88a8 {
            et = u16::from_be_bytes([frame[at + 2], frame[at + 3]]);
            at += 4;
        }
        let p = &frame[at..];
        match et {
            0x0800 => {
                let ihl = usize::from(p[0] & 0x0f) * 4;
                let total = usize::from(u16::from_be_bytes([p[2], p[3]]));
                let id = u16::from_be_bytes([p[4], p[5]]);
                let frag = u16::from_be_bytes([p[6], p[7]]);
                let (mf, off) = (frag & 0x2000 != 0, usize::from(frag & 0x1fff) * 8);
                let src = IpAddr::from(<[u8; 4]>::try_from(&p[12..16]).unwrap());
                let dst = IpAddr::from(<[u8; 4]>::try_from(&p[16..20]).unwrap());
                let proto = p[9];
                let data = p[ihl..total].to_vec();
                if !mf && off == 0 {
                    return vec![Datagram { src, dst, proto, payload: data, first_fragment: false }];
                }
                let mut out = Vec::new();
                if off == 0 {
                    out.push(Datagram { src, dst, proto, payload: data.clone(), first_fragment: true });
                }
                let parts = self.parts.entry((src, dst, id, proto)).or_default();
                parts.push((off, data, mf));
                parts.sort_by_key(|x| x.0);
                let mut whole = Vec::new();
                let mut complete = false;
                for (o, d, more) in parts.iter() {
                    if *o != whole.len() {
                        break;
                    }
                    whole.extend_from_slice(d);
                    if !more {
                        complete = true;
                    }
                }
                if complete {
                    self.parts.remove(&(src, dst, id, proto));
                    out.push(Datagram { src, dst, proto, payload: whole, first_fragment: false });
                }
                out
            }
            0x86dd => {
                let len = usize::from(u16::from_be_bytes([p[4], p[5]]));
                let src = IpAddr::from(<[u8; 16]>::try_from(&p[8..24]).unwrap());
                let dst = IpAddr::from(<[u8; 16]>::try_from(&p[24..40]).unwrap());
                vec![Datagram { src, dst, proto: p[6], payload: p[40..40 + len].to_vec(), first_fragment: false }]
            }
            _ => vec![],
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Comparison.

#[derive(Default)]
struct Tally {
    agree: Agreement,
    gtpv2: usize,
    gtpu: usize,
    first_fragments: usize,
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

/// tshark's IEs depth first: (IE tree, depth). An IE is an object with `gtpv2.ie_type`; grouped
/// members are IE objects inside it.
fn tshark_ies<'a>(t: &'a Tree, depth: usize, out: &mut Vec<(&'a Tree, usize)>) {
    let Tree::Obj(entries) = t else { return };
    for (_, v) in entries {
        if v.get("gtpv2.ie_type").is_some() {
            out.push((v, depth));
            tshark_ies(v, depth + 1, out);
        }
    }
}

fn compare_v2(ctx: &str, t: &Tree, m: &GtpcMessage, tally: &mut Tally) {
    tally.gtpv2 += 1;
    tally.field(ctx, "v2 message type", t.num("gtpv2.message_type"), Some(u64::from(m.message_type)));
    tally.field(ctx, "v2 length", t.num("gtpv2.msg_length"), Some(u64::from(m.length)));
    tally.field(ctx, "v2 TEID", t.num("gtpv2.teid"), m.teid.map(u64::from));
    tally.field(ctx, "v2 sequence", t.num("gtpv2.seq"), m.sequence.map(u64::from));
    let mut ies = Vec::new();
    tshark_ies(t, 0, &mut ies);
    tally.field(ctx, "v2 IE count (all levels)", Some(ies.len()), Some(m.ie_count));
    let top = |ty: u64| ies.iter().find(|(ie, d)| *d == 0 && ie.num("gtpv2.ie_type") == Some(ty)).map(|(ie, _)| *ie);
    tally.field(ctx, "IMSI", top(1).and_then(|ie| ie.str("e212.imsi")).map(str::to_owned), m.imsi.clone());
    tally.field(ctx, "MSISDN", top(76).and_then(|ie| ie.str("e164.msisdn")).map(str::to_owned), m.msisdn.clone());
    tally.field(
        ctx,
        "Serving Network (MCC, MNC)",
        top(83).map(|ie| (ie.num("e212.mcc"), ie.num("e212.mnc"))),
        m.serving_network.map(|p| (Some(u64::from(p.mcc)), Some(u64::from(p.mnc)))),
    );
    tally.field(ctx, "RAT Type", top(82).and_then(|ie| ie.num("gtpv2.rat_type")), m.rat_type.map(u64::from));
    tally.field(ctx, "APN", top(71).and_then(|ie| ie.str("gtpv2.apn")).map(str::to_owned), m.apn.clone());
    let t_fteids: Vec<_> = ies
        .iter()
        .filter(|(ie, _)| ie.num("gtpv2.ie_type") == Some(87))
        .map(|(ie, d)| {
            (
                ie.num("gtpv2.instance"),
                ie.num("gtpv2.f_teid_interface_type"),
                ie.num("gtpv2.f_teid_gre_key"),
                ie.str("gtpv2.f_teid_ipv4").map(str::to_owned),
                ie.str("gtpv2.f_teid_ipv6").map(str::to_owned),
                *d > 0,
            )
        })
        .collect();
    let o_fteids: Vec<_> = m
        .fteids
        .iter()
        .map(|f| {
            (
                Some(u64::from(f.instance)),
                Some(u64::from(f.interface_type)),
                Some(u64::from(f.teid)),
                f.ipv4.map(|a| a.to_string()),
                f.ipv6.map(|a| a.to_string()),
                f.parent.is_some(),
            )
        })
        .collect();
    let nonempty = |v: Vec<_>| if v.is_empty() { None } else { Some(v) };
    tally.field(ctx, "F-TEIDs (instance, type, TEID, v4, v6, nested)", nonempty(t_fteids), nonempty(o_fteids));
}

fn compare_u(ctx: &str, layers: &[(String, Tree)], m: &GtpuMessage, tally: &mut Tally, first_fragment: bool) {
    let gtp_at = layers.iter().position(|(k, _)| k == "gtp").expect("gtp layer");
    let g = &layers[gtp_at].1;
    if !first_fragment {
        tally.gtpu += 1;
        tally.field(ctx, "U message type", g.num("gtp.message"), Some(u64::from(m.message_type)));
        tally.field(ctx, "U length", g.num("gtp.length"), Some(u64::from(m.length)));
    }
    let teid_name = if first_fragment { "U TEID (first fragment, lax)" } else { "U TEID" };
    tally.field(ctx, teid_name, g.num("gtp.teid"), Some(u64::from(m.teid)));
    let after = &layers[gtp_at + 1..];
    let inner_ip = after.iter().find(|(k, _)| k == "ip" || k == "ipv6").map(|(_, t)| t);
    let t_inner = inner_ip.map(|ip| {
        (
            ip.str("ip.src").or(ip.str("ipv6.src")).map(str::to_owned),
            ip.str("ip.dst").or(ip.str("ipv6.dst")).map(str::to_owned),
            ip.num("ip.proto").or(ip.num("ipv6.nxt")),
        )
    });
    let o_inner = m.inner.map(|i| (Some(i.src.to_string()), Some(i.dst.to_string()), Some(u64::from(i.protocol))));
    let inner_name = if first_fragment { "U inner IP (first fragment, lax)" } else { "U inner IP src, dst, proto" };
    tally.field(ctx, inner_name, t_inner, o_inner);
    if !first_fragment {
        let inner_udp =
            after.iter().find(|(k, _)| k == "udp").map(|(_, t)| (t.num("udp.srcport"), t.num("udp.dstport")));
        let o_udp = m.inner.and_then(|i| i.udp_ports).map(|(s, d)| (Some(u64::from(s)), Some(u64::from(d))));
        tally.field(ctx, "U inner UDP ports", inner_udp, o_udp);
        let t_nested = after.iter().any(|(k, _)| k == "gtp" || k == "gtpv2");
        tally.field(ctx, "U GTP-in-GTP", Some(t_nested), Some(m.gtp_in_gtp));
    }
}

fn check_capture(name: &str, tally: &mut Tally) {
    let capture = captures().join(name);
    let tmp = std::env::temp_dir().join(format!("sigwall-dpi-gtp-{}-{name}.pcap", std::process::id()));
    let frames = load_ethernet(&capture, &tmp);
    let _ = std::fs::remove_file(&tmp);
    let oracle = tshark_gtp(&capture);
    let mut defrag = Defrag::default();
    let mut seen = Vec::new();
    // Last frame's layers of the datagram a first fragment belongs to, checked after the loop.
    let mut first_fragments: Vec<(u64, Vec<u8>)> = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        let frame_no = i as u64 + 1;
        for d in defrag.frame(&f.data) {
            if d.proto != 17 || d.payload.len() < 8 {
                continue;
            }
            let _ = (d.src, d.dst);
            let sp = u16::from_be_bytes([d.payload[0], d.payload[1]]);
            let dp = u16::from_be_bytes([d.payload[2], d.payload[3]]);
            let udp_payload = &d.payload[8..];
            let ctx = format!("{name} frame {frame_no}");
            if d.first_fragment {
                if sp == 2152 || dp == 2152 {
                    first_fragments.push((frame_no, udp_payload.to_vec()));
                }
                continue;
            }
            if sp == 2123 || dp == 2123 {
                seen.push(frame_no);
                let layers = oracle.get(&frame_no).unwrap_or_else(|| panic!("{ctx}: tshark has no GTP here"));
                let m = gtp::decode_c(udp_payload).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                if m.version == 2 {
                    let t = layers.iter().find(|(k, _)| k == "gtpv2").map(|(_, t)| t).expect("gtpv2 layer");
                    compare_v2(&ctx, t, &m, tally);
                } else {
                    panic!("{ctx}: GTPv1-C: no such message in these captures; compare it if one appears");
                }
            } else if sp == 2152 || dp == 2152 {
                seen.push(frame_no);
                let layers = oracle.get(&frame_no).unwrap_or_else(|| panic!("{ctx}: tshark has no GTP here"));
                let m = gtp::decode_u(udp_payload).unwrap_or_else(|e| panic!("{ctx}: {e}"));
                compare_u(&ctx, layers, &m, tally, false);
            }
        }
    }
    let tshark_frames: Vec<u64> = oracle.keys().copied().collect();
    assert_eq!(tshark_frames, seen, "{name}: frames with GTP differ");
    // A first fragment decoded alone (lax) gives the TEID and inner addresses tshark shows for the
    // reassembled datagram: the frame after it, in these captures.
    for (frame_no, payload) in first_fragments {
        let ctx = format!("{name} frame {frame_no} (first fragment)");
        let lax = gtp::decode_u_lax(&payload).unwrap_or_else(|e| panic!("{ctx}: {e}"));
        assert!(lax.stop.is_some(), "{ctx}: a first fragment cannot be whole");
        assert!(gtp::decode_u(&payload).is_err());
        let (_, layers) = oracle.range(frame_no + 1..).next().expect("reassembled frame");
        tally.first_fragments += 1;
        compare_u(&ctx, layers, &lax.message, tally, true);
    }
}

#[test]
fn gtp_agrees_with_tshark() {
    let mut tally = Tally::default();
    for name in [
        "gx_gy_combined_03_210505_132953-1.pcapng",
        "gx_gy_combined_05_210505_133111-1.pcapng",
        "inbound_roaming_01_210505_130828-1.pcapng",
        "nsa_connection.pcap",
    ] {
        check_capture(name, &mut tally);
    }
    eprintln!(
        "GTP compared with tshark: {} GTPv2-C messages, {} GTP-U messages, {} first fragments (lax)",
        tally.gtpv2, tally.gtpu, tally.first_fragments
    );
    eprintln!("{:<50} {:>9} {:>13}", "field", "compared", "disagreements");
    for (f, (n, bad)) in &tally.fields {
        eprintln!("{f:<50} {n:>9} {bad:>13}");
    }
    assert!(tally.gtpv2 >= 12 && tally.gtpu >= 60, "too few messages compared");
    assert!(tally.problems.is_empty(), "disagreements with tshark:\n{}", tally.problems.join("\n"));
}
