//! Live edits to the policy document, and what changes between two policies.
//!
//! Edits are made on the TOML document itself (toml_edit keeps the operator's comments and
//! layout), and the edited text then goes through the same [`super::parse`] as a file does: one
//! validation path for files, reloads and CLI changes, and the text persisted is exactly the
//! text validated.

use serde::{Deserialize, Serialize};
use toml_edit::{Array, ArrayOfTables, DocumentMut, Item, Table, value};

use super::{Peer, Policy};

/// Why a live edit could not be made. Nothing is changed when one is returned: the edit works on
/// a copy of the document, and the caller validates and applies the result only on success.
/// The messages are what the operator reads (CLI, audit log), so each says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The policy text itself is not TOML (a running policy always is; a file being reloaded may not be).
    #[error("invalid TOML: {0}")]
    NotToml(String),
    /// `peer` (or `defaults`) exists but has another shape than the format's.
    #[error("`{0}` in the policy is not {1}")]
    Shape(&'static str, &'static str),
    #[error("peer {0:?} already exists (use `peer set` to change it)")]
    PeerExists(String),
    #[error("peer {0:?}: at least one --prefix is needed")]
    NoPrefix(String),
    #[error("no peer named {0:?}")]
    NoSuchPeer(String),
    #[error("no peer named {0:?} (use `peer add`)")]
    NoSuchPeerToSet(String),
    #[error("{0} too large")]
    TooLarge(&'static str),
    #[error("mode {0:?}: expected {1}")]
    Mode(String, &'static str),
}

/// Fields of a peer given on the command line; `None` leaves a field as it is (for `set`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerChange {
    pub name: String,
    #[serde(default)]
    pub prefixes: Option<Vec<String>>,
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    /// `Some(0)` removes the limit.
    #[serde(default)]
    pub rate_limit_pps: Option<u64>,
    #[serde(default)]
    pub rate_burst: Option<u64>,
    /// "enforce", "monitor", or "inherit" (remove the override).
    #[serde(default)]
    pub mode: Option<String>,
}

pub fn parse_doc(text: &str) -> Result<DocumentMut, EditError> {
    text.parse::<DocumentMut>().map_err(|e| EditError::NotToml(e.message().to_string()))
}

fn peers_mut(doc: &mut DocumentMut) -> Result<&mut ArrayOfTables, EditError> {
    if !doc.contains_key("peer") {
        doc.insert("peer", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    doc["peer"].as_array_of_tables_mut().ok_or(EditError::Shape("peer", "an array of tables"))
}

fn find(peers: &ArrayOfTables, name: &str) -> Option<usize> {
    peers.iter().position(|t| t.get("name").and_then(|v| v.as_str()).map(str::trim) == Some(name))
}

fn str_array(v: &[String]) -> Item {
    let mut a = Array::new();
    for s in v {
        a.push(s.as_str());
    }
    value(a)
}

fn apply_fields(t: &mut Table, c: &PeerChange) -> Result<(), EditError> {
    if let Some(p) = &c.prefixes {
        t.insert("prefixes", str_array(p));
    }
    if let Some(a) = &c.allow {
        t.insert("allow", str_array(a));
    }
    match c.rate_limit_pps {
        Some(0) => {
            t.remove("rate_limit_pps");
            t.remove("rate_burst");
        }
        Some(r) => {
            t.insert("rate_limit_pps", value(i64::try_from(r).map_err(|_| EditError::TooLarge("rate_limit_pps"))?));
        }
        None => {}
    }
    if let Some(b) = c.rate_burst {
        t.insert("rate_burst", value(i64::try_from(b).map_err(|_| EditError::TooLarge("rate_burst"))?));
    }
    match c.mode.as_deref() {
        None => {}
        Some("inherit") => {
            t.remove("mode");
        }
        Some(m @ ("enforce" | "monitor")) => {
            t.insert("mode", value(m));
        }
        Some(other) => return Err(EditError::Mode(other.to_string(), "enforce, monitor or inherit")),
    }
    Ok(())
}

pub fn add_peer(doc: &mut DocumentMut, c: &PeerChange) -> Result<(), EditError> {
    let peers = peers_mut(doc)?;
    if find(peers, &c.name).is_some() {
        return Err(EditError::PeerExists(c.name.clone()));
    }
    if c.prefixes.as_ref().is_none_or(|p| p.is_empty()) {
        return Err(EditError::NoPrefix(c.name.clone()));
    }
    let mut t = Table::new();
    t.insert("name", value(c.name.as_str()));
    t.insert("allow", str_array(&[]));
    apply_fields(&mut t, c)?;
    peers.push(t);
    Ok(())
}

pub fn remove_peer(doc: &mut DocumentMut, name: &str) -> Result<(), EditError> {
    let peers = peers_mut(doc)?;
    let i = find(peers, name).ok_or_else(|| EditError::NoSuchPeer(name.to_string()))?;
    peers.remove(i);
    Ok(())
}

pub fn set_peer(doc: &mut DocumentMut, c: &PeerChange) -> Result<(), EditError> {
    let peers = peers_mut(doc)?;
    let i = find(peers, &c.name).ok_or_else(|| EditError::NoSuchPeerToSet(c.name.clone()))?;
    let t = peers.get_mut(i).expect("index from find");
    apply_fields(t, c)
}

pub fn set_mode(doc: &mut DocumentMut, mode: &str) -> Result<(), EditError> {
    if !matches!(mode, "enforce" | "monitor") {
        return Err(EditError::Mode(mode.to_string(), "enforce or monitor"));
    }
    if !doc.contains_key("defaults") {
        doc.insert("defaults", Item::Table(Table::new()));
    }
    let d = doc["defaults"].as_table_mut().ok_or(EditError::Shape("defaults", "a table"))?;
    d.insert("mode", value(mode));
    Ok(())
}

fn peer_line(p: &Peer) -> String {
    let prefixes: Vec<String> = p.prefixes.iter().map(|n| n.to_string()).collect();
    let allow: Vec<&str> = p.allow.iter().map(|c| c.name()).collect();
    format!(
        "prefixes [{}] allow [{}]{}{}",
        prefixes.join(", "),
        allow.join(", "),
        p.rate_limit_pps.map(|r| format!(" rate {r} pps")).unwrap_or_default(),
        p.mode.map(|m| format!(" mode {}", m.name())).unwrap_or_default()
    )
}

/// What would change going from `old` to `new`, one line per change, in a stable order.
pub fn diff(old: &Policy, new: &Policy) -> Vec<String> {
    let mut out = Vec::new();
    if old.mode != new.mode {
        out.push(format!("~ defaults.mode: {} -> {}", old.mode.name(), new.mode.name()));
    }
    let pd = |b: bool| if b { "pass" } else { "drop" };
    if old.unknown_peer_pass != new.unknown_peer_pass {
        out.push(format!("~ defaults.unknown_peer: {} -> {}", pd(old.unknown_peer_pass), pd(new.unknown_peer_pass)));
    }
    if old.non_signaling_pass != new.non_signaling_pass {
        out.push(format!("~ defaults.non_signaling: {} -> {}", pd(old.non_signaling_pass), pd(new.non_signaling_pass)));
    }
    if old.ports != new.ports {
        out.push(format!("~ ports: {:?} -> {:?}", old.ports, new.ports));
    }
    for p in &old.peers {
        match new.peers.iter().find(|q| q.name == p.name) {
            None => out.push(format!("- peer {}: {}", p.name, peer_line(p))),
            Some(q) if q != p => out.push(format!("~ peer {}: {} -> {}", p.name, peer_line(p), peer_line(q))),
            Some(_) => {}
        }
    }
    for q in &new.peers {
        if !old.peers.iter().any(|p| p.name == q.name) {
            out.push(format!("+ peer {}: {}", q.name, peer_line(q)));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{Limits, parse};

    const DOC: &str = "# edge policy\n[defaults]\nmode = \"enforce\" # keep\n\n[[peer]]\nname = \"a\"\nprefixes = [\"198.18.1.0/24\"]\nallow = [\"gtp-u\"]\n";

    fn change(name: &str) -> PeerChange {
        PeerChange { name: name.into(), ..Default::default() }
    }

    #[test]
    fn add_set_remove_keep_comments_and_validate() {
        let mut doc = parse_doc(DOC).unwrap();
        let mut c = change("b");
        c.prefixes = Some(vec!["2001:db8:b::/48".into()]);
        c.allow = Some(vec!["diameter".into()]);
        c.rate_limit_pps = Some(100);
        add_peer(&mut doc, &c).unwrap();
        let text = doc.to_string();
        assert!(text.contains("# edge policy") && text.contains("# keep"), "{text}");
        let p = parse("x", &text, &Limits::default()).unwrap();
        assert_eq!(p.peers[1].name, "b");
        assert_eq!(p.peers[1].rate_limit_pps, Some(100));

        let mut s = change("b");
        s.rate_limit_pps = Some(0);
        s.mode = Some("monitor".into());
        set_peer(&mut doc, &s).unwrap();
        let p = parse("x", &doc.to_string(), &Limits::default()).unwrap();
        assert_eq!(p.peers[1].rate_limit_pps, None);
        assert_eq!(p.peers[1].mode, Some(filter_common::Mode::Monitor));

        remove_peer(&mut doc, "a").unwrap();
        let p = parse("x", &doc.to_string(), &Limits::default()).unwrap();
        assert_eq!(p.peers.len(), 1);
        set_mode(&mut doc, "monitor").unwrap();
        assert!(doc.to_string().contains("mode = \"monitor\""));
    }

    #[test]
    fn bad_edits_are_refused() {
        let mut doc = parse_doc(DOC).unwrap();
        let mut c = change("a");
        c.prefixes = Some(vec!["198.18.9.0/24".into()]);
        assert_eq!(add_peer(&mut doc, &c).unwrap_err(), EditError::PeerExists("a".into()));
        assert!(add_peer(&mut doc, &c).unwrap_err().to_string().contains("already exists"));
        assert_eq!(add_peer(&mut doc, &change("z")).unwrap_err(), EditError::NoPrefix("z".into()));
        assert!(add_peer(&mut doc, &change("z")).unwrap_err().to_string().contains("--prefix"));
        assert_eq!(remove_peer(&mut doc, "zz").unwrap_err(), EditError::NoSuchPeer("zz".into()));
        assert!(set_peer(&mut doc, &change("zz")).unwrap_err().to_string().contains("no peer"));
        let mut m = change("a");
        m.mode = Some("loud".into());
        assert!(matches!(set_peer(&mut doc, &m), Err(EditError::Mode(..))));
        assert!(matches!(set_mode(&mut doc, "off"), Err(EditError::Mode(..))));
        let too_big = PeerChange { rate_limit_pps: Some(u64::MAX), ..change("a") };
        assert_eq!(set_peer(&mut doc, &too_big).unwrap_err(), EditError::TooLarge("rate_limit_pps"));
        let mut bad_shape = parse_doc("peer = 3\n").unwrap();
        assert_eq!(remove_peer(&mut bad_shape, "a").unwrap_err(), EditError::Shape("peer", "an array of tables"));
        assert!(matches!(parse_doc("[["), Err(EditError::NotToml(_))));
        // A syntactically fine edit that the validator rejects: the caller sees the parse error.
        let mut dup = change("c");
        dup.prefixes = Some(vec!["198.18.1.0/24".into()]);
        add_peer(&mut doc, &dup).unwrap();
        let e = parse("x", &doc.to_string(), &Limits::default()).unwrap_err();
        assert!(e.message.contains("claimed by peer"), "{e}");
    }

    #[test]
    fn diff_lists_each_change() {
        let a = parse("x", DOC, &Limits::default()).unwrap();
        let mut doc = parse_doc(DOC).unwrap();
        let mut c = change("b");
        c.prefixes = Some(vec!["198.18.2.0/24".into()]);
        add_peer(&mut doc, &c).unwrap();
        let mut s = change("a");
        s.allow = Some(vec!["gtp-c".into()]);
        set_peer(&mut doc, &s).unwrap();
        set_mode(&mut doc, "monitor").unwrap();
        let b = parse("x", &doc.to_string(), &Limits::default()).unwrap();
        let d = diff(&a, &b);
        assert_eq!(d.len(), 3, "{d:?}");
        assert!(d[0].starts_with("~ defaults.mode: enforce -> monitor"));
        assert!(d[1].starts_with("~ peer a:") && d[1].contains("allow [gtp-c]"), "{d:?}");
        assert!(d[2].starts_with("+ peer b:"));
        assert!(diff(&a, &a).is_empty());
    }
}
