//! The stored form of everything an accessory must remember: a small, documented JSON
//! document that adapters write to a file (or flash) and read back at start.
//!
//! The core does not touch storage; this module only turns a [`Snapshot`] into bytes and
//! back. Decoding checks every field and reports the first one that is wrong, so a
//! damaged store is refused rather than half-loaded.
//!
//! # Format, version 1
//!
//! ```json
//! {
//!   "format": "hap-accessory-store",
//!   "version": 1,
//!   "device_id": "12:34:56:78:9A:BC",
//!   "identity_seed": "<64 hex digits: the Ed25519 secret seed>",
//!   "setup_code": "111-22-333",
//!   "setup_id": "7OSX",
//!   "salt": "<32 hex digits>",
//!   "verifier": "<768 hex digits>",
//!   "failed_attempts": 0,
//!   "config_number": 1,
//!   "config_shape": "<32 hex digits>",
//!   "pairings": [ { "id": "<hex of the identifier's bytes>", "public_key": "<64 hex digits>", "admin": true } ],
//!   "ids": {
//!     "next_aid": 2,
//!     "accessories": [ {
//!       "key": "light", "aid": 1, "next_iid": 12,
//!       "instances": [ { "service": "<32 hex digits: UUID>", "subtype": "", "characteristic": "<32 hex digits> or null", "iid": 10 } ]
//!     } ]
//!   }
//! }
//! ```
//!
//! `setup_code` and `setup_id` may be `null`. The setup code is kept so that the
//! accessory can show it again; only the salt and verifier are needed to pair. The file
//! holds the accessory's secret key, so keep it private.

use alloc::collections::BTreeSet;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::catalog::HapType;
use crate::crypto::Ed25519KeyPair;
use crate::database::config::ConfigNumber;
use crate::database::ids::{AccessoryIds, IdMap, InstanceKey};
use crate::pairing::{Pairing, PairingId, Pairings, MAX_PAIRINGS};
use crate::setup::{Provisioned, Provisioning, SetupCode, SetupId};
use crate::state::{AccessoryState, SetupVerifier};

/// The value of the `format` field.
pub const FORMAT: &str = "hap-accessory-store";

/// The version this module writes and reads.
pub const VERSION: u32 = 1;

/// Everything an accessory persists.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Identity, setup verifier, pairings and the failed-attempt counter.
    pub state: AccessoryState,
    /// The setup code, so it can be shown again; `None` if the application keeps it.
    pub setup_code: Option<SetupCode>,
    /// The setup id of the setup URI and the `sh` TXT value.
    pub setup_id: Option<SetupId>,
    /// The configuration number and the shape it was issued for.
    pub config: ConfigNumber,
    /// Every accessory and instance id handed out.
    pub ids: IdMap,
}

/// Why stored bytes could not be read back.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DecodeError {
    /// The bytes are not a JSON document of the expected shape.
    Syntax {
        /// Line of the error, from 1.
        line: usize,
        /// Column of the error, from 1.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// The document is of another format.
    NotAStore,
    /// The document is of a version this code cannot read.
    Version(u32),
    /// A field holds a value out of its domain.
    Field(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Syntax {
                line,
                column,
                message,
            } => write!(
                f,
                "not valid JSON at line {line}, column {column}: {message}"
            ),
            Self::NotAStore => write!(f, "not an accessory store (\"format\" is not {FORMAT:?})"),
            Self::Version(v) => {
                write!(f, "store version {v} is not supported (expected {VERSION})")
            }
            Self::Field(name) => write!(f, "field {name:?} holds an invalid value"),
        }
    }
}

impl core::error::Error for DecodeError {}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    format: String,
    version: u32,
    device_id: String,
    identity_seed: String,
    setup_code: Option<String>,
    setup_id: Option<String>,
    salt: String,
    verifier: String,
    failed_attempts: u8,
    config_number: u16,
    config_shape: String,
    pairings: Vec<StoredPairing>,
    ids: StoredIds,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredPairing {
    id: String,
    public_key: String,
    admin: bool,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredIds {
    next_aid: u64,
    accessories: Vec<StoredAccessory>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredAccessory {
    key: String,
    aid: u64,
    next_iid: u64,
    instances: Vec<StoredInstance>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredInstance {
    service: String,
    subtype: String,
    characteristic: Option<String>,
    iid: u64,
}

impl Snapshot {
    /// Starts from the snapshot storage held, or a new accessory when it held none, by
    /// the one state policy, [`Provisioning::load_or_create`]. A new accessory starts
    /// with configuration number 1 and no ids; a loaded one keeps its own.
    pub fn load_or_create<R: RngCore + CryptoRng>(
        stored: Option<Self>,
        code: Option<SetupCode>,
        setup_id: Option<SetupId>,
        rng: &mut R,
    ) -> Provisioned<Self> {
        let (provisioning, config, ids) = match stored {
            Some(snapshot) => (
                Some(Provisioning {
                    state: snapshot.state,
                    setup_code: snapshot.setup_code,
                    setup_id: snapshot.setup_id,
                }),
                snapshot.config,
                snapshot.ids,
            ),
            None => (None, ConfigNumber::default(), IdMap::new()),
        };
        let Provisioned { setup, must_store } =
            Provisioning::load_or_create(provisioning, code, setup_id, rng);
        Provisioned {
            setup: Self {
                state: setup.state,
                setup_code: setup.setup_code,
                setup_id: setup.setup_id,
                config,
                ids,
            },
            must_store,
        }
    }

    /// The document, as pretty-printed UTF-8 JSON ending in a newline.
    pub fn encode(&self) -> Vec<u8> {
        let state = &self.state;
        let document = Document {
            format: FORMAT.to_string(),
            version: VERSION,
            device_id: state.device_id.to_string(),
            identity_seed: hex::encode(state.identity.seed()),
            setup_code: self.setup_code.as_ref().map(|c| c.as_str().to_string()),
            setup_id: self.setup_id.as_ref().map(|s| s.as_str().to_string()),
            salt: hex::encode(state.setup.salt),
            verifier: hex::encode(state.setup.verifier),
            failed_attempts: state.failed_attempts,
            config_number: self.config.number,
            config_shape: hex::encode(self.config.shape),
            pairings: state
                .pairings
                .iter()
                .map(|p| StoredPairing {
                    id: hex::encode(p.id.as_bytes()),
                    public_key: hex::encode(p.public_key),
                    admin: p.admin,
                })
                .collect(),
            ids: StoredIds {
                next_aid: self.ids.next_aid,
                accessories: self
                    .ids
                    .accessories
                    .iter()
                    .map(|a| StoredAccessory {
                        key: a.key.clone(),
                        aid: a.aid,
                        next_iid: a.next_iid,
                        instances: a
                            .instances
                            .iter()
                            .map(|(key, iid)| StoredInstance {
                                service: hex::encode(key.service.uuid_bytes()),
                                subtype: key.subtype.clone(),
                                characteristic: key
                                    .characteristic
                                    .map(|c| hex::encode(c.uuid_bytes())),
                                iid: *iid,
                            })
                            .collect(),
                    })
                    .collect(),
            },
        };
        // Serializing plain strings, numbers and vectors cannot fail.
        let mut bytes = serde_json::to_vec_pretty(&document).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Reads a document written by [`Snapshot::encode`], checking every field.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        // Tell a foreign or future document apart from a damaged one before the full
        // shape is demanded.
        #[derive(Deserialize)]
        struct Header {
            format: Option<String>,
            version: Option<u32>,
        }
        let header: Header = serde_json::from_slice(bytes).map_err(syntax)?;
        if header.format.as_deref() != Some(FORMAT) {
            return Err(DecodeError::NotAStore);
        }
        match header.version {
            Some(VERSION) => {}
            Some(other) => return Err(DecodeError::Version(other)),
            None => return Err(DecodeError::Field("version")),
        }
        let doc: Document = serde_json::from_slice(bytes).map_err(syntax)?;

        let device_id = doc
            .device_id
            .parse()
            .map_err(|_| DecodeError::Field("device_id"))?;
        let identity = Ed25519KeyPair::from_seed(&fixed(&doc.identity_seed, "identity_seed")?);
        let setup = SetupVerifier {
            salt: fixed(&doc.salt, "salt")?,
            verifier: fixed(&doc.verifier, "verifier")?,
        };
        if doc.pairings.len() > MAX_PAIRINGS {
            return Err(DecodeError::Field("pairings"));
        }
        let mut pairings = Pairings::default();
        for stored in &doc.pairings {
            let id = hex::decode(&stored.id)
                .ok()
                .and_then(|bytes| PairingId::new(&bytes))
                .ok_or(DecodeError::Field("pairings.id"))?;
            let pairing = Pairing {
                id,
                public_key: fixed(&stored.public_key, "pairings.public_key")?,
                admin: stored.admin,
            };
            pairings
                .insert(pairing)
                .map_err(|_| DecodeError::Field("pairings"))?;
        }
        let mut state = AccessoryState::new(device_id, identity, setup);
        state.pairings = pairings;
        state.failed_attempts = doc.failed_attempts;

        let setup_code = doc
            .setup_code
            .map(|c| c.parse().map_err(|_| DecodeError::Field("setup_code")))
            .transpose()?;
        let setup_id = doc
            .setup_id
            .map(|s| s.parse().map_err(|_| DecodeError::Field("setup_id")))
            .transpose()?;
        if doc.config_number == 0 {
            return Err(DecodeError::Field("config_number"));
        }
        let config = ConfigNumber {
            number: doc.config_number,
            shape: fixed(&doc.config_shape, "config_shape")?,
        };
        let ids = decode_ids(doc.ids)?;
        Ok(Self {
            state,
            setup_code,
            setup_id,
            config,
            ids,
        })
    }
}

fn decode_ids(stored: StoredIds) -> Result<IdMap, DecodeError> {
    let invalid = DecodeError::Field("ids");
    let mut accessories = Vec::with_capacity(stored.accessories.len());
    let mut aids = BTreeSet::new();
    for accessory in stored.accessories {
        // Ids at or past the next one to hand out, or one id for two things, would break
        // the promise that ids are never reused.
        if accessory.aid == 0 || accessory.aid >= stored.next_aid || !aids.insert(accessory.aid) {
            return Err(invalid);
        }
        let mut instances = Vec::with_capacity(accessory.instances.len());
        let mut iids = BTreeSet::new();
        for instance in accessory.instances {
            if instance.iid == 0 || instance.iid >= accessory.next_iid || !iids.insert(instance.iid)
            {
                return Err(invalid);
            }
            let characteristic = match instance.characteristic {
                Some(text) => Some(hap_type(&text)?),
                None => None,
            };
            let key = InstanceKey {
                service: hap_type(&instance.service)?,
                subtype: instance.subtype,
                characteristic,
            };
            instances.push((key, instance.iid));
        }
        accessories.push(AccessoryIds {
            key: accessory.key,
            aid: accessory.aid,
            next_iid: accessory.next_iid,
            instances,
        });
    }
    Ok(IdMap::from_parts(stored.next_aid, accessories))
}

fn hap_type(text: &str) -> Result<HapType, DecodeError> {
    fixed(text, "ids").map(HapType::from_uuid_bytes)
}

/// Exactly `N` bytes in hex.
fn fixed<const N: usize>(text: &str, field: &'static str) -> Result<[u8; N], DecodeError> {
    let mut out = [0u8; N];
    hex::decode_to_slice(text, &mut out).map_err(|_| DecodeError::Field(field))?;
    Ok(out)
}

fn syntax(error: serde_json::Error) -> DecodeError {
    DecodeError::Syntax {
        line: error.line(),
        column: error.column(),
        message: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    fn snapshot() -> Snapshot {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let code: SetupCode = "111-22-333".parse().unwrap();
        let mut state = AccessoryState::generate(&code, &mut rng);
        for (id, admin) in [(&b"controller-A"[..], true), (&[0xff, 0x00][..], false)] {
            state
                .pairings
                .insert(Pairing {
                    id: PairingId::new(id).unwrap(),
                    public_key: [admin as u8 + 1; 32],
                    admin,
                })
                .unwrap();
        }
        state.failed_attempts = 3;
        let mut ids = IdMap::new();
        ids.aid("bridge");
        let lamp = ids.aid("lamp");
        let light = HapType::Apple(0x43);
        ids.iid(lamp, light, "", None);
        ids.iid(lamp, light, "", Some(HapType::Apple(0x25)));
        ids.iid(
            lamp,
            HapType::from_uuid_bytes([0xAB; 16]),
            "left",
            Some(HapType::from_uuid_bytes([0xCD; 16])),
        );
        Snapshot {
            state,
            setup_code: Some(code),
            setup_id: Some("7OSX".parse().unwrap()),
            config: ConfigNumber {
                number: 7,
                shape: [9; 16],
            },
            ids,
        }
    }

    #[test]
    fn round_trips_every_field() {
        let mut original = snapshot();
        // Whether ids changed is news for the running program, not stored state.
        original.ids.take_changed();
        let bytes = original.encode();
        let text = core::str::from_utf8(&bytes).unwrap();
        assert!(text.contains("\"setup_code\": \"111-22-333\""));
        assert!(text.ends_with("}\n"));
        let decoded = Snapshot::decode(&bytes).unwrap();
        assert_eq!(decoded, original);
        assert_eq!(decoded.encode(), bytes);
    }

    #[test]
    fn damaged_documents_are_refused_with_the_reason() {
        let bytes = snapshot().encode();
        let text = core::str::from_utf8(&bytes).unwrap();
        for cut in [0, 1, bytes.len() / 2, bytes.len() - 3] {
            assert!(
                matches!(
                    Snapshot::decode(&bytes[..cut]),
                    Err(DecodeError::Syntax { .. })
                ),
                "cut at {cut}"
            );
        }
        let swap = |from: &str, to: &str| Snapshot::decode(text.replacen(from, to, 1).as_bytes());
        assert_eq!(
            swap("hap-accessory-store", "other"),
            Err(DecodeError::NotAStore)
        );
        assert_eq!(
            swap("\"version\": 1", "\"version\": 2"),
            Err(DecodeError::Version(2))
        );
        assert_eq!(
            swap(
                "\"setup_code\": \"111-22-333\"",
                "\"setup_code\": \"123-45-678\""
            ),
            Err(DecodeError::Field("setup_code"))
        );
        assert_eq!(
            swap("\"config_number\": 7", "\"config_number\": 0"),
            Err(DecodeError::Field("config_number"))
        );
        assert_eq!(
            swap("\"next_aid\": 3", "\"next_aid\": 2"),
            Err(DecodeError::Field("ids"))
        );
        // Two accessories with one aid.
        assert_eq!(
            swap("\"aid\": 2", "\"aid\": 1"),
            Err(DecodeError::Field("ids"))
        );
        // Two instances with one iid.
        assert_eq!(
            swap("\"iid\": 2", "\"iid\": 1"),
            Err(DecodeError::Field("ids"))
        );
        let seed = hex::encode(snapshot().state.identity.seed());
        assert_eq!(
            swap(&seed, &seed[2..]),
            Err(DecodeError::Field("identity_seed"))
        );
        assert!(matches!(
            swap("\"failed_attempts\": 3", "\"failed_attempts\": 300"),
            Err(DecodeError::Syntax { .. })
        ));
        assert!(matches!(
            swap("\"format\"", "\"extra\": 1, \"format\""),
            Err(DecodeError::Syntax { .. })
        ));
    }
}
