//! The control API: JSON lines over a Unix socket, one request and one reply per line.
//!
//! Request: `{"v": 1, "cmd": "peer_add", "args": {...}}`; reply: `{"v": 1, "ok": true,
//! "result": ...}` or `{"v": 1, "ok": false, "error": "..."}`. A request with another `v` is
//! refused, so a newer CLI never half-speaks to an older daemon.

pub mod server;

use std::{
    io::{BufRead, BufReader, Write},
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    time::Duration,
};

use serde::{Deserialize, Serialize};

use filter_common::Mode;

use crate::{errors::ControlError, policy::edit::PeerChange};

pub const PROTOCOL_VERSION: u32 = 1;
/// Longest request line accepted (a peer with many prefixes fits; anything longer is refused).
pub const MAX_REQUEST_BYTES: usize = 1 << 20;
/// A client has this long to send its request line.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Default socket path for an interface.
pub fn socket_path(iface: &str) -> PathBuf {
    Path::new("/run/sigwall").join(format!("{iface}.sock"))
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", content = "args", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    Status,
    Peers,
    PeerAdd(PeerChange),
    PeerRemove {
        name: String,
    },
    PeerSet(PeerChange),
    /// Reload the policy file, or load `file` (which then becomes the policy file).
    PolicyReload {
        file: Option<String>,
    },
    /// What loading `file` would change; changes nothing.
    PolicyDiff {
        file: String,
    },
    Mode {
        #[serde(with = "mode_wire")]
        mode: Mode,
    },
    Stats,
    /// Deep-inspection events from sequence number `since` on.
    Events {
        #[serde(default)]
        since: u64,
        #[serde(default = "default_limit")]
        limit: u32,
    },
    /// Stop the daemon and detach the filter.
    Detach,
    /// What the subscriber store knows about one IMSI.
    Subscriber {
        imsi: String,
    },
    /// In path: the identity blocks in force; with `lift`, lift those of one peer whose
    /// identity has this value first.
    Blocks {
        #[serde(default)]
        lift: Option<Lift>,
    },
}

/// An identity block to lift: the peer's name and the identity's value (a GT's digits, an
/// Origin-Host or Origin-Realm, a GTP-C node's address, an IMSI).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lift {
    pub peer: String,
    pub identity: String,
}

/// A mode on the wire is its name, `"enforce"` or `"monitor"`.
mod mode_wire {
    use filter_common::Mode;
    use serde::{Deserialize as _, Deserializer, Serializer, de::Error as _};

    pub fn serialize<S: Serializer>(m: &Mode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(m.name())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
        let name = String::deserialize(d)?;
        Mode::from_name(&name).ok_or_else(|| D::Error::custom(format!("mode {name:?}: expected enforce or monitor")))
    }
}

fn default_limit() -> u32 {
    1000
}

/// The wire names of the commands that change state: a request naming one of them that does not
/// even parse (a bad argument) is still audited as rejected.
pub const CHANGE_COMMANDS: [&str; 6] = ["peer_add", "peer_remove", "peer_set", "policy_reload", "mode", "detach"];

impl Command {
    /// Whether the command changes state (and so is audited and serialised).
    pub fn is_change(&self) -> bool {
        matches!(
            self,
            Command::PeerAdd(_)
                | Command::PeerRemove { .. }
                | Command::PeerSet(_)
                | Command::PolicyReload { .. }
                | Command::Mode { .. }
                | Command::Detach
                | Command::Blocks { lift: Some(_) }
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    pub v: u32,
    #[serde(flatten)]
    pub cmd: Command,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub v: u32,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Reply {
    pub fn ok(result: serde_json::Value) -> Self {
        Reply { v: PROTOCOL_VERSION, ok: true, result: Some(result), error: None }
    }

    pub fn err(msg: impl Into<String>) -> Self {
        Reply { v: PROTOCOL_VERSION, ok: false, result: None, error: Some(msg.into()) }
    }
}

/// Parse one request line. Errors are meant for the client, verbatim.
pub fn parse_request(line: &[u8]) -> Result<Request, String> {
    let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| format!("request is not JSON: {e}"))?;
    match v.get("v").and_then(|x| x.as_u64()) {
        Some(n) if n == PROTOCOL_VERSION as u64 => {}
        Some(n) => return Err(format!("protocol version {n} not supported (this daemon speaks {PROTOCOL_VERSION})")),
        None => return Err("request has no protocol version \"v\"".into()),
    }
    serde_json::from_value(v).map_err(|e| format!("bad request: {e}"))
}

/// Send one command and wait for its reply (blocking; for the CLI).
pub fn call(socket: &Path, cmd: Command, timeout: Duration) -> Result<serde_json::Value, ControlError> {
    let name = || socket.display().to_string();
    let mut s = UnixStream::connect(socket).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
            ControlError::NoDaemon { socket: name(), source: e }
        }
        std::io::ErrorKind::PermissionDenied => ControlError::PermissionDenied { socket: name() },
        _ => ControlError::Connect { socket: name(), source: e },
    })?;
    s.set_read_timeout(Some(timeout)).ok();
    let mut line = serde_json::to_vec(&Request { v: PROTOCOL_VERSION, cmd })?;
    line.push(b'\n');
    s.write_all(&line).map_err(|e| ControlError::Io { step: "sending the request", source: e })?;
    let mut reply = String::new();
    BufReader::new(&s).read_line(&mut reply).map_err(|e| ControlError::Io { step: "reading the reply", source: e })?;
    if reply.is_empty() {
        return Err(ControlError::NoReply);
    }
    let r: Reply = serde_json::from_str(&reply).map_err(|e| ControlError::BadReply(e.to_string()))?;
    if r.ok {
        Ok(r.result.unwrap_or(serde_json::Value::Null))
    } else {
        Err(ControlError::Refused(r.error.unwrap_or_else(|| "failed".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_bad_ones_are_explained() {
        let r = parse_request(br#"{"v":1,"cmd":"peer_remove","args":{"name":"a"}}"#).unwrap();
        assert_eq!(r.cmd, Command::PeerRemove { name: "a".into() });
        let r = parse_request(br#"{"v":1,"cmd":"status"}"#).unwrap();
        assert_eq!(r.cmd, Command::Status);
        let add = Request {
            v: 1,
            cmd: Command::PeerAdd(PeerChange {
                name: "x".into(),
                prefixes: Some(vec!["198.18.0.0/24".into()]),
                ..Default::default()
            }),
        };
        let text = serde_json::to_vec(&add).unwrap();
        assert_eq!(parse_request(&text).unwrap(), add);

        assert!(parse_request(b"nonsense").unwrap_err().contains("not JSON"));
        assert!(parse_request(br#"{"cmd":"status"}"#).unwrap_err().contains("no protocol version"));
        assert!(parse_request(br#"{"v":2,"cmd":"status"}"#).unwrap_err().contains("version 2 not supported"));
        assert!(parse_request(br#"{"v":1,"cmd":"format_disk"}"#).unwrap_err().contains("bad request"));
        assert!(parse_request(br#"{"v":1,"cmd":"peer_remove","args":{"name":"a","force":true}}"#).is_err());
        assert!(parse_request(br#"{"v":1,"cmd":"peer_add","args":{"name":"a","prefixes":"198.18.0.0/24"}}"#).is_err());
    }

    #[test]
    fn modes_travel_by_name() {
        let text = serde_json::to_string(&Request { v: 1, cmd: Command::Mode { mode: Mode::Monitor } }).unwrap();
        assert_eq!(text, r#"{"v":1,"cmd":"mode","args":{"mode":"monitor"}}"#);
        let r = parse_request(br#"{"v":1,"cmd":"mode","args":{"mode":"enforce"}}"#).unwrap();
        assert_eq!(r.cmd, Command::Mode { mode: Mode::Enforce });
        let e = parse_request(br#"{"v":1,"cmd":"mode","args":{"mode":"off"}}"#).unwrap_err();
        assert!(e.contains("expected enforce or monitor"), "{e}");
    }
}
