//! Finding the examples that `cargo test` built.

use std::path::{Path, PathBuf};

/// The example binary, next to this test's own executable.
pub(crate) fn path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    // target/<profile>/deps/<test> -> target/<profile>/examples/<name>
    let path = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("examples").join(name))
        .expect("a target directory");
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace` (or `cargo build --examples`) first",
        path.display()
    );
    path
}
