//! The file and memory stores: round trips, first start, damaged and unreadable files,
//! simulated crashes between the steps of a save, failure injection and permissions.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hap_core::catalog::HapType;
use hap_core::database::config::ConfigNumber;
use hap_core::database::ids::IdMap;
use hap_core::pairing::{Pairing, PairingId};
use hap_core::persist::{DecodeError, Snapshot};
use hap_core::setup::SetupCode;
use hap_core::state::AccessoryState;
use hap_std::store::{
    FileStore, MemoryStore, SaveStep, Store, StoreError, FILE_NAME, TEMP_FILE_NAME,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// A snapshot that differs in every part with `seed`.
fn make_snapshot(seed: u8) -> Snapshot {
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(seed));
    let code: SetupCode = "111-22-333".parse().unwrap();
    let mut state = AccessoryState::generate(&code, &mut rng);
    state
        .pairings
        .insert(Pairing {
            id: PairingId::new(format!("controller-{seed}").as_bytes()).unwrap(),
            public_key: [seed; 32],
            admin: true,
        })
        .unwrap();
    state.failed_attempts = seed;
    let mut ids = IdMap::new();
    ids.aid("bridge");
    let lamp = ids.aid(&format!("lamp-{seed}"));
    ids.iid(lamp, HapType::Apple(0x43), "", None);
    ids.iid(lamp, HapType::Apple(0x43), "", Some(HapType::Apple(0x25)));
    // Whether ids changed is not stored, so clear it to compare with what is loaded.
    ids.take_changed();
    Snapshot {
        state,
        setup_code: Some(code),
        setup_id: Some("7OSX".parse().unwrap()),
        config: ConfigNumber {
            number: u16::from(seed) + 1,
            shape: [seed; 16],
        },
        ids,
    }
}

/// Three different snapshots: an old one, a new one, and a newer one.
fn snapshots() -> &'static [Snapshot; 3] {
    static SNAPSHOTS: OnceLock<[Snapshot; 3]> = OnceLock::new();
    SNAPSHOTS.get_or_init(|| [make_snapshot(1), make_snapshot(2), make_snapshot(3)])
}

fn store_dir() -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("accessory");
    (root, dir)
}

fn load_fresh(dir: &Path) -> Result<Option<Snapshot>, StoreError> {
    FileStore::open(dir).unwrap().load()
}

#[test]
fn first_start_loads_nothing() {
    let (_root, dir) = store_dir();
    let mut store = FileStore::open(&dir).unwrap();
    assert!(dir.is_dir());
    assert_eq!(store.path(), dir.join(FILE_NAME));
    assert_eq!(store.dir(), dir);
    assert_eq!(store.location(), dir.join(FILE_NAME).display().to_string());
    assert_eq!(store.load().unwrap(), None);
    // Loading creates nothing.
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn round_trip() {
    let [old, new, _] = snapshots();
    let (_root, dir) = store_dir();
    let mut store = FileStore::open(&dir).unwrap();
    assert_eq!(store.load().unwrap(), None);
    store.save(old).unwrap();
    assert_eq!(store.load().unwrap().as_ref(), Some(old));
    assert_eq!(load_fresh(&dir).unwrap().as_ref(), Some(old));
    assert_eq!(fs::read(dir.join(FILE_NAME)).unwrap(), old.encode());

    store.save(new).unwrap();
    assert_eq!(load_fresh(&dir).unwrap().as_ref(), Some(new));
    assert!(!dir.join(TEMP_FILE_NAME).exists());
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, [FILE_NAME]);
}

#[test]
fn interrupted_save_reads_back_old_or_new() {
    let [old, new, newer] = snapshots();
    for start_with_old in [false, true] {
        for step in SaveStep::ALL {
            let context = format!("starting with old: {start_with_old}, stopped after {step:?}");
            let (_root, dir) = store_dir();
            let before = start_with_old.then(|| old.clone());
            if start_with_old {
                FileStore::open(&dir).unwrap().save(old).unwrap();
            }
            {
                let mut store = FileStore::open(&dir).unwrap();
                assert_eq!(store.load().unwrap(), before, "{context}");
                store.save_until(new, step).unwrap();
                // Dropping the store here is the crash.
            }

            let mut store = FileStore::open(&dir).unwrap();
            let loaded = store
                .load()
                .unwrap_or_else(|error| panic!("{context}: {error}"));
            assert!(
                loaded == before || loaded.as_ref() == Some(new),
                "{context}: neither old nor new"
            );
            let expected = if step >= SaveStep::Rename {
                Some(new.clone())
            } else {
                before.clone()
            };
            assert_eq!(loaded, expected, "{context}");
            let file = dir.join(FILE_NAME);
            match &expected {
                Some(snapshot) => assert_eq!(fs::read(&file).unwrap(), snapshot.encode()),
                None => assert!(!file.exists(), "{context}"),
            }
            // The leftover of the interrupted save is cleaned up by the load.
            assert!(!dir.join(TEMP_FILE_NAME).exists(), "{context}");

            // The store carries on normally.
            store.save(newer).unwrap();
            assert_eq!(load_fresh(&dir).unwrap().as_ref(), Some(newer), "{context}");
            assert!(!dir.join(TEMP_FILE_NAME).exists(), "{context}");
        }
    }
}

#[test]
fn interrupted_save_leftover_does_not_block_the_next_save() {
    let [old, new, _] = snapshots();
    for step in [
        SaveStep::CreateTemp,
        SaveStep::WriteHalf,
        SaveStep::SyncTemp,
    ] {
        let (_root, dir) = store_dir();
        let mut store = FileStore::open(&dir).unwrap();
        store.save(old).unwrap();
        store.save_until(new, step).unwrap();
        assert!(dir.join(TEMP_FILE_NAME).exists());
        // Same store, no load in between: the save replaces the leftover.
        store.save(new).unwrap();
        assert_eq!(load_fresh(&dir).unwrap().as_ref(), Some(new), "{step:?}");
        assert!(!dir.join(TEMP_FILE_NAME).exists());
    }
}

#[test]
fn leftover_temp_file_is_ignored() {
    let [old, _, _] = snapshots();
    let (_root, dir) = store_dir();
    let mut store = FileStore::open(&dir).unwrap();
    fs::write(dir.join(TEMP_FILE_NAME), b"{\"format\": \"hap-acc").unwrap();
    assert_eq!(store.load().unwrap(), None);
    assert!(!dir.join(TEMP_FILE_NAME).exists());

    store.save(old).unwrap();
    fs::write(dir.join(TEMP_FILE_NAME), b"\xff\xfe garbage").unwrap();
    assert_eq!(load_fresh(&dir).unwrap().as_ref(), Some(old));
    assert!(!dir.join(TEMP_FILE_NAME).exists());
}

/// Damaged versions of a valid document, each with a phrase of the reason expected.
fn damaged_documents() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let [old, _, _] = snapshots();
    let bytes = old.encode();
    let text = String::from_utf8(bytes.clone()).unwrap();

    // Flip one bit of a digit of the salt, making it a letter that is not hex.
    let salt_start = text.find("\"salt\": \"").unwrap() + "\"salt\": \"".len();
    let digit = salt_start
        + text[salt_start..]
            .bytes()
            .position(|b| b.is_ascii_digit())
            .unwrap();
    let mut flipped = bytes.clone();
    flipped[digit] ^= 0x40;
    assert!(!flipped[digit].is_ascii_hexdigit());

    vec![
        (
            "garbage",
            vec![0xff, 0x00, 0x13, 0x37, 0xde, 0xad, 0xbe, 0xef],
            "not valid JSON",
        ),
        ("empty", Vec::new(), "not valid JSON"),
        (
            "truncated",
            bytes[..bytes.len() / 2].to_vec(),
            "not valid JSON",
        ),
        ("flipped hex digit", flipped, "\"salt\""),
        (
            "wrong version",
            text.replacen("\"version\": 1", "\"version\": 7", 1)
                .into_bytes(),
            "version 7",
        ),
        (
            "another format",
            text.replacen("hap-accessory-store", "something-else", 1)
                .into_bytes(),
            "not an accessory store",
        ),
    ]
}

#[test]
fn damaged_file_is_reported_and_never_touched() {
    let [_, new, _] = snapshots();
    for (name, bytes, reason) in damaged_documents() {
        let (_root, dir) = store_dir();
        let mut store = FileStore::open(&dir).unwrap();
        let file = dir.join(FILE_NAME);
        fs::write(&file, &bytes).unwrap();
        // A leftover beside a damaged file is kept too, for whoever repairs it.
        fs::write(dir.join(TEMP_FILE_NAME), b"leftover").unwrap();

        let error = store.load().unwrap_err();
        let message = error.to_string();
        assert!(
            matches!(&error, StoreError::Corrupt { path, .. } if *path == file),
            "{name}: {error:?}"
        );
        assert_eq!(error.path(), file);
        assert!(
            message.contains(&file.display().to_string()),
            "{name}: {message}"
        );
        assert!(message.contains(reason), "{name}: {message}");
        assert!(std::error::Error::source(&error).is_some());
        assert_eq!(fs::read(&file).unwrap(), bytes, "{name}");

        // Saving would destroy the file: refused, naming it.
        let refused = store.save(new).unwrap_err();
        assert!(
            matches!(&refused, StoreError::RefusedOverwrite { path, .. } if *path == file),
            "{name}: {refused:?}"
        );
        let message = refused.to_string();
        assert!(
            message.contains(&file.display().to_string()),
            "{name}: {message}"
        );
        assert!(message.contains(reason), "{name}: {message}");
        assert_eq!(fs::read(&file).unwrap(), bytes, "{name}");
        assert_eq!(
            fs::read(dir.join(TEMP_FILE_NAME)).unwrap(),
            b"leftover",
            "{name}"
        );

        // Loading again gives the same answer, and still changes nothing.
        assert!(matches!(store.load(), Err(StoreError::Corrupt { .. })));
        assert!(store.save(new).is_err());
        assert_eq!(fs::read(&file).unwrap(), bytes, "{name}");
        // The reason is the decoder's.
        if let StoreError::Corrupt { error, .. } = load_fresh(&dir).unwrap_err() {
            assert_eq!(Snapshot::decode(&bytes), Err(error));
        }
    }
}

#[test]
fn damaged_file_moved_away_can_be_replaced() {
    let [old, new, _] = snapshots();
    let (_root, dir) = store_dir();
    let mut store = FileStore::open(&dir).unwrap();
    let file = dir.join(FILE_NAME);
    fs::write(&file, b"not json").unwrap();
    assert!(store.load().is_err());
    assert!(store.save(new).is_err());

    // Repaired by hand: loads, and saves are allowed again.
    fs::write(&file, old.encode()).unwrap();
    assert_eq!(store.load().unwrap().as_ref(), Some(old));
    store.save(new).unwrap();
    assert_eq!(load_fresh(&dir).unwrap().as_ref(), Some(new));

    // Moved away: a first start.
    fs::write(&file, b"not json").unwrap();
    assert!(store.load().is_err());
    fs::rename(&file, dir.join("accessory.json.broken")).unwrap();
    assert_eq!(store.load().unwrap(), None);
    store.save(old).unwrap();
    assert_eq!(load_fresh(&dir).unwrap().as_ref(), Some(old));
}

#[test]
fn unreadable_file_is_an_io_error_naming_it() {
    let [_, new, _] = snapshots();
    let (_root, dir) = store_dir();
    let mut store = FileStore::open(&dir).unwrap();
    let file = dir.join(FILE_NAME);
    fs::create_dir(&file).unwrap();
    fs::write(file.join("inside"), b"keep me").unwrap();

    let error = store.load().unwrap_err();
    assert!(
        matches!(&error, StoreError::Io { path, operation: "read", .. } if *path == file),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.contains(&file.display().to_string()), "{message}");
    assert!(std::error::Error::source(&error).is_some());

    let refused = store.save(new).unwrap_err();
    assert!(
        matches!(&refused, StoreError::RefusedOverwrite { path, .. } if *path == file),
        "{refused:?}"
    );
    assert!(file.is_dir());
    assert_eq!(fs::read(file.join("inside")).unwrap(), b"keep me");
}

#[test]
fn failed_save_names_the_file_and_keeps_the_old_state() {
    let [old, new, _] = snapshots();
    let (_root, dir) = store_dir();
    let mut store = FileStore::open(&dir).unwrap();
    store.save(old).unwrap();
    // A directory where the temporary file goes makes the save fail.
    let temp = dir.join(TEMP_FILE_NAME);
    fs::create_dir(&temp).unwrap();

    let error = store.save(new).unwrap_err();
    assert!(
        matches!(&error, StoreError::Io { path, .. } if *path == temp),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&temp.display().to_string()),
        "{error}"
    );
    assert_eq!(load_fresh(&dir).unwrap().as_ref(), Some(old));
}

#[test]
fn open_fails_naming_the_directory() {
    let root = tempfile::tempdir().unwrap();
    let blocker = root.path().join("file");
    fs::write(&blocker, b"").unwrap();
    let dir = blocker.join("accessory");
    let error = FileStore::open(&dir).unwrap_err();
    assert_eq!(error.path(), dir);
    assert!(error.to_string().contains(&dir.display().to_string()));
}

#[cfg(unix)]
#[test]
fn files_are_private() {
    use std::os::unix::fs::PermissionsExt;

    let [old, new, _] = snapshots();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("deep").join("accessory");
    let mut store = FileStore::open(&dir).unwrap();
    let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);

    store.save(old).unwrap();
    assert_eq!(mode(&dir.join(FILE_NAME)), 0o600);

    // Even over a world-readable leftover, the new file is private.
    let temp = dir.join(TEMP_FILE_NAME);
    fs::write(&temp, b"leftover").unwrap();
    fs::set_permissions(&temp, fs::Permissions::from_mode(0o644)).unwrap();
    store.save(new).unwrap();
    assert_eq!(mode(&dir.join(FILE_NAME)), 0o600);

    // An interrupted save's temporary file is private from the start.
    store.save_until(old, SaveStep::WriteHalf).unwrap();
    assert_eq!(mode(&temp), 0o600);
}

#[test]
fn memory_store_round_trip() {
    let [old, new, _] = snapshots();
    let mut store = MemoryStore::default();
    assert_eq!(store.location(), "memory");
    assert_eq!(store.load().unwrap(), None);
    assert_eq!(store.saved(), None);
    store.save(old).unwrap();
    assert_eq!(store.load().unwrap().as_ref(), Some(old));

    // Clones share the storage, so a test can watch a store it handed over.
    let watcher = store.clone();
    let mut boxed: Box<dyn Store> = Box::new(store);
    boxed.save(new).unwrap();
    assert_eq!(watcher.saved().as_ref(), Some(new));
    assert_eq!(watcher.save_count(), 2);
    assert_eq!(boxed.location(), "memory");

    let mut restored = MemoryStore::with_snapshot(old.clone());
    assert_eq!(restored.load().unwrap().as_ref(), Some(old));
    assert_eq!(restored.save_count(), 0);
}

#[test]
fn memory_store_failure_injection() {
    let [old, new, _] = snapshots();
    let mut store = MemoryStore::new();
    store.save(old).unwrap();

    store.fail_next_save();
    let error = store.save(new).unwrap_err();
    assert!(matches!(error, StoreError::Io { .. }), "{error:?}");
    assert!(error.to_string().contains("memory"), "{error}");
    assert_eq!(store.saved().as_ref(), Some(old));
    assert_eq!(store.save_count(), 1);
    // Only the next save fails.
    store.save(new).unwrap();
    assert_eq!(store.saved().as_ref(), Some(new));

    store.fail_next_load();
    assert!(store.load().is_err());
    assert_eq!(store.load().unwrap().as_ref(), Some(new));
}

#[test]
fn decode_errors_are_the_source_of_corrupt() {
    let error = StoreError::Corrupt {
        path: PathBuf::from("/somewhere/accessory.json"),
        error: DecodeError::Version(9),
    };
    let source = std::error::Error::source(&error).unwrap();
    assert_eq!(source.to_string(), DecodeError::Version(9).to_string());
    assert!(error.to_string().starts_with("/somewhere/accessory.json"));
}

#[test]
fn write_atomically_replaces_the_file_and_leaves_no_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pairings.json");
    hap_std::store::write_atomically(&path, b"first").unwrap();
    hap_std::store::write_atomically(&path, b"second, longer").unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"second, longer");
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert_eq!(names, ["pairings.json"]);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[test]
fn write_atomically_into_a_missing_directory_names_the_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("pairings.json");
    let error = hap_std::store::write_atomically(&path, b"x").unwrap_err();
    assert_eq!(error.path(), dir.path().join("missing/pairings.json.tmp"));
    assert!(!path.exists());
}
