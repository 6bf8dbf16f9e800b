//! In-path mode (issue 9) on three namespaces: interconnect (`ic`) -> sigwall's two ports ->
//! core. `sigwall run --iface A --forward-to B`: what the first pass passes on A leaves by B,
//! what arrives on B leaves by A, and what the first pass drops never reaches the core. The
//! hosts at both ends use their own kernel stacks (ARP, ICMP, UDP sockets), so a frame counts
//! as crossed only if the receiving kernel took it. Needs root.

use std::{
    net::UdpSocket,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use filter_common::{Class, Reason};
use filter_testkit::{
    daemon::Daemon,
    netns::{self, CORE_ADDR, CORE_ADDR6, IC_PARTNER, IC_PARTNER6, IC_UNKNOWN, InpathLab, in_netns},
    packets, sigwall_bin,
};

const POLICY: &str = r#"
[defaults]
mode = "enforce"
unknown_peer = "drop"
non_signaling = "pass"

[[peer]]
name = "partner"
prefixes = ["198.18.1.10/32", "2001:db8:1::10/128"]
allow = ["gtp-c", "gtp-u", "diameter", "sigtran"]
inspect = "none"
"#;

fn write_policy(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("policy.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// A UDP socket bound to `addr` inside namespace `ns`, with a short receive timeout.
fn udp(ns: &str, addr: &str) -> UdpSocket {
    let addr = addr.to_string();
    let s = in_netns(ns, move || UdpSocket::bind(&addr).unwrap_or_else(|e| panic!("bind {addr}: {e}")));
    s.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    s
}

/// Every datagram `s` receives until it has been quiet for its timeout (at most 50).
fn drain(s: &UdpSocket) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 2048];
    while out.len() < 50 {
        match s.recv(&mut buf) {
            Ok(n) => out.push(buf[..n].to_vec()),
            Err(_) => break,
        }
    }
    out
}

fn start(lab: &InpathLab, policy: &Path) -> Daemon {
    Daemon::start(&lab.lab, &sigwall_bin(), policy, &["--forward-to", &lab.fwd_if])
}

/// The bump in the wire: ARP and ICMP cross (one L2 segment), an allowed peer's GTP-C reaches
/// a UDP socket at the core over IPv4 and IPv6 (ND crosses too), a source in no peer is
/// dropped and counted, and the core's traffic towards the interconnect crosses, counted.
#[test]
fn bump_in_the_wire_forwards_allowed_traffic_both_ways() {
    let lab = InpathLab::new();
    let dir = filter_testkit::tempdir("inpath");
    let policy = write_policy(dir.path(), POLICY);
    let d = start(&lab, &policy);

    // ARP (a broadcast, then the reply) and ICMP echo, both directions of the segment.
    let ic = lab.lab.ipx_ns.clone();
    assert!((0..3).any(|_| netns::ping(&ic, CORE_ADDR, Duration::from_secs(1))), "ping ic -> core");
    assert!(netns::ping(&lab.core_ns, IC_PARTNER, Duration::from_secs(1)), "ping core -> ic");

    let core = udp(&lab.core_ns, &format!("{CORE_ADDR}:2123"));
    let core6 = udp(&lab.core_ns, &format!("[{CORE_ADDR6}]:2123"));
    let partner = udp(&ic, &format!("{IC_PARTNER}:2123"));
    let partner6 = udp(&ic, &format!("[{IC_PARTNER6}]:2123"));
    let stranger = udp(&ic, &format!("{IC_UNKNOWN}:2123"));

    let echo = packets::gtpv2c(1, 0, 0x11, &[3, 0, 1, 0, 7]);
    let from_stranger = packets::gtpv2c(1, 0, 0x22, &[3, 0, 1, 0, 7]);
    partner.send_to(&echo, format!("{CORE_ADDR}:2123")).unwrap();
    stranger.send_to(&from_stranger, format!("{CORE_ADDR}:2123")).unwrap();
    let got = drain(&core);
    assert_eq!(got, vec![echo.clone()], "the partner's echo crosses byte for byte, the stranger's does not");

    // IPv6: neighbour discovery crosses, then the datagram.
    partner6.send_to(&echo, format!("[{CORE_ADDR6}]:2123")).unwrap();
    assert_eq!(drain(&core6), vec![echo.clone()], "IPv6 (after ND) crosses");

    // Core -> interconnect: the answer comes back through B -> A, unjudged.
    let answer = packets::gtpv2c(2, 0, 0x11, &[3, 0, 1, 0, 7]);
    core.send_to(&answer, format!("{IC_PARTNER}:2123")).unwrap();
    assert_eq!(drain(&partner), vec![answer], "the core's answer crosses back");

    let s = d.stats();
    assert_eq!(s.cell(Reason::NotAllowlisted, Class::GtpC), 1, "the stranger's datagram, counted");
    assert_eq!(s.cell(Reason::Allowed, Class::GtpC), 2);
    assert!(s.inpath("forwarded") >= 2 + 2, "forwarded: {:?}", s.inpath);
    assert!(s.inpath("from_core") >= 3, "from_core: {:?}", s.inpath);
    assert_eq!(s.inpath("no_port"), 0);
    let st = Command::new(sigwall_bin())
        .args(["stats", "--iface", &lab.lab.edge_if, "--json"])
        .output()
        .expect("sigwall stats");
    assert!(st.status.success(), "{}", String::from_utf8_lossy(&st.stderr));
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert!(v["inpath"]["forwarded"]["packets"].as_u64().unwrap() >= 4, "{v}");
    drop(d);
}

/// Bad `--forward-to` values are refused before anything is attached, with what is wrong.
#[test]
fn forward_to_is_checked() {
    let lab = InpathLab::new();
    let dir = filter_testkit::tempdir("inpath-cli");
    let policy = write_policy(dir.path(), POLICY);
    for (to, want) in [(lab.lab.edge_if.as_str(), "the same interface as --iface"), ("swnosuch0", "not found")] {
        let out = lab
            .lab
            .edge_command(sigwall_bin().to_str().unwrap())
            .args(["run", "--iface", &lab.lab.edge_if, "--forward-to", to, "--policy"])
            .arg(&policy)
            .args(["--run-dir", dir.path().to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(want), "--forward-to {to}: {err}");
        assert!(!sigwall::loader::pins_present(&lab.lab.edge_if), "nothing attached");
    }
}
