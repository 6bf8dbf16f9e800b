//! Errors an operator sees, each saying what to do about it.

use aya::programs::ProgramError;

use crate::loader::AttachMode;

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("permission denied loading BPF: run as root, or grant CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON ({0})")]
    Privileges(String),
    #[error("interface {0:?} not found: check the name with `ip link` (and the network namespace you run in)")]
    NoInterface(String),
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
    #[error("{0}")]
    Other(String),
}

fn errno_of(e: &(dyn std::error::Error + 'static)) -> Option<i32> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if let Some(n) = io.raw_os_error() {
                return Some(n);
            }
        }
        cur = err.source();
    }
    None
}

impl OperatorError {
    pub fn from_load(e: aya::EbpfError) -> Self {
        match errno_of(&e) {
            Some(libc::EPERM) | Some(libc::EACCES) => OperatorError::Privileges(e.to_string()),
            _ => OperatorError::Other(format!("loading the sigwall object failed: {e}")),
        }
    }

    pub fn from_program_load(e: ProgramError) -> Self {
        if let ProgramError::LoadError { io_error, verifier_log } = &e {
            // EPERM is missing privileges; EACCES from BPF_PROG_LOAD is the verifier refusing
            // the program, which the log explains.
            if io_error.raw_os_error() == Some(libc::EPERM) {
                return OperatorError::Privileges(io_error.to_string());
            }
            return OperatorError::Other(format!("the kernel rejected the XDP program: {io_error}\n{verifier_log}"));
        }
        match errno_of(&e) {
            Some(libc::EPERM) | Some(libc::EACCES) => OperatorError::Privileges(e.to_string()),
            _ => OperatorError::Other(format!("loading the XDP program failed: {e}")),
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
            _ => OperatorError::Other(format!("attaching XDP to {iface} failed: {e}")),
        }
    }
}
