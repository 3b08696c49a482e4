//! Mailbox connections end to end against the FakeIdp: connect, single-flight refresh (one
//! process and two nodes), rotation, crash between the token response and the store write,
//! invalid_grant, transient failures, encryption at rest, XOAUTH2, list/revoke/reconnect.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use common::{CLIENT_ID, CLIENT_SECRET, ENTRA_TENANT, pid, tenant};
use cx_sso::store::{CasOutcome, DeleteOutcome, Inserted, NewRecord, Record};
use cx_sso::testing::{FakeIdp, FakeUser, Misbehavior};
use cx_sso::{
    Broker, CallbackRoute, ClientSecret, Clock, ConfigError, ConnectionError, ConnectionId,
    ConnectionStatus, EncryptionKey, EntraAudience, EntraTenancy, Error, ErrorKind, LoginIntent,
    LoginOptions, LoginOutcome, ManualClock, MemoryStore, ProviderConfig, ProviderId,
    ProviderRevocation, SsoStatus, Store, StoreError, TenantId,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

// ---------------------------------------------------------------------------------------------
// Set-up
// ---------------------------------------------------------------------------------------------

/// A MemoryStore whose next connection writes can be made to fail (a crash after the
/// provider answered: the broker tries the write three times, so a crash fails all three),
/// and which counts lease insertions.
#[derive(Debug, Default)]
struct TestStore {
    inner: MemoryStore,
    /// How many of the next connection `compare_and_swap`s fail.
    failing_cas: AtomicUsize,
    lease_inserts: AtomicUsize,
    /// The next connection write takes 200 ms (a slow database), so a caller can give up
    /// between the provider's answer and the write.
    slow_next_cas: AtomicBool,
    /// Another node that completes a whole refresh just before the next lease is taken.
    other_node_refreshes_first: std::sync::Mutex<Option<(Broker, TenantId, ConnectionId)>>,
}

#[async_trait]
impl Store for TestStore {
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
        if ns == "connection_lease" {
            self.lease_inserts.fetch_add(1, Ordering::SeqCst);
            let other = self.other_node_refreshes_first.lock().unwrap().take();
            if let Some((node, tenant, connection)) = other {
                node.access_token(&tenant, &connection).await.unwrap();
            }
        }
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
        let failing = |n: usize| n.checked_sub(1);
        if ns == "connection"
            && self
                .failing_cas
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, failing)
                .is_ok()
        {
            return Err(StoreError::unavailable("simulated crash before the write"));
        }
        if ns == "connection" && self.slow_next_cas.swap(false, Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
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
        self.inner.compare_and_delete(ns, key, expected, now).await
    }
    async fn delete(&self, ns: &str, key: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
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

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Google,
    Entra,
    /// Plain OAuth 2.0 endpoints (those of a generic FakeIdp), mailbox from userinfo.
    OAuth2,
}

struct Setup {
    idp: FakeIdp,
    clock: Arc<ManualClock>,
    store: Arc<TestStore>,
    broker: Broker,
    tenant: TenantId,
    provider: ProviderId,
    subject: &'static str,
    mailbox: &'static str,
}

const OAUTH2_BASE: &str = "https://mail.example.test";

fn config_for(kind: Kind) -> ProviderConfig {
    match kind {
        Kind::Google => {
            ProviderConfig::google(pid("gmail"), CLIENT_ID, ClientSecret::new(CLIENT_SECRET))
        }
        Kind::Entra => ProviderConfig::microsoft(
            pid("outlook"),
            EntraTenancy::multi(EntraAudience::Organizations, [ENTRA_TENANT]).unwrap(),
            CLIENT_ID,
            ClientSecret::new(CLIENT_SECRET),
        ),
        Kind::OAuth2 => ProviderConfig::oauth2(
            pid("mailbox"),
            format!("{OAUTH2_BASE}/authorize"),
            format!("{OAUTH2_BASE}/token"),
            // Plain OAuth 2.0: no `openid`; `email` lets userinfo name the mailbox.
            ["email", "https://mail.example.test/imap"],
            CLIENT_ID,
            ClientSecret::new(CLIENT_SECRET),
        )
        .with_oauth2_userinfo_url(format!("{OAUTH2_BASE}/userinfo"))
        .unwrap()
        .with_oauth2_revocation_url(format!("{OAUTH2_BASE}/revoke"))
        .unwrap(),
    }
}

fn broker(
    idp: &FakeIdp,
    clock: &Arc<ManualClock>,
    store: &Arc<TestStore>,
    key: Option<EncryptionKey>,
) -> Broker {
    let mut b = Broker::builder()
        .http_client(idp.clone())
        .clock(clock.clone())
        .shared_store(store.clone())
        .public_base_url("https://cx.example.com");
    if let Some(key) = key {
        b = b.encryption_key(key);
    }
    b.build().unwrap()
}

/// Another node over the same provider, clock and store, spawning and sleeping on the tokio
/// runtime the test runs on.
#[cfg(feature = "tokio")]
fn node_on_tokio(s: &Setup) -> Broker {
    Broker::builder()
        .http_client(s.idp.clone())
        .clock(s.clock.clone())
        .shared_store(s.store.clone())
        .public_base_url("https://cx.example.com")
        .runtime(cx_sso::TokioRuntime::current().unwrap())
        .build()
        .unwrap()
}

async fn setup_with(kind: Kind, key: Option<EncryptionKey>) -> Setup {
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-02 09:00 UTC)));
    let idp = match kind {
        Kind::Google => FakeIdp::google(),
        Kind::Entra => FakeIdp::entra(),
        Kind::OAuth2 => FakeIdp::oidc(OAUTH2_BASE),
    }
    .with_clock(clock.clone());
    idp.register_client(CLIENT_ID, CLIENT_SECRET);
    let (subject, mailbox) = match kind {
        Kind::Google => ("g-support", "support@acme.example"),
        Kind::Entra => ("pairwise-sub-sales", "sales@contoso.example"),
        Kind::OAuth2 => ("m-helpdesk", "helpdesk@acme.example"),
    };
    idp.add_user(
        FakeUser::new(subject)
            .email(mailbox)
            .email_verified(true)
            .tenant_id(ENTRA_TENANT),
    );
    let store = Arc::new(TestStore::default());
    let broker = broker(&idp, &clock, &store, key);
    let tenant = tenant("acme");
    let config = config_for(kind);
    let provider = config.id().clone();
    let report = broker.configure_provider(&tenant, config).await.unwrap();
    assert!(report.is_ready(), "{report:?}");
    Setup {
        idp,
        clock,
        store,
        broker,
        tenant,
        provider,
        subject,
        mailbox,
    }
}

async fn setup(kind: Kind) -> Setup {
    setup_with(kind, None).await
}

fn cid(s: &str) -> ConnectionId {
    ConnectionId::new(s).unwrap()
}

impl Setup {
    /// The admin presses "Generate Token" and consents; returns the authorize URL's query and
    /// the outcome.
    async fn connect_on(
        &self,
        broker: &Broker,
        connection: &str,
    ) -> (HashMap<String, String>, LoginOutcome) {
        let redirect = broker
            .begin_login(
                &self.tenant,
                &self.provider,
                LoginIntent::Connect {
                    connection: cid(connection),
                },
                LoginOptions::new().return_to("/admin/assets"),
            )
            .await
            .unwrap();
        let query = redirect.authorize_url.query_pairs().into_owned().collect();
        let callback = self
            .idp
            .authorize(redirect.authorize_url.as_str(), self.subject)
            .unwrap();
        let outcome = broker
            .complete_login(
                &CallbackRoute::new(self.provider.clone()),
                &callback,
                redirect.browser_binding.secret(),
            )
            .await
            .unwrap();
        (query, outcome)
    }

    async fn connect(&self, connection: &str) -> LoginOutcome {
        self.connect_on(&self.broker, connection).await.1
    }

    fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Moves the clock to within the refresh margin of the token's expiry.
    fn expire(&self) {
        self.clock.advance(Duration::minutes(58));
    }

    /// The stored record, as JSON (the test reads the store directly).
    async fn raw_record(&self, connection: &str) -> serde_json::Value {
        let key = format!("{}|{}", self.tenant, connection);
        let record = self
            .store
            .get("connection", &key, self.now())
            .await
            .unwrap()
            .unwrap();
        serde_json::from_slice(&record.value).expect("the record always parses")
    }

    /// The stored refresh token (only without an encryption key).
    async fn stored_refresh_token(&self, connection: &str) -> String {
        self.raw_record(connection).await["refresh_token"]["plain"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn status(&self, connection: &str) -> ConnectionStatus {
        self.broker
            .connection_info(&self.tenant, &cid(connection))
            .await
            .unwrap()
            .status
    }
}

/// Presents a refresh token to the FakeIdp's (Google) token endpoint; returns the status.
async fn refresh_at_idp(idp: &FakeIdp, refresh_token: &str) -> u16 {
    use base64::Engine;
    use cx_sso::HttpClient;
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("refresh_token", refresh_token)
        .finish();
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let request = http::Request::builder()
        .method("POST")
        .uri("https://oauth2.googleapis.com/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Basic {basic}"))
        .body(body.into_bytes())
        .unwrap();
    idp.call(request).await.unwrap().status().as_u16()
}

fn connection_error(e: Error) -> ConnectionError {
    match e {
        Error::Connection(c) => c,
        other => panic!("expected a connection error, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Connect
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn google_connect_asks_offline_consent_and_stores_a_token_set() {
    let s = setup(Kind::Google).await;
    let (q, outcome) = s.connect_on(&s.broker, "asset-1").await;
    let scopes: Vec<&str> = q["scope"].split(' ').collect();
    assert!(scopes.contains(&"https://mail.google.com/"), "{scopes:?}");
    assert!(scopes.contains(&"openid") && scopes.contains(&"email"));
    assert_eq!(q["access_type"], "offline");
    assert_eq!(q["prompt"], "consent");
    assert_eq!(q["code_challenge_method"], "S256");
    match outcome {
        LoginOutcome::Connected {
            tenant,
            connection,
            provider,
            mailbox,
            valid_until,
            return_to,
        } => {
            assert_eq!(tenant, s.tenant);
            assert_eq!(connection, cid("asset-1"));
            assert_eq!(provider, s.provider);
            assert_eq!(mailbox, s.mailbox);
            assert_eq!(valid_until, s.now() + Duration::hours(1));
            assert_eq!(return_to, "/admin/assets");
        }
        other => panic!("{other:?}"),
    }
    let record = s.raw_record("asset-1").await;
    assert_eq!(record["mailbox"], s.mailbox);
    assert_eq!(record["status"]["state"], "connected");
    assert!(record["scopes"].as_array().unwrap().len() >= 2);
    assert!(record["refresh_token"]["plain"].is_string());
    let list = s.broker.list_connections(&s.tenant).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0].status,
        ConnectionStatus::Connected {
            valid_until: s.now() + Duration::hours(1)
        }
    );
}

#[tokio::test]
async fn entra_connect_asks_offline_access_and_outlook_scopes() {
    let s = setup(Kind::Entra).await;
    let (q, outcome) = s.connect_on(&s.broker, "asset-1").await;
    let scopes: Vec<&str> = q["scope"].split(' ').collect();
    for want in [
        "offline_access",
        "https://outlook.office.com/SMTP.Send",
        "https://outlook.office.com/IMAP.AccessAsUser.All",
    ] {
        assert!(scopes.contains(&want), "{want} missing from {scopes:?}");
    }
    assert!(!q.contains_key("access_type"));
    assert!(matches!(outcome, LoginOutcome::Connected { ref mailbox, .. } if mailbox == s.mailbox));
}

#[tokio::test]
async fn plain_oauth2_connects_without_discovery_and_refuses_sign_in() {
    let s = setup(Kind::OAuth2).await;
    assert_eq!(
        s.idp.discovery_fetches(),
        0,
        "no discovery for plain OAuth 2.0"
    );
    // Not an SSO application.
    assert_eq!(
        s.broker.sso_status(&s.tenant).await.unwrap(),
        SsoStatus::NotConfigured
    );
    let err = s
        .broker
        .begin_login(
            &s.tenant,
            &s.provider,
            LoginIntent::SignIn,
            LoginOptions::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::Config(ConfigError::Invalid {
                what: "provider",
                ..
            })
        ),
        "{err:?}"
    );
    let (q, outcome) = s.connect_on(&s.broker, "asset-1").await;
    assert!(q["scope"].contains("https://mail.example.test/imap"));
    assert_eq!(q["access_type"], "offline");
    // Mailbox from userinfo.
    assert!(matches!(outcome, LoginOutcome::Connected { ref mailbox, .. } if mailbox == s.mailbox));
    assert_eq!(s.idp.discovery_fetches(), 0);
    // And it refreshes through the token URL.
    s.expire();
    let before = s.idp.refresh_requests();
    s.broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    assert_eq!(s.idp.refresh_requests(), before + 1);
    // Revocation at the configured RFC 7009 endpoint.
    assert_eq!(
        s.broker
            .revoke_connection(&s.tenant, &cid("asset-1"))
            .await
            .unwrap(),
        ProviderRevocation::Revoked
    );
}

#[tokio::test]
async fn plain_oauth2_mailbox_from_configuration() {
    let s = setup(Kind::OAuth2).await;
    let config = config_for(Kind::OAuth2)
        .with_oauth2_mailbox("asset@acme.example")
        .unwrap();
    s.broker
        .configure_provider(&s.tenant, config)
        .await
        .unwrap();
    let before = s.idp.userinfo_requests();
    let outcome = s.connect("asset-1").await;
    assert!(
        matches!(outcome, LoginOutcome::Connected { ref mailbox, .. } if mailbox == "asset@acme.example")
    );
    assert_eq!(s.idp.userinfo_requests(), before);
}

#[test]
fn plain_oauth2_configuration_is_validated() {
    let bad = ProviderConfig::oauth2(
        pid("m"),
        "http://mail.example.test/authorize",
        "https://mail.example.test/token",
        Vec::<String>::new(),
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    )
    .with_oauth2_mailbox("a\r\nb@example.test")
    .unwrap();
    let problems = bad.problems().join("; ");
    assert!(problems.contains("authorization URL"), "{problems}");
    assert!(problems.contains("scope"), "{problems}");
    assert!(problems.contains("mailbox"), "{problems}");
    let loopback = ProviderConfig::oauth2(
        pid("m"),
        "http://127.0.0.1:8080/authorize",
        "http://localhost:8080/token",
        ["https://mail.google.com/"],
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    );
    assert!(loopback.problems().is_empty());
}

/// The Webex Connect email-asset form for Gmail, field by field as the source documents show
/// it (the Dutch and Korean "email asset with OAuth 2.0" guides).
const FORM_AUTHORIZATION_URL: &str = "https://accounts.google.com/o/oauth2/auth";
const FORM_SCOPE: &str = "https://mail.google.com/";
const FORM_ACCESS_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
const FORM_REFRESH_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
const FORM_EMAIL_ID: &str = "bhusuresimi@gmail.com";

#[tokio::test]
async fn gmail_email_asset_form_connects_refreshes_and_builds_xoauth2() {
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-02 09:00 UTC)));
    let google = FakeIdp::google().with_clock(clock.clone());
    google.register_client(CLIENT_ID, CLIENT_SECRET);
    google.add_user(FakeUser::new("g-asset").email(FORM_EMAIL_ID));
    let store = Arc::new(TestStore::default());
    let broker = broker(&google, &clock, &store, None);
    let tenant = tenant("acme");
    let asset = cid("bhusuresIMIEmail");

    // The admin fills in the form: a plain OAuth 2.0 application, no OpenID Connect.
    let config = ProviderConfig::oauth2(
        pid("gmail-asset"),
        FORM_AUTHORIZATION_URL,
        FORM_ACCESS_TOKEN_URL,
        [FORM_SCOPE],
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    )
    .with_oauth2_refresh_url(FORM_REFRESH_TOKEN_URL)
    .unwrap()
    .with_oauth2_mailbox(FORM_EMAIL_ID)
    .unwrap();
    let report = broker.configure_provider(&tenant, config).await.unwrap();
    assert!(report.is_ready(), "{report:?}");

    // "Generate Token": Google's authorization URL as the form has it, the mail scope alone.
    let redirect = broker
        .begin_login(
            &tenant,
            &pid("gmail-asset"),
            LoginIntent::Connect {
                connection: asset.clone(),
            },
            LoginOptions::new(),
        )
        .await
        .unwrap();
    let url = &redirect.authorize_url;
    assert_eq!(
        format!(
            "{}://{}{}",
            url.scheme(),
            url.host_str().unwrap(),
            url.path()
        ),
        FORM_AUTHORIZATION_URL
    );
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(
        query["scope"], FORM_SCOPE,
        "only the mail scope, no `openid`"
    );
    assert_eq!(query["access_type"], "offline");

    // The admin consents at Google; the platform keeps the tokens.
    let callback = google.authorize(url.as_str(), "g-asset").unwrap();
    let outcome = broker
        .complete_login(
            &CallbackRoute::new(pid("gmail-asset")),
            &callback,
            redirect.browser_binding.secret(),
        )
        .await
        .unwrap();
    match outcome {
        LoginOutcome::Connected { mailbox, .. } => assert_eq!(mailbox, FORM_EMAIL_ID),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        google.discovery_fetches(),
        0,
        "no discovery: plain OAuth 2.0"
    );
    assert_eq!(google.jwks_fetches(), 0, "no ID token to verify");

    // Before expiry the stored token; an hour later a refresh at the form's refresh URL.
    let first = broker.access_token(&tenant, &asset).await.unwrap();
    assert_eq!(google.refresh_requests(), 0);
    clock.advance(Duration::hours(1));
    let second = broker.access_token(&tenant, &asset).await.unwrap();
    assert_eq!(google.refresh_requests(), 1);
    assert_ne!(first.secret(), second.secret());

    // And the SMTP/IMAP login string for smtp.gmail.com.
    let sasl = broker.xoauth2(&tenant, &asset).await.unwrap();
    assert_eq!(
        sasl.raw(),
        format!(
            "user={FORM_EMAIL_ID}\x01auth=Bearer {}\x01\x01",
            second.secret()
        )
    );
}

#[tokio::test]
async fn sign_in_and_link_never_touch_connections() {
    let s = setup(Kind::Google).await;
    let redirect = s
        .broker
        .begin_login(
            &s.tenant,
            &s.provider,
            LoginIntent::SignIn,
            LoginOptions::new(),
        )
        .await
        .unwrap();
    let q: HashMap<String, String> = redirect.authorize_url.query_pairs().into_owned().collect();
    assert!(!q["scope"].contains("mail.google.com"));
    assert!(!q.contains_key("access_type"));
    let callback = s
        .idp
        .authorize(redirect.authorize_url.as_str(), s.subject)
        .unwrap();
    let outcome = s
        .broker
        .complete_login(
            &CallbackRoute::new(s.provider.clone()),
            &callback,
            redirect.browser_binding.secret(),
        )
        .await
        .unwrap();
    assert!(matches!(outcome, LoginOutcome::LinkRequired { .. }));
    assert!(
        s.broker
            .list_connections(&s.tenant)
            .await
            .unwrap()
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// access_token: cache and single-flight
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn cached_access_token_makes_no_provider_call() {
    let s = setup(Kind::Google).await;
    s.connect("asset-1").await;
    let calls = s.idp.token_requests();
    let a = s
        .broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    let b = s
        .broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    assert_eq!(a.secret(), b.secret());
    assert_eq!(s.idp.token_requests(), calls);
    // 54 minutes later (6 minutes left, margin 5): still cached.
    s.clock.advance(Duration::minutes(54));
    s.broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    assert_eq!(s.idp.token_requests(), calls);
    // 56 minutes: within the margin, refreshed.
    s.clock.advance(Duration::minutes(2));
    let c = s
        .broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    assert_ne!(c.secret(), a.secret());
    assert_eq!(s.idp.token_requests(), calls + 1);
    assert_eq!(
        s.status("asset-1").await,
        ConnectionStatus::Connected {
            valid_until: s.now() + Duration::hours(1)
        }
    );
}

#[tokio::test]
async fn unknown_connection_is_not_found() {
    let s = setup(Kind::Google).await;
    let err = s
        .broker
        .access_token(&s.tenant, &cid("nope"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert_eq!(connection_error(err), ConnectionError::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundred_concurrent_callers_on_an_expired_token_refresh_once() {
    let s = setup(Kind::Entra).await;
    s.connect("asset-1").await;
    s.expire();
    let calls = s.idp.token_requests();
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let broker = s.broker.clone();
        let tenant = s.tenant.clone();
        tasks.push(tokio::spawn(async move {
            broker
                .access_token(&tenant, &cid("asset-1"))
                .await
                .map(|t| t.secret().to_owned())
        }));
    }
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap().unwrap());
    }
    assert_eq!(s.idp.token_requests(), calls + 1, "exactly one token call");
    assert_eq!(s.idp.refresh_requests(), 1);
    assert!(
        tokens.iter().all(|t| *t == tokens[0]),
        "all callers get one token"
    );
}

#[cfg(feature = "tokio")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_brokers_sharing_a_store_refresh_once() {
    let s = setup(Kind::Entra).await;
    // Each node waits for the other's refresh with its sleeper.
    let node_a = node_on_tokio(&s);
    let node_b = node_on_tokio(&s);
    s.connect("asset-1").await;
    s.expire();
    let calls = s.idp.token_requests();
    let mut tasks = Vec::new();
    for i in 0..100 {
        let broker = if i % 2 == 0 {
            node_a.clone()
        } else {
            node_b.clone()
        };
        let tenant = s.tenant.clone();
        tasks.push(tokio::spawn(async move {
            broker
                .access_token(&tenant, &cid("asset-1"))
                .await
                .map(|t| t.secret().to_owned())
        }));
    }
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap().unwrap());
    }
    assert_eq!(s.idp.token_requests(), calls + 1, "exactly one token call");
    assert!(tokens.iter().all(|t| *t == tokens[0]));
    // The lease is gone: the next refresh is not delayed.
    s.expire();
    node_b
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    assert_eq!(s.idp.token_requests(), calls + 2);
}

#[tokio::test]
async fn a_refresh_finished_by_another_node_before_our_lease_is_not_repeated() {
    // Entra rotates refresh tokens and revokes the grant when a rotated-out one is reused:
    // posting the token we read before taking the lease would kill the connection.
    let s = setup(Kind::Entra).await;
    let node_b = broker(&s.idp, &s.clock, &s.store, None);
    s.connect("asset-1").await;
    s.expire();
    let calls = s.idp.token_requests();
    *s.store.other_node_refreshes_first.lock().unwrap() =
        Some((node_b, s.tenant.clone(), cid("asset-1")));
    s.broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    assert_eq!(
        s.idp.token_requests(),
        calls + 1,
        "only the other node refreshed"
    );
    let info = s
        .broker
        .connection_info(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    assert!(
        matches!(info.status, cx_sso::ConnectionStatus::Connected { .. }),
        "{:?}",
        info.status
    );
}

#[cfg(feature = "tokio")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_giving_up_mid_refresh_does_not_lose_the_rotated_token() {
    let s = setup(Kind::Entra).await;
    // The spawner carries the refresh through to the store.
    let broker = node_on_tokio(&s);
    s.connect("asset-1").await;
    s.expire();
    let calls = s.idp.token_requests();
    s.store.slow_next_cas.store(true, Ordering::SeqCst);
    let gave_up = tokio::time::timeout(
        std::time::Duration::from_millis(50),
        broker.access_token(&s.tenant, &cid("asset-1")),
    )
    .await;
    assert!(gave_up.is_err(), "the caller timed out");
    // The refresh finishes on its own and stores the rotated token.
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let token = broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    assert!(!token.secret().is_empty());
    assert_eq!(s.idp.token_requests(), calls + 1, "no second refresh");
    let info = s
        .broker
        .connection_info(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    assert!(
        matches!(info.status, cx_sso::ConnectionStatus::Connected { .. }),
        "{:?}",
        info.status
    );
}

// ---------------------------------------------------------------------------------------------
// Rotation and crashes
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn google_does_not_rotate_and_the_refresh_token_is_kept() {
    let s = setup(Kind::Google).await;
    s.connect("asset-1").await;
    let original = s.stored_refresh_token("asset-1").await;
    for _ in 0..3 {
        s.expire();
        s.broker
            .access_token(&s.tenant, &cid("asset-1"))
            .await
            .unwrap();
        assert_eq!(s.stored_refresh_token("asset-1").await, original);
    }
    assert_eq!(s.idp.refresh_requests(), 3);
    assert_eq!(refresh_at_idp(&s.idp, &original).await, 200);
}

#[tokio::test]
async fn entra_rotation_persists_each_new_refresh_token() {
    let s = setup(Kind::Entra).await;
    s.connect("asset-1").await;
    let mut previous = s.stored_refresh_token("asset-1").await;
    for _ in 0..3 {
        s.expire();
        // Would be invalid_grant (reuse detection) if a rotated token had been lost.
        s.broker
            .access_token(&s.tenant, &cid("asset-1"))
            .await
            .unwrap();
        let current = s.stored_refresh_token("asset-1").await;
        assert_ne!(current, previous);
        previous = current;
    }
    assert!(matches!(
        s.status("asset-1").await,
        ConnectionStatus::Connected { .. }
    ));
}

#[tokio::test]
async fn generic_oidc_rotation_is_switchable() {
    let s = setup(Kind::OAuth2).await;
    s.idp.set_refresh_rotation(true);
    s.connect("asset-1").await;
    let first = s.stored_refresh_token("asset-1").await;
    s.expire();
    s.broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    assert_ne!(s.stored_refresh_token("asset-1").await, first);
}

#[tokio::test]
async fn crash_before_the_store_write_then_google_works_again() {
    let s = setup(Kind::Google).await;
    s.connect("asset-1").await;
    s.expire();
    let before = s.raw_record("asset-1").await;
    s.store.failing_cas.store(3, Ordering::SeqCst);
    let err = s
        .broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Store(_)), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    // The record is whole and unchanged.
    assert_eq!(s.raw_record("asset-1").await, before);
    // The old refresh token still works at Google.
    s.broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    assert!(matches!(
        s.status("asset-1").await,
        ConnectionStatus::Connected { .. }
    ));
}

#[tokio::test]
async fn crash_before_the_store_write_then_entra_reports_needs_reconsent() {
    let s = setup(Kind::Entra).await;
    s.connect("asset-1").await;
    s.expire();
    s.store.failing_cas.store(3, Ordering::SeqCst);
    assert!(
        s.broker
            .access_token(&s.tenant, &cid("asset-1"))
            .await
            .is_err()
    );
    // The rotated token never reached the store; the old one is now a reused token, and
    // Entra revokes the family.
    let err = s
        .broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReconsentRequired);
    assert!(matches!(
        connection_error(err),
        ConnectionError::NeedsReconsent { .. }
    ));
    assert!(matches!(
        s.status("asset-1").await,
        ConnectionStatus::NeedsReconsent { .. }
    ));
    // The record is whole, its data kept.
    let record = s.raw_record("asset-1").await;
    assert!(record["refresh_token"]["plain"].is_string());
    // Reconnecting fixes it.
    s.connect("asset-1").await;
    s.broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Provider failures
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn invalid_grant_marks_needs_reconsent_keeps_data_and_does_not_retry() {
    let s = setup(Kind::Google).await;
    s.connect("asset-1").await;
    let before = s.raw_record("asset-1").await;
    s.expire();
    s.idp.misbehave(Misbehavior::RefreshInvalidGrant);
    let err = s
        .broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ReconsentRequired);
    assert!(matches!(
        connection_error(err),
        ConnectionError::NeedsReconsent { .. }
    ));
    assert_eq!(s.idp.refresh_requests(), 1, "no retry loop");
    // Later calls fail fast without asking the provider again.
    for _ in 0..3 {
        assert!(
            s.broker
                .access_token(&s.tenant, &cid("asset-1"))
                .await
                .is_err()
        );
        assert!(s.broker.xoauth2(&s.tenant, &cid("asset-1")).await.is_err());
    }
    assert_eq!(s.idp.refresh_requests(), 1);
    let after = s.raw_record("asset-1").await;
    assert_eq!(after["refresh_token"], before["refresh_token"]);
    assert_eq!(after["mailbox"], before["mailbox"]);
    let list = s.broker.list_connections(&s.tenant).await.unwrap();
    assert!(matches!(
        &list[0].status,
        ConnectionStatus::NeedsReconsent { reason } if reason.contains("invalid_grant")
    ));
}

#[tokio::test]
async fn server_errors_are_transient_with_a_retry_hint_and_keep_the_tokens() {
    let s = setup(Kind::Entra).await;
    s.connect("asset-1").await;
    let before = s.raw_record("asset-1").await;
    s.expire();
    s.idp.misbehave(Misbehavior::TokenEndpointStatus(503));
    let err = s
        .broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    match connection_error(err) {
        ConnectionError::Transient { retry_after } => assert!(retry_after.is_positive()),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.raw_record("asset-1").await, before);
    assert!(matches!(
        s.status("asset-1").await,
        ConnectionStatus::Connected { .. }
    ));
    s.idp.behave();
    // The failure is shared for 5 seconds (no provider storm), then a caller tries again.
    s.clock.advance(Duration::seconds(6));
    s.broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Encryption at rest
// ---------------------------------------------------------------------------------------------

fn key(byte: u8) -> EncryptionKey {
    EncryptionKey::from_bytes([byte; 32])
}

#[tokio::test]
async fn encrypted_rows_do_not_decrypt_under_another_connection_or_key() {
    let s = setup_with(Kind::Google, Some(key(1))).await;
    s.connect("asset-1").await;
    let token = s
        .broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    let k1 = format!("{}|asset-1", s.tenant);
    let record = s
        .store
        .get("connection", &k1, s.now())
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(record.value.clone()).unwrap();
    assert!(
        !text.contains(token.secret()),
        "access token stored in the clear"
    );
    assert!(text.contains("xchacha20poly1305"));
    assert!(!text.contains("\"plain\""));

    // The row copied to another connection id (same tenant) does not decrypt.
    let k2 = format!("{}|asset-2", s.tenant);
    s.store
        .put(
            "connection",
            &k2,
            NewRecord::new(record.value.clone()).index(s.tenant.as_str()),
            s.now(),
        )
        .await
        .unwrap();
    let err = s
        .broker
        .access_token(&s.tenant, &cid("asset-2"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal, "not the caller's input");
    assert_eq!(connection_error(err), ConnectionError::Undecryptable);
    // Nor into another tenant.
    let k3 = "globex|asset-1".to_owned();
    s.store
        .put(
            "connection",
            &k3,
            NewRecord::new(record.value.clone()).index("globex"),
            s.now(),
        )
        .await
        .unwrap();
    let err = s
        .broker
        .access_token(&tenant("globex"), &cid("asset-1"))
        .await
        .unwrap_err();
    assert_eq!(connection_error(err), ConnectionError::Undecryptable);

    // Another key, or no key: refused, and the record is left alone.
    for other in [
        broker(&s.idp, &s.clock, &s.store, Some(key(2))),
        broker(&s.idp, &s.clock, &s.store, None),
    ] {
        let err = other
            .access_token(&s.tenant, &cid("asset-1"))
            .await
            .unwrap_err();
        assert_eq!(connection_error(err), ConnectionError::Undecryptable);
    }
    let again = s
        .store
        .get("connection", &k1, s.now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.value, record.value);
    // The right broker still works, and refreshes encrypted.
    s.expire();
    let fresh = s
        .broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    assert_ne!(fresh.secret(), token.secret());
}

// ---------------------------------------------------------------------------------------------
// XOAUTH2 and secrets
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn xoauth2_for_a_connection_is_byte_exact() {
    let s = setup(Kind::Google).await;
    s.connect("asset-1").await;
    let token = s
        .broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    let sasl = s.broker.xoauth2(&s.tenant, &cid("asset-1")).await.unwrap();
    let expected = format!(
        "user={}\x01auth=Bearer {}\x01\x01",
        s.mailbox,
        token.secret()
    );
    assert_eq!(sasl.raw().as_bytes(), expected.as_bytes());
    use base64::Engine;
    assert_eq!(
        sasl.base64(),
        base64::engine::general_purpose::STANDARD.encode(expected)
    );
    assert_eq!(sasl.mailbox(), s.mailbox);
}

#[tokio::test]
async fn a_mailbox_with_framing_characters_is_refused() {
    let s = setup(Kind::OAuth2).await;
    let config = config_for(Kind::OAuth2)
        .with_oauth2_mailbox("a@x.example\r\nRCPT TO:<evil>")
        .unwrap();
    assert!(
        s.broker
            .configure_provider(&s.tenant, config)
            .await
            .is_err()
    );
    // From the provider: a userinfo email with \x01.
    s.idp
        .add_user(FakeUser::new("m-evil").email("evil\x01@x.example"));
    let redirect = s
        .broker
        .begin_login(
            &s.tenant,
            &s.provider,
            LoginIntent::Connect {
                connection: cid("asset-9"),
            },
            LoginOptions::new(),
        )
        .await
        .unwrap();
    let callback = s
        .idp
        .authorize(redirect.authorize_url.as_str(), "m-evil")
        .unwrap();
    let err = s
        .broker
        .complete_login(
            &CallbackRoute::new(s.provider.clone()),
            &callback,
            redirect.browser_binding.secret(),
        )
        .await
        .unwrap_err();
    assert_eq!(connection_error(err), ConnectionError::InvalidMailbox);
    assert!(
        s.broker
            .list_connections(&s.tenant)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn tokens_never_appear_in_debug_display_or_errors() {
    let s = setup(Kind::Entra).await;
    let outcome = s.connect("asset-1").await;
    let refresh = s.stored_refresh_token("asset-1").await;
    let access = s
        .broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    let sasl = s.broker.xoauth2(&s.tenant, &cid("asset-1")).await.unwrap();
    let list = s.broker.list_connections(&s.tenant).await.unwrap();
    let mut printed = vec![
        format!("{outcome:?}"),
        format!("{access:?}"),
        format!("{sasl:?}"),
        sasl.redacted(),
        format!("{list:?}"),
        format!("{:?}", s.broker),
    ];
    s.expire();
    s.idp.misbehave(Misbehavior::RefreshInvalidGrant);
    let err = s
        .broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap_err();
    printed.push(format!("{err:?}"));
    printed.push(err.to_string());
    let list = s.broker.list_connections(&s.tenant).await.unwrap();
    printed.push(format!("{list:?}"));
    printed.push(format!("{:?}", key(9)));
    for text in &printed {
        assert!(!text.contains(access.secret()), "access token in {text}");
        assert!(!text.contains(&refresh), "refresh token in {text}");
        assert!(!text.contains(sasl.base64()), "SASL string in {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// Admin: list, revoke, reconnect
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn list_revoke_and_reconnect() {
    let s = setup(Kind::Google).await;
    s.connect("asset-1").await;
    s.connect("asset-2").await;
    let list = s.broker.list_connections(&s.tenant).await.unwrap();
    let ids: Vec<&str> = list.iter().map(|c| c.connection.as_str()).collect();
    assert_eq!(ids, ["asset-1", "asset-2"]);
    assert!(
        s.broker
            .list_connections(&tenant("globex"))
            .await
            .unwrap()
            .is_empty()
    );

    let refresh = s.stored_refresh_token("asset-1").await;
    let outcome = s
        .broker
        .revoke_connection(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    assert_eq!(outcome, ProviderRevocation::Revoked);
    // The provider no longer knows the refresh token.
    assert_eq!(refresh_at_idp(&s.idp, &refresh).await, 400);
    assert_eq!(s.status("asset-1").await, ConnectionStatus::Revoked);
    let record = s.raw_record("asset-1").await;
    assert!(record["refresh_token"].is_null() && record["access_token"].is_null());
    let err = s
        .broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap_err();
    assert_eq!(connection_error(err), ConnectionError::Revoked);
    // The other connection is untouched.
    s.broker
        .access_token(&s.tenant, &cid("asset-2"))
        .await
        .unwrap();

    // Reconnecting replaces the record at once.
    s.connect("asset-1").await;
    assert!(matches!(
        s.status("asset-1").await,
        ConnectionStatus::Connected { .. }
    ));
    assert_ne!(s.stored_refresh_token("asset-1").await, refresh);
    s.broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
}

#[tokio::test]
async fn revoking_at_a_provider_without_an_endpoint_still_deletes_the_tokens() {
    let s = setup(Kind::Entra).await;
    s.connect("asset-1").await;
    assert_eq!(
        s.broker
            .revoke_connection(&s.tenant, &cid("asset-1"))
            .await
            .unwrap(),
        ProviderRevocation::NotSupported
    );
    assert_eq!(s.status("asset-1").await, ConnectionStatus::Revoked);
}

/// A provider run on loopback `http` for development (as `oidc-provider` in the interop test)
/// revokes as an `https` one does: oauth2 alone would refuse the URL, so the crate sends the
/// RFC 7009 request itself there, and the provider stops honouring the refresh token.
#[tokio::test]
async fn a_loopback_http_revocation_endpoint_revokes_at_the_provider() {
    const BASE: &str = "http://127.0.0.1:9";
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-02 09:00 UTC)));
    let idp = FakeIdp::oidc(BASE).with_clock(clock.clone());
    idp.register_client(CLIENT_ID, CLIENT_SECRET);
    idp.add_user(
        FakeUser::new("m-helpdesk")
            .email("helpdesk@acme.example")
            .email_verified(true),
    );
    let store = Arc::new(TestStore::default());
    let s = Setup {
        broker: broker(&idp, &clock, &store, None),
        idp,
        clock,
        store,
        tenant: tenant("acme"),
        provider: pid("mailbox"),
        subject: "m-helpdesk",
        mailbox: "helpdesk@acme.example",
    };
    let config = ProviderConfig::oauth2(
        s.provider.clone(),
        format!("{BASE}/authorize"),
        format!("{BASE}/token"),
        ["openid", "email", "https://mail.example.test/imap"],
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    )
    .with_oauth2_userinfo_url(format!("{BASE}/userinfo"))
    .unwrap()
    .with_oauth2_revocation_url(format!("{BASE}/revoke"))
    .unwrap();
    s.broker
        .configure_provider(&s.tenant, config)
        .await
        .unwrap();
    s.connect("asset-1").await;
    let refresh = s.stored_refresh_token("asset-1").await;

    let outcome = s
        .broker
        .revoke_connection(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    assert_eq!(outcome, ProviderRevocation::Revoked);
    assert_eq!(s.status("asset-1").await, ConnectionStatus::Revoked);
    // The revocation reached the provider: it no longer honours the refresh token.
    use base64::Engine;
    use cx_sso::HttpClient;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "refresh_token")
        .append_pair("refresh_token", &refresh)
        .finish();
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("{BASE}/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("authorization", format!("Basic {basic}"))
        .body(body.into_bytes())
        .unwrap();
    assert_eq!(s.idp.call(request).await.unwrap().status(), 400);
}

#[tokio::test]
async fn reconnect_replaces_tokens_of_a_needs_reconsent_connection() {
    let s = setup(Kind::Google).await;
    s.connect("asset-1").await;
    s.expire();
    s.idp.misbehave(Misbehavior::RefreshInvalidGrant);
    assert!(
        s.broker
            .access_token(&s.tenant, &cid("asset-1"))
            .await
            .is_err()
    );
    s.idp.behave();
    s.connect("asset-1").await;
    assert!(matches!(
        s.status("asset-1").await,
        ConnectionStatus::Connected { .. }
    ));
    s.broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
}

#[tokio::test]
async fn refresh_margin_is_configurable_and_bounded() {
    assert!(
        Broker::builder()
            .public_base_url("https://cx.example.com")
            .http_client(FakeIdp::google())
            .connection_refresh_margin(Duration::hours(2))
            .build()
            .is_err()
    );
    let s = setup(Kind::Google).await;
    let lazy = Broker::builder()
        .http_client(s.idp.clone())
        .clock(s.clock.clone())
        .shared_store(s.store.clone())
        .public_base_url("https://cx.example.com")
        .connection_refresh_margin(Duration::ZERO)
        .build()
        .unwrap();
    s.connect("asset-1").await;
    s.clock.advance(Duration::minutes(59));
    let calls = s.idp.token_requests();
    lazy.access_token(&s.tenant, &cid("asset-1")).await.unwrap();
    assert_eq!(s.idp.token_requests(), calls, "no margin: still valid");
    let leases = s.store.lease_inserts.load(Ordering::SeqCst);
    s.broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    assert_eq!(
        s.idp.token_requests(),
        calls + 1,
        "default margin: refreshed"
    );
    assert_eq!(s.store.lease_inserts.load(Ordering::SeqCst), leases + 1);
}

#[cfg(feature = "tokio")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_nodes_lease_expires_and_the_refresh_goes_on() {
    let s = setup(Kind::Google).await;
    s.connect("asset-1").await;
    s.expire();
    // Another node took the lease, then died before refreshing.
    let inserted = s
        .store
        .insert(
            "connection_lease",
            "acme|asset-1",
            NewRecord::new(b"dead-node".to_vec()).expires_at(s.now() + Duration::seconds(30)),
            s.now(),
        )
        .await
        .unwrap();
    assert!(matches!(inserted, Inserted::Yes { .. }));
    // It waits for the lease holder with its sleeper.
    let broker = node_on_tokio(&s);
    let tenant = s.tenant.clone();
    let task = tokio::spawn(async move { broker.access_token(&tenant, &cid("asset-1")).await });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(!task.is_finished(), "waits for the lease holder");
    assert_eq!(s.idp.refresh_requests(), 0);
    s.clock.advance(Duration::seconds(31));
    task.await.unwrap().unwrap();
    assert_eq!(s.idp.refresh_requests(), 1);
}

#[tokio::test]
async fn connect_needs_reconsent_and_revoke_are_audited_without_tokens() {
    let s = setup(Kind::Google).await;
    let audit = Arc::new(cx_sso::MemoryAuditSink::new());
    let broker = Broker::builder()
        .http_client(s.idp.clone())
        .clock(s.clock.clone())
        .shared_store(s.store.clone())
        .audit_sink(audit.clone())
        .public_base_url("https://cx.example.com")
        .build()
        .unwrap();
    s.connect_on(&broker, "asset-1").await;
    s.expire();
    s.idp.misbehave(Misbehavior::RefreshInvalidGrant);
    assert!(
        broker
            .access_token(&s.tenant, &cid("asset-1"))
            .await
            .is_err()
    );
    broker
        .revoke_connection(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    let kinds: Vec<cx_sso::AuditKind> = audit.events().iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            cx_sso::AuditKind::ConnectionConnected,
            cx_sso::AuditKind::ConnectionNeedsReconsent,
            cx_sso::AuditKind::ConnectionRevoked,
        ]
    );
    assert!(audit.events().iter().all(|e| e.subject == "asset-1"));
}

/// Every public future of the connection API is `Send` (usable inside axum handlers and
/// `tokio::spawn`). Compiles or fails; never run.
#[allow(dead_code, unused_must_use, clippy::let_underscore_future)]
fn public_futures_are_send(b: &Broker, t: &TenantId, c: &ConnectionId) {
    fn assert_send<T: Send>(_: T) {}
    assert_send(b.access_token(t, c));
    assert_send(b.xoauth2(t, c));
    assert_send(b.list_connections(t));
    assert_send(b.connection_info(t, c));
    assert_send(b.revoke_connection(t, c));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_share_a_transient_failure_instead_of_storming_the_provider() {
    let s = setup(Kind::Google).await;
    s.connect("asset-1").await;
    s.expire();
    s.idp.misbehave(Misbehavior::TokenEndpointStatus(503));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let broker = s.broker.clone();
        let tenant = s.tenant.clone();
        tasks.push(tokio::spawn(async move {
            broker.access_token(&tenant, &cid("asset-1")).await
        }));
    }
    for t in tasks {
        let err = t.await.unwrap().unwrap_err();
        assert!(matches!(
            connection_error(err),
            ConnectionError::Transient { .. }
        ));
    }
    assert_eq!(
        s.idp.refresh_requests(),
        1,
        "one provider call for the whole burst"
    );
    // Within 5 seconds, later callers share the failure too.
    s.idp.behave();
    assert!(
        s.broker
            .access_token(&s.tenant, &cid("asset-1"))
            .await
            .is_err()
    );
    assert_eq!(s.idp.refresh_requests(), 1);
    // After that, a caller tries again.
    s.clock.advance(Duration::seconds(6));
    s.broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    assert_eq!(s.idp.refresh_requests(), 2);
}

/// A transport that times out on token requests while `down` is set.
#[derive(Debug, Clone)]
struct FlakyTransport {
    idp: FakeIdp,
    down: Arc<AtomicBool>,
}

#[async_trait]
impl cx_sso::HttpClient for FlakyTransport {
    async fn call(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, cx_sso::HttpError> {
        if self.down.load(Ordering::SeqCst) && request.uri().path().ends_with("/token") {
            return Err(cx_sso::HttpError::new(
                cx_sso::HttpErrorKind::Timeout,
                "token endpoint timed out",
            ));
        }
        self.idp.call(request).await
    }
}

#[tokio::test]
async fn timeouts_are_transient_and_keep_the_tokens() {
    let s = setup(Kind::Google).await;
    let down = Arc::new(AtomicBool::new(false));
    let broker = Broker::builder()
        .http_client(FlakyTransport {
            idp: s.idp.clone(),
            down: down.clone(),
        })
        .clock(s.clock.clone())
        .shared_store(s.store.clone())
        .public_base_url("https://cx.example.com")
        .build()
        .unwrap();
    s.connect_on(&broker, "asset-1").await;
    let before = s.raw_record("asset-1").await;
    s.expire();
    down.store(true, Ordering::SeqCst);
    let err = broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(matches!(
        connection_error(err),
        ConnectionError::Transient { .. }
    ));
    assert_eq!(s.raw_record("asset-1").await, before);
    down.store(false, Ordering::SeqCst);
    s.clock.advance(Duration::seconds(6));
    broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
}

#[tokio::test]
async fn generic_oidc_connect_asks_offline_access_and_reads_the_id_token_email() {
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-02 09:00 UTC)));
    let idp = FakeIdp::oidc("https://idp.example.test").with_clock(clock.clone());
    idp.register_client(CLIENT_ID, CLIENT_SECRET);
    idp.add_user(FakeUser::new("o-ops").email("ops@acme.example"));
    let store = Arc::new(TestStore::default());
    let broker = broker(&idp, &clock, &store, None);
    let tenant = tenant("acme");
    let config = ProviderConfig::oidc(
        pid("okta"),
        "https://idp.example.test",
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    )
    .with_extra_scopes(["mail.send"]);
    broker.configure_provider(&tenant, config).await.unwrap();
    let redirect = broker
        .begin_login(
            &tenant,
            &pid("okta"),
            LoginIntent::Connect {
                connection: cid("asset-1"),
            },
            LoginOptions::new(),
        )
        .await
        .unwrap();
    let q: HashMap<String, String> = redirect.authorize_url.query_pairs().into_owned().collect();
    let scopes: Vec<&str> = q["scope"].split(' ').collect();
    assert!(scopes.contains(&"offline_access") && scopes.contains(&"mail.send"));
    assert_eq!(q["prompt"], "consent");
    let callback = idp
        .authorize(redirect.authorize_url.as_str(), "o-ops")
        .unwrap();
    let userinfo = idp.userinfo_requests();
    let outcome = broker
        .complete_login(
            &CallbackRoute::new(pid("okta")),
            &callback,
            redirect.browser_binding.secret(),
        )
        .await
        .unwrap();
    assert!(
        matches!(outcome, LoginOutcome::Connected { ref mailbox, .. } if mailbox == "ops@acme.example")
    );
    assert_eq!(idp.userinfo_requests(), userinfo, "email from the ID token");
}

// ---------------------------------------------------------------------------------------------
// No hidden runtime: the refresh path outside tokio
// ---------------------------------------------------------------------------------------------

/// Another node takes the connection's refresh lease (and, for the test, never finishes).
async fn lease_held_by_another_node(s: &Setup, connection: &str, lasts: Duration) {
    let inserted = s
        .store
        .insert(
            "connection_lease",
            &format!("acme|{connection}"),
            NewRecord::new(b"node-b".to_vec()).expires_at(s.now() + lasts),
            s.now(),
        )
        .await
        .unwrap();
    assert!(matches!(inserted, Inserted::Yes { .. }));
}

/// A rotating provider's refresh, then the cached path, on an executor that is not tokio and
/// with no spawner given: the refresh runs inline in the caller's future.
#[test]
fn access_token_refreshes_outside_any_tokio_runtime() {
    futures_executor::block_on(async {
        let s = setup(Kind::Entra).await;
        s.connect("asset-1").await;
        let before = s.stored_refresh_token("asset-1").await;
        s.expire();
        let token = s
            .broker
            .access_token(&s.tenant, &cid("asset-1"))
            .await
            .unwrap();
        assert!(!token.secret().is_empty());
        assert_eq!(s.idp.refresh_requests(), 1);
        assert_ne!(
            s.stored_refresh_token("asset-1").await,
            before,
            "the rotated refresh token is stored"
        );
        let again = s
            .broker
            .access_token(&s.tenant, &cid("asset-1"))
            .await
            .unwrap();
        assert_eq!(again.secret(), token.secret());
        assert_eq!(s.idp.refresh_requests(), 1, "then the cached path");
    });
}

/// Another node holds the lease and the broker has no sleeper: a typed transient error at once
/// (no panic, no spin, no provider call); once the other node has stored its token, the retry
/// gets it.
async fn lease_held_elsewhere_without_a_sleeper_is_transient() {
    let s = setup(Kind::Google).await;
    s.connect("asset-1").await;
    s.expire();
    lease_held_by_another_node(&s, "asset-1", Duration::seconds(30)).await;
    let err = s
        .broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        matches!(
            connection_error(err),
            ConnectionError::Transient { retry_after } if retry_after <= Duration::seconds(1)
        ),
        "a short retry hint"
    );
    assert_eq!(s.idp.refresh_requests(), 0);
    // The other node finishes: it releases its lease after storing its token.
    assert!(
        s.store
            .delete("connection_lease", "acme|asset-1", s.now())
            .await
            .unwrap()
    );
    let node_b = broker(&s.idp, &s.clock, &s.store, None);
    let theirs = node_b
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    let ours = s
        .broker
        .access_token(&s.tenant, &cid("asset-1"))
        .await
        .unwrap();
    assert_eq!(ours.secret(), theirs.secret());
    assert_eq!(
        s.idp.refresh_requests(),
        1,
        "one refresh, by the other node"
    );
}

#[test]
fn waiting_on_another_nodes_lease_outside_any_tokio_runtime_is_transient() {
    futures_executor::block_on(lease_held_elsewhere_without_a_sleeper_is_transient());
}

#[test]
fn waiting_on_another_nodes_lease_on_a_tokio_runtime_without_timers_is_transient() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(lease_held_elsewhere_without_a_sleeper_is_transient());
}

/// A sleeper that sleeps on the test's clock: it moves the `ManualClock` on instead of waiting.
#[derive(Debug)]
struct ClockSleeper {
    clock: Arc<ManualClock>,
    sleeps: Arc<AtomicUsize>,
}

#[async_trait]
impl cx_sso::Sleeper for ClockSleeper {
    async fn sleep(&self, duration: std::time::Duration) {
        self.sleeps.fetch_add(1, Ordering::SeqCst);
        self.clock
            .advance(Duration::try_from(duration).expect("a short sleep"));
    }
}

fn broker_with(
    s: &Setup,
    f: impl FnOnce(cx_sso::BrokerBuilder) -> cx_sso::BrokerBuilder,
) -> Broker {
    f(Broker::builder()
        .http_client(s.idp.clone())
        .clock(s.clock.clone())
        .shared_store(s.store.clone())
        .public_base_url("https://cx.example.com"))
    .build()
    .unwrap()
}

/// The wait on another node's lease goes through the injected sleeper and is measured on the
/// broker's clock: no tokio, and no real time passes.
#[test]
fn an_injected_sleeper_waits_for_another_nodes_lease_on_the_broker_clock() {
    futures_executor::block_on(async {
        let s = setup(Kind::Google).await;
        let sleeps = Arc::new(AtomicUsize::new(0));
        let node = broker_with(&s, |b| {
            b.sleeper(ClockSleeper {
                clock: s.clock.clone(),
                sleeps: sleeps.clone(),
            })
        });
        s.connect("asset-1").await;
        s.expire();

        // The other node's lease runs out after 2 s: the caller waits, then refreshes.
        lease_held_by_another_node(&s, "asset-1", Duration::seconds(2)).await;
        let start = s.now();
        node.access_token(&s.tenant, &cid("asset-1")).await.unwrap();
        assert_eq!(s.idp.refresh_requests(), 1);
        assert_eq!(s.now() - start, Duration::seconds(2), "80 polls of 25 ms");
        assert_eq!(sleeps.load(Ordering::SeqCst), 80);

        // A lease that outlives the wait: transient after 10 s on the clock.
        s.expire();
        lease_held_by_another_node(&s, "asset-1", Duration::seconds(60)).await;
        let start = s.now();
        let err = node
            .access_token(&s.tenant, &cid("asset-1"))
            .await
            .unwrap_err();
        assert!(matches!(
            connection_error(err),
            ConnectionError::Transient { .. }
        ));
        assert_eq!(s.now() - start, Duration::seconds(10));
        assert_eq!(
            s.idp.refresh_requests(),
            1,
            "no refresh under another's lease"
        );
    });
}

/// A spawner that gives each task a thread and an executor of its own (not tokio).
#[derive(Debug, Default)]
struct ThreadSpawner {
    spawned: Arc<AtomicUsize>,
}

impl cx_sso::Spawner for ThreadSpawner {
    fn spawn(&self, task: cx_sso::runtime::Task) {
        self.spawned.fetch_add(1, Ordering::SeqCst);
        std::thread::spawn(move || futures_executor::block_on(task));
    }
}

#[test]
fn an_injected_spawner_of_another_executor_carries_the_refresh() {
    futures_executor::block_on(async {
        let s = setup(Kind::Entra).await;
        let spawned = Arc::new(AtomicUsize::new(0));
        let node = broker_with(&s, |b| {
            b.spawner(ThreadSpawner {
                spawned: spawned.clone(),
            })
        });
        s.connect("asset-1").await;
        let before = s.stored_refresh_token("asset-1").await;
        s.expire();
        node.access_token(&s.tenant, &cid("asset-1")).await.unwrap();
        assert_eq!(spawned.load(Ordering::SeqCst), 1);
        assert_eq!(s.idp.refresh_requests(), 1);
        assert_ne!(s.stored_refresh_token("asset-1").await, before);
    });
}

/// A spawner whose executor is gone drops the task: the caller gets a transient error, no
/// refresh happened, and the lease is released at once (the next caller is not held up).
#[test]
fn a_spawner_that_drops_the_task_gives_a_transient_error_and_frees_the_lease() {
    #[derive(Debug)]
    struct ShutDown;
    impl cx_sso::Spawner for ShutDown {
        fn spawn(&self, task: cx_sso::runtime::Task) {
            drop(task);
        }
    }
    futures_executor::block_on(async {
        let s = setup(Kind::Entra).await;
        let node = broker_with(&s, |b| b.spawner(ShutDown));
        s.connect("asset-1").await;
        s.expire();
        let err = node
            .access_token(&s.tenant, &cid("asset-1"))
            .await
            .unwrap_err();
        assert!(matches!(
            connection_error(err),
            ConnectionError::Transient { .. }
        ));
        assert_eq!(s.idp.refresh_requests(), 0);
        // No lease is left behind: a broker without a sleeper refreshes at once.
        s.broker
            .access_token(&s.tenant, &cid("asset-1"))
            .await
            .unwrap();
        assert_eq!(s.idp.refresh_requests(), 1);
    });
}

/// A tokio runtime without timers can still be the spawner.
#[cfg(feature = "tokio")]
#[test]
fn a_tokio_runtime_without_timers_can_be_the_spawner() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = setup(Kind::Entra).await;
        let node = broker_with(&s, |b| b.spawner(cx_sso::TokioRuntime::current().unwrap()));
        s.connect("asset-1").await;
        let before = s.stored_refresh_token("asset-1").await;
        s.expire();
        node.access_token(&s.tenant, &cid("asset-1")).await.unwrap();
        assert_eq!(s.idp.refresh_requests(), 1);
        assert_ne!(s.stored_refresh_token("asset-1").await, before);
        // And waiting on another node's lease, with no sleeper, is transient.
        s.expire();
        lease_held_by_another_node(&s, "asset-1", Duration::seconds(30)).await;
        let err = node
            .access_token(&s.tenant, &cid("asset-1"))
            .await
            .unwrap_err();
        assert!(matches!(
            connection_error(err),
            ConnectionError::Transient { .. }
        ));
    });
}

#[cfg(feature = "tokio")]
#[test]
fn tokio_runtime_outside_a_runtime_is_a_configuration_error() {
    let err = cx_sso::TokioRuntime::current().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(matches!(
        err,
        Error::Config(ConfigError::Invalid {
            what: "runtime",
            ..
        })
    ));
}
