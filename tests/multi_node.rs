//! Two nodes (two brokers, each with its own store connections and in-process caches) over one
//! database, against one FakeIdp: what one node begins the other completes, what must happen
//! once happens once across both, and a restart on the same database loses nothing. Every
//! scenario runs on PostgreSQL alone and on Redis (short-lived namespaces) + PostgreSQL.
//!
//! Needs `CX_SSO_TEST_POSTGRES_URL` and `CX_SSO_TEST_REDIS_URL` (`scripts/test-services.sh`
//! starts both servers and sets them); under `CI=true` their absence fails. Each test works in
//! a tenant of its own (every durable key holds the tenant; the short-lived ones are random)
//! and, on Redis, under a key prefix of its own, so tests run in parallel and repeatedly on one
//! database.
#![cfg(all(
    feature = "test-util",
    feature = "postgres",
    feature = "redis",
    feature = "tokio"
))]

mod common;
mod stores;

use std::sync::Arc;

use common::{CLIENT_ID, CLIENT_SECRET, pid, user};
use cx_sso::store::{
    RedisStore, RedisStoreOptions, SHORT_LIVED_NAMESPACES, SplitStore, SqlStore, SqlStoreOptions,
};
use cx_sso::testing::{FakeIdp, FakeUser};
use cx_sso::{
    AuthMethod, BindingError, Broker, CallbackRoute, ClientSecret, ConnectionId, ConnectionStatus,
    Error, ErrorKind, LoginIntent, LoginOptions, LoginOutcome, ManualClock, ProviderConfig,
    ProviderId, StateError, Store, TenantId, TokioRuntime, VisitorAudience, VisitorClaims,
    VisitorConfigOptions,
};
use time::{Duration, OffsetDateTime};

const PG_VAR: &str = "CX_SSO_TEST_POSTGRES_URL";
const REDIS_VAR: &str = "CX_SSO_TEST_REDIS_URL";
const ISSUER: &str = "https://idp.example.test";
const MAILBOX_SUBJECT: &str = "o-support";

/// Where the nodes keep their records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// Everything in PostgreSQL.
    Postgres,
    /// The short-lived namespaces in Redis, the rest in PostgreSQL.
    RedisPostgres,
}

/// What the nodes of one test share: the database (reached through each node's own
/// connections), the provider, the clock, and the tenant the test works in.
struct Cluster {
    backend: Backend,
    pg_url: String,
    redis_url: Option<String>,
    redis_prefix: String,
    idp: FakeIdp,
    clock: Arc<ManualClock>,
    tenant: TenantId,
    provider: ProviderId,
}

impl Cluster {
    /// A cluster on `backend`, or `None` (printed) outside CI when a server is missing.
    async fn new(backend: Backend) -> Option<Self> {
        let pg_url = stores::service_url(PG_VAR, "PostgreSQL")?;
        let redis_url = match backend {
            Backend::Postgres => None,
            Backend::RedisPostgres => Some(stores::service_url(REDIS_VAR, "Redis")?),
        };
        // Near the real time: Redis expires its keys on its own clock (plus a grace).
        let start = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
        let clock = Arc::new(ManualClock::new(start));
        let idp = FakeIdp::oidc(ISSUER).with_clock(clock.clone());
        // Rotation with reuse detection: a refresh token lost or posted twice kills the grant.
        idp.set_refresh_rotation(true);
        idp.register_client(CLIENT_ID, CLIENT_SECRET);
        for (subject, email) in [
            ("o-alice", "alice@acme.example"),
            ("o-shared", "shared@acme.example"),
            (MAILBOX_SUBJECT, "support@acme.example"),
        ] {
            idp.add_user(FakeUser::new(subject).email(email).email_verified(true));
        }
        let cluster = Self {
            backend,
            pg_url,
            redis_url,
            redis_prefix: format!("{{cxsso-nodes-{:016x}}}", rand::random::<u64>()),
            idp,
            clock,
            tenant: TenantId::new(format!("t-{:016x}", rand::random::<u64>())).unwrap(),
            provider: pid("okta"),
        };
        // A first connection checks the servers are there (skipping outside CI if not) and
        // migrates the schema.
        let sql = stores::connect_or_skip("PostgreSQL", cluster.sql()).await?;
        sql.migrate().await.unwrap();
        if let Some(url) = &cluster.redis_url {
            stores::connect_or_skip("Redis", RedisStore::connect(url)).await?;
        }
        Some(cluster)
    }

    async fn sql(&self) -> Result<SqlStore, cx_sso::StoreError> {
        let options = SqlStoreOptions::new()
            .max_connections(6)
            .acquire_timeout(std::time::Duration::from_secs(60));
        SqlStore::postgres_with(&self.pg_url, options).await
    }

    /// A node: a broker with store connections and caches of its own, spawning and sleeping
    /// on the test's tokio runtime (so it waits for the other node's refresh lease).
    async fn node(&self) -> Broker {
        let sql: Arc<dyn Store> = Arc::new(self.sql().await.unwrap());
        let store: Arc<dyn Store> = match &self.redis_url {
            None => sql,
            Some(url) => {
                let options = RedisStoreOptions::new().prefix(self.redis_prefix.clone());
                let redis = RedisStore::connect_with(url, options).await.unwrap();
                Arc::new(SplitStore::new(
                    sql,
                    Arc::new(redis),
                    SHORT_LIVED_NAMESPACES.iter().copied(),
                ))
            }
        };
        Broker::builder()
            .http_client(self.idp.clone())
            .clock(self.clock.clone())
            .shared_store(store)
            .public_base_url("https://cx.example.com")
            .runtime(TokioRuntime::current().unwrap())
            .build()
            .unwrap()
    }

    /// Two nodes, with the tenant's application configured through the first.
    async fn two_nodes(&self) -> (Broker, Broker) {
        let (a, b) = (self.node().await, self.node().await);
        let config = ProviderConfig::oidc(
            self.provider.clone(),
            ISSUER,
            CLIENT_ID,
            ClientSecret::new(CLIENT_SECRET),
        );
        let report = a.configure_provider(&self.tenant, config).await.unwrap();
        assert!(report.is_ready(), "{report:?}");
        (a, b)
    }

    fn route(&self) -> CallbackRoute {
        CallbackRoute::new(self.provider.clone()).with_tenant(self.tenant.clone())
    }

    /// Begins a login on `node` and plays the user's consent: the callback query and the
    /// browser binding.
    async fn consent(&self, node: &Broker, intent: LoginIntent, subject: &str) -> (String, String) {
        let redirect = node
            .begin_login(&self.tenant, &self.provider, intent, LoginOptions::new())
            .await
            .unwrap();
        let callback = self
            .idp
            .authorize(redirect.authorize_url.as_str(), subject)
            .unwrap();
        (callback, redirect.browser_binding.secret().to_owned())
    }

    /// A whole login on one node.
    async fn login(
        &self,
        node: &Broker,
        intent: LoginIntent,
        subject: &str,
    ) -> Result<LoginOutcome, Error> {
        let (callback, binding) = self.consent(node, intent, subject).await;
        node.complete_login(&self.route(), &callback, &binding)
            .await
    }

    /// Connects the mailbox `asset-1` through `node`.
    async fn connect_mailbox(&self, node: &Broker) {
        let intent = LoginIntent::Connect {
            connection: asset(),
        };
        let out = self.login(node, intent, MAILBOX_SUBJECT).await.unwrap();
        assert!(matches!(out, LoginOutcome::Connected { .. }), "{out:?}");
    }

    /// Moves the clock to within the refresh margin of the access token's expiry.
    fn expire_access_tokens(&self) {
        self.clock.advance(Duration::minutes(58));
    }
}

fn asset() -> ConnectionId {
    ConnectionId::new("asset-1").unwrap()
}

fn link(u: &str) -> LoginIntent {
    LoginIntent::Link { user: user(u) }
}

/// Declares each scenario as one test per backend.
macro_rules! on_each_backend {
    ($($scenario:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let Some(c) = super::Cluster::new(super::Backend::Postgres).await else {
                        return;
                    };
                    super::$scenario(c).await;
                }
            )*
        }
        mod redis_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let Some(c) = super::Cluster::new(super::Backend::RedisPostgres).await else {
                        return;
                    };
                    super::$scenario(c).await;
                }
            )*
        }
    };
}

on_each_backend!(
    a_login_begun_on_one_node_completes_on_the_other,
    one_callback_sent_to_both_nodes_at_once_succeeds_once,
    a_hundred_callers_on_both_nodes_make_one_token_request,
    one_identity_linked_on_both_nodes_at_once_has_one_winner,
    two_link_tickets_of_one_identity_redeemed_at_once_have_one_winner,
    a_restart_on_the_same_database_loses_nothing,
);

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

async fn a_login_begun_on_one_node_completes_on_the_other(c: Cluster) {
    let (a, b) = c.two_nodes().await;
    let (callback, binding) = c.consent(&a, link("alice"), "o-alice").await;
    let out = b.complete_login(&c.route(), &callback, &binding).await;
    assert!(matches!(out, Ok(LoginOutcome::Linked { .. })), "{out:?}");
    // And a sign-in begun on B completes on A, as the user bound on B.
    let (callback, binding) = c.consent(&b, LoginIntent::SignIn, "o-alice").await;
    match a.complete_login(&c.route(), &callback, &binding).await {
        Ok(LoginOutcome::SignedIn { user: u, .. }) => assert_eq!(u, user("alice")),
        other => panic!("expected SignedIn on {:?}, got {other:?}", c.backend),
    }
}

async fn one_callback_sent_to_both_nodes_at_once_succeeds_once(c: Cluster) {
    let (a, b) = c.two_nodes().await;
    c.login(&a, link("alice"), "o-alice").await.unwrap();
    let exchanges = c.idp.token_requests();
    let (callback, binding) = c.consent(&a, LoginIntent::SignIn, "o-alice").await;
    let mut tasks = Vec::new();
    for node in [a.clone(), b.clone(), a, b] {
        let (callback, binding, route) = (callback.clone(), binding.clone(), c.route());
        tasks.push(tokio::spawn(async move {
            node.complete_login(&route, &callback, &binding).await
        }));
    }
    let mut signed_in = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(LoginOutcome::SignedIn { .. }) => signed_in += 1,
            Err(e @ Error::State(StateError::Unknown)) => {
                assert_eq!(e.kind(), ErrorKind::LoginExpired);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(signed_in, 1, "exactly one session on {:?}", c.backend);
    assert_eq!(
        c.idp.token_requests() - exchanges,
        1,
        "the code is exchanged once"
    );
}

async fn a_hundred_callers_on_both_nodes_make_one_token_request(c: Cluster) {
    let (a, b) = c.two_nodes().await;
    c.connect_mailbox(&a).await;
    c.expire_access_tokens();
    let requests = c.idp.token_requests();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let node = if i % 2 == 0 { a.clone() } else { b.clone() };
        let tenant = c.tenant.clone();
        tasks.push(tokio::spawn(async move {
            node.access_token(&tenant, &asset())
                .await
                .map(|t| t.secret().to_owned())
        }));
    }
    let mut tokens = Vec::new();
    for task in tasks {
        tokens.push(task.await.unwrap().unwrap());
    }
    assert_eq!(
        c.idp.token_requests(),
        requests + 1,
        "exactly one token request on {:?}",
        c.backend
    );
    assert_eq!(c.idp.refresh_requests(), 1);
    assert!(
        tokens.iter().all(|t| *t == tokens[0]),
        "every caller gets the new token"
    );
    // The lease is gone and the rotated refresh token was kept: the next refresh works at once.
    c.expire_access_tokens();
    b.access_token(&c.tenant, &asset()).await.unwrap();
    assert_eq!(c.idp.refresh_requests(), 2);
}

async fn one_identity_linked_on_both_nodes_at_once_has_one_winner(c: Cluster) {
    let (a, b) = c.two_nodes().await;
    let alice = c.consent(&a, link("alice"), "o-shared").await;
    let bob = c.consent(&b, link("bob"), "o-shared").await;
    let mut tasks = Vec::new();
    for (node, (callback, binding)) in [(a.clone(), alice), (b.clone(), bob)] {
        let route = c.route();
        tasks.push(tokio::spawn(async move {
            node.complete_login(&route, &callback, &binding).await
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(LoginOutcome::Linked { user, .. }) => winners.push(user),
            Err(e @ Error::Binding(BindingError::BoundToAnotherUser)) => {
                assert_eq!(e.kind(), ErrorKind::Conflict);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "one winner on {:?}", c.backend);
    let bound = [
        a.list_bindings(&c.tenant, &user("alice")).await.unwrap(),
        b.list_bindings(&c.tenant, &user("bob")).await.unwrap(),
    ];
    assert_eq!(bound.iter().map(Vec::len).sum::<usize>(), 1, "one binding");
    assert_eq!(bound.concat()[0].user, winners[0]);
}

async fn two_link_tickets_of_one_identity_redeemed_at_once_have_one_winner(c: Cluster) {
    let (a, b) = c.two_nodes().await;
    let mut tickets = Vec::new();
    for node in [&a, &b] {
        match c.login(node, LoginIntent::SignIn, "o-shared").await {
            Ok(LoginOutcome::LinkRequired { ticket, .. }) => tickets.push(ticket),
            other => panic!("expected LinkRequired, got {other:?}"),
        }
    }
    let mut tasks = Vec::new();
    for ((node, u), ticket) in [(a.clone(), "alice"), (b.clone(), "bob")]
        .into_iter()
        .zip(tickets)
    {
        let tenant = c.tenant.clone();
        tasks.push(tokio::spawn(async move {
            node.redeem_link_ticket(&tenant, &ticket, &user(u)).await
        }));
    }
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(redeemed) => winners.push(redeemed.binding.user),
            Err(e @ Error::Binding(BindingError::BoundToAnotherUser)) => {
                assert_eq!(e.kind(), ErrorKind::Conflict);
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "one winner on {:?}", c.backend);
    // The account signs in as the winner, on either node.
    match c.login(&b, LoginIntent::SignIn, "o-shared").await {
        Ok(LoginOutcome::SignedIn { user, .. }) => assert_eq!(user, winners[0]),
        other => panic!("expected SignedIn, got {other:?}"),
    }
}

async fn a_restart_on_the_same_database_loses_nothing(c: Cluster) {
    let (a, b) = c.two_nodes().await;
    let t = &c.tenant;
    c.login(&a, link("alice"), "o-alice").await.unwrap();
    a.add_privileged_user(t, &user("root")).await.unwrap();
    b.set_auth_method(
        t,
        AuthMethod::Sso {
            providers: vec![c.provider.clone()],
        },
        Some(Duration::ZERO),
    )
    .await
    .unwrap();
    let audience = VisitorAudience::new("brand-acme").unwrap();
    a.create_visitor_config(t, &audience, VisitorConfigOptions::default())
        .await
        .unwrap();
    c.connect_mailbox(&b).await;
    c.expire_access_tokens();
    // One refresh before the restart, so the stored refresh token is a rotated one.
    a.access_token(t, &asset()).await.unwrap();
    let bindings = a.list_bindings(t, &user("alice")).await.unwrap();
    let providers = a.list_providers(t).await.unwrap();
    let status = a.tenant_auth_status(t).await.unwrap();
    let visitor_token = b
        .mint_visitor_token(t, &audience, &VisitorClaims::new("v-1"), None)
        .await
        .unwrap();
    drop((a, b));

    let node = c.node().await;
    assert_eq!(
        node.list_bindings(t, &user("alice")).await.unwrap(),
        bindings
    );
    assert_eq!(node.list_providers(t).await.unwrap().len(), providers.len());
    assert_eq!(node.tenant_auth_status(t).await.unwrap(), status);
    assert!(
        matches!(status.method, AuthMethod::Sso { .. }),
        "{status:?}"
    );
    assert_eq!(
        node.list_privileged_users(t).await.unwrap(),
        vec![user("root")]
    );
    // The provider configuration and the binding still sign alice in, under the SSO policy.
    match c.login(&node, LoginIntent::SignIn, "o-alice").await {
        Ok(LoginOutcome::SignedIn { user: u, .. }) => assert_eq!(u, user("alice")),
        other => panic!("expected SignedIn after the restart, got {other:?}"),
    }
    // The visitor configuration verifies what was minted before and mints again.
    let visitor = node
        .verify_visitor_token(t, &audience, &visitor_token)
        .await
        .unwrap();
    assert_eq!(visitor.external_id, "v-1");
    node.mint_visitor_token(t, &audience, &VisitorClaims::new("v-2"), None)
        .await
        .unwrap();
    // The connection, with its rotated refresh token, refreshes again.
    let refreshes = c.idp.refresh_requests();
    c.expire_access_tokens();
    node.access_token(t, &asset()).await.unwrap();
    assert_eq!(c.idp.refresh_requests(), refreshes + 1);
    let info = node.connection_info(t, &asset()).await.unwrap();
    assert!(
        matches!(info.status, ConnectionStatus::Connected { .. }),
        "{:?}",
        info.status
    );
}
