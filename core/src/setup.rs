//! What a user needs to pair: the setup code, the setup id, the `X-HM://` setup URI (the
//! QR code's content) and the setup hash advertised as `sh`, plus the accessory's device id.

use core::fmt;
use core::str::FromStr;

use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha512};

use crate::catalog::Category;

/// A setup code string was malformed or is one that HomeKit refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SetupCodeError {
    /// Not of the form `XXX-XX-XXX` with decimal digits.
    Format,
    /// All digits the same, `123-45-678` or `876-54-321`, which HomeKit refuses.
    Trivial,
}

impl fmt::Display for SetupCodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SetupCodeError::Format => {
                f.write_str("setup code must look like 123-45-679 (eight digits)")
            }
            SetupCodeError::Trivial => f.write_str(
                "setup code is too easy to guess (all digits equal, 123-45-678 or 876-54-321)",
            ),
        }
    }
}

impl core::error::Error for SetupCodeError {}

/// An 8-digit setup code, kept in its `XXX-XX-XXX` form, which is also SRP's password.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct SetupCode([u8; 10]);

impl SetupCode {
    /// The code for an integer below 100 000 000, if HomeKit accepts it.
    pub fn from_number(number: u32) -> Result<Self, SetupCodeError> {
        if number >= 100_000_000 {
            return Err(SetupCodeError::Format);
        }
        let mut text = *b"000-00-000";
        let mut rest = number;
        for position in [9, 8, 7, 5, 4, 2, 1, 0] {
            text[position] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        let code = Self(text);
        if code.is_trivial() {
            return Err(SetupCodeError::Trivial);
        }
        Ok(code)
    }

    /// A uniformly random code among those HomeKit accepts.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        loop {
            // Rejection sampling keeps the distribution uniform; 2^32 / 10^8 rounds down
            // to 42, so only values below 42 * 10^8 are used.
            let value = rng.next_u32();
            if value >= 4_200_000_000 {
                continue;
            }
            if let Ok(code) = Self::from_number(value % 100_000_000) {
                return code;
            }
        }
    }

    fn is_trivial(&self) -> bool {
        let digits = self.digits();
        digits.iter().all(|d| *d == digits[0])
            || &self.0 == b"123-45-678"
            || &self.0 == b"876-54-321"
    }

    fn digits(&self) -> [u8; 8] {
        let t = &self.0;
        [t[0], t[1], t[2], t[4], t[5], t[7], t[8], t[9]]
    }

    /// The code as an integer, as the setup URI carries it.
    pub fn to_number(&self) -> u32 {
        self.digits()
            .iter()
            .fold(0, |acc, d| acc * 10 + u32::from(d - b'0'))
    }

    /// The `XXX-XX-XXX` form.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits and dashes are ever stored.
        core::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The `XXX-XX-XXX` form as bytes, SRP's password.
    pub fn as_bytes(&self) -> &[u8; 10] {
        &self.0
    }
}

impl FromStr for SetupCode {
    type Err = SetupCodeError;

    /// Parses `XXX-XX-XXX`.
    fn from_str(text: &str) -> Result<Self, SetupCodeError> {
        let bytes: &[u8; 10] = text
            .as_bytes()
            .try_into()
            .map_err(|_| SetupCodeError::Format)?;
        let well_formed = bytes.iter().enumerate().all(|(i, c)| {
            if i == 3 || i == 6 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
        if !well_formed {
            return Err(SetupCodeError::Format);
        }
        let code = Self(*bytes);
        if code.is_trivial() {
            return Err(SetupCodeError::Trivial);
        }
        Ok(code)
    }
}

impl fmt::Display for SetupCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for SetupCode {
    // Keep the code out of logs that print debug output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SetupCode(***-**-***)")
    }
}

/// A setup id was not four characters of `[0-9A-Z]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetupIdError;

impl fmt::Display for SetupIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("setup id must be four characters from 0-9 and A-Z")
    }
}

impl core::error::Error for SetupIdError {}

const BASE36: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// The four-character setup id that ties a setup URI to the `sh` hash in mDNS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SetupId([u8; 4]);

impl SetupId {
    /// A random setup id.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut id = [0u8; 4];
        for c in &mut id {
            // 252 = 7 * 36: rejecting above keeps every character equally likely.
            *c = loop {
                let mut byte = [0u8; 1];
                rng.fill_bytes(&mut byte);
                if byte[0] < 252 {
                    break BASE36[usize::from(byte[0] % 36)];
                }
            };
        }
        Self(id)
    }

    /// The id's four characters.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl FromStr for SetupId {
    type Err = SetupIdError;

    fn from_str(text: &str) -> Result<Self, SetupIdError> {
        let bytes: [u8; 4] = text.as_bytes().try_into().map_err(|_| SetupIdError)?;
        if bytes.iter().all(|c| BASE36.contains(c)) {
            Ok(Self(bytes))
        } else {
            Err(SetupIdError)
        }
    }
}

impl fmt::Display for SetupId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A device id was not of the form `XX:XX:XX:XX:XX:XX` in hex.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceIdError;

impl fmt::Display for DeviceIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("device id must look like 1A:2B:3C:4D:5E:6F")
    }
}

impl core::error::Error for DeviceIdError {}

/// The accessory's pairing identifier: six random bytes shown as `XX:XX:XX:XX:XX:XX`.
///
/// It is advertised as `id`, and must stay the same for the accessory's whole life;
/// a new id makes controllers see a new accessory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DeviceId(pub [u8; 6]);

impl DeviceId {
    /// A random device id.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut bytes = [0u8; 6];
        rng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// The upper-case `XX:XX:XX:XX:XX:XX` form, which is also the pairing identifier
    /// that pair-setup and pair-verify carry.
    pub fn to_ascii(&self) -> [u8; 17] {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        let mut out = [b':'; 17];
        for (i, byte) in self.0.iter().enumerate() {
            out[i * 3] = HEX[usize::from(byte >> 4)];
            out[i * 3 + 1] = HEX[usize::from(byte & 0xF)];
        }
        out
    }
}

impl FromStr for DeviceId {
    type Err = DeviceIdError;

    /// Parses `XX:XX:XX:XX:XX:XX`, in either case.
    fn from_str(text: &str) -> Result<Self, DeviceIdError> {
        let bytes = text.as_bytes();
        if bytes.len() != 17 {
            return Err(DeviceIdError);
        }
        let mut id = [0u8; 6];
        for (i, out) in id.iter_mut().enumerate() {
            let pair = &bytes[i * 3..i * 3 + 2];
            if i < 5 && bytes[i * 3 + 2] != b':' {
                return Err(DeviceIdError);
            }
            let text = core::str::from_utf8(pair).map_err(|_| DeviceIdError)?;
            if !pair.iter().all(u8::is_ascii_hexdigit) {
                return Err(DeviceIdError);
            }
            *out = u8::from_str_radix(text, 16).map_err(|_| DeviceIdError)?;
        }
        Ok(Self(id))
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(core::str::from_utf8(&self.to_ascii()).unwrap_or_default())
    }
}

/// The transports and state a setup URI advertises.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetupFlags {
    /// The accessory is already paired.
    pub paired: bool,
    /// It is reachable over IP.
    pub ip: bool,
    /// It is reachable over Bluetooth LE.
    pub ble: bool,
}

/// The `X-HM://` setup URI that a QR code or NFC tag carries.
///
/// It is `X-HM://`, nine base-36 characters of a 45-bit number, then the setup id. The
/// number holds the code in its low 27 bits, `paired` at bit 27, IP at bit 28, BLE at
/// bit 29 and the category from bit 31; the version and reserved bits are zero.
pub fn setup_uri(
    code: &SetupCode,
    setup_id: &SetupId,
    category: Category,
    flags: SetupFlags,
) -> heapless::String<20> {
    let mut payload = u64::from(code.to_number())
        | u64::from(flags.paired) << 27
        | u64::from(flags.ip) << 28
        | u64::from(flags.ble) << 29
        | u64::from(category.number()) << 31;
    let mut digits = [b'0'; 9];
    for digit in digits.iter_mut().rev() {
        *digit = BASE36[(payload % 36) as usize];
        payload /= 36;
    }
    let mut uri = heapless::String::new();
    // 7 + 9 + 4 = 20 characters, exactly the capacity.
    for part in [
        "X-HM://",
        core::str::from_utf8(&digits).unwrap_or_default(),
        setup_id.as_str(),
    ] {
        let _ = uri.push_str(part);
    }
    uri
}

/// The first four bytes of SHA-512(setup id ‖ device id), which mDNS advertises as `sh`.
pub fn setup_hash(setup_id: &SetupId, device_id: &DeviceId) -> [u8; 4] {
    let digest = Sha512::new()
        .chain_update(setup_id.0)
        .chain_update(device_id.to_ascii())
        .finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// [`setup_hash`] in base64, the form of the `sh` TXT value.
pub fn setup_hash_base64(setup_id: &SetupId, device_id: &DeviceId) -> heapless::String<8> {
    use base64::Engine as _;
    let mut out = [0u8; 8];
    let mut text = heapless::String::new();
    // Four bytes always encode to exactly eight characters.
    if let Ok(len) = base64::engine::general_purpose::STANDARD
        .encode_slice(setup_hash(setup_id, device_id), &mut out)
    {
        let _ = text.push_str(core::str::from_utf8(&out[..len]).unwrap_or_default());
    }
    text
}

/// An accessory's setup as it persists across restarts: the pairing state, and the setup
/// code and setup id it shows to users.
///
/// [`Provisioning::load_or_create`] is the one policy for starting from what storage
/// held, shared by every adapter; [`Snapshot`](crate::persist::Snapshot) adds the
/// configuration number and the id map on top.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provisioning {
    /// Identity, setup verifier, pairings and the failed-attempt counter.
    pub state: crate::state::AccessoryState,
    /// The setup code, so it can be shown again; `None` if only the verifier is kept
    /// (a code printed on a label at the factory, say).
    pub setup_code: Option<SetupCode>,
    /// The setup id of the setup URI and of the `sh` TXT value.
    pub setup_id: Option<SetupId>,
}

/// What [`Provisioning::load_or_create`] decided: the setup to serve with, and whether
/// it differs from what storage holds, so that the caller must store it before serving.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a changed setup must be stored before serving"]
pub struct Provisioned<T> {
    /// The setup to serve with.
    pub setup: T,
    /// Storage does not hold `setup` yet: store it before serving.
    pub must_store: bool,
}

impl Provisioning {
    /// Starts from what storage held (`stored`), or creates a new accessory when it held
    /// nothing.
    ///
    /// A new accessory gets `code` or a random valid setup code, `setup_id` or a random
    /// one, and a fresh identity. An existing one keeps its identity and pairings; if
    /// `code` differs from the stored one, its verifier is made anew so that new
    /// pairings need `code` (existing ones are kept); a `setup_id` given replaces the
    /// stored one; a missing setup id is generated. A new code does not lift the
    /// lockout after too many failed pair-setup attempts: as in HomeKitADK, only a reset
    /// (starting with nothing stored) does.
    ///
    /// Needs `alloc`, because making a verifier needs SRP. A device without a heap ships
    /// with its state, verifier included, made at the factory.
    ///
    /// ```
    /// use hap_core::setup::{Provisioning, SetupCode};
    /// # use rand_chacha::rand_core::SeedableRng;
    /// # let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    /// let code: SetupCode = "314-15-926".parse().unwrap();
    /// let first = Provisioning::load_or_create(None, Some(code), None, &mut rng);
    /// assert!(first.must_store, "a new accessory is stored before it is served");
    /// let again = Provisioning::load_or_create(Some(first.setup.clone()), Some(code), None, &mut rng);
    /// assert!(!again.must_store, "nothing changed");
    /// assert_eq!(again.setup, first.setup);
    /// ```
    #[cfg(feature = "alloc")]
    pub fn load_or_create<R: RngCore + CryptoRng>(
        stored: Option<Self>,
        code: Option<SetupCode>,
        setup_id: Option<SetupId>,
        rng: &mut R,
    ) -> Provisioned<Self> {
        use crate::state::{AccessoryState, SetupVerifier};

        let Some(mut setup) = stored else {
            let code = code.unwrap_or_else(|| SetupCode::generate(rng));
            let state = AccessoryState::generate(&code, rng);
            return Provisioned {
                setup: Self {
                    state,
                    setup_code: Some(code),
                    setup_id: Some(setup_id.unwrap_or_else(|| SetupId::generate(rng))),
                },
                must_store: true,
            };
        };
        let mut must_store = false;
        if let Some(code) = code {
            if setup.setup_code != Some(code) {
                setup.state.setup = SetupVerifier::generate(&code, rng);
                setup.setup_code = Some(code);
                must_store = true;
            }
        }
        if let Some(id) = setup_id {
            if setup.setup_id != Some(id) {
                setup.setup_id = Some(id);
                must_store = true;
            }
        }
        if setup.setup_id.is_none() {
            setup.setup_id = Some(SetupId::generate(rng));
            must_store = true;
        }
        Provisioned { setup, must_store }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    fn vectors() -> serde_json::Value {
        serde_json::from_str(include_str!("../tests/data/reference-vectors.json")).unwrap()
    }

    /// The state policy; it makes verifiers, which needs SRP and so `alloc`.
    #[cfg(feature = "alloc")]
    mod provisioning {
        use super::*;
        use crate::state::SetupVerifier;

        fn provisioned(code: &str, setup_id: Option<&str>) -> Provisioning {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
            let code = code.parse().unwrap();
            let id = setup_id.map(|id| id.parse().unwrap());
            let created = Provisioning::load_or_create(None, Some(code), id, &mut rng);
            assert!(created.must_store, "a new accessory must be stored");
            assert_eq!(created.setup.setup_code, Some(code));
            assert!(created.setup.state.pairings.is_empty());
            created.setup
        }

        #[test]
        fn a_new_accessory_gets_a_random_code_and_setup_id_unless_given() {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
            let created = Provisioning::load_or_create(None, None, None, &mut rng);
            assert!(created.must_store);
            let code = created.setup.setup_code.expect("a code is generated");
            assert!(created.setup.setup_id.is_some(), "a setup id is generated");
            assert_eq!(
                created.setup.state.setup,
                SetupVerifier::new(&code, created.setup.state.setup.salt),
                "the verifier is the generated code's"
            );
            let given: SetupId = "7OSX".parse().unwrap();
            let created = Provisioning::load_or_create(None, None, Some(given), &mut rng);
            assert_eq!(created.setup.setup_id, Some(given));
        }

        #[test]
        fn the_same_code_keeps_the_stored_setup() {
            let stored = provisioned("314-15-926", Some("7OSX"));
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
            for (code, id) in [
                (
                    Some("314-15-926".parse().unwrap()),
                    Some("7OSX".parse().unwrap()),
                ),
                (None, None),
            ] {
                let loaded = Provisioning::load_or_create(Some(stored.clone()), code, id, &mut rng);
                assert!(!loaded.must_store, "{code:?} {id:?}: nothing changed");
                assert_eq!(loaded.setup, stored, "identity, verifier and id are kept");
            }
        }

        #[test]
        fn a_new_code_regenerates_the_verifier_and_keeps_the_rest() {
            let mut stored = provisioned("314-15-926", Some("7OSX"));
            stored.state.failed_attempts = 3;
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
            let code: SetupCode = "271-82-818".parse().unwrap();
            let loaded =
                Provisioning::load_or_create(Some(stored.clone()), Some(code), None, &mut rng);
            assert!(loaded.must_store);
            let setup = loaded.setup;
            assert_eq!(setup.setup_code, Some(code));
            assert_ne!(setup.state.setup, stored.state.setup);
            assert_eq!(
                setup.state.setup,
                SetupVerifier::new(&code, setup.state.setup.salt),
                "the verifier is the new code's"
            );
            assert_eq!(setup.state.device_id, stored.state.device_id);
            assert_eq!(setup.state.identity.seed(), stored.state.identity.seed());
            assert_eq!(setup.setup_id, stored.setup_id);
            assert_eq!(
                setup.state.failed_attempts, 3,
                "a new code does not lift the lockout"
            );
        }

        #[test]
        fn a_missing_setup_id_is_generated_and_a_given_one_replaces_the_stored() {
            let mut stored = provisioned("314-15-926", None);
            stored.setup_id = None;
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
            let loaded = Provisioning::load_or_create(Some(stored.clone()), None, None, &mut rng);
            assert!(loaded.must_store);
            assert!(loaded.setup.setup_id.is_some());
            assert_eq!(loaded.setup.state, stored.state, "only the id changed");
            let given: SetupId = "AB12".parse().unwrap();
            let loaded =
                Provisioning::load_or_create(Some(loaded.setup), None, Some(given), &mut rng);
            assert!(loaded.must_store);
            assert_eq!(loaded.setup.setup_id, Some(given));
        }
    }

    #[test]
    fn invalid_codes_from_vectors_are_refused() {
        let all = vectors();
        let invalid = all["invalid_setup_codes"].as_array().unwrap();
        assert_eq!(invalid.len(), 12);
        for code in invalid {
            let code = code.as_str().unwrap();
            assert_eq!(
                code.parse::<SetupCode>(),
                Err(SetupCodeError::Trivial),
                "{code}"
            );
            let number: u32 = code.replace('-', "").parse().unwrap();
            assert_eq!(
                SetupCode::from_number(number),
                Err(SetupCodeError::Trivial),
                "{code}"
            );
        }
    }

    #[test]
    fn malformed_codes_are_refused() {
        for text in [
            "",
            "12345678",
            "123-45-67",
            "123-45-6789",
            "123_45_679",
            "12a-45-679",
            "123-456-79",
            "１23-45-679",
        ] {
            assert_eq!(
                text.parse::<SetupCode>(),
                Err(SetupCodeError::Format),
                "{text:?}"
            );
        }
        assert_eq!(
            SetupCode::from_number(100_000_000),
            Err(SetupCodeError::Format)
        );
    }

    #[test]
    fn codes_round_trip() {
        let code: SetupCode = "031-45-154".parse().unwrap();
        assert_eq!(code.to_number(), 3_145_154);
        assert_eq!(SetupCode::from_number(3_145_154).unwrap(), code);
        assert_eq!(std::format!("{code}"), "031-45-154");
        assert_eq!(std::format!("{code:?}"), "SetupCode(***-**-***)");
    }

    #[test]
    fn generated_codes_are_valid_and_varied() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let codes: std::vec::Vec<SetupCode> =
            (0..200).map(|_| SetupCode::generate(&mut rng)).collect();
        for code in &codes {
            assert_eq!(code.as_str().parse::<SetupCode>().as_ref(), Ok(code));
        }
        let distinct: std::collections::BTreeSet<u32> =
            codes.iter().map(SetupCode::to_number).collect();
        assert!(distinct.len() > 190);
    }

    #[test]
    fn setup_uris_match_vectors() {
        let all = vectors();
        for case in all["setup_payload"]["cases"].as_array().unwrap() {
            // The vectors include 000-00-000 to pin the bit layout; build it from digits
            // directly since it is not a code anyone may use.
            let text = case["setup_code"].as_str().unwrap();
            let code = text
                .parse::<SetupCode>()
                .unwrap_or(SetupCode(text.as_bytes().try_into().unwrap()));
            let flags = SetupFlags {
                paired: case["paired"].as_bool().unwrap(),
                ip: case["ip"].as_bool().unwrap(),
                ble: case["ble"].as_bool().unwrap(),
            };
            let id: SetupId = case["setup_id"].as_str().unwrap().parse().unwrap();
            let category = Category::new(case["category"].as_u64().unwrap() as u8);
            assert_eq!(
                setup_uri(&code, &id, category, flags).as_str(),
                case["uri"].as_str().unwrap()
            );
        }
    }

    #[test]
    fn setup_hashes_match_vectors() {
        let all = vectors();
        for case in all["setup_hash"]["cases"].as_array().unwrap() {
            let id: SetupId = case["setup_id"].as_str().unwrap().parse().unwrap();
            let device: DeviceId = case["device_id"].as_str().unwrap().parse().unwrap();
            let expected = hex::decode(case["hash4_hex"].as_str().unwrap()).unwrap();
            assert_eq!(setup_hash(&id, &device).to_vec(), expected);
            let text = setup_hash_base64(&id, &device);
            assert_eq!(text.len(), 8);
            use base64::Engine as _;
            let mut decoded = [0u8; 6];
            let len = base64::engine::general_purpose::STANDARD
                .decode_slice(text.as_str(), &mut decoded)
                .unwrap();
            assert_eq!(decoded[..len].to_vec(), expected);
        }
    }

    #[test]
    fn setup_ids_and_device_ids_parse_strictly() {
        assert!("7OSX".parse::<SetupId>().is_ok());
        for bad in ["7osx", "7OS", "7OSXY", "7OS-"] {
            assert_eq!(bad.parse::<SetupId>(), Err(SetupIdError), "{bad}");
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let id = SetupId::generate(&mut rng);
        assert_eq!(id.as_str().parse::<SetupId>(), Ok(id));

        let device: DeviceId = "e1:91:1a:70:85:aa".parse().unwrap();
        assert_eq!(std::format!("{device}"), "E1:91:1A:70:85:AA");
        for bad in [
            "E1:91:1A:70:85",
            "E1:91:1A:70:85:AAB",
            "E1-91-1A-70-85-AA",
            "E1:91:1A:70:85:+A",
            "G1:91:1A:70:85:AA",
        ] {
            assert_eq!(bad.parse::<DeviceId>(), Err(DeviceIdError), "{bad}");
        }
    }
}
