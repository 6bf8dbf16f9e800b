//! End to end on a veth pair between two fresh network namespaces: `sigwall run` attached in
//! native XDP mode on the edge side, frames sent from the ipx side, a capture on the edge side
//! as the oracle of what got through. Needs root.

use std::{
    collections::HashMap,
    net::IpAddr,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use filter_common::{Class, Reason};
use filter_testkit::{
    daemon::Daemon,
    netns::Lab,
    packets::{self, Frame, L4},
    sigwall_bin,
};

const POLICY: &str = r#"
[defaults]
mode = "enforce"
unknown_peer = "drop"
non_signaling = "pass"

[[peer]]
name = "partner-a"
prefixes = ["198.18.10.0/24", "2001:db8:a::/48"]
allow = ["sigtran", "diameter", "gtp-c", "gtp-u"]

[[peer]]
name = "partner-b"
prefixes = ["198.18.20.0/24", "2001:db8:b::/48"]
allow = ["gtp-c", "gtp-u"]

[[peer]]
name = "limited"
prefixes = ["198.18.30.0/24"]
allow = ["gtp-u"]
rate_limit_pps = 2000
"#;

fn write_policy(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("policy.toml");
    std::fs::write(&p, text).unwrap();
    p
}

fn tempdir() -> PathBuf {
    let d = std::env::temp_dir().join(format!("sigwall-veth-{}-{:?}", std::process::id(), std::thread::current().id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Signaling samples: (class, transport) with a sequence number folded in so every frame differs.
fn transports(seq: u16) -> Vec<(Class, L4)> {
    vec![
        (
            Class::Sigtran,
            L4::Sctp { sport: 2905, dport: 2905, chunks: vec![packets::data_chunk(3, &packets::m3ua_data())] },
        ),
        (
            Class::Diameter,
            L4::Sctp {
                sport: 3868,
                dport: 3868,
                chunks: vec![packets::data_chunk(46, &packets::diameter_message(316, 16777251))],
            },
        ),
        (
            Class::Diameter,
            L4::Tcp { sport: 40000 + seq, dport: 3868, payload: packets::diameter_message(318, 16777251) },
        ),
        (Class::GtpC, L4::Udp { sport: 2123, dport: 2123, payload: packets::gtpv2c(32, 0, seq as u32, &[]) }),
        (
            Class::GtpU,
            L4::Udp { sport: 2152, dport: 2152, payload: packets::gtpu(seq as u32, &packets::inner_ipv4_udp()) },
        ),
    ]
}

fn peer_src(net: &str, v6: bool, host: u16) -> IpAddr {
    let s = match (net, v6) {
        ("a", false) => format!("198.18.10.{}", host % 250 + 1),
        ("a", true) => format!("2001:db8:a::{host:x}"),
        ("b", false) => format!("198.18.20.{}", host % 250 + 1),
        ("b", true) => format!("2001:db8:b::{host:x}"),
        (_, false) => format!("198.19.{}.{}", host / 250, host % 250 + 1),
        (_, true) => format!("2001:db8:ff::{host:x}"),
    };
    s.parse().unwrap()
}

fn dst(v6: bool) -> IpAddr {
    if v6 { "2001:db8::2".parse().unwrap() } else { "198.18.0.2".parse().unwrap() }
}

fn allowed(net: &str, class: Class) -> bool {
    match net {
        "a" => true,
        "b" => matches!(class, Class::GtpC | Class::GtpU),
        _ => false,
    }
}

fn count(frames: &[Vec<u8>]) -> HashMap<Vec<u8>, usize> {
    let mut m = HashMap::new();
    for f in frames {
        *m.entry(f.clone()).or_insert(0) += 1;
    }
    m
}

struct Sent {
    frames: Vec<(Vec<u8>, &'static str, Class)>,
}

fn send_mix(lab: &Lab, rounds: u16) -> Sent {
    let tx = lab.sender();
    let mut frames = Vec::new();
    for seq in 0..rounds {
        for net in ["a", "b", "x"] {
            for v6 in [false, true] {
                for (class, l4) in transports(seq) {
                    let f = Frame::new(peer_src(net, v6, seq + 1), dst(v6), l4).bytes();
                    tx.send(&f);
                    frames.push((f, net, class));
                    // veth's XDP ring holds 256 frames; pace so the test measures sigwall, not it.
                    if frames.len() % 64 == 0 {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                }
            }
        }
    }
    Sent { frames }
}

#[test]
fn allowed_peers_arrive_others_do_not_and_counters_match() {
    let lab = Lab::new();
    let dir = tempdir();
    let daemon = Daemon::start(&lab, &sigwall_bin(), &write_policy(&dir, POLICY), &[]);
    let cap = lab.capture();
    let sent = send_mix(&lab, 20);
    let got = count(&cap.finish(Duration::from_millis(500), Duration::from_secs(10)));

    let (mut pass, mut drop) = (0u64, 0u64);
    let mut per_peer: HashMap<&str, (u64, u64)> = HashMap::new();
    for (f, net, class) in &sent.frames {
        let seen = got.get(f).copied().unwrap_or(0);
        let e = per_peer
            .entry(match *net {
                "a" => "partner-a",
                "b" => "partner-b",
                _ => "(unknown)",
            })
            .or_default();
        if allowed(net, *class) {
            assert_eq!(seen, 1, "an allowed frame from {net} ({class:?}) did not arrive exactly once");
            pass += 1;
            e.0 += 1;
        } else {
            assert_eq!(seen, 0, "a forbidden frame from {net} ({class:?}) arrived");
            drop += 1;
            e.1 += 1;
        }
    }

    let s = daemon.stats();
    assert_eq!(s.reason(Reason::Allowed), pass);
    let unknown = sent.frames.iter().filter(|(_, n, _)| *n == "x").count() as u64;
    assert_eq!(s.reason(Reason::NotAllowlisted), unknown);
    assert_eq!(s.reason(Reason::ClassNotAllowed), drop - unknown);
    for r in [Reason::RateLimited, Reason::Malformed, Reason::Fragment, Reason::Monitored] {
        assert_eq!(s.reason(r), 0, "{r:?}");
    }
    assert_eq!(s.cell(Reason::ClassNotAllowed, Class::Sigtran), 40);
    assert_eq!(s.cell(Reason::ClassNotAllowed, Class::Diameter), 80);
    for (name, (p, d)) in per_peer {
        let ps = s.peer(name).unwrap_or_else(|| panic!("peer {name} in stats"));
        assert_eq!((ps.passed, ps.dropped, ps.packets), (p, d, p + d), "{name}");
    }

    // The same numbers through the CLI's JSON.
    let out =
        std::process::Command::new(sigwall_bin()).args(["stats", "--iface", &lab.edge_if, "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["reasons"]["allowed"], pass);
    assert_eq!(j["reasons"]["not_allowlisted"], unknown);
    let a = j["peers"].as_array().unwrap().iter().find(|p| p["name"] == "partner-a").unwrap();
    assert_eq!(a["dropped"], 0);
    assert_eq!(a["passed"], 200);
    drop_and_check_clean(daemon, lab);
}

fn drop_and_check_clean(mut daemon: Daemon, lab: Lab) {
    let iface = lab.edge_if.clone();
    let log = daemon.stop();
    assert!(log.contains("detached"), "daemon log:\n{log}");
    assert!(!sigwall::loader::pin_dir(&iface).exists(), "pins left behind");
    let (ipx, edge) = (lab.ipx_ns.clone(), lab.edge_ns.clone());
    drop(lab);
    let list = std::process::Command::new("ip").args(["netns", "list"]).output().unwrap();
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(!list.contains(&ipx) && !list.contains(&edge), "namespaces left behind: {list}");
}

#[test]
fn monitor_mode_passes_everything_and_counts_monitored() {
    let lab = Lab::new();
    let dir = tempdir();
    let daemon = Daemon::start(&lab, &sigwall_bin(), &write_policy(&dir, POLICY), &["--mode", "monitor"]);
    let cap = lab.capture();
    let sent = send_mix(&lab, 10);
    let got = count(&cap.finish(Duration::from_millis(500), Duration::from_secs(10)));
    let mut would_drop = 0;
    for (f, net, class) in &sent.frames {
        assert_eq!(got.get(f).copied().unwrap_or(0), 1, "monitor mode lost a frame from {net} ({class:?})");
        if !allowed(net, *class) {
            would_drop += 1;
        }
    }
    let s = daemon.stats();
    assert_eq!(s.reason(Reason::Monitored), would_drop);
    assert_eq!(s.reason(Reason::Allowed), sent.frames.len() as u64 - would_drop);
    assert_eq!(s.peers.iter().map(|p| p.dropped).sum::<u64>(), 0);
    drop_and_check_clean(daemon, lab);
}

#[test]
fn rate_limit_holds_within_ten_percent() {
    const RATE: f64 = 2000.0;
    const BURST: f64 = 2000.0; // one second's worth, the default
    let lab = Lab::new();
    let dir = tempdir();
    let daemon = Daemon::start(&lab, &sigwall_bin(), &write_policy(&dir, POLICY), &[]);
    let tx = lab.sender();
    // 10,000 pps for 3 s from the limited peer, paced in 1 ms steps of 10 frames; bounded both
    // in count (30,000) and in time (10 s).
    let frames: Vec<Vec<u8>> = (0..10u16)
        .map(|i| {
            let src: IpAddr = format!("198.18.30.{}", i + 1).parse().unwrap();
            Frame::new(
                src,
                dst(false),
                L4::Udp { sport: 2152, dport: 2152, payload: packets::gtpu(i as u32, &packets::inner_ipv4_udp()) },
            )
            .bytes()
        })
        .collect();
    let start = Instant::now();
    let mut sent = 0u64;
    let mut last = start;
    for step in 0..3000u32 {
        let due = start + Duration::from_millis(step as u64);
        while Instant::now() < due {
            std::hint::spin_loop();
        }
        for f in &frames {
            tx.send(f);
            sent += 1;
        }
        last = Instant::now();
        if start.elapsed() > Duration::from_secs(10) {
            break;
        }
    }
    let span = last.duration_since(start).as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    let s = daemon.stats();
    let allowed = s.cell(Reason::Allowed, Class::GtpU) as f64;
    let limited = s.cell(Reason::RateLimited, Class::GtpU);
    assert_eq!(allowed as u64 + limited, sent, "every frame counted once");
    let expected = BURST + RATE * span;
    let err = (allowed - expected).abs() / expected;
    eprintln!(
        "rate limit: sent {sent} in {span:.3} s, allowed {allowed}, expected {expected:.0}, error {:.2}%",
        err * 100.0
    );
    assert!(err < 0.10, "allowed {allowed} vs expected {expected:.0}: {:.1}% off", err * 100.0);
    drop_and_check_clean(daemon, lab);
}

#[test]
fn operator_errors_change_nothing() {
    let lab = Lab::new();
    let dir = tempdir();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[peer]]\nname = \"a\"\nprefixes = [\"198.18.0.0/33\"]\nallow = [\"gtp-c\"]\n").unwrap();
    let out = lab
        .edge_command(sigwall_bin().to_str().unwrap())
        .args(["run", "--iface", &lab.edge_if, "--policy"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.toml:3:"), "{err}");
    assert!(!sigwall::loader::pin_dir(&lab.edge_if).exists());
    assert!(!lab.xdp_attached(), "nothing attached after a rejected policy");

    let good = write_policy(&dir, POLICY);
    let out = lab
        .edge_command(sigwall_bin().to_str().unwrap())
        .args(["run", "--iface", "nosuchif0", "--policy"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("interface \"nosuchif0\" not found"));

    // Another XDP program already attached: sigwall refuses and leaves it in place.
    let daemon = Daemon::start(&lab, &sigwall_bin(), &good, &[]);
    let out = lab
        .edge_command(sigwall_bin().to_str().unwrap())
        .args(["run", "--iface", &lab.edge_if, "--policy"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another sigwall is running"), "{err}");
    assert!(sigwall::loader::pin_dir(&lab.edge_if).exists(), "the running instance's pins were touched");

    let out = std::process::Command::new(sigwall_bin()).args(["stats", "--iface", "nosuchif0"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not attached"));
    drop_and_check_clean(daemon, lab);
}

/// Frames the sending veth end could not hand to its peer (the receiving ring full): lost
/// before any XDP program, counted by the kernel as the sender's tx_dropped.
fn veth_tx_dropped(lab: &Lab) -> u64 {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.ipx_ns, "cat", &format!("/sys/class/net/{}/statistics/tx_dropped", lab.ipx_if)])
        .output()
        .expect("ip netns exec");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0)
}

/// The first-pass evasions of `../shared/docs/evasion-review.md` (C2: seven IPv6 Destination
/// Options headers; H9: three stacked priority tags; AH and Mobility headers; M1: a Diameter
/// source port aimed at SSH) sent over the veth pair from a source in no peer and from a peer:
/// none arrives, each is counted `unclassifiable`. The negative controls (the same signaling
/// behind six Destination Options headers, and plain) from the allowed peer all arrive.
#[test]
fn evasion_recipes_no_longer_cross() {
    let lab = Lab::new();
    let dir = tempdir();
    // The first pass alone: the control messages are M3UA whose parameters this test does not
    // keep consistent (it appends a sequence number to tell them apart), so deep inspection
    // finds them undecodable and, in enforce mode, rightly blocks their flow. Whether that
    // block lands before the flow's next control frame is a race between the daemon and the
    // sender (a CI run of 72a5ad0 lost the race once the engine got faster).
    let policy = format!("{POLICY}\n[inspect]\nenabled = false\n");
    let daemon = Daemon::start(&lab, &sigwall_bin(), &write_policy(&dir, &policy), &[]);
    let cap = lab.capture();
    let tx = lab.sender();
    let m3ua = |seq: u16| L4::Sctp {
        sport: 2905,
        dport: 2905,
        chunks: vec![packets::data_chunk(3, &{
            let mut m = packets::m3ua_data();
            m.extend_from_slice(&[0, 0, (seq >> 8) as u8, seq as u8]);
            m[7] += 4;
            m
        })],
    };
    let (mut evasions, mut controls) = (Vec::new(), Vec::new());
    for seq in 0..20u16 {
        for net in ["x", "a"] {
            let v6 = peer_src(net, true, seq + 1);
            let v4 = peer_src(net, false, seq + 1);
            evasions.push(Frame::new(v6, dst(true), m3ua(seq)).with_ipv6_ext(&[60; 7]).bytes());
            evasions.push(Frame::new(v6, dst(true), m3ua(seq)).with_ipv6_ext(&[51]).bytes());
            evasions.push(Frame::new(v6, dst(true), m3ua(seq)).with_ipv6_ext(&[60, 135]).bytes());
            for src in [v4, v6] {
                let mut tagged = Frame::new(src, dst(src.is_ipv6()), m3ua(seq)).vlans(&[0x8100; 3]).bytes();
                for t in 0..3 {
                    // Priority tags (VID 0), which Linux strips one after the other.
                    tagged[14 + 4 * t..16 + 4 * t].copy_from_slice(&[0, 0]);
                }
                evasions.push(tagged);
                let ssh =
                    L4::Tcp { sport: 3868, dport: 22, payload: packets::diameter_message(316, 16777251 + seq as u32) };
                evasions.push(Frame::new(src, dst(src.is_ipv6()), ssh).bytes());
            }
        }
        let a6 = peer_src("a", true, seq + 1);
        controls.push(Frame::new(a6, dst(true), m3ua(seq)).with_ipv6_ext(&[60; 6]).bytes());
        controls.push(Frame::new(a6, dst(true), m3ua(seq)).bytes());
        controls.push(Frame::new(peer_src("a", false, seq + 1), dst(false), m3ua(seq)).bytes());
    }
    let refused_before = veth_tx_dropped(&lab);
    // Bursts of 32 then 2 ms: well inside the receiving veth's 256-frame ring even when its
    // NAPI runs late on a loaded machine (a CI run once lost a control frame with bursts of 64).
    for (i, f) in evasions.iter().chain(&controls).enumerate() {
        tx.send(f);
        if i % 32 == 31 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let got = count(&cap.finish(Duration::from_millis(500), Duration::from_secs(10)));
    for f in &evasions {
        assert_eq!(got.get(f).copied().unwrap_or(0), 0, "an evasion crossed: {:02x?}", &f[..f.len().min(80)]);
    }
    let refused = veth_tx_dropped(&lab) - refused_before;
    let first_pass: Vec<(Reason, u64)> = {
        let s = daemon.stats();
        Reason::ALL.iter().map(|r| (*r, s.reason(*r))).filter(|x| x.1 > 0).collect()
    };
    for f in &controls {
        assert_eq!(
            got.get(f).copied().unwrap_or(0),
            1,
            "a control frame did not arrive ({refused} frames refused by the veth before any program; first pass {first_pass:?}): {:02x?}",
            &f[..80]
        );
    }
    let s = daemon.stats();
    let reasons: Vec<(Reason, u64)> = Reason::ALL.iter().map(|r| (*r, s.reason(*r))).filter(|x| x.1 > 0).collect();
    assert_eq!(s.reason(Reason::Unclassifiable), evasions.len() as u64, "{reasons:?}");
    assert_eq!(s.reason(Reason::Allowed), controls.len() as u64);
    drop_and_check_clean(daemon, lab);
}
