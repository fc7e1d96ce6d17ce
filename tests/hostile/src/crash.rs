//! Crash safety: SIGKILL at random points while pair-setup stores a pairing (M5/M6) and
//! while `/pairings` adds or removes one, then a restart on the same data.
//!
//! After each restart the state must be consistent:
//! - the store reads back;
//! - a controller that heard the accessory's answer finds what it was told: paired after
//!   M6, added or removed after the `/pairings` answer;
//! - a controller that heard nothing finds the accessory either still as before (and a
//!   new attempt works) or with the change made, never half of it.

use std::collections::BTreeMap;
use std::time::Duration;

use hap_core::pairing::setup::{PairSetupClient, SetupClientOutput, MAX_SETUP_MESSAGE_LEN};
use hap_core::pairing::AccessoryPairing;
use hap_core::pairing::PairingId;
use hap_core::persist::Snapshot;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::accessory::{Accessory, SETUP_CODE};
use crate::controller::Controller;
use crate::harness::{
    add_body, check_paired_served, remove_body, state_and_error, verify_m4_error, Case, Context,
    Ids, ADMIN, TLV,
};

pub(crate) const CASES: &[Case] = &[
    Case {
        name: "crash/kill-during-pair-setup-m5",
        run: kill_during_pair_setup,
    },
    Case {
        name: "crash/kill-during-pairings-add-remove",
        run: kill_during_pairings,
    },
];

/// A delay before the kill, uniform from at once to 1.5 times the `answer` time of an
/// uninterrupted request, so that kills land before, during and after the store is
/// written.
fn random_delay(rng: &mut ChaCha20Rng, answer: Duration) -> Duration {
    let span = (answer.as_micros() as u64 * 3 / 2).max(200);
    Duration::from_micros(rng.next_u64() % span)
}

/// The median of `runs` timings.
fn median(runs: impl Iterator<Item = Duration>) -> Duration {
    let mut runs: Vec<Duration> = runs.collect();
    runs.sort();
    runs.get(runs.len() / 2).copied().unwrap_or_default()
}

/// The stored state, which must read back.
fn snapshot(accessory: &Accessory) -> Snapshot {
    accessory
        .stored()
        .unwrap_or_else(|e| panic!("the store does not read back: {e}"))
        .expect("a stored state")
}

/// The pairing the accessory's store proves, for checking a controller that never
/// heard M6: the accessory's id and public key, as stored.
fn stored_accessory(accessory: &Accessory) -> AccessoryPairing {
    let state = snapshot(accessory).state;
    AccessoryPairing {
        id: PairingId::new(&state.device_id.to_ascii()).unwrap(),
        public_key: state.identity.public_key(),
    }
}

/// Whether the stored pairings include `controller`.
fn stored_has(accessory: &Accessory, controller: &PairingId) -> bool {
    snapshot(accessory)
        .state
        .pairings
        .get(controller.as_bytes())
        .is_some()
}

/// Pair-setup up to M5 on a new connection: the controller, its client, and the M5
/// request ready to send.
fn setup_until_m5(
    accessory: &Accessory,
    rng: &mut ChaCha20Rng,
) -> (Controller, PairSetupClient, Vec<u8>) {
    let mut controller = Controller::connect(accessory.address, ADMIN);
    let identity = controller.identity().clone();
    let mut out = [0u8; MAX_SETUP_MESSAGE_LEN];
    let (mut client, len) =
        PairSetupClient::start(SETUP_CODE.parse().unwrap(), 0, &mut out).unwrap();
    let mut body = out[..len].to_vec();
    let m5 = loop {
        let reply = controller.request("POST", "/pair-setup", TLV, &body);
        match client
            .handle_response(&reply.body, &identity, rng, &mut out)
            .unwrap()
        {
            SetupClientOutput::Send(len) if state_and_error(&reply).0 == Some(4) => {
                break out[..len].to_vec()
            }
            SetupClientOutput::Send(len) => body = out[..len].to_vec(),
            other => panic!("{other:?} before M5"),
        }
    };
    let request = [
        format!(
            "POST /pair-setup HTTP/1.1\r\nContent-Type: {TLV}\r\nContent-Length: {}\r\n\r\n",
            m5.len()
        )
        .into_bytes(),
        m5,
    ]
    .concat();
    (controller, client, request)
}

fn kill_during_pair_setup(context: &Context) -> String {
    let mut rng = ChaCha20Rng::seed_from_u64(0x5eed);
    // How long M5 takes to answer, uninterrupted.
    let answer = median((0..5).map(|run| {
        let accessory = Accessory::start(
            &context.target,
            &context.data(&format!("timing-{run}")),
            &[],
        );
        let (mut controller, _, request) = setup_until_m5(&accessory, &mut rng);
        let sent = std::time::Instant::now();
        controller.send_raw(&request).unwrap();
        controller.next_message(Duration::from_secs(5)).expect("M6");
        sent.elapsed()
    }));
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for iteration in 0..context.crash_iterations {
        let data = context.data(&format!("setup-{iteration}"));
        let mut accessory = Accessory::start(&context.target, &data, &[]);
        let (mut controller, mut client, request) = setup_until_m5(&accessory, &mut rng);
        let identity = controller.identity().clone();
        let mut out = [0u8; MAX_SETUP_MESSAGE_LEN];
        controller.send_raw(&request).unwrap();
        std::thread::sleep(random_delay(&mut rng, answer));
        accessory.kill();
        let m6 = controller
            .next_message(Duration::from_millis(300))
            .map(|reply| {
                // An answer that came is M6, whole and valid: a kill cuts, never garbles.
                client
                    .handle_response(&reply.body, &identity, &mut rng, &mut out)
                    .unwrap_or_else(|e| panic!("iteration {iteration}: M6 refused: {e:?}"))
            });
        let accessory = accessory.restart();
        let (pairing, outcome) = match m6 {
            // Told it is paired: it must be.
            Some(SetupClientOutput::Paired(pairing)) => (pairing, "M6 received, paired"),
            Some(other) => panic!("iteration {iteration}: M6 handled as {other:?}"),
            // Stored before the kill, M6 lost: the pairing is whole and verifies.
            None if stored_has(&accessory, &identity.id) => {
                (stored_accessory(&accessory), "no M6, stored: verifies")
            }
            // Not stored: cleanly unpaired, and a new pair-setup works.
            None => (
                Controller::connect(accessory.address, ADMIN).pair_setup(SETUP_CODE),
                "no M6, not stored: unpaired, paired again",
            ),
        };
        let ids = Ids::of(&accessory.address, &pairing);
        check_paired_served(accessory.address, &pairing, &ids);
        *outcomes.entry(outcome).or_default() += 1;
        drop(accessory);
        let _ = std::fs::remove_dir_all(&data);
    }
    format!(
        "{} kills within 1.5 × {} µs of sending M5, 0 inconsistent: {outcomes:?}",
        context.crash_iterations,
        answer.as_micros()
    )
}

fn kill_during_pairings(context: &Context) -> String {
    let mut rng = ChaCha20Rng::seed_from_u64(0xadd);
    let mut paired = context.paired();
    let other = Controller::identity_for(70);
    let (other_id, other_key) = (other.id, other.keys.public_key());
    // The add or remove request that flips the other controller's pairing, sealed for
    // `admin`'s session.
    let flip = |admin: &mut Controller, adding: bool| -> Vec<u8> {
        let body = if adding {
            add_body(other_id.as_bytes(), &other_key, false)
        } else {
            remove_body(other_id.as_bytes())
        };
        let head = format!(
            "POST /pairings HTTP/1.1\r\nContent-Type: {TLV}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        admin.seal(&[head.into_bytes(), body].concat())
    };
    // How long an add or a remove takes to answer, uninterrupted; it ends removed.
    let answer = {
        let mut admin = paired.verified(ADMIN);
        median((0..6).map(|run| {
            let wire = flip(&mut admin, run % 2 == 0);
            let sent = std::time::Instant::now();
            admin.send_raw(&wire).unwrap();
            let reply = admin
                .next_message(Duration::from_secs(5))
                .expect("an answer");
            assert_eq!(state_and_error(&reply), (Some(2), None));
            sent.elapsed()
        }))
    };
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for iteration in 0..context.crash_iterations {
        let adding = !stored_has(&paired.accessory, &other_id);
        let mut admin = paired.verified(ADMIN);
        let wire = flip(&mut admin, adding);
        admin.send_raw(&wire).unwrap();
        std::thread::sleep(random_delay(&mut rng, answer));
        paired.accessory.kill();
        let answered = admin.next_message(Duration::from_millis(300)).map(|reply| {
            assert_eq!(
                state_and_error(&reply),
                (Some(2), None),
                "iteration {iteration}: an answer that is not a success"
            );
            true
        });
        drop(admin);
        paired = paired.restart();
        // The admin is never lost.
        paired.check_served();
        let present = stored_has(&paired.accessory, &other_id);
        let verifies = verify_m4_error(
            Controller::connect(paired.accessory.address, 70),
            &paired.pairing,
        )
        .is_none();
        assert_eq!(
            present, verifies,
            "iteration {iteration}: stored {present}, but verifies {verifies}"
        );
        if answered == Some(true) {
            assert_eq!(
                present, adding,
                "iteration {iteration}: answered, but the change is not there"
            );
        }
        let what = if adding { "add" } else { "remove" };
        let outcome = match (answered, present == adding) {
            (Some(true), _) => format!("{what} answered, done"),
            (_, true) => format!("{what} unanswered, done"),
            (_, false) => format!("{what} unanswered, not done"),
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    format!(
        "{} kills within 1.5 × {} µs of sending, 0 inconsistent: {outcomes:?}; {}",
        context.crash_iterations,
        answer.as_micros(),
        paired.check_served()
    )
}
