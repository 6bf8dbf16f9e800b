//! The one reader of which generation is active, for a loaded filter and for the pins of a
//! running one alike (`sigwall stats`, `sigwall top`, the metrics endpoint, adoption).

use aya::maps::{Array, Map, MapData};
use filter_common::{Active, GlobalPolicy, maps};

use crate::errors::OperatorError;

/// The active generation: its slot (0 or 1) and its settings (generation 0, all zero, before
/// any policy). `get` finds a map by name (in a loaded object, or among opened pins).
pub fn active_generation<'a>(
    get: impl Fn(&str) -> Result<&'a Map, OperatorError>,
) -> Result<(u32, GlobalPolicy), OperatorError> {
    let active: Array<&MapData, Active> = Array::try_from(get(maps::ACTIVE)?)?;
    let slot = active.get(&0, 0)?.index & 1;
    let global: Array<&MapData, GlobalPolicy> = Array::try_from(get(maps::GLOBAL)?)?;
    Ok((slot, global.get(&slot, 0)?))
}

/// Open one pinned map of the filter attached to `iface`.
pub fn open(iface: &str, name: &str) -> Result<Map, OperatorError> {
    let path = super::pin_dir(iface).join(name);
    let data = MapData::from_pin(&path).map_err(|e| OperatorError::Pins {
        path: path.display().to_string(),
        action: "opening the pinned map",
        source: std::io::Error::other(e),
    })?;
    Ok(Map::from_map_data(data)?)
}
