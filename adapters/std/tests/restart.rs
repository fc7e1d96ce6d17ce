//! Restarts of a stored accessory: the configuration number (`c#`) follows the firmware
//! revision, and an accessory whose ids were stored before the builder added the HAP
//! Protocol Information service keeps every id it had.

use hap_core::catalog::{characteristic as c, service as s, Category};
use hap_core::database::builder::{AccessoryInfo, DatabaseBuilder};
use hap_core::database::{Database, Entry};
use hap_core::persist::Snapshot;
use hap_std::store::MemoryStore;
use hap_std::{Options, Setup};

/// Every (iid, type name) of a database, in document order.
type Ids = Vec<(u64, &'static str)>;

/// Starts the light from `store` with `firmware`, stops it, and returns its ids and
/// what was stored.
fn start(store: &MemoryStore, firmware: &str) -> (Ids, Snapshot) {
    let code = "314-15-926".parse().unwrap();
    let mut setup = Setup::load_or_create(Box::new(store.clone()), Some(code), None).unwrap();
    let mut builder = DatabaseBuilder::new(setup.ids());
    builder.accessory(
        "light",
        &AccessoryInfo::new("Light", "Acme", "L1", "01", firmware),
    );
    builder
        .service(&s::LIGHTBULB)
        .primary()
        .characteristic(&c::BRIGHTNESS);
    let database = builder.build().unwrap();
    let ids = ids(&database);
    let options = Options::new("Light", "L1", Category::LIGHTBULB);
    let host = setup
        .into_host(database, options, 0, Box::new(|_| {}))
        .unwrap();
    drop(host);
    (ids, store.saved().unwrap())
}

fn ids(database: &Database<'_>) -> Ids {
    database
        .entries()
        .iter()
        .filter_map(|e| match e {
            Entry::Service(s) => Some((s.iid, s.kind.name)),
            Entry::Characteristic(c) => Some((c.iid, c.kind.name)),
            Entry::Accessory(_) => None,
        })
        .collect()
}

#[test]
fn a_firmware_update_raises_the_configuration_number() {
    let store = MemoryStore::new();
    let (first, stored) = start(&store, "1.0");
    assert_eq!(stored.config.number, 1);
    let (again, stored) = start(&store, "1.0");
    assert_eq!(stored.config.number, 1, "a restart changes nothing");
    let (updated, stored) = start(&store, "1.0.1");
    assert_eq!(stored.config.number, 2, "a firmware update raises c#");
    assert_eq!(first, again);
    assert_eq!(first, updated);
    let (_, stored) = start(&store, "1.0.1");
    assert_eq!(stored.config.number, 2);
}

#[test]
fn ids_stored_before_protocol_information_are_kept() {
    let store = MemoryStore::new();
    let (current, mut stored) = start(&store, "1.0");
    // What a release without Protocol Information stored: no ids for it, the next iid
    // after Brightness, and c# for that shape.
    let light = &mut stored.ids.accessories[0];
    light
        .instances
        .retain(|(key, _)| key.service != s::PROTOCOL_INFORMATION.uuid);
    light.next_iid = 11;
    stored.config.number = 7;
    stored.config.shape = [9; 16];
    let store = MemoryStore::with_snapshot(stored);

    let (upgraded, stored) = start(&store, "1.0");
    assert_eq!(upgraded, current);
    let tail = upgraded[7..].to_vec();
    assert_eq!(
        tail,
        [
            (8, "Lightbulb"),
            (9, "On"),
            (10, "Brightness"),
            (11, "ProtocolInformation"),
            (12, "Version")
        ],
        "the old ids, then fresh ones for the new service"
    );
    assert_eq!(stored.config.number, 8, "the new service raises c# once");
    let (_, stored) = start(&store, "1.0");
    assert_eq!(stored.config.number, 8);
}
