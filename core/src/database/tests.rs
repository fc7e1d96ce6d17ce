use super::*;
use crate::catalog::{characteristic as c, service as s};

/// A light written out by hand, as a no-alloc user would, with the Protocol Information
/// service that iOS expects on the primary accessory last.
fn light_entries() -> [Entry<'static>; 12] {
    [
        Entry::Accessory(1),
        Entry::Service(ServiceDef::new(1, &s::ACCESSORY_INFORMATION)),
        Entry::Characteristic(CharacteristicDef::new(2, &c::IDENTIFY)),
        Entry::Characteristic(CharacteristicDef::new(3, &c::MANUFACTURER)),
        Entry::Characteristic(CharacteristicDef::new(4, &c::MODEL)),
        Entry::Characteristic(CharacteristicDef::new(5, &c::NAME)),
        Entry::Characteristic(CharacteristicDef::new(6, &c::SERIAL_NUMBER)),
        Entry::Characteristic(CharacteristicDef::new(7, &c::FIRMWARE_REVISION)),
        Entry::Service(ServiceDef::new(8, &s::LIGHTBULB)),
        Entry::Characteristic(CharacteristicDef::new(9, &c::ON)),
        Entry::Service(ServiceDef::new(10, &s::PROTOCOL_INFORMATION)),
        Entry::Characteristic(CharacteristicDef::new(11, &c::VERSION)),
    ]
}

/// The light's entries without its Protocol Information service, for another accessory
/// of a bridge.
#[cfg(feature = "alloc")]
fn bridged_light(aid: u64) -> std::vec::Vec<Entry<'static>> {
    let mut entries = std::vec::Vec::from(light_entries());
    entries.truncate(10);
    entries[0] = Entry::Accessory(aid);
    entries
}

/// The slots for `entries`, and the error `Database::new` gives for them, if any.
#[cfg(feature = "alloc")]
fn refusal(entries: std::vec::Vec<Entry<'static>>) -> Option<DatabaseError> {
    let slots = entries
        .iter()
        .filter(|e| matches!(e, Entry::Characteristic(_)))
        .map(|_| Slot::EMPTY)
        .collect::<std::vec::Vec<_>>();
    Database::new(entries, slots).err()
}

#[test]
fn a_hand_written_database_needs_no_heap() {
    let entries = light_entries();
    let mut slots = [Slot::EMPTY; 8];
    let mut db = Database::new(&entries[..], &mut slots[..]).unwrap();
    assert_eq!(db.get(1, 9), Some(&OwnedValue::Bool(false)));
    assert_eq!(
        db.get(1, 5),
        Some(&OwnedValue::String(heapless::String::new()))
    );
    assert_eq!(db.set(1, 9, OwnedValue::Bool(true)), Ok(true));
    assert_eq!(db.set(1, 9, OwnedValue::Bool(true)), Ok(false), "no change");
    assert_eq!(db.get(1, 9), Some(&OwnedValue::Bool(true)));
    assert_eq!(
        db.set(1, 99, OwnedValue::Bool(true)),
        Err(SetValueError::NotFound)
    );
}

// Tables built at run time need `Vec`.
#[cfg(feature = "alloc")]
#[test]
fn values_are_rejected_not_clamped() {
    use crate::catalog::value::ValueError;
    let mut entries = std::vec::Vec::from(light_entries());
    // After On, in the lightbulb.
    entries.insert(
        10,
        Entry::Characteristic(CharacteristicDef::new(12, &c::BRIGHTNESS)),
    );
    let mut db = Database::new(entries, std::vec![Slot::EMPTY; 9]).unwrap();
    assert_eq!(db.set(1, 12, OwnedValue::Int(100)), Ok(true));
    assert_eq!(
        db.set(1, 12, OwnedValue::Int(101)),
        Err(SetValueError::Invalid(ValueError::OutOfRange))
    );
    assert_eq!(
        db.set(1, 12, OwnedValue::Float(50.0)),
        Err(SetValueError::Invalid(ValueError::WrongType))
    );
    assert_eq!(db.get(1, 12), Some(&OwnedValue::Int(100)), "unchanged");
    assert!(matches!(
        db.set(1, 5, OwnedValue::string("Lamp!").unwrap()),
        Err(SetValueError::Name(_))
    ));
}

// Tables built at run time need `Vec`.
#[cfg(feature = "alloc")]
#[test]
fn bad_shapes_are_refused_with_the_reason() {
    let check = refusal;
    let light = || std::vec::Vec::from(light_entries());

    assert_eq!(check(std::vec![]), Some(DatabaseError::NoAccessory));
    let mut twice = light();
    twice.push(Entry::Characteristic(CharacteristicDef::new(
        9,
        &c::BRIGHTNESS,
    )));
    assert_eq!(check(twice), Some(DatabaseError::BadIid { aid: 1, iid: 9 }));

    let mut no_on = light();
    no_on.remove(9);
    assert_eq!(
        check(no_on),
        Some(DatabaseError::MissingCharacteristic {
            aid: 1,
            service: 8,
            required: "On"
        })
    );

    let mut no_info = light();
    no_info.drain(1..8);
    assert_eq!(
        check(no_info),
        Some(DatabaseError::NoAccessoryInformation(1))
    );

    let mut bad_link = light();
    if let Entry::Service(bulb) = &mut bad_link[8] {
        bulb.linked = Table::Borrowed(&[3]);
    }
    assert_eq!(
        check(bad_link),
        Some(DatabaseError::BadLink {
            aid: 1,
            service: 8,
            linked: 3
        })
    );

    let mut long = light();
    let mut wide = CharacteristicDef::new(12, &c::NAME);
    wide.constraints.max_len = 257;
    long.push(Entry::Characteristic(wide));
    assert_eq!(
        check(long),
        Some(DatabaseError::MaxLenTooLarge { aid: 1, iid: 12 })
    );

    let mut too_many = light();
    for aid in 2..=151 {
        too_many.extend(bridged_light(aid));
    }
    assert_eq!(check(too_many), Some(DatabaseError::TooManyAccessories));

    let entries = light_entries();
    let mut slots = [Slot::EMPTY; 6];
    assert_eq!(
        Database::new(&entries[..], &mut slots[..]).err(),
        Some(DatabaseError::SlotCount {
            expected: 8,
            given: 6
        })
    );
}

// Tables built at run time need `Vec`.
#[cfg(feature = "alloc")]
#[test]
fn the_builder_adds_required_characteristics_and_checks_names() {
    use super::builder::{AccessoryInfo, BuildError, DatabaseBuilder};
    use super::ids::IdMap;

    let mut ids = IdMap::new();
    let mut builder = DatabaseBuilder::new(&mut ids);
    let aid = builder.accessory(
        "lamp",
        &AccessoryInfo::new("Desk Lamp", "Acme", "L1", "1", "1.0"),
    );
    let bulb = builder
        .service(&s::LIGHTBULB)
        .primary()
        .configure(&c::BRIGHTNESS, |def| def.with_range(10.0, 90.0))
        .value(&c::BRIGHTNESS, OwnedValue::Int(50));
    let (bulb_iid, brightness) = (bulb.iid(), bulb.iid_of(&c::BRIGHTNESS).unwrap());
    let db = builder.build().unwrap();
    assert_eq!(aid, 1);
    assert_eq!(bulb_iid, 8, "after the information service's seven ids");
    assert_eq!(db.get(1, brightness), Some(&OwnedValue::Int(50)));
    assert_eq!(
        db.get(1, 5),
        Some(&OwnedValue::string("Desk Lamp").unwrap()),
        "the name"
    );
    let on = db.find(1, 9).unwrap();
    assert_eq!(db.definition(on).kind.name, "On");
    assert_eq!(
        db.definition(db.find(1, brightness).unwrap())
            .constraints
            .max_value,
        Some(90.0)
    );

    let mut ids = IdMap::new();
    let mut builder = DatabaseBuilder::new(&mut ids);
    builder.accessory(
        "lamp",
        &AccessoryInfo::new("Lamp (2)", "Acme", "L1", "1", "1.0"),
    );
    assert!(matches!(
        builder.build(),
        Err(BuildError::Value {
            aid: 1,
            iid: 5,
            error: SetValueError::Name(_)
        })
    ));
}

#[cfg(feature = "alloc")]
#[test]
fn long_subtypes_in_any_script_keep_their_ids_apart() {
    use super::builder::{AccessoryInfo, DatabaseBuilder};
    use super::ids::IdMap;
    let mut ids = IdMap::new();
    let mut builder = DatabaseBuilder::new(&mut ids);
    builder.accessory(
        "strip",
        &AccessoryInfo::new("Strip", "Acme", "S", "1", "1.0"),
    );
    let shared = "é".repeat(40);
    let first = builder
        .service_with_subtype(&s::OUTLET, &std::format!("{shared}1"))
        .iid_of(&c::ON);
    let second = builder
        .service_with_subtype(&s::OUTLET, &std::format!("{shared}2"))
        .iid_of(&c::ON);
    assert_ne!(first, second);
    assert!(builder.build().is_ok());
}

// ---------------------------------------------------------------------------------------
// The rules iOS (and HomeKitADK) apply to every database.

#[cfg(feature = "alloc")]
#[test]
fn primary_accessory_must_have_aid_1() {
    let mut second = std::vec::Vec::from(light_entries());
    second[0] = Entry::Accessory(2);
    assert_eq!(refusal(second), Some(DatabaseError::PrimaryAid(2)));

    // A bridge whose bridged accessory comes first, with aid 1 later.
    let mut swapped = bridged_light(2);
    swapped.extend(light_entries());
    assert_eq!(refusal(swapped), Some(DatabaseError::PrimaryAid(2)));

    let mut bridge = std::vec::Vec::from(light_entries());
    bridge.extend(bridged_light(2));
    assert_eq!(
        refusal(bridge),
        None,
        "aid 1 first, then a bridged accessory"
    );
    assert_eq!(
        std::format!("{}", DatabaseError::PrimaryAid(2)),
        "the primary (first) accessory has aid 2; HomeKit requires aid 1"
    );
}

#[cfg(feature = "alloc")]
#[test]
fn accessory_information_must_be_first_at_iid_1() {
    // At iid 12 instead of 1.
    let mut elsewhere = std::vec::Vec::from(light_entries());
    elsewhere[1] = Entry::Service(ServiceDef::new(12, &s::ACCESSORY_INFORMATION));
    assert_eq!(
        refusal(elsewhere),
        Some(DatabaseError::NoAccessoryInformation(1))
    );

    // Second, after the lightbulb, even with iid 1.
    let light = light_entries();
    let mut second = std::vec![
        Entry::Accessory(1),
        Entry::Service(ServiceDef::new(8, &s::LIGHTBULB)),
        Entry::Characteristic(CharacteristicDef::new(9, &c::ON)),
    ];
    second.extend_from_slice(&light[1..8]);
    second.extend_from_slice(&light[10..]);
    assert_eq!(
        refusal(second),
        Some(DatabaseError::NoAccessoryInformation(1))
    );

    // A bridged accessory is held to the same rule.
    let mut bridge = std::vec::Vec::from(light_entries());
    let mut bridged = bridged_light(2);
    bridged.drain(1..8);
    bridge.extend(bridged);
    assert_eq!(
        refusal(bridge),
        Some(DatabaseError::NoAccessoryInformation(2))
    );
}

#[cfg(feature = "alloc")]
#[test]
fn protocol_information_is_required_and_its_version_fixed() {
    let mut without = std::vec::Vec::from(light_entries());
    without.truncate(10);
    assert_eq!(refusal(without), Some(DatabaseError::NoProtocolInformation));

    let mut no_version = std::vec::Vec::from(light_entries());
    no_version.pop();
    assert_eq!(
        refusal(no_version),
        Some(DatabaseError::MissingCharacteristic {
            aid: 1,
            service: 10,
            required: "Version"
        })
    );

    // Only the primary accessory needs it.
    let mut bridge = std::vec::Vec::from(light_entries());
    bridge.extend(bridged_light(2));
    assert_eq!(refusal(bridge), None);

    let entries = light_entries();
    let mut slots = [Slot::EMPTY; 8];
    let mut db = Database::new(&entries[..], &mut slots[..]).unwrap();
    assert_eq!(
        db.get(1, 11),
        Some(&OwnedValue::string("1.1.0").unwrap()),
        "filled in by the database"
    );
    assert_eq!(
        db.set(1, 11, OwnedValue::string("1.0").unwrap()),
        Err(SetValueError::ProtocolVersion)
    );
    assert_eq!(
        db.set(1, 11, OwnedValue::string("1.1.0").unwrap()),
        Ok(false)
    );
}

#[cfg(feature = "alloc")]
#[test]
fn protocol_information_is_added() {
    use super::builder::{AccessoryInfo, DatabaseBuilder};
    use super::ids::IdMap;

    let mut ids = IdMap::new();
    let mut builder = DatabaseBuilder::new(&mut ids);
    builder.accessory(
        "lamp",
        &AccessoryInfo::new("Lamp", "Acme", "L1", "01", "1.0"),
    );
    builder.service(&s::LIGHTBULB).primary();
    let db = builder.build().unwrap();
    let services: std::vec::Vec<_> = db
        .entries()
        .iter()
        .filter_map(|e| match e {
            Entry::Service(s) => Some((s.iid, s.kind.name)),
            _ => None,
        })
        .collect();
    assert_eq!(
        services,
        [
            (1, "AccessoryInformation"),
            (8, "Lightbulb"),
            (10, "ProtocolInformation")
        ],
        "appended, with the next ids"
    );
    assert_eq!(db.characteristic(1, 11).unwrap().kind.name, "Version");
    assert_eq!(db.get(1, 11), Some(&OwnedValue::string("1.1.0").unwrap()));

    // On a bridge, only the bridge gets it, and bridged accessories keep their ids.
    let mut ids = IdMap::new();
    let mut builder = DatabaseBuilder::new(&mut ids);
    builder.accessory(
        "bridge",
        &AccessoryInfo::new("Bridge", "Acme", "B1", "01", "1.0"),
    );
    let lamp = builder.accessory(
        "lamp",
        &AccessoryInfo::new("Lamp", "Acme", "L1", "02", "1.0"),
    );
    let on = builder.service(&s::LIGHTBULB).iid_of(&c::ON);
    let db = builder.build().unwrap();
    assert_eq!((lamp, on), (2, Some(9)));
    let a2: std::vec::Vec<_> = db
        .entries()
        .iter()
        .filter(|e| matches!(e, Entry::Service(s) if s.kind.uuid == s::PROTOCOL_INFORMATION.uuid))
        .collect();
    assert_eq!(a2.len(), 1);
    assert!(db.characteristic(1, 9).is_some(), "the bridge's Version");
    assert!(db.characteristic(2, 9).is_some(), "the lamp's On");

    // An application that adds it itself gets it once, where it put it.
    let mut ids = IdMap::new();
    let mut builder = DatabaseBuilder::new(&mut ids);
    builder.accessory(
        "lamp",
        &AccessoryInfo::new("Lamp", "Acme", "L1", "01", "1.0"),
    );
    let version = builder
        .service(&s::PROTOCOL_INFORMATION)
        .iid_of(&c::VERSION);
    builder.service(&s::LIGHTBULB).primary();
    let db = builder.build().unwrap();
    assert_eq!(version, Some(9));
    assert_eq!(db.get(1, 9), Some(&OwnedValue::string("1.1.0").unwrap()));
    assert_eq!(db.entries().len(), 12);
}

#[cfg(feature = "alloc")]
#[test]
fn ids_stored_before_protocol_information_stay_as_they_were() {
    use super::builder::{AccessoryInfo, DatabaseBuilder};
    use super::ids::IdMap;

    let build = |ids: &mut IdMap| {
        let mut builder = DatabaseBuilder::new(ids);
        builder.accessory(
            "lamp",
            &AccessoryInfo::new("Lamp", "Acme", "L1", "01", "1.0"),
        );
        builder
            .service(&s::LIGHTBULB)
            .primary()
            .characteristic(&c::BRIGHTNESS);
        builder.build().unwrap()
    };
    let mut now = IdMap::new();
    let fresh = build(&mut now);

    // The map as a release before Protocol Information stored it: the same ids for
    // everything else, and 11 as the next iid.
    let mut accessories = now.accessories.clone();
    accessories[0]
        .instances
        .retain(|(key, _)| key.service != s::PROTOCOL_INFORMATION.uuid);
    accessories[0].next_iid = 11;
    let mut stored = IdMap::from_parts(now.next_aid, accessories);
    let upgraded = build(&mut stored);
    assert!(stored.take_changed(), "the new ids are to be stored");

    let ids = |db: &Database<'_>| -> std::vec::Vec<(u64, &'static str)> {
        db.entries()
            .iter()
            .filter_map(|e| match e {
                Entry::Service(s) => Some((s.iid, s.kind.name)),
                Entry::Characteristic(c) => Some((c.iid, c.kind.name)),
                Entry::Accessory(_) => None,
            })
            .collect()
    };
    let (before, after) = (ids(&fresh), ids(&upgraded));
    assert_eq!(before.len(), after.len());
    assert_eq!(before[..before.len() - 2], after[..after.len() - 2]);
    assert_eq!(
        after[after.len() - 2..],
        [(11, "ProtocolInformation"), (12, "Version")]
    );
    assert_eq!(
        before[7..],
        [
            (8, "Lightbulb"),
            (9, "On"),
            (10, "Brightness"),
            (11, "ProtocolInformation"),
            (12, "Version")
        ]
    );

    // And the next start changes nothing.
    let again = build(&mut stored);
    assert!(!stored.take_changed());
    assert_eq!(ids(&again), after);
}

#[cfg(feature = "alloc")]
#[test]
fn firmware_revision_must_be_numeric_dotted_when_built_or_set() {
    use super::builder::{AccessoryInfo, BuildError, DatabaseBuilder};
    use super::ids::IdMap;

    let mut ids = IdMap::new();
    let mut builder = DatabaseBuilder::new(&mut ids);
    builder.accessory(
        "lamp",
        &AccessoryInfo::new("Lamp", "Acme", "L1", "01", "1.0-3"),
    );
    builder.service(&s::LIGHTBULB).primary();
    let error = builder.build().unwrap_err();
    let BuildError::Value {
        aid: 1,
        iid: 7,
        error: SetValueError::FirmwareRevision(revision),
    } = error
    else {
        panic!("{error:?}");
    };
    assert_eq!(revision.value(), "1.0-3");
    assert!(std::format!("{error}").contains("\"1.0-3\" is not x[.y[.z]]"));

    let entries = light_entries();
    let mut slots = [Slot::EMPTY; 8];
    let mut db = Database::new(&entries[..], &mut slots[..]).unwrap();
    assert!(matches!(
        db.set(1, 7, OwnedValue::string("2.0b").unwrap()),
        Err(SetValueError::FirmwareRevision(_))
    ));
    assert_eq!(db.set(1, 7, OwnedValue::string("2.0.1").unwrap()), Ok(true));
}

#[cfg(feature = "alloc")]
#[test]
fn config_number_goes_up_with_firmware_revision() {
    use super::builder::{AccessoryInfo, DatabaseBuilder};
    use super::config::ConfigNumber;
    use super::ids::IdMap;

    let mut ids = IdMap::new();
    let mut build = |firmware: &str| {
        let mut builder = DatabaseBuilder::new(&mut ids);
        builder.accessory(
            "lamp",
            &AccessoryInfo::new("Lamp", "Acme", "L1", "01", firmware),
        );
        builder.service(&s::LIGHTBULB).primary();
        builder.build().unwrap()
    };
    let mut config = ConfigNumber::default();
    assert!(config.observe(build("1.0").shape()));
    assert_eq!(config.number, 1);
    assert!(!config.observe(build("1.0").shape()), "a restart");
    assert!(config.observe(build("1.1").shape()), "a firmware update");
    assert_eq!(config.number, 2);
    assert!(!config.observe(build("1.1").shape()));

    // Other values are not part of it.
    let mut db = build("1.1");
    db.set(1, 9, OwnedValue::Bool(true)).unwrap();
    assert!(!config.observe(db.shape()));
    // A firmware revision set at run time counts too.
    db.set(1, 7, OwnedValue::string("1.2").unwrap()).unwrap();
    assert!(config.observe(db.shape()));
    assert_eq!(config.number, 3);

    // The wrap is kept: 65535 goes to 1.
    let mut config = ConfigNumber {
        number: u16::MAX,
        ..config
    };
    assert!(config.observe(build("1.3").shape()));
    assert_eq!(config.number, 1);
}
