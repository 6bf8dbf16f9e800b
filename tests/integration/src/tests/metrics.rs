//! The Prometheus endpoint scraped over HTTP and checked with `promtool check metrics`
//! (Debian package prometheus). Needs root.

use std::{
    io::{Read, Write},
    net::TcpStream,
    process::{Command, Stdio},
    time::Duration,
};

use filter_testkit::{
    daemon::Daemon,
    netns::{Lab, in_netns},
    packets::{self, Frame, L4},
    sigwall_bin,
};

const POLICY: &str = "[[peer]]\nname = \"partner\"\nprefixes = [\"198.18.1.0/24\"]\nallow = [\"gtp-u\"]\n";

fn scrape(ns: &str, path: &str) -> String {
    let path = path.to_string();
    in_netns(ns, move || {
        let mut s = TcpStream::connect("127.0.0.1:9469").expect("metrics endpoint");
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
}

#[test]
fn metrics_are_served_and_valid() {
    let lab = Lab::new();
    let dir = std::env::temp_dir().join(format!("sigwall-metrics-{}", lab.edge_if));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let d =
        Daemon::start(&lab, &sigwall_bin(), &policy, &["--metrics", "--log-format", "json", "--stats-interval", "1"]);
    let tx = lab.sender();
    // The frames are received in this thread's softirq: on one CPU, so the source cache's
    // counts below are exact.
    filter_testkit::stay_on_one_cpu();
    for (src, n) in [("198.18.1.5", 3), ("198.18.9.5", 2)] {
        for i in 0..n {
            let f = Frame::new(
                src.parse().unwrap(),
                "198.18.0.2".parse().unwrap(),
                L4::Udp { sport: 2152, dport: 2152, payload: packets::gtpu(i, &packets::inner_ipv4_udp()) },
            );
            tx.send(&f.bytes());
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let resp = scrape(&lab.edge_ns, "/metrics");
    let (head, body) = resp.split_once("\r\n\r\n").expect("HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    for line in [
        "sigwall_packets_total{reason=\"allowed\",class=\"gtp-u\"} 3",
        "sigwall_packets_total{reason=\"not_allowlisted\",class=\"gtp-u\"} 2",
        "sigwall_peer_packets_total{peer=\"partner\",action=\"pass\"} 3",
        "sigwall_peer_packets_total{peer=\"(unknown)\",action=\"drop\"} 2",
        "sigwall_policy_generation 1",
        "sigwall_policy_last_change_success 1",
        "sigwall_map_entries{map=\"peers_v4\"} 1",
        "sigwall_map_capacity{map=\"peers_v4\"} 1048576",
        "sigwall_inspect_overflow_total 0",
        "sigwall_inspect_rule_hits_total{rule=\"ss7-category1\"} 0",
    ] {
        assert!(body.lines().any(|l| l == line), "missing {line:?} in:\n{body}");
    }
    assert!(body.contains("sigwall_xdp_attach_info{iface=\""), "{body}");
    // Two sources, one CPU: each missed the source cache on its first frame and hit on the
    // others; their slots differ (6 and 208), so no partner's slot was kept against anyone.
    let value = |name: &str| -> u64 {
        let line =
            body.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name}:\n{body}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    assert_eq!(value("sigwall_source_cache_misses_total"), 2, "5 frames from 2 sources on one CPU:\n{body}");
    assert_eq!(value("sigwall_source_cache_kept_total"), 0, "{body}");
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus)");
    promtool.stdin.take().unwrap().write_all(body.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Only /metrics exists.
    assert!(scrape(&lab.edge_ns, "/").starts_with("HTTP/1.1 404"));
    // JSON logs: every line of the daemon's stderr is one JSON object with level and message.
    std::thread::sleep(Duration::from_millis(1200));
    let mut d = d;
    let log = d.log();
    assert!(log.lines().count() >= 2, "{log}");
    for line in log.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["msg"].is_string(), "{line}");
    }
    assert!(log.contains("allowed 3"), "the stats line is logged: {log}");
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}
