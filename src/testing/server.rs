//! [`FakeIdpServer`]: the [`FakeIdp`] served over HTTP on loopback, with a login page where
//! you pick a user (features `test-util` and `axum`).

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use ::axum::Router;
use ::axum::body::{Body, to_bytes};
use ::axum::extract::{Form, Request, State};
use ::axum::response::{Html, IntoResponse, Response};
use ::axum::routing::get;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use http::{HeaderValue, StatusCode};
use url::Url;

use super::{FakeIdp, FakeUser};
use crate::clock::Clock;
use crate::http::HttpClient;

/// The largest request body forwarded to the provider's endpoints.
const MAX_BODY: usize = 64 * 1024;

/// A development OpenID provider on `http://127.0.0.1:{port}`: a [`FakeIdp::oidc`] whose
/// discovery, JWKS, token, userinfo and revocation endpoints answer real HTTP requests, and
/// whose authorization endpoint is a page listing the users added with
/// [`add_user`](Self::add_user): pick one to sign in as them, or cancel (`access_denied`).
///
/// A relying party reaches it through any transport, such as
/// [`ReqwestHttpClient`](crate::ReqwestHttpClient), with
/// [`ProviderConfig::oidc`](crate::ProviderConfig::oidc) and [`issuer`](Self::issuer): the
/// whole login crosses real sockets, as it would with Google. For local development and browser
/// tests only: it binds loopback alone, redirects only to loopback `http` URIs, and keeps
/// everything in memory.
///
/// ```no_run
/// use cx_sso::testing::{FakeIdpServer, FakeUser};
///
/// # #[tokio::main] async fn main() -> std::io::Result<()> {
/// let server = FakeIdpServer::start(0).await?;
/// server.idp().register_client("dev-client", "dev-secret");
/// server.add_user(FakeUser::new("248289761001").email("ana@example.test").name("Ana"));
/// println!("issuer: {}", server.issuer());
/// # Ok(()) }
/// ```
pub struct FakeIdpServer {
    address: SocketAddr,
    idp: FakeIdp,
    users: Arc<Mutex<Vec<Listed>>>,
    task: tokio::task::JoinHandle<()>,
}

/// A user as the login page lists them.
#[derive(Debug, Clone)]
struct Listed {
    subject: String,
    label: String,
}

#[derive(Clone)]
struct Shared {
    idp: FakeIdp,
    issuer: String,
    users: Arc<Mutex<Vec<Listed>>>,
}

impl fmt::Debug for FakeIdpServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeIdpServer")
            .field("address", &self.address)
            .field("idp", &self.idp)
            .finish_non_exhaustive()
    }
}

impl FakeIdpServer {
    /// Binds `127.0.0.1:port` (`0`: any free port) and serves a provider whose issuer is
    /// `http://127.0.0.1:{port}`, on a task of the current tokio runtime (stopped when the
    /// server is dropped). Time is the system clock.
    ///
    /// # Errors
    ///
    /// When the port cannot be bound.
    pub async fn start(port: u16) -> std::io::Result<Self> {
        Self::start_inner(port, None).await
    }

    /// As [`start`](Self::start), with the provider's time read from `clock` (codes, `iat`,
    /// `exp`), such as the clock the relying party's broker uses.
    ///
    /// # Errors
    ///
    /// When the port cannot be bound.
    pub async fn start_with_clock(port: u16, clock: Arc<dyn Clock>) -> std::io::Result<Self> {
        Self::start_inner(port, Some(clock)).await
    }

    async fn start_inner(port: u16, clock: Option<Arc<dyn Clock>>) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let address = listener.local_addr()?;
        let issuer = format!("http://{address}");
        let mut idp = FakeIdp::oidc(&issuer);
        if let Some(clock) = clock {
            idp = idp.with_clock(clock);
        }
        let users = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            idp: idp.clone(),
            issuer,
            users: users.clone(),
        };
        let router = Router::new()
            .route("/authorize", get(login_page).post(login_answer))
            .fallback(endpoint)
            .with_state(shared);
        let task = tokio::spawn(async move {
            // Ends only when the listener fails; the task is aborted on drop.
            let _ = ::axum::serve(listener, router).await;
        });
        Ok(Self {
            address,
            idp,
            users,
            task,
        })
    }

    /// The issuer, `http://127.0.0.1:{port}`: give it to
    /// [`ProviderConfig::oidc`](crate::ProviderConfig::oidc).
    pub fn issuer(&self) -> String {
        format!("http://{}", self.address)
    }

    /// The address it listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The provider, to register clients, rotate keys, misbehave...
    pub fn idp(&self) -> &FakeIdp {
        &self.idp
    }

    /// Adds a user to the provider and to the login page, shown by name and email when the
    /// user has them.
    pub fn add_user(&self, user: FakeUser) {
        let listed = Listed {
            subject: user.subject().to_owned(),
            label: user.label(),
        };
        self.idp.add_user(user);
        let mut users = lock(&self.users);
        users.retain(|u| u.subject != listed.subject);
        users.push(listed);
    }
}

impl Drop for FakeIdpServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(users: &Mutex<Vec<Listed>>) -> MutexGuard<'_, Vec<Listed>> {
    users.lock().unwrap_or_else(|e| e.into_inner())
}

/// Escapes text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f3f4f6;color:#111827;\
margin:0}main{max-width:28rem;margin:4rem auto;background:#fff;border-radius:12px;\
padding:2rem;box-shadow:0 1px 3px rgba(0,0,0,.1)}h1{font-size:1.4rem;margin:0 0 .5rem}\
p{color:#4b5563}button{display:block;width:100%;text-align:left;padding:.75rem 1rem;\
margin:.5rem 0;border:1px solid #d1d5db;border-radius:8px;background:#fff;font-size:1rem;\
cursor:pointer}button:hover{background:#eef2ff}button.cancel{text-align:center;\
color:#b91c1c}small{color:#6b7280}code{background:#f3f4f6;padding:0 .25rem}";

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        title = escape(title),
    );
    let mut response = (status, Html(html)).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /authorize`: the user picker.
async fn login_page(State(shared): State<Shared>, request: Request) -> Response {
    let query = request.uri().query().unwrap_or("").to_owned();
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    let client = params.get("client_id").map(String::as_str).unwrap_or("?");
    let scope = params.get("scope").map(String::as_str).unwrap_or("");
    let hidden = format!(
        "<input type=\"hidden\" name=\"request\" value=\"{}\">",
        escape(&query)
    );
    let mut body = format!(
        "<h1>Development provider</h1><p>Application <code>{}</code> asks you to sign in \
         (scope <code>{}</code>). Choose an account:</p>",
        escape(client),
        escape(scope)
    );
    let users = lock(&shared.users).clone();
    if users.is_empty() {
        body.push_str("<p>No accounts: add users to the development provider.</p>");
    }
    for user in users {
        body.push_str(&format!(
            "<form method=\"post\">{hidden}<input type=\"hidden\" name=\"subject\" value=\"{}\">\
             <button type=\"submit\">{}<br><small>account id {}</small></button></form>",
            escape(&user.subject),
            escape(&user.label),
            escape(&user.subject),
        ));
    }
    body.push_str(&format!(
        "<form method=\"post\">{hidden}<input type=\"hidden\" name=\"deny\" value=\"1\">\
         <button class=\"cancel\" type=\"submit\">Cancel</button></form>"
    ));
    page(StatusCode::OK, "Development provider: sign in", &body)
}

/// What the picker posts.
#[derive(serde::Deserialize)]
struct Answer {
    request: String,
    #[serde(default)]
    subject: Option<String>,
    #[serde(default)]
    deny: Option<String>,
}

/// `POST /authorize`: sign in as the chosen user (or refuse), and redirect back.
async fn login_answer(State(shared): State<Shared>, Form(answer): Form<Answer>) -> Response {
    let authorize_url = format!("{}/authorize?{}", shared.issuer, answer.request);
    let redirect_uri = url::form_urlencoded::parse(answer.request.as_bytes())
        .find(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.into_owned());
    let Some(mut redirect) = redirect_uri
        .as_deref()
        .and_then(|u| Url::parse(u).ok())
        .filter(is_loopback_http)
    else {
        return page(
            StatusCode::BAD_REQUEST,
            "Refused",
            "<h1>Refused</h1><p>The development provider only redirects to <code>http</code> \
             addresses on this machine.</p>",
        );
    };
    let result = match (&answer.subject, &answer.deny) {
        (_, Some(_)) => shared.idp.deny(&authorize_url, "access_denied"),
        (Some(subject), None) => shared.idp.authorize(&authorize_url, subject),
        (None, None) => {
            return page(
                StatusCode::BAD_REQUEST,
                "Refused",
                "<h1>Refused</h1><p>Choose an account.</p>",
            );
        }
    };
    match result {
        Ok(callback_query) => {
            let query = match redirect.query() {
                Some(existing) if !existing.is_empty() => format!("{existing}&{callback_query}"),
                _ => callback_query,
            };
            redirect.set_query(Some(&query));
            let mut response = StatusCode::SEE_OTHER.into_response();
            if let Ok(location) = HeaderValue::from_str(redirect.as_str()) {
                response.headers_mut().insert(LOCATION, location);
            }
            response
        }
        Err(e) => page(
            StatusCode::BAD_REQUEST,
            "Refused",
            &format!(
                "<h1>Refused</h1><p>The development provider refused the request: {}</p>",
                escape(&e.to_string())
            ),
        ),
    }
}

fn is_loopback_http(url: &Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
}

/// Every other path: the provider's HTTP endpoints, answered by the [`FakeIdp`].
async fn endpoint(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = to_bytes(body, MAX_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut forwarded = http::Request::builder()
        .method(parts.method)
        .uri(format!("{}{path_and_query}", shared.issuer));
    for (name, value) in &parts.headers {
        forwarded = forwarded.header(name, value);
    }
    let Ok(forwarded) = forwarded.body(body.to_vec()) else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    match shared.idp.call(forwarded).await {
        Ok(answer) => {
            let (parts, body) = answer.into_parts();
            let mut response = Response::from_parts(parts, Body::from(body));
            if !response.headers().contains_key(CONTENT_TYPE) {
                response
                    .headers_mut()
                    .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            }
            response
        }
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}
