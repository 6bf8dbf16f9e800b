//! `cargo xtask bench`, part 3: end to end on a veth pair between two fresh namespaces.
//!
//! A flood from unknown sources (several addresses, IPv4 and IPv6, GTP-U, GTP-C, Diameter/TCP
//! and SCTP, one frame variant per generator call in rotation) is pushed from the ipx end into
//! the edge end by an `XDP_TX` program run with BPF_PROG_TEST_RUN in live-frames mode. On the
//! edge end, in turn and in the same run:
//! - sigwall (native XDP) with a 1,000-prefix allowlist;
//! - a trivial counting `XDP_DROP` (what an XDP program can absorb at all);
//! - a trivial counting `XDP_PASS` followed by an nftables netdev-ingress rule set holding the
//!   same allowlist (interval sets), dropping signaling from anyone else.
//!
//! Drop rate = packets the filter dropped during a window / the window's wall-clock length. A
//! second window of the same length follows with the same flood while another thread sends an
//! allowed peer's steady, paced GTP-U traffic through an AF_PACKET socket on the ipx end; its
//! loss is what was sent minus what the filter counted as passed for it.
//!
//! Two receiver set-ups (`--receiver`):
//! - `shared` (default): the generator, the steady sender and the receiving NAPI all run on one
//!   core (the XDP_TX frames are received in the softirq that follows each generator batch), so a
//!   rate is what one core sustains generating and filtering together, and the generator is
//!   paced by the receiver;
//! - `own-core`: the edge veth switched to threaded NAPI with its thread pinned to CPU 0, the
//!   generator and the steady sender on the last CPU: the receiver has a core of its own and the
//!   generator floods it as fast as it can, beyond its capacity (overload).
//!
//! Everything lives in namespaces made by `Lab`, which removes them on drop; every loop is
//! bounded in time. Writes `veth-<receiver>.md` and `veth-<receiver>.json` into `--out`.

use std::{
    collections::HashSet,
    fs::File,
    net::IpAddr,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use aya::{
    Ebpf, EbpfLoader,
    maps::PerCpuArray,
    programs::{TestRun, TestRunAttrs, TestRunOptions, Xdp, XdpMode},
};
use clap::{Parser, ValueEnum};
use filter_bench::{BASELINES, Stats, fill_floor};
use filter_common::Reason;
use filter_testkit::{
    netns::Lab,
    packets::{self, Frame, L4},
};
use serde_json::json;
use sigwall::{loader::Filter, policy, stats};

/// Where the receiving veth end's NAPI runs.
#[derive(Clone, Copy, ValueEnum)]
enum Receiver {
    /// On the generator's core: one core generates and filters.
    Shared,
    /// Threaded NAPI pinned to CPU 0, the generator on the other core.
    OwnCore,
}

/// A live-frames flood on a veth pair: sigwall against XDP_DROP and XDP_PASS + nftables.
#[derive(Parser)]
struct Cli {
    /// Length of each flood window, in milliseconds (at most 30,000).
    #[arg(long = "window-ms", default_value_t = 3000)]
    window_ms: u64,
    /// Runs per configuration; the median is reported with min and max.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Packets per second of the allowed peer during the second window (at most 100,000).
    #[arg(long, default_value_t = 10_000)]
    allowed_pps: u64,
    /// Frames in the generator's first live-frames call.
    #[arg(long, default_value_t = 1 << 20)]
    per_call: u32,
    #[arg(long, value_enum, default_value_t = Receiver::Shared)]
    receiver: Receiver,
    /// Directory for veth-<receiver>.md and .json.
    #[arg(long, default_value_os_t = filter_bench::default_out())]
    out: PathBuf,
}

struct Args {
    window: Duration,
    runs: usize,
    allowed_pps: u64,
    per_call: u32,
    own_core: bool,
    out: PathBuf,
}

fn args() -> Args {
    let c = Cli::parse();
    let a = Args {
        window: Duration::from_millis(c.window_ms),
        runs: c.runs,
        allowed_pps: c.allowed_pps,
        per_call: c.per_call,
        own_core: matches!(c.receiver, Receiver::OwnCore),
        out: c.out,
    };
    assert!(a.runs >= 1 && a.window <= Duration::from_secs(30) && a.allowed_pps <= 100_000);
    a
}

/// The allowlist shared by sigwall and nftables: the partner that sends the steady traffic, plus
/// 998 generated prefixes in 198.18.0.0/16 (/24-/32) and 2001:db8::/36 (/48-/128). The flood
/// comes from 198.19.200.0/24 and 2001:db8:ffff::/48, which no prefix covers.
fn allowlist() -> Vec<Vec<String>> {
    let mut r: u64 = 0x0ead_beef_cafe_f00d;
    let mut next = move || {
        r ^= r >> 12;
        r ^= r << 25;
        r ^= r >> 27;
        r.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut seen = HashSet::new();
    let mut peers = vec![vec!["198.18.10.0/24".to_string(), "2001:db8:a::/48".to_string()]];
    seen.insert("198.18.10.0/24".to_string());
    seen.insert("2001:db8:a::/48".to_string());
    peers.extend((0..9).map(|_| Vec::new()));
    let mut i = 0;
    while seen.len() < 1000 {
        let net: ipnet::IpNet = if i % 2 == 0 {
            let len = 24 + (next() % 9) as u8;
            let a = (198u32 << 24) | (18 << 16) | (next() as u32 & 0xffff);
            ipnet::Ipv4Net::new(a.into(), len).unwrap().trunc().into()
        } else {
            let len = 48 + (next() % 81) as u8;
            let a = (0x2001_0db8u128 << 96) | ((next() as u128 & 0x0fff_ffff) << 64) | next() as u128;
            ipnet::Ipv6Net::new(a.into(), len).unwrap().trunc().into()
        };
        i += 1;
        let s = net.to_string();
        if net.contains(&"198.18.10.5".parse::<IpAddr>().unwrap()) || !seen.insert(s.clone()) {
            continue;
        }
        peers[1 + i % 9].push(s);
    }
    peers
}

fn policy_toml(peers: &[Vec<String>]) -> String {
    let mut t = String::from("[defaults]\nmode = \"enforce\"\nunknown_peer = \"drop\"\n");
    for (i, prefixes) in peers.iter().enumerate() {
        let name = if i == 0 { "partner".to_string() } else { format!("peer-{i}") };
        let list: Vec<String> = prefixes.iter().map(|p| format!("\"{p}\"")).collect();
        t += &format!(
            "\n[[peer]]\nname = \"{name}\"\nprefixes = [{}]\nallow = [\"sigtran\", \"diameter\", \"gtp-c\", \"gtp-u\"]\n",
            list.join(", ")
        );
    }
    t
}

const NFT_TABLE: &str = "sigwall_bench";

/// The same allowlist as an nftables netdev-ingress rule set: sources in the sets pass, signaling
/// (the GTP and Diameter ports, any SCTP) from anyone else is dropped, everything else passes.
fn nft_ruleset(ifname: &str, peers: &[Vec<String>]) -> String {
    let all: Vec<&String> = peers.iter().flatten().collect();
    let v4: Vec<&str> = all.iter().filter(|p| !p.contains(':')).map(|p| p.as_str()).collect();
    let v6: Vec<&str> = all.iter().filter(|p| p.contains(':')).map(|p| p.as_str()).collect();
    format!(
        r#"table netdev {NFT_TABLE} {{
    counter allowed {{ }}
    counter dropped {{ }}
    set allow4 {{ type ipv4_addr; flags interval; auto-merge; elements = {{ {} }} }}
    set allow6 {{ type ipv6_addr; flags interval; auto-merge; elements = {{ {} }} }}
    chain ingress {{
        type filter hook ingress device "{ifname}" priority 0; policy accept;
        ip saddr @allow4 counter name "allowed" accept
        ip6 saddr @allow6 counter name "allowed" accept
        udp dport {{ 2123, 2152 }} counter name "dropped" drop
        udp sport {{ 2123, 2152 }} counter name "dropped" drop
        tcp dport 3868 counter name "dropped" drop
        tcp sport 3868 counter name "dropped" drop
        meta l4proto sctp counter name "dropped" drop
    }}
}}
"#,
        v4.join(", "),
        v6.join(", ")
    )
}

fn nft(ns: &str, args: &[&str], stdin: Option<&str>) -> String {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, "nft"]).args(args);
    cmd.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run nft");
    if let Some(s) = stdin {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(s.as_bytes()).expect("write to nft");
    }
    let out = child.wait_with_output().expect("nft");
    assert!(out.status.success(), "nft {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (allowed, dropped) packet counters of the nftables table.
fn nft_counters(ns: &str) -> (u64, u64) {
    let out = nft(ns, &["-j", "list", "counters", "table", "netdev", NFT_TABLE], None);
    let v: serde_json::Value = serde_json::from_str(&out).expect("nft JSON");
    let mut r = (0, 0);
    for item in v["nftables"].as_array().into_iter().flatten() {
        let c = &item["counter"];
        let n = c["packets"].as_u64().unwrap_or(0);
        match c["name"].as_str() {
            Some("allowed") => r.0 = n,
            Some("dropped") => r.1 = n,
            _ => {}
        }
    }
    r
}

fn ifindex(name: &str) -> u32 {
    let c = std::ffi::CString::new(name).unwrap();
    // SAFETY: valid C string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    assert!(i != 0, "interface {name} not found");
    i
}

/// Move the calling thread into network namespace `ns` (a name under /run/netns or a path).
fn enter(ns: &Path) {
    let f = File::open(ns).unwrap_or_else(|e| panic!("open {}: {e}", ns.display()));
    // SAFETY: setns on a valid namespace fd affects only the calling thread.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {}", ns.display());
}

/// Pin the calling thread to one CPU.
fn pin_to(cpu: usize) {
    // SAFETY: cpu_set_t is plain data; sched_setaffinity(0) affects the calling thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// Switch `ifname` (in namespace `ns`) to threaded NAPI and pin its NAPI threads to CPU 0, so
/// that the receiver has a core of its own and the generator (on the last CPU) cannot starve it.
/// Returns how many threads were pinned, or why it failed.
fn receiver_on_cpu0(ns: &str, ifname: &str) -> Result<usize, String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "sh", "-c"])
        .arg(format!("echo 1 > /sys/class/net/{ifname}/threaded"))
        .output()
        .map_err(|e| format!("ip netns exec: {e}"))?;
    if !out.status.success() {
        return Err(format!("threaded NAPI on {ifname}: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    // Kernel threads are named "napi/<ifname>-<napi id>", cut to 15 bytes.
    let want: String = format!("napi/{ifname}-").chars().take(15).collect();
    let mut pinned = 0;
    for e in std::fs::read_dir("/proc").map_err(|e| e.to_string())?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if comm.trim_end().starts_with(&want) {
            // SAFETY: cpu_set_t is plain data; sched_setaffinity on a kernel thread's pid.
            let rc = unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(0, &mut set);
                libc::sched_setaffinity(pid, std::mem::size_of::<libc::cpu_set_t>(), &set)
            };
            if rc == 0 {
                pinned += 1;
            }
        }
    }
    if pinned == 0 {
        return Err(format!("no NAPI thread named {want}* found"));
    }
    Ok(pinned)
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// What the generator did in one window.
struct Generated {
    frames: u64,
    /// Wall time of the window, including each call's set-up and tear-down.
    wall: Duration,
    /// Time inside the calls' frame loops as the kernel reports it (per-frame average x frames):
    /// excludes the set-up and tear-down of each live-frames run (page pool and its release).
    looping: Duration,
}

/// The live-frames generator: `gen_tx` on `ifname` (in `ns`), the frames in rotation, one
/// BPF_PROG_TEST_RUN call per frame variant, the first of `per_call` frames and the next ones of
/// about 150 ms each, until `window` has passed. Runs on the last CPU.
fn generate(
    program: &'static str,
    ns: PathBuf,
    ifname: String,
    frames: Vec<Vec<u8>>,
    per_call: u32,
    window: Duration,
) -> std::thread::JoinHandle<Generated> {
    std::thread::spawn(move || {
        pin_to(cpus() - 1);
        enter(&ns);
        let idx = ifindex(&ifname);
        let mut ebpf = EbpfLoader::new().load(BASELINES).expect("load baselines");
        let p: &mut Xdp = ebpf.program_mut(program).unwrap().try_into().unwrap();
        p.load().unwrap_or_else(|e| panic!("load {program}: {e}"));
        let start = Instant::now();
        let (mut sent, mut i, mut looping, mut per_call) = (0u64, 0usize, Duration::ZERO, per_call);
        while start.elapsed() < window {
            let f = &frames[i % frames.len()];
            i += 1;
            // struct xdp_md: data, data_end, data_meta, ingress_ifindex, rx_queue_index,
            // egress_ifindex.
            let mut ctx = [0u8; 24];
            ctx[4..8].copy_from_slice(&(f.len() as u32).to_ne_bytes());
            ctx[12..16].copy_from_slice(&idx.to_ne_bytes());
            let mut o = TestRunOptions::new();
            o.data_in = Some(f);
            o.ctx_in = Some(&ctx);
            o.repeat = per_call;
            o.attrs = TestRunAttrs::new().xdp_live_frames(64);
            let r = p.test_run(o).expect("live-frames test run");
            sent += per_call as u64;
            let spent = r.duration * per_call;
            looping += spent;
            // Size the next call to about 150 ms of frames at the rate just seen, so that the
            // rotation stays quick and a slow receiver does not stretch the window.
            let next = per_call as f64 * 0.15 / spent.as_secs_f64().max(1e-3);
            per_call = next.clamp(65_536.0, 4_194_304.0) as u32;
        }
        Generated { frames: sent, wall: start.elapsed(), looping }
    })
}

/// The allowed peer's steady traffic: `pps` frames a second for `window`, paced in 1 ms slots,
/// through an AF_PACKET socket on `ifname`, from the first CPU. Returns (sent, send errors).
fn steady(
    ns: PathBuf,
    ifname: String,
    frame: Vec<u8>,
    pps: u64,
    window: Duration,
) -> std::thread::JoinHandle<(u64, u64)> {
    std::thread::spawn(move || {
        pin_to(0);
        enter(&ns);
        let proto = (libc::ETH_P_ALL as u16).to_be() as i32;
        // SAFETY: plain socket(2); owned right after.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto) };
        assert!(fd >= 0, "AF_PACKET socket");
        // SAFETY: fresh valid descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_ll is plain data.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto as u16;
        sll.sll_ifindex = ifindex(&ifname) as i32;
        // SAFETY: bind with a correctly sized sockaddr_ll.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(rc, 0, "bind AF_PACKET");
        let total = pps * window.as_millis() as u64 / 1000;
        let start = Instant::now();
        let (mut sent, mut errors) = (0u64, 0u64);
        while sent + errors < total && start.elapsed() < window + Duration::from_secs(1) {
            let due = (start.elapsed().as_micros() as u64 * pps / 1_000_000 + 1).min(total);
            while sent + errors < due {
                // SAFETY: frame is a valid buffer of frame.len() bytes.
                let n = unsafe { libc::send(fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
                if n == frame.len() as isize {
                    sent += 1;
                } else {
                    errors += 1;
                }
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        (sent, errors)
    })
}

fn percpu_sum(ebpf: &Ebpf, map: &str, idx: u32) -> u64 {
    let m: PerCpuArray<_, u64> = PerCpuArray::try_from(ebpf.map(map).unwrap()).unwrap();
    m.get(&idx, 0).unwrap().iter().sum()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Config {
    Sigwall,
    XdpDrop,
    Nft,
    /// sigwall under the spoofed flood (`gen_spoof`: a new source on every IPv4 frame).
    SigwallSpoofed,
    /// The counting XDP_DROP under the same spoofed flood: the spoofed rows' baseline.
    XdpDropSpoofed,
    /// sigwall with its source cache off under the spoofed flood: what the cache costs when it
    /// misses on every frame.
    SigwallSpoofedNoCache,
    /// The allowlist floor (`floor_any`: the source read, one LPM lookup in the same 1,000
    /// prefixes, one counter, XDP_DROP on a miss) under the fixed flood: what any allowlist
    /// filter pays that the counting XDP_DROP, which never reads the frame, does not.
    Floor,
    /// The floor under the spoofed flood.
    FloorSpoofed,
}

impl Config {
    const ALL: [Config; 8] = [
        Config::Sigwall,
        Config::XdpDrop,
        Config::Nft,
        Config::SigwallSpoofed,
        Config::XdpDropSpoofed,
        Config::SigwallSpoofedNoCache,
        Config::Floor,
        Config::FloorSpoofed,
    ];
    fn id(self) -> &'static str {
        match self {
            Config::Sigwall => "sigwall",
            Config::XdpDrop => "xdp_drop",
            Config::Nft => "nft",
            Config::SigwallSpoofed => "sigwall_spoofed",
            Config::XdpDropSpoofed => "xdp_drop_spoofed",
            Config::SigwallSpoofedNoCache => "sigwall_spoofed_no_cache",
            Config::Floor => "floor",
            Config::FloorSpoofed => "floor_spoofed",
        }
    }
    fn label(self) -> &'static str {
        match self {
            Config::Sigwall => "sigwall (native XDP, 1,000-prefix allowlist)",
            Config::XdpDrop => "trivial counting XDP_DROP",
            Config::Nft => "XDP_PASS + nftables netdev ingress (same allowlist)",
            Config::SigwallSpoofed => "sigwall, spoofed flood (a new IPv4 source every frame)",
            Config::XdpDropSpoofed => "trivial counting XDP_DROP, spoofed flood",
            Config::SigwallSpoofedNoCache => "sigwall with its source cache off, spoofed flood",
            Config::Floor => "allowlist floor (source + LPM in the same 1,000 prefixes + counter)",
            Config::FloorSpoofed => "allowlist floor, spoofed flood",
        }
    }
    fn xdp_drop(self) -> bool {
        matches!(self, Config::XdpDrop | Config::XdpDropSpoofed)
    }
    /// The generator program: the fixed rotation, or the same frames with a new source each.
    fn generator(self) -> &'static str {
        if matches!(
            self,
            Config::SigwallSpoofed | Config::XdpDropSpoofed | Config::SigwallSpoofedNoCache | Config::FloorSpoofed
        ) {
            "gen_spoof"
        } else {
            "gen_tx"
        }
    }
    /// The XDP_DROP row this row's flood is compared with (the same generator).
    fn baseline(self) -> Config {
        if self.generator() == "gen_spoof" { Config::XdpDropSpoofed } else { Config::XdpDrop }
    }
}

/// One window's figures.
#[derive(Clone, Copy, Default, Debug)]
struct Sample {
    offered_pps: f64,
    absorbed_pps: f64,
    dropped_pps: f64,
    /// Dropped over the generator's frame loops as the kernel times them (JSON only).
    dropped_loop_pps: f64,
    dropped_pps_with_steady: f64,
    allowed_sent: u64,
    allowed_send_errors: u64,
    allowed_passed: u64,
}

fn main() {
    let a = args();
    let peers = allowlist();
    let policy_text = policy_toml(&peers);
    let pol = policy::parse("bench.toml", &policy_text, &Default::default()).expect("bench policy");

    let lab = Lab::new();
    let ipx = Lab::ns_path(&lab.ipx_ns);
    let edge = Lab::ns_path(&lab.edge_ns);
    // The main thread works in the edge namespace (attaching resolves the interface name in the
    // caller's namespace); it goes back before the lab is removed.
    let home = File::open("/proc/thread-self/ns/net").expect("own network namespace");
    enter(&edge);

    let mut filter = Filter::load(0).expect("load sigwall (needs root)");
    let compiled = filter.compile(&pol).expect("compile the bench policy");
    filter.apply(&compiled, policy::sha256(&policy_text)).expect("apply the bench policy");
    let mut no_cache = Filter::load_without_source_cache().expect("load sigwall, source cache off");
    let compiled = no_cache.compile(&pol).expect("compile the bench policy");
    no_cache.apply(&compiled, policy::sha256(&policy_text)).expect("apply the bench policy");
    let mut base = EbpfLoader::new().load(BASELINES).expect("load baselines");
    for name in ["drop_count", "pass_count", "floor_any"] {
        let p: &mut Xdp = base.program_mut(name).unwrap().try_into().unwrap();
        p.load().expect("load baseline");
    }
    fill_floor(&mut base, peers.iter().flatten().map(|p| p.parse::<ipnet::IpNet>().expect("bench prefix")));

    let d4: IpAddr = "198.18.0.2".parse().unwrap();
    let d6: IpAddr = "2001:db8::2".parse().unwrap();
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
    let gtpu = |teid: u32, sport: u16| L4::Udp {
        sport,
        dport: 2152,
        payload: packets::gtpu(teid, &packets::inner_ipv4_udp()),
    };
    let flood: Vec<Vec<u8>> = vec![
        Frame::new(ip("198.19.200.1"), d4, gtpu(1, 2152)).bytes(),
        Frame::new(ip("198.19.200.2"), d4, gtpu(2, 40002)).bytes(),
        Frame::new(ip("198.19.200.3"), d4, gtpu(3, 40003)).bytes(),
        Frame::new(
            ip("198.19.200.4"),
            d4,
            L4::Udp { sport: 40004, dport: 2123, payload: packets::gtpv2c(32, 0, 4, &[]) },
        )
        .bytes(),
        Frame::new(
            ip("198.19.200.5"),
            d4,
            L4::Tcp { sport: 40005, dport: 3868, payload: packets::diameter_message(316, 16777251) },
        )
        .bytes(),
        Frame::new(
            ip("198.19.200.6"),
            d4,
            L4::Sctp { sport: 2905, dport: 2905, chunks: vec![packets::data_chunk(3, &packets::m3ua_data())] },
        )
        .bytes(),
        Frame::new(
            ip("2001:db8:ffff::7"),
            d6,
            L4::Udp { sport: 40007, dport: 2123, payload: packets::gtpv2c(32, 0, 7, &[]) },
        )
        .bytes(),
        Frame::new(ip("2001:db8:ffff::8"), d6, gtpu(8, 40008)).bytes(),
    ];
    let allowed_frame = Frame::new(ip("198.18.10.5"), d4, gtpu(99, 2152)).bytes();

    let mut samples: Vec<(Config, Sample)> = Vec::new();
    for run in 0..a.runs {
        for cfg in Config::ALL {
            // Attach the receiver for this configuration.
            let mut sig_link = None;
            let mut base_link = None;
            let filter = if cfg == Config::SigwallSpoofedNoCache { &mut no_cache } else { &mut filter };
            match cfg {
                Config::Sigwall | Config::SigwallSpoofed | Config::SigwallSpoofedNoCache => {
                    // Attached like `sigwall run --xdp-mode native`, without the daemon's pins.
                    let p = filter.program().expect("sigwall program");
                    sig_link = Some(p.attach(&lab.edge_if, XdpMode::Driver).expect("attach sigwall (native)"));
                }
                Config::XdpDrop | Config::XdpDropSpoofed | Config::Nft | Config::Floor | Config::FloorSpoofed => {
                    let name = match cfg {
                        Config::XdpDrop | Config::XdpDropSpoofed => "drop_count",
                        Config::Nft => "pass_count",
                        _ => "floor_any",
                    };
                    let p: &mut Xdp = base.program_mut(name).unwrap().try_into().unwrap();
                    base_link = Some((name, p.attach(&lab.edge_if, XdpMode::Driver).expect("attach baseline")));
                }
            }
            if a.own_core {
                let n = receiver_on_cpu0(&lab.edge_ns, &lab.edge_if).expect("receiver on its own core");
                eprintln!("veth: {n} NAPI thread(s) of {} pinned to CPU 0", lab.edge_if);
            }
            if cfg == Config::Nft {
                nft(&lab.edge_ns, &["-f", "-"], Some(&nft_ruleset(&lab.edge_if, &peers)));
            }
            // (absorbed at XDP, dropped, allowed peer passed) so far.
            let read = |filter: &Filter, base: &Ebpf| -> (u64, u64, u64) {
                match cfg {
                    Config::Sigwall | Config::SigwallSpoofed | Config::SigwallSpoofedNoCache => {
                        let s = stats::of_filter(filter).expect("counters");
                        let total: u64 = Reason::ALL.iter().map(|r| s.reason(*r)).sum();
                        let passed = s.peer("partner").map(|p| p.passed).unwrap_or(0);
                        (total, s.reason(Reason::NotAllowlisted), passed)
                    }
                    Config::XdpDrop | Config::XdpDropSpoofed => {
                        let n = percpu_sum(base, "BENCH_COUNT", 0);
                        (n, n, 0)
                    }
                    Config::Nft => {
                        let (al, dr) = nft_counters(&lab.edge_ns);
                        (percpu_sum(base, "BENCH_COUNT", 1), dr, al)
                    }
                    Config::Floor | Config::FloorSpoofed => {
                        // Slot 0: misses (dropped), slot 1: hits (only the allowed peer's frames).
                        let (miss, hit) = (percpu_sum(base, "FLOOR_COUNT", 0), percpu_sum(base, "FLOOR_COUNT", 1));
                        (miss + hit, miss, hit)
                    }
                }
            };
            // Window 1: the flood alone, for the rates. Window 2: the flood and the allowed
            // peer's steady traffic, for its loss (the steady sender's wake-ups disturb the
            // generator's pacing, so the rates come from the first window).
            let mut sample = Sample::default();
            for with_steady in [false, true] {
                let before = read(filter, &base);
                let g = generate(cfg.generator(), ipx.clone(), lab.ipx_if.clone(), flood.clone(), a.per_call, a.window);
                let pps = if with_steady { a.allowed_pps } else { 0 };
                let s = steady(ipx.clone(), lab.ipx_if.clone(), allowed_frame.clone(), pps, a.window);
                let generated = g.join().expect("generator");
                let (sent, errors) = s.join().expect("steady sender");
                std::thread::sleep(Duration::from_millis(50));
                let after = read(filter, &base);
                // Rates over the window as the wall clock saw it: the receiver's own work is
                // all inside it, whether done inline after a generator batch or in ksoftirqd.
                let secs = generated.wall.as_secs_f64();
                if with_steady {
                    sample.allowed_sent = sent;
                    sample.allowed_send_errors = errors;
                    sample.allowed_passed = after.2 - before.2;
                    sample.dropped_pps_with_steady = (after.1 - before.1) as f64 / secs;
                } else {
                    sample.offered_pps = generated.frames as f64 / secs;
                    sample.absorbed_pps = (after.0 - before.0) as f64 / secs;
                    sample.dropped_pps = (after.1 - before.1) as f64 / secs;
                    sample.dropped_loop_pps = (after.1 - before.1) as f64 / generated.looping.as_secs_f64();
                }
            }
            eprintln!(
                "veth: run {} {:<8} offered {:>5.2} Mpps, absorbed {:>5.2} Mpps, dropped {:>5.2} Mpps ({:.2} with the steady sender); allowed sent {} (+{} send errors), passed {}",
                run + 1,
                cfg.id(),
                sample.offered_pps / 1e6,
                sample.absorbed_pps / 1e6,
                sample.dropped_pps / 1e6,
                sample.dropped_pps_with_steady / 1e6,
                sample.allowed_sent,
                sample.allowed_send_errors,
                sample.allowed_passed
            );
            samples.push((cfg, sample));

            // Detach.
            if cfg == Config::Nft {
                nft(&lab.edge_ns, &["delete", "table", "netdev", NFT_TABLE], None);
            }
            if let Some(id) = sig_link {
                filter.program().expect("sigwall program").detach(id).expect("detach sigwall");
            }
            if let Some((name, id)) = base_link {
                let p: &mut Xdp = base.program_mut(name).unwrap().try_into().unwrap();
                p.detach(id).expect("detach baseline");
            }
        }
    }
    drop(filter);
    drop(no_cache);
    drop(base);
    // SAFETY: setns back into the namespace this thread started in.
    let rc = unsafe { libc::setns(home.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns back");
    drop(lab);

    // Report.
    let of = |c: Config| -> Vec<Sample> { samples.iter().filter(|(k, _)| *k == c).map(|(_, s)| *s).collect() };
    let field = |c: Config, f: fn(&Sample) -> f64| Stats::of(&of(c).iter().map(f).collect::<Vec<_>>());
    let drop_med = |c: Config| field(c, |s| s.dropped_pps).median;
    let xdp_drop = drop_med(Config::XdpDrop);
    // How much of the wall-clock windows the kernel's timing of the frame loops covers.
    let duty = Stats::of(
        &samples
            .iter()
            .filter(|(_, s)| s.dropped_loop_pps > 0.0)
            .map(|(_, s)| s.dropped_pps / s.dropped_loop_pps)
            .collect::<Vec<_>>(),
    )
    .median;
    let mut md = format!(
        "Flood from unknown sources (8 frame variants in rotation, one per generator call: 6 IPv4 and 2 IPv6 \
source addresses, 8 source ports; GTP-U, GTP-C, Diameter/TCP, SCTP M3UA) pushed by an XDP_TX live-frames \
generator (first call {} frames, then about 150 ms of frames per call; batch 64) into a veth pair for {:.1} s per run; median of {} interleaved runs \
(min-max). {} Rates are counter deltas over the wall-clock window, from the generator's first \
call to the end of its last. The kernel's own timing of the frame loops covers only {:.0}% of that \
window (the rest is each live-frames run's set-up and tear-down, and receive work done while the \
generator yields the core), so it is not used. In a second window of the same length right after, \
the flood runs again while an allowed peer (198.18.10.5, in the 1,000-prefix allowlist) sends {} GTP-U \
packets/s through an AF_PACKET socket from the generator's core; its loss is attempted minus what the \
filter counted as passed for it, split into frames the veth refused (its 256-frame ring full: lost \
before any XDP program) and frames lost after. Under the counting XDP_DROP, which drops the peer too, \
only the frames the veth refused are counted: the loss the ring causes at that flood rate, to set \
beside each filter's.\n\n",
        a.per_call,
        a.window.as_secs_f64(),
        a.runs,
        if a.own_core {
            "Receiver on its own core: the edge veth uses threaded NAPI, its thread pinned to CPU 0; the \
generator runs on the other core and offers more than the receivers take (overload): what is offered \
and not absorbed overflowed the veth ring (256 frames) before reaching XDP, as a NIC ring overflows."
        } else {
            "Shared core: the generator, the steady sender and the receiving NAPI run on one core (the frames \
are received in the softirq after each generator batch), so a rate is what one core sustains generating and \
filtering together, and the generator is paced by the receiver."
        },
        duty * 100.0,
        a.allowed_pps
    );
    md += &format!(
        "| receiver on the edge veth | dropped Mpps | min-max | x XDP_DROP | ns/packet ({}) | extra ns/packet over XDP_DROP | offered Mpps | absorbed at XDP Mpps | allowed peer: attempted / passed | allowed lost |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
        if a.own_core { "receiver core" } else { "generator + receiver" }
    );
    let mut rows = Vec::new();
    for c in Config::ALL {
        let v = of(c);
        let d = field(c, |s| s.dropped_pps);
        let o = field(c, |s| s.offered_pps);
        let ab = field(c, |s| s.absorbed_pps);
        let dl = field(c, |s| s.dropped_loop_pps);
        let sent: u64 = v.iter().map(|s| s.allowed_sent).sum();
        let errs: u64 = v.iter().map(|s| s.allowed_send_errors).sum();
        let passed: u64 = v.iter().map(|s| s.allowed_passed).sum();
        let attempted = sent + errs;
        let (passed_cell, lost_cell) = if c.xdp_drop() {
            // It drops the peer's frames too, so only what the veth refused before any program
            // is a loss of the same kind: the ring's own share, to set beside the filters'.
            (
                format!("{attempted} / -"),
                format!(
                    "{errs} ({:.2}%) refused by the veth (ring full); the rest dropped by the program",
                    100.0 * errs as f64 / attempted.max(1) as f64
                ),
            )
        } else {
            let lost = attempted.saturating_sub(passed);
            (
                format!("{attempted} / {passed}"),
                format!(
                    "{lost} ({:.2}%): {errs} refused by the veth (ring full), {} after it",
                    100.0 * lost as f64 / attempted.max(1) as f64,
                    lost.saturating_sub(errs)
                ),
            )
        };
        md += &format!(
            "| {} | {:.2} | {:.2}-{:.2} | {:.2} | {:.0} | {:.0} | {:.2} | {:.2} | {passed_cell} | {lost_cell} |\n",
            c.label(),
            d.median / 1e6,
            d.min / 1e6,
            d.max / 1e6,
            d.median / drop_med(c.baseline()),
            1e9 / d.median,
            1e9 / d.median - 1e9 / drop_med(c.baseline()),
            o.median / 1e6,
            ab.median / 1e6,
        );
        rows.push(json!({
            "id": c.id(), "label": c.label(),
            "dropped_pps": {"median": d.median, "min": d.min, "max": d.max},
            "dropped_loop_pps": {"median": dl.median, "min": dl.min, "max": dl.max},
            "offered_pps": {"median": o.median, "min": o.min, "max": o.max},
            "absorbed_pps": {"median": ab.median, "min": ab.min, "max": ab.max},
            "baseline": c.baseline().id(),
            "x_xdp_drop": d.median / drop_med(c.baseline()),
            "ns_per_packet": 1e9 / d.median, "extra_ns_over_xdp_drop": 1e9 / d.median - 1e9 / drop_med(c.baseline()),
            "allowed": {"attempted": attempted, "send_errors": errs, "passed": passed,
                        "applicable": !c.xdp_drop()},
            "samples": v.iter().map(|s| json!({
                "offered_pps": s.offered_pps, "absorbed_pps": s.absorbed_pps,
                "dropped_pps": s.dropped_pps, "dropped_loop_pps": s.dropped_loop_pps,
                "dropped_pps_with_steady": s.dropped_pps_with_steady,
                "allowed_sent": s.allowed_sent, "allowed_send_errors": s.allowed_send_errors,
                "allowed_passed": s.allowed_passed,
            })).collect::<Vec<_>>(),
        }));
    }
    md += &format!(
        "\nsigwall drops {:.2}x what XDP_PASS + nftables drops, and {:.2}x what the trivial XDP_DROP absorbs; \
under the spoofed flood (every IPv4 source new, so sigwall's source cache misses on every such frame and the \
trie is walked), {:.2}x what the trivial XDP_DROP absorbs of the same flood, and {:.2}x what sigwall with its \
cache off drops of it. Each row's \"x XDP_DROP\" is against the XDP_DROP row of its own generator. \
The allowlist floor, which reads each frame's source and looks it up in the same 1,000 prefixes, drops {:.2}x \
what the XDP_DROP absorbs ({:.2}x under the spoofed flood): sigwall drops {:.2}x what the floor drops ({:.2}x \
under the spoofed flood).\n",
        drop_med(Config::Sigwall) / drop_med(Config::Nft),
        drop_med(Config::Sigwall) / xdp_drop,
        drop_med(Config::SigwallSpoofed) / drop_med(Config::XdpDropSpoofed),
        drop_med(Config::SigwallSpoofed) / drop_med(Config::SigwallSpoofedNoCache),
        drop_med(Config::Floor) / xdp_drop,
        drop_med(Config::FloorSpoofed) / drop_med(Config::XdpDropSpoofed),
        drop_med(Config::Sigwall) / drop_med(Config::Floor),
        drop_med(Config::SigwallSpoofed) / drop_med(Config::FloorSpoofed),
    );
    print!("{md}");
    std::fs::create_dir_all(&a.out).expect("create output directory");
    let name = if a.own_core { "veth-own-core" } else { "veth-shared" };
    std::fs::write(a.out.join(format!("{name}.md")), &md).expect("write veth md");
    let doc = json!({
        "window_s": a.window.as_secs_f64(), "runs": a.runs, "allowed_pps": a.allowed_pps,
        "per_call": a.per_call, "receiver": if a.own_core { "own-core" } else { "shared" }, "configs": rows,
    });
    std::fs::write(a.out.join(format!("{name}.json")), serde_json::to_string_pretty(&doc).unwrap())
        .expect("write veth json");
}
