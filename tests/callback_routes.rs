//! The host's own routes: redirect URIs from a path template, and callbacks refused at a route
//! that is not their login's.

mod common;

use std::sync::Arc;

use common::*;
use cx_sso::testing::{FakeIdp, FakeUser};
use cx_sso::{
    Broker, CallbackError, CallbackRoute, ClientSecret, ConfigError, Error, ErrorKind, LoginIntent,
    LoginOptions, LoginOutcome, ManualClock, MemoryAuditSink, ProviderConfig, StateError, TenantId,
};
use time::macros::datetime;

const TEMPLATE: &str = "/t/{tenant}/auth/{provider}/callback";

fn build(template: &str) -> Result<Broker, Error> {
    Broker::builder()
        .http_client(FakeIdp::google())
        .public_base_url("https://cx.example.com/portal")
        .redirect_path(template)
        .build()
}

/// Two tenants, `acme` and `globex`, each with a Google application `google` and the same
/// client, on a broker whose redirect path is `template`.
async fn two_tenants(template: &str) -> (World, TenantId) {
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-02 09:00 UTC)));
    let idp = FakeIdp::google().with_clock(clock.clone());
    idp.register_client(CLIENT_ID, CLIENT_SECRET);
    idp.add_user(
        FakeUser::new("g-alice")
            .email("alice@acme.example")
            .email_verified(true),
    );
    let audit = Arc::new(MemoryAuditSink::new());
    let broker = Broker::builder()
        .http_client(idp.clone())
        .clock(clock.clone())
        .audit_sink(audit.clone())
        .public_base_url("https://cx.example.com")
        .redirect_path(template)
        .build()
        .unwrap();
    let w = World {
        broker,
        idp,
        clock,
        audit,
        tenant: tenant("acme"),
        provider: pid("google"),
    };
    let globex = tenant("globex");
    for t in [&w.tenant, &globex] {
        let config = ProviderConfig::google(
            w.provider.clone(),
            CLIENT_ID,
            ClientSecret::new(CLIENT_SECRET),
        );
        assert!(
            w.broker
                .configure_provider(t, config)
                .await
                .unwrap()
                .is_ready()
        );
    }
    (w, globex)
}

#[test]
fn the_redirect_path_is_validated_when_the_broker_is_built() {
    for (bad, why) in [
        ("/sso/callback", "must contain `{provider}`"),
        ("/t/{team}/{provider}", "unknown placeholder `{team}`"),
        ("sso/{provider}", "starting with `/`"),
        ("/{provider}?tenant={tenant}", "no query"),
        ("/../{provider}", "`..` segment"),
        ("//evil.example/{provider}", "empty segment"),
    ] {
        match build(bad) {
            Err(Error::Config(ConfigError::Invalid {
                what: "redirect_path",
                reason,
            })) => assert!(reason.contains(why), "{bad}: {reason}"),
            other => panic!("{bad}: {other:?}"),
        }
    }
    let b = build(TEMPLATE).unwrap();
    assert_eq!(
        b.redirect_uri(&tenant("acme"), &pid("office365")),
        "https://cx.example.com/portal/t/acme/auth/office365/callback"
    );
    // Without a template: the derived default.
    let b = Broker::builder()
        .http_client(FakeIdp::google())
        .public_base_url("https://cx.example.com/portal")
        .build()
        .unwrap();
    assert_eq!(
        b.redirect_uri(&tenant("acme"), &pid("google")),
        "https://cx.example.com/portal/sso/callback/google"
    );
}

#[tokio::test]
async fn logins_use_the_hosts_redirect_uri_end_to_end() {
    let (w, _) = two_tenants(TEMPLATE).await;
    let r = w
        .broker
        .begin_login(
            &w.tenant,
            &w.provider,
            LoginIntent::Link {
                user: user("alice"),
            },
            LoginOptions::new(),
        )
        .await
        .unwrap();
    let sent: Vec<String> = r
        .authorize_url
        .query_pairs()
        .filter(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned())
        .collect();
    assert_eq!(sent, ["https://cx.example.com/t/acme/auth/google/callback"]);
    let cb = w
        .idp
        .authorize(r.authorize_url.as_str(), "g-alice")
        .unwrap();
    // The FakeIdp's token endpoint requires the same redirect URI as the authorization request.
    let out = w
        .broker
        .complete_login(&w.route(), &cb, r.browser_binding.secret())
        .await
        .unwrap();
    assert!(matches!(out, LoginOutcome::Linked { .. }), "{out:?}");
}

#[tokio::test]
async fn a_callback_at_another_tenants_route_is_refused_and_the_login_still_completes_at_its_own() {
    let (w, globex) = two_tenants(TEMPLATE).await;
    let (cb, binding) = w.consent(LoginIntent::SignIn, "g-alice").await;
    let tokens = w.idp.token_requests();
    // The same provider, the tenant of the route is globex: a login of acme's.
    let globex_route = CallbackRoute::new(w.provider.clone()).with_tenant(globex);
    let err = w
        .broker
        .complete_login(&globex_route, &cb, &binding)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Callback(CallbackError::WrongRoute)),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(w.idp.token_requests(), tokens, "the code was not redeemed");
    // Nothing was consumed: at its own route the login completes, once.
    let out = w
        .broker
        .complete_login(&w.route(), &cb, &binding)
        .await
        .unwrap();
    assert!(
        matches!(&out, LoginOutcome::LinkRequired { tenant, .. } if *tenant == w.tenant),
        "{out:?}"
    );
    assert!(matches!(
        w.broker.complete_login(&w.route(), &cb, &binding).await,
        Err(Error::State(StateError::Unknown))
    ));
}

#[tokio::test]
async fn a_callback_at_another_applications_route_is_refused_without_consuming_the_login() {
    let w = google_world().await;
    let (cb, binding) = w.consent(LoginIntent::SignIn, "g-alice").await;
    for route in [
        CallbackRoute::new(pid("office365")),
        CallbackRoute::new(pid("office365")).with_tenant(w.tenant.clone()),
    ] {
        assert!(matches!(
            w.broker.complete_login(&route, &cb, &binding).await,
            Err(Error::Callback(CallbackError::WrongRoute))
        ));
    }
    // The default redirect path has no tenant: the provider alone is a valid route.
    let out = w
        .broker
        .complete_login(&CallbackRoute::new(w.provider.clone()), &cb, &binding)
        .await
        .unwrap();
    assert!(matches!(out, LoginOutcome::LinkRequired { .. }), "{out:?}");
}

#[tokio::test]
async fn a_state_rewritten_to_fit_another_route_finds_nothing_and_spends_nothing() {
    let (w, globex) = two_tenants(TEMPLATE).await;
    let (cb, binding) = w.consent(LoginIntent::SignIn, "g-alice").await;
    // The tag of globex's logins, taken from one of them, grafted onto acme's state.
    let (globex_cb, _) = World {
        tenant: globex.clone(),
        ..w.clone_world()
    }
    .consent(LoginIntent::SignIn, "g-alice")
    .await;
    let state = |q: &str| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    let (acme_state, globex_state) = (state(&cb), state(&globex_cb));
    let (random, _) = acme_state.rsplit_once('.').unwrap();
    let (_, globex_tag) = globex_state.rsplit_once('.').unwrap();
    let forged = cb.replace(&acme_state, &format!("{random}.{globex_tag}"));
    let globex_route = CallbackRoute::new(w.provider.clone()).with_tenant(globex);
    assert!(matches!(
        w.broker
            .complete_login(&globex_route, &forged, &binding)
            .await,
        Err(Error::State(StateError::Unknown))
    ));
    assert!(
        w.broker
            .complete_login(&w.route(), &cb, &binding)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn with_tenant_in_the_redirect_path_the_route_must_name_its_tenant() {
    let (w, _) = two_tenants(TEMPLATE).await;
    let (cb, binding) = w.consent(LoginIntent::SignIn, "g-alice").await;
    let err = w
        .broker
        .complete_login(&CallbackRoute::new(w.provider.clone()), &cb, &binding)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            Error::Config(ConfigError::Invalid { what: "callback route", reason })
                if reason.contains("{tenant}")
        ),
        "{err:?}"
    );
    assert!(
        w.broker
            .complete_login(&w.route(), &cb, &binding)
            .await
            .is_ok()
    );
}
