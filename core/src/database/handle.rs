//! [`Handle`]: a characteristic's aid and iid together with the Rust type of its value.
//!
//! The builder ([`ServiceBuilder::handle`](super::builder::ServiceBuilder::handle)) or
//! the database ([`Database::handle`]) hands one out for a
//! [`TypedCharacteristic`]. With it the application sets and reads values as Rust
//! types ([`Server::set`](crate::server::Server::set),
//! [`Server::get`](crate::server::Server::get)) and picks its own characteristic's
//! writes out of the events ([`Handle::decode`]).
//!
//! A garage door opener, whose run loop hands each [`Event`](crate::server::Event) to
//! `on_event`:
//!
//! ```
//! use hap_core::catalog::service as s;
//! use hap_core::catalog::typed::{self, CurrentDoorState, TargetDoorState};
//! use hap_core::database::builder::{AccessoryInfo, DatabaseBuilder};
//! use hap_core::database::{handle::Handle, ids::IdMap};
//! use hap_core::pairing::PairingId;
//! use hap_core::server::{Config, Event, Server};
//! use hap_core::{setup::SetupCode, state::AccessoryState};
//! # use rand_core::SeedableRng;
//! # let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
//!
//! struct Door {
//!     target: Handle<TargetDoorState>,
//!     current: Handle<CurrentDoorState>,
//! }
//!
//! fn on_event(server: &mut Server<'_>, door: &Door, event: &Event) {
//!     if let Event::Write { aid, iid, value, .. } = event {
//!         let moving = match door.target.decode(*aid, *iid, value) {
//!             Some(TargetDoorState::Open) => CurrentDoorState::Opening,
//!             Some(TargetDoorState::Closed) => CurrentDoorState::Closing,
//!             None => return,
//!         };
//!         // Start the motor here; subscribers hear of the new state.
//!         server.set(door.current, moving).unwrap();
//!     }
//! }
//!
//! let mut ids = IdMap::new();
//! let mut builder = DatabaseBuilder::new(&mut ids);
//! let info = AccessoryInfo::new("Garage", "Acme", "G1", "0001", "1.0");
//! let aid = builder.accessory("garage", &info);
//! let service = builder
//!     .service(&s::GARAGE_DOOR_OPENER)
//!     .primary()
//!     .initial(typed::CURRENT_DOOR_STATE, CurrentDoorState::Closed)
//!     .initial(typed::TARGET_DOOR_STATE, TargetDoorState::Closed);
//! let door = Door {
//!     target: service.handle(typed::TARGET_DOOR_STATE).unwrap(),
//!     current: service.handle(typed::CURRENT_DOOR_STATE).unwrap(),
//! };
//! let database = builder.build().unwrap();
//! assert_eq!(database.handle(aid, typed::TARGET_DOOR_STATE), Some(door.target));
//!
//! let code: SetupCode = "518-08-582".parse().unwrap();
//! let state = AccessoryState::generate(&code, &mut rng); // once, then load it
//! let mut server = Server::new(state, database, Config::default());
//! assert_eq!(server.get(door.current), Some(CurrentDoorState::Closed));
//!
//! // What the run loop reports when a controller opens the door:
//! let write = Event::Write {
//!     aid,
//!     iid: door.target.iid(),
//!     value: door.target.into_owned(TargetDoorState::Open),
//!     controller: PairingId::new(b"phone").unwrap(),
//! };
//! on_event(&mut server, &door, &write);
//! assert_eq!(server.get(door.current), Some(CurrentDoorState::Opening));
//! ```

use core::fmt;
use core::marker::PhantomData;

use super::{Database, Entry, OwnedValue};
use crate::catalog::typed::{CharacteristicValue, TypedCharacteristic};

/// The aid and iid of a characteristic whose values are of type `T`; see the
/// [module docs](self).
///
/// Only the builder and the database make handles, after checking that the
/// characteristic has the type, so a handle's values convert to `T`. A handle from
/// another database may address nothing, or something else: then reads give `None` and
/// writes [`SetValueError`](super::SetValueError)s, as with raw ids.
pub struct Handle<T> {
    aid: u64,
    iid: u64,
    value: PhantomData<fn() -> T>,
}

impl<T: CharacteristicValue> Handle<T> {
    pub(crate) const fn new(aid: u64, iid: u64) -> Self {
        Self {
            aid,
            iid,
            value: PhantomData,
        }
    }

    /// The accessory's aid.
    pub const fn aid(&self) -> u64 {
        self.aid
    }

    /// The characteristic's iid.
    pub const fn iid(&self) -> u64 {
        self.iid
    }

    /// Whether `aid`.`iid` is this characteristic: to match an
    /// [`Event::Read`](crate::server::Event::Read), say.
    pub const fn is(&self, aid: u64, iid: u64) -> bool {
        self.aid == aid && self.iid == iid
    }

    /// The value, if `aid`.`iid` is this characteristic and `value` one of its values:
    /// to pick this characteristic's writes out of the events.
    pub fn decode(&self, aid: u64, iid: u64, value: &OwnedValue) -> Option<T> {
        if self.is(aid, iid) {
            T::from_owned(value)
        } else {
            None
        }
    }

    /// `value` as the database holds it, for the untyped APIs.
    pub fn into_owned(&self, value: T) -> OwnedValue {
        value.into_owned()
    }
}

// By hand rather than derived, so that they hold whatever `T` is.
impl<T> Clone for Handle<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Handle<T> {}

impl<T> PartialEq for Handle<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.aid, self.iid) == (other.aid, other.iid)
    }
}

impl<T> Eq for Handle<T> {}

impl<T> core::hash::Hash for Handle<T> {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        (self.aid, self.iid).hash(state);
    }
}

impl<T> fmt::Debug for Handle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({}.{})", self.aid, self.iid)
    }
}

impl<'d> Database<'d> {
    /// The handle of the accessory's one characteristic of type `typed`; `None` if it
    /// has none, or several (a Name in each of its services, say: use
    /// [`Database::handle_at`] then).
    pub fn handle<T: CharacteristicValue>(
        &self,
        aid: u64,
        typed: TypedCharacteristic<T>,
    ) -> Option<Handle<T>> {
        let mut current = None;
        let mut found = None;
        for entry in self.entries.iter() {
            match entry {
                Entry::Accessory(a) => current = Some(*a),
                Entry::Characteristic(def)
                    if current == Some(aid) && def.kind.uuid == typed.kind().uuid =>
                {
                    if found.is_some() {
                        return None;
                    }
                    found = Some(def.iid);
                }
                _ => {}
            }
        }
        found.and_then(|iid| self.handle_at(aid, iid, typed))
    }

    /// The handle of `aid`.`iid`, if that characteristic is of type `typed`.
    pub fn handle_at<T: CharacteristicValue>(
        &self,
        aid: u64,
        iid: u64,
        typed: TypedCharacteristic<T>,
    ) -> Option<Handle<T>> {
        let def = self.characteristic(aid, iid)?;
        let fits = def.kind.uuid == typed.kind().uuid && def.constraints.format == T::FORMAT;
        fits.then(|| Handle::new(aid, iid))
    }

    /// The value of the handle's characteristic; `None` if this database has no such
    /// characteristic or its value is not of type `T`.
    pub fn read<T: CharacteristicValue>(&self, handle: Handle<T>) -> Option<T> {
        self.get(handle.aid, handle.iid).and_then(T::from_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::typed::{self, CurrentDoorState, TargetDoorState, Text};
    use crate::database::SetValueError;

    fn handle<T: CharacteristicValue>(aid: u64, iid: u64) -> Handle<T> {
        Handle::new(aid, iid)
    }

    #[test]
    fn decode_matches_only_its_own_aid_and_iid() {
        let target = handle::<TargetDoorState>(2, 10);
        let open = OwnedValue::Uint8(0);
        assert_eq!(target.decode(2, 10, &open), Some(TargetDoorState::Open));
        assert_eq!(target.decode(2, 11, &open), None);
        assert_eq!(target.decode(1, 10, &open), None);
        assert_eq!(target.decode(10, 2, &open), None);
        assert!(target.is(2, 10));
        assert!(!target.is(2, 11));
    }

    #[test]
    fn decode_refuses_a_value_of_another_format_or_range() {
        let target = handle::<TargetDoorState>(2, 10);
        assert_eq!(target.decode(2, 10, &OwnedValue::Uint8(2)), None);
        assert_eq!(target.decode(2, 10, &OwnedValue::Uint16(0)), None);
        assert_eq!(target.decode(2, 10, &OwnedValue::Bool(false)), None);
        let on = handle::<bool>(1, 9);
        assert_eq!(on.decode(1, 9, &OwnedValue::Uint8(1)), None);
        assert_eq!(on.decode(1, 9, &OwnedValue::Bool(true)), Some(true));
    }

    #[test]
    fn handles_are_copy_and_compare_by_address() {
        let a = handle::<u8>(1, 9);
        let b = a;
        assert_eq!(a, b);
        assert_ne!(a, handle::<u8>(1, 10));
        assert_eq!(std::format!("{a:?}"), "Handle(1.9)");
        assert_eq!((a.aid(), a.iid()), (1, 9));
        assert_eq!(a.into_owned(3), OwnedValue::Uint8(3));
    }

    #[cfg(feature = "alloc")]
    #[test]
    fn the_database_hands_out_checked_handles() {
        use crate::catalog::service as s;
        use crate::database::builder::{AccessoryInfo, DatabaseBuilder};
        use crate::database::ids::IdMap;

        let mut ids = IdMap::new();
        let mut builder = DatabaseBuilder::new(&mut ids);
        let info = AccessoryInfo::new("Garage", "Acme", "G1", "0001", "1.0");
        let aid = builder.accessory("garage", &info);
        let door = builder
            .service(&s::GARAGE_DOOR_OPENER)
            .initial(typed::TARGET_DOOR_STATE, TargetDoorState::Closed)
            .characteristic(&crate::catalog::characteristic::NAME);
        let target = door.handle(typed::TARGET_DOOR_STATE).unwrap();
        let current = door.handle(typed::CURRENT_DOOR_STATE).unwrap();
        assert_eq!(door.handle(typed::ON), None);
        let mut database = builder.build().unwrap();

        assert_eq!(database.handle(aid, typed::TARGET_DOOR_STATE), Some(target));
        assert_eq!(database.handle(aid, typed::ON), None);
        assert_eq!(database.handle(aid + 1, typed::TARGET_DOOR_STATE), None);
        // Accessory Information and the door each have a Name.
        assert_eq!(database.handle(aid, typed::NAME), None);
        let first_name = database.entries().iter().find_map(|entry| match entry {
            Entry::Characteristic(def) if def.kind.uuid == typed::NAME.kind().uuid => Some(def.iid),
            _ => None,
        });
        let name = database.handle_at(aid, first_name.unwrap(), typed::NAME);
        assert_eq!(name.map(|h| h.iid()), first_name);
        assert_eq!(database.handle_at(aid, target.iid(), typed::ON), None);
        assert_eq!(
            database.handle_at(aid, target.iid(), typed::TARGET_DOOR_STATE),
            Some(target)
        );

        assert_eq!(database.read(target), Some(TargetDoorState::Closed));
        assert_eq!(database.read(current), Some(CurrentDoorState::Open));
        assert_eq!(
            database.read(name.unwrap()),
            Some(Text::try_from("Garage").unwrap())
        );
        assert_eq!(
            database.set(aid, target.iid(), OwnedValue::Uint8(0)),
            Ok(true)
        );
        assert_eq!(database.read(target), Some(TargetDoorState::Open));
        assert_eq!(database.read(handle::<TargetDoorState>(aid, 999)), None);
        assert_eq!(
            database.set(aid, 999, OwnedValue::Uint8(0)),
            Err(SetValueError::NotFound)
        );
    }
}
