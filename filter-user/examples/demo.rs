//! `cargo xtask demo`: sigwall on a veth topology it builds and removes.
//!
//! ipx namespace (roaming partners and strangers)  ──veth──  edge namespace (sigwall, native XDP)
//!
//! Sends allowed and forbidden SIGTRAN, Diameter, GTP-C and GTP-U from partners and unknown
//! sources, then prints `sigwall stats` for the edge interface.

use std::{net::IpAddr, path::PathBuf, process::Command, time::Duration};

use filter_testkit::{
    daemon::Daemon,
    netns::Lab,
    packets::{self, Fragment, Frame, L4},
};

const POLICY: &str = r#"# demo policy (see README.md, "Policy file")
[defaults]
mode = "enforce"
unknown_peer = "drop"
non_signaling = "pass"

[[peer]]
name = "partner-a"            # full roaming partner
prefixes = ["198.18.10.0/24", "2001:db8:a::/48"]
allow = ["sigtran", "diameter", "gtp-c", "gtp-u"]

[[peer]]
name = "partner-b-data"       # data roaming only, rate limited
prefixes = ["198.18.20.0/24"]
allow = ["gtp-c", "gtp-u"]
rate_limit_pps = 200

[[peer]]
name = "partner-c-trial"      # new partner, observed before enforcing
prefixes = ["198.18.30.0/24"]
allow = ["diameter"]
mode = "monitor"
"#;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut sigwall = PathBuf::from("target/release/sigwall");
    while let Some(a) = args.next() {
        if a == "--sigwall" {
            sigwall = PathBuf::from(args.next().expect("--sigwall PATH"));
        }
    }

    println!("== building the lab: namespaces ipx and edge joined by a veth pair");
    let lab = Lab::new();
    println!("   ipx  namespace {} interface {}", lab.ipx_ns, lab.ipx_if);
    println!("   edge namespace {} interface {} (sigwall attaches here)", lab.edge_ns, lab.edge_if);
    for a in ["198.18.10.1/24", "198.18.20.1/24", "198.18.30.1/24", "198.19.66.6/16"] {
        let _ = Command::new("ip").args(["-n", &lab.ipx_ns, "addr", "add", a, "dev", &lab.ipx_if]).status();
    }

    let dir = std::env::temp_dir().join(format!("sigwall-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, POLICY).expect("write policy");
    println!("\n== policy\n{POLICY}");
    let out = Command::new(&sigwall).arg("check").arg(&policy).output().expect("sigwall check");
    print!("$ sigwall check policy.toml\n{}", String::from_utf8_lossy(&out.stdout));

    println!("\n== sigwall run --iface {} --policy policy.toml --xdp-mode native", lab.edge_if);
    let mut daemon = Daemon::start(&lab, &sigwall, &policy, &[]);

    let tx = lab.sender();
    let dst4: IpAddr = "198.18.0.2".parse().unwrap();
    let dst6: IpAddr = "2001:db8::2".parse().unwrap();
    let mix = |seq: u32| -> Vec<(&'static str, L4)> {
        vec![
            (
                "M3UA/MAP",
                // A whole MAP message (sendAuthenticationInfo, what a visited network asks for
                // a roamer), so that deep inspection has a real message to judge.
                L4::Sctp {
                    sport: 2905,
                    dport: 2905,
                    chunks: vec![packets::data_chunk(
                        3,
                        &packets::m3ua_sccp(&packets::tcap_begin_invoke(56, 14, 3, &packets::map_sai_arg())),
                    )],
                },
            ),
            (
                "Diameter/SCTP",
                L4::Sctp {
                    sport: 3868,
                    dport: 3868,
                    chunks: vec![packets::data_chunk(46, &packets::diameter_message(316, 16777251))],
                },
            ),
            (
                "Diameter/TCP",
                L4::Tcp { sport: 40000, dport: 3868, payload: packets::diameter_message(8388620, 16777255) },
            ),
            ("GTPv2-C", L4::Udp { sport: 2123, dport: 2123, payload: packets::gtpv2c(32, 0, seq, &[]) }),
            ("GTP-U", L4::Udp { sport: 2152, dport: 2152, payload: packets::gtpu(seq, &packets::inner_ipv4_udp()) }),
        ]
    };
    let sources: [(&str, IpAddr); 5] = [
        ("partner-a", "198.18.10.5".parse().unwrap()),
        ("partner-a v6", "2001:db8:a::5".parse().unwrap()),
        ("partner-b-data", "198.18.20.5".parse().unwrap()),
        ("partner-c-trial", "198.18.30.5".parse().unwrap()),
        ("unknown", "198.19.66.6".parse().unwrap()),
    ];
    let mut sent = 0;
    for seq in 0..50u32 {
        for (_, src) in &sources {
            for (_, l4) in mix(seq) {
                let dst = if src.is_ipv4() { dst4 } else { dst6 };
                tx.send(&Frame::new(*src, dst, l4).bytes());
                sent += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    // A burst from partner-b beyond its 200 pps (burst 200): part of it is rate limited.
    for seq in 0..600u32 {
        let l4 = L4::Udp { sport: 2152, dport: 2152, payload: packets::gtpu(seq, &packets::inner_ipv4_udp()) };
        tx.send(&Frame::new(sources[2].1, dst4, l4).bytes());
        sent += 1;
        if seq % 64 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // Broken and fragmented signaling from partner-a.
    let mut bad = packets::gtpv2c_echo();
    bad[3] += 9; // GTP length beyond the datagram
    tx.send(&Frame::new(sources[0].1, dst4, L4::Udp { sport: 2123, dport: 2123, payload: bad }).bytes());
    let frag =
        Frame::new(sources[0].1, dst4, L4::Udp { sport: 2152, dport: 2152, payload: packets::gtpu(1, &[0; 64]) })
            .fragment(Fragment::Later);
    tx.send(&frag.bytes());
    let frag =
        Frame::new(sources[4].1, dst4, L4::Udp { sport: 2152, dport: 2152, payload: packets::gtpu(1, &[0; 64]) })
            .fragment(Fragment::Later);
    tx.send(&frag.bytes());
    sent += 3;
    println!("   sent {sent} frames from {} sources", sources.len());
    std::thread::sleep(Duration::from_millis(300));

    println!("\n== sigwall stats --iface {}", lab.edge_if);
    let out = Command::new(&sigwall).args(["stats", "--iface", &lab.edge_if]).output().expect("sigwall stats");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    if !out.status.success() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
    }

    println!("\n== sigwall events (deep inspection; the PLRs over TCP are location requests, FS.19)");
    let out =
        Command::new(&sigwall).arg("events").arg("--socket").arg(daemon.socket()).output().expect("sigwall events");
    for line in String::from_utf8_lossy(&out.stdout).lines().take(3) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        println!(
            "   {} peer={} rule={} action={} {} {}:{} -> {}:{} command={}",
            v["seq"],
            v["peer"],
            v["rule"],
            v["action"],
            v["protocol"],
            v["flow"]["src"],
            v["flow"]["sport"],
            v["flow"]["dst"],
            v["flow"]["dport"],
            v["fields"]["command"]
        );
    }
    let n = String::from_utf8_lossy(&out.stdout).lines().count();
    println!("   ({n} events in all; the rest of each blocked flow was dropped in XDP as flow_blocked)");

    println!("\n== stopping sigwall and removing the lab");
    let log = daemon.stop();
    for line in log.lines().filter(|l| l.contains("attached") || l.contains("detached")) {
        println!("   {line}");
    }
    let (ipx, edge) = (lab.ipx_ns.clone(), lab.edge_ns.clone());
    drop(lab);
    let _ = std::fs::remove_dir_all(&dir);
    println!("   removed namespaces {ipx} and {edge} (and the veth pair), pins and {}", dir.display());
}
