//! The real XDP object on crafted frames (BPF_PROG_TEST_RUN): every class x every reason x
//! IPv4/IPv6 x untagged/802.1Q/QinQ, and every truncation of every signaling header, with the
//! counters checked after each frame. Needs root (CAP_BPF + CAP_NET_ADMIN).

use std::net::IpAddr;

use filter_common::{Class, Reason};
use filter_testkit::{
    packets::{self, Fragment, Frame, L4},
    testrun::{Harness, Outcome, XDP_DROP, XDP_PASS},
};

const POLICY: &str = r#"
[defaults]
mode = "enforce"
unknown_peer = "drop"
non_signaling = "pass"

[[peer]]
name = "all"
prefixes = ["198.18.1.0/24", "2001:db8:1::/48"]
allow = ["sigtran", "diameter", "gtp-c", "gtp-u", "sctp"]

[[peer]]
name = "none"
prefixes = ["198.18.2.0/24", "2001:db8:2::/48"]
allow = []

[[peer]]
name = "limited"
prefixes = ["198.18.3.0/24", "2001:db8:3::/48"]
allow = ["sigtran", "diameter", "gtp-c", "gtp-u", "sctp"]
rate_limit_pps = 1
rate_burst = 1

[[peer]]
name = "watched"
prefixes = ["198.18.4.0/24", "2001:db8:4::/48"]
allow = []
mode = "monitor"

# A more specific prefix inside "all"'s /24: longest match wins.
[[peer]]
name = "carve-out"
prefixes = ["198.18.1.128/25", "2001:db8:1:80::/64"]
allow = ["gtp-u"]
"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    V4,
    V6,
}

const TAGS: [&[u16]; 3] = [&[], &[0x8100], &[0x88a8, 0x8100]];

fn addr(f: Family, net: u8, host: u8) -> IpAddr {
    match f {
        Family::V4 => format!("198.18.{net}.{host}").parse().unwrap(),
        Family::V6 => format!("2001:db8:{net:x}::{host:x}").parse().unwrap(),
    }
}

/// Source in peer `net` (1 all, 2 none, 3 limited, 4 watched, 99 nobody).
fn src(f: Family, net: u8) -> IpAddr {
    addr(f, net, 7)
}

fn dst(f: Family) -> IpAddr {
    addr(f, 0, 2)
}

/// One sample transport per class (some classes have several shapes).
fn samples() -> Vec<(&'static str, Class, L4)> {
    vec![
        (
            "m3ua-data",
            Class::Sigtran,
            L4::Sctp { sport: 2905, dport: 2905, chunks: vec![packets::data_chunk(3, &packets::m3ua_data())] },
        ),
        (
            "m2pa-after-sack",
            Class::Sigtran,
            L4::Sctp {
                sport: 3565,
                dport: 3565,
                chunks: vec![
                    packets::sack_chunk(),
                    packets::data_chunk(5, &[1, 0, 11, 1, 0, 0, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0]),
                ],
            },
        ),
        (
            "sigtran-heartbeat",
            Class::Sigtran,
            L4::Sctp { sport: 40000, dport: 2905, chunks: vec![packets::heartbeat_chunk()] },
        ),
        (
            "diameter-sctp",
            Class::Diameter,
            L4::Sctp {
                sport: 3868,
                dport: 3868,
                chunks: vec![packets::data_chunk(46, &packets::diameter_message(316, 16777251))],
            },
        ),
        (
            "diameter-tcp",
            Class::Diameter,
            L4::Tcp { sport: 40000, dport: 3868, payload: packets::diameter_message(316, 16777251) },
        ),
        (
            "gtpv2-create-session",
            Class::GtpC,
            L4::Udp {
                sport: 2123,
                dport: 2123,
                payload: packets::gtpv2c(32, 0, 1, &[1, 0, 8, 0, 0x21, 0x43, 0x65, 0x87, 0x09, 0x21, 0x43, 0xf5]),
            },
        ),
        ("gtpv2-echo", Class::GtpC, L4::Udp { sport: 40000, dport: 2123, payload: packets::gtpv2c_echo() }),
        (
            "gtpu-gpdu",
            Class::GtpU,
            L4::Udp { sport: 2152, dport: 2152, payload: packets::gtpu(0x1234, &packets::inner_ipv4_udp()) },
        ),
        (
            "s1ap",
            Class::Sctp,
            L4::Sctp { sport: 36412, dport: 36412, chunks: vec![packets::data_chunk(18, &[0, 12, 0, 5, 0, 0, 0, 0])] },
        ),
        ("udp-other", Class::NonSignaling, L4::Udp { sport: 40000, dport: 5000, payload: b"hello".to_vec() }),
        ("tcp-other", Class::NonSignaling, L4::Tcp { sport: 40000, dport: 443, payload: b"hello".to_vec() }),
    ]
}

fn frame(f: Family, tags: &[u16], net: u8, l4: L4) -> Frame {
    Frame::new(src(f, net), dst(f), l4).vlans(tags)
}

/// Assert that `o` moved exactly one cell, by one packet of `len` bytes, and (for signaling)
/// one peer counter.
fn expect(o: &Outcome, ctx: &str, action: u32, reason: Reason, class: Class, len: usize, peer: Option<&str>) {
    assert_eq!(o.action, action, "{ctx}: action");
    assert_eq!(o.cells, vec![(reason, class, 1, len as u64)], "{ctx}: counter cells");
    match peer {
        None => assert!(o.peers.is_empty(), "{ctx}: peers moved {:?}", o.peers),
        Some(name) => {
            let (passed, dropped) = if action == XDP_PASS { (1, 0) } else { (0, 1) };
            assert_eq!(o.peers, vec![(name.to_string(), 1, len as u64, passed, dropped)], "{ctx}: peer counters");
        }
    }
}

#[test]
fn every_class_by_every_reason_by_family_by_tagging() {
    let mut h = Harness::new(POLICY);
    let mut cases = 0;
    for fam in [Family::V4, Family::V6] {
        for tags in TAGS {
            for (name, class, l4) in samples() {
                let ctx = |what: &str| format!("{name} {fam:?} tags={tags:x?}: {what}");
                let signaling = class != Class::NonSignaling;
                let peer = |n: &'static str| if signaling { Some(n) } else { None };

                // allowed (or non_signaling for the non-signaling samples)
                let f = frame(fam, tags, 1, l4.clone()).bytes();
                let o = h.outcome(&f);
                if signaling {
                    expect(&o, &ctx("allowed"), XDP_PASS, Reason::Allowed, class, f.len(), peer("all"));
                } else {
                    expect(&o, &ctx("non-signaling"), XDP_PASS, Reason::NonSignaling, class, f.len(), None);
                }

                // not_allowlisted
                let f = frame(fam, tags, 99, l4.clone()).bytes();
                let o = h.outcome(&f);
                if signaling {
                    expect(&o, &ctx("unknown"), XDP_DROP, Reason::NotAllowlisted, class, f.len(), Some("(unknown)"));
                } else {
                    expect(&o, &ctx("unknown non-signaling"), XDP_PASS, Reason::NonSignaling, class, f.len(), None);
                }

                if signaling {
                    // class_not_allowed
                    let f = frame(fam, tags, 2, l4.clone()).bytes();
                    expect(
                        &h.outcome(&f),
                        &ctx("class"),
                        XDP_DROP,
                        Reason::ClassNotAllowed,
                        class,
                        f.len(),
                        Some("none"),
                    );

                    // monitored: the same packet from a monitor-mode peer passes
                    let f = frame(fam, tags, 4, l4.clone()).bytes();
                    expect(
                        &h.outcome(&f),
                        &ctx("monitored"),
                        XDP_PASS,
                        Reason::Monitored,
                        class,
                        f.len(),
                        Some("watched"),
                    );

                    // rate_limited: burst of one, so the second of two back-to-back packets
                    h.reset_rate("limited");
                    let f = frame(fam, tags, 3, l4.clone()).bytes();
                    expect(
                        &h.outcome(&f),
                        &ctx("rate first"),
                        XDP_PASS,
                        Reason::Allowed,
                        class,
                        f.len(),
                        Some("limited"),
                    );
                    expect(
                        &h.outcome(&f),
                        &ctx("rate second"),
                        XDP_DROP,
                        Reason::RateLimited,
                        class,
                        f.len(),
                        Some("limited"),
                    );
                }

                // fragment: a later fragment passes from a peer, drops from anyone else
                let f = frame(fam, tags, 1, l4.clone()).fragment(Fragment::Later).bytes();
                expect(
                    &h.outcome(&f),
                    &ctx("later fragment, peer"),
                    XDP_PASS,
                    Reason::Fragment,
                    Class::Unclassified,
                    f.len(),
                    Some("all"),
                );
                let f = frame(fam, tags, 99, l4.clone()).fragment(Fragment::Later).bytes();
                expect(
                    &h.outcome(&f),
                    &ctx("later fragment, unknown"),
                    XDP_DROP,
                    Reason::Fragment,
                    Class::Unclassified,
                    f.len(),
                    Some("(unknown)"),
                );
                // a first fragment carries the ports: classified as usual
                let f = frame(fam, tags, 1, l4.clone()).fragment(Fragment::First).bytes();
                let o = h.outcome(&f);
                assert_eq!(o.cells[0].1, class, "{}", ctx("first fragment class"));
                cases += 8;
            }
        }
    }
    assert!(cases > 400, "{cases}");
}

#[test]
fn malformed_headers_of_each_signaling_class() {
    let mut h = Harness::new(POLICY);
    for fam in [Family::V4, Family::V6] {
        for tags in TAGS {
            let bad: Vec<(&str, Class, L4)> = vec![
                (
                    "m3ua version 2",
                    Class::Sigtran,
                    L4::Sctp {
                        sport: 2905,
                        dport: 2905,
                        chunks: vec![packets::data_chunk(3, &{
                            let mut m = packets::m3ua_data();
                            m[0] = 2;
                            m
                        })],
                    },
                ),
                (
                    "data chunk without user data",
                    Class::Sctp,
                    L4::Sctp { sport: 1, dport: 2, chunks: vec![packets::chunk(0, 3, &[0; 12])] },
                ),
                (
                    "chunk length 2",
                    Class::Sigtran,
                    L4::Sctp { sport: 2905, dport: 2905, chunks: vec![vec![3, 0, 0, 2]] },
                ),
                ("no chunks", Class::Diameter, L4::Sctp { sport: 3868, dport: 3868, chunks: vec![] }),
                (
                    "diameter version 0",
                    Class::Diameter,
                    L4::Sctp {
                        sport: 9,
                        dport: 9,
                        chunks: vec![packets::data_chunk(46, &{
                            let mut m = packets::diameter_message(316, 16777251);
                            m[0] = 0;
                            m
                        })],
                    },
                ),
                (
                    "gtpv2 length too long",
                    Class::GtpC,
                    L4::Udp {
                        sport: 2123,
                        dport: 2123,
                        payload: {
                            let mut m = packets::gtpv2c_echo();
                            m[3] += 1;
                            m
                        },
                    },
                ),
                (
                    "gtpv2 type 0",
                    Class::GtpC,
                    L4::Udp {
                        sport: 2123,
                        dport: 2123,
                        payload: {
                            let mut m = packets::gtpv2c_echo();
                            m[1] = 0;
                            m
                        },
                    },
                ),
                (
                    "gtp version 3 on gtp-c",
                    Class::GtpC,
                    L4::Udp {
                        sport: 2123,
                        dport: 2123,
                        payload: {
                            let mut m = packets::gtpv2c_echo();
                            m[0] = 0x60;
                            m
                        },
                    },
                ),
                (
                    "gtpu type 32",
                    Class::GtpU,
                    L4::Udp {
                        sport: 2152,
                        dport: 2152,
                        payload: {
                            let mut m = packets::gtpu(1, &packets::inner_ipv4_udp());
                            m[1] = 32;
                            m
                        },
                    },
                ),
                ("gtpu short", Class::GtpU, L4::Udp { sport: 2152, dport: 2152, payload: vec![0x30, 255, 0] }),
                ("tcp data offset 4", Class::Diameter, L4::Tcp { sport: 3868, dport: 40000, payload: vec![] }),
            ];
            for (name, class, l4) in bad {
                let mut seg = Frame::new(src(fam, 1), dst(fam), l4.clone()).l4_bytes();
                if name.starts_with("tcp data offset") {
                    seg[12] = 4 << 4;
                }
                let f = frame(fam, tags, 1, l4).with_l4(&seg);
                let o = h.outcome(&f);
                expect(
                    &o,
                    &format!("{name} {fam:?} {tags:x?}"),
                    XDP_DROP,
                    Reason::Malformed,
                    class,
                    f.len(),
                    Some("all"),
                );
            }
        }
    }
}

#[test]
fn every_truncation_of_every_signaling_frame_is_never_allowed() {
    let mut h = Harness::new(POLICY);
    let mut runs = 0;
    for fam in [Family::V4, Family::V6] {
        for tags in TAGS {
            for (name, class, l4) in samples() {
                if class == Class::NonSignaling {
                    continue;
                }
                let fr = frame(fam, tags, 1, l4.clone());
                let whole = fr.bytes();
                // 1. The frame cut short: IP lengths now disagree with the frame.
                for len in 14..whole.len() {
                    let o = h.outcome(&whole[..len]);
                    let ctx = format!("{name} {fam:?} {tags:x?} frame cut to {len}");
                    assert_eq!(o.cells.len(), 1, "{ctx}: exactly one counter: {o:?}");
                    assert_ne!(o.cells[0].0, Reason::Allowed, "{ctx}");
                    runs += 1;
                }
                // 2. The transport cut short with consistent IP lengths: the signaling header
                //    itself is truncated. TCP segments may end anywhere after the TCP header.
                let seg = fr.l4_bytes();
                let limit = if matches!(l4, L4::Tcp { .. }) { 20 } else { seg.len() };
                // Cutting an SCTP packet between two chunks leaves a complete, shorter packet
                // (e.g. a lone SACK): not a truncation, so not expected to be malformed.
                let mut boundaries = vec![];
                if let L4::Sctp { chunks, .. } = &l4 {
                    let mut at = 12;
                    for c in &chunks[..chunks.len().saturating_sub(1)] {
                        at += c.len();
                        boundaries.push(at);
                    }
                }
                for cut in (0..limit).filter(|c| !boundaries.contains(c)) {
                    let f = fr.with_l4(&seg[..cut]);
                    let o = h.outcome(&f);
                    let ctx = format!("{name} {fam:?} {tags:x?} transport cut to {cut}");
                    assert_eq!(o.action, XDP_DROP, "{ctx}: {o:?}");
                    assert_eq!(o.cells.len(), 1, "{ctx}: {o:?}");
                    assert_eq!(o.cells[0].0, Reason::Malformed, "{ctx}: {o:?}");
                    runs += 1;
                }
            }
        }
    }
    assert!(runs > 5000, "{runs}");
}

#[test]
fn options_and_extension_headers_are_walked() {
    let mut h = Harness::new(POLICY);
    let l4 = L4::Udp { sport: 2152, dport: 2152, payload: packets::gtpu(7, &packets::inner_ipv4_udp()) };
    let f = frame(Family::V4, &[], 1, l4.clone()).with_ipv4_options().bytes();
    expect(&h.outcome(&f), "ipv4 options", XDP_PASS, Reason::Allowed, Class::GtpU, f.len(), Some("all"));
    let f = frame(Family::V6, &[0x8100], 1, l4.clone()).with_ipv6_ext(&[0, 43, 60]).bytes();
    expect(&h.outcome(&f), "ipv6 hop/routing/dst", XDP_PASS, Reason::Allowed, Class::GtpU, f.len(), Some("all"));
    let f = frame(Family::V6, &[], 99, l4.clone()).with_ipv6_ext(&[0, 60]).bytes();
    expect(
        &h.outcome(&f),
        "ipv6 ext, unknown",
        XDP_DROP,
        Reason::NotAllowlisted,
        Class::GtpU,
        f.len(),
        Some("(unknown)"),
    );
    // A chain longer than the parser follows is not classified (passes as non-signaling).
    let f = frame(Family::V6, &[], 99, l4).with_ipv6_ext(&[60, 60, 60, 60, 60, 60, 60]).bytes();
    expect(&h.outcome(&f), "ipv6 chain too long", XDP_PASS, Reason::NonSignaling, Class::NonSignaling, f.len(), None);
}

#[test]
fn longest_prefix_wins() {
    let mut h = Harness::new(POLICY);
    let gtpc = L4::Udp { sport: 2123, dport: 2123, payload: packets::gtpv2c_echo() };
    let gtpu = L4::Udp { sport: 2152, dport: 2152, payload: packets::gtpu(7, &packets::inner_ipv4_udp()) };
    for fam in [Family::V4, Family::V6] {
        let carved = match fam {
            Family::V4 => "198.18.1.200".parse().unwrap(),
            Family::V6 => "2001:db8:1:80::9".parse().unwrap(),
        };
        let f = Frame::new(carved, dst(fam), gtpc.clone()).bytes();
        expect(
            &h.outcome(&f),
            "carve-out gtp-c",
            XDP_DROP,
            Reason::ClassNotAllowed,
            Class::GtpC,
            f.len(),
            Some("carve-out"),
        );
        let f = Frame::new(carved, dst(fam), gtpu.clone()).bytes();
        expect(&h.outcome(&f), "carve-out gtp-u", XDP_PASS, Reason::Allowed, Class::GtpU, f.len(), Some("carve-out"));
    }
}

#[test]
fn defaults_unknown_pass_non_signaling_drop_and_global_monitor() {
    let mut h = Harness::new(
        &POLICY
            .replace("unknown_peer = \"drop\"", "unknown_peer = \"pass\"")
            .replace("non_signaling = \"pass\"", "non_signaling = \"drop\""),
    );
    let gtpc = L4::Udp { sport: 2123, dport: 2123, payload: packets::gtpv2c_echo() };
    let f = frame(Family::V4, &[], 99, gtpc.clone()).bytes();
    expect(
        &h.outcome(&f),
        "unknown_peer=pass",
        XDP_PASS,
        Reason::NotAllowlisted,
        Class::GtpC,
        f.len(),
        Some("(unknown)"),
    );
    let other = L4::Udp { sport: 40000, dport: 5000, payload: b"x".to_vec() };
    let f = frame(Family::V6, &[], 1, other.clone()).bytes();
    expect(&h.outcome(&f), "non_signaling=drop", XDP_DROP, Reason::NonSignaling, Class::NonSignaling, f.len(), None);
    // ICMP, ICMPv6 and non-IP frames keep the link alive even then.
    for fam in [Family::V4, Family::V6] {
        let f = frame(fam, &[], 99, L4::Icmp).bytes();
        expect(&h.outcome(&f), "icmp", XDP_PASS, Reason::NonSignaling, Class::NonSignaling, f.len(), None);
    }
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&packets::SRC_MAC);
    arp.extend_from_slice(&[0x08, 0x06]);
    arp.extend_from_slice(&[0; 28]);
    expect(&h.outcome(&arp), "arp", XDP_PASS, Reason::NonSignaling, Class::NonSignaling, arp.len(), None);

    // Global monitor: nothing is dropped; a per-peer enforce override still drops.
    h.apply(&format!(
        "{}\n",
        POLICY
            .replace("mode = \"enforce\"", "mode = \"monitor\"")
            .replace("non_signaling = \"pass\"", "non_signaling = \"drop\"")
    ));
    assert_eq!(h.snapshot().generation, 2);
    let f = frame(Family::V4, &[], 99, gtpc.clone()).bytes();
    expect(&h.outcome(&f), "monitor unknown", XDP_PASS, Reason::Monitored, Class::GtpC, f.len(), Some("(unknown)"));
    let f = frame(Family::V4, &[], 2, gtpc.clone()).bytes();
    expect(&h.outcome(&f), "monitor class", XDP_PASS, Reason::Monitored, Class::GtpC, f.len(), Some("none"));
    let f = frame(Family::V6, &[], 1, other).bytes();
    expect(&h.outcome(&f), "monitor non-signaling", XDP_PASS, Reason::Monitored, Class::NonSignaling, f.len(), None);
    h.apply(&POLICY.replace("mode = \"enforce\"", "mode = \"monitor\"").replace(
        "name = \"none\"\nprefixes = [\"198.18.2.0/24\", \"2001:db8:2::/48\"]\nallow = []",
        "name = \"none\"\nprefixes = [\"198.18.2.0/24\", \"2001:db8:2::/48\"]\nallow = []\nmode = \"enforce\"",
    ));
    let f = frame(Family::V4, &[], 2, gtpc).bytes();
    expect(
        &h.outcome(&f),
        "peer enforce override",
        XDP_DROP,
        Reason::ClassNotAllowed,
        Class::GtpC,
        f.len(),
        Some("none"),
    );
}

#[test]
fn configured_ports_replace_the_defaults() {
    let mut h = Harness::new(&format!(
        "[ports]\ngtp_c = [12123]\ndiameter = [3868, 13868]\n{}",
        POLICY.replace("[defaults]\nmode = \"enforce\"\nunknown_peer = \"drop\"\nnon_signaling = \"pass\"\n", "")
    ));
    let f = frame(Family::V4, &[], 99, L4::Udp { sport: 40000, dport: 12123, payload: packets::gtpv2c_echo() }).bytes();
    expect(
        &h.outcome(&f),
        "custom gtp-c port",
        XDP_DROP,
        Reason::NotAllowlisted,
        Class::GtpC,
        f.len(),
        Some("(unknown)"),
    );
    let f = frame(Family::V4, &[], 99, L4::Udp { sport: 40000, dport: 2123, payload: packets::gtpv2c_echo() }).bytes();
    expect(
        &h.outcome(&f),
        "default gtp-c port no longer signaling",
        XDP_PASS,
        Reason::NonSignaling,
        Class::NonSignaling,
        f.len(),
        None,
    );
    let f = frame(Family::V6, &[], 99, L4::Tcp { sport: 13868, dport: 40000, payload: vec![] }).bytes();
    expect(
        &h.outcome(&f),
        "second diameter port",
        XDP_DROP,
        Reason::NotAllowlisted,
        Class::Diameter,
        f.len(),
        Some("(unknown)"),
    );
}

#[test]
fn generation_flip_switches_whole_policy() {
    let mut h = Harness::new(POLICY);
    let gtpu = L4::Udp { sport: 2152, dport: 2152, payload: packets::gtpu(7, &packets::inner_ipv4_udp()) };
    let f = frame(Family::V4, &[], 2, gtpu.clone()).bytes();
    assert_eq!(h.run(&f), XDP_DROP);
    h.apply(&POLICY.replace(
        "name = \"none\"\nprefixes = [\"198.18.2.0/24\", \"2001:db8:2::/48\"]\nallow = []",
        "name = \"none\"\nprefixes = [\"198.18.2.0/24\", \"2001:db8:2::/48\"]\nallow = [\"gtp-u\"]",
    ));
    assert_eq!(h.run(&f), XDP_PASS);
    h.apply(POLICY);
    assert_eq!(h.run(&f), XDP_DROP);
    // Removing a peer removes its prefixes from the new generation's trie.
    h.apply(&POLICY.replace("\"198.18.1.0/24\", ", ""));
    let f = frame(Family::V4, &[], 1, gtpu).bytes();
    let o = h.outcome(&f);
    assert_eq!((o.action, o.cells[0].0), (XDP_DROP, Reason::NotAllowlisted));
    assert_eq!(h.snapshot().generation, 4);
}
