//! The policy file: TOML in, a validated [`Policy`] out, every error as `file:line: message`.
//!
//! Parsing is two steps. serde (with `deny_unknown_fields`) checks the shape and types; then
//! `validate` checks what serde cannot: prefixes, classes, uniqueness, capacities. Both report
//! the line of the offending value, found through `toml::Spanned`.

pub mod compile;
pub mod edit;
pub mod inspect;
pub mod subscriber;

use std::{collections::HashMap, fmt, net::IpAddr, path::Path};

use filter_common::{Class, MAX_PEERS, MAX_PORTS_PER_CLASS, Mode};
use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

/// A policy that passed validation. Nothing reaches the maps without being one of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    pub unknown_peer_pass: bool,
    pub non_signaling_pass: bool,
    pub ports: Ports,
    /// Classes whose IP fragments are dropped (`[fragments]` set to `"drop"`); the others'
    /// fragments pass with their first fragment's verdict and are copied up whole for
    /// reassembly by deep inspection.
    pub fragments_drop: Vec<AllowClass>,
    pub peers: Vec<Peer>,
    pub inspect: inspect::Inspect,
}

impl Policy {
    /// Tap mode (`sigwall run --tap`): a mirror port can stop nothing, so the global mode and
    /// every peer's are monitor whatever the file says: XDP counts what it would drop and
    /// passes it, and rules alert instead of blocking.
    pub fn observe_only(&mut self) {
        self.mode = Mode::Monitor;
        for p in &mut self.peers {
            p.mode = Some(Mode::Monitor);
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ports {
    pub gtp_c: Vec<u16>,
    pub gtp_u: Vec<u16>,
    pub diameter: Vec<u16>,
    pub sigtran: Vec<u16>,
}

impl Default for Ports {
    fn default() -> Self {
        use filter_common::{DEFAULT_PORTS, PortClass};
        let port = |pc: PortClass| vec![DEFAULT_PORTS[pc as usize]];
        Ports {
            gtp_c: port(PortClass::GtpC),
            gtp_u: port(PortClass::GtpU),
            diameter: port(PortClass::Diameter),
            sigtran: port(PortClass::Sigtran),
        }
    }
}

/// What a peer may send. `sctp` is the wildcard for anything over SCTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AllowClass {
    Sigtran,
    Diameter,
    GtpC,
    GtpU,
    Sctp,
}

impl AllowClass {
    pub const ALL: [AllowClass; 5] =
        [AllowClass::Sigtran, AllowClass::Diameter, AllowClass::GtpC, AllowClass::GtpU, AllowClass::Sctp];

    pub fn name(self) -> &'static str {
        match self {
            AllowClass::Sigtran => "sigtran",
            AllowClass::Diameter => "diameter",
            AllowClass::GtpC => "gtp-c",
            AllowClass::GtpU => "gtp-u",
            AllowClass::Sctp => "sctp",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == s)
    }

    pub fn bit(self) -> u32 {
        match self {
            AllowClass::Sigtran => Class::Sigtran.bit(),
            AllowClass::Diameter => Class::Diameter.bit(),
            AllowClass::GtpC => Class::GtpC.bit(),
            AllowClass::GtpU => Class::GtpU.bit(),
            AllowClass::Sctp => filter_common::ALLOW_SCTP_ANY,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub prefixes: Vec<IpNet>,
    pub allow: Vec<AllowClass>,
    pub rate_limit_pps: Option<u64>,
    pub rate_burst: Option<u64>,
    pub mode: Option<Mode>,
    /// `unclassifiable = "pass"`: frames from this peer whose class the first pass cannot
    /// establish (AH/ESP, long IPv6 header chains, tunnels, ...) pass (rate-limited like its
    /// signaling) instead of being dropped.
    pub unclassifiable_pass: bool,
    /// `on_overload = "fail-open"`: this peer's signaling whose copy to deep inspection cannot be
    /// made (budget spent, ring full) passes uninspected (counted `copy_denied`) instead of
    /// being dropped as `inspect_overload` (`"fail-closed"`, the default).
    pub overload_pass: bool,
    /// Copies to deep inspection per second this peer may cause (each of: packets passed,
    /// packets dropped), `inspect_budget_pps`; the burst is a tenth of a second's worth.
    pub inspect_budget_pps: u64,
    pub inspect: inspect::PeerInspect,
}

/// A policy error, located in its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    pub file: String,
    /// 1-based; 0 when the error concerns the whole file (e.g. it cannot be read).
    pub line: usize,
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.message)
        }
    }
}

impl std::error::Error for PolicyError {}

/// Most prefixes a policy may hold per address family (the LPM tries' capacity).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub prefixes_v4: usize,
    pub prefixes_v6: usize,
}

impl Default for Limits {
    fn default() -> Self {
        let n = filter_common::DEFAULT_PREFIX_CAPACITY as usize;
        Limits { prefixes_v4: n, prefixes_v6: n }
    }
}

// ---- the file's shape, as serde sees it ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileModel {
    #[serde(default)]
    defaults: DefaultsModel,
    ports: Option<Spanned<PortsModel>>,
    #[serde(default)]
    peer: Vec<Spanned<PeerModel>>,
    #[serde(default)]
    inspect: inspect::InspectModel,
    #[serde(default)]
    fragments: FragmentsModel,
}

/// `[fragments]`: per class, what happens to IP fragments.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FragmentsModel {
    sigtran: Option<Fragments>,
    diameter: Option<Fragments>,
    gtp_c: Option<Fragments>,
    gtp_u: Option<Fragments>,
    sctp: Option<Fragments>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Fragments {
    Reassemble,
    Drop,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DefaultsModel {
    mode: Option<ModeModel>,
    unknown_peer: Option<PassDrop>,
    non_signaling: Option<PassDrop>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum ModeModel {
    Enforce,
    Monitor,
}

impl From<ModeModel> for Mode {
    fn from(m: ModeModel) -> Self {
        match m {
            ModeModel::Enforce => Mode::Enforce,
            ModeModel::Monitor => Mode::Monitor,
        }
    }
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum PassDrop {
    Pass,
    Drop,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "kebab-case")]
enum FailMode {
    FailClosed,
    FailOpen,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PortsModel {
    gtp_c: Option<Spanned<Vec<Spanned<i64>>>>,
    gtp_u: Option<Spanned<Vec<Spanned<i64>>>>,
    diameter: Option<Spanned<Vec<Spanned<i64>>>>,
    sigtran: Option<Spanned<Vec<Spanned<i64>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PeerModel {
    name: Spanned<String>,
    prefixes: Spanned<Vec<Spanned<String>>>,
    allow: Spanned<Vec<Spanned<String>>>,
    rate_limit_pps: Option<Spanned<i64>>,
    rate_burst: Option<Spanned<i64>>,
    mode: Option<ModeModel>,
    unclassifiable: Option<PassDrop>,
    on_overload: Option<FailMode>,
    inspect_budget_pps: Option<Spanned<i64>>,
    inspect: Option<Spanned<String>>,
    inspect_gtpu: Option<Spanned<String>>,
    #[serde(default)]
    gt_prefixes: Vec<Spanned<String>>,
    #[serde(default)]
    realms: Vec<Spanned<String>>,
    #[serde(default)]
    plmn_ids: Vec<Spanned<String>>,
    #[serde(default)]
    diameter_apps: Vec<Spanned<i64>>,
}

/// Read and validate a policy file.
/// Largest policy file read: far above a 1,000,000-prefix policy (about 30 MB), far below what
/// would hurt the daemon.
pub const MAX_POLICY_FILE_BYTES: u64 = 256 << 20;

/// A policy file's text, as the daemon reads a path a control request names (the CLI's `check`
/// reads whatever its user can, a pipe too). Only a regular file of at most [`MAX_POLICY_FILE_BYTES`] is read, and
/// it is opened non-blocking: a path naming a FIFO, a device (`/dev/zero`) or a huge file is an
/// error, never a daemon stuck in `read` while it holds its state lock.
pub fn read_text(path: &Path) -> std::io::Result<String> {
    use std::{io::Read as _, os::unix::fs::OpenOptionsExt as _};
    let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a regular file"));
    }
    if meta.len() > MAX_POLICY_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} bytes, more than the {MAX_POLICY_FILE_BYTES} a policy file may have", meta.len()),
        ));
    }
    let mut text = String::with_capacity(meta.len() as usize);
    f.take(MAX_POLICY_FILE_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_POLICY_FILE_BYTES {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "the file grew past the limit while read"));
    }
    Ok(text)
}

pub fn load(path: &Path, limits: &Limits) -> Result<Policy, PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|e| PolicyError {
        file: path.display().to_string(),
        line: 0,
        message: format!("cannot read policy file: {e}"),
    })?;
    parse(&path.display().to_string(), &text, limits)
}

/// Parse and validate policy text; `file` names it in errors.
pub fn parse(file: &str, text: &str, limits: &Limits) -> Result<Policy, PolicyError> {
    let at =
        |offset: usize, message: String| PolicyError { file: file.to_string(), line: line_of(text, offset), message };
    let model: FileModel = toml::from_str(text).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        // toml's message repeats the location and source line; keep its first line only.
        let msg = e.message().lines().next().unwrap_or("invalid TOML").to_string();
        at(offset, msg)
    })?;
    validate(model, &at, limits)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())].iter().filter(|b| **b == b'\n').count() + 1
}

fn validate(m: FileModel, at: &dyn Fn(usize, String) -> PolicyError, limits: &Limits) -> Result<Policy, PolicyError> {
    let d = m.defaults;
    let ports = match m.ports {
        None => Ports::default(),
        Some(p) => validate_ports(p.into_inner(), at)?,
    };

    if m.peer.len() >= MAX_PEERS as usize {
        let span = m.peer[MAX_PEERS as usize - 1].span();
        return Err(at(span.start, format!("too many peers: at most {} are supported", MAX_PEERS - 1)));
    }

    let mut names: HashMap<String, usize> = HashMap::new();
    let mut owners: HashMap<IpNet, (String, usize)> = HashMap::new();
    let (mut n4, mut n6) = (0usize, 0usize);
    let mut peers = Vec::with_capacity(m.peer.len());
    for p in m.peer {
        let p = p.into_inner();
        let name = p.name.get_ref().trim().to_string();
        let name_line = p.name.span().start;
        if name.is_empty() {
            return Err(at(name_line, "peer name is empty".into()));
        }
        if name.len() > 63 || !name.chars().all(|c| c.is_ascii_graphic()) {
            return Err(at(
                name_line,
                format!("peer name {name:?}: use at most 63 printable ASCII characters without spaces"),
            ));
        }
        if let Some(first) = names.insert(name.clone(), name_line) {
            let first_line = at(first, String::new()).line;
            return Err(at(name_line, format!("duplicate peer name {name:?} (first defined on line {first_line})")));
        }

        if p.prefixes.get_ref().is_empty() {
            return Err(at(p.prefixes.span().start, format!("peer {name:?} has no prefixes")));
        }
        let mut prefixes = Vec::new();
        for s in p.prefixes.into_inner() {
            let off = s.span().start;
            let net = parse_prefix(s.get_ref()).map_err(|e| at(off, format!("peer {name:?}: {e}")))?;
            if let Some((other, other_off)) = owners.get(&net) {
                let line = at(*other_off, String::new()).line;
                let msg = if *other == name {
                    format!("peer {name:?}: prefix {net} is listed twice (also on line {line})")
                } else {
                    format!("prefix {net} is claimed by peer {name:?} and by peer {other:?} (line {line})")
                };
                return Err(at(off, msg));
            }
            owners.insert(net, (name.clone(), off));
            match net {
                IpNet::V4(_) => n4 += 1,
                IpNet::V6(_) => n6 += 1,
            }
            prefixes.push(net);
        }

        let mut allow = Vec::new();
        for c in p.allow.into_inner() {
            let Some(class) = AllowClass::parse(c.get_ref()) else {
                let valid: Vec<_> = AllowClass::ALL.iter().map(|c| c.name()).collect();
                return Err(at(
                    c.span().start,
                    format!("peer {name:?}: unknown class {:?} (expected one of {})", c.get_ref(), valid.join(", ")),
                ));
            };
            if !allow.contains(&class) {
                allow.push(class);
            }
        }

        let rate_limit_pps = match p.rate_limit_pps {
            None => None,
            Some(r) if *r.get_ref() >= 1 && *r.get_ref() <= 1_000_000_000 => Some(*r.get_ref() as u64),
            Some(r) => {
                return Err(at(
                    r.span().start,
                    format!("peer {name:?}: rate_limit_pps must be between 1 and 1000000000"),
                ));
            }
        };
        let rate_burst = match p.rate_burst {
            None => None,
            Some(b) if rate_limit_pps.is_none() => {
                return Err(at(b.span().start, format!("peer {name:?}: rate_burst needs rate_limit_pps")));
            }
            Some(b) if *b.get_ref() >= 1 && *b.get_ref() <= 1_000_000_000 => Some(*b.get_ref() as u64),
            Some(b) => {
                return Err(at(b.span().start, format!("peer {name:?}: rate_burst must be between 1 and 1000000000")));
            }
        };

        let inspect_budget_pps = match p.inspect_budget_pps {
            None => filter_common::DEFAULT_INSPECT_BUDGET_PPS,
            Some(b) if *b.get_ref() >= 1 && *b.get_ref() <= 10_000_000 => *b.get_ref() as u64,
            Some(b) => {
                return Err(at(
                    b.span().start,
                    format!("peer {name:?}: inspect_budget_pps must be between 1 and 10000000"),
                ));
            }
        };
        let insp = inspect::validate_peer(
            &name,
            inspect::PeerInspectModel {
                inspect: p.inspect,
                inspect_gtpu: p.inspect_gtpu,
                gt_prefixes: p.gt_prefixes,
                realms: p.realms,
                plmn_ids: p.plmn_ids,
                diameter_apps: p.diameter_apps,
            },
            at,
        )?;
        peers.push(Peer {
            name,
            prefixes,
            allow,
            rate_limit_pps,
            rate_burst,
            mode: p.mode.map(Mode::from),
            unclassifiable_pass: matches!(p.unclassifiable, Some(PassDrop::Pass)),
            overload_pass: matches!(p.on_overload, Some(FailMode::FailOpen)),
            inspect_budget_pps,
            inspect: insp,
        });
    }

    if n4 > limits.prefixes_v4 {
        return Err(at(0, format!("{n4} IPv4 prefixes exceed the capacity of {}", limits.prefixes_v4)));
    }
    if n6 > limits.prefixes_v6 {
        return Err(at(0, format!("{n6} IPv6 prefixes exceed the capacity of {}", limits.prefixes_v6)));
    }

    // Defaults (filter_common::DEFAULT_FRAGMENTS_DROP): GTP-U reassembled, the rest dropped.
    let fr = m.fragments;
    let mut fragments_drop = Vec::new();
    for (class, setting, default) in [
        (AllowClass::Sigtran, fr.sigtran, Fragments::Drop),
        (AllowClass::Diameter, fr.diameter, Fragments::Drop),
        (AllowClass::GtpC, fr.gtp_c, Fragments::Drop),
        (AllowClass::GtpU, fr.gtp_u, Fragments::Reassemble),
        (AllowClass::Sctp, fr.sctp, Fragments::Drop),
    ] {
        if setting.unwrap_or(default) == Fragments::Drop {
            fragments_drop.push(class);
        }
    }

    Ok(Policy {
        fragments_drop,
        mode: d.mode.map(Mode::from).unwrap_or(Mode::Enforce),
        unknown_peer_pass: matches!(d.unknown_peer, Some(PassDrop::Pass)),
        non_signaling_pass: !matches!(d.non_signaling, Some(PassDrop::Drop)),
        ports,
        peers,
        inspect: inspect::validate(m.inspect, at)?,
    })
}

fn validate_ports(p: PortsModel, at: &dyn Fn(usize, String) -> PolicyError) -> Result<Ports, PolicyError> {
    let defaults = Ports::default();
    let mut seen: HashMap<u16, &'static str> = HashMap::new();
    let mut one = |key: &'static str,
                   v: Option<Spanned<Vec<Spanned<i64>>>>,
                   default: Vec<u16>|
     -> Result<Vec<u16>, PolicyError> {
        let Some(v) = v else {
            for p in &default {
                seen.insert(*p, key);
            }
            return Ok(default);
        };
        let span = v.span().start;
        let list = v.into_inner();
        if list.len() > MAX_PORTS_PER_CLASS {
            return Err(at(span, format!("ports.{key}: at most {MAX_PORTS_PER_CLASS} ports per class")));
        }
        let mut out = Vec::new();
        for port in list {
            let n = *port.get_ref();
            if !(1..=65535).contains(&n) {
                return Err(at(port.span().start, format!("ports.{key}: {n} is not a port (1-65535)")));
            }
            let n = n as u16;
            if let Some(other) = seen.insert(n, key) {
                return Err(at(port.span().start, format!("ports.{key}: port {n} is already used by ports.{other}")));
            }
            out.push(n);
        }
        Ok(out)
    };
    Ok(Ports {
        gtp_c: one("gtp_c", p.gtp_c, defaults.gtp_c)?,
        gtp_u: one("gtp_u", p.gtp_u, defaults.gtp_u)?,
        diameter: one("diameter", p.diameter, defaults.diameter)?,
        sigtran: one("sigtran", p.sigtran, defaults.sigtran)?,
    })
}

/// A prefix in CIDR notation; a bare address is a host prefix. Host bits must be zero: a
/// `198.51.100.7/24` is more likely a typo than a request for the /24.
pub fn parse_prefix(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    let net = if s.contains('/') {
        s.parse::<IpNet>()
            .map_err(|_| format!("{s:?} is not a prefix (expected e.g. 198.51.100.0/24 or 2001:db8::/32)"))?
    } else {
        let a: IpAddr = s.parse().map_err(|_| format!("{s:?} is not an address or prefix"))?;
        IpNet::from(a)
    };
    if net.trunc() != net {
        return Err(format!("{s:?} has host bits set; did you mean {}?", net.trunc()));
    }
    Ok(net)
}

impl Policy {
    /// One-paragraph summary for `sigwall check` and the daemon's start-up log.
    pub fn summary(&self) -> String {
        let v4: usize =
            self.peers.iter().map(|p| p.prefixes.iter().filter(|n| matches!(n, IpNet::V4(_))).count()).sum();
        let v6: usize = self.peers.iter().map(|p| p.prefixes.len()).sum::<usize>() - v4;
        let mut s = format!(
            "mode {}, unknown peers {}, non-signaling {}; {} peers, {} IPv4 and {} IPv6 prefixes\n",
            self.mode.name(),
            if self.unknown_peer_pass { "pass" } else { "drop" },
            if self.non_signaling_pass { "pass" } else { "drop" },
            self.peers.len(),
            v4,
            v6
        );
        s += &format!(
            "ports: gtp-c {:?}, gtp-u {:?}, diameter {:?}, sigtran {:?}\n",
            self.ports.gtp_c, self.ports.gtp_u, self.ports.diameter, self.ports.sigtran
        );
        let dropped: Vec<_> = self.fragments_drop.iter().map(|c| c.name()).collect();
        s += &format!("IP fragments dropped for [{}], reassembled for the rest\n", dropped.join(", "));
        for p in &self.peers {
            let allow: Vec<_> = p.allow.iter().map(|c| c.name()).collect();
            s += &format!(
                "  {:<20} {:>3} prefixes  allow [{}]{}{}\n",
                p.name,
                p.prefixes.len(),
                allow.join(", "),
                p.rate_limit_pps.map(|r| format!("  rate {r} pps")).unwrap_or_default(),
                p.mode.map(|m| format!("  mode {}", m.name())).unwrap_or_default(),
            );
            if p.unclassifiable_pass {
                s += "      unclassifiable frames pass\n";
            }
            if p.overload_pass {
                s += "      uninspected signaling passes when inspection is overloaded (fail-open)\n";
            }
        }
        s
    }
}

#[cfg(test)]
mod tests;

/// SHA-256 of policy text, as `sha256sum` prints it for the file.
pub fn sha256(text: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(text.as_bytes()).into()
}

/// What META records for the running policy, and a restart compares before trusting the pinned
/// maps: the file's SHA-256, but for a daemon in tap mode (`--tap`, every peer observe-only) a
/// hash that no file has, so that a restart without `--tap` re-applies the file instead of
/// adopting the tap run's all-monitor maps (and one with `--tap` after a normal run does too).
pub fn applied_sha256(text: &str, tap: bool) -> [u8; 32] {
    use sha2::Digest as _;
    if !tap {
        return sha256(text);
    }
    let mut h = sha2::Sha256::new();
    h.update(b"sigwall tap mode\0");
    h.update(text.as_bytes());
    h.finalize().into()
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
