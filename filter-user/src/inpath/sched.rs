//! The in-path workers' CPU scheduling: a short time slice, so that a worker woken by a frame
//! runs at once on a shared core.
//!
//! Linux's EEVDF scheduler (6.6 and later) lets a waking task preempt the running one only when
//! the woken task's virtual deadline is earlier, and a deadline is one time slice away (the
//! base slice, 0.7 ms times 1 + log2 of the CPUs: 1.4 ms on a 2-CPU machine). A worker that
//! shares its core with anything busy therefore waits up to a few slices for every frame it is
//! woken for: the in-path benchmark measured a p99 of 3.5-4.2 ms added latency at a tenth of the
//! worker's capacity. A task may ask for a shorter slice (`sched_attr.sched_runtime` with
//! SCHED_OTHER, kernel 6.12; "Allow shorter slices to wakeup-preempt"), which gives it an early
//! deadline on wake-up and so the core, while it still shares fairly: its share of the CPU is
//! unchanged, only when it gets it. No privilege is needed. Older kernels ignore the field for
//! SCHED_OTHER (the call succeeds and nothing changes) or refuse it (reported, the worker runs
//! with the default slice).
//!
//! The slice does not always win: EEVDF preempts only for a woken task that is also eligible
//! (it has not had more than its share lately), which a busy worker often is not, and then the
//! running task keeps the core until the next tick (4 ms at HZ=250). `--worker-priority` makes
//! the workers real-time (SCHED_FIFO): woken, they run at once, whatever else the core runs.
//! That is for cores given to sigwall: a FIFO worker under a flood of inspected traffic keeps
//! its core (up to the kernel's real-time throttle, 95 % by default), and when its TX ring
//! cannot drain it sleeps briefly instead of yielding (a yield never lets a fair task, such
//! as the ksoftirqd that may be what drains the ring, run).

/// `struct sched_attr` (include/uapi/linux/sched/types.h, SCHED_ATTR_SIZE_VER1).
#[repr(C)]
#[derive(Default)]
struct SchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
    sched_util_min: u32,
    sched_util_max: u32,
}

/// The slice the kernel accepts for a fair task (kernel/sched/syscalls.c: clamped to
/// 0.1-100 ms).
pub const MIN_SLICE_US: u64 = 100;
pub const MAX_SLICE_US: u64 = 100_000;

/// Ask for a time slice of `slice_us` microseconds for the calling thread, keeping its policy
/// (SCHED_OTHER) and nice value.
pub fn set_slice(slice_us: u64) -> std::io::Result<()> {
    // SAFETY: getpriority has no memory effects; errno is only read on -1 (a nice of -1 is
    // told apart by errno being set).
    let nice = unsafe {
        *libc::__errno_location() = 0;
        let n = libc::getpriority(libc::PRIO_PROCESS, 0);
        if n == -1 && *libc::__errno_location() != 0 { 0 } else { n }
    };
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        sched_policy: libc::SCHED_OTHER as u32,
        sched_nice: nice,
        sched_runtime: slice_us.clamp(MIN_SLICE_US, MAX_SLICE_US) * 1_000,
        ..Default::default()
    };
    // SAFETY: sched_setattr(2) on this thread (pid 0) reads `attr`, a valid, fully initialised
    // struct of the size it declares.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0u32) };
    if r == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// Make the calling thread real-time: SCHED_FIFO at `priority` (1-99). Needs CAP_SYS_NICE
/// (root has it) or an RLIMIT_RTPRIO at least as high.
pub fn set_fifo(priority: u32) -> std::io::Result<()> {
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        sched_policy: libc::SCHED_FIFO as u32,
        sched_priority: priority,
        ..Default::default()
    };
    // SAFETY: as in `set_slice`.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &attr as *const SchedAttr, 0u32) };
    if r == 0 { Ok(()) } else { Err(std::io::Error::last_os_error()) }
}

/// The calling thread's scheduling policy (`SCHED_OTHER`, `SCHED_FIFO`, ...).
pub fn policy() -> i32 {
    // SAFETY: sched_getscheduler(0) reads the calling thread's policy.
    unsafe { libc::sched_getscheduler(0) }
}

/// The calling thread's time slice in microseconds, as the kernel reports it
/// (`/proc/thread-self/sched`, `se.slice`; `None` where the kernel has no such line).
pub fn slice_us() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/sched").ok()?;
    let line = s.lines().find(|l| l.trim_start().starts_with("se.slice"))?;
    let ns: u64 = line.split(':').nth(1)?.trim().parse().ok()?;
    Some(ns / 1_000)
}

/// Whether the running kernel is at least `major.minor` (`/proc/sys/kernel/osrelease`).
pub fn kernel_at_least(major: u32, minor: u32) -> bool {
    let Ok(r) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else { return false };
    let mut it = r.trim().split(|c: char| !c.is_ascii_digit()).map(|n| n.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0)) >= (major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_becomes_real_time_when_asked() {
        let got = std::thread::spawn(|| set_fifo(10).map(|_| policy())).join().expect("thread");
        match got {
            Ok(p) => assert_eq!(p, libc::SCHED_FIFO),
            // Without CAP_SYS_NICE (not root): refused, and said so.
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}"),
        }
    }

    #[test]
    fn a_thread_gets_the_slice_it_asks_for() {
        let got = std::thread::spawn(|| {
            let before = slice_us();
            set_slice(200).map(|_| (before, slice_us()))
        })
        .join()
        .expect("thread");
        match got {
            // Kernels before 6.12 keep their base slice; 6.12 and later report ours.
            Ok((Some(_), Some(after))) if kernel_at_least(6, 12) => assert_eq!(after, 200),
            Ok(_) => {}
            Err(e) => panic!("sched_setattr refused a fair slice: {e}"),
        }
    }
}
