//! The encrypted framing: arbitrary bytes to the decryptor, and valid frames of
//! arbitrary plaintext through it to the HTTP and JSON parsers.

use std::vec;
use std::vec::Vec;

use super::Input;
use crate::crypto::Key;
use crate::session::{FrameDecryptor, FrameEncryptor, FrameError, MAX_FRAME_PLAINTEXT};

const KEY: [u8; 32] = [0x42; 32];

/// The frame decoder with a fixed key on arbitrary bytes, offered in pieces whose sizes
/// the input chooses. It must consume every byte it is given, never yield plaintext
/// without a frame's worth of input, and, after a fatal error, repeat that error.
pub fn frame_decoder(data: &[u8]) {
    let mut input = Input::new(data);
    let piece = usize::from(input.byte()).max(1);
    let stream = input.rest();
    let mut decryptor = FrameDecryptor::new(Key::from_bytes(KEY));
    let mut offered = 0;
    let mut failure: Option<FrameError> = None;
    for chunk in stream.chunks(piece) {
        let mut rest = chunk;
        while !rest.is_empty() {
            match decryptor.open(rest) {
                Ok(opened) => {
                    assert!(opened.consumed <= rest.len());
                    if let Some(plaintext) = opened.plaintext {
                        assert!(plaintext.len() <= MAX_FRAME_PLAINTEXT);
                    } else {
                        assert_eq!(opened.consumed, rest.len(), "stopped short of a frame");
                    }
                    rest = &rest[opened.consumed..];
                    offered += opened.consumed;
                }
                Err(error) => {
                    assert!(error.is_fatal(), "a decryptor error that is not fatal");
                    failure = Some(error);
                    break;
                }
            }
        }
        if failure.is_some() {
            break;
        }
    }
    if let Some(error) = failure {
        assert_eq!(decryptor.open(b"more").unwrap_err(), error);
        assert!(!decryptor.has_partial_frame());
    } else {
        assert_eq!(offered, stream.len());
    }
}

/// Valid frames of arbitrary plaintext: sealed in frames of a size the input chooses,
/// offered to the decryptor in pieces of another, and opened back to the same bytes.
/// The plaintext then goes to the HTTP parser and, through it, to the JSON bodies.
pub fn session_plaintext(data: &[u8]) {
    let mut input = Input::new(data);
    let frame_len = usize::from(input.u16()) % MAX_FRAME_PLAINTEXT + 1;
    let piece = usize::from(input.byte()).max(1);
    let flip = usize::from(input.u16());
    let plaintext = input.rest();

    let mut encryptor = FrameEncryptor::new(Key::from_bytes(KEY));
    let mut wire = Vec::new();
    for frame in plaintext.chunks(frame_len) {
        let mut out = vec![0; FrameEncryptor::sealed_len(frame.len())];
        let sealed = encryptor.seal(frame, &mut out).expect("room for the frame");
        assert_eq!((sealed.consumed, sealed.written), (frame.len(), out.len()));
        wire.extend_from_slice(&out);
    }
    assert_eq!(wire.len(), expected_wire_len(plaintext.len(), frame_len));

    let mut decryptor = FrameDecryptor::new(Key::from_bytes(KEY));
    let mut opened_text = Vec::new();
    let mut frames = 0;
    for chunk in wire.chunks(piece) {
        let mut rest = chunk;
        while !rest.is_empty() {
            let opened = decryptor.open(rest).expect("a valid frame opens");
            if let Some(frame) = opened.plaintext {
                opened_text.extend_from_slice(frame);
                frames += 1;
            }
            rest = &rest[opened.consumed..];
        }
    }
    assert!(!decryptor.has_partial_frame());
    assert_eq!(opened_text, plaintext);
    assert_eq!(frames, plaintext.len().div_ceil(frame_len));

    // A frame replayed, or one with a flipped bit, is refused.
    if !wire.is_empty() {
        let first_len = frame_len.min(plaintext.len()) + crate::session::FRAME_OVERHEAD;
        assert!(
            decryptor.open(&wire[..first_len]).is_err(),
            "a replay opened"
        );
        let mut tampered = wire[..first_len].to_vec();
        let bit = flip % (tampered.len() * 8);
        tampered[bit / 8] ^= 1 << (bit % 8);
        let mut fresh = FrameDecryptor::new(Key::from_bytes(KEY));
        match fresh.open(&tampered) {
            // A changed length may leave the frame incomplete, or claim too much.
            Ok(opened) if bit < 16 => {
                assert!(opened.plaintext.is_none(), "a tampered frame opened");
                assert_eq!(opened.consumed, tampered.len());
            }
            Ok(_) => panic!("a frame with a flipped bit opened"),
            Err(_) => {}
        }
    }

    super::http_request(&[&[0u8][..], &opened_text].concat());
}

fn expected_wire_len(plaintext_len: usize, frame_len: usize) -> usize {
    plaintext_len + plaintext_len.div_ceil(frame_len) * crate::session::FRAME_OVERHEAD
}
