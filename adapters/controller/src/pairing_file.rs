//! The pairing file: this controller's identity and the accessories it paired with.
//!
//! ```json
//! {
//!   "version": 1,
//!   "controller": {"id": "<upper-case uuid v4>", "ltsk": "<hex, 32 bytes>", "ltpk": "<hex>"},
//!   "accessories": {
//!     "Virtual Light": {"id": "4E:A1:5C:00:00:01", "ltpk": "<hex>", "address": "127.0.0.1",
//!                       "port": 51826, "name": "Virtual Light", "config_number": 1}
//!   }
//! }
//! ```
//!
//! One controller identity per file, created on first use. The file is replaced
//! atomically ([`hap_std::store::write_atomically`]) with mode 0600, in a directory
//! created with mode 0700, since it holds the controller's secret key.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use hap_core::crypto::Ed25519KeyPair;
use hap_core::pairing::{AccessoryPairing, ControllerIdentity, PairingId};
use rand_core::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};

use crate::{from_hex, to_hex};

/// The format version this crate writes and reads.
pub const VERSION: u32 = 1;

/// The file's name inside its directory.
pub const FILE_NAME: &str = "pairings.json";

/// Where the pairing file lives when `--file` is not given, from the environment `env`
/// reads: `$HAPCTL_FILE`; else `$XDG_CONFIG_HOME/hapctl/pairings.json` if that variable
/// is an absolute path (the XDG rule: a relative one is ignored); else
/// `$HOME/.config/hapctl/pairings.json` (on macOS `$HOME/Library/Application
/// Support/hapctl/pairings.json`). `None` when none of them is set.
pub fn default_path(env: impl Fn(&str) -> Option<OsString>) -> Option<PathBuf> {
    let set = |name: &str| env(name).filter(|value| !value.is_empty());
    if let Some(file) = set("HAPCTL_FILE") {
        return Some(PathBuf::from(file));
    }
    if !cfg!(target_os = "macos") {
        if let Some(config) = set("XDG_CONFIG_HOME").map(PathBuf::from) {
            if config.is_absolute() {
                return Some(config.join("hapctl").join(FILE_NAME));
            }
        }
    }
    let home = PathBuf::from(set("HOME")?);
    let config = if cfg!(target_os = "macos") {
        home.join("Library").join("Application Support")
    } else {
        home.join(".config")
    };
    Some(config.join("hapctl").join(FILE_NAME))
}

/// Why the pairing file could not be used. Every variant names the file.
#[derive(Debug)]
#[non_exhaustive]
pub enum FileError {
    /// Reading it failed.
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// It is not a pairing file of this version.
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Creating its directory failed.
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Locking it against other hapctl runs failed.
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Writing it failed.
    Write(hap_std::store::StoreError),
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::Read { path, source } => {
                write!(
                    f,
                    "cannot read the pairing file {}: {source}",
                    path.display()
                )
            }
            FileError::Corrupt { path, reason } => write!(
                f,
                "the pairing file {} is damaged ({reason}); repair it or move it away",
                path.display()
            ),
            FileError::CreateDir { path, source } => {
                write!(
                    f,
                    "cannot create the directory {}: {source}",
                    path.display()
                )
            }
            FileError::Lock { path, source } => {
                write!(f, "cannot lock {}: {source}", path.display())
            }
            FileError::Write(error) => write!(f, "cannot save the pairing file: {error}"),
        }
    }
}

impl std::error::Error for FileError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FileError::Read { source, .. }
            | FileError::CreateDir { source, .. }
            | FileError::Lock { source, .. } => Some(source),
            FileError::Write(error) => Some(error),
            FileError::Corrupt { .. } => None,
        }
    }
}

/// The controller's identity as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredController {
    /// The pairing id, an upper-case UUID.
    pub id: String,
    /// The Ed25519 secret key (seed), hex.
    pub ltsk: String,
    /// The Ed25519 public key, hex.
    pub ltpk: String,
}

/// A paired accessory as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAccessory {
    /// Its pairing id (device id, `AA:BB:CC:DD:EE:FF`).
    pub id: String,
    /// Its Ed25519 long-term public key, hex.
    pub ltpk: String,
    /// The address it was last reached at.
    pub address: String,
    /// Its port.
    pub port: u16,
    /// Its mDNS instance name, if it was discovered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its configuration number (`c#`), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_number: Option<u32>,
}

impl StoredAccessory {
    /// The pairing pair-verify needs.
    pub fn pairing(&self) -> Option<AccessoryPairing> {
        Some(AccessoryPairing {
            id: PairingId::new(self.id.as_bytes())?,
            public_key: from_hex(&self.ltpk)?.try_into().ok()?,
        })
    }
}

/// The whole file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contents {
    /// The format version, [`VERSION`].
    pub version: u32,
    /// This controller, once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controller: Option<StoredController>,
    /// The paired accessories by alias.
    #[serde(default)]
    pub accessories: BTreeMap<String, StoredAccessory>,
}

/// The pairing file at a path, loaded.
#[derive(Clone, Debug)]
pub struct PairingFile {
    path: PathBuf,
    /// What it holds.
    pub contents: Contents,
}

impl PairingFile {
    /// Loads the file at `path`; a missing file is an empty one (nothing is created until
    /// [`PairingFile::update`]).
    pub fn load(path: impl Into<PathBuf>) -> Result<Self, FileError> {
        let path = path.into();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Ok(Self {
                    path,
                    contents: Contents {
                        version: VERSION,
                        ..Contents::default()
                    },
                })
            }
            Err(source) => return Err(FileError::Read { path, source }),
        };
        let corrupt = |reason: String| FileError::Corrupt {
            path: path.clone(),
            reason,
        };
        let contents: Contents =
            serde_json::from_slice(&bytes).map_err(|error| corrupt(error.to_string()))?;
        if contents.version != VERSION {
            return Err(corrupt(format!(
                "version {} where {VERSION} was expected",
                contents.version
            )));
        }
        if let Some(controller) = &contents.controller {
            identity_of(controller).map_err(|reason| corrupt(reason.into()))?;
        }
        for (alias, accessory) in &contents.accessories {
            if accessory.pairing().is_none() {
                return Err(corrupt(format!("accessory {alias:?} has a bad id or ltpk")));
            }
        }
        Ok(Self { path, contents })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Changes the file: under an exclusive lock (a `.lock` file beside it), reads what
    /// is there now, since another hapctl may have written it after this one loaded,
    /// applies `change`, and writes the result atomically with the accessory's
    /// crash-safe store. The directory is created (mode 0700) if needed.
    pub fn update<T>(&mut self, change: impl FnOnce(&mut Contents) -> T) -> Result<T, FileError> {
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                let mut builder = std::fs::DirBuilder::new();
                builder.recursive(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::DirBuilderExt;
                    builder.mode(0o700);
                }
                builder.create(dir).map_err(|source| FileError::CreateDir {
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
        }
        let mut lock_path = self.path.clone().into_os_string();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        let mut options = std::fs::OpenOptions::new();
        options.create(true).truncate(false).write(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let lock = options
            .open(&lock_path)
            .and_then(|file| file.lock().map(|()| file))
            .map_err(|source| FileError::Lock {
                path: lock_path,
                source,
            })?;
        let mut current = Self::load(&self.path)?;
        let result = change(&mut current.contents);
        let mut text = serde_json::to_vec_pretty(&current.contents)
            .map_err(|error| FileError::Write(io_store_error(&self.path, error.into())))?;
        text.push(b'\n');
        hap_std::store::write_atomically(&self.path, &text).map_err(FileError::Write)?;
        drop(lock);
        self.contents = current.contents;
        Ok(result)
    }

    /// This controller's identity, if the file has one.
    pub fn identity(&self) -> Option<ControllerIdentity> {
        // Checked when loaded or created.
        identity_of(self.contents.controller.as_ref()?).ok()
    }

    /// This controller's identity, created (with a new UUID and key from `rng`) and
    /// saved if the file has none. Saved before it is used, so that an accessory is never
    /// paired to keys that were not kept, and shared by hapctl runs that start at once.
    pub fn identity_or_create<R: RngCore + CryptoRng>(
        &mut self,
        rng: &mut R,
    ) -> Result<ControllerIdentity, FileError> {
        if let Some(identity) = self.identity() {
            return Ok(identity);
        }
        let keys = Ed25519KeyPair::generate(rng);
        let mut uuid = [0u8; 16];
        rng.fill_bytes(&mut uuid);
        let created = StoredController {
            id: uuid_v4(uuid),
            ltsk: to_hex(&keys.seed()),
            ltpk: to_hex(&keys.public_key()),
        };
        self.update(|contents| {
            contents.controller.get_or_insert(created);
        })?;
        // Checked when loaded, or just made.
        self.identity().ok_or_else(|| FileError::Corrupt {
            path: self.path.clone(),
            reason: "no controller identity after saving one".into(),
        })
    }

    /// The alias and entry for `key`: an alias, or else an accessory id (either case).
    pub fn find(&self, key: &str) -> Option<(&str, &StoredAccessory)> {
        if let Some((alias, accessory)) = self.contents.accessories.get_key_value(key) {
            return Some((alias, accessory));
        }
        self.contents
            .accessories
            .iter()
            .find(|(_, accessory)| accessory.id.eq_ignore_ascii_case(key))
            .map(|(alias, accessory)| (alias.as_str(), accessory))
    }

    /// The aliases, for messages.
    pub fn aliases(&self) -> Vec<&str> {
        self.contents
            .accessories
            .keys()
            .map(String::as_str)
            .collect()
    }
}

fn io_store_error(path: &Path, source: io::Error) -> hap_std::store::StoreError {
    hap_std::store::StoreError::Io {
        path: path.to_path_buf(),
        operation: "encode",
        source,
    }
}

fn identity_of(stored: &StoredController) -> Result<ControllerIdentity, &'static str> {
    let id = PairingId::new(stored.id.as_bytes()).ok_or("the controller id is not a pairing id")?;
    let seed: [u8; 32] = from_hex(&stored.ltsk)
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or("the controller ltsk is not 32 bytes of hex")?;
    let keys = Ed25519KeyPair::from_seed(&seed);
    if from_hex(&stored.ltpk).as_deref() != Some(&keys.public_key()[..]) {
        return Err("the controller ltpk does not match its ltsk");
    }
    Ok(ControllerIdentity { id, keys })
}

/// A version 4 UUID from 16 random bytes, upper case as iOS writes them.
fn uuid_v4(mut bytes: [u8; 16]) -> String {
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = to_hex(&bytes).to_ascii_uppercase();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| OsString::from(value))
        }
    }

    #[test]
    fn the_path_follows_the_environment() {
        assert_eq!(
            default_path(env(&[("HAPCTL_FILE", "p.json"), ("HOME", "/h")])),
            Some(PathBuf::from("p.json"))
        );
        let home = if cfg!(target_os = "macos") {
            "/h/Library/Application Support/hapctl/pairings.json"
        } else {
            "/h/.config/hapctl/pairings.json"
        };
        assert_eq!(
            default_path(env(&[("HOME", "/h")])),
            Some(PathBuf::from(home))
        );
        // A relative XDG_CONFIG_HOME is ignored, as the XDG spec says.
        assert_eq!(
            default_path(env(&[("XDG_CONFIG_HOME", "rel"), ("HOME", "/h")])),
            Some(PathBuf::from(home))
        );
        if !cfg!(target_os = "macos") {
            assert_eq!(
                default_path(env(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")])),
                Some(PathBuf::from("/x/hapctl/pairings.json"))
            );
        }
        assert_eq!(default_path(env(&[("HOME", "")])), None);
    }

    #[test]
    fn a_missing_file_is_empty_and_saving_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new").join(FILE_NAME);
        let mut file = PairingFile::load(&path).unwrap();
        assert!(file.identity().is_none());
        let identity = file.identity_or_create(&mut OsRng).unwrap();
        let id = std::str::from_utf8(identity.id.as_bytes())
            .unwrap()
            .to_string();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        file.update(|contents| {
            contents.accessories.insert(
                "light".into(),
                StoredAccessory {
                    id: "4E:A1:5C:00:00:01".into(),
                    ltpk: to_hex(&[7; 32]),
                    address: "127.0.0.1".into(),
                    port: 51826,
                    name: Some("Virtual Light".into()),
                    config_number: Some(2),
                },
            )
        })
        .unwrap();
        let again = PairingFile::load(&path).unwrap();
        assert_eq!(again.contents, file.contents);
        assert_eq!(again.identity().unwrap().keys.seed(), identity.keys.seed());
        assert_eq!(again.find("4e:a1:5c:00:00:01").unwrap().0, "light");
        assert!(again.find("other").is_none());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(path.parent().unwrap()), 0o700);
        }
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        for text in [
            "not json",
            r#"{"version":2,"accessories":{}}"#,
            r#"{"version":1,"controller":{"id":"x","ltsk":"00","ltpk":"00"},"accessories":{}}"#,
            r#"{"version":1,"accessories":{"a":{"id":"x","ltpk":"zz","address":"h","port":1}}}"#,
        ] {
            std::fs::write(&path, text).unwrap();
            let error = PairingFile::load(&path).unwrap_err();
            assert!(matches!(error, FileError::Corrupt { .. }), "{error:?}");
            assert!(
                error.to_string().contains(&path.display().to_string()),
                "{error}"
            );
        }
    }

    #[test]
    fn runs_that_change_the_file_at_once_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d").join(FILE_NAME);
        let identities: Vec<_> = std::thread::scope(|scope| {
            let runs: Vec<_> = (0..4)
                .map(|run| {
                    let path = path.clone();
                    scope.spawn(move || {
                        // Each loaded before any other wrote, as concurrent runs do.
                        let mut file = PairingFile::load(&path).unwrap();
                        let identity = file.identity_or_create(&mut OsRng).unwrap();
                        for n in 0..10 {
                            file.update(|contents| {
                                contents.accessories.insert(
                                    format!("light {run}.{n}"),
                                    StoredAccessory {
                                        id: format!("4E:A1:5C:00:0{run}:{n:02}"),
                                        ltpk: to_hex(&[7; 32]),
                                        address: "127.0.0.1".into(),
                                        port: 51826,
                                        name: None,
                                        config_number: None,
                                    },
                                )
                            })
                            .unwrap();
                        }
                        identity.keys.seed()
                    })
                })
                .collect();
            runs.into_iter().map(|run| run.join().unwrap()).collect()
        });
        let file = PairingFile::load(&path).unwrap();
        assert_eq!(file.contents.accessories.len(), 40);
        // One identity, shared by every run.
        let kept = file.identity().unwrap().keys.seed();
        assert!(identities.iter().all(|seed| *seed == kept));
    }
}
