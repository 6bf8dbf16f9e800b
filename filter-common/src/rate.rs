//! Per-peer rate limiting with GCRA (the generic cell rate algorithm).
//!
//! GCRA is a token bucket expressed as one number per peer, the theoretical arrival time (TAT) of
//! the next packet, so the XDP program keeps a single `u64` per peer instead of a token count and
//! a timestamp that would have to change together.

/// Emission interval and burst tolerance for `pps` packets per second with a burst of `burst`
/// packets (`burst` = 0 means one second's worth).
pub const fn params(pps: u64, burst: u64) -> (u64, u64) {
    if pps == 0 {
        return (0, 0);
    }
    let interval = 1_000_000_000 / pps;
    let interval = if interval == 0 { 1 } else { interval };
    let burst = if burst == 0 { pps } else { burst };
    (interval, (burst - 1) * interval)
}

/// Conforms a packet arriving at `now` (ns). Returns the new TAT if it conforms, `None` if it
/// exceeds the rate (the TAT is then left unchanged, so rejected packets cost no credit).
#[inline(always)]
pub fn gcra(tat: u64, now: u64, interval: u64, tolerance: u64) -> Option<u64> {
    let tat = if tat > now { tat } else { now };
    if tat - now > tolerance { None } else { Some(tat + interval) }
}
