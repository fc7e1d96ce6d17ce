//! Durable, crash-safe storage for an accessory's [`Snapshot`].
//!
//! [`FileStore`] keeps the snapshot in `accessory.json` inside a directory of its own.
//! A save writes the new document to `accessory.json.tmp` beside it, syncs it, renames
//! it over `accessory.json` and syncs the directory, so that after a crash or power loss
//! at any point the file holds either the old snapshot or the new one, never a mix.
//!
//! A file that cannot be read or decoded is never modified, renamed or deleted: loading
//! reports it, and a later save on the same store refuses to overwrite it, so that a
//! damaged file (and the pairings in it) can still be repaired by hand.
//!
//! [`MemoryStore`] keeps the snapshot in memory, for tests, and can be told to fail.
//!
//! The file store needs the `store` feature (on by default); without it only the
//! [`Store`] trait and [`MemoryStore`] remain, for an application that stores the
//! snapshot its own way.
//!
//! The stores only move bytes: the document format is [`Snapshot::encode`] and
//! [`Snapshot::decode`]'s business.

use std::fmt;
#[cfg(feature = "store")]
use std::fs::{self, OpenOptions};
use std::io;
#[cfg(feature = "store")]
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hap_core::persist::{DecodeError, Snapshot};

/// The name of the stored file inside a [`FileStore`]'s directory.
#[cfg(feature = "store")]
pub const FILE_NAME: &str = "accessory.json";

/// The name of the temporary file a [`FileStore`] writes before renaming it into place.
#[cfg(feature = "store")]
pub const TEMP_FILE_NAME: &str = "accessory.json.tmp";

/// Where an accessory keeps its [`Snapshot`].
pub trait Store: Send {
    /// The stored snapshot, or `None` when nothing has been stored yet (first start).
    fn load(&mut self) -> Result<Option<Snapshot>, StoreError>;

    /// Stores `snapshot` atomically: after a crash at any point, [`Store::load`] gives
    /// the old snapshot or the new one.
    fn save(&mut self, snapshot: &Snapshot) -> Result<(), StoreError>;

    /// Where the data lives, for humans: a path, or `"memory"`.
    fn location(&self) -> String;
}

impl<S: Store + ?Sized> Store for Box<S> {
    fn load(&mut self) -> Result<Option<Snapshot>, StoreError> {
        (**self).load()
    }

    fn save(&mut self, snapshot: &Snapshot) -> Result<(), StoreError> {
        (**self).save(snapshot)
    }

    fn location(&self) -> String {
        (**self).location()
    }
}

/// Why a store could not load or save. Every variant names the file (or directory)
/// concerned.
#[derive(Debug)]
#[non_exhaustive]
pub enum StoreError {
    /// The operating system refused an operation.
    Io {
        /// The file or directory operated on.
        path: PathBuf,
        /// What was being done, as a phrase that reads before the path ("read",
        /// "rename the new file over").
        operation: &'static str,
        /// The operating system's error.
        source: io::Error,
    },
    /// The stored file was read but is not a valid snapshot. It was left untouched.
    Corrupt {
        /// The stored file.
        path: PathBuf,
        /// What is wrong with it.
        error: DecodeError,
    },
    /// A save was refused because the stored file failed to load earlier on this store,
    /// and overwriting it could destroy the pairings it holds.
    RefusedOverwrite {
        /// The stored file.
        path: PathBuf,
        /// Why it failed to load.
        reason: String,
    },
}

impl StoreError {
    /// The file or directory the error is about.
    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. }
            | Self::Corrupt { path, .. }
            | Self::RefusedOverwrite { path, .. } => path,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io {
                path,
                operation,
                source,
            } => write!(f, "could not {operation} {}: {source}", path.display()),
            Self::Corrupt { path, error } => write!(
                f,
                "{} is damaged and was left untouched: {error}",
                path.display()
            ),
            Self::RefusedOverwrite { path, reason } => write!(
                f,
                "refusing to overwrite {}, which could not be loaded ({reason}); \
                 repair it or move it away, then load again",
                path.display()
            ),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Corrupt { error, .. } => Some(error),
            Self::RefusedOverwrite { .. } => None,
        }
    }
}

/// The steps of a [`FileStore`] save, in order; for tests that simulate a crash with
/// [`FileStore::save_until`].
#[cfg(feature = "store")]
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SaveStep {
    /// The temporary file has been created, empty.
    CreateTemp,
    /// The first half of the document has been written to the temporary file.
    WriteHalf,
    /// The whole document has been written to the temporary file.
    WriteTemp,
    /// The temporary file has been synced to disk.
    SyncTemp,
    /// The temporary file has been renamed over the stored file.
    Rename,
    /// The directory has been synced, making the rename durable. The save is complete.
    SyncDir,
}

#[cfg(feature = "store")]
impl SaveStep {
    /// Every step, in order.
    pub const ALL: [SaveStep; 6] = [
        SaveStep::CreateTemp,
        SaveStep::WriteHalf,
        SaveStep::WriteTemp,
        SaveStep::SyncTemp,
        SaveStep::Rename,
        SaveStep::SyncDir,
    ];
}

/// A [`Store`] in a directory of its own, holding [`FILE_NAME`].
///
/// Saving is atomic and durable (see the [module documentation](self)). On unix the
/// directory is created with mode 0700 and the file with mode 0600, since it holds the
/// accessory's secret key.
#[cfg(feature = "store")]
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    file: PathBuf,
    temp: PathBuf,
    /// Why the stored file failed to load, if the last load failed with the file
    /// present: saving would destroy it.
    load_failure: Option<String>,
}

#[cfg(feature = "store")]
impl FileStore {
    /// A store in `dir`, which is created (with its parents) if missing. Nothing is
    /// read until [`Store::load`].
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let dir = dir.into();
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder.create(&dir).map_err(|source| StoreError::Io {
            path: dir.clone(),
            operation: "create the directory",
            source,
        })?;
        Ok(Self {
            file: dir.join(FILE_NAME),
            temp: dir.join(TEMP_FILE_NAME),
            dir,
            load_failure: None,
        })
    }

    /// The directory the store lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The stored file, `dir/accessory.json`.
    pub fn path(&self) -> &Path {
        &self.file
    }

    /// Saves like [`Store::save`] but stops after `stop_after`, leaving the files as a
    /// crash at that point would; for tests.
    #[doc(hidden)]
    pub fn save_until(
        &mut self,
        snapshot: &Snapshot,
        stop_after: SaveStep,
    ) -> Result<(), StoreError> {
        self.save_steps(snapshot, Some(stop_after))
    }

    fn save_steps(
        &mut self,
        snapshot: &Snapshot,
        stop_after: Option<SaveStep>,
    ) -> Result<(), StoreError> {
        if let Some(reason) = &self.load_failure {
            return Err(StoreError::RefusedOverwrite {
                path: self.file.clone(),
                reason: reason.clone(),
            });
        }
        let result = self.write_steps(&snapshot.encode(), stop_after);
        if result.is_err() {
            // Tidy up; a temporary file left behind would be ignored anyway.
            let _ = remove_if_present(&self.temp);
        }
        result
    }

    fn write_steps(&self, bytes: &[u8], stop_after: Option<SaveStep>) -> Result<(), StoreError> {
        write_steps(&self.file, &self.temp, &self.dir, bytes, stop_after)
    }
}

#[cfg(feature = "store")]
impl Store for FileStore {
    fn load(&mut self) -> Result<Option<Snapshot>, StoreError> {
        let bytes = match fs::read(&self.file) {
            Ok(bytes) => bytes,
            Err(source) if source.kind() == io::ErrorKind::NotFound => {
                self.load_failure = None;
                self.remove_leftover();
                return Ok(None);
            }
            Err(source) => {
                self.load_failure = Some(source.to_string());
                return Err(StoreError::Io {
                    path: self.file.clone(),
                    operation: "read",
                    source,
                });
            }
        };
        match Snapshot::decode(&bytes) {
            Ok(snapshot) => {
                self.load_failure = None;
                self.remove_leftover();
                Ok(Some(snapshot))
            }
            Err(error) => {
                self.load_failure = Some(error.to_string());
                Err(StoreError::Corrupt {
                    path: self.file.clone(),
                    error,
                })
            }
        }
    }

    fn save(&mut self, snapshot: &Snapshot) -> Result<(), StoreError> {
        self.save_steps(snapshot, None)
    }

    fn location(&self) -> String {
        self.file.display().to_string()
    }
}

#[cfg(feature = "store")]
impl FileStore {
    /// Removes a temporary file left by an interrupted save. Only called after a
    /// successful load, so that a damaged store is left entirely as it was found.
    fn remove_leftover(&self) {
        if let Err(error) = remove_if_present(&self.temp) {
            log::warn!(
                "could not remove the leftover {}: {error}",
                self.temp.display()
            );
        }
    }
}

/// Replaces the file at `path` with `bytes`, atomically and durably, the way a
/// [`FileStore`] saves: the bytes go to `path` + `.tmp` (created with mode 0600 on unix),
/// which is synced, renamed over `path`, and then the directory is synced. After a crash
/// at any point the file holds either its old contents or the new ones. The directory
/// must exist. On failure the temporary file is removed. One writer at a time: two
/// processes writing the same path at once share the temporary file, so hold a lock
/// around it (as `hapctl` does) when that can happen.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("hap-std-doc-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("pairings.json");
/// hap_std::store::write_atomically(&path, b"{}").unwrap();
/// assert_eq!(std::fs::read(&path).unwrap(), b"{}");
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[cfg(feature = "store")]
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let mut temp_name = path.file_name().unwrap_or_default().to_os_string();
    temp_name.push(".tmp");
    let temp = path.with_file_name(temp_name);
    let dir = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let result = write_steps(path, &temp, dir, bytes, None);
    if result.is_err() {
        let _ = remove_if_present(&temp);
    }
    result
}

/// Writes `bytes` to `temp`, syncs it, renames it over `target` and syncs `dir` (the
/// directory holding both), stopping after `stop_after` if given.
#[cfg(feature = "store")]
fn write_steps(
    target: &Path,
    temp: &Path,
    dir: &Path,
    bytes: &[u8],
    stop_after: Option<SaveStep>,
) -> Result<(), StoreError> {
    let stop = |step: SaveStep| stop_after == Some(step);
    let temp_error = |operation: &'static str| {
        let path = temp.to_path_buf();
        move |source| StoreError::Io {
            path,
            operation,
            source,
        }
    };

    // A leftover from an interrupted save is never the stored state: start afresh,
    // so that the new file gets its mode from `create_new` below.
    remove_if_present(temp).map_err(temp_error("remove the leftover"))?;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut written = options.open(temp).map_err(temp_error("create"))?;
    if stop(SaveStep::CreateTemp) {
        return Ok(());
    }
    let (first, second) = bytes.split_at(bytes.len() / 2);
    written.write_all(first).map_err(temp_error("write"))?;
    if stop(SaveStep::WriteHalf) {
        return Ok(());
    }
    written.write_all(second).map_err(temp_error("write"))?;
    if stop(SaveStep::WriteTemp) {
        return Ok(());
    }
    written.sync_all().map_err(temp_error("sync"))?;
    drop(written);
    if stop(SaveStep::SyncTemp) {
        return Ok(());
    }
    fs::rename(temp, target).map_err(|source| StoreError::Io {
        path: target.to_path_buf(),
        operation: "rename the new file over",
        source,
    })?;
    if stop(SaveStep::Rename) {
        return Ok(());
    }
    sync_dir(dir).map_err(|source| StoreError::Io {
        path: dir.to_path_buf(),
        operation: "sync the directory",
        source,
    })?;
    Ok(())
}

#[cfg(feature = "store")]
fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Makes a rename in `dir` durable.
#[cfg(all(feature = "store", unix))]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

/// Directories cannot be opened as files here; the rename is as durable as the
/// platform makes it.
#[cfg(all(feature = "store", not(unix)))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// A [`Store`] in memory, for tests.
///
/// Clones share the same storage, so a test can keep one clone to inspect what was
/// saved while the accessory owns another.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    inner: Arc<Mutex<MemoryInner>>,
}

#[derive(Debug, Default)]
struct MemoryInner {
    saved: Option<Snapshot>,
    saves: usize,
    fail_next_load: bool,
    fail_next_save: bool,
}

impl MemoryStore {
    /// An empty store: the first load gives `None`.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding `snapshot`, as if saved before.
    pub fn with_snapshot(snapshot: Snapshot) -> Self {
        let store = Self::default();
        store.lock().saved = Some(snapshot);
        store
    }

    /// The snapshot saved last, if any.
    pub fn saved(&self) -> Option<Snapshot> {
        self.lock().saved.clone()
    }

    /// How many saves succeeded.
    pub fn save_count(&self) -> usize {
        self.lock().saves
    }

    /// Makes the next save fail with an I/O error, keeping the stored snapshot.
    pub fn fail_next_save(&self) {
        self.lock().fail_next_save = true;
    }

    /// Makes the next load fail with an I/O error.
    pub fn fail_next_load(&self) {
        self.lock().fail_next_load = true;
    }

    fn lock(&self) -> MutexGuard<'_, MemoryInner> {
        // The data stays consistent even if a holder panicked: every update is a
        // single assignment.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn injected(operation: &'static str) -> StoreError {
    StoreError::Io {
        path: PathBuf::from("memory"),
        operation,
        source: io::Error::other("injected failure"),
    }
}

impl Store for MemoryStore {
    fn load(&mut self) -> Result<Option<Snapshot>, StoreError> {
        let mut inner = self.lock();
        if std::mem::take(&mut inner.fail_next_load) {
            return Err(injected("load from"));
        }
        Ok(inner.saved.clone())
    }

    fn save(&mut self, snapshot: &Snapshot) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if std::mem::take(&mut inner.fail_next_save) {
            return Err(injected("save to"));
        }
        inner.saved = Some(snapshot.clone());
        inner.saves += 1;
        Ok(())
    }

    fn location(&self) -> String {
        "memory".into()
    }
}
