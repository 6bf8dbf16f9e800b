//! The daemon's policy state and what each control command does to it. Callers serialise
//! access (one change at a time); every change is validated whole before anything is written,
//! persisted before it takes effect, and audited whether applied or rejected.
//!
//! Deep inspection and the metrics endpoint do not run under this state: they get what they
//! need through [`Inspection`]'s handle and [`PolicyFacts`].

use std::{
    fs::File,
    io::Write,
    path::{Path, PathBuf},
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use serde_json::{Value, json};

use super::inspection::Inspection;
use crate::{
    control::{Command, server::Caller},
    errors::CommandError,
    loader::Attached,
    policy::{self, Limits, Policy, edit, hex, sha256},
    stats,
};

/// When the last change was tried and whether it was applied (for metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LastChange {
    /// Unix seconds.
    pub at_s: u64,
    pub applied: bool,
}

impl LastChange {
    pub fn now(applied: bool) -> LastChange {
        LastChange { at_s: SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs(), applied }
    }
}

/// What the metrics endpoint reports about the policy, updated by the state on every change so
/// that rendering metrics never waits for a policy change to finish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyFacts {
    pub last_change: LastChange,
    pub peers: usize,
    pub prefixes_v4: usize,
    pub prefixes_v6: usize,
}

impl PolicyFacts {
    fn of(p: &Policy, last_change: LastChange) -> PolicyFacts {
        let v4: usize =
            p.peers.iter().map(|p| p.prefixes.iter().filter(|n| matches!(n, ipnet::IpNet::V4(_))).count()).sum();
        let all: usize = p.peers.iter().map(|p| p.prefixes.len()).sum();
        PolicyFacts { last_change, peers: p.peers.len(), prefixes_v4: v4, prefixes_v6: all - v4 }
    }
}

pub type SharedFacts = std::sync::Arc<std::sync::Mutex<PolicyFacts>>;

/// Lock a std mutex whose holder may have panicked: the data is plain counters and facts.
pub(crate) fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

pub struct State {
    pub attached: Attached,
    pub policy_path: PathBuf,
    /// The policy text the running generation was compiled from.
    pub text: String,
    /// What the policy file held when this daemon last read or wrote it (None: unknown). Not
    /// `text` when `--mode` overrides the file's mode at start.
    file_text: Option<String>,
    pub policy: Policy,
    /// Write CLI changes back to `policy_path`.
    pub persist: bool,
    pub limits: Limits,
    pub started: Instant,
    pub audit: Option<File>,
    /// Set by `detach`: the serving loop exits and detaches.
    pub detach_requested: bool,
    /// Deep inspection runs apart; this handle feeds it policy changes and reads its events.
    pub inspection: Inspection,
    /// Published for the metrics endpoint.
    pub facts: SharedFacts,
    /// Tap mode: every policy applied is made monitor-only ([`Policy::observe_only`]).
    pub tap: bool,
}

/// Outcome of a command: the reply payload, or why not.
pub type Outcome = Result<Value, CommandError>;

impl State {
    /// Assemble the state; `facts` starts out as "last change: now, applied" (the start).
    #[expect(clippy::too_many_arguments, reason = "each is one named part of the state, assembled once at start")]
    pub fn new(
        attached: Attached,
        policy_path: PathBuf,
        text: String,
        policy: Policy,
        persist: bool,
        limits: Limits,
        audit: Option<File>,
        inspection: Inspection,
    ) -> State {
        let facts = std::sync::Arc::new(std::sync::Mutex::new(PolicyFacts::of(&policy, LastChange::now(true))));
        let file_text = policy::read_text(&policy_path).ok();
        State {
            attached,
            policy_path,
            text,
            file_text,
            policy,
            persist,
            limits,
            started: Instant::now(),
            audit,
            detach_requested: false,
            tap: false,
            inspection,
            facts,
        }
    }

    pub fn generation(&self) -> u64 {
        self.attached.filter.generation().unwrap_or(0)
    }

    /// Run one command. `raw` is the request as received, for the audit log.
    pub fn handle(&mut self, cmd: Command, caller: Caller, raw: &Value) -> Outcome {
        let before = self.generation();
        let res = match &cmd {
            Command::Status => Ok(self.status()),
            Command::Peers => self.peers(),
            Command::Stats => self.stats(),
            Command::Events { since, limit } => Ok(self.inspection.events(*since, (*limit).clamp(1, 10_000) as usize)),
            Command::Subscriber { imsi } => {
                Ok(self.inspection.subscriber(imsi, self.policy.inspect.subscriber.mask_identities))
            }
            Command::Blocks { lift } => self.identity_blocks(lift.as_ref()),
            Command::PolicyDiff { file } => self.may_name_files(caller).and_then(|()| self.diff(Path::new(file))),
            Command::PeerAdd(c) => self.edit(|d| edit::add_peer(d, c)),
            Command::PeerRemove { name } => self.edit(|d| edit::remove_peer(d, name)),
            Command::PeerSet(c) => self.edit(|d| edit::set_peer(d, c)),
            Command::Mode { mode: filter_common::Mode::Enforce } if self.tap => Err(CommandError::Rejected(
                "tap mode: a mirror port can stop nothing; sigwall runs in monitor mode here".into(),
            )),
            Command::Mode { mode } => self.edit(|d| edit::set_mode(d, mode.name())),
            Command::PolicyReload { file: Some(f) } => {
                self.may_name_files(caller).and_then(|()| self.reload(Some(Path::new(f))))
            }
            Command::PolicyReload { file: None } => self.reload(None),
            Command::Detach => {
                self.detach_requested = true;
                Ok(json!({"detaching": self.attached.iface}))
            }
        };
        if cmd.is_change() {
            self.audit_line(caller, raw, &res, before);
            *lock(&self.facts) = PolicyFacts::of(&self.policy, LastChange::now(res.is_ok()));
        }
        res
    }

    fn status(&mut self) -> Value {
        let program_id = self.attached.filter.program_id();
        json!({
            "iface": self.attached.iface,
            "xdp_mode": self.attached.mode,
            "program_id": program_id,
            "adopted": self.attached.adopted,
            "forward_to": self.attached.forward.as_ref().map(|f| f.iface.clone()),
            "deployment": match (&self.attached.forward, self.tap) {
                (Some(_), _) => "in-path",
                (None, true) => "tap",
                (None, false) => "host",
            },
            "policy_file": self.policy_path.display().to_string(),
            "policy_sha256": hex(&sha256(&self.text)),
            "generation": self.generation(),
            "uptime_s": self.started.elapsed().as_secs(),
            "mode": self.policy.mode.name(),
            "persist": self.persist,
        })
    }

    fn peers(&self) -> Outcome {
        let snap = stats::of_filter(&self.attached.filter)?;
        let list: Vec<Value> = self
            .policy
            .peers
            .iter()
            .map(|p| {
                let s = snap.peer(&p.name).cloned().unwrap_or_default();
                json!({
                    "name": p.name,
                    "prefixes": p.prefixes.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
                    "allow": p.allow.iter().map(|c| c.name()).collect::<Vec<_>>(),
                    "rate_limit_pps": p.rate_limit_pps,
                    "mode": p.mode.map(filter_common::Mode::name),
                    "packets": s.packets, "bytes": s.bytes, "passed": s.passed, "dropped": s.dropped,
                })
            })
            .collect();
        Ok(json!({ "generation": snap.generation, "peers": list }))
    }

    fn diff(&self, file: &Path) -> Outcome {
        let text = policy::read_text(file)
            .map_err(|e| CommandError::ReadPolicy { path: file.display().to_string(), source: e })?;
        let new = policy::parse(&file.display().to_string(), &text, &self.limits)
            .map_err(|e| CommandError::Policy(e.to_string()))?;
        Ok(json!({ "changes": edit::diff(&self.policy, &new) }))
    }

    /// A CLI change: edit the document, validate the result whole, apply and persist.
    fn edit(&mut self, f: impl FnOnce(&mut toml_edit::DocumentMut) -> Result<(), edit::EditError>) -> Outcome {
        let mut doc = edit::parse_doc(&self.text).map_err(|e| CommandError::RunningText(e.to_string()))?;
        f(&mut doc).map_err(CommandError::Edit)?;
        let text = doc.to_string();
        let name = self.policy_path.display().to_string();
        let new = policy::parse(&name, &text, &self.limits).map_err(|e| CommandError::Rejected(e.message))?;
        self.commit(new, text, self.persist)
    }

    /// A request that names a file makes the daemon open that path with its own rights (and, for
    /// reload, write there on later changes). Members of --control-group may change the policy
    /// but not choose paths: only root and the daemon's own user may.
    fn may_name_files(&self, caller: Caller) -> Result<(), CommandError> {
        // SAFETY: geteuid(2) cannot fail.
        let own = unsafe { libc::geteuid() };
        if caller.uid == 0 || caller.uid == own {
            return Ok(());
        }
        Err(CommandError::Rejected(format!(
            "naming a policy file is for root or the daemon's user (uid {own}), not uid {}: edit with peer/mode commands, or reload the running file without a path",
            caller.uid
        )))
    }

    /// Reload the policy file (or adopt another one): validated whole, then applied.
    pub fn reload(&mut self, file: Option<&Path>) -> Outcome {
        let path = file.map(Path::to_path_buf).unwrap_or_else(|| self.policy_path.clone());
        let text = policy::read_text(&path)
            .map_err(|e| CommandError::ReadPolicy { path: path.display().to_string(), source: e })?;
        let new = policy::parse(&path.display().to_string(), &text, &self.limits)
            .map_err(|e| CommandError::Policy(e.to_string()))?;
        let out = self.commit(new, text.clone(), false)?;
        self.policy_path = path;
        self.file_text = Some(text);
        Ok(out)
    }

    /// Apply `new` (compiled from `text`) as the next generation. Unchanged policies make no
    /// generation. When persisting, the file is replaced before the flip, and put back if the
    /// apply fails, so the file and the running policy never disagree.
    fn commit(&mut self, mut new: Policy, text: String, persist: bool) -> Outcome {
        if self.tap {
            new.observe_only();
        }
        let old_gen = self.generation();
        let changes = edit::diff(&self.policy, &new);
        if changes.is_empty() && text == self.text {
            return Ok(json!({ "generation": old_gen, "changed": false, "changes": changes }));
        }
        let c = self.attached.filter.compile(&new)?;
        if persist {
            // An edit rewrites the file from the running text: edits made on disk and not yet
            // reloaded would be lost without a word. Refuse instead (a file that cannot be
            // read, e.g. removed, is written anew).
            if let (Ok(on_disk), Some(known)) = (policy::read_text(&self.policy_path), &self.file_text)
                && on_disk != *known
            {
                return Err(CommandError::Rejected(format!(
                    "{} changed on disk since it was loaded and is not running: reload it (sigwall policy reload) or put it back, then edit",
                    self.policy_path.display()
                )));
            }
            write_atomic(&self.policy_path, &text)
                .map_err(|e| CommandError::Persist { path: self.policy_path.display().to_string(), source: e })?;
            self.file_text = Some(text.clone());
        }
        // `apply` changes nothing on error (it flips last and undoes its own work), so there is
        // nothing to flip back here: only the file is put back.
        if let Err(e) = self.attached.filter.apply(&c, crate::policy::applied_sha256(&text, self.tap)) {
            if persist {
                match write_atomic(&self.policy_path, &self.text) {
                    Ok(()) => self.file_text = Some(self.text.clone()),
                    // The file now holds text that does not run: say so loudly, the next
                    // reload, watch or restart would apply it.
                    Err(re) => log::error!(
                        "{}: putting the running policy back failed ({re}); the file holds the rejected change",
                        self.policy_path.display()
                    ),
                }
            }
            return Err(CommandError::NotApplied(e));
        }
        if let Err(e) = crate::inspect::io::set_enabled(&mut self.attached.filter, new.inspect.enabled) {
            log::error!("switching deep inspection: {e}");
        }
        self.inspection.follow_policy(&new, &self.attached.filter);
        // Identity blocks belong to peers by id; a removed peer's id may be reused, also by a
        // peer added in this very change (a fresh id): its predecessor's blocks go.
        let ids = new
            .peers
            .iter()
            .filter_map(|p| self.attached.filter.peer_id(&p.name))
            .filter(|id| !c.fresh_ids.contains(id))
            .collect();
        self.inspection.identity_blocks().keep_peers(&ids);
        if self.attached.forward.is_some()
            && let Err(e) = self.attached.filter.set_inpath_budget(crate::inpath::budget(&new))
        {
            log::error!("setting the in-path budget: {e}");
        }
        self.policy = new;
        self.text = text;
        Ok(json!({ "generation": c.global.generation, "changed": true, "changes": changes }))
    }

    /// `sigwall blocks`: the in-path identity blocks, each with its peer's name; with `lift`,
    /// lift one peer's blocks of an identity first (an unknown peer or a value no block names
    /// is an error and changes nothing).
    fn identity_blocks(&mut self, lift: Option<&crate::control::Lift>) -> Outcome {
        let blocks = self.inspection.identity_blocks();
        let now = crate::inspect::io::monotonic_ns();
        let mut lifted = None;
        if let Some(l) = lift {
            let Some(id) = self.attached.filter.peer_id(&l.peer) else {
                return Err(CommandError::Rejected(format!("no peer {:?} in the running policy", l.peer)));
            };
            match blocks.lift(id, &l.identity) {
                0 => {
                    return Err(CommandError::Rejected(format!(
                        "peer {:?} has no identity block on {:?}",
                        l.peer, l.identity
                    )));
                }
                n => lifted = Some(n),
            }
        }
        let names: std::collections::HashMap<u32, &str> = self
            .policy
            .peers
            .iter()
            .filter_map(|p| self.attached.filter.peer_id(&p.name).map(|id| (id, p.name.as_str())))
            .collect();
        let list: Vec<Value> = blocks
            .list(now)
            .iter()
            .map(|b| {
                let mut v = b.json();
                v["peer"] = json!(names.get(&b.peer_id).copied().unwrap_or("(removed peer)"));
                v
            })
            .collect();
        Ok(json!({
            "inpath": self.inspection.inpath_counters().is_some(),
            "lifted": lifted,
            "counts": blocks.counts(now),
            "blocks": list,
        }))
    }

    /// Counters from the maps, plus deep inspection's own.
    fn stats(&self) -> Outcome {
        let mut v = stats::of_filter(&self.attached.filter)?.to_json();
        let ring = crate::inspect::io::copy_counters(&self.attached.filter).unwrap_or_default();
        let mut insp = self.inspection.counters().to_json();
        insp["flagged"] = json!(ring[filter_common::INSPECT_FLAGGED as usize]);
        insp["inspect_overflow"] = json!(ring[filter_common::INSPECT_OVERFLOW as usize]);
        insp["inspect_truncated"] = json!(ring[filter_common::INSPECT_TRUNCATED as usize]);
        insp["inspect_budget"] = json!(ring[filter_common::INSPECT_BUDGET as usize]);
        insp["inspect_drop_skipped"] = json!(ring[filter_common::INSPECT_DROP_SKIPPED as usize]);
        insp["enabled"] = json!(self.policy.inspect.enabled);
        insp["subscriber_state"] = serde_json::to_value(self.inspection.state_stats()).unwrap_or_default();
        v["inspect"] = insp;
        if let Some(c) = self.inspection.inpath_counters() {
            v["inpath_daemon"] = serde_json::to_value(c).unwrap_or_default();
            v["inpath_daemon"]["identity_blocks"] =
                serde_json::to_value(self.inspection.identity_blocks().counts(crate::inspect::io::monotonic_ns()))
                    .unwrap_or_default();
        }
        Ok(v)
    }

    /// Audit a change request that was refused before it reached [`State::handle`] (it did not
    /// parse), and count it as a failed change for the metrics.
    pub fn audit_rejected(&mut self, caller: Caller, raw: &Value, error: &str) {
        let generation = self.generation();
        self.audit_line(caller, raw, &Err(CommandError::Malformed(error.to_string())), generation);
        *lock(&self.facts) = PolicyFacts::of(&self.policy, LastChange::now(false));
    }

    fn audit_line(&mut self, caller: Caller, raw: &Value, res: &Outcome, old_gen: u64) {
        let Some(f) = self.audit.as_mut() else { return };
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let line = json!({
            "time": format!("{}.{:03}", now.as_secs(), now.subsec_millis()),
            "uid": caller.uid,
            "pid": caller.pid,
            "request": raw,
            "result": match res { Ok(_) => "applied", Err(_) => "rejected" },
            "error": res.as_ref().err().map(|e| e.to_string()),
            "old_generation": old_gen,
            "new_generation": self.attached.filter.generation().unwrap_or(old_gen),
        });
        // The audit trail must not be silently lost: a write failure is logged loudly.
        if let Err(e) = writeln!(f, "{line}").and_then(|_| f.sync_data()) {
            log::error!("cannot write the audit log: {e}");
        }
    }
}

/// Replace `path` with `text`: write a temporary file beside it, fsync, rename, fsync the
/// directory. Readers see the old or the new file, never a mix.
pub fn write_atomic(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.sigwall-{}.tmp", std::process::id()));
    let result = (|| {
        use std::os::unix::fs::OpenOptionsExt as _;
        // The temporary name is predictable: whatever sits there (a crash's leftover, or a
        // symlink planted by someone who can write the directory) is removed, not followed,
        // and the file is created new, without following a link, or not at all.
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        if let Ok(meta) = std::fs::metadata(path) {
            f.set_permissions(meta.permissions())?;
        }
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return result;
    }
    // The new text is in place: a failed directory sync only makes the rename less durable
    // across a power cut. It is not a failed write (the caller would put the old text back
    // over a file it believes unchanged).
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        log::warn!("{}: renamed into place, but syncing {} failed: {e}", path.display(), dir.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::write_atomic;

    /// The temporary file's name is predictable: a symlink planted there is replaced, never
    /// written through, and the policy file gets the new text with its old permissions.
    #[test]
    fn write_atomic_never_follows_a_planted_temporary_name() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("sigwall-write-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (policy, victim) = (dir.join("p.toml"), dir.join("victim"));
        std::fs::write(&policy, "old").unwrap();
        std::fs::set_permissions(&policy, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::fs::write(&victim, "precious").unwrap();
        let tmp = dir.join(format!(".p.toml.sigwall-{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &tmp).unwrap();
        write_atomic(&policy, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(std::fs::read_to_string(&policy).unwrap(), "new");
        assert_eq!(std::fs::metadata(&policy).unwrap().permissions().mode() & 0o777, 0o640);
        assert!(!tmp.exists() && std::fs::symlink_metadata(&tmp).is_err(), "no temporary left");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
