//! The test accessory that the server's scenario tests and the fuzz harness share: a
//! light with a button, an on-demand thermometer and two vendor characteristics.

use crate::catalog::{characteristic as c, service as s, CharacteristicType, Format, HapType};
use crate::catalog::{Perms, ServiceType};
use crate::database::builder::{AccessoryInfo, DatabaseBuilder};

/// A vendor service holding the two characteristics below.
pub(crate) const VENDOR: ServiceType = ServiceType {
    name: "Vendor",
    uuid: HapType::Custom([
        0xE8, 0x63, 0x00, 0x01, 0x5C, 0x13, 0x4E, 0x0B, 0x9A, 0x3C, 0x11, 0x22, 0x33, 0x44, 0x55,
        0x66,
    ]),
    required: &[],
    optional: &[],
};

/// A vendor characteristic of the tests' own UUID family, told apart by `number`:
/// readable, writable and evented, with no limits. Narrow it with `..vendor(..)`.
// Only the scenario tests define characteristics of their own.
#[cfg(test)]
pub(crate) const fn vendor(name: &'static str, number: u8, format: Format) -> CharacteristicType {
    CharacteristicType {
        name,
        uuid: HapType::Custom([
            0xE8, 0x63, 0x00, number, 0x5C, 0x13, 0x4E, 0x0B, 0x9A, 0x3C, 0x11, 0x22, 0x33, 0x44,
            0x55, 0x66,
        ]),
        format,
        perms: Perms::READ.union(Perms::WRITE).union(Perms::EVENTS),
        admin_only: Perms::empty(),
        unit: None,
        min_value: None,
        max_value: None,
        min_step: None,
        valid_values: &[],
        max_len: None,
    }
}

/// A vendor characteristic that only takes timed writes.
pub(crate) const VAULT_DOOR: CharacteristicType = CharacteristicType {
    name: "VaultDoor",
    uuid: HapType::Custom([
        0xE8, 0x63, 0x00, 0x02, 0x5C, 0x13, 0x4E, 0x0B, 0x9A, 0x3C, 0x11, 0x22, 0x33, 0x44, 0x55,
        0x66,
    ]),
    format: Format::Uint8,
    perms: Perms::READ
        .union(Perms::WRITE)
        .union(Perms::TIMED_WRITE)
        .union(Perms::EVENTS),
    admin_only: Perms::empty(),
    unit: None,
    min_value: Some(0.0),
    max_value: Some(1.0),
    min_step: Some(1.0),
    valid_values: &[],
    max_len: None,
};

/// A vendor control point that answers writes.
pub(crate) const CONTROL_POINT: CharacteristicType = CharacteristicType {
    name: "ControlPoint",
    uuid: HapType::Custom([
        0xE8, 0x63, 0x00, 0x03, 0x5C, 0x13, 0x4E, 0x0B, 0x9A, 0x3C, 0x11, 0x22, 0x33, 0x44, 0x55,
        0x66,
    ]),
    format: Format::Tlv8,
    perms: Perms::READ.union(Perms::WRITE).union(Perms::WRITE_RESPONSE),
    admin_only: Perms::empty(),
    unit: None,
    min_value: None,
    max_value: None,
    min_step: None,
    valid_values: &[],
    max_len: None,
};

/// The `(aid, iid)` of the gadget's characteristics, as [`add_gadget`] checks them.
pub(crate) mod ids {
    pub(crate) const ON: (u64, u64) = (1, 9);
    pub(crate) const BRIGHTNESS: (u64, u64) = (1, 10);
    pub(crate) const SWITCH_EVENT: (u64, u64) = (1, 12);
    pub(crate) const TEMPERATURE: (u64, u64) = (1, 14);
    pub(crate) const VAULT: (u64, u64) = (1, 16);
    pub(crate) const CONTROL: (u64, u64) = (1, 17);
}

/// Adds the gadget as accessory 1, checking that its ids are those of [`ids`].
pub(crate) fn add_gadget(builder: &mut DatabaseBuilder<'_>) {
    use ids::*;
    builder.accessory(
        "gadget",
        &AccessoryInfo::new("Gadget", "Acme", "G1", "7", "1.0"),
    );
    let bulb = builder
        .service(&s::LIGHTBULB)
        .primary()
        .characteristic(&c::BRIGHTNESS);
    assert_eq!(bulb.iid_of(&c::ON), Some(ON.1));
    assert_eq!(bulb.iid_of(&c::BRIGHTNESS), Some(BRIGHTNESS.1));
    let button = builder.service(&s::STATELESS_PROGRAMMABLE_SWITCH);
    assert_eq!(
        button.iid_of(&c::PROGRAMMABLE_SWITCH_EVENT),
        Some(SWITCH_EVENT.1)
    );
    let sensor = builder
        .service(&s::TEMPERATURE_SENSOR)
        .configure(&c::CURRENT_TEMPERATURE, |def| def.on_demand());
    assert_eq!(sensor.iid_of(&c::CURRENT_TEMPERATURE), Some(TEMPERATURE.1));
    let vendor = builder
        .service(&VENDOR)
        .characteristic(&VAULT_DOOR)
        .characteristic(&CONTROL_POINT);
    assert_eq!(vendor.iid_of(&VAULT_DOOR), Some(VAULT.1));
    assert_eq!(vendor.iid_of(&CONTROL_POINT), Some(CONTROL.1));
}

/// A database holding only the gadget.
#[cfg(test)]
pub(crate) fn gadget() -> crate::database::Database<'static> {
    let mut ids = crate::database::ids::IdMap::new();
    let mut builder = DatabaseBuilder::new(&mut ids);
    add_gadget(&mut builder);
    builder.build().expect("the gadget is valid")
}
