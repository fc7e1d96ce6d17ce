//! Controller core ↔ accessory core, in memory: pair-setup, pair-verify, then 100 KB of
//! application data each way through the encrypted session.
//!
//! Pairing messages are whole TLV bodies (their delimiting is HTTP's job, above this
//! layer). The session's byte stream is fed to each decryptor whole, one byte at a time,
//! and at random split points, and every run must produce identical results.

mod common;

use common::{controller, pair, rng, verify, Accessory, CODE};
use hap_core::session::{FrameDecryptor, FrameEncryptor, FrameError, Role, Session};
use rand_chacha::rand_core::RngCore;

const DATA_EACH_WAY: usize = 100 * 1024;

#[derive(Clone, Copy, Debug)]
enum Feed {
    Whole,
    ByteByByte,
    RandomSplits(u64),
}

#[derive(Debug, PartialEq, Eq)]
struct Transcript {
    accessory_id: Vec<u8>,
    controller_to_accessory: Vec<u8>,
    accessory_to_controller: Vec<u8>,
    received_by_accessory: Vec<u8>,
    received_by_controller: Vec<u8>,
}

/// Feeds `wire` to `decryptor` in pieces chosen by `feed`, returning the plaintext.
fn deliver(decryptor: &mut FrameDecryptor, wire: &[u8], feed: Feed) -> Result<Vec<u8>, FrameError> {
    let mut splitter = rng(match feed {
        Feed::RandomSplits(seed) => seed,
        _ => 0,
    });
    let mut plaintext = Vec::new();
    let mut rest = wire;
    while !rest.is_empty() {
        let piece_len = match feed {
            Feed::Whole => rest.len(),
            Feed::ByteByByte => 1,
            Feed::RandomSplits(_) => 1 + (splitter.next_u32() as usize % 3000).min(rest.len() - 1),
        };
        let (mut piece, tail) = rest.split_at(piece_len);
        while !piece.is_empty() {
            let opened = decryptor.open(piece)?;
            assert!(
                opened.consumed > 0 || opened.plaintext.is_some(),
                "no progress"
            );
            plaintext.extend_from_slice(opened.plaintext.unwrap_or_default());
            piece = &piece[opened.consumed..];
        }
        rest = tail;
    }
    assert!(!decryptor.has_partial_frame());
    Ok(plaintext)
}

/// Seals `data` as application messages of random sizes, as a connection would.
fn seal_messages(encryptor: &mut FrameEncryptor, data: &[u8], sizes: &mut impl RngCore) -> Vec<u8> {
    let mut wire = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let len = (1 + sizes.next_u32() as usize % 4000).min(rest.len());
        let (message, tail) = rest.split_at(len);
        let start = wire.len();
        wire.resize(start + FrameEncryptor::sealed_len(len), 0);
        let sealed = encryptor.seal(message, &mut wire[start..]).unwrap();
        assert_eq!((sealed.consumed, start + sealed.written), (len, wire.len()));
        rest = tail;
    }
    wire
}

fn run(feed: Feed) -> Transcript {
    let mut accessory = Accessory::new(1);
    let mut controller_rng = rng(2);
    let identity = controller("E0A1B2C3-0000-4000-8000-000000000001", 7);

    let pairing = pair(&mut accessory, 1, &identity, CODE, &mut controller_rng).unwrap();
    assert_eq!(pairing.id.as_bytes(), &accessory.state.device_id.to_ascii());
    assert_eq!(pairing.public_key, accessory.state.identity.public_key());
    let stored = accessory
        .state
        .pairings
        .get(identity.id.as_bytes())
        .expect("pairing stored");
    assert!(stored.admin);
    assert_eq!(stored.public_key, identity.keys.public_key());
    assert_eq!(
        accessory.stored.last(),
        Some(&accessory.state),
        "pairing persisted before M6"
    );

    let (accessory_keys, controller_keys) =
        verify(&mut accessory, &identity, &pairing, &mut controller_rng).unwrap();
    assert_eq!(accessory_keys, controller_keys);
    let mut accessory_session = Session::new(accessory_keys, Role::Accessory);
    let mut controller_session = Session::new(controller_keys, Role::Controller);

    let mut data_rng = rng(3);
    let mut upstream = vec![0u8; DATA_EACH_WAY];
    let mut downstream = vec![0u8; DATA_EACH_WAY];
    data_rng.fill_bytes(&mut upstream);
    data_rng.fill_bytes(&mut downstream);
    let up_wire = seal_messages(&mut controller_session.outbound, &upstream, &mut data_rng);
    let down_wire = seal_messages(&mut accessory_session.outbound, &downstream, &mut data_rng);

    let received_by_accessory = deliver(&mut accessory_session.inbound, &up_wire, feed).unwrap();
    let received_by_controller =
        deliver(&mut controller_session.inbound, &down_wire, feed).unwrap();
    assert_eq!(received_by_accessory, upstream, "{feed:?}");
    assert_eq!(received_by_controller, downstream, "{feed:?}");

    Transcript {
        accessory_id: pairing.id.as_bytes().to_vec(),
        controller_to_accessory: up_wire,
        accessory_to_controller: down_wire,
        received_by_accessory,
        received_by_controller,
    }
}

#[test]
fn pair_verify_and_100_kb_each_way_fed_three_ways() {
    let whole = run(Feed::Whole);
    let bytewise = run(Feed::ByteByByte);
    assert_eq!(whole, bytewise);
    for seed in [11, 12, 13] {
        assert_eq!(whole, run(Feed::RandomSplits(seed)));
    }
}

/// Two verified sessions over the same pairing, for the attacks below.
fn verified_sessions() -> (Session, Session) {
    let mut accessory = Accessory::new(4);
    let mut controller_rng = rng(5);
    let identity = controller("controller-a", 9);
    let pairing = pair(&mut accessory, 1, &identity, CODE, &mut controller_rng).unwrap();
    let (a, c) = verify(&mut accessory, &identity, &pairing, &mut controller_rng).unwrap();
    (
        Session::new(a, Role::Accessory),
        Session::new(c, Role::Controller),
    )
}

fn seal(session: &mut Session, data: &[u8]) -> Vec<u8> {
    let mut wire = vec![0u8; FrameEncryptor::sealed_len(data.len())];
    session.outbound.seal(data, &mut wire).unwrap();
    wire
}

#[test]
fn tampered_tag_closes_the_session() {
    let (mut accessory, mut controller) = verified_sessions();
    let mut wire = seal(&mut controller, b"PUT /characteristics HTTP/1.1\r\n\r\n");
    *wire.last_mut().unwrap() ^= 1;
    assert_eq!(
        deliver(&mut accessory.inbound, &wire, Feed::Whole),
        Err(FrameError::BadTag)
    );
    let next = seal(&mut controller, b"GET /accessories HTTP/1.1\r\n\r\n");
    assert_eq!(
        deliver(&mut accessory.inbound, &next, Feed::Whole),
        Err(FrameError::BadTag)
    );
}

#[test]
fn oversize_length_closes_the_session() {
    let (mut accessory, _) = verified_sessions();
    let mut wire = vec![0u8; 1025 + 18];
    wire[..2].copy_from_slice(&1025u16.to_le_bytes());
    for feed in [Feed::Whole, Feed::ByteByByte] {
        let (mut fresh, _) = verified_sessions();
        assert_eq!(
            deliver(&mut fresh.inbound, &wire, feed),
            Err(FrameError::LengthTooLarge { length: 1025 })
        );
    }
    assert_eq!(
        accessory.inbound.open(&u16::MAX.to_le_bytes()).unwrap_err(),
        FrameError::LengthTooLarge { length: u16::MAX }
    );
}

#[test]
fn replayed_frame_closes_the_session() {
    let (mut accessory, mut controller) = verified_sessions();
    let wire = seal(&mut controller, b"PUT /characteristics HTTP/1.1\r\n\r\n");
    assert!(deliver(&mut accessory.inbound, &wire, Feed::Whole).is_ok());
    assert_eq!(
        deliver(&mut accessory.inbound, &wire, Feed::ByteByByte),
        Err(FrameError::BadTag)
    );
}

#[test]
fn directions_do_not_share_keys() {
    let (mut accessory, mut controller) = verified_sessions();
    // A frame reflected back at its sender must not authenticate.
    let wire = seal(&mut controller, b"hello");
    assert_eq!(
        deliver(&mut controller.inbound, &wire, Feed::Whole),
        Err(FrameError::BadTag)
    );
    let wire = seal(&mut accessory, b"hello");
    assert_eq!(
        deliver(&mut accessory.inbound, &wire, Feed::Whole),
        Err(FrameError::BadTag)
    );
}
