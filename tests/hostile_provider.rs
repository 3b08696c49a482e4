//! A hostile or broken provider: every misbehaviour is refused with its own error, with nothing
//! stored and no session.

mod common;

use common::*;
use cx_sso::testing::{FakeUser, Misbehavior};
use cx_sso::{
    DiscoveryError, Error, IdTokenError, LoginIntent, LoginOptions, LoginOutcome, StateError,
    TokenEndpointError,
};

/// Runs a Link login for "victim" with `m` switched on, and checks that it failed and that no
/// binding was stored.
async fn refused(w: &World, m: Misbehavior, subject: &str) -> Error {
    w.idp.misbehave(m);
    let out = w
        .login(
            LoginIntent::Link {
                user: user("victim"),
            },
            subject,
        )
        .await;
    w.idp.behave();
    let err = match out {
        Ok(o) => panic!("expected a refusal, got {o:?}"),
        Err(e) => e,
    };
    assert!(
        w.no_bindings("victim").await,
        "nothing may be stored after {err:?}"
    );
    err
}

macro_rules! refusal {
    ($name:ident, $m:expr, $pat:pat) => {
        #[tokio::test]
        async fn $name() {
            let w = google_world().await;
            let err = refused(&w, $m, "g-alice").await;
            assert!(matches!(err, $pat), "got {err:?}");
            // The provider behaving again, the same flow works: the refusal was about $m.
            w.bind("victim", "g-alice").await;
        }
    };
}

refusal!(
    bad_signature_is_refused,
    Misbehavior::BadSignature,
    Error::IdToken(IdTokenError::BadSignature)
);
refusal!(
    alg_none_is_refused,
    Misbehavior::AlgNone,
    Error::IdToken(IdTokenError::AlgorithmNotAllowed(_))
);
refusal!(
    hs256_keyed_with_the_public_key_is_refused,
    Misbehavior::Hs256WithPublicKey,
    Error::IdToken(IdTokenError::AlgorithmNotAllowed(_))
);
refusal!(
    wrong_issuer_is_refused,
    Misbehavior::WrongIssuer,
    Error::IdToken(IdTokenError::WrongIssuer)
);
refusal!(
    wrong_audience_is_refused,
    Misbehavior::WrongAudience,
    Error::IdToken(IdTokenError::WrongAudience)
);
refusal!(
    extra_audience_without_azp_is_refused,
    Misbehavior::ExtraAudienceWithoutAzp,
    Error::IdToken(IdTokenError::UntrustedAudience)
);
refusal!(
    azp_mismatch_is_refused,
    Misbehavior::AzpMismatch,
    Error::IdToken(IdTokenError::AzpMismatch)
);
refusal!(
    expired_token_is_refused,
    Misbehavior::Expired,
    Error::IdToken(IdTokenError::Expired)
);
refusal!(
    token_issued_in_the_future_is_refused,
    Misbehavior::IssuedInFuture,
    Error::IdToken(IdTokenError::IssuedInFuture)
);
refusal!(
    missing_sub_is_refused,
    Misbehavior::MissingSub,
    Error::IdToken(IdTokenError::MissingClaim("sub"))
);
refusal!(
    missing_nonce_is_refused,
    Misbehavior::MissingNonce,
    Error::IdToken(IdTokenError::NonceMissing)
);
refusal!(
    wrong_nonce_is_refused,
    Misbehavior::WrongNonce,
    Error::IdToken(IdTokenError::NonceMismatch)
);
#[tokio::test]
async fn exp_as_a_string_is_refused() {
    let w = google_world().await;
    let err = refused(&w, Misbehavior::ExpAsString, "g-alice").await;
    assert!(
        matches!(err, Error::IdToken(IdTokenError::MalformedClaim(ref c)) if c == "exp"),
        "{err:?}"
    );
}
refusal!(
    missing_kid_with_several_keys_is_refused,
    Misbehavior::NoKidWithSeveralKeys,
    Error::IdToken(IdTokenError::AmbiguousKey)
);
refusal!(
    token_endpoint_500_is_a_transient_refusal,
    Misbehavior::TokenEndpointStatus(500),
    Error::TokenEndpoint(TokenEndpointError::ServerError(500))
);
refusal!(
    invalid_grant_is_refused,
    Misbehavior::InvalidGrant,
    Error::TokenEndpoint(TokenEndpointError::InvalidGrant)
);
refusal!(
    token_response_without_id_token_is_refused,
    Misbehavior::NoIdToken,
    Error::TokenEndpoint(TokenEndpointError::MissingIdToken)
);
refusal!(
    oversized_token_response_is_refused,
    Misbehavior::OversizedTokenResponse,
    Error::TokenEndpoint(TokenEndpointError::TooLarge(_))
);
refusal!(
    token_type_other_than_bearer_is_refused,
    Misbehavior::TokenTypeNotBearer,
    Error::TokenEndpoint(TokenEndpointError::NotBearer)
);
refusal!(
    access_token_not_matching_at_hash_is_refused,
    Misbehavior::WrongAtHash,
    Error::IdToken(IdTokenError::AtHashMismatch)
);
refusal!(
    iss_parameter_mismatch_is_refused,
    Misbehavior::WrongIssParameter,
    Error::State(StateError::IssuerMismatch)
);

#[tokio::test]
async fn mailbox_connect_with_a_substituted_access_token_is_refused() {
    let w = google_world().await;
    w.idp.misbehave(Misbehavior::WrongAtHash);
    let connect = || LoginIntent::Connect {
        connection: cx_sso::ConnectionId::new("asset-1").unwrap(),
    };
    let err = w.login(connect(), "g-alice").await.unwrap_err();
    assert!(
        matches!(err, Error::IdToken(IdTokenError::AtHashMismatch)),
        "{err:?}"
    );
    assert!(
        w.broker
            .list_connections(&w.tenant)
            .await
            .unwrap()
            .is_empty(),
        "no tokens stored"
    );
    w.idp.behave();
    let out = w.login(connect(), "g-alice").await.unwrap();
    assert!(matches!(out, LoginOutcome::Connected { .. }), "{out:?}");
}

#[tokio::test]
async fn token_endpoint_500_maps_to_unavailable() {
    let w = google_world().await;
    let err = refused(&w, Misbehavior::TokenEndpointStatus(503), "g-alice").await;
    assert_eq!(err.kind(), cx_sso::ErrorKind::Unavailable);
}

#[tokio::test]
async fn replayed_state_is_refused() {
    let w = google_world().await;
    let (callback, binding) = w
        .consent(
            LoginIntent::Link {
                user: user("alice"),
            },
            "g-alice",
        )
        .await;
    assert!(
        w.broker
            .complete_login(&w.route(), &callback, &binding)
            .await
            .is_ok()
    );
    let err = w
        .broker
        .complete_login(&w.route(), &callback, &binding)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::State(StateError::Unknown)), "{err:?}");
}

#[tokio::test]
async fn state_from_another_browser_is_refused() {
    let w = google_world().await;
    let (callback, _) = w
        .consent(
            LoginIntent::Link {
                user: user("victim"),
            },
            "g-alice",
        )
        .await;
    let (_, attacker_cookie) = w.consent(LoginIntent::SignIn, "g-bob").await;
    let err = w
        .broker
        .complete_login(&w.route(), &callback, &attacker_cookie)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::State(StateError::BrowserMismatch)),
        "{err:?}"
    );
    assert!(w.no_bindings("victim").await);
}

#[tokio::test]
async fn missing_iss_parameter_is_refused_when_the_provider_advertises_it() {
    let w = google_world().await;
    w.idp.set_iss_parameter(true);
    // A fresh broker sees the new discovery document.
    let b = broker_over(&w.idp, &w.clock, &w.audit);
    let config = cx_sso::ProviderConfig::google(
        w.provider.clone(),
        CLIENT_ID,
        cx_sso::ClientSecret::new(CLIENT_SECRET),
    );
    b.configure_provider(&w.tenant, config).await.unwrap();
    let r = b
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
    assert!(cb.contains("iss="));
    let stripped: String = cb
        .split('&')
        .filter(|p| !p.starts_with("iss="))
        .collect::<Vec<_>>()
        .join("&");
    let err = b
        .complete_login(&w.route(), &stripped, r.browser_binding.secret())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::State(StateError::IssuerMismatch)),
        "{err:?}"
    );
    // With the parameter, it works.
    let r = b
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
    assert!(
        b.complete_login(&w.route(), &cb, r.browser_binding.secret())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn access_denied_is_a_typed_outcome() {
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
    let cb = w
        .idp
        .deny(r.authorize_url.as_str(), "access_denied")
        .unwrap();
    let err = w
        .broker
        .complete_login(&w.route(), &cb, r.browser_binding.secret())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::ProviderDenied { ref error, .. } if error == "access_denied"),
        "{err:?}"
    );
    assert_eq!(err.kind(), cx_sso::ErrorKind::Denied);
}

#[tokio::test]
async fn discovery_redirect_is_not_followed() {
    let w = google_world().await;
    w.idp.misbehave(Misbehavior::DiscoveryRedirect);
    let b = broker_over(&w.idp, &w.clock, &w.audit);
    // Configuring through a redirecting discovery stores the application, reported invalid.
    let config = cx_sso::ProviderConfig::google(
        w.provider.clone(),
        CLIENT_ID,
        cx_sso::ClientSecret::new(CLIENT_SECRET),
    );
    let report = b.configure_provider(&w.tenant, config).await.unwrap();
    assert!(!report.is_ready());
    assert!(report.reasons()[0].contains("redirect"), "{report:?}");
    assert!(matches!(
        b.sso_status(&w.tenant).await.unwrap(),
        cx_sso::SsoStatus::Invalid(_)
    ));
    // Logins through it are refused before any request (the SSO warning).
    let fetches = w.idp.discovery_fetches();
    let err = b
        .begin_login(
            &w.tenant,
            &w.provider,
            LoginIntent::SignIn,
            LoginOptions::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ProviderInvalid { reasons, .. } if reasons[0].contains("redirect")),
        "{err:?}"
    );
    assert_eq!(w.idp.discovery_fetches(), fetches);
    // An application found ready whose provider starts redirecting: a node with nothing
    // cached does not follow the redirect either.
    w.idp.behave();
    let store: std::sync::Arc<dyn cx_sso::Store> = std::sync::Arc::new(cx_sso::MemoryStore::new());
    let node = || {
        cx_sso::Broker::builder()
            .http_client(w.idp.clone())
            .shared_store(store.clone())
            .clock(w.clock.clone())
            .public_base_url("https://cx.example.com")
            .build()
            .unwrap()
    };
    let config = cx_sso::ProviderConfig::google(
        w.provider.clone(),
        CLIENT_ID,
        cx_sso::ClientSecret::new(CLIENT_SECRET),
    );
    assert!(
        node()
            .configure_provider(&w.tenant, config)
            .await
            .unwrap()
            .is_ready()
    );
    w.idp.misbehave(Misbehavior::DiscoveryRedirect);
    let err = node()
        .begin_login(
            &w.tenant,
            &w.provider,
            LoginIntent::SignIn,
            LoginOptions::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Discovery(DiscoveryError::Redirect(302))),
        "{err:?}"
    );
}

#[tokio::test]
async fn entra_token_from_a_tenant_not_on_the_allow_list_is_refused() {
    let w = entra_world().await;
    let err = w
        .login(
            LoginIntent::Link {
                user: user("victim"),
            },
            "pairwise-sub-mallory",
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::IdToken(IdTokenError::TenantNotAllowed)),
        "{err:?}"
    );
    assert!(w.no_bindings("victim").await);
}

#[tokio::test]
async fn google_token_with_the_wrong_hosted_domain_is_refused() {
    let w = google_world_with(|c| c.with_allowed_hosted_domains(["acme.example"]).unwrap()).await;
    // bob has no hd at all; eve has another domain.
    w.idp.add_user(
        FakeUser::new("g-eve")
            .email("eve@evil.example")
            .email_verified(true)
            .hosted_domain("evil.example"),
    );
    for subject in ["g-bob", "g-eve"] {
        let err = w
            .login(
                LoginIntent::Link {
                    user: user("victim"),
                },
                subject,
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::IdToken(IdTokenError::HostedDomainNotAllowed)),
            "{subject}: {err:?}"
        );
    }
    assert!(w.no_bindings("victim").await);
    // The allowed domain signs in.
    w.bind("alice", "g-alice").await;
}

#[tokio::test]
async fn unknown_kid_after_rotation_is_accepted_after_exactly_one_refetch() {
    let w = google_world().await;
    w.bind("alice", "g-alice").await;
    let before = w.idp.jwks_fetches();
    w.idp.rotate_key();
    w.idp.retire_old_keys();
    let out = w.login(LoginIntent::SignIn, "g-alice").await.unwrap();
    assert!(matches!(out, LoginOutcome::SignedIn { .. }));
    assert_eq!(w.idp.jwks_fetches() - before, 1);
}

#[tokio::test]
async fn entra_multi_tenant_iss_parameter_is_the_metadata_issuer() {
    let w = entra_world().await;
    w.idp.set_iss_parameter(true);
    let b = broker_over(&w.idp, &w.clock, &w.audit);
    let config = cx_sso::ProviderConfig::microsoft(
        w.provider.clone(),
        cx_sso::EntraTenancy::multi(cx_sso::EntraAudience::Organizations, [ENTRA_TENANT]).unwrap(),
        CLIENT_ID,
        cx_sso::ClientSecret::new(CLIENT_SECRET),
    );
    b.configure_provider(&w.tenant, config).await.unwrap();
    let r = b
        .begin_login(
            &w.tenant,
            &w.provider,
            LoginIntent::Link {
                user: user("carol"),
            },
            LoginOptions::new(),
        )
        .await
        .unwrap();
    let cb = w
        .idp
        .authorize(r.authorize_url.as_str(), "pairwise-sub-carol")
        .unwrap();
    assert!(cb.contains("iss="));
    assert!(
        b.complete_login(&w.route(), &cb, r.browser_binding.secret())
            .await
            .is_ok()
    );
    w.idp.misbehave(Misbehavior::WrongIssParameter);
    let r = b
        .begin_login(
            &w.tenant,
            &w.provider,
            LoginIntent::Link {
                user: user("carol"),
            },
            LoginOptions::new(),
        )
        .await
        .unwrap();
    let cb = w
        .idp
        .authorize(r.authorize_url.as_str(), "pairwise-sub-carol")
        .unwrap();
    let err = b
        .complete_login(&w.route(), &cb, r.browser_binding.secret())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::State(StateError::IssuerMismatch)),
        "{err:?}"
    );
}

/// A transport in front of the FakeIdp that answers userinfo requests itself with `answer`
/// (status, body), and remembers the bearer token it was shown.
#[derive(Debug, Clone)]
struct HostileUserInfo {
    idp: cx_sso::testing::FakeIdp,
    answer: std::sync::Arc<std::sync::Mutex<(u16, Vec<u8>)>>,
    bearer: std::sync::Arc<std::sync::Mutex<String>>,
}

#[async_trait::async_trait]
impl cx_sso::HttpClient for HostileUserInfo {
    async fn call(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, cx_sso::HttpError> {
        if !request.uri().path().ends_with("/userinfo") {
            return self.idp.call(request).await;
        }
        let bearer = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        *self.bearer.lock().unwrap() = bearer.to_owned();
        let (status, body) = self.answer.lock().unwrap().clone();
        Ok(http::Response::builder().status(status).body(body).unwrap())
    }
}

/// Each way a userinfo answer can be wrong has its own `UserInfoError`, and none of them
/// shows the body, the access token or the endpoint's URL.
#[tokio::test]
async fn userinfo_refusals_are_typed_and_quote_no_body_token_or_url() {
    use cx_sso::{ProviderConfig, UserInfoError};
    let issuer = "https://idp.example.test";
    let idp = cx_sso::testing::FakeIdp::oidc(issuer);
    idp.register_client(CLIENT_ID, CLIENT_SECRET);
    idp.add_user(
        FakeUser::new("o-erin")
            .email("erin@acme.example")
            .omit_profile_from_id_token(true),
    );
    let transport = HostileUserInfo {
        idp: idp.clone(),
        answer: Default::default(),
        bearer: Default::default(),
    };
    let broker = cx_sso::Broker::builder()
        .http_client(transport.clone())
        .public_base_url("https://cx.example.com")
        .max_response_bytes(4096)
        .build()
        .unwrap();
    let tenant = tenant("acme");
    let config = ProviderConfig::oidc(
        pid("okta"),
        issuer,
        CLIENT_ID,
        cx_sso::ClientSecret::new(CLIENT_SECRET),
    );
    broker.configure_provider(&tenant, config).await.unwrap();

    let leak = "LEAKED-BODY-e4f1";
    type Expected = fn(&UserInfoError) -> bool;
    let cases: [(u16, Vec<u8>, Expected); 6] = [
        (401, format!(r#"{{"error":"{leak}"}}"#).into_bytes(), |e| {
            *e == UserInfoError::Status(401)
        }),
        (200, format!("<html>{leak}</html>").into_bytes(), |e| {
            matches!(e, UserInfoError::NotJson { line: 1, .. })
        }),
        (
            200,
            format!(r#"{{"sub":"o-erin","email":["{leak}"]}}"#).into_bytes(),
            |e| matches!(e, UserInfoError::InvalidDocument { line: 1, .. }),
        ),
        (
            200,
            format!(r#"{{"email":"{leak}@x.example"}}"#).into_bytes(),
            |e| *e == UserInfoError::MissingSubject,
        ),
        (
            200,
            format!(r#"{{"sub":"{leak}","email":"e@x.example"}}"#).into_bytes(),
            |e| *e == UserInfoError::SubjectMismatch,
        ),
        (
            200,
            format!(r#"{{"sub":"o-erin","name":"{}"}}"#, leak.repeat(400)).into_bytes(),
            |e| *e == UserInfoError::TooLarge(4096),
        ),
    ];
    for (status, body, expected) in cases {
        *transport.answer.lock().unwrap() = (status, body);
        let redirect = broker
            .begin_login(
                &tenant,
                &pid("okta"),
                LoginIntent::SignIn,
                LoginOptions::new(),
            )
            .await
            .unwrap();
        let callback = idp
            .authorize(redirect.authorize_url.as_str(), "o-erin")
            .unwrap();
        let err = broker
            .complete_login(
                &cx_sso::CallbackRoute::new(pid("okta")),
                &callback,
                redirect.browser_binding.secret(),
            )
            .await
            .unwrap_err();
        assert_eq!(err.kind(), cx_sso::ErrorKind::ProviderRejected);
        let Error::UserInfo(inner) = &err else {
            panic!("expected a userinfo refusal, got {err:?}");
        };
        assert!(expected(inner), "got {inner:?}");
        let bearer = transport.bearer.lock().unwrap().clone();
        assert!(!bearer.is_empty());
        for text in [err.to_string(), format!("{err:?}")] {
            for secret in [leak, bearer.as_str(), "/userinfo", issuer] {
                assert!(!text.contains(secret), "{text} shows {secret:?}");
            }
        }
    }
}
