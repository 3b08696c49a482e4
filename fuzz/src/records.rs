//! Stored records: a store that remembers every key the broker wrote, a world holding one
//! record of every type, and its snapshot to corrupt.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cx_sso::store::{CasOutcome, DeleteOutcome, Inserted, NewRecord, Record};
use cx_sso::{
    LinkTicket, LoginIntent, LoginOptions, LoginOutcome, MemoryStore, SessionGrant, Store,
    StoreError, VisitorAudience, VisitorClaims,
};
use time::OffsetDateTime;

use crate::{Begun, VISITOR_AUDIENCE, VISITOR_ONCE, World, block_on, connection, user};

/// A [`MemoryStore`] that notes every (namespace, key) written.
#[derive(Debug, Default)]
pub struct RecordingStore {
    inner: MemoryStore,
    written: Mutex<Vec<(String, String)>>,
    last: Mutex<Vec<(String, String, Record)>>,
}

impl RecordingStore {
    fn note(&self, namespace: &str, key: &str) {
        let mut w = self.written.lock().unwrap_or_else(|e| e.into_inner());
        if !w.iter().any(|(n, k)| n == namespace && k == key) {
            w.push((namespace.to_owned(), key.to_owned()));
        }
    }

    /// Keeps the last value written at a key, for records the broker deletes again (leases,
    /// completed logins).
    fn keep(&self, namespace: &str, key: &str, r: &NewRecord) {
        let mut l = self.last.lock().unwrap_or_else(|e| e.into_inner());
        l.retain(|(n, k, _)| !(n == namespace && k == key));
        l.push((
            namespace.to_owned(),
            key.to_owned(),
            r.clone().into_record(0),
        ));
    }

    /// The last value written at every key that holds no live record any more.
    pub async fn gone(&self, now: OffsetDateTime) -> Vec<(String, String, Record)> {
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let mut out = Vec::new();
        for (n, k, r) in last {
            if let Ok(None) = self.inner.get(&n, &k, now).await {
                out.push((n, k, r));
            }
        }
        out
    }

    /// Every live record written, in the order first written.
    pub async fn snapshot(&self, now: OffsetDateTime) -> Vec<(String, String, Record)> {
        let keys = self
            .written
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut out = Vec::new();
        for (n, k) in keys {
            if let Ok(Some(r)) = self.inner.get(&n, &k, now).await {
                out.push((n, k, r));
            }
        }
        out
    }
}

#[async_trait]
impl Store for RecordingStore {
    async fn get(
        &self,
        n: &str,
        k: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        self.inner.get(n, k, now).await
    }
    async fn insert(
        &self,
        n: &str,
        k: &str,
        r: NewRecord,
        now: OffsetDateTime,
    ) -> Result<Inserted, StoreError> {
        self.note(n, k);
        self.keep(n, k, &r);
        self.inner.insert(n, k, r, now).await
    }
    async fn put(
        &self,
        n: &str,
        k: &str,
        r: NewRecord,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.note(n, k);
        self.keep(n, k, &r);
        self.inner.put(n, k, r, now).await
    }
    async fn take(
        &self,
        n: &str,
        k: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        self.inner.take(n, k, now).await
    }
    async fn compare_and_swap(
        &self,
        n: &str,
        k: &str,
        expected: u64,
        r: NewRecord,
        now: OffsetDateTime,
    ) -> Result<CasOutcome, StoreError> {
        self.note(n, k);
        self.keep(n, k, &r);
        self.inner.compare_and_swap(n, k, expected, r, now).await
    }
    async fn compare_and_delete(
        &self,
        n: &str,
        k: &str,
        expected: u64,
        now: OffsetDateTime,
    ) -> Result<DeleteOutcome, StoreError> {
        self.inner.compare_and_delete(n, k, expected, now).await
    }
    async fn delete(&self, n: &str, k: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.inner.delete(n, k, now).await
    }
    async fn list(
        &self,
        n: &str,
        index: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, Record)>, StoreError> {
        self.inner.list(n, index, now).await
    }
}

/// One record of every type the broker stores, and what it takes to read each again.
#[derive(Debug)]
pub struct Snapshot {
    /// (namespace, key, record), in the order first written.
    pub records: Vec<(String, String, Record)>,
    /// Records written and deleted again (a refresh lease, completed logins): stored only
    /// when the input chooses one.
    pub gone: Vec<(String, String, Record)>,
    /// A login begun and not completed (its pending record is in `records`).
    pub pending: Begun,
    /// A link ticket not redeemed.
    pub ticket: LinkTicket,
    /// A session granted to "alice".
    pub session: SessionGrant,
    /// A visitor token for [`VISITOR_AUDIENCE`], and one for [`VISITOR_ONCE`] not yet used.
    pub visitor_tokens: (String, String),
}

/// Builds a world that stored one record of every type, and snapshots its store.
pub fn snapshot() -> Snapshot {
    block_on(async {
        let store = Arc::new(RecordingStore::default());
        let w = World::new(Some(store.clone()));
        w.configure().await.expect("configure");
        w.visitor_rings().await.expect("visitor rings");
        let ticket = match w.login(LoginIntent::SignIn, LoginOptions::new()).await {
            Ok(LoginOutcome::LinkRequired { ticket, .. }) => ticket,
            other => panic!("expected a link ticket: {other:?}"),
        };
        // A second account's ticket is redeemed (a binding); the first stays pending.
        w.login(
            LoginIntent::Link {
                user: user("alice"),
            },
            LoginOptions::new().return_to("/settings"),
        )
        .await
        .expect("link");
        w.login(
            LoginIntent::Connect {
                connection: connection("box-1"),
            },
            LoginOptions::new(),
        )
        .await
        .expect("connect");
        // A refresh, so that the lease and the refreshed token are stored too.
        w.clock.advance(time::Duration::hours(2));
        w.broker
            .access_token(&w.tenant, &connection("box-1"))
            .await
            .expect("refresh");
        w.clock.set(crate::start());
        w.broker
            .add_privileged_user(&w.tenant, &user("root"))
            .await
            .expect("privileged");
        w.broker
            .set_auth_method(
                &w.tenant,
                cx_sso::AuthMethod::Sso {
                    providers: vec![w.provider.clone()],
                },
                Some(time::Duration::minutes(30)),
            )
            .await
            .expect("policy");
        let session = w
            .broker
            .grant_password_session(&w.tenant, &user("root"))
            .await
            .expect("session");
        let chat = VisitorAudience::new(VISITOR_AUDIENCE).expect("audience");
        let once = VisitorAudience::new(VISITOR_ONCE).expect("audience");
        let claims = VisitorClaims::new("c-42")
            .name("Ada")
            .email("ada@fuzz.test", true);
        let t1 = w
            .broker
            .mint_visitor_token(&w.tenant, &chat, &claims, None)
            .await
            .expect("mint");
        let t2 = w
            .broker
            .mint_visitor_token(&w.tenant, &once, &claims, None)
            .await
            .expect("mint");
        // A used single-use token leaves its jti behind.
        let t3 = w
            .broker
            .mint_visitor_token(&w.tenant, &once, &claims, None)
            .await
            .expect("mint");
        w.broker
            .verify_visitor_token(&w.tenant, &once, &t3)
            .await
            .expect("verify");
        let pending = w
            .begin(LoginIntent::SignIn, LoginOptions::new().return_to("/inbox"))
            .await
            .expect("begin");
        Snapshot {
            records: store.snapshot(crate::start()).await,
            gone: store.gone(crate::start()).await,
            pending,
            ticket,
            session,
            visitor_tokens: (t1, t2),
        }
    })
}

/// A fresh store holding the snapshot's records, the `index`th (modulo the number of live
/// and gone records) with `value` instead of its own; a gone record is stored only when chosen.
pub async fn store_with(snapshot: &Snapshot, index: usize, value: &[u8]) -> Arc<dyn Store> {
    let store = MemoryStore::new();
    let n = (snapshot.records.len() + snapshot.gone.len()).max(1);
    let chosen = index % n;
    let live = snapshot.records.iter().enumerate();
    let gone = snapshot
        .gone
        .iter()
        .enumerate()
        .map(|(i, r)| (i + snapshot.records.len(), r))
        .filter(|(i, _)| *i == chosen);
    for (i, (ns, key, r)) in live.chain(gone) {
        let mut rec = NewRecord::new(if i == chosen {
            value.to_vec()
        } else {
            r.value.clone()
        });
        if let Some(at) = r.expires_at {
            rec = rec.expires_at(at);
        }
        if let Some(ix) = &r.index {
            rec = rec.index(ix.clone());
        }
        store
            .put(ns, key, rec, crate::start())
            .await
            .expect("memory store");
    }
    Arc::new(store)
}
