//! The demo platform: configuration, shared state, routes, and the helpers every page uses.
//!
//! Also compiled into `tests/browser.rs`, which starts it in-process.

pub mod clock;
mod layout;
mod pages;
mod sessions;
mod sso;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use cx_sso::axum::{BindingCookie, SsoRoutes};
use cx_sso::store::SqlStore;
use cx_sso::testing::{FakeIdpServer, FakeUser};
use cx_sso::{
    Broker, ClientSecret, EncryptionKey, EntraTenancy, HttpClient, ProviderConfig, ProviderId,
    ReqwestHttpClient, SessionStatus, TenantId,
};
use http::header::SET_COOKIE;
use http::{HeaderMap, StatusCode};

pub use users::DEMO_PASSWORD;

use clock::DemoClock;
use layout::{Shell, Viewer};
use sessions::{Flash, Sessions, SignedIn};
use users::{User, Users};

/// How the demo runs.
pub struct DemoConfig {
    /// The platform's port on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// The development provider's port on 127.0.0.1 (0: any free port).
    pub provider_port: u16,
    /// The client the development provider knows the platform as.
    pub provider_client_id: String,
    pub provider_client_secret: String,
    /// Whether admins may advance the demo clock.
    pub clock_control: bool,
    /// Google client id and secret: configure a `google` application at start.
    pub google: Option<(String, String)>,
    /// Microsoft client id, secret and Entra tenant id: configure `office365` at start.
    pub microsoft: Option<(String, String, String)>,
    /// The SQLite database; the encryption key of the secrets in it is kept beside it
    /// (`<database>.key`, created on first start).
    pub database: std::path::PathBuf,
    /// The transport to providers (default: reqwest).
    pub http: Option<Arc<dyn HttpClient>>,
}

impl DemoConfig {
    pub fn new() -> Self {
        Self {
            port: 8080,
            provider_port: 8081,
            provider_client_id: "acme-support".to_owned(),
            provider_client_secret: "dev-provider-secret".to_owned(),
            clock_control: false,
            google: None,
            microsoft: None,
            database: std::env::temp_dir().join("cx-sso-demo.sqlite"),
            http: None,
        }
    }
}

/// Everything the pages share.
#[derive(Clone)]
pub struct App(Arc<AppInner>);

pub struct AppInner {
    pub broker: Broker,
    pub tenant: TenantId,
    pub users: Arc<Users>,
    pub sessions: Sessions,
    pub clock: Arc<DemoClock>,
    pub base_url: String,
    pub provider_issuer: String,
    pub provider_client_id: String,
    pub clock_control: bool,
}

impl std::ops::Deref for App {
    type Target = AppInner;
    fn deref(&self) -> &AppInner {
        &self.0
    }
}

/// The running demo.
pub struct Demo {
    app: App,
    database: std::path::PathBuf,
    provider: FakeIdpServer,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Demo {
    /// Starts the development provider and the platform, each on its own task.
    pub async fn start(config: DemoConfig) -> Result<Self, Box<dyn std::error::Error>> {
        let clock = Arc::new(DemoClock::default());
        let provider = FakeIdpServer::start_with_clock(config.provider_port, clock.clone()).await?;
        provider
            .idp()
            .register_client(&config.provider_client_id, &config.provider_client_secret);
        for user in [
            FakeUser::new("100200301")
                .name("Alice Admin")
                .email("alice@acme.example"),
            FakeUser::new("100200302")
                .name("Ana Agent")
                .email("ana@acme.example"),
            FakeUser::new("100200303")
                .name("Bruno Agent")
                .email("bruno@acme.example"),
            FakeUser::new("100200390")
                .name("Acme Support mailbox")
                .email("support@acme.example"),
        ] {
            provider.add_user(user.email_verified(true));
        }

        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let tenant = TenantId::new("acme")?;
        let users = Arc::new(Users::demo(tenant.clone())?);
        let http = match config.http {
            Some(http) => http,
            None => Arc::new(ReqwestHttpClient::new()?),
        };
        // Storage: SQLite (for the in-memory store: `let store = MemoryStore::new();`).
        let store = SqlStore::sqlite(&config.database).await?;
        store.migrate().await?;
        let broker = Broker::builder()
            .store(store)
            .shared_http_client(http)
            .clock(clock.clone())
            .runtime(cx_sso::TokioRuntime::current()?)
            .user_directory(users.clone())
            .encryption_key(encryption_key(&config.database)?)
            .public_base_url(&base_url)
            .build()?;

        if let Some((id, secret)) = config.google {
            let google =
                ProviderConfig::google(ProviderId::new("google")?, id, ClientSecret::new(secret));
            broker.configure_provider(&tenant, google).await?;
        }
        if let Some((id, secret, entra_tenant)) = config.microsoft {
            match EntraTenancy::single(entra_tenant) {
                Ok(tenancy) => {
                    let office = ProviderConfig::microsoft(
                        ProviderId::new("office365")?,
                        tenancy,
                        id,
                        ClientSecret::new(secret),
                    );
                    broker.configure_provider(&tenant, office).await?;
                }
                Err(_) => tracing::warn!(
                    "MICROSOFT_TENANT_ID must be the Entra tenant id (a GUID): Office 365 not configured"
                ),
            }
        }

        let app = App(Arc::new(AppInner {
            broker: broker.clone(),
            tenant,
            users,
            sessions: Sessions::default(),
            clock,
            base_url: base_url.clone(),
            provider_issuer: provider.issuer(),
            provider_client_id: config.provider_client_id,
            clock_control: config.clock_control,
        }));
        let sso = SsoRoutes::new(broker, sso::Host(app.clone()))
            .cookie(BindingCookie::insecure_for_loopback_development())
            .into_router()?;
        let router = routes(app.clone()).merge(sso);
        let server = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).await {
                tracing::error!(error = %e, "the demo server stopped");
            }
        });
        tracing::info!(url = %base_url, provider = %provider.issuer(), "demo started");
        Ok(Self {
            app,
            database: config.database,
            provider,
            server,
        })
    }

    pub fn base_url(&self) -> &str {
        &self.app.base_url
    }

    pub fn database(&self) -> &std::path::Path {
        &self.database
    }

    pub fn provider_issuer(&self) -> String {
        self.provider.issuer()
    }

    /// The broker (the browser test reads connection tokens through it).
    #[allow(dead_code)]
    pub fn broker(&self) -> &Broker {
        &self.app.broker
    }

    #[allow(dead_code)]
    pub fn tenant(&self) -> &TenantId {
        &self.app.tenant
    }
}

/// The key that seals the secrets in the database (client secrets, mailbox tokens, visitor
/// keys), read from `<database>.key`, or made and written there (owner-only) on first start.
fn encryption_key(database: &std::path::Path) -> Result<EncryptionKey, Box<dyn std::error::Error>> {
    use base64::Engine as _;
    let mut path = database.as_os_str().to_owned();
    path.push(".key");
    let path = std::path::PathBuf::from(path);
    if let Ok(text) = std::fs::read_to_string(&path) {
        return Ok(EncryptionKey::from_base64(&text)?);
    }
    let text = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(&path)?, text.as_bytes())?;
    Ok(EncryptionKey::from_base64(&text)?)
}

fn routes(app: App) -> Router {
    Router::new()
        .route("/", get(pages::home::show))
        .route("/style.css", get(|| async { layout::style() }))
        .route(
            "/signin",
            get(pages::signin::show).post(pages::signin::submit),
        )
        .route("/signout", post(pages::signin::sign_out))
        .route("/link", get(pages::link::show).post(pages::link::submit))
        .route("/link/cancel", post(pages::link::cancel))
        .route("/profile/security", get(pages::security::show))
        .route("/profile/security/unbind", post(pages::security::unbind))
        .route(
            "/admin/sso",
            get(pages::admin_sso::show).post(pages::admin_sso::save),
        )
        .route("/admin/sso/{id}/test", post(pages::admin_sso::test))
        .route("/admin/sso/{id}/remove", post(pages::admin_sso::remove))
        .route(
            "/admin/auth",
            get(pages::admin_auth::show).post(pages::admin_auth::save),
        )
        .route("/admin/auth/cancel", post(pages::admin_auth::cancel))
        .route(
            "/admin/auth/privileged",
            post(pages::admin_auth::privileged),
        )
        .route(
            "/admin/email",
            get(pages::admin_email::show).post(pages::admin_email::save),
        )
        .route("/admin/email/{id}/revoke", post(pages::admin_email::revoke))
        .route(
            "/admin/chat",
            get(pages::admin_chat::show).post(pages::admin_chat::create),
        )
        .route("/admin/chat/{audience}/keys", post(pages::admin_chat::keys))
        .route(
            "/chat/{audience}",
            get(pages::chat::show).post(pages::chat::start),
        )
        .route("/admin/clock", post(pages::home::advance_clock))
        .with_state(app)
}

/// The signed-in user of a request.
pub struct Me {
    pub session: String,
    pub user: User,
    pub via: String,
}

impl App {
    pub fn now(&self) -> time::OffsetDateTime {
        use cx_sso::Clock;
        self.clock.now()
    }

    /// The signed-in user, or a redirect to the sign-in page. The session's grant is checked
    /// with cx-sso on every request: a sign-in method switch that took effect ends it.
    pub async fn me(&self, headers: &HeaderMap) -> Result<Me, Response> {
        let to_signin = || Redirect::to("/signin").into_response();
        let id = self.sessions.id(headers).ok_or_else(to_signin)?;
        let Some(signed_in) = self.sessions.get(&id).signed_in else {
            return Err(to_signin());
        };
        let ended = match self.broker.check_session(&signed_in.grant).await {
            Ok(SessionStatus::Active) => None,
            Ok(SessionStatus::Revoked { reason }) => Some(match reason {
                cx_sso::RevocationReason::MethodChanged { effective_at } => format!(
                    "You were signed out: your company's sign-in method changed at {}. \
                     Please sign in again.",
                    layout::fmt_time(effective_at)
                ),
                _ => "You were signed out: your company's sign-in method does not allow this \
                      session any more. Please sign in again."
                    .to_owned(),
            }),
            // Fail closed.
            Err(_) => Some("Your session could not be checked. Please sign in again.".to_owned()),
        };
        if let Some(message) = ended {
            self.sessions.update(Some(&id), |s| {
                s.signed_in = None;
                s.flash = Some(Flash::Error(message));
            });
            return Err(to_signin());
        }
        let user = self
            .users
            .get(&signed_in.user)
            .cloned()
            .ok_or_else(to_signin)?;
        Ok(Me {
            session: id,
            user,
            via: signed_in.via,
        })
    }

    /// The signed-in admin, or a redirect / a refusal.
    pub async fn admin(&self, headers: &HeaderMap) -> Result<Me, Response> {
        let me = self.me(headers).await?;
        if !me.user.admin {
            let shell = self.shell(Some(&me), "Not allowed", "");
            return Err(layout::page_with_status(
                StatusCode::FORBIDDEN,
                shell,
                maud::html! { div.card { p { "Only administrators may open this page." } } },
            ));
        }
        Ok(me)
    }

    /// The shell of a page for `me`, taking the session's flash message.
    pub fn shell<'a>(&self, me: Option<&'a Me>, title: &'a str, active: &'a str) -> Shell<'a> {
        Shell {
            title,
            viewer: me.map(|m| Viewer {
                name: &m.user.name,
                admin: m.user.admin,
                via: &m.via,
            }),
            flash: me.and_then(|m| self.sessions.take_flash(&m.session)),
            now: self.now(),
            clock_control: self.clock_control,
            active,
        }
    }

    /// Sets a flash message and redirects (post/redirect/get).
    pub fn redirect_with(&self, session: &str, flash: Flash, to: &str) -> Response {
        self.sessions
            .update(Some(session), |s| s.flash = Some(flash));
        Redirect::to(to).into_response()
    }

    /// Signs `signed_in` into a fresh session (a new id, against session fixation) and
    /// redirects to `to`.
    pub fn start_session(
        &self,
        old: Option<&str>,
        signed_in: SignedIn,
        flash: Option<Flash>,
        to: &str,
    ) -> Response {
        if let Some(old) = old {
            self.sessions.remove(old);
        }
        let (id, _) = self.sessions.update(None, |s| {
            s.signed_in = Some(signed_in);
            s.flash = flash;
        });
        let mut response = Redirect::to(to).into_response();
        if let Ok(v) = sessions::cookie(&id).parse() {
            response.headers_mut().append(SET_COOKIE, v);
        }
        response
    }

    /// The display name of an application.
    pub async fn provider_name(&self, id: &ProviderId) -> String {
        let configs = self
            .broker
            .list_providers(&self.tenant)
            .await
            .unwrap_or_default();
        configs
            .iter()
            .find(|c| c.id() == id)
            .map(|c| provider_label(c, &self.provider_issuer))
            .unwrap_or_else(|| id.to_string())
    }
}

/// How a page names an application: "Google", "Office 365", "Development provider", or its id.
pub fn provider_label(config: &ProviderConfig, dev_issuer: &str) -> String {
    match config.kind() {
        cx_sso::ProviderKind::Google { .. } => "Google".to_owned(),
        cx_sso::ProviderKind::Microsoft { .. } => "Office 365".to_owned(),
        cx_sso::ProviderKind::Oidc { issuer } if issuer.trim_end_matches('/') == dev_issuer => {
            "Development provider".to_owned()
        }
        _ => config.id().to_string(),
    }
}
