//! A small BER (X.690) TLV reader for TCAP and MAP: definite and indefinite lengths, tag
//! numbers up to 28 bits, nesting depth capped at [`MAX_DEPTH`] and the number of elements read
//! per message capped at [`MAX_ELEMENTS`] (both [`DecodeError::Limit`]).
//!
//! Definite-length values are not looked into until asked ([`Tlv::children`]); an indefinite
//! length needs its end-of-contents found, which walks the nested elements (recursion bounded by
//! the depth cap).

use std::cell::Cell;

use crate::{DecodeError, Layer};

/// Nesting depth of constructed elements (TCAP message → component → MAP argument → …).
pub const MAX_DEPTH: usize = 24;
/// Elements read per [`Budget`] (one decoded message).
pub const MAX_ELEMENTS: usize = 4096;
/// Octets in a long-form length (4 → lengths up to 4 GiB, far above any SCCP payload).
pub const MAX_LENGTH_OCTETS: usize = 4;
/// Octets in a high tag number (4 × 7 = 28 bits).
pub const MAX_TAG_OCTETS: usize = 4;
/// Arcs in an object identifier rendered by [`oid_to_string`].
pub const MAX_OID_ARCS: usize = 32;

pub const CLASS_UNIVERSAL: u8 = 0;
pub const CLASS_APPLICATION: u8 = 1;
pub const CLASS_CONTEXT: u8 = 2;
pub const CLASS_PRIVATE: u8 = 3;

pub const TAG_BOOLEAN: u32 = 1;
pub const TAG_INTEGER: u32 = 2;
pub const TAG_OCTET_STRING: u32 = 4;
pub const TAG_NULL: u32 = 5;
pub const TAG_OID: u32 = 6;
pub const TAG_EXTERNAL: u32 = 8;
pub const TAG_SEQUENCE: u32 = 16;

/// Element budget shared by every read of one message, and the layer errors are reported for.
#[derive(Debug)]
pub struct Budget {
    left: Cell<usize>,
    layer: Layer,
}

impl Budget {
    pub fn new(layer: Layer) -> Self {
        Budget { left: Cell::new(MAX_ELEMENTS), layer }
    }
    pub fn with_limit(layer: Layer, elements: usize) -> Self {
        Budget { left: Cell::new(elements), layer }
    }
    pub fn layer(&self) -> Layer {
        self.layer
    }
    /// Elements still allowed.
    pub fn left(&self) -> usize {
        self.left.get()
    }
    fn take(&self) -> Result<(), DecodeError> {
        let n = self.left.get();
        if n == 0 {
            return Err(DecodeError::Limit { layer: self.layer, what: "more than MAX_ELEMENTS BER elements" });
        }
        self.left.set(n - 1);
        Ok(())
    }
}

/// One element: identifier, and its value (without end-of-contents for indefinite lengths).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tlv<'a> {
    pub class: u8,
    pub constructed: bool,
    pub tag: u32,
    pub value: &'a [u8],
    /// The whole element, identifier to last octet (end-of-contents included).
    pub raw: &'a [u8],
    pub indefinite: bool,
    depth: usize,
}

impl<'a> Tlv<'a> {
    /// Reads one element from the front of `data`; returns it and the bytes after it.
    pub fn parse(data: &'a [u8], budget: &Budget) -> Result<(Tlv<'a>, &'a [u8]), DecodeError> {
        parse_at(data, budget, 0)
    }

    pub fn is(&self, class: u8, constructed: bool, tag: u32) -> bool {
        self.class == class && self.constructed == constructed && self.tag == tag
    }
    /// Context-specific tag `[n]`, primitive or constructed.
    pub fn is_context(&self, tag: u32) -> bool {
        self.class == CLASS_CONTEXT && self.tag == tag
    }
    pub fn is_universal(&self, tag: u32) -> bool {
        self.class == CLASS_UNIVERSAL && self.tag == tag
    }
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// The elements inside a constructed value (an empty iterator for a primitive one).
    pub fn children<'b>(&self, budget: &'b Budget) -> Children<'a, 'b> {
        Children { data: if self.constructed { self.value } else { &[] }, budget, depth: self.depth + 1, failed: false }
    }

    /// The value as a signed integer (1 to 8 octets, two's complement).
    pub fn int(&self) -> Option<i64> {
        int_value(self.value)
    }
}

/// Reads the elements of a value one after the other; yields an error once, then stops.
#[derive(Debug)]
pub struct Children<'a, 'b> {
    data: &'a [u8],
    budget: &'b Budget,
    depth: usize,
    failed: bool,
}

impl<'a, 'b> Children<'a, 'b> {
    /// The top-level elements of `data` (e.g. a MAP parameter's contents).
    pub fn of(data: &'a [u8], budget: &'b Budget) -> Self {
        Children { data, budget, depth: 0, failed: false }
    }
}

impl<'a> Iterator for Children<'a, '_> {
    type Item = Result<Tlv<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.data.is_empty() {
            return None;
        }
        match parse_at(self.data, self.budget, self.depth) {
            Ok((t, rest)) => {
                self.data = rest;
                Some(Ok(t))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

fn parse_at<'a>(data: &'a [u8], budget: &Budget, depth: usize) -> Result<(Tlv<'a>, &'a [u8]), DecodeError> {
    let layer = budget.layer;
    if depth > MAX_DEPTH {
        return Err(DecodeError::Limit { layer, what: "BER nesting deeper than MAX_DEPTH" });
    }
    budget.take()?;
    // The usual element: a tag number below 31 and a length below 128 (what the general path
    // below reads the same way, with the same error when the contents are cut).
    if let [id, l0, rest @ ..] = data
        && id & 0x1f != 0x1f
        && *l0 < 0x80
    {
        let len = *l0 as usize;
        let (Some(value), Some(after)) = (rest.get(..len), rest.get(len..)) else {
            return Err(DecodeError::Len { layer, required: 2 + len, len: data.len() });
        };
        let raw = data.get(..2 + len).unwrap_or(data);
        let (class, constructed, tag) = (id >> 6, id & 0x20 != 0, (id & 0x1f) as u32);
        return Ok((Tlv { class, constructed, tag, value, raw, indefinite: false, depth }, after));
    }
    let len_err = |required: usize| DecodeError::Len { layer, required, len: data.len() };
    let id = *data.first().ok_or(len_err(1))?;
    let class = id >> 6;
    let constructed = id & 0x20 != 0;
    let mut off = 1;
    let mut tag = (id & 0x1f) as u32;
    if tag == 0x1f {
        tag = 0;
        loop {
            let b = *data.get(off).ok_or(len_err(off + 1))?;
            off += 1;
            if off - 1 > MAX_TAG_OCTETS {
                return Err(DecodeError::Content { layer, what: "BER tag number too long" });
            }
            tag = (tag << 7) | (b & 0x7f) as u32;
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let l0 = *data.get(off).ok_or(len_err(off + 1))?;
    off += 1;
    if l0 == 0x80 {
        if !constructed {
            return Err(DecodeError::Content { layer, what: "indefinite length on a primitive BER element" });
        }
        // Walk the contents up to the end-of-contents octets.
        let start = off;
        let mut rest = data.get(off..).unwrap_or(&[]);
        loop {
            match rest {
                [0, 0, ..] => {
                    let end = data.len() - rest.len();
                    let value = data.get(start..end).unwrap_or(&[]);
                    let raw = data.get(..end + 2).unwrap_or(data);
                    let after = rest.get(2..).unwrap_or(&[]);
                    let t = Tlv { class, constructed, tag, value, raw, indefinite: true, depth };
                    return Ok((t, after));
                }
                [] | [_] => return Err(len_err(data.len() - rest.len() + 2)),
                _ => {
                    let (_, r) = parse_at(rest, budget, depth + 1)?;
                    rest = r;
                }
            }
        }
    }
    let len = if l0 < 0x80 {
        l0 as usize
    } else {
        let n = (l0 & 0x7f) as usize;
        if n > MAX_LENGTH_OCTETS {
            return Err(DecodeError::Content { layer, what: "BER length of more than 4 octets" });
        }
        let mut len = 0usize;
        for _ in 0..n {
            len = (len << 8) | *data.get(off).ok_or(len_err(off + 1))? as usize;
            off += 1;
        }
        len
    };
    let end = off.checked_add(len).ok_or(len_err(usize::MAX))?;
    let value = data.get(off..end).ok_or(len_err(end))?;
    let raw = data.get(..end).unwrap_or(data);
    let after = data.get(end..).unwrap_or(&[]);
    Ok((Tlv { class, constructed, tag, value, raw, indefinite: false, depth }, after))
}

/// Whether `t` or any element inside it has an indefinite length. Walks with a budget of its
/// own (the caller's was spent reading the message); elements that do not parse end the walk
/// there (their error is the caller's to report).
///
/// The walk reads exactly the elements [`Tlv::children`] would, in the same order and with the
/// same depth and element caps, but with `skip`, which only finds where an element ends: no
/// [`Tlv`] is built and no error value, so it costs a fraction of the read that decoded them.
pub fn has_indefinite(t: &Tlv<'_>) -> bool {
    if t.indefinite {
        return true;
    }
    if !t.constructed {
        return false;
    }
    let mut left = MAX_ELEMENTS;
    // A loop over the elements depth first, with the rest of each enclosing level on a stack:
    // an element is entered only when `skip` read it at a depth of at most MAX_DEPTH, so the
    // stack holds at most MAX_DEPTH + 1 levels.
    let mut stack: [&[u8]; MAX_DEPTH + 2] = [&[]; MAX_DEPTH + 2];
    let mut levels = 0;
    let mut data = t.value;
    let mut depth = t.depth + 1;
    loop {
        if !data.is_empty() {
            match skip(data, depth, &mut left) {
                Some(e) if e.indefinite => return true,
                Some(e) if e.constructed && !e.value.is_empty() => match stack.get_mut(levels) {
                    Some(slot) => {
                        *slot = e.after;
                        levels += 1;
                        data = e.value;
                        depth += 1;
                    }
                    // Not reached (see above). Were it reached, what lies deeper is unread:
                    // reported as if indefinite, never passed as clean.
                    None => return true,
                },
                Some(e) => data = e.after,
                // An element that does not parse ends the walk of its level.
                None => data = &[],
            }
            continue;
        }
        if levels == 0 {
            return false;
        }
        levels -= 1;
        data = stack.get(levels).copied().unwrap_or(&[]);
        depth -= 1;
    }
}

/// What [`skip`] finds of one element.
struct Skipped<'a> {
    constructed: bool,
    indefinite: bool,
    /// Contents of a definite-length element (empty for an indefinite one).
    value: &'a [u8],
    after: &'a [u8],
}

/// [`parse_at`] without the [`Tlv`] and without the error: `None` exactly where `parse_at`
/// returns an error, and the element budget (`left`) spent exactly as `parse_at` spends its
/// [`Budget`] (the depth is checked before an element is counted, an element is counted before
/// its identifier is read, and an indefinite length reads the elements up to its
/// end-of-contents).
#[inline(always)]
fn skip<'a>(data: &'a [u8], depth: usize, left: &mut usize) -> Option<Skipped<'a>> {
    if depth > MAX_DEPTH || *left == 0 {
        return None;
    }
    *left -= 1;
    // The usual element, as in `parse_at`.
    if let [id, l0, rest @ ..] = data
        && id & 0x1f != 0x1f
        && *l0 < 0x80
    {
        let len = *l0 as usize;
        let value = rest.get(..len)?;
        let after = rest.get(len..)?;
        return Some(Skipped { constructed: id & 0x20 != 0, indefinite: false, value, after });
    }
    skip_general(data, depth, left)
}

/// [`skip`] past the element count, for a high tag number or a long or indefinite length.
#[inline(never)]
fn skip_general<'a>(data: &'a [u8], depth: usize, left: &mut usize) -> Option<Skipped<'a>> {
    let id = *data.first()?;
    let constructed = id & 0x20 != 0;
    let mut off = 1;
    if id & 0x1f == 0x1f {
        loop {
            let b = *data.get(off)?;
            off += 1;
            if off - 1 > MAX_TAG_OCTETS {
                return None;
            }
            if b & 0x80 == 0 {
                break;
            }
        }
    }
    let l0 = *data.get(off)?;
    off += 1;
    if l0 == 0x80 {
        if !constructed {
            return None;
        }
        let mut rest = data.get(off..)?;
        loop {
            match rest {
                [0, 0, after @ ..] => {
                    return Some(Skipped { constructed, indefinite: true, value: &[], after });
                }
                [] | [_] => return None,
                _ => rest = skip(rest, depth + 1, left)?.after,
            }
        }
    }
    let len = if l0 < 0x80 {
        l0 as usize
    } else {
        let n = (l0 & 0x7f) as usize;
        if n > MAX_LENGTH_OCTETS {
            return None;
        }
        let mut len = 0usize;
        for _ in 0..n {
            len = (len << 8) | *data.get(off)? as usize;
            off += 1;
        }
        len
    };
    let end = off.checked_add(len)?;
    let value = data.get(off..end)?;
    let after = data.get(end..).unwrap_or(&[]);
    Some(Skipped { constructed, indefinite: false, value, after })
}

/// Two's-complement integer of 1 to 8 octets.
pub fn int_value(v: &[u8]) -> Option<i64> {
    if v.is_empty() || v.len() > 8 {
        return None;
    }
    let mut x: i64 = if v.first()? & 0x80 != 0 { -1 } else { 0 };
    for b in v {
        x = (x << 8) | *b as i64;
    }
    Some(x)
}

/// An OBJECT IDENTIFIER's contents as a dotted string ("0.4.0.0.1.0.19.3"). `None` if an arc
/// does not fit 64 bits, the last arc is unfinished, or there are more than [`MAX_OID_ARCS`].
pub fn oid_to_string(v: &[u8]) -> Option<String> {
    // MAP application contexts (0.4.0.0.1.0.x.v, arcs below 128), which every MAP dialogue
    // carries: the arcs the general loop below reads from those octets, written directly.
    if let &[0x04, 0x00, 0x00, 0x01, 0x00, x, ver] = v
        && x < 0x80
        && ver < 0x80
    {
        let mut s = String::with_capacity(20);
        s.push_str("0.4.0.0.1.0.");
        push_decimal(&mut s, u64::from(x));
        s.push('.');
        push_decimal(&mut s, u64::from(ver));
        return Some(s);
    }
    // Every octet adds at most 7 bits, about 2.1 decimal digits, and ends at most one arc (a
    // dot); the first octet may end two arcs ("2.47"). The estimate fits the usual OIDs in one
    // allocation, and pushing past it only grows the string.
    let mut s = String::with_capacity(v.len() * 3 + 2);
    let mut arc: u64 = 0;
    let mut arcs = 0;
    let mut in_arc = 0;
    for b in v {
        if in_arc == 0 && *b == 0x80 {
            return None; // non-minimal encoding
        }
        in_arc += 1;
        if in_arc > 9 {
            return None;
        }
        arc = (arc << 7) | (b & 0x7f) as u64;
        if b & 0x80 != 0 {
            continue;
        }
        if arcs == 0 {
            let (a, b) = if arc < 40 {
                (0, arc)
            } else if arc < 80 {
                (1, arc - 40)
            } else {
                (2, arc - 80)
            };
            push_decimal(&mut s, a);
            s.push('.');
            push_decimal(&mut s, b);
            arcs = 2;
        } else {
            s.push('.');
            push_decimal(&mut s, arc);
            arcs += 1;
        }
        if arcs > MAX_OID_ARCS {
            return None;
        }
        arc = 0;
        in_arc = 0;
    }
    if in_arc != 0 || arcs == 0 {
        return None;
    }
    Some(s)
}

/// Appends `n` in decimal, as `write!(s, "{n}")` does (no sign, no padding), without going
/// through `core::fmt`.
fn push_decimal(s: &mut String, mut n: u64) {
    if n < 10 {
        s.push(char::from(b'0' + n as u8));
        return;
    }
    // u64::MAX has 20 digits.
    let mut buf = [0u8; 20];
    let mut at = buf.len();
    while n != 0 && at != 0 {
        at -= 1;
        if let Some(d) = buf.get_mut(at) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
    }
    // ASCII digits: always UTF-8.
    s.push_str(std::str::from_utf8(buf.get(at..).unwrap_or(&[])).unwrap_or(""));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indefinite_found_at_any_depth() {
        let b = Budget::new(Layer::Tcap);
        let (t, _) = Tlv::parse(&[0x30, 0x06, 0x30, 0x04, 0x04, 0x02, 1, 2], &b).unwrap();
        assert!(!has_indefinite(&t));
        let (t, _) = Tlv::parse(&[0x30, 0x08, 0x30, 0x80, 0x04, 0x02, 1, 2, 0, 0], &b).unwrap();
        assert!(has_indefinite(&t));
    }

    #[test]
    fn definite_and_indefinite() {
        let b = Budget::new(Layer::Tcap);
        let (t, rest) = Tlv::parse(&[0x30, 0x03, 0x02, 0x01, 0x05, 0xff], &b).unwrap();
        assert!(t.is(CLASS_UNIVERSAL, true, TAG_SEQUENCE));
        assert_eq!(rest, &[0xff]);
        let kids: Vec<_> = t.children(&b).collect::<Result<_, _>>().unwrap();
        assert_eq!((kids.len(), kids[0].int()), (1, Some(5)));
        // indefinite, nested indefinite
        let d = [0x62, 0x80, 0xa1, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x07];
        let (t, rest) = Tlv::parse(&d, &b).unwrap();
        assert!(t.indefinite && t.is(CLASS_APPLICATION, true, 2));
        assert_eq!(rest, &[0x07]);
        assert_eq!(t.raw.len(), 13);
        let kids: Vec<_> = t.children(&b).collect::<Result<_, _>>().unwrap();
        assert_eq!(kids.len(), 2);
        assert_eq!(kids[0].children(&b).next().unwrap().unwrap().int(), Some(1));
        // long form length and high tag number
        let (t, _) = Tlv::parse(&[0x9f, 0x81, 0x00, 0x81, 0x01, 0xaa], &b).unwrap();
        assert_eq!((t.class, t.tag, t.value), (CLASS_CONTEXT, 128, &[0xaa][..]));
    }

    #[test]
    fn malformed_and_truncated() {
        let b = Budget::new(Layer::Tcap);
        let d = [0x62, 0x80, 0xa1, 0x80, 0x02, 0x01, 0x01, 0x00, 0x00, 0x00, 0x00];
        for n in 0..d.len() {
            assert!(Tlv::parse(&d[..n], &b).is_err(), "cut at {n}");
        }
        assert!(matches!(Tlv::parse(&[0x04, 0x80], &b), Err(DecodeError::Content { .. })));
        assert!(matches!(Tlv::parse(&[0x04, 0x85, 1, 1, 1, 1, 1], &b), Err(DecodeError::Content { .. })));
        assert!(matches!(Tlv::parse(&[0x1f, 0x81, 0x81, 0x81, 0x81, 0x01, 0], &b), Err(DecodeError::Content { .. })));
        assert!(matches!(Tlv::parse(&[0x04, 0x84, 0xff, 0xff, 0xff, 0xff], &b), Err(DecodeError::Len { .. })));
    }

    #[test]
    fn caps() {
        // 100 nested indefinite elements: depth cap
        let mut d = vec![];
        for _ in 0..100 {
            d.extend_from_slice(&[0x30, 0x80]);
        }
        d.extend(std::iter::repeat_n(0, 200));
        let b = Budget::new(Layer::Tcap);
        assert!(matches!(Tlv::parse(&d, &b), Err(DecodeError::Limit { .. })));
        // element budget
        let d: Vec<u8> = std::iter::repeat_n([0x05u8, 0x00], 10).flatten().collect();
        let b = Budget::with_limit(Layer::Map, 5);
        let r: Result<Vec<_>, _> = Children::of(&d, &b).collect();
        assert!(matches!(r, Err(DecodeError::Limit { layer: Layer::Map, .. })));
    }

    /// The walk `has_indefinite` was before [`skip`]: [`Tlv::children`] all the way down.
    fn has_indefinite_reference(t: &Tlv<'_>) -> bool {
        fn walk(t: &Tlv<'_>, budget: &Budget) -> bool {
            t.indefinite || t.children(budget).map_while(Result::ok).any(|c| walk(&c, budget))
        }
        walk(t, &Budget::new(Layer::Tcap))
    }

    /// `oid_to_string` as it was, through `core::fmt`.
    fn oid_to_string_reference(v: &[u8]) -> Option<String> {
        use std::fmt::Write;
        let mut s = String::new();
        let (mut arc, mut arcs, mut in_arc) = (0u64, 0, 0);
        for b in v {
            if in_arc == 0 && *b == 0x80 {
                return None;
            }
            in_arc += 1;
            if in_arc > 9 {
                return None;
            }
            arc = (arc << 7) | (b & 0x7f) as u64;
            if b & 0x80 != 0 {
                continue;
            }
            if arcs == 0 {
                let (a, b) = if arc < 40 {
                    (0, arc)
                } else if arc < 80 {
                    (1, arc - 40)
                } else {
                    (2, arc - 80)
                };
                let _ = write!(s, "{a}.{b}");
                arcs = 2;
            } else {
                let _ = write!(s, ".{arc}");
                arcs += 1;
            }
            if arcs > MAX_OID_ARCS {
                return None;
            }
            arc = 0;
            in_arc = 0;
        }
        if in_arc != 0 || arcs == 0 {
            return None;
        }
        Some(s)
    }

    use crate::test_rng::Rng;

    /// A random element: mostly well formed (definite and indefinite, nested, high tags, long
    /// lengths), sometimes broken (a wrong length, a cut, a stray octet).
    fn random_element(r: &mut Rng, depth: usize, out: &mut Vec<u8>) {
        let constructed = depth < 30 && r.below(3) != 0;
        let high_tag = r.below(10) == 0;
        let id = (r.below(4) as u8) << 6
            | if constructed { 0x20 } else { 0 }
            | if high_tag { 0x1f } else { r.below(31) as u8 };
        out.push(id);
        if high_tag {
            for _ in 0..r.below(6) {
                out.push(0x80 | r.below(128) as u8);
            }
            out.push(r.below(128) as u8);
        }
        let mut body = vec![];
        if constructed {
            for _ in 0..r.below(4) {
                random_element(r, depth + 1, &mut body);
            }
        } else {
            for _ in 0..r.below(5) {
                body.push(if r.below(4) == 0 { 0 } else { r.below(256) as u8 });
            }
        }
        match r.below(12) {
            0 if constructed => {
                out.push(0x80);
                out.extend(body);
                out.extend([0, 0]);
            }
            1 => {
                out.push(0x82);
                out.extend((body.len() as u16).to_be_bytes());
                out.extend(body);
            }
            2 => {
                // a length that lies
                out.push(r.below(256) as u8);
                out.extend(body);
            }
            3 => {
                let n = r.below(body.len() as u64 + 1) as usize;
                out.push(body.len() as u8);
                out.extend(&body[..n]);
            }
            _ => {
                out.push(body.len() as u8);
                out.extend(body);
            }
        }
        if r.below(50) == 0 {
            out.push(r.below(256) as u8);
        }
    }

    #[test]
    fn has_indefinite_walks_as_the_children_did() {
        let mut r = Rng(0x5eed_1234_abcd_0001);
        let mut found = [0usize; 2];
        for _ in 0..40_000 {
            let mut d = vec![];
            random_element(&mut r, 0, &mut d);
            let b = Budget::new(Layer::Tcap);
            if let Ok((t, _)) = Tlv::parse(&d, &b) {
                let want = has_indefinite_reference(&t);
                assert_eq!(has_indefinite(&t), want, "{d:02x?}");
                found[usize::from(want)] += 1;
            }
            // and from within: the same walk from any element the message holds
            let b = Budget::new(Layer::Tcap);
            if let Ok((t, _)) = Tlv::parse(&d, &b) {
                for c in t.children(&b).map_while(Result::ok) {
                    assert_eq!(has_indefinite(&c), has_indefinite_reference(&c), "{d:02x?}");
                }
            }
        }
        assert!(found[0] > 1000 && found[1] > 1000, "{found:?}");
    }

    #[test]
    fn has_indefinite_spends_the_budget_as_the_children_did() {
        // a definite parameter of more elements than MAX_ELEMENTS, then an indefinite element:
        // the walk runs out of budget before it and does not see it (as before)
        let nulls: Vec<u8> = std::iter::repeat_n([0x05u8, 0x00], MAX_ELEMENTS + 10).flatten().collect();
        for (before, want) in [(MAX_ELEMENTS + 10, false), (MAX_ELEMENTS - 3, true), (MAX_ELEMENTS - 2, false)] {
            let mut body = vec![0x30, 0x83];
            body.extend(((before * 2) as u32).to_be_bytes()[1..].iter());
            body.extend(&nulls[..before * 2]);
            body.extend([0x30, 0x80, 0x05, 0x00, 0x00, 0x00]);
            let mut m = vec![0x62, 0x83];
            m.extend((body.len() as u32).to_be_bytes()[1..].iter());
            m.extend(body);
            let b = Budget::new(Layer::Tcap);
            let (t, _) = Tlv::parse(&m, &b).unwrap();
            assert_eq!(has_indefinite_reference(&t), want, "{before}");
            assert_eq!(has_indefinite(&t), want, "{before}");
        }
    }

    #[test]
    fn oid_to_string_renders_as_fmt_did() {
        let mut r = Rng(0x0dd_5eed_0002);
        for _ in 0..100_000 {
            let n = r.below(40) as usize;
            let v: Vec<u8> = (0..n)
                .map(|_| match r.below(4) {
                    0 => 0x80 | r.below(128) as u8,
                    1 => 0xff,
                    _ => r.below(128) as u8,
                })
                .collect();
            assert_eq!(oid_to_string(&v), oid_to_string_reference(&v), "{v:02x?}");
        }
        // the largest arcs: 9 octets of 7 bits, first arc included
        for v in [
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f][..],
            &[0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f],
            &[0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00],
            &[0x27, 0x28, 0x4f, 0x50, 0x00, 0x09, 0x0a, 0x63, 0x64],
            &[0x50],
            &[0x4f],
        ] {
            assert_eq!(oid_to_string(v), oid_to_string_reference(v), "{v:02x?}");
        }
        assert_eq!(
            oid_to_string(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]).unwrap(),
            "2.9223372036854775727"
        );
        for x in 0..=255u8 {
            for ver in 0..=255u8 {
                let v = [0x04, 0x00, 0x00, 0x01, 0x00, x, ver];
                assert_eq!(oid_to_string(&v), oid_to_string_reference(&v), "{v:02x?}");
            }
        }
    }

    #[test]
    fn oids_and_ints() {
        assert_eq!(oid_to_string(&[0x04, 0x00, 0x00, 0x01, 0x00, 0x13, 0x03]).unwrap(), "0.4.0.0.1.0.19.3");
        assert_eq!(oid_to_string(&[0x00, 0x11, 0x86, 0x05, 0x01, 0x01, 0x01]).unwrap(), "0.0.17.773.1.1.1");
        assert_eq!(oid_to_string(&[0x2a, 0x86, 0x3a]).unwrap(), "1.2.826");
        assert_eq!(oid_to_string(&[0x04, 0x86]), None);
        assert_eq!(oid_to_string(&[]), None);
        assert_eq!(int_value(&[0xff]), Some(-1));
        assert_eq!(int_value(&[0x00, 0x80]), Some(128));
        assert_eq!(int_value(&[]), None);
        assert_eq!(int_value(&[1; 9]), None);
    }
}
