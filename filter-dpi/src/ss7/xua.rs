//! What the SIGTRAN user adaptation layers share: the common message header (M3UA RFC 4666
//! §3.1, SUA RFC 3868 §3.1, M2UA RFC 3331 §3.1; M2PA RFC 4165 §2.1 has the same) and the list
//! of tag-length-value parameters, each padded to 4 bytes (not M2PA).
//!
//! Read as the receiver reads it. libosmo-sigtran's `xua_from_msg()` rejects a message whose
//! Message Length is *more* than the SCTP user message, but parses parameters to the end of
//! the user message when the length is *less* (evasion review H3). So a length that understates
//! its carrier does not shorten the message here: the whole carrier is decoded and the
//! disagreement is reported as [`DecodeError::NonCanonical`], which the caller judges malformed.

use crate::bytes::{be16, be32};
use crate::{DecodeError, Layer};

pub const VERSION: u8 = 1;
pub const HEADER_LEN: usize = 8;
pub const PARAM_HEADER_LEN: usize = 4;
/// Parameters any valid message of these layers has at most (an SUA CLDT has eleven kinds);
/// more is reported as non-canonical. Not a cap on decoding: every parameter is walked (a
/// parameter takes at least 4 bytes, so the walk is bounded by the message), because a cap
/// that hides the Protocol Data behind 32 filler parameters would be an evasion (review H4).
pub const MAX_PARAMS: usize = 32;

/// A message checked by [`message`]: its bytes (the whole carrier when its length understates
/// it) and what was not canonical about the framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Framed<'a> {
    pub data: &'a [u8],
    pub noncanonical: Option<&'static str>,
}

/// Checks that `header_len` bytes are there, the version, the class when one is required
/// (with the error to give otherwise), and the Message Length against the carrier:
/// - below the header: [`DecodeError::Content`];
/// - more than the carrier: [`DecodeError::Len`] (the receiver rejects it too);
/// - less than the carrier: the whole carrier, flagged non-canonical — except up to three zero
///   bytes after it (padding a caller left on; they cannot hold a parameter).
pub(crate) fn message<'a>(
    layer: Layer,
    data: &'a [u8],
    header_len: usize,
    class: Option<(u8, &'static str)>,
) -> Result<Framed<'a>, DecodeError> {
    DecodeError::need(layer, header_len, data.len())?;
    if data.first() != Some(&VERSION) {
        return Err(DecodeError::Content { layer, what: "version is not 1" });
    }
    if let Some((class, what)) = class
        && data.get(2) != Some(&class)
    {
        return Err(DecodeError::Content { layer, what });
    }
    let len = be32(data, 4).unwrap_or(0) as usize;
    if len < header_len {
        return Err(DecodeError::Content { layer, what: "message length below the header" });
    }
    let msg = data.get(..len).ok_or(DecodeError::Len { layer, required: len, len: data.len() })?;
    let rest = data.get(len..).unwrap_or(&[]);
    if rest.is_empty() || (rest.len() < 4 && rest.iter().all(|&b| b == 0)) {
        return Ok(Framed { data: msg, noncanonical: None });
    }
    Ok(Framed { data, noncanonical: Some("message length shorter than its carrier (parsed to the carrier's end)") })
}

/// Walks the parameters from `HEADER_LEN` to the end of `data` once. A parameter shorter than
/// its header or running past the message is an error (the receiver rejects the message);
/// more than [`MAX_PARAMS`] is reported, not refused.
pub(crate) fn walk_params(layer: Layer, data: &[u8]) -> Result<Option<&'static str>, DecodeError> {
    let mut off = HEADER_LEN;
    let mut n = 0usize;
    while off < data.len() {
        let plen =
            be16(data, off + 2).ok_or(DecodeError::Len { layer, required: off + PARAM_HEADER_LEN, len: data.len() })?
                as usize;
        if plen < PARAM_HEADER_LEN {
            return Err(DecodeError::Content { layer, what: "parameter length below 4" });
        }
        if off + plen > data.len() {
            return Err(DecodeError::Len { layer, required: off + plen, len: data.len() });
        }
        n += 1;
        off = (off + plen).next_multiple_of(4).min(data.len());
    }
    Ok((n > MAX_PARAMS).then_some("more parameters than any valid message has"))
}

/// The parameters of a message whose parameter list was walked (`walk_params`) when it was
/// framed, so this iterator cannot fail.
#[derive(Clone, Debug)]
pub struct ParamIter<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) off: usize,
}

impl<'a> ParamIter<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        ParamIter { data, off: HEADER_LEN }
    }
}

impl<'a> Iterator for ParamIter<'a> {
    type Item = ParamSlice<'a>;

    fn next(&mut self) -> Option<ParamSlice<'a>> {
        let len = be16(self.data, self.off + 2)? as usize;
        if len < PARAM_HEADER_LEN {
            return None;
        }
        let p = self.data.get(self.off..self.off.checked_add(len)?)?;
        self.off = (self.off + len).next_multiple_of(4).min(self.data.len());
        Some(ParamSlice { data: p })
    }
}

/// One parameter (tag, length, value; padding excluded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ParamSlice<'a> {
    pub(crate) data: &'a [u8],
}

impl<'a> ParamSlice<'a> {
    pub fn tag(&self) -> u16 {
        be16(self.data, 0).unwrap_or(0)
    }
    pub fn length(&self) -> u16 {
        be16(self.data, 2).unwrap_or(0)
    }
    pub fn value(&self) -> &'a [u8] {
        self.data.get(PARAM_HEADER_LEN..).unwrap_or(&[])
    }
}

/// The one parameter with this tag. Two of them is non-canonical: receivers take the first
/// (libosmo-sigtran's `xua_msg_find_tag()`), others may take the last; the first is returned
/// and the repetition reported.
pub(crate) fn unique_param<'a>(params: ParamIter<'a>, tag: u16) -> (Option<ParamSlice<'a>>, Option<&'static str>) {
    let mut it = params.filter(|p| p.tag() == tag);
    let first = it.next();
    let repeated = it.next().is_some();
    (first, repeated.then_some("a parameter appears twice"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_against_the_carrier() {
        let m = [1, 0, 1, 1, 0, 0, 0, 12, 0, 6, 0, 4];
        assert_eq!(message(Layer::M3ua, &m, 8, None).unwrap(), Framed { data: &m, noncanonical: None });
        // padding left on by a caller is not a disagreement
        let mut padded = m.to_vec();
        padded.extend_from_slice(&[0, 0, 0]);
        assert_eq!(message(Layer::M3ua, &padded, 8, None).unwrap().data, &m);
        // understated: the whole carrier, flagged
        let mut short = m;
        short[7] = 8;
        let f = message(Layer::M3ua, &short, 8, None).unwrap();
        assert_eq!(f.data, &short);
        assert!(f.noncanonical.is_some());
        // overstated: truncated
        let mut long = m;
        long[7] = 16;
        assert!(matches!(message(Layer::M3ua, &long, 8, None), Err(DecodeError::Len { .. })));
        long[7] = 4;
        assert!(matches!(message(Layer::M3ua, &long, 8, None), Err(DecodeError::Content { .. })));
        assert!(matches!(message(Layer::M3ua, &m, 8, Some((7, "x"))), Err(DecodeError::Content { what: "x", .. })));
    }

    #[test]
    fn params_walked_and_repeats_reported() {
        let mut m = vec![1, 0, 0, 1, 0, 0, 0, 0];
        for _ in 0..=MAX_PARAMS {
            m.extend_from_slice(&[0, 6, 0, 4]);
        }
        assert!(walk_params(Layer::M3ua, &m).unwrap().is_some());
        assert_eq!(ParamIter::new(&m).count(), MAX_PARAMS + 1);
        let (p, rep) = unique_param(ParamIter::new(&m), 6);
        assert!(p.is_some() && rep.is_some());
        assert_eq!(unique_param(ParamIter::new(&m), 7), (None, None));
        assert_eq!(walk_params(Layer::M3ua, &m[..m.len() - 4]), Ok(None));
        assert!(matches!(
            walk_params(Layer::M3ua, &[1, 0, 0, 1, 0, 0, 0, 0, 0, 6, 0, 2]),
            Err(DecodeError::Content { .. })
        ));
        assert!(matches!(
            walk_params(Layer::M3ua, &[1, 0, 0, 1, 0, 0, 0, 0, 0, 6, 0, 9]),
            Err(DecodeError::Len { .. })
        ));
        assert!(matches!(walk_params(Layer::M3ua, &[1, 0, 0, 1, 0, 0, 0, 0, 0, 6]), Err(DecodeError::Len { .. })));
    }
}
