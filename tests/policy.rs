//! Tenant authentication policy: method switches with grace, privileged users, sessions,
//! linking policy and account-takeover defences, audit events.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use common::*;
use cx_sso::testing::FakeUser;
use cx_sso::{
    AuditKind, AuthMethod, BindingError, ClientSecret, EmailMatch, EmailMismatch, Error,
    LinkingPolicy, LoginIntent, LoginOptions, LoginOutcome, PasswordDecision, PolicyError,
    ProviderConfig, RevocationReason, SessionStatus, StateError, SwitchRevocation, TenantId,
    UserDirectory, UserId,
};
use time::Duration;

/// The host's users: (tenant, user, email, email verified by the host, active).
#[derive(Debug, Default)]
struct Directory {
    users: Vec<(&'static str, &'static str, &'static str, bool, bool)>,
}

#[async_trait]
impl UserDirectory for Directory {
    async fn active_users_with_verified_email(
        &self,
        tenant: &TenantId,
        email: &str,
    ) -> Result<Vec<UserId>, Error> {
        Ok(self
            .users
            .iter()
            .filter(|(t, _, e, verified, active)| {
                *t == tenant.as_str() && e.eq_ignore_ascii_case(email) && *verified && *active
            })
            .map(|(_, u, ..)| user(u))
            .collect())
    }

    async fn is_active(&self, tenant: &TenantId, u: &UserId) -> Result<bool, Error> {
        Ok(self
            .users
            .iter()
            .any(|(t, id, .., active)| *t == tenant.as_str() && *id == u.as_str() && *active))
    }
}

fn directory() -> Arc<Directory> {
    Arc::new(Directory {
        users: vec![
            ("acme", "alice", "alice@acme.example", true, true),
            ("acme", "bob", "bob@gmail.example", true, true),
            ("acme", "carol", "carol@contoso.example", true, true),
            ("acme", "dan", "dan@acme.example", true, false),
            // Two accounts share this email.
            ("acme", "twin-1", "twin@acme.example", true, true),
            ("acme", "twin-2", "twin@acme.example", true, true),
            // An attacker registered the victim's email locally, never verified it.
            ("acme", "attacker", "victim@acme.example", false, true),
            ("globex", "gus", "gus@globex.example", true, true),
        ],
    })
}

/// Rebuilds the world's broker with the test directory (same store is not needed: the
/// worlds configure their provider again).
async fn with_directory(w: World, config: ProviderConfig) -> World {
    rebuilt(w, config, |b| b.user_directory(directory())).await
}

/// Rebuilds the world's broker with builder options of the test, and configures `config`.
async fn rebuilt(
    mut w: World,
    config: ProviderConfig,
    options: impl FnOnce(cx_sso::BrokerBuilder) -> cx_sso::BrokerBuilder,
) -> World {
    w.broker = options(
        cx_sso::Broker::builder()
            .http_client(w.idp.clone())
            .clock(w.clock.clone())
            .audit_sink(w.audit.clone())
            .public_base_url("https://cx.example.com"),
    )
    .build()
    .unwrap();
    assert!(
        w.broker
            .configure_provider(&w.tenant, config)
            .await
            .unwrap()
            .is_ready()
    );
    w
}

fn google(w: &World) -> ProviderConfig {
    ProviderConfig::google(
        w.provider.clone(),
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    )
}

fn auto_link(link_on_first_login: bool) -> LinkingPolicy {
    LinkingPolicy::AutoLinkVerifiedEmail {
        allowed_domains: vec![],
        entra_verified_domains: vec![],
        link_on_first_login,
    }
}

fn kinds(w: &World) -> Vec<(AuditKind, &'static str)> {
    w.audit.events().iter().map(|e| (e.kind, e.rule)).collect()
}

/// The narrower rule, kept as an option: only sessions the new method forbids end.
async fn narrower_rule_world() -> World {
    let w = google_world().await;
    let config = google(&w);
    rebuilt(w, config, |b| {
        b.method_switch_revocation(SwitchRevocation::DisallowedSessions)
    })
    .await
}

#[tokio::test]
async fn with_the_narrower_rule_a_switch_ends_only_the_sessions_it_forbids() {
    let w = narrower_rule_world().await;
    let sso = AuthMethod::Sso {
        providers: vec![w.provider.clone()],
    };
    w.broker
        .add_privileged_user(&w.tenant, &user("alice"))
        .await
        .unwrap();
    w.bind("bob", "g-bob").await;

    // t0: password users sign in.
    let bob_pw = w
        .broker
        .grant_password_session(&w.tenant, &user("bob"))
        .await
        .unwrap();
    let alice_pw = w
        .broker
        .grant_password_session(&w.tenant, &user("alice"))
        .await
        .unwrap();
    assert_eq!(
        w.broker.check_session(&bob_pw).await.unwrap(),
        SessionStatus::Active
    );

    // The admin switches to Google with the default grace of one hour.
    let t0 = w.clock_now();
    let status = w
        .broker
        .set_auth_method(&w.tenant, sso.clone(), None)
        .await
        .unwrap();
    assert_eq!(status.method, AuthMethod::Either);
    assert_eq!(status.pending, Some((sso.clone(), t0 + Duration::hours(1))));
    assert_eq!(
        status.pending_revocation,
        Some(SwitchRevocation::DisallowedSessions)
    );

    // During the grace: nothing is cut, passwords still work, SSO already works.
    w.clock.advance(Duration::minutes(59));
    assert_eq!(
        w.broker.check_session(&bob_pw).await.unwrap(),
        SessionStatus::Active
    );
    assert_eq!(
        w.broker
            .check_password_login(&w.tenant, &user("bob"))
            .await
            .unwrap(),
        PasswordDecision::Allowed
    );
    let bob_sso = match w.login(LoginIntent::SignIn, "g-bob").await.unwrap() {
        LoginOutcome::SignedIn { session, .. } => session,
        other => panic!("{other:?}"),
    };

    // t0 + 1h: the switch takes effect.
    w.clock.advance(Duration::minutes(1));
    assert_eq!(
        w.broker.check_session(&bob_pw).await.unwrap(),
        SessionStatus::Revoked {
            reason: RevocationReason::MethodChanged {
                effective_at: t0 + Duration::hours(1)
            }
        }
    );
    assert_eq!(
        w.broker.check_session(&bob_sso).await.unwrap(),
        SessionStatus::Active
    );
    assert_eq!(
        w.broker.check_session(&alice_pw).await.unwrap(),
        SessionStatus::Active,
        "privileged users keep password access"
    );
    let status = w.broker.tenant_auth_status(&w.tenant).await.unwrap();
    assert_eq!(status.method, sso);
    assert_eq!(status.pending, None);

    // Non-privileged password login is over; a user that does not exist gets the same answer.
    let required = PasswordDecision::SsoRequired {
        providers: vec![w.provider.clone()],
    };
    assert_eq!(
        w.broker
            .check_password_login(&w.tenant, &user("bob"))
            .await
            .unwrap(),
        required
    );
    assert_eq!(
        w.broker
            .check_password_login(&w.tenant, &user("nobody"))
            .await
            .unwrap(),
        required
    );
    assert!(matches!(
        w.broker
            .grant_password_session(&w.tenant, &user("bob"))
            .await,
        Err(Error::Policy(PolicyError::PasswordNotAllowed { .. }))
    ));
    // Privileged users keep both.
    assert_eq!(
        w.broker
            .check_password_login(&w.tenant, &user("alice"))
            .await
            .unwrap(),
        PasswordDecision::Allowed
    );
    let alice_pw2 = w
        .broker
        .grant_password_session(&w.tenant, &user("alice"))
        .await
        .unwrap();
    assert_eq!(
        w.broker.check_session(&alice_pw2).await.unwrap(),
        SessionStatus::Active
    );
    w.bind("alice", "g-alice").await;
    assert!(matches!(
        w.login(LoginIntent::SignIn, "g-alice").await.unwrap(),
        LoginOutcome::SignedIn { .. }
    ));
    let k = kinds(&w);
    assert!(k.contains(&(AuditKind::MethodScheduled, "admin_switch")));
    assert!(k.contains(&(AuditKind::MethodEffective, "scheduled_switch")));
    assert!(k.contains(&(AuditKind::SessionRevoked, "method_changed")));
}

#[tokio::test]
async fn switching_back_before_the_switch_takes_effect_cancels_it() {
    let w = google_world().await;
    let pw = w
        .broker
        .grant_password_session(&w.tenant, &user("bob"))
        .await
        .unwrap();
    let sso = AuthMethod::Sso { providers: vec![] };
    w.broker
        .set_auth_method(&w.tenant, sso, None)
        .await
        .unwrap();
    w.clock.advance(Duration::minutes(30));
    let status = w
        .broker
        .set_auth_method(&w.tenant, AuthMethod::Either, None)
        .await
        .unwrap();
    assert_eq!(status.method, AuthMethod::Either);
    assert_eq!(status.pending, None);
    w.clock.advance(Duration::hours(2));
    assert_eq!(
        w.broker.check_session(&pw).await.unwrap(),
        SessionStatus::Active
    );
    assert_eq!(
        w.broker
            .check_password_login(&w.tenant, &user("bob"))
            .await
            .unwrap(),
        PasswordDecision::Allowed
    );
    assert!(kinds(&w).contains(&(AuditKind::MethodSwitchCancelled, "switch_cancelled")));
}

#[tokio::test]
async fn zero_grace_switch_takes_effect_at_once() {
    let w = google_world().await;
    w.bind("bob", "g-bob").await;
    let LoginOutcome::SignedIn { session, .. } =
        w.login(LoginIntent::SignIn, "g-bob").await.unwrap()
    else {
        panic!("expected SignedIn");
    };
    let status = w
        .broker
        .set_auth_method(&w.tenant, AuthMethod::Password, Some(Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(status.method, AuthMethod::Password);
    assert_eq!(status.pending, None);
    assert!(matches!(
        w.broker.check_session(&session).await.unwrap(),
        SessionStatus::Revoked { .. }
    ));
    let err = w
        .broker
        .begin_login(
            &w.tenant,
            &w.provider,
            LoginIntent::SignIn,
            LoginOptions::new(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Policy(PolicyError::SsoNotAllowed)),
        "{err:?}"
    );
    // Binding from settings still works under Password, so users can prepare.
    w.bind("bob", "g-bob").await;
    assert!(kinds(&w).contains(&(AuditKind::MethodEffective, "zero_grace")));
}

#[tokio::test]
async fn a_login_begun_before_a_switch_that_completes_after_it_is_refused() {
    let w = google_world().await;
    w.bind("bob", "g-bob").await;
    let (callback, binding) = w.consent(LoginIntent::SignIn, "g-bob").await;
    w.broker
        .set_auth_method(
            &w.tenant,
            AuthMethod::Sso { providers: vec![] },
            Some(Duration::ZERO),
        )
        .await
        .unwrap();
    let err = w
        .broker
        .complete_login(&w.route(), &callback, &binding)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::State(StateError::PolicyChanged)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_tenant_without_ready_sso_cannot_be_switched_to_sso() {
    let w = google_world().await;
    let bare = tenant("bare");
    let err = w
        .broker
        .set_auth_method(&bare, AuthMethod::Sso { providers: vec![] }, None)
        .await
        .unwrap_err();
    match err {
        Error::Policy(PolicyError::SsoNotReady { reason }) => {
            assert!(reason.contains("no SSO application"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
    // A named application that does not exist is refused too.
    let err = w
        .broker
        .set_auth_method(
            &w.tenant,
            AuthMethod::Sso {
                providers: vec![pid("okta")],
            },
            None,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Policy(PolicyError::SsoNotReady { ref reason }) if reason.contains("okta"))
    );
    // An application whose secret the provider rejects is not ready.
    let broken = ProviderConfig::google(pid("google"), CLIENT_ID, ClientSecret::new("wrong"));
    let t = tenant("broken");
    let report = w.broker.configure_provider(&t, broken).await.unwrap();
    assert!(!report.is_ready());
    assert!(matches!(
        w.broker
            .set_auth_method(&t, AuthMethod::Sso { providers: vec![] }, None)
            .await,
        Err(Error::Policy(PolicyError::SsoNotReady { .. }))
    ));
}

#[tokio::test]
async fn privileged_users_are_added_listed_and_removed() {
    let w = google_world().await;
    w.broker
        .add_privileged_user(&w.tenant, &user("alice"))
        .await
        .unwrap();
    w.broker
        .add_privileged_user(&w.tenant, &user("root"))
        .await
        .unwrap();
    let mut list = w.broker.list_privileged_users(&w.tenant).await.unwrap();
    list.sort();
    assert_eq!(list, vec![user("alice"), user("root")]);
    assert!(
        w.broker
            .remove_privileged_user(&w.tenant, &user("root"))
            .await
            .unwrap()
    );
    assert!(
        !w.broker
            .remove_privileged_user(&w.tenant, &user("root"))
            .await
            .unwrap()
    );
    assert_eq!(
        w.broker.list_privileged_users(&w.tenant).await.unwrap(),
        vec![user("alice")]
    );
    assert!(
        w.broker
            .list_privileged_users(&tenant("globex"))
            .await
            .unwrap()
            .is_empty()
    );
    let k = kinds(&w);
    assert!(k.iter().any(|(k, _)| *k == AuditKind::PrivilegedAdded));
    assert!(k.iter().any(|(k, _)| *k == AuditKind::PrivilegedRemoved));
}

// ---- Linking policy and account takeover ----

#[tokio::test]
async fn invite_only_never_finds_a_user_by_email() {
    let w = google_world().await;
    let w = with_directory(
        w,
        ProviderConfig::google(pid("google"), CLIENT_ID, ClientSecret::new(CLIENT_SECRET)),
    )
    .await;
    // alice@acme.example is a verified, active local user, but invite-only does not look.
    let out = w.login(LoginIntent::SignIn, "g-alice").await.unwrap();
    assert!(matches!(out, LoginOutcome::LinkRequired { .. }), "{out:?}");
}

#[tokio::test]
async fn invite_only_without_linking_on_first_login_refuses() {
    let w = google_world_with(|c| {
        c.with_linking_policy(LinkingPolicy::InviteOnly {
            link_on_first_login: false,
        })
    })
    .await;
    let err = w.login(LoginIntent::SignIn, "g-bob").await.unwrap_err();
    assert!(
        matches!(err, Error::Policy(PolicyError::NotLinked)),
        "{err:?}"
    );
    assert!(kinds(&w).contains(&(AuditKind::SignInRefused, "invite_only.linking_disabled")));
}

#[tokio::test]
async fn auto_link_binds_a_verified_email_matching_one_active_user() {
    let w = google_world().await;
    let config = google(&w).with_linking_policy(auto_link(true));
    let w = with_directory(w, config).await;
    match w.login(LoginIntent::SignIn, "g-alice").await.unwrap() {
        LoginOutcome::SignedIn { user: u, .. } => assert_eq!(u.as_str(), "alice"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        w.broker
            .list_bindings(&w.tenant, &user("alice"))
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(kinds(&w).contains(&(AuditKind::AutoLink, "auto_link.verified_email")));
}

#[tokio::test]
async fn google_identity_with_unverified_email_is_not_auto_linked() {
    let w = google_world().await;
    w.idp.add_user(
        FakeUser::new("g-fake-alice")
            .email("alice@acme.example")
            .email_verified(false),
    );
    let w = with_directory(
        w.clone_world(),
        google(&w).with_linking_policy(auto_link(false)),
    )
    .await;
    let err = w
        .login(LoginIntent::SignIn, "g-fake-alice")
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Policy(PolicyError::NotLinked)),
        "{err:?}"
    );
    assert!(kinds(&w).contains(&(AuditKind::AutoLinkRefused, "auto_link.email_not_verified")));
    assert!(w.no_bindings("alice").await);
}

#[tokio::test]
async fn entra_identity_with_unverified_email_domain_is_not_auto_linked() {
    let w = entra_world().await;
    let policy = LinkingPolicy::AutoLinkVerifiedEmail {
        allowed_domains: vec![],
        entra_verified_domains: vec!["fabrikam.example".into()],
        link_on_first_login: true,
    };
    let config = ProviderConfig::microsoft(
        w.provider.clone(),
        cx_sso::EntraTenancy::multi(cx_sso::EntraAudience::Organizations, [ENTRA_TENANT]).unwrap(),
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    )
    .with_linking_policy(policy);
    let w = with_directory(w, config).await;
    // carol@contoso.example: Entra's plain email claim, domain not verified (the nOAuth case).
    let out = w
        .login(LoginIntent::SignIn, "pairwise-sub-carol")
        .await
        .unwrap();
    assert!(matches!(out, LoginOutcome::LinkRequired { .. }), "{out:?}");
    assert!(kinds(&w).contains(&(AuditKind::AutoLinkRefused, "auto_link.email_not_verified")));
    assert!(w.no_bindings("carol").await);
    // With xms_edov, the same email is linked.
    w.idp.add_user(
        FakeUser::new("pairwise-sub-carol2")
            .tenant_id(ENTRA_TENANT)
            .object_id("00000000-0000-0000-0000-00000000ca02")
            .email("carol@contoso.example")
            .email_domain_verified(true),
    );
    let out = w
        .login(LoginIntent::SignIn, "pairwise-sub-carol2")
        .await
        .unwrap();
    assert!(
        matches!(out, LoginOutcome::SignedIn { ref user, .. } if user.as_str() == "carol"),
        "{out:?}"
    );
}

#[tokio::test]
async fn an_email_matching_two_users_is_not_auto_linked() {
    let w = google_world().await;
    w.idp.add_user(
        FakeUser::new("g-twin")
            .email("twin@acme.example")
            .email_verified(true),
    );
    let w = with_directory(
        w.clone_world(),
        google(&w).with_linking_policy(auto_link(true)),
    )
    .await;
    let out = w.login(LoginIntent::SignIn, "g-twin").await.unwrap();
    assert!(matches!(out, LoginOutcome::LinkRequired { .. }), "{out:?}");
    assert!(kinds(&w).contains(&(AuditKind::AutoLinkRefused, "auto_link.ambiguous_email")));
}

#[tokio::test]
async fn auto_link_respects_allowed_domains_and_inactive_users() {
    let w = google_world().await;
    w.idp.add_user(
        FakeUser::new("g-dan")
            .email("dan@acme.example")
            .email_verified(true),
    );
    let policy = LinkingPolicy::AutoLinkVerifiedEmail {
        allowed_domains: vec!["acme.example".into()],
        entra_verified_domains: vec![],
        link_on_first_login: true,
    };
    let w = with_directory(w.clone_world(), google(&w).with_linking_policy(policy)).await;
    // bob@gmail.example: domain not allowed.
    assert!(matches!(
        w.login(LoginIntent::SignIn, "g-bob").await.unwrap(),
        LoginOutcome::LinkRequired { .. }
    ));
    assert!(kinds(&w).contains(&(AuditKind::AutoLinkRefused, "auto_link.domain_not_allowed")));
    // dan is disabled: no active user matches.
    assert!(matches!(
        w.login(LoginIntent::SignIn, "g-dan").await.unwrap(),
        LoginOutcome::LinkRequired { .. }
    ));
    assert!(kinds(&w).contains(&(AuditKind::AutoLinkRefused, "auto_link.no_matching_user")));
}

#[tokio::test]
async fn pre_hijacked_local_account_is_never_merged_without_proof() {
    let w = google_world().await;
    w.idp.add_user(
        FakeUser::new("g-victim")
            .email("victim@acme.example")
            .email_verified(true),
    );
    let w = with_directory(
        w.clone_world(),
        google(&w).with_linking_policy(auto_link(true)),
    )
    .await;
    // The attacker's local account has the victim's email, unverified: not a match.
    let out = w.login(LoginIntent::SignIn, "g-victim").await.unwrap();
    let LoginOutcome::LinkRequired { ticket, .. } = out else {
        panic!("expected LinkRequired, got {out:?}");
    };
    assert!(w.no_bindings("attacker").await);
    // Only the attacker's password could redeem it into the attacker's account; the victim
    // would not: the ticket went to the victim's browser, not the attacker's.
    let _ = ticket;
}

#[tokio::test]
async fn an_identity_bound_to_another_user_cannot_be_linked() {
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
    assert!(matches!(
        err,
        Error::Binding(BindingError::BoundToAnotherUser)
    ));
    assert!(kinds(&w).contains(&(AuditKind::BindRefused, "bound_to_another_user")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_links_of_one_identity_one_wins() {
    let w = google_world().await;
    let (cb1, b1) = w
        .consent(
            LoginIntent::Link {
                user: user("alice"),
            },
            "g-bob",
        )
        .await;
    let (cb2, b2) = w
        .consent(
            LoginIntent::Link {
                user: user("mallory"),
            },
            "g-bob",
        )
        .await;
    let (x, y) = (w.broker.clone(), w.broker.clone());
    let (r1, r2) = (w.route(), w.route());
    let t1 = tokio::spawn(async move { x.complete_login(&r1, &cb1, &b1).await });
    let t2 = tokio::spawn(async move { y.complete_login(&r2, &cb2, &b2).await });
    let results = [t1.await.unwrap(), t2.await.unwrap()];
    let wins = results
        .iter()
        .filter(|r| matches!(r, Ok(LoginOutcome::Linked { .. })))
        .count();
    let conflicts = results
        .iter()
        .filter(|r| matches!(r, Err(Error::Binding(BindingError::BoundToAnotherUser))))
        .count();
    assert_eq!((wins, conflicts), (1, 1), "{results:?}");
}

#[tokio::test]
async fn link_ticket_is_refused_for_disabled_other_tenant_and_used() {
    let w = google_world().await;
    let w = with_directory(w.clone_world(), google(&w)).await;
    let ticket = || async {
        match w.login(LoginIntent::SignIn, "g-bob").await.unwrap() {
            LoginOutcome::LinkRequired { ticket, .. } => ticket,
            other => panic!("{other:?}"),
        }
    };
    let t = ticket().await;
    let err = w
        .broker
        .redeem_link_ticket(&w.tenant, &t, &user("dan"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Binding(BindingError::UserInactive)),
        "disabled: {err:?}"
    );
    let t = ticket().await;
    let err = w
        .broker
        .redeem_link_ticket(&w.tenant, &t, &user("gus"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Binding(BindingError::UserInactive)),
        "other tenant's user: {err:?}"
    );
    let t = ticket().await;
    w.broker
        .redeem_link_ticket(&w.tenant, &t, &user("bob"))
        .await
        .unwrap();
    let err = w
        .broker
        .redeem_link_ticket(&w.tenant, &t, &user("bob"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Binding(BindingError::TicketInvalid)),
        "used: {err:?}"
    );
    let k = kinds(&w);
    assert!(k.contains(&(AuditKind::LinkTicketRefused, "ticket.user_inactive")));
    assert!(k.contains(&(AuditKind::LinkTicketRedeemed, "link_ticket")));
}

#[tokio::test]
async fn unbinding_the_last_way_to_sign_in_is_refused_when_passwords_are_off() {
    let w = google_world().await;
    w.bind("bob", "g-bob").await;
    w.broker
        .set_auth_method(
            &w.tenant,
            AuthMethod::Sso { providers: vec![] },
            Some(Duration::ZERO),
        )
        .await
        .unwrap();
    let b = &w
        .broker
        .list_bindings(&w.tenant, &user("bob"))
        .await
        .unwrap()[0];
    let err = w
        .broker
        .unbind(&w.tenant, &user("bob"), &b.id())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Binding(BindingError::LastSignInMethod)),
        "{err:?}"
    );
    // A privileged user keeps passwords, so they may unbind.
    w.broker
        .add_privileged_user(&w.tenant, &user("bob"))
        .await
        .unwrap();
    w.broker
        .unbind(&w.tenant, &user("bob"), &b.id())
        .await
        .unwrap();
    let k = kinds(&w);
    assert!(k.contains(&(AuditKind::BindRefused, "last_sign_in_method")));
    assert!(k.contains(&(AuditKind::Unbind, "user_request")));
}

#[tokio::test]
async fn every_audit_kind_is_emitted_and_no_event_carries_a_secret() {
    let w = google_world().await;
    w.idp.add_user(
        FakeUser::new("g-twin")
            .email("twin@acme.example")
            .email_verified(true),
    );
    let w = with_directory(
        w.clone_world(),
        google(&w).with_linking_policy(auto_link(true)),
    )
    .await;
    let mut secrets: Vec<String> = vec![CLIENT_SECRET.into()];

    // Bind, BindRefused, Unbind.
    let (cb, b) = w
        .consent(LoginIntent::Link { user: user("bob") }, "g-bob")
        .await;
    secrets.push(b.clone());
    secrets.extend(
        cb.split('&')
            .map(|kv| kv.split_once('=').unwrap().1.to_owned()),
    );
    w.broker.complete_login(&w.route(), &cb, &b).await.unwrap();
    let _ = w
        .login(
            LoginIntent::Link {
                user: user("mallory"),
            },
            "g-bob",
        )
        .await;
    let bob = &w
        .broker
        .list_bindings(&w.tenant, &user("bob"))
        .await
        .unwrap()[0];
    w.broker
        .unbind(&w.tenant, &user("bob"), &bob.id())
        .await
        .unwrap();
    // AutoLink, AutoLinkRefused.
    w.login(LoginIntent::SignIn, "g-alice").await.unwrap();
    // LinkTicketRedeemed, LinkTicketRefused.
    let LoginOutcome::LinkRequired { ticket, .. } =
        w.login(LoginIntent::SignIn, "g-twin").await.unwrap()
    else {
        panic!()
    };
    secrets.push(ticket.secret().to_owned());
    w.broker
        .redeem_link_ticket(&w.tenant, &ticket, &user("twin-1"))
        .await
        .unwrap();
    let _ = w
        .broker
        .redeem_link_ticket(&w.tenant, &ticket, &user("twin-1"))
        .await;
    // Privileged, methods, sessions, refusals.
    w.broker
        .add_privileged_user(&w.tenant, &user("alice"))
        .await
        .unwrap();
    w.broker
        .remove_privileged_user(&w.tenant, &user("alice"))
        .await
        .unwrap();
    let pw = w
        .broker
        .grant_password_session(&w.tenant, &user("bob"))
        .await
        .unwrap();
    w.broker
        .set_auth_method(&w.tenant, AuthMethod::Password, None)
        .await
        .unwrap();
    w.broker.cancel_auth_method_switch(&w.tenant).await.unwrap();
    w.broker
        .set_auth_method(&w.tenant, AuthMethod::Sso { providers: vec![] }, None)
        .await
        .unwrap();
    w.clock.advance(Duration::hours(1));
    w.broker.tenant_auth_status(&w.tenant).await.unwrap();
    w.broker.check_session(&pw).await.unwrap();
    let _ = w
        .broker
        .grant_password_session(&w.tenant, &user("bob"))
        .await;

    let events = w.audit.events();
    let seen: HashSet<AuditKind> = events.iter().map(|e| e.kind).collect();
    for kind in [
        AuditKind::Bind,
        AuditKind::Unbind,
        AuditKind::BindRefused,
        AuditKind::AutoLink,
        AuditKind::AutoLinkRefused,
        AuditKind::LinkTicketRedeemed,
        AuditKind::LinkTicketRefused,
        AuditKind::MethodScheduled,
        AuditKind::MethodSwitchCancelled,
        AuditKind::MethodEffective,
        AuditKind::PrivilegedAdded,
        AuditKind::PrivilegedRemoved,
        AuditKind::SessionRevoked,
        AuditKind::SignInRefused,
    ] {
        assert!(seen.contains(&kind), "no {kind:?} event in {events:#?}");
    }
    for e in &events {
        assert_eq!(e.tenant, w.tenant);
        let text = format!("{e:?} {}", serde_json::to_string(e).unwrap());
        for s in &secrets {
            assert!(
                s.len() < 8 || !text.contains(s.as_str()),
                "secret in event: {text}"
            );
        }
    }
}

#[tokio::test]
async fn sso_sessions_of_a_cancelled_switch_end_with_it() {
    let w = google_world().await;
    w.bind("bob", "g-bob").await;
    w.broker
        .set_auth_method(&w.tenant, AuthMethod::Password, Some(Duration::ZERO))
        .await
        .unwrap();
    // Password now; SSO scheduled: users may already sign in with SSO during the grace.
    w.broker
        .set_auth_method(&w.tenant, AuthMethod::Sso { providers: vec![] }, None)
        .await
        .unwrap();
    let LoginOutcome::SignedIn { session, .. } =
        w.login(LoginIntent::SignIn, "g-bob").await.unwrap()
    else {
        panic!("expected SignedIn");
    };
    assert_eq!(
        w.broker.check_session(&session).await.unwrap(),
        SessionStatus::Active
    );
    // The admin cancels: the tenant stays password-only, and that SSO session ends.
    w.broker
        .set_auth_method(&w.tenant, AuthMethod::Password, None)
        .await
        .unwrap();
    assert_eq!(
        w.broker.check_session(&session).await.unwrap(),
        SessionStatus::Revoked {
            reason: RevocationReason::NotAllowed
        }
    );
}

#[tokio::test]
async fn a_link_ticket_from_before_a_switch_is_refused() {
    let w = google_world().await;
    let LoginOutcome::LinkRequired { ticket, .. } =
        w.login(LoginIntent::SignIn, "g-bob").await.unwrap()
    else {
        panic!("expected LinkRequired");
    };
    w.broker
        .set_auth_method(&w.tenant, AuthMethod::Password, Some(Duration::ZERO))
        .await
        .unwrap();
    let err = w
        .broker
        .redeem_link_ticket(&w.tenant, &ticket, &user("bob"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::State(StateError::PolicyChanged)),
        "{err:?}"
    );
    assert!(w.no_bindings("bob").await);
}

#[tokio::test]
async fn a_disabled_user_with_a_binding_cannot_sign_in() {
    let w = google_world().await;
    w.idp.add_user(
        FakeUser::new("g-dan")
            .email("dan@acme.example")
            .email_verified(true),
    );
    let w = with_directory(w.clone_world(), google(&w)).await;
    // Bound while active (from settings), then disabled by the host: the directory says so.
    w.bind("dan", "g-dan").await;
    let err = w.login(LoginIntent::SignIn, "g-dan").await.unwrap_err();
    assert!(
        matches!(err, Error::Binding(BindingError::UserInactive)),
        "{err:?}"
    );
    assert!(kinds(&w).contains(&(AuditKind::SignInRefused, "user_inactive")));
}

#[tokio::test]
async fn unbinding_the_last_way_in_is_refused_before_a_scheduled_sso_switch() {
    let w = google_world().await;
    w.bind("bob", "g-bob").await;
    w.broker
        .set_auth_method(&w.tenant, AuthMethod::Sso { providers: vec![] }, None)
        .await
        .unwrap();
    let b = &w
        .broker
        .list_bindings(&w.tenant, &user("bob"))
        .await
        .unwrap()[0];
    let err = w
        .broker
        .unbind(&w.tenant, &user("bob"), &b.id())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Binding(BindingError::LastSignInMethod)),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_grace_beyond_a_year_is_refused() {
    let w = google_world().await;
    let err = w
        .broker
        .set_auth_method(&w.tenant, AuthMethod::Password, Some(Duration::MAX))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Config(_)), "{err:?}");
}

// ---- The company toggle logs out everyone (the Google sign-in document) ----

fn sso_session(out: LoginOutcome) -> cx_sso::SessionGrant {
    match out {
        LoginOutcome::SignedIn { session, .. } => session,
        other => panic!("expected SignedIn, got {other:?}"),
    }
}

#[tokio::test]
async fn enabling_or_disabling_sso_logs_out_every_session_an_hour_later() {
    let w = google_world().await;
    let sso = AuthMethod::Sso {
        providers: vec![w.provider.clone()],
    };
    w.broker
        .add_privileged_user(&w.tenant, &user("alice"))
        .await
        .unwrap();
    w.bind("bob", "g-bob").await;
    let alice_pw = w
        .broker
        .grant_password_session(&w.tenant, &user("alice"))
        .await
        .unwrap();
    let bob_pw = w
        .broker
        .grant_password_session(&w.tenant, &user("bob"))
        .await
        .unwrap();
    let bob_sso = sso_session(w.login(LoginIntent::SignIn, "g-bob").await.unwrap());
    // Another tenant's session is not touched by acme's toggle.
    let gus_pw = w
        .broker
        .grant_password_session(&tenant("globex"), &user("gus"))
        .await
        .unwrap();

    // Google sign-in enabled: nothing changes for an hour.
    let enabled_at = w.clock_now();
    let status = w
        .broker
        .set_auth_method(&w.tenant, sso.clone(), None)
        .await
        .unwrap();
    assert_eq!(
        status.pending_revocation,
        Some(SwitchRevocation::AllSessions)
    );
    w.clock.advance(Duration::minutes(59));
    for s in [&alice_pw, &bob_pw, &bob_sso, &gus_pw] {
        assert_eq!(
            w.broker.check_session(s).await.unwrap(),
            SessionStatus::Active
        );
    }
    // One hour after: everyone is logged out, privileged users and SSO sessions included.
    w.clock.advance(Duration::minutes(1));
    let logged_out = SessionStatus::Revoked {
        reason: RevocationReason::MethodChanged {
            effective_at: enabled_at + Duration::hours(1),
        },
    };
    for s in [&alice_pw, &bob_pw, &bob_sso] {
        assert_eq!(
            w.broker.check_session(s).await.unwrap(),
            logged_out,
            "{s:?}"
        );
    }
    assert_eq!(
        w.broker.check_session(&gus_pw).await.unwrap(),
        SessionStatus::Active
    );
    // They sign in again, each as the new method allows.
    let alice_pw = w
        .broker
        .grant_password_session(&w.tenant, &user("alice"))
        .await
        .unwrap();
    let bob_sso = sso_session(w.login(LoginIntent::SignIn, "g-bob").await.unwrap());
    for s in [&alice_pw, &bob_sso] {
        assert_eq!(
            w.broker.check_session(s).await.unwrap(),
            SessionStatus::Active
        );
    }

    // Google sign-in disabled: again everyone, an hour later, although passwords are allowed
    // again and the privileged password session was allowed all along.
    let disabled_at = w.clock_now();
    w.broker
        .set_auth_method(&w.tenant, AuthMethod::Password, None)
        .await
        .unwrap();
    w.clock.advance(Duration::minutes(30));
    assert_eq!(
        w.broker.check_session(&alice_pw).await.unwrap(),
        SessionStatus::Active
    );
    w.clock.advance(Duration::minutes(30));
    let logged_out = SessionStatus::Revoked {
        reason: RevocationReason::MethodChanged {
            effective_at: disabled_at + Duration::hours(1),
        },
    };
    for s in [&alice_pw, &bob_sso] {
        assert_eq!(
            w.broker.check_session(s).await.unwrap(),
            logged_out,
            "{s:?}"
        );
    }
    assert!(kinds(&w).contains(&(AuditKind::SessionRevoked, "method_changed.all_sessions")));
}

#[tokio::test]
async fn sessions_granted_during_the_grace_end_when_the_switch_takes_effect() {
    let w = google_world().await;
    w.bind("bob", "g-bob").await;
    w.broker
        .add_privileged_user(&w.tenant, &user("alice"))
        .await
        .unwrap();
    w.broker
        .set_auth_method(&w.tenant, AuthMethod::Sso { providers: vec![] }, None)
        .await
        .unwrap();
    // During the grace, users already sign in with the coming method, or with a password.
    w.clock.advance(Duration::minutes(20));
    let bob_sso = sso_session(w.login(LoginIntent::SignIn, "g-bob").await.unwrap());
    let alice_pw = w
        .broker
        .grant_password_session(&w.tenant, &user("alice"))
        .await
        .unwrap();
    w.clock.advance(Duration::minutes(39));
    for s in [&bob_sso, &alice_pw] {
        assert_eq!(
            w.broker.check_session(s).await.unwrap(),
            SessionStatus::Active
        );
    }
    // The switch takes effect: they were granted before that moment, so they end too.
    w.clock.advance(Duration::minutes(1));
    for s in [&bob_sso, &alice_pw] {
        assert!(
            matches!(
                w.broker.check_session(s).await.unwrap(),
                SessionStatus::Revoked {
                    reason: RevocationReason::MethodChanged { .. }
                }
            ),
            "{s:?}"
        );
    }
    // A session granted at the moment the switch takes effect, or after, goes on.
    let bob_sso = sso_session(w.login(LoginIntent::SignIn, "g-bob").await.unwrap());
    assert_eq!(
        w.broker.check_session(&bob_sso).await.unwrap(),
        SessionStatus::Active
    );
}

#[tokio::test]
async fn a_switch_keeps_the_revocation_rule_it_was_scheduled_with() {
    // Scheduled under the narrower rule; the broker is then rebuilt with the default over the
    // same store: the switch still ends only what it forbids.
    let w = google_world().await;
    let store: std::sync::Arc<dyn cx_sso::Store> = std::sync::Arc::new(cx_sso::MemoryStore::new());
    let config = google(&w);
    let s = store.clone();
    let w = rebuilt(w, config.clone(), move |b| {
        b.shared_store(s)
            .method_switch_revocation(SwitchRevocation::DisallowedSessions)
    })
    .await;
    w.bind("bob", "g-bob").await;
    let bob_sso = sso_session(w.login(LoginIntent::SignIn, "g-bob").await.unwrap());
    w.broker
        .set_auth_method(&w.tenant, AuthMethod::Sso { providers: vec![] }, None)
        .await
        .unwrap();
    let w = rebuilt(w, config, move |b| b.shared_store(store)).await;
    w.clock.advance(Duration::hours(1));
    assert_eq!(
        w.broker.check_session(&bob_sso).await.unwrap(),
        SessionStatus::Active
    );
}

#[tokio::test]
async fn cancel_auth_method_switch_cancels_a_pending_switch_and_audits_it() {
    let w = google_world().await;
    let pw = w
        .broker
        .grant_password_session(&w.tenant, &user("bob"))
        .await
        .unwrap();
    w.broker
        .set_auth_method(&w.tenant, AuthMethod::Sso { providers: vec![] }, None)
        .await
        .unwrap();
    w.clock.advance(Duration::minutes(30));
    assert!(w.broker.cancel_auth_method_switch(&w.tenant).await.unwrap());
    let status = w.broker.tenant_auth_status(&w.tenant).await.unwrap();
    assert_eq!(status.method, AuthMethod::Either);
    assert_eq!(status.pending, None);
    assert_eq!(status.pending_revocation, None);
    // Nothing takes effect later: sessions go on, passwords still work.
    w.clock.advance(Duration::hours(2));
    assert_eq!(
        w.broker.check_session(&pw).await.unwrap(),
        SessionStatus::Active
    );
    assert_eq!(
        w.broker
            .check_password_login(&w.tenant, &user("bob"))
            .await
            .unwrap(),
        PasswordDecision::Allowed
    );
    let cancels = |w: &World| {
        w.audit
            .events()
            .into_iter()
            .filter(|e| e.kind == AuditKind::MethodSwitchCancelled)
            .collect::<Vec<_>>()
    };
    let events = cancels(&w);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].rule, "admin_cancel");
    assert_eq!(events[0].tenant, w.tenant);
    // Cancelling again, or with nothing ever scheduled, is a no-op answered `false`.
    assert!(!w.broker.cancel_auth_method_switch(&w.tenant).await.unwrap());
    assert!(
        !w.broker
            .cancel_auth_method_switch(&tenant("globex"))
            .await
            .unwrap()
    );
    assert_eq!(cancels(&w).len(), 1);
}

#[tokio::test]
async fn cancelling_after_the_switch_took_effect_changes_nothing() {
    let w = google_world().await;
    let pw = w
        .broker
        .grant_password_session(&w.tenant, &user("bob"))
        .await
        .unwrap();
    let sso = AuthMethod::Sso { providers: vec![] };
    w.broker
        .set_auth_method(&w.tenant, sso.clone(), None)
        .await
        .unwrap();
    w.clock.advance(Duration::minutes(61));
    assert!(!w.broker.cancel_auth_method_switch(&w.tenant).await.unwrap());
    let status = w.broker.tenant_auth_status(&w.tenant).await.unwrap();
    assert_eq!(status.method, sso);
    assert!(matches!(
        w.broker.check_session(&pw).await.unwrap(),
        SessionStatus::Revoked { .. }
    ));
    let k = kinds(&w);
    assert!(k.contains(&(AuditKind::MethodEffective, "scheduled_switch")));
    assert!(
        !k.iter()
            .any(|(k, _)| *k == AuditKind::MethodSwitchCancelled)
    );
}

// ---- The login email must match the account's email (the Google sign-in document) ----

fn mismatch(reason: EmailMismatch) -> impl Fn(&Error) -> bool {
    move |e| matches!(e, Error::Policy(PolicyError::EmailMismatch(r)) if *r == reason)
}

fn link(u: &str) -> LoginIntent {
    LoginIntent::Link { user: user(u) }
}

#[tokio::test]
async fn binding_from_settings_with_another_email_is_refused_when_the_application_requires_a_match()
{
    // The story: an application that links by verified email automatically, where
    // bob binds alice's Google account from his security settings.
    let w = google_world().await;
    let config = google(&w)
        .with_linking_policy(auto_link(true))
        .with_email_match(EmailMatch::Required);
    let w = with_directory(w, config).await;
    let err = w.login(link("bob"), "g-alice").await.unwrap_err();
    assert!(mismatch(EmailMismatch::NotTheUsersEmail)(&err), "{err:?}");
    assert_eq!(err.kind(), cx_sso::ErrorKind::Denied);
    assert!(w.no_bindings("bob").await);
    assert!(kinds(&w).contains(&(AuditKind::BindRefused, "email_match.not_users_email")));
    // So alice's Google account does not sign bob in: it is linked to alice, automatically.
    match w.login(LoginIntent::SignIn, "g-alice").await.unwrap() {
        LoginOutcome::SignedIn { user: u, .. } => assert_eq!(u.as_str(), "alice"),
        other => panic!("{other:?}"),
    }
    // Each user binds their own account from settings.
    w.bind("bob", "g-bob").await;
}

#[tokio::test]
async fn without_the_requirement_a_user_may_bind_an_account_with_another_email() {
    let w = google_world().await;
    let config = google(&w).with_linking_policy(auto_link(true));
    assert_eq!(config.email_match(), EmailMatch::NotRequired);
    let w = with_directory(w, config).await;
    w.bind("bob", "g-alice").await;
}

#[tokio::test]
async fn a_link_ticket_binds_only_the_user_whose_email_matches() {
    let w = google_world().await;
    let config = google(&w).with_email_match(EmailMatch::Required);
    let w = with_directory(w, config).await;
    let ticket = || async {
        match w.login(LoginIntent::SignIn, "g-bob").await.unwrap() {
            LoginOutcome::LinkRequired { ticket, .. } => ticket,
            other => panic!("{other:?}"),
        }
    };
    // alice proves who she is, but bob@gmail.example is not her login email.
    let t = ticket().await;
    let err = w
        .broker
        .redeem_link_ticket(&w.tenant, &t, &user("alice"))
        .await
        .unwrap_err();
    assert!(mismatch(EmailMismatch::NotTheUsersEmail)(&err), "{err:?}");
    assert!(w.no_bindings("alice").await);
    assert!(kinds(&w).contains(&(AuditKind::BindRefused, "email_match.not_users_email")));
    // bob's is: linked, and signed in.
    let t = ticket().await;
    let redeemed = w
        .broker
        .redeem_link_ticket(&w.tenant, &t, &user("bob"))
        .await
        .unwrap();
    assert_eq!(redeemed.binding.user, user("bob"));
    assert_eq!(
        w.broker.check_session(&redeemed.session).await.unwrap(),
        SessionStatus::Active
    );
}

#[tokio::test]
async fn an_email_the_provider_does_not_verify_is_never_bound_when_a_match_is_required() {
    let w = google_world().await;
    w.idp.add_user(
        FakeUser::new("g-bob-unverified")
            .email("bob@gmail.example")
            .email_verified(false),
    );
    w.idp.add_user(FakeUser::new("g-no-email"));
    let w = with_directory(
        w.clone_world(),
        google(&w).with_email_match(EmailMatch::Required),
    )
    .await;
    let err = w.login(link("bob"), "g-bob-unverified").await.unwrap_err();
    assert!(mismatch(EmailMismatch::NotVerified)(&err), "{err:?}");
    let err = w.login(link("bob"), "g-no-email").await.unwrap_err();
    assert!(mismatch(EmailMismatch::NoEmail)(&err), "{err:?}");
    // A first sign-in gets no link ticket that nobody could redeem: refused at once.
    let err = w
        .login(LoginIntent::SignIn, "g-bob-unverified")
        .await
        .unwrap_err();
    assert!(mismatch(EmailMismatch::NotVerified)(&err), "{err:?}");
    assert!(w.no_bindings("bob").await);
    let k = kinds(&w);
    assert!(k.contains(&(AuditKind::BindRefused, "email_match.not_verified")));
    assert!(k.contains(&(AuditKind::BindRefused, "email_match.no_email")));
    assert!(k.contains(&(AuditKind::SignInRefused, "email_match.not_verified")));
}

#[tokio::test]
async fn a_match_required_needs_the_host_to_have_verified_one_user_with_the_email() {
    let w = google_world().await;
    w.idp.add_user(
        FakeUser::new("g-victim")
            .email("victim@acme.example")
            .email_verified(true),
    );
    w.idp.add_user(
        FakeUser::new("g-twin")
            .email("twin@acme.example")
            .email_verified(true),
    );
    w.idp.add_user(
        FakeUser::new("g-dan")
            .email("dan@acme.example")
            .email_verified(true),
    );
    let w = with_directory(
        w.clone_world(),
        google(&w).with_email_match(EmailMatch::Required),
    )
    .await;
    // The attacker registered the victim's email locally and never verified it.
    let err = w.login(link("attacker"), "g-victim").await.unwrap_err();
    assert!(mismatch(EmailMismatch::NotTheUsersEmail)(&err), "{err:?}");
    assert!(w.no_bindings("attacker").await);
    // Two users share an email: it identifies neither.
    let err = w.login(link("twin-1"), "g-twin").await.unwrap_err();
    assert!(mismatch(EmailMismatch::Ambiguous)(&err), "{err:?}");
    assert!(kinds(&w).contains(&(AuditKind::BindRefused, "email_match.ambiguous")));
    // A disabled user is not an active user with that email.
    let err = w.login(link("dan"), "g-dan").await.unwrap_err();
    assert!(mismatch(EmailMismatch::NotTheUsersEmail)(&err), "{err:?}");
}

#[tokio::test]
async fn entra_plain_email_claims_do_not_satisfy_a_required_match() {
    let w = entra_world().await;
    let config = ProviderConfig::microsoft(
        w.provider.clone(),
        cx_sso::EntraTenancy::multi(cx_sso::EntraAudience::Organizations, [ENTRA_TENANT]).unwrap(),
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    )
    .with_email_match(EmailMatch::Required);
    let w = with_directory(w, config).await;
    // carol@contoso.example in Entra's plain `email` claim: the nOAuth case.
    let err = w
        .login(link("carol"), "pairwise-sub-carol")
        .await
        .unwrap_err();
    assert!(mismatch(EmailMismatch::NotVerified)(&err), "{err:?}");
    assert!(w.no_bindings("carol").await);
    // With xms_edov the tenant vouches for the domain: bound.
    w.idp.add_user(
        FakeUser::new("pairwise-sub-carol2")
            .tenant_id(ENTRA_TENANT)
            .object_id("00000000-0000-0000-0000-00000000ca02")
            .email("carol@contoso.example")
            .email_domain_verified(true),
    );
    w.bind("carol", "pairwise-sub-carol2").await;
}

#[tokio::test]
async fn automatic_linking_still_links_when_a_match_is_required() {
    let w = google_world().await;
    let config = google(&w)
        .with_linking_policy(auto_link(false))
        .with_email_match(EmailMatch::Required);
    let w = with_directory(w, config).await;
    match w.login(LoginIntent::SignIn, "g-alice").await.unwrap() {
        LoginOutcome::SignedIn { user: u, .. } => assert_eq!(u.as_str(), "alice"),
        other => panic!("{other:?}"),
    }
    assert!(kinds(&w).contains(&(AuditKind::AutoLink, "auto_link.verified_email")));
}

#[test]
fn email_mismatch_errors_say_why_without_the_email() {
    for (reason, words) in [
        (EmailMismatch::NoEmail, "no email"),
        (EmailMismatch::NotVerified, "not verified"),
        (EmailMismatch::NotTheUsersEmail, "not this user"),
        (EmailMismatch::Ambiguous, "several users"),
    ] {
        let text = Error::from(PolicyError::EmailMismatch(reason)).to_string();
        assert!(text.contains("must be the user's login email"), "{text}");
        assert!(text.contains(words), "{text}");
        assert!(!text.contains('@'), "{text}");
    }
}

/// A Google tenant over a store the test can reach, enforcing SSO (in force at once).
async fn sso_world_over(store: Arc<dyn cx_sso::Store>) -> World {
    let w = google_world().await;
    let config = google(&w);
    let w = rebuilt(w, config, move |b| b.shared_store(store)).await;
    w.broker
        .set_auth_method(
            &w.tenant,
            AuthMethod::Sso { providers: vec![] },
            Some(Duration::ZERO),
        )
        .await
        .unwrap();
    w
}

fn password_refused(r: Result<cx_sso::SessionGrant, Error>) -> bool {
    matches!(
        r,
        Err(Error::Policy(PolicyError::PasswordNotAllowed { .. }))
    )
}

#[tokio::test]
async fn a_user_removed_from_the_privileged_list_loses_the_password_bypass_at_once() {
    let store: Arc<dyn cx_sso::Store> = Arc::new(cx_sso::MemoryStore::new());
    let w = sso_world_over(store.clone()).await;
    // A second node on the same store: what one admin does, the other sees at once.
    let other = rebuilt(w.clone_world(), google(&w), move |b| b.shared_store(store)).await;
    w.broker
        .add_privileged_user(&w.tenant, &user("alice"))
        .await
        .unwrap();
    for node in [&w.broker, &other.broker] {
        let grant = node
            .grant_password_session(&w.tenant, &user("alice"))
            .await
            .unwrap();
        assert!(grant.privileged);
    }
    assert!(
        w.broker
            .remove_privileged_user(&w.tenant, &user("alice"))
            .await
            .unwrap()
    );
    for node in [&w.broker, &other.broker] {
        assert!(password_refused(
            node.grant_password_session(&w.tenant, &user("alice")).await
        ));
        assert!(matches!(
            node.check_password_login(&w.tenant, &user("alice"))
                .await
                .unwrap(),
            PasswordDecision::SsoRequired { .. }
        ));
    }
}

/// Writes the tenant's privileged users the way versions before the policy record held them
/// did (format 1): one `privileged_user` record per user, and a policy record without the list.
async fn store_the_old_way(store: &dyn cx_sso::Store, w: &World, users: &[&str]) {
    let now = w.clock_now();
    let t = w.tenant.as_str();
    if let Some(policy) = store.get("tenant_policy", t, now).await.unwrap() {
        let mut json: serde_json::Value = serde_json::from_slice(&policy.value).unwrap();
        assert!(
            json.as_object_mut()
                .unwrap()
                .remove("privileged_users")
                .is_some()
        );
        let bytes = serde_json::to_vec(&json).unwrap();
        store
            .put(
                "tenant_policy",
                t,
                cx_sso::store::NewRecord::new(bytes),
                now,
            )
            .await
            .unwrap();
    }
    for u in users {
        store
            .put(
                "privileged_user",
                &format!("{t}|{u}"),
                cx_sso::store::NewRecord::new(u.as_bytes().to_vec()).index(t),
                now,
            )
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn privileged_users_stored_the_old_way_keep_the_bypass_and_move_into_the_policy_record() {
    let store: Arc<dyn cx_sso::Store> = Arc::new(cx_sso::MemoryStore::new());
    let w = sso_world_over(store.clone()).await;
    store_the_old_way(&*store, &w, &["alice", "root"]).await;

    // Honoured as they are, from the old records.
    let grant = w
        .broker
        .grant_password_session(&w.tenant, &user("alice"))
        .await
        .unwrap();
    assert!(grant.privileged);
    assert!(password_refused(
        w.broker
            .grant_password_session(&w.tenant, &user("bob"))
            .await
    ));
    assert_eq!(
        w.broker.list_privileged_users(&w.tenant).await.unwrap(),
        vec![user("alice"), user("root")]
    );

    // The next admin write moves them into the policy record and deletes the old records.
    w.broker
        .add_privileged_user(&w.tenant, &user("carol"))
        .await
        .unwrap();
    assert_eq!(
        w.broker.list_privileged_users(&w.tenant).await.unwrap(),
        vec![user("alice"), user("carol"), user("root")]
    );
    let now = w.clock_now();
    for u in ["alice", "root"] {
        let old = store
            .get("privileged_user", &format!("acme|{u}"), now)
            .await
            .unwrap();
        assert!(old.is_none(), "{u}'s old record was moved");
    }
    assert!(
        w.broker
            .grant_password_session(&w.tenant, &user("alice"))
            .await
            .unwrap()
            .privileged
    );

    // Removal of a moved user is immediate.
    assert!(
        w.broker
            .remove_privileged_user(&w.tenant, &user("root"))
            .await
            .unwrap()
    );
    assert!(password_refused(
        w.broker
            .grant_password_session(&w.tenant, &user("root"))
            .await
    ));
}

#[tokio::test]
async fn removing_a_privileged_user_stored_the_old_way_ends_the_bypass_at_once() {
    let store: Arc<dyn cx_sso::Store> = Arc::new(cx_sso::MemoryStore::new());
    let w = sso_world_over(store.clone()).await;
    store_the_old_way(&*store, &w, &["alice"]).await;
    assert!(
        w.broker
            .remove_privileged_user(&w.tenant, &user("alice"))
            .await
            .unwrap()
    );
    assert!(password_refused(
        w.broker
            .grant_password_session(&w.tenant, &user("alice"))
            .await
    ));
    assert!(
        w.broker
            .list_privileged_users(&w.tenant)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn a_tenant_without_a_policy_record_keeps_privileged_users_stored_the_old_way() {
    // Configured by an older version: an application, privileged users, no policy record.
    let store: Arc<dyn cx_sso::Store> = Arc::new(cx_sso::MemoryStore::new());
    let w = google_world().await;
    let config = google(&w);
    let s = store.clone();
    let w = rebuilt(w, config, move |b| b.shared_store(s)).await;
    assert!(
        store
            .delete("tenant_policy", w.tenant.as_str(), w.clock_now())
            .await
            .unwrap()
    );
    store_the_old_way(&*store, &w, &["alice"]).await;
    let grant = w
        .broker
        .grant_password_session(&w.tenant, &user("alice"))
        .await
        .unwrap();
    assert!(grant.privileged, "the old record is read");
    // Enforcing SSO (an admin write) moves the list: alice keeps password access.
    w.broker
        .set_auth_method(
            &w.tenant,
            AuthMethod::Sso { providers: vec![] },
            Some(Duration::ZERO),
        )
        .await
        .unwrap();
    assert!(
        w.broker
            .grant_password_session(&w.tenant, &user("alice"))
            .await
            .unwrap()
            .privileged
    );
    assert!(password_refused(
        w.broker
            .grant_password_session(&w.tenant, &user("bob"))
            .await
    ));
}

#[tokio::test]
async fn a_tenant_has_at_most_256_privileged_users() {
    let w = google_world().await;
    for i in 0..256 {
        w.broker
            .add_privileged_user(&w.tenant, &user(&format!("admin-{i}")))
            .await
            .unwrap();
    }
    let err = w
        .broker
        .add_privileged_user(&w.tenant, &user("one-too-many"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Config(cx_sso::ConfigError::Invalid { what, .. }) if what == "privileged users"),
        "{err:?}"
    );
    assert!(err.to_string().contains("at most 256"), "{err}");
    // Adding one already there is not adding one more; nothing was lost.
    w.broker
        .add_privileged_user(&w.tenant, &user("admin-7"))
        .await
        .unwrap();
    let list = w.broker.list_privileged_users(&w.tenant).await.unwrap();
    assert_eq!(list.len(), 256);
    assert!(!list.contains(&user("one-too-many")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_admin_edits_of_the_privileged_users_are_all_kept() {
    let w = google_world().await;
    let tasks: Vec<_> = (0..4)
        .map(|n| {
            let broker = w.broker.clone();
            let t = w.tenant.clone();
            tokio::spawn(async move {
                let mut added = Vec::new();
                for i in 0..10 {
                    let u = user(&format!("admin-{n}-{i}"));
                    // A lost compare-and-swap race is retried; only repeated losses give up,
                    // with a typed error and nothing half-written.
                    match broker.add_privileged_user(&t, &u).await {
                        Ok(()) => added.push(u),
                        Err(e) => assert!(
                            matches!(
                                e,
                                Error::Store(cx_sso::store::StoreError::Contention { .. })
                            ),
                            "{e:?}"
                        ),
                    }
                }
                added
            })
        })
        .collect();
    let mut added = Vec::new();
    for t in tasks {
        added.extend(t.await.unwrap());
    }
    added.sort();
    assert!(!added.is_empty());
    assert_eq!(
        w.broker.list_privileged_users(&w.tenant).await.unwrap(),
        added
    );
}
