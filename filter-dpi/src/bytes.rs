//! Big-endian reads at an offset: the one set every decoder uses.
//!
//! Each returns `None` when the input is too short (or the offset overflows), never a made-up
//! value. Two ways to use them:
//!
//! - while validating (`from_slice`), turn `None` into the layer's [`DecodeError::Len`] with
//!   `.ok_or(..)?`, or read after a `DecodeError::need` that proves the bound;
//! - in the accessors of a slice that `from_slice` validated, `.unwrap_or(0)`: the bound was
//!   checked there, so the fallback only stands in for a panic and no caller ever sees it.
//!
//! (Before this module there were five copies with two meanings: three returned `Option`, two
//! returned 0 on a short read.)
//!
//! [`DecodeError::Len`]: crate::DecodeError::Len

/// The `N` bytes at `at`, if they are all there.
pub fn array<const N: usize>(d: &[u8], at: usize) -> Option<[u8; N]> {
    d.get(at..at.checked_add(N)?)?.try_into().ok()
}

/// Big-endian `u16` at `at`.
pub fn be16(d: &[u8], at: usize) -> Option<u16> {
    array(d, at).map(u16::from_be_bytes)
}

/// Big-endian 24-bit value at `at` (Diameter lengths and command codes, GTPv2 and SCCP
/// sequence numbers and references).
pub fn be24(d: &[u8], at: usize) -> Option<u32> {
    array(d, at).map(|[a, b, c]| u32::from_be_bytes([0, a, b, c]))
}

/// Big-endian `u32` at `at`.
pub fn be32(d: &[u8], at: usize) -> Option<u32> {
    array(d, at).map(u32::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_short_reads() {
        let d = [0x01, 0x02, 0x03, 0x04, 0x05];
        assert_eq!(be16(&d, 0), Some(0x0102));
        assert_eq!(be16(&d, 3), Some(0x0405));
        assert_eq!(be16(&d, 4), None);
        assert_eq!(be24(&d, 2), Some(0x030405));
        assert_eq!(be24(&d, 3), None);
        assert_eq!(be32(&d, 1), Some(0x02030405));
        assert_eq!(be32(&d, 2), None);
        assert_eq!(be32(&[], 0), None);
        assert_eq!(array::<2>(&d, usize::MAX), None, "offset overflow is a short read, not a panic");
        assert_eq!(array::<0>(&d, 5), Some([]));
    }
}
