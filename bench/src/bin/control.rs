//! Control-path benchmark (part of `cargo xtask bench`): on a veth lab with `sigwall run`,
//! 1. `sigwall peer add` through the CLI, end to end (process start, socket, validation,
//!    generation write and flip, atomic persist, audit): p50/p99 over N runs;
//! 2. a full swap to a 100,000-prefix policy through `sigwall policy reload`: time from request
//!    to flip, and the packets the XDP program processed meanwhile (steady traffic from an
//!    allowed peer, none of which may be lost).

use std::{
    net::IpAddr,
    path::PathBuf,
    process::Command,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use clap::Parser;
use filter_common::{Class, Reason};
use filter_testkit::{
    daemon::Daemon,
    netns::Lab,
    packets::{self, Frame, L4},
};

const BASE: &str = r#"
[[peer]]
name = "steady"
prefixes = ["198.18.1.0/24"]
allow = ["gtp-u"]
"#;

/// The control path: `sigwall peer add` latency and a full policy swap under traffic.
#[derive(Parser)]
struct Args {
    /// `sigwall peer add` runs.
    #[arg(long, default_value_t = 1000)]
    runs: usize,
    /// Prefixes in the policy swapped in.
    #[arg(long, default_value_t = 100_000)]
    prefixes: usize,
    /// The `sigwall` binary to run (`cargo xtask bench` passes its release build).
    #[arg(long, default_value = "target/release/sigwall")]
    sigwall: PathBuf,
}

fn main() {
    let Args { runs, prefixes, sigwall } = Args::parse();
    let lab = Lab::new();
    let dir = std::env::temp_dir().join(format!("sigwall-bench-control-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let policy = dir.join("policy.toml");
    std::fs::write(&policy, BASE).unwrap();
    let daemon = Daemon::start(&lab, &sigwall, &policy, &[]);
    let sock = daemon.socket().display().to_string();

    // 1. peer add latency, end to end.
    let mut lat = Vec::with_capacity(runs);
    for i in 0..runs {
        let name = format!("p{i}");
        let prefix = format!("198.19.{}.{}/32", i / 256, i % 256);
        let t = Instant::now();
        let out = Command::new(&sigwall)
            .args(["peer", "add", &name, "--prefix", &prefix, "--allow", "gtp-c", "--socket", &sock])
            .output()
            .unwrap();
        lat.push(t.elapsed());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).saturating_sub(1).min(lat.len() - 1)];
    println!(
        "peer add via CLI, end to end, {runs} runs ({} peers at the end): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        runs + 1,
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        lat[lat.len() - 1].as_secs_f64() * 1e3
    );

    // 2. a 100,000-prefix swap under steady allowed traffic.
    let big = dir.join("big.toml");
    let mut text = String::from(BASE);
    let per_peer = 1000;
    for p in 0..prefixes.div_ceil(per_peer) {
        text += &format!("\n[[peer]]\nname = \"bulk{p}\"\nallow = [\"gtp-c\"]\nprefixes = [\n");
        for k in 0..per_peer.min(prefixes - p * per_peer) {
            let n = p * per_peer + k;
            // Host prefixes in 198.19.0.0/16 (up to 65,536) and 2001:db8:1::/48, alternating.
            if n % 2 == 0 && n / 2 < 65536 {
                let v = n / 2;
                text += &format!("  \"198.19.{}.{}/32\",\n", v >> 8, v & 0xff);
            } else {
                text += &format!("  \"2001:db8:1::{:x}:{:x}/128\",\n", n >> 16, n & 0xffff);
            }
        }
        text += "]\n";
    }
    std::fs::write(&big, &text).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (tx, stop) = (lab.sender(), stop.clone());
        std::thread::spawn(move || {
            let src: IpAddr = "198.18.1.9".parse().unwrap();
            let dst: IpAddr = "198.18.0.2".parse().unwrap();
            let mut sent = 0u64;
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(120) {
                let f = Frame::new(
                    src,
                    dst,
                    L4::Udp { sport: 2152, dport: 2152, payload: packets::gtpu(sent as u32, &[0; 32]) },
                );
                tx.send(&f.bytes());
                sent += 1;
                std::thread::sleep(Duration::from_micros(200));
            }
            sent
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let before = daemon.stats().cell(Reason::Allowed, Class::GtpU);
    let t = Instant::now();
    let r = sigwall::control::call(
        daemon.socket().as_path(),
        sigwall::control::Command::PolicyReload { file: Some(big.display().to_string()) },
        Duration::from_secs(300),
    )
    .expect("reload");
    let swap = t.elapsed();
    let after = daemon.stats().cell(Reason::Allowed, Class::GtpU);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let sent = sender.join().unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let snap = daemon.stats();
    let allowed = snap.cell(Reason::Allowed, Class::GtpU);
    println!(
        "swap to {prefixes} prefixes (generation {}): {:.0} ms from request to flip; {} packets of an allowed peer processed during it; {} of {} sent passed in total (lost {})",
        r["generation"],
        swap.as_secs_f64() * 1e3,
        after - before,
        allowed,
        sent,
        sent - allowed
    );
    drop(daemon);
    drop(lab);
    let _ = std::fs::remove_dir_all(&dir);
}
