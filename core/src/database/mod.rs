//! The accessory database: accessories, their services and characteristics, the values
//! the characteristics hold, and the ids HAP addresses them by.
//!
//! # Shape and values
//!
//! The shape is a flat list of [`Entry`]s in document order: an accessory, then its
//! services, each followed by its characteristics. It never changes while a server runs,
//! so it can be a `static` table on a microcontroller. Values live apart from it, in one
//! [`Slot`] per characteristic, in a table the caller provides (or a `Vec` with `alloc`).
//! A slot holds strings up to [`STRING_CAPACITY`] bytes, HAP's largest `maxLen`, inline,
//! and TLV8 and data values up to [`BYTES_CAPACITY`] bytes as [`ValueBytes`]: inline
//! without `alloc`, so no read, write or event needs a heap, and on the heap with it,
//! where they may be longer (see [`bytes`] for what each costs).
//!
//! With `alloc`, [`builder::DatabaseBuilder`] assembles both from catalog types and takes
//! ids from the stable [`ids::IdMap`]. Without it, write the entries with fixed ids, as
//! HomeKitADK requires, and hand them to [`Database::new`], which checks them just the
//! same.
//!
//! [`config`] turns the shape into the configuration number.
//!
//! # What iOS expects of every database
//!
//! [`Database::new`] (and so [`builder::DatabaseBuilder::build`]) refuses a database that
//! HomeKitADK would refuse to start with (`HAPAccessoryValidation.c`), with a
//! [`DatabaseError`] naming the rule:
//!
//! - The first accessory is the primary one (the bridge, or the only accessory), and its
//!   aid is 1 ([`DatabaseError::PrimaryAid`]).
//! - Every accessory's first service is Accessory Information (type `3E`) at iid 1
//!   ([`DatabaseError::NoAccessoryInformation`]).
//! - The primary accessory carries the HAP Protocol Information service (type `A2`) with
//!   its Version characteristic ([`DatabaseError::NoProtocolInformation`]). The database
//!   fills in Version [`PROTOCOL_VERSION`] itself and refuses any other value. The builder
//!   adds the service when the application did not, with fresh ids from the
//!   [`ids::IdMap`], so an accessory that stored its ids before keeps them all.
//! - Firmware Revision (type `52`) is `x[.y[.z]]` of decimal numbers: [`Database::set`]
//!   refuses other values ([`SetValueError::FirmwareRevision`]), as does the builder.
//!   A hand-written table must set it before serving, since it starts empty.
//!
//! [`Database::shape`] covers each accessory's Firmware Revision as well as the shape,
//! so that a firmware update raises the configuration number, as in HomeKitADK.

use core::ops::{Deref, DerefMut};

use crate::catalog::value::{Constraints, Value, ValueError};
use crate::catalog::{characteristic, name, service, CharacteristicType, Format, Perms};
use crate::catalog::{ServiceType, Unit};
use crate::ConnectionId;

#[cfg(feature = "alloc")]
pub mod builder;
pub mod bytes;
// The accessory the server tests and the fuzz harness share.
pub mod config;
#[cfg(all(feature = "alloc", any(test, feature = "fuzzing")))]
pub(crate) mod fixture;
pub mod handle;
#[cfg(feature = "alloc")]
pub mod ids;
pub mod revision;

use revision::FirmwareRevisionError;

/// The most accessories one server exposes: a bridge and 149 bridged accessories.
pub const MAX_ACCESSORIES: usize = 150;
pub use bytes::{ValueBytes, BYTES_CAPACITY};

/// The longest string a slot holds, in bytes: HAP's largest `maxLen`
/// ([`MAX_MAX_LEN`](crate::catalog::value::MAX_MAX_LEN)). Strings are held inline in
/// every [`OwnedValue`], so this sets its size (272 bytes on 64-bit targets), and so that
/// of every slot, queued [`Event`](crate::server::Event) and logged button press.
pub const STRING_CAPACITY: usize = 256;
/// The most JSON one characteristic may take in `/accessories`, with every field and its
/// largest string value: responses are streamed a characteristic at a time through a
/// buffer of this size. TLV8 and data values are not counted: one too long for the
/// buffer is split across as many as it takes.
pub const MAX_CHARACTERISTIC_JSON: usize = 1800;
/// The Version of the HAP Protocol Information service: the HAP version over IP that
/// HomeKitADK and HAP-NodeJS announce.
pub const PROTOCOL_VERSION: &str = "1.1.0";

/// A list the database reads: borrowed (a `static` table, say) or, with `alloc`, owned.
#[derive(Debug)]
pub enum Table<'d, T> {
    /// Borrowed from the caller.
    Borrowed(&'d [T]),
    /// Owned.
    #[cfg(feature = "alloc")]
    Owned(alloc::vec::Vec<T>),
}

impl<T> Deref for Table<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            Table::Borrowed(items) => items,
            #[cfg(feature = "alloc")]
            Table::Owned(items) => items,
        }
    }
}

impl<T> Clone for Table<'_, T>
where
    T: Clone,
{
    fn clone(&self) -> Self {
        match self {
            Table::Borrowed(items) => Table::Borrowed(items),
            #[cfg(feature = "alloc")]
            Table::Owned(items) => Table::Owned(items.clone()),
        }
    }
}

impl<'d, T> From<&'d [T]> for Table<'d, T> {
    fn from(items: &'d [T]) -> Self {
        Table::Borrowed(items)
    }
}

#[cfg(feature = "alloc")]
impl<T> From<alloc::vec::Vec<T>> for Table<'_, T> {
    fn from(items: alloc::vec::Vec<T>) -> Self {
        Table::Owned(items)
    }
}

/// A list the database writes: borrowed or, with `alloc`, owned.
#[derive(Debug)]
pub enum TableMut<'d, T> {
    /// Borrowed from the caller.
    Borrowed(&'d mut [T]),
    /// Owned.
    #[cfg(feature = "alloc")]
    Owned(alloc::vec::Vec<T>),
}

impl<T> Deref for TableMut<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        match self {
            TableMut::Borrowed(items) => items,
            #[cfg(feature = "alloc")]
            TableMut::Owned(items) => items,
        }
    }
}

impl<T> DerefMut for TableMut<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        match self {
            TableMut::Borrowed(items) => items,
            #[cfg(feature = "alloc")]
            TableMut::Owned(items) => items,
        }
    }
}

impl<'d, T> From<&'d mut [T]> for TableMut<'d, T> {
    fn from(items: &'d mut [T]) -> Self {
        TableMut::Borrowed(items)
    }
}

#[cfg(feature = "alloc")]
impl<T> From<alloc::vec::Vec<T>> for TableMut<'_, T> {
    fn from(items: alloc::vec::Vec<T>) -> Self {
        TableMut::Owned(items)
    }
}

/// A characteristic's value. TLV8 and data values are raw bytes here ([`ValueBytes`],
/// held on the heap only with `alloc`); they travel base64-encoded.
// Strings stay inline at HAP's maximum, in every build, so that no read, write or event
// of one needs a heap; TLV8 and data move to the heap when there is one.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum OwnedValue {
    /// `bool`.
    Bool(bool),
    /// `uint8`.
    Uint8(u8),
    /// `uint16`.
    Uint16(u16),
    /// `uint32`.
    Uint32(u32),
    /// `uint64`.
    Uint64(u64),
    /// `int`.
    Int(i32),
    /// `float`.
    Float(f64),
    /// `string`.
    String(heapless::String<STRING_CAPACITY>),
    /// `tlv8`, decoded.
    Tlv8(ValueBytes),
    /// `data`, decoded.
    Data(ValueBytes),
}

impl OwnedValue {
    /// A string value, or `None` if longer than [`STRING_CAPACITY`].
    pub fn string(text: &str) -> Option<Self> {
        heapless::String::try_from(text)
            .ok()
            .map(OwnedValue::String)
    }

    /// A TLV8 value from its bytes, or `None` if longer than [`BYTES_CAPACITY`].
    pub fn tlv8(bytes: &[u8]) -> Option<Self> {
        ValueBytes::from_slice(bytes).map(OwnedValue::Tlv8)
    }

    /// A data value from its bytes, or `None` if longer than [`BYTES_CAPACITY`].
    pub fn data(bytes: &[u8]) -> Option<Self> {
        ValueBytes::from_slice(bytes).map(OwnedValue::Data)
    }

    /// The format this value has.
    pub fn format(&self) -> Format {
        match self {
            OwnedValue::Bool(_) => Format::Bool,
            OwnedValue::Uint8(_) => Format::Uint8,
            OwnedValue::Uint16(_) => Format::Uint16,
            OwnedValue::Uint32(_) => Format::Uint32,
            OwnedValue::Uint64(_) => Format::Uint64,
            OwnedValue::Int(_) => Format::Int,
            OwnedValue::Float(_) => Format::Float,
            OwnedValue::String(_) => Format::String,
            OwnedValue::Tlv8(_) => Format::Tlv8,
            OwnedValue::Data(_) => Format::Data,
        }
    }

    /// Converts a checked request value, decoding base64. Fails with
    /// [`ValueError::TooLong`] when the value does not fit a slot: a string over
    /// [`STRING_CAPACITY`] or TLV8 or data over [`BYTES_CAPACITY`] bytes.
    pub fn from_value(value: &Value<'_>) -> Result<Self, ValueError> {
        Ok(match *value {
            Value::Bool(v) => OwnedValue::Bool(v),
            Value::Uint8(v) => OwnedValue::Uint8(v),
            Value::Uint16(v) => OwnedValue::Uint16(v),
            Value::Uint32(v) => OwnedValue::Uint32(v),
            Value::Uint64(v) => OwnedValue::Uint64(v),
            Value::Int(v) => OwnedValue::Int(v),
            Value::Float(v) => OwnedValue::Float(v),
            Value::String(text) => OwnedValue::string(text).ok_or(ValueError::TooLong)?,
            Value::Tlv8(encoded) => OwnedValue::Tlv8(ValueBytes::from_base64(encoded)?),
            Value::Data(encoded) => OwnedValue::Data(ValueBytes::from_base64(encoded)?),
        })
    }

    /// Checks the value against a characteristic's constraints, without clamping, and
    /// rounds a float within tolerance of a step onto the step, as
    /// [`Constraints::check`] does for a controller's write.
    pub fn check(&mut self, constraints: &Constraints) -> Result<(), ValueError> {
        if self.format() != constraints.format {
            return Err(ValueError::WrongType);
        }
        let number = match &*self {
            OwnedValue::Bool(v) => Value::Bool(*v),
            OwnedValue::Uint8(v) => Value::Uint8(*v),
            OwnedValue::Uint16(v) => Value::Uint16(*v),
            OwnedValue::Uint32(v) => Value::Uint32(*v),
            OwnedValue::Uint64(v) => Value::Uint64(*v),
            OwnedValue::Int(v) => Value::Int(*v),
            OwnedValue::Float(v) if v.is_finite() => Value::Float(*v),
            OwnedValue::Float(_) => return Err(ValueError::OutOfFormatRange),
            OwnedValue::String(text) => Value::String(text),
            OwnedValue::Tlv8(bytes) | OwnedValue::Data(bytes) => {
                return if bytes.len() as u64 > u64::from(constraints.max_data_len) {
                    Err(ValueError::TooLong)
                } else {
                    Ok(())
                };
            }
        };
        if let Value::Float(rounded) = constraints.check(&number)? {
            *self = OwnedValue::Float(rounded);
        }
        Ok(())
    }

    /// The value a characteristic starts with: false, zero, or the smallest allowed
    /// number, or empty.
    fn initial(constraints: &Constraints) -> Self {
        let lowest = if let Some(first) = constraints.valid_values.first() {
            f64::from(*first)
        } else if let Some((low, _)) = constraints.valid_values_range {
            f64::from(low)
        } else {
            constraints.min_value.map_or(0.0, |min| min.max(0.0))
        };
        // The casts saturate, and `lowest` is within the format in any sane definition.
        match constraints.format {
            Format::Bool => OwnedValue::Bool(false),
            Format::Uint8 => OwnedValue::Uint8(lowest as u8),
            Format::Uint16 => OwnedValue::Uint16(lowest as u16),
            Format::Uint32 => OwnedValue::Uint32(lowest as u32),
            Format::Uint64 => OwnedValue::Uint64(lowest as u64),
            Format::Int => OwnedValue::Int(constraints.min_value.map_or(0, |min| min as i32)),
            Format::Float => OwnedValue::Float(constraints.min_value.map_or(0.0, |m| m.max(0.0))),
            Format::String => OwnedValue::String(heapless::String::new()),
            Format::Tlv8 => OwnedValue::Tlv8(ValueBytes::new()),
            Format::Data => OwnedValue::Data(ValueBytes::new()),
        }
    }
}

/// A characteristic of a service.
#[derive(Clone, Copy, Debug)]
pub struct CharacteristicDef<'d> {
    /// Its instance id, unique within the accessory.
    pub iid: u64,
    /// Its type: one of [`crate::catalog::characteristic`], or a vendor type defined the
    /// same way.
    pub kind: &'static CharacteristicType,
    /// Its permissions; the type's unless narrowed.
    pub perms: Perms,
    /// Its unit; the type's unless changed.
    pub unit: Option<Unit>,
    /// Its limits; the type's unless narrowed.
    pub constraints: Constraints,
    /// A description for controllers' user interfaces.
    pub description: Option<&'d str>,
    /// Whether reads ask the application ([`crate::server::Event::Read`]) instead of
    /// answering from the stored value. `/accessories` shows the last value supplied.
    pub read_on_demand: bool,
    /// Whether writes wait for the application: a write reaches it as an
    /// [`Event::WriteRequest`](crate::server::Event::WriteRequest) and is stored and
    /// answered only when it completes it with
    /// [`Server::complete_write`](crate::server::Server::complete_write).
    pub confirm_writes: bool,
}

impl<'d> CharacteristicDef<'d> {
    /// A characteristic of type `kind` with the type's permissions and limits.
    pub const fn new(iid: u64, kind: &'static CharacteristicType) -> Self {
        Self {
            iid,
            kind,
            perms: kind.perms,
            unit: kind.unit,
            constraints: Constraints::of(kind),
            description: None,
            read_on_demand: false,
            confirm_writes: false,
        }
    }

    /// Narrows the range of allowed values.
    pub const fn with_range(mut self, min: f64, max: f64) -> Self {
        self.constraints.min_value = Some(min);
        self.constraints.max_value = Some(max);
        self
    }

    /// Narrows the allowed values to these.
    pub const fn with_valid_values(mut self, values: &'static [u32]) -> Self {
        self.constraints.valid_values = values;
        self
    }

    /// Sets the permissions.
    pub const fn with_perms(mut self, perms: Perms) -> Self {
        self.perms = perms;
        self
    }

    /// Sets the description.
    pub const fn with_description(mut self, description: &'d str) -> Self {
        self.description = Some(description);
        self
    }

    /// Makes reads ask the application.
    pub const fn on_demand(mut self) -> Self {
        self.read_on_demand = true;
        self
    }

    /// Makes writes wait for the application, which confirms or fails each; see
    /// [`CharacteristicDef::confirm_writes`].
    pub const fn confirmed(mut self) -> Self {
        self.confirm_writes = true;
        self
    }

    /// Whether every change must be delivered as its own event: button presses.
    pub fn is_button(&self) -> bool {
        self.kind.uuid == characteristic::PROGRAMMABLE_SWITCH_EVENT.uuid
            || self.kind.uuid == characteristic::BUTTON_EVENT.uuid
    }

    /// Whether reads return `null` whatever the value: HAP says a programmable switch's
    /// state is only ever told by events.
    pub fn reads_null(&self) -> bool {
        self.kind.uuid == characteristic::PROGRAMMABLE_SWITCH_EVENT.uuid
    }
}

/// A service of an accessory.
#[derive(Clone, Debug)]
pub struct ServiceDef<'d> {
    /// Its instance id, unique within the accessory.
    pub iid: u64,
    /// Its type: one of [`crate::catalog::service`], or a vendor type defined the same way.
    pub kind: &'static ServiceType,
    /// Whether it is the accessory's main service.
    pub primary: bool,
    /// Whether controllers should hide it.
    pub hidden: bool,
    /// The iids of services it links to, on the same accessory.
    pub linked: Table<'d, u64>,
}

impl ServiceDef<'_> {
    /// A visible, secondary service without links.
    pub const fn new(iid: u64, kind: &'static ServiceType) -> Self {
        Self {
            iid,
            kind,
            primary: false,
            hidden: false,
            linked: Table::Borrowed(&[]),
        }
    }

    /// The same service, as the accessory's main one. A `const fn`, for `static` tables.
    pub const fn as_primary(mut self) -> Self {
        self.primary = true;
        self
    }
}

/// One entry of the database's shape, in document order.
#[derive(Clone, Debug)]
pub enum Entry<'d> {
    /// An accessory, with its aid; its services follow.
    Accessory(u64),
    /// A service of the last accessory; its characteristics follow.
    Service(ServiceDef<'d>),
    /// A characteristic of the last service.
    Characteristic(CharacteristicDef<'d>),
}

/// A characteristic's value and change tracking. Provide one per characteristic,
/// starting as [`Slot::EMPTY`]; the database fills in initial values.
#[derive(Clone, Debug)]
pub struct Slot {
    pub(crate) value: OwnedValue,
    /// Counts changes of the value, for subscribers to notice.
    pub(crate) version: u32,
    /// Who made the last change: a connection's write, or the application (`None`).
    pub(crate) writer: Option<ConnectionId>,
    /// The database's supply epoch when the application last set the value, changed or
    /// not: a read on demand is answered once this passes the epoch it started at.
    pub(crate) supplied: u64,
}

impl Slot {
    /// An empty slot.
    pub const EMPTY: Slot = Slot {
        value: OwnedValue::Bool(false),
        version: 0,
        writer: None,
        supplied: 0,
    };
}

/// Why [`Database::new`] refused a shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DatabaseError {
    /// There is no accessory, or something comes before the first one.
    NoAccessory,
    /// More than [`MAX_ACCESSORIES`] accessories.
    TooManyAccessories,
    /// An aid is 0 or used twice.
    BadAid(u64),
    /// The first (primary) accessory's aid, which is not 1: HomeKit addresses the bridge,
    /// or the only accessory, as aid 1.
    PrimaryAid(u64),
    /// The primary accessory lacks the HAP Protocol Information service (type `A2`).
    NoProtocolInformation,
    /// An iid is 0 or used twice within accessory `aid`.
    BadIid {
        /// The accessory.
        aid: u64,
        /// The iid.
        iid: u64,
    },
    /// A characteristic comes before any service of its accessory.
    CharacteristicOutsideService {
        /// The accessory.
        aid: u64,
        /// The characteristic's iid.
        iid: u64,
    },
    /// The first service of accessory `aid` is not Accessory Information (type `3E`) at
    /// iid 1.
    NoAccessoryInformation(u64),
    /// A service lacks a characteristic its type requires.
    MissingCharacteristic {
        /// The accessory.
        aid: u64,
        /// The service's iid.
        service: u64,
        /// The name of the required type.
        required: &'static str,
    },
    /// A service links to an iid that is not a service of the same accessory.
    BadLink {
        /// The accessory.
        aid: u64,
        /// The linking service's iid.
        service: u64,
        /// The linked iid.
        linked: u64,
    },
    /// A characteristic's constraints are for another format than its type's.
    FormatMismatch {
        /// The accessory.
        aid: u64,
        /// The characteristic's iid.
        iid: u64,
    },
    /// A characteristic's description, valid values and largest value could take more
    /// than [`MAX_CHARACTERISTIC_JSON`] bytes of JSON.
    DefinitionTooLarge {
        /// The accessory.
        aid: u64,
        /// The characteristic's iid.
        iid: u64,
    },
    /// A characteristic's `maxLen` is over [`STRING_CAPACITY`]. (A `maxDataLen` over
    /// [`BYTES_CAPACITY`] is allowed, as HAP's default of 2 MiB is: writes of values
    /// longer than the capacity fail with -70410.)
    MaxLenTooLarge {
        /// The accessory.
        aid: u64,
        /// The characteristic's iid.
        iid: u64,
    },
    /// The slot table does not have one slot per characteristic.
    SlotCount {
        /// Characteristics in the shape.
        expected: usize,
        /// Slots given.
        given: usize,
    },
}

impl core::fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DatabaseError::NoAccessory => f.write_str("the database must start with an accessory"),
            DatabaseError::TooManyAccessories => {
                write!(f, "more than {MAX_ACCESSORIES} accessories")
            }
            DatabaseError::BadAid(aid) => write!(f, "aid {aid} is zero or used twice"),
            DatabaseError::PrimaryAid(aid) => write!(
                f,
                "the primary (first) accessory has aid {aid}; HomeKit requires aid 1"
            ),
            DatabaseError::NoProtocolInformation => f.write_str(
                "the primary accessory lacks the HAP Protocol Information service (A2) with its Version",
            ),
            DatabaseError::BadIid { aid, iid } => {
                write!(f, "iid {iid} of accessory {aid} is zero or used twice")
            }
            DatabaseError::CharacteristicOutsideService { aid, iid } => write!(
                f,
                "characteristic {aid}.{iid} comes before any service of its accessory"
            ),
            DatabaseError::NoAccessoryInformation(aid) => write!(
                f,
                "accessory {aid} needs the Accessory Information service as its first service, at iid 1"
            ),
            DatabaseError::MissingCharacteristic {
                aid,
                service,
                required,
            } => write!(
                f,
                "service {aid}.{service} lacks the required characteristic {required}"
            ),
            DatabaseError::BadLink {
                aid,
                service,
                linked,
            } => write!(
                f,
                "service {aid}.{service} links to {linked}, which is not a service of accessory {aid}"
            ),
            DatabaseError::FormatMismatch { aid, iid } => write!(
                f,
                "characteristic {aid}.{iid} has constraints for another format than its type"
            ),
            DatabaseError::DefinitionTooLarge { aid, iid } => write!(
                f,
                "characteristic {aid}.{iid} could take more than {MAX_CHARACTERISTIC_JSON} bytes of JSON; shorten its description or valid values"
            ),
            DatabaseError::MaxLenTooLarge { aid, iid } => write!(
                f,
                "characteristic {aid}.{iid} allows strings over {STRING_CAPACITY} bytes"
            ),
            DatabaseError::SlotCount { expected, given } => write!(
                f,
                "{given} value slots given for {expected} characteristics"
            ),
        }
    }
}

impl core::error::Error for DatabaseError {}

/// Why a value was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetValueError {
    /// No characteristic has this aid and iid.
    NotFound,
    /// The value breaks the characteristic's format or limits.
    Invalid(ValueError),
    /// The value would name something in a way iOS refuses.
    Name(name::NameError),
    /// A Firmware Revision that is not `x[.y[.z]]`; see [`revision`].
    FirmwareRevision(FirmwareRevisionError),
    /// The HAP Protocol Information service's Version is always [`PROTOCOL_VERSION`].
    ProtocolVersion,
}

impl core::fmt::Display for SetValueError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SetValueError::NotFound => f.write_str("no such characteristic"),
            SetValueError::Invalid(error) => write!(f, "invalid value: {error}"),
            SetValueError::Name(error) => write!(f, "{error}"),
            SetValueError::FirmwareRevision(error) => write!(f, "{error}"),
            SetValueError::ProtocolVersion => write!(
                f,
                "the HAP Protocol Information Version is always {PROTOCOL_VERSION}"
            ),
        }
    }
}

impl core::error::Error for SetValueError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            SetValueError::Invalid(error) => Some(error),
            SetValueError::Name(error) => Some(error),
            SetValueError::FirmwareRevision(error) => Some(error),
            SetValueError::NotFound | SetValueError::ProtocolVersion => None,
        }
    }
}

/// Where a characteristic is: its entry and its slot. Only [`Database::find`] makes
/// them, so indexing with one cannot fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CharacteristicRef {
    /// The accessory's aid.
    pub(crate) aid: u64,
    /// The index of its [`Entry`].
    pub(crate) entry: usize,
    /// The index of its [`Slot`].
    pub(crate) slot: usize,
}

/// The accessory database; see the [module docs](self).
#[derive(Debug)]
pub struct Database<'d> {
    entries: Table<'d, Entry<'d>>,
    slots: TableMut<'d, Slot>,
    /// Counts values set by the application.
    epoch: u64,
}

impl<'d> Database<'d> {
    /// Checks the shape and fills the slots with initial values.
    pub fn new(
        entries: impl Into<Table<'d, Entry<'d>>>,
        slots: impl Into<TableMut<'d, Slot>>,
    ) -> Result<Self, DatabaseError> {
        let entries = entries.into();
        let mut slots = slots.into();
        check_shape(&entries)?;
        let characteristics = entries
            .iter()
            .filter(|e| matches!(e, Entry::Characteristic(_)))
            .count();
        if characteristics != slots.len() {
            return Err(DatabaseError::SlotCount {
                expected: characteristics,
                given: slots.len(),
            });
        }
        let mut service = None;
        let defs = entries.iter().filter_map(|e| match e {
            Entry::Service(s) => {
                service = Some(s.kind.uuid);
                None
            }
            Entry::Characteristic(def) => Some((service, def)),
            Entry::Accessory(_) => None,
        });
        for (slot, (service, def)) in slots.iter_mut().zip(defs) {
            let value = if is_protocol_version(service, def) {
                OwnedValue::string(PROTOCOL_VERSION)
            } else {
                None
            };
            *slot = Slot {
                value: value.unwrap_or_else(|| OwnedValue::initial(&def.constraints)),
                ..Slot::EMPTY
            };
        }
        Ok(Self {
            entries,
            slots,
            epoch: 0,
        })
    }

    /// The shape, in document order.
    pub fn entries(&self) -> &[Entry<'d>] {
        &self.entries
    }

    /// How many characteristics there are, in all accessories.
    pub fn characteristic_count(&self) -> usize {
        self.slots.len()
    }

    /// How many characteristics controllers may subscribe to (`ev`): the subscriptions
    /// one connection needs to follow everything, as iOS does.
    pub fn evented_count(&self) -> usize {
        self.entries
            .iter()
            .filter(|entry| {
                matches!(entry, Entry::Characteristic(c) if c.perms.contains(Perms::EVENTS))
            })
            .count()
    }

    /// The digest the configuration number follows: the shape, and each accessory's
    /// Firmware Revision, since controllers cache it and a firmware update must raise
    /// the number (as in HomeKitADK).
    pub fn shape(&self) -> config::ShapeDigest {
        let mut shape = config::ShapeDigest::new();
        let mut slot = 0;
        for entry in self.entries.iter() {
            match entry {
                Entry::Accessory(aid) => shape.accessory(*aid),
                Entry::Service(s) => {
                    shape.service(s.iid, s.kind.uuid, s.primary, s.hidden);
                    for linked in s.linked.iter() {
                        shape.link(*linked);
                    }
                }
                Entry::Characteristic(c) => {
                    shape.characteristic(c.iid, c.kind.uuid, c.kind.format, c.perms);
                    if c.kind.uuid == characteristic::FIRMWARE_REVISION.uuid {
                        if let Some(OwnedValue::String(revision)) =
                            self.slots.get(slot).map(|s| &s.value)
                        {
                            shape.firmware_revision(revision);
                        }
                    }
                    slot += 1;
                }
            }
        }
        shape
    }

    /// The definition of the characteristic `aid`.`iid`.
    pub fn characteristic(&self, aid: u64, iid: u64) -> Option<&CharacteristicDef<'d>> {
        self.find(aid, iid).map(|at| self.definition(at))
    }

    /// Finds a characteristic by aid and iid.
    pub(crate) fn find(&self, aid: u64, iid: u64) -> Option<CharacteristicRef> {
        let mut current = 0;
        let mut slot = 0;
        for (index, entry) in self.entries.iter().enumerate() {
            match entry {
                Entry::Accessory(a) => current = *a,
                Entry::Characteristic(def) => {
                    if current == aid && def.iid == iid {
                        return Some(CharacteristicRef {
                            aid,
                            entry: index,
                            slot,
                        });
                    }
                    slot += 1;
                }
                Entry::Service(_) => {}
            }
        }
        None
    }

    /// The definition of a characteristic found with [`Database::find`].
    pub(crate) fn definition(&self, at: CharacteristicRef) -> &CharacteristicDef<'d> {
        match &self.entries[at.entry] {
            Entry::Characteristic(def) => def,
            // `find` only hands out references to characteristics.
            _ => unreachable!("a CharacteristicRef points at a characteristic"),
        }
    }

    /// The stored value of a characteristic.
    pub(crate) fn value(&self, at: CharacteristicRef) -> &OwnedValue {
        &self.slots[at.slot].value
    }

    /// The value of the characteristic `aid`.`iid`.
    pub fn get(&self, aid: u64, iid: u64) -> Option<&OwnedValue> {
        self.find(aid, iid).map(|at| self.value(at))
    }

    /// Sets a value from the application, checking it as a controller's write would be
    /// checked (and names as iOS checks them). Returns whether it changed.
    ///
    /// A float within tolerance of a step is stored rounded onto it, as a write would be
    /// ([`Constraints::check`]).
    pub fn set(
        &mut self,
        aid: u64,
        iid: u64,
        mut value: OwnedValue,
    ) -> Result<bool, SetValueError> {
        let at = self.find(aid, iid).ok_or(SetValueError::NotFound)?;
        self.check(at, &mut value)?;
        Ok(self.store(at, value, None))
    }

    /// Checks a value from the application for the characteristic at `at`, rounding a
    /// float onto its step.
    pub(crate) fn check(
        &self,
        at: CharacteristicRef,
        value: &mut OwnedValue,
    ) -> Result<(), SetValueError> {
        let def = self.definition(at);
        value
            .check(&def.constraints)
            .map_err(SetValueError::Invalid)?;
        if def.kind.uuid == characteristic::NAME.uuid
            || def.kind.uuid == characteristic::CONFIGURED_NAME.uuid
        {
            if let OwnedValue::String(text) = value {
                name::check_name(text).map_err(SetValueError::Name)?;
            }
        }
        if def.kind.uuid == characteristic::FIRMWARE_REVISION.uuid {
            if let OwnedValue::String(text) = value {
                revision::check_firmware_revision(text).map_err(SetValueError::FirmwareRevision)?;
            }
        }
        if is_protocol_version(self.service_of(at.entry), def)
            && !matches!(value, OwnedValue::String(text) if text.as_str() == PROTOCOL_VERSION)
        {
            return Err(SetValueError::ProtocolVersion);
        }
        Ok(())
    }

    /// The type of the service the entry at `entry` belongs to.
    fn service_of(&self, entry: usize) -> Option<crate::catalog::HapType> {
        self.entries[..entry].iter().rev().find_map(|e| match e {
            Entry::Service(s) => Some(s.kind.uuid),
            _ => None,
        })
    }

    /// Stores a checked value, from a connection's write or the application (`None`),
    /// and returns whether it changed. A button's every press is a change.
    pub(crate) fn store(
        &mut self,
        at: CharacteristicRef,
        value: OwnedValue,
        writer: Option<ConnectionId>,
    ) -> bool {
        let always_changes = self.definition(at).is_button();
        let slot = &mut self.slots[at.slot];
        if writer.is_none() {
            self.epoch += 1;
            slot.supplied = self.epoch;
        }
        if slot.value == value && !always_changes {
            return false;
        }
        slot.value = value;
        slot.version = slot.version.wrapping_add(1);
        slot.writer = writer;
        true
    }

    /// Stores a checked value from the application without counting it as a change:
    /// subscribers hear of it only with a later change or [`Database::touch`]. Returns
    /// whether the value differs from the one stored.
    pub(crate) fn store_quietly(&mut self, at: CharacteristicRef, value: OwnedValue) -> bool {
        self.epoch += 1;
        let slot = &mut self.slots[at.slot];
        slot.supplied = self.epoch;
        let changed = slot.value != value;
        slot.value = value;
        changed
    }

    /// Counts the stored value as changed by the application, so that subscribers are
    /// told it.
    pub(crate) fn touch(&mut self, at: CharacteristicRef) {
        let slot = &mut self.slots[at.slot];
        slot.version = slot.version.wrapping_add(1);
        slot.writer = None;
    }

    /// How many values the application has set so far.
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    pub(crate) fn slot(&self, index: usize) -> &Slot {
        &self.slots[index]
    }
}

/// Whether `def`, of a service of type `service`, is the HAP Protocol Information
/// service's Version.
fn is_protocol_version(
    service: Option<crate::catalog::HapType>,
    def: &CharacteristicDef<'_>,
) -> bool {
    service == Some(service::PROTOCOL_INFORMATION.uuid)
        && def.kind.uuid == characteristic::VERSION.uuid
}

/// Checks ids, nesting, required characteristics, links and capacities, and the rules
/// of the [module docs](self) for the primary accessory.
fn check_shape(entries: &[Entry<'_>]) -> Result<(), DatabaseError> {
    let mut accessories = 0;
    let mut at = 0;
    while at < entries.len() {
        let Entry::Accessory(aid) = entries[at] else {
            return Err(DatabaseError::NoAccessory);
        };
        accessories += 1;
        if accessories > MAX_ACCESSORIES {
            return Err(DatabaseError::TooManyAccessories);
        }
        let earlier = entries[..at]
            .iter()
            .any(|e| matches!(e, Entry::Accessory(a) if *a == aid));
        if aid == 0 || earlier {
            return Err(DatabaseError::BadAid(aid));
        }
        let end = entries[at + 1..]
            .iter()
            .position(|e| matches!(e, Entry::Accessory(_)))
            .map_or(entries.len(), |p| at + 1 + p);
        if accessories == 1 && aid != 1 {
            return Err(DatabaseError::PrimaryAid(aid));
        }
        check_accessory(aid, &entries[at + 1..end])?;
        if accessories == 1 {
            let protocol_information = entries[at + 1..end].iter().any(
                |e| matches!(e, Entry::Service(s) if s.kind.uuid == service::PROTOCOL_INFORMATION.uuid),
            );
            if !protocol_information {
                return Err(DatabaseError::NoProtocolInformation);
            }
        }
        at = end;
    }
    if accessories == 0 {
        return Err(DatabaseError::NoAccessory);
    }
    Ok(())
}

fn check_accessory(aid: u64, entries: &[Entry<'_>]) -> Result<(), DatabaseError> {
    let iid_of = |e: &Entry<'_>| match e {
        Entry::Service(s) => s.iid,
        Entry::Characteristic(c) => c.iid,
        Entry::Accessory(_) => 0,
    };
    for (n, entry) in entries.iter().enumerate() {
        let iid = iid_of(entry);
        if iid == 0 || entries[..n].iter().any(|e| iid_of(e) == iid) {
            return Err(DatabaseError::BadIid { aid, iid });
        }
    }
    match entries.first() {
        Some(Entry::Service(info))
            if info.iid == 1 && info.kind.uuid == service::ACCESSORY_INFORMATION.uuid => {}
        Some(Entry::Characteristic(c)) => {
            return Err(DatabaseError::CharacteristicOutsideService { aid, iid: c.iid })
        }
        _ => return Err(DatabaseError::NoAccessoryInformation(aid)),
    }
    for (n, entry) in entries.iter().enumerate() {
        match entry {
            Entry::Service(s) => {
                let characteristics = entries[n + 1..].iter().map_while(|e| match e {
                    Entry::Characteristic(c) => Some(c),
                    _ => None,
                });
                if let Some(required) = missing_required(characteristics, s.kind.required) {
                    return Err(DatabaseError::MissingCharacteristic {
                        aid,
                        service: s.iid,
                        required,
                    });
                }
                for linked in s.linked.iter() {
                    let is_service = entries
                        .iter()
                        .any(|e| matches!(e, Entry::Service(t) if t.iid == *linked));
                    if !is_service {
                        return Err(DatabaseError::BadLink {
                            aid,
                            service: s.iid,
                            linked: *linked,
                        });
                    }
                }
            }
            Entry::Characteristic(c) => {
                if usize::from(c.constraints.max_len) > STRING_CAPACITY {
                    return Err(DatabaseError::MaxLenTooLarge { aid, iid: c.iid });
                }
                if c.constraints.format != c.kind.format {
                    return Err(DatabaseError::FormatMismatch { aid, iid: c.iid });
                }
                if json_bound(c) > MAX_CHARACTERISTIC_JSON {
                    return Err(DatabaseError::DefinitionTooLarge { aid, iid: c.iid });
                }
            }
            Entry::Accessory(_) => {}
        }
    }
    Ok(())
}

/// An upper bound on the JSON of one characteristic: the fixed fields at their longest,
/// the description with every byte escaped, the valid values at ten digits each, and
/// the largest value, but for TLV8 and data values, which the server splits across
/// chunks when they need it. Strings hold no control characters (writes of them are
/// refused), so their escapes double them at most.
fn json_bound(c: &CharacteristicDef<'_>) -> usize {
    const FIXED: usize = 500;
    let value = match c.kind.format {
        Format::String => 2 * usize::from(c.constraints.max_len) + 2,
        _ => 30,
    };
    FIXED + value + 6 * c.description.map_or(0, str::len) + 11 * c.constraints.valid_values.len()
}

/// The first type in `required` that none of `characteristics` has.
fn missing_required<'a, 'd: 'a>(
    characteristics: impl Iterator<Item = &'a CharacteristicDef<'d>> + Clone,
    required: &[&'static CharacteristicType],
) -> Option<&'static str> {
    required
        .iter()
        .find(|r| !characteristics.clone().any(|c| c.kind.uuid == r.uuid))
        .map(|r| r.name)
}

#[cfg(test)]
mod tests;
