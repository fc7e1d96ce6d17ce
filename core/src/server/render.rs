//! The JSON the accessory sends: the attribute database, characteristic reads, write
//! statuses and events, each written piece by piece so that any response can be streamed
//! through a fixed buffer.

use crate::catalog::{Format, Perms};
use crate::database::{CharacteristicDef, Database, Entry, OwnedValue};
use crate::json::{Full, JsonWriter};
pub use crate::status::HapStatus;

/// Writes a value as HAP's JSON has it: TLV8 and data in base64, and `null` for what is
/// only ever told by events.
pub(crate) fn value(
    w: &mut JsonWriter<'_>,
    def: &CharacteristicDef<'_>,
    value: &OwnedValue,
) -> Result<(), Full> {
    if def.reads_null() {
        return w.raw("null");
    }
    event_value(w, value)
}

/// Writes a value as an event tells it: always the value itself.
pub(crate) fn event_value(w: &mut JsonWriter<'_>, value: &OwnedValue) -> Result<(), Full> {
    match value {
        OwnedValue::Bool(v) => w.bool(*v),
        OwnedValue::Uint8(v) => w.uint(u64::from(*v)),
        OwnedValue::Uint16(v) => w.uint(u64::from(*v)),
        OwnedValue::Uint32(v) => w.uint(u64::from(*v)),
        OwnedValue::Uint64(v) => w.uint(*v),
        OwnedValue::Int(v) => w.int(i64::from(*v)),
        OwnedValue::Float(v) => w.float(*v),
        OwnedValue::String(text) => w.string(text),
        OwnedValue::Tlv8(bytes) | OwnedValue::Data(bytes) => w.base64(bytes),
    }
}

/// Which optional fields a characteristic object carries.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Fields {
    pub kind: bool,
    pub perms: bool,
    pub meta: bool,
    /// Whether the connection is subscribed, when asked.
    pub ev: Option<bool>,
}

/// Writes the fields after `iid` (and `value`): type, permissions, metadata and `ev`.
pub(crate) fn descriptive_fields(
    w: &mut JsonWriter<'_>,
    def: &CharacteristicDef<'_>,
    fields: Fields,
) -> Result<(), Full> {
    if fields.kind {
        w.raw(",")?;
        w.key("type")?;
        hap_type(w, def)?;
    }
    if fields.perms {
        w.raw(",")?;
        w.key("perms")?;
        w.raw("[")?;
        for (n, name) in def.perms.iter_names().enumerate() {
            if n > 0 {
                w.raw(",")?;
            }
            w.string(name)?;
        }
        w.raw("]")?;
    }
    if let Some(ev) = fields.ev {
        w.raw(",")?;
        w.key("ev")?;
        w.bool(ev)?;
    }
    if fields.meta {
        meta(w, def)?;
    }
    Ok(())
}

fn hap_type(w: &mut JsonWriter<'_>, def: &CharacteristicDef<'_>) -> Result<(), Full> {
    use core::fmt::Write as _;
    w.raw("\"")?;
    write!(w, "{}", def.kind.uuid).map_err(|_| Full)?;
    w.raw("\"")
}

fn meta(w: &mut JsonWriter<'_>, def: &CharacteristicDef<'_>) -> Result<(), Full> {
    let c = &def.constraints;
    w.raw(",")?;
    w.key("format")?;
    w.string(def.kind.format.as_str())?;
    if let Some(description) = def.description {
        w.raw(",")?;
        w.key("description")?;
        w.string(description)?;
    }
    if let Some(unit) = def.unit {
        w.raw(",")?;
        w.key("unit")?;
        w.string(unit.as_str())?;
    }
    for (key, number) in [
        ("minValue", c.min_value),
        ("maxValue", c.max_value),
        ("minStep", c.min_step),
    ] {
        if let Some(number) = number {
            w.raw(",")?;
            w.key(key)?;
            w.float(number)?;
        }
    }
    if def.kind.format == Format::String && c.max_len != crate::catalog::value::DEFAULT_MAX_LEN {
        w.raw(",")?;
        w.key("maxLen")?;
        w.uint(u64::from(c.max_len))?;
    }
    if def.kind.format == Format::Data
        && c.max_data_len != crate::catalog::value::DEFAULT_MAX_DATA_LEN
    {
        w.raw(",")?;
        w.key("maxDataLen")?;
        w.uint(u64::from(c.max_data_len))?;
    }
    if !c.valid_values.is_empty() {
        w.raw(",")?;
        w.key("valid-values")?;
        w.raw("[")?;
        for (n, v) in c.valid_values.iter().enumerate() {
            if n > 0 {
                w.raw(",")?;
            }
            w.uint(u64::from(*v))?;
        }
        w.raw("]")?;
    }
    if let Some((low, high)) = c.valid_values_range {
        w.raw(",")?;
        w.key("valid-values-range")?;
        w.raw("[")?;
        w.uint(u64::from(low))?;
        w.raw(",")?;
        w.uint(u64::from(high))?;
        w.raw("]")?;
    }
    Ok(())
}

/// Where `/accessories` streaming stands: the next piece, and the slot of the next
/// characteristic.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct AccessoriesCursor {
    pub piece: usize,
    pub slot: usize,
}

/// Writes the next piece of the `/accessories` document and advances the cursor, or
/// returns `Ok(false)` when the document is complete. Piece 0 opens the document, piece
/// `n` is entry `n - 1` (closing what came before it), and the last closes everything.
pub(crate) fn accessories_piece(
    w: &mut JsonWriter<'_>,
    db: &Database<'_>,
    subscribed: impl Fn(usize) -> bool,
    cursor: &mut AccessoriesCursor,
) -> Result<bool, Full> {
    let entries = db.entries();
    let index = cursor.piece;
    if index == 0 {
        w.raw("{\"accessories\":[")?;
    } else if index == entries.len() + 1 {
        // Close the characteristics, service, services, accessory, accessories, root.
        w.raw("]}]}]}")?;
    } else if index > entries.len() + 1 {
        return Ok(false);
    } else {
        let previous = (index >= 2).then(|| &entries[index - 2]);
        match &entries[index - 1] {
            Entry::Accessory(aid) => {
                if previous.is_some() {
                    w.raw("]}]},")?;
                }
                w.raw("{\"aid\":")?;
                w.uint(*aid)?;
                w.raw(",\"services\":[")?;
            }
            Entry::Service(service) => {
                if !matches!(previous, Some(Entry::Accessory(_))) {
                    w.raw("]},")?;
                }
                w.raw("{\"iid\":")?;
                w.uint(service.iid)?;
                w.raw(",\"type\":\"")?;
                {
                    use core::fmt::Write as _;
                    write!(w, "{}", service.kind.uuid).map_err(|_| Full)?;
                }
                w.raw("\",\"primary\":")?;
                w.bool(service.primary)?;
                w.raw(",\"hidden\":")?;
                w.bool(service.hidden)?;
                w.raw(",\"linked\":[")?;
                for (n, linked) in service.linked.iter().enumerate() {
                    if n > 0 {
                        w.raw(",")?;
                    }
                    w.uint(*linked)?;
                }
                w.raw("],\"characteristics\":[")?;
            }
            Entry::Characteristic(def) => {
                if matches!(previous, Some(Entry::Characteristic(_))) {
                    w.raw(",")?;
                }
                w.raw("{\"iid\":")?;
                w.uint(def.iid)?;
                if def.perms.contains(Perms::READ) {
                    w.raw(",\"value\":")?;
                    value(w, def, &db.slot(cursor.slot).value)?;
                }
                let fields = Fields {
                    kind: true,
                    perms: true,
                    meta: true,
                    ev: def
                        .perms
                        .contains(Perms::EVENTS)
                        .then(|| subscribed(cursor.slot)),
                };
                descriptive_fields(w, def, fields)?;
                w.raw("}")?;
                cursor.slot += 1;
            }
        }
    }
    cursor.piece += 1;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_match_homekitadk() {
        assert_eq!(HapStatus::Success.code(), 0);
        assert_eq!(HapStatus::InsufficientPrivileges.code(), -70401);
        assert_eq!(HapStatus::OperationTimedOut.code(), -70408);
        assert_eq!(HapStatus::InsufficientAuthorization.code(), -70411);
        for byte in 0..12 {
            assert_eq!(HapStatus::from_byte(byte) as u8, byte);
        }
    }
}
