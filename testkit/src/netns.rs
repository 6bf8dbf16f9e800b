//! A two-namespace veth lab ("ipx" peer side, "edge" side running sigwall), raw frame sending
//! and capturing inside it, and a guard that removes everything it made, also on panic.

use std::{
    ffi::CString,
    fs::File,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    path::PathBuf,
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU32, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

static SEQ: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip(8)");
    assert!(out.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// Two namespaces joined by a veth pair. Dropping it deletes both namespaces (and so the pair).
pub struct Lab {
    pub ipx_ns: String,
    pub edge_ns: String,
    /// The veth end inside the ipx namespace.
    pub ipx_if: String,
    /// The veth end inside the edge namespace: attach sigwall here.
    pub edge_if: String,
}

impl Lab {
    /// Creates `swt<pid>-<n>-ipx` and `swt<pid>-<n>-edge` ("swt": sigwall test, apart from the
    /// operators' `sw-lab-*` of scripts/veth-lab.sh, so `cargo xtask test`'s leftover check
    /// does not mistake a running lab for a leak); interface names stay under 15 bytes.
    #[expect(
        clippy::new_without_default,
        reason = "new() creates namespaces and a veth pair: a side effect, not a default value"
    )]
    pub fn new() -> Lab {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        let tag = format!("{pid:x}{n:x}");
        let lab = Lab {
            ipx_ns: format!("swt{tag}-ipx"),
            edge_ns: format!("swt{tag}-edge"),
            ipx_if: format!("swi{tag}"),
            edge_if: format!("swe{tag}"),
        };
        assert!(lab.edge_if.len() <= 15, "interface name {} too long", lab.edge_if);
        // From here on, Drop cleans up whatever exists.
        ip(&["netns", "add", &lab.ipx_ns]);
        ip(&["netns", "add", &lab.edge_ns]);
        ip(&[
            "link",
            "add",
            &lab.ipx_if,
            "netns",
            &lab.ipx_ns,
            "type",
            "veth",
            "peer",
            "name",
            &lab.edge_if,
            "netns",
            &lab.edge_ns,
        ]);
        for (ns, ifname, addr4, addr6) in [
            (&lab.ipx_ns, &lab.ipx_if, "198.18.0.1/24", "2001:db8::1/64"),
            (&lab.edge_ns, &lab.edge_if, "198.18.0.2/24", "2001:db8::2/64"),
        ] {
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", ns, "addr", "add", addr4, "dev", ifname]);
            ip(&["-n", ns, "addr", "add", addr6, "dev", ifname, "nodad"]);
            ip(&["-n", ns, "link", "set", ifname, "up"]);
        }
        lab
    }

    pub fn ns_path(ns: &str) -> PathBuf {
        PathBuf::from("/run/netns").join(ns)
    }

    /// A command that runs in the edge namespace but keeps the host's bpffs (unlike
    /// `ip netns exec`, which remounts /sys and hides the pins).
    pub fn edge_command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", Lab::ns_path(&self.edge_ns).display())).arg("--").arg(program);
        c
    }

    /// Whether an XDP program is attached to the edge interface (`ip link show` names it).
    pub fn xdp_attached(&self) -> bool {
        let out = Command::new("ip").args(["-n", &self.edge_ns, "link", "show", &self.edge_if]).output().expect("ip");
        String::from_utf8_lossy(&out.stdout).contains("xdp")
    }

    /// A command in the ipx namespace (same bpffs note).
    pub fn ipx_command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", Lab::ns_path(&self.ipx_ns).display())).arg("--").arg(program);
        c
    }

    pub fn sender(&self) -> RawSocket {
        RawSocket::open(&self.ipx_ns, &self.ipx_if)
    }

    pub fn capture(&self) -> Capture {
        Capture::start(&self.edge_ns, &self.edge_if)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in [&self.ipx_ns, &self.edge_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

/// Run `f` on a thread that has entered network namespace `ns`, and return its result. Sockets
/// made there stay in that namespace for their whole life.
pub fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = Lab::ns_path(ns);
    std::thread::spawn(move || {
        let file = File::open(&path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
        // SAFETY: setns on a valid namespace fd affects only this thread.
        let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns {}: {}", path.display(), std::io::Error::last_os_error());
        f()
    })
    .join()
    .expect("namespace thread panicked")
}

fn ifindex(name: &str) -> u32 {
    let c = CString::new(name).unwrap();
    // SAFETY: valid C string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    assert!(i != 0, "interface {name} not found");
    i
}

fn packet_socket(ifname: &str) -> OwnedFd {
    let proto = (libc::ETH_P_ALL as u16).to_be() as i32;
    // SAFETY: plain socket(2); the fd is owned right after.
    let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto) };
    assert!(fd >= 0, "AF_PACKET socket: {}", std::io::Error::last_os_error());
    // SAFETY: fd is a fresh, valid descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain data; zeroed then filled.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto as u16;
    sll.sll_ifindex = ifindex(ifname) as i32;
    // SAFETY: bind with a correctly sized sockaddr_ll.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            &sll as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_ll>() as u32,
        )
    };
    assert_eq!(rc, 0, "bind AF_PACKET to {ifname}: {}", std::io::Error::last_os_error());
    fd
}

/// Sends whole Ethernet frames out of one interface.
pub struct RawSocket {
    fd: OwnedFd,
}

impl RawSocket {
    pub fn open(ns: &str, ifname: &str) -> RawSocket {
        let ifname = ifname.to_string();
        RawSocket { fd: in_netns(ns, move || packet_socket(&ifname)) }
    }

    pub fn send(&self, frame: &[u8]) {
        // SAFETY: frame is a valid buffer of frame.len() bytes.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(n, frame.len() as isize, "send: {}", std::io::Error::last_os_error());
    }
}

/// Frames received on one interface (incoming only), collected by a background thread.
pub struct Capture {
    frames: Arc<Mutex<Vec<Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Capture {
    pub fn start(ns: &str, ifname: &str) -> Capture {
        let ifname = ifname.to_string();
        let fd = in_netns(ns, move || packet_socket(&ifname));
        let tv = libc::timeval { tv_sec: 0, tv_usec: 50_000 };
        // SAFETY: SO_RCVTIMEO with a timeval, so the loop below sees `stop` at least every 50 ms.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            );
        }
        let buf: libc::c_int = 64 << 20;
        // SAFETY: SO_RCVBUFFORCE with an int (root may exceed rmem_max): a burst of test frames
        // must not overflow the capture and look like a drop.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUFFORCE,
                &buf as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as u32,
            );
        }
        let frames = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (f2, s2) = (frames.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !s2.load(Ordering::Relaxed) {
                // SAFETY: sockaddr_ll is plain data, filled by recvfrom.
                let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
                let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
                // SAFETY: buf and sll are valid for the sizes given.
                let n = unsafe {
                    libc::recvfrom(
                        fd.as_raw_fd(),
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        0,
                        &mut sll as *mut _ as *mut libc::sockaddr,
                        &mut len,
                    )
                };
                if n > 0 && sll.sll_pkttype != libc::PACKET_OUTGOING {
                    f2.lock().unwrap().push(buf[..n as usize].to_vec());
                }
            }
        });
        Capture { frames, stop, thread: Some(thread) }
    }

    /// Wait until no new frame has arrived for `quiet`, at most `limit`; then stop and return
    /// everything captured.
    pub fn finish(mut self, quiet: Duration, limit: Duration) -> Vec<Vec<u8>> {
        let start = Instant::now();
        let mut last = (0, Instant::now());
        while start.elapsed() < limit {
            let n = self.frames.lock().unwrap().len();
            if n != last.0 {
                last = (n, Instant::now());
            } else if last.1.elapsed() >= quiet {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.frames.lock().unwrap())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// In-path mode's three namespaces: an interconnect side (`ic`: the IPX/GRX router, with the
/// partners' addresses 198.18.1.10 and .11 and an address in no peer, 198.18.1.99), sigwall's namespace
/// with the two ports (A towards the interconnect, B towards the core, no addresses), and the
/// core (`core`: the STP/DEA/PGW, 198.18.1.20). ic and core are one L2 segment through sigwall.
/// Every veth end has two queues (one AF_XDP socket per queue). Dropping it deletes all three
/// namespaces and so every veth pair.
pub struct InpathLab {
    /// `lab.ipx_ns`/`lab.ipx_if`: the interconnect side; `lab.edge_ns`/`lab.edge_if`: sigwall's
    /// namespace and port A (`--iface`), so [`crate::daemon::Daemon::start`] runs there.
    pub lab: Lab,
    /// Port B (`--forward-to`), in `lab.edge_ns`.
    pub fwd_if: String,
    pub core_ns: String,
    pub core_if: String,
}

/// The interconnect side's addresses: the partner, and a source in no peer.
pub const IC_PARTNER: &str = "198.18.1.10";
pub const IC_UNKNOWN: &str = "198.18.1.99";
/// A second partner (e.g. one that fails open).
pub const IC_PARTNER2: &str = "198.18.1.11";
pub const IC_PARTNER6: &str = "2001:db8:1::10";
/// The core side's address.
pub const CORE_ADDR: &str = "198.18.1.20";
pub const CORE_ADDR6: &str = "2001:db8:1::20";

impl InpathLab {
    #[expect(
        clippy::new_without_default,
        reason = "new() creates namespaces and veth pairs: a side effect, not a default value"
    )]
    pub fn new() -> InpathLab {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let tag = format!("{:x}{n:x}", std::process::id());
        let l = InpathLab {
            lab: Lab {
                ipx_ns: format!("swt{tag}-ic"),
                edge_ns: format!("swt{tag}-sw"),
                ipx_if: format!("swi{tag}"),
                edge_if: format!("swa{tag}"),
            },
            fwd_if: format!("swb{tag}"),
            core_ns: format!("swt{tag}-core"),
            core_if: format!("swc{tag}"),
        };
        assert!(l.fwd_if.len() <= 15, "interface name {} too long", l.fwd_if);
        // From here on, Drop removes whatever exists.
        for ns in [&l.lab.ipx_ns, &l.lab.edge_ns, &l.core_ns] {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        let q = ["numtxqueues", "2", "numrxqueues", "2"];
        for (a, a_ns, b, b_ns) in [
            (&l.lab.ipx_if, &l.lab.ipx_ns, &l.lab.edge_if, &l.lab.edge_ns),
            (&l.fwd_if, &l.lab.edge_ns, &l.core_if, &l.core_ns),
        ] {
            let mut args = vec!["link", "add", a.as_str(), "netns", a_ns.as_str()];
            args.extend(q);
            args.extend(["type", "veth", "peer", "name", b.as_str(), "netns", b_ns.as_str()]);
            args.extend(q);
            ip(&args);
        }
        for (ns, ifname, addrs) in [
            (&l.lab.ipx_ns, &l.lab.ipx_if, &[IC_PARTNER, IC_PARTNER2, IC_UNKNOWN, IC_PARTNER6][..]),
            (&l.core_ns, &l.core_if, &[CORE_ADDR, CORE_ADDR6][..]),
        ] {
            for a in addrs {
                let with_len = if a.contains(':') { format!("{a}/64") } else { format!("{a}/24") };
                let mut args = vec!["-n", ns.as_str(), "addr", "add", with_len.as_str(), "dev", ifname.as_str()];
                if a.contains(':') {
                    args.push("nodad");
                }
                ip(&args);
            }
        }
        for (ns, ifname) in [
            (&l.lab.ipx_ns, &l.lab.ipx_if),
            (&l.lab.edge_ns, &l.lab.edge_if),
            (&l.lab.edge_ns, &l.fwd_if),
            (&l.core_ns, &l.core_if),
        ] {
            ip(&["-n", ns, "link", "set", ifname, "up"]);
        }
        // The hosts at both ends: no checksum offload (locally made TCP/UDP would cross the XDP
        // redirect with a partial checksum) and GRO on, which gives a veth NAPI, without which
        // it drops frames redirected to its peer (see docs/design/in-path.md, section 5).
        for (ns, ifname) in [(&l.lab.ipx_ns, &l.lab.ipx_if), (&l.core_ns, &l.core_if)] {
            let ifname = ifname.clone();
            in_netns(ns, move || {
                ethtool_set(&ifname, ETHTOOL_STXCSUM, 0);
                ethtool_set(&ifname, ETHTOOL_SGRO, 1);
            });
        }
        l
    }

    /// The core side's namespace as a command prefix (see [`Lab::edge_command`]).
    pub fn core_command(&self, program: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", Lab::ns_path(&self.core_ns).display())).arg("--").arg(program);
        c
    }
}

impl Drop for InpathLab {
    fn drop(&mut self) {
        // `lab` removes the other two namespaces when it drops, right after this.
        let _ = Command::new("ip").args(["netns", "del", &self.core_ns]).output();
    }
}

/// `ethtool -K` through the legacy ioctls (the `ethtool` binary is not needed): translated by
/// the kernel into feature changes for any device.
const ETHTOOL_STXCSUM: u32 = 0x17;
const ETHTOOL_SGRO: u32 = 0x2c;

fn ethtool_set(ifname: &str, cmd: u32, on: u32) {
    #[repr(C)]
    struct EthtoolValue {
        cmd: u32,
        data: u32,
    }
    #[repr(C)]
    struct Ifreq {
        name: [u8; 16],
        data: *mut EthtoolValue,
        _pad: [u8; 16],
    }
    let mut v = EthtoolValue { cmd, data: on };
    let mut req = Ifreq { name: [0; 16], data: &mut v, _pad: [0; 16] };
    req.name[..ifname.len()].copy_from_slice(ifname.as_bytes());
    // SAFETY: plain socket(2); closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) };
    assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
    // SAFETY: SIOCETHTOOL with an ifreq whose data points at a live ethtool_value.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCETHTOOL, &mut req as *mut Ifreq) };
    let err = std::io::Error::last_os_error();
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    assert_eq!(rc, 0, "ethtool cmd {cmd:#x} on {ifname}: {err}");
}

/// One ICMP echo from namespace `ns` to `dst` (IPv4), through a raw socket (no `ping` binary
/// needed); true if the reply came within `wait`. The first one also resolves ARP.
pub fn ping(ns: &str, dst: &str, wait: Duration) -> bool {
    let dst: std::net::Ipv4Addr = dst.parse().expect("an IPv4 address");
    in_netns(ns, move || {
        // SAFETY: plain socket(2); owned right after.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_ICMP) };
        assert!(fd >= 0, "raw ICMP socket: {}", std::io::Error::last_os_error());
        // SAFETY: fresh descriptor.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let id = (std::process::id() & 0xffff) as u16;
        let mut req = [8u8, 0, 0, 0, (id >> 8) as u8, id as u8, 0, 1, b's', b'w', b'p', b'i', b'n', b'g', 0, 0];
        let sum = crate::packets::checksum(&[&req]);
        req[2..4].copy_from_slice(&sum.to_be_bytes());
        // SAFETY: sockaddr_in is plain data.
        let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
        sa.sin_family = libc::AF_INET as u16;
        sa.sin_addr.s_addr = u32::from_ne_bytes(dst.octets());
        let tv = libc::timeval { tv_sec: 0, tv_usec: 100_000 };
        // SAFETY: valid buffers and sizes.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            );
            libc::sendto(
                fd.as_raw_fd(),
                req.as_ptr().cast(),
                req.len(),
                0,
                &sa as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_in>() as u32,
            );
        }
        let deadline = Instant::now() + wait;
        let mut buf = [0u8; 1500];
        while Instant::now() < deadline {
            // SAFETY: buf is valid for its length.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n < 28 {
                continue;
            }
            let ihl = (buf[0] & 0xf) as usize * 4;
            let (src, icmp) = (&buf[12..16], &buf[ihl..n as usize]);
            if src == dst.octets() && icmp.len() >= 8 && icmp[0] == 0 && icmp[4..6] == req[4..6] {
                return true;
            }
        }
        false
    })
}
