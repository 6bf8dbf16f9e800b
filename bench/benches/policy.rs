//! criterion micro-benchmarks of the policy compiler: TOML text to map contents (parse with
//! serde + spans, validate, compile), for policies of 10, 1,000 and 100,000 prefixes.
//!
//! `cargo bench -p filter-bench --bench policy` (no root needed: nothing is loaded; building the
//! crate still builds bench/ebpf, so nightly and bpf-linker must be installed).
//! The prefixes are half IPv4 host routes in 198.18.0.0/15 and half IPv6 /64s in 2001:db8::/32,
//! 100 per peer.

use std::{hint::black_box, time::Duration};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use sigwall::policy::{
    self, Limits,
    compile::{self, PeerIds},
};

/// A policy file with `n` distinct prefixes.
fn policy_text(n: usize) -> String {
    let per_peer = 100;
    let mut t = String::from("[defaults]\nmode = \"enforce\"\nunknown_peer = \"drop\"\n");
    for p in 0..n.div_ceil(per_peer) {
        t += &format!(
            "\n[[peer]]\nname = \"peer-{p}\"\nallow = [\"sigtran\", \"diameter\", \"gtp-c\", \"gtp-u\"]\nprefixes = [\n"
        );
        for i in p * per_peer..(p * per_peer + per_peer).min(n) {
            let k = i / 2;
            if i % 2 == 0 {
                let a = (198u32 << 24 | 18 << 16) + k as u32;
                t += &format!("  \"{}/32\",\n", std::net::Ipv4Addr::from(a));
            } else {
                t += &format!("  \"2001:db8:{:x}:{:x}::/64\",\n", k >> 16, k & 0xffff);
            }
        }
        t += "]\n";
    }
    t
}

fn compiler(c: &mut Criterion) {
    let mut g = c.benchmark_group("policy");
    for n in [10usize, 1_000, 100_000] {
        let text = policy_text(n);
        let limits = Limits::default();
        // Check once that the text is valid and holds n prefixes.
        let pol = policy::parse("bench.toml", &text, &limits).expect("valid policy");
        assert_eq!(pol.peers.iter().map(|p| p.prefixes.len()).sum::<usize>(), n);
        g.throughput(Throughput::Elements(n as u64));
        if n >= 100_000 {
            g.sample_size(10).measurement_time(Duration::from_secs(15));
        } else {
            g.sample_size(50).measurement_time(Duration::from_secs(5));
        }
        g.bench_with_input(BenchmarkId::new("parse_validate_compile", n), &text, |b, text| {
            b.iter(|| {
                let pol = policy::parse("bench.toml", black_box(text), &limits).unwrap();
                compile::compile(&pol, 1, &mut PeerIds::default())
            })
        });
        g.bench_with_input(BenchmarkId::new("compile_only", n), &pol, |b, pol| {
            b.iter(|| compile::compile(black_box(pol), 1, &mut PeerIds::default()))
        });
    }
    g.finish();
}

criterion_group!(benches, compiler);
criterion_main!(benches);
