//! `testing::FaultyStore`: with no fault it is the store it wraps (the whole conformance
//! suite); a fault fails exactly the operation it names, before it reaches the store or after
//! it was applied.
#![cfg(feature = "test-util")]

use std::sync::Arc;

use cx_sso::store::{CasOutcome, Inserted, NewRecord, Store};
use cx_sso::testing::{Fault, FaultyStore, Ops};
use cx_sso::{MemoryStore, StoreError};
use time::OffsetDateTime;

mod stores;

async fn make() -> Option<Arc<dyn Store>> {
    Some(Arc::new(FaultyStore::new(Arc::new(MemoryStore::new()))))
}

stores::store_conformance_tests!(make);

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn faulty() -> FaultyStore {
    FaultyStore::new(Arc::new(MemoryStore::new()))
}

fn unavailable<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Unavailable { .. }))
}

#[tokio::test]
async fn a_fault_before_fails_the_nth_operation_and_writes_nothing() {
    let store = faulty();
    let t = now();
    store.inject(Fault::FailBefore, Ops::All, None, 3);
    store
        .put("ns", "a", NewRecord::new(vec![1]), t)
        .await
        .unwrap();
    assert!(store.get("ns", "a", t).await.unwrap().is_some());
    assert!(unavailable(
        store.put("ns", "b", NewRecord::new(vec![2]), t).await
    ));
    assert_eq!(
        store.inner().get("ns", "b", t).await.unwrap(),
        None,
        "nothing written"
    );
    // It fired once: the same write goes through now.
    store
        .put("ns", "b", NewRecord::new(vec![2]), t)
        .await
        .unwrap();
    assert_eq!((store.operations(), store.injected()), (4, 1));
}

#[tokio::test]
async fn a_fault_after_applies_the_write_then_fails() {
    let store = faulty();
    let t = now();
    store
        .insert("ns", "k", NewRecord::new(vec![1]), t)
        .await
        .unwrap();
    let v = store.get("ns", "k", t).await.unwrap().unwrap().version;
    store.inject(Fault::FailAfter, Ops::Writes, None, 1);
    let r = store
        .compare_and_swap("ns", "k", v, NewRecord::new(vec![2]), t)
        .await;
    assert!(unavailable(r));
    let stored = store.get("ns", "k", t).await.unwrap().unwrap();
    assert_eq!(stored.value, [2], "the swap was applied");
    // A retry with the version read before now loses, as it must.
    assert!(matches!(
        store
            .compare_and_swap("ns", "k", v, NewRecord::new(vec![3]), t)
            .await
            .unwrap(),
        CasOutcome::Conflict { .. }
    ));
    // A taken record is gone though its caller saw an error.
    store.inject(Fault::FailAfter, Ops::Writes, None, 1);
    assert!(unavailable(store.take("ns", "k", t).await));
    assert_eq!(store.get("ns", "k", t).await.unwrap(), None);
}

#[tokio::test]
async fn writes_and_namespaces_narrow_what_is_counted() {
    let store = faulty();
    let t = now();
    store.inject(Fault::FailBefore, Ops::Writes, Some("login"), 2);
    // Reads and other namespaces do not count.
    assert_eq!(store.get("login", "a", t).await.unwrap(), None);
    store
        .put("other", "a", NewRecord::new(vec![]), t)
        .await
        .unwrap();
    assert!(matches!(
        store
            .insert("login", "a", NewRecord::new(vec![]), t)
            .await
            .unwrap(),
        Inserted::Yes { .. }
    ));
    assert!(store.list("login", "i", t).await.unwrap().is_empty());
    assert!(unavailable(store.delete("login", "a", t).await));
    assert!(store.inner().get("login", "a", t).await.unwrap().is_some());
    // get_many counts for every namespace it reads.
    store.inject(Fault::FailBefore, Ops::All, Some("login"), 1);
    assert!(unavailable(
        store.get_many(&[("other", "a"), ("login", "a")], t).await
    ));
    store.clear();
    assert_eq!(store.get_many(&[("login", "a")], t).await.unwrap().len(), 1);
}
