//! The cryptographic building blocks HAP uses, as thin wrappers over RustCrypto and dalek.
//!
//! - HKDF-SHA-512 producing 32-byte keys.
//! - ChaCha20-Poly1305 with HAP's 12-byte nonces: four zero bytes, then either an 8-byte
//!   label such as `PS-Msg05` or a 64-bit little-endian counter.
//! - Ed25519 signatures and X25519 key agreement.
//! - Constant-time comparison for proofs.
//!
//! Key material is zeroized when dropped.

use chacha20poly1305::aead::AeadInPlace;
use chacha20poly1305::{ChaCha20Poly1305, KeyInit};
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hkdf::Hkdf;
use sha2::Sha512;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Length of a ChaCha20-Poly1305 or X25519 key.
pub const KEY_LEN: usize = 32;
/// Length of a Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// Length of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// The AEAD tag did not authenticate the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadTag;

impl core::fmt::Display for BadTag {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("authentication tag mismatch")
    }
}

impl core::error::Error for BadTag {}

/// A 32-byte symmetric key, zeroized on drop and compared in constant time.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Key([u8; KEY_LEN]);

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl Eq for Key {}

impl Key {
    /// Wraps raw key bytes.
    pub const fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl core::fmt::Debug for Key {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Key(..)")
    }
}

/// HKDF-SHA-512 of `ikm` with `salt` and `info`, expanded to a 32-byte key.
pub fn hkdf_sha512(ikm: &[u8], salt: &[u8], info: &[u8]) -> Key {
    let mut okm = [0u8; KEY_LEN];
    // 32 bytes is far below HKDF-SHA-512's limit of 255 * 64, so expansion cannot fail.
    let expanded = Hkdf::<Sha512>::new(Some(salt), ikm).expand(info, &mut okm);
    debug_assert!(expanded.is_ok());
    let key = Key(okm);
    okm.zeroize();
    key
}

/// A HAP nonce: four zero bytes, then a label or a counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nonce {
    /// An 8-byte ASCII label such as `PS-Msg05`, used in pairing messages.
    Label(&'static [u8; 8]),
    /// A 64-bit counter in little-endian order, used by session frames.
    Counter(u64),
}

impl Nonce {
    /// The 12 bytes that go to ChaCha20-Poly1305.
    pub fn to_bytes(self) -> [u8; 12] {
        let mut nonce = [0u8; 12];
        match self {
            Nonce::Label(label) => nonce[4..].copy_from_slice(label),
            Nonce::Counter(counter) => nonce[4..].copy_from_slice(&counter.to_le_bytes()),
        }
        nonce
    }
}

/// Encrypts `buf` in place and returns the tag that authenticates it and `aad`.
pub fn seal_in_place(key: &Key, nonce: Nonce, aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
    let cipher = ChaCha20Poly1305::new(&key.0.into());
    // Encryption only fails for inputs longer than 256 GiB, which no caller can pass.
    let tag = cipher
        .encrypt_in_place_detached(&nonce.to_bytes().into(), aad, buf)
        .unwrap_or_default();
    tag.into()
}

/// Checks `tag` against `buf` and `aad`, then decrypts `buf` in place.
///
/// On failure `buf` is left as it was.
pub fn open_in_place(
    key: &Key,
    nonce: Nonce,
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), BadTag> {
    let cipher = ChaCha20Poly1305::new(&key.0.into());
    cipher
        .decrypt_in_place_detached(&nonce.to_bytes().into(), aad, buf, tag.into())
        .map_err(|_| BadTag)
}

/// Compares two proofs in constant time. Different lengths compare unequal.
pub fn proofs_equal(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// An Ed25519 long-term key pair: an accessory's or a controller's identity.
#[derive(Clone)]
pub struct Ed25519KeyPair(SigningKey);

impl Ed25519KeyPair {
    /// The key pair for a 32-byte secret seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(seed))
    }

    /// A fresh key pair from `rng`.
    pub fn generate<R: rand_core::RngCore + rand_core::CryptoRng>(rng: &mut R) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let pair = Self::from_seed(&seed);
        seed.zeroize();
        pair
    }

    /// The secret seed, for persisting.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key.
    pub fn public_key(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    /// Signs the concatenation of `parts` (signing needs one contiguous message, so the
    /// parts are gathered in a stack buffer of `N` bytes).
    pub fn sign_parts<const N: usize>(&self, parts: &[&[u8]]) -> Option<[u8; SIGNATURE_LEN]> {
        let mut message = heapless::Vec::<u8, N>::new();
        for part in parts {
            message.extend_from_slice(part).ok()?;
        }
        Some(self.0.sign(&message).to_bytes())
    }
}

impl core::fmt::Debug for Ed25519KeyPair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_tuple("Ed25519KeyPair")
            .field(&self.public_key())
            .finish()
    }
}

/// Verifies an Ed25519 signature over the concatenation of `parts`, using a stack
/// buffer of `N` bytes. Malformed keys, malformed signatures and oversize messages all
/// fail verification.
pub fn ed25519_verify_parts<const N: usize>(
    public_key: &[u8; 32],
    parts: &[&[u8]],
    signature: &[u8; SIGNATURE_LEN],
) -> bool {
    let mut message = heapless::Vec::<u8, N>::new();
    for part in parts {
        if message.extend_from_slice(part).is_err() {
            return false;
        }
    }
    let Ok(key) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let signature = ed25519_dalek::Signature::from_bytes(signature);
    key.verify_strict(&message, &signature).is_ok()
}

/// An X25519 secret for one key exchange, zeroized on drop.
pub struct X25519Secret(x25519_dalek::StaticSecret);

impl X25519Secret {
    /// The secret for 32 given bytes (for replaying recorded exchanges).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(x25519_dalek::StaticSecret::from(bytes))
    }

    /// A fresh secret from `rng`.
    pub fn generate<R: rand_core::RngCore + rand_core::CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        let secret = Self::from_bytes(bytes);
        bytes.zeroize();
        secret
    }

    /// The matching public key.
    pub fn public_key(&self) -> [u8; 32] {
        x25519_dalek::PublicKey::from(&self.0).to_bytes()
    }

    /// The shared secret with `peer`, or `None` when the peer's key is of low order and
    /// would make the secret predictable.
    pub fn agree(&self, peer: &[u8; 32]) -> Option<SharedSecret> {
        let shared = self.0.diffie_hellman(&x25519_dalek::PublicKey::from(*peer));
        shared
            .was_contributory()
            .then(|| SharedSecret(shared.to_bytes()))
    }
}

impl core::fmt::Debug for X25519Secret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("X25519Secret(..)")
    }
}

/// The X25519 shared secret of a key exchange, zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SharedSecret([u8; 32]);

impl SharedSecret {
    /// The raw secret.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl core::fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SharedSecret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hkdf_matches_independent_computation() {
        // Expected values from Python's hmac and hashlib, following RFC 5869 by hand.
        let read = hkdf_sha512(&[0x0b; 32], b"Control-Salt", b"Control-Read-Encryption-Key");
        let write = hkdf_sha512(
            &[0x0b; 32],
            b"Control-Salt",
            b"Control-Write-Encryption-Key",
        );
        assert_eq!(
            read.as_bytes(),
            &hex32("2a4a1bc0c7edbb68908b007996cd1be11eed5be4d2803804084deefb1cb47d4a")
        );
        assert_eq!(
            write.as_bytes(),
            &hex32("474364ca43a87af61fcde953fb38b4b0942c6148d0527ef316d6f30595795cb0")
        );
    }

    fn hex32(s: &str) -> [u8; 32] {
        hex::decode(s).unwrap().try_into().unwrap()
    }

    #[test]
    fn nonces_have_hap_layout() {
        assert_eq!(&Nonce::Label(b"PS-Msg05").to_bytes(), b"\0\0\0\0PS-Msg05");
        assert_eq!(
            Nonce::Counter(0x0102).to_bytes(),
            [0, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn seal_then_open_and_tamper() {
        let key = Key::from_bytes([7; 32]);
        let mut buf = *b"hello accessory";
        let tag = seal_in_place(&key, Nonce::Counter(3), b"aad", &mut buf);
        let sealed = buf;
        let mut wrong_nonce = sealed;
        assert_eq!(
            open_in_place(&key, Nonce::Counter(4), b"aad", &mut wrong_nonce, &tag),
            Err(BadTag)
        );
        assert_eq!(wrong_nonce, sealed);
        let mut bad_tag = tag;
        bad_tag[0] ^= 1;
        assert_eq!(
            open_in_place(&key, Nonce::Counter(3), b"aad", &mut buf, &bad_tag),
            Err(BadTag)
        );
        open_in_place(&key, Nonce::Counter(3), b"aad", &mut buf, &tag).unwrap();
        assert_eq!(&buf, b"hello accessory");
    }

    #[test]
    fn signatures_verify_and_reject() {
        let pair = Ed25519KeyPair::from_seed(&[9; 32]);
        let sig = pair.sign_parts::<64>(&[b"abc", b"def"]).unwrap();
        assert!(ed25519_verify_parts::<64>(
            &pair.public_key(),
            &[b"abcdef"],
            &sig
        ));
        assert!(!ed25519_verify_parts::<64>(
            &pair.public_key(),
            &[b"abcdeg"],
            &sig
        ));
        assert!(!ed25519_verify_parts::<4>(
            &pair.public_key(),
            &[b"abcdef"],
            &sig
        ));
        assert!(pair.sign_parts::<4>(&[b"abcdef"]).is_none());
    }

    #[test]
    fn x25519_agrees_and_rejects_low_order_points() {
        let a = X25519Secret::from_bytes([1; 32]);
        let b = X25519Secret::from_bytes([2; 32]);
        assert_eq!(
            a.agree(&b.public_key()).unwrap().as_bytes(),
            b.agree(&a.public_key()).unwrap().as_bytes()
        );
        assert!(a.agree(&[0; 32]).is_none());
    }

    #[test]
    fn proof_comparison() {
        assert!(proofs_equal(b"same", b"same"));
        assert!(!proofs_equal(b"same", b"sane"));
        assert!(!proofs_equal(b"same", b"same!"));
    }
}
