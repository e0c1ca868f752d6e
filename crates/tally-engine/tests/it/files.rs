//! The real file storage leaves nothing half-written behind: a snapshot whose writing fails
//! is removed at once, and one a crash interrupted is removed when the engine opens the
//! directory it then owns (a partial file is never complete, so nothing is lost).

use std::io;
use tally_engine::{Config, Engine, FileStorage, Storage};

fn names(directory: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(directory).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    names
}

#[test]
fn a_failed_atomic_write_leaves_no_partial_file() {
    let directory = tempfile::tempdir().unwrap();
    let mut storage = FileStorage::open(directory.path()).unwrap();
    let failed = storage.write_atomic("snapshot-1.ts", &mut |emit| {
        emit(b"half of it")?;
        Err(io::Error::other("the disk is full"))
    });
    assert_eq!(failed.unwrap_err().to_string(), "the disk is full");
    assert!(names(directory.path()).is_empty(), "{:?}", names(directory.path()));
    storage.write_atomic("snapshot-2.ts", &mut |emit| emit(b"whole")).unwrap();
    assert_eq!(names(directory.path()), ["snapshot-2.ts"]);
}

#[test]
fn partial_files_left_by_a_crash_are_removed_when_the_engine_opens_the_directory() {
    let directory = tempfile::tempdir().unwrap();
    std::fs::write(directory.path().join("snapshot-00000000000000000007.ts.partial"), b"cut short").unwrap();
    FileStorage::open(directory.path()).unwrap();
    assert_eq!(names(directory.path()).len(), 1, "only the owner removes them: a live server may be writing one");
    let (engine, _) = Engine::open(directory.path(), Config { snapshot_on_shutdown: false, ..Config::default() }).unwrap();
    drop(engine);
    assert_eq!(names(directory.path()), ["tally.lock"]);
}
