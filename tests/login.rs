//! Login and account binding, end to end against the FakeIdp.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use common::*;
use cx_sso::testing::{FakeIdp, FakeUser, Misbehavior};
use cx_sso::{
    AuditKind, BindingError, BindingId, CallbackError, ClientAuthMethod, ClientSecret, Error,
    HttpClient, HttpError, HttpErrorKind, IdTokenError, LoginIntent, LoginOptions, LoginOutcome,
    ProviderConfig, SessionMethod, StateError,
};
use time::Duration;

fn query(url: &url::Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

#[tokio::test]
async fn begin_login_sends_pkce_s256_state_nonce_and_derived_redirect_uri() {
    let w = google_world().await;
    let r = w
        .broker
        .begin_login(
            &w.tenant,
            &w.provider,
            LoginIntent::SignIn,
            LoginOptions::new(),
        )
        .await
        .unwrap();
    let q = query(&r.authorize_url);
    assert_eq!(r.authorize_url.host_str(), Some("accounts.google.com"));
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], CLIENT_ID);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert!(q["state"].len() >= 22, "state must carry at least 128 bits");
    assert!(q["nonce"].len() >= 22);
    assert_ne!(q["state"], q["nonce"]);
    assert_eq!(
        q["redirect_uri"],
        "https://cx.example.com/sso/callback/google"
    );
    assert_eq!(
        w.broker.redirect_uri(&w.tenant, &w.provider),
        "https://cx.example.com/sso/callback/google"
    );
    assert!(q["scope"].split(' ').any(|s| s == "openid"));
    assert_eq!(r.expires_at, w.clock_now() + Duration::minutes(10));
    // Two logins never share state, nonce or cookie.
    let r2 = w
        .broker
        .begin_login(
            &w.tenant,
            &w.provider,
            LoginIntent::SignIn,
            LoginOptions::new(),
        )
        .await
        .unwrap();
    assert_ne!(query(&r2.authorize_url)["state"], q["state"]);
    assert_ne!(r2.browser_binding.secret(), r.browser_binding.secret());
}

#[tokio::test]
async fn bound_account_signs_in_with_a_session_grant() {
    let w = google_world().await;
    w.bind("alice", "g-alice").await;
    match w.login(LoginIntent::SignIn, "g-alice").await.unwrap() {
        LoginOutcome::SignedIn {
            user,
            identity,
            session,
            return_to,
            ..
        } => {
            assert_eq!(user.as_str(), "alice");
            assert_eq!(identity.issuer, "https://accounts.google.com");
            assert_eq!(identity.subject, "g-alice");
            assert_eq!(identity.email.as_deref(), Some("alice@acme.example"));
            assert!(identity.email_verified);
            assert_eq!(identity.hosted_domain.as_deref(), Some("acme.example"));
            assert_eq!(session.user.as_str(), "alice");
            assert_eq!(
                session.method,
                SessionMethod::Sso {
                    provider: w.provider.clone()
                }
            );
            assert_eq!(return_to, "/");
        }
        other => panic!("expected SignedIn, got {other:?}"),
    }
}

#[tokio::test]
async fn first_login_with_unbound_account_asks_to_link_once() {
    let w = google_world().await;
    let out = w.login(LoginIntent::SignIn, "g-bob").await.unwrap();
    let LoginOutcome::LinkRequired {
        ticket, identity, ..
    } = out
    else {
        panic!("expected LinkRequired, got {out:?}");
    };
    assert_eq!(identity.subject, "g-bob");
    // The host checks bob's password, then redeems.
    let redeemed = w
        .broker
        .redeem_link_ticket(&w.tenant, &ticket, &user("bob"))
        .await
        .unwrap();
    assert_eq!(redeemed.binding.user.as_str(), "bob");
    assert_eq!(redeemed.session.user.as_str(), "bob");
    // Single use.
    let again = w
        .broker
        .redeem_link_ticket(&w.tenant, &ticket, &user("bob"))
        .await
        .unwrap_err();
    assert!(
        matches!(again, Error::Binding(BindingError::TicketInvalid)),
        "{again:?}"
    );
    // From now on bob signs in directly.
    let out = w.login(LoginIntent::SignIn, "g-bob").await.unwrap();
    assert!(matches!(out, LoginOutcome::SignedIn { ref user, .. } if user.as_str() == "bob"));
}

#[tokio::test]
async fn link_ticket_expires_after_ten_minutes() {
    let w = google_world().await;
    let LoginOutcome::LinkRequired { ticket, .. } =
        w.login(LoginIntent::SignIn, "g-bob").await.unwrap()
    else {
        panic!("expected LinkRequired");
    };
    w.clock
        .advance(Duration::minutes(10) + Duration::seconds(1));
    let err = w
        .broker
        .redeem_link_ticket(&w.tenant, &ticket, &user("bob"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Binding(BindingError::TicketInvalid)));
    assert!(w.no_bindings("bob").await);
}

#[tokio::test]
async fn link_ticket_presented_in_another_tenant_is_refused_and_stays_redeemable_by_its_owner() {
    let w = google_world().await;
    let LoginOutcome::LinkRequired { ticket, .. } =
        w.login(LoginIntent::SignIn, "g-bob").await.unwrap()
    else {
        panic!("expected LinkRequired");
    };
    for _ in 0..2 {
        let err = w
            .broker
            .redeem_link_ticket(&tenant("globex"), &ticket, &user("bob"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Binding(BindingError::TicketInvalid)),
            "{err:?}"
        );
    }
    assert!(
        w.broker
            .list_bindings(&tenant("globex"), &user("bob"))
            .await
            .unwrap()
            .is_empty()
    );
    let audited = w
        .audit
        .events()
        .into_iter()
        .filter(|e| e.kind == AuditKind::LinkTicketRefused)
        .map(|e| (e.tenant.as_str().to_owned(), e.rule))
        .collect::<Vec<_>>();
    assert_eq!(
        audited,
        vec![("globex".to_owned(), "ticket.other_tenant"); 2],
        "refused in the tenant it was presented in"
    );
    // The owner's tenant still redeems it, once.
    let redeemed = w
        .broker
        .redeem_link_ticket(&w.tenant, &ticket, &user("bob"))
        .await
        .unwrap();
    assert_eq!(redeemed.binding.user.as_str(), "bob");
    let again = w
        .broker
        .redeem_link_ticket(&w.tenant, &ticket, &user("bob"))
        .await
        .unwrap_err();
    assert!(
        matches!(again, Error::Binding(BindingError::TicketInvalid)),
        "{again:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_redemptions_of_one_link_ticket_give_exactly_one_binding() {
    let w = google_world().await;
    let LoginOutcome::LinkRequired { ticket, .. } =
        w.login(LoginIntent::SignIn, "g-bob").await.unwrap()
    else {
        panic!("expected LinkRequired");
    };
    let mut tasks = Vec::new();
    for i in 0..16 {
        let broker = w.broker.clone();
        let ticket = ticket.clone();
        // Every other one is presented in another tenant.
        let t = if i % 2 == 0 {
            w.tenant.clone()
        } else {
            tenant("globex")
        };
        tasks.push(tokio::spawn(async move {
            broker.redeem_link_ticket(&t, &ticket, &user("bob")).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(r) => {
                assert_eq!(r.binding.tenant, w.tenant);
                ok += 1;
            }
            Err(Error::Binding(BindingError::TicketInvalid)) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn pending_login_expires_after_ten_minutes() {
    let w = google_world().await;
    let (callback, binding) = w.consent(LoginIntent::SignIn, "g-alice").await;
    w.clock
        .advance(Duration::minutes(10) + Duration::seconds(1));
    let err = w
        .broker
        .complete_login(&w.route(), &callback, &binding)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::State(StateError::Unknown)), "{err:?}");
}

#[tokio::test]
async fn return_to_keeps_relative_paths_and_drops_everything_else() {
    let w = google_world().await;
    w.bind("alice", "g-alice").await;
    for (asked, expected) in [
        ("/inbox?tab=2", "/inbox?tab=2"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("/%2F%2Fevil.example", "/"),
        ("javascript:alert(1)", "/"),
        // Found by the `ids_return_to` fuzz target: the decoded forms were checked only up to
        // the first `&`, so an encoded backslash after it passed.
        ("/x&/%5Cevil.example", "/"),
        ("/eo\u{fffd}ilC5%3Fexal&ex/%5Cv+%", "/"),
        ("/a&b=%2F%2Fc", "/a&b=%2F%2Fc"),
    ] {
        let r = w
            .broker
            .begin_login(
                &w.tenant,
                &w.provider,
                LoginIntent::SignIn,
                LoginOptions::new().return_to(asked),
            )
            .await
            .unwrap();
        let cb = w
            .idp
            .authorize(r.authorize_url.as_str(), "g-alice")
            .unwrap();
        let out = w
            .broker
            .complete_login(&w.route(), &cb, r.browser_binding.secret())
            .await
            .unwrap();
        let LoginOutcome::SignedIn { return_to, .. } = out else {
            panic!("expected SignedIn");
        };
        assert_eq!(return_to, expected, "return_to({asked:?})");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_completions_of_one_callback_give_exactly_one_success() {
    let w = google_world().await;
    w.bind("alice", "g-alice").await;
    let (callback, binding) = w.consent(LoginIntent::SignIn, "g-alice").await;
    let exchanges_before = w.idp.token_requests();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let broker = w.broker.clone();
        let (callback, binding) = (callback.clone(), binding.clone());
        let route = w.route();
        tasks.push(tokio::spawn(async move {
            broker.complete_login(&route, &callback, &binding).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(LoginOutcome::SignedIn { .. }) => ok += 1,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(Error::State(StateError::Unknown)) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(
        w.idp.token_requests() - exchanges_before,
        1,
        "the code is exchanged once"
    );
}

#[tokio::test]
async fn a_callback_with_another_browsers_cookie_leaves_the_login_to_its_own_browser() {
    let w = google_world().await;
    w.bind("alice", "g-alice").await;
    let (callback, cookie) = w.consent(LoginIntent::SignIn, "g-alice").await;
    let (_, other_cookie) = w.consent(LoginIntent::SignIn, "g-bob").await;
    let exchanges_before = w.idp.token_requests();
    // Someone who saw the callback URL (Referer, history, a proxy log) replays it with any
    // cookie: refused, and nothing is spent.
    for forged in [other_cookie.as_str(), "", "forged-cookie-value"] {
        let err = w
            .broker
            .complete_login(&w.route(), &callback, forged)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::State(StateError::BrowserMismatch)),
            "{err:?}"
        );
        // The forger's page is the one of an unknown state, and tells nothing of the login.
        assert_eq!(err.kind(), cx_sso::ErrorKind::LoginExpired);
        assert!(!format!("{err} {err:?}").contains(&cookie));
    }
    let refusals: Vec<_> = w
        .audit
        .events()
        .into_iter()
        .filter(|e| e.kind == AuditKind::SecurityRefusal)
        .collect();
    assert_eq!(refusals.len(), 3, "{refusals:?}");
    for e in &refusals {
        assert_eq!(e.rule, "login.browser_mismatch");
        assert_eq!(e.tenant, w.tenant);
        assert_eq!(e.subject, "provider:google");
        assert!(!format!("{e:?}").contains(&cookie));
    }
    assert_eq!(
        w.idp.token_requests(),
        exchanges_before,
        "a forged callback exchanges no code"
    );
    // The browser that started the login still completes it, once.
    let out = w
        .broker
        .complete_login(&w.route(), &callback, &cookie)
        .await
        .unwrap();
    assert!(
        matches!(out, LoginOutcome::SignedIn { ref user, .. } if user.as_str() == "alice"),
        "{out:?}"
    );
    for c in [cookie.as_str(), other_cookie.as_str()] {
        let err = w
            .broker
            .complete_login(&w.route(), &callback, c)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::State(StateError::Unknown)), "{err:?}");
        assert_eq!(err.kind(), cx_sso::ErrorKind::LoginExpired);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_forged_callback_concurrent_right_ones_give_exactly_one_success() {
    let w = google_world().await;
    w.bind("alice", "g-alice").await;
    let (callback, cookie) = w.consent(LoginIntent::SignIn, "g-alice").await;
    let err = w
        .broker
        .complete_login(&w.route(), &callback, "forged")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::State(StateError::BrowserMismatch)),
        "{err:?}"
    );
    let exchanges_before = w.idp.token_requests();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let broker = w.broker.clone();
        let callback = callback.clone();
        let route = w.route();
        // Forged and right cookies interleaved.
        let c = if i % 2 == 0 {
            cookie.clone()
        } else {
            format!("forged-{i}")
        };
        tasks.push(tokio::spawn(async move {
            broker.complete_login(&route, &callback, &c).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(LoginOutcome::SignedIn { .. }) => ok += 1,
            Ok(other) => panic!("unexpected {other:?}"),
            Err(Error::State(StateError::Unknown | StateError::BrowserMismatch)) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(
        w.idp.token_requests() - exchanges_before,
        1,
        "the code is exchanged once"
    );
}

#[tokio::test]
async fn callback_is_parsed_strictly() {
    let w = google_world().await;
    let (callback, binding) = w.consent(LoginIntent::SignIn, "g-alice").await;
    let dup = format!("{callback}&code=again");
    assert!(matches!(
        w.broker.complete_login(&w.route(), &dup, &binding).await,
        Err(Error::Callback(CallbackError::DuplicateParameter(p))) if p == "code"
    ));
    let both = format!("{callback}&error=access_denied");
    assert!(matches!(
        w.broker.complete_login(&w.route(), &both, &binding).await,
        Err(Error::Callback(CallbackError::CodeAndError))
    ));
    let big = format!("{callback}&pad={}", "x".repeat(10_000));
    assert!(matches!(
        w.broker.complete_login(&w.route(), &big, &binding).await,
        Err(Error::Callback(CallbackError::TooLarge { .. }))
    ));
    // None of these consumed the state: the real callback still works.
    assert!(
        w.broker
            .complete_login(&w.route(), &callback, &binding)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn entra_identity_is_keyed_by_real_tenant_issuer_and_oid() {
    let w = entra_world().await;
    let out = w
        .login(
            LoginIntent::Link {
                user: user("carol"),
            },
            "pairwise-sub-carol",
        )
        .await
        .unwrap();
    let LoginOutcome::Linked { binding, .. } = out else {
        panic!("expected Linked, got {out:?}");
    };
    assert_eq!(
        binding.issuer,
        format!("https://login.microsoftonline.com/{ENTRA_TENANT}/v2.0")
    );
    assert!(!binding.issuer.contains("{tenantid}"));
    assert_eq!(binding.subject, "00000000-0000-0000-0000-00000000ca01");
    let out = w
        .login(LoginIntent::SignIn, "pairwise-sub-carol")
        .await
        .unwrap();
    assert!(matches!(out, LoginOutcome::SignedIn { ref user, .. } if user.as_str() == "carol"));
}

#[tokio::test]
async fn missing_profile_claims_are_fetched_from_userinfo() {
    let w = oidc_world().await;
    w.idp.add_user(
        FakeUser::new("o-erin")
            .email("erin@acme.example")
            .email_verified(true)
            .name("Erin")
            .omit_profile_from_id_token(true),
    );
    let out = w.login(LoginIntent::SignIn, "o-erin").await.unwrap();
    let LoginOutcome::LinkRequired { identity, .. } = out else {
        panic!("expected LinkRequired");
    };
    assert_eq!(identity.email.as_deref(), Some("erin@acme.example"));
    assert_eq!(identity.name.as_deref(), Some("Erin"));
    assert_eq!(w.idp.userinfo_requests(), 1);
}

#[tokio::test]
async fn userinfo_with_another_subject_is_refused() {
    let w = oidc_world().await;
    w.idp.add_user(
        FakeUser::new("o-erin")
            .email("e@x.example")
            .omit_profile_from_id_token(true),
    );
    w.idp.misbehave(Misbehavior::UserInfoWrongSub);
    let err = w.login(LoginIntent::SignIn, "o-erin").await.unwrap_err();
    assert!(
        matches!(err, Error::UserInfo(cx_sso::UserInfoError::SubjectMismatch)),
        "{err:?}"
    );
}

#[tokio::test]
async fn client_secret_post_is_supported() {
    let w = google_world_with(|c| c.with_auth_method(ClientAuthMethod::ClientSecretPost)).await;
    w.bind("alice", "g-alice").await;
    assert!(matches!(
        w.login(LoginIntent::SignIn, "g-alice").await.unwrap(),
        LoginOutcome::SignedIn { .. }
    ));
}

#[tokio::test]
async fn discovery_and_keys_are_fetched_once_for_many_logins() {
    let w = google_world().await;
    w.bind("alice", "g-alice").await;
    for _ in 0..5 {
        w.login(LoginIntent::SignIn, "g-alice").await.unwrap();
    }
    assert_eq!(w.idp.discovery_fetches(), 1);
    assert_eq!(w.idp.jwks_fetches(), 1);
}

#[tokio::test]
async fn rotated_key_is_picked_up_by_the_first_token_that_uses_it() {
    let w = google_world().await;
    w.bind("alice", "g-alice").await;
    assert_eq!(w.idp.jwks_fetches(), 1);
    w.idp.rotate_key();
    assert!(w.login(LoginIntent::SignIn, "g-alice").await.is_ok());
    assert_eq!(
        w.idp.jwks_fetches(),
        2,
        "exactly one refetch for the new kid"
    );
    // A second rotation within the cooldown is still picked up? No: the cooldown limits
    // refetches caused by unknown kids. After the cooldown it is.
    w.clock.advance(Duration::seconds(61));
    w.idp.rotate_key();
    assert!(w.login(LoginIntent::SignIn, "g-alice").await.is_ok());
    assert_eq!(w.idp.jwks_fetches(), 3);
}

#[tokio::test]
async fn unknown_kid_refetches_are_rate_limited() {
    let w = google_world().await;
    w.bind("alice", "g-alice").await;
    w.idp.misbehave(Misbehavior::UnknownKid);
    let before = w.idp.jwks_fetches();
    for _ in 0..5 {
        let err = w.login(LoginIntent::SignIn, "g-alice").await.unwrap_err();
        assert!(
            matches!(err, Error::IdToken(IdTokenError::UnknownKey)),
            "{err:?}"
        );
    }
    assert!(
        w.idp.jwks_fetches() - before <= 1,
        "never one fetch per token"
    );
}

/// A transport that can make the JWKS (or discovery) endpoint fail, counting the attempts.
#[derive(Debug)]
struct FlakyJwks {
    idp: FakeIdp,
    down: Arc<AtomicBool>,
    attempts: Arc<std::sync::atomic::AtomicUsize>,
}

#[async_trait]
impl HttpClient for FlakyJwks {
    async fn call(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, HttpError> {
        let path = request.uri().path().to_owned();
        if self.down.load(Ordering::SeqCst)
            && (path.ends_with("/certs") || path.ends_with("/openid-configuration"))
        {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            return Err(HttpError::new(HttpErrorKind::Connect, "provider down"));
        }
        self.idp.call(request).await
    }
}

#[tokio::test]
async fn cached_keys_keep_working_when_the_jwks_endpoint_fails() {
    let w = google_world().await;
    let down = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let broker = cx_sso::Broker::builder()
        .http_client(FlakyJwks {
            idp: w.idp.clone(),
            down: down.clone(),
            attempts: attempts.clone(),
        })
        .clock(w.clock.clone())
        .public_base_url("https://cx.example.com")
        .build()
        .unwrap();
    let config = ProviderConfig::google(
        w.provider.clone(),
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    );
    broker.configure_provider(&w.tenant, config).await.unwrap();
    let once = |broker: cx_sso::Broker| {
        let w = &w;
        async move {
            let r = broker
                .begin_login(
                    &w.tenant,
                    &w.provider,
                    LoginIntent::SignIn,
                    LoginOptions::new(),
                )
                .await
                .unwrap();
            let cb = w
                .idp
                .authorize(r.authorize_url.as_str(), "g-alice")
                .unwrap();
            broker
                .complete_login(&w.route(), &cb, r.browser_binding.secret())
                .await
        }
    };
    assert!(once(broker.clone()).await.is_ok());
    down.store(true, Ordering::SeqCst);
    // Past the cache TTL: the refetches fail, the cached document and keys still serve.
    w.clock.advance(Duration::hours(2));
    assert!(once(broker.clone()).await.is_ok());
    let after_first = attempts.load(Ordering::SeqCst);
    assert_eq!(after_first, 2, "one discovery and one key-set attempt");
    // Further logins during the outage do not retry on every request...
    for _ in 0..5 {
        assert!(once(broker.clone()).await.is_ok());
    }
    assert_eq!(attempts.load(Ordering::SeqCst), after_first);
    // ...but after the backoff.
    w.clock.advance(Duration::seconds(31));
    assert!(once(broker.clone()).await.is_ok());
    assert_eq!(attempts.load(Ordering::SeqCst), after_first + 2);
}

#[tokio::test]
async fn with_nothing_cached_a_failed_discovery_is_not_retried_by_every_login() {
    let w = google_world().await;
    // The application was configured (and found ready) by another node; this node starts
    // with nothing cached while the provider is down.
    let store: Arc<dyn cx_sso::Store> = Arc::new(cx_sso::MemoryStore::new());
    let node = |http: FlakyJwks| {
        cx_sso::Broker::builder()
            .http_client(http)
            .shared_store(store.clone())
            .clock(w.clock.clone())
            .public_base_url("https://cx.example.com")
            .build()
            .unwrap()
    };
    let down = Arc::new(AtomicBool::new(false));
    let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let flaky = || FlakyJwks {
        idp: w.idp.clone(),
        down: down.clone(),
        attempts: attempts.clone(),
    };
    let config = ProviderConfig::google(
        w.provider.clone(),
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    );
    let report = node(flaky())
        .configure_provider(&w.tenant, config)
        .await
        .unwrap();
    assert!(report.is_ready(), "{report:?}");
    down.store(true, Ordering::SeqCst);
    let broker = node(flaky());
    let begin = || {
        broker.begin_login(
            &w.tenant,
            &w.provider,
            LoginIntent::SignIn,
            LoginOptions::new(),
        )
    };
    let first = begin().await.unwrap_err();
    assert!(
        matches!(first, Error::Discovery(cx_sso::DiscoveryError::Http(_))),
        "{first:?}"
    );
    let before = attempts.load(Ordering::SeqCst);
    let again = begin().await.unwrap_err();
    assert!(
        matches!(
            again,
            Error::Discovery(cx_sso::DiscoveryError::RecentlyFailed)
        ),
        "{again:?}"
    );
    assert_eq!(again.kind(), cx_sso::ErrorKind::Unavailable);
    assert_eq!(attempts.load(Ordering::SeqCst), before, "no new request");
    down.store(false, Ordering::SeqCst);
    w.clock.advance(Duration::seconds(31));
    assert!(begin().await.is_ok());
}

#[tokio::test]
async fn bindings_are_listed_and_removed() {
    let w = google_world().await;
    w.bind("alice", "g-alice").await;
    let list = w
        .broker
        .list_bindings(&w.tenant, &user("alice"))
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].subject, "g-alice");
    // Someone else cannot remove alice's binding.
    let err = w
        .broker
        .unbind(&w.tenant, &user("bob"), &list[0].id())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Binding(BindingError::NotFound)));
    w.broker
        .unbind(&w.tenant, &user("alice"), &list[0].id())
        .await
        .unwrap();
    assert!(w.no_bindings("alice").await);
    assert!(matches!(
        w.login(LoginIntent::SignIn, "g-alice").await.unwrap(),
        LoginOutcome::LinkRequired { .. }
    ));
}

#[tokio::test]
async fn unbind_takes_the_binding_id_a_settings_page_round_trips() {
    let w = google_world().await;
    w.bind("alice", "g-alice").await;
    let list = w
        .broker
        .list_bindings(&w.tenant, &user("alice"))
        .await
        .unwrap();
    let id = list[0].id();
    // Stable, opaque and URL-safe: it names neither the issuer nor the subject.
    assert_eq!(id, list[0].id());
    assert_eq!(id.as_str().len(), 43);
    assert!(
        id.as_str()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{id}"
    );
    assert!(!id.as_str().contains("g-alice"));
    // The "Remove" button posts it back as text.
    let posted: BindingId = id.to_string().parse().unwrap();
    assert_eq!(posted, id);
    assert!("not an id!".parse::<BindingId>().is_err());
    // Exactly 43 characters, as the docs say: a cut-off or padded id is malformed, not unknown.
    let cut = &id.as_str()[..42];
    assert!(cut.parse::<BindingId>().is_err(), "{cut}");
    assert!("A".parse::<BindingId>().is_err());
    assert!(format!("{id}=").parse::<BindingId>().is_err());

    // An id of no binding (well-formed, or another tenant's) is not found; nothing is removed.
    let unknown = BindingId::new("A".repeat(43)).unwrap();
    let err = w
        .broker
        .unbind(&w.tenant, &user("alice"), &unknown)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Binding(BindingError::NotFound)),
        "{err:?}"
    );
    let err = w
        .broker
        .unbind(&tenant("other"), &user("alice"), &posted)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Binding(BindingError::NotFound)),
        "{err:?}"
    );
    assert_eq!(
        w.broker
            .list_bindings(&w.tenant, &user("alice"))
            .await
            .unwrap()
            .len(),
        1
    );

    w.broker
        .unbind(&w.tenant, &user("alice"), &posted)
        .await
        .unwrap();
    assert!(w.no_bindings("alice").await);
    // Twice is not found.
    let err = w
        .broker
        .unbind(&w.tenant, &user("alice"), &posted)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Binding(BindingError::NotFound)),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_account_bound_to_one_user_cannot_be_linked_to_another() {
    let w = google_world().await;
    w.bind("alice", "g-alice").await;
    let err = w
        .login(
            LoginIntent::Link {
                user: user("mallory"),
            },
            "g-alice",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Binding(BindingError::BoundToAnotherUser)),
        "{err:?}"
    );
    // Binding again to the same user is harmless.
    w.bind("alice", "g-alice").await;
}

#[tokio::test]
async fn bindings_are_per_tenant() {
    let w = google_world().await;
    w.bind("alice", "g-alice").await;
    let other = tenant("globex");
    let config = ProviderConfig::google(
        w.provider.clone(),
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    );
    w.broker.configure_provider(&other, config).await.unwrap();
    let r = w
        .broker
        .begin_login(
            &other,
            &w.provider,
            LoginIntent::SignIn,
            LoginOptions::new(),
        )
        .await
        .unwrap();
    let cb = w
        .idp
        .authorize(r.authorize_url.as_str(), "g-alice")
        .unwrap();
    let out = w
        .broker
        .complete_login(
            &cx_sso::CallbackRoute::new(w.provider.clone()).with_tenant(other.clone()),
            &cb,
            r.browser_binding.secret(),
        )
        .await
        .unwrap();
    assert!(matches!(out, LoginOutcome::LinkRequired { .. }), "{out:?}");
}

#[tokio::test]
async fn login_for_an_unconfigured_application_is_not_configured() {
    let w = google_world().await;
    let err = w
        .broker
        .begin_login(
            &w.tenant,
            &pid("okta"),
            LoginIntent::SignIn,
            LoginOptions::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotConfigured { .. }));
    assert_eq!(err.kind(), cx_sso::ErrorKind::NotConfigured);
}

#[tokio::test]
async fn generic_oidc_provider_signs_in() {
    let w = oidc_world().await;
    w.bind("dave", "o-dave").await;
    let out = w.login(LoginIntent::SignIn, "o-dave").await.unwrap();
    assert!(
        matches!(out, LoginOutcome::SignedIn { ref identity, .. } if identity.issuer == "https://idp.example.test")
    );
}

#[tokio::test]
async fn fake_idp_works_for_entra_single_tenant_apps() {
    let clock = Arc::new(cx_sso::ManualClock::new(
        time::macros::datetime!(2026-03-02 09:00 UTC),
    ));
    let idp = FakeIdp::entra().with_clock(clock.clone());
    idp.register_client(CLIENT_ID, CLIENT_SECRET);
    idp.add_user(
        FakeUser::new("s1")
            .tenant_id(ENTRA_TENANT)
            .object_id("00000000-0000-0000-0000-0000000000a1"),
    );
    idp.add_user(FakeUser::new("s2").tenant_id(OTHER_ENTRA_TENANT));
    let audit = Arc::new(cx_sso::MemoryAuditSink::new());
    let broker = broker_over(&idp, &clock, &audit);
    let t = tenant("acme");
    let config = ProviderConfig::microsoft(
        pid("o365"),
        cx_sso::EntraTenancy::single(ENTRA_TENANT).unwrap(),
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    );
    assert!(
        broker
            .configure_provider(&t, config)
            .await
            .unwrap()
            .is_ready()
    );
    for (subject, ok) in [("s1", true), ("s2", false)] {
        let r = broker
            .begin_login(&t, &pid("o365"), LoginIntent::SignIn, LoginOptions::new())
            .await
            .unwrap();
        let cb = idp.authorize(r.authorize_url.as_str(), subject).unwrap();
        let route = cx_sso::CallbackRoute::new(pid("o365"));
        let out = broker
            .complete_login(&route, &cb, r.browser_binding.secret())
            .await;
        if ok {
            assert!(out.is_ok(), "{out:?}");
        } else {
            assert!(
                matches!(out, Err(Error::IdToken(IdTokenError::WrongIssuer))),
                "{out:?}"
            );
        }
    }
}
