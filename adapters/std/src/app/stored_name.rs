//! The name an mDNS rename chose, kept beside the state so that the next start
//! advertises it (as HAP-NodeJS keeps its renamed displayName).
//!
//! The responders rename as Apple's does, "Virtual Light (2)", but iOS refuses an
//! accessory Name with brackets ([`check_name`]). What is stored, and set as the Name,
//! is the name in the form iOS takes: "Virtual Light 2" ([`accessory_name`]). The next
//! start advertises that, which is as distinct over mDNS as the bracketed form.
//!
//! It is a file of its own, [`FILE_NAME`] in the `--data` directory, holding the name as
//! UTF-8. A save writes a temporary file, syncs it, renames it into place and syncs the
//! directory: after a crash the file holds the old name or the new one.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use hap_core::catalog::name::check_name;
use hap_core::mdns::responder::MAX_LABEL;

/// The file's name inside the `--data` directory.
pub const FILE_NAME: &str = "mdns-name";

fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// The stored name, if there is a usable one: 1 to 63 bytes without line breaks. A file
/// that cannot be read, or holds something else, is logged and ignored.
pub(crate) fn load(dir: &Path) -> Option<String> {
    let file = path(dir);
    let text = match fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
        Err(e) => {
            log::warn!("ignoring {}: {e}", file.display());
            return None;
        }
    };
    let name = text.strip_suffix('\n').unwrap_or(&text);
    if name.is_empty() || name.len() > MAX_LABEL || name.contains(['\n', '\r']) {
        log::warn!(
            "ignoring {}: not a name of 1 to {MAX_LABEL} bytes on one line",
            file.display()
        );
        return None;
    }
    Some(name.to_owned())
}

/// `renamed` (an mDNS instance name such as `Virtual Light (2)`) as an accessory Name
/// iOS accepts: only letters, digits, spaces and apostrophes, single spaces, a letter or
/// digit at each end (`Virtual Light 2`). `None` if nothing usable is left.
pub(crate) fn accessory_name(renamed: &str) -> Option<String> {
    let kept: String = renamed
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '\'' {
                c
            } else {
                ' '
            }
        })
        .collect();
    let words: Vec<&str> = kept.split_whitespace().collect();
    let joined = words.join(" ");
    let name = joined.trim_matches(|c: char| !c.is_alphanumeric());
    check_name(name).ok()?;
    Some(name.to_owned())
}

/// Stores `name`, atomically.
pub(crate) fn save(dir: &Path, name: &str) -> io::Result<()> {
    let file = path(dir);
    let temporary = dir.join(format!("{FILE_NAME}.tmp"));
    {
        let mut out = fs::File::create(&temporary)?;
        out.write_all(name.as_bytes())?;
        out.write_all(b"\n")?;
        out.sync_all()?;
    }
    fs::rename(&temporary, &file)?;
    #[cfg(unix)]
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_name_loads_back_and_replaces_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load(dir.path()), None, "nothing stored yet");
        save(dir.path(), "Virtual Light (2)").unwrap();
        assert_eq!(load(dir.path()).as_deref(), Some("Virtual Light (2)"));
        save(dir.path(), "Virtual Light (3)").unwrap();
        assert_eq!(load(dir.path()).as_deref(), Some("Virtual Light (3)"));
        assert!(!dir.path().join("mdns-name.tmp").exists());
    }

    #[test]
    fn renamed_names_become_names_ios_accepts() {
        for (renamed, name) in [
            ("Virtual Light (2)", Some("Virtual Light 2")),
            ("Tom's Lamp (12)", Some("Tom's Lamp 12")),
            ("Küche #2", Some("Küche 2")),
            ("Light", Some("Light")),
            ("'Quoted' (3)", Some("Quoted' 3")),
            ("(((", None),
        ] {
            assert_eq!(accessory_name(renamed).as_deref(), name, "{renamed:?}");
        }
    }

    #[test]
    fn an_unusable_file_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "\n", "two\nlines\n", &"x".repeat(64)] {
            fs::write(dir.path().join(FILE_NAME), bad).unwrap();
            assert_eq!(load(dir.path()), None, "{bad:?}");
        }
    }
}
