//! A whole pair-verify plus 1000 framed messages each way allocate nothing.
//!
//! A counting global allocator counts allocations made by this thread while measuring.

mod common;
mod counting;

use common::{controller, pair, rng, Accessory, CODE};
use counting::allocations_during;
use hap_core::pairing::verify::{
    PairVerify, PairVerifyClient, VerifyClientOutput, VerifyOutput, MAX_VERIFY_MESSAGE_LEN,
};
use hap_core::pairing::{AccessoryPairing, ControllerIdentity};
use hap_core::session::{FrameEncryptor, Role, Session, MAX_FRAME_LEN, MAX_FRAME_PLAINTEXT};
use hap_core::state::AccessoryState;
use rand_chacha::rand_core::RngCore;
use rand_chacha::ChaCha20Rng;

/// Pair-verify and 1000 messages each way, using only stack buffers. Returns the bytes
/// each side received, so the work cannot be optimised away.
fn verify_and_talk(
    state: &AccessoryState,
    identity: &ControllerIdentity,
    pairing: &AccessoryPairing,
    accessory_rng: &mut ChaCha20Rng,
    controller_rng: &mut ChaCha20Rng,
) -> (usize, usize) {
    let mut request = [0u8; MAX_VERIFY_MESSAGE_LEN];
    let mut reply = [0u8; MAX_VERIFY_MESSAGE_LEN];
    let mut accessory_side = PairVerify::new();
    let (mut client, mut request_len) =
        PairVerifyClient::start(controller_rng, &mut request).unwrap();
    let (mut accessory_session, mut controller_session) = loop {
        let (reply_len, accessory_keys) = match accessory_side
            .handle(&request[..request_len], state, accessory_rng, &mut reply)
            .unwrap()
        {
            VerifyOutput::Reply(len) => (len, None),
            VerifyOutput::Verified {
                reply_len, keys, ..
            } => (reply_len, Some(keys)),
        };
        match client
            .handle_response(&reply[..reply_len], identity, pairing, &mut request)
            .unwrap()
        {
            VerifyClientOutput::Send(len) => request_len = len,
            VerifyClientOutput::Verified(keys) => {
                break (
                    Session::new(accessory_keys.unwrap(), Role::Accessory),
                    Session::new(keys, Role::Controller),
                );
            }
        }
    };

    let mut plaintext = [0u8; MAX_FRAME_PLAINTEXT];
    let mut wire = [0u8; MAX_FRAME_LEN];
    let mut received = (0, 0);
    for message in 0..1000usize {
        let len = 1 + message % MAX_FRAME_PLAINTEXT;
        controller_rng.fill_bytes(&mut plaintext[..len]);
        received.0 += transfer(
            &mut controller_session,
            &mut accessory_session,
            &plaintext[..len],
            &mut wire,
        );
        received.1 += transfer(
            &mut accessory_session,
            &mut controller_session,
            &plaintext[..len],
            &mut wire,
        );
    }
    received
}

/// Sends one message from `sender` to `receiver` and returns its length once checked.
fn transfer(
    sender: &mut Session,
    receiver: &mut Session,
    message: &[u8],
    wire: &mut [u8],
) -> usize {
    let sealed = sender.outbound.seal(message, wire).unwrap();
    assert_eq!(sealed.written, FrameEncryptor::sealed_len(message.len()));
    let opened = receiver.inbound.open(&wire[..sealed.written]).unwrap();
    assert_eq!(opened.plaintext, Some(message));
    message.len()
}

#[test]
fn pair_verify_and_1000_messages_allocate_nothing() {
    // Pair-setup uses SRP, which needs the heap; it runs before measuring.
    let mut accessory = Accessory::new(1);
    let identity = controller("E0A1B2C3-0000-4000-8000-000000000001", 7);
    let mut controller_rng = rng(2);
    let pairing = pair(&mut accessory, 1, &identity, CODE, &mut controller_rng).unwrap();

    let mut received = (0, 0);
    let allocations = allocations_during(|| {
        received = verify_and_talk(
            &accessory.state,
            &identity,
            &pairing,
            &mut accessory.rng,
            &mut controller_rng,
        );
    });
    let expected: usize = (0..1000).map(|m| 1 + m % MAX_FRAME_PLAINTEXT).sum();
    assert_eq!(received, (expected, expected));
    assert_eq!(
        allocations, 0,
        "pair-verify and framing must not touch the heap"
    );

    // The counter works: a Vec inside the measured region is seen.
    assert_eq!(
        allocations_during(|| drop(std::hint::black_box(vec![1u8; 16]))),
        1
    );
}
