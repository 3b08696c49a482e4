//! The `ErrorKind` a host maps to a page, for each situation a user meets: a possible attack is
//! a security refusal (and audited as one), not "login expired"; a disabled user is denied, not
//! a conflict; unreadable stored data is internal, not invalid input.

mod common;

use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use cx_sso::store::NewRecord;
use cx_sso::testing::Misbehavior;
use cx_sso::{
    AuditKind, AuthMethod, Broker, ClientSecret, Error, ErrorKind, IdTokenError, LoginIntent,
    LoginOutcome, MemoryStore, ProviderConfig, StateError, Store, TenantId, TokenEndpointError,
    UserDirectory, UserId,
};

/// Runs a sign-in of alice (bound) with `m` on; returns the refusal.
async fn sign_in_with(w: &World, m: Misbehavior) -> Error {
    w.idp.misbehave(m);
    let out = w.login(LoginIntent::SignIn, "g-alice").await;
    w.idp.behave();
    match out {
        Ok(o) => panic!("expected a refusal with {m:?}, got {o:?}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn possible_attacks_are_security_refusals_audited_as_such_not_expired_logins() {
    let w = google_world().await;
    w.bind("alice", "g-alice").await;
    for (m, rule) in [
        (Misbehavior::WrongIssParameter, "login.iss_mismatch"),
        (Misbehavior::WrongNonce, "login.nonce_mismatch"),
        (Misbehavior::WrongAtHash, "login.at_hash_mismatch"),
    ] {
        let err = sign_in_with(&w, m).await;
        assert!(
            matches!(
                err,
                Error::State(StateError::IssuerMismatch)
                    | Error::IdToken(IdTokenError::NonceMismatch | IdTokenError::AtHashMismatch)
            ),
            "{err:?}"
        );
        assert_eq!(err.kind(), ErrorKind::SecurityRefusal, "{m:?}");
        let last = w.audit.events().pop().expect("an audit event");
        assert_eq!(last.kind, AuditKind::SecurityRefusal, "{m:?}");
        assert_eq!(last.rule, rule);
        assert_eq!(last.tenant, w.tenant);
        assert_eq!(last.actor, "browser");
        assert_eq!(last.subject, "provider:google");
    }
    // A provider that is merely broken is not an attack.
    let err = sign_in_with(&w, Misbehavior::Expired).await;
    assert_eq!(err.kind(), ErrorKind::ProviderRejected, "{err:?}");
    let err = sign_in_with(&w, Misbehavior::MissingNonce).await;
    assert_eq!(err.kind(), ErrorKind::ProviderRejected, "{err:?}");
    assert!(
        w.audit
            .events()
            .iter()
            .filter(|e| e.kind == AuditKind::SecurityRefusal)
            .count()
            == 3
    );
}

#[tokio::test]
async fn a_malformed_callback_asks_to_start_again() {
    let w = google_world().await;
    let (callback, cookie) = w.consent(LoginIntent::SignIn, "g-alice").await;
    for bad in [
        format!("{callback}&code=again"),
        format!("{callback}&error=access_denied"),
        "code=abc".to_owned(),
    ] {
        let err = w
            .broker
            .complete_login(&w.route(), &bad, &cookie)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Callback(_)), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::LoginExpired, "{err:?}");
    }
}

#[tokio::test]
async fn a_used_link_ticket_asks_to_start_again() {
    let w = google_world().await;
    let LoginOutcome::LinkRequired { ticket, .. } =
        w.login(LoginIntent::SignIn, "g-bob").await.unwrap()
    else {
        panic!("expected LinkRequired");
    };
    w.broker
        .redeem_link_ticket(&w.tenant, &ticket, &user("bob"))
        .await
        .unwrap();
    let err = w
        .broker
        .redeem_link_ticket(&w.tenant, &ticket, &user("bob"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LoginExpired, "{err:?}");
}

/// A directory where every user is active but `disabled`.
#[derive(Debug)]
struct AllBut(&'static str);

#[async_trait]
impl UserDirectory for AllBut {
    async fn active_users_with_verified_email(
        &self,
        _: &TenantId,
        _: &str,
    ) -> Result<Vec<UserId>, Error> {
        Ok(vec![])
    }

    async fn is_active(&self, _: &TenantId, user: &UserId) -> Result<bool, Error> {
        Ok(user.as_str() != self.0)
    }
}

#[tokio::test]
async fn a_disabled_user_is_denied_not_a_conflict() {
    let mut w = google_world().await;
    w.broker = Broker::builder()
        .http_client(w.idp.clone())
        .clock(w.clock.clone())
        .audit_sink(w.audit.clone())
        .user_directory(Arc::new(AllBut("dan")))
        .public_base_url("https://cx.example.com")
        .build()
        .unwrap();
    // Bound from the settings page, then the host disables dan.
    let config = ProviderConfig::google(
        w.provider.clone(),
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    );
    w.broker
        .configure_provider(&w.tenant, config)
        .await
        .unwrap();
    w.bind("dan", "g-alice").await;
    let err = w.login(LoginIntent::SignIn, "g-alice").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err:?}");
    // Redeeming a link ticket for a disabled user: denied too.
    let LoginOutcome::LinkRequired { ticket, .. } =
        w.login(LoginIntent::SignIn, "g-bob").await.unwrap()
    else {
        panic!("expected LinkRequired");
    };
    let err = w
        .broker
        .redeem_link_ticket(&w.tenant, &ticket, &user("dan"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied, "{err:?}");
}

#[tokio::test]
async fn removing_a_binding_that_is_not_there_is_not_found() {
    let w = google_world().await;
    w.bind("alice", "g-alice").await;
    let list = w
        .broker
        .list_bindings(&w.tenant, &user("alice"))
        .await
        .unwrap();
    let id = list[0].id();
    w.broker
        .unbind(&w.tenant, &user("alice"), &id)
        .await
        .unwrap();
    // The settings page posted "Remove" twice.
    let err = w
        .broker
        .unbind(&w.tenant, &user("alice"), &id)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err:?}");
}

#[tokio::test]
async fn an_account_bound_to_another_user_is_a_conflict() {
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
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err:?}");
}

#[tokio::test]
async fn a_client_secret_the_provider_refuses_is_not_configured() {
    let w = google_world().await;
    w.bind("alice", "g-alice").await;
    // The secret is rotated at the provider after the application was saved.
    w.idp.register_client(CLIENT_ID, "rotated-at-the-provider");
    let err = w.login(LoginIntent::SignIn, "g-alice").await.unwrap_err();
    assert!(
        matches!(err, Error::TokenEndpoint(TokenEndpointError::InvalidClient)),
        "{err:?}"
    );
    assert_eq!(err.kind(), ErrorKind::NotConfigured);
}

#[tokio::test]
async fn enforcing_sso_without_a_ready_application_is_not_configured() {
    let w = google_world().await;
    let err = w
        .broker
        .set_auth_method(&tenant("bare"), AuthMethod::Sso { providers: vec![] }, None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConfigured, "{err:?}");
}

#[tokio::test]
async fn a_corrupt_stored_record_is_internal_not_unavailable() {
    let w = google_world().await;
    let store = Arc::new(MemoryStore::new());
    let broker = Broker::builder()
        .http_client(w.idp.clone())
        .clock(w.clock.clone())
        .shared_store(store.clone())
        .public_base_url("https://cx.example.com")
        .build()
        .unwrap();
    let config = ProviderConfig::google(
        w.provider.clone(),
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    );
    broker.configure_provider(&w.tenant, config).await.unwrap();
    let now = w.clock_now();
    let rows = store
        .list("provider", w.tenant.as_str(), now)
        .await
        .unwrap();
    let (key, _) = rows.first().expect("the saved application");
    store
        .put(
            "provider",
            key,
            NewRecord::new(b"not a record".to_vec()).index(w.tenant.as_str()),
            now,
        )
        .await
        .unwrap();
    let err = broker.list_providers(&w.tenant).await.unwrap_err();
    assert!(matches!(err, Error::Store(_)), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Internal);
}

#[test]
fn a_store_that_cannot_be_reached_is_unavailable() {
    // As a host's own store returns it.
    let err: Error = cx_sso::store::StoreError::unavailable("db down").into();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
}
