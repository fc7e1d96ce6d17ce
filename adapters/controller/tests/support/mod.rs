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

/// A light with a TLV8 control point that has write response (Characteristic Value
/// Transition Control, as Adaptive Lighting uses it), served by hap-std's app on
/// 127.0.0.1 with a fresh data directory. The control point answers a write of bytes
/// `B` with `02 len(B) B`, and keeps what was written.
pub struct ControlLight {
    device: hap_std::app::Device,
    thread: Option<std::thread::JoinHandle<()>>,
    _data: tempfile::TempDir,
    pub address: SocketAddr,
    /// The control point's aid and iid.
    pub control: (u64, u64),
    /// The bytes each write to the control point carried, in order.
    pub written: std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>,
}

impl ControlLight {
    pub fn start() -> ControlLight {
        use hap_core::catalog::typed::{self as t, Tlv8Value};
        use hap_core::database::ValueBytes;
        use hap_std::app::{App, Flags, MdnsMode};

        let data = tempfile::tempdir().unwrap();
        let flags = Flags {
            pin: CODE.parse().ok(),
            bind: Some(Ipv4Addr::LOCALHOST.into()),
            port: 0,
            data: Some(data.path().to_owned()),
            mdns: MdnsMode::Off,
            ..Flags::default()
        };
        let mut app = App::new(&flags, "Control Light", Category::LIGHTBULB).expect("the app");
        let control = app
            .build(|b, name| {
                b.accessory("light", &AccessoryInfo::new(name, "Acme", "C1", "1", "1.0"));
                b.service(&s::LIGHTBULB)
                    .primary()
                    .characteristic(&c::BRIGHTNESS)
                    .characteristic(&c::CHARACTERISTIC_VALUE_TRANSITION_CONTROL)
                    .handle(t::CHARACTERISTIC_VALUE_TRANSITION_CONTROL)
            })
            .unwrap();
        let written = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = written.clone();
        app.on_write_response(control, move |request: Tlv8Value| {
            let bytes = request.0.as_slice().to_vec();
            let mut answer = vec![2, u8::try_from(bytes.len()).unwrap_or(u8::MAX)];
            answer.extend_from_slice(&bytes);
            seen.lock().unwrap().push(bytes);
            Ok(Tlv8Value(ValueBytes::from_slice(&answer).unwrap()))
        });
        let device = app.device();
        let thread = std::thread::spawn(move || app.run().expect("the app runs"));
        let started = std::time::Instant::now();
        let address = loop {
            if let Some(address) = device.local_addr() {
                break address;
            }
            assert!(
                started.elapsed() < std::time::Duration::from_secs(10),
                "the app did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        };
        ControlLight {
            device,
            thread: Some(thread),
            _data: data,
            address,
            control: (control.aid(), control.iid()),
            written,
        }
    }

    pub fn target(&self) -> String {
        self.address.to_string()
    }
}

impl Drop for ControlLight {
    fn drop(&mut self) {
        self.device.shut_down();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
