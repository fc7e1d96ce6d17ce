use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::*;
use crate::pairing::PairingId;

/// Drives a real controller to the point where it has sent M3 and the accessory waits
/// for M5, and returns the accessory's session key K.
fn accessory_awaiting_m5(
    setup: &mut PairSetup,
    state: &mut AccessoryState,
    rng: &mut ChaCha20Rng,
) -> [u8; HASH_LEN] {
    let identity = crate::pairing::ControllerIdentity {
        id: PairingId::new(b"owner").unwrap(),
        keys: Ed25519KeyPair::from_seed(&[1; 32]),
    };
    let mut out = [0u8; MAX_SETUP_MESSAGE_LEN];
    let mut reply = [0u8; MAX_SETUP_MESSAGE_LEN];
    let (mut client, len) =
        PairSetupClient::start("518-08-582".parse().unwrap(), 0, &mut out).unwrap();
    let mut request_len = len;
    for _ in 0..2 {
        let SetupOutput::Reply(reply_len) = setup
            .handle(
                Instant::from_millis(0),
                ConnectionId(1),
                &out[..request_len],
                state,
                rng,
                &mut reply,
            )
            .unwrap()
        else {
            panic!("expected a reply");
        };
        if let Stage::AwaitingM5 { session_key } = &setup.stage {
            return **session_key;
        }
        match client
            .handle_response(&reply[..reply_len], &identity, rng, &mut out)
            .unwrap()
        {
            SetupClientOutput::Send(len) => request_len = len,
            other => panic!("unexpected {other:?}"),
        }
    }
    unreachable!("M4 moves the accessory to AwaitingM5")
}

/// Sends M5 carrying `proof`, encrypted under `session_key`, on connection 1.
fn send_m5(
    setup: &mut PairSetup,
    state: &mut AccessoryState,
    rng: &mut ChaCha20Rng,
    proof: &ExchangeProof,
    session_key: &[u8],
    out: &mut [u8],
) -> Result<SetupOutput, PairingError> {
    let mut m5 = [0u8; MAX_SETUP_MESSAGE_LEN];
    let mut writer = TlvWriter::new(&mut m5);
    writer.u8(tlv_type::STATE, 5).unwrap();
    proof.write(&mut writer, session_key, b"PS-Msg05").unwrap();
    let len = writer.len();
    setup.handle(
        Instant::from_millis(0),
        ConnectionId(1),
        &m5[..len],
        state,
        rng,
        out,
    )
}

#[test]
fn m5_signed_by_another_key_gets_authentication_at_m6() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let mut state = AccessoryState::generate(&"518-08-582".parse().unwrap(), &mut rng);
    let mut setup = PairSetup::new(true);
    let session_key = accessory_awaiting_m5(&mut setup, &mut state, &mut rng);

    // A correctly encrypted M5 whose signature is made by a key other than the one sent.
    let signer = Ed25519KeyPair::from_seed(&[2; 32]);
    let claimed = Ed25519KeyPair::from_seed(&[3; 32]);
    let mut proof =
        ExchangeProof::sign(&signer, b"owner", &controller_sign_key(&session_key)).unwrap();
    proof.public_key = claimed.public_key();
    let mut out = [0u8; MAX_SETUP_MESSAGE_LEN];
    let output = send_m5(
        &mut setup,
        &mut state,
        &mut rng,
        &proof,
        &session_key,
        &mut out,
    );
    let Ok(SetupOutput::Reply(len)) = output else {
        panic!("expected an error reply, got {output:?}")
    };
    let reply = Tlv::parse(&out[..len]).unwrap();
    assert_eq!(
        (reply.get_u8(tlv_type::STATE), reply.get_u8(tlv_type::ERROR)),
        (Some(6), Some(2))
    );
    assert!(!state.is_paired());
    assert!(!setup.is_busy());
}

#[test]
fn m5_with_the_matching_signature_pairs() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let mut state = AccessoryState::generate(&"518-08-582".parse().unwrap(), &mut rng);
    let mut setup = PairSetup::new(true);
    let session_key = accessory_awaiting_m5(&mut setup, &mut state, &mut rng);
    let signer = Ed25519KeyPair::from_seed(&[2; 32]);
    let proof = ExchangeProof::sign(&signer, b"owner", &controller_sign_key(&session_key)).unwrap();
    let mut out = [0u8; MAX_SETUP_MESSAGE_LEN];
    let output = send_m5(
        &mut setup,
        &mut state,
        &mut rng,
        &proof,
        &session_key,
        &mut out,
    );
    assert_eq!(output, Ok(SetupOutput::Persist(StateChange::PairingAdded)));
    assert_eq!(
        state.pairings.get(b"owner").map(|p| p.public_key),
        Some(signer.public_key())
    );
}
