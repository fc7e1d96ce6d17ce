use super::*;
use crate::catalog::{characteristic as c, service as s};

/// A light written out by hand, as a no-alloc user would.
fn light_entries() -> [Entry<'static>; 10] {
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
    ]
}

#[test]
fn a_hand_written_database_needs_no_heap() {
    let entries = light_entries();
    let mut slots = [Slot::EMPTY; 7];
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
    entries.push(Entry::Characteristic(CharacteristicDef::new(
        10,
        &c::BRIGHTNESS,
    )));
    let mut db = Database::new(entries, std::vec![Slot::EMPTY; 8]).unwrap();
    assert_eq!(db.set(1, 10, OwnedValue::Int(100)), Ok(true));
    assert_eq!(
        db.set(1, 10, OwnedValue::Int(101)),
        Err(SetValueError::Invalid(ValueError::OutOfRange))
    );
    assert_eq!(
        db.set(1, 10, OwnedValue::Float(50.0)),
        Err(SetValueError::Invalid(ValueError::WrongType))
    );
    assert_eq!(db.get(1, 10), Some(&OwnedValue::Int(100)), "unchanged");
    assert!(matches!(
        db.set(1, 5, OwnedValue::string("Lamp!").unwrap()),
        Err(SetValueError::Name(_))
    ));
}

// Tables built at run time need `Vec`.
#[cfg(feature = "alloc")]
#[test]
fn bad_shapes_are_refused_with_the_reason() {
    let check = |entries: std::vec::Vec<Entry<'static>>| {
        let slots = entries
            .iter()
            .filter(|e| matches!(e, Entry::Characteristic(_)))
            .map(|_| Slot::EMPTY)
            .collect::<std::vec::Vec<_>>();
        Database::new(entries, slots).err()
    };
    let light = || std::vec::Vec::from(light_entries());

    assert_eq!(check(std::vec![]), Some(DatabaseError::NoAccessory));
    let mut twice = light();
    twice.push(Entry::Characteristic(CharacteristicDef::new(
        9,
        &c::BRIGHTNESS,
    )));
    assert_eq!(check(twice), Some(DatabaseError::BadIid { aid: 1, iid: 9 }));

    let mut no_on = light();
    no_on.pop();
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
    let mut wide = CharacteristicDef::new(10, &c::NAME);
    wide.constraints.max_len = 257;
    long.push(Entry::Characteristic(wide));
    assert_eq!(
        check(long),
        Some(DatabaseError::MaxLenTooLarge { aid: 1, iid: 10 })
    );

    let mut too_many = std::vec::Vec::new();
    for aid in 1..=151 {
        let mut accessory = light();
        accessory[0] = Entry::Accessory(aid);
        too_many.extend(accessory);
    }
    assert_eq!(check(too_many), Some(DatabaseError::TooManyAccessories));

    let entries = light_entries();
    let mut slots = [Slot::EMPTY; 6];
    assert_eq!(
        Database::new(&entries[..], &mut slots[..]).err(),
        Some(DatabaseError::SlotCount {
            expected: 7,
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
