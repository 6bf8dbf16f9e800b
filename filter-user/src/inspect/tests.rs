//! The inspection engine on real frames (third-party captures) and on crafted ones.

use std::path::PathBuf;

use filter_testkit::{
    packets::{self, Frame as Built, L4},
    pcap::load_ethernet,
};

use super::*;
use crate::policy::{self, Limits};

fn captures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata/captures")
}

fn frames(name: &str) -> Vec<Vec<u8>> {
    // Unique per call: tests reading the same capture run in parallel.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = std::env::temp_dir().join(format!("sigwall-inspect-{}-{n}-{name}.pcap", std::process::id()));
    let pk = load_ethernet(&captures().join(name), &tmp);
    let _ = std::fs::remove_file(&tmp);
    pk.into_iter().map(|p| p.data).collect()
}

fn engine(inspect_toml: &str) -> Engine {
    let pol = policy::parse("t.toml", inspect_toml, &Limits::default()).unwrap();
    Engine::new(RuleSet::new(&pol.inspect))
}

/// For the third-party captures: taken on sending hosts with checksum offload, their TCP, UDP
/// and SCTP checksums are not the ones the wire carried.
fn capture_engine(inspect_toml: &str) -> Engine {
    let mut e = engine(inspect_toml);
    e.verify_checksums = false;
    e
}

fn flagged(data: &[u8], class: Class) -> Flagged<'_> {
    Flagged { ts_ns: 1, peer: "p".into(), peer_id: 1, class, reason: "allowed", dropped: false, data }
}

fn class_of(f: &Frame<'_>) -> Class {
    match (f.proto, f.sport, f.dport) {
        (132, 2905, _) | (132, _, 2905) => Class::Sigtran,
        (132, 3868, _) | (132, _, 3868) => Class::Diameter,
        (132, _, _) => Class::Sctp,
        (17, 2123, _) | (17, _, 2123) => Class::GtpC,
        (17, 2152, _) | (17, _, 2152) => Class::GtpU,
        (6, 3868, _) | (6, _, 3868) => Class::Diameter,
        _ => Class::NonSignaling,
    }
}

/// Every frame of a capture through one engine; the rules that fired, by frame number.
fn run(e: &mut Engine, name: &str, peer: &PeerInspect) -> Vec<(usize, &'static str, Action)> {
    let mut hits = Vec::new();
    for (i, data) in frames(name).iter().enumerate() {
        let Ok(fr) = parse_frame(data) else { continue };
        let class = class_of(&fr);
        for ev in e.inspect(&flagged(data, class), peer, false) {
            hits.push((
                i + 1,
                ev.json["rule"].as_str().map(|s| Box::leak(s.to_string().into_boxed_str()) as &str).unwrap(),
                ev.action,
            ));
        }
    }
    hits
}

#[test]
fn ss7_capture_category1_and_category2() {
    let mut e = capture_engine("[inspect]\nhome_imsi_prefixes = [\"23415\"]\nhome_gt_prefixes = [\"447785000\"]\n");
    let hits = run(&mut e, "ss7_map_pcapr.pcap", &PeerInspect::default());
    let frames_of = |rule: &str| hits.iter().filter(|h| h.1 == rule).map(|h| h.0).collect::<Vec<_>>();
    // anyTimeInterrogation (71) and sendIdentification (55) invokes: frames 102, 136, 329 per
    // tshark (`gsm_old.localValue` with a Begin); the capture's other 71/55 frames are results.
    // Frames 3, 16 and 19 each carry, among several invokes, operation code 19
    // (processUnstructuredSS-Data per tshark) under an Ericsson IN application context; sigwall
    // judges operation codes whatever the context, so they count as Category 1 too.
    assert_eq!(frames_of("ss7-category1"), vec![3, 16, 19, 102, 136, 329], "{hits:?}");
    // insertSubscriberData for IMSI 23415... from calling GT 447785011500 (not home); frame 345
    // is an SCTP retransmission of 344 (same TSN) and is not a second message.
    assert_eq!(frames_of("ss7-category2"), vec![343, 344], "{hits:?}");
    // The stateful rules (inspect::plausibility, alert by default) judge the same capture: see
    // stateful_rules_on_the_ss7_capture.
    assert!(hits.iter().filter(|h| h.1.starts_with("ss7-category")).all(|h| matches!(h.2, Action::BlockFlow { .. })));
    assert!(e.counters.messages > 80, "{:?}", e.counters);
    assert_eq!(e.counters.rule_hits["ss7-category1"], 6);
    // The capture is a trace inside that network, so with its own GTs configured as home, its
    // messages carry home calling GTs (identity-spoofing, as they would from an interconnect);
    // and the strict decoders (branch dpi-decoders) find non-canonical encodings in some of
    // them, which are malformed: undecodable-signaling. Nothing else fires and nothing else is
    // counted.
    let others: std::collections::BTreeSet<&str> = hits.iter().map(|h| h.1).collect();
    let allowed =
        ["ss7-category1", "ss7-category2", "identity-spoofing", "undecodable-signaling", "ss7-location-plausibility"];
    assert!(others.iter().all(|r| allowed.contains(r)), "{others:?}");
    assert!(e.counters.decode_errors.keys().all(|k| k.ends_with(".noncanonical")), "{:?}", e.counters);
}

#[test]
fn legitimate_diameter_and_gtp_captures_raise_nothing() {
    // The Magma captures are a lab EPC talking to its own HSS/PCRF/OCS: with their realms and
    // PLMN as the peer's, no rule fires.
    // One engine per capture: each is its own network (the same addresses and ports carry other
    // associations in the next one).
    let mut messages = 0;
    for cap in [
        "gx_gy_combined_03_210505_132953-1.pcapng",
        "gx_gy_combined_05_210505_133111-1.pcapng",
        "inbound_roaming_01_210505_130828-1.pcapng",
        "nsa_connection.pcap",
    ] {
        let mut e = capture_engine("");
        let hits = run(&mut e, cap, &PeerInspect::default());
        assert!(hits.is_empty(), "{cap}: {hits:?}");
        messages += e.counters.messages;
        // S1AP (PPID 18 on 36412) is other SCTP: counted as not signaling, nothing else.
        e.counters.decode_errors.remove("sctp.not_signaling");
        assert!(e.counters.decode_errors.is_empty(), "{cap}: {:?}", e.counters);
    }
    assert!(messages > 300, "{messages}");
}

#[test]
fn realm_binding_and_app_allowlist_on_real_diameter() {
    let peer =
        PeerInspect { realms: vec!["partner.example".into()], diameter_apps: vec![16777238], ..PeerInspect::default() };
    let mut e = capture_engine("");
    let hits = run(&mut e, "inbound_roaming_01_210505_130828-1.pcapng", &peer);
    assert!(hits.iter().any(|h| h.1 == "diameter-realm-binding"), "{hits:?}");
    assert!(hits.iter().any(|h| h.1 == "diameter-app-not-allowed"), "S6a is not Gx: {hits:?}");
}

fn built(l4: L4) -> Vec<u8> {
    Built::new("198.18.1.7".parse().unwrap(), "198.18.0.2".parse().unwrap(), l4).bytes()
}

#[test]
fn crafted_diameter_gtp_and_monitor_mode() {
    let mut e = engine(
        "[inspect]\nblock_ttl_s = 42\n\n[[inspect.rule]]\nname = \"gtpc-message-not-allowed\"\naction = \"block-peer\"\n",
    );
    let plr = built(L4::Tcp { sport: 40000, dport: 3868, payload: packets::diameter_message(8388620, 16777255) });
    let ev = e.inspect(&flagged(&plr, Class::Diameter), &PeerInspect::default(), false);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].json["rule"], "diameter-command-blocked");
    assert_eq!(ev[0].json["fields"]["command_code"], 8388620);
    assert!(matches!(ev[0].action, Action::BlockFlow { ttl_s: 42, .. }));

    let ctx = built(L4::Udp { sport: 2123, dport: 2123, payload: packets::gtpv2c(130, 0x1234, 7, &[]) });
    let ev = e.inspect(&flagged(&ctx, Class::GtpC), &PeerInspect::default(), false);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert!(matches!(ev[0].action, Action::BlockPeer { peer_id: 1, .. }));
    // Monitor mode: the same finding, only an alert.
    let ev = e.inspect(&flagged(&ctx, Class::GtpC), &PeerInspect::default(), true);
    assert_eq!(ev[0].action, Action::Alert);
    assert_eq!(ev[0].json["configured_action"], "block-peer");

    let inner = Built::new(
        "198.18.200.1".parse().unwrap(),
        "198.18.200.2".parse().unwrap(),
        L4::Udp { sport: 2123, dport: 2123, payload: packets::gtpv2c_echo() },
    )
    .bytes()[14..]
        .to_vec();
    let gig = built(L4::Udp { sport: 2152, dport: 2152, payload: packets::gtpu(9, &inner) });
    let ev = e.inspect(&flagged(&gig, Class::GtpU), &PeerInspect::default(), false);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].json["rule"], "gtpu-gtp-in-gtp");
    let plain = built(L4::Udp { sport: 2152, dport: 2152, payload: packets::gtpu(9, &packets::inner_ipv4_udp()) });
    assert!(e.inspect(&flagged(&plain, Class::GtpU), &PeerInspect::default(), false).is_empty());

    // Garbage is counted by decoder error kind, never a panic, and is an event: what cannot be
    // decoded is not passed as harmless (review H4).
    let bad = built(L4::Udp { sport: 2123, dport: 2123, payload: vec![0x48, 32, 0, 200] });
    let ev = e.inspect(&flagged(&bad, Class::GtpC), &PeerInspect::default(), false);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].json["rule"], "undecodable-signaling");
    assert!(e.counters.decode_errors.keys().any(|k| k.starts_with("gtpv2c.")), "{:?}", e.counters);
    assert!(e.inspect(&flagged(&[1, 2, 3], Class::GtpC), &PeerInspect::default(), false).is_empty());
}

#[test]
fn disabled_rules_stay_quiet() {
    let mut e = engine("[[inspect.rule]]\nname = \"diameter-command-blocked\"\nenabled = false\n");
    let plr = built(L4::Tcp { sport: 40000, dport: 3868, payload: packets::diameter_message(8388620, 16777255) });
    assert!(e.inspect(&flagged(&plr, Class::Diameter), &PeerInspect::default(), false).is_empty());
}

/// A Create Session Request with the piggyback flag, followed by a Context Request (bytes from
/// scapy's GTPv2 layer, found as an evasion by the attack tests): the hidden message is judged.
#[test]
fn piggybacked_gtpv2_message_is_judged() {
    let hex = "5820004400000000000700000100080022080200000000f74c0006001497001032f45300030022f8205200010006570009008700001700c61201244700090008696e7465726e65744882002600000000000780000100080000010100000040f2570009008c00002780c61201245200010006";
    let payload: Vec<u8> = (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect();
    let mut e = engine("");
    let f = built(L4::Udp { sport: 2123, dport: 2123, payload });
    let ev = e.inspect(&flagged(&f, Class::GtpC), &PeerInspect::default(), false);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].json["rule"], "gtpc-message-not-allowed");
    assert_eq!(ev[0].json["fields"]["message_type"], 130);
}

/// SCTP I-DATA is decoded like DATA: an I-DATA chunk whose payload is no SIGTRAN message is an
/// event (review C5), not a silent skip.
#[test]
fn idata_chunks_are_decoded() {
    let mut e = engine("");
    let f = built(L4::Sctp { sport: 2905, dport: 2905, chunks: vec![packets::chunk(64, 0x03, &[0; 20])] });
    let ev = e.inspect(&flagged(&f, Class::Sigtran), &PeerInspect::default(), false);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].json["rule"], "undecodable-signaling");
}

/// Review C6: copies XDP could not make are reported per peer with what XDP did with the
/// packets, and counted for the peer.
#[test]
fn overload_is_reported_per_peer_with_what_xdp_did() {
    let mut e = engine("");
    let ev = e.overload("p", 7, false, false, 1);
    assert_eq!(ev["rule"], "inspection-overload");
    assert_eq!(ev["decision"], "dropped");
    assert_eq!(ev["fields"]["copies_denied"], 7);
    let ev = e.overload("p", 3, true, false, 2);
    assert_eq!((ev["decision"].as_str(), ev["on_overload"].as_str()), (Some("passed uninspected"), Some("fail-open")));
    assert_eq!(e.overload("q", 1, false, true, 3)["decision"], "passed uninspected", "monitor mode passes");
    assert_eq!(e.counters.over_budget["p"], 10);
    assert_eq!(e.counters.rule_hits["inspection-overload"], 3);
}

/// Review H7 and H1 on the engine: a DATA chunk with another verification tag than the
/// association's is judged but only reported (spoofed), and changes nothing; the same TSN with
/// other bytes on the real association is transport-inconsistent.
#[test]
fn forged_and_rewritten_sctp_chunks() {
    let mut e = engine("");
    let data = |vtag: u32, tsn: u32, payload: &[u8]| {
        let mut c = vec![0u8, 3];
        c.extend_from_slice(&((16 + payload.len()) as u16).to_be_bytes());
        c.extend_from_slice(&tsn.to_be_bytes());
        c.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 46]);
        c.extend_from_slice(payload);
        // tsn 0: an INIT instead (initiate tag 9, a_rwnd, streams, initial TSN).
        if tsn == 0 {
            c = vec![1, 0, 0, 20, 0, 0, 0, 9, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1];
        }
        let f = Built::new(
            "198.18.1.7".parse().unwrap(),
            "198.18.0.2".parse().unwrap(),
            L4::Sctp { sport: 3868, dport: 3868, chunks: vec![c] },
        );
        let mut b = f.bytes();
        // Built writes its own tag: set ours and recompute the CRC32c.
        let sctp = 14 + 20;
        b[sctp + 4..sctp + 8].copy_from_slice(&vtag.to_be_bytes());
        b[sctp + 8..sctp + 12].copy_from_slice(&[0; 4]);
        let crc = packets::crc32c(&b[sctp..]);
        b[sctp + 8..sctp + 12].copy_from_slice(&crc.to_le_bytes());
        b
    };
    let plr = packets::diameter_message(8388620, 16777255);
    let ulr = packets::diameter_message(316, 16777251);
    assert!(e.inspect(&flagged(&data(7, 1, &ulr), Class::Diameter), &PeerInspect::default(), false).is_empty());
    let ev = e.inspect(&flagged(&data(8, 2, &plr), Class::Diameter), &PeerInspect::default(), false);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!((ev[0].json["spoofed"].as_bool(), &ev[0].action), (Some(true), &Action::Alert));
    let ev = e.inspect(&flagged(&data(7, 1, &plr), Class::Diameter), &PeerInspect::default(), false);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].json["rule"], "transport-inconsistent");
    assert!(matches!(ev[0].action, Action::BlockFlow { .. }), "{ev:?}");
    // A forged INIT does not make the association forget its tag: forged DATA after it is
    // still spoofed.
    assert!(e.inspect(&flagged(&data(0, 0, &[]), Class::Diameter), &PeerInspect::default(), false).is_empty());
    let ev = e.inspect(&flagged(&data(8, 3, &plr), Class::Diameter), &PeerInspect::default(), false);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].action, Action::Alert);
}

/// The stateful rules on the same capture: its insertSubscriberData for a home IMSI from a
/// foreign GT (frames 343 and 344) is also implausible by location (the subscriber has no
/// foreign registration in the capture), alerted, not blocked (the rule's default mode).
#[test]
fn stateful_rules_on_the_ss7_capture() {
    let mut e = engine("[inspect]\nhome_imsi_prefixes = [\"23415\"]\nhome_gt_prefixes = [\"447785000\"]\n");
    let hits = run(&mut e, "ss7_map_pcapr.pcap", &PeerInspect::default());
    // The stateful rules are those from `ss7-location-plausibility` on (RuleId order).
    let first = RuleId::Ss7LocationPlausibility as usize;
    let stateful: Vec<_> =
        hits.iter().filter(|h| RuleId::from_name(h.1).is_some_and(|r| r as usize >= first)).collect();
    let frames_of = |rule: &str| stateful.iter().filter(|h| h.1 == rule).map(|h| h.0).collect::<Vec<_>>();
    assert_eq!(frames_of("ss7-location-plausibility"), vec![343, 344], "{stateful:?}");
    assert!(stateful.iter().all(|h| h.2 == Action::Alert), "{stateful:?}");
}

/// An SCTP packet from the partner on `sport` → 3868 with verification tag `vtag`, carrying
/// `chunks`, with a valid CRC32c.
fn sctp_packet(sport: u16, vtag: u32, chunks: Vec<Vec<u8>>) -> Vec<u8> {
    let f = Built::new(
        "198.18.1.7".parse().unwrap(),
        "198.18.0.2".parse().unwrap(),
        L4::Sctp { sport, dport: 3868, chunks },
    );
    let mut b = f.bytes();
    let sctp = 14 + 20;
    b[sctp + 4..sctp + 8].copy_from_slice(&vtag.to_be_bytes());
    b[sctp + 8..sctp + 12].copy_from_slice(&[0; 4]);
    let crc = packets::crc32c(&b[sctp..]);
    b[sctp + 8..sctp + 12].copy_from_slice(&crc.to_le_bytes());
    b
}

/// A whole user message in one DATA chunk (PPID 46).
fn data_chunk(tsn: u32, payload: &[u8]) -> Vec<u8> {
    let mut c = vec![0u8, 3];
    c.extend_from_slice(&((16 + payload.len()) as u16).to_be_bytes());
    c.extend_from_slice(&tsn.to_be_bytes());
    c.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 46]);
    c.extend_from_slice(payload);
    c
}

fn at(data: &[u8], ts_ns: u64) -> Flagged<'_> {
    Flagged { ts_ns, ..flagged(data, Class::Diameter) }
}

/// Review gap 2: a forged COOKIE-ECHO (with a PLR bundled) while the association's tag is alive
/// is a candidate, not the association: it and later packets with its tag are reported as
/// spoofed and block nothing, and the real association is still judged and blocked. Once the old
/// tag has gone stale (a real restart), the candidate becomes the association.
#[test]
fn a_forged_cookie_echo_does_not_become_the_association() {
    let mut e = engine("");
    let p = PeerInspect::default();
    let plr = packets::diameter_message(8388620, 16777255);
    let ulr = packets::diameter_message(316, 16777251);
    let cookie = packets::chunk(10, 0, &[0xC0; 32]);
    // The live association (tag 7) is learned from its traffic.
    assert!(e.inspect(&at(&sctp_packet(3868, 7, vec![data_chunk(1, &ulr)]), 1), &p, false).is_empty());
    // The forgery: COOKIE-ECHO with tag 99 and a PLR bundled.
    let ev = e.inspect(&at(&sctp_packet(3868, 99, vec![cookie.clone(), data_chunk(500, &plr)]), 2), &p, false);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!((ev[0].json["spoofed"].as_bool(), &ev[0].action), (Some(true), &Action::Alert), "{ev:?}");
    let ev = e.inspect(&at(&sctp_packet(3868, 99, vec![data_chunk(501, &plr)]), 3), &p, false);
    assert_eq!((ev.len(), &ev[0].action), (1, &Action::Alert), "{ev:?}");
    assert!(ev[0].json["unverified"].as_str().unwrap().contains("new association"), "{ev:?}");
    // The real association keeps its tag and is judged for real.
    let ev = e.inspect(&at(&sctp_packet(3868, 7, vec![data_chunk(2, &plr)]), 4), &p, false);
    assert!(matches!(ev[0].action, Action::BlockFlow { .. }), "{ev:?}");

    // A real restart: the old tag falls silent; past the stale time the new one is the association.
    let later = 4 + SCTP_TAG_STALE_NS + 1;
    let mut e = engine("");
    assert!(e.inspect(&at(&sctp_packet(3868, 7, vec![data_chunk(1, &ulr)]), 1), &p, false).is_empty());
    assert!(e.inspect(&at(&sctp_packet(3868, 42, vec![cookie]), 2), &p, false).is_empty());
    let ev = e.inspect(&at(&sctp_packet(3868, 42, vec![data_chunk(100, &plr)]), later), &p, false);
    assert!(matches!(ev[0].action, Action::BlockFlow { .. }), "{ev:?}");
}

/// Review gap 2: INITs create no state, and a flood of forged single packets on other ports
/// does not push the live association out of the table (a forger could then teach it his own
/// tag on the real ports).
#[test]
fn forged_packets_on_other_ports_do_not_evict_the_live_association() {
    let mut e = engine("");
    let p = PeerInspect::default();
    let plr = packets::diameter_message(8388620, 16777255);
    let ulr = packets::diameter_message(316, 16777251);
    for tsn in 1..=3 {
        assert!(e.inspect(&at(&sctp_packet(3868, 7, vec![data_chunk(tsn, &ulr)]), tsn as u64), &p, false).is_empty());
    }
    let init = packets::chunk(1, 0, &[0, 0, 0, 9, 0, 1, 0, 0, 0, 1, 0, 1, 0, 0, 0, 1]);
    for sport in 0..(MAX_SCTP_ASSOCS_PER_PEER as u16 + 10) {
        e.inspect(&at(&sctp_packet(20000 + sport, 0, vec![init.clone()]), 10), &p, false);
        e.inspect(&at(&sctp_packet(30000 + sport, 5000 + sport as u32, vec![data_chunk(9, &ulr)]), 10), &p, false);
    }
    let ev = e.inspect(&at(&sctp_packet(3868, 666, vec![data_chunk(9, &plr)]), 11), &p, false);
    assert_eq!((ev.len(), &ev[0].action), (1, &Action::Alert), "still spoofed: {ev:?}");
    let ev = e.inspect(&at(&sctp_packet(3868, 7, vec![data_chunk(4, &plr)]), 12), &p, false);
    assert!(matches!(ev[0].action, Action::BlockFlow { .. }), "{ev:?}");
    // The forged entries were what made room, and that is counted.
    assert!(e.counters.state_evicted["sctp_tags"] >= 10, "{:?}", e.counters.state_evicted);
}

fn from(src: &str, l4: L4) -> Vec<u8> {
    Built::new(src.parse().unwrap(), "198.18.0.2".parse().unwrap(), l4).bytes()
}

fn in_path(inspect_toml: &str) -> Engine {
    let mut e = engine(inspect_toml);
    e.identities = Some(std::sync::Arc::default());
    e
}

fn flagged_peer(data: &[u8], class: Class, peer_id: u32) -> Flagged<'_> {
    Flagged { peer_id, ..flagged(data, class) }
}

/// GTPv2 IMSI IE (type 1), BCD with the filler.
fn imsi_ie(imsi: &str) -> Vec<u8> {
    let d: Vec<u8> = imsi.bytes().map(|b| b - b'0').collect();
    let bcd: Vec<u8> = d.chunks(2).map(|p| p[0] | (p.get(1).copied().unwrap_or(0xf) << 4)).collect();
    let mut ie = vec![1];
    ie.extend_from_slice(&(bcd.len() as u16).to_be_bytes());
    ie.push(0);
    ie.extend_from_slice(&bcd);
    ie
}

#[test]
fn in_path_block_stops_the_message_and_blocks_its_origin_host_not_the_flow() {
    let mut e = in_path("");
    let plr = from(
        "198.18.1.7",
        L4::Tcp { sport: 40000, dport: 3868, payload: packets::diameter_message(8388620, 16777255) },
    );
    let ev = e.inspect(&flagged(&plr, Class::Diameter), &PeerInspect::default(), false);
    assert_eq!(ev.len(), 1, "{ev:?}");
    let want = identity::Identity::OriginHost("mme.example.invalid".into());
    assert!(
        matches!(&ev[0].action, Action::BlockMessage { identity: Some(i), ttl_s: 300, rule: RuleId::DiameterCommandBlocked, .. } if *i == want),
        "{:?}",
        ev[0].action
    );
    assert_eq!(
        (&ev[0].json["action"], &ev[0].json["configured_action"], &ev[0].json["blocked_identity"]["kind"]),
        (&json!("block-identity"), &json!("block"), &json!("origin-host"))
    );
    // A harmless request from the same Origin-Host on another connection: stopped, by the
    // identity block, which it does not extend.
    let ulr =
        from("198.18.1.7", L4::Tcp { sport: 40001, dport: 3868, payload: packets::diameter_message(316, 16777251) });
    let ev = e.inspect(&flagged(&ulr, Class::Diameter), &PeerInspect::default(), false);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].json["rule"], "identity-blocked");
    assert_eq!(ev[0].json["fields"]["identity"]["value"], "mme.example.invalid");
    assert_eq!(ev[0].json["fields"]["blocked_by"], "diameter-command-blocked");
    assert!(matches!(ev[0].action, Action::BlockMessage { identity: None, .. }), "{:?}", ev[0].action);
    // The same Origin-Host behind another peer is another identity.
    let ev = e.inspect(&flagged_peer(&ulr, Class::Diameter, 2), &PeerInspect::default(), false);
    assert!(ev.is_empty(), "{ev:?}");
    let c = e.identities.as_ref().unwrap().counts(2);
    assert_eq!((c.active, c.installed, c.stopped), (1, 1, 1));
}

#[test]
fn in_host_mode_block_takes_the_flow_as_before() {
    let mut e = engine("");
    let plr = from(
        "198.18.1.7",
        L4::Tcp { sport: 40000, dport: 3868, payload: packets::diameter_message(8388620, 16777255) },
    );
    let ev = e.inspect(&flagged(&plr, Class::Diameter), &PeerInspect::default(), false);
    assert!(matches!(ev[0].action, Action::BlockFlow { ttl_s: 300, .. }), "{:?}", ev[0].action);
    assert_eq!((&ev[0].json["action"], &ev[0].json["configured_action"]), (&json!("block-flow"), &json!("block")));
    let ulr =
        from("198.18.1.7", L4::Tcp { sport: 40001, dport: 3868, payload: packets::diameter_message(316, 16777251) });
    assert!(e.inspect(&flagged(&ulr, Class::Diameter), &PeerInspect::default(), false).is_empty());
}

#[test]
fn in_path_gtpc_blocks_the_sending_node_and_imsi_rules_block_the_subscriber() {
    let mut e = in_path("");
    let dpcs = from("198.18.1.7", L4::Udp { sport: 2123, dport: 2123, payload: packets::gtpv2c(130, 0x1234, 7, &[]) });
    let ev = e.inspect(&flagged(&dpcs, Class::GtpC), &PeerInspect::default(), false);
    assert_eq!(ev[0].json["blocked_identity"], json!({"kind": "gtpc-node", "value": "198.18.1.7"}), "{ev:?}");
    let echo = |src| from(src, L4::Udp { sport: 2123, dport: 2123, payload: packets::gtpv2c_echo() });
    let ev = e.inspect(&flagged(&echo("198.18.1.7"), Class::GtpC), &PeerInspect::default(), false);
    assert_eq!(ev.iter().map(|e| e.json["rule"].as_str().unwrap()).collect::<Vec<_>>(), ["identity-blocked"]);
    assert!(e.inspect(&flagged(&echo("198.18.1.8"), Class::GtpC), &PeerInspect::default(), false).is_empty());

    // identity = "imsi": the subscriber, whichever node of the peer sends about it.
    let mut e = in_path("[[inspect.rule]]\nname = \"gtpc-message-not-allowed\"\nidentity = \"imsi\"\n");
    let imsi = imsi_ie("001010000000001");
    let dpcs = from("198.18.1.7", L4::Udp { sport: 2123, dport: 2123, payload: packets::gtpv2c(130, 1, 7, &imsi) });
    let ev = e.inspect(&flagged(&dpcs, Class::GtpC), &PeerInspect::default(), false);
    assert_eq!(ev[0].json["blocked_identity"], json!({"kind": "imsi", "value": "001010000000001"}), "{ev:?}");
    // Create Session Request (32) about the same IMSI from another node: stopped.
    let csr = from("198.18.1.9", L4::Udp { sport: 2123, dport: 2123, payload: packets::gtpv2c(32, 0, 8, &imsi) });
    let ev = e.inspect(&flagged(&csr, Class::GtpC), &PeerInspect::default(), false);
    assert!(ev.iter().any(|e| e.json["rule"] == "identity-blocked"), "{ev:?}");
    // The node itself is not blocked.
    assert!(e.inspect(&flagged(&echo("198.18.1.7"), Class::GtpC), &PeerInspect::default(), false).is_empty());
}

#[test]
fn a_forged_message_is_stopped_but_blocks_no_identity() {
    let mut e = in_path("");
    let mut plr = from(
        "198.18.1.7",
        L4::Tcp { sport: 40000, dport: 3868, payload: packets::diameter_message(8388620, 16777255) },
    );
    // Break the TCP checksum (Ethernet 14 + IPv4 20 + offset 16): not the connection's.
    plr[14 + 20 + 16] ^= 0xff;
    let ev = e.inspect(&flagged(&plr, Class::Diameter), &PeerInspect::default(), false);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!((&ev[0].json["spoofed"], &ev[0].action), (&json!(true), &Action::Alert));
    assert_eq!(ev[0].json["configured_action"], "block", "the in-path worker still stops the message");
    assert_eq!(e.identities.as_ref().unwrap().counts(2).installed, 0);
    let ulr =
        from("198.18.1.7", L4::Tcp { sport: 40001, dport: 3868, payload: packets::diameter_message(316, 16777251) });
    assert!(e.inspect(&flagged(&ulr, Class::Diameter), &PeerInspect::default(), false).is_empty());
}

#[test]
fn within_realm_is_the_zone_or_a_name_inside_it_in_any_case() {
    use super::rules::within_realm;
    assert!(within_realm("epc.mnc001.mcc001.3gppnetwork.org", "epc.mnc001.mcc001.3gppnetwork.org"));
    assert!(within_realm("MME1.EPC.mnc001.mcc001.3gppnetwork.org", "epc.mnc001.mcc001.3gppnetwork.org"));
    assert!(within_realm("hss.partner.example", "PARTNER.example"));
    // A suffix that is not a whole label is another zone.
    assert!(!within_realm("evilpartner.example", "partner.example"));
    assert!(!within_realm("partner.example.evil", "partner.example"));
    assert!(!within_realm("example", "partner.example"));
    assert!(!within_realm("", "partner.example"));
    assert!(within_realm("", ""));
}

#[test]
fn hash_name_keeps_the_values_a_running_store_holds() {
    use std::hash::{Hash, Hasher};
    // The formula the store's values were written with before hash_name stopped allocating.
    let before = |s: &str| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        s.to_ascii_lowercase().hash(&mut h);
        h.finish() | 1
    };
    let long = "Mme-Long.".repeat(20);
    for s in ["", "a", "EPC.MNC001.MCC001.3GPPNETWORK.ORG", "partner", &long, "ünïcode.Host"] {
        assert_eq!(plausibility::hash_name(s), before(s), "{s:?}");
    }
}
