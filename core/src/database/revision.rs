//! The form HomeKit requires of a Firmware Revision: `x[.y[.z]]`, one to three decimal
//! numbers separated by dots, such as `1`, `1.4` or `100.2.17`.
//!
//! HomeKitADK refuses to start an accessory whose firmware version has another form, and
//! iOS reports accessories that announce one (such as `1.0-3`) as "out of compliance"
//! while pairing. [`Database::set`](super::Database::set) refuses such values for every
//! Firmware Revision characteristic, and so does the builder for
//! [`AccessoryInfo`](super::builder::AccessoryInfo).

/// How many bytes of a refused revision [`FirmwareRevisionError`] keeps to show: the
/// Firmware Revision characteristic's default `maxLen`.
pub const SHOWN_REVISION_LEN: usize = 64;

/// The largest number one part of a revision may hold, as HomeKitADK parses each part
/// into 32 bits.
const MAX_PART: u64 = u32::MAX as u64;

/// A Firmware Revision that is not `x[.y[.z]]`. It keeps the refused value (its first
/// [`SHOWN_REVISION_LEN`] bytes) so that the message can name it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FirmwareRevisionError {
    shown: [u8; SHOWN_REVISION_LEN],
    len: u8,
    truncated: bool,
}

impl FirmwareRevisionError {
    fn new(text: &str) -> Self {
        let mut len = text.len().min(SHOWN_REVISION_LEN);
        while !text.is_char_boundary(len) {
            len -= 1;
        }
        let mut shown = [0; SHOWN_REVISION_LEN];
        shown[..len].copy_from_slice(&text.as_bytes()[..len]);
        Self {
            shown,
            // `len` is at most SHOWN_REVISION_LEN, which fits a byte.
            len: len as u8,
            truncated: len < text.len(),
        }
    }

    /// The refused value, cut after [`SHOWN_REVISION_LEN`] bytes if longer.
    pub fn value(&self) -> &str {
        // `new` copied whole characters of a `str`, so this is valid UTF-8.
        core::str::from_utf8(&self.shown[..usize::from(self.len)]).unwrap_or("")
    }

    /// Whether [`FirmwareRevisionError::value`] is only the start of the refused value.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

impl core::fmt::Debug for FirmwareRevisionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FirmwareRevisionError")
            .field("value", &self.value())
            .field("truncated", &self.truncated)
            .finish()
    }
}

impl core::fmt::Display for FirmwareRevisionError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let more = if self.truncated { "..." } else { "" };
        write!(
            f,
            "firmware revision {:?}{more} is not x[.y[.z]] of decimal numbers (such as 1.0.3), as HomeKit requires",
            self.value()
        )
    }
}

impl core::error::Error for FirmwareRevisionError {}

/// Checks that `text` is `x[.y[.z]]`: one to three parts of ASCII digits, each at most
/// 4294967295, separated by single dots.
pub fn check_firmware_revision(text: &str) -> Result<(), FirmwareRevisionError> {
    let mut parts = 0;
    for part in text.split('.') {
        parts += 1;
        let number_ok = !part.is_empty()
            && part.bytes().all(|b| b.is_ascii_digit())
            && part
                .bytes()
                .try_fold(0u64, |n, b| {
                    let n = n * 10 + u64::from(b - b'0');
                    (n <= MAX_PART).then_some(n)
                })
                .is_some();
        if parts > 3 || !number_ok {
            return Err(FirmwareRevisionError::new(text));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn firmware_revision_must_be_numeric_dotted() {
        for good in ["1", "1.0", "1.0.3", "0.1.0", "100.2.17", "4294967295.0"] {
            assert_eq!(check_firmware_revision(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "1.0-3",
            "1.0.0.1",
            "v1.0",
            "1..0",
            "1.",
            ".1",
            "1.0 ",
            " 1.0",
            "1.0;beta",
            "١.٠",
            "4294967296",
            "99999999999999999999999",
        ] {
            let error = check_firmware_revision(bad).unwrap_err();
            assert_eq!(error.value(), bad);
            assert!(!error.is_truncated());
        }
        let error = check_firmware_revision("1.0-3").unwrap_err();
        assert_eq!(
            std::format!("{error}"),
            "firmware revision \"1.0-3\" is not x[.y[.z]] of decimal numbers (such as 1.0.3), as HomeKit requires"
        );
    }

    #[test]
    fn long_refused_revisions_are_cut_on_a_character_boundary() {
        let long = std::format!("1.{}", "é".repeat(40));
        let error = check_firmware_revision(&long).unwrap_err();
        assert!(error.is_truncated());
        assert!(long.starts_with(error.value()));
        assert!(error.value().len() <= SHOWN_REVISION_LEN);
        assert!(std::format!("{error}").contains("\"... is not"));
    }
}
