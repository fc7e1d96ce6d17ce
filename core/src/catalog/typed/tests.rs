use std::format;

use super::*;
use crate::catalog::characteristic as c;
use crate::catalog::value::Constraints;

/// Every format but `format`'s, as a value of it.
fn other_formats(format: Format) -> impl Iterator<Item = OwnedValue> {
    [
        OwnedValue::Bool(true),
        OwnedValue::Uint8(1),
        OwnedValue::Uint16(1),
        OwnedValue::Uint32(1),
        OwnedValue::Uint64(1),
        OwnedValue::Int(1),
        OwnedValue::Float(1.0),
        OwnedValue::string("1").unwrap(),
        OwnedValue::tlv8(&[1]).unwrap(),
        OwnedValue::data(&[1]).unwrap(),
    ]
    .into_iter()
    .filter(move |value| value.format() != format)
}

/// The checks every generated enum must pass; `EVERY_ENUM` runs it for each.
pub(super) fn check_named_value<E: NamedValue>() {
    let kind = E::CHARACTERISTIC;
    assert_eq!(E::FORMAT, kind.format, "{}", kind.name);
    // Every named value is a valid value, and every valid value is named.
    let values: std::vec::Vec<u32> = E::ALL.iter().map(|v| v.to_u32()).collect();
    assert_eq!(values, kind.valid_values, "{}", kind.name);
    for &variant in E::ALL {
        let owned = variant.into_owned();
        assert_eq!(owned.format(), kind.format, "{}", kind.name);
        assert_eq!(E::from_owned(&owned), Some(variant), "{}", kind.name);
        assert_eq!(E::from_u32(variant.to_u32()), Some(variant));
        // The database takes the value as a controller's write would be taken.
        let mut checked = owned.clone();
        assert_eq!(
            checked.check(&Constraints::of(kind)),
            Ok(()),
            "{}",
            kind.name
        );
        assert_eq!(checked, owned);
    }
    let beyond = kind.valid_values.iter().max().map_or(0, |max| max + 1);
    assert_eq!(E::from_u32(beyond), None, "{}", kind.name);
    for wrong in other_formats(kind.format) {
        assert_eq!(E::from_owned(&wrong), None, "{} from {wrong:?}", kind.name);
    }
}

#[test]
fn every_enum_names_exactly_its_valid_values() {
    for check in EVERY_ENUM {
        check();
    }
    let enums = crate::catalog::CHARACTERISTICS
        .iter()
        .filter(|c| !c.valid_values.is_empty())
        .count();
    // Every characteristic with valid values but the three partly named.
    assert_eq!(EVERY_ENUM.len(), enums - 3);
}

#[test]
fn door_states_convert_both_ways() {
    assert_eq!(TargetDoorState::try_from(1u8), Ok(TargetDoorState::Closed));
    assert_eq!(TargetDoorState::try_from(1u32), Ok(TargetDoorState::Closed));
    assert_eq!(u8::from(CurrentDoorState::Stopped), 4);
    assert_eq!(CurrentDoorState::Opening.value(), 2);
    let unknown = TargetDoorState::try_from(2u8).unwrap_err();
    assert_eq!(
        unknown,
        UnknownValue {
            characteristic: "TargetDoorState",
            value: 2
        }
    );
    assert_eq!(
        format!("{unknown}"),
        "2 is not a valid value of TargetDoorState"
    );
    assert_eq!(
        TargetDoorState::try_from(256u32).map_err(|e| e.value),
        Err(256)
    );
    assert_eq!(
        TargetDoorState::from_owned(&OwnedValue::Uint8(0)),
        Some(TargetDoorState::Open)
    );
    assert_eq!(TargetDoorState::from_owned(&OwnedValue::Uint8(7)), None);
}

#[test]
fn int_enum_uses_its_format() {
    assert_eq!(RotationDirection::FORMAT, Format::Int);
    assert_eq!(
        RotationDirection::CounterClockwise.into_owned(),
        OwnedValue::Int(1)
    );
    assert_eq!(
        RotationDirection::try_from(-1i32).map_err(|e| e.value),
        Err(-1)
    );
    assert_eq!(RotationDirection::from_owned(&OwnedValue::Uint8(1)), None);
}

#[test]
fn named_variants_follow_hap_nodejs() {
    assert_eq!(
        SecuritySystemCurrentState::ALL,
        &[
            SecuritySystemCurrentState::StayArm,
            SecuritySystemCurrentState::AwayArm,
            SecuritySystemCurrentState::NightArm,
            SecuritySystemCurrentState::Disarmed,
            SecuritySystemCurrentState::AlarmTriggered,
        ]
    );
    assert_eq!(TemperatureDisplayUnits::Fahrenheit as u8, 1);
    assert_eq!(ProgrammableSwitchEvent::LongPress as u8, 2);
    assert_eq!(LockCurrentState::Jammed as u8, 2);
    assert_eq!(AirParticulateSize::TenMicrometers as u8, 1);
    assert_eq!(CurrentMediaState::Loading as u8, 4);
}

fn round_trip<T: CharacteristicValue + Clone + PartialEq + core::fmt::Debug>(value: T) {
    let owned = value.clone().into_owned();
    assert_eq!(owned.format(), T::FORMAT);
    assert_eq!(T::from_owned(&owned), Some(value));
    for wrong in other_formats(T::FORMAT) {
        assert_eq!(T::from_owned(&wrong), None, "{wrong:?}");
    }
}

#[test]
fn scalars_round_trip_and_refuse_other_formats() {
    round_trip(true);
    round_trip(200u8);
    round_trip(60_000u16);
    round_trip(4_000_000_000u32);
    round_trip(u64::MAX);
    round_trip(-40i32);
    round_trip(21.5f64);
    round_trip(Text::try_from("Garage").unwrap());
    round_trip(Tlv8Value(ValueBytes::from_slice(&[1, 1, 0]).unwrap()));
    round_trip(DataValue(ValueBytes::from_slice(&[0xFF]).unwrap()));
}

#[test]
fn typed_constants_carry_their_catalog_type() {
    assert_eq!(ON.kind(), &c::ON);
    assert_eq!(TARGET_DOOR_STATE.kind().uuid, c::TARGET_DOOR_STATE.uuid);
    assert_eq!(OBSTRUCTION_DETECTED.kind().format, Format::Bool);
    assert_eq!(CURRENT_TEMPERATURE.kind().format, f64::FORMAT);
    assert_eq!(NAME.kind().format, Text::FORMAT);
    assert_eq!(
        format!("{TARGET_DOOR_STATE:?}"),
        "TypedCharacteristic { name: \"TargetDoorState\", value: \"hap_core::catalog::typed::generated::TargetDoorState\" }"
    );
}

#[test]
fn a_vendor_type_is_typed_only_by_its_format() {
    const LEVEL: crate::catalog::CharacteristicType = crate::catalog::CharacteristicType {
        name: "Level",
        uuid: crate::catalog::HapType::Custom([7; 16]),
        ..c::BRIGHTNESS
    };
    assert!(TypedCharacteristic::<i32>::new(&LEVEL).is_some());
    assert!(TypedCharacteristic::<u8>::new(&LEVEL).is_none());
    assert!(TypedCharacteristic::<TargetDoorState>::new(&LEVEL).is_none());
}
