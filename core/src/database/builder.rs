//! Builds a [`Database`] from catalog types, with ids from the stable [`IdMap`].
//!
//! The builder adds what HomeKit requires and the application may leave out: the
//! characteristics each service type requires, the Accessory Information service (first,
//! at iid 1) of each accessory, and the HAP Protocol Information service (type `A2`, its
//! Version `1.1.0`) of the primary accessory, the first one added, which gets aid 1 from
//! a new [`IdMap`]. [`DatabaseBuilder::build`] then checks the rules of the
//! [database docs](super), including the form of the Firmware Revision (`x[.y[.z]]`).
//!
//! Protocol Information is added last, with ids taken when the database is built, so
//! that an accessory whose ids were stored before the builder added it keeps every id it
//! had and only the new service and characteristic get fresh ones.
//!
//! ```
//! use hap_core::catalog::{characteristic as c, service as s};
//! use hap_core::database::builder::{AccessoryInfo, DatabaseBuilder};
//! use hap_core::database::{ids::IdMap, OwnedValue};
//!
//! let mut ids = IdMap::new(); // load it from storage after the first run
//! let mut builder = DatabaseBuilder::new(&mut ids);
//! let aid = builder.accessory("light", &AccessoryInfo::new("Desk Lamp", "Acme", "L1", "0001", "1.0"));
//! let on = builder
//!     .service(&s::LIGHTBULB) // adds the required On characteristic
//!     .primary()
//!     .characteristic(&c::BRIGHTNESS)
//!     .iid_of(&c::ON);
//! let database = builder.build().unwrap();
//! assert_eq!(database.get(aid, on.unwrap()), Some(&OwnedValue::Bool(false)));
//! // Persist `ids` if `ids.take_changed()`.
//! ```

use alloc::string::String;
use alloc::vec::Vec;

use super::handle::Handle;
use super::ids::IdMap;
use super::{CharacteristicDef, Database, DatabaseError, Entry, OwnedValue, ServiceDef};
use super::{SetValueError, Slot, Table};
use crate::catalog::typed::{CharacteristicValue, TypedCharacteristic};
use crate::catalog::{characteristic as c, service as s, CharacteristicType, ServiceType};

/// The Accessory Information every accessory carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessoryInfo<'a> {
    /// The name shown in the Home app; iOS accepts letters, digits, spaces and
    /// apostrophes.
    pub name: &'a str,
    /// The manufacturer.
    pub manufacturer: &'a str,
    /// The model.
    pub model: &'a str,
    /// The serial number.
    pub serial_number: &'a str,
    /// The firmware revision: `x[.y[.z]]` of decimal numbers, such as `1.0.0` (see
    /// [`super::revision`]). Changing it raises the configuration number.
    pub firmware_revision: &'a str,
}

impl<'a> AccessoryInfo<'a> {
    /// All five fields, in the order above.
    pub fn new(
        name: &'a str,
        manufacturer: &'a str,
        model: &'a str,
        serial_number: &'a str,
        firmware_revision: &'a str,
    ) -> Self {
        Self {
            name,
            manufacturer,
            model,
            serial_number,
            firmware_revision,
        }
    }
}

/// Why [`DatabaseBuilder::build`] failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// A service was added before any accessory.
    ServiceBeforeAccessory,
    /// The shape is invalid.
    Database(DatabaseError),
    /// An initial value is invalid.
    Value {
        /// The accessory.
        aid: u64,
        /// The characteristic.
        iid: u64,
        /// What is wrong with it.
        error: SetValueError,
    },
}

impl core::fmt::Display for BuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BuildError::ServiceBeforeAccessory => {
                f.write_str("a service was added before any accessory")
            }
            BuildError::Database(error) => write!(f, "{error}"),
            BuildError::Value { aid, iid, error } => {
                write!(f, "initial value of {aid}.{iid}: {error}")
            }
        }
    }
}

impl core::error::Error for BuildError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            BuildError::Database(error) => Some(error),
            BuildError::Value { error, .. } => Some(error),
            BuildError::ServiceBeforeAccessory => None,
        }
    }
}

impl From<DatabaseError> for BuildError {
    fn from(error: DatabaseError) -> Self {
        BuildError::Database(error)
    }
}

/// Assembles a database; see the [module docs](self).
#[derive(Debug)]
pub struct DatabaseBuilder<'m> {
    ids: &'m mut IdMap,
    entries: Vec<Entry<'static>>,
    values: Vec<(u64, u64, OwnedValue)>,
    aid: Option<u64>,
    error: Option<BuildError>,
}

impl<'m> DatabaseBuilder<'m> {
    /// A builder that takes ids from `ids`.
    pub fn new(ids: &'m mut IdMap) -> Self {
        Self {
            ids,
            entries: Vec::new(),
            values: Vec::new(),
            aid: None,
            error: None,
        }
    }

    /// Starts an accessory keyed by `key` (stable across restarts: a serial number, say)
    /// with its Accessory Information, and returns its aid. Add the bridge (or the only
    /// accessory) first, so that it gets aid 1: [`DatabaseBuilder::build`] refuses a
    /// first accessory with another aid ([`DatabaseError::PrimaryAid`]).
    pub fn accessory(&mut self, key: &str, info: &AccessoryInfo<'_>) -> u64 {
        let aid = self.ids.aid(key);
        self.entries.push(Entry::Accessory(aid));
        self.aid = Some(aid);
        let text = [
            (&c::NAME, info.name),
            (&c::MANUFACTURER, info.manufacturer),
            (&c::MODEL, info.model),
            (&c::SERIAL_NUMBER, info.serial_number),
            (&c::FIRMWARE_REVISION, info.firmware_revision),
        ];
        let mut service = self.service(&s::ACCESSORY_INFORMATION);
        for (kind, value) in text {
            service = match OwnedValue::string(value) {
                Some(value) => service.value(kind, value),
                None => service.fail(
                    kind,
                    SetValueError::Invalid(crate::catalog::value::ValueError::TooLong),
                ),
            };
        }
        aid
    }

    /// Adds a service of `kind` to the current accessory, with the characteristics its
    /// type requires.
    pub fn service(&mut self, kind: &'static ServiceType) -> ServiceBuilder<'_, 'm> {
        self.service_with_subtype(kind, "")
    }

    /// Adds a service like [`DatabaseBuilder::service`], told apart from others of the same
    /// type on this accessory by `subtype` (stable across restarts: "outlet 2", say).
    pub fn service_with_subtype(
        &mut self,
        kind: &'static ServiceType,
        subtype: &str,
    ) -> ServiceBuilder<'_, 'm> {
        let Some(aid) = self.aid else {
            self.error.get_or_insert(BuildError::ServiceBeforeAccessory);
            return ServiceBuilder {
                builder: self,
                aid: 0,
                subtype: String::new(),
                entry: None,
            };
        };
        // The accessory exists, so the map has an entry for it.
        let iid = self.ids.iid(aid, kind.uuid, subtype, None).unwrap_or(0);
        self.entries
            .push(Entry::Service(ServiceDef::new(iid, kind)));
        let entry = Some(self.entries.len() - 1);
        let mut service = ServiceBuilder {
            builder: self,
            aid,
            subtype: subtype.into(),
            entry,
        };
        for required in kind.required {
            service = service.characteristic(required);
        }
        service
    }

    /// Adds the HAP Protocol Information service to the primary accessory, unless the
    /// application did, and checks everything (see the [module docs](self)) to build the
    /// database.
    pub fn build(mut self) -> Result<Database<'static>, BuildError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        self.add_protocol_information();
        let slots = self
            .entries
            .iter()
            .filter(|e| matches!(e, Entry::Characteristic(_)))
            .map(|_| Slot::EMPTY)
            .collect::<Vec<_>>();
        let mut database = Database::new(self.entries, slots)?;
        for (aid, iid, value) in self.values {
            database
                .set(aid, iid, value)
                .map_err(|error| BuildError::Value { aid, iid, error })?;
        }
        Ok(database)
    }
}

impl DatabaseBuilder<'_> {
    /// Appends the HAP Protocol Information service, with its Version, to the primary
    /// accessory if it lacks one. Its ids come from the map now, after every other id of
    /// the accessory was asked for: a map stored before the service existed gives them
    /// fresh ids and changes no other.
    fn add_protocol_information(&mut self) {
        let Some(Entry::Accessory(aid)) = self.entries.first() else {
            return;
        };
        let aid = *aid;
        let end = self.entries[1..]
            .iter()
            .position(|e| matches!(e, Entry::Accessory(_)))
            .map_or(self.entries.len(), |p| 1 + p);
        let present = self.entries[1..end].iter().any(
            |e| matches!(e, Entry::Service(def) if def.kind.uuid == s::PROTOCOL_INFORMATION.uuid),
        );
        if present {
            return;
        }
        let kind = s::PROTOCOL_INFORMATION.uuid;
        // The accessory exists, so the map has an entry for it.
        let service = self.ids.iid(aid, kind, "", None).unwrap_or(0);
        let version = self
            .ids
            .iid(aid, kind, "", Some(c::VERSION.uuid))
            .unwrap_or(0);
        self.entries.splice(
            end..end,
            [
                Entry::Service(ServiceDef::new(service, &s::PROTOCOL_INFORMATION)),
                Entry::Characteristic(CharacteristicDef::new(version, &c::VERSION)),
            ],
        );
    }
}

/// Adds characteristics to a service; see [`DatabaseBuilder::service`].
#[derive(Debug)]
pub struct ServiceBuilder<'b, 'm> {
    builder: &'b mut DatabaseBuilder<'m>,
    aid: u64,
    subtype: String,
    /// The service's entry, unless the service could not be added.
    entry: Option<usize>,
}

impl ServiceBuilder<'_, '_> {
    /// The service's iid.
    pub fn iid(&self) -> u64 {
        match self.entry.map(|e| &self.builder.entries[e]) {
            Some(Entry::Service(s)) => s.iid,
            _ => 0,
        }
    }

    /// The iid of this service's characteristic of type `kind`, if it has one.
    pub fn iid_of(&self, kind: &CharacteristicType) -> Option<u64> {
        self.find(kind).map(|at| match &self.builder.entries[at] {
            Entry::Characteristic(def) => def.iid,
            _ => 0,
        })
    }

    /// The typed handle of this service's characteristic of type `typed`, if it has
    /// one; see [`handle`](super::handle).
    pub fn handle<T: CharacteristicValue>(
        &self,
        typed: TypedCharacteristic<T>,
    ) -> Option<Handle<T>> {
        self.iid_of(typed.kind())
            .map(|iid| Handle::new(self.aid, iid))
    }

    /// Sets the initial value of this service's characteristic of type `typed`, adding
    /// the characteristic if missing: [`ServiceBuilder::value`] with a Rust value.
    pub fn initial<T: CharacteristicValue>(self, typed: TypedCharacteristic<T>, value: T) -> Self {
        self.value(typed.kind(), value.into_owned())
    }

    /// Marks the service as the accessory's primary one.
    pub fn primary(mut self) -> Self {
        self.with_service(|s| s.primary = true);
        self
    }

    /// Marks the service as hidden.
    pub fn hidden(mut self) -> Self {
        self.with_service(|s| s.hidden = true);
        self
    }

    /// Links the service to another service of the accessory, by iid.
    pub fn linked_to(mut self, iid: u64) -> Self {
        self.with_service(|s| {
            let mut linked = s.linked.to_vec();
            linked.push(iid);
            s.linked = Table::Owned(linked);
        });
        self
    }

    /// Makes the service (a Lightbulb) ready for Adaptive Lighting: adds Brightness,
    /// ColorTemperature and the three characteristics the Home app drives it through,
    /// where missing. The engine is [`crate::adaptive::AdaptiveLighting`].
    pub fn adaptive_lighting(self) -> Self {
        self.characteristic(&c::BRIGHTNESS)
            .characteristic(&c::COLOR_TEMPERATURE)
            .characteristic(&c::SUPPORTED_CHARACTERISTIC_VALUE_TRANSITION_CONFIGURATION)
            .characteristic(&c::CHARACTERISTIC_VALUE_TRANSITION_CONTROL)
            .characteristic(&c::CHARACTERISTIC_VALUE_ACTIVE_TRANSITION_COUNT)
    }

    /// Adds a characteristic of type `kind`, unless the service has one already.
    pub fn characteristic(self, kind: &'static CharacteristicType) -> Self {
        self.configure(kind, |def| def)
    }

    /// Adds a characteristic of type `kind` if missing, and adjusts its definition: to
    /// narrow its range or to read it on demand, say.
    pub fn configure(
        self,
        kind: &'static CharacteristicType,
        adjust: impl FnOnce(CharacteristicDef<'static>) -> CharacteristicDef<'static>,
    ) -> Self {
        let Some(service) = self.entry else {
            return self;
        };
        let at = match self.find(kind) {
            Some(at) => at,
            None => {
                let end = self.end();
                let builder = &mut *self.builder;
                let Entry::Service(def) = &builder.entries[service] else {
                    return self;
                };
                let service_type = def.kind.uuid;
                let iid = builder
                    .ids
                    .iid(self.aid, service_type, &self.subtype, Some(kind.uuid))
                    .unwrap_or(0);
                builder.entries.insert(
                    end,
                    Entry::Characteristic(CharacteristicDef::new(iid, kind)),
                );
                end
            }
        };
        if let Entry::Characteristic(def) = &mut self.builder.entries[at] {
            *def = adjust(*def);
        }
        self
    }

    /// Sets the initial value of this service's characteristic of type `kind`, adding
    /// the characteristic if missing.
    pub fn value(self, kind: &'static CharacteristicType, value: OwnedValue) -> Self {
        let service = self.characteristic(kind);
        if let Some(iid) = service.iid_of(kind) {
            service.builder.values.push((service.aid, iid, value));
        }
        service
    }

    fn fail(self, kind: &'static CharacteristicType, error: SetValueError) -> Self {
        let iid = self.iid_of(kind).unwrap_or(0);
        let aid = self.aid;
        self.builder
            .error
            .get_or_insert(BuildError::Value { aid, iid, error });
        self
    }

    fn with_service(&mut self, change: impl FnOnce(&mut ServiceDef<'static>)) {
        if let Some(Entry::Service(def)) = self.entry.map(|e| &mut self.builder.entries[e]) {
            change(def);
        }
    }

    /// Where the service's characteristics end.
    fn end(&self) -> usize {
        let start = self.entry.map_or(0, |e| e + 1);
        let entries = &self.builder.entries;
        entries[start..]
            .iter()
            .position(|e| !matches!(e, Entry::Characteristic(_)))
            .map_or(entries.len(), |p| start + p)
    }

    fn find(&self, kind: &CharacteristicType) -> Option<usize> {
        let start = self.entry? + 1;
        (start..self.end()).find(|at| {
            matches!(&self.builder.entries[*at], Entry::Characteristic(def) if def.kind.uuid == kind.uuid)
        })
    }
}
