//! Tenant SSO applications: configuration, validation, connection checks and status.

mod common;

use common::*;
use cx_sso::testing::{FakeIdp, Misbehavior};
use cx_sso::{
    CheckResult, ClientSecret, ConfigError, EmailMatch, EntraAudience, EntraTenancy, Error,
    ErrorKind, HttpClient, HttpError, IdTokenAlgorithm, IdTokenError, LinkingPolicy, LoginIntent,
    LoginOptions, LoginOutcome, ProviderConfig, ProviderStatus, SecretCheck, SsoStatus,
};

#[tokio::test]
async fn status_goes_from_not_configured_to_ready() {
    let w = google_world().await;
    let fresh = tenant("fresh");
    assert_eq!(
        w.broker.sso_status(&fresh).await.unwrap(),
        SsoStatus::NotConfigured
    );
    let config = ProviderConfig::google(pid("google"), CLIENT_ID, ClientSecret::new(CLIENT_SECRET));
    let report = w.broker.configure_provider(&fresh, config).await.unwrap();
    assert_eq!(report.check.discovery, CheckResult::Ok);
    assert_eq!(report.check.secret, SecretCheck::Accepted);
    assert!(report.is_ready());
    assert_eq!(
        w.broker.sso_status(&fresh).await.unwrap(),
        SsoStatus::Ready {
            providers: vec![pid("google")],
            problems: vec![]
        }
    );
    assert_eq!(w.broker.list_providers(&fresh).await.unwrap().len(), 1);
    w.broker
        .remove_provider(&fresh, &pid("google"))
        .await
        .unwrap();
    assert_eq!(
        w.broker.sso_status(&fresh).await.unwrap(),
        SsoStatus::NotConfigured
    );
    assert!(matches!(
        w.broker.remove_provider(&fresh, &pid("google")).await,
        Err(Error::NotConfigured { .. })
    ));
}

#[tokio::test]
async fn a_rejected_secret_is_told_apart_and_makes_the_tenant_invalid() {
    let w = google_world().await;
    let t = tenant("typo");
    let config = ProviderConfig::google(
        pid("google"),
        CLIENT_ID,
        ClientSecret::new("not-the-secret"),
    );
    let report = w.broker.configure_provider(&t, config).await.unwrap();
    assert_eq!(report.check.discovery, CheckResult::Ok);
    assert_eq!(report.check.secret, SecretCheck::Rejected);
    assert!(!report.is_ready());
    match w.broker.sso_status(&t).await.unwrap() {
        SsoStatus::Invalid(problems) => {
            assert_eq!(problems.len(), 1);
            assert!(
                problems[0].reason.contains("invalid_client"),
                "{problems:?}"
            );
            assert!(!problems[0].reason.contains("not-the-secret"));
        }
        other => panic!("{other:?}"),
    }
    // One good application makes the tenant ready, and the broken one is still reported.
    let good = ProviderConfig::google(pid("google2"), CLIENT_ID, ClientSecret::new(CLIENT_SECRET));
    w.broker.configure_provider(&t, good).await.unwrap();
    match w.broker.sso_status(&t).await.unwrap() {
        SsoStatus::Ready {
            providers,
            problems,
        } => {
            assert_eq!(providers, vec![pid("google2")]);
            assert_eq!(problems.len(), 1);
            assert_eq!(problems[0].provider, pid("google"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn static_problems_are_refused_before_anything_is_stored() {
    let w = google_world().await;
    let t = tenant("static");
    let bad = ProviderConfig::oidc(
        pid("okta"),
        "http://idp.example.com",
        " ",
        ClientSecret::new(""),
    );
    let err = w.broker.configure_provider(&t, bad).await.unwrap_err();
    match &err {
        Error::Config(ConfigError::Invalid { reason, .. }) => {
            assert!(reason.contains("client id"), "{reason}");
            assert!(reason.contains("client secret"), "{reason}");
            assert!(reason.contains("https"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.kind(), cx_sso::ErrorKind::InvalidInput);
    assert_eq!(
        w.broker.sso_status(&t).await.unwrap(),
        SsoStatus::NotConfigured
    );
    assert!(EntraTenancy::single("contoso.onmicrosoft.com").is_err());
    assert!(EntraTenancy::multi(EntraAudience::Common, ["not-a-guid"]).is_err());
}

#[tokio::test]
async fn an_issuer_mismatch_in_discovery_is_reported() {
    let w = google_world().await;
    // The configured issuer differs from the one the document states (a trailing slash).
    let idp = FakeIdp::oidc("https://idp.example.test");
    let broker = cx_sso::Broker::builder()
        .http_client(idp)
        .public_base_url("https://cx.example.com")
        .build()
        .unwrap();
    let config = ProviderConfig::oidc(
        pid("okta"),
        "https://idp.example.test/",
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    );
    let report = broker.configure_provider(&w.tenant, config).await.unwrap();
    match report.check.discovery {
        CheckResult::Failed(reason) => assert!(reason.contains("issuer mismatch"), "{reason}"),
        CheckResult::Ok => panic!("a trailing slash is another issuer"),
    }
    assert!(matches!(
        broker.sso_status(&w.tenant).await.unwrap(),
        SsoStatus::Invalid(_)
    ));
}

#[tokio::test]
async fn test_connection_rechecks_and_records() {
    let w = google_world().await;
    w.idp.misbehave(Misbehavior::DiscoveryRedirect);
    let check = w
        .broker
        .test_connection(&w.tenant, &w.provider)
        .await
        .unwrap();
    assert!(!check.is_ready());
    assert!(matches!(
        w.broker.sso_status(&w.tenant).await.unwrap(),
        SsoStatus::Invalid(_)
    ));
    w.idp.behave();
    let check = w
        .broker
        .test_connection(&w.tenant, &w.provider)
        .await
        .unwrap();
    assert!(check.is_ready());
    assert!(matches!(
        w.broker.sso_status(&w.tenant).await.unwrap(),
        SsoStatus::Ready { .. }
    ));
}

#[test]
fn broker_configuration_is_validated() {
    let build = |url: &str| {
        cx_sso::Broker::builder()
            .http_client(FakeIdp::google())
            .public_base_url(url)
            .build()
    };
    assert!(build("https://cx.example.com").is_ok());
    assert!(build("http://localhost:3000").is_ok());
    assert!(build("http://cx.example.com").is_err());
    assert!(build("https://cx.example.com/?x=1").is_err());
    assert!(build("not a url").is_err());
    assert!(matches!(
        cx_sso::Broker::builder()
            .http_client(FakeIdp::google())
            .build(),
        Err(Error::Config(ConfigError::Missing("public_base_url")))
    ));
    let b = cx_sso::Broker::builder()
        .http_client(FakeIdp::google())
        .public_base_url("https://cx.example.com/tenant-portal")
        .build()
        .unwrap();
    assert_eq!(
        b.redirect_uri(&tenant("acme"), &pid("google")),
        "https://cx.example.com/tenant-portal/sso/callback/google"
    );
}

#[tokio::test]
async fn client_secrets_are_sealed_at_rest_and_bound_to_their_record() {
    use cx_sso::store::{NewRecord, Store};
    use cx_sso::{EncryptionKey, LoginIntent, LoginOptions};
    use std::sync::Arc;

    let idp = FakeIdp::google();
    idp.register_client(CLIENT_ID, CLIENT_SECRET);
    let store: Arc<dyn Store> = Arc::new(cx_sso::MemoryStore::new());
    let broker_with = |key: [u8; 32]| {
        cx_sso::Broker::builder()
            .http_client(idp.clone())
            .shared_store(store.clone())
            .encryption_key(EncryptionKey::from_bytes(key))
            .public_base_url("https://cx.example.com")
            .build()
            .unwrap()
    };
    let broker = broker_with([7; 32]);
    let t = tenant("acme");
    let config = ProviderConfig::google(pid("google"), CLIENT_ID, ClientSecret::new(CLIENT_SECRET));
    assert!(
        broker
            .configure_provider(&t, config)
            .await
            .unwrap()
            .is_ready()
    );
    let now = time::OffsetDateTime::now_utc();
    let rows = store.list("provider", "acme", now).await.unwrap();
    assert_eq!(rows.len(), 1);
    let raw = String::from_utf8_lossy(&rows[0].1.value).into_owned();
    assert!(
        !raw.contains(CLIENT_SECRET),
        "secret stored in the clear: {raw}"
    );
    // The broker still uses it: the secret check and a login work.
    assert!(
        broker
            .test_connection(&t, &pid("google"))
            .await
            .unwrap()
            .is_ready()
    );
    assert!(
        broker
            .begin_login(&t, &pid("google"), LoginIntent::SignIn, LoginOptions::new())
            .await
            .is_ok()
    );
    // Configs never serialise their secret (hosts send them to admin pages).
    let listed = broker.list_providers(&t).await.unwrap();
    assert!(
        !serde_json::to_string(&listed)
            .unwrap()
            .contains(CLIENT_SECRET)
    );
    assert_eq!(listed[0].client_secret().secret(), CLIENT_SECRET);
    // Copied to another tenant's row, it does not decrypt; nor under another key.
    store
        .put(
            "provider",
            "globex|google",
            NewRecord::new(rows[0].1.value.clone()).index("globex"),
            now,
        )
        .await
        .unwrap();
    assert!(matches!(
        broker.list_providers(&tenant("globex")).await,
        Err(Error::Store(_))
    ));
    assert!(matches!(
        broker_with([8; 32]).list_providers(&t).await,
        Err(Error::Store(_))
    ));
}

#[tokio::test]
async fn begin_login_refuses_an_application_whose_check_failed_before_any_redirect() {
    let w = google_world().await;
    let t = tenant("typo");
    let config = ProviderConfig::google(pid("google"), CLIENT_ID, ClientSecret::new("wrong"));
    let report = w.broker.configure_provider(&t, config).await.unwrap();
    // The answer says plainly that the saved application is not ready, and why.
    assert!(!report.is_ready());
    assert_eq!(report.provider, pid("google"));
    assert!(
        report
            .reasons()
            .iter()
            .any(|r| r.contains("invalid_client")),
        "{report:?}"
    );
    let (discovery, tokens) = (w.idp.discovery_fetches(), w.idp.token_requests());
    let err = w
        .broker
        .begin_login(&t, &pid("google"), LoginIntent::SignIn, LoginOptions::new())
        .await
        .unwrap_err();
    match &err {
        Error::ProviderInvalid {
            tenant,
            provider,
            reasons,
        } => {
            assert_eq!((tenant.as_str(), provider.as_str()), ("typo", "google"));
            assert_eq!(reasons.as_slice(), report.reasons());
        }
        other => panic!("expected the SSO warning, got {other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::NotConfigured);
    assert!(!err.to_string().contains("wrong"), "{err}");
    // The same status the lookup gives, so the login page renders one warning.
    assert_eq!(err.provider_status(), Some(report.status.clone()));
    assert_eq!(
        w.broker.provider_status(&t, &pid("google")).await.unwrap(),
        report.status
    );
    // Refused before any redirect: the provider was not asked anything.
    assert_eq!(w.idp.discovery_fetches(), discovery);
    assert_eq!(w.idp.token_requests(), tokens);
    // Fixed by the admin, the application is ready and logins go to the provider again.
    let fixed = ProviderConfig::google(pid("google"), CLIENT_ID, ClientSecret::new(CLIENT_SECRET));
    assert!(
        w.broker
            .configure_provider(&t, fixed)
            .await
            .unwrap()
            .is_ready()
    );
    assert!(
        w.broker
            .begin_login(&t, &pid("google"), LoginIntent::SignIn, LoginOptions::new())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn provider_status_reports_one_application() {
    let w = google_world().await;
    assert_eq!(
        w.broker
            .provider_status(&w.tenant, &w.provider)
            .await
            .unwrap(),
        ProviderStatus::Ready
    );
    // Not configured: the status says so, and begin_login gives the same warning.
    let missing = pid("office365");
    assert_eq!(
        w.broker.provider_status(&w.tenant, &missing).await.unwrap(),
        ProviderStatus::NotConfigured
    );
    let err = w
        .broker
        .begin_login(
            &w.tenant,
            &missing,
            LoginIntent::SignIn,
            LoginOptions::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotConfigured { .. }), "{err:?}");
    assert_eq!(err.provider_status(), Some(ProviderStatus::NotConfigured));
    assert_eq!(err.kind(), ErrorKind::NotConfigured);
    // A second, broken application is reported on its own; the first stays ready.
    let broken = ProviderConfig::google(pid("google2"), CLIENT_ID, ClientSecret::new("wrong"));
    w.broker
        .configure_provider(&w.tenant, broken)
        .await
        .unwrap();
    match w
        .broker
        .provider_status(&w.tenant, &pid("google2"))
        .await
        .unwrap()
    {
        ProviderStatus::Invalid { reasons } => {
            assert_eq!(reasons.len(), 1, "{reasons:?}");
            assert!(reasons[0].contains("invalid_client"), "{reasons:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        w.broker
            .provider_status(&w.tenant, &w.provider)
            .await
            .unwrap()
            .is_ready()
    );
    // A failed re-check makes the application invalid; a passing one ready again.
    w.idp.misbehave(Misbehavior::DiscoveryRedirect);
    let report = w
        .broker
        .test_connection(&w.tenant, &w.provider)
        .await
        .unwrap();
    assert!(!report.is_ready());
    assert_eq!(
        w.broker
            .provider_status(&w.tenant, &w.provider)
            .await
            .unwrap(),
        report.status
    );
    w.idp.behave();
    assert!(
        w.broker
            .test_connection(&w.tenant, &w.provider)
            .await
            .unwrap()
            .is_ready()
    );
    assert_eq!(
        w.broker
            .provider_status(&w.tenant, &w.provider)
            .await
            .unwrap(),
        ProviderStatus::Ready
    );
}

#[tokio::test]
async fn the_exact_scope_set_is_sent_and_openid_is_required() {
    let calendar = "https://www.googleapis.com/auth/calendar.readonly";
    let w = google_world_with(|c| c.with_scopes(["openid", "email", calendar, "email"])).await;
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
    let scope = r
        .authorize_url
        .query_pairs()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned());
    assert_eq!(
        scope.as_deref(),
        Some(format!("openid email {calendar}").as_str())
    );
    // The login works with it (`profile` is optional).
    w.bind("alice", "g-alice").await;
    assert!(matches!(
        w.login(LoginIntent::SignIn, "g-alice").await.unwrap(),
        LoginOutcome::SignedIn { .. }
    ));

    // Without `openid`, or with a scope that is not an RFC 6749 scope token: refused, nothing
    // stored.
    let t = tenant("scopes");
    for (scopes, why) in [
        (vec!["email", "profile"], "`openid`"),
        (vec!["openid", "a b"], "scope is empty or holds a space"),
        (vec!["openid", ""], "scope is empty"),
        (vec!["openid", "caf\u{e9}"], "non-ASCII"),
    ] {
        let config =
            ProviderConfig::google(pid("google"), CLIENT_ID, ClientSecret::new(CLIENT_SECRET))
                .with_scopes(scopes.clone());
        match w.broker.configure_provider(&t, config).await {
            Err(Error::Config(ConfigError::Invalid { reason, .. })) => {
                assert!(reason.contains(why), "{scopes:?}: {reason}");
            }
            other => panic!("{scopes:?}: {other:?}"),
        }
        assert_eq!(
            w.broker.provider_status(&t, &pid("google")).await.unwrap(),
            ProviderStatus::NotConfigured
        );
    }
}

#[tokio::test]
async fn a_pinned_algorithm_the_provider_does_not_advertise_makes_the_application_invalid() {
    let w = google_world().await;
    let t = tenant("pinned");
    let config = ProviderConfig::google(pid("google"), CLIENT_ID, ClientSecret::new(CLIENT_SECRET))
        .with_id_token_signed_response_alg(IdTokenAlgorithm::Es256);
    let report = w.broker.configure_provider(&t, config).await.unwrap();
    assert!(!report.is_ready());
    assert!(
        report
            .reasons()
            .iter()
            .any(|r| r.contains("ES256") && r.contains("RS256")),
        "{report:?}"
    );
    // The secret was still checked: every problem is reported.
    assert_eq!(report.check.secret, SecretCheck::Accepted);
    assert!(matches!(
        w.broker
            .begin_login(&t, &pid("google"), LoginIntent::SignIn, LoginOptions::new())
            .await,
        Err(Error::ProviderInvalid { .. })
    ));
}

/// A provider that advertises PS256 beside RS256 (and still signs with RS256).
#[derive(Debug)]
struct AdvertisesPs256(FakeIdp);

#[async_trait::async_trait]
impl HttpClient for AdvertisesPs256 {
    async fn call(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, HttpError> {
        let discovery = request.uri().path().ends_with("/openid-configuration");
        let response = self.0.call(request).await?;
        if !discovery {
            return Ok(response);
        }
        let (parts, body) = response.into_parts();
        let mut doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
        doc["id_token_signing_alg_values_supported"] = serde_json::json!(["RS256", "PS256"]);
        Ok(http::Response::from_parts(
            parts,
            serde_json::to_vec(&doc).unwrap(),
        ))
    }
}

#[tokio::test]
async fn only_the_pinned_id_token_algorithm_is_accepted() {
    let w = google_world().await;
    let broker = cx_sso::Broker::builder()
        .http_client(AdvertisesPs256(w.idp.clone()))
        .clock(w.clock.clone())
        .public_base_url("https://cx.example.com")
        .build()
        .unwrap();
    let login = |pin: IdTokenAlgorithm| {
        let (w, broker) = (&w, &broker);
        async move {
            let config = ProviderConfig::google(
                w.provider.clone(),
                CLIENT_ID,
                ClientSecret::new(CLIENT_SECRET),
            )
            .with_id_token_signed_response_alg(pin);
            assert_eq!(config.id_token_signed_response_alg(), Some(pin));
            let report = broker.configure_provider(&w.tenant, config).await.unwrap();
            assert!(report.is_ready(), "{report:?}");
            let r = broker
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
            let cb = w
                .idp
                .authorize(r.authorize_url.as_str(), "g-alice")
                .unwrap();
            broker
                .complete_login(&w.route(), &cb, r.browser_binding.secret())
                .await
        }
    };
    // PS256 is pinned: the provider's RS256 token is refused, although it advertises RS256.
    let err = login(IdTokenAlgorithm::Ps256).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::IdToken(IdTokenError::AlgorithmMismatch {
                expected: IdTokenAlgorithm::Ps256,
                found: IdTokenAlgorithm::Rs256,
            })
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::ProviderRejected);
    assert!(
        broker
            .list_bindings(&w.tenant, &user("alice"))
            .await
            .unwrap()
            .is_empty()
    );
    // RS256 pinned: the same token is accepted.
    assert!(matches!(
        login(IdTokenAlgorithm::Rs256).await.unwrap(),
        LoginOutcome::Linked { .. }
    ));
}

#[test]
fn id_token_algorithms_are_named_as_in_jose() {
    for (name, alg) in [
        ("RS256", IdTokenAlgorithm::Rs256),
        ("PS256", IdTokenAlgorithm::Ps256),
        ("ES256", IdTokenAlgorithm::Es256),
        ("EdDSA", IdTokenAlgorithm::EdDsa),
    ] {
        assert_eq!(name.parse::<IdTokenAlgorithm>().unwrap(), alg);
        assert_eq!(alg.to_string(), name);
        assert_eq!(serde_json::to_string(&alg).unwrap(), format!("\"{name}\""));
    }
    for bad in ["none", "HS256", "rs256", "RS384", ""] {
        assert!(matches!(
            bad.parse::<IdTokenAlgorithm>(),
            Err(Error::Config(ConfigError::Invalid { .. }))
        ));
    }
}

// Builders fail closed: an option that does not apply to the application's kind is refused
// with `ConfigError::NotApplicable` naming the option and the kind, never silently ignored.

fn google_app() -> ProviderConfig {
    ProviderConfig::google(pid("google"), CLIENT_ID, ClientSecret::new(CLIENT_SECRET))
}

fn entra_app() -> ProviderConfig {
    ProviderConfig::microsoft(
        pid("office365"),
        EntraTenancy::single(ENTRA_TENANT).unwrap(),
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    )
}

fn oidc_app() -> ProviderConfig {
    ProviderConfig::oidc(
        pid("okta"),
        "https://idp.example.com",
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    )
}

fn oauth2_app() -> ProviderConfig {
    ProviderConfig::oauth2(
        pid("mailbox"),
        "https://mail.example.com/authorize",
        "https://mail.example.com/token",
        ["https://mail.example.com/imap"],
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    )
}

#[track_caller]
fn assert_not_applicable(err: &Error, option: &str, kind: &str) {
    match err {
        Error::Config(ConfigError::NotApplicable { option: o, kind: k }) => {
            assert_eq!((*o, *k), (option, kind));
        }
        other => panic!("expected NotApplicable({option}, {kind}), got {other:?}"),
    }
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let message = err.to_string();
    assert!(
        message.contains(option) && message.contains(kind),
        "{message}"
    );
}

/// The other kinds each refuse a builder option named for one kind, at the call.
#[track_caller]
fn assert_builder_refuses(
    build: impl Fn(ProviderConfig) -> Result<ProviderConfig, Error>,
    option: &str,
    kinds: &[(ProviderConfig, &str)],
) {
    for (config, kind) in kinds {
        let err = build(config.clone()).unwrap_err();
        assert_not_applicable(&err, option, kind);
    }
}

/// `configure_provider` refuses the configuration and stores nothing; `problems` names it.
async fn assert_configure_refuses(config: ProviderConfig, option: &str, kind: &str) {
    let w = google_world().await;
    let t = tenant("fail-closed");
    let problems = config.problems();
    assert!(
        problems
            .iter()
            .any(|p| p.contains(option) && p.contains(kind)),
        "{problems:?}"
    );
    let err = w.broker.configure_provider(&t, config).await.unwrap_err();
    assert_not_applicable(&err, option, kind);
    assert!(w.broker.list_providers(&t).await.unwrap().is_empty());
    assert_eq!(
        w.broker.sso_status(&t).await.unwrap(),
        SsoStatus::NotConfigured
    );
}

#[test]
fn a_hosted_domain_allow_list_is_refused_on_entra_oidc_and_oauth2_applications() {
    assert_builder_refuses(
        |c| c.with_allowed_hosted_domains(["acme.example"]),
        "allowed_hosted_domains",
        &[
            (entra_app(), "microsoft"),
            (oidc_app(), "oidc"),
            (oauth2_app(), "oauth2"),
        ],
    );
    let google = google_app()
        .with_allowed_hosted_domains(["ACME.example"])
        .unwrap();
    assert_eq!(
        google.kind(),
        &cx_sso::ProviderKind::Google {
            allowed_hosted_domains: vec!["acme.example".to_owned()]
        }
    );
}

#[test]
fn an_oauth2_refresh_url_is_refused_on_google_entra_and_oidc_applications() {
    assert_builder_refuses(
        |c| c.with_oauth2_refresh_url("https://mail.example.com/refresh"),
        "oauth2_refresh_url",
        &[
            (google_app(), "google"),
            (entra_app(), "microsoft"),
            (oidc_app(), "oidc"),
        ],
    );
    assert!(
        oauth2_app()
            .with_oauth2_refresh_url("https://mail.example.com/refresh")
            .is_ok()
    );
}

#[test]
fn an_oauth2_revocation_url_is_refused_on_google_entra_and_oidc_applications() {
    assert_builder_refuses(
        |c| c.with_oauth2_revocation_url("https://mail.example.com/revoke"),
        "oauth2_revocation_url",
        &[
            (google_app(), "google"),
            (entra_app(), "microsoft"),
            (oidc_app(), "oidc"),
        ],
    );
    assert!(
        oauth2_app()
            .with_oauth2_revocation_url("https://mail.example.com/revoke")
            .is_ok()
    );
}

#[test]
fn an_oauth2_userinfo_url_is_refused_on_google_entra_and_oidc_applications() {
    assert_builder_refuses(
        |c| c.with_oauth2_userinfo_url("https://mail.example.com/userinfo"),
        "oauth2_userinfo_url",
        &[
            (google_app(), "google"),
            (entra_app(), "microsoft"),
            (oidc_app(), "oidc"),
        ],
    );
    assert!(
        oauth2_app()
            .with_oauth2_userinfo_url("https://mail.example.com/userinfo")
            .is_ok()
    );
}

#[test]
fn an_oauth2_mailbox_is_refused_on_google_entra_and_oidc_applications() {
    assert_builder_refuses(
        |c| c.with_oauth2_mailbox("support@acme.example"),
        "oauth2_mailbox",
        &[
            (google_app(), "google"),
            (entra_app(), "microsoft"),
            (oidc_app(), "oidc"),
        ],
    );
    assert!(
        oauth2_app()
            .with_oauth2_mailbox("support@acme.example")
            .is_ok()
    );
}

#[tokio::test]
async fn a_sign_in_scope_set_is_refused_on_a_plain_oauth2_application() {
    assert_configure_refuses(
        oauth2_app().with_scopes(["openid", "email"]),
        "scopes",
        "oauth2",
    )
    .await;
}

#[tokio::test]
async fn extra_scopes_are_refused_on_a_plain_oauth2_application() {
    assert_configure_refuses(
        oauth2_app().with_extra_scopes(["https://mail.example.com/smtp"]),
        "extra_scopes",
        "oauth2",
    )
    .await;
}

#[tokio::test]
async fn a_pinned_id_token_algorithm_is_refused_on_a_plain_oauth2_application() {
    assert_configure_refuses(
        oauth2_app().with_id_token_signed_response_alg(IdTokenAlgorithm::Rs256),
        "id_token_signed_response_alg",
        "oauth2",
    )
    .await;
}

#[tokio::test]
async fn a_linking_policy_is_refused_on_a_plain_oauth2_application() {
    // The default policy is what every application has: stating it changes nothing.
    assert!(
        oauth2_app()
            .with_linking_policy(LinkingPolicy::default())
            .problems()
            .is_empty()
    );
    assert_configure_refuses(
        oauth2_app().with_linking_policy(LinkingPolicy::InviteOnly {
            link_on_first_login: false,
        }),
        "linking_policy",
        "oauth2",
    )
    .await;
}

#[tokio::test]
async fn an_email_match_rule_is_refused_on_a_plain_oauth2_application() {
    assert_configure_refuses(
        oauth2_app().with_email_match(EmailMatch::Required),
        "email_match",
        "oauth2",
    )
    .await;
}

#[tokio::test]
async fn entra_verified_domains_are_refused_on_google_oidc_and_oauth2_applications() {
    let policy = LinkingPolicy::AutoLinkVerifiedEmail {
        allowed_domains: vec![],
        entra_verified_domains: vec!["acme.example".into()],
        link_on_first_login: true,
    };
    assert!(
        entra_app()
            .with_linking_policy(policy.clone())
            .problems()
            .is_empty()
    );
    for (config, kind) in [(google_app(), "google"), (oidc_app(), "oidc")] {
        assert_configure_refuses(
            config.with_linking_policy(policy.clone()),
            "entra_verified_domains",
            kind,
        )
        .await;
    }
    // A plain OAuth 2.0 application takes no linking policy at all.
    assert_configure_refuses(
        oauth2_app().with_linking_policy(policy),
        "linking_policy",
        "oauth2",
    )
    .await;
}

#[tokio::test]
async fn a_deserialized_configuration_with_an_option_its_kind_ignores_is_refused() {
    let json = serde_json::json!({
        "id": "mailbox",
        "kind": {
            "type": "oauth2",
            "authorization_url": "https://mail.example.com/authorize",
            "token_url": "https://mail.example.com/token",
            "scopes": ["https://mail.example.com/imap"]
        },
        "client_id": CLIENT_ID,
        "scopes": ["openid"]
    });
    let config: ProviderConfig = serde_json::from_value(json).unwrap();
    assert_configure_refuses(config, "scopes", "oauth2").await;
}
