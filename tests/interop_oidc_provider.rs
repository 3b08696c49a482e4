//! Interop with a real, independent OpenID provider: the npm package `oidc-provider` (OpenID
//! Certified), configured by `tests/interop/provider.mjs` and started on loopback by each test.
//! The broker talks to it through its default transport (`ReqwestHttpClient`) end to end, and
//! the test plays the browser through the provider's own login and consent pages.
//!
//! Needs Node.js (20.19 or later) and the provider installed with
//! `npm ci --prefix tests/interop` (`.ci/run` does both). Without them the tests print why and
//! pass, except under `CI=true`, where they fail.
#![cfg(feature = "reqwest")]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use cx_sso::{
    Broker, CallbackRoute, CheckResult, ClientSecret, Clock, ConnectionError, ConnectionId,
    ConnectionStatus, Error, LoginIntent, LoginOptions, LoginOutcome, LoginRedirect,
    ProviderConfig, ProviderId, ProviderRevocation, SecretCheck, SsoStatus, TenantId, UserId,
};
use serde_json::Value;
use time::{Duration, OffsetDateTime};
use url::Url;

const CLIENT_ID: &str = "cx-sso-interop";
/// With characters RFC 6749 §2.3.1 has a client form-urlencode before Basic encoding (space,
/// `+`, `%`, `:`, `/`, `~`; secrets are printable ASCII), as generated secrets may hold them
/// (Entra's hold `~`).
const CLIENT_SECRET: &str = "interop secret+0c4f:9a/7e%~";
/// The host platform's public base URL. Nothing listens there: the test's browser stops at
/// the provider's redirect to the callback and hands its query to the broker.
const HOST: &str = "http://127.0.0.1:8080";
/// How long a provider access token lives (the package's default, one hour), less the
/// broker's refresh margin (5 minutes), plus a minute: moving the broker's clock this far
/// ahead makes the next `access_token` refresh.
const PAST_REFRESH_MARGIN: Duration = Duration::minutes(56);

// ---------------------------------------------------------------------------------------------
// The provider process

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// Why the provider cannot run here, if it cannot.
fn missing_prerequisite() -> Option<String> {
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {}
        Ok(out) => return Some(format!("`node --version` failed: {}", out.status)),
        Err(e) => return Some(format!("Node.js is not installed (`node`: {e})")),
    }
    if !interop_dir()
        .join("node_modules/oidc-provider/package.json")
        .is_file()
    {
        return Some(
            "the provider is not installed: run `npm ci --prefix tests/interop` first".into(),
        );
    }
    None
}

/// A running `tests/interop/provider.mjs`, killed on drop.
struct OidcProvider {
    child: Child,
    issuer: String,
    /// What it printed besides the ready line, shown when a test fails.
    output: Arc<Mutex<String>>,
    http: reqwest::Client,
}

impl OidcProvider {
    /// Starts the provider for a client whose redirect URI is `redirect_uri`. `None` when the
    /// prerequisites are missing outside CI (the reason is printed); a panic under CI.
    fn start(redirect_uri: &str) -> Option<Self> {
        if let Some(reason) = missing_prerequisite() {
            if std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false")) {
                panic!("the interop test cannot run under CI: {reason}");
            }
            // Straight to stderr: libtest would hide an `eprintln!` of a passing test.
            let _ = writeln!(std::io::stderr(), "interop test skipped: {reason}");
            return None;
        }
        let mut child = Command::new("node")
            .arg(interop_dir().join("provider.mjs"))
            .current_dir(interop_dir())
            .env("INTEROP_CLIENT_ID", CLIENT_ID)
            .env("INTEROP_CLIENT_SECRET", CLIENT_SECRET)
            .env("INTEROP_REDIRECT_URI", redirect_uri)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn node tests/interop/provider.mjs");
        let output = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("stderr piped");
        let log = output.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                log.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        // The first JSON line on stdout says where it listens; the package logs the rest.
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = mpsc::channel();
        let log = output.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let ready: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
                match (ready["issuer"].as_str(), tx.take()) {
                    (Some(issuer), Some(tx)) => {
                        let _ = tx.send(issuer.to_owned());
                    }
                    (_, kept) => {
                        tx = kept;
                        let mut log = log.lock().unwrap();
                        log.push_str(&line);
                        log.push('\n');
                    }
                }
            }
        });
        let Ok(issuer) = rx.recv_timeout(std::time::Duration::from_secs(30)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the provider did not start; its output:\n{}",
                output.lock().unwrap()
            );
        };
        Some(Self {
            issuer,
            child,
            output,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// A test-only endpoint of provider.mjs.
    async fn admin(&self, method: reqwest::Method, path: &str) -> Value {
        let response = self
            .http
            .request(method, self.url(path))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{path}: {response:?}");
        serde_json::from_slice(&response.bytes().await.unwrap()).unwrap()
    }

    /// How many requests the provider received on a route, such as `GET /jwks`.
    async fn requests(&self, route: &str) -> u64 {
        self.admin(reqwest::Method::GET, "/__test/stats").await[route]
            .as_u64()
            .unwrap_or(0)
    }

    /// Every refresh token the provider issued, in order, with its state there
    /// (`active`, `consumed`, `gone`).
    async fn refresh_tokens(&self) -> Vec<(String, String)> {
        self.admin(reqwest::Method::GET, "/__test/refresh-tokens")
            .await
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["token"].as_str().unwrap().to_owned(),
                    t["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn refresh_token_states(tokens: &[(String, String)]) -> Vec<&str> {
        tokens.iter().map(|(_, s)| s.as_str()).collect()
    }

    /// A request to the provider's token endpoint as the client, by the test itself (not the
    /// broker): the status and the JSON answer.
    async fn token_request(&self, form: &[(&str, &str)]) -> (u16, Value) {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let response = self
            .http
            .post(self.url("/token"))
            .header("authorization", basic_authorization())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let json = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap_or(Value::Null);
        (status, json)
    }

    /// The status of the provider's userinfo endpoint for an access token.
    async fn userinfo_status(&self, access_token: &str) -> u16 {
        self.http
            .get(self.url("/me"))
            .bearer_auth(access_token)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

/// The client's `Authorization` header: id and secret form-urlencoded, then Basic-encoded
/// (RFC 6749 §2.3.1).
fn basic_authorization() -> String {
    use base64::Engine;
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(CLIENT_ID), enc(CLIENT_SECRET));
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- oidc-provider output ---\n{}",
                self.output.lock().unwrap()
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The browser

/// A form on one of the provider's pages.
#[derive(Debug)]
struct Form {
    action: String,
    /// `(name, type, value)` of each `<input>`.
    inputs: Vec<(String, String, String)>,
}

fn unescape_html(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    let len = tag[start..].find('"')?;
    Some(unescape_html(&tag[start..start + len]))
}

impl Form {
    /// The first form of an HTML page (the provider's pages have one).
    fn parse(html: &str) -> Option<Self> {
        let start = html.find("<form")?;
        let end = start + html[start..].find("</form>")?;
        let form = &html[start..end];
        let open_tag = &form[..form.find('>')?];
        let inputs = form
            .match_indices("<input")
            .filter_map(|(i, _)| {
                let tag = &form[i..i + form[i..].find('>')?];
                Some((
                    attribute(tag, "name")?,
                    attribute(tag, "type").unwrap_or_else(|| "text".into()),
                    attribute(tag, "value").unwrap_or_default(),
                ))
            })
            .collect();
        Some(Self {
            action: attribute(open_tag, "action")?,
            inputs,
        })
    }
}

/// A page the browser saw at the provider: the form's `prompt` (`login` or `consent`) and
/// the page's text.
#[derive(Debug)]
struct Page {
    prompt: String,
    html: String,
}

/// A browser with its own cookie jar, driven through the provider's pages.
struct Browser {
    http: reqwest::Client,
    pages: Vec<Page>,
}

impl Browser {
    fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            pages: Vec::new(),
        }
    }

    /// Opens `start`, follows redirects and fills in the provider's forms as `account` (any
    /// password) until the provider redirects to `redirect_uri`; returns that redirect.
    async fn visit(&mut self, start: &Url, redirect_uri: &str, account: &str) -> Url {
        let mut current = start.clone();
        let mut request = self.http.get(current.clone());
        for _ in 0..20 {
            let response = request.send().await.unwrap();
            let status = response.status();
            if status.is_redirection() {
                let location = response.headers()["location"].to_str().unwrap();
                let next = current.join(location).unwrap();
                if next.as_str().starts_with(redirect_uri) {
                    return next;
                }
                request = self.http.get(next.clone());
                current = next;
                continue;
            }
            let html = response.text().await.unwrap();
            assert!(
                status.is_success(),
                "the provider answered {status} at {current}:\n{html}"
            );
            let form = Form::parse(&html)
                .unwrap_or_else(|| panic!("no form on the provider's page {current}:\n{html}"));
            let mut fields = Vec::new();
            let mut prompt = String::new();
            for (name, kind, value) in &form.inputs {
                let value = match (name.as_str(), kind.as_str()) {
                    ("login", _) => account.to_owned(),
                    (_, "password") => "any password will do".to_owned(),
                    ("prompt", "hidden") => {
                        prompt = value.clone();
                        value.clone()
                    }
                    _ => value.clone(),
                };
                fields.push((name.clone(), value));
            }
            self.pages.push(Page { prompt, html });
            let body = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&fields)
                .finish();
            let action = current.join(&form.action).unwrap();
            request = self
                .http
                .post(action.clone())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body);
            current = action;
        }
        panic!("no redirect to {redirect_uri} after 20 steps, last at {current}");
    }

    fn prompts(&self) -> Vec<&str> {
        self.pages.iter().map(|p| p.prompt.as_str()).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The host platform

/// The system clock, moved ahead on demand: the provider keeps real time while the broker
/// sees its access tokens age.
#[derive(Debug, Default)]
struct AheadClock {
    seconds: AtomicI64,
}

impl AheadClock {
    fn advance(&self, by: Duration) {
        self.seconds.fetch_add(by.whole_seconds(), Ordering::SeqCst);
    }
}

impl Clock for AheadClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + Duration::seconds(self.seconds.load(Ordering::SeqCst))
    }
}

/// A host platform on the broker's defaults (reqwest transport, memory store), a tenant, and
/// the provider it signs in at.
struct Interop {
    provider: OidcProvider,
    broker: Broker,
    clock: Arc<AheadClock>,
    tenant: TenantId,
    app: ProviderId,
}

impl Interop {
    /// The provider started and the broker built, nothing configured yet. `None` when the
    /// test is skipped.
    fn start() -> Option<Self> {
        let clock = Arc::new(AheadClock::default());
        let broker = Broker::builder()
            .clock(clock.clone())
            .public_base_url(HOST)
            .build()
            .unwrap();
        let app = ProviderId::new("interop").unwrap();
        let tenant = TenantId::new("acme").unwrap();
        let provider = OidcProvider::start(&broker.redirect_uri(&tenant, &app))?;
        Some(Self {
            provider,
            broker,
            clock,
            tenant,
            app,
        })
    }

    /// Started, with the tenant's application configured and checked.
    async fn configured() -> Option<Self> {
        let w = Self::start()?;
        let check = w
            .broker
            .configure_provider(&w.tenant, w.config(CLIENT_SECRET))
            .await
            .unwrap();
        assert!(check.is_ready(), "{check:?}");
        Some(w)
    }

    fn config(&self, secret: &str) -> ProviderConfig {
        ProviderConfig::oidc(
            self.app.clone(),
            self.provider.issuer.clone(),
            CLIENT_ID,
            ClientSecret::new(secret),
        )
    }

    /// The callback route the host serves for this application.
    fn route(&self) -> CallbackRoute {
        CallbackRoute::new(self.app.clone()).with_tenant(self.tenant.clone())
    }

    fn redirect_uri(&self) -> String {
        self.broker.redirect_uri(&self.tenant, &self.app)
    }

    async fn begin(&self, intent: LoginIntent) -> LoginRedirect {
        self.broker
            .begin_login(&self.tenant, &self.app, intent, LoginOptions::new())
            .await
            .unwrap()
    }

    /// A whole login: begin, the browser at the provider as `account`, complete.
    async fn login(
        &self,
        browser: &mut Browser,
        intent: LoginIntent,
        account: &str,
    ) -> Result<LoginOutcome, Error> {
        let redirect = self.begin(intent).await;
        let callback = browser
            .visit(&redirect.authorize_url, &self.redirect_uri(), account)
            .await;
        self.broker
            .complete_login(
                &self.route(),
                callback.query().unwrap_or_default(),
                redirect.browser_binding.secret(),
            )
            .await
    }

    /// Connects the mailbox `connection` as `account` through a new browser.
    async fn connect(&self, connection: &ConnectionId, account: &str) -> Browser {
        let mut browser = Browser::new();
        let out = self
            .login(
                &mut browser,
                LoginIntent::Connect {
                    connection: connection.clone(),
                },
                account,
            )
            .await
            .unwrap();
        let LoginOutcome::Connected { mailbox, .. } = out else {
            panic!("expected Connected, got {out:?}");
        };
        assert_eq!(mailbox, format!("{account}@interop.example"));
        browser
    }

    async fn access_token(&self, connection: &ConnectionId) -> Result<String, Error> {
        self.broker
            .access_token(&self.tenant, connection)
            .await
            .map(|t| t.secret().to_owned())
    }

    async fn status(&self, connection: &ConnectionId) -> ConnectionStatus {
        self.broker
            .connection_info(&self.tenant, connection)
            .await
            .unwrap()
            .status
    }
}

fn query(url: &Url) -> std::collections::HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

// ---------------------------------------------------------------------------------------------
// The tests

#[tokio::test]
async fn discovery_and_the_secret_check_work_against_the_provider() {
    let Some(w) = Interop::start() else { return };
    let check = w
        .broker
        .configure_provider(&w.tenant, w.config(CLIENT_SECRET))
        .await
        .unwrap();
    assert_eq!(check.check.discovery, CheckResult::Ok);
    assert_eq!(check.check.secret, SecretCheck::Accepted);
    assert_eq!(
        w.broker.sso_status(&w.tenant).await.unwrap(),
        SsoStatus::Ready {
            providers: vec![w.app.clone()],
            problems: vec![]
        }
    );
    // The provider's endpoints come from its discovery document.
    let redirect = w.begin(LoginIntent::SignIn).await;
    assert_eq!(
        redirect.authorize_url.as_str().split('?').next(),
        Some(w.provider.url("/auth").as_str())
    );
    assert_eq!(
        w.provider
            .requests("GET /.well-known/openid-configuration")
            .await,
        1
    );

    // A wrong secret is told apart from a wrong issuer: discovery passes, the provider
    // refuses the client.
    let check = w
        .broker
        .configure_provider(&w.tenant, w.config("not-the-secret"))
        .await
        .unwrap();
    assert_eq!(check.check.discovery, CheckResult::Ok);
    assert_eq!(check.check.secret, SecretCheck::Rejected);
    assert!(!check.is_ready());
}

#[tokio::test]
async fn sign_in_through_the_providers_pages_links_then_signs_in() {
    let Some(w) = Interop::configured().await else {
        return;
    };
    let mut browser = Browser::new();
    let out = w
        .login(&mut browser, LoginIntent::SignIn, "alice")
        .await
        .unwrap();
    // The provider's own pages: its login form, then its consent form.
    assert_eq!(browser.prompts(), ["login", "consent"]);
    let LoginOutcome::LinkRequired {
        ticket, identity, ..
    } = out
    else {
        panic!("expected LinkRequired, got {out:?}");
    };
    assert_eq!(identity.issuer, w.provider.issuer);
    assert_eq!(identity.subject, "alice");
    // The package keeps scope claims out of the ID token when it also issues an access token
    // (its `conformIdTokenClaims`): these come from its userinfo endpoint.
    assert_eq!(identity.email.as_deref(), Some("alice@interop.example"));
    assert!(identity.email_verified);
    assert_eq!(identity.name.as_deref(), Some("Interop alice"));
    assert_eq!(w.provider.requests("GET /me").await, 1);

    let alice = UserId::new("alice").unwrap();
    let redeemed = w
        .broker
        .redeem_link_ticket(&w.tenant, &ticket, &alice)
        .await
        .unwrap();
    assert_eq!(redeemed.binding.user, alice);

    // Signing in again: the provider remembers the browser, the broker the binding.
    let out = w
        .login(&mut browser, LoginIntent::SignIn, "alice")
        .await
        .unwrap();
    match out {
        LoginOutcome::SignedIn { user, identity, .. } => {
            assert_eq!(user, alice);
            assert_eq!(identity.subject, "alice");
        }
        other => panic!("expected SignedIn, got {other:?}"),
    }
    assert_eq!(w.provider.requests("POST /token").await, 3); // secret check + two logins
}

#[tokio::test]
async fn the_provider_enforces_pkce_and_accepts_the_brokers_verifier() {
    let Some(w) = Interop::configured().await else {
        return;
    };
    // The provider refuses an authorization request without a code challenge: it is the
    // provider, not the broker, that requires PKCE of this client.
    let redirect = w.begin(LoginIntent::SignIn).await;
    let mut stripped = redirect.authorize_url.clone();
    let pairs: Vec<(String, String)> = redirect
        .authorize_url
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .collect();
    stripped.query_pairs_mut().clear().extend_pairs(&pairs);
    let mut browser = Browser::new();
    let callback = browser.visit(&stripped, &w.redirect_uri(), "alice").await;
    let q = query(&callback);
    assert_eq!(q["error"], "invalid_request", "{q:?}");
    assert!(q["error_description"].contains("PKCE"), "{q:?}");
    assert!(browser.pages.is_empty(), "refused before any page");
    let err = w
        .broker
        .complete_login(
            &w.route(),
            callback.query().unwrap(),
            redirect.browser_binding.secret(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::ProviderDenied { error, .. } if error == "invalid_request"),
        "{err:?}"
    );

    // The broker's request carries the challenge; its code is worthless without the verifier
    // the broker keeps: the provider refuses it without one and with another one...
    let redirect = w.begin(LoginIntent::SignIn).await;
    assert_eq!(
        query(&redirect.authorize_url)["code_challenge_method"],
        "S256"
    );
    let callback = browser
        .visit(&redirect.authorize_url, &w.redirect_uri(), "alice")
        .await;
    let code = query(&callback)["code"].clone();
    let redirect_uri = w.redirect_uri();
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
    ];
    let (status, body) = w.provider.token_request(&base).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let wrong = "a-verifier-that-is-not-the-brokers-one-0123456789";
    let (status, body) = w
        .provider
        .token_request(&[base.as_slice(), &[("code_verifier", wrong)]].concat())
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // ...and accepts it from the broker, with the right one.
    let out = w
        .broker
        .complete_login(
            &w.route(),
            callback.query().unwrap(),
            redirect.browser_binding.secret(),
        )
        .await
        .unwrap();
    assert!(matches!(out, LoginOutcome::LinkRequired { .. }), "{out:?}");
}

#[tokio::test]
async fn a_signing_key_rotation_at_the_provider_costs_one_key_set_refetch() {
    let Some(w) = Interop::configured().await else {
        return;
    };
    let mut browser = Browser::new();
    let out = w
        .login(&mut browser, LoginIntent::SignIn, "alice")
        .await
        .unwrap();
    let LoginOutcome::LinkRequired { ticket, .. } = out else {
        panic!("expected LinkRequired, got {out:?}");
    };
    let alice = UserId::new("alice").unwrap();
    w.broker
        .redeem_link_ticket(&w.tenant, &ticket, &alice)
        .await
        .unwrap();
    assert_eq!(w.provider.requests("GET /jwks").await, 1);

    // The provider signs with a new key from now on, published first in its key set.
    let rotated = w
        .provider
        .admin(reqwest::Method::POST, "/__test/rotate-signing-key")
        .await;
    let jwks = w.provider.admin(reqwest::Method::GET, "/jwks").await;
    assert_eq!(jwks["keys"][0]["kid"], rotated["kid"]);
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);

    // The next ID token has a kid the broker has not seen: it fetches the key set once...
    let before = w.provider.requests("GET /jwks").await; // the test's own look just now
    let out = w
        .login(&mut browser, LoginIntent::SignIn, "alice")
        .await
        .unwrap();
    assert!(
        matches!(&out, LoginOutcome::SignedIn { user, .. } if *user == alice),
        "{out:?}"
    );
    assert_eq!(w.provider.requests("GET /jwks").await, before + 1);
    // ...and not again for the logins after.
    let out = w
        .login(&mut Browser::new(), LoginIntent::SignIn, "alice")
        .await
        .unwrap();
    assert!(matches!(out, LoginOutcome::SignedIn { .. }), "{out:?}");
    assert_eq!(w.provider.requests("GET /jwks").await, before + 1);
}

#[tokio::test]
async fn a_mailbox_refresh_rotates_the_refresh_token_and_the_old_one_is_refused() {
    let Some(w) = Interop::configured().await else {
        return;
    };
    let mailbox = ConnectionId::new("support-mailbox").unwrap();
    let browser = w.connect(&mailbox, "support").await;
    // The provider understood the request for offline access, and asked for consent.
    assert_eq!(browser.prompts(), ["login", "consent"]);
    assert!(
        browser.pages[1].html.contains("offline access"),
        "{}",
        browser.pages[1].html
    );
    let first = w.access_token(&mailbox).await.unwrap();
    assert_eq!(w.provider.userinfo_status(&first).await, 200);
    let issued = w.provider.refresh_tokens().await;
    assert_eq!(OidcProvider::refresh_token_states(&issued), ["active"]);

    // Near expiry the broker refreshes; the provider rotates the refresh token.
    w.clock.advance(PAST_REFRESH_MARGIN);
    let second = w.access_token(&mailbox).await.unwrap();
    assert_ne!(second, first);
    assert_eq!(w.provider.userinfo_status(&second).await, 200);
    let issued = w.provider.refresh_tokens().await;
    assert_eq!(
        OidcProvider::refresh_token_states(&issued),
        ["consumed", "active"]
    );
    // The broker kept the rotated token: the next refresh presents it, and succeeds.
    w.clock.advance(PAST_REFRESH_MARGIN);
    let third = w.access_token(&mailbox).await.unwrap();
    assert_ne!(third, second);
    let issued = w.provider.refresh_tokens().await;
    assert_eq!(
        OidcProvider::refresh_token_states(&issued),
        ["consumed", "consumed", "active"]
    );
    assert!(matches!(
        w.status(&mailbox).await,
        ConnectionStatus::Connected { .. }
    ));

    // The first refresh token is refused now. (Its reuse makes the provider revoke the whole
    // grant, as reuse detection should.)
    let (status, body) = w
        .provider
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", issued[0].0.as_str()),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        OidcProvider::refresh_token_states(&w.provider.refresh_tokens().await),
        ["gone", "gone", "gone"]
    );
    // So the broker's next refresh is refused too: the connection needs consent again, once;
    // asking again does not go back to the provider.
    w.clock.advance(PAST_REFRESH_MARGIN);
    let err = w.access_token(&mailbox).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Connection(ConnectionError::NeedsReconsent { .. })
        ),
        "{err:?}"
    );
    let token_requests = w.provider.requests("POST /token").await;
    let err = w.access_token(&mailbox).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Connection(ConnectionError::NeedsReconsent { .. })
        ),
        "{err:?}"
    );
    assert_eq!(w.provider.requests("POST /token").await, token_requests);
    assert!(matches!(
        w.status(&mailbox).await,
        ConnectionStatus::NeedsReconsent { .. }
    ));
}

#[tokio::test]
async fn revoke_connection_revokes_the_grant_at_the_provider() {
    let Some(w) = Interop::configured().await else {
        return;
    };
    let mailbox = ConnectionId::new("support-mailbox").unwrap();
    w.connect(&mailbox, "support").await;
    let access = w.access_token(&mailbox).await.unwrap();
    assert_eq!(w.provider.userinfo_status(&access).await, 200);
    let issued = w.provider.refresh_tokens().await;
    assert_eq!(OidcProvider::refresh_token_states(&issued), ["active"]);

    let revocation = w
        .broker
        .revoke_connection(&w.tenant, &mailbox)
        .await
        .unwrap();
    assert_eq!(revocation, ProviderRevocation::Revoked);
    assert_eq!(w.provider.requests("POST /token/revocation").await, 1);

    // At the provider: the refresh token is gone, and with it the grant and its access token.
    assert_eq!(
        OidcProvider::refresh_token_states(&w.provider.refresh_tokens().await),
        ["gone"]
    );
    let (status, body) = w
        .provider
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", issued[0].0.as_str()),
        ])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(w.provider.userinfo_status(&access).await, 401);
    // At the broker: revoked, no token to hand out.
    let err = w.access_token(&mailbox).await.unwrap_err();
    assert!(
        matches!(err, Error::Connection(ConnectionError::Revoked)),
        "{err:?}"
    );
    assert_eq!(w.status(&mailbox).await, ConnectionStatus::Revoked);
}

#[tokio::test]
async fn consent_withdrawn_at_the_provider_makes_the_next_refresh_need_reconsent() {
    let Some(w) = Interop::configured().await else {
        return;
    };
    let mailbox = ConnectionId::new("support-mailbox").unwrap();
    w.connect(&mailbox, "support").await;
    w.access_token(&mailbox).await.unwrap();

    // The mailbox owner removes the application's access at the provider.
    let withdrawn = w
        .provider
        .admin(
            reqwest::Method::POST,
            "/__test/withdraw-consent?account=support",
        )
        .await;
    assert_eq!(withdrawn["revoked_grants"], 1);

    // The token in hand still looks valid to the broker; the refresh is refused.
    w.clock.advance(PAST_REFRESH_MARGIN);
    let err = w.access_token(&mailbox).await.unwrap_err();
    let Error::Connection(ConnectionError::NeedsReconsent { reason }) = err else {
        panic!("expected NeedsReconsent, got {err:?}");
    };
    assert!(reason.contains("invalid_grant"), "{reason}");
    assert_eq!(
        w.status(&mailbox).await,
        ConnectionStatus::NeedsReconsent { reason }
    );

    // Connecting again gives a working connection.
    w.connect(&mailbox, "support").await;
    let access = w.access_token(&mailbox).await.unwrap();
    assert_eq!(w.provider.userinfo_status(&access).await, 200);
}
