//! Countries for the location rules: E.164 calling code and E.212 MCC → country, and the
//! shortest plausible travel time between two countries (great-circle distance between their
//! representative points at a maximum speed). The table is `filter-user/data/countries.csv`,
//! built by `data/countries.py` from public data (sources and licences in `data/README.md`).

use std::collections::HashMap;

/// The shipped table, compiled in.
const CSV: &str = include_str!("../../data/countries.csv");

/// A country: its index in the table (stable for one build; not written anywhere persistent
/// but snapshots, which store the ISO code instead).
pub type CountryId = u16;

#[derive(Clone, Debug)]
pub struct Country {
    pub iso2: [u8; 2],
    pub lat: f64,
    pub lon: f64,
}

impl Country {
    pub fn iso(&self) -> &str {
        std::str::from_utf8(&self.iso2).unwrap_or("??")
    }
}

/// The country table with its two indexes.
#[derive(Clone, Debug)]
pub struct Countries {
    all: Vec<Country>,
    by_mcc: HashMap<u16, CountryId>,
    /// Calling code (1 to 4 digits, as a number with its length) → country.
    by_cc: HashMap<(u8, u16), CountryId>,
    by_iso: HashMap<[u8; 2], CountryId>,
}

impl Countries {
    /// The shipped table.
    pub fn shipped() -> Countries {
        Countries::parse(CSV).expect("the shipped countries.csv parses (checked by a unit test)")
    }

    /// The shipped table, parsed once per process: every inspection engine shares it (parsing
    /// it per engine cost more than inspecting a few hundred frames).
    pub fn shared() -> &'static Countries {
        static SHIPPED: std::sync::LazyLock<Countries> = std::sync::LazyLock::new(Countries::shipped);
        &SHIPPED
    }

    pub fn parse(csv: &str) -> Result<Countries, String> {
        let mut c = Countries { all: vec![], by_mcc: HashMap::new(), by_cc: HashMap::new(), by_iso: HashMap::new() };
        for (n, line) in csv.lines().enumerate() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let cols: Vec<&str> = line.split(',').collect();
            let bad = || format!("countries.csv line {}: {line:?}", n + 1);
            if cols.len() != 5 || cols[0].len() != 2 {
                return Err(bad());
            }
            let id = CountryId::try_from(c.all.len()).map_err(|_| bad())?;
            let iso2 = [cols[0].as_bytes()[0], cols[0].as_bytes()[1]];
            let lat: f64 = cols[1].parse().map_err(|_| bad())?;
            let lon: f64 = cols[2].parse().map_err(|_| bad())?;
            for cc in cols[3].split_whitespace() {
                let v: u16 = cc.parse().map_err(|_| bad())?;
                // A calling code shared by several countries (+1, +7) keeps the first listed.
                c.by_cc.entry((cc.len() as u8, v)).or_insert(id);
            }
            for m in cols[4].split_whitespace() {
                c.by_mcc.insert(m.parse().map_err(|_| bad())?, id);
            }
            c.by_iso.insert(iso2, id);
            c.all.push(Country { iso2, lat, lon });
        }
        // +1 is shared by the NANP countries; the US is the right guess for most numbers.
        if let Some(&us) = c.by_iso.get(b"US") {
            c.by_cc.insert((1, 1), us);
        }
        if let Some(&ru) = c.by_iso.get(b"RU") {
            c.by_cc.insert((1, 7), ru);
        }
        Ok(c)
    }

    pub fn len(&self) -> usize {
        self.all.len()
    }

    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    pub fn get(&self, id: CountryId) -> Option<&Country> {
        self.all.get(id as usize)
    }

    pub fn by_iso(&self, iso: &str) -> Option<CountryId> {
        let b = iso.as_bytes();
        if b.len() != 2 {
            return None;
        }
        self.by_iso.get(&[b[0].to_ascii_uppercase(), b[1].to_ascii_uppercase()]).copied()
    }

    pub fn by_mcc(&self, mcc: u16) -> Option<CountryId> {
        self.by_mcc.get(&mcc).copied()
    }

    /// The country of an E.164 number (a global title), by its longest calling-code prefix.
    pub fn by_e164(&self, digits: &str) -> Option<CountryId> {
        (1..=4.min(digits.len())).rev().find_map(|n| {
            let p = digits.get(..n)?; // None inside a multi-byte character, never a panic
            let v: u16 = p.parse().ok()?;
            self.by_cc.get(&(n as u8, v)).copied()
        })
    }

    /// Great-circle distance between two countries' points, kilometres (haversine, mean
    /// Earth radius 6371 km).
    pub fn distance_km(&self, a: CountryId, b: CountryId) -> Option<f64> {
        let (a, b) = (self.get(a)?, self.get(b)?);
        let (p1, p2) = (a.lat.to_radians(), b.lat.to_radians());
        let dp = p2 - p1;
        let dl = (b.lon - a.lon).to_radians();
        let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        Some(2.0 * 6371.0 * h.sqrt().asin())
    }

    /// The shortest plausible time to travel from `a` to `b`, seconds: the distance less
    /// `slack_km` (two points near a shared border are much closer than the countries' points)
    /// at `speed_kmh`.
    pub fn min_travel_s(&self, a: CountryId, b: CountryId, speed_kmh: u32, slack_km: u32) -> Option<u64> {
        let d = (self.distance_km(a, b)? - f64::from(slack_km)).max(0.0);
        Some((d / f64::from(speed_kmh.max(1)) * 3600.0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_table_lookups_and_distances() {
        let c = Countries::shipped();
        assert!(c.len() > 200, "{}", c.len());
        let iso = |id: Option<CountryId>| id.map(|i| c.get(i).unwrap().iso().to_string());
        assert_eq!(iso(c.by_mcc(228)).as_deref(), Some("CH"));
        assert_eq!(iso(c.by_mcc(505)).as_deref(), Some("AU"));
        assert_eq!(iso(c.by_mcc(310)).as_deref(), Some("US"));
        assert_eq!(iso(c.by_e164("41790000010")).as_deref(), Some("CH"));
        assert_eq!(iso(c.by_e164("35191000001")).as_deref(), Some("PT"));
        // Not from a BCD decoder but still a &str: no byte index inside a character.
        assert_eq!(c.by_e164("4é9"), None);
        assert_eq!(iso(c.by_e164("41é")).as_deref(), Some("CH"));
        assert_eq!(iso(c.by_e164("33609000001")).as_deref(), Some("FR"));
        assert_eq!(iso(c.by_e164("61400000001")).as_deref(), Some("AU"));
        assert_eq!(iso(c.by_e164("12025550100")).as_deref(), Some("US"));
        assert_eq!(iso(c.by_e164("16715550100")).as_deref(), Some("GU"));
        assert_eq!(c.by_e164(""), None);
        let (ch, au, fr) = (c.by_iso("ch").unwrap(), c.by_iso("AU").unwrap(), c.by_iso("FR").unwrap());
        let d = c.distance_km(ch, au).unwrap();
        assert!((14_000.0..17_500.0).contains(&d), "{d}");
        let d = c.distance_km(ch, fr).unwrap();
        assert!((300.0..800.0).contains(&d), "{d}");
        assert_eq!(c.min_travel_s(ch, ch, 900, 0), Some(0));
        // Switzerland to Australia at 900 km/h: over 14 hours.
        assert!(c.min_travel_s(ch, au, 900, 300).unwrap() > 14 * 3600);
        assert!(Countries::parse("XX,1,2,3").is_err());
        assert!(Countries::parse("XX,a,2,3,4").is_err());
    }
}
