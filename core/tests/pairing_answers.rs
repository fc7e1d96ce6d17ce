//! Each answer the accessory gives during pairing, driven by an in-memory controller.

mod common;

use std::time::Duration;

use common::{controller, pair, paired_accessory, rng, state_and_error, verify, Accessory, CODE};
use hap_core::crypto::Ed25519KeyPair;
use hap_core::pairing::pairings::{handle_pairings, PairingsOutput};
use hap_core::pairing::setup::{
    PairSetupClient, SetupClientOutput, SetupOutput, SETUP_TAKEOVER_AFTER,
};
use hap_core::pairing::verify::{PairVerify, PairVerifyClient, VerifyOutput};
use hap_core::pairing::{
    flags, AccessoryPairing, ErrorCode, PairingError, PairingId, SessionsToClose, MAX_PAIRINGS,
};
use hap_core::session::SessionKeys;
use hap_core::srp::GROUP_PRIME;
use hap_core::state::StateChange;
use hap_core::tlv::{Tlv, TlvWriter};
use hap_core::ConnectionId;

const AUTHENTICATION: u8 = ErrorCode::Authentication as u8;

fn tlv(items: &[(u8, &[u8])]) -> Vec<u8> {
    let mut buf = vec![0u8; 2048];
    let mut writer = TlvWriter::new(&mut buf);
    for (ty, value) in items {
        writer.item(*ty, value).unwrap();
    }
    let len = writer.len();
    buf.truncate(len);
    buf
}

fn m1() -> Vec<u8> {
    tlv(&[(0x06, &[1]), (0x00, &[0])])
}

/// Runs M1 and M3 with `code`; returns the M4 body.
fn attempt(accessory: &mut Accessory, conn: u32, code: &str) -> Vec<u8> {
    let identity = controller("guesser", 1);
    let mut out = [0u8; 512];
    let (mut client, len) = PairSetupClient::start(code.parse().unwrap(), 0, &mut out).unwrap();
    let m2 = accessory.setup_request(conn, &out[..len]).unwrap().body;
    if state_and_error(&m2).1.is_some() {
        return m2;
    }
    let SetupClientOutput::Send(len) = client
        .handle_response(&m2, &identity, &mut rng(9), &mut out)
        .unwrap()
    else {
        panic!("expected M3");
    };
    accessory.setup_request(conn, &out[..len]).unwrap().body
}

#[test]
fn wrong_code_gets_authentication_at_m4_and_is_counted_before_the_reply() {
    let mut accessory = Accessory::new(1);
    let m4 = attempt(&mut accessory, 1, "111-22-333");
    assert_eq!(state_and_error(&m4), (Some(4), Some(AUTHENTICATION)));
    assert_eq!(accessory.state.failed_attempts, 1);
    assert_eq!(
        accessory.stored.last().map(|s| s.failed_attempts),
        Some(1),
        "stored before M4 was produced"
    );
    assert!(!accessory.setup.is_busy(), "a failure releases the lock");
    // The right code still works, and resets the counter with the pairing.
    pair(
        &mut accessory,
        2,
        &controller("owner", 2),
        CODE,
        &mut rng(3),
    )
    .unwrap();
    assert_eq!(accessory.state.failed_attempts, 0);
    assert_eq!(accessory.stored.last().map(|s| s.failed_attempts), Some(0));
}

#[test]
fn failed_attempt_reply_is_withheld_until_stored() {
    let mut accessory = Accessory::new(1);
    let identity = controller("guesser", 1);
    let mut out = [0u8; 512];
    let (mut client, len) =
        PairSetupClient::start("111-22-333".parse().unwrap(), 0, &mut out).unwrap();
    let m2 = accessory.setup_request(1, &out[..len]).unwrap().body;
    let SetupClientOutput::Send(len) = client
        .handle_response(&m2, &identity, &mut rng(9), &mut out)
        .unwrap()
    else {
        panic!("expected M3");
    };
    let m3 = out[..len].to_vec();
    let mut reply = [0u8; 512];
    let conn = ConnectionId(1);
    let output = accessory
        .setup
        .handle(
            accessory.now,
            conn,
            &m3,
            &mut accessory.state,
            &mut accessory.rng,
            &mut reply,
        )
        .unwrap();
    assert_eq!(output, SetupOutput::Persist(StateChange::FailedAttempt));
    // Another connection asking for the reply gets nothing.
    assert_eq!(
        accessory
            .setup
            .persisted(ConnectionId(2), &accessory.state, &mut reply),
        Err(PairingError::NotPending)
    );
    // Nor can another controller take the attempt over while the caller is storing,
    // however old it is.
    accessory.now = accessory.now + Duration::from_secs(3600);
    let busy = accessory.setup_request(2, &m1()).unwrap().body;
    assert_eq!(state_and_error(&busy).1, Some(ErrorCode::Busy as u8));
    let SetupOutput::Reply(len) = accessory
        .setup
        .persisted(conn, &accessory.state, &mut reply)
        .unwrap()
    else {
        panic!("expected a reply");
    };
    assert_eq!(
        state_and_error(&reply[..len]),
        (Some(4), Some(AUTHENTICATION))
    );
    assert_eq!(
        accessory
            .setup
            .persisted(conn, &accessory.state, &mut [0u8; 512]),
        Err(PairingError::NotPending)
    );
}

/// HomeKitADK (`HAPPairingPairSetup.c`) has no inactivity timer: another controller's M1
/// is Busy until the attempt is 30 s old, and only then takes its place.
#[test]
fn busy_while_another_controller_is_mid_setup_until_the_attempt_is_30_s_old() {
    let mut accessory = Accessory::new(1);
    let started = accessory.now;
    let first = accessory.setup_request(1, &m1()).unwrap().body;
    assert_eq!(state_and_error(&first), (Some(2), None));
    let busy = accessory.setup_request(2, &m1()).unwrap().body;
    assert_eq!(
        state_and_error(&busy),
        (Some(2), Some(ErrorCode::Busy as u8))
    );
    // A second controller cannot jump in at M3 either.
    assert_eq!(
        accessory
            .setup_request(
                2,
                &tlv(&[(0x06, &[3]), (0x03, &[1; 384]), (0x04, &[0; 64])])
            )
            .err(),
        Some(PairingError::UnexpectedState(3))
    );
    let takeover = started + SETUP_TAKEOVER_AFTER;
    accessory.now = hap_core::time::Instant::from_millis(takeover.as_millis() - 1);
    let still_busy = accessory.setup_request(2, &m1()).unwrap().body;
    assert_eq!(state_and_error(&still_busy).1, Some(ErrorCode::Busy as u8));
    accessory.now = takeover;
    let taken_over = accessory.setup_request(2, &m1()).unwrap().body;
    assert_eq!(state_and_error(&taken_over), (Some(2), None));
    assert!(
        Tlv::parse(&taken_over).unwrap().get(0x02).is_some(),
        "M2 carries the salt"
    );
    // The first controller's attempt is over.
    assert_eq!(
        accessory
            .setup_request(
                1,
                &tlv(&[(0x06, &[3]), (0x03, &[1; 384]), (0x04, &[0; 64])])
            )
            .err(),
        Some(PairingError::UnexpectedState(3))
    );
}

/// A person typing the code slowly: M3 a minute and a half after M2 still pairs, because
/// nobody else asked to pair meanwhile.
#[test]
fn a_lone_attempt_waits_for_its_controller_however_long() {
    let mut accessory = Accessory::new(1);
    let mut out = [0u8; 512];
    let (mut client, len) = PairSetupClient::start(CODE.parse().unwrap(), 0, &mut out).unwrap();
    let m2 = accessory.setup_request(1, &out[..len]).unwrap().body;
    accessory.now = accessory.now + Duration::from_secs(90);
    let SetupClientOutput::Send(len) = client
        .handle_response(&m2, &controller("c", 1), &mut rng(1), &mut out)
        .unwrap()
    else {
        panic!()
    };
    let m4 = accessory.setup_request(1, &out[..len]).unwrap().body;
    assert_eq!(state_and_error(&m4), (Some(4), None));
    assert!(accessory.setup.is_busy());
}

#[test]
fn the_lock_holder_can_restart_and_closing_releases_it() {
    let mut accessory = Accessory::new(1);
    accessory.setup_request(1, &m1()).unwrap();
    let restarted = accessory.setup_request(1, &m1()).unwrap().body;
    assert_eq!(state_and_error(&restarted), (Some(2), None));
    accessory.setup.connection_closed(ConnectionId(1));
    assert!(!accessory.setup.is_busy());
    let other = accessory.setup_request(2, &m1()).unwrap().body;
    assert_eq!(state_and_error(&other), (Some(2), None));
}

#[test]
fn already_paired_gets_unavailable() {
    let (mut accessory, _) = paired_accessory();
    let m2 = accessory.setup_request(2, &m1()).unwrap().body;
    assert_eq!(
        state_and_error(&m2),
        (Some(2), Some(ErrorCode::Unavailable as u8))
    );
    assert_eq!(
        pair(
            &mut accessory,
            3,
            &controller("intruder", 3),
            CODE,
            &mut rng(4)
        ),
        Err(PairingError::Rejected(ErrorCode::Unavailable))
    );
}

#[test]
fn max_tries_at_the_101st_attempt_survives_restart_and_success_resets() {
    let mut accessory = Accessory::new(1);
    for attempt_number in 1..=100u8 {
        let m4 = attempt(&mut accessory, u32::from(attempt_number), "111-22-333");
        assert_eq!(
            state_and_error(&m4),
            (Some(4), Some(AUTHENTICATION)),
            "attempt {attempt_number}"
        );
        assert_eq!(accessory.state.failed_attempts, attempt_number);
    }
    let m2 = attempt(&mut accessory, 101, CODE);
    assert_eq!(
        state_and_error(&m2),
        (Some(2), Some(ErrorCode::MaxTries as u8))
    );
    accessory.restart();
    assert_eq!(accessory.state.failed_attempts, 100);
    let m2 = attempt(&mut accessory, 102, CODE);
    assert_eq!(
        state_and_error(&m2),
        (Some(2), Some(ErrorCode::MaxTries as u8)),
        "even the right code, after restart"
    );

    // At 99 failures the right code still pairs and resets the count.
    let mut accessory = Accessory::new(2);
    accessory.state.failed_attempts = 99;
    pair(
        &mut accessory,
        1,
        &controller("owner", 1),
        CODE,
        &mut rng(2),
    )
    .unwrap();
    accessory.restart();
    assert_eq!(accessory.state.failed_attempts, 0);
}

#[test]
fn public_keys_congruent_to_zero_get_authentication_without_counting() {
    let two_n = {
        // 2N, computed by shifting N left one bit.
        let mut out = vec![0u8; 385];
        let mut carry = 0u8;
        for (i, byte) in GROUP_PRIME.iter().enumerate().rev() {
            out[i + 1] = (byte << 1) | carry;
            carry = byte >> 7;
        }
        out[0] = carry;
        out
    };
    for a in [vec![0u8], GROUP_PRIME.to_vec(), two_n] {
        let mut accessory = Accessory::new(1);
        accessory.setup_request(1, &m1()).unwrap();
        let m3 = tlv(&[(0x06, &[3]), (0x03, &a), (0x04, &[0xAB; 64])]);
        match accessory.setup_request(1, &m3) {
            Ok(reply) => {
                assert!(a.len() <= 384);
                assert_eq!(
                    state_and_error(&reply.body),
                    (Some(4), Some(AUTHENTICATION))
                );
            }
            // 2N does not even fit in 384 bytes: a malformed request.
            Err(error) => {
                assert_eq!(a.len(), 385);
                assert_eq!(error, PairingError::InvalidItem(0x03));
            }
        }
        assert_eq!(accessory.state.failed_attempts, 0);
        assert!(!accessory.setup.is_busy());
    }
}

#[test]
fn max_peers_when_the_table_is_full() {
    let (mut accessory, owner) = paired_accessory();
    for i in 1..MAX_PAIRINGS {
        let id = format!("guest-{i}");
        let key = Ed25519KeyPair::from_seed(&[i as u8; 32]).public_key();
        let reply = accessory
            .pairings_request(
                &owner.id,
                &tlv(&[
                    (0x06, &[1]),
                    (0x00, &[3]),
                    (0x01, id.as_bytes()),
                    (0x03, &key),
                    (0x0B, &[0]),
                ]),
            )
            .unwrap();
        assert_eq!(state_and_error(&reply), (Some(2), None));
    }
    assert_eq!(accessory.state.pairings.len(), MAX_PAIRINGS);
    let key = Ed25519KeyPair::from_seed(&[99; 32]).public_key();
    let add = tlv(&[
        (0x06, &[1]),
        (0x00, &[3]),
        (0x01, b"one-too-many"),
        (0x03, &key),
        (0x0B, &[0]),
    ]);
    let reply = accessory.pairings_request(&owner.id, &add).unwrap();
    assert_eq!(
        state_and_error(&reply),
        (Some(2), Some(ErrorCode::MaxPeers as u8))
    );
    assert_eq!(accessory.state.pairings.len(), MAX_PAIRINGS);
}

/// Pair-verify's M1 and M2 done honestly; returns the accessory's exchange, the M2 body
/// and the controller's exchange.
fn verify_up_to_m3(accessory: &mut Accessory) -> (PairVerify, Vec<u8>, PairVerifyClient) {
    let mut out = [0u8; 256];
    let (client, len) = PairVerifyClient::start(&mut rng(5), &mut out).unwrap();
    let mut exchange = PairVerify::new();
    let mut reply = [0u8; 256];
    let VerifyOutput::Reply(reply_len) = exchange
        .handle(
            &out[..len],
            &accessory.state,
            &mut accessory.rng,
            &mut reply,
        )
        .unwrap()
    else {
        panic!("expected M2");
    };
    (exchange, reply[..reply_len].to_vec(), client)
}

fn accessory_pairing(accessory: &Accessory) -> AccessoryPairing {
    AccessoryPairing {
        id: PairingId::new(&accessory.state.device_id.to_ascii()).unwrap(),
        public_key: accessory.state.identity.public_key(),
    }
}

fn m4_for(accessory: &mut Accessory, claimed: &hap_core::pairing::ControllerIdentity) -> Vec<u8> {
    let (mut exchange, m2, mut client) = verify_up_to_m3(accessory);
    let mut out = [0u8; 256];
    let pairing = accessory_pairing(accessory);
    let hap_core::pairing::verify::VerifyClientOutput::Send(len) = client
        .handle_response(&m2, claimed, &pairing, &mut out)
        .unwrap()
    else {
        panic!("expected M3");
    };
    let mut reply = [0u8; 256];
    match exchange
        .handle(
            &out[..len],
            &accessory.state,
            &mut accessory.rng,
            &mut reply,
        )
        .unwrap()
    {
        VerifyOutput::Reply(len) => reply[..len].to_vec(),
        VerifyOutput::Verified { .. } => panic!("verified an impostor"),
    }
}

#[test]
fn pair_verify_with_a_bad_signature_gets_authentication_at_m4() {
    let (mut accessory, _) = paired_accessory();
    // The right identifier, signed with the wrong key.
    let impostor = controller("owner", 66);
    assert_eq!(
        state_and_error(&m4_for(&mut accessory, &impostor)),
        (Some(4), Some(AUTHENTICATION))
    );
}

#[test]
fn pair_verify_with_an_unknown_controller_gets_authentication_at_m4() {
    let (mut accessory, _) = paired_accessory();
    let stranger = controller("stranger", 1);
    assert_eq!(
        state_and_error(&m4_for(&mut accessory, &stranger)),
        (Some(4), Some(AUTHENTICATION))
    );
    // And before any pairing exists at all.
    let mut fresh = Accessory::new(3);
    assert_eq!(
        state_and_error(&m4_for(&mut fresh, &stranger)),
        (Some(4), Some(AUTHENTICATION))
    );
}

#[test]
fn pair_verify_with_undecryptable_m3_gets_authentication_at_m4() {
    let (mut accessory, _) = paired_accessory();
    let (mut exchange, _, _) = verify_up_to_m3(&mut accessory);
    let m3 = tlv(&[(0x06, &[3]), (0x05, &[0x55; 100])]);
    let mut reply = [0u8; 256];
    let VerifyOutput::Reply(len) = exchange
        .handle(&m3, &accessory.state, &mut accessory.rng, &mut reply)
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        state_and_error(&reply[..len]),
        (Some(4), Some(AUTHENTICATION))
    );
}

#[test]
fn pair_verify_accepts_identifiers_in_another_case() {
    let mut accessory = Accessory::new(1);
    let owner = controller("e0a1b2c3-0000-4000-8000-0000000000ab", 1);
    let pairing = pair(&mut accessory, 1, &owner, CODE, &mut rng(2)).unwrap();
    let shouting = controller("E0A1B2C3-0000-4000-8000-0000000000AB", 1);
    assert!(verify(&mut accessory, &shouting, &pairing, &mut rng(3)).is_ok());
}

#[test]
fn controller_rejects_an_accessory_that_is_not_the_paired_one() {
    let mut accessory = Accessory::new(1);
    let owner = controller("owner", 1);
    let mut pairing = pair(&mut accessory, 1, &owner, CODE, &mut rng(2)).unwrap();
    pairing.public_key = Ed25519KeyPair::from_seed(&[42; 32]).public_key();
    assert_eq!(
        verify(&mut accessory, &owner, &pairing, &mut rng(3)).err(),
        Some(PairingError::Authentication)
    );
}

/// Runs pair-setup up to the controller's M5 on connection 1 and returns M5 unsent.
fn m5_request(
    accessory: &mut Accessory,
    identity: &hap_core::pairing::ControllerIdentity,
) -> Vec<u8> {
    let mut out = [0u8; 512];
    let (mut client, len) = PairSetupClient::start(CODE.parse().unwrap(), 0, &mut out).unwrap();
    let mut request = out[..len].to_vec();
    for _ in 0..2 {
        let reply = accessory.setup_request(1, &request).unwrap().body;
        let SetupClientOutput::Send(len) = client
            .handle_response(&reply, identity, &mut rng(2), &mut out)
            .unwrap()
        else {
            panic!("expected M3 or M5")
        };
        request = out[..len].to_vec();
    }
    request
}

#[test]
fn undecryptable_m5_gets_authentication_at_m6() {
    let mut accessory = Accessory::new(1);
    let request = m5_request(&mut accessory, &controller("owner", 1));
    // Corrupt M5's ciphertext: the accessory cannot decrypt it.
    let mut m5 = request.clone();
    let last = m5.len() - 1;
    m5[last] ^= 1;
    let m6 = accessory.setup_request(1, &m5).unwrap().body;
    assert_eq!(state_and_error(&m6), (Some(6), Some(AUTHENTICATION)));
    assert!(accessory.state.pairings.is_empty());
    assert!(!accessory.setup.is_busy());
}

/// Sends a valid M5 on connection 1 and checks that the pairing now waits for storage.
fn m5_waiting_for_storage(accessory: &mut Accessory) -> ConnectionId {
    let request = m5_request(accessory, &controller("owner", 1));
    let conn = ConnectionId(1);
    let mut reply = [0u8; 512];
    let output = accessory.setup.handle(
        accessory.now,
        conn,
        &request,
        &mut accessory.state,
        &mut accessory.rng,
        &mut reply,
    );
    assert_eq!(output, Ok(SetupOutput::Persist(StateChange::PairingAdded)));
    conn
}

#[test]
fn failed_storage_undoes_the_pairing() {
    let mut accessory = Accessory::new(1);
    accessory.state.failed_attempts = 7;
    let conn = m5_waiting_for_storage(&mut accessory);
    assert!(accessory.state.is_paired());
    let closes = accessory
        .setup
        .persist_failed(conn, &mut accessory.state)
        .unwrap();
    assert!(!accessory.state.is_paired());
    assert_eq!(
        closes,
        SessionsToClose::Controller(PairingId::new(b"owner").unwrap())
    );
    assert_eq!(accessory.state.failed_attempts, 7);
    assert!(!accessory.setup.is_busy());
    assert_eq!(
        accessory
            .setup
            .persisted(conn, &accessory.state, &mut [0u8; 512]),
        Err(PairingError::NotPending)
    );
}

#[test]
fn method_1_is_accepted_like_method_0() {
    let mut accessory = Accessory::new(1);
    let m2 = accessory
        .setup_request(1, &tlv(&[(0x06, &[1]), (0x00, &[1])]))
        .unwrap()
        .body;
    assert_eq!(state_and_error(&m2), (Some(2), None));
    assert_eq!(
        accessory
            .setup_request(2, &tlv(&[(0x06, &[1]), (0x00, &[2])]))
            .err(),
        Some(PairingError::InvalidItem(0))
    );
    assert_eq!(
        accessory.setup_request(2, &tlv(&[(0x06, &[1])])).err(),
        Some(PairingError::MissingItem(0))
    );
}

fn transient_setup(
    accessory: &mut Accessory,
    conn: u32,
    setup_flags: u32,
) -> (SessionKeys, SessionKeys, Vec<u8>) {
    let mut out = [0u8; 512];
    let (mut client, len) =
        PairSetupClient::start(CODE.parse().unwrap(), setup_flags, &mut out).unwrap();
    let m2 = accessory.setup_request(conn, &out[..len]).unwrap().body;
    let SetupClientOutput::Send(len) = client
        .handle_response(&m2, &controller("c", 1), &mut rng(2), &mut out)
        .unwrap()
    else {
        panic!()
    };
    let m4 = accessory.setup_request(conn, &out[..len]).unwrap();
    let accessory_keys = m4.keys.expect("transient M4 opens a session");
    let SetupClientOutput::Transient(controller_keys) = client
        .handle_response(&m4.body, &controller("c", 1), &mut rng(2), &mut out)
        .unwrap()
    else {
        panic!("controller expected a transient session")
    };
    (accessory_keys, controller_keys, m2)
}

#[test]
fn transient_setup_stores_nothing_and_derives_keys_from_srp() {
    let mut accessory = Accessory::new(1);
    let (accessory_keys, controller_keys, m2) =
        transient_setup(&mut accessory, 1, flags::TRANSIENT);
    assert_eq!(accessory_keys, controller_keys);
    assert!(
        Tlv::parse(&m2).unwrap().get(0x13).is_none(),
        "transient alone is not echoed"
    );
    assert!(!accessory.state.is_paired());
    assert!(accessory.stored.is_empty());
    assert!(!accessory.setup.is_busy());
}

#[test]
fn split_setup_is_echoed_and_reuses_the_stored_verifier() {
    let mut accessory = Accessory::new(1);
    let (_, _, m2) = transient_setup(&mut accessory, 1, flags::TRANSIENT | flags::SPLIT);
    let first = Tlv::parse(&m2).unwrap();
    assert_eq!(
        first.get(0x13).unwrap().to_uint_le(),
        Some(u64::from(flags::TRANSIENT | flags::SPLIT))
    );
    // The later split-only setup pairs with the same salt and verifier.
    let mut out = [0u8; 512];
    let (_, len) = PairSetupClient::start(CODE.parse().unwrap(), flags::SPLIT, &mut out).unwrap();
    let m2_split = accessory.setup_request(2, &out[..len]).unwrap().body;
    let second = Tlv::parse(&m2_split).unwrap();
    assert_eq!(
        second.get(0x13).unwrap().to_uint_le(),
        Some(u64::from(flags::SPLIT))
    );
    assert_eq!(
        second.get(0x02).unwrap().contiguous(),
        first.get(0x02).unwrap().contiguous()
    );
}

#[test]
fn transient_success_after_failures_waits_for_the_counter_reset_to_be_stored() {
    let mut accessory = Accessory::new(1);
    accessory.state.failed_attempts = 3;
    let (a, c, _) = transient_setup(&mut accessory, 1, flags::TRANSIENT);
    assert_eq!(a, c);
    assert_eq!(accessory.stored.last().map(|s| s.failed_attempts), Some(0));
}

#[test]
fn pairings_admin_rules() {
    let (mut accessory, owner) = paired_accessory();
    let guest_key = Ed25519KeyPair::from_seed(&[5; 32]).public_key();
    let add_guest = tlv(&[
        (0x06, &[1]),
        (0x00, &[3]),
        (0x01, b"guest"),
        (0x03, &guest_key),
        (0x0B, &[0]),
    ]);
    assert_eq!(
        state_and_error(&accessory.pairings_request(&owner.id, &add_guest).unwrap()),
        (Some(2), None)
    );
    let guest = PairingId::new(b"guest").unwrap();

    // A non-admin may not list, add or remove.
    let list = tlv(&[(0x06, &[1]), (0x00, &[5])]);
    let remove_owner = tlv(&[(0x06, &[1]), (0x00, &[4]), (0x01, b"owner")]);
    for request in [&list, &add_guest, &remove_owner] {
        let reply = accessory.pairings_request(&guest, request).unwrap();
        assert_eq!(state_and_error(&reply), (Some(2), Some(AUTHENTICATION)));
    }
    // An existing id with a different key is refused.
    let other_key = Ed25519KeyPair::from_seed(&[6; 32]).public_key();
    let clash = tlv(&[
        (0x06, &[1]),
        (0x00, &[3]),
        (0x01, b"GUEST"),
        (0x03, &other_key),
        (0x0B, &[1]),
    ]);
    assert_eq!(
        state_and_error(&accessory.pairings_request(&owner.id, &clash).unwrap()),
        (Some(2), Some(1))
    );

    // The list: state first, separators between entries.
    let reply = accessory.pairings_request(&owner.id, &list).unwrap();
    let owner_key = owner.keys.public_key();
    let mut expected = vec![0x06, 1, 2, 0x01, 5];
    expected.extend_from_slice(b"owner");
    expected.extend_from_slice(&[0x03, 32]);
    expected.extend_from_slice(&owner_key);
    expected.extend_from_slice(&[0x0B, 1, 1, 0xFF, 0, 0x01, 5]);
    expected.extend_from_slice(b"guest");
    expected.extend_from_slice(&[0x03, 32]);
    expected.extend_from_slice(&guest_key);
    expected.extend_from_slice(&[0x0B, 1, 0]);
    assert_eq!(reply, expected);

    // Removing an absent pairing succeeds without a change.
    let stored_before = accessory.stored.len();
    let remove_absent = tlv(&[(0x06, &[1]), (0x00, &[4]), (0x01, b"nobody")]);
    assert_eq!(
        state_and_error(
            &accessory
                .pairings_request(&owner.id, &remove_absent)
                .unwrap()
        ),
        (Some(2), None)
    );
    assert_eq!(accessory.stored.len(), stored_before);

    // Removing the guest names its sessions for closing.
    let mut out = vec![0u8; 64];
    let remove_guest = tlv(&[(0x06, &[1]), (0x00, &[4]), (0x01, b"guest")]);
    let PairingsOutput::Persist { change, reply } =
        handle_pairings(&remove_guest, &owner.id, &mut accessory.state, &mut out).unwrap()
    else {
        panic!()
    };
    assert_eq!(change, StateChange::PairingRemoved);
    assert_eq!(
        reply.persisted(&mut out).unwrap(),
        (3, SessionsToClose::Controller(guest.clone()))
    );

    // Removing the last admin unpairs the accessory entirely.
    accessory.pairings_request(&owner.id, &add_guest).unwrap();
    let PairingsOutput::Persist { reply, .. } =
        handle_pairings(&remove_owner, &owner.id, &mut accessory.state, &mut out).unwrap()
    else {
        panic!()
    };
    assert!(!accessory.state.is_paired());
    assert_eq!(reply.persisted(&mut out).unwrap().1, SessionsToClose::All);
}

#[test]
fn pairings_change_is_undone_when_storage_fails() {
    let (mut accessory, owner) = paired_accessory();
    let before = accessory.state.clone();
    let mut out = vec![0u8; 64];
    let remove_owner = tlv(&[(0x06, &[1]), (0x00, &[4]), (0x01, b"owner")]);
    let PairingsOutput::Persist { reply, .. } =
        handle_pairings(&remove_owner, &owner.id, &mut accessory.state, &mut out).unwrap()
    else {
        panic!()
    };
    assert!(!accessory.state.is_paired());
    assert_eq!(
        reply.persist_failed(&mut accessory.state),
        SessionsToClose::None
    );
    assert_eq!(accessory.state, before);
}

#[test]
fn malformed_requests_are_errors_not_panics() {
    let mut accessory = Accessory::new(1);
    assert_eq!(
        accessory.setup_request(1, &[0x06]).err(),
        Some(PairingError::Tlv(hap_core::tlv::TlvError::Truncated {
            offset: 0
        }))
    );
    assert_eq!(
        accessory.setup_request(1, &[]).err(),
        Some(PairingError::MissingItem(0x06))
    );
    assert_eq!(
        accessory.setup_request(1, &tlv(&[(0x06, &[2])])).err(),
        Some(PairingError::UnexpectedState(2))
    );
    assert_eq!(
        accessory.setup_request(1, &tlv(&[(0x06, &[5])])).err(),
        Some(PairingError::UnexpectedState(5))
    );
    accessory.setup_request(1, &m1()).unwrap();
    // A malformed M3 from the lock holder ends its attempt.
    assert_eq!(
        accessory.setup_request(1, &tlv(&[(0x06, &[3])])).err(),
        Some(PairingError::MissingItem(0x03))
    );
    assert!(!accessory.setup.is_busy());
    let mut exchange = PairVerify::new();
    let mut out = [0u8; 256];
    for bad in [
        &[][..],
        &[0x06, 0x01, 0x01][..],
        &tlv(&[(0x06, &[1]), (0x03, &[1; 31])]),
        &tlv(&[(0x06, &[3])]),
    ] {
        assert!(exchange
            .handle(bad, &accessory.state, &mut accessory.rng, &mut out)
            .is_err());
    }
    // A low-order X25519 point would make the shared secret predictable.
    assert_eq!(
        exchange.handle(
            &tlv(&[(0x06, &[1]), (0x03, &[0; 32])]),
            &accessory.state,
            &mut accessory.rng,
            &mut out
        ),
        Err(PairingError::InvalidItem(0x03))
    );
}

fn add_request(id: &[u8], key: &[u8; 32], permissions: u8) -> Vec<u8> {
    tlv(&[
        (0x06, &[1]),
        (0x00, &[3]),
        (0x01, id),
        (0x03, key),
        (0x0B, &[permissions]),
    ])
}

#[test]
fn the_last_admin_demoting_itself_unpairs_the_accessory() {
    let (mut accessory, owner) = paired_accessory();
    let guest_key = Ed25519KeyPair::from_seed(&[5; 32]).public_key();
    accessory
        .pairings_request(&owner.id, &add_request(b"guest", &guest_key, 0))
        .unwrap();
    let mut out = vec![0u8; 64];
    let demote = add_request(b"owner", &owner.keys.public_key(), 0);
    let PairingsOutput::Persist { reply, .. } =
        handle_pairings(&demote, &owner.id, &mut accessory.state, &mut out).unwrap()
    else {
        panic!("expected a change")
    };
    assert!(!accessory.state.is_paired(), "no admin may remain paired");
    assert_eq!(reply.persisted(&mut out).unwrap().1, SessionsToClose::All);
    // Pair-setup is possible again.
    let m2 = accessory.setup_request(2, &m1()).unwrap().body;
    assert_eq!(state_and_error(&m2), (Some(2), None));
}

#[test]
fn permissions_other_than_0_or_1_are_malformed() {
    let (mut accessory, owner) = paired_accessory();
    let key = Ed25519KeyPair::from_seed(&[5; 32]).public_key();
    for permissions in [2u8, 3, 0x81, 0xFF] {
        assert_eq!(
            accessory
                .pairings_request(&owner.id, &add_request(b"guest", &key, permissions))
                .err(),
            Some(PairingError::InvalidItem(0x0B))
        );
    }
    assert_eq!(accessory.state.pairings.len(), 1);
}

#[test]
fn an_unstored_addition_is_undone_and_its_sessions_named_for_closing() {
    let (mut accessory, owner) = paired_accessory();
    let before = accessory.state.clone();
    let key = Ed25519KeyPair::from_seed(&[5; 32]).public_key();
    let mut out = vec![0u8; 64];
    let PairingsOutput::Persist { reply, .. } = handle_pairings(
        &add_request(b"guest", &key, 1),
        &owner.id,
        &mut accessory.state,
        &mut out,
    )
    .unwrap() else {
        panic!("expected a change")
    };
    // Meanwhile another admin's change lands; the undo must leave it alone.
    let other_key = Ed25519KeyPair::from_seed(&[6; 32]).public_key();
    let PairingsOutput::Persist { reply: other, .. } = handle_pairings(
        &add_request(b"other", &other_key, 0),
        &owner.id,
        &mut accessory.state,
        &mut out,
    )
    .unwrap() else {
        panic!("expected a change")
    };
    other.persisted(&mut out).unwrap();
    let closes = reply.persist_failed(&mut accessory.state);
    assert_eq!(
        closes,
        SessionsToClose::Controller(PairingId::new(b"guest").unwrap())
    );
    assert!(accessory.state.pairings.get(b"guest").is_none());
    assert!(accessory.state.pairings.get(b"other").is_some());
    assert_eq!(accessory.state.pairings.len(), before.pairings.len() + 1);
}

#[test]
fn any_malformed_request_from_the_lock_holder_ends_its_attempt() {
    for bad in [
        &[0x06, 0x05, 0x01][..],
        &[0x00, 0x01, 0x00][..],
        &[0x06, 0x02, 0x03, 0x00][..],
    ] {
        let mut accessory = Accessory::new(1);
        accessory.setup_request(1, &m1()).unwrap();
        assert!(accessory.setup_request(1, bad).is_err());
        assert!(!accessory.setup.is_busy(), "{bad:?} kept the lock");
        // A stranger's garbage does not disturb the holder.
        accessory.setup_request(1, &m1()).unwrap();
        assert!(accessory.setup_request(2, bad).is_err());
        assert!(accessory.setup.is_busy());
    }
}

#[test]
fn closing_the_connection_keeps_a_change_waiting_for_storage() {
    let mut accessory = Accessory::new(1);
    accessory.state.failed_attempts = 4;
    let conn = m5_waiting_for_storage(&mut accessory);
    accessory.setup.connection_closed(conn);
    // The store fails after the controller has gone: the pairing is still undone.
    assert!(accessory
        .setup
        .persist_failed(conn, &mut accessory.state)
        .is_ok());
    assert!(!accessory.state.is_paired());
    assert_eq!(accessory.state.failed_attempts, 4);
    assert!(!accessory.setup.is_busy());
}

#[test]
fn list_pairings_with_three_pairings_byte_by_byte() {
    let (mut accessory, owner) = paired_accessory();
    let keys = [5u8, 6].map(|seed| Ed25519KeyPair::from_seed(&[seed; 32]).public_key());
    for (id, key, admin) in [(&b"alice"[..], &keys[0], 1u8), (&b"bob"[..], &keys[1], 0)] {
        let add = tlv(&[
            (0x06, &[1]),
            (0x00, &[3]),
            (0x01, id),
            (0x03, key),
            (0x0B, &[admin]),
        ]);
        let reply = accessory.pairings_request(&owner.id, &add).unwrap();
        assert_eq!(state_and_error(&reply), (Some(2), None));
    }
    let list = tlv(&[(0x06, &[1]), (0x00, &[5])]);
    let reply = accessory.pairings_request(&owner.id, &list).unwrap();

    let mut expected = vec![0x06, 0x01, 0x02];
    let entries: [(&[u8], [u8; 32], u8); 3] = [
        (b"owner", owner.keys.public_key(), 1),
        (b"alice", keys[0], 1),
        (b"bob", keys[1], 0),
    ];
    for (n, (id, key, admin)) in entries.iter().enumerate() {
        if n > 0 {
            expected.extend_from_slice(&[0xFF, 0x00]);
        }
        expected.extend_from_slice(&[0x01, id.len() as u8]);
        expected.extend_from_slice(id);
        expected.extend_from_slice(&[0x03, 0x20]);
        expected.extend_from_slice(key);
        expected.extend_from_slice(&[0x0B, 0x01, *admin]);
    }
    assert_eq!(reply.len(), 3 + 3 * (2 + 34 + 3) + 5 + 5 + 3 + 2 * 2);
    assert_eq!(reply, expected);
}
