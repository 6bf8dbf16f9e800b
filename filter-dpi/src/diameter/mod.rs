//! Diameter (RFC 6733): message header, AVPs (grouped ones included, bounded), the fields
//! sigwall's rules read, and reassembly of messages from a TCP byte stream or SCTP user messages.
//!
//! - [`DiameterSlice`]: the header, validated once, over the message's bytes;
//! - [`avp`]: AVP slices, a flat iterator and a bounded depth-first [`avp::walk`];
//! - [`decode`] / [`decode_lax`]: one [`DiameterMessage`] with every field a rule needs;
//! - [`StreamReassembler`]: messages out of one direction of a connection;
//! - [`names`]: command-code and application-id names.

pub mod avp;
pub mod names;
pub mod reassembly;

pub use avp::{AvpIter, AvpSlice};
pub use reassembly::StreamReassembler;

use crate::bytes::{be24, be32};
use crate::digits::Plmn;
use crate::{DecodeError, Layer};

const L: Layer = Layer::Diameter;

pub const HEADER_LEN: usize = 20;
pub const VERSION: u8 = 1;
/// The IANA port of Diameter over TCP and SCTP (RFC 6733 §2.1).
pub const PORT: u16 = 3868;

pub const FLAG_R: u8 = 0x80;
pub const FLAG_P: u8 = 0x40;
pub const FLAG_E: u8 = 0x20;
pub const FLAG_T: u8 = 0x10;

/// A Diameter message: header validated (version 1, length ≥ 20 and within the input), AVPs read
/// lazily. The slice covers exactly the header's Message Length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiameterSlice<'a> {
    slice: &'a [u8],
}

impl<'a> DiameterSlice<'a> {
    /// Validates the header at the start of `bytes`; bytes beyond the Message Length (a next
    /// message in the same segment) are not part of the slice.
    pub fn from_slice(bytes: &'a [u8]) -> Result<DiameterSlice<'a>, DecodeError> {
        let len = check_header(bytes)?;
        DecodeError::need(L, len, bytes.len())?;
        let slice = bytes.get(..len).ok_or(DecodeError::Len { layer: L, required: len, len: bytes.len() })?;
        Ok(DiameterSlice { slice })
    }

    /// Like [`from_slice`](Self::from_slice), but a message whose Message Length runs past the
    /// input (a capture cut at a snap length) is kept with the bytes there are; the error says
    /// how much was missing.
    pub fn from_slice_lax(bytes: &'a [u8]) -> Result<(DiameterSlice<'a>, Option<DecodeError>), DecodeError> {
        let len = check_header(bytes)?;
        match bytes.get(..len) {
            Some(slice) => Ok((DiameterSlice { slice }, None)),
            None => Ok((
                DiameterSlice { slice: bytes },
                Some(DecodeError::Len { layer: L, required: len, len: bytes.len() }),
            )),
        }
    }

    pub fn version(&self) -> u8 {
        self.slice.first().copied().unwrap_or(0)
    }
    /// Message Length as the header says it (equal to the slice length unless lax-truncated).
    pub fn length(&self) -> u32 {
        be24(self.slice, 1).unwrap_or(0)
    }
    pub fn flags(&self) -> u8 {
        self.slice.get(4).copied().unwrap_or(0)
    }
    pub fn is_request(&self) -> bool {
        self.flags() & FLAG_R != 0
    }
    pub fn is_proxiable(&self) -> bool {
        self.flags() & FLAG_P != 0
    }
    pub fn is_error(&self) -> bool {
        self.flags() & FLAG_E != 0
    }
    pub fn is_retransmit(&self) -> bool {
        self.flags() & FLAG_T != 0
    }
    pub fn command_code(&self) -> u32 {
        be24(self.slice, 5).unwrap_or(0)
    }
    pub fn application_id(&self) -> u32 {
        be32(self.slice, 8).unwrap_or(0)
    }
    pub fn hop_by_hop(&self) -> u32 {
        be32(self.slice, 12).unwrap_or(0)
    }
    pub fn end_to_end(&self) -> u32 {
        be32(self.slice, 16).unwrap_or(0)
    }
    /// The message's bytes (header and AVPs).
    pub fn slice(&self) -> &'a [u8] {
        self.slice
    }
    /// The top-level AVPs.
    pub fn avps(&self) -> AvpIter<'a> {
        AvpIter::new(self.slice.get(HEADER_LEN..).unwrap_or(&[]))
    }
    /// Every AVP, grouped members included; see [`avp::walk`].
    pub fn walk(&self, visit: impl FnMut(usize, &AvpSlice<'a>)) -> Result<usize, DecodeError> {
        avp::walk(self.slice.get(HEADER_LEN..).unwrap_or(&[]), visit)
    }
}

/// Header checks shared by the slice and the stream reassembler; returns the Message Length.
pub(crate) fn check_header(bytes: &[u8]) -> Result<usize, DecodeError> {
    DecodeError::need(L, HEADER_LEN, bytes.len())?;
    if bytes.first() != Some(&VERSION) {
        return Err(DecodeError::Content { layer: L, what: "version is not 1" });
    }
    let len = be24(bytes, 1).unwrap_or(0) as usize;
    if len < HEADER_LEN {
        return Err(DecodeError::Content { layer: L, what: "message length shorter than the header" });
    }
    Ok(len)
}

/// Vendor-Specific-Application-Id (260): who defines the application and which one it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VendorSpecificApplicationId {
    pub vendor_ids: Vec<u32>,
    pub auth_application_id: Option<u32>,
    pub acct_application_id: Option<u32>,
}

/// Every field of a Diameter message that sigwall's rules and events use. Identity AVPs are
/// taken from the top level (the first occurrence); grouped AVPs are walked for the count and
/// the Vendor-Specific-Application-Id members.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiameterMessage {
    pub version: u8,
    pub length: u32,
    pub flags: u8,
    pub command_code: u32,
    pub application_id: u32,
    pub hop_by_hop: u32,
    pub end_to_end: u32,
    pub session_id: Option<String>,
    pub origin_host: Option<String>,
    pub origin_realm: Option<String>,
    pub destination_host: Option<String>,
    pub destination_realm: Option<String>,
    pub user_name: Option<String>,
    /// Visited-PLMN-Id (1407, 3GPP).
    pub visited_plmn: Option<Plmn>,
    /// Top-level Auth-Application-Id (258) AVPs (CER/CEA list several).
    pub auth_application_ids: Vec<u32>,
    /// Top-level Acct-Application-Id (259) AVPs.
    pub acct_application_ids: Vec<u32>,
    pub vendor_specific_application_ids: Vec<VendorSpecificApplicationId>,
    /// Result-Code (268), top level.
    pub result_code: Option<u32>,
    /// AVPs seen, grouped members included.
    pub avp_count: usize,
}

impl DiameterMessage {
    pub fn is_request(&self) -> bool {
        self.flags & FLAG_R != 0
    }
    pub fn is_proxiable(&self) -> bool {
        self.flags & FLAG_P != 0
    }
    pub fn is_error(&self) -> bool {
        self.flags & FLAG_E != 0
    }
    pub fn is_retransmit(&self) -> bool {
        self.flags & FLAG_T != 0
    }
    /// `Update-Location`, ... (None for codes not in [`names`]).
    pub fn command_name(&self) -> Option<&'static str> {
        names::command_name(self.command_code)
    }
    /// `ULR`, `ULA`, ...
    pub fn command_abbrev(&self) -> Option<&'static str> {
        names::command_abbrev(self.command_code, self.is_request())
    }
    pub fn application_name(&self) -> Option<&'static str> {
        names::application_name(self.application_id)
    }
    /// Every application id the message names: the header's, then those of the Auth-, Acct- and
    /// Vendor-Specific-Application-Id AVPs.
    pub fn all_application_ids(&self) -> impl Iterator<Item = u32> + '_ {
        std::iter::once(self.application_id)
            .chain(self.auth_application_ids.iter().copied())
            .chain(self.acct_application_ids.iter().copied())
            .chain(
                self.vendor_specific_application_ids
                    .iter()
                    .flat_map(|v| v.auth_application_id.into_iter().chain(v.acct_application_id)),
            )
    }
}

/// A lax decode: what was decoded, and the error that stopped it (None when the whole message
/// was read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LaxDiameterMessage {
    pub message: DiameterMessage,
    pub stop: Option<DecodeError>,
}

/// Decodes one whole Diameter message at the start of `bytes` (bytes after its Message Length
/// are ignored). Any malformed AVP, grouped members included, is an error.
pub fn decode(bytes: &[u8]) -> Result<DiameterMessage, DecodeError> {
    let slice = DiameterSlice::from_slice(bytes)?;
    let lax = decode_slice(&slice);
    match lax.stop {
        None => Ok(lax.message),
        Some(e) => Err(e),
    }
}

/// Decodes one Diameter message that its transport frames (one SCTP user message), as the
/// receiver reads it: freeDiameter's `fd_msg_parse_buffer()` rejects only a Message Length
/// *above* the buffer and parses AVPs to the end of the buffer (review H3). So a Message Length
/// below the user message does not hide the AVPs after it: the whole user message is decoded
/// and the disagreement is the `stop` ([`DecodeError::NonCanonical`], unless an AVP error
/// comes first). A Message Length above it is a [`DecodeError::Len`] stop with the header and
/// the AVPs there are. Lax as [`decode_lax`]: header-only rules run on what is returned.
pub fn decode_framed(bytes: &[u8]) -> Result<LaxDiameterMessage, DecodeError> {
    let len = check_header(bytes)?;
    if len >= bytes.len() {
        return decode_lax(bytes);
    }
    let mut lax = decode_slice(&DiameterSlice { slice: bytes });
    lax.message.length = len as u32;
    if lax.stop.is_none() {
        lax.stop = Some(DecodeError::NonCanonical {
            layer: L,
            what: "message length shorter than its SCTP user message (parsed to the end)",
        });
    }
    Ok(lax)
}

/// Decodes what can be decoded: a header is required (else `Err`); after it, a message cut
/// short or a malformed AVP stops the decode and the fields found before it are kept.
pub fn decode_lax(bytes: &[u8]) -> Result<LaxDiameterMessage, DecodeError> {
    let (slice, cut) = DiameterSlice::from_slice_lax(bytes)?;
    let mut lax = decode_slice(&slice);
    // A malformed AVP found before the cut is reported; otherwise the cut itself.
    if let Some(cut) = cut
        && lax.stop.as_ref().is_none_or(|e| matches!(e, DecodeError::Len { .. }))
    {
        lax.stop = Some(cut);
    }
    Ok(lax)
}

fn decode_slice(slice: &DiameterSlice<'_>) -> LaxDiameterMessage {
    let mut m = DiameterMessage {
        version: slice.version(),
        length: slice.length(),
        flags: slice.flags(),
        command_code: slice.command_code(),
        application_id: slice.application_id(),
        hop_by_hop: slice.hop_by_hop(),
        end_to_end: slice.end_to_end(),
        ..DiameterMessage::default()
    };
    let mut field_error: Option<DecodeError> = None;
    let mut in_vsai = false;
    let mut visited = 0usize;
    let walked = slice.walk(|depth, a| {
        use avp::code::*;
        visited += 1;
        let vendor = a.vendor_id();
        if depth == 0 {
            in_vsai = false;
            match (a.code(), vendor) {
                (SESSION_ID, 0) => set_first(&mut m.session_id, text(a, false, &mut field_error)),
                (ORIGIN_HOST, 0) => set_first(&mut m.origin_host, text(a, true, &mut field_error)),
                (ORIGIN_REALM, 0) => set_first(&mut m.origin_realm, text(a, true, &mut field_error)),
                (DESTINATION_HOST, 0) => set_first(&mut m.destination_host, text(a, true, &mut field_error)),
                (DESTINATION_REALM, 0) => set_first(&mut m.destination_realm, text(a, true, &mut field_error)),
                (USER_NAME, 0) => set_first(&mut m.user_name, text(a, false, &mut field_error)),
                (AUTH_APPLICATION_ID, 0) => push_u32(&mut m.auth_application_ids, a, &mut field_error),
                (ACCT_APPLICATION_ID, 0) => push_u32(&mut m.acct_application_ids, a, &mut field_error),
                (RESULT_CODE, 0) if m.result_code.is_none() => match a.as_u32() {
                    Ok(v) => m.result_code = Some(v),
                    Err(e) => keep_first(&mut field_error, e),
                },
                (VENDOR_SPECIFIC_APPLICATION_ID, 0) => {
                    in_vsai = true;
                    m.vendor_specific_application_ids.push(VendorSpecificApplicationId::default());
                }
                (VISITED_PLMN_ID, avp::VENDOR_3GPP) if m.visited_plmn.is_none() => {
                    match Plmn::from_bytes(L, a.data()) {
                        Ok(p) => m.visited_plmn = Some(p),
                        Err(e) => keep_first(&mut field_error, e),
                    }
                }
                _ => {}
            }
        } else if depth == 1 && in_vsai {
            let Some(v) = m.vendor_specific_application_ids.last_mut() else { return };
            let value = match a.as_u32() {
                Ok(x) => x,
                Err(e) => return keep_first(&mut field_error, e),
            };
            match (a.code(), vendor) {
                (VENDOR_ID, 0) => v.vendor_ids.push(value),
                (AUTH_APPLICATION_ID, 0) => v.auth_application_id = Some(value),
                (ACCT_APPLICATION_ID, 0) => v.acct_application_id = Some(value),
                _ => {}
            }
        }
    });
    m.avp_count = visited;
    // Every AVP is padded to 4 bytes and the Message Length counts the padding (RFC 6733
    // §4): a length that is not a multiple of 4 leaves the last AVP unpadded, which some
    // decoders drop (pycrate does: differential fuzzer) and this one read.
    if !slice.length().is_multiple_of(4) {
        keep_first(
            &mut field_error,
            DecodeError::NonCanonical { layer: L, what: "message length is not a multiple of 4" },
        );
    }
    let stop = match walked {
        Ok(_) => field_error,
        Err(e) => Some(field_error.unwrap_or(e)),
    };
    LaxDiameterMessage { message: m, stop }
}

/// An identity AVP's text. DiameterIdentity (hosts, realms) is an ASCII FQDN, UTF8String
/// (Session-Id, User-Name) UTF-8 (RFC 6733 §4.3.1); otherwise the value is kept (lossy) and the
/// message is non-canonical: a realm rule compares text a receiver may read differently or
/// reject (found by the differential fuzzer: pycrate rejects such values).
///
/// Valid UTF-8 (ASCII is) is copied as it is: what [`AvpSlice::as_text`] returns for it, without
/// its second, lossy pass over the bytes.
fn text(a: &AvpSlice<'_>, ascii: bool, err: &mut Option<DecodeError>) -> String {
    let d = a.data();
    let utf8 = std::str::from_utf8(d);
    let ok = if ascii { d.is_ascii() } else { utf8.is_ok() };
    if !ok {
        keep_first(
            err,
            DecodeError::NonCanonical { layer: L, what: "identity AVP is not ASCII (host, realm) or UTF-8" },
        );
    }
    match utf8 {
        Ok(s) => s.to_owned(),
        Err(_) => a.as_text(),
    }
}

fn set_first(slot: &mut Option<String>, v: String) {
    if slot.is_none() {
        *slot = Some(v);
    }
}

fn keep_first(slot: &mut Option<DecodeError>, e: DecodeError) {
    if slot.is_none() {
        *slot = Some(e);
    }
}

/// Most application-id AVPs kept per list: a CER lists a handful; more is noise we do not store.
pub const MAX_APPLICATION_IDS: usize = 64;

fn push_u32(list: &mut Vec<u32>, a: &AvpSlice<'_>, err: &mut Option<DecodeError>) {
    match a.as_u32() {
        Ok(v) if list.len() < MAX_APPLICATION_IDS => list.push(v),
        Ok(_) => keep_first(err, DecodeError::Limit { layer: L, what: "more than 64 application-id AVPs" }),
        Err(e) => keep_first(err, e),
    }
}

/// Builds a message (tests): header fields and already encoded AVPs.
#[cfg(test)]
pub(crate) fn encode(flags: u8, command: u32, app: u32, hbh: u32, e2e: u32, avps: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = avps.concat();
    let len = HEADER_LEN + body.len();
    let mut v = vec![VERSION];
    v.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    v.push(flags);
    v.extend_from_slice(&command.to_be_bytes()[1..]);
    v.extend_from_slice(&app.to_be_bytes());
    v.extend_from_slice(&hbh.to_be_bytes());
    v.extend_from_slice(&e2e.to_be_bytes());
    v.extend_from_slice(&body);
    v
}

#[cfg(test)]
mod tests {
    use super::avp::{FLAG_M, VENDOR_3GPP, code, encode as avp};
    use super::*;

    pub(crate) fn ulr() -> Vec<u8> {
        encode(
            FLAG_R | FLAG_P,
            316,
            names::app::S6A,
            0x1122_3344,
            0x5566_7788,
            &[
                avp(code::SESSION_ID, FLAG_M, None, b"mme.visited.example;1;2"),
                avp(code::AUTH_APPLICATION_ID, FLAG_M, None, &16777251u32.to_be_bytes()),
                avp(code::ORIGIN_HOST, FLAG_M, None, b"mme.visited.example"),
                avp(code::ORIGIN_REALM, FLAG_M, None, b"visited.example"),
                avp(code::DESTINATION_HOST, FLAG_M, None, b"hss.home.example"),
                avp(code::DESTINATION_REALM, FLAG_M, None, b"home.example"),
                avp(code::USER_NAME, FLAG_M, None, b"001010123456789"),
                avp(
                    code::VENDOR_SPECIFIC_APPLICATION_ID,
                    FLAG_M,
                    None,
                    &[
                        avp(code::VENDOR_ID, FLAG_M, None, &10415u32.to_be_bytes()),
                        avp(code::AUTH_APPLICATION_ID, FLAG_M, None, &16777251u32.to_be_bytes()),
                    ]
                    .concat(),
                ),
                avp(code::VISITED_PLMN_ID, FLAG_M, Some(VENDOR_3GPP), &[0x22, 0xf2, 0x10]),
                avp(1400, FLAG_M, Some(VENDOR_3GPP), &avp(code::ORIGIN_HOST, FLAG_M, None, b"nested-is-not-top-level")),
            ],
        )
    }

    #[test]
    fn header_fields() {
        let b = ulr();
        let s = DiameterSlice::from_slice(&b).unwrap();
        assert_eq!(s.version(), 1);
        assert_eq!(s.length() as usize, b.len());
        assert!(s.is_request() && s.is_proxiable() && !s.is_error() && !s.is_retransmit());
        assert_eq!((s.command_code(), s.application_id()), (316, 16777251));
        assert_eq!((s.hop_by_hop(), s.end_to_end()), (0x1122_3344, 0x5566_7788));
        assert_eq!(s.avps().count(), 10);
    }

    #[test]
    fn decode_extracts_identities() {
        let m = decode(&ulr()).unwrap();
        assert_eq!(m.session_id.as_deref(), Some("mme.visited.example;1;2"));
        assert_eq!(m.origin_host.as_deref(), Some("mme.visited.example"));
        assert_eq!(m.origin_realm.as_deref(), Some("visited.example"));
        assert_eq!(m.destination_host.as_deref(), Some("hss.home.example"));
        assert_eq!(m.destination_realm.as_deref(), Some("home.example"));
        assert_eq!(m.user_name.as_deref(), Some("001010123456789"));
        assert_eq!(m.visited_plmn.map(|p| p.to_string()).as_deref(), Some("222-01"));
        assert_eq!(m.auth_application_ids, vec![16777251]);
        assert_eq!(
            m.vendor_specific_application_ids,
            vec![VendorSpecificApplicationId {
                vendor_ids: vec![10415],
                auth_application_id: Some(16777251),
                acct_application_id: None
            }]
        );
        assert_eq!(m.avp_count, 13);
        assert_eq!(m.command_abbrev(), Some("ULR"));
        assert_eq!(m.command_name(), Some("Update-Location"));
        assert_eq!(m.application_name(), Some("3GPP S6a/S6d"));
        assert_eq!(m.all_application_ids().collect::<Vec<_>>(), vec![16777251, 16777251, 16777251]);
    }

    #[test]
    fn framed_reads_to_the_end_of_the_user_message() {
        // review H3 recipe 2: an IDR/ULR whose Message Length says 20
        let whole = ulr();
        let ok = decode_framed(&whole).unwrap();
        assert_eq!((ok.stop, ok.message.user_name.as_deref()), (None, Some("001010123456789")));
        let mut short = whole.clone();
        short[1..4].copy_from_slice(&[0, 0, 20]);
        let d = decode_framed(&short).unwrap();
        assert_eq!(d.message.user_name.as_deref(), Some("001010123456789"), "AVPs after the length are read");
        assert_eq!((d.message.command_code, d.message.length), (316, 20));
        assert!(matches!(d.stop, Some(DecodeError::NonCanonical { layer: Layer::Diameter, .. })));
        // the strict decoder would have seen the header only
        assert_eq!(decode(&short).unwrap().user_name, None);
        // overstated: header and the AVPs there are, with a Len stop
        let mut long = whole.clone();
        long[1..4].copy_from_slice(&((whole.len() + 8) as u32).to_be_bytes()[1..]);
        let d = decode_framed(&long).unwrap();
        assert_eq!(d.message.command_code, 316);
        assert!(matches!(d.stop, Some(DecodeError::Len { .. })));
        // an AVP error comes first
        let mut bad = short.clone();
        bad.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 2]);
        assert!(matches!(decode_framed(&bad).unwrap().stop, Some(DecodeError::Content { .. })));
        assert!(decode_framed(&[2; 20]).is_err());
    }

    #[test]
    fn unpadded_last_avp_is_noncanonical() {
        let mut m = encode(FLAG_R, 321, 0, 1, 2, &[avp(code::USER_NAME, FLAG_M, None, b"12345678901")]);
        assert_eq!(decode_lax(&m).unwrap().stop, None);
        m.pop();
        m[3] -= 1;
        let l = decode_lax(&m).unwrap();
        assert_eq!(l.message.user_name.as_deref(), Some("12345678901"));
        assert!(matches!(l.stop, Some(DecodeError::NonCanonical { .. })));
    }

    #[test]
    fn non_ascii_identity_is_noncanonical() {
        let m = encode(FLAG_R, 316, 16777251, 1, 2, &[avp(code::ORIGIN_REALM, FLAG_M, None, b"home\xc4example")]);
        let l = decode_lax(&m).unwrap();
        assert!(l.message.origin_realm.is_some());
        assert!(matches!(l.stop, Some(DecodeError::NonCanonical { layer: Layer::Diameter, .. })));
        let m = encode(FLAG_R, 316, 16777251, 1, 2, &[avp(code::USER_NAME, FLAG_M, None, "usér".as_bytes())]);
        assert_eq!(decode_lax(&m).unwrap().stop, None, "UTF-8 is fine in a User-Name");
        let m = encode(FLAG_R, 316, 16777251, 1, 2, &[avp(code::ORIGIN_HOST, FLAG_M, None, "hést".as_bytes())]);
        assert!(decode_lax(&m).unwrap().stop.is_some(), "but not in a DiameterIdentity");
    }

    #[test]
    fn many_unknown_avps_do_not_hide_the_user_name() {
        // review H4 recipe 1: 4,097 unknown AVPs before User-Name
        let mut avps: Vec<Vec<u8>> = (0..4097).map(|_| avp(60000, 0, None, b"")).collect();
        avps.push(avp(code::USER_NAME, FLAG_M, None, b"001010123456789"));
        let m = encode(FLAG_R | FLAG_P, 8388620, 16777255, 1, 2, &avps);
        let d = decode(&m).unwrap();
        assert_eq!((d.user_name.as_deref(), d.avp_count), (Some("001010123456789"), 4098));
    }

    #[test]
    fn header_errors() {
        assert!(matches!(decode(&[1, 0, 0]), Err(DecodeError::Len { required: 20, len: 3, .. })));
        let mut b = ulr();
        b[0] = 2;
        assert!(matches!(decode(&b), Err(DecodeError::Content { what: "version is not 1", .. })));
        let mut b = ulr();
        b[1..4].copy_from_slice(&[0, 0, 19]);
        assert!(matches!(decode(&b), Err(DecodeError::Content { .. })));
        let b = ulr();
        assert!(matches!(decode(&b[..b.len() - 1]), Err(DecodeError::Len { .. })));
    }

    #[test]
    fn trailing_bytes_are_not_part_of_the_message() {
        let mut b = ulr();
        let n = b.len();
        b.extend_from_slice(&[0xde, 0xad]);
        let s = DiameterSlice::from_slice(&b).unwrap();
        assert_eq!(s.slice().len(), n);
        assert!(decode(&b).is_ok());
    }

    #[test]
    fn lax_keeps_fields_before_the_cut() {
        let b = ulr();
        // Cut inside the User-Name AVP: everything before it is kept.
        let cut = b.windows(15).position(|w| w == b"001010123456789").unwrap() + 3;
        let lax = decode_lax(&b[..cut]).unwrap();
        assert!(matches!(lax.stop, Some(DecodeError::Len { .. })));
        assert_eq!(lax.message.origin_host.as_deref(), Some("mme.visited.example"));
        assert_eq!(lax.message.destination_realm.as_deref(), Some("home.example"));
        assert_eq!(lax.message.user_name, None);
        assert_eq!(lax.message.command_code, 316);
        assert!(decode(&b[..cut]).is_err());
    }

    #[test]
    fn bad_visited_plmn_is_content_error() {
        let b = encode(0, 316, 0, 0, 0, &[avp(code::VISITED_PLMN_ID, 0, Some(VENDOR_3GPP), &[0x22, 0xf2])]);
        assert!(matches!(decode(&b), Err(DecodeError::Len { .. })));
        let lax = decode_lax(&b).unwrap();
        assert!(lax.stop.is_some());
        assert_eq!(lax.message.command_code, 316);
    }

    #[test]
    fn malformed_nested_avp_is_an_error() {
        let bad_member = [0u8, 0, 1, 10, 0, 0, 0, 40];
        let b = encode(0, 272, 4, 0, 0, &[avp(456, 0, None, &bad_member)]);
        assert!(decode(&b).is_err());
    }

    #[test]
    fn every_truncation_is_err_or_partial_never_panics() {
        let b = ulr();
        for n in 0..b.len() {
            assert!(decode(&b[..n]).is_err(), "strict decode of {n} bytes");
            if let Ok(lax) = decode_lax(&b[..n]) {
                assert!(lax.stop.is_some(), "lax decode of {n} bytes says complete");
            } else {
                assert!(n < HEADER_LEN);
            }
        }
        assert_eq!(decode_lax(&b).unwrap().stop, None);
    }

    #[test]
    fn every_single_byte_corruption_never_panics() {
        let b = ulr();
        for i in 0..b.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut c = b.clone();
                c[i] = v;
                let _ = decode(&c);
                let _ = decode_lax(&c);
            }
        }
    }

    use crate::test_rng::Rng;

    /// `text` returns what it did (the lossy text of the data) and reports the same values,
    /// for random data: ASCII, valid UTF-8, and broken UTF-8.
    #[test]
    fn text_matches_the_lossy_conversion() {
        fn text_before(a: &AvpSlice<'_>, ascii: bool, err: &mut Option<DecodeError>) -> String {
            let d = a.data();
            let ok = if ascii { d.is_ascii() } else { std::str::from_utf8(d).is_ok() };
            if !ok {
                keep_first(
                    err,
                    DecodeError::NonCanonical { layer: L, what: "identity AVP is not ASCII (host, realm) or UTF-8" },
                );
            }
            a.as_text()
        }
        let pieces: [&[u8]; 8] =
            [b"a", b"mme.example", "é".as_bytes(), "€".as_bytes(), b"\xff", b"\xe2\x82", b"\0", b"\xc3"];
        let mut r = Rng(0x7e47_0001);
        for _ in 0..20_000 {
            let mut data = Vec::new();
            for _ in 0..r.below(8) {
                data.extend_from_slice(pieces[r.below(pieces.len() as u64) as usize]);
            }
            let enc = avp::encode(avp::code::ORIGIN_HOST, avp::FLAG_M, None, &data);
            let (a, _) = AvpSlice::from_slice(&enc).unwrap();
            for ascii in [false, true] {
                let (mut e1, mut e2) = (None, None);
                assert_eq!(text(&a, ascii, &mut e1), text_before(&a, ascii, &mut e2), "{data:?}");
                assert_eq!(e1, e2, "{data:?} {ascii}");
            }
        }
    }
}
