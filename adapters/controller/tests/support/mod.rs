//! What the hapctl tests share: an accessory to talk to.
#![allow(dead_code, unreachable_pub)] // Each test file uses a part.

use std::net::{Ipv4Addr, SocketAddr};

use hap_core::catalog::{characteristic as c, service as s, Category};
use hap_core::database::builder::{AccessoryInfo, DatabaseBuilder};
use hap_std::host::Announcer;
use hap_std::store::MemoryStore;
use hap_std::{Bind, Options, Running, Setup};

/// The light's setup code.
pub const CODE: &str = "518-08-582";

/// A light on 127.0.0.1 with a fresh in-memory store, and its On's aid and iid.
pub struct Light {
    pub running: Running,
    pub address: SocketAddr,
    pub on: (u64, u64),
}

impl Light {
    /// Starts the light, advertised nowhere.
    pub fn start() -> Light {
        Light::start_with(None)
    }

    /// [`Light::start`], advertised by `announcer`.
    pub fn start_with(announcer: Option<Box<dyn Announcer>>) -> Light {
        let store = MemoryStore::default();
        let mut setup =
            Setup::load_or_create(Box::new(store), Some(CODE.parse().unwrap()), None).unwrap();
        let mut builder = DatabaseBuilder::new(setup.ids());
        let aid = builder.accessory(
            "light",
            &AccessoryInfo::new("Test Light", "Acme", "L1", "1", "1.0"),
        );
        let on = builder
            .service(&s::LIGHTBULB)
            .primary()
            .characteristic(&c::BRIGHTNESS)
            .iid_of(&c::ON)
            .unwrap();
        let database = builder.build().unwrap();
        let mut options = Options::new("Test Light", "L1", Category::LIGHTBULB);
        options.bind = Bind::Only(Ipv4Addr::LOCALHOST.into());
        options.port = 0;
        options.announcer = announcer;
        let running = hap_std::serve(setup, database, options).expect("serve");
        let address = running.handle().local_addr();
        Light {
            running,
            address,
            on: (aid, on),
        }
    }

    pub fn target(&self) -> String {
        self.address.to_string()
    }
}

impl Drop for Light {
    fn drop(&mut self) {
        self.running.handle().shut_down();
    }
}
