//! `cargo xtask bench`: per-packet cost of the XDP program in BPF_PROG_TEST_RUN, next to a
//! trivial XDP_PASS program and an allowlist "floor" program, all measured in the same run.
//!
//! Cases are interleaved (run 1 of every case, then run 2, ...) so that a noisy neighbour
//! affects all of them alike; each figure is the median of `--runs` runs, with min and max.

use std::net::IpAddr;

use aya::{
    EbpfLoader,
    maps::{LpmTrie, lpm_trie::Key},
    programs::{TestRun, TestRunOptions, Xdp},
};
use sigwall::{
    loader::BASELINES,
    testkit::{
        packets::{self, Frame, L4},
        testrun::Harness,
    },
};

const POLICY: &str = r#"
[[peer]]
name = "partner"
prefixes = ["198.18.10.0/24", "2001:db8:a::/48"]
allow = ["sigtran", "diameter", "gtp-c", "gtp-u"]

[[peer]]
name = "data-only"
prefixes = ["198.18.20.0/24"]
allow = ["gtp-u"]
"#;

fn main() {
    let mut repeat = 1_000_000u32;
    let mut runs = 5usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--repeat" => {
                repeat = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--repeat N")
            }
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            _ => panic!("unknown argument {a}"),
        }
    }

    let v4 = |s: &str| -> IpAddr { s.parse().unwrap() };
    let d4 = v4("198.18.0.2");
    let d6 = v4("2001:db8::2");
    let gtpu = L4::Udp {
        sport: 2152,
        dport: 2152,
        payload: packets::gtpu(7, &packets::inner_ipv4_udp()),
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "allowed GTP-U (IPv4)",
            Frame::new(v4("198.18.10.5"), d4, gtpu.clone()).bytes(),
        ),
        (
            "allowed GTP-C (IPv6)",
            Frame::new(
                v4("2001:db8:a::5"),
                d6,
                L4::Udp {
                    sport: 2123,
                    dport: 2123,
                    payload: packets::gtpv2c(32, 0, 1, &[]),
                },
            )
            .bytes(),
        ),
        (
            "allowed SCTP DATA M3UA",
            Frame::new(
                v4("198.18.10.5"),
                d4,
                L4::Sctp {
                    sport: 2905,
                    dport: 2905,
                    chunks: vec![packets::data_chunk(3, &packets::m3ua_data())],
                },
            )
            .bytes(),
        ),
        (
            "allowed Diameter/TCP",
            Frame::new(
                v4("198.18.10.5"),
                d4,
                L4::Tcp {
                    sport: 40000,
                    dport: 3868,
                    payload: packets::diameter_message(316, 16777251),
                },
            )
            .bytes(),
        ),
        (
            "allowed GTP-U, QinQ",
            Frame::new(v4("198.18.10.5"), d4, gtpu.clone())
                .vlans(&[0x88a8, 0x8100])
                .bytes(),
        ),
        (
            "unknown-peer drop (GTP-U)",
            Frame::new(v4("198.19.1.1"), d4, gtpu.clone()).bytes(),
        ),
        (
            "class-not-allowed drop (GTP-C)",
            Frame::new(
                v4("198.18.20.5"),
                d4,
                L4::Udp {
                    sport: 2123,
                    dport: 2123,
                    payload: packets::gtpv2c(32, 0, 1, &[]),
                },
            )
            .bytes(),
        ),
        (
            "non-signaling pass (UDP/443)",
            Frame::new(
                v4("198.19.1.1"),
                d4,
                L4::Udp {
                    sport: 40000,
                    dport: 443,
                    payload: vec![0; 64],
                },
            )
            .bytes(),
        ),
    ];

    let mut h = Harness::new(POLICY);
    let mut base = EbpfLoader::new().load(BASELINES).expect("load baselines");
    for name in ["trivial_pass", "floor"] {
        let p: &mut Xdp = base.program_mut(name).unwrap().try_into().unwrap();
        p.load().expect("load baseline program");
    }
    {
        let mut trie: LpmTrie<_, [u8; 4], u32> =
            LpmTrie::try_from(base.map_mut("FLOOR_PREFIXES").unwrap()).unwrap();
        trie.insert(&Key::new(24, [198, 18, 10, 0]), 1, 0).unwrap();
        trie.insert(&Key::new(24, [198, 18, 20, 0]), 2, 0).unwrap();
    }
    let mut base_time = |name: &str, frame: &[u8]| -> f64 {
        let p: &mut Xdp = base.program_mut(name).unwrap().try_into().unwrap();
        let mut o = TestRunOptions::new();
        o.data_in = Some(frame);
        o.repeat = repeat;
        p.test_run(o).expect("test run").duration.as_nanos() as f64
    };

    let gtpu_frame = cases[0].1.clone();
    let unknown_frame = cases[5].1.clone();
    let mut trivial = Vec::new();
    let mut floor_allowed = Vec::new();
    let mut floor_drop = Vec::new();
    let mut ours: Vec<Vec<f64>> = vec![Vec::new(); cases.len()];
    for _ in 0..runs {
        trivial.push(base_time("trivial_pass", &gtpu_frame));
        floor_allowed.push(base_time("floor", &gtpu_frame));
        floor_drop.push(base_time("floor", &unknown_frame));
        for (i, (_, f)) in cases.iter().enumerate() {
            ours[i].push(h.time(f, repeat).as_nanos() as f64);
        }
    }
    let stat = |v: &mut Vec<f64>| -> (f64, f64, f64) {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        (v[v.len() / 2], v[0], v[v.len() - 1])
    };
    let (t, tmin, tmax) = stat(&mut trivial);
    let (fa, famin, famax) = stat(&mut floor_allowed);
    let (fd, fdmin, fdmax) = stat(&mut floor_drop);

    let mut md = String::new();
    md += &format!(
        "XDP cost per packet, BPF_PROG_TEST_RUN, repeat {repeat}, median of {runs} runs (min-max), same run\n\n"
    );
    md += "| program / case | ns/packet | min-max | x trivial | x floor |\n|---|---:|---:|---:|---:|\n";
    md += &format!("| trivial XDP_PASS | {t:.1} | {tmin:.1}-{tmax:.1} | 1.00 | |\n");
    md += &format!(
        "| floor, hit (IPv4 src + LPM + counter) | {fa:.1} | {famin:.1}-{famax:.1} | {:.2} | 1.00 |\n",
        fa / t
    );
    md += &format!(
        "| floor, miss | {fd:.1} | {fdmin:.1}-{fdmax:.1} | {:.2} | 1.00 |\n",
        fd / t
    );
    for (i, (name, _)) in cases.iter().enumerate() {
        let (m, lo, hi) = stat(&mut ours[i]);
        let floor = if name.contains("drop") { fd } else { fa };
        md += &format!(
            "| sigwall: {name} | {m:.1} | {lo:.1}-{hi:.1} | {:.2} | {:.2} |\n",
            m / t,
            m / floor
        );
    }
    print!("{md}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("xdp_cost.md"), &md);
}
