//! The public error types say what went wrong in words, name the values involved, and
//! chain to the error they wrap. Built outside the crate, as an application sees them.

use core::error::Error;

use hap_core::catalog::name::{check_name, NameError};
use hap_core::catalog::value::ValueError;
use hap_core::database::builder::BuildError;
use hap_core::database::revision::check_firmware_revision;
use hap_core::database::{DatabaseError, SetValueError};
use hap_core::http::HttpError;
use hap_core::json::{JsonError, JsonErrorKind};
use hap_core::pairing::{ErrorCode, PairingError};
use hap_core::server::{AcceptError, BuffersTooSmall, CloseReason};
use hap_core::session::FrameError;
use hap_core::setup::{DeviceId, SetupCode, SetupId};
use hap_core::tlv::TlvError;

/// The message of `error`, which must be non-empty and contain each of `parts`.
fn says(error: &dyn core::fmt::Display, parts: &[&str]) -> String {
    let text = error.to_string();
    assert!(!text.is_empty());
    for part in parts {
        assert!(text.contains(part), "{text:?} does not mention {part:?}");
    }
    text
}

/// The messages of `error`'s sources, outermost first.
fn sources(error: &dyn Error) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = error.source();
    while let Some(error) = next {
        out.push(error.to_string());
        next = error.source();
    }
    out
}

#[test]
fn wire_errors_name_their_values() {
    says(&TlvError::Truncated { offset: 17 }, &["17"]);
    says(&TlvError::BufferTooSmall { required: 300 }, &["300"]);
    says(&FrameError::LengthTooLarge { length: 2000 }, &["2000"]);
    says(&HttpError::TooLarge { limit: 4096 }, &["4096"]);
    says(
        &JsonError {
            offset: 9,
            kind: JsonErrorKind::TooDeep,
        },
        &["byte 9", "deeper"],
    );
    says(&PairingError::MissingItem(0x06), &["0x06"]);
    says(
        &PairingError::Rejected(ErrorCode::MaxPeers),
        &["kTLVError 4"],
    );
}

#[test]
fn database_errors_name_their_values() {
    says(&DatabaseError::BadIid { aid: 3, iid: 12 }, &["12", "3"]);
    says(
        &DatabaseError::SlotCount {
            expected: 5,
            given: 4,
        },
        &["5", "4"],
    );
    says(&ValueError::OutOfRange, &["maxValue"]);
    says(&check_name("Lamp!").unwrap_err(), &["'!'", "byte 4"]);
    says(&check_firmware_revision("1.x").unwrap_err(), &["\"1.x\""]);
    says(&SetValueError::Invalid(ValueError::OffStep), &["minStep"]);
}

#[test]
fn parse_errors_of_setup_values_are_errors() {
    let code = "111-11-111".parse::<SetupCode>().unwrap_err();
    says(&code, &["guess"]);
    says(&"AB".parse::<SetupId>().unwrap_err(), &["four"]);
    says(&"nope".parse::<DeviceId>().unwrap_err(), &["1A:2B"]);
}

#[test]
fn wrapping_errors_chain_to_the_wrapped_one() {
    let tlv = PairingError::Tlv(TlvError::ShortFragment { offset: 260 });
    says(&tlv, &["260"]);
    assert_eq!(
        sources(&tlv),
        [TlvError::ShortFragment { offset: 260 }.to_string()]
    );

    let buffers = BuffersTooSmall {
        buffer: "scratch",
        minimum: 1234,
    };
    let accept = AcceptError::Buffers(buffers);
    says(&accept, &["scratch", "1234"]);
    assert_eq!(sources(&accept), [buffers.to_string()]);
    assert!(AcceptError::TooManyConnections.source().is_none());

    let build = BuildError::Value {
        aid: 1,
        iid: 9,
        error: SetValueError::Invalid(ValueError::TooLong),
    };
    says(&build, &["1.9", "maxLen"]);
    assert_eq!(
        sources(&build),
        [
            SetValueError::Invalid(ValueError::TooLong).to_string(),
            ValueError::TooLong.to_string(),
        ]
    );
    let shape = BuildError::Database(DatabaseError::PrimaryAid(2));
    assert_eq!(sources(&shape), [DatabaseError::PrimaryAid(2).to_string()]);

    let name = SetValueError::Name(NameError::Empty);
    assert_eq!(sources(&name), [NameError::Empty.to_string()]);
}

#[test]
fn close_reasons_read_as_sentences() {
    says(
        &CloseReason::Frame(FrameError::LengthTooLarge { length: 1500 }),
        &["1500"],
    );
    says(&CloseReason::Evicted, &["evicted"]);
}

#[cfg(feature = "alloc")]
#[test]
fn srp_and_store_errors_are_errors() {
    use hap_core::persist::DecodeError;
    use hap_core::srp::SrpError;
    says(&SrpError::BadProof, &["proof"]);
    says(&DecodeError::Version(99), &["99"]);
    says(&DecodeError::Field("pairings"), &["pairings"]);
}
