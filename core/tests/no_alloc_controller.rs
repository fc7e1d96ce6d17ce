//! The controller connection allocates nothing: pair-verify, reads, writes,
//! subscriptions and events, in stack buffers, against the core's server.
//!
//! Like `no_alloc_server`, this needs no `alloc` feature: the controller is entered in
//! the accessory's pairing table directly, since pair-setup needs SRP and a heap.

mod counting;

use counting::allocations_during;

/// The `Host` header the controller sends.
const HOST: &str = "192.0.2.7:51826";
use hap_core::catalog::value::Scalar;
use hap_core::catalog::{characteristic as c, service as s};
use hap_core::controller::{
    self, CharacteristicId, Event, Output, ReadOptions, ReportedValue, Request, Write,
};
use hap_core::crypto::Ed25519KeyPair;
use hap_core::database::{CharacteristicDef, Database, Entry, OwnedValue, ServiceDef, Slot};
use hap_core::pairing::{AccessoryPairing, ControllerIdentity, Pairing, PairingId};
use hap_core::server::{self, Config, ConnectionBuffers, Server, Subscription};
use hap_core::setup::DeviceId;
use hap_core::state::{AccessoryState, SetupVerifier};
use hap_core::status::HapStatus;
use hap_core::time::Instant;
use hap_core::ConnectionId;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

static LIGHT: [Entry<'static>; 12] = [
    Entry::Accessory(1),
    Entry::Service(ServiceDef::new(1, &s::ACCESSORY_INFORMATION)),
    Entry::Characteristic(CharacteristicDef::new(2, &c::IDENTIFY)),
    Entry::Characteristic(CharacteristicDef::new(3, &c::MANUFACTURER)),
    Entry::Characteristic(CharacteristicDef::new(4, &c::MODEL)),
    Entry::Characteristic(CharacteristicDef::new(5, &c::NAME)),
    Entry::Characteristic(CharacteristicDef::new(6, &c::SERIAL_NUMBER)),
    Entry::Characteristic(CharacteristicDef::new(7, &c::FIRMWARE_REVISION)),
    Entry::Service(ServiceDef::new(8, &s::LIGHTBULB)),
    Entry::Characteristic(CharacteristicDef::new(9, &c::ON)),
    Entry::Service(ServiceDef::new(10, &s::PROTOCOL_INFORMATION)),
    Entry::Characteristic(CharacteristicDef::new(11, &c::VERSION)),
];

const ON: CharacteristicId = CharacteristicId { aid: 1, iid: 9 };

/// What the controller reported while the two sides talked, counted without a heap.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    verified: usize,
    /// Responses by status.
    ok: usize,
    no_content: usize,
    /// The On value read, if a read answered.
    on: Option<bool>,
    /// Events that carried On's value.
    changes: usize,
    other: usize,
}

/// Moves bytes both ways until both sides are quiet.
fn run(
    server: &mut Server<'_>,
    accessory: &mut server::Connection<'_>,
    controller: &mut controller::Connection<'_>,
    rng: &mut ChaCha20Rng,
) -> Tally {
    let now = Instant::from_millis(0);
    let mut tally = Tally::default();
    let mut to_controller = [0u8; 4096];
    for _ in 0..100 {
        let mut moved = false;
        while let Some(output) = controller.poll_output(rng) {
            moved = true;
            match output {
                Output::Transmit(bytes) => {
                    let taken = server.handle_input(accessory, now, bytes, rng);
                    assert_eq!(taken, bytes.len());
                }
                Output::Event(Event::Verified) => tally.verified += 1,
                Output::Event(Event::Response(response)) => {
                    match response.status {
                        200 => tally.ok += 1,
                        204 => tally.no_content += 1,
                        _ => tally.other += 1,
                    }
                    if response.request == Request::ReadCharacteristics {
                        for item in response.characteristics().unwrap() {
                            assert_eq!(item.status, Some(HapStatus::Success));
                            if let Some(ReportedValue::Bool(on)) = item.value {
                                tally.on = Some(on);
                            }
                        }
                    }
                }
                Output::Event(Event::Changed(items)) => {
                    tally.changes += items.filter(|item| item.iid == ON.iid).count();
                }
                _ => tally.other += 1,
            }
        }
        let mut filled = 0;
        while let Some(output) = server.poll_output(accessory, now, rng) {
            moved = true;
            match output {
                server::Output::Transmit(bytes) => {
                    to_controller[filled..filled + bytes.len()].copy_from_slice(bytes);
                    filled += bytes.len();
                }
                server::Output::Event(_) => {}
                _ => tally.other += 1,
            }
        }
        while server.poll_wake().is_some() {
            moved = true;
        }
        let mut rest = &to_controller[..filled];
        while !rest.is_empty() {
            let taken = controller.handle_input(now, rest);
            rest = &rest[taken..];
            if !rest.is_empty() {
                // Room comes back once the controller's events are polled.
                while let Some(output) = controller.poll_output(rng) {
                    if let Output::Event(Event::Response(_) | Event::Changed(_)) = output {
                        tally.other += 1;
                    }
                }
            }
        }
        if !moved {
            return tally;
        }
    }
    panic!("the two sides never settled");
}

#[test]
fn verify_reads_writes_and_events_allocate_nothing() {
    let mut slots = [Slot::EMPTY; 8];
    let database = Database::new(&LIGHT[..], &mut slots[..]).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let accessory_keys = Ed25519KeyPair::from_seed(&[1; 32]);
    let setup = SetupVerifier {
        salt: [0; 16],
        verifier: [0; 384],
    };
    let mut state =
        AccessoryState::new(DeviceId([1, 2, 3, 4, 5, 6]), accessory_keys.clone(), setup);
    let identity = ControllerIdentity {
        id: PairingId::new(b"owner").unwrap(),
        keys: Ed25519KeyPair::from_seed(&[7; 32]),
    };
    state
        .pairings
        .insert(Pairing {
            id: identity.id.clone(),
            public_key: identity.keys.public_key(),
            admin: true,
        })
        .unwrap();
    let accessory_pairing = AccessoryPairing {
        id: PairingId::new(&state.device_id.to_ascii()).unwrap(),
        public_key: accessory_keys.public_key(),
    };
    let config = Config {
        event_window: core::time::Duration::ZERO,
        ..Config::default()
    };
    let mut server = Server::new(state, database, config);
    let now = Instant::from_millis(0);

    let (mut input, mut scratch, mut output) = ([0u8; 9216], [0u8; 2048], [0u8; 4096]);
    let mut subscriptions = [Subscription::EMPTY; 4];
    let mut accessory = server
        .accept(
            ConnectionId(1),
            ConnectionBuffers {
                input: &mut input,
                scratch: &mut scratch,
                output: &mut output,
                subscriptions: &mut subscriptions,
            },
            now,
        )
        .unwrap();
    let (mut c_input, mut c_scratch, mut c_output) = (
        [0u8; controller::MIN_INPUT_LEN],
        [0u8; controller::MIN_SCRATCH_LEN],
        [0u8; controller::min_output_len(controller::MIN_SCRATCH_LEN)],
    );
    let mut controller = controller::Connection::new(
        controller::Buffers {
            input: &mut c_input,
            scratch: &mut c_scratch,
            output: &mut c_output,
        },
        HOST,
    )
    .unwrap();

    let mut tally = Tally::default();
    let allocations = allocations_during(|| {
        controller
            .pair_verify(now, &identity, &accessory_pairing, &mut rng)
            .unwrap();
        let verified = run(&mut server, &mut accessory, &mut controller, &mut rng);
        assert_eq!(verified.verified, 1);
        controller
            .put_characteristics(
                now,
                &[
                    Write::value(ON, Scalar::Bool(true)),
                    Write::subscribe(ON, true),
                ],
            )
            .unwrap();
        let written = run(&mut server, &mut accessory, &mut controller, &mut rng);
        controller
            .get_characteristics(now, &[ON], ReadOptions::default())
            .unwrap();
        let read = run(&mut server, &mut accessory, &mut controller, &mut rng);
        server.set_value(1, 9, OwnedValue::Bool(false)).unwrap();
        let heard = run(&mut server, &mut accessory, &mut controller, &mut rng);
        tally = Tally {
            verified: verified.verified,
            ok: read.ok,
            no_content: written.no_content,
            on: read.on,
            changes: heard.changes,
            other: verified.other + written.other + read.other + heard.other,
        };
    });
    assert_eq!(
        tally,
        Tally {
            verified: 1,
            ok: 1,
            no_content: 1,
            on: Some(true),
            changes: 1,
            other: 0,
        }
    );
    assert_eq!(allocations, 0);
}
