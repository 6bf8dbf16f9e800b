//! Subscriber-state benchmark (part of `cargo xtask bench`):
//! 1. the in-process store: lookups and updates per second on one core, against a store of
//!    `--subscribers` subscribers (each operation a lookup then an update of the same record,
//!    the work a registration does);
//! 2. memory per subscriber: resident memory before and after filling a store;
//! 3. cost per message (one lookup and one update) with Redis (a `redis-server` started here,
//!    on a unix socket) against the in-process store, in the same run.
//!
//! Every figure is the median of `--runs` runs. Prints a Markdown section on stdout.

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use clap::Parser;
use sigwall::subscriber::{Backend, LocalStore, Record, Serving, Subscribers};

#[derive(Parser)]
struct Args {
    /// Subscribers in the store.
    #[arg(long, default_value_t = 1_000_000)]
    subscribers: u64,
    /// Seconds of each in-process throughput run.
    #[arg(long, default_value_t = 1.0)]
    seconds: f64,
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Messages per Redis run (and per in-process run of the same comparison).
    #[arg(long, default_value_t = 20_000)]
    messages: u64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The IMSI key of subscriber `i` (15 digits, MCC 001), as the store packs it: computed once
/// here, so the timed loops measure the store and not the formatting.
fn key(i: u64) -> u64 {
    (15u64 << 59) | (1_010_000_000_000 + i)
}

fn record(i: u64) -> Record {
    let s = Serving::new(i, 228_002, 1_700_000_000, *b"CH", 2, 1);
    Record { cs: s, ..Record::default() }
}

/// xorshift64: cheap, and every subscriber equally likely.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn resident_bytes() -> u64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    s.split_whitespace().nth(1).and_then(|p| p.parse::<u64>().ok()).unwrap_or(0) * 4096
}

fn filled(n: u64) -> LocalStore {
    let mut s = LocalStore::new(n as usize * 2);
    for i in 0..n {
        s.put(key(i), record(i));
    }
    s
}

struct RedisServer {
    child: std::process::Child,
    dir: PathBuf,
}

impl RedisServer {
    fn start() -> Option<RedisServer> {
        let dir = std::env::temp_dir().join(format!("sigwall-bench-redis-{}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let child = Command::new("redis-server")
            .args(["--port", "0", "--save", "", "--appendonly", "no"])
            .arg("--unixsocket")
            .arg(dir.join("redis.sock"))
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let r = RedisServer { child, dir };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !r.dir.join("redis.sock").exists() {
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(r)
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Seconds per message (lookup then update) over `n` messages on `s`.
fn per_message(s: &mut Subscribers, n: u64, universe: u64) -> f64 {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let t = Instant::now();
    for _ in 0..n {
        let i = rng.next(universe);
        let mut r = s.get(key(i)).unwrap_or_default();
        r.sri_sm_at = r.sri_sm_at.wrapping_add(1);
        s.put(key(i), r);
    }
    t.elapsed().as_secs_f64() / n as f64
}

fn main() {
    let a = Args::parse();
    let n = a.subscribers;

    // 2. Memory first, in a fresh process state (nothing else allocated yet).
    let before = resident_bytes();
    let store = filled(n);
    let after = resident_bytes();
    let per_sub = (after.saturating_sub(before)) as f64 / n as f64;
    drop(store);

    // 1. Throughput on one core.
    let mut store = filled(n);
    let mut rates = Vec::new();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..a.runs {
        let t = Instant::now();
        let mut ops = 0u64;
        while t.elapsed().as_secs_f64() < a.seconds {
            for _ in 0..1024 {
                let k = key(rng.next(n));
                let mut r = store.get(k).unwrap_or_default();
                r.cs.at = r.cs.at.wrapping_add(1);
                store.put(k, r);
            }
            ops += 1024;
        }
        rates.push(ops as f64 / t.elapsed().as_secs_f64());
    }
    let pairs = median(rates);
    drop(store);

    // 3. Redis against in-process, same messages, same run.
    let universe = a.messages.min(n);
    let mut local_s = Vec::new();
    let mut redis_s = Vec::new();
    let server = RedisServer::start();
    for _ in 0..a.runs {
        let mut local = Subscribers::in_memory(universe as usize * 2);
        local_s.push(per_message(&mut local, a.messages, universe));
        if let Some(srv) = &server {
            let url = format!("redis+unix://{}", srv.dir.join("redis.sock").display());
            let mut r = Subscribers::open(&Backend::Redis(url), None, universe as usize * 2).expect("redis URL");
            redis_s.push(per_message(&mut r, a.messages, universe));
            assert_eq!(r.stats().redis_errors, 0, "Redis failed during the benchmark: {:?}", r.stats());
        }
    }
    let local = median(local_s);

    println!("## Subscriber state\n");
    println!("Median of {} runs; one core; {} subscribers in the store.\n", a.runs, n);
    println!("| figure | value | goal |");
    println!("| --- | --- | --- |");
    println!(
        "| in-process lookups + updates per second (one core; a lookup and an update each) | {:.0} lookups/s + {:.0} updates/s = {:.0} operations/s | ≥ 1,000,000 |",
        pairs,
        pairs,
        2.0 * pairs
    );
    println!("| resident memory per subscriber (store of {n}) | {per_sub:.0} bytes | ≤ 200 |");
    println!("| record size | {} bytes | |", std::mem::size_of::<Record>());
    println!("| cost per message, in-process (lookup + update) | {:.3} µs | |", local * 1e6);
    if redis_s.is_empty() {
        println!(
            "| cost per message, Redis | not measured: redis-server did not start (cargo xtask setup installs it) | |"
        );
    } else {
        let redis = median(redis_s);
        println!(
            "| cost per message, Redis on a unix socket (GET + SET, same messages) | {:.1} µs ({:.0}× in-process) | |",
            redis * 1e6,
            redis / local
        );
    }
}
