//! `cargo run --example quickstart -- --sqlite PATH`: the quickstart on SQLite, and a second run
//! against the same file finds the first run's bindings. The example's own code runs here.

#[path = "../examples/quickstart.rs"]
#[allow(dead_code)] // the example's `main`
mod quickstart;

use quickstart::Storage;

/// A fresh directory for one test's database, removed when dropped.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("cx-sso-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn run(storage: &Storage) -> String {
    let mut out = Vec::new();
    quickstart::run(storage, &mut out).await.unwrap();
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn a_second_run_on_the_same_sqlite_file_finds_the_first_runs_bindings() {
    let dir = TempDir::new("quickstart");
    let path = dir.0.join("quickstart.sqlite");
    let storage = Storage::Sqlite(path.clone());

    let first = run(&storage).await;
    assert!(first.contains("Store: SQLite at"), "{first}");
    assert!(
        first.contains("linked https://accounts.google.com#108234 to ana"),
        "{first}"
    );
    assert!(first.contains("link required for"), "{first}");
    assert!(first.contains("linked to ben"), "{first}");
    assert!(!first.contains("earlier run:"), "{first}");
    assert!(path.exists());
    // The key that seals the client secret is kept beside the database, readable by its owner
    // only.
    let key = std::fs::metadata(dir.0.join("quickstart.sqlite.key")).unwrap();
    #[cfg(unix)]
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key.permissions()) & 0o777,
        0o600
    );
    assert_eq!(key.len(), 44);

    let second = run(&storage).await;
    // Ana's binding is found, not made again, and she signs in at once.
    assert!(
        second
            .contains("found from an earlier run: https://accounts.google.com#108234 bound to ana"),
        "{second}"
    );
    assert!(!second.contains("   linked"), "{second}");
    assert!(second.contains("signed in as ana"), "{second}");
    // Ben is signed in straight away instead of linking again.
    assert!(
        second.contains("bound in an earlier run: signed in as ben straight away"),
        "{second}"
    );
    assert!(!second.contains("link required"), "{second}");
    assert!(second.ends_with("done\n"), "{second}");
}

#[tokio::test]
async fn the_default_run_on_memory_binds_links_and_unbinds_from_scratch() {
    let first = run(&Storage::Memory).await;
    let second = run(&Storage::Memory).await;
    // Nothing outlives a run on the MemoryStore: both runs tell the same story.
    assert_eq!(first, second);
    assert!(!first.contains("Store: SQLite"), "{first}");
    assert!(!first.contains("earlier run"), "{first}");
    assert!(first.contains("linked to ben"), "{first}");
    assert!(first.contains("bindings after: 0"), "{first}");
    assert!(first.contains("signing in again: link required"), "{first}");
}

#[test]
fn the_arguments_choose_the_store() {
    let args = |a: &[&str]| {
        a.iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .into_iter()
    };
    assert!(matches!(Storage::from_args(args(&[])), Ok(Storage::Memory)));
    assert!(matches!(
        Storage::from_args(args(&["--sqlite", "q.db"])),
        Ok(Storage::Sqlite(p)) if p == std::path::Path::new("q.db")
    ));
    for bad in [
        &["--sqlite"][..],
        &["--postgres", "x"],
        &["--sqlite", "a", "b"],
    ] {
        let err = Storage::from_args(args(bad)).err().unwrap();
        assert!(err.contains("--sqlite PATH"), "{err}");
    }
}
