//! `cargo xtask bench`, part 2: how sigwall scales with the allowlist. For allowlists of 10,
//! 1,000, 100,000 and 1,000,000 prefixes (half IPv4 /16-/32, half IPv6 /32-/128, generated
//! deterministically) it measures
//! - the cost per packet in BPF_PROG_TEST_RUN (allowed and unknown-peer drop, IPv4 and IPv6),
//!   next to the floor program holding the same IPv4 prefixes;
//! - the BPF map memory: the sum of the `memlock:` lines in /proc/self/fdinfo of every map;
//! - the policy load time: `Filter::compile` of the [`Policy`] and `Filter::apply` writing it
//!   into a fresh filter, then into the second generation, then over a full generation (a
//!   replace).
//!
//! The policy is built as a [`Policy`] value, not through TOML (the TOML parser is measured by
//! the criterion benches). Nothing is sent on a network, so the prefixes use synthetic address
//! space: a /16-/32 mix cannot fit in 198.18.0.0/15 (it holds two /16s), nor a /32-/128 mix in
//! 2001:db8::/32. Writes `scale.md` and `scale.json` into `--out`.

use std::{
    collections::HashSet,
    net::{IpAddr, Ipv4Addr, Ipv6Addr},
    os::fd::{AsFd, AsRawFd},
    path::PathBuf,
    time::Instant,
};

use aya::{
    EbpfLoader,
    maps::Map,
    programs::{TestRun, TestRunOptions, Xdp},
};
use clap::Parser;
use filter_bench::{BASELINES, Stats, fill_floor};
use filter_testkit::{
    packets::{self, Frame, L4},
    testrun::{XDP_DROP, XDP_PASS},
};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde_json::json;
use sigwall::{
    loader::Filter,
    policy::{self, Limits, Peer, Policy},
};

/// Allowlists of growing size: cost per packet, map memory and load time.
#[derive(Parser)]
struct Args {
    /// Allowlist sizes, in prefixes.
    #[arg(long, value_delimiter = ',', default_values_t = [10, 1_000, 100_000, 1_000_000])]
    sizes: Vec<usize>,
    /// Repetitions per BPF_PROG_TEST_RUN call.
    #[arg(long, default_value_t = 1_000_000)]
    repeat: u32,
    /// Runs per case; the median is reported with min and max.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Directory for scale.md and scale.json.
    #[arg(long, default_value_os_t = filter_bench::default_out())]
    out: PathBuf,
}

/// xorshift64*: deterministic, so every run and every machine gets the same prefixes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// `n` distinct prefixes, half IPv4 (/16-/32, first octet 1-223 but not 127), half IPv6
/// (/32-/128 inside 2001::/16).
fn prefixes(n: usize, seed: u64) -> (Vec<Ipv4Net>, Vec<Ipv6Net>) {
    let mut r = Rng(seed);
    let (n4, n6) = (n / 2, n - n / 2);
    let mut seen4 = HashSet::new();
    let mut v4 = Vec::with_capacity(n4);
    while v4.len() < n4 {
        let len = r.range(16, 32) as u8;
        let first = r.range(1, 223) as u32;
        if first == 127 {
            continue;
        }
        let addr = (first << 24) | (r.next() as u32 & 0x00ff_ffff);
        let net = Ipv4Net::new(Ipv4Addr::from(addr), len).unwrap().trunc();
        if seen4.insert(net) {
            v4.push(net);
        }
    }
    let mut seen6 = HashSet::new();
    let mut v6 = Vec::with_capacity(n6);
    while v6.len() < n6 {
        let len = r.range(32, 128) as u8;
        let addr = (0x2001u128 << 112) | ((r.next() as u128) << 48 | r.next() as u128 >> 16);
        let net = Ipv6Net::new(Ipv6Addr::from(addr), len).unwrap().trunc();
        if seen6.insert(net) {
            v6.push(net);
        }
    }
    (v4, v6)
}

/// A policy of one peer that may send every class, parsed from TOML, so that fields the policy
/// model gains later keep their file defaults here; returned without its peer, and the peer.
fn template() -> (Policy, Peer) {
    const TEMPLATE: &str = "[[peer]]\nname = \"template\"\nprefixes = [\"198.18.0.1\"]\n\
allow = [\"sigtran\", \"diameter\", \"gtp-c\", \"gtp-u\"]\n";
    let mut pol = policy::parse("template.toml", TEMPLATE, &Limits::default()).expect("template policy");
    let peer = pol.peers.pop().expect("template peer");
    (pol, peer)
}

/// The prefixes spread round-robin over min(n, 4000) peers like the template's.
fn policy(v4: &[Ipv4Net], v6: &[Ipv6Net]) -> Policy {
    let (mut pol, proto) = template();
    let all: Vec<IpNet> = v4.iter().map(|n| IpNet::V4(*n)).chain(v6.iter().map(|n| IpNet::V6(*n))).collect();
    let npeers = all.len().clamp(1, 4000);
    pol.peers =
        (0..npeers).map(|i| Peer { name: format!("peer-{i:04}"), prefixes: Vec::new(), ..proto.clone() }).collect();
    for (i, net) in all.into_iter().enumerate() {
        pol.peers[i % npeers].prefixes.push(net);
    }
    pol
}

/// A host inside a prefix near the middle of the list (allowed), and a host no prefix covers.
fn probes(v4: &[Ipv4Net], v6: &[Ipv6Net], seed: u64) -> [IpAddr; 4] {
    let mut r = Rng(seed);
    let p4 = v4[v4.len() / 2];
    let host4 = u32::from(p4.network()) | (r.next() as u32 & !u32::from(p4.netmask()));
    let p6 = v6[v6.len() / 2];
    let host6 = u128::from(p6.network()) | (((r.next() as u128) << 64 | r.next() as u128) & !u128::from(p6.netmask()));
    let mut unknown4 = None;
    for _ in 0..100_000 {
        let a = Ipv4Addr::from(((r.range(1, 223) as u32) << 24) | (r.next() as u32 & 0xff_ffff));
        if a.octets()[0] != 127 && !v4.iter().any(|n| n.contains(&a)) {
            unknown4 = Some(a);
            break;
        }
    }
    let mut unknown6 = None;
    for _ in 0..100_000 {
        let a = Ipv6Addr::from((0x2001u128 << 112) | ((r.next() as u128) << 48));
        if !v6.iter().any(|n| n.contains(&a)) {
            unknown6 = Some(a);
            break;
        }
    }
    [
        IpAddr::V4(Ipv4Addr::from(host4)),
        IpAddr::V6(Ipv6Addr::from(host6)),
        IpAddr::V4(unknown4.expect("an IPv4 address outside every prefix")),
        IpAddr::V6(unknown6.expect("an IPv6 address outside every prefix")),
    ]
}

/// Bytes the kernel charges for the map behind `fd` (`memlock:` in fdinfo).
fn memlock(fd: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/self/fdinfo/{fd}")).unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix("memlock:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// (LPM tries, everything else) in bytes, over every map of the loaded object.
fn map_memory(f: &Filter) -> (u64, u64) {
    let (mut tries, mut rest) = (0, 0);
    for (name, m) in f.ebpf.maps() {
        let data = match m {
            Map::Array(d)
            | Map::LpmTrie(d)
            | Map::PerCpuArray(d)
            | Map::HashMap(d)
            | Map::PerCpuHashMap(d)
            | Map::RingBuf(d)
            | Map::PerfEventArray(d) => d,
            _ => {
                eprintln!("scale: map {name} of an unexpected type, not counted");
                continue;
            }
        };
        let bytes = memlock(data.fd().as_fd().as_raw_fd());
        if name.starts_with("PEERS_V") {
            tries += bytes;
        } else {
            rest += bytes;
        }
    }
    (tries, rest)
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let a = Args::parse();
    assert!(a.runs >= 1 && a.repeat >= 1 && !a.sizes.is_empty(), "--runs, --repeat and --sizes must not be 0 or empty");
    let d4: IpAddr = "198.18.0.2".parse().unwrap();
    let d6: IpAddr = "2001:db8::2".parse().unwrap();
    let gtpu = L4::Udp { sport: 2152, dport: 2152, payload: packets::gtpu(7, &packets::inner_ipv4_udp()) };
    let gtpc = L4::Udp { sport: 2123, dport: 2123, payload: packets::gtpv2c(32, 0, 1, &[]) };
    // The sigwall cases run with the source cache on (a source's packets after its first) and
    // off (every packet walks the trie, as the first packet of a source or a spoofed flood does).
    const CASES: [(&str, &str, u32); 8] = [
        ("allowed_v4", "sigwall allowed GTP-U (IPv4)", XDP_PASS),
        ("allowed_v6", "sigwall allowed GTP-C (IPv6)", XDP_PASS),
        ("unknown_v4", "sigwall unknown-peer drop (IPv4)", XDP_DROP),
        ("unknown_v6", "sigwall unknown-peer drop (IPv6)", XDP_DROP),
        ("floor_hit", "floor hit (IPv4)", XDP_PASS),
        ("floor_miss", "floor miss (IPv4)", XDP_DROP),
        ("allowed_v4_trie", "sigwall allowed GTP-U (IPv4), source cache off", XDP_PASS),
        ("unknown_v4_trie", "sigwall unknown-peer drop (IPv4), source cache off", XDP_DROP),
    ];

    let mut md = format!(
        "Per packet: BPF_PROG_TEST_RUN, repeat {}, median of {} interleaved runs (min-max). Load: median of {} runs, each into empty tries. \
Memory: sum of the maps' `memlock` (fdinfo) after one policy generation, and after the second generation is written too (what a running filter holds after its first update). \
The last column counts the source cache's misses (`SOURCE_CACHE_STATS`) over every run of the four cached cases, \
verdict checks included: each probe source misses once per CPU that runs it, so a handful means the cached figures are hits.\n\n",
        a.repeat, a.runs, a.runs
    );
    md += "| prefixes (v4+v6) | peers | allowed v4 ns | allowed v6 ns | unknown v4 ns | unknown v6 ns | floor hit ns | floor miss ns | allowed v4 x floor | unknown v4 x floor | allowed v4, cache off ns | unknown v4, cache off ns | source cache misses, cached cases |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    let mut md_load = String::from(
        "| prefixes | compile ms | apply into empty tries ms | apply, 2nd generation (empty) ms | apply over a full generation, read back ms | live change (one prefix fewer) ms | LPM tries MiB (1 gen) | LPM tries MiB (2 gen) | other maps MiB | total MiB (2 gen) | bytes per prefix (1 gen) |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut results = Vec::new();

    for &n in &a.sizes {
        let t0 = Instant::now();
        let (v4, v6) = prefixes(n, 0x5167_3a11_0000_0000 ^ n as u64);
        let pol = policy(&v4, &v6);
        let empty = template().0;
        let probe = probes(&v4, &v6, 0xbe7c_4000 ^ n as u64);
        eprintln!("scale: {n} prefixes generated in {:.1} s; probes {:?}", t0.elapsed().as_secs_f64(), probe);
        let frames = [
            Frame::new(probe[0], d4, gtpu.clone()).bytes(),
            Frame::new(probe[1], d6, gtpc.clone()).bytes(),
            Frame::new(probe[2], d4, gtpu.clone()).bytes(),
            Frame::new(probe[3], d6, gtpc.clone()).bytes(),
        ];

        // Load time and memory. Every run starts with empty tries in both generations: the
        // same filter after two applies of an empty policy, or, above 300,000 prefixes where
        // deleting them all takes longer than the verifier, a freshly loaded filter.
        let (mut t_compile, mut t_apply1, mut t_apply2, mut t_apply3, mut t_apply4) =
            (vec![], vec![], vec![], vec![], vec![]);
        let (mut mem1, mut mem2) = ((0, 0), (0, 0));
        let mut filter = Filter::load(0).expect("load the sigwall object (needs root)");
        for run in 0..a.runs {
            if run > 0 {
                if n > 300_000 {
                    drop(filter);
                    filter = Filter::load(0).expect("load the sigwall object");
                } else {
                    for _ in 0..2 {
                        let c = filter.compile(&empty).expect("compile");
                        filter.apply(&c, [0; 32]).expect("apply");
                    }
                }
            }
            let f = &mut filter;
            let t = Instant::now();
            let c1 = f.compile(&pol).expect("compile");
            t_compile.push(ms(t.elapsed()));
            let t = Instant::now();
            f.apply(&c1, [0; 32]).expect("apply");
            t_apply1.push(ms(t.elapsed()));
            if run == 0 {
                mem1 = map_memory(f);
            }
            let c2 = f.compile(&pol).expect("compile");
            let t = Instant::now();
            f.apply(&c2, [0; 32]).expect("apply");
            t_apply2.push(ms(t.elapsed()));
            if run == 0 {
                mem2 = map_memory(f);
            }
            // As a restarted daemon does: the old contents read back from the kernel.
            f.forget_written_prefixes();
            let c3 = f.compile(&pol).expect("compile");
            let t = Instant::now();
            f.apply(&c3, [0; 32]).expect("apply");
            t_apply3.push(ms(t.elapsed()));
            // A live change (one prefix fewer) over a full generation this process wrote: one more
            // apply first, so both slots are ones this process wrote.
            let c = f.compile(&pol).expect("compile");
            f.apply(&c, [0; 32]).expect("apply");
            let mut edited = pol.clone();
            if let Some(p) = edited.peers.iter_mut().find(|p| p.prefixes.len() > 1) {
                p.prefixes.pop();
            }
            let c4 = f.compile(&edited).expect("compile");
            let t = Instant::now();
            f.apply(&c4, [0; 32]).expect("apply");
            t_apply4.push(ms(t.elapsed()));
        }

        // The floor program with the same IPv4 prefixes.
        let mut base = EbpfLoader::new().load(BASELINES).expect("load baselines");
        {
            let p: &mut Xdp = base.program_mut("floor").unwrap().try_into().unwrap();
            p.load().expect("load floor");
        }
        fill_floor(&mut base, v4.iter().map(|n| IpNet::V4(*n)));

        // The same policy in a filter loaded with its source cache off.
        let mut trie_only = Filter::load_without_source_cache().expect("load the sigwall object, cache off");
        let c = trie_only.compile(&pol).expect("compile");
        trie_only.apply(&c, [0; 32]).expect("apply");
        // The source cache's misses over this size's runs of the cached cases: whether its
        // figures are hits, as they are meant to be (each probe source misses once per CPU).
        let misses = |f: &Filter| {
            sigwall::stats::of_filter(f).expect("counters").source_cache.expect("SOURCE_CACHE_STATS").misses
        };
        let misses_before = misses(&filter);

        let mut run_case = |i: usize, repeat: u32| -> (u32, f64) {
            let (prog, frame): (&mut Xdp, &[u8]) = if i < 4 {
                (filter.program().unwrap(), &frames[i])
            } else if i >= 6 {
                (trie_only.program().unwrap(), &frames[if i == 6 { 0 } else { 2 }])
            } else {
                (base.program_mut("floor").unwrap().try_into().unwrap(), &frames[if i == 4 { 0 } else { 2 }])
            };
            let mut o = TestRunOptions::new();
            o.data_in = Some(frame);
            o.repeat = repeat;
            let r = prog.test_run(o).expect("test run");
            (r.return_value, r.duration.as_nanos() as f64)
        };
        for (i, (_, label, expect)) in CASES.iter().enumerate() {
            let (action, _) = run_case(i, 1);
            assert_eq!(action, *expect, "{n} prefixes, {label}: wrong verdict");
        }
        let mut samples = vec![Vec::new(); CASES.len()];
        for _ in 0..a.runs {
            for (i, s) in samples.iter_mut().enumerate() {
                s.push(run_case(i, a.repeat).1);
            }
        }
        let cache_misses = misses(&filter) - misses_before;
        let cached_packets = 4 * (1 + a.runs as u64 * a.repeat as u64);
        let st: Vec<Stats> = samples.iter().map(|s| Stats::of(s)).collect();
        let cell = |i: usize| format!("{:.0} ({:.0}-{:.0})", st[i].median, st[i].min, st[i].max);
        md += &format!(
            "| {n} | {} | {} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {} | {} | {cache_misses} of {cached_packets} |\n",
            pol.peers.len(),
            cell(0),
            cell(1),
            cell(2),
            cell(3),
            cell(4),
            cell(5),
            st[0].median / st[4].median,
            st[2].median / st[5].median,
            cell(6),
            cell(7),
        );
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        let (c, l1, l2, l3, l4) = (
            Stats::of(&t_compile),
            Stats::of(&t_apply1),
            Stats::of(&t_apply2),
            Stats::of(&t_apply3),
            Stats::of(&t_apply4),
        );
        let f1 = |s: Stats| format!("{:.1} ({:.1}-{:.1})", s.median, s.min, s.max);
        md_load += &format!(
            "| {n} | {} | {} | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.0} |\n",
            f1(c),
            f1(l1),
            f1(l2),
            f1(l3),
            f1(l4),
            mib(mem1.0),
            mib(mem2.0),
            mib(mem2.1),
            mib(mem2.0 + mem2.1),
            mem1.0 as f64 / n as f64,
        );
        results.push(json!({
            "prefixes": n, "v4": v4.len(), "v6": v6.len(), "peers": pol.peers.len(),
            "probes": probe.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "source_cache_misses": cache_misses, "cached_packets": cached_packets,
            "cost": CASES.iter().zip(&st).zip(&samples).map(|(((id, label, _), s), raw)| json!({
                "id": id, "label": label, "median": s.median, "min": s.min, "max": s.max, "samples": raw,
            })).collect::<Vec<_>>(),
            "load_ms": {
                "compile": {"median": c.median, "min": c.min, "max": c.max, "samples": t_compile},
                "apply_fresh": {"median": l1.median, "min": l1.min, "max": l1.max, "samples": t_apply1},
                "apply_second": {"median": l2.median, "min": l2.min, "max": l2.max, "samples": t_apply2},
                "apply_replace": {"median": l3.median, "min": l3.min, "max": l3.max, "samples": t_apply3},
                "apply_live_change": {"median": l4.median, "min": l4.min, "max": l4.max, "samples": t_apply4},
            },
            "memory_bytes": {
                "tries_one_generation": mem1.0, "tries_two_generations": mem2.0,
                "other_maps": mem2.1, "total_two_generations": mem2.0 + mem2.1,
                "total_one_generation": mem1.0 + mem1.1,
            },
        }));
        eprintln!("scale: {n} prefixes done in {:.1} s", t0.elapsed().as_secs_f64());
    }
    md += "\n";
    md += &md_load;
    print!("{md}");
    std::fs::create_dir_all(&a.out).expect("create output directory");
    std::fs::write(a.out.join("scale.md"), &md).expect("write scale.md");
    let doc = json!({"repeat": a.repeat, "runs": a.runs, "sizes": results});
    std::fs::write(a.out.join("scale.json"), serde_json::to_string_pretty(&doc).unwrap()).expect("write scale.json");
}
