//! iOS quirks that broke other HAP implementations, each a scenario with the bytes iOS
//! sends, fed whole, byte by byte and at random split points (issue 19).

use std::string::String;
use std::vec;
use std::vec::Vec;

use super::*;
use crate::crypto::{hkdf_sha512, seal_in_place, Key, Nonce, X25519Secret};
use crate::mdns::Advertisement;
use crate::tlv::Tlv;

const FEEDS: [Feed; 5] = [
    Feed::Whole,
    Feed::ByteByByte,
    Feed::Random(1),
    Feed::Random(2),
    Feed::Random(3),
];

/// iOS names its controllers with upper-case UUIDs.
const OWNER_ID: &[u8; 36] = b"9F4C1D2E-7A3B-4C5D-8E6F-0A1B2C3D4E5F";
const SHARED_USER_ID: &[u8; 36] = b"5B8E2F10-3C4D-4A6B-9C7D-1E2F3A4B5C6D";
const HOME_HUB_ID: &[u8; 36] = b"C0FFEE00-1234-4ABC-8DEF-00112233AABB";

/// List Pairings M1: Method 5 (List Pairings), State 1.
const LIST_PAIRINGS_M1: &[u8] = &[0x00, 0x01, 0x05, 0x06, 0x01, 0x01];
/// The success answer to Add and Remove Pairing: State 2.
const PAIRINGS_M2_OK: &[u8] = &[0x06, 0x01, 0x02];
/// The answer to a `/pairings` request from a controller that is not an admin: State 2,
/// Error 2 (Authentication).
const PAIRINGS_M2_NOT_ADMIN: &[u8] = &[0x06, 0x01, 0x02, 0x07, 0x01, 0x02];
/// The whole HTTP answer to a pair-verify M3 that fails: 200 with State 4, Error 2
/// (Authentication).
const PAIR_VERIFY_M4_AUTHENTICATION: &[u8] = b"HTTP/1.1 200 OK\r\n\
    Content-Type: application/pairing+tlv8\r\n\
    Content-Length: 6\r\n\r\n\
    \x06\x01\x04\x07\x01\x02";

/// Add Pairing M1 as iOS sends it when it shares the home: State 1, Method 3 (Add
/// Pairing), Identifier, PublicKey, Permissions (1 for an admin).
fn add_pairing_m1(id: &[u8], public_key: &[u8; 32], admin: bool) -> Vec<u8> {
    written(|out| request::add_pairing_body(out, id, public_key, admin))
}

/// Remove Pairing M1: State 1, Method 4 (Remove Pairing), Identifier.
fn remove_pairing_m1(id: &[u8]) -> Vec<u8> {
    written(|out| request::remove_pairing_body(out, id))
}

fn pairings(body: &[u8]) -> Vec<u8> {
    post("/pairings", "application/pairing+tlv8", body)
}

/// One entry of a List Pairings answer: Identifier, PublicKey, Permissions.
fn listed(controller: &Controller, admin: bool) -> Vec<u8> {
    let id = controller.identity.id.as_bytes();
    [
        &[0x01, id.len() as u8][..],
        id,
        &[0x03, 0x20],
        &controller.identity.keys.public_key(),
        &[0x0B, 0x01, u8::from(admin)],
    ]
    .concat()
}

/// The identifiers of a List Pairings answer, in order, as raw bytes.
fn listed_ids(body: &[u8]) -> Vec<Vec<u8>> {
    let reply = crate::controller::PairingsReply::parse(body).unwrap();
    reply
        .pairings()
        .map(|pairing| pairing.id.to_vec())
        .collect()
}

/// A List Pairings answer holds one pairing per run of items between separators (type
/// 0xFF, length 0). HAP-python listed pairings back to back without them, which confused
/// iOS 17: pairing failed, and shared users could not use the accessory. HAP-python PR
/// #456 put a separator between pairings, none after the last.
#[test]
fn list_pairings_separates_shared_users_each_with_its_permissions() {
    for how in FEEDS {
        let mut harness = Harness::new();
        let (mut owner_buffers, mut user_buffers) = (Buffers::new(), Buffers::new());
        let mut owner_conn = owner_buffers.connection(1);
        let mut user_conn = user_buffers.connection(2);
        let mut owner = Controller::new(core::str::from_utf8(OWNER_ID).unwrap(), 7);
        let mut user = Controller::new(core::str::from_utf8(SHARED_USER_ID).unwrap(), 8);
        let hub = Controller::new(core::str::from_utf8(HOME_HUB_ID).unwrap(), 9);
        let accessory = harness.pair(&mut owner_conn, &mut owner, how);
        harness.verify(&mut owner_conn, &mut owner, &accessory, how);
        // A shared user without admin rights, then a home hub with them.
        for (shared, admin) in [(&user, false), (&hub, true)] {
            let add = add_pairing_m1(
                shared.identity.id.as_bytes(),
                &shared.identity.keys.public_key(),
                admin,
            );
            let (replies, outcome) =
                harness.exchange(&mut owner_conn, &mut owner, &pairings(&add), how);
            assert_eq!(replies, [(200, PAIRINGS_M2_OK.to_vec())], "{how:?}");
            assert_eq!(outcome.persisted, 1);
        }

        let (replies, _) = harness.exchange(
            &mut owner_conn,
            &mut owner,
            &pairings(LIST_PAIRINGS_M1),
            how,
        );
        let expected = [
            &[0x06, 0x01, 0x02][..],
            &listed(&owner, true),
            &[0xFF, 0x00],
            &listed(&user, false),
            &[0xFF, 0x00],
            &listed(&hub, true),
        ]
        .concat();
        assert_eq!(replies, [(200, expected)], "{how:?}");

        // Read back as iOS does: each run between separators is one pairing.
        let body = &replies[0].1;
        let mut entries: Vec<Vec<(u8, Vec<u8>)>> = vec![Vec::new()];
        for item in Tlv::parse(body).unwrap().items().skip(1) {
            if item.ty() == 0xFF {
                assert!(item.is_empty());
                entries.push(Vec::new());
            } else {
                let value = item.contiguous().unwrap().to_vec();
                entries.last_mut().unwrap().push((item.ty(), value));
            }
        }
        let permissions: Vec<(Vec<u8>, Vec<u8>)> = entries
            .iter()
            .map(|entry| {
                let types: Vec<u8> = entry.iter().map(|(ty, _)| *ty).collect();
                assert_eq!(types, [0x01, 0x03, 0x0B], "one of each item per pairing");
                (entry[0].1.clone(), entry[2].1.clone())
            })
            .collect();
        assert_eq!(
            permissions,
            [
                (OWNER_ID.to_vec(), vec![1]),
                (SHARED_USER_ID.to_vec(), vec![0]),
                (HOME_HUB_ID.to_vec(), vec![1]),
            ]
        );

        // The shared user verifies and is served, but may not manage pairings.
        harness.verify(&mut user_conn, &mut user, &accessory, how);
        let (replies, outcome) =
            harness.exchange(&mut user_conn, &mut user, &pairings(LIST_PAIRINGS_M1), how);
        assert_eq!(replies, [(200, PAIRINGS_M2_NOT_ADMIN.to_vec())]);
        assert!(!outcome.closed);
    }
}

/// iOS 16 matches the identifiers of a List Pairings answer against its own case
/// sensitively, and unpairs an accessory whose list lacks it. HAP-python parsed them into
/// UUIDs and listed them in lower case, which iOS 16 took for strangers (HAP-python PR
/// #424; PR #441 then kept the bytes as added). The accessory must hand back every
/// identifier exactly as it was added, and remove by it.
#[test]
fn controller_ids_are_listed_byte_for_byte_as_they_were_added() {
    // Another controller's UUID in lower case, and an identifier in mixed case.
    const LOWER_CASE_ID: &[u8] = b"5b8e2f10-3c4d-4a6b-9c7d-1e2f3a4b5c6d";
    const MIXED_CASE_ID: &[u8] = b"Kitchen-iPad-0A1b2C";
    for how in FEEDS {
        let mut harness = Harness::new();
        let (mut owner_buffers, mut other_buffers) = (Buffers::new(), Buffers::new());
        let mut owner_conn = owner_buffers.connection(1);
        let mut other_conn = other_buffers.connection(2);
        // The owner's identifier reaches the accessory in pair-setup's M5.
        let mut owner = Controller::new(core::str::from_utf8(OWNER_ID).unwrap(), 7);
        let accessory = harness.pair(&mut owner_conn, &mut owner, how);
        harness.verify(&mut owner_conn, &mut owner, &accessory, how);
        assert_eq!(
            owner_conn.controller().map(PairingId::as_bytes),
            Some(&OWNER_ID[..])
        );

        let mut lower = Controller::new(core::str::from_utf8(LOWER_CASE_ID).unwrap(), 8);
        let mixed = Controller::new(core::str::from_utf8(MIXED_CASE_ID).unwrap(), 9);
        for (added, admin) in [(&lower, false), (&mixed, true)] {
            let add = add_pairing_m1(
                added.identity.id.as_bytes(),
                &added.identity.keys.public_key(),
                admin,
            );
            let (replies, _) = harness.exchange(&mut owner_conn, &mut owner, &pairings(&add), how);
            assert_eq!(replies, [(200, PAIRINGS_M2_OK.to_vec())]);
        }
        let (replies, _) = harness.exchange(
            &mut owner_conn,
            &mut owner,
            &pairings(LIST_PAIRINGS_M1),
            how,
        );
        assert_eq!(replies[0].0, 200);
        assert_eq!(
            listed_ids(&replies[0].1),
            [
                OWNER_ID.to_vec(),
                LOWER_CASE_ID.to_vec(),
                MIXED_CASE_ID.to_vec()
            ],
            "{how:?}"
        );

        // The lower-case controller's session is known by its identifier as added.
        harness.verify(&mut other_conn, &mut lower, &accessory, how);
        assert_eq!(
            other_conn.controller().map(PairingId::as_bytes),
            Some(LOWER_CASE_ID)
        );

        // Removal by the very bytes that were added.
        let (replies, outcome) = harness.exchange(
            &mut owner_conn,
            &mut owner,
            &pairings(&remove_pairing_m1(MIXED_CASE_ID)),
            how,
        );
        assert_eq!(replies, [(200, PAIRINGS_M2_OK.to_vec())]);
        assert_eq!(outcome.persisted, 1, "the removal was stored");
        let (replies, _) = harness.exchange(
            &mut owner_conn,
            &mut owner,
            &pairings(LIST_PAIRINGS_M1),
            how,
        );
        assert_eq!(
            listed_ids(&replies[0].1),
            [OWNER_ID.to_vec(), LOWER_CASE_ID.to_vec()]
        );
    }
}

/// A pair-verify begun by hand, so that M3 can carry whatever a test needs.
struct VerifyStarted {
    key: Key,
    controller_public: [u8; 32],
    accessory_public: [u8; 32],
}

impl VerifyStarted {
    /// Sends pair-verify M1 (State 1, PublicKey) on `conn` and reads M2.
    fn send_m1(harness: &mut Harness, conn: &mut Connection<'_>, how: Feed, seed: u8) -> Self {
        let secret = X25519Secret::from_bytes([seed; 32]);
        let controller_public = secret.public_key();
        let m1 = [&[0x06, 0x01, 0x01, 0x03, 0x20][..], &controller_public].concat();
        let (replies, _) = harness.exchange(
            conn,
            &mut Controller::new("plaintext", 1),
            &post("/pair-verify", "application/pairing+tlv8", &m1),
            how,
        );
        assert_eq!(replies[0].0, 200);
        let m2 = Tlv::parse(&replies[0].1).unwrap();
        assert_eq!(m2.get_u8(0x06), Some(2));
        let accessory_public: [u8; 32] = m2.get(0x03).unwrap().to_array().unwrap();
        let shared = secret.agree(&accessory_public).unwrap();
        Self {
            key: hkdf_sha512(
                shared.as_bytes(),
                b"Pair-Verify-Encrypt-Salt",
                b"Pair-Verify-Encrypt-Info",
            ),
            controller_public,
            accessory_public,
        }
    }

    /// The sub-TLV iOS encrypts into M3: Identifier, and Signature over its X25519 key,
    /// the identifier and the accessory's X25519 key, signed with `signer`.
    fn proof(&self, id: &[u8], signer: &crate::crypto::Ed25519KeyPair) -> Vec<u8> {
        let signature = signer
            .sign_parts::<128>(&[&self.controller_public, id, &self.accessory_public])
            .unwrap();
        [&[0x01, id.len() as u8][..], id, &[0x0A, 0x40], &signature].concat()
    }

    /// Pair-verify M3: State 3, EncryptedData (the sealed sub-TLV and its tag).
    fn m3(&self, sub_tlv: &[u8]) -> Vec<u8> {
        let mut sealed = sub_tlv.to_vec();
        let tag = seal_in_place(&self.key, Nonce::Label(b"PV-Msg03"), &[], &mut sealed);
        sealed.extend_from_slice(&tag);
        [&[0x06, 0x01, 0x03, 0x05, sealed.len() as u8][..], &sealed].concat()
    }
}

/// With iOS 16.2's new Home architecture, a home hub learns which keys the accessory
/// holds from a pair-verify M4 carrying the TLV error Authentication. Bouke/HAP answered
/// HTTP 400 instead, and iOS marked the accessory unreachable (Bouke/HAP PR #153). An unknown controller, a wrong signature, data that fails to
/// decrypt and a proof without its signature (HAP-python PR #456) all get 200 with
/// State 4 and Error 2, leave the connection open, and a new M1 starts afresh.
#[test]
fn a_failed_pair_verify_is_answered_with_a_tlv_authentication_error_over_200() {
    let stranger = Ed25519KeyPair::from_seed(&[3; 32]);
    for how in FEEDS {
        let mut harness = Harness::new();
        let (mut owner_buffers, mut buffers) = (Buffers::new(), Buffers::new());
        let mut owner_conn = owner_buffers.connection(1);
        let mut conn = buffers.connection(2);
        let mut owner = Controller::new(core::str::from_utf8(OWNER_ID).unwrap(), 7);
        let accessory = harness.pair(&mut owner_conn, &mut owner, how);

        type Forge = fn(&VerifyStarted, &Ed25519KeyPair, &Ed25519KeyPair) -> Vec<u8>;
        let failures: [(&str, Forge); 4] = [
            ("an unknown controller", |started, _, stranger| {
                started.m3(&started.proof(SHARED_USER_ID, stranger))
            }),
            (
                "the owner's identifier with another key",
                |started, _, stranger| started.m3(&started.proof(OWNER_ID, stranger)),
            ),
            ("data that fails to decrypt", |started, owner, _| {
                let mut m3 = started.m3(&started.proof(OWNER_ID, owner));
                m3[5] ^= 0x01;
                m3
            }),
            ("a proof without its signature", |started, _, _| {
                started.m3(&[&[0x01, 0x24][..], OWNER_ID].concat())
            }),
        ];
        for (seed, (case, forge)) in (10..).zip(failures) {
            let started = VerifyStarted::send_m1(&mut harness, &mut conn, how, seed);
            let m3 = forge(&started, &owner.identity.keys, &stranger);
            let (_, outcome) = harness.exchange(
                &mut conn,
                &mut Controller::new("plaintext", 1),
                &post("/pair-verify", "application/pairing+tlv8", &m3),
                how,
            );
            assert_eq!(
                outcome.transmitted,
                PAIR_VERIFY_M4_AUTHENTICATION,
                "{case}, {how:?}: {}",
                String::from_utf8_lossy(&outcome.transmitted)
            );
            assert!(outcome.events.is_empty(), "{case}");
            assert!(!outcome.closed, "{case}");
            assert!(!conn.is_encrypted(), "{case}");
        }

        // The same connection then verifies with the keys the accessory knows.
        let mut plain = Controller::new(core::str::from_utf8(OWNER_ID).unwrap(), 7);
        harness.verify(&mut conn, &mut plain, &accessory, how);
        assert!(conn.is_encrypted());
        let (replies, _) =
            harness.exchange(&mut conn, &mut plain, &pairings(LIST_PAIRINGS_M1), how);
        assert_eq!(listed_ids(&replies[0].1), [OWNER_ID.to_vec()]);
    }
}

/// The `sf` value an adapter advertises when it announces the accessory as `paired`.
fn sf(harness: &Harness, paired: bool) -> String {
    let advertisement = Advertisement {
        name: "Light",
        port: 51826,
        model: "L1",
        device_id: harness.server.state().device_id,
        config_number: 1,
        category: crate::catalog::Category::LIGHTBULB,
        paired,
        setup_id: None,
    };
    let txt = advertisement.txt();
    let entry = txt.iter().find(|entry| entry.key == "sf").unwrap();
    entry.value.as_str().into()
}

/// What an adapter advertises: the paired state it loaded, then each reported change.
struct Announcer {
    paired: bool,
    changes: Vec<bool>,
}

impl Announcer {
    fn saw(&mut self, events: &[Event]) {
        for event in events {
            if let Event::PairingsChanged { paired } = event {
                self.changes.push(*paired);
                self.paired = *paired;
            }
        }
    }
}

/// Pair-setup M1 (State 1, Method 0) as iOS sends it, without flags.
const PAIR_SETUP_M1: &[u8] = &[0x06, 0x01, 0x01, 0x00, 0x01, 0x00];

/// iOS 13 gives up a pair-setup when the accessory's status flag `sf` changes before
/// the setup is complete: it takes the accessory for paired by someone else. HAP-Java
/// cleared `sf` while handling M5 and could no longer be paired; HAP-Java PR #95 left it
/// set until a controller had verified (HAP-python PR #246 likewise deferred its
/// announcement until after M6). `sf` follows [`Event::PairingsChanged`]: nothing may be
/// reported through M1 to M5, and the change exactly once, when the pairing is stored.
#[test]
fn sf_stays_set_through_pair_setup_and_flips_once_the_pairing_is_stored() {
    for how in FEEDS {
        let mut harness = Harness::new();
        let mut buffers = Buffers::new();
        let mut conn = buffers.connection(1);
        let mut owner = Controller::new(core::str::from_utf8(OWNER_ID).unwrap(), 7);
        let mut adapter = Announcer {
            paired: harness.server.state().is_paired(),
            changes: Vec::new(),
        };
        assert_eq!(sf(&harness, adapter.paired), "1");

        let mut out = [0u8; 1024];
        let (mut client, len) = PairSetupClient::start(CODE.parse().unwrap(), 0, &mut out).unwrap();
        assert_eq!(&out[..len], PAIR_SETUP_M1);
        let mut body = out[..len].to_vec();
        // M1 and M3.
        for _ in 0..2 {
            let (replies, outcome) = harness.exchange(
                &mut conn,
                &mut owner,
                &post("/pair-setup", "application/pairing+tlv8", &body),
                how,
            );
            assert_eq!(outcome.persisted, 0);
            adapter.saw(&outcome.events);
            assert_eq!(harness.server.poll_event(), None);
            assert_eq!(sf(&harness, adapter.paired), "1", "{how:?}");
            let SetupClientOutput::Send(len) = client
                .handle_response(&replies[0].1, &owner.identity, &mut owner.rng, &mut out)
                .unwrap()
            else {
                panic!("pair-setup ended early")
            };
            body = out[..len].to_vec();
        }

        // M5, all but its last byte: nothing happens yet.
        let m5 = post("/pair-setup", "application/pairing+tlv8", &body);
        let (head, last) = m5.split_at(m5.len() - 1);
        let outcome = feed(
            &mut harness.server,
            &mut conn,
            harness.now,
            head,
            how,
            &mut harness.rng,
            &mut harness.stored,
        );
        assert_eq!(outcome, Outcome::default());
        // The last byte completes M5: the pairing must be stored before M6 is sent.
        let now = harness.now;
        let taken = harness
            .server
            .handle_input(&mut conn, now, last, &mut harness.rng);
        assert_eq!(taken, 1);
        assert_eq!(
            harness.server.poll_output(&mut conn, now, &mut harness.rng),
            Some(Output::Persist)
        );
        assert_eq!(harness.server.poll_event(), None, "not stored yet");
        assert_eq!(sf(&harness, adapter.paired), "1", "{how:?}");
        harness
            .server
            .state_persisted(&mut conn, now, true, &mut harness.rng);
        let stored: Vec<Event> = core::iter::from_fn(|| harness.server.poll_event()).collect();
        assert!(stored.is_empty(), "stored, but M6 is not sent yet");
        let rest = drain(
            &mut harness.server,
            &mut conn,
            now,
            &mut harness.rng,
            &mut harness.stored,
        );
        let replies = responses(&rest.transmitted);
        assert_eq!(replies.len(), 1);
        assert_eq!(replies[0].0, 200);
        let SetupClientOutput::Paired(accessory) = client
            .handle_response(&replies[0].1, &owner.identity, &mut owner.rng, &mut out)
            .unwrap()
        else {
            panic!("M6 did not complete pair-setup")
        };

        adapter.saw(&rest.events);
        assert!(
            adapter.changes.is_empty(),
            "M6 is sent, but iOS may not have it yet"
        );
        assert_eq!(sf(&harness, adapter.paired), "1");

        // The controller's next request shows that it has M6: now `sf` goes to 0.
        let (verify_m1, _) = {
            let mut m1 = [0u8; 64];
            let (client, len) =
                crate::pairing::verify::PairVerifyClient::start(&mut owner.rng, &mut m1).unwrap();
            (m1[..len].to_vec(), client)
        };
        let (replies, outcome) = harness.exchange(
            &mut conn,
            &mut owner,
            &post("/pair-verify", "application/pairing+tlv8", &verify_m1),
            how,
        );
        assert_eq!(replies[0].0, 200);
        adapter.saw(&outcome.events);
        assert_eq!(adapter.changes, [true], "{how:?}");
        assert_eq!(sf(&harness, adapter.paired), "0");

        // Verifying, and adding and removing another controller, leave `sf` alone.
        harness.verify(&mut conn, &mut owner, &accessory, how);
        let guest = Controller::new("guest", 8);
        for body in [
            add_pairing_m1(b"guest", &guest.identity.keys.public_key(), false),
            remove_pairing_m1(b"guest"),
        ] {
            let (_, outcome) = harness.exchange(&mut conn, &mut owner, &pairings(&body), how);
            assert_eq!(outcome.persisted, 1);
            adapter.saw(&outcome.events);
        }
        assert_eq!(adapter.changes, [true], "{how:?}");
        assert_eq!(sf(&harness, adapter.paired), "0");

        // Removing the last admin unpairs the accessory: `sf` is set again, once.
        let (_, outcome) = harness.exchange(
            &mut conn,
            &mut owner,
            &pairings(&remove_pairing_m1(OWNER_ID)),
            how,
        );
        adapter.saw(&outcome.events);
        assert_eq!(adapter.changes, [true, false], "{how:?}");
        assert_eq!(sf(&harness, adapter.paired), "1");
    }
}

/// The rest of HAP-Java PR #95 and HAP-python PR #246: the announcement of `sf` = 0
/// must not reach iOS before M6 does. [`Server::poll_event`] reports the change only once
/// the controller surely has M6: its next bytes, the connection's end, or any pair-verify.
#[test]
fn pairings_changed_waits_until_the_controller_surely_has_m6() {
    let mut harness = Harness::new();
    let mut buffers = Buffers::new();
    let mut conn = buffers.connection(1);
    let mut owner = Controller::new(core::str::from_utf8(OWNER_ID).unwrap(), 7);
    let m5 = m5_request(&mut harness, &mut conn, &mut owner);
    let now = harness.now;
    harness
        .server
        .handle_input(&mut conn, now, &m5, &mut harness.rng);
    assert_eq!(
        harness.server.poll_output(&mut conn, now, &mut harness.rng),
        Some(Output::Persist)
    );
    harness
        .server
        .state_persisted(&mut conn, now, true, &mut harness.rng);
    assert_eq!(
        harness.server.poll_event(),
        None,
        "M6 has not been handed out"
    );
    let Some(Output::Transmit(m6)) = harness.server.poll_output(&mut conn, now, &mut harness.rng)
    else {
        panic!("no M6")
    };
    assert_eq!(responses(m6)[0].0, 200);
    assert_eq!(
        harness.server.poll_event(),
        None,
        "handed out is not yet received"
    );
    // The connection ends (aiohomekit pairs on one connection and verifies on another).
    harness.server.connection_lost(&mut conn);
    assert_eq!(
        harness.server.poll_event(),
        Some(Event::PairingsChanged { paired: true })
    );
    assert_eq!(harness.server.poll_event(), None, "once");
}
