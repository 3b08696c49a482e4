//! The whole story in-process, on the defaults (MemoryStore) and the FakeIdp:
//! configure a tenant's Google application, bind an account from settings, sign in, link on
//! first login, unbind.
//!
//! Run with `cargo run --example quickstart`.

use cx_sso::testing::{FakeIdp, FakeUser};
use cx_sso::{
    Broker, CallbackRoute, ClientSecret, LoginIntent, LoginOptions, LoginOutcome, ProviderConfig,
    ProviderId, TenantId, UserId,
};

/// Plays the browser: begin the login, consent at the provider, come back to the callback.
async fn browser_round_trip(
    broker: &Broker,
    idp: &FakeIdp,
    tenant: &TenantId,
    provider: &ProviderId,
    intent: LoginIntent,
    account: &str,
) -> Result<LoginOutcome, Box<dyn std::error::Error>> {
    let redirect = broker
        .begin_login(
            tenant,
            provider,
            intent,
            LoginOptions::new().return_to("/inbox"),
        )
        .await?;
    println!(
        "   -> redirect to {}",
        redirect.authorize_url.host_str().unwrap_or("?")
    );
    // The host sets `redirect.browser_binding` as a cookie; the provider sends the user back
    // to the redirect URI (GET /sso/callback/{provider}) with this query string.
    let callback = idp.authorize(redirect.authorize_url.as_str(), account)?;
    let route = CallbackRoute::new(provider.clone());
    Ok(broker
        .complete_login(&route, &callback, redirect.browser_binding.secret())
        .await?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // An in-process Google; in production the broker uses its default reqwest transport.
    let idp = FakeIdp::google();
    idp.register_client("1234.apps.googleusercontent.com", "GOCSPX-demo-secret");
    idp.add_user(
        FakeUser::new("108234")
            .email("ana@acme.example")
            .email_verified(true)
            .name("Ana Agent")
            .hosted_domain("acme.example"),
    );
    idp.add_user(
        FakeUser::new("207771")
            .email("ben@acme.example")
            .email_verified(true)
            .name("Ben Agent")
            .hosted_domain("acme.example"),
    );

    let broker = Broker::builder()
        .http_client(idp.clone())
        .public_base_url("https://cx.example.com")
        .build()?;
    let acme = TenantId::new("acme")?;
    let google = ProviderId::new("google")?;

    println!("1. Tenant admin configures Google SSO");
    println!("   status before: {:?}", broker.sso_status(&acme).await?);
    println!(
        "   redirect URI to register at Google: {}",
        broker.redirect_uri(&acme, &google)
    );
    let config = ProviderConfig::google(
        google.clone(),
        "1234.apps.googleusercontent.com",
        ClientSecret::new("GOCSPX-demo-secret"),
    )
    .with_allowed_hosted_domains(["acme.example"])?;
    println!("   config (secret redacted): {config:?}");
    let report = broker.configure_provider(&acme, config).await?;
    println!(
        "   saved; ready: {} (check: {:?})",
        report.is_ready(),
        report.check
    );
    println!("   status after: {:?}", broker.sso_status(&acme).await?);

    println!("2. Ana binds her Google account from Edit Profile > Security Setting");
    let ana = UserId::new("ana")?;
    let out = browser_round_trip(
        &broker,
        &idp,
        &acme,
        &google,
        LoginIntent::Link { user: ana.clone() },
        "108234",
    )
    .await?;
    if let LoginOutcome::Linked { binding, .. } = &out {
        println!(
            "   linked {}#{} to {}",
            binding.issuer, binding.subject, binding.user
        );
    }

    println!("3. Ana signs in with Google");
    let out =
        browser_round_trip(&broker, &idp, &acme, &google, LoginIntent::SignIn, "108234").await?;
    if let LoginOutcome::SignedIn {
        user,
        session,
        return_to,
        ..
    } = &out
    {
        println!(
            "   signed in as {user}, session via {:?}, go to {return_to}",
            session.method
        );
        println!(
            "   session check: {:?}",
            broker.check_session(session).await?
        );
    }

    println!("4. Ben signs in with Google before binding: link once");
    let out =
        browser_round_trip(&broker, &idp, &acme, &google, LoginIntent::SignIn, "207771").await?;
    let LoginOutcome::LinkRequired {
        ticket, identity, ..
    } = out
    else {
        return Err("expected LinkRequired".into());
    };
    println!(
        "   link required for {:?}; ticket {ticket:?}",
        identity.email
    );
    // The host asks Ben for his password, checks it, then redeems the ticket.
    let redeemed = broker
        .redeem_link_ticket(&acme, &ticket, &UserId::new("ben")?)
        .await?;
    println!(
        "   linked to {}; signed in via {:?}",
        redeemed.binding.user, redeemed.session.method
    );
    let out =
        browser_round_trip(&broker, &idp, &acme, &google, LoginIntent::SignIn, "207771").await?;
    println!(
        "   next sign-in: {}",
        match out {
            LoginOutcome::SignedIn { user, .. } => format!("signed in as {user}"),
            other => format!("{other:?}"),
        }
    );

    println!("5. Ana removes her binding");
    let bindings = broker.list_bindings(&acme, &ana).await?;
    println!("   bindings before: {}", bindings.len());
    for b in &bindings {
        broker.unbind(&acme, &ana, &b.id()).await?;
    }
    println!(
        "   bindings after: {}",
        broker.list_bindings(&acme, &ana).await?.len()
    );
    let out =
        browser_round_trip(&broker, &idp, &acme, &google, LoginIntent::SignIn, "108234").await?;
    println!(
        "   signing in again: {}",
        match out {
            LoginOutcome::LinkRequired { .. } => "link required".to_owned(),
            other => format!("{other:?}"),
        }
    );
    println!("done");
    Ok(())
}
