//! The encrypted session that follows pair-verify (or a transient pair-setup).
//!
//! Each frame is a 2-byte little-endian plaintext length, the ciphertext, and a 16-byte
//! Poly1305 tag. The length bytes are the AEAD's associated data. A frame carries at most
//! [`MAX_FRAME_PLAINTEXT`] bytes. Each direction has its own key and its own 64-bit
//! counter, which is the nonce and advances once per frame.
//!
//! [`FrameDecryptor::open`] accepts input split anywhere: it buffers at most one frame in a
//! fixed array and returns each frame's plaintext as soon as the frame is complete.
//!
//! A bad tag, a length over 1024 or an exhausted counter is fatal: the decryptor keeps
//! returning that error, and the connection must be closed. A replayed frame fails as a
//! bad tag, because the counter has moved on.

use crate::crypto::{hkdf_sha512, open_in_place, seal_in_place, Key, Nonce, SharedSecret, TAG_LEN};

/// The most plaintext a single frame carries.
pub const MAX_FRAME_PLAINTEXT: usize = 1024;
/// Bytes a frame adds to its plaintext: the length prefix and the tag.
pub const FRAME_OVERHEAD: usize = 2 + TAG_LEN;
/// The largest frame on the wire.
pub const MAX_FRAME_LEN: usize = MAX_FRAME_PLAINTEXT + FRAME_OVERHEAD;

/// A framing failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FrameError {
    /// A frame failed authentication: tampered, replayed, reordered, or under the wrong
    /// key. Fatal.
    BadTag,
    /// A frame announced more than 1024 bytes of plaintext. Fatal.
    LengthTooLarge {
        /// The announced length.
        length: u16,
    },
    /// The 64-bit frame counter ran out; the session can carry no more frames. Fatal.
    CounterExhausted,
    /// The output buffer cannot hold even one frame; `required` bytes are needed.
    BufferTooSmall {
        /// The size needed for the next frame.
        required: usize,
    },
}

impl FrameError {
    /// Whether the session is unusable after this error and the connection must close.
    pub fn is_fatal(&self) -> bool {
        !matches!(self, FrameError::BufferTooSmall { .. })
    }
}

impl core::fmt::Display for FrameError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FrameError::BadTag => f.write_str("frame failed authentication"),
            FrameError::LengthTooLarge { length } => {
                write!(f, "frame length {length} exceeds 1024")
            }
            FrameError::CounterExhausted => f.write_str("frame counter exhausted"),
            FrameError::BufferTooSmall { required } => {
                write!(f, "output buffer too small: {required} bytes needed")
            }
        }
    }
}

impl core::error::Error for FrameError {}

/// The two keys of a session, named by direction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionKeys {
    /// Encrypts what the accessory sends.
    pub accessory_to_controller: Key,
    /// Encrypts what the controller sends.
    pub controller_to_accessory: Key,
}

impl SessionKeys {
    /// The keys after pair-verify: HKDF-SHA-512 of the X25519 secret with `Control-Salt`.
    pub fn from_pair_verify(shared: &SharedSecret) -> Self {
        Self {
            accessory_to_controller: hkdf_sha512(
                shared.as_bytes(),
                b"Control-Salt",
                b"Control-Read-Encryption-Key",
            ),
            controller_to_accessory: hkdf_sha512(
                shared.as_bytes(),
                b"Control-Salt",
                b"Control-Write-Encryption-Key",
            ),
        }
    }

    /// The keys after a transient pair-setup: HKDF-SHA-512 of the SRP key K with
    /// `SplitSetupSalt`, as HomeKitADK derives them.
    pub fn from_transient_setup(srp_session_key: &[u8]) -> Self {
        Self {
            accessory_to_controller: hkdf_sha512(
                srp_session_key,
                b"SplitSetupSalt",
                b"AccessoryEncrypt-Control",
            ),
            controller_to_accessory: hkdf_sha512(
                srp_session_key,
                b"SplitSetupSalt",
                b"ControllerEncrypt-Control",
            ),
        }
    }
}

/// Which end of the session this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The accessory: sends with the accessory-to-controller key.
    Accessory,
    /// The controller: sends with the controller-to-accessory key.
    Controller,
}

/// An encrypted session: one encryptor and one decryptor.
#[derive(Debug)]
pub struct Session {
    /// Seals what this end sends.
    pub outbound: FrameEncryptor,
    /// Opens what this end receives.
    pub inbound: FrameDecryptor,
}

impl Session {
    /// The session for `role`, with both counters at zero.
    pub fn new(keys: SessionKeys, role: Role) -> Self {
        let SessionKeys {
            accessory_to_controller,
            controller_to_accessory,
        } = keys;
        let (send, receive) = match role {
            Role::Accessory => (accessory_to_controller, controller_to_accessory),
            Role::Controller => (controller_to_accessory, accessory_to_controller),
        };
        Self {
            outbound: FrameEncryptor::new(send),
            inbound: FrameDecryptor::new(receive),
        }
    }
}

/// How much [`FrameEncryptor::seal`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sealed {
    /// Plaintext bytes consumed.
    pub consumed: usize,
    /// Bytes written to the output.
    pub written: usize,
}

/// The sending half of a session.
#[derive(Debug)]
pub struct FrameEncryptor {
    key: Key,
    counter: u64,
}

impl FrameEncryptor {
    /// An encryptor with its counter at zero.
    pub fn new(key: Key) -> Self {
        Self { key, counter: 0 }
    }

    /// The wire size of `plaintext_len` bytes once framed.
    pub const fn sealed_len(plaintext_len: usize) -> usize {
        plaintext_len + plaintext_len.div_ceil(MAX_FRAME_PLAINTEXT) * FRAME_OVERHEAD
    }

    /// Seals as much of `plaintext` as fits in `out`, as frames of up to 1024 bytes.
    ///
    /// Fails only when nothing fits, or when the counter is exhausted before the first
    /// frame; once some frames are written it returns them and reports the problem on the
    /// next call.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<Sealed, FrameError> {
        let mut sealed = Sealed {
            consumed: 0,
            written: 0,
        };
        while sealed.consumed < plaintext.len() {
            let space = out.len() - sealed.written;
            let chunk = (plaintext.len() - sealed.consumed)
                .min(MAX_FRAME_PLAINTEXT)
                .min(space.saturating_sub(FRAME_OVERHEAD));
            let failure = if chunk == 0 {
                let wanted = (plaintext.len() - sealed.consumed).min(MAX_FRAME_PLAINTEXT);
                Some(FrameError::BufferTooSmall {
                    required: wanted + FRAME_OVERHEAD,
                })
            } else if self.counter == u64::MAX {
                Some(FrameError::CounterExhausted)
            } else {
                None
            };
            if let Some(error) = failure {
                return if sealed.written == 0 {
                    Err(error)
                } else {
                    Ok(sealed)
                };
            }
            let frame = &mut out[sealed.written..sealed.written + chunk + FRAME_OVERHEAD];
            let (header, rest) = frame.split_at_mut(2);
            let (body, tag) = rest.split_at_mut(chunk);
            // `chunk` is at most 1024, so it fits in two bytes.
            header.copy_from_slice(&(chunk as u16).to_le_bytes());
            body.copy_from_slice(&plaintext[sealed.consumed..sealed.consumed + chunk]);
            tag.copy_from_slice(&seal_in_place(
                &self.key,
                Nonce::Counter(self.counter),
                header,
                body,
            ));
            self.counter += 1;
            sealed.consumed += chunk;
            sealed.written += chunk + FRAME_OVERHEAD;
        }
        Ok(sealed)
    }

    #[cfg(test)]
    pub(crate) fn set_counter(&mut self, counter: u64) {
        self.counter = counter;
    }
}

/// What one call to [`FrameDecryptor::open`] did.
#[derive(Debug, PartialEq, Eq)]
pub struct Opened<'s> {
    /// Input bytes consumed.
    pub consumed: usize,
    /// The plaintext of the frame this call completed, if it completed one.
    pub plaintext: Option<&'s [u8]>,
}

/// The receiving half of a session.
pub struct FrameDecryptor {
    key: Key,
    counter: u64,
    frame: [u8; MAX_FRAME_LEN],
    filled: usize,
    failed: Option<FrameError>,
}

impl core::fmt::Debug for FrameDecryptor {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FrameDecryptor")
            .field("counter", &self.counter)
            .field("buffered", &self.filled)
            .field("failed", &self.failed)
            .finish()
    }
}

impl FrameDecryptor {
    /// A decryptor with its counter at zero.
    pub fn new(key: Key) -> Self {
        Self {
            key,
            counter: 0,
            frame: [0; MAX_FRAME_LEN],
            filled: 0,
            failed: None,
        }
    }

    /// Whether part of a frame has been consumed and the rest is awaited.
    pub fn is_mid_frame(&self) -> bool {
        self.filled > 0
    }

    /// Consumes input until one frame is complete, and returns that frame's plaintext.
    ///
    /// Call it again with the rest of the input until all is consumed. Input can be split
    /// at any point. After a fatal error every call returns the same error.
    pub fn open(&mut self, input: &[u8]) -> Result<Opened<'_>, FrameError> {
        if let Some(error) = self.failed {
            return Err(error);
        }
        let mut consumed = self.fill_to(2, input);
        if self.filled < 2 {
            return Ok(Opened {
                consumed,
                plaintext: None,
            });
        }
        let length = u16::from_le_bytes([self.frame[0], self.frame[1]]);
        if usize::from(length) > MAX_FRAME_PLAINTEXT {
            return Err(self.fail(FrameError::LengthTooLarge { length }));
        }
        let total = usize::from(length) + FRAME_OVERHEAD;
        consumed += self.fill_to(total, &input[consumed..]);
        if self.filled < total {
            return Ok(Opened {
                consumed,
                plaintext: None,
            });
        }
        if self.counter == u64::MAX {
            return Err(self.fail(FrameError::CounterExhausted));
        }
        let (header, rest) = self.frame.split_at_mut(2);
        let (body, tail) = rest.split_at_mut(usize::from(length));
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&tail[..TAG_LEN]);
        if open_in_place(&self.key, Nonce::Counter(self.counter), header, body, &tag).is_err() {
            return Err(self.fail(FrameError::BadTag));
        }
        self.counter += 1;
        self.filled = 0;
        Ok(Opened {
            consumed,
            plaintext: Some(&self.frame[2..2 + usize::from(length)]),
        })
    }

    /// Whether part of a frame is buffered, waiting for more input.
    pub fn has_partial_frame(&self) -> bool {
        self.filled > 0
    }

    fn fill_to(&mut self, target: usize, input: &[u8]) -> usize {
        let take = target.saturating_sub(self.filled).min(input.len());
        self.frame[self.filled..self.filled + take].copy_from_slice(&input[..take]);
        self.filled += take;
        take
    }

    fn fail(&mut self, error: FrameError) -> FrameError {
        self.failed = Some(error);
        self.filled = 0;
        error
    }

    #[cfg(test)]
    pub(crate) fn set_counter(&mut self, counter: u64) {
        self.counter = counter;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    fn pair() -> (Session, Session) {
        let keys = SessionKeys {
            accessory_to_controller: Key::from_bytes([1; 32]),
            controller_to_accessory: Key::from_bytes([2; 32]),
        };
        (
            Session::new(keys.clone(), Role::Accessory),
            Session::new(keys, Role::Controller),
        )
    }

    fn seal_all(encryptor: &mut FrameEncryptor, plaintext: &[u8]) -> Vec<u8> {
        let mut out = std::vec![0; FrameEncryptor::sealed_len(plaintext.len())];
        let sealed = encryptor.seal(plaintext, &mut out).unwrap();
        assert_eq!(
            sealed,
            Sealed {
                consumed: plaintext.len(),
                written: out.len()
            }
        );
        out
    }

    fn open_all(decryptor: &mut FrameDecryptor, mut wire: &[u8]) -> Result<Vec<u8>, FrameError> {
        let mut plaintext = Vec::new();
        while !wire.is_empty() {
            let opened = decryptor.open(wire)?;
            plaintext.extend_from_slice(opened.plaintext.unwrap_or_default());
            wire = &wire[opened.consumed..];
        }
        Ok(plaintext)
    }

    #[test]
    fn frames_are_split_at_1024_bytes() {
        let (mut accessory, mut controller) = pair();
        let data: Vec<u8> = (0..2500u32).map(|i| i as u8).collect();
        let wire = seal_all(&mut accessory.outbound, &data);
        assert_eq!(wire.len(), 2500 + 3 * FRAME_OVERHEAD);
        assert_eq!(&wire[..2], &1024u16.to_le_bytes());
        assert_eq!(open_all(&mut controller.inbound, &wire).unwrap(), data);
    }

    #[test]
    fn one_byte_at_a_time() {
        let (mut accessory, mut controller) = pair();
        let wire = seal_all(
            &mut controller.outbound,
            b"GET /accessories HTTP/1.1\r\n\r\n",
        );
        let mut plaintext = Vec::new();
        for byte in &wire {
            let opened = accessory.inbound.open(core::slice::from_ref(byte)).unwrap();
            assert_eq!(opened.consumed, 1);
            plaintext.extend_from_slice(opened.plaintext.unwrap_or_default());
        }
        assert_eq!(plaintext, b"GET /accessories HTTP/1.1\r\n\r\n");
        assert!(!accessory.inbound.has_partial_frame());
    }

    #[test]
    fn tampered_tag_is_fatal() {
        let (mut accessory, mut controller) = pair();
        let mut wire = seal_all(&mut controller.outbound, b"hello");
        let last = wire.len() - 1;
        wire[last] ^= 0x80;
        assert_eq!(
            open_all(&mut accessory.inbound, &wire),
            Err(FrameError::BadTag)
        );
        let good = seal_all(&mut controller.outbound, b"again");
        assert_eq!(accessory.inbound.open(&good), Err(FrameError::BadTag));
    }

    #[test]
    fn tampered_length_or_body_fails() {
        let (_, mut controller) = pair();
        let wire = seal_all(&mut controller.outbound, b"hello");
        for index in [0, 2, 4] {
            let (mut accessory, _) = pair();
            let mut copy = wire.clone();
            copy[index] ^= 1;
            let result = open_all(&mut accessory.inbound, &copy);
            assert!(result.is_err(), "flipping byte {index} went unnoticed");
        }
    }

    #[test]
    fn oversize_length_is_fatal_before_reading_the_body() {
        let (mut accessory, _) = pair();
        let opened = accessory.inbound.open(&1025u16.to_le_bytes());
        assert_eq!(opened, Err(FrameError::LengthTooLarge { length: 1025 }));
        assert_eq!(
            accessory.inbound.open(&[0; 4]),
            Err(FrameError::LengthTooLarge { length: 1025 })
        );
    }

    #[test]
    fn replayed_frame_is_rejected() {
        let (mut accessory, mut controller) = pair();
        let wire = seal_all(&mut controller.outbound, b"turn on");
        assert_eq!(open_all(&mut accessory.inbound, &wire).unwrap(), b"turn on");
        assert_eq!(
            open_all(&mut accessory.inbound, &wire),
            Err(FrameError::BadTag)
        );
    }

    #[test]
    fn counter_exhaustion_is_fatal_in_both_directions() {
        let (mut accessory, mut controller) = pair();
        controller.outbound.set_counter(u64::MAX - 1);
        accessory.inbound.set_counter(u64::MAX - 1);
        let wire = seal_all(&mut controller.outbound, b"last");
        assert_eq!(open_all(&mut accessory.inbound, &wire).unwrap(), b"last");
        let mut out = [0u8; 64];
        assert_eq!(
            controller.outbound.seal(b"one more", &mut out),
            Err(FrameError::CounterExhausted)
        );
        // A frame sealed with the last counter value by a peer that ignores the limit.
        let mut rogue = FrameEncryptor::new(Key::from_bytes([2; 32]));
        rogue.set_counter(u64::MAX - 1);
        let frame = seal_all(&mut rogue, b"x");
        assert_eq!(
            open_all(&mut accessory.inbound, &frame),
            Err(FrameError::CounterExhausted)
        );
        assert!(FrameError::CounterExhausted.is_fatal());
    }

    #[test]
    fn small_output_buffers_are_filled_partially_or_refused() {
        let (mut accessory, mut controller) = pair();
        let mut tiny = [0u8; FRAME_OVERHEAD];
        assert_eq!(
            accessory.outbound.seal(b"abc", &mut tiny),
            Err(FrameError::BufferTooSmall {
                required: 3 + FRAME_OVERHEAD
            })
        );
        assert!(!FrameError::BufferTooSmall { required: 1 }.is_fatal());
        let mut small = [0u8; FRAME_OVERHEAD + 2];
        let sealed = accessory.outbound.seal(b"abc", &mut small).unwrap();
        assert_eq!(
            sealed,
            Sealed {
                consumed: 2,
                written: FRAME_OVERHEAD + 2
            }
        );
        let mut rest = [0u8; 64];
        let second = accessory.outbound.seal(b"c", &mut rest).unwrap();
        let mut wire = small.to_vec();
        wire.extend_from_slice(&rest[..second.written]);
        assert_eq!(open_all(&mut controller.inbound, &wire).unwrap(), b"abc");
    }

    #[test]
    fn empty_frames_are_accepted() {
        let (mut accessory, _) = pair();
        // `seal` never emits empty frames, so build one by hand.
        let mut frame = [0u8; FRAME_OVERHEAD];
        let tag = seal_in_place(
            &Key::from_bytes([2; 32]),
            Nonce::Counter(0),
            &[0, 0],
            &mut [],
        );
        frame[2..].copy_from_slice(&tag);
        let opened = accessory.inbound.open(&frame).unwrap();
        assert_eq!(
            opened,
            Opened {
                consumed: FRAME_OVERHEAD,
                plaintext: Some(&[][..])
            }
        );
    }
}
