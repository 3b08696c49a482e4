//! The broker over a store that fails or races on purpose: every writing operation fails
//! closed when any one of its store operations fails (before reaching the store, or after being
//! applied with its answer lost), and conditional deletes never remove what another node wrote
//! between a read and the delete.
#![cfg(feature = "test-util")]

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use common::{CLIENT_ID, CLIENT_SECRET, pid, tenant, user};
use cx_sso::store::{CasOutcome, DeleteOutcome, Inserted, NewRecord, Record};
use cx_sso::testing::{FakeIdp, FakeUser};
use cx_sso::{
    Broker, CallbackRoute, ClientSecret, Clock, ConnectionId, Error, ErrorKind, LoginIntent,
    LoginOptions, LoginOutcome, ManualClock, MemoryStore, ProviderConfig, ProviderId, Store,
    StoreError, TenantId,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

// ---------------------------------------------------------------------------------------------
// Set-up
// ---------------------------------------------------------------------------------------------

type Interleaved = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A store that, just before the first delete (conditional or not) in one namespace, lets
/// another node's writes happen: the window between a read and the delete that follows it.
#[derive(Default)]
struct Interleaving {
    inner: Arc<MemoryStore>,
    before_delete: Mutex<Option<(&'static str, Interleaved)>>,
}

impl std::fmt::Debug for Interleaving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Interleaving")
    }
}

impl Interleaving {
    fn before_first_delete_in(&self, namespace: &'static str, writes: Interleaved) {
        *self.before_delete.lock().unwrap() = Some((namespace, writes));
    }

    async fn interleave(&self, namespace: &str) {
        let writes = {
            let mut slot = self.before_delete.lock().unwrap();
            match slot.take() {
                Some((ns, writes)) if ns == namespace => Some(writes),
                other => {
                    *slot = other;
                    None
                }
            }
        };
        if let Some(writes) = writes {
            writes.await;
        }
    }
}

#[async_trait]
impl Store for Interleaving {
    async fn get(
        &self,
        ns: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        self.inner.get(ns, key, now).await
    }
    async fn insert(
        &self,
        ns: &str,
        key: &str,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<Inserted, StoreError> {
        self.inner.insert(ns, key, record, now).await
    }
    async fn put(
        &self,
        ns: &str,
        key: &str,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.inner.put(ns, key, record, now).await
    }
    async fn take(
        &self,
        ns: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        self.inner.take(ns, key, now).await
    }
    async fn compare_and_swap(
        &self,
        ns: &str,
        key: &str,
        expected: u64,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<CasOutcome, StoreError> {
        self.inner
            .compare_and_swap(ns, key, expected, record, now)
            .await
    }
    async fn compare_and_delete(
        &self,
        ns: &str,
        key: &str,
        expected: u64,
        now: OffsetDateTime,
    ) -> Result<DeleteOutcome, StoreError> {
        self.interleave(ns).await;
        self.inner.compare_and_delete(ns, key, expected, now).await
    }
    async fn delete(&self, ns: &str, key: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.interleave(ns).await;
        self.inner.delete(ns, key, now).await
    }
    async fn list(
        &self,
        ns: &str,
        index: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, Record)>, StoreError> {
        self.inner.list(ns, index, now).await
    }
}

const SUBJECT: &str = "g-alice";
const MAILBOX: &str = "support@acme.example";

fn cid(s: &str) -> ConnectionId {
    ConnectionId::new(s).unwrap()
}

fn new_idp(clock: &Arc<ManualClock>) -> FakeIdp {
    let idp = FakeIdp::google().with_clock(clock.clone());
    idp.register_client(CLIENT_ID, CLIENT_SECRET);
    idp.add_user(
        FakeUser::new(SUBJECT)
            .email("alice@acme.example")
            .email_verified(true)
            .name("Alice"),
    );
    idp.add_user(
        FakeUser::new("g-support")
            .email(MAILBOX)
            .email_verified(true),
    );
    idp
}

fn node(idp: &FakeIdp, clock: &Arc<ManualClock>, store: Arc<dyn Store>) -> Broker {
    Broker::builder()
        .http_client(idp.clone())
        .clock(clock.clone())
        .shared_store(store)
        .public_base_url("https://cx.example.com")
        .build()
        .unwrap()
}

fn google(provider: &ProviderId) -> ProviderConfig {
    ProviderConfig::google(
        provider.clone(),
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    )
}

/// Begins a login on `broker`, consents as `subject` and completes it.
async fn login_on(
    broker: &Broker,
    idp: &FakeIdp,
    tenant: &TenantId,
    provider: &ProviderId,
    intent: LoginIntent,
    subject: &str,
) -> Result<LoginOutcome, Error> {
    let redirect = broker
        .begin_login(tenant, provider, intent, LoginOptions::new())
        .await?;
    let callback = idp
        .authorize(redirect.authorize_url.as_str(), subject)
        .unwrap();
    broker
        .complete_login(
            &CallbackRoute::new(provider.clone()).with_tenant(tenant.clone()),
            &callback,
            redirect.browser_binding.secret(),
        )
        .await
}

// ---------------------------------------------------------------------------------------------
// Conditional deletes: a write between the read and the delete survives
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unbind_never_removes_a_binding_remade_for_another_user_meanwhile() {
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-02 09:00 UTC)));
    let idp = new_idp(&clock);
    let store = Arc::new(Interleaving::default());
    let node_a = node(&idp, &clock, store.clone());
    // Node B talks to the same records without the interleaving.
    let node_b = node(&idp, &clock, store.inner.clone());
    let (t, p) = (tenant("acme"), pid("google"));
    node_a.configure_provider(&t, google(&p)).await.unwrap();
    let link = |u: &str| LoginIntent::Link { user: user(u) };
    login_on(&node_a, &idp, &t, &p, link("alice"), SUBJECT)
        .await
        .unwrap();
    let id = node_a.list_bindings(&t, &user("alice")).await.unwrap()[0].id();

    // Between node A's read of alice's binding and its delete, node B unbinds it and bob
    // links the same account.
    let (b, idp_b, t_b, p_b, id_b) = (
        node_b.clone(),
        idp.clone(),
        t.clone(),
        p.clone(),
        id.clone(),
    );
    store.before_first_delete_in(
        "binding",
        Box::pin(async move {
            b.unbind(&t_b, &user("alice"), &id_b).await.unwrap();
            let out = login_on(&b, &idp_b, &t_b, &p_b, link("bob"), SUBJECT)
                .await
                .unwrap();
            assert!(matches!(out, LoginOutcome::Linked { .. }), "{out:?}");
        }),
    );
    let err = node_a
        .unbind(&t, &user("alice"), &id)
        .await
        .expect_err("alice's binding is gone; bob's is not hers to remove");
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
    let bobs = node_b.list_bindings(&t, &user("bob")).await.unwrap();
    assert_eq!(bobs.len(), 1, "bob's binding survives alice's unbind");
    assert_eq!(bobs[0].subject, SUBJECT);
}

#[tokio::test]
async fn a_lease_released_late_leaves_the_next_holders_lease_alone() {
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-02 09:00 UTC)));
    let idp = new_idp(&clock);
    let store = Arc::new(Interleaving::default());
    let broker = node(&idp, &clock, store.clone());
    let (t, p) = (tenant("acme"), pid("gmail"));
    broker.configure_provider(&t, google(&p)).await.unwrap();
    let connect = LoginIntent::Connect {
        connection: cid("asset-1"),
    };
    let out = login_on(&broker, &idp, &t, &p, connect, "g-support")
        .await
        .unwrap();
    assert!(matches!(out, LoginOutcome::Connected { .. }), "{out:?}");
    clock.advance(Duration::minutes(58));

    // While this node refreshes, its lease expires and node B takes the next one.
    let (inner, c) = (store.inner.clone(), clock.clone());
    store.before_first_delete_in(
        "connection_lease",
        Box::pin(async move {
            let now = c.now();
            inner
                .delete("connection_lease", "acme|asset-1", now)
                .await
                .unwrap();
            let lease = NewRecord::new(b"node-b".to_vec()).expires_at(now + Duration::seconds(120));
            let inserted = inner
                .insert("connection_lease", "acme|asset-1", lease, now)
                .await;
            assert_eq!(inserted.unwrap(), Inserted::Yes);
        }),
    );
    broker.access_token(&t, &cid("asset-1")).await.unwrap();
    assert_eq!(idp.refresh_requests(), 1);
    let lease = store
        .inner
        .get("connection_lease", "acme|asset-1", clock.now())
        .await
        .unwrap()
        .expect("node B's lease is still there");
    assert_eq!(lease.value, b"node-b");
}
