//! Connect a platform mailbox (the "Generate Token" button of an email asset) and print the
//! SASL XOAUTH2 string an SMTP or IMAP client would send, with the token redacted.
//!
//! Runs in-process on the defaults (MemoryStore) and a FakeIdp playing Google:
//! `cargo run --example mailbox`.

use cx_sso::testing::{FakeIdp, FakeUser};
use cx_sso::{
    Broker, CallbackRoute, ClientSecret, ConnectionId, ConnectionStatus, LoginIntent, LoginOptions,
    LoginOutcome, ProviderConfig, ProviderId, TenantId,
};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // An in-process Google with the tenant's OAuth client and the mailbox account.
    let google = FakeIdp::google();
    google.register_client("1234.apps.googleusercontent.com", "GOCSPX-example");
    google.add_user(FakeUser::new("1089").email("support@acme.example"));

    // In production: a persistent store, the default reqwest transport and an encryption key.
    let builder = Broker::builder()
        .http_client(google.clone())
        .public_base_url("https://cx.example.com");
    // Refreshes run on tokio's tasks (a caller giving up cannot lose a rotated refresh token)
    // and wait for another node's refresh on tokio's timer. Without it they run inline.
    #[cfg(feature = "tokio")]
    let builder = builder.runtime(cx_sso::TokioRuntime::current()?);
    let broker = builder.build()?;
    let tenant = TenantId::new("acme")?;
    let provider = ProviderId::new("gmail")?;
    let asset = ConnectionId::new("email-asset-7")?;

    // 1. The admin saves the OAuth application (client id and secret from Google's console;
    //    the callback URL to register there is the broker's redirect URI).
    println!(
        "callback URL to register: {}",
        broker.redirect_uri(&tenant, &provider)
    );
    broker
        .configure_provider(
            &tenant,
            ProviderConfig::google(
                provider.clone(),
                "1234.apps.googleusercontent.com",
                ClientSecret::new("GOCSPX-example"),
            ),
        )
        .await?;

    // 2. "Generate Token": redirect to Google for offline consent...
    let redirect = broker
        .begin_login(
            &tenant,
            &provider,
            LoginIntent::Connect {
                connection: asset.clone(),
            },
            LoginOptions::new().return_to("/admin/email-assets/7"),
        )
        .await?;
    println!(
        "consent at: {}",
        redirect.authorize_url.host_str().unwrap_or("?")
    );
    // ...the admin consents, Google redirects back to the callback.
    let callback = google.authorize(redirect.authorize_url.as_str(), "1089")?;
    match broker
        .complete_login(
            &CallbackRoute::new(provider.clone()),
            &callback,
            redirect.browser_binding.secret(),
        )
        .await?
    {
        LoginOutcome::Connected {
            mailbox,
            valid_until,
            ..
        } => println!("connected {mailbox}, token valid until {valid_until}"),
        other => println!("unexpected: {other:?}"),
    }

    // 3. Sending mail: AUTH XOAUTH2 with a valid token (refreshed when near expiry).
    let sasl = broker.xoauth2(&tenant, &asset).await?;
    println!("SMTP: AUTH XOAUTH2 <base64 of {}>", sasl.redacted());
    println!(
        "      ({} base64 characters, token not shown)",
        sasl.base64().len()
    );

    // 4. The admin page.
    for c in broker.list_connections(&tenant).await? {
        let status = match c.status {
            ConnectionStatus::Connected { valid_until } => format!("connected until {valid_until}"),
            ConnectionStatus::NeedsReconsent { reason } => format!("needs consent: {reason}"),
            ConnectionStatus::Revoked => "revoked".to_owned(),
            _ => "unknown".to_owned(),
        };
        println!(
            "{} {} via {}: {status}",
            c.connection, c.mailbox, c.provider
        );
    }
    Ok(())
}
