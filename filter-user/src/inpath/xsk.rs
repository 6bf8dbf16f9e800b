//! AF_XDP through the kernel's UAPI (`linux/if_xdp.h`, via `libc`): one UMEM, an RX socket on
//! the interconnect side's queue and a TX socket on the core side's queue sharing that UMEM
//! (kernel 5.10: shared UMEM between devices), so an allowed frame leaves by the core side from
//! the very bytes it arrived in. docs/design/in-path.md section 2 says why no crate: xsk-rs
//! brings libxdp/libbpf and a C toolchain and loads an XDP program of its own, xdpilone is
//! EUPL-1.2, afxdp is unmaintained; this is one mmap per ring and four ring operations.
//!
//! Copy mode only (veth has no zero-copy; a NIC would add `XDP_ZEROCOPY`). Frame lifecycle:
//! fill ring -> the kernel writes a frame -> RX ring -> (judged) -> TX ring of the core socket
//! -> its completion ring -> fill ring again; a dropped frame goes straight back to the fill
//! ring. Every frame of the UMEM is always in exactly one of those places or in the worker's
//! hands, so the fill ring, as large as the UMEM, can never overflow.
//!
//! Each ring has one user-space owner (the worker thread): producer and consumer indices are
//! shared with the kernel and read with Acquire, written with Release.

use std::{
    io,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
    sync::atomic::{AtomicU32, Ordering},
};

/// Bytes per UMEM frame (one page: the kernel's aligned-chunk mode).
pub const FRAME_SIZE: u32 = 4096;

fn last_err(what: &str) -> io::Error {
    let e = io::Error::last_os_error();
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// An anonymous, page-aligned memory area registered as a UMEM.
pub struct Umem {
    area: *mut u8,
    len: usize,
    pub frames: u32,
}

// SAFETY: the area is plain memory owned by this value; the worker that owns the Umem is the
// only user-space reader and writer of it.
unsafe impl Send for Umem {}

impl Umem {
    pub fn new(frames: u32) -> io::Result<Umem> {
        let len = frames as usize * FRAME_SIZE as usize;
        // SAFETY: anonymous private mapping, no file; checked for MAP_FAILED below.
        let area = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if area == libc::MAP_FAILED {
            return Err(last_err("mmap of the UMEM"));
        }
        Ok(Umem { area: area.cast(), len, frames })
    }

    /// The `len` bytes at `addr`, if they lie inside one frame of the UMEM (never trust a
    /// descriptor's numbers: a bad one is a counted drop, not a crash).
    pub fn bytes(&self, addr: u64, len: u32) -> Option<&[u8]> {
        let (start, end) = Self::span(addr, len)?;
        if end > self.len {
            return None;
        }
        // SAFETY: [start, end) lies inside the mapping (checked above), which lives as long
        // as self; the kernel does not write a frame while user space owns it.
        Some(unsafe { std::slice::from_raw_parts(self.area.add(start), end - start) })
    }

    /// The same bytes, writable (a frame being neutralized in place).
    pub fn bytes_mut(&mut self, addr: u64, len: u32) -> Option<&mut [u8]> {
        let (start, end) = Self::span(addr, len)?;
        if end > self.len {
            return None;
        }
        // SAFETY: as `bytes`, and `&mut self` makes this the only view of the area.
        Some(unsafe { std::slice::from_raw_parts_mut(self.area.add(start), end - start) })
    }

    fn span(addr: u64, len: u32) -> Option<(usize, usize)> {
        let start = usize::try_from(addr).ok()?;
        let end = start.checked_add(len as usize)?;
        let frame = start / FRAME_SIZE as usize;
        // Inside one frame (the end may touch the frame's last byte).
        if end > (frame + 1) * FRAME_SIZE as usize {
            return None;
        }
        Some((start, end))
    }

    fn reg(&self) -> libc::xdp_umem_reg {
        libc::xdp_umem_reg {
            addr: self.area as u64,
            len: self.len as u64,
            chunk_size: FRAME_SIZE,
            headroom: 0,
            flags: 0,
            tx_metadata_len: 0,
        }
    }
}

impl Drop for Umem {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once; the sockets using it are closed
        // first (they are dropped before the Umem in `Pair`).
        unsafe { libc::munmap(self.area.cast(), self.len) };
    }
}

/// One ring shared with the kernel: producer and consumer indices and the entries.
struct Ring<T> {
    map: *mut libc::c_void,
    map_len: usize,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    entries: *mut T,
    size: u32,
}

// SAFETY: the mapping belongs to this ring; its single user-space owner moves with it.
unsafe impl<T> Send for Ring<T> {}

impl<T: Copy> Ring<T> {
    fn map(fd: &OwnedFd, off: &libc::xdp_ring_offset, size: u32, pgoff: u64) -> io::Result<Ring<T>> {
        let map_len = off.desc as usize + size as usize * std::mem::size_of::<T>();
        // SAFETY: mapping the ring the socket just created, at the offset the kernel names for
        // it; checked for MAP_FAILED below.
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                pgoff as libc::off_t,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(last_err("mmap of an AF_XDP ring"));
        }
        let base = map.cast::<u8>();
        // SAFETY: the offsets come from XDP_MMAP_OFFSETS for this very mapping and lie
        // inside it; producer and consumer are naturally aligned u32s.
        unsafe {
            Ok(Ring {
                map,
                map_len,
                producer: base.add(off.producer as usize).cast(),
                consumer: base.add(off.consumer as usize).cast(),
                entries: base.add(off.desc as usize).cast(),
                size,
            })
        }
    }

    fn prod(&self) -> &AtomicU32 {
        // SAFETY: points into the live mapping (see `map`).
        unsafe { &*self.producer }
    }

    fn cons(&self) -> &AtomicU32 {
        // SAFETY: as `prod`.
        unsafe { &*self.consumer }
    }

    fn at(&self, i: u32) -> *mut T {
        // SAFETY: `i & (size - 1)` indexes the entry array (size is a power of two).
        unsafe { self.entries.add((i & (self.size - 1)) as usize) }
    }

    /// Producer side: write `items` if there is room for all of them; false otherwise.
    fn produce(&mut self, items: &[T]) -> bool {
        self.produce_with(items.len(), items.iter().copied())
    }

    /// Producer side: write the `n` items of `items` if there is room for all of them.
    fn produce_with(&mut self, n: usize, items: impl Iterator<Item = T>) -> bool {
        let prod = self.prod().load(Ordering::Relaxed);
        let cons = self.cons().load(Ordering::Acquire);
        if (self.size - prod.wrapping_sub(cons)) < n as u32 {
            return false;
        }
        let mut k = 0u32;
        for it in items.take(n) {
            // SAFETY: the slot is free (checked above) and ours until published.
            unsafe { self.at(prod.wrapping_add(k)).write(it) };
            k += 1;
        }
        self.prod().store(prod.wrapping_add(k), Ordering::Release);
        true
    }

    /// Consumer side: take up to `max` entries into `out`.
    fn consume(&mut self, max: usize, out: &mut Vec<T>) -> usize {
        let cons = self.cons().load(Ordering::Relaxed);
        let prod = self.prod().load(Ordering::Acquire);
        let n = (prod.wrapping_sub(cons) as usize).min(max);
        for k in 0..n {
            // SAFETY: the kernel published this entry (prod was read with Acquire).
            out.push(unsafe { self.at(cons.wrapping_add(k as u32)).read() });
        }
        self.cons().store(cons.wrapping_add(n as u32), Ordering::Release);
        n
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `map`, unmapped once.
        unsafe { libc::munmap(self.map, self.map_len) };
    }
}

fn setsockopt<T>(fd: &OwnedFd, opt: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: `v` is a live value of the size given.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            opt,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        return Err(last_err(&format!("setsockopt(SOL_XDP, {opt})")));
    }
    Ok(())
}

fn offsets(fd: &OwnedFd) -> io::Result<libc::xdp_mmap_offsets> {
    // SAFETY: plain data, filled by the kernel.
    let mut off: libc::xdp_mmap_offsets = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::xdp_mmap_offsets>() as libc::socklen_t;
    // SAFETY: `off` is valid for `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            libc::XDP_MMAP_OFFSETS,
            (&mut off as *mut libc::xdp_mmap_offsets).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(last_err("getsockopt(XDP_MMAP_OFFSETS)"));
    }
    if len as usize != std::mem::size_of::<libc::xdp_mmap_offsets>() {
        // Kernels before 5.4 lack the flags offsets: older than the floor anyway.
        return Err(io::Error::other("XDP_MMAP_OFFSETS: the kernel's layout is older than 5.4"));
    }
    Ok(off)
}

fn xdp_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); owned right after.
    let fd = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(last_err("socket(AF_XDP) (kernel 4.18 with CONFIG_XDP_SOCKETS)"));
    }
    // SAFETY: a fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn bind(fd: &OwnedFd, ifindex: u32, queue: u32, flags: u16, shared: Option<&OwnedFd>) -> io::Result<()> {
    let sa = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: flags,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: queue,
        sxdp_shared_umem_fd: shared.map(|s| s.as_raw_fd() as u32).unwrap_or(0),
    };
    // The kernel releases a closed socket's hold on a queue asynchronously: a daemon restarted
    // right after the last one died (kill -9, systemd restart) can meet EBUSY for a moment.
    // Retried for up to BIND_BUSY_MS, then reported.
    const BIND_BUSY_MS: u64 = 2000;
    let start = std::time::Instant::now();
    loop {
        // SAFETY: a sockaddr_xdp of the size given.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sa as *const libc::sockaddr_xdp).cast(),
                std::mem::size_of::<libc::sockaddr_xdp>() as libc::socklen_t,
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EBUSY) || start.elapsed() >= std::time::Duration::from_millis(BIND_BUSY_MS) {
            return Err(io::Error::new(e.kind(), format!("bind AF_XDP to ifindex {ifindex} queue {queue}: {e}")));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The kernel's drop counters of one socket (`XDP_STATISTICS`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct XskStats {
    pub rx_dropped: u64,
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty: u64,
    pub tx_invalid: u64,
}

fn statistics(fd: &OwnedFd) -> XskStats {
    // SAFETY: plain data, filled by the kernel.
    let mut st: libc::xdp_statistics = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::xdp_statistics>() as libc::socklen_t;
    // SAFETY: `st` is valid for `len` bytes.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            libc::XDP_STATISTICS,
            (&mut st as *mut libc::xdp_statistics).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return XskStats::default();
    }
    XskStats {
        rx_dropped: st.rx_dropped,
        rx_ring_full: st.rx_ring_full,
        rx_fill_ring_empty: st.rx_fill_ring_empty_descs,
        tx_invalid: st.tx_invalid_descs,
    }
}

/// How long a real-time worker sleeps when the device queue refuses its TX frames.
const TX_RETRY_US: u64 = 20;

/// One worker's sockets: RX on the interconnect side's queue, TX on the core side's, one UMEM.
pub struct Pair {
    // Field order is drop order: rings and sockets before the UMEM they use.
    rx: Ring<libc::xdp_desc>,
    fill: Ring<u64>,
    a_comp: Ring<u64>,
    tx: Ring<libc::xdp_desc>,
    _b_fill: Ring<u64>,
    comp: Ring<u64>,
    pub a: OwnedFd,
    b: OwnedFd,
    pub umem: Umem,
    /// Scratch for ring operations, kept to avoid allocating per batch.
    descs: Vec<libc::xdp_desc>,
    addrs: Vec<u64>,
}

impl Pair {
    /// Open the sockets of queue `queue`: RX bound to (`a`, `queue`) in copy mode, TX bound to
    /// (`b`, `queue`) sharing the UMEM; the fill ring holds every frame.
    pub fn open(a: u32, b: u32, queue: u32, frames: u32) -> io::Result<Pair> {
        assert!(frames.is_power_of_two(), "ring sizes are powers of two");
        let umem = Umem::new(frames)?;
        let sa = xdp_socket()?;
        setsockopt(&sa, libc::XDP_UMEM_REG, &umem.reg())?;
        setsockopt(&sa, libc::XDP_UMEM_FILL_RING, &frames)?;
        setsockopt(&sa, libc::XDP_UMEM_COMPLETION_RING, &frames)?;
        setsockopt(&sa, libc::XDP_RX_RING, &frames)?;
        let off = offsets(&sa)?;
        let mut fill = Ring::<u64>::map(&sa, &off.fr, frames, libc::XDP_UMEM_PGOFF_FILL_RING)?;
        let a_comp = Ring::<u64>::map(&sa, &off.cr, frames, libc::XDP_UMEM_PGOFF_COMPLETION_RING)?;
        let rx = Ring::<libc::xdp_desc>::map(&sa, &off.rx, frames, libc::XDP_PGOFF_RX_RING as u64)?;
        let all: Vec<u64> = (0..frames as u64).map(|i| i * FRAME_SIZE as u64).collect();
        if !fill.produce(&all) {
            return Err(io::Error::other("the fill ring does not take the UMEM's frames"));
        }
        bind(&sa, a, queue, libc::XDP_COPY, None)?;

        // The core side: its own fill and completion rings (each (device, queue) of a shared
        // UMEM needs both before bind), a TX ring, and no flags but XDP_SHARED_UMEM (copy mode
        // is inherited).
        let sb = xdp_socket()?;
        setsockopt(&sb, libc::XDP_UMEM_FILL_RING, &frames)?;
        setsockopt(&sb, libc::XDP_UMEM_COMPLETION_RING, &frames)?;
        setsockopt(&sb, libc::XDP_TX_RING, &frames)?;
        let off = offsets(&sb)?;
        let b_fill = Ring::<u64>::map(&sb, &off.fr, frames, libc::XDP_UMEM_PGOFF_FILL_RING)?;
        let comp = Ring::<u64>::map(&sb, &off.cr, frames, libc::XDP_UMEM_PGOFF_COMPLETION_RING)?;
        let tx = Ring::<libc::xdp_desc>::map(&sb, &off.tx, frames, libc::XDP_PGOFF_TX_RING as u64)?;
        bind(&sb, b, queue, libc::XDP_SHARED_UMEM, Some(&sa))?;
        Ok(Pair {
            rx,
            fill,
            a_comp,
            tx,
            _b_fill: b_fill,
            comp,
            a: sa,
            b: sb,
            umem,
            descs: Vec::with_capacity(64),
            addrs: Vec::with_capacity(frames as usize),
        })
    }

    /// Wait up to `timeout_ms` for frames on the RX ring: no system call while frames are
    /// there already. While frames wait on the TX ring (the core side's device queue was full
    /// at the last kick: veth stops its queue while its peer's ring is full and wakes it as the
    /// peer drains), kick again and sleep at most `TX_RETRY_US` instead of `timeout_ms`: a
    /// worker asleep in poll(2) with frames on its TX ring would hold them, and the credit they
    /// carry, until the next frame or the timeout.
    /// `realtime`: the caller is SCHED_FIFO, and a yield would not let the fair tasks (ksoftirqd)
    /// that may be what drains the device queue run: it sleeps 20 us instead.
    /// `spin_until`: with nothing waiting on the TX ring, look at the RX ring (no system call)
    /// until then before sleeping in poll(2) (`--worker-busy-poll-us`; a time already past: no
    /// spin).
    pub fn wait(&self, timeout_ms: i32, realtime: bool, spin_until: std::time::Instant) {
        if self.rx_ready() {
            return;
        }
        if self.tx_pending() == 0 {
            while std::time::Instant::now() < spin_until {
                if self.rx_ready() {
                    return;
                }
                std::hint::spin_loop();
            }
        }
        let mut timeout_ms = timeout_ms;
        if self.tx_pending() > 0 {
            self.kick();
            if self.tx_pending() > 0 {
                if realtime {
                    std::thread::sleep(std::time::Duration::from_micros(TX_RETRY_US));
                } else {
                    // SAFETY: sched_yield has no preconditions; the core side's NAPI may run meanwhile.
                    unsafe { libc::sched_yield() };
                }
                return;
            }
            timeout_ms = timeout_ms.min(1);
        }
        let mut p = libc::pollfd { fd: self.a.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one valid pollfd.
        unsafe { libc::poll(&mut p, 1, timeout_ms) };
    }

    /// Whether the RX ring holds frames (no system call).
    pub fn rx_ready(&self) -> bool {
        self.rx.prod().load(Ordering::Acquire) != self.rx.cons().load(Ordering::Relaxed)
    }

    /// Take up to `max` received frames.
    pub fn receive(&mut self, max: usize) -> Vec<libc::xdp_desc> {
        self.descs.clear();
        let mut out = std::mem::take(&mut self.descs);
        self.rx.consume(max, &mut out);
        out
    }

    /// Give a batch's descriptor vector back for reuse.
    pub fn give_back(&mut self, mut v: Vec<libc::xdp_desc>) {
        v.clear();
        self.descs = v;
    }

    /// Queue frames for transmission on the core side; false (nothing queued) if the TX ring
    /// has no room for all of them.
    pub fn send(&mut self, frames: &[libc::xdp_desc]) -> bool {
        self.tx.produce(frames)
    }

    /// Have the kernel transmit what is queued: copy mode transmits only from sendmsg, and at
    /// most 32 frames per call (`TX_BATCH_SIZE` in net/xdp/xsk.c), so kick until the TX ring is
    /// empty or the kernel stops taking frames (a full device queue: the next loop kicks again).
    pub fn kick(&self) {
        let mut last = u32::MAX;
        loop {
            let pending = self.tx_pending();
            if pending == 0 || pending == last {
                return;
            }
            last = pending;
            // SAFETY: sendto with no buffer: the AF_XDP TX kick.
            unsafe { libc::sendto(self.b.as_raw_fd(), std::ptr::null(), 0, libc::MSG_DONTWAIT, std::ptr::null(), 0) };
        }
    }

    /// Frames on the TX ring the kernel has not taken yet.
    pub fn tx_pending(&self) -> u32 {
        self.tx.prod().load(Ordering::Relaxed).wrapping_sub(self.tx.cons().load(Ordering::Acquire))
    }

    /// Put frames (their addresses) back on the fill ring. False if it had no room, which
    /// cannot happen while the fill ring holds every frame of the UMEM (see the module doc);
    /// the frames would then be lost to the UMEM, not to the link.
    pub fn recycle(&mut self, addrs: &[u64]) -> bool {
        self.fill.produce_with(addrs.len(), addrs.iter().map(|a| a & !(FRAME_SIZE as u64 - 1)))
    }

    /// Move completed transmissions back to the fill ring; false if the fill ring had no room
    /// (see [`Pair::recycle`]).
    pub fn complete(&mut self) -> bool {
        let mut addrs = std::mem::take(&mut self.addrs);
        addrs.clear();
        self.comp.consume(usize::MAX, &mut addrs);
        // The RX socket's own completion ring is never used for TX; drained for form's sake.
        self.a_comp.consume(usize::MAX, &mut addrs);
        let ok = self.recycle(&addrs);
        self.addrs = addrs;
        ok
    }

    /// The kernel's drop counters of the RX socket, and the TX socket's invalid descriptors.
    pub fn statistics(&self) -> XskStats {
        let mut s = statistics(&self.a);
        s.tx_invalid = statistics(&self.b).tx_invalid;
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A descriptor's numbers are checked before its bytes are touched.
    #[test]
    fn spans_stay_inside_one_frame() {
        assert_eq!(Umem::span(0, 60), Some((0, 60)));
        assert_eq!(Umem::span(4096 + 256, 3840), Some((4352, 8192)));
        assert_eq!(Umem::span(4096 + 256, 3841), None, "crosses into the next frame");
        assert_eq!(Umem::span(u64::MAX, 10), None);
        let u = Umem::new(2).unwrap();
        assert!(u.bytes(4096, 100).is_some());
        assert!(u.bytes(8192, 1).is_none(), "past the UMEM");
    }
}
