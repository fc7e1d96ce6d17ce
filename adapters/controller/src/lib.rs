//! `hapctl`: a HomeKit controller for the command line, and the library it is made of.
//!
//! - [`client`]: one blocking TCP connection to an accessory, driving
//!   [`hap_core::controller::Connection`] (pair-setup, pair-verify, requests, events).
//! - [`discovery`]: finding accessories with mDNS (`_hap._tcp`) through
//!   [`hap_std::mdns::browse`], and how `discover` prints them.
//! - [`pairing_file`]: the controller's identity and its paired accessories, in a JSON
//!   file written atomically ([`hap_std::store::write_atomically`]).
//! - [`tree`]: an `/accessories` answer as owned data, with catalog names, and the
//!   resolution of `Brightness` or `1.9` to a characteristic.
//!
//! All protocol work happens in `hap-core`; this crate owns sockets, clocks, files and
//! the terminal.

use std::fmt;

use hap_core::controller::{CharacteristicReport, ReportedValue};
use hap_core::status::HapStatus;
use serde_json::Value;

pub mod client;
pub mod discovery;
pub mod pairing_file;
pub mod tree;

/// The classes of failure, each with its exit status (see `hapctl --help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Anything not below (exit 1).
    Failed,
    /// Bad arguments (exit 2).
    Usage,
    /// An alias, id, name or characteristic that is not there (exit 3).
    NotFound,
    /// The accessory cannot be reached, or stopped answering (exit 4).
    Unreachable,
    /// Wrong setup code, or pair-verify failed (exit 5).
    Authentication,
    /// The accessory answered with an error (exit 6).
    Refused,
    /// A malformed or unexpected answer (exit 7).
    Protocol,
    /// The pairing file cannot be read, parsed or written (exit 8).
    Storage,
}

impl ErrorKind {
    /// The process exit status.
    pub fn exit_code(self) -> u8 {
        match self {
            ErrorKind::Failed => 1,
            ErrorKind::Usage => 2,
            ErrorKind::NotFound => 3,
            ErrorKind::Unreachable => 4,
            ErrorKind::Authentication => 5,
            ErrorKind::Refused => 6,
            ErrorKind::Protocol => 7,
            ErrorKind::Storage => 8,
        }
    }

    /// The name `--json` output uses (`error.kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Failed => "failed",
            ErrorKind::Usage => "usage",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Authentication => "authentication",
            ErrorKind::Refused => "refused",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Storage => "storage",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure to report: its class and a message that says what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// The class, which decides the exit status.
    pub kind: ErrorKind,
    /// For people.
    pub message: String,
}

impl Error {
    /// An error of `kind` saying `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<client::ClientError> for Error {
    fn from(error: client::ClientError) -> Self {
        Error::new(error.kind(), error.to_string())
    }
}

impl From<pairing_file::FileError> for Error {
    fn from(error: pairing_file::FileError) -> Self {
        Error::new(ErrorKind::Storage, error.to_string())
    }
}

/// One item of a read, a write or an event, owned.
#[derive(Clone, Debug, PartialEq)]
pub struct Reported {
    /// The accessory.
    pub aid: u64,
    /// The characteristic.
    pub iid: u64,
    /// The value, if the item carries one.
    pub value: Option<serde_json::Value>,
    /// The item's status; `None` for a number HAP does not define.
    pub status: Option<HapStatus>,
}

impl Reported {
    /// Whether the item reports success.
    pub fn is_success(&self) -> bool {
        self.status == Some(HapStatus::Success)
    }
}

impl From<CharacteristicReport<'_>> for Reported {
    fn from(report: CharacteristicReport<'_>) -> Self {
        Self {
            aid: report.aid,
            iid: report.iid,
            value: report.value.map(json_value),
            status: report.status,
        }
    }
}

/// A value as the accessory sent it, as JSON.
pub fn json_value(value: ReportedValue<'_>) -> serde_json::Value {
    use serde_json::Value;
    match value {
        ReportedValue::Bool(b) => Value::Bool(b),
        ReportedValue::Integer(i) => {
            if let Ok(i) = i64::try_from(i) {
                Value::from(i)
            } else if let Ok(u) = u64::try_from(i) {
                Value::from(u)
            } else {
                Value::from(i as f64)
            }
        }
        ReportedValue::Float(f) => {
            serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
        ReportedValue::Str(text) => Value::String(decode(text)),
        // Null, and kinds newer than this crate.
        _ => Value::Null,
    }
}

/// `value` as a characteristic of `format` means it: HomeKitADK and others send a
/// `bool` as `1` or `0`, shown as `true` or `false`.
pub fn typed_value(value: Value, format: Option<&str>) -> Value {
    match (format, &value) {
        (Some("bool"), serde_json::Value::Number(n)) => match n.as_u64() {
            Some(0) => Value::Bool(false),
            Some(1) => Value::Bool(true),
            _ => value,
        },
        _ => value,
    }
}

/// A JSON string from an answer, decoded.
pub fn decode(text: hap_core::json::JsonStr<'_>) -> String {
    let mut buf = vec![0u8; text.raw().len()];
    // The decoded string is never longer than the raw one, and the reader checked the
    // escapes; the raw text is the fallback should either ever fail.
    text.decode_into(&mut buf)
        .map_or_else(|_| text.raw().to_string(), str::to_string)
}

/// Hex, lower case.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Bytes from hex (either case); `None` if malformed.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_junk() {
        assert_eq!(to_hex(&[0, 0xab, 0x10]), "00ab10");
        assert_eq!(from_hex("00AB10"), Some(vec![0, 0xab, 0x10]));
        assert_eq!(from_hex("0"), None);
        assert_eq!(from_hex("zz"), None);
        assert_eq!(from_hex("+1"), None);
    }

    #[test]
    fn bools_sent_as_numbers_read_as_bools() {
        assert_eq!(typed_value(Value::from(1), Some("bool")), Value::Bool(true));
        assert_eq!(
            typed_value(Value::from(0), Some("bool")),
            Value::Bool(false)
        );
        assert_eq!(typed_value(Value::from(2), Some("bool")), Value::from(2));
        assert_eq!(typed_value(Value::from(1), Some("uint8")), Value::from(1));
    }

    #[test]
    fn exit_codes_follow_the_table() {
        let table = [
            (ErrorKind::Failed, 1, "failed"),
            (ErrorKind::Usage, 2, "usage"),
            (ErrorKind::NotFound, 3, "not-found"),
            (ErrorKind::Unreachable, 4, "unreachable"),
            (ErrorKind::Authentication, 5, "authentication"),
            (ErrorKind::Refused, 6, "refused"),
            (ErrorKind::Protocol, 7, "protocol"),
            (ErrorKind::Storage, 8, "storage"),
        ];
        for (kind, code, name) in table {
            assert_eq!((kind.exit_code(), kind.as_str()), (code, name));
        }
    }
}
