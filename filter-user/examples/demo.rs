//! `cargo xtask demo`: sigwall on a veth topology it builds and removes.
//!
//! ipx namespace (roaming partners and strangers)  ──veth──  edge namespace (sigwall, native XDP)
//!
//! Sends allowed and forbidden SIGTRAN, Diameter, GTP-C and GTP-U from partners and unknown
//! sources, then prints `sigwall stats` for the edge interface.
//!
//! Then the in-path scene (issue 9): interconnect namespace ──veth── sigwall (ports A and B)
//! ──veth── core namespace, `sigwall run --iface A --forward-to B`. A live SCTP association
//! (the userspace endpoints of `tests/integration/attacks/sctp_peer.py`, scapy and pycrate)
//! carries an anyTimeInterrogation between legitimate MAP messages: the ATI reaches the HLR
//! neutralized (operation 127, which it rejects), the messages after it pass unchanged, and the
//! association stays up.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use filter_testkit::{
    daemon::Daemon,
    netns::{CORE_ADDR, IC_PARTNER, InpathLab, Lab},
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

    if let Err(e) = inpath_scene(&sigwall) {
        eprintln!("\nthe in-path scene failed: {e}");
        std::process::exit(1);
    }
}

const INPATH_POLICY: &str = r#"# in-path demo policy: the partner's signaling is judged before it is delivered
[defaults]
mode = "enforce"
unknown_peer = "drop"

[inspect]
home_imsi_prefixes = ["00101"]
home_gt_prefixes = ["35191"]
# A blocked message also blocks, for block_ttl_s, the subscriber it targets: the partner's
# node (its calling GT, the default identity) carries other subscribers' legitimate traffic.
block_identity = "imsi"

[[peer]]
name = "partner"
prefixes = ["198.18.1.10/32"]
allow = ["sigtran", "diameter", "gtp-c", "gtp-u"]
gt_prefixes = ["4179"]
inspect = "all"
"#;

/// The attack scripts: the live SCTP endpoints and the independent encoders.
fn attacks_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/integration/attacks")
}

/// A child process killed and reaped when dropped (also on an early return).
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `python3 <script> <args>` (no network), its stdout; stdin from `input`.
fn python(script: &str, args: &[&str], input: &str) -> Result<String, String> {
    use std::io::Write as _;
    let mut c = Command::new("python3")
        .arg(attacks_dir().join(script))
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("python3: {e} (cargo xtask setup installs scapy and pycrate)"))?;
    c.stdin.take().expect("stdin").write_all(input.as_bytes()).map_err(|e| e.to_string())?;
    let o = c.wait_with_output().map_err(|e| e.to_string())?;
    if !o.status.success() {
        return Err(format!("{script} {args:?}: {}", String::from_utf8_lossy(&o.stderr)));
    }
    Ok(String::from_utf8_lossy(&o.stdout).into_owned())
}

fn map_name(op: u64) -> &'static str {
    match op {
        2 => "updateLocation",
        56 => "sendAuthenticationInfo",
        71 => "anyTimeInterrogation",
        127 => "an operation no node implements",
        _ => "?",
    }
}

fn inpath_scene(sigwall: &Path) -> Result<(), String> {
    println!("\n\n== in-path scene: sigwall as a bump in the wire between the interconnect and the core");
    let lab = InpathLab::new();
    println!("   interconnect namespace {} (the partner's STP, {IC_PARTNER})", lab.lab.ipx_ns);
    println!(
        "   sigwall namespace      {} (port A {} towards the interconnect, port B {} towards the core)",
        lab.lab.edge_ns, lab.lab.edge_if, lab.fwd_if
    );
    println!("   core namespace         {} (our STP/HLR, {CORE_ADDR})", lab.core_ns);
    let dir = std::env::temp_dir().join(format!("sigwall-demo-inpath-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let result = inpath_scene_in(sigwall, &lab, &dir);
    let (ic, sw, core) = (lab.lab.ipx_ns.clone(), lab.lab.edge_ns.clone(), lab.core_ns.clone());
    drop(lab);
    let _ = std::fs::remove_dir_all(&dir);
    println!("\n== removed namespaces {ic}, {sw} and {core} (and both veth pairs), pins and {}", dir.display());
    result
}

fn inpath_scene_in(sigwall: &Path, lab: &InpathLab, dir: &Path) -> Result<(), String> {
    let policy = dir.join("inpath.toml");
    std::fs::write(&policy, INPATH_POLICY).map_err(|e| e.to_string())?;
    println!("\n== policy\n{INPATH_POLICY}");
    println!("== sigwall run --iface {} --forward-to {} --policy inpath.toml", lab.lab.edge_if, lab.fwd_if);
    let mut daemon = Daemon::start(&lab.lab, sigwall, &policy, &["--forward-to", &lab.fwd_if]);

    // The messages: an anyTimeInterrogation from the corpus (ss7.py: pycrate), legitimate
    // updateLocation / sendAuthenticationInfo (sctp_peer.py legit: pycrate).
    let corpus = python("ss7.py", &[], "")?;
    let ati_frame = corpus
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["case"] == "ss7-ati")
        .and_then(|v| v["frames"][0].as_str().map(str::to_string))
        .ok_or("ss7.py has no ss7-ati case")?;
    let ati_chunks: serde_json::Value =
        serde_json::from_str(python("sctp_peer.py", &["chunks"], &(ati_frame + "\n"))?.trim())
            .map_err(|e| e.to_string())?;
    let legit: Vec<String> =
        python("sctp_peer.py", &["legit", "--count", "4"], "")?.lines().map(str::to_string).collect();
    let one = |label: &str, data: &str| serde_json::json!({"label": label, "packets": [[{"stream": 1, "ppid": 3, "begin": true, "end": true, "data": data}]]});
    // What the plan sends, in order: legit[0..4] alternate updateLocation and sendAuthenticationInfo.
    const SENT_OPS: [u64; 5] = [2, 71, 56, 2, 56];
    let plan = serde_json::json!([
        one("legitimate", &legit[0]),
        {"label": "attack", "packets": [ati_chunks]},
        one("legitimate", &legit[1]),
        one("legitimate", &legit[2]),
        one("legitimate", &legit[3]),
    ]);
    let plan_file = dir.join("plan.json");
    std::fs::write(&plan_file, plan.to_string()).map_err(|e| e.to_string())?;

    // The core: an SCTP endpoint that logs (and decodes with pycrate) what it receives.
    let (log, ready) = (dir.join("core.jsonl"), dir.join("core.ready"));
    let _server = Reaped(
        lab.core_command("python3")
            .arg(attacks_dir().join("sctp_peer.py"))
            .args(["server", "--addr", CORE_ADDR, "--seconds", "60", "--log"])
            .arg(&log)
            .arg("--ready")
            .arg(&ready)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .spawn()
            .map_err(|e| format!("python3: {e}"))?,
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready.exists() {
        if Instant::now() > deadline {
            return Err("the core's SCTP endpoint did not start".into());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = dir.join("client.json");
    let st = lab
        .lab
        .ipx_command("timeout")
        .args(["60", "python3"])
        .arg(attacks_dir().join("sctp_peer.py"))
        .args(["client", "--src", IC_PARTNER, "--dst", CORE_ADDR, "--sport", "2905", "--plan"])
        .arg(&plan_file)
        .arg("--out")
        .arg(&out)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .status()
        .map_err(|e| format!("python3: {e}"))?;
    if !st.success() {
        return Err(format!("the partner's SCTP endpoint failed: {st}"));
    }
    let client: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&out).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    let core: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .map_err(|e| e.to_string())?
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();

    println!("\n== a live SCTP association {IC_PARTNER}:2905 -> {CORE_ADDR}:2905 through sigwall");
    println!(
        "   INIT, INIT-ACK, COOKIE-ECHO, COOKIE-ACK: {}",
        if client["established"] == true { "established" } else { "NOT established" }
    );
    let received: Vec<&serde_json::Value> = core.iter().filter(|e| e["ev"] == "message").collect();
    let mut ok = client["established"] == true;
    for (i, step) in client["steps"].as_array().into_iter().flatten().enumerate() {
        let chunk = &step["chunks"][0];
        let sent_hex = chunk["data"].as_str().unwrap_or("");
        let sent_op = SENT_OPS.get(i).copied().unwrap_or(0);
        let at_core = received.iter().find(|m| m["tsns"][0] == chunk["tsn"]);
        let (op, same) = match at_core {
            Some(m) => (m["map"][0][1].as_u64(), m["data"].as_str() == Some(sent_hex)),
            None => (None, false),
        };
        let verdict = match (step["label"].as_str(), op, same) {
            (Some("attack"), Some(127), _) => {
                "NEUTRALIZED in path: one octet rewritten, CRC32c recomputed; an HLR answers it with a TCAP reject, nobody is located"
                    .to_string()
            }
            (_, Some(o), true) if o == sent_op => "passed, byte for byte".to_string(),
            (_, None, _) => {
                ok = false;
                "LOST".to_string()
            }
            (_, o, _) => {
                ok = false;
                format!("arrived as operation {o:?}, not as expected")
            }
        };
        let label = if step["label"] == "attack" { "attack    " } else { "legitimate" };
        println!(
            "   TSN {} {label} {:<23} -> the core's HLR sees {:<40} {verdict}",
            chunk["tsn"],
            map_name(sent_op),
            op.map_or("nothing".to_string(), |o| format!("{} ({o})", map_name(o))),
        );
    }
    let up = client["heartbeat_ack"] == true && client["shutdown_ack"] == true;
    println!(
        "   HEARTBEAT answered and SHUTDOWN orderly: {}",
        if up { "the association stayed up the whole time" } else { "the association did NOT survive" }
    );
    ok &= up;

    println!("\n== sigwall events (what was stopped, and how)");
    let ev =
        Command::new(sigwall).arg("events").arg("--socket").arg(daemon.socket()).output().map_err(|e| e.to_string())?;
    for line in String::from_utf8_lossy(&ev.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
        let f = |v: &serde_json::Value| v.as_str().map_or(v.to_string(), str::to_string);
        println!(
            "   peer {} rule {}: {} ({}) for MSISDN {} from calling GT {} -> in path: {} ({})",
            f(&v["peer"]),
            f(&v["rule"]),
            f(&v["fields"]["map_op_name"]),
            v["fields"]["map_op"],
            f(&v["fields"]["msisdn"]),
            f(&v["fields"]["calling_gt"]),
            f(&v["inpath"]),
            f(&v["technique"][0])
        );
    }
    println!("\n== sigwall stats --iface {} (in-path counters)", lab.lab.edge_if);
    let st = Command::new(sigwall).args(["stats", "--iface", &lab.lab.edge_if]).output().map_err(|e| e.to_string())?;
    for line in String::from_utf8_lossy(&st.stdout).lines() {
        println!("   {line}");
    }
    println!("   (to_daemon: the partner's signaling, each packet judged before it left port B;");
    println!(
        "    from_core: the core's INIT-ACK, SACKs and answers, forwarded by XDP; no flow_blocked: nothing was cut)"
    );
    let log = daemon.stop();
    for line in log.lines().filter(|l| l.contains("attached") || l.contains("detached")) {
        println!("   {line}");
    }
    if ok { Ok(()) } else { Err("the in-path scene did not go as it should (see above)".into()) }
}
