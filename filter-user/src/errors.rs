//! Errors an operator sees, each saying what to do about it.

use aya::programs::ProgramError;

use crate::loader::AttachMode;

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("permission denied loading BPF: run as root, or grant CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON ({0})")]
    Privileges(String),
    #[error("interface {0:?} not found: check the name with `ip link` (and the network namespace you run in)")]
    NoInterface(String),
    #[error(
        "--forward-to {forward_to}: {why} (in-path mode forwards between two different interfaces: --iface the interconnect side, --forward-to the core side)"
    )]
    ForwardTo { forward_to: String, why: String },
    #[error("interface {iface} does not support {mode} XDP: use --xdp-mode skb (generic, slower) or --xdp-mode auto")]
    ModeUnsupported { iface: String, mode: AttachMode },
    #[error(
        "interface {0} already has an XDP program attached: detach it first (`ip link set dev {0} xdp off`, or `sigwall detach --iface {0}` if it is sigwall's)"
    )]
    Busy(String),
    #[error(
        "bpffs is not mounted at /sys/fs/bpf: mount it with `mount -t bpf bpf /sys/fs/bpf` (or add it to /etc/fstab)"
    )]
    NoBpffs,
    #[error(
        "sigwall is not attached to {iface}: no pins under {dir} (start it with `sigwall run --iface {iface} ...`)"
    )]
    NotAttached { iface: String, dir: String },
    #[error("BPF map operation failed: {0}")]
    Map(#[from] aya::maps::MapError),
    #[error(
        "the embedded XDP object has no {what}: this sigwall binary was built from mismatched sources; rebuild it (`cargo xtask build`)"
    )]
    BrokenObject { what: String },
    #[error("loading the sigwall object failed: {0} (check `dmesg` and that the kernel has BTF and BPF enabled)")]
    Load(String),
    #[error("the kernel rejected the XDP program: {io}\n{verifier_log}")]
    Verifier { io: String, verifier_log: String },
    #[error("attaching XDP to {iface} failed: {detail}")]
    Attach { iface: String, detail: String },
    #[error(
        "{iface}: the kernel attached XDP through netlink, not a BPF link ({detail}); sigwall needs XDP links (kernel 5.9 or newer)"
    )]
    NoXdpLink { iface: String, detail: String },
    #[error(
        "writing a prefix failed ({0}); the policy exceeds the map capacity: use fewer prefixes (or a smaller --max-prefixes so such policies are refused up front)"
    )]
    PrefixCapacity(aya::maps::MapError),
    #[error("counting CPUs for the per-CPU counters failed: {0}")]
    Cpus(String),
    #[error("{path}: {action} failed ({source}): check that bpffs is mounted read-write and that you are root")]
    Pins {
        path: String,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{iface}: {step} failed ({detail}): run `sigwall detach --iface {iface}` and start again")]
    Adopt { iface: String, step: &'static str, detail: String },
    #[error(
        "the filter pinned on {iface} uses map layout {pinned} but this sigwall uses layout {ours}: it cannot be adopted without a gap; run `sigwall detach --iface {iface}` and start again"
    )]
    LayoutMismatch { iface: String, pinned: u32, ours: u32 },
    #[error(
        "detaching the XDP link of {iface} failed ({source}): check with `bpftool link show` and detach it by hand (`ip link set dev {iface} xdp off`)"
    )]
    Detach {
        iface: String,
        #[source]
        source: std::io::Error,
    },
    /// The policy file was rejected; the message already names file and line.
    #[error("{0}")]
    PolicyRejected(String),
}

/// Why the daemon refused or failed a control command. The texts are what the client prints
/// and what the audit log records.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A policy file that does not validate; the message names file and line.
    #[error("{0}")]
    Policy(String),
    #[error("{path}: cannot read policy file: {source}")]
    ReadPolicy {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The requested edit cannot be made (e.g. no such peer); nothing changed.
    #[error(transparent)]
    Edit(#[from] crate::policy::edit::EditError),
    /// The request did not parse (bad arguments); nothing changed.
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("the running policy text no longer parses: {0}")]
    RunningText(String),
    /// The edited policy does not validate; nothing changed.
    #[error("rejected: {0}")]
    Rejected(String),
    #[error("not applied: cannot write {path}: {source}")]
    Persist {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Writing the new generation failed; the running one is unchanged.
    #[error("not applied: {0}")]
    NotApplied(OperatorError),
    #[error("{0}")]
    Filter(#[from] OperatorError),
}

/// Errors of a control client (the CLI) talking to a running daemon.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no sigwall daemon at {socket} ({source}): is `sigwall run` running for this interface?")]
    NoDaemon {
        socket: String,
        #[source]
        source: std::io::Error,
    },
    #[error("permission denied on {socket}: the control socket is for root (or the control group)")]
    PermissionDenied { socket: String },
    #[error("connecting to {socket}: {source}")]
    Connect {
        socket: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{step}: {source}")]
    Io {
        step: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("encoding the request: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("the daemon closed the connection without a reply")]
    NoReply,
    #[error("unreadable reply: {0}")]
    BadReply(String),
    /// The daemon refused or failed the command; its message, verbatim.
    #[error("{0}")]
    Refused(String),
}

fn errno_of(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(n) = io.raw_os_error()
        {
            return Some(n);
        }
        cur = err.source();
    }
    None
}

impl OperatorError {
    pub fn from_load(e: aya::EbpfError) -> Self {
        match errno_of(&e) {
            Some(libc::EPERM) | Some(libc::EACCES) => OperatorError::Privileges(e.to_string()),
            _ => OperatorError::Load(e.to_string()),
        }
    }

    pub fn from_program_load(e: ProgramError) -> Self {
        if let ProgramError::LoadError { io_error, verifier_log } = &e {
            // EPERM is missing privileges; EACCES from BPF_PROG_LOAD is the verifier refusing
            // the program, which the log explains.
            if io_error.raw_os_error() == Some(libc::EPERM) {
                return OperatorError::Privileges(io_error.to_string());
            }
            return OperatorError::Verifier { io: io_error.to_string(), verifier_log: verifier_log.to_string() };
        }
        match errno_of(&e) {
            Some(libc::EPERM) | Some(libc::EACCES) => OperatorError::Privileges(e.to_string()),
            _ => OperatorError::Load(format!("the XDP program: {e}")),
        }
    }

    pub fn is_mode_unsupported(e: &ProgramError) -> bool {
        matches!(errno_of(e), Some(libc::EOPNOTSUPP) | Some(libc::EINVAL))
    }

    pub fn from_attach(e: ProgramError, iface: &str, mode: AttachMode) -> Self {
        if let ProgramError::UnknownInterface { name } = &e {
            return OperatorError::NoInterface(name.clone());
        }
        match errno_of(&e) {
            Some(libc::EBUSY) | Some(libc::EEXIST) => OperatorError::Busy(iface.to_string()),
            Some(libc::EOPNOTSUPP) => OperatorError::ModeUnsupported { iface: iface.to_string(), mode },
            Some(libc::EPERM) | Some(libc::EACCES) => OperatorError::Privileges(e.to_string()),
            Some(libc::ENODEV) => OperatorError::NoInterface(iface.to_string()),
            _ => OperatorError::Attach { iface: iface.to_string(), detail: e.to_string() },
        }
    }
}
