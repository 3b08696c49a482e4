//! Every public async method of `Broker` returns a `Send` future, so hosts can call it from a
//! multi-threaded runtime (an axum handler, a `tokio::spawn`ed task). This is checked at compile
//! time: the futures are built, asserted `Send`, and dropped without being polled.
#![cfg(feature = "test-util")]

use cx_sso::testing::FakeIdp;
use cx_sso::{
    AuthMethod, BindingId, Broker, CallbackRoute, ClientSecret, LinkTicket, LoginIntent,
    LoginOptions, ProviderConfig, ProviderId, TenantId, UserId,
};

fn assert_send<T: Send>(_: &T) {}

#[test]
fn every_public_broker_future_is_send() {
    let broker = Broker::builder()
        .http_client(FakeIdp::google())
        .public_base_url("https://cx.example.com")
        .build()
        .unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let provider = ProviderId::new("google").unwrap();
    let user = UserId::new("u-alice").unwrap();
    let ticket = LinkTicket::new("ticket");
    let config = ProviderConfig::google(provider.clone(), "client", ClientSecret::new("secret"));

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
    let grant = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(broker.grant_password_session(&tenant, &user))
        .unwrap();
    let f = broker.check_session(&grant);
    assert_send(&f);
}
