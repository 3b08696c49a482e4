//! Store round trips per broker operation: how many times each operation goes to its store
//! (a `get_many` is one round trip, whatever its length). A SQL or Redis store pays a network
//! round trip for each, so these are the numbers that bound an operation's latency on a
//! database; the README's bench table gives them.
//!
//! Each test counts the operations of one broker call through a counting `Store` wrapper and
//! asserts the exact sequence, so a change that adds a round trip shows up here.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use cx_sso::store::{CasOutcome, DeleteOutcome, Inserted, NewRecord, Record, Store, StoreError};
use cx_sso::testing::{FakeIdp, FakeUser};
use cx_sso::{
    Broker, CallbackRoute, ClientSecret, ConnectionId, LoginIntent, LoginOptions, LoginOutcome,
    ManualClock, MemoryStore, ProviderConfig, ProviderId, TenantId, UserId, VisitorAudience,
    VisitorClaims, VisitorConfigOptions,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// A [`Store`] that forwards to a `MemoryStore` and records each call as `"op namespace"`
/// (`"get_many ns1+ns2"` for a batch: one round trip).
#[derive(Debug, Default)]
struct CountingStore {
    inner: MemoryStore,
    calls: Mutex<Vec<String>>,
}

impl CountingStore {
    fn record(&self, op: &str, namespace: &str) {
        self.calls.lock().unwrap().push(format!("{op} {namespace}"));
    }

    /// The calls since the last `take_calls`.
    fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

#[async_trait]
impl Store for CountingStore {
    async fn get(
        &self,
        namespace: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        self.record("get", namespace);
        self.inner.get(namespace, key, now).await
    }

    async fn get_many(
        &self,
        keys: &[(&str, &str)],
        now: OffsetDateTime,
    ) -> Result<Vec<Option<Record>>, StoreError> {
        let namespaces: Vec<&str> = keys.iter().map(|(ns, _)| *ns).collect();
        self.record("get_many", &namespaces.join("+"));
        self.inner.get_many(keys, now).await
    }

    async fn insert(
        &self,
        namespace: &str,
        key: &str,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<Inserted, StoreError> {
        self.record("insert", namespace);
        self.inner.insert(namespace, key, record, now).await
    }

    async fn put(
        &self,
        namespace: &str,
        key: &str,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.record("put", namespace);
        self.inner.put(namespace, key, record, now).await
    }

    async fn take(
        &self,
        namespace: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        self.record("take", namespace);
        self.inner.take(namespace, key, now).await
    }

    async fn compare_and_swap(
        &self,
        namespace: &str,
        key: &str,
        expected: u64,
        record: NewRecord,
        now: OffsetDateTime,
    ) -> Result<CasOutcome, StoreError> {
        self.record("compare_and_swap", namespace);
        self.inner
            .compare_and_swap(namespace, key, expected, record, now)
            .await
    }

    async fn compare_and_delete(
        &self,
        namespace: &str,
        key: &str,
        expected: u64,
        now: OffsetDateTime,
    ) -> Result<DeleteOutcome, StoreError> {
        self.record("compare_and_delete", namespace);
        self.inner
            .compare_and_delete(namespace, key, expected, now)
            .await
    }

    async fn delete(
        &self,
        namespace: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.record("delete", namespace);
        self.inner.delete(namespace, key, now).await
    }

    async fn list(
        &self,
        namespace: &str,
        index: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, Record)>, StoreError> {
        self.record("list", namespace);
        self.inner.list(namespace, index, now).await
    }
}

const CLIENT_ID: &str = "client-123.apps.example";
const CLIENT_SECRET: &str = "GOCSPX-super-secret-value";

struct World {
    broker: Broker,
    store: Arc<CountingStore>,
    idp: FakeIdp,
    clock: Arc<ManualClock>,
    tenant: TenantId,
    provider: ProviderId,
}

/// A Google tenant (linking on first login allowed) over a FakeIdp with two users, its
/// discovery document and key set already cached by one bound login of `g-alice` (user
/// `u-alice`), so that the counts are those of a warm node. The call log starts empty.
async fn world() -> World {
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-02 09:00 UTC)));
    let idp = FakeIdp::google().with_clock(clock.clone());
    idp.register_client(CLIENT_ID, CLIENT_SECRET);
    for (subject, email) in [
        ("g-alice", "alice@acme.example"),
        ("g-bob", "bob@acme.example"),
    ] {
        idp.add_user(
            FakeUser::new(subject)
                .email(email)
                .email_verified(true)
                .name(subject)
                .hosted_domain("acme.example"),
        );
    }
    let store = Arc::new(CountingStore::default());
    let broker = Broker::builder()
        .http_client(idp.clone())
        .clock(clock.clone())
        .shared_store(store.clone())
        .public_base_url("https://cx.example.com")
        .build()
        .unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let provider = ProviderId::new("google").unwrap();
    let report = broker
        .configure_provider(
            &tenant,
            ProviderConfig::google(
                provider.clone(),
                CLIENT_ID,
                ClientSecret::new(CLIENT_SECRET),
            ),
        )
        .await
        .unwrap();
    assert!(report.is_ready(), "{report:?}");
    let w = World {
        broker,
        store,
        idp,
        clock,
        tenant,
        provider,
    };
    let out = w
        .login(
            LoginIntent::Link {
                user: UserId::new("u-alice").unwrap(),
            },
            "g-alice",
        )
        .await;
    assert!(matches!(out, LoginOutcome::Linked { .. }), "{out:?}");
    w.store.take_calls();
    w
}

impl World {
    fn route(&self) -> CallbackRoute {
        CallbackRoute::new(self.provider.clone()).with_tenant(self.tenant.clone())
    }

    /// `begin_login` and the user's consent; the call log is emptied after them.
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
        self.store.take_calls();
        (callback, redirect.browser_binding.secret().to_owned())
    }

    async fn login(&self, intent: LoginIntent, subject: &str) -> LoginOutcome {
        let (callback, binding) = self.consent(intent, subject).await;
        self.broker
            .complete_login(&self.route(), &callback, &binding)
            .await
            .unwrap()
    }

    /// Asserts the store calls since the last look, and prints them for `scripts/bench.sh`
    /// (`ROUND_TRIPS`, tab-separated: operation, count, sequence).
    fn assert_round_trips(&self, operation: &str, expected: &[&str]) {
        let calls = self.store.take_calls();
        assert_eq!(calls, expected, "{operation}");
        println!(
            "ROUND_TRIPS\t{operation}\t{}\t{}",
            expected.len(),
            expected.join(", ")
        );
    }
}

fn user(s: &str) -> UserId {
    UserId::new(s).unwrap()
}

fn asset() -> ConnectionId {
    ConnectionId::new("asset-1").unwrap()
}

/// A connected mailbox (`asset-1`); the call log starts empty.
async fn connected() -> World {
    let w = world().await;
    let out = w
        .login(
            LoginIntent::Connect {
                connection: asset(),
            },
            "g-alice",
        )
        .await;
    assert!(matches!(out, LoginOutcome::Connected { .. }), "{out:?}");
    w.store.take_calls();
    w
}

#[tokio::test]
async fn begin_login_reads_the_application_and_the_policy_in_one_round_trip() {
    let w = world().await;
    w.broker
        .begin_login(
            &w.tenant,
            &w.provider,
            LoginIntent::SignIn,
            LoginOptions::new(),
        )
        .await
        .unwrap();
    w.assert_round_trips(
        "`begin_login`",
        &["get_many provider+tenant_policy", "insert pending_login"],
    );
}

/// Three, issue 10's aim: the application and the policy (which holds the tenant's privileged
/// users) are read in one batch after the pending login is taken; the binding, found by the
/// identity the ID token gives, cannot join that batch.
#[tokio::test]
async fn signed_in_login_of_a_bound_user_makes_three_round_trips() {
    let w = world().await;
    let out = w.login(LoginIntent::SignIn, "g-alice").await;
    assert!(matches!(out, LoginOutcome::SignedIn { .. }), "{out:?}");
    w.assert_round_trips(
        "`complete_login` → `SignedIn` (bound user)",
        &[
            "take pending_login",
            "get_many provider+tenant_policy",
            "get binding",
        ],
    );
}

#[tokio::test]
async fn signed_in_login_of_a_privileged_user_makes_three_round_trips() {
    let w = world().await;
    w.broker
        .add_privileged_user(&w.tenant, &user("u-alice"))
        .await
        .unwrap();
    let out = w.login(LoginIntent::SignIn, "g-alice").await;
    let LoginOutcome::SignedIn { session, .. } = out else {
        panic!("a bound user signs in: {out:?}");
    };
    assert!(session.privileged);
    w.assert_round_trips(
        "`complete_login` → `SignedIn` (bound privileged user)",
        &[
            "take pending_login",
            "get_many provider+tenant_policy",
            "get binding",
        ],
    );
}

/// A policy record written before the privileged users moved into it (format 1) does not list
/// them: each sign-in reads the user's `privileged_user` record too, until the next admin write
/// of the policy moves them.
#[tokio::test]
async fn signed_in_login_under_a_policy_record_of_format_1_makes_four_round_trips() {
    let w = world().await;
    let now = cx_sso::Clock::now(&*w.clock);
    let policy = w
        .store
        .inner
        .get("tenant_policy", "acme", now)
        .await
        .unwrap()
        .unwrap();
    let mut json: serde_json::Value = serde_json::from_slice(&policy.value).unwrap();
    assert!(
        json.as_object_mut()
            .unwrap()
            .remove("privileged_users")
            .is_some()
    );
    w.store
        .inner
        .put(
            "tenant_policy",
            "acme",
            NewRecord::new(serde_json::to_vec(&json).unwrap()),
            now,
        )
        .await
        .unwrap();
    let out = w.login(LoginIntent::SignIn, "g-alice").await;
    assert!(matches!(out, LoginOutcome::SignedIn { .. }), "{out:?}");
    w.assert_round_trips(
        "`complete_login` → `SignedIn`, policy record of format 1 (until its next admin write)",
        &[
            "take pending_login",
            "get_many provider+tenant_policy",
            "get binding",
            "get privileged_user",
        ],
    );
    // The next admin write moves the privileged users into the record: three again.
    w.broker
        .add_privileged_user(&w.tenant, &user("u-root"))
        .await
        .unwrap();
    w.login(LoginIntent::SignIn, "g-alice").await;
    assert_eq!(w.store.take_calls().len(), 3);
}

#[tokio::test]
async fn link_required_login_makes_four_round_trips() {
    let w = world().await;
    let out = w.login(LoginIntent::SignIn, "g-bob").await;
    assert!(matches!(out, LoginOutcome::LinkRequired { .. }), "{out:?}");
    w.assert_round_trips(
        "`complete_login` → `LinkRequired` (unbound account)",
        &[
            "take pending_login",
            "get_many provider+tenant_policy",
            "get binding",
            "insert link_ticket",
        ],
    );
}

#[tokio::test]
async fn redeeming_a_link_ticket_makes_three_round_trips() {
    let w = world().await;
    let LoginOutcome::LinkRequired { ticket, .. } = w.login(LoginIntent::SignIn, "g-bob").await
    else {
        panic!("an unbound account needs a link");
    };
    w.store.take_calls();
    w.broker
        .redeem_link_ticket(&w.tenant, &ticket, &user("u-bob"))
        .await
        .unwrap();
    w.assert_round_trips(
        "`redeem_link_ticket`",
        &[
            "take link_ticket",
            "get_many provider+tenant_policy",
            "insert binding",
        ],
    );
}

#[tokio::test]
async fn linking_from_settings_makes_three_round_trips() {
    let w = world().await;
    let out = w
        .login(
            LoginIntent::Link {
                user: user("u-bob"),
            },
            "g-bob",
        )
        .await;
    assert!(matches!(out, LoginOutcome::Linked { .. }), "{out:?}");
    w.assert_round_trips(
        "`complete_login` → `Linked` (from settings)",
        &[
            "take pending_login",
            "get_many provider+tenant_policy",
            "insert binding",
        ],
    );
}

#[tokio::test]
async fn a_replayed_callback_makes_two_round_trips() {
    let w = world().await;
    let (callback, binding) = w.consent(LoginIntent::SignIn, "g-alice").await;
    w.broker
        .complete_login(&w.route(), &callback, &binding)
        .await
        .unwrap();
    w.store.take_calls();
    assert!(
        w.broker
            .complete_login(&w.route(), &callback, &binding)
            .await
            .is_err()
    );
    w.assert_round_trips(
        "`complete_login`, replayed or unknown state (refused)",
        &["take pending_login", "list pending_login"],
    );
}

#[tokio::test]
async fn connecting_a_mailbox_makes_three_round_trips() {
    let w = world().await;
    let out = w
        .login(
            LoginIntent::Connect {
                connection: asset(),
            },
            "g-alice",
        )
        .await;
    assert!(matches!(out, LoginOutcome::Connected { .. }), "{out:?}");
    w.assert_round_trips(
        "`complete_login` → `Connected` (mailbox)",
        &[
            "take pending_login",
            "get_many provider+tenant_policy",
            "put connection",
        ],
    );
}

#[tokio::test]
async fn password_grant_and_session_check_make_one_round_trip_each() {
    let w = world().await;
    let grant = w
        .broker
        .grant_password_session(&w.tenant, &user("u-carol"))
        .await
        .unwrap();
    w.assert_round_trips("`grant_password_session`", &["get tenant_policy"]);
    w.broker.check_session(&grant).await.unwrap();
    w.assert_round_trips("`check_session`", &["get tenant_policy"]);
}

#[tokio::test]
async fn a_valid_access_token_makes_one_round_trip() {
    let w = connected().await;
    w.broker.access_token(&w.tenant, &asset()).await.unwrap();
    w.assert_round_trips("`access_token`, token still valid", &["get connection"]);
}

#[tokio::test]
async fn a_refreshing_access_token_makes_six_round_trips() {
    let w = connected().await;
    w.clock.advance(Duration::minutes(59));
    w.broker.access_token(&w.tenant, &asset()).await.unwrap();
    w.assert_round_trips(
        "`access_token`, refreshing (one node, no contention)",
        &[
            "get connection",
            "insert connection_lease",
            "get connection",
            "get provider",
            "compare_and_swap connection",
            "compare_and_delete connection_lease",
        ],
    );
}

#[tokio::test]
async fn visitor_tokens_make_one_round_trip_and_two_when_single_use() {
    let w = world().await;
    let aud = VisitorAudience::new("brand").unwrap();
    let once = VisitorAudience::new("brand-once").unwrap();
    w.broker
        .create_visitor_config(&w.tenant, &aud, VisitorConfigOptions::default())
        .await
        .unwrap();
    w.broker
        .create_visitor_config(
            &w.tenant,
            &once,
            VisitorConfigOptions::default().with_single_use(true),
        )
        .await
        .unwrap();
    w.store.take_calls();
    let claims = VisitorClaims::new("customer-42");
    let token = w
        .broker
        .mint_visitor_token(&w.tenant, &aud, &claims, None)
        .await
        .unwrap();
    w.assert_round_trips("`mint_visitor_token`", &["get visitor_config"]);
    w.broker
        .verify_visitor_token(&w.tenant, &aud, &token)
        .await
        .unwrap();
    w.assert_round_trips("`verify_visitor_token`", &["get visitor_config"]);
    let token = w
        .broker
        .mint_visitor_token(&w.tenant, &once, &claims, None)
        .await
        .unwrap();
    w.store.take_calls();
    w.broker
        .verify_visitor_token(&w.tenant, &once, &token)
        .await
        .unwrap();
    w.assert_round_trips(
        "`verify_visitor_token`, single-use",
        &["get visitor_config", "insert visitor_jti"],
    );
}
