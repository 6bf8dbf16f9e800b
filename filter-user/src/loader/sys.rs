//! Raw `bpf(2)` and `statfs(2)` calls that aya does not offer.

use std::path::Path;

use super::BPFFS;

const BPF_FS_MAGIC: i64 = 0xcafe4a11;

/// BPF_OBJ_GET: a descriptor for a pinned object (aya keeps its link descriptors private).
pub(super) fn bpf_obj_get(path: &Path) -> std::io::Result<std::os::fd::OwnedFd> {
    use std::os::{fd::FromRawFd as _, unix::ffi::OsStrExt as _};
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    #[repr(C)]
    struct ObjGetAttr {
        pathname: u64,
        bpf_fd: u32,
        file_flags: u32,
        path_fd: i32,
        _pad: [u32; 11],
    }
    let attr = ObjGetAttr { pathname: c.as_ptr() as u64, bpf_fd: 0, file_flags: 0, path_fd: 0, _pad: [0; 11] };
    const BPF_OBJ_GET: libc::c_long = 7;
    // SAFETY: bpf(BPF_OBJ_GET) reads a NUL-terminated path through `pathname`, valid for the call.
    let fd = unsafe {
        libc::syscall(libc::SYS_bpf, BPF_OBJ_GET, &attr as *const ObjGetAttr, std::mem::size_of::<ObjGetAttr>())
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel returned a new descriptor that we now own.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// BPF_LINK_DETACH: detach a link even while others hold it open (kernel 5.9).
pub(super) fn link_detach(fd: &std::os::fd::OwnedFd) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    #[repr(C)]
    struct LinkDetachAttr {
        link_fd: u32,
        _pad: [u32; 15],
    }
    let attr = LinkDetachAttr { link_fd: fd.as_raw_fd() as u32, _pad: [0; 15] };
    const BPF_LINK_DETACH: libc::c_long = 34;
    // SAFETY: bpf(BPF_LINK_DETACH) reads `link_fd` from a zero-padded attr of the size given.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_LINK_DETACH,
            &attr as *const LinkDetachAttr,
            std::mem::size_of::<LinkDetachAttr>(),
        )
    };
    if rc != 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

/// Whether bpffs is mounted at /sys/fs/bpf.
pub fn bpffs_mounted() -> bool {
    let path = std::ffi::CString::new(BPFFS).expect("static path");
    // SAFETY: statfs writes into the zeroed struct we pass; path is a valid C string.
    unsafe {
        let mut s: libc::statfs = std::mem::zeroed();
        libc::statfs(path.as_ptr(), &mut s) == 0 && s.f_type as i64 == BPF_FS_MAGIC
    }
}
