//! Every public `async fn` of the crate returns a `Send` future, so hosts can call it from a
//! multi-threaded runtime (an axum handler, a `tokio::spawn`ed task). This is checked at compile
//! time: the futures are built, asserted `Send`, and dropped without being polled.
//!
//! There are [`PUBLIC_ASYNC_FNS`] of them (`grep -rnE "^\s*pub async fn" src`): 36 methods of
//! `Broker`, 7 of `SqlStore` (features `sqlite` / `postgres`), 2 of `RedisStore` (`redis`), 2
//! of `testing::FakeIdpServer` (`axum`) and 22 in `testing::conformance` (`run_all` and its
//! 21 checks).
//! [`every_public_async_fn_is_covered_here`] fails when one is added (or removed) without this
//! file following. The async methods of the public traits (`Store`, `HttpClient`,
//! `UserDirectory`, `Sleeper`, `axum::SsoHost`) are `#[async_trait]` methods: their futures
//! are `Pin<Box<dyn Future + Send>>` by their signature.
#![cfg(feature = "test-util")]

use cx_sso::testing::{FakeIdp, conformance};
use cx_sso::{
    AuthMethod, BindingId, Broker, CallbackRoute, ClientSecret, ConnectionId, LinkTicket,
    LoginIntent, LoginOptions, MemoryStore, ProviderConfig, ProviderId, Store, TenantId, UserId,
    VisitorAudience, VisitorClaims, VisitorConfigOptions, VisitorKeyId, VisitorSigningKey,
};

/// How many `pub async fn` the crate's sources declare.
const PUBLIC_ASYNC_FNS: usize = 69;

fn assert_send<T: Send>(_: &T) {}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn broker() -> Broker {
    Broker::builder()
        .http_client(FakeIdp::google())
        .public_base_url("https://cx.example.com")
        .build()
        .unwrap()
}

#[test]
fn every_public_broker_future_is_send() {
    let broker = broker();
    let tenant = TenantId::new("acme").unwrap();
    let provider = ProviderId::new("google").unwrap();
    let user = UserId::new("u-alice").unwrap();
    let ticket = LinkTicket::new("ticket");
    let config = ProviderConfig::google(provider.clone(), "client", ClientSecret::new("secret"));

    // Login and binding.
    let f = broker.begin_login(&tenant, &provider, LoginIntent::SignIn, LoginOptions::new());
    assert_send(&f);
    let route = CallbackRoute::new(provider.clone());
    let f = broker.complete_login(&route, "code=c&state=s", "binding");
    assert_send(&f);
    let f = broker.redeem_link_ticket(&tenant, &ticket, &user);
    assert_send(&f);
    let f = broker.list_bindings(&tenant, &user);
    assert_send(&f);
    let binding = BindingId::new("A".repeat(43)).unwrap();
    let f = broker.unbind(&tenant, &user, &binding);
    assert_send(&f);

    // SSO applications.
    let f = broker.configure_provider(&tenant, config);
    assert_send(&f);
    let f = broker.remove_provider(&tenant, &provider);
    assert_send(&f);
    let f = broker.list_providers(&tenant);
    assert_send(&f);
    let f = broker.test_connection(&tenant, &provider);
    assert_send(&f);
    let f = broker.sso_status(&tenant);
    assert_send(&f);
    let f = broker.provider_status(&tenant, &provider);
    assert_send(&f);

    // Tenant policy and sessions.
    let f = broker.set_auth_method(&tenant, AuthMethod::Either, None);
    assert_send(&f);
    let f = broker.cancel_auth_method_switch(&tenant);
    assert_send(&f);
    let f = broker.tenant_auth_status(&tenant);
    assert_send(&f);
    let f = broker.add_privileged_user(&tenant, &user);
    assert_send(&f);
    let f = broker.remove_privileged_user(&tenant, &user);
    assert_send(&f);
    let f = broker.list_privileged_users(&tenant);
    assert_send(&f);
    let f = broker.check_password_login(&tenant, &user);
    assert_send(&f);
    let f = broker.grant_password_session(&tenant, &user);
    assert_send(&f);
    // A grant can only come from the broker; `SessionGrant` is `#[non_exhaustive]`.
    let grant = runtime()
        .block_on(broker.grant_password_session(&tenant, &user))
        .unwrap();
    let f = broker.check_session(&grant);
    assert_send(&f);

    // Mailbox connections.
    let connection = ConnectionId::new("asset-1").unwrap();
    let f = broker.access_token(&tenant, &connection);
    assert_send(&f);
    let f = broker.xoauth2(&tenant, &connection);
    assert_send(&f);
    let f = broker.connection_info(&tenant, &connection);
    assert_send(&f);
    let f = broker.list_connections(&tenant);
    assert_send(&f);
    let f = broker.revoke_connection(&tenant, &connection);
    assert_send(&f);

    // Visitor tokens: configurations, key rings, mint and verify.
    let audience = VisitorAudience::new("brand-acme").unwrap();
    let kid = VisitorKeyId::new("vk_1").unwrap();
    let f = broker.create_visitor_config(&tenant, &audience, VisitorConfigOptions::default());
    assert_send(&f);
    let f = broker.create_visitor_config_with_key(
        &tenant,
        &audience,
        VisitorConfigOptions::default(),
        Some(kid.clone()),
        VisitorSigningKey::new([7u8; 32]),
    );
    assert_send(&f);
    let f = broker.delete_visitor_config(&tenant, &audience);
    assert_send(&f);
    let f = broker.list_visitor_configs(&tenant);
    assert_send(&f);
    let f = broker.list_visitor_keys(&tenant, &audience);
    assert_send(&f);
    let f = broker.add_visitor_key(&tenant, &audience);
    assert_send(&f);
    let f = broker.import_visitor_key(&tenant, &audience, None, VisitorSigningKey::new([8u8; 32]));
    assert_send(&f);
    let f = broker.promote_visitor_key(&tenant, &audience, &kid);
    assert_send(&f);
    let f = broker.retire_visitor_key(&tenant, &audience, &kid);
    assert_send(&f);
    let claims = VisitorClaims::new("c-42");
    let f = broker.mint_visitor_token(&tenant, &audience, &claims, None);
    assert_send(&f);
    let f = broker.verify_visitor_token(&tenant, &audience, "a.b.c");
    assert_send(&f);
}

#[cfg(feature = "sqlite")]
#[test]
fn every_sql_store_future_is_send() {
    use cx_sso::store::{SqlStore, SqlStoreOptions};

    let dir = std::env::temp_dir().join(format!("cx-sso-send-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("send.db");
    let f = SqlStore::sqlite(&path);
    assert_send(&f);
    let f = SqlStore::sqlite_with(&path, SqlStoreOptions::default());
    assert_send(&f);
    let rt = runtime();
    let store = rt.block_on(SqlStore::sqlite(&path)).unwrap();
    {
        let f = store.migrate();
        assert_send(&f);
        let f = store.sweep_expired(time::OffsetDateTime::UNIX_EPOCH);
        assert_send(&f);
        let f = store.close();
        assert_send(&f);
    }
    rt.block_on(store.close());
    drop(store);
    drop(rt);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "postgres")]
#[test]
fn every_postgres_constructor_future_is_send() {
    use cx_sso::store::{SqlStore, SqlStoreOptions};

    // Built and dropped unpolled: nothing connects.
    let url = "postgres://localhost:1/none";
    let f = SqlStore::postgres(url);
    assert_send(&f);
    let f = SqlStore::postgres_with(url, SqlStoreOptions::default());
    assert_send(&f);
}

#[cfg(feature = "redis")]
#[test]
fn every_redis_store_future_is_send() {
    use cx_sso::store::{RedisStore, RedisStoreOptions};

    // Built and dropped unpolled: nothing connects.
    let url = "redis://127.0.0.1:1/";
    let f = RedisStore::connect(url);
    assert_send(&f);
    let f = RedisStore::connect_with(url, RedisStoreOptions::default());
    assert_send(&f);
}

#[cfg(feature = "axum")]
#[test]
fn every_fake_idp_server_future_is_send() {
    use cx_sso::testing::FakeIdpServer;

    // Built and dropped unpolled: nothing binds.
    let f = FakeIdpServer::start(0);
    assert_send(&f);
    let f = FakeIdpServer::start_with_clock(0, std::sync::Arc::new(cx_sso::SystemClock));
    assert_send(&f);
}

#[test]
fn every_conformance_check_future_is_send() {
    let store = MemoryStore::new();
    let store: &dyn Store = &store;
    let f = conformance::run_all(store);
    assert_send(&f);
    let f = conformance::get_returns_what_insert_wrote(store);
    assert_send(&f);
    let f = conformance::keys_are_distinct_exactly(store);
    assert_send(&f);
    let f = conformance::insert_does_not_overwrite_a_live_record(store);
    assert_send(&f);
    let f = conformance::put_overwrites_with_a_new_version(store);
    assert_send(&f);
    let f = conformance::take_returns_the_record_once(store);
    assert_send(&f);
    let f = conformance::compare_and_swap_checks_the_version(store);
    assert_send(&f);
    let f = conformance::compare_and_delete_checks_the_version(store);
    assert_send(&f);
    let f = conformance::delete_reports_whether_a_live_record_was_there(store);
    assert_send(&f);
    let f = conformance::versions_never_repeat_for_a_key(store);
    assert_send(&f);
    let f = conformance::get_many_answers_each_key_in_order(store);
    assert_send(&f);
    let f = conformance::list_selects_by_index_in_key_order(store);
    assert_send(&f);
    let f = conformance::list_follows_index_changes(store);
    assert_send(&f);
    let f = conformance::list_reads_its_own_writes(store);
    assert_send(&f);
    let f = conformance::expired_records_are_absent(store);
    assert_send(&f);
    let f = conformance::namespaces_are_isolated(store);
    assert_send(&f);
    let f = conformance::concurrent_inserts_have_one_winner(store);
    assert_send(&f);
    let f = conformance::concurrent_takes_have_one_winner(store);
    assert_send(&f);
    let f = conformance::concurrent_compare_and_swaps_have_one_winner(store);
    assert_send(&f);
    let f = conformance::concurrent_compare_and_deletes_have_one_winner(store);
    assert_send(&f);
    let f = conformance::concurrent_deletes_have_one_winner(store);
    assert_send(&f);
    let f = conformance::concurrent_puts_get_distinct_versions(store);
    assert_send(&f);
}

/// The names of the `pub async fn`s declared under `dir`, one per declaration.
fn public_async_fns(dir: &std::path::Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            public_async_fns(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines() {
                if let Some(rest) = line.trim_start().strip_prefix("pub async fn ") {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    out.push(name);
                }
            }
        }
    }
}

#[test]
fn every_public_async_fn_is_covered_here() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut names = Vec::new();
    public_async_fns(&src, &mut names);
    assert_eq!(
        names.len(),
        PUBLIC_ASYNC_FNS,
        "the crate declares {} `pub async fn`, this file says {PUBLIC_ASYNC_FNS}: {names:?}",
        names.len()
    );
    let this = include_str!("send_futures.rs");
    let missing: Vec<&String> = names
        .iter()
        .filter(|name| {
            !this.contains(&format!(".{name}(")) && !this.contains(&format!("::{name}("))
        })
        .collect();
    assert!(missing.is_empty(), "not asserted Send here: {missing:?}");
}
