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

/// `union bpf_attr` for the BPF_MAP_*_BATCH commands (kernel 5.6; LPM tries take them since
/// the generic batch ops were wired to them). aya 0.14 has no batch API.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// The kernel-internal ENOTSUPP (524) that bpf(2) returns for unsupported batch ops; libc does
/// not define it.
const ENOTSUPP: i32 = 524;

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_MAP_UPDATE_BATCH: libc::c_long = 26;
const BPF_MAP_DELETE_BATCH: libc::c_long = 27;

/// Whether a batch command failed because this kernel or map type has no batch support, so the
/// caller should fall back to one syscall per element.
pub(super) fn batch_unsupported(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EINVAL | ENOTSUPP | libc::EOPNOTSUPP | libc::ENOSYS))
}

fn batch_call(cmd: libc::c_long, attr: &mut BatchAttr) -> std::io::Result<()> {
    // SAFETY: `attr` is a zero-padded bpf_attr for a batch command; the key/value pointers it
    // carries are valid for `count` elements of the map's key and value sizes (callers check).
    let rc = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut BatchAttr, std::mem::size_of::<BatchAttr>()) };
    if rc != 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

/// Every (key, value) of the map behind `fd`, read with BPF_MAP_LOOKUP_BATCH in chunks.
/// `key_size`/`value_size` must be the map's. Returns the keys and values back to back.
pub(super) fn map_lookup_batch(
    fd: std::os::fd::BorrowedFd<'_>,
    key_size: usize,
    value_size: usize,
) -> std::io::Result<(Vec<u8>, Vec<u8>)> {
    use std::os::fd::AsRawFd as _;
    const CHUNK: usize = 8192;
    let (mut keys, mut values) = (Vec::new(), Vec::new());
    let mut kbuf = vec![0u8; CHUNK * key_size];
    let mut vbuf = vec![0u8; CHUNK * value_size];
    // The generic batch ops use a key as the cursor.
    let mut cursor = vec![0u8; key_size];
    let mut first = true;
    loop {
        let mut next = vec![0u8; key_size];
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { cursor.as_ptr() as u64 },
            out_batch: next.as_mut_ptr() as u64,
            keys: kbuf.as_mut_ptr() as u64,
            values: vbuf.as_mut_ptr() as u64,
            count: CHUNK as u32,
            map_fd: fd.as_raw_fd() as u32,
            ..Default::default()
        };
        let r = batch_call(BPF_MAP_LOOKUP_BATCH, &mut attr);
        let n = (attr.count as usize).min(CHUNK);
        keys.extend_from_slice(&kbuf[..n * key_size]);
        values.extend_from_slice(&vbuf[..n * value_size]);
        match r {
            Ok(()) => {}
            // ENOENT: the map is exhausted (what was filled is valid).
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok((keys, values)),
            Err(e) => return Err(e),
        }
        if n == 0 {
            return Ok((keys, values));
        }
        cursor = next;
        first = false;
    }
}

/// BPF_MAP_DELETE_BATCH of `keys` (back to back, `key_size` each).
pub(super) fn map_delete_batch(fd: std::os::fd::BorrowedFd<'_>, keys: &[u8], key_size: usize) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    for chunk in keys.chunks(key_size * 65536) {
        let mut attr = BatchAttr {
            keys: chunk.as_ptr() as u64,
            count: (chunk.len() / key_size) as u32,
            map_fd: fd.as_raw_fd() as u32,
            ..Default::default()
        };
        batch_call(BPF_MAP_DELETE_BATCH, &mut attr)?;
    }
    Ok(())
}

/// BPF_MAP_UPDATE_BATCH of `keys`/`values` (back to back). On error, how many elements were
/// written before it is in the error's context only: the caller treats the map as dirty.
pub(super) fn map_update_batch(
    fd: std::os::fd::BorrowedFd<'_>,
    keys: &[u8],
    key_size: usize,
    values: &[u8],
    value_size: usize,
) -> std::io::Result<()> {
    use std::os::fd::AsRawFd as _;
    const CHUNK: usize = 65536;
    let n = keys.len() / key_size;
    if values.len() != n * value_size {
        return Err(std::io::Error::other("batch update: key and value counts differ"));
    }
    let mut at = 0;
    while at < n {
        let m = (n - at).min(CHUNK);
        let mut attr = BatchAttr {
            keys: keys[at * key_size..].as_ptr() as u64,
            values: values[at * value_size..].as_ptr() as u64,
            count: m as u32,
            map_fd: fd.as_raw_fd() as u32,
            ..Default::default()
        };
        batch_call(BPF_MAP_UPDATE_BATCH, &mut attr)?;
        at += m;
    }
    Ok(())
}
