//! The [`Store`] conformance suite: every backend in this crate passes it; run it against yours.
//!
//! Each check is a plain `pub async fn` taking `&dyn Store`, so it runs on any async runtime and
//! through `Arc<dyn Store>` or `Box<dyn Store>` alike. A check panics with a message naming the
//! check, the operation and what was expected when the store breaks the
//! [contract](crate::store#contract); [`run_all`] runs every check, one after another.
//!
//! # Running it against your store
//!
//! Call [`run_all`] from one of your tests, with your store connected to a test database:
//!
//! ```
//! use cx_sso::testing::conformance;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! // Your own store here, e.g. `MyStore::connect(&test_database_url).await?`.
//! let store = cx_sso::MemoryStore::new();
//! conformance::run_all(&store).await;
//!
//! // Through the type the broker holds, too:
//! let shared: std::sync::Arc<dyn cx_sso::Store> = std::sync::Arc::new(store);
//! conformance::run_all(shared.as_ref()).await;
//! # });
//! ```
//!
//! In a real test that is `#[tokio::test] async fn my_store_conforms() { ... }`; any runtime that
//! your store works on will do, the suite spawns nothing.
//!
//! # What the suite assumes
//!
//! - **A shared database is fine.** Every check writes under its own namespace,
//!   `cxsso_conformance_<check>_<random>`, so checks never see each other's records and the
//!   suite can run many times against one database. Records it leaves behind either expire
//!   (about a minute after the run) or stay under those namespaces; clear them as you see fit.
//! - **Time.** The suite passes `now` values near the real clock (truncated to whole seconds,
//!   so a backend storing milliseconds or microseconds round-trips `expires_at` exactly) and
//!   tests expiry by passing a later `now`, never by sleeping. A backend that also sets native
//!   TTLs (Redis) sees only expiries in the future of the real clock.
//! - **Key order** in [`Store::list`] is Rust's `str` order: the byte order of the UTF-8
//!   encoding (in Postgres, `COLLATE "C"`; in MySQL, a binary collation). Keys are compared
//!   exactly: case, trailing spaces, `|`, `%` and non-ASCII characters all matter.
//! - **Concurrency** is tested by polling many operations of one store together in one task
//!   (32 at a time): a store whose operations do I/O runs them interleaved at the database,
//!   which is where a read-then-write race shows. A store that completes every operation
//!   without yielding (like [`MemoryStore`](crate::MemoryStore)) runs them back to back here;
//!   race those from several threads in your own tests as well.

use std::collections::BTreeSet;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

use time::{Duration, OffsetDateTime};

use crate::store::{CasOutcome, DeleteOutcome, Inserted, NewRecord, Record, Store, StoreError};

/// How many operations the concurrency checks run at once.
const RACERS: usize = 32;

/// The name of every check, in the order [`run_all`] runs them. A backend's test file that
/// gives each check a test of its own can compare its list with this one, so that no backend
/// runs fewer checks than another.
pub const CHECKS: &[&str] = &[
    "get_returns_what_insert_wrote",
    "keys_are_distinct_exactly",
    "insert_does_not_overwrite_a_live_record",
    "put_overwrites_with_a_new_version",
    "take_returns_the_record_once",
    "compare_and_swap_checks_the_version",
    "compare_and_delete_checks_the_version",
    "delete_reports_whether_a_live_record_was_there",
    "versions_never_repeat_for_a_key",
    "get_many_answers_each_key_in_order",
    "list_selects_by_index_in_key_order",
    "list_follows_index_changes",
    "list_reads_its_own_writes",
    "expired_records_are_absent",
    "namespaces_are_isolated",
    "concurrent_inserts_have_one_winner",
    "concurrent_takes_have_one_winner",
    "concurrent_compare_and_swaps_have_one_winner",
    "concurrent_compare_and_deletes_have_one_winner",
    "concurrent_deletes_have_one_winner",
    "concurrent_puts_get_distinct_versions",
];

/// Runs every check of the suite against `store`, one after another (the order of [`CHECKS`]).
///
/// # Panics
///
/// When `store` breaks the contract, with a message saying which check failed and how; and
/// when a store operation returns an error.
pub async fn run_all(store: &dyn Store) {
    get_returns_what_insert_wrote(store).await;
    keys_are_distinct_exactly(store).await;
    insert_does_not_overwrite_a_live_record(store).await;
    put_overwrites_with_a_new_version(store).await;
    take_returns_the_record_once(store).await;
    compare_and_swap_checks_the_version(store).await;
    compare_and_delete_checks_the_version(store).await;
    delete_reports_whether_a_live_record_was_there(store).await;
    versions_never_repeat_for_a_key(store).await;
    get_many_answers_each_key_in_order(store).await;
    list_selects_by_index_in_key_order(store).await;
    list_follows_index_changes(store).await;
    list_reads_its_own_writes(store).await;
    expired_records_are_absent(store).await;
    namespaces_are_isolated(store).await;
    concurrent_inserts_have_one_winner(store).await;
    concurrent_takes_have_one_winner(store).await;
    concurrent_compare_and_swaps_have_one_winner(store).await;
    concurrent_compare_and_deletes_have_one_winner(store).await;
    concurrent_deletes_have_one_winner(store).await;
    concurrent_puts_get_distinct_versions(store).await;
}

/// `get` of a missing key is `None`; `insert` writes a record at a version of at least 1 and
/// answers that version, and `get` returns exactly what was written: arbitrary bytes (not
/// UTF-8, empty, 64 KiB), the expiry and the index.
pub async fn get_returns_what_insert_wrote(store: &dyn Store) {
    let c = Check::new(store, "get_returns_what_insert_wrote");
    let ns = c.namespace("");
    let now = base_now();

    assert_eq!(
        c.get(&ns, "missing", now).await,
        None,
        "{c}: get of a missing key"
    );

    let value = vec![0x00, 0xff, 0xfe, 0x80, b'|', b'%', 0xc3, 0x28, 0x00];
    let rec = NewRecord::new(value.clone())
        .expires_at(now + Duration::hours(1))
        .index("idx|1");
    let Inserted::Yes { version: written } = c.insert(&ns, "k", rec.clone(), now).await else {
        panic!("{c}: first insert must answer Inserted::Yes");
    };
    let v = c
        .expect_record(
            &ns,
            "k",
            &rec,
            now,
            "get after insert must return the bytes, expiry and index written",
        )
        .await;
    assert!(v >= 1, "{c}: versions start at 1, got {v}");
    assert_eq!(
        written, v,
        "{c}: insert must answer the version it wrote, the one get then reads"
    );

    let empty = NewRecord::new(Vec::new());
    assert!(
        matches!(
            c.insert(&ns, "empty", empty.clone(), now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert"
    );
    c.expect_record(
        &ns,
        "empty",
        &empty,
        now,
        "an empty value with no expiry and no index must round-trip",
    )
    .await;

    let big: Vec<u8> = (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let big = NewRecord::new(big);
    assert!(
        matches!(
            c.insert(&ns, "big", big.clone(), now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert"
    );
    let got = c.get(&ns, "big", now).await;
    assert!(
        got.as_ref().is_some_and(|r| r.value == big.value),
        "{c}: a 64 KiB binary value must round-trip byte for byte"
    );
}

/// Keys are compared exactly: `|`, `%`, case, trailing spaces and non-ASCII characters all make
/// distinct keys, and none of them is escaped into another.
pub async fn keys_are_distinct_exactly(store: &dyn Store) {
    let c = Check::new(store, "keys_are_distinct_exactly");
    let ns = c.namespace("");
    let now = base_now();
    let keys = [
        "a|b",
        "a%7Cb",
        "a%7cb",
        "a",
        "a|",
        "|a",
        "100%",
        "%",
        "%%",
        "Key",
        "key",
        "key ",
        " key",
        "ключ",
        "clé",
        "cle\u{301}",
        "🔑",
        "a\tb",
        "a_b",
        "a.b",
        "a:b",
        "a/b",
        "a*",
        "a?",
        "[a]",
        "a\\b",
        "",
    ];
    for key in keys {
        let rec = NewRecord::new(key.as_bytes().to_vec());
        assert!(
            matches!(c.insert(&ns, key, rec, now).await, Inserted::Yes { .. }),
            "{c}: insert of {key:?} must succeed: it is distinct from every key written before"
        );
    }
    for key in keys {
        let got = c.get(&ns, key, now).await;
        assert_eq!(
            got.as_ref().map(|r| r.value.as_slice()),
            Some(key.as_bytes()),
            "{c}: get({key:?}) must return the record written under exactly that key"
        );
    }
}

/// `insert` over a live record writes nothing and answers [`Inserted::No`].
pub async fn insert_does_not_overwrite_a_live_record(store: &dyn Store) {
    let c = Check::new(store, "insert_does_not_overwrite_a_live_record");
    let ns = c.namespace("");
    let now = base_now();
    let first = NewRecord::new(b"first".to_vec()).index("a");
    assert!(
        matches!(
            c.insert(&ns, "k", first.clone(), now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert"
    );
    let v = c.version(&ns, "k", now).await;
    let second = NewRecord::new(b"second".to_vec())
        .index("b")
        .expires_at(now + Duration::minutes(1));
    assert_eq!(
        c.insert(&ns, "k", second, now).await,
        Inserted::No,
        "{c}: insert over a live record must answer Inserted::No"
    );
    assert_eq!(
        c.get(&ns, "k", now).await,
        Some(first.into_record(v)),
        "{c}: a refused insert must change nothing (value, version, expiry, index)"
    );
    assert_eq!(
        c.keys(&ns, "b", now).await,
        no_keys(),
        "{c}: refused insert must not index"
    );
}

/// `put` writes unconditionally, each time at a version greater than the one before; it
/// replaces the value, the expiry (including removing it) and the index.
pub async fn put_overwrites_with_a_new_version(store: &dyn Store) {
    let c = Check::new(store, "put_overwrites_with_a_new_version");
    let ns = c.namespace("");
    let now = base_now();

    let r1 = NewRecord::new(b"one".to_vec())
        .expires_at(now + Duration::minutes(1))
        .index("a");
    let v1 = c.put(&ns, "k", r1.clone(), now).await;
    assert!(v1 >= 1, "{c}: put of a new key gave version {v1}");
    assert_eq!(
        c.get(&ns, "k", now).await,
        Some(r1.into_record(v1)),
        "{c}: get after put must return the record at the version put returned"
    );

    let r2 = NewRecord::new(vec![0xff; 3]).index("b");
    let v2 = c.put(&ns, "k", r2.clone(), now).await;
    assert!(
        v2 > v1,
        "{c}: a second put must give a greater version: {v1} then {v2}"
    );
    assert_eq!(
        c.get(&ns, "k", now).await,
        Some(r2.into_record(v2)),
        "{c}: put must replace the value, remove the expiry when none is given, and move the index"
    );
    let later = now + Duration::hours(2);
    assert!(
        c.get(&ns, "k", later).await.is_some(),
        "{c}: a record put without expiry must outlive the expiry of the record it replaced"
    );

    let r3 = NewRecord::new(b"three".to_vec());
    let v3 = c.put(&ns, "k", r3.clone(), now).await;
    assert!(
        v3 > v2,
        "{c}: a third put must give a greater version: {v2} then {v3}"
    );
    assert_eq!(
        c.get(&ns, "k", now).await,
        Some(r3.into_record(v3)),
        "{c}: get after put"
    );

    // An insert-created record counts too.
    let fresh = NewRecord::new(b"x".to_vec());
    assert!(
        matches!(
            c.insert(&ns, "j", fresh.clone(), now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert"
    );
    let vi = c.version(&ns, "j", now).await;
    let vp = c.put(&ns, "j", fresh, now).await;
    assert!(
        vp > vi,
        "{c}: put after insert must give a greater version: {vi} then {vp}"
    );
}

/// `take` returns the live record (value and version) and removes it: a second `take`, a `get`
/// and a `delete` find nothing, and a later `insert` creates a record anew.
pub async fn take_returns_the_record_once(store: &dyn Store) {
    let c = Check::new(store, "take_returns_the_record_once");
    let ns = c.namespace("");
    let now = base_now();

    assert_eq!(
        c.take(&ns, "missing", now).await,
        None,
        "{c}: take of a missing key"
    );

    let rec = NewRecord::new(vec![1, 2, 3])
        .expires_at(now + Duration::minutes(1))
        .index("i");
    assert!(
        matches!(
            c.insert(&ns, "k", rec.clone(), now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert"
    );
    let rec2 = NewRecord::new(vec![0x80, 0x81]).index("i");
    let v2 = c.put(&ns, "k", rec2.clone(), now).await;
    assert_eq!(
        c.take(&ns, "k", now).await,
        Some(rec2.into_record(v2)),
        "{c}: take must return the current record with its version"
    );
    assert_eq!(
        c.take(&ns, "k", now).await,
        None,
        "{c}: a second take must find nothing"
    );
    assert_eq!(
        c.get(&ns, "k", now).await,
        None,
        "{c}: get after take must find nothing"
    );
    assert!(
        !c.delete(&ns, "k", now).await,
        "{c}: delete after take must answer false"
    );
    assert_eq!(
        c.keys(&ns, "i", now).await,
        no_keys(),
        "{c}: list after take"
    );
    assert!(
        matches!(
            c.insert(&ns, "k", rec.clone(), now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert after take must succeed"
    );
    c.expect_record(
        &ns,
        "k",
        &rec,
        now,
        "a record inserted after a take is the new one",
    )
    .await;
}

/// `compare_and_swap` writes only when the live version is `expected`, giving a greater
/// version; otherwise it answers `Conflict { current }` or `Missing` and writes nothing.
pub async fn compare_and_swap_checks_the_version(store: &dyn Store) {
    let c = Check::new(store, "compare_and_swap_checks_the_version");
    let ns = c.namespace("");
    let now = base_now();

    let rec = NewRecord::new(b"new".to_vec());
    assert_eq!(
        c.cas(&ns, "k", 1, rec.clone(), now).await,
        CasOutcome::Missing,
        "{c}: compare_and_swap of a missing key"
    );
    assert_eq!(
        c.get(&ns, "k", now).await,
        None,
        "{c}: a Missing swap must not create"
    );

    let r1 = NewRecord::new(b"v1".to_vec()).index("a");
    assert!(
        matches!(
            c.insert(&ns, "k", r1.clone(), now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert"
    );
    let v1 = c.version(&ns, "k", now).await;
    for wrong in [0, v1 - 1, v1 + 1, u64::MAX, i64::MAX as u64, 1u64 << 63] {
        if wrong == v1 {
            continue;
        }
        assert_eq!(
            c.cas(&ns, "k", wrong, rec.clone(), now).await,
            CasOutcome::Conflict { current: v1 },
            "{c}: compare_and_swap expecting version {wrong} of a record at version {v1}"
        );
    }
    assert_eq!(
        c.get(&ns, "k", now).await,
        Some(r1.into_record(v1)),
        "{c}: a conflicting swap must change nothing"
    );

    let r2 = NewRecord::new(vec![0xde, 0xad])
        .index("b")
        .expires_at(now + Duration::minutes(5));
    let v2 = match c.cas(&ns, "k", v1, r2.clone(), now).await {
        CasOutcome::Swapped { version } => version,
        other => panic!("{c}: compare_and_swap with the right version answered {other:?}"),
    };
    assert!(
        v2 > v1,
        "{c}: a swap must give a greater version: {v1} then {v2}"
    );
    assert_eq!(
        c.get(&ns, "k", now).await,
        Some(r2.into_record(v2)),
        "{c}: a swap must replace value, expiry and index, at the version it answered"
    );
    assert_eq!(
        c.cas(&ns, "k", v1, rec.clone(), now).await,
        CasOutcome::Conflict { current: v2 },
        "{c}: a second swap from the same version must conflict"
    );

    let v3 = c.put(&ns, "k", rec.clone(), now).await;
    let v4 = match c.cas(&ns, "k", v3, rec.clone(), now).await {
        CasOutcome::Swapped { version } => version,
        other => panic!(
            "{c}: compare_and_swap after put must expect the version put returned, got {other:?}"
        ),
    };
    assert!(v4 > v3, "{c}: {v3} then {v4}");
    assert!(c.delete(&ns, "k", now).await, "{c}: delete");
    assert_eq!(
        c.cas(&ns, "k", v4, rec, now).await,
        CasOutcome::Missing,
        "{c}: compare_and_swap after delete"
    );
    assert_eq!(
        c.get(&ns, "k", now).await,
        None,
        "{c}: a Missing swap must not create"
    );
}

/// `compare_and_delete` removes the record only when the live version is `expected`; otherwise
/// it answers `Conflict { current }` or `Missing` and removes nothing.
pub async fn compare_and_delete_checks_the_version(store: &dyn Store) {
    let c = Check::new(store, "compare_and_delete_checks_the_version");
    let ns = c.namespace("");
    let now = base_now();

    assert_eq!(
        c.cad(&ns, "k", 1, now).await,
        DeleteOutcome::Missing,
        "{c}: compare_and_delete of a missing key"
    );
    let rec = NewRecord::new(b"x".to_vec()).index("i");
    assert!(
        matches!(
            c.insert(&ns, "k", rec.clone(), now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert"
    );
    let v1 = c.version(&ns, "k", now).await;
    let v2 = c.put(&ns, "k", rec.clone(), now).await;
    for wrong in [0, v1, v2 + 1, u64::MAX] {
        assert_eq!(
            c.cad(&ns, "k", wrong, now).await,
            DeleteOutcome::Conflict { current: v2 },
            "{c}: compare_and_delete expecting version {wrong} of a record at version {v2}"
        );
    }
    assert_eq!(
        c.get(&ns, "k", now).await,
        Some(rec.clone().into_record(v2)),
        "{c}: a conflicting compare_and_delete must remove nothing"
    );
    assert_eq!(
        c.cad(&ns, "k", v2, now).await,
        DeleteOutcome::Deleted,
        "{c}: compare_and_delete with the right version"
    );
    assert_eq!(
        c.get(&ns, "k", now).await,
        None,
        "{c}: get after compare_and_delete"
    );
    assert_eq!(
        c.keys(&ns, "i", now).await,
        no_keys(),
        "{c}: list after compare_and_delete"
    );
    assert_eq!(
        c.cad(&ns, "k", v2, now).await,
        DeleteOutcome::Missing,
        "{c}: a second compare_and_delete must find nothing"
    );

    let expiring = rec.expires_at(now + Duration::minutes(1));
    assert!(
        matches!(
            c.insert(&ns, "e", expiring, now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert"
    );
    let ve = c.version(&ns, "e", now).await;
    assert_eq!(
        c.cad(&ns, "e", ve, now + Duration::minutes(1)).await,
        DeleteOutcome::Missing,
        "{c}: compare_and_delete of an expired record must answer Missing"
    );
}

/// `delete` answers whether a live record was there and removes it.
pub async fn delete_reports_whether_a_live_record_was_there(store: &dyn Store) {
    let c = Check::new(store, "delete_reports_whether_a_live_record_was_there");
    let ns = c.namespace("");
    let now = base_now();

    assert!(
        !c.delete(&ns, "k", now).await,
        "{c}: delete of a missing key must answer false"
    );
    let rec = NewRecord::new(b"x".to_vec()).index("i");
    assert!(
        matches!(
            c.insert(&ns, "k", rec.clone(), now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert"
    );
    c.put(&ns, "k", rec.clone(), now).await;
    assert!(
        c.delete(&ns, "k", now).await,
        "{c}: delete of a live record must answer true"
    );
    assert_eq!(c.get(&ns, "k", now).await, None, "{c}: get after delete");
    assert_eq!(
        c.keys(&ns, "i", now).await,
        no_keys(),
        "{c}: list after delete"
    );
    assert!(
        !c.delete(&ns, "k", now).await,
        "{c}: a second delete must answer false"
    );
    assert!(
        matches!(
            c.insert(&ns, "k", rec.clone(), now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert after delete"
    );
    c.expect_record(
        &ns,
        "k",
        &rec,
        now,
        "a record inserted after a delete is the new one",
    )
    .await;
}

/// A version is never given twice to one key: a record created again after a `delete`, a
/// `take`, a `compare_and_delete` or its expiry gets a version that key never had, so a
/// `compare_and_swap` or `compare_and_delete` holding a version read before can never succeed
/// against the new record. An `insert` answers the version it wrote, also over an expired
/// record.
pub async fn versions_never_repeat_for_a_key(store: &dyn Store) {
    let c = Check::new(store, "versions_never_repeat_for_a_key");
    let ns = c.namespace("");
    let now = base_now();
    let mut seen = BTreeSet::new();
    let rec = |v: &[u8]| NewRecord::new(v.to_vec());

    assert!(
        matches!(
            c.insert(&ns, "k", rec(b"1"), now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert"
    );
    let first = c.version(&ns, "k", now).await;
    seen.insert(first);
    assert!(c.delete(&ns, "k", now).await, "{c}: delete");
    assert!(
        matches!(
            c.insert(&ns, "k", rec(b"2"), now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert after delete"
    );
    let v = c.version(&ns, "k", now).await;
    assert!(
        seen.insert(v),
        "{c}: a record inserted after a delete got version {v}, which the deleted record had: {seen:?}"
    );
    assert_eq!(
        c.cas(&ns, "k", first, rec(b"stale"), now).await,
        CasOutcome::Conflict { current: v },
        "{c}: a compare_and_swap holding the deleted record's version must not succeed on the new record"
    );
    assert_eq!(
        c.cad(&ns, "k", first, now).await,
        DeleteOutcome::Conflict { current: v },
        "{c}: a compare_and_delete holding the deleted record's version must not remove the new record"
    );

    assert!(c.take(&ns, "k", now).await.is_some(), "{c}: take");
    let v = c.put(&ns, "k", rec(b"3"), now).await;
    assert!(
        seen.insert(v),
        "{c}: a record put after a take got version {v} again: {seen:?}"
    );

    assert_eq!(
        c.cad(&ns, "k", v, now).await,
        DeleteOutcome::Deleted,
        "{c}: compare_and_delete"
    );
    let (v, _) = c.swap_in(&ns, "k", rec(b"4"), now).await;
    assert!(
        seen.insert(v),
        "{c}: a record inserted after a compare_and_delete got version {v} again: {seen:?}"
    );

    let expiring = rec(b"5").expires_at(now + Duration::minutes(1));
    let later = now + Duration::minutes(2);
    assert!(c.take(&ns, "k", now).await.is_some(), "{c}: take");
    let Inserted::Yes { version: written } = c.insert(&ns, "k", expiring.clone(), now).await else {
        panic!("{c}: insert after take must answer Inserted::Yes");
    };
    let v = c.version(&ns, "k", now).await;
    assert_eq!(written, v, "{c}: insert must answer the version it wrote");
    assert!(seen.insert(v), "{c}: version {v} repeated: {seen:?}");
    let Inserted::Yes { version: written } = c.insert(&ns, "k", rec(b"6"), later).await else {
        panic!("{c}: insert over the expired record must answer Inserted::Yes");
    };
    let v = c.version(&ns, "k", later).await;
    assert_eq!(
        written, v,
        "{c}: insert over an expired record must answer the version it wrote, not the old one"
    );
    assert!(
        seen.insert(v),
        "{c}: a record inserted over an expired one got version {v} again: {seen:?}"
    );
    assert!(c.take(&ns, "k", later).await.is_some(), "{c}: take");
    assert!(
        matches!(
            c.insert(&ns, "k", expiring, now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert"
    );
    let v = c.put(&ns, "k", rec(b"7"), later).await;
    assert!(
        seen.insert(v),
        "{c}: a record put over an expired one got version {v} again: {seen:?}"
    );
    let max = seen.iter().max().copied().unwrap_or(0);
    assert_eq!(
        v, max,
        "{c}: the last write must hold the greatest version: {seen:?}"
    );
}

/// `get_many` answers what `get` would for each (namespace, key), in the order asked: missing
/// and expired keys as `None`, the same key twice twice, keys of several namespaces together.
pub async fn get_many_answers_each_key_in_order(store: &dyn Store) {
    let c = Check::new(store, "get_many_answers_each_key_in_order");
    let ns1 = c.namespace("");
    let ns2 = c.namespace("_b");
    let now = base_now();
    let a = NewRecord::new(b"a".to_vec()).index("i");
    let b = NewRecord::new(vec![0xff, 0x00]);
    let gone = NewRecord::new(b"gone".to_vec()).expires_at(now + Duration::seconds(1));
    assert!(
        matches!(
            c.insert(&ns1, "a", a.clone(), now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert"
    );
    assert!(
        matches!(
            c.insert(&ns2, "a", b.clone(), now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert"
    );
    assert!(
        matches!(
            c.insert(&ns1, "gone", gone, now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert"
    );
    let va = c.version(&ns1, "a", now).await;
    let vb = c.version(&ns2, "a", now).await;
    let at = now + Duration::seconds(1);

    assert_eq!(
        c.get_many(&[], at).await,
        Vec::new(),
        "{c}: get_many of no key"
    );
    let got = c
        .get_many(
            &[
                (&ns2, "a"),
                (&ns1, "missing"),
                (&ns1, "a"),
                (&ns1, "gone"),
                (&ns2, "missing"),
                (&ns1, "a"),
            ],
            at,
        )
        .await;
    assert_eq!(
        got,
        vec![
            Some(b.into_record(vb)),
            None,
            Some(a.clone().into_record(va)),
            None,
            None,
            Some(a.into_record(va)),
        ],
        "{c}: get_many must answer each key as get would, in the order asked"
    );
}

/// `list` returns exactly the live records whose index equals the given one (not a prefix, not
/// another case), with their values and versions, in key order (UTF-8 byte order).
pub async fn list_selects_by_index_in_key_order(store: &dyn Store) {
    let c = Check::new(store, "list_selects_by_index_in_key_order");
    let ns = c.namespace("");
    let now = base_now();

    // Written out of order; byte order differs from most human collations ("Z" < "a").
    let listed = [
        "b", "a|2", "é", "A", "a", "a%", "Z", "a b", "🔑", "a|10", "B", "a_", "a\u{7f}",
    ];
    for (i, key) in listed.iter().enumerate() {
        let rec = NewRecord::new(vec![i as u8, 0xff]).index("u|1");
        assert!(
            matches!(c.insert(&ns, key, rec, now).await, Inserted::Yes { .. }),
            "{c}: insert {key:?}"
        );
    }
    let vb = c
        .put(&ns, "b", NewRecord::new(vec![9]).index("u|1"), now)
        .await;
    // Records the list must not return: other indexes (prefixes, extensions, case, patterns),
    // no index.
    for (key, index) in [
        ("c1", Some("u|10")),
        ("c2", Some("u|")),
        ("c3", Some("u")),
        ("c4", Some("U|1")),
        ("c5", Some("u|1 ")),
        ("c6", None),
        ("c7", Some("")),
        ("c8", Some("u_1")),
        ("c9", Some("u%1")),
        ("c10", Some("u*1")),
    ] {
        let mut rec = NewRecord::new(b"other".to_vec());
        rec.index = index.map(str::to_owned);
        assert!(
            matches!(c.insert(&ns, key, rec, now).await, Inserted::Yes { .. }),
            "{c}: insert {key:?}"
        );
    }

    let mut expected: Vec<&str> = listed.to_vec();
    expected.sort_unstable();
    let got = c.list(&ns, "u|1", now).await;
    let got_keys: Vec<&str> = got.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        got_keys, expected,
        "{c}: list must return exactly the records with this index, in UTF-8 byte order of keys"
    );
    for (key, record) in &got {
        let want = if key == "b" {
            NewRecord::new(vec![9]).index("u|1").into_record(vb)
        } else {
            let i = listed.iter().position(|k| k == key).unwrap_or(usize::MAX);
            let v = c.version(&ns, key, now).await;
            NewRecord::new(vec![i as u8, 0xff])
                .index("u|1")
                .into_record(v)
        };
        assert_eq!(
            record, &want,
            "{c}: list must return the current record of {key:?}"
        );
    }
    assert_eq!(
        c.keys(&ns, "u|10", now).await,
        ["c1"],
        "{c}: list of index \"u|10\""
    );
    assert_eq!(
        c.keys(&ns, "u", now).await,
        ["c3"],
        "{c}: list of index \"u\""
    );
    assert_eq!(
        c.keys(&ns, "", now).await,
        ["c7"],
        "{c}: list of the empty index"
    );
    assert_eq!(
        c.keys(&ns, "nothing", now).await,
        no_keys(),
        "{c}: list of an unused index"
    );
}

/// A record whose index changes (by `put`, `compare_and_swap`, or `insert` over an expired
/// record) is listed under its new index only; removing the index removes it from every list.
pub async fn list_follows_index_changes(store: &dyn Store) {
    let c = Check::new(store, "list_follows_index_changes");
    let ns = c.namespace("");
    let now = base_now();

    let a = |v: &[u8]| NewRecord::new(v.to_vec()).index("A");
    let b = |v: &[u8]| NewRecord::new(v.to_vec()).index("B");

    c.put(&ns, "put", a(b"1"), now).await;
    let v_put = c.put(&ns, "put", b(b"2"), now).await;

    assert!(
        matches!(
            c.insert(&ns, "cas", a(b"1"), now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert"
    );
    let v = c.version(&ns, "cas", now).await;
    let v_cas = match c.cas(&ns, "cas", v, b(b"2"), now).await {
        CasOutcome::Swapped { version } => version,
        other => panic!("{c}: compare_and_swap answered {other:?}"),
    };

    c.put(&ns, "unindexed", a(b"1"), now).await;
    c.put(&ns, "unindexed", NewRecord::new(b"2".to_vec()), now)
        .await;

    let expiring = a(b"1").expires_at(now + Duration::minutes(1));
    assert!(
        matches!(
            c.insert(&ns, "reinserted", expiring, now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert"
    );
    let later = now + Duration::minutes(2);
    assert!(
        matches!(
            c.insert(&ns, "reinserted", b(b"2"), later).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert over an expired record"
    );
    let v_re = c.version(&ns, "reinserted", later).await;

    assert!(
        matches!(
            c.insert(&ns, "taken", b(b"1"), now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert"
    );
    assert!(c.take(&ns, "taken", later).await.is_some(), "{c}: take");
    assert!(
        matches!(
            c.insert(&ns, "deleted", b(b"1"), now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert"
    );
    assert!(c.delete(&ns, "deleted", later).await, "{c}: delete");

    assert_eq!(
        c.keys(&ns, "A", later).await,
        no_keys(),
        "{c}: records moved off index A must not be listed under it"
    );
    let got = c.list(&ns, "B", later).await;
    assert_eq!(
        got,
        vec![
            ("cas".to_owned(), b(b"2").into_record(v_cas)),
            ("put".to_owned(), b(b"2").into_record(v_put)),
            ("reinserted".to_owned(), b(b"2").into_record(v_re)),
        ],
        "{c}: records moved onto index B must be listed under it, once, with their new version"
    );
}

/// `list` is strongly consistent: right after each write returns, a `list` reflects it
/// (read-your-writes), for every kind of write, with no pause in between.
pub async fn list_reads_its_own_writes(store: &dyn Store) {
    let c = Check::new(store, "list_reads_its_own_writes");
    let ns = c.namespace("");
    let now = base_now();
    let rec = |v: &[u8], ix: &str| NewRecord::new(v.to_vec()).index(ix);
    let mut want: Vec<String> = Vec::new();

    for i in 0..20u8 {
        let key = format!("k{i:02}");
        match i % 4 {
            0 => {
                assert!(
                    matches!(
                        c.insert(&ns, &key, rec(&[i], "u"), now).await,
                        Inserted::Yes { .. }
                    ),
                    "{c}: insert"
                );
            }
            1 => {
                c.put(&ns, &key, rec(&[i], "u"), now).await;
            }
            2 => {
                // Written under another index, then moved onto "u" by a swap.
                let v = c.put(&ns, &key, rec(&[i], "other"), now).await;
                assert!(
                    matches!(
                        c.cas(&ns, &key, v, rec(&[i], "u"), now).await,
                        CasOutcome::Swapped { .. }
                    ),
                    "{c}: compare_and_swap"
                );
            }
            _ => {
                let (_, swapped) = c.swap_in(&ns, &key, rec(&[i], "u"), now).await;
                assert!(swapped, "{c}: write");
            }
        }
        want.push(key);
        assert_eq!(
            c.keys(&ns, "u", now).await,
            want,
            "{c}: list right after writing record {i}"
        );
    }
    for (i, key) in want.clone().iter().enumerate().rev() {
        match i % 4 {
            0 => assert!(c.delete(&ns, key, now).await, "{c}: delete"),
            1 => assert!(c.take(&ns, key, now).await.is_some(), "{c}: take"),
            2 => {
                let v = c.version(&ns, key, now).await;
                assert_eq!(
                    c.cad(&ns, key, v, now).await,
                    DeleteOutcome::Deleted,
                    "{c}: compare_and_delete"
                );
            }
            _ => {
                c.put(&ns, key, rec(b"moved", "elsewhere"), now).await;
            }
        }
        want.pop();
        assert_eq!(
            c.keys(&ns, "u", now).await,
            want,
            "{c}: list right after removing {key:?} from the index"
        );
    }
}

/// A record whose `expires_at` is at or before `now` is absent for every operation: `get`,
/// `take` and `list` skip it, `insert` and `put` replace it as if new, and `compare_and_swap`,
/// `compare_and_delete` and `delete` answer `Missing` and `false`.
pub async fn expired_records_are_absent(store: &dyn Store) {
    let c = Check::new(store, "expired_records_are_absent");
    let ns = c.namespace("");
    let now = base_now();
    let expiry = now + Duration::minutes(1);
    // `at` is exactly the expiry: the boundary counts as expired.
    let at = expiry;
    let ops = [
        "get", "take", "insert", "put", "cas", "cad", "delete", "listed",
    ];
    let mut versions = Vec::new();
    for key in ops {
        let rec = NewRecord::new(b"old".to_vec())
            .expires_at(expiry)
            .index("ix");
        assert!(
            matches!(c.insert(&ns, key, rec, now).await, Inserted::Yes { .. }),
            "{c}: insert {key:?}"
        );
        versions.push(c.version(&ns, key, now).await);
    }
    let survivor = NewRecord::new(b"live".to_vec())
        .expires_at(expiry + Duration::seconds(1))
        .index("ix");
    assert!(
        matches!(
            c.insert(&ns, "survivor", survivor.clone(), now).await,
            Inserted::Yes { .. }
        ),
        "{c}"
    );
    let v_survivor = c.version(&ns, "survivor", now).await;

    let before = at - Duration::seconds(1);
    assert_eq!(
        c.get(&ns, "get", before).await.map(|r| r.value),
        Some(b"old".to_vec()),
        "{c}: a record is live one second before its expiry"
    );
    assert_eq!(
        c.get(&ns, "get", at).await,
        None,
        "{c}: get must not return a record whose expires_at == now"
    );
    assert_eq!(
        c.get(&ns, "get", at + Duration::hours(1)).await,
        None,
        "{c}: get must not return an expired record"
    );
    assert_eq!(
        c.take(&ns, "take", at).await,
        None,
        "{c}: take must not return an expired record"
    );

    let fresh = NewRecord::new(b"new".to_vec()).index("ix2");
    assert!(
        matches!(
            c.insert(&ns, "insert", fresh.clone(), at).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert over an expired record must succeed"
    );
    c.expect_record(
        &ns,
        "insert",
        &fresh,
        at,
        "a record inserted over an expired one is new: its own value and index",
    )
    .await;
    let v = c.put(&ns, "put", fresh.clone(), at).await;
    assert_eq!(
        c.get(&ns, "put", at).await,
        Some(fresh.clone().into_record(v)),
        "{c}: put over an expired record"
    );
    assert_eq!(
        c.cas(&ns, "cas", versions[4], fresh.clone(), at).await,
        CasOutcome::Missing,
        "{c}: compare_and_swap over an expired record must answer Missing"
    );
    assert_eq!(
        c.get(&ns, "cas", at).await,
        None,
        "{c}: a compare_and_swap over an expired record must not write"
    );
    assert_eq!(
        c.cad(&ns, "cad", versions[5], at).await,
        DeleteOutcome::Missing,
        "{c}: compare_and_delete of an expired record must answer Missing"
    );
    assert!(
        !c.delete(&ns, "delete", at).await,
        "{c}: delete of an expired record must answer false"
    );
    assert_eq!(
        c.keys(&ns, "ix", at).await,
        ["survivor"],
        "{c}: list must skip expired records and keep live ones"
    );
    assert_eq!(
        c.get(&ns, "survivor", at).await,
        Some(survivor.into_record(v_survivor)),
        "{c}: a record expiring one second after now is live"
    );
    assert_eq!(
        c.keys(&ns, "ix", at + Duration::seconds(1)).await,
        no_keys(),
        "{c}: list at the survivor's expiry"
    );
}

/// Namespaces are separate key spaces, even when one name is a prefix of another: the same key
/// in two namespaces holds two records with their own versions, lists and removal.
pub async fn namespaces_are_isolated(store: &dyn Store) {
    let c = Check::new(store, "namespaces_are_isolated");
    let ns1 = c.namespace("");
    let ns2 = format!("{ns1}_x"); // ns1 is a prefix of ns2
    let now = base_now();

    let r1 = NewRecord::new(b"one".to_vec()).index("ix");
    let r2 = NewRecord::new(b"two".to_vec()).index("ix");
    assert!(
        matches!(
            c.insert(&ns1, "k", r1.clone(), now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert ns1"
    );
    assert!(
        matches!(
            c.insert(&ns2, "k", r2.clone(), now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert of a key that exists only in another namespace must succeed"
    );
    let v2 = c.version(&ns2, "k", now).await;
    let v1 = c.put(&ns1, "k", r1.clone(), now).await;
    assert_eq!(
        c.get(&ns1, "k", now).await,
        Some(r1.clone().into_record(v1)),
        "{c}: get ns1"
    );
    assert_eq!(
        c.get(&ns2, "k", now).await,
        Some(r2.clone().into_record(v2)),
        "{c}: a write in one namespace must not touch the same key in another"
    );
    assert_eq!(
        c.list(&ns1, "ix", now).await,
        vec![("k".to_owned(), r1.clone().into_record(v1))],
        "{c}: list must return only its namespace's records"
    );
    assert_eq!(
        c.cas(&ns2, "k", v1, r2.clone(), now).await,
        CasOutcome::Conflict { current: v2 },
        "{c}: versions are per namespace"
    );
    assert_eq!(
        c.get(&ns1, "only1", now).await,
        None,
        "{c}: get in a fresh key"
    );
    assert!(
        matches!(
            c.insert(&ns1, "only1", r1.clone(), now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert"
    );
    let v_only = c.version(&ns1, "only1", now).await;
    assert_eq!(
        c.get(&ns2, "only1", now).await,
        None,
        "{c}: get across namespaces"
    );
    assert_eq!(
        c.take(&ns2, "only1", now).await,
        None,
        "{c}: take across namespaces"
    );
    assert!(
        !c.delete(&ns2, "only1", now).await,
        "{c}: delete across namespaces"
    );
    assert_eq!(
        c.cas(&ns2, "only1", v_only, r2.clone(), now).await,
        CasOutcome::Missing,
        "{c}: compare_and_swap across namespaces"
    );
    assert_eq!(
        c.cad(&ns2, "only1", v_only, now).await,
        DeleteOutcome::Missing,
        "{c}: compare_and_delete across namespaces"
    );

    assert!(c.take(&ns1, "k", now).await.is_some(), "{c}: take ns1");
    assert_eq!(
        c.get(&ns2, "k", now).await,
        Some(r2.into_record(v2)),
        "{c}: a take in one namespace must not remove the same key in another"
    );
    assert!(c.delete(&ns2, "k", now).await, "{c}: delete ns2");
    assert_eq!(
        c.keys(&ns2, "ix", now).await,
        no_keys(),
        "{c}: list ns2 after delete"
    );
    assert_eq!(c.keys(&ns1, "ix", now).await, ["only1"], "{c}: list ns1");
}

/// Of 32 concurrent `insert`s of one key, exactly one gets [`Inserted::Yes`], and its record is
/// the one stored.
pub async fn concurrent_inserts_have_one_winner(store: &dyn Store) {
    let c = Check::new(store, "concurrent_inserts_have_one_winner");
    let ns = c.namespace("");
    let now = base_now();
    let results = join_all(
        (0..RACERS)
            .map(|i| store.insert(&ns, "k", NewRecord::new(vec![i as u8]), now))
            .collect(),
    )
    .await;
    let winners: Vec<usize> = results
        .into_iter()
        .enumerate()
        .filter_map(|(i, r)| matches!(c.ok("insert", r), Inserted::Yes { .. }).then_some(i))
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "{c}: exactly one of {RACERS} concurrent inserts must win, winners: {winners:?}"
    );
    c.expect_record(
        &ns,
        "k",
        &NewRecord::new(vec![winners[0] as u8]),
        now,
        "the stored record must be the winner's",
    )
    .await;
}

/// Of 32 concurrent `take`s of one record, exactly one gets it.
pub async fn concurrent_takes_have_one_winner(store: &dyn Store) {
    let c = Check::new(store, "concurrent_takes_have_one_winner");
    let ns = c.namespace("");
    let now = base_now();
    let rec = NewRecord::new(b"once".to_vec()).expires_at(now + Duration::minutes(1));
    assert!(
        matches!(
            c.insert(&ns, "k", rec.clone(), now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert"
    );
    let v = c.version(&ns, "k", now).await;
    let results = join_all((0..RACERS).map(|_| store.take(&ns, "k", now)).collect()).await;
    let got: Vec<Record> = results
        .into_iter()
        .filter_map(|r| c.ok("take", r))
        .collect();
    assert_eq!(
        got,
        vec![rec.into_record(v)],
        "{c}: exactly one of {RACERS} concurrent takes must get the record"
    );
    assert_eq!(c.get(&ns, "k", now).await, None, "{c}: get after the takes");
}

/// Of 32 concurrent `compare_and_swap`s from the same expected version, exactly one swaps; the
/// others see the winner's version as a conflict.
pub async fn concurrent_compare_and_swaps_have_one_winner(store: &dyn Store) {
    let c = Check::new(store, "concurrent_compare_and_swaps_have_one_winner");
    let ns = c.namespace("");
    let now = base_now();
    let rec = NewRecord::new(b"start".to_vec());
    assert!(
        matches!(
            c.insert(&ns, "k", rec.clone(), now).await,
            Inserted::Yes { .. }
        ),
        "{c}: insert"
    );
    let start = c.put(&ns, "k", rec, now).await;
    let results = join_all(
        (0..RACERS)
            .map(|i| store.compare_and_swap(&ns, "k", start, NewRecord::new(vec![i as u8]), now))
            .collect(),
    )
    .await;
    let outcomes: Vec<CasOutcome> = results
        .into_iter()
        .map(|r| c.ok("compare_and_swap", r))
        .collect();
    let winners: Vec<(usize, u64)> = outcomes
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match o {
            CasOutcome::Swapped { version } => Some((i, *version)),
            _ => None,
        })
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "{c}: exactly one of {RACERS} concurrent swaps from version {start} must win: {outcomes:?}"
    );
    let (winner, version) = winners[0];
    for (i, outcome) in outcomes.iter().enumerate() {
        if i != winner {
            assert_eq!(
                *outcome,
                CasOutcome::Conflict { current: version },
                "{c}: a losing swap must see the winner's version"
            );
        }
    }
    assert_eq!(
        c.get(&ns, "k", now).await,
        Some(NewRecord::new(vec![winner as u8]).into_record(version)),
        "{c}: the stored record must be the winner's, at the version it was told"
    );
}

/// Of 32 concurrent `compare_and_delete`s expecting the record's version, exactly one deletes;
/// the others find it missing.
pub async fn concurrent_compare_and_deletes_have_one_winner(store: &dyn Store) {
    let c = Check::new(store, "concurrent_compare_and_deletes_have_one_winner");
    let ns = c.namespace("");
    let now = base_now();
    let v = c.put(&ns, "k", NewRecord::new(b"x".to_vec()), now).await;
    let results = join_all(
        (0..RACERS)
            .map(|_| store.compare_and_delete(&ns, "k", v, now))
            .collect(),
    )
    .await;
    let outcomes: Vec<DeleteOutcome> = results
        .into_iter()
        .map(|r| c.ok("compare_and_delete", r))
        .collect();
    let deleted = outcomes
        .iter()
        .filter(|o| **o == DeleteOutcome::Deleted)
        .count();
    let missing = outcomes
        .iter()
        .filter(|o| **o == DeleteOutcome::Missing)
        .count();
    assert_eq!(
        (deleted, missing),
        (1, RACERS - 1),
        "{c}: exactly one of {RACERS} concurrent compare_and_deletes must delete, the others find nothing: {outcomes:?}"
    );
    assert_eq!(
        c.get(&ns, "k", now).await,
        None,
        "{c}: get after the deletes"
    );
}

/// Of 32 concurrent `delete`s of one record, exactly one answers `true`.
pub async fn concurrent_deletes_have_one_winner(store: &dyn Store) {
    let c = Check::new(store, "concurrent_deletes_have_one_winner");
    let ns = c.namespace("");
    let now = base_now();
    let rec = NewRecord::new(b"x".to_vec());
    assert!(
        matches!(c.insert(&ns, "k", rec, now).await, Inserted::Yes { .. }),
        "{c}: insert"
    );
    let results = join_all((0..RACERS).map(|_| store.delete(&ns, "k", now)).collect()).await;
    let trues = results
        .into_iter()
        .filter(|r| match r {
            Ok(b) => *b,
            Err(e) => panic!("{c}: delete failed: {e}"),
        })
        .count();
    assert_eq!(
        trues, 1,
        "{c}: exactly one of {RACERS} concurrent deletes must answer true"
    );
}

/// 32 concurrent `put`s of one new key get 32 distinct versions: two writers never both hold the
/// same version (which would make a later `compare_and_swap` succeed against a record its caller
/// never read), and the record stored is the one with the greatest.
pub async fn concurrent_puts_get_distinct_versions(store: &dyn Store) {
    let c = Check::new(store, "concurrent_puts_get_distinct_versions");
    let ns = c.namespace("");
    let now = base_now();
    let results = join_all(
        (0..RACERS)
            .map(|i| store.put(&ns, "k", NewRecord::new(vec![i as u8]), now))
            .collect(),
    )
    .await;
    let versions: Vec<u64> = results.into_iter().map(|r| c.ok("put", r)).collect();
    let distinct: BTreeSet<u64> = versions.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        RACERS,
        "{c}: {RACERS} concurrent puts must get {RACERS} distinct versions: {versions:?}"
    );
    let max = distinct.iter().max().copied().unwrap_or(0);
    let last = versions.iter().position(|&v| v == max);
    assert_eq!(
        c.get(&ns, "k", now).await,
        last.map(|i| NewRecord::new(vec![i as u8]).into_record(max)),
        "{c}: the stored record must be the one written last (the greatest version)"
    );
}

/// The current time, truncated to whole seconds so that every backend's timestamp precision
/// round-trips it exactly.
fn base_now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(0).unwrap_or(now)
}

fn no_keys() -> [&'static str; 0] {
    []
}

/// Polls all `futures` together in the current task until every one is ready; the outputs are
/// in the order of `futures`. Runtime-agnostic: the suite spawns nothing.
async fn join_all<'a, T: Send>(
    futures: Vec<Pin<Box<dyn Future<Output = T> + Send + 'a>>>,
) -> Vec<T> {
    let mut slots: Vec<Slot<'a, T>> = futures.into_iter().map(Slot::Pending).collect();
    poll_fn(|cx| {
        let mut all_done = true;
        for slot in &mut slots {
            if let Slot::Pending(fut) = slot {
                match fut.as_mut().poll(cx) {
                    Poll::Ready(out) => *slot = Slot::Done(Some(out)),
                    Poll::Pending => all_done = false,
                }
            }
        }
        if all_done {
            Poll::Ready(
                slots
                    .iter_mut()
                    .filter_map(|slot| match slot {
                        Slot::Done(out) => out.take(),
                        Slot::Pending(_) => None,
                    })
                    .collect(),
            )
        } else {
            Poll::Pending
        }
    })
    .await
}

enum Slot<'a, T> {
    Pending(Pin<Box<dyn Future<Output = T> + Send + 'a>>),
    Done(Option<T>),
}

/// One check's view of the store: every operation panics on a store error, naming the check.
struct Check<'a> {
    store: &'a dyn Store,
    name: &'static str,
}

impl std::fmt::Display for Check<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store conformance check `{}` failed", self.name)
    }
}

impl<'a> Check<'a> {
    fn new(store: &'a dyn Store, name: &'static str) -> Self {
        Self { store, name }
    }

    /// A namespace no other check or run uses.
    fn namespace(&self, suffix: &str) -> String {
        format!(
            "cxsso_conformance_{}_{:016x}{suffix}",
            self.name,
            rand::random::<u64>()
        )
    }

    fn ok<T>(&self, op: &str, result: Result<T, StoreError>) -> T {
        match result {
            Ok(v) => v,
            Err(e) => {
                let mut causes = String::new();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    causes.push_str(&format!(": {s}"));
                    source = s.source();
                }
                panic!("{self}: {op} returned an error: {e}{causes}")
            }
        }
    }

    async fn get(&self, ns: &str, key: &str, now: OffsetDateTime) -> Option<Record> {
        self.ok("get", self.store.get(ns, key, now).await)
    }

    async fn insert(&self, ns: &str, key: &str, rec: NewRecord, now: OffsetDateTime) -> Inserted {
        self.ok("insert", self.store.insert(ns, key, rec, now).await)
    }

    async fn put(&self, ns: &str, key: &str, rec: NewRecord, now: OffsetDateTime) -> u64 {
        self.ok("put", self.store.put(ns, key, rec, now).await)
    }

    async fn take(&self, ns: &str, key: &str, now: OffsetDateTime) -> Option<Record> {
        self.ok("take", self.store.take(ns, key, now).await)
    }

    async fn cas(
        &self,
        ns: &str,
        key: &str,
        expected: u64,
        rec: NewRecord,
        now: OffsetDateTime,
    ) -> CasOutcome {
        let result = self
            .store
            .compare_and_swap(ns, key, expected, rec, now)
            .await;
        self.ok("compare_and_swap", result)
    }

    /// The version of the live record at `key`; panics when there is none.
    async fn version(&self, ns: &str, key: &str, now: OffsetDateTime) -> u64 {
        match self.get(ns, key, now).await {
            Some(r) => r.version,
            None => panic!("{self}: get({key:?}) found no record where one was just written"),
        }
    }

    /// Checks that the live record at `key` is `want` (at whatever version); returns the version.
    async fn expect_record(
        &self,
        ns: &str,
        key: &str,
        want: &NewRecord,
        now: OffsetDateTime,
        what: &str,
    ) -> u64 {
        let got = self.get(ns, key, now).await;
        let version = got.as_ref().map_or(0, |r| r.version);
        assert_eq!(
            got,
            Some(want.clone().into_record(version)),
            "{self}: {what}"
        );
        assert!(
            version >= 1,
            "{self}: {what}: versions start at 1, got {version}"
        );
        version
    }

    /// Writes `rec` at `key` by insert-if-absent or, when a record is there, by a swap from its
    /// version; returns the new version and whether the write happened.
    async fn swap_in(
        &self,
        ns: &str,
        key: &str,
        rec: NewRecord,
        now: OffsetDateTime,
    ) -> (u64, bool) {
        match self.get(ns, key, now).await {
            None => {
                let done = matches!(self.insert(ns, key, rec, now).await, Inserted::Yes { .. });
                (self.version(ns, key, now).await, done)
            }
            Some(r) => match self.cas(ns, key, r.version, rec, now).await {
                CasOutcome::Swapped { version } => (version, true),
                _ => (self.version(ns, key, now).await, false),
            },
        }
    }

    async fn cad(&self, ns: &str, key: &str, expected: u64, now: OffsetDateTime) -> DeleteOutcome {
        let result = self.store.compare_and_delete(ns, key, expected, now).await;
        self.ok("compare_and_delete", result)
    }

    async fn get_many(&self, keys: &[(&str, &str)], now: OffsetDateTime) -> Vec<Option<Record>> {
        self.ok("get_many", self.store.get_many(keys, now).await)
    }

    async fn delete(&self, ns: &str, key: &str, now: OffsetDateTime) -> bool {
        self.ok("delete", self.store.delete(ns, key, now).await)
    }

    async fn list(&self, ns: &str, index: &str, now: OffsetDateTime) -> Vec<(String, Record)> {
        self.ok("list", self.store.list(ns, index, now).await)
    }

    /// The keys `list` returns, in its order.
    async fn keys(&self, ns: &str, index: &str, now: OffsetDateTime) -> Vec<String> {
        self.list(ns, index, now)
            .await
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }
}
