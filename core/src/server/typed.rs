//! Setting and reading values through typed [`Handle`]s.

use super::Server;
use crate::catalog::typed::CharacteristicValue;
use crate::database::handle::Handle;
use crate::database::SetValueError;

impl Server<'_> {
    /// Sets the handle's characteristic to `value`: [`Server::set_value`] with a Rust
    /// value, checked and told to subscribers the same way. Returns whether it changed.
    pub fn set<T: CharacteristicValue>(
        &mut self,
        handle: Handle<T>,
        value: T,
    ) -> Result<bool, SetValueError> {
        self.set_value(handle.aid(), handle.iid(), value.into_owned())
    }

    /// The value of the handle's characteristic; `None` if the database has no such
    /// characteristic.
    pub fn get<T: CharacteristicValue>(&self, handle: Handle<T>) -> Option<T> {
        self.database().read(handle)
    }
}

#[cfg(all(test, feature = "alloc"))]
mod tests {
    use super::*;
    use crate::catalog::service as s;
    use crate::catalog::typed::{self, CurrentDoorState, TargetDoorState};
    use crate::catalog::value::ValueError;
    use crate::database::builder::{AccessoryInfo, DatabaseBuilder};
    use crate::database::ids::IdMap;
    use crate::database::OwnedValue;
    use crate::server::Config;
    use crate::state::AccessoryState;

    fn garage() -> (Server<'static>, Handle<TargetDoorState>, Handle<i32>) {
        let mut ids = IdMap::new();
        let mut builder = DatabaseBuilder::new(&mut ids);
        let info = AccessoryInfo::new("Garage", "Acme", "G1", "0001", "1.0");
        builder.accessory("garage", &info);
        let door = builder.service(&s::GARAGE_DOOR_OPENER);
        let target = door.handle(typed::TARGET_DOOR_STATE).unwrap();
        let light = builder
            .service(&s::LIGHTBULB)
            .configure(&crate::catalog::characteristic::BRIGHTNESS, |def| {
                def.with_range(10.0, 90.0)
            });
        let brightness = light.handle(typed::BRIGHTNESS).unwrap();
        let database = builder.build().unwrap();
        let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(1);
        let code = "518-08-582".parse().unwrap();
        let state = AccessoryState::generate(&code, &mut rng);
        (
            Server::new(state, database, Config::default()),
            target,
            brightness,
        )
    }

    #[test]
    fn set_and_get_speak_rust_types() {
        let (mut server, target, brightness) = garage();
        assert_eq!(server.get(target), Some(TargetDoorState::Open));
        assert_eq!(server.set(target, TargetDoorState::Closed), Ok(true));
        assert_eq!(server.set(target, TargetDoorState::Closed), Ok(false));
        assert_eq!(server.get(target), Some(TargetDoorState::Closed));
        assert_eq!(
            server.database().get(target.aid(), target.iid()),
            Some(&OwnedValue::Uint8(1))
        );
        assert_eq!(server.set(brightness, 40), Ok(true));
        assert_eq!(server.get(brightness), Some(40));
    }

    #[test]
    fn set_still_checks_the_characteristic_limits() {
        let (mut server, _, brightness) = garage();
        assert_eq!(
            server.set(brightness, 95),
            Err(SetValueError::Invalid(ValueError::OutOfRange))
        );
        assert_eq!(server.get(brightness), Some(10));
    }

    #[test]
    fn a_handle_for_nothing_is_refused() {
        let (mut server, target, _) = garage();
        let stray = Handle::<CurrentDoorState>::new(target.aid(), 999);
        assert_eq!(
            server.set(stray, CurrentDoorState::Open),
            Err(SetValueError::NotFound)
        );
        assert_eq!(server.get(stray), None);
    }
}
