//! HAP status codes: what a controller is told about each item of a read or a write, and
//! about `/identify` and events, as HAP's JSON carries them (`"status": -70410`).

/// A HAP status code, named as the HAP specification names them (HomeKitADK's
/// `HAPIPAccessoryServerStatusCode`, HAP-NodeJS's `HAPStatus`).
///
/// [`HapStatus::code`] is the number on the wire; [`HapStatus::from_code`] reads one back,
/// so a controller, or an application answering a request, can use the same type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[non_exhaustive]
pub enum HapStatus {
    /// 0: success.
    Success = 0,
    /// -70401: the request was denied for insufficient privileges (not an admin).
    InsufficientPrivileges = 1,
    /// -70402: the accessory could not communicate with the service, for example the
    /// bridged device is unreachable or powered off. The Home app shows "No Response".
    ServiceCommunicationFailure = 2,
    /// -70403: the resource is busy; try again.
    ResourceBusy = 3,
    /// -70404: a write to a read-only characteristic.
    ReadOnlyCharacteristic = 4,
    /// -70405: a read of a write-only characteristic.
    WriteOnlyCharacteristic = 5,
    /// -70406: the characteristic does not support events.
    NotificationNotSupported = 6,
    /// -70407: out of resources to process the request.
    OutOfResources = 7,
    /// -70408: the operation timed out.
    OperationTimedOut = 8,
    /// -70409: the resource does not exist.
    ResourceDoesNotExist = 9,
    /// -70410: the accessory received an invalid value in a write.
    InvalidValueInRequest = 10,
    /// -70411: insufficient authorization.
    InsufficientAuthorization = 11,
    /// -70412: not allowed in the accessory's current state.
    NotAllowedInCurrentState = 12,
}

impl HapStatus {
    /// Every status, in the order of their codes.
    pub const ALL: [HapStatus; 13] = [
        HapStatus::Success,
        HapStatus::InsufficientPrivileges,
        HapStatus::ServiceCommunicationFailure,
        HapStatus::ResourceBusy,
        HapStatus::ReadOnlyCharacteristic,
        HapStatus::WriteOnlyCharacteristic,
        HapStatus::NotificationNotSupported,
        HapStatus::OutOfResources,
        HapStatus::OperationTimedOut,
        HapStatus::ResourceDoesNotExist,
        HapStatus::InvalidValueInRequest,
        HapStatus::InsufficientAuthorization,
        HapStatus::NotAllowedInCurrentState,
    ];

    /// The number in HAP's JSON: 0, or -70401 to -70412.
    pub const fn code(self) -> i32 {
        match self {
            HapStatus::Success => 0,
            other => -70400 - other as i32,
        }
    }

    /// The status for a number in HAP's JSON, or `None` if HAP defines no such status.
    pub fn from_code(code: i32) -> Option<HapStatus> {
        let index = match code {
            0 => 0,
            -70412..=-70401 => usize::try_from(-70400 - code).ok()?,
            _ => return None,
        };
        Self::ALL.get(index).copied()
    }

    /// Whether this is [`HapStatus::Success`].
    pub const fn is_success(self) -> bool {
        matches!(self, HapStatus::Success)
    }

    /// The status stored as `byte` by `self as u8`; an unknown byte, which only a bug
    /// could store, reads as a service communication failure.
    pub(crate) fn from_byte(byte: u8) -> HapStatus {
        Self::ALL
            .get(usize::from(byte))
            .copied()
            .unwrap_or(HapStatus::ServiceCommunicationFailure)
    }

    /// What the HAP specification says the status means.
    pub const fn description(self) -> &'static str {
        match self {
            HapStatus::Success => "success",
            HapStatus::InsufficientPrivileges => "request denied due to insufficient privileges",
            HapStatus::ServiceCommunicationFailure => "unable to communicate with the service",
            HapStatus::ResourceBusy => "resource is busy, try again",
            HapStatus::ReadOnlyCharacteristic => "cannot write to a read-only characteristic",
            HapStatus::WriteOnlyCharacteristic => "cannot read from a write-only characteristic",
            HapStatus::NotificationNotSupported => "notification is not supported",
            HapStatus::OutOfResources => "out of resources to process the request",
            HapStatus::OperationTimedOut => "operation timed out",
            HapStatus::ResourceDoesNotExist => "resource does not exist",
            HapStatus::InvalidValueInRequest => "invalid value in the request",
            HapStatus::InsufficientAuthorization => "insufficient authorization",
            HapStatus::NotAllowedInCurrentState => "not allowed in the current state",
        }
    }
}

impl core::fmt::Display for HapStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} ({})", self.description(), self.code())
    }
}

impl TryFrom<i32> for HapStatus {
    type Error = UnknownStatus;

    fn try_from(code: i32) -> Result<Self, Self::Error> {
        HapStatus::from_code(code).ok_or(UnknownStatus(code))
    }
}

/// A number that is not a HAP status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownStatus(pub i32);

impl core::fmt::Display for UnknownStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{} is not a HAP status code", self.0)
    }
}

impl core::error::Error for UnknownStatus {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_name_hap_s_numbers() {
        for status in HapStatus::ALL {
            assert_eq!(HapStatus::from_code(status.code()), Some(status));
            assert_eq!(HapStatus::from_byte(status as u8), status);
        }
        assert_eq!(HapStatus::ServiceCommunicationFailure.code(), -70402);
        assert_eq!(HapStatus::NotAllowedInCurrentState.code(), -70412);
        assert_eq!(HapStatus::InvalidValueInRequest.code(), -70410);
    }

    #[test]
    fn other_numbers_are_not_statuses() {
        for code in [1, -1, -70400, -70413, i32::MIN, i32::MAX] {
            assert_eq!(HapStatus::from_code(code), None, "{code}");
            assert_eq!(HapStatus::try_from(code), Err(UnknownStatus(code)));
        }
    }

    #[test]
    fn display_says_what_and_which_number() {
        extern crate std;
        use std::string::ToString;
        assert_eq!(
            HapStatus::ServiceCommunicationFailure.to_string(),
            "unable to communicate with the service (-70402)"
        );
        assert_eq!(UnknownStatus(5).to_string(), "5 is not a HAP status code");
    }
}
