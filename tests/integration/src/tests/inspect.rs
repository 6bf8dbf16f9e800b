//! Deep inspection end to end on a veth lab: flagged packets reach the daemon through the ring
//! buffer, a rule fires, the event is reported, and the rest of the flow is dropped in XDP
//! with `flow_blocked` (or the peer with `peer_blocked`). Needs root.

use std::{
    net::IpAddr,
    process::Command,
    time::{Duration, Instant},
};

use filter_common::{Class, Reason};
use filter_testkit::{
    daemon::Daemon,
    netns::Lab,
    packets::{self, Frame, L4},
    sigwall_bin,
};
use serde_json::Value;

const POLICY: &str = r#"
[inspect]
home_imsi_prefixes = ["00101"]
home_realms = ["epc.mnc001.mcc001.3gppnetwork.org"]
block_ttl_s = 60

[[inspect.rule]]
name = "gtpc-message-not-allowed"
action = "block-peer"
ttl_s = 2

[[peer]]
name = "partner"
prefixes = ["198.18.1.0/24"]
allow = ["sigtran", "diameter", "gtp-c", "gtp-u"]
inspect_gtpu = "all"

[[peer]]
name = "trial"
prefixes = ["198.18.2.0/24"]
allow = ["diameter"]
mode = "monitor"
"#;

fn frame(src: &str, l4: L4) -> Vec<u8> {
    let src: IpAddr = src.parse().unwrap();
    Frame::new(src, "198.18.0.2".parse().unwrap(), l4).bytes()
}

fn events(d: &Daemon, want: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out =
            Command::new(sigwall_bin()).args(["events", "--socket", d.socket().to_str().unwrap()]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let ev: Vec<Value> =
            String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if ev.len() >= want || Instant::now() > deadline {
            return ev;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn findings_block_flows_and_peers_in_xdp() {
    let lab = Lab::new();
    let dir = std::env::temp_dir().join(format!("sigwall-inspect-{}", lab.edge_if));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, POLICY).unwrap();
    let pcap = dir.join("flagged.pcap");
    let d = Daemon::start(
        &lab,
        &sigwall_bin(),
        &policy,
        &["--pcap", pcap.to_str().unwrap(), "--events", dir.join("events.jsonl").to_str().unwrap()],
    );
    let tx = lab.sender();

    // 1. A Diameter PLR (location request) over TCP from the partner: the first segment passes
    //    (XDP allowed it before inspection saw it), the flow is then blocked.
    // The same request every time: the flow, not the message, is what gets blocked.
    let plr = |_seq: u16| {
        frame(
            "198.18.1.5",
            L4::Tcp { sport: 40000, dport: 3868, payload: packets::diameter_message(8388620, 16777255) },
        )
    };
    tx.send(&plr(0));
    let ev = events(&d, 1);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["rule"], "diameter-command-blocked");
    assert_eq!(ev[0]["action"], "block-flow");
    assert_eq!(ev[0]["peer"], "partner");
    assert_eq!(ev[0]["fields"]["command"], "PLR");
    assert_eq!(ev[0]["flow"]["sport"], 40000);
    for i in 1..=5 {
        tx.send(&plr(i));
    }
    // A different flow of the same peer is untouched.
    let ulr =
        frame("198.18.1.5", L4::Tcp { sport: 40001, dport: 3868, payload: packets::diameter_message(316, 16777251) });
    tx.send(&ulr);
    std::thread::sleep(Duration::from_millis(300));
    let s = d.stats();
    assert_eq!(s.cell(Reason::FlowBlocked, Class::Diameter), 5, "rest of the flow dropped in XDP");
    assert_eq!(s.cell(Reason::Allowed, Class::Diameter), 2);

    // 2. GTPv2 Context Request from the partner: block-peer for 2 s, everything from the peer
    //    is dropped with peer_blocked, then the quarantine expires.
    tx.send(&frame("198.18.1.6", L4::Udp { sport: 2123, dport: 2123, payload: packets::gtpv2c(130, 0x77, 1, &[]) }));
    let ev = events(&d, 2);
    assert_eq!(ev.len(), 2, "{ev:?}");
    assert_eq!(ev[1]["rule"], "gtpc-message-not-allowed");
    assert_eq!(ev[1]["action"], "block-peer");
    std::thread::sleep(Duration::from_millis(200));
    let gtpu = |s: &str, teid: u32| {
        frame(s, L4::Udp { sport: 2152, dport: 2152, payload: packets::gtpu(teid, &packets::inner_ipv4_udp()) })
    };
    tx.send(&gtpu("198.18.1.9", 1));
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(d.stats().cell(Reason::PeerBlocked, Class::GtpU), 1);
    std::thread::sleep(Duration::from_millis(2500));
    tx.send(&gtpu("198.18.1.9", 2));
    std::thread::sleep(Duration::from_millis(200));
    let s = d.stats();
    assert_eq!(s.cell(Reason::PeerBlocked, Class::GtpU), 1, "quarantine expired");
    assert_eq!(s.cell(Reason::Allowed, Class::GtpU), 1);

    // 3. GTP-in-GTP on GTP-U (inspected for this peer): flow blocked.
    let inner = Frame::new(
        "198.18.200.1".parse().unwrap(),
        "198.18.200.2".parse().unwrap(),
        L4::Udp { sport: 2123, dport: 2123, payload: packets::gtpv2c_echo() },
    )
    .bytes()[14..]
        .to_vec();
    tx.send(&frame("198.18.1.7", L4::Udp { sport: 2152, dport: 2152, payload: packets::gtpu(5, &inner) }));
    let ev = events(&d, 3);
    assert_eq!(ev[2]["rule"], "gtpu-gtp-in-gtp");

    // 4. Monitor-mode peer: the same PLR is only an alert; its flow keeps flowing.
    let plr_trial = frame(
        "198.18.2.5",
        L4::Tcp { sport: 40000, dport: 3868, payload: packets::diameter_message(8388620, 16777255) },
    );
    tx.send(&plr_trial);
    let ev = events(&d, 4);
    assert_eq!(ev[3]["peer"], "trial");
    assert_eq!(ev[3]["action"], "alert");
    assert_eq!(ev[3]["configured_action"], "block");
    tx.send(&plr_trial);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(d.stats().peer("trial").unwrap().dropped, 0);

    // Counters through the control socket; the pcap decodes in tshark.
    let st = sigwall::control::call(&d.socket(), sigwall::control::Command::Stats, Duration::from_secs(5)).unwrap();
    // partner once (then its flow is blocked), the monitored trial peer once: its second copy
    // has the same TCP sequence number and bytes, a retransmission the receiver does not read
    // twice (inspection reassembles TCP by sequence number).
    assert_eq!(st["inspect"]["rule_hits"]["diameter-command-blocked"], 2);
    assert!(st["inspect"]["flagged"].as_u64().unwrap() >= 5, "{st}");
    assert_eq!(st["inspect"]["inspect_overflow"], 0);
    let out = Command::new("tshark")
        .args(["-r", pcap.to_str().unwrap(), "-T", "fields", "-e", "diameter.cmd.code"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let codes = String::from_utf8_lossy(&out.stdout);
    assert!(codes.lines().filter(|l| l.trim() == "8388620").count() >= 2, "tshark reads the pcap: {codes}");
    let logged = std::fs::read_to_string(dir.join("events.jsonl")).unwrap();
    assert_eq!(logged.lines().count(), 4, "{logged}");
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 10 item 5 and review C6 end to end: a peer whose copy budget is spent has its further
/// signaling dropped in XDP as `inspect_overload` (fail-closed, the default), a peer with
/// `on_overload = "fail-open"` has it passed uninspected, a third peer's traffic is untouched,
/// and the daemon reports each overloaded peer with an `inspection-overload` event saying what
/// was done and how many copies were not made.
#[test]
fn inspection_overload_fails_closed_per_peer_and_is_reported() {
    let lab = Lab::new();
    let dir = std::env::temp_dir().join(format!("sigwall-overload-{}", lab.edge_if));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(
        &policy,
        r#"
[[peer]]
name = "closed"
prefixes = ["198.18.3.0/24"]
allow = ["gtp-c"]
inspect_budget_pps = 1

[[peer]]
name = "open"
prefixes = ["198.18.4.0/24"]
allow = ["gtp-c"]
inspect_budget_pps = 1
on_overload = "fail-open"

[[peer]]
name = "calm"
prefixes = ["198.18.5.0/24"]
allow = ["gtp-c"]
inspect_budget_pps = 1
"#,
    )
    .unwrap();
    let d = Daemon::start(&lab, &sigwall_bin(), &policy, &[]);
    let tx = lab.sender();
    let echo = |src: &str| frame(src, L4::Udp { sport: 2123, dport: 2123, payload: packets::gtpv2c_echo() });
    // Ten back to back from each of two peers (a budget of 1/s with a burst of one: one copy);
    // one from the third.
    for _ in 0..10 {
        tx.send(&echo("198.18.3.1"));
        tx.send(&echo("198.18.4.1"));
    }
    tx.send(&echo("198.18.5.1"));
    let ev = events(&d, 2);
    let of =
        |peer: &str| ev.iter().find(|e| e["peer"] == peer).unwrap_or_else(|| panic!("no event for {peer}: {ev:#?}"));
    let (closed, open) = (of("closed"), of("open"));
    assert_eq!(closed["rule"], "inspection-overload");
    assert_eq!((closed["decision"].as_str(), closed["fields"]["copies_denied"].as_u64()), (Some("dropped"), Some(9)));
    assert_eq!(
        (open["decision"].as_str(), open["on_overload"].as_str()),
        (Some("passed uninspected"), Some("fail-open"))
    );
    assert_eq!(open["fields"]["copies_denied"], 9);
    assert!(ev.iter().all(|e| e["peer"] != "calm"), "{ev:#?}");
    let s = d.stats();
    let peer = |n: &str| s.peer(n).cloned().unwrap();
    assert_eq!((peer("closed").passed, peer("closed").dropped, peer("closed").copy_denied), (1, 9, 9));
    assert_eq!((peer("open").passed, peer("open").dropped, peer("open").copy_denied), (10, 0, 9));
    assert_eq!((peer("calm").passed, peer("calm").copied), (1, 1));
    assert_eq!(s.cell(Reason::InspectOverload, Class::GtpC), 9);
}

/// Tap mode (`sigwall run --tap`, a mirror port): whatever the policy says (here enforce, and a
/// peer in enforce mode), nothing is dropped or blocked: a source in no peer is counted as
/// `monitored` and passes, a Provide-Location request is reported as an alert (`monitor`: true)
/// and its flow keeps flowing; `status` says `deployment: tap`; `sigwall mode enforce` is
/// refused with a reason and changes nothing; `--tap` with `--forward-to` or `--mode enforce` is
/// refused before anything is attached.
#[test]
fn tap_mode_reports_and_never_blocks() {
    let lab = Lab::new();
    let dir = filter_testkit::tempdir("tap");
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, format!("[defaults]\nmode = \"enforce\"\nunknown_peer = \"drop\"\n{POLICY}")).unwrap();
    for bad in [&["--tap", "--forward-to", "lo"][..], &["--tap", "--mode", "enforce"]] {
        let out = Command::new(sigwall_bin())
            .args(["run", "--iface", "lo", "--policy", policy.to_str().unwrap()])
            .args(bad)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let d = Daemon::start(&lab, &sigwall_bin(), &policy, &["--tap"]);
    let sock = d.socket();
    let status = sigwall::control::call(&sock, sigwall::control::Command::Status, Duration::from_secs(5)).unwrap();
    assert_eq!((&status["deployment"], &status["mode"]), (&serde_json::json!("tap"), &serde_json::json!("monitor")));
    let tx = lab.sender();
    let plr = frame(
        "198.18.1.5",
        L4::Tcp { sport: 40000, dport: 3868, payload: packets::diameter_message(8388620, 16777255) },
    );
    for _ in 0..3 {
        tx.send(&plr);
        std::thread::sleep(Duration::from_millis(50));
    }
    let stranger = frame("198.18.9.9", L4::Udp { sport: 2123, dport: 2123, payload: packets::gtpv2c_echo() });
    tx.send(&stranger);
    let ev = events(&d, 1);
    assert!(!ev.is_empty(), "the PLR is reported");
    assert_eq!(ev[0]["rule"], "diameter-command-blocked");
    assert_eq!((&ev[0]["action"], &ev[0]["monitor"]), (&serde_json::json!("alert"), &serde_json::json!(true)));
    std::thread::sleep(Duration::from_millis(300));
    let s = d.stats();
    assert_eq!(s.cell(Reason::Allowed, Class::Diameter), 3, "the flow keeps flowing");
    assert_eq!(s.cell(Reason::FlowBlocked, Class::Diameter), 0);
    assert_eq!(s.reason(Reason::Monitored), 1, "the stranger would have been dropped");
    assert_eq!(s.peers.iter().map(|p| p.dropped).sum::<u64>(), 0);
    let out =
        Command::new(sigwall_bin()).args(["mode", "enforce", "--socket", sock.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tap mode"), "{}", String::from_utf8_lossy(&out.stderr));
    let status = sigwall::control::call(&sock, sigwall::control::Command::Status, Duration::from_secs(5)).unwrap();
    assert_eq!(status["mode"], "monitor");
}
