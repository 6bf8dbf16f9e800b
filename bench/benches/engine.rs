//! criterion micro-benchmarks of deep inspection per message, as the in-path worker runs it:
//! `inspect::Engine::inspect` (frame parse, SCTP or TCP reassembly, SIGTRAN/MAP, Diameter or
//! GTPv2-C decode, rules, subscriber state) on one live association or connection whose TSN or
//! TCP sequence number advances with every frame, as on a real link (a repeated TSN would take
//! the cheaper duplicate path). The in-path benchmark (`cargo xtask bench`, step 5b) measures
//! the same work with the AF_XDP sockets around it; this one isolates the engine.
//!
//! `cargo bench -p filter-bench --bench engine` (no root needed; building the crate still
//! builds bench/ebpf, so nightly and bpf-linker must be installed).

use std::{
    hint::black_box,
    net::IpAddr,
    time::{Duration, Instant},
};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use filter_common::Class;
use filter_testkit::packets::{self, Frame, L4};
use sigwall::{
    inspect::{Engine, Flagged, RuleSet},
    policy::inspect::{Inspect, PeerInspect},
};

/// Frames per fresh engine: iterations cycle through them, with a new engine (and so a new
/// association) each time round, so no TSN or sequence number is ever seen twice.
const FRAMES: u32 = 20_000;

fn addrs() -> (IpAddr, IpAddr) {
    ("198.18.1.10".parse().expect("address"), "198.18.2.20".parse().expect("address"))
}

/// M3UA DATA / SCCP UDT / TCAP Begin / MAP sendAuthenticationInfo, one DATA chunk per frame,
/// TSN and stream sequence advancing (the in-path benchmark's SIGTRAN message).
fn sigtran_frames() -> Vec<Vec<u8>> {
    let (s, d) = addrs();
    let tcap = packets::tcap_begin_invoke(56, 14, 3, &packets::map_sai_arg());
    let chunk = packets::data_chunk(3, &packets::m3ua_sccp(&tcap));
    (0..FRAMES)
        .map(|i| {
            let mut c = chunk.clone();
            c[4..8].copy_from_slice(&(i + 1).to_be_bytes());
            c[10..12].copy_from_slice(&(i as u16).to_be_bytes());
            Frame::new(s, d, L4::Sctp { sport: 2905, dport: 2905, chunks: vec![c] }).bytes()
        })
        .collect()
}

/// Diameter S6a Update-Location-Request, one per TCP segment, sequence numbers advancing (the
/// in-path benchmark's Diameter message).
fn diameter_frames() -> Vec<Vec<u8>> {
    let (s, d) = addrs();
    let ulr = packets::diameter_message(316, 16777251);
    let frame = Frame::new(s, d, L4::Tcp { sport: 40000, dport: 3868, payload: ulr.clone() });
    let template = frame.l4_bytes();
    let (IpAddr::V4(a), IpAddr::V4(z)) = (s, d) else { unreachable!("IPv4 addresses") };
    let mut seq = 1000u32;
    (0..FRAMES)
        .map(|_| {
            let mut seg = template.clone();
            seg[4..8].copy_from_slice(&seq.to_be_bytes());
            seg[16..18].copy_from_slice(&[0, 0]);
            let mut pseudo = Vec::with_capacity(12);
            pseudo.extend_from_slice(&a.octets());
            pseudo.extend_from_slice(&z.octets());
            pseudo.extend_from_slice(&[0, 6]);
            pseudo.extend_from_slice(&(seg.len() as u16).to_be_bytes());
            let sum = packets::checksum(&[&pseudo, &seg]);
            seg[16..18].copy_from_slice(&sum.to_be_bytes());
            seq = seq.wrapping_add(ulr.len() as u32);
            frame.with_l4(&seg)
        })
        .collect()
}

/// GTPv2-C Echo Request (UDP: no stream state).
fn gtpc_frames() -> Vec<Vec<u8>> {
    let (s, d) = addrs();
    vec![Frame::new(s, d, L4::Udp { sport: 2123, dport: 2123, payload: packets::gtpv2c_echo() }).bytes()]
}

/// Time `iters` messages, a fresh engine for each pass over `frames` (its creation not timed).
fn run(frames: &[Vec<u8>], class: Class, iters: u64) -> Duration {
    let cfg = Inspect { home_imsi_prefixes: vec!["00101".into()], ..Inspect::default() };
    let peer = PeerInspect::default();
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(frames.len() as u64);
        let mut engine = Engine::new(RuleSet::new(&cfg));
        let t = Instant::now();
        for (i, data) in frames.iter().take(n as usize).enumerate() {
            let f = Flagged {
                ts_ns: i as u64 * 1_000,
                peer: "partner".into(),
                peer_id: 1,
                class,
                reason: "allowed",
                dropped: false,
                data,
            };
            black_box(engine.inspect(&f, &peer, false));
        }
        total += t.elapsed();
        assert_eq!(engine.counters.messages, n, "every frame carries one message, decoded");
        left -= n;
    }
    total
}

fn engine(c: &mut Criterion) {
    let mut g = c.benchmark_group("engine");
    g.throughput(Throughput::Elements(1));
    for (name, class, frames) in [
        ("sigtran_map_sai_sctp", Class::Sigtran, sigtran_frames()),
        ("diameter_ulr_tcp", Class::Diameter, diameter_frames()),
        ("gtpv2c_echo_udp", Class::GtpC, gtpc_frames()),
    ] {
        g.bench_function(name, |b| b.iter_custom(|iters| run(&frames, class, iters)));
    }
    g.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
