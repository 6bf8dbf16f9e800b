//! tshark's JSON output (`-T json`) as a tree that keeps duplicate keys in order (serde_json's
//! map would keep only the last), for the decoder agreement tests.

use std::collections::BTreeMap;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

#[derive(Debug)]
pub enum Tree {
    Str(String),
    Obj(Vec<(String, Tree)>),
    List(Vec<Tree>),
    Other,
}

impl<'de> Deserialize<'de> for Tree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Tree, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Tree;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("tshark JSON")
            }
            fn visit_str<E>(self, s: &str) -> Result<Tree, E> {
                Ok(Tree::Str(s.to_owned()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Tree, E> {
                Ok(Tree::Other)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Tree, E> {
                Ok(Tree::Other)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Tree, E> {
                Ok(Tree::Other)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Tree, E> {
                Ok(Tree::Other)
            }
            fn visit_unit<E>(self) -> Result<Tree, E> {
                Ok(Tree::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Tree, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(Tree::List(v))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Tree, A::Error> {
                let mut v = Vec::new();
                while let Some((k, x)) = a.next_entry::<String, Tree>()? {
                    v.push((k, x));
                }
                Ok(Tree::Obj(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl Tree {
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Tree> + 'a {
        let entries: &[(String, Tree)] = match self {
            Tree::Obj(v) => v,
            _ => &[],
        };
        entries.iter().filter(move |(k, _)| k == key).map(|(_, t)| t)
    }
    pub fn get(&self, key: &str) -> Option<&Tree> {
        match self {
            Tree::Obj(v) => v.iter().find(|(k, _)| k == key).map(|(_, t)| t),
            _ => None,
        }
    }
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.get(key)? {
            Tree::Str(s) => Some(s),
            _ => None,
        }
    }
    pub fn num(&self, key: &str) -> Option<u64> {
        let s = self.str(key)?;
        match s.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).ok(),
            None => s.parse().ok(),
        }
    }
}

/// Field-by-field agreement between tshark and a sigwall decoder.
#[derive(Default)]
pub struct Agreement {
    /// field → (messages where tshark or sigwall has the field, disagreements)
    pub fields: BTreeMap<&'static str, (usize, usize)>,
    pub problems: Vec<String>,
}

impl Agreement {
    /// Compare one field of one message (`ctx` names the message in problems).
    pub fn field<T: PartialEq + std::fmt::Debug>(
        &mut self,
        ctx: &str,
        name: &'static str,
        tshark: Option<T>,
        ours: Option<T>,
    ) {
        if tshark.is_none() && ours.is_none() {
            return;
        }
        let e = self.fields.entry(name).or_default();
        e.0 += 1;
        if tshark != ours {
            e.1 += 1;
            self.problems.push(format!("{ctx}: {name}: tshark {tshark:?}, sigwall {ours:?}"));
        }
    }
}
