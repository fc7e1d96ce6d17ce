//! SRP-6a over RFC 5054's 3072-bit group with SHA-512, as HAP's pair-setup uses it.
//!
//! The padding rules follow HomeKitADK, which is what iOS expects:
//! - k = H(N ‖ PAD(g)), u = H(PAD(A) ‖ PAD(B)), x = H(salt ‖ H(I ‖ ":" ‖ P));
//! - K = H(S) with S's leading zero bytes stripped;
//! - M1 = H((H(N) xor H(g)) ‖ H(I) ‖ salt ‖ A ‖ B ‖ K) with A and B stripped and g as the
//!   single byte 0x05;
//! - M2 = H(PAD(A) ‖ M1 ‖ K).
//!
//! PAD means left-padded to 384 bytes. Clients differ in the forms they hash, and each
//! difference fails about one pairing in 256, when a value has a leading zero byte:
//! - aiohomekit computes u and M1 over B exactly as received. HomeKitADK and HAP-python
//!   send B stripped, so aiohomekit's u is wrong whenever B is short. This server sends B
//!   padded, as HAP-NodeJS does, which gives every client PAD(B) in u.
//! - aiohomekit pads A in M1 and S in K, and hashes the padded B it received.
//!
//! So the server accepts M1 over A and B each stripped or padded, with K from S stripped or
//! padded. Every accepted form still requires the setup code, and all forms are always
//! computed and compared in constant time.
//!
//! Public keys that are 0 modulo N are rejected on both sides: a server that accepts
//! A = 0, N or 2N lets a client in without the code.

use num_bigint_dig::BigUint;
use sha2::{Digest, Sha512};

use montgomery::{Element, Field, FixedBase};

mod montgomery;
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::proofs_equal;

/// Bytes in N, and in every padded group element.
pub const GROUP_LEN: usize = 384;
/// Bytes in a SHA-512 hash, and in every proof and session key.
pub const HASH_LEN: usize = 64;
/// Bytes of salt HAP uses.
pub const SALT_LEN: usize = 16;
/// Bytes of the secret exponents a and b.
pub const SECRET_LEN: usize = 32;

/// N, the 3072-bit prime of RFC 5054, appendix A, big-endian.
pub const GROUP_PRIME: [u8; GROUP_LEN] = hex_array(
    b"FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD\
      EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED\
      EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F\
      83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B\
      E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510\
      15728E5A8AAAC42DAD33170D04507A33A85521ABDF1CBA64ECFB850458DBEF0A8AEA71575D060C7DB3970F85A6E1E4C7\
      ABF5AE8CDB0933D71E8C94E04A25619DCEE3D2261AD2EE6BF12FFA06D98A0864D87602733EC86A64521F2B18177B200C\
      BBE117577A615D6C770988C0BAD946E208E24FA074E5AB3143DB5BFCE0FD108E4B82D120A93AD2CAFFFFFFFFFFFFFFFF",
);
/// The generator.
const G: u8 = 5;

/// Decodes hex at compile time, skipping whitespace and line continuations.
const fn hex_array<const LEN: usize>(hex: &[u8]) -> [u8; LEN] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'F' => c - b'A' + 10,
            _ => panic!("not upper-case hex"),
        }
    }
    let mut out = [0u8; LEN];
    let (mut i, mut n) = (0, 0);
    while i < hex.len() {
        if hex[i].is_ascii_whitespace() {
            i += 1;
            continue;
        }
        out[n / 2] |= nibble(hex[i]) << if n % 2 == 0 { 4 } else { 0 };
        n += 1;
        i += 1;
    }
    assert!(n == LEN * 2, "wrong length");
    out
}

/// Why an SRP exchange failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SrpError {
    /// The peer's public key is 0 modulo N, longer than N, or makes u zero.
    IllegalPublicKey,
    /// The peer's proof does not match: the wrong setup code, or a tampered exchange.
    BadProof,
}

impl core::fmt::Display for SrpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SrpError::IllegalPublicKey => f.write_str("illegal SRP public key"),
            SrpError::BadProof => f.write_str("SRP proof mismatch"),
        }
    }
}

impl core::error::Error for SrpError {}

fn hash(parts: &[&[u8]]) -> [u8; HASH_LEN] {
    let mut hasher = Sha512::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn n() -> BigUint {
    BigUint::from_bytes_be(&GROUP_PRIME)
}

/// `base^exponent mod N` for a secret big-endian `exponent`.
fn power(field: &Field, base: &Element, exponent: &[u8]) -> Element {
    #[cfg(fuzzing)]
    return fuzzing_memo::power(field, base, exponent);
    #[cfg(not(fuzzing))]
    field.pow(base, exponent)
}

/// `base^exponent mod N`, for the client and the verifier, which work in `BigUint`.
fn modpow(base: &BigUint, exponent: &BigUint) -> BigUint {
    let field = Field::new();
    let exponent = Zeroizing::new(exponent.to_bytes_be());
    let mut base = field.element(base);
    let mut result = power(&field, &base, &exponent);
    let bytes = Zeroizing::new(field.to_bytes(&result));
    base.zeroize();
    result.zeroize();
    BigUint::from_bytes_be(&*bytes)
}

/// Builds made by cargo-fuzz (`--cfg fuzzing`) remember recent exponentiations. The fuzz
/// harness seeds its randomness, so every run uses the same secret exponents, and one
/// 3072-bit exponentiation (about 1 ms) would otherwise cost more than the rest of a run.
/// The results are the same; only the time differs. The cache holds secret exponents, so
/// it is never compiled into a normal build, not even one with the `fuzzing` feature.
#[cfg(fuzzing)]
mod fuzzing_memo {
    use std::sync::Mutex;
    use std::vec::Vec;

    use super::montgomery::{Element, Field};

    type Entry = (Element, Vec<u8>, Element);

    static MEMO: Mutex<Vec<Entry>> = Mutex::new(Vec::new());
    const CAPACITY: usize = 64;

    pub(super) fn power(field: &Field, base: &Element, exponent: &[u8]) -> Element {
        let mut memo = MEMO.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let found = memo
            .iter()
            .position(|(b, e, _)| b == base && e.as_slice() == exponent);
        if let Some(index) = found {
            // Least recently used goes first, so the exponents every run repeats stay
            // while the one-off ones of fuzzed inputs come and go.
            let entry = memo.remove(index);
            let result = entry.2;
            memo.push(entry);
            return result;
        }
        drop(memo);
        let result = field.pow(base, exponent);
        let mut memo = MEMO.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if memo.len() == CAPACITY {
            memo.remove(0);
        }
        memo.push((*base, exponent.to_vec(), result));
        result
    }
}

fn pad(value: &BigUint) -> [u8; GROUP_LEN] {
    let bytes = Zeroizing::new(value.to_bytes_be());
    let mut out = [0u8; GROUP_LEN];
    // Values are reduced mod N, so they always fit.
    out[GROUP_LEN - bytes.len()..].copy_from_slice(&bytes);
    out
}

fn strip(bytes: &[u8]) -> &[u8] {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    &bytes[zeros..]
}

/// k = H(N ‖ PAD(g)).
fn multiplier() -> BigUint {
    let mut g = [0u8; GROUP_LEN];
    g[GROUP_LEN - 1] = G;
    BigUint::from_bytes_be(&hash(&[&GROUP_PRIME, &g]))
}

/// H(N) xor H(g), the first part of M1.
fn group_hash() -> [u8; HASH_LEN] {
    let mut h = hash(&[&GROUP_PRIME]);
    for (a, b) in h.iter_mut().zip(hash(&[&[G]])) {
        *a ^= b;
    }
    h
}

/// Parses a peer's public key, rejecting keys that are longer than N or 0 modulo N.
fn public_key(bytes: &[u8], n: &BigUint) -> Result<BigUint, SrpError> {
    if bytes.len() > GROUP_LEN {
        return Err(SrpError::IllegalPublicKey);
    }
    let key = BigUint::from_bytes_be(bytes);
    if (&key % n) == BigUint::default() {
        return Err(SrpError::IllegalPublicKey);
    }
    Ok(key)
}

/// u = H(PAD(A) ‖ PAD(B)), big-endian, which must not be zero.
fn scrambler(a_pad: &[u8; GROUP_LEN], b_pad: &[u8; GROUP_LEN]) -> Result<[u8; HASH_LEN], SrpError> {
    let u = hash(&[a_pad, b_pad]);
    if u.iter().all(|byte| *byte == 0) {
        return Err(SrpError::IllegalPublicKey);
    }
    Ok(u)
}

fn client_proof(
    user_hash: &[u8; HASH_LEN],
    salt: &[u8],
    a: &[u8],
    b: &[u8],
    key: &[u8; HASH_LEN],
) -> [u8; HASH_LEN] {
    hash(&[&group_hash(), user_hash, salt, a, b, key])
}

/// The password verifier v = g^x mod N, padded to 384 bytes.
///
/// HAP uses the user name `Pair-Setup` and the setup code with its dashes as password.
/// The accessory can compute this once, when it is provisioned, and keep only the salt and
/// the verifier.
pub fn verifier(username: &[u8], password: &[u8], salt: &[u8]) -> [u8; GROUP_LEN] {
    let x = private_key(username, password, salt);
    pad(&modpow(&BigUint::from(G), &x))
}

/// x = H(salt ‖ H(I ‖ ":" ‖ P)).
fn private_key(username: &[u8], password: &[u8], salt: &[u8]) -> Zeroizing<BigUint> {
    let mut inner = hash(&[username, b":", password]);
    let x = Zeroizing::new(BigUint::from_bytes_be(&hash(&[salt, &inner])));
    inner.zeroize();
    x
}

/// What a successful exchange yields: the proof for the peer and the shared session key.
#[derive(Clone, Zeroize)]
#[zeroize(drop)]
pub struct SrpProof {
    /// M2 on the server, M1 on the client.
    pub proof: [u8; HASH_LEN],
    /// The session key K.
    pub session_key: [u8; HASH_LEN],
}

impl core::fmt::Debug for SrpProof {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SrpProof(..)")
    }
}

/// Precomputed powers of g and of one stored verifier v, which the accessory's side of
/// SRP then raises by table lookups instead of squarings: about 2.5 ms less per pair-setup
/// on the benchmark machine.
///
/// They take about 1.6 MB (g: 64 rows of 16 elements of 384 bytes; v: 103 rows of 32)
/// and about 20 ms to build, so an accessory builds them on its first pair-setup, not
/// before: one that is paired already never needs them. The table of v is as secret as
/// v and is zeroized on drop.
pub struct SrpTables {
    field: Field,
    /// For secret 256-bit exponents (b), in 4-bit windows.
    generator: FixedBase,
    verifier: Zeroizing<[u8; GROUP_LEN]>,
    /// For the public 512-bit scrambler u, in 5-bit windows.
    verifier_powers: FixedBase,
}

impl core::fmt::Debug for SrpTables {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SrpTables(..)")
    }
}

impl SrpTables {
    /// The tables for the stored `verifier`.
    pub fn new(verifier: &[u8; GROUP_LEN]) -> Self {
        let field = Field::new();
        let g = field.element(&BigUint::from(G));
        let mut v = field.element(&BigUint::from_bytes_be(verifier));
        let tables = Self {
            generator: FixedBase::new(&field, &g, SECRET_LEN * 8, 4),
            verifier_powers: FixedBase::new(&field, &v, HASH_LEN * 8, 5),
            verifier: Zeroizing::new(*verifier),
            field,
        };
        v.zeroize();
        tables
    }

    /// Whether these are the tables of `verifier` (it changes with the setup code).
    pub fn is_for(&self, verifier: &[u8; GROUP_LEN]) -> bool {
        *self.verifier == *verifier
    }
}

/// The server (accessory) side of one SRP exchange.
pub struct SrpServer {
    field: Field,
    b: Zeroizing<[u8; SECRET_LEN]>,
    public_key: [u8; GROUP_LEN],
    /// Secret-equivalent: it allows an offline search of the code space.
    verifier: Zeroizing<[u8; GROUP_LEN]>,
    user_hash: [u8; HASH_LEN],
    salt: [u8; SALT_LEN],
}

impl core::fmt::Debug for SrpServer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SrpServer(..)")
    }
}

impl SrpServer {
    /// Starts an exchange with the stored `salt` and `verifier` and the secret `b`, with
    /// `tables` of that verifier if the caller keeps them (see [`SrpTables`]).
    pub fn new(
        username: &[u8],
        salt: &[u8; SALT_LEN],
        verifier: &[u8; GROUP_LEN],
        b: &[u8; SECRET_LEN],
        tables: Option<&SrpTables>,
    ) -> Self {
        let tables = tables.filter(|tables| tables.is_for(verifier));
        let field = tables.map_or_else(Field::new, |tables| tables.field.clone());
        let mut v = field.element(&BigUint::from_bytes_be(verifier));
        let mut g_b = match tables {
            Some(tables) => tables.generator.pow_secret(&field, b),
            None => power(&field, &field.element(&BigUint::from(G)), b),
        };
        let mut k_v = field.mul(&field.element(&multiplier()), &v);
        let public = field.add(&k_v, &g_b);
        g_b.zeroize();
        k_v.zeroize();
        v.zeroize();
        Self {
            public_key: field.to_bytes(&public),
            field,
            b: Zeroizing::new(*b),
            verifier: Zeroizing::new(*verifier),
            user_hash: hash(&[username]),
            salt: *salt,
        }
    }

    /// B, padded to 384 bytes, as it goes on the wire (see the module docs for why).
    pub fn public_key(&self) -> &[u8; GROUP_LEN] {
        &self.public_key
    }

    /// Checks the client's public key A and proof M1, and returns M2 and K; `tables` as
    /// for [`SrpServer::new`].
    pub fn verify_client(
        &self,
        client_public_key: &[u8],
        client_proof_m1: &[u8],
        tables: Option<&SrpTables>,
    ) -> Result<SrpProof, SrpError> {
        let a = public_key(client_public_key, &n())?;
        let a_pad = pad(&a);
        let u = scrambler(&a_pad, &self.public_key)?;
        let field = &self.field;
        // S = (A·v^u)^b.
        let mut v_u = match tables.filter(|tables| tables.is_for(&self.verifier)) {
            Some(tables) => tables.verifier_powers.pow_public(field, &u),
            None => {
                let mut v = field.element(&BigUint::from_bytes_be(&*self.verifier));
                let v_u = field.pow(&v, &u);
                v.zeroize();
                v_u
            }
        };
        let mut base = field.mul(&field.element(&a), &v_u);
        let mut s = power(field, &base, &*self.b);
        let s_pad = Zeroizing::new(field.to_bytes(&s));
        v_u.zeroize();
        base.zeroize();
        s.zeroize();
        // The standard form first, then the padded forms some clients use.
        let keys = [hash(&[strip(&*s_pad)]), hash(&[&*s_pad])];
        let a_forms = [strip(&a_pad), &a_pad[..]];
        let b_forms = [strip(&self.public_key), &self.public_key[..]];
        let mut matched: Option<usize> = None;
        for (index, key) in keys.iter().enumerate() {
            for a_form in a_forms {
                for b_form in b_forms {
                    let expected = client_proof(&self.user_hash, &self.salt, a_form, b_form, key);
                    if proofs_equal(&expected, client_proof_m1) && matched.is_none() {
                        matched = Some(index);
                    }
                }
            }
        }
        let mut keys = Zeroizing::new(keys);
        let key = keys[matched.ok_or(SrpError::BadProof)?];
        keys.zeroize();
        Ok(SrpProof {
            proof: hash(&[&a_pad, client_proof_m1, &key]),
            session_key: key,
        })
    }
}

/// The client (controller) side of one SRP exchange.
pub struct SrpClient {
    public_key: [u8; GROUP_LEN],
    proof: SrpProof,
}

impl core::fmt::Debug for SrpClient {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SrpClient(..)")
    }
}

impl SrpClient {
    /// Computes A, K and M1 from the server's `salt` and public key B, the credentials and
    /// the secret `a`.
    pub fn new(
        username: &[u8],
        password: &[u8],
        salt: &[u8],
        server_public_key: &[u8],
        a: &[u8; SECRET_LEN],
    ) -> Result<Self, SrpError> {
        let n = n();
        let server_key = public_key(server_public_key, &n)?;
        let b_pad = pad(&server_key);
        let a = Zeroizing::new(BigUint::from_bytes_be(a));
        let a_pad = pad(&modpow(&BigUint::from(G), &a));
        let u = BigUint::from_bytes_be(&scrambler(&a_pad, &b_pad)?);
        let x = private_key(username, password, salt);
        // g^x is the verifier, and B - k·g^x is g^b: both stay secret.
        let g_x = Zeroizing::new(modpow(&BigUint::from(G), &x));
        // B - k·g^x mod N, kept non-negative by adding N before subtracting.
        let k_g_x = Zeroizing::new((multiplier() * &*g_x) % &n);
        let base = Zeroizing::new((&server_key % &n + &n - &*k_g_x) % &n);
        let exponent = Zeroizing::new(&*a + &u * &*x);
        let s = Zeroizing::new(modpow(&base, &exponent));
        let s_pad = Zeroizing::new(pad(&s));
        let session_key = hash(&[strip(&*s_pad)]);
        let proof = client_proof(
            &hash(&[username]),
            salt,
            strip(&a_pad),
            strip(&b_pad),
            &session_key,
        );
        Ok(Self {
            public_key: a_pad,
            proof: SrpProof { proof, session_key },
        })
    }

    /// A with leading zero bytes stripped, as it goes on the wire.
    pub fn public_key(&self) -> &[u8] {
        strip(&self.public_key)
    }

    /// The client's proof M1.
    pub fn proof(&self) -> &[u8; HASH_LEN] {
        &self.proof.proof
    }

    /// Checks the server's proof M2 and returns the session key K.
    ///
    /// M2 is accepted over A padded (HomeKitADK, HAP-NodeJS, this crate's server) or over
    /// A as it was sent, stripped (HAP-python 5.0.0 hashes the bytes it received): the
    /// two differ when A has a leading zero byte, one pairing in 256.
    pub fn verify_server(&self, server_proof_m2: &[u8]) -> Result<[u8; HASH_LEN], SrpError> {
        let (proof, key) = (&self.proof.proof, &self.proof.session_key);
        let padded = hash(&[&self.public_key, proof, key]);
        let as_sent = hash(&[strip(&self.public_key), proof, key]);
        // Both compared, in constant time.
        let matched =
            proofs_equal(&padded, server_proof_m2) | proofs_equal(&as_sent, server_proof_m2);
        if matched {
            Ok(self.proof.session_key)
        } else {
            Err(SrpError::BadProof)
        }
    }
}

#[cfg(test)]
mod tests;
