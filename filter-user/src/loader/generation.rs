//! Policy generations: compile against the running filter's peer ids, write the inactive
//! generation's maps, and flip `ACTIVE` with one store. `apply` undoes its own partial work on
//! error, so a packet is always judged by one whole generation.

use aya::maps::{Array, LpmTrie, MapData, PerCpuArray, PerCpuValues, lpm_trie::Key};
use filter_common::{
    Active, GlobalPolicy, MAX_PEERS, PORT_DIAMETER, PORT_GTPC, PORT_GTPU, PORT_SIGTRAN, PORT_SLOTS, PeerCounter,
    PeerName, PeerPolicy, PortClass, maps,
};

use super::{Filter, map, map_mut, pins, sys};
use crate::{
    errors::OperatorError,
    policy::{
        Policy,
        compile::{self, Compiled, PeerIds},
    },
};

impl Filter {
    /// The generation slot (0 or 1) packets are judged by now.
    pub fn active_slot(&self) -> Result<u32, OperatorError> {
        Ok(pins::active_generation(|n| map(&self.ebpf, n))?.0)
    }

    /// Forget what this process wrote into the tries, so the next applies read the old contents
    /// back from the kernel, as after a restart. For tests of that path.
    #[doc(hidden)]
    pub fn forget_written_prefixes(&mut self) {
        self.written = [None, None];
    }

    /// Settings of the active generation (generation 0, all zero, before any policy).
    pub fn active_global(&self) -> Result<GlobalPolicy, OperatorError> {
        Ok(pins::active_generation(|n| map(&self.ebpf, n))?.1)
    }

    pub fn generation(&self) -> Result<u64, OperatorError> {
        Ok(self.active_global()?.generation)
    }

    /// The highest generation number either slot holds (the active one or one written after it,
    /// active for a moment or never).
    fn highest_generation(&self) -> Result<u64, OperatorError> {
        let global: Array<&MapData, GlobalPolicy> = Array::try_from(map(&self.ebpf, maps::GLOBAL)?)?;
        Ok(global.get(&0, 0)?.generation.max(global.get(&1, 0)?.generation))
    }

    /// (id, name) of every peer in the active generation.
    pub fn active_peer_names(&self) -> Result<Vec<(u32, String)>, OperatorError> {
        let slot = self.active_slot()?;
        let slots = self.active_global()?.peer_slots.min(MAX_PEERS);
        let names: Array<&MapData, PeerName> = Array::try_from(map(&self.ebpf, maps::PEER_INFO)?)?;
        let mut out = Vec::new();
        for id in 1..slots {
            let n = names.get(&(slot * MAX_PEERS + id), 0)?;
            let len = n.bytes.iter().position(|b| *b == 0).unwrap_or(n.bytes.len());
            if len > 0 {
                out.push((id, String::from_utf8_lossy(&n.bytes[..len]).into_owned()));
            }
        }
        Ok(out)
    }

    /// Compile `p` as the next generation, with this filter's stable peer ids.
    ///
    /// The number counts past both slots' numbers, not only the active one's: a generation that
    /// was active and then rolled back (`apply`'s META failure) keeps its number in the inactive
    /// slot, and reusing that number would let the program's source cache, whose slots are valid
    /// for one generation number, take answers of the rolled-back policy for the new one.
    pub fn compile(&mut self, p: &Policy) -> Result<Compiled, OperatorError> {
        let next = self.highest_generation()? + 1;
        let mut ids = self.ids.clone();
        Ok(compile::compile(p, next, &mut ids))
    }

    /// Write `c` into the inactive generation's maps, then make it active with one store.
    /// Until that store, every packet is judged by the previous generation, whole. `sha256` is
    /// the hash of the policy text `c` came from, recorded for restarts.
    ///
    /// On error nothing changed for packets: `apply` flips only when everything is written, so
    /// the caller must not flip anything itself. A half-written inactive slot is left as it is
    /// (nothing reads it; the next apply rewrites it whole) except for its port bits, cleared
    /// here because the next write clears only the ports `GLOBAL` names.
    pub fn apply(&mut self, c: &Compiled, sha256: [u8; 32]) -> Result<(), OperatorError> {
        let prev = self.active_slot()?;
        let next = prev ^ 1;
        if let Err(e) = self.write_generation(next, c) {
            // The half-written slot is inactive, and the next apply rewrites it whole; only its
            // port bits are read back (through GLOBAL, which was not written), so clear the ones
            // this attempt may have set.
            self.scrub_ports(next, c);
            return Err(e);
        }
        self.set_active(next)?;
        if let Err(e) = self.set_meta(|m| m.policy_sha256 = sha256) {
            // META must name the running policy (a restart adopts by it): go back whole. If even
            // that fails, the new generation runs while META names none: a zero hash never
            // matches a file, so the next start re-applies the policy file instead of trusting it.
            if self.set_active(prev).is_err() {
                let _ = self.set_meta(|m| m.policy_sha256 = [0; 32]);
                self.ids = PeerIds::from_pairs(c.peers.iter().map(|p| (p.id, p.name.clone())));
            }
            return Err(e);
        }
        self.ids = PeerIds::from_pairs(c.peers.iter().map(|p| (p.id, p.name.clone())));
        Ok(())
    }

    /// The flip: one store into `ACTIVE`.
    fn set_active(&mut self, slot: u32) -> Result<(), OperatorError> {
        let mut active: Array<&mut MapData, Active> = Array::try_from(map_mut(&mut self.ebpf, maps::ACTIVE)?)?;
        active.set(0, Active { index: slot, _pad: 0 }, 0)?;
        Ok(())
    }

    /// Best effort after a failed write: clear the `PORT_CLASS` bits of `c` in `slot`.
    fn scrub_ports(&mut self, slot: u32, c: &Compiled) {
        let Ok(m) = map_mut(&mut self.ebpf, maps::PORT_CLASS) else { return };
        let Ok(mut ports) = Array::<&mut MapData, u8>::try_from(m) else { return };
        // The slot then holds at most the bits of its old settings, which the next write clears.
        for (port, _) in port_bits(&c.global) {
            let _ = ports.set(slot * PORT_SLOTS + port as u32, 0, 0);
        }
    }

    fn write_generation(&mut self, slot: u32, c: &Compiled) -> Result<(), OperatorError> {
        // What this process last wrote into the slot, if it knows (not after a restart or a
        // failed write): then the old contents need not be read back from the kernel.
        let known = self.written[slot as usize & 1].take();
        let ebpf = &mut self.ebpf;
        let (v4, v6) = maps::peer_tries(slot);
        let (old4, old6) = match known {
            Some(k) => (Some(k.v4), Some(k.v6)),
            None => (None, None),
        };
        // The two tries are independent maps with their own locks: write them on two threads
        // (half the wall time of a large load on a 2-core machine).
        let (fd4, fd6) = (trie_fd(map(ebpf, v4)?)?, trie_fd(map(ebpf, v6)?)?);
        let (r4, r6) = std::thread::scope(|s| {
            let h6 = s.spawn(|| replace_trie_batch(fd6, old6, &c.v6));
            (replace_trie_batch(fd4, old4, &c.v4), h6.join())
        });
        let r6 = r6.unwrap_or_else(|_| {
            Err(Batch::Failed(syscall_error("bpf_map_update_batch", std::io::Error::other("thread panicked"))))
        });
        let now4 = match r4 {
            Err(Batch::Unsupported) => replace_trie_per_element(map_mut(ebpf, v4)?, &c.v4).map(|()| None)?,
            r => Some(r.map_err(Batch::into_error)?),
        };
        let now6 = match r6 {
            Err(Batch::Unsupported) => replace_trie_per_element(map_mut(ebpf, v6)?, &c.v6).map(|()| None)?,
            r => Some(r.map_err(Batch::into_error)?),
        };
        if let (Some(v4), Some(v6)) = (now4, now6) {
            self.written[slot as usize & 1] = Some(SlotPrefixes { v4, v6 });
        }
        let ebpf = &mut self.ebpf;

        let old_slots = {
            let global: Array<&MapData, GlobalPolicy> = Array::try_from(map(ebpf, maps::GLOBAL)?)?;
            global.get(&slot, 0)?.peer_slots.min(MAX_PEERS)
        };
        let slots = c.global.peer_slots.max(old_slots).min(MAX_PEERS);
        let base = slot * MAX_PEERS;
        let mut policies = vec![PeerPolicy::default(); slots as usize];
        let mut names = vec![PeerName::default(); slots as usize];
        names[0] = name_of("(unknown)");
        for p in &c.peers {
            policies[p.id as usize] = p.policy;
            names[p.id as usize] = name_of(&p.name);
        }
        {
            let mut pol: Array<&mut MapData, PeerPolicy> = Array::try_from(map_mut(ebpf, maps::PEER_POLICY)?)?;
            for (id, v) in policies.iter().enumerate() {
                pol.set(base + id as u32, *v, 0)?;
            }
        }
        {
            let mut info: Array<&mut MapData, PeerName> = Array::try_from(map_mut(ebpf, maps::PEER_INFO)?)?;
            for (id, v) in names.iter().enumerate() {
                info.set(base + id as u32, *v, 0)?;
            }
        }
        // A name seen for the first time starts with clean counters, a full bucket and no block,
        // even if its id belonged to a peer removed earlier (that peer's block-peer verdict, up
        // to 7 days, must not blackhole its successor).
        if !c.fresh_ids.is_empty() {
            let ncpu = aya::util::nr_cpus().map_err(|(_, e)| OperatorError::Cpus(e.to_string()))?;
            let mut stats: PerCpuArray<&mut MapData, PeerCounter> =
                PerCpuArray::try_from(map_mut(ebpf, maps::PEER_STATS)?)?;
            for id in &c.fresh_ids {
                let zero = PerCpuValues::try_from(vec![PeerCounter::default(); ncpu])
                    .map_err(|e| OperatorError::Cpus(format!("per-CPU values: {e}")))?;
                stats.set(*id, zero, 0)?;
            }
            let mut rate: Array<&mut MapData, u64> = Array::try_from(map_mut(ebpf, maps::RATE_STATE)?)?;
            for id in &c.fresh_ids {
                rate.set(*id, 0, 0)?;
            }
            let mut blocks: Array<&mut MapData, filter_common::Block> =
                Array::try_from(map_mut(ebpf, maps::PEER_BLOCKS)?)?;
            for id in &c.fresh_ids {
                blocks.set(*id, filter_common::Block::default(), 0)?;
            }
        }
        // Ports: clear what the slot's previous settings marked, then mark the new lists.
        let old_global = {
            let global: Array<&MapData, GlobalPolicy> = Array::try_from(map(ebpf, maps::GLOBAL)?)?;
            global.get(&slot, 0)?
        };
        {
            let mut ports: Array<&mut MapData, u8> = Array::try_from(map_mut(ebpf, maps::PORT_CLASS)?)?;
            let base = slot * PORT_SLOTS;
            for (port, _) in port_bits(&old_global) {
                ports.set(base + port as u32, 0, 0)?;
            }
            for (port, bits) in port_bits(&c.global) {
                ports.set(base + port as u32, bits, 0)?;
            }
        }
        let mut global: Array<&mut MapData, GlobalPolicy> = Array::try_from(map_mut(ebpf, maps::GLOBAL)?)?;
        global.set(slot, c.global, 0)?;
        Ok(())
    }
}

/// (port, PORT_* bits) for every configured port of a generation's settings.
fn port_bits(g: &GlobalPolicy) -> Vec<(u16, u8)> {
    let mut out: Vec<(u16, u8)> = Vec::new();
    for (pc, bit) in [
        (PortClass::GtpC, PORT_GTPC),
        (PortClass::GtpU, PORT_GTPU),
        (PortClass::Diameter, PORT_DIAMETER),
        (PortClass::Sigtran, PORT_SIGTRAN),
    ] {
        let n = (g.port_counts[pc as usize] as usize).min(filter_common::MAX_PORTS_PER_CLASS);
        for p in &g.ports[pc as usize][..n] {
            let port = u16::from_be(*p);
            match out.iter_mut().find(|(q, _)| *q == port) {
                Some(e) => e.1 |= bit,
                None => out.push((port, bit)),
            }
        }
    }
    out
}

fn name_of(s: &str) -> PeerName {
    let mut n = PeerName::default();
    let b = s.as_bytes();
    let len = b.len().min(63);
    n.bytes[..len].copy_from_slice(&b[..len]);
    n
}

/// Why a batch write did not complete.
enum Batch {
    /// This kernel or map type has no batch commands: write one element per syscall instead.
    Unsupported,
    Failed(OperatorError),
}

impl Batch {
    fn into_error(self) -> OperatorError {
        match self {
            Batch::Failed(e) => e,
            Batch::Unsupported => syscall_error("bpf batch command", std::io::Error::from_raw_os_error(libc::EINVAL)),
        }
    }
}

impl From<OperatorError> for Batch {
    fn from(e: OperatorError) -> Self {
        Batch::Failed(e)
    }
}

/// A descriptor of the LPM trie behind `m`, owned so a writer thread can use it.
fn trie_fd(m: &aya::maps::Map) -> Result<std::os::fd::OwnedFd, OperatorError> {
    use std::os::fd::AsFd as _;
    match m {
        aya::maps::Map::LpmTrie(d) => d.fd().as_fd().try_clone_to_owned().map_err(|e| syscall_error("dup", e)),
        _ => Err(OperatorError::BrokenObject { what: "an LPM trie for the peer prefixes".into() }),
    }
}

/// Make the trie behind `fd` hold exactly `entries`, writing only the difference: prefixes the
/// new generation lacks are deleted, new or re-assigned ones written, unchanged ones left alone.
/// Reads, deletes and writes go through the kernel's batch commands (one syscall per 8–64 Ki
/// elements instead of one per prefix: the 1,000,000-prefix policy load of issue 13).
///
/// `known` is what the trie holds if the caller knows it (then it is not read back). Returns
/// what the trie holds now, sorted, for the caller to remember.
fn replace_trie_batch<const N: usize>(
    fd: std::os::fd::OwnedFd,
    known: Option<Vec<(u32, [u8; N], u32)>>,
    entries: &[(u32, [u8; N], u32)],
) -> Result<Vec<(u32, [u8; N], u32)>, Batch> {
    use std::os::fd::AsFd as _;
    let key_size = 4 + N;
    let value_size = std::mem::size_of::<u32>();
    let batch_error = |call: &'static str, e: std::io::Error| {
        if sys::batch_unsupported(&e) { Batch::Unsupported } else { Batch::Failed(syscall_error(call, e)) }
    };
    let old = match known {
        Some(old) => old,
        None => {
            let (keys, values) = sys::map_lookup_batch(fd.as_fd(), key_size, value_size)
                .map_err(|e| batch_error("bpf_map_lookup_batch", e))?;
            keys.chunks_exact(key_size)
                .zip(values.chunks_exact(value_size))
                .map(|(k, v)| (ne_u32(&k[..4]), k[4..].try_into().unwrap_or([0; N]), ne_u32(v)))
                .collect()
        }
    };
    let diff = TrieDiff::new(old, entries);
    if !diff.stale.is_empty() {
        let keys: Vec<u8> = diff.stale.iter().flat_map(|(len, addr)| key_bytes(*len, addr)).collect();
        sys::map_delete_batch(fd.as_fd(), &keys, key_size).map_err(|e| batch_error("bpf_map_delete_batch", e))?;
    }
    if diff.write.is_empty() {
        return Ok(diff.now);
    }
    let keys: Vec<u8> = diff.write.iter().flat_map(|(len, addr, _)| key_bytes(*len, addr)).collect();
    let values: Vec<u8> = diff.write.iter().flat_map(|(_, _, id)| id.to_ne_bytes()).collect();
    sys::map_update_batch(fd.as_fd(), &keys, key_size, &values, value_size).map(|()| diff.now).map_err(|e| {
        if sys::batch_unsupported(&e) {
            Batch::Unsupported
        } else {
            Batch::Failed(OperatorError::PrefixCapacity(aya::maps::MapError::SyscallError(aya::sys::SyscallError {
                call: "bpf_map_update_batch",
                io_error: e,
            })))
        }
    })
}

/// The prefixes this process wrote into one generation slot's tries, sorted.
#[derive(Debug, Default)]
pub(super) struct SlotPrefixes {
    v4: Vec<(u32, [u8; 4], u32)>,
    v6: Vec<(u32, [u8; 16], u32)>,
}

/// What turns a trie holding `old` into one holding `new`.
#[derive(Debug)]
struct TrieDiff<const N: usize> {
    /// (prefix length, address) to delete.
    stale: Vec<(u32, [u8; N])>,
    /// (prefix length, address, peer id) to write, in address order: consecutive inserts then
    /// walk the same upper trie nodes, which stay in cache (about 2x faster at 500,000 prefixes).
    write: Vec<(u32, [u8; N], u32)>,
    /// The new contents, sorted.
    now: Vec<(u32, [u8; N], u32)>,
}

impl<const N: usize> TrieDiff<N> {
    fn new(mut old: Vec<(u32, [u8; N], u32)>, new: &[(u32, [u8; N], u32)]) -> Self {
        let order = |a: &(u32, [u8; N], u32), b: &(u32, [u8; N], u32)| a.1.cmp(&b.1).then(a.0.cmp(&b.0));
        let mut new = new.to_vec();
        new.sort_unstable_by(order);
        // The policy parser rejects a prefix listed twice; should one slip through, write it once.
        new.dedup_by(|later, earlier| later.0 == earlier.0 && later.1 == earlier.1);
        old.sort_unstable_by(order);
        let (mut stale, mut write) = (Vec::new(), Vec::new());
        let (mut i, mut j) = (0, 0);
        while i < old.len() || j < new.len() {
            let ord = match (old.get(i), new.get(j)) {
                (Some(o), Some(n)) => o.1.cmp(&n.1).then(o.0.cmp(&n.0)),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match ord {
                std::cmp::Ordering::Less => {
                    stale.push((old[i].0, old[i].1));
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    write.push(new[j]);
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    if old[i].2 != new[j].2 {
                        write.push(new[j]);
                    }
                    i += 1;
                    j += 1;
                }
            }
        }
        TrieDiff { stale, write, now: new }
    }
}

fn ne_u32(b: &[u8]) -> u32 {
    u32::from_ne_bytes(b.try_into().unwrap_or([0; 4]))
}

/// `struct bpf_lpm_trie_key` bytes: prefix length (host order), then the address.
fn key_bytes<const N: usize>(len: u32, addr: &[u8; N]) -> impl Iterator<Item = u8> + '_ {
    len.to_ne_bytes().into_iter().chain(addr.iter().copied())
}

fn syscall_error(call: &'static str, io_error: std::io::Error) -> OperatorError {
    OperatorError::Map(aya::maps::MapError::SyscallError(aya::sys::SyscallError { call, io_error }))
}

/// One syscall per prefix: for kernels without batch commands on LPM tries.
fn replace_trie_per_element<const N: usize>(
    m: &mut aya::maps::Map,
    entries: &[(u32, [u8; N], u32)],
) -> Result<(), OperatorError>
where
    [u8; N]: aya::Pod,
{
    let mut trie: LpmTrie<&mut MapData, [u8; N], u32> = LpmTrie::try_from(m)?;
    let old: Vec<Key<[u8; N]>> = trie.keys().collect::<Result<_, _>>()?;
    for k in old {
        trie.remove(&k)?;
    }
    for (len, addr, id) in entries {
        trie.insert(&Key::new(*len, *addr), id, 0).map_err(OperatorError::PrefixCapacity)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::TrieDiff;

    #[test]
    fn the_diff_deletes_the_stale_writes_the_new_and_the_moved_and_skips_the_unchanged() {
        let old = vec![(24, [10, 0, 1, 0], 1), (32, [10, 0, 0, 1], 1), (16, [10, 9, 0, 0], 2), (24, [10, 0, 2, 0], 3)];
        let new = [(32, [10, 0, 0, 1], 1), (24, [10, 0, 2, 0], 4), (8, [11, 0, 0, 0], 2), (16, [10, 0, 0, 0], 5)];
        let d = TrieDiff::new(old, &new);
        assert_eq!(d.stale, vec![(24, [10, 0, 1, 0]), (16, [10, 9, 0, 0])]);
        // Moved to another peer, then the new ones, in address order.
        assert_eq!(d.write, vec![(16, [10, 0, 0, 0], 5), (24, [10, 0, 2, 0], 4), (8, [11, 0, 0, 0], 2)]);
    }

    #[test]
    fn the_same_address_with_two_lengths_is_two_prefixes() {
        let d = TrieDiff::new(vec![(16, [10, 0, 0, 0], 1)], &[(24, [10, 0, 0, 0], 1)]);
        assert_eq!(d.stale, vec![(16, [10, 0, 0, 0])]);
        assert_eq!(d.write, vec![(24, [10, 0, 0, 0], 1)]);
        let same = TrieDiff::new(vec![(16, [10, 0, 0, 0], 1)], &[(16, [10, 0, 0, 0], 1)]);
        assert!(same.stale.is_empty() && same.write.is_empty());
        let empty = TrieDiff::<4>::new(vec![], &[]);
        assert!(empty.stale.is_empty() && empty.write.is_empty());
    }
}
