//! Secrets never appear in Debug, Display or errors.

mod common;

use common::*;
use cx_sso::testing::Misbehavior;
use cx_sso::{
    AccessToken, ClientSecret, LinkTicket, LoginIntent, LoginOptions, LoginOutcome, RefreshToken,
};

#[tokio::test]
async fn configs_redirects_outcomes_and_errors_print_no_secret() {
    let w = google_world().await;
    let mut printed = Vec::new();
    let configs = w.broker.list_providers(&w.tenant).await.unwrap();
    printed.push(format!("{configs:?}"));
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
    printed.push(format!("{r:?}"));
    let binding = r.browser_binding.secret().to_owned();
    let cb = w.idp.authorize(r.authorize_url.as_str(), "g-bob").unwrap();
    let code = cb
        .split('&')
        .find_map(|kv| kv.strip_prefix("code="))
        .unwrap()
        .to_owned();
    let out = w
        .broker
        .complete_login(&w.route(), &cb, &binding)
        .await
        .unwrap();
    printed.push(format!("{out:?}"));
    let LoginOutcome::LinkRequired { ticket, .. } = out else {
        panic!()
    };
    // Errors from the token endpoint and the ID token path.
    for m in [Misbehavior::InvalidGrant, Misbehavior::BadSignature] {
        w.idp.misbehave(m);
        let e = w.login(LoginIntent::SignIn, "g-bob").await.unwrap_err();
        printed.push(format!("{e:?} {e}"));
        w.idp.behave();
    }
    // A replayed callback.
    let e = w
        .broker
        .complete_login(&w.route(), &cb, &binding)
        .await
        .unwrap_err();
    printed.push(format!("{e:?} {e}"));
    for p in &printed {
        for s in [CLIENT_SECRET, &binding, ticket.secret(), &code] {
            assert!(!p.contains(s), "secret {s:?} printed in {p}");
        }
    }
}

#[test]
fn secret_types_are_redacted() {
    for (debug, secret) in [
        (
            format!("{:?}", ClientSecret::new("cs-1234567")),
            "cs-1234567",
        ),
        (
            format!("{:?}", AccessToken::new("ya29.token")),
            "ya29.token",
        ),
        (
            format!("{:?}", RefreshToken::new("1//refresh")),
            "1//refresh",
        ),
        (format!("{:?}", LinkTicket::new("ticket-abc")), "ticket-abc"),
    ] {
        assert!(!debug.contains(secret), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
    }
}
