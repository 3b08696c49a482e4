//! What the per-backend store tests share: one macro that gives every conformance check a test
//! of its own (so no backend runs fewer checks than another), and the rule for tests that need
//! a server: under `CI=true` a missing or unreachable server fails the test loudly; elsewhere the
//! test prints why and skips.
#![allow(dead_code)] // each test binary uses part of this

use std::future::Future;

/// Whether this is a CI run (`CI=true`), where a missing server is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The URL in `var`, or `None` (after printing why) when it is not set outside CI.
///
/// # Panics
///
/// Under `CI=true` when `var` is not set.
pub fn service_url(var: &str, what: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ if in_ci() => panic!(
            "{what} is required under CI=true but {var} is not set: .ci/run starts the servers \
             with scripts/test-services.sh"
        ),
        _ => {
            eprintln!(
                "SKIPPED: {var} is not set, so the {what} tests do not run; start the servers \
                 and run them with `scripts/test-services.sh`"
            );
            None
        }
    }
}

/// `connect`'s store, or `None` (after printing why) when the server cannot be reached
/// outside CI.
///
/// # Panics
///
/// Under `CI=true` when `connect` fails.
pub async fn connect_or_skip<T, E: std::fmt::Display>(
    what: &str,
    connect: impl Future<Output = Result<T, E>>,
) -> Option<T> {
    match connect.await {
        Ok(store) => Some(store),
        Err(e) if in_ci() => panic!("{what} is required under CI=true but unreachable: {e}"),
        Err(e) => {
            eprintln!("SKIPPED: {what} is unreachable ({e}); the tests that need it do not run");
            None
        }
    }
}

/// Declares one `#[tokio::test]` per check of `cx_sso::testing::conformance`, each on a store
/// from `$make` (an `async fn() -> Option<Arc<dyn Store>>`; `None` skips), plus `run_all` through
/// `Arc<dyn Store>` and a test that this list is the suite's whole list.
#[allow(unused_macros)] // tests/multi_node.rs uses only the server helpers
macro_rules! store_conformance_tests {
    ($make:ident) => {
        $crate::stores::store_conformance_tests!(@checks $make;
            get_returns_what_insert_wrote,
            keys_are_distinct_exactly,
            insert_does_not_overwrite_a_live_record,
            put_overwrites_with_a_new_version,
            take_returns_the_record_once,
            compare_and_swap_checks_the_version,
            compare_and_delete_checks_the_version,
            delete_reports_whether_a_live_record_was_there,
            versions_never_repeat_for_a_key,
            get_many_answers_each_key_in_order,
            list_selects_by_index_in_key_order,
            list_follows_index_changes,
            list_reads_its_own_writes,
            expired_records_are_absent,
            namespaces_are_isolated,
            concurrent_inserts_have_one_winner,
            concurrent_takes_have_one_winner,
            concurrent_compare_and_swaps_have_one_winner,
            concurrent_compare_and_deletes_have_one_winner,
            concurrent_deletes_have_one_winner,
            concurrent_puts_get_distinct_versions,
        );
    };
    (@checks $make:ident; $($check:ident),* $(,)?) => {
        mod conformance_checks {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $check() {
                    let Some(store) = super::$make().await else { return };
                    cx_sso::testing::conformance::$check(store.as_ref()).await;
                }
            )*

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn run_all_through_arc_dyn_store_twice() {
                let Some(store) = super::$make().await else { return };
                let store: std::sync::Arc<dyn cx_sso::Store> = store;
                cx_sso::testing::conformance::run_all(store.as_ref()).await;
                // Hosts run it against a shared database: runs must not collide.
                cx_sso::testing::conformance::run_all(store.as_ref()).await;
            }

            #[test]
            fn every_check_of_the_suite_has_a_test_here() {
                assert_eq!(
                    [$(stringify!($check)),*].as_slice(),
                    cx_sso::testing::conformance::CHECKS,
                    "the macro's list of checks must be the suite's"
                );
            }
        }
    };
}
#[allow(unused_imports)]
pub(crate) use store_conformance_tests;

/// A path for a new SQLite database that no other test uses, in `dir` under cargo's
/// `target/tmp`. Files left there by runs more than an hour old are removed first, so the
/// directory holds about one run's databases.
pub fn fresh_sqlite_path(tmp: &str, dir: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(tmp).join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > std::time::Duration::from_secs(3600));
            if old {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    dir.join(format!(
        "{}-{:016x}.db",
        std::process::id(),
        rand::random::<u64>()
    ))
}
