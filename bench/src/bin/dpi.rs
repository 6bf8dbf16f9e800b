//! `cargo xtask bench`, part 4: deep inspection.
//!
//! 1. Decode + rules throughput on one core: the frames of the third-party captures in
//!    `testdata/captures/` that XDP copies up with the default settings (signaling of the
//!    classes sigtran, diameter, gtp-c and sctp, classified by the XDP program itself in
//!    BPF_PROG_TEST_RUN) go through `inspect::Engine` (frame parse, SCTP/TCP reassembly,
//!    SIGTRAN/MAP, Diameter, GTP-C decoders, rules) in a loop, a fresh engine per pass. Baseline
//!    in the same run: tshark fully dissecting the same frames (`tshark -n -V`, output discarded),
//!    timed on the frames repeated N times and 2N times: the difference is the dissection of N
//!    repeats, whatever tshark's start-up costs.
//! 2. Ring-buffer events per second: the XDP program copies an allowed peer's GTP-C packet into
//!    the inspection ring buffer (BPF_PROG_TEST_RUN, until the ring is nearly full), then the
//!    reader empties it (only counting, then also decoding and judging each record as the
//!    daemon does), alternately, each timed alone. Events per second without loss, with the
//!    writer and the reader on a core each, is the slower of the two rates.
//!
//! Nothing is sent on a network. Writes `dpi.md` and `dpi.json` into `--out`.

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::Instant,
};

use aya::maps::{MapData, RingBuf};
use clap::Parser;
use filter_bench::Stats;
use filter_common::Class;
use filter_testkit::{
    packets::{self, Frame, L4},
    pcap,
    testrun::Harness,
};
use serde_json::json;
use sigwall::{
    inspect::{self, Engine, Flagged, RuleSet},
    policy::inspect::{Inspect, PeerInspect},
};

/// Classification only: every source is unknown and passes, so every frame runs the whole
/// classifier once.
const CLASSIFY_POLICY: &str = "[defaults]\nunknown_peer = \"pass\"\n";

/// Records per fill of the ring buffer: it holds at least 4,000 records of these frames (records
/// are size classes of 128 to 16,384 bytes; these frames take 2 KiB or less).
const FILL: u32 = 4_000;

/// One peer whose signaling is copied up (the shipped default `inspect = "all"`).
const RING_POLICY: &str = r#"
[[peer]]
name = "partner"
prefixes = ["198.18.10.0/24"]
allow = ["sigtran", "diameter", "gtp-c", "gtp-u"]
inspect_budget_pps = 10000000
"#;

/// Classes XDP copies up with the default settings (GTP-U only when `inspect_gtpu` says so).
const INSPECTED: [Class; 4] = [Class::Sigtran, Class::Diameter, Class::GtpC, Class::Sctp];

/// Deep inspection: decode + rules against tshark on the test captures, and the inspection
/// ring buffer's records per second.
#[derive(Parser)]
struct Args {
    /// Runs per measure; the median is reported with min and max.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Seconds per sample (more than 0, at most 10).
    #[arg(long, default_value_t = 0.5)]
    seconds: f64,
    /// Directory for dpi.md and dpi.json.
    #[arg(long, default_value_os_t = filter_bench::default_out())]
    out: PathBuf,
    /// Directory of the captures.
    #[arg(long, default_value_os_t = filter_bench::workspace_root().join("testdata/captures"))]
    captures: PathBuf,
    /// Only these captures (file names, comma-separated), if given.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Frames in tshark's input (the capture's inspected frames repeated).
    #[arg(long, default_value_t = 20_000)]
    tshark_frames: usize,
}

/// A capture's inspected frames, their classes, and a pcap of them repeated for tshark.
struct Capture {
    name: String,
    frames: Vec<(Class, Vec<u8>)>,
    /// Frames of each class.
    mix: Vec<(Class, usize)>,
    /// Messages one pass decodes (same every pass: a fresh engine each time).
    messages: u64,
    repeated: PathBuf,
    /// The same, twice as many.
    doubled: PathBuf,
    repeat: usize,
    sigwall_fps: Vec<f64>,
    tshark_fps: Vec<f64>,
}

fn write_pcap(path: &Path, frames: &[&[u8]]) {
    let mut b = inspect::io::pcap_header();
    for (i, f) in frames.iter().enumerate() {
        b.extend_from_slice(&inspect::io::pcap_record_header(i as u64 * 1000, f.len() as u32, f.len() as u32));
        b.extend_from_slice(f);
    }
    std::fs::write(path, b).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// One pass over the frames through a fresh engine; returns the messages decoded.
fn pass(cfg: &Inspect, peer: &PeerInspect, frames: &[(Class, Vec<u8>)]) -> u64 {
    let mut engine = Engine::new(RuleSet::new(cfg));
    for (i, (class, data)) in frames.iter().enumerate() {
        let f = Flagged {
            ts_ns: i as u64,
            peer: "bench".into(),
            peer_id: 1,
            class: *class,
            reason: "allowed",
            dropped: false,
            data,
        };
        std::hint::black_box(engine.inspect(&f, peer, false));
    }
    engine.counters.messages
}

/// Seconds tshark needs to dissect `file` fully, output discarded.
fn tshark(file: &Path) -> f64 {
    let t = Instant::now();
    let st = Command::new("tshark")
        .args(["-n", "-V", "-r"])
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("run tshark");
    assert!(st.success(), "tshark -r {} failed", file.display());
    t.elapsed().as_secs_f64()
}

fn main() {
    let a = Args::parse();
    assert!(a.runs >= 1 && a.seconds > 0.0 && a.seconds <= 10.0, "--runs at least 1, --seconds in (0, 10]");
    let cfg = Inspect::default();
    let peer = PeerInspect::default();
    let tmp = std::env::temp_dir().join(format!("sigwall-bench-dpi-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).expect("temporary directory");

    // ---- 1. decode + rules against tshark
    let mut classifier = Harness::new(CLASSIFY_POLICY);
    let mut names: Vec<PathBuf> = std::fs::read_dir(&a.captures)
        .unwrap_or_else(|e| panic!("{}: {e}", a.captures.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pcap" || x == "pcapng"))
        .filter(|p| {
            a.only.is_empty() || a.only.iter().any(|o| p.file_name().is_some_and(|n| n.to_string_lossy() == *o))
        })
        .collect();
    names.sort();
    let mut caps: Vec<Capture> = Vec::new();
    for path in names {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let packets = pcap::load_ethernet(&path, &tmp.join(format!("{name}.pcap")));
        let mut frames = Vec::new();
        for p in packets {
            let o = classifier.outcome(&p.data);
            if let Some((_, class, _, _)) = o.cells.first()
                && INSPECTED.contains(class)
            {
                frames.push((*class, p.data));
            }
        }
        if frames.is_empty() {
            continue;
        }
        let mix: Vec<(Class, usize)> = INSPECTED
            .iter()
            .map(|c| (*c, frames.iter().filter(|f| f.0 == *c).count()))
            .filter(|(_, n)| *n > 0)
            .collect();
        let messages = pass(&cfg, &peer, &frames);
        // Enough copies that tshark's dissection time dwarfs its start-up.
        let repeat = a.tshark_frames.div_ceil(frames.len());
        let all: Vec<&[u8]> = (0..repeat).flat_map(|_| frames.iter().map(|f| f.1.as_slice())).collect();
        let repeated = tmp.join(format!("{name}.x{repeat}.pcap"));
        write_pcap(&repeated, &all);
        let doubled = tmp.join(format!("{name}.x{}.pcap", 2 * repeat));
        let twice: Vec<&[u8]> = all.iter().chain(all.iter()).copied().collect();
        write_pcap(&doubled, &twice);
        caps.push(Capture {
            name,
            frames,
            mix,
            messages,
            repeated,
            doubled,
            repeat,
            sigwall_fps: vec![],
            tshark_fps: vec![],
        });
    }
    drop(classifier);
    for run in 0..a.runs {
        for c in caps.iter_mut() {
            let t = Instant::now();
            let mut passes = 0u64;
            while t.elapsed().as_secs_f64() < a.seconds {
                std::hint::black_box(pass(&cfg, &peer, &c.frames));
                passes += 1;
            }
            c.sigwall_fps.push((passes * c.frames.len() as u64) as f64 / t.elapsed().as_secs_f64());
            // N and 2N repeats: the difference is N repeats' dissection without the start-up. A
            // difference swallowed by noise (the machine is shared) is measured again.
            let n = (c.repeat * c.frames.len()) as f64;
            for attempt in 0..3 {
                let (once, twice) = (tshark(&c.repeated), tshark(&c.doubled));
                if twice - once > 0.05 || attempt == 2 {
                    c.tshark_fps.push(n / (twice - once).max(0.05));
                    break;
                }
            }
        }
        eprintln!("dpi: decode run {} of {} done", run + 1, a.runs);
    }

    // ---- 2. ring buffer
    let mut hr = Harness::new(RING_POLICY);
    inspect::io::set_enabled(&mut hr.filter, true).expect("switch inspection on");
    let mut ring: RingBuf<MapData> =
        RingBuf::try_from(hr.filter.ebpf.take_map("INSPECT_RING").expect("INSPECT_RING")).expect("ring buffer");
    let gtpc = Frame::new(
        "198.18.10.5".parse::<IpAddr>().unwrap(),
        "198.18.0.2".parse().unwrap(),
        L4::Udp { sport: 2123, dport: 2123, payload: packets::gtpv2c(32, 0, 1, &[]) },
    )
    .bytes();
    assert_eq!(hr.run(&gtpc), filter_testkit::testrun::XDP_PASS);
    while ring.next().is_some() {}
    // Fill the ring with FILL records in one BPF_PROG_TEST_RUN call (the producer's cost per
    // record is that call's time per run), then time the reader emptying it. Alternating the
    // two keeps each measured on its own, so neither is slowed by the other or by whatever else
    // shares the machine's cores at that moment.
    let mut ring_rows = Vec::new();
    let mut produce = Vec::new();
    for decode in [false, true] {
        let mut read_rates = Vec::new();
        for _ in 0..a.runs {
            let (mut records, mut read_time, mut copy_time) = (0u64, 0.0f64, 0.0f64);
            let before = inspect::io::ring_counters(&hr.filter).expect("ring counters");
            let mut engine = Engine::new(RuleSet::new(&cfg));
            let t = Instant::now();
            while t.elapsed().as_secs_f64() < a.seconds {
                copy_time += hr.time(&gtpc, FILL).as_secs_f64() * FILL as f64;
                let r = Instant::now();
                while let Some(item) = ring.next() {
                    records += 1;
                    let rec: &[u8] = &item;
                    if decode && let Some((hd, data)) = inspect::io::split_record(rec) {
                        let f = Flagged {
                            ts_ns: hd.ts_ns,
                            peer: "partner".into(),
                            peer_id: hd.peer_id,
                            class: inspect::io::class_of(hd.class),
                            reason: inspect::io::reason_name(hd.reason),
                            dropped: hd.action != 0,
                            data,
                        };
                        std::hint::black_box(engine.inspect(&f, &peer, false));
                    }
                }
                read_time += r.elapsed().as_secs_f64();
            }
            let after = inspect::io::ring_counters(&hr.filter).expect("ring counters");
            assert_eq!(after.1, before.1, "the ring overflowed while filling: FILL is too large");
            assert_eq!(after.0 - before.0, records, "records read differ from records copied");
            read_rates.push(records as f64 / read_time);
            produce.push(records as f64 / copy_time);
        }
        ring_rows.push((decode, Stats::of(&read_rates)));
    }
    let produced = Stats::of(&produce);
    let _ = std::fs::remove_dir_all(&tmp);

    // ---- report
    let mut md = format!(
        "Decode + rules on one core (`inspect::Engine`, single thread, a fresh engine per pass over the capture's \
inspected frames, {:.1} s per sample) against tshark 4 dissecting the same frames fully (`tshark -n -V`, output \
discarded; timed on the frames repeated to at least {} and to twice that, the difference taken so that tshark's start-up cancels); median of {} \
interleaved runs (min-max). Frames are those XDP copies up with the default settings: the classes sigtran, \
diameter, gtp-c and sctp, as the XDP program classifies them (GTP-U is copied only with `inspect_gtpu`).\n\n\
| capture | inspected frames (by class) | messages per pass | sigwall Mframes/s | min-max | sigwall Mmessages/s | tshark kframes/s | min-max | sigwall x tshark |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n",
        a.seconds, a.tshark_frames, a.runs
    );
    let mut rows = Vec::new();
    for c in &caps {
        let (s, t) = (Stats::of(&c.sigwall_fps), Stats::of(&c.tshark_fps));
        let per_frame = c.messages as f64 / c.frames.len() as f64;
        let mix = c.mix.iter().map(|(k, n)| format!("{} {n}", k.name())).collect::<Vec<_>>().join(", ");
        md += &format!(
            "| {} | {} ({mix}) | {} | {:.2} | {:.2}-{:.2} | {:.2} | {:.1} | {:.1}-{:.1} | {:.0} |\n",
            c.name,
            c.frames.len(),
            c.messages,
            s.median / 1e6,
            s.min / 1e6,
            s.max / 1e6,
            s.median * per_frame / 1e6,
            t.median / 1e3,
            t.min / 1e3,
            t.max / 1e3,
            s.median / t.median
        );
        rows.push(json!({
            "capture": c.name, "frames": c.frames.len(),
            "mix": c.mix.iter().map(|(k, n)| json!({"class": k.name(), "frames": n})).collect::<Vec<_>>(),
            "messages_per_pass": c.messages,
            "sigwall_fps": {"median": s.median, "min": s.min, "max": s.max, "samples": c.sigwall_fps},
            "sigwall_mps": s.median * per_frame,
            "tshark_fps": {"median": t.median, "min": t.min, "max": t.max, "samples": c.tshark_fps},
            "x_tshark": s.median / t.median,
        }));
    }
    let ring_read = |decode: bool| ring_rows.iter().find(|r| r.0 == decode).map(|r| r.1).unwrap();
    let (drain, judged) = (ring_read(false), ring_read(true));
    md += &format!(
        "\nRing buffer: the XDP program copies an allowed GTP-C packet into the 8 MiB inspection ring \
(BPF_PROG_TEST_RUN, {FILL} runs a call: the ring holds at least 4,000 records of these frames), then the reader empties it; the two alternate \
for {:.1} s per sample so that each is timed alone; median of {} (min-max). Every record was read, none found the \
ring full. With the writer and the reader on two cores, the events per second that arrive without loss are the \
slower of the two. A record that finds the ring full is not lost silently: XDP counts it (`inspect_overflow`) \
and the packet keeps its verdict.\n\n\
| side | million records per second, one core | min-max |\n|---|---:|---:|\n\
| XDP: copy into the ring (reserve, `bpf_xdp_load_bytes`, submit) | {:.2} | {:.2}-{:.2} |\n\
| reader: drain only | {:.2} | {:.2}-{:.2} |\n\
| reader: drain, decode and judge each record (the daemon's work) | {:.2} | {:.2}-{:.2} |\n\n\
Events per second without loss, writer and daemon on one core each: about {:.2} million (the {}).\n",
        a.seconds,
        a.runs,
        produced.median / 1e6,
        produced.min / 1e6,
        produced.max / 1e6,
        drain.median / 1e6,
        drain.min / 1e6,
        drain.max / 1e6,
        judged.median / 1e6,
        judged.min / 1e6,
        judged.max / 1e6,
        produced.median.min(judged.median) / 1e6,
        if produced.median < judged.median {
            "XDP copy is the slower side"
        } else {
            "daemon's decoding is the slower side"
        },
    );
    let ring_json = json!({
        "copy_records_per_s": {"median": produced.median, "min": produced.min, "max": produced.max},
        "drain_records_per_s": {"median": drain.median, "min": drain.min, "max": drain.max},
        "judge_records_per_s": {"median": judged.median, "min": judged.min, "max": judged.max},
        "events_per_s_without_loss": produced.median.min(judged.median),
    });
    print!("{md}");
    std::fs::create_dir_all(&a.out).expect("create output directory");
    std::fs::write(a.out.join("dpi.md"), &md).expect("write dpi.md");
    let doc = json!({"runs": a.runs, "seconds": a.seconds, "captures": rows, "ring": ring_json});
    std::fs::write(a.out.join("dpi.json"), serde_json::to_string_pretty(&doc).unwrap()).expect("write dpi.json");
}
