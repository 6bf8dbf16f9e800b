//! Host tests of the decision function: the same code the XDP program runs.

extern crate std;
use std::vec::Vec;

use super::*;
use crate::rate::{gcra, params};

fn peer(allow: &[Class]) -> PeerPolicy {
    PeerPolicy { allow: allow.iter().fold(0, |a, c| a | c.bit()), present: 1, ..Default::default() }
}

fn sig(class: Class) -> Facts {
    Facts { over_sctp: matches!(class, Class::Sigtran | Class::Sctp), ..Facts::new(class) }
}

fn d(f: &Facts, p: Option<&PeerPolicy>, g: &GlobalPolicy) -> Verdict {
    decide(f, p, g, || true)
}

const fn v(action: Action, reason: Reason) -> Verdict {
    Verdict { action, reason }
}

#[test]
fn allowed_class_from_peer_passes() {
    let g = GlobalPolicy::default();
    for c in [Class::Sigtran, Class::Diameter, Class::GtpC, Class::GtpU] {
        assert_eq!(d(&sig(c), Some(&peer(&[c])), &g), v(Action::Pass, Reason::Allowed), "{c:?}");
    }
}

#[test]
fn other_class_from_peer_is_class_not_allowed() {
    let g = GlobalPolicy::default();
    let p = peer(&[Class::GtpU]);
    for c in [Class::Sigtran, Class::Diameter, Class::GtpC, Class::Sctp] {
        assert_eq!(d(&sig(c), Some(&p), &g), v(Action::Drop, Reason::ClassNotAllowed), "{c:?}");
    }
}

#[test]
fn sctp_wildcard_covers_everything_on_sctp_but_not_tcp_or_udp() {
    let g = GlobalPolicy::default();
    let p = PeerPolicy { allow: ALLOW_SCTP_ANY, present: 1, ..Default::default() };
    for c in [Class::Sigtran, Class::Diameter, Class::Sctp] {
        let f = Facts { over_sctp: true, ..Facts::new(c) };
        assert_eq!(d(&f, Some(&p), &g).reason, Reason::Allowed, "{c:?}");
    }
    let diameter_tcp = Facts::new(Class::Diameter);
    assert_eq!(d(&diameter_tcp, Some(&p), &g).reason, Reason::ClassNotAllowed);
    assert_eq!(d(&Facts::new(Class::GtpC), Some(&p), &g).reason, Reason::ClassNotAllowed);
}

#[test]
fn unknown_source_follows_unknown_peer_setting() {
    let mut g = GlobalPolicy::default();
    assert_eq!(d(&sig(Class::GtpC), None, &g), v(Action::Drop, Reason::NotAllowlisted));
    g.unknown_peer_pass = 1;
    assert_eq!(d(&sig(Class::GtpC), None, &g), v(Action::Pass, Reason::NotAllowlisted));
}

#[test]
fn non_signaling_follows_its_setting_whoever_sends_it() {
    let mut g = GlobalPolicy::default();
    let f = Facts::new(Class::NonSignaling);
    assert_eq!(d(&f, None, &g), v(Action::Pass, Reason::NonSignaling));
    g.non_signaling_pass = 0;
    assert_eq!(d(&f, None, &g), v(Action::Drop, Reason::NonSignaling));
    assert_eq!(d(&f, Some(&peer(&[Class::GtpU])), &g), v(Action::Drop, Reason::NonSignaling));
}

#[test]
fn malformed_is_dropped_even_from_an_allowed_peer() {
    let g = GlobalPolicy::default();
    let f = Facts { malformed: true, ..sig(Class::GtpU) };
    assert_eq!(d(&f, Some(&peer(&[Class::GtpU])), &g), v(Action::Drop, Reason::Malformed));
    // From a source in no peer: refused as such first when unknown sources are dropped (the
    // fast path never parses their headers), judged malformed when they may pass.
    assert_eq!(d(&f, None, &g), v(Action::Drop, Reason::NotAllowlisted));
    let unclassifiable = Facts { malformed: true, unclassifiable: true, ..Facts::new(Class::Unclassified) };
    assert_eq!(d(&unclassifiable, None, &g), v(Action::Drop, Reason::Unclassifiable));
    let pass = GlobalPolicy { unknown_peer_pass: 1, ..GlobalPolicy::default() };
    assert_eq!(d(&f, None, &pass), v(Action::Drop, Reason::Malformed));
    let monitor = GlobalPolicy { mode: Mode::Monitor as u8, ..GlobalPolicy::default() };
    assert_eq!(d(&f, None, &monitor), v(Action::Pass, Reason::Monitored));
}

#[test]
fn later_fragments_follow_their_first_fragment() {
    let mut g = GlobalPolicy::default();
    let later = |v: u8| Facts { later_fragment: true, fragment_verdict: v, ..Facts::new(Class::GtpU) };
    for p in [Some(peer(&[])), None] {
        assert_eq!(d(&later(FRAG_PASS), p.as_ref(), &g), v(Action::Pass, Reason::Fragment));
        assert_eq!(d(&later(FRAG_DROP), p.as_ref(), &g), v(Action::Drop, Reason::Fragment));
        assert_eq!(d(&later(FRAG_UNTRACKED), p.as_ref(), &g), v(Action::Drop, Reason::FragmentUntracked));
    }
    // Untracked stays dropped even when unknown sources may pass.
    g.unknown_peer_pass = 1;
    assert_eq!(d(&later(FRAG_UNTRACKED), None, &g), v(Action::Drop, Reason::FragmentUntracked));
    // A quarantined peer's fragments are dropped (review L1).
    let f = Facts { peer_blocked: true, ..later(FRAG_PASS) };
    assert_eq!(d(&f, Some(&peer(&[])), &g), v(Action::Drop, Reason::PeerBlocked));
    // Monitor mode counts instead of dropping.
    g.mode = Mode::Monitor as u8;
    assert_eq!(d(&later(FRAG_UNTRACKED), None, &g), v(Action::Pass, Reason::Monitored));
}

#[test]
fn first_fragments_follow_the_class_fragment_policy() {
    let g = GlobalPolicy::default();
    let all = peer(&[Class::Sigtran, Class::Diameter, Class::GtpC, Class::GtpU]);
    let first = |c: Class| Facts { first_fragment: true, ..sig(c) };
    // Defaults: GTP-U reassembled (passes), the others dropped.
    assert_eq!(d(&first(Class::GtpU), Some(&all), &g), v(Action::Pass, Reason::Allowed));
    for c in [Class::Sigtran, Class::Diameter, Class::GtpC] {
        assert_eq!(d(&first(c), Some(&all), &g), v(Action::Drop, Reason::FragmentPolicy), "{c:?}");
        // Whole datagrams of the same class are not affected.
        assert_eq!(d(&sig(c), Some(&all), &g), v(Action::Pass, Reason::Allowed), "{c:?}");
    }
    // The allowlist and class come first.
    assert_eq!(d(&first(Class::GtpC), None, &g), v(Action::Drop, Reason::NotAllowlisted));
    assert_eq!(d(&first(Class::GtpC), Some(&peer(&[])), &g), v(Action::Drop, Reason::ClassNotAllowed));
    // Non-signaling fragments follow non_signaling only.
    let ns = Facts { first_fragment: true, ..Facts::new(Class::NonSignaling) };
    assert_eq!(d(&ns, None, &g), v(Action::Pass, Reason::NonSignaling));
    // A policy that reassembles everything.
    let g2 = GlobalPolicy { fragments_drop: 0, ..GlobalPolicy::default() };
    assert_eq!(d(&first(Class::GtpC), Some(&all), &g2), v(Action::Pass, Reason::Allowed));
    // unknown_peer = "pass" still applies the fragment policy.
    let g3 = GlobalPolicy { unknown_peer_pass: 1, ..GlobalPolicy::default() };
    assert_eq!(d(&first(Class::GtpC), None, &g3), v(Action::Drop, Reason::FragmentPolicy));
    assert_eq!(d(&first(Class::GtpU), None, &g3), v(Action::Pass, Reason::NotAllowlisted));
}

#[test]
fn unclassifiable_is_never_non_signaling() {
    let mut g = GlobalPolicy { non_signaling_pass: 1, ..GlobalPolicy::default() };
    let f = Facts { unclassifiable: true, ..Facts::new(Class::Unclassified) };
    // Unknown source: follows unknown_peer, counted under its own reason.
    assert_eq!(d(&f, None, &g), v(Action::Drop, Reason::Unclassifiable));
    g.unknown_peer_pass = 1;
    assert_eq!(d(&f, None, &g), v(Action::Pass, Reason::Unclassifiable));
    // A peer, whatever it may send: dropped unless its policy says pass.
    let all = peer(&[Class::Sigtran, Class::Diameter, Class::GtpC, Class::GtpU]);
    assert_eq!(d(&f, Some(&all), &g), v(Action::Drop, Reason::Unclassifiable));
    let mut lax = all;
    lax.flags = PEER_FLAG_UNCLASSIFIABLE_PASS;
    assert_eq!(d(&f, Some(&lax), &g), v(Action::Pass, Reason::Unclassifiable));
    // A passing peer still pays its rate.
    lax.rate_interval_ns = 1000;
    assert_eq!(decide(&f, Some(&lax), &g, || false), v(Action::Drop, Reason::RateLimited));
    // Monitor mode only counts.
    g.mode = Mode::Monitor as u8;
    assert_eq!(d(&f, Some(&all), &g), v(Action::Pass, Reason::Monitored));
}

#[test]
fn rate_is_asked_only_for_otherwise_allowed_packets() {
    let g = GlobalPolicy::default();
    let mut p = peer(&[Class::GtpC]);
    p.rate_interval_ns = 1000;
    let mut asked = 0;
    let r = decide(&sig(Class::GtpC), Some(&p), &g, || {
        asked += 1;
        false
    });
    assert_eq!(r, v(Action::Drop, Reason::RateLimited));
    assert_eq!(asked, 1);
    let r = decide(&sig(Class::Sigtran), Some(&p), &g, || panic!("asked for a class-not-allowed packet"));
    assert_eq!(r.reason, Reason::ClassNotAllowed);
    // No limit configured: never asked.
    let r = decide(&sig(Class::GtpC), Some(&peer(&[Class::GtpC])), &g, || panic!("asked without a limit"));
    assert_eq!(r.reason, Reason::Allowed);
}

#[test]
fn monitor_mode_never_drops_and_peer_override_wins() {
    let mut g = GlobalPolicy { mode: Mode::Monitor as u8, non_signaling_pass: 0, ..GlobalPolicy::default() };
    let cases: Vec<(Facts, Option<PeerPolicy>)> = std::vec![
        (sig(Class::GtpC), None),
        (sig(Class::Sigtran), Some(peer(&[Class::GtpU]))),
        (Facts { malformed: true, ..sig(Class::GtpU) }, Some(peer(&[Class::GtpU]))),
        (Facts::new(Class::NonSignaling), None),
        (Facts { later_fragment: true, ..Facts::new(Class::Unclassified) }, None),
        (Facts { first_fragment: true, ..sig(Class::GtpC) }, Some(peer(&[Class::GtpC]))),
    ];
    for (f, p) in &cases {
        assert_eq!(d(f, p.as_ref(), &g), v(Action::Pass, Reason::Monitored), "{f:?}");
    }
    let mut p = peer(&[Class::GtpU]);
    p.mode = PEER_MODE_ENFORCE;
    assert_eq!(d(&sig(Class::GtpC), Some(&p), &g), v(Action::Drop, Reason::ClassNotAllowed));
    g.mode = Mode::Enforce as u8;
    p.mode = PEER_MODE_MONITOR;
    assert_eq!(d(&sig(Class::GtpC), Some(&p), &g), v(Action::Pass, Reason::Monitored));
    // An allowed packet in monitor mode is simply allowed.
    assert_eq!(d(&sig(Class::GtpU), Some(&p), &g), v(Action::Pass, Reason::Allowed));
}

#[test]
fn ports_match_only_within_their_count() {
    let mut g = GlobalPolicy::default();
    assert!(g.port_is(PortClass::GtpC, 2123u16.to_be()));
    assert!(!g.port_is(PortClass::GtpC, 2152u16.to_be()));
    g.ports[PortClass::GtpC as usize][1] = 9999u16.to_be();
    assert!(!g.port_is(PortClass::GtpC, 9999u16.to_be()), "beyond the count");
    g.port_counts[PortClass::GtpC as usize] = 2;
    assert!(g.port_is(PortClass::GtpC, 9999u16.to_be()));
    g.port_counts[PortClass::GtpC as usize] = 0;
    assert!(!g.port_is(PortClass::GtpC, 2123u16.to_be()));
}

#[test]
fn sctp_class_from_port_and_ppid() {
    // A configured port and a PPID of another protocol disagree: plain SCTP (a Diameter request
    // labelled M3UA to the Diameter port is not SIGTRAN; M3UA labelled Diameter to a SIGTRAN port
    // is not Diameter).
    assert_eq!(sctp_class_of(Some(3), true, false), Class::Sctp);
    assert_eq!(sctp_class_of(Some(46), false, true), Class::Sctp);
    assert_eq!(sctp_class_of(Some(46), true, false), Class::Diameter);
    assert_eq!(sctp_class_of(Some(3), false, true), Class::Sigtran);
    assert_eq!(sctp_class_of(Some(18), false, false), Class::Sctp);
    // S1AP to or from a SIGTRAN or Diameter port is still S1AP (review M1).
    assert_eq!(sctp_class_of(Some(18), false, true), Class::Sctp);
    assert_eq!(sctp_class_of(Some(1), true, false), Class::Sctp);
    assert_eq!(sctp_class_of(Some(0), true, false), Class::Diameter);
    assert_eq!(sctp_class_of(None, false, true), Class::Sigtran);
    assert_eq!(sctp_class_of(None, false, false), Class::Sctp);
    for p in SIGTRAN_PPIDS {
        assert_eq!(sctp_class_of(Some(p), false, false), Class::Sigtran);
    }
    for p in DIAMETER_PPIDS {
        assert_eq!(sctp_class_of(Some(p), false, false), Class::Diameter);
    }
}

fn sctp_class_of(p: Option<u32>, dia: bool, sig: bool) -> Class {
    classify::sctp_class(p, dia, sig)
}

#[test]
fn gtp_header_checks() {
    use classify::{gtpc_header_ok, gtpu_header_ok};
    // GTPv2-C echo: flags 0x40, length 4+... header of 8 bytes without TEID: length counts after 4.
    assert!(gtpc_header_ok(0x40, 1, 9, 13, true));
    assert!(!gtpc_header_ok(0x40, 1, 9, 12, true), "length beyond the datagram");
    assert!(gtpc_header_ok(0x40, 1, 9, 12, false), "first fragment: tail elsewhere");
    assert!(gtpc_header_ok(0x50, 1, 9, 40, true), "piggybacked message follows");
    assert!(!gtpc_header_ok(0x40, 0, 9, 13, true), "type 0 is reserved");
    assert!(!gtpc_header_ok(0x60, 1, 9, 13, true), "version 3");
    assert!(gtpc_header_ok(0x32, 16, 20, 28, true), "GTPv1-C create PDP");
    assert!(!gtpc_header_ok(0x32, 255, 20, 28, true), "G-PDU on GTP-C");
    assert!(!gtpc_header_ok(0x22, 16, 20, 28, true), "PT=0 (GTP')");
    assert!(gtpu_header_ok(0x30, 255, 100, 108, true));
    assert!(!gtpu_header_ok(0x30, 255, 100, 109, true));
    assert!(!gtpu_header_ok(0x30, 16, 100, 108, true), "a GTP-C type on GTP-U");
    assert!(!gtpu_header_ok(0x50, 255, 100, 108, true), "version 2 on GTP-U");
}

#[test]
fn gcra_admits_burst_then_rate() {
    let (i, t) = params(1000, 0);
    assert_eq!(i, 1_000_000);
    let mut tat = 0;
    let now = 10_000_000_000u64;
    let mut admitted = 0;
    for _ in 0..5000 {
        if let Some(n) = gcra(tat, now, i, t) {
            tat = n;
            admitted += 1;
        }
    }
    assert_eq!(admitted, 1000, "burst is one second's worth");
    // Over the next second, at 10x the rate, about the rate is admitted.
    let mut admitted = 0;
    for k in 0..10_000u64 {
        if let Some(n) = gcra(tat, now + k * 100_000, i, t) {
            tat = n;
            admitted += 1;
        }
    }
    assert!((990..=1010).contains(&admitted), "{admitted}");
    assert_eq!(params(0, 0), (0, 0));
    assert_eq!(params(10, 1), (100_000_000, 0));
}

#[test]
fn stats_index_covers_the_array() {
    let mut seen = std::vec![false; STATS_ENTRIES as usize];
    for part in [STATS_PEERS, STATS_UNKNOWN_PASSED, STATS_UNKNOWN_DROPPED] {
        for r in Reason::ALL {
            for c in Class::ALL {
                let i = stats_index_in(part, r, c) as usize;
                assert!(!seen[i]);
                seen[i] = true;
            }
        }
    }
    assert_eq!(
        stats_index(Reason::Malformed, Class::GtpU),
        stats_index_in(STATS_PEERS, Reason::Malformed, Class::GtpU)
    );
    assert!(seen.iter().all(|s| *s));
}

#[test]
fn pushed_down_blocks_outrank_the_allowlist() {
    let g = GlobalPolicy::default();
    let p = peer(&[Class::GtpC]);
    let f = Facts { flow_blocked: true, ..sig(Class::GtpC) };
    assert_eq!(d(&f, Some(&p), &g), v(Action::Drop, Reason::FlowBlocked));
    let f = Facts { peer_blocked: true, ..sig(Class::GtpC) };
    assert_eq!(d(&f, Some(&p), &g), v(Action::Drop, Reason::PeerBlocked));
    // Malformed still comes first; monitor turns blocks into counted passes.
    let f = Facts { flow_blocked: true, malformed: true, ..sig(Class::GtpC) };
    assert_eq!(d(&f, Some(&p), &g).reason, Reason::Malformed);
    let mut m = p;
    m.mode = PEER_MODE_MONITOR;
    let f = Facts { flow_blocked: true, ..sig(Class::GtpC) };
    assert_eq!(d(&f, Some(&m), &g), v(Action::Pass, Reason::Monitored));
}

#[test]
fn mode_names_round_trip_and_match_the_stored_byte() {
    for m in Mode::ALL {
        assert_eq!(Mode::from_name(m.name()), Some(m));
        let g = GlobalPolicy { mode: m as u8, ..Default::default() };
        assert_eq!(g.mode(), m);
    }
    assert_eq!((Mode::Enforce.name(), Mode::Monitor.name()), ("enforce", "monitor"));
    assert_eq!(Mode::from_name("off"), None);
}

#[test]
fn attach_mode_bytes_are_the_pinned_ones() {
    assert_eq!((AttachMode::Native as u8, AttachMode::Skb as u8), (1, 2));
    assert_eq!(AttachMode::from_raw(1), Some(AttachMode::Native));
    assert_eq!(AttachMode::from_raw(2), Some(AttachMode::Skb));
    assert_eq!(Meta::default().attach_mode(), None);
}

/// Issue 10 item 5: a peer's packet whose inspection copy was not made is dropped as
/// `inspect_overload` unless the peer fails open; monitor mode only counts it; a drop stays a
/// drop with its own reason.
#[test]
fn uninspected_packets_fail_closed_unless_the_peer_fails_open() {
    let g = GlobalPolicy::default();
    let p = peer(&[Class::GtpC]);
    let pass = Verdict::pass(Reason::Allowed);
    assert_eq!(uninspected(pass, &p, &g), v(Action::Drop, Reason::InspectOverload));
    let open = PeerPolicy { flags: PEER_FLAG_OVERLOAD_PASS, ..p };
    assert_eq!(uninspected(pass, &open, &g), pass);
    let monitor = PeerPolicy { mode: PEER_MODE_MONITOR, ..p };
    assert_eq!(uninspected(pass, &monitor, &g), v(Action::Pass, Reason::Monitored));
    let dropped = v(Action::Drop, Reason::ClassNotAllowed);
    assert_eq!(uninspected(dropped, &p, &g), dropped);
}

/// Review M5: per-flow sampling keeps or skips a whole flow, and spreads flows about evenly.
#[test]
fn flow_sample_hash_is_per_flow_and_spreads() {
    use classify::flow_sample_hash;
    let h = flow_sample_hash(0x0b59_0b59, 0x0101_12c6, 0x0200_12c6);
    assert_eq!(h, flow_sample_hash(0x0b59_0b59, 0x0101_12c6, 0x0200_12c6));
    // 10,000 associations that differ only in the peer's source address (same ports, 2905 both
    // sides, as SIGTRAN links are): 1 in 10 sampled, give or take.
    let n = (0u32..10_000)
        .filter(|i| flow_sample_hash(0x590b_590b, 0x0000_12c6 | (i << 16), 0x0200_12c6).is_multiple_of(10))
        .count();
    assert!((800..1200).contains(&n), "{n}");
}

/// A source cache tag is never 0, tells the families apart, and changes with every bit of the
/// epoch (each program load draws one) and of the generation number's low 38 bits.
#[test]
fn source_cache_tags_use_every_epoch_bit() {
    use crate::source_cache_tag as tag;
    for n in [0u64, 1, 5, (1 << 38) - 1] {
        for ep in [0u32, 1, 0x0100_0000, 0x8000_0000, u32::MAX] {
            assert_ne!(tag(n, false, ep), 0);
            assert_ne!(tag(n, false, ep), tag(n, true, ep));
            for bit in 0..32 {
                assert_ne!(tag(n, false, ep), tag(n, false, ep ^ (1 << bit)), "epoch bit {bit}");
            }
            for bit in 0..38 {
                assert_ne!(tag(n, false, ep), tag(n ^ (1 << bit), false, ep), "number bit {bit}");
            }
        }
    }
    // The case the old layout (epoch << 40) lost: epochs equal modulo 2^24.
    assert_ne!(tag(7, false, 0x0100_0000), tag(7, false, 0));
}
