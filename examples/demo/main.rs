//! A small contact-center platform on cx-sso: every page the source documents describe, served
//! on http://127.0.0.1:8080 with a development OpenID provider on http://127.0.0.1:8081.
//!
//! ```text
//! cargo run --example demo --features axum,test-util,sqlite
//! ```
//!
//! Environment (all optional):
//! - `DEMO_DATABASE`: the SQLite database (default `cx-sso-demo.sqlite` in the temporary
//!   directory; its encryption key is kept beside it, `<database>.key`);
//! - `DEMO_PORT` (8080), `DEMO_PROVIDER_PORT` (8081);
//! - `DEMO_PROVIDER_SECRET`: the client secret of the development provider's client
//!   `acme-support` (default `dev-provider-secret`), to enter in Admin > SSO applications;
//! - `DEMO_CLOCK_CONTROL=1`: admins get an "advance the clock" button (to see a scheduled
//!   sign-in method switch take effect without waiting an hour);
//! - `GOOGLE_CLIENT_ID` + `GOOGLE_CLIENT_SECRET`: a Google application `google` is configured;
//! - `MICROSOFT_CLIENT_ID` + `MICROSOFT_CLIENT_SECRET` + `MICROSOFT_TENANT_ID`: an Office 365
//!   application `office365` is configured.
//!
//! The README's "Demo" section walks through the pages.

mod app;

fn env_port(name: &str, default: u16) -> u16 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn env_pair(id: &str, secret: &str) -> Option<(String, String)> {
    match (std::env::var(id), std::env::var(secret)) {
        (Ok(i), Ok(s)) if !i.is_empty() && !s.is_empty() => Some((i, s)),
        _ => None,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let mut config = app::DemoConfig::new();
    config.port = env_port("DEMO_PORT", 8080);
    config.provider_port = env_port("DEMO_PROVIDER_PORT", 8081);
    if let Ok(secret) = std::env::var("DEMO_PROVIDER_SECRET") {
        config.provider_client_secret = secret;
    }
    if let Some(path) = std::env::var_os("DEMO_DATABASE") {
        config.database = path.into();
    }
    config.clock_control = std::env::var("DEMO_CLOCK_CONTROL").is_ok_and(|v| v == "1");
    config.google = env_pair("GOOGLE_CLIENT_ID", "GOOGLE_CLIENT_SECRET");
    config.microsoft =
        env_pair("MICROSOFT_CLIENT_ID", "MICROSOFT_CLIENT_SECRET").map(|(id, secret)| {
            (
                id,
                secret,
                std::env::var("MICROSOFT_TENANT_ID").unwrap_or_default(),
            )
        });
    let demo = app::Demo::start(config).await?;
    println!();
    println!("  Acme Support (demo) is on   {}", demo.base_url());
    println!("  development provider on     {}", demo.provider_issuer());
    println!(
        "  data in                     {}",
        demo.database().display()
    );
    println!(
        "  sign in as alice@acme.example (admin) or ana@acme.example (agent), password `{}`",
        app::DEMO_PASSWORD
    );
    println!("  Ctrl-C to stop");
    println!();
    tokio::signal::ctrl_c().await?;
    Ok(())
}
