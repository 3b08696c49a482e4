//! The whole story in-process, on the defaults (MemoryStore) and the FakeIdp:
//! configure a tenant's Google application, bind an account from settings, sign in, link on
//! first login, unbind.
//!
//! Run with `cargo run --example quickstart`.
//!
//! `cargo run --example quickstart -- --sqlite PATH` runs it on SQLite instead (`SqlStore`,
//! the database at PATH, its encryption key beside it at `PATH.key`), and keeps the bindings:
//! a second run against the same file finds them, and Ana and Ben are signed in straight away.
//! Delete both files to start over.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cx_sso::store::SqlStore;
use cx_sso::testing::{FakeIdp, FakeUser};
use cx_sso::{
    Broker, CallbackRoute, ClientSecret, LoginIntent, LoginOptions, LoginOutcome, ProviderConfig,
    ProviderId, TenantId, UserId,
};
use cx_sso::{EncryptionKey, Store};

/// Where the quickstart keeps its records.
pub enum Storage {
    /// The default `MemoryStore`: everything is gone when the process ends.
    Memory,
    /// `SqlStore` on the SQLite database at this path, which outlives the process.
    Sqlite(PathBuf),
}

impl Storage {
    /// `[]` or `["--sqlite", PATH]`, the arguments after the program name.
    pub fn from_args(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        match (args.next(), args.next(), args.next()) {
            (None, _, _) => Ok(Self::Memory),
            (Some(flag), Some(path), None) if flag == "--sqlite" => {
                Ok(Self::Sqlite(PathBuf::from(path)))
            }
            _ => Err("usage: cargo run --example quickstart [-- --sqlite PATH]".to_owned()),
        }
    }
}

/// Plays the browser: begin the login, consent at the provider, come back to the callback.
async fn browser_round_trip(
    out: &mut impl Write,
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
    writeln!(
        out,
        "   -> redirect to {}",
        redirect.authorize_url.host_str().unwrap_or("?")
    )?;
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
    let storage = Storage::from_args(std::env::args().skip(1))?;
    run(&storage, &mut std::io::stdout().lock()).await
}

/// The quickstart, printed to `out`.
pub async fn run(
    storage: &Storage,
    out: &mut impl Write,
) -> Result<(), Box<dyn std::error::Error>> {
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

    let mut builder = Broker::builder()
        .http_client(idp.clone())
        .public_base_url("https://cx.example.com");
    let mut sql = None;
    if let Storage::Sqlite(path) = storage {
        // Storage: SQLite. `migrate` creates the schema on the first run and does nothing after.
        let store = Arc::new(SqlStore::sqlite(path).await?);
        store.migrate().await?;
        writeln!(out, "Store: SQLite at {}", path.display())?;
        // The client secret is sealed in the database: the next run needs the same key.
        builder = builder
            .shared_store(store.clone() as Arc<dyn Store>)
            .encryption_key(encryption_key(path)?);
        sql = Some(store);
    }
    let broker = builder.build()?;
    let acme = TenantId::new("acme")?;
    let google = ProviderId::new("google")?;

    writeln!(out, "1. Tenant admin configures Google SSO")?;
    writeln!(
        out,
        "   status before: {:?}",
        broker.sso_status(&acme).await?
    )?;
    writeln!(
        out,
        "   redirect URI to register at Google: {}",
        broker.redirect_uri(&acme, &google)
    )?;
    let config = ProviderConfig::google(
        google.clone(),
        "1234.apps.googleusercontent.com",
        ClientSecret::new("GOCSPX-demo-secret"),
    )
    .with_allowed_hosted_domains(["acme.example"])?;
    writeln!(out, "   config (secret redacted): {config:?}")?;
    let report = broker.configure_provider(&acme, config).await?;
    writeln!(
        out,
        "   saved; ready: {} (check: {:?})",
        report.is_ready(),
        report.check
    )?;
    writeln!(
        out,
        "   status after: {:?}",
        broker.sso_status(&acme).await?
    )?;

    writeln!(
        out,
        "2. Ana binds her Google account from Edit Profile > Security Setting"
    )?;
    let ana = UserId::new("ana")?;
    let earlier = broker.list_bindings(&acme, &ana).await?;
    if let Some(binding) = earlier.first() {
        // Only on a database that outlived an earlier run.
        writeln!(
            out,
            "   found from an earlier run: {}#{} bound to {}",
            binding.issuer, binding.subject, binding.user
        )?;
    } else {
        let outcome = browser_round_trip(
            out,
            &broker,
            &idp,
            &acme,
            &google,
            LoginIntent::Link { user: ana.clone() },
            "108234",
        )
        .await?;
        if let LoginOutcome::Linked { binding, .. } = &outcome {
            writeln!(
                out,
                "   linked {}#{} to {}",
                binding.issuer, binding.subject, binding.user
            )?;
        }
    }

    writeln!(out, "3. Ana signs in with Google")?;
    let outcome = browser_round_trip(
        out,
        &broker,
        &idp,
        &acme,
        &google,
        LoginIntent::SignIn,
        "108234",
    )
    .await?;
    if let LoginOutcome::SignedIn {
        user,
        session,
        return_to,
        ..
    } = &outcome
    {
        writeln!(
            out,
            "   signed in as {user}, session via {:?}, go to {return_to}",
            session.method
        )?;
        writeln!(
            out,
            "   session check: {:?}",
            broker.check_session(session).await?
        )?;
    }

    writeln!(out, "4. Ben signs in with Google before binding: link once")?;
    let outcome = browser_round_trip(
        out,
        &broker,
        &idp,
        &acme,
        &google,
        LoginIntent::SignIn,
        "207771",
    )
    .await?;
    match outcome {
        LoginOutcome::LinkRequired {
            ticket, identity, ..
        } => {
            writeln!(
                out,
                "   link required for {:?}; ticket {ticket:?}",
                identity.email
            )?;
            // The host asks Ben for his password, checks it, then redeems the ticket.
            let redeemed = broker
                .redeem_link_ticket(&acme, &ticket, &UserId::new("ben")?)
                .await?;
            writeln!(
                out,
                "   linked to {}; signed in via {:?}",
                redeemed.binding.user, redeemed.session.method
            )?;
            let outcome = browser_round_trip(
                out,
                &broker,
                &idp,
                &acme,
                &google,
                LoginIntent::SignIn,
                "207771",
            )
            .await?;
            writeln!(
                out,
                "   next sign-in: {}",
                match outcome {
                    LoginOutcome::SignedIn { user, .. } => format!("signed in as {user}"),
                    other => format!("{other:?}"),
                }
            )?;
        }
        // Only on a database that outlived an earlier run: Ben linked then.
        LoginOutcome::SignedIn { user, .. } => {
            writeln!(
                out,
                "   bound in an earlier run: signed in as {user} straight away"
            )?;
        }
        other => return Err(format!("expected LinkRequired, got {other:?}").into()),
    }

    if let Some(store) = sql {
        writeln!(
            out,
            "5. Bindings kept for the next run (delete the database and its .key to start over)"
        )?;
        store.close().await;
        writeln!(out, "done")?;
        return Ok(());
    }

    writeln!(out, "5. Ana removes her binding")?;
    let bindings = broker.list_bindings(&acme, &ana).await?;
    writeln!(out, "   bindings before: {}", bindings.len())?;
    for b in &bindings {
        broker.unbind(&acme, &ana, &b.id()).await?;
    }
    writeln!(
        out,
        "   bindings after: {}",
        broker.list_bindings(&acme, &ana).await?.len()
    )?;
    let outcome = browser_round_trip(
        out,
        &broker,
        &idp,
        &acme,
        &google,
        LoginIntent::SignIn,
        "108234",
    )
    .await?;
    writeln!(
        out,
        "   signing in again: {}",
        match outcome {
            LoginOutcome::LinkRequired { .. } => "link required".to_owned(),
            other => format!("{other:?}"),
        }
    )?;
    writeln!(out, "done")?;
    Ok(())
}

/// The key that seals the secrets in the database (here the Google client secret), read from
/// `<database>.key`, or made and written there (owner-only) on the first run. Beside the
/// database for the quickstart, as in the demo; a production host keeps it in its secret
/// manager.
fn encryption_key(database: &Path) -> Result<EncryptionKey, Box<dyn std::error::Error>> {
    use base64::Engine as _;
    let mut path = database.as_os_str().to_owned();
    path.push(".key");
    let path = PathBuf::from(path);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(EncryptionKey::from_base64(&text)?);
    }
    let text = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(&path)?.write_all(text.as_bytes())?;
    Ok(EncryptionKey::from_base64(&text)?)
}
