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
use cx_sso::testing::{FakeIdp, FakeUser, Fault, FaultyStore, Ops};
use cx_sso::{
    AuthMethod, Broker, CallbackRoute, ClientSecret, Clock, ConnectionId, ConnectionStatus, Error,
    ErrorKind, LinkTicket, LinkingPolicy, LoginIntent, LoginOptions, LoginOutcome, ManualClock,
    MemoryStore, ProviderConfig, ProviderId, Store, StoreError, TenantId, UserDirectory, UserId,
    VisitorAdminError, VisitorAudience, VisitorClaims, VisitorConfigOptions,
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

/// The host's users: alice and bob, active, their emails verified by the host.
#[derive(Debug)]
struct Directory;

#[async_trait]
impl UserDirectory for Directory {
    async fn active_users_with_verified_email(
        &self,
        _tenant: &TenantId,
        email: &str,
    ) -> Result<Vec<UserId>, Error> {
        Ok(match email {
            "alice@acme.example" => vec![user("alice")],
            "bob@acme.example" => vec![user("bob")],
            _ => vec![],
        })
    }

    async fn is_active(&self, _tenant: &TenantId, u: &UserId) -> Result<bool, Error> {
        Ok(matches!(u.as_str(), "alice" | "bob"))
    }
}

fn node(idp: &FakeIdp, clock: &Arc<ManualClock>, store: Arc<dyn Store>) -> Broker {
    Broker::builder()
        .user_directory(Arc::new(Directory))
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
            assert!(matches!(inserted.unwrap(), Inserted::Yes { .. }));
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

// ---------------------------------------------------------------------------------------------
// Fault injection: every store operation of every writing broker operation
// ---------------------------------------------------------------------------------------------

/// A broker over a [`FaultyStore`] (over a fresh MemoryStore), with the world's provider.
struct Fx {
    idp: FakeIdp,
    clock: Arc<ManualClock>,
    store: Arc<FaultyStore>,
    broker: Broker,
    tenant: TenantId,
    provider: ProviderId,
    /// A login consented to at the provider, its callback not delivered yet.
    pending: Option<(String, String)>,
    /// A link ticket not redeemed yet.
    ticket: Option<LinkTicket>,
}

/// What the fixtures of one scenario share: the provider (its keys take a while to make) and
/// the clock.
struct World {
    idp: FakeIdp,
    clock: Arc<ManualClock>,
}

impl World {
    fn new() -> Self {
        let clock = Arc::new(ManualClock::new(datetime!(2026-03-02 09:00 UTC)));
        Self {
            idp: new_idp(&clock),
            clock,
        }
    }

    /// A fresh store and broker, without a provider configured.
    fn bare(&self) -> Fx {
        let store = Arc::new(FaultyStore::new(Arc::new(MemoryStore::new())));
        Fx {
            idp: self.idp.clone(),
            clock: self.clock.clone(),
            broker: node(&self.idp, &self.clock, store.clone()),
            store,
            tenant: tenant("acme"),
            provider: pid("google"),
            pending: None,
            ticket: None,
        }
    }

    /// [`fx`](Self::fx) with a login consented to for `intent` as `subject`.
    async fn consented(&self, intent: LoginIntent, subject: &str) -> Fx {
        let mut fx = self.fx().await;
        fx.pending = Some(fx.consent(intent, subject).await);
        fx
    }

    /// A fresh store and broker with the tenant's Google application configured.
    async fn fx(&self) -> Fx {
        let fx = self.bare();
        let report = fx
            .broker
            .configure_provider(&fx.tenant, google(&fx.provider))
            .await
            .unwrap();
        assert!(report.is_ready(), "{report:?}");
        fx
    }
}

impl Fx {
    async fn consent(&self, intent: LoginIntent, subject: &str) -> (String, String) {
        let redirect = self
            .broker
            .begin_login(&self.tenant, &self.provider, intent, LoginOptions::new())
            .await
            .unwrap();
        let callback = self
            .idp
            .authorize(redirect.authorize_url.as_str(), subject)
            .unwrap();
        (callback, redirect.browser_binding.secret().to_owned())
    }

    fn route(&self) -> CallbackRoute {
        CallbackRoute::new(self.provider.clone()).with_tenant(self.tenant.clone())
    }

    /// Delivers the pending login's callback.
    async fn complete(&self) -> Result<LoginOutcome, Error> {
        let (callback, binding) = self.pending.as_ref().expect("a consented login");
        self.broker
            .complete_login(&self.route(), callback, binding)
            .await
    }

    async fn login(&self, intent: LoginIntent, subject: &str) -> Result<LoginOutcome, Error> {
        login_on(
            &self.broker,
            &self.idp,
            &self.tenant,
            &self.provider,
            intent,
            subject,
        )
        .await
    }

    async fn link(&self, u: &str, subject: &str) {
        let out = self
            .login(LoginIntent::Link { user: user(u) }, subject)
            .await
            .unwrap();
        assert!(matches!(out, LoginOutcome::Linked { .. }), "{out:?}");
    }

    async fn connect(&self) -> Result<LoginOutcome, Error> {
        self.login(connect_intent(), "g-support").await
    }

    /// Who `subject` signs in as: `Some(user)`, or `None` when the account is not bound.
    async fn signs_in_as(&self, subject: &str) -> Option<String> {
        match self.login(LoginIntent::SignIn, subject).await.unwrap() {
            LoginOutcome::SignedIn { user, .. } => Some(user.as_str().to_owned()),
            LoginOutcome::LinkRequired { .. } => None,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// The account's bindings are whole: listed under the user it signs in as, and nowhere
    /// else.
    async fn bindings_are_whole(&self, subject: &str) -> Option<String> {
        let bound_to = self.signs_in_as(subject).await;
        for u in ["alice", "bob"] {
            let listed = self
                .broker
                .list_bindings(&self.tenant, &user(u))
                .await
                .unwrap();
            let here = listed.iter().filter(|b| b.subject == subject).count();
            let expected = usize::from(bound_to.as_deref() == Some(u));
            assert_eq!(here, expected, "{subject}'s binding listed under {u}");
        }
        bound_to
    }

    /// Expires the access token, then checks the connection still refreshes: its refresh token
    /// was not lost.
    async fn still_refreshes(&self) {
        // Past any refresh lease a failed call may have left, and past the token's expiry.
        self.clock.advance(Duration::minutes(61));
        let before = self.idp.refresh_requests();
        self.broker
            .access_token(&self.tenant, &cid("asset-1"))
            .await
            .expect("the connection refreshes with its stored refresh token");
        assert_eq!(self.idp.refresh_requests(), before + 1);
        let info = self
            .broker
            .connection_info(&self.tenant, &cid("asset-1"))
            .await
            .unwrap();
        assert!(
            matches!(info.status, ConnectionStatus::Connected { .. }),
            "{:?}",
            info.status
        );
    }
}

/// `result`, after checking that a completed login has the outcome the scenario is about.
fn outcome(result: Result<LoginOutcome, Error>, expected: &str) -> Result<LoginOutcome, Error> {
    if let Ok(o) = &result {
        let got = match o {
            LoginOutcome::SignedIn { .. } => "SignedIn",
            LoginOutcome::LinkRequired { .. } => "LinkRequired",
            LoginOutcome::Linked { .. } => "Linked",
            LoginOutcome::Connected { .. } => "Connected",
            _ => "another outcome",
        };
        assert_eq!(got, expected, "{o:?}");
    }
    result
}

fn connect_intent() -> LoginIntent {
    LoginIntent::Connect {
        connection: cid("asset-1"),
    }
}

fn audience() -> VisitorAudience {
    VisitorAudience::new("brand-acme").unwrap()
}

async fn mints_and_verifies(fx: &Fx) {
    let token = fx
        .broker
        .mint_visitor_token(&fx.tenant, &audience(), &VisitorClaims::new("v-1"), None)
        .await
        .unwrap();
    let visitor = fx
        .broker
        .verify_visitor_token(&fx.tenant, &audience(), &token)
        .await
        .unwrap();
    assert_eq!(visitor.external_id, "v-1");
}

/// Runs `op` on fresh fixtures from `setup`, once healthy to count its store operations, then
/// with each one of them failing in turn: before it reaches the store, and after it was
/// applied (its answer lost). Each failed call must answer a store error
/// ([`ErrorKind::Unavailable`]); `after` then checks, with the store healthy, that nothing was
/// half-written or lost and that the operation succeeds when tried again. With `absorbs`, a
/// call may also succeed despite the fault (a best-effort step failed); `after` checks that
/// outcome too.
async fn fail_each_store_operation<T: std::fmt::Debug>(
    name: &str,
    absorbs: bool,
    setup: impl AsyncFn() -> Fx,
    op: impl AsyncFn(&Fx) -> Result<T, Error>,
    after: impl AsyncFn(&Fx, Result<T, Error>),
) {
    let fx = setup().await;
    let before = fx.store.operations();
    op(&fx)
        .await
        .unwrap_or_else(|e| panic!("{name} fails on a healthy store: {e:?}"));
    let count = fx.store.operations() - before;
    assert!(count > 0, "{name} uses the store");
    for fault in [Fault::FailBefore, Fault::FailAfter] {
        for nth in 1..=count {
            let fx = setup().await;
            fx.store.inject(fault, Ops::All, None, nth);
            let result = op(&fx).await;
            assert_eq!(
                fx.store.injected(),
                1,
                "{name}: store operation {nth} of {count} was reached"
            );
            fx.store.clear();
            match &result {
                Err(e) => assert_eq!(
                    e.kind(),
                    ErrorKind::Unavailable,
                    "{name}, {fault:?} at store operation {nth} of {count}: {e:?}"
                ),
                Ok(v) => assert!(
                    absorbs,
                    "{name} succeeded despite {fault:?} at store operation {nth} of {count}: \
                     {v:?}"
                ),
            }
            after(&fx, result).await;
        }
    }
}

#[tokio::test]
async fn begin_login_fails_closed() {
    let w = World::new();
    fail_each_store_operation(
        "begin_login",
        false,
        async || w.fx().await,
        async |fx| {
            fx.broker
                .begin_login(
                    &fx.tenant,
                    &fx.provider,
                    LoginIntent::SignIn,
                    LoginOptions::new(),
                )
                .await
        },
        async |fx, _| {
            fx.link("alice", SUBJECT).await;
            assert_eq!(fx.signs_in_as(SUBJECT).await.as_deref(), Some("alice"));
        },
    )
    .await;
}

#[tokio::test]
async fn complete_login_signed_in_fails_closed() {
    let w = World::new();
    fail_each_store_operation(
        "complete_login (SignedIn)",
        false,
        async || {
            let fx = w.fx().await;
            fx.link("alice", SUBJECT).await;
            let mut fx = fx;
            fx.pending = Some(fx.consent(LoginIntent::SignIn, SUBJECT).await);
            fx
        },
        async |fx| outcome(fx.complete().await, "SignedIn"),
        async |fx, _| {
            // No session was given; the binding is intact and a new login signs alice in.
            assert_eq!(
                fx.bindings_are_whole(SUBJECT).await.as_deref(),
                Some("alice")
            );
        },
    )
    .await;
}

#[tokio::test]
async fn complete_login_auto_linked_fails_closed() {
    let w = World::new();
    let auto_link = || {
        google(&pid("google")).with_linking_policy(LinkingPolicy::AutoLinkVerifiedEmail {
            allowed_domains: vec![],
            entra_verified_domains: vec![],
            link_on_first_login: false,
        })
    };
    fail_each_store_operation(
        "complete_login (SignedIn, linked automatically)",
        false,
        async || {
            let mut fx = w.fx().await;
            fx.broker
                .configure_provider(&fx.tenant, auto_link())
                .await
                .unwrap();
            fx.pending = Some(fx.consent(LoginIntent::SignIn, SUBJECT).await);
            fx
        },
        async |fx| outcome(fx.complete().await, "SignedIn"),
        async |fx, _| {
            // No session was given. Bound whole to alice or not at all; signing in again
            // signs alice in (linking her then if it did not happen).
            assert_eq!(
                fx.bindings_are_whole(SUBJECT).await.as_deref(),
                Some("alice")
            );
        },
    )
    .await;
}

#[tokio::test]
async fn complete_login_link_required_fails_closed() {
    let w = World::new();
    fail_each_store_operation(
        "complete_login (LinkRequired)",
        false,
        async || w.consented(LoginIntent::SignIn, SUBJECT).await,
        async |fx| outcome(fx.complete().await, "LinkRequired"),
        async |fx, _| {
            // Nothing bound; a new sign-in asks for the link again, and the link goes through.
            assert_eq!(fx.bindings_are_whole(SUBJECT).await, None);
            let Ok(LoginOutcome::LinkRequired { ticket, .. }) =
                fx.login(LoginIntent::SignIn, SUBJECT).await
            else {
                panic!("expected LinkRequired");
            };
            fx.broker
                .redeem_link_ticket(&fx.tenant, &ticket, &user("alice"))
                .await
                .unwrap();
            assert_eq!(fx.signs_in_as(SUBJECT).await.as_deref(), Some("alice"));
        },
    )
    .await;
}

#[tokio::test]
async fn complete_login_linked_fails_closed() {
    let w = World::new();
    let link = || LoginIntent::Link {
        user: user("alice"),
    };
    fail_each_store_operation(
        "complete_login (Linked)",
        false,
        async || w.consented(link(), SUBJECT).await,
        async |fx| outcome(fx.complete().await, "Linked"),
        async |fx, _| {
            // Bound whole to alice (the write landed) or not at all; linking again works.
            let bound = fx.bindings_are_whole(SUBJECT).await;
            assert!(
                matches!(bound.as_deref(), None | Some("alice")),
                "{bound:?}"
            );
            let out = fx.login(link(), SUBJECT).await.unwrap();
            assert!(matches!(out, LoginOutcome::Linked { .. }), "{out:?}");
            assert_eq!(
                fx.bindings_are_whole(SUBJECT).await.as_deref(),
                Some("alice")
            );
        },
    )
    .await;
}

#[tokio::test]
async fn complete_login_connected_fails_closed() {
    let w = World::new();
    fail_each_store_operation(
        "complete_login (Connected)",
        false,
        async || w.consented(connect_intent(), "g-support").await,
        async |fx| outcome(fx.complete().await, "Connected"),
        async |fx, _| {
            // Connected whole (the write landed) or not at all; connecting again works and
            // the stored refresh token refreshes.
            match fx.broker.connection_info(&fx.tenant, &cid("asset-1")).await {
                Ok(info) => assert!(
                    matches!(info.status, ConnectionStatus::Connected { .. }),
                    "{info:?}"
                ),
                Err(e) => assert_eq!(e.kind(), ErrorKind::NotFound, "{e:?}"),
            }
            let out = fx.connect().await.unwrap();
            assert!(matches!(out, LoginOutcome::Connected { .. }), "{out:?}");
            fx.still_refreshes().await;
        },
    )
    .await;
}

#[tokio::test]
async fn redeem_link_ticket_fails_closed() {
    let w = World::new();
    fail_each_store_operation(
        "redeem_link_ticket",
        false,
        async || {
            let mut fx = w.fx().await;
            let Ok(LoginOutcome::LinkRequired { ticket, .. }) =
                fx.login(LoginIntent::SignIn, SUBJECT).await
            else {
                panic!("expected LinkRequired");
            };
            fx.ticket = Some(ticket);
            fx
        },
        async |fx| {
            let ticket = fx.ticket.as_ref().expect("a ticket");
            fx.broker
                .redeem_link_ticket(&fx.tenant, ticket, &user("bob"))
                .await
        },
        async |fx, _| {
            // No session was given. Bound whole to bob or not at all; the user gets there by
            // signing in again (and redeeming the new ticket if asked).
            let bound = fx.bindings_are_whole(SUBJECT).await;
            assert!(matches!(bound.as_deref(), None | Some("bob")), "{bound:?}");
            if bound.is_none() {
                let Ok(LoginOutcome::LinkRequired { ticket, .. }) =
                    fx.login(LoginIntent::SignIn, SUBJECT).await
                else {
                    panic!("expected LinkRequired");
                };
                let redeemed = fx
                    .broker
                    .redeem_link_ticket(&fx.tenant, &ticket, &user("bob"))
                    .await
                    .unwrap();
                assert_eq!(redeemed.binding.user, user("bob"));
            }
            assert_eq!(fx.bindings_are_whole(SUBJECT).await.as_deref(), Some("bob"));
        },
    )
    .await;
}

#[tokio::test]
async fn unbind_fails_closed() {
    let w = World::new();
    fail_each_store_operation(
        "unbind",
        false,
        async || {
            let fx = w.fx().await;
            fx.link("alice", SUBJECT).await;
            fx
        },
        async |fx| {
            let id = fx.broker.list_bindings(&fx.tenant, &user("alice")).await?[0].id();
            fx.broker.unbind(&fx.tenant, &user("alice"), &id).await
        },
        async |fx, _| {
            // Still bound whole, or removed whole; unbinding again leaves it removed.
            let bound = fx.bindings_are_whole(SUBJECT).await;
            assert!(
                matches!(bound.as_deref(), None | Some("alice")),
                "{bound:?}"
            );
            if bound.is_some() {
                let id = fx
                    .broker
                    .list_bindings(&fx.tenant, &user("alice"))
                    .await
                    .unwrap()[0]
                    .id();
                fx.broker
                    .unbind(&fx.tenant, &user("alice"), &id)
                    .await
                    .unwrap();
            }
            assert_eq!(fx.bindings_are_whole(SUBJECT).await, None);
        },
    )
    .await;
}

fn sso(fx: &Fx) -> AuthMethod {
    AuthMethod::Sso {
        providers: vec![fx.provider.clone()],
    }
}

#[tokio::test]
async fn set_auth_method_fails_closed() {
    let w = World::new();
    fail_each_store_operation(
        "set_auth_method (now)",
        false,
        async || w.fx().await,
        async |fx| {
            fx.broker
                .set_auth_method(&fx.tenant, sso(fx), Some(Duration::ZERO))
                .await
        },
        async |fx, _| {
            // The policy is the old one or the new one, whole; setting it again works.
            let status = fx.broker.tenant_auth_status(&fx.tenant).await.unwrap();
            assert!(
                matches!(status.method, AuthMethod::Either | AuthMethod::Sso { .. }),
                "{status:?}"
            );
            fx.broker
                .set_auth_method(&fx.tenant, sso(fx), Some(Duration::ZERO))
                .await
                .unwrap();
            let status = fx.broker.tenant_auth_status(&fx.tenant).await.unwrap();
            assert_eq!(status.method, sso(fx));
            assert_eq!(status.pending, None);
        },
    )
    .await;
}

#[tokio::test]
async fn scheduling_an_auth_method_switch_fails_closed() {
    let w = World::new();
    fail_each_store_operation(
        "set_auth_method (scheduled)",
        false,
        async || w.fx().await,
        async |fx| fx.broker.set_auth_method(&fx.tenant, sso(fx), None).await,
        async |fx, _| {
            let status = fx.broker.tenant_auth_status(&fx.tenant).await.unwrap();
            assert_eq!(status.method, AuthMethod::Either, "{status:?}");
            fx.broker
                .set_auth_method(&fx.tenant, sso(fx), None)
                .await
                .unwrap();
            let status = fx.broker.tenant_auth_status(&fx.tenant).await.unwrap();
            assert_eq!(status.pending.map(|(m, _)| m), Some(sso(fx)));
        },
    )
    .await;
}

#[tokio::test]
async fn cancelling_an_auth_method_switch_fails_closed() {
    let w = World::new();
    fail_each_store_operation(
        "cancel_auth_method_switch",
        false,
        async || {
            let fx = w.fx().await;
            fx.broker
                .set_auth_method(&fx.tenant, sso(&fx), None)
                .await
                .unwrap();
            fx
        },
        async |fx| fx.broker.cancel_auth_method_switch(&fx.tenant).await,
        async |fx, _| {
            fx.broker
                .cancel_auth_method_switch(&fx.tenant)
                .await
                .unwrap();
            let status = fx.broker.tenant_auth_status(&fx.tenant).await.unwrap();
            assert_eq!((status.method, status.pending), (AuthMethod::Either, None));
        },
    )
    .await;
}

/// [`World::fx`] enforcing SSO, its privileged users `users` stored the way versions before
/// the policy record listed them did: `privileged_user` records, a policy record without the
/// list.
async fn old_layout(w: &World, users: &[&str]) -> Fx {
    let fx = w.fx().await;
    fx.broker
        .set_auth_method(&fx.tenant, sso(&fx), Some(Duration::ZERO))
        .await
        .unwrap();
    let now = fx.clock.now();
    let t = fx.tenant.as_str();
    let policy = fx
        .store
        .get("tenant_policy", t, now)
        .await
        .unwrap()
        .unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&policy.value).unwrap();
    json.as_object_mut().unwrap().remove("privileged_users");
    fx.store
        .put(
            "tenant_policy",
            t,
            NewRecord::new(serde_json::to_vec(&json).unwrap()),
            now,
        )
        .await
        .unwrap();
    for u in users {
        fx.store
            .put(
                "privileged_user",
                &format!("{t}|{u}"),
                NewRecord::new(u.as_bytes().to_vec()).index(t),
                now,
            )
            .await
            .unwrap();
    }
    fx
}

impl Fx {
    /// Whether `u` may sign in with a password now (SSO is enforced: only if privileged).
    async fn has_password_bypass(&self, u: &str) -> bool {
        match self
            .broker
            .grant_password_session(&self.tenant, &user(u))
            .await
        {
            Ok(grant) => grant.privileged,
            Err(Error::Policy(cx_sso::PolicyError::PasswordNotAllowed { .. })) => false,
            Err(e) => panic!("{e:?}"),
        }
    }
}

#[tokio::test]
async fn adding_a_privileged_user_fails_closed_and_keeps_those_stored_the_old_way() {
    let w = World::new();
    fail_each_store_operation(
        "add_privileged_user (moving the old records)",
        false,
        async || old_layout(&w, &["root"]).await,
        async |fx| {
            fx.broker
                .add_privileged_user(&fx.tenant, &user("bob"))
                .await
        },
        async |fx, _| {
            // root, stored the old way, is never lost; adding bob again completes the move.
            assert!(fx.has_password_bypass("root").await);
            fx.broker
                .add_privileged_user(&fx.tenant, &user("bob"))
                .await
                .unwrap();
            assert!(fx.has_password_bypass("bob").await);
            assert!(fx.has_password_bypass("root").await);
            assert!(!fx.has_password_bypass("alice").await);
            assert_eq!(
                fx.broker.list_privileged_users(&fx.tenant).await.unwrap(),
                vec![user("bob"), user("root")]
            );
        },
    )
    .await;
}

#[tokio::test]
async fn removing_a_privileged_user_fails_closed() {
    let w = World::new();
    fail_each_store_operation(
        "remove_privileged_user (moving the old records)",
        false,
        async || old_layout(&w, &["root", "bob"]).await,
        async |fx| {
            fx.broker
                .remove_privileged_user(&fx.tenant, &user("root"))
                .await
        },
        async |fx, _| {
            // bob keeps the bypass whatever failed; removing root again ends root's.
            assert!(fx.has_password_bypass("bob").await);
            fx.broker
                .remove_privileged_user(&fx.tenant, &user("root"))
                .await
                .unwrap();
            assert!(!fx.has_password_bypass("root").await);
            assert!(fx.has_password_bypass("bob").await);
        },
    )
    .await;
}

#[tokio::test]
async fn configure_provider_fails_closed() {
    let w = World::new();
    fail_each_store_operation(
        "configure_provider",
        false,
        async || w.bare(),
        async |fx| {
            fx.broker
                .configure_provider(&fx.tenant, google(&fx.provider))
                .await
        },
        async |fx, _| {
            // Configured whole or not at all; configuring again makes it ready and usable.
            let listed = fx.broker.list_providers(&fx.tenant).await.unwrap();
            assert!(listed.len() <= 1, "{listed:?}");
            let report = fx
                .broker
                .configure_provider(&fx.tenant, google(&fx.provider))
                .await
                .unwrap();
            assert!(report.is_ready(), "{report:?}");
            fx.link("alice", SUBJECT).await;
        },
    )
    .await;
}

#[tokio::test]
async fn create_visitor_config_fails_closed() {
    let w = World::new();
    fail_each_store_operation(
        "create_visitor_config",
        false,
        async || w.fx().await,
        async |fx| {
            fx.broker
                .create_visitor_config(&fx.tenant, &audience(), VisitorConfigOptions::default())
                .await
        },
        async |fx, _| {
            // Created whole (its key never handed out: the admin rotates it) or not at all.
            match fx
                .broker
                .create_visitor_config(&fx.tenant, &audience(), VisitorConfigOptions::default())
                .await
            {
                Ok(_) => {}
                Err(Error::VisitorAdmin(VisitorAdminError::ConfigExists)) => {
                    let new = fx
                        .broker
                        .add_visitor_key(&fx.tenant, &audience())
                        .await
                        .unwrap();
                    fx.broker
                        .promote_visitor_key(&fx.tenant, &audience(), new.kid())
                        .await
                        .unwrap();
                }
                Err(e) => panic!("unexpected {e:?}"),
            }
            mints_and_verifies(fx).await;
        },
    )
    .await;
}

#[tokio::test]
async fn rotating_a_visitor_key_fails_closed() {
    let w = World::new();
    fail_each_store_operation(
        "add_visitor_key + promote_visitor_key",
        false,
        async || {
            let fx = w.fx().await;
            fx.broker
                .create_visitor_config(&fx.tenant, &audience(), VisitorConfigOptions::default())
                .await
                .unwrap();
            fx
        },
        async |fx| {
            let new = fx.broker.add_visitor_key(&fx.tenant, &audience()).await?;
            fx.broker
                .promote_visitor_key(&fx.tenant, &audience(), new.kid())
                .await?;
            Ok(new.kid().clone())
        },
        async |fx, _| {
            // The ring still signs and verifies, and the rotation goes through when retried.
            mints_and_verifies(fx).await;
            let new = fx
                .broker
                .add_visitor_key(&fx.tenant, &audience())
                .await
                .unwrap();
            fx.broker
                .promote_visitor_key(&fx.tenant, &audience(), new.kid())
                .await
                .unwrap();
            mints_and_verifies(fx).await;
        },
    )
    .await;
}

#[tokio::test]
async fn access_token_refresh_fails_closed_and_keeps_the_refresh_token() {
    let w = World::new();
    fail_each_store_operation(
        "access_token (refresh)",
        // Releasing the refresh lease is best effort (the token was stored already), and a
        // failed write of the new tokens is tried again.
        true,
        async || {
            let fx = w.fx().await;
            fx.connect().await.unwrap();
            fx.clock.advance(Duration::minutes(58));
            fx
        },
        async |fx| {
            fx.broker
                .access_token(&fx.tenant, &cid("asset-1"))
                .await
                .map(|t| t.secret().to_owned())
        },
        async |fx, result| {
            if let Ok(token) = result {
                // Only a fault after the new token was stored may be absorbed: what was
                // handed out is what is stored.
                let again = fx
                    .broker
                    .access_token(&fx.tenant, &cid("asset-1"))
                    .await
                    .unwrap();
                assert_eq!(again.secret(), token);
            }
            fx.still_refreshes().await;
        },
    )
    .await;
}

#[tokio::test]
async fn access_token_refresh_at_a_rotating_provider_keeps_the_rotated_refresh_token() {
    // The provider rotates refresh tokens and revokes the grant when a rotated-out one comes
    // back: if the new one does not reach the store, the connection is lost.
    let w = World::new();
    w.idp.set_refresh_rotation(true);
    fail_each_store_operation(
        "access_token (refresh, rotating provider)",
        true,
        async || {
            let fx = w.fx().await;
            fx.connect().await.unwrap();
            fx.clock.advance(Duration::minutes(58));
            fx
        },
        async |fx| {
            fx.broker
                .access_token(&fx.tenant, &cid("asset-1"))
                .await
                .map(|t| t.secret().to_owned())
        },
        async |fx, result| {
            if let Ok(token) = result {
                let again = fx
                    .broker
                    .access_token(&fx.tenant, &cid("asset-1"))
                    .await
                    .unwrap();
                assert_eq!(
                    again.secret(),
                    token,
                    "what was handed out is what is stored"
                );
            }
            fx.still_refreshes().await;
        },
    )
    .await;
}
