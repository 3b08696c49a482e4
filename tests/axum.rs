//! The axum routes (feature `axum`): the redirect and its cookie, the callback's headers, the
//! outcome handed to the host, and what a browser is shown when a login is refused.

mod common;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::response::{IntoResponse, Response};
use common::{CLIENT_SECRET, World, google_world, user};
use cx_sso::axum::{BindingCookie, LoginStart, Refusal, SsoHost, SsoRequest, SsoRoutes};
use cx_sso::testing::Misbehavior;
use cx_sso::{Broker, Error, LoginOutcome, TenantId};
use http::header::{CACHE_CONTROL, COOKIE, LOCATION, REFERRER_POLICY, SET_COOKIE};
use http::{Request, StatusCode};
use tower::ServiceExt;

/// A host that signs everyone into tenant `acme`; `?link=<user>` starts a binding instead.
/// It answers a completed login with a line describing the outcome, and records what it saw.
#[derive(Debug, Default)]
struct TestHost {
    requests: Mutex<Vec<String>>,
    outcomes: Mutex<Vec<String>>,
    failures: Mutex<Vec<(StatusCode, String)>>,
}

#[async_trait::async_trait]
impl SsoHost for TestHost {
    async fn start(&self, request: &SsoRequest) -> Result<LoginStart, Response> {
        let tenant = TenantId::new("acme").map_err(|_| StatusCode::NOT_FOUND.into_response())?;
        match request
            .parts
            .uri
            .query()
            .and_then(|q| q.strip_prefix("link="))
        {
            Some(u) => Ok(LoginStart::link(tenant, user(u))),
            None if request.parts.uri.query() == Some("signed-out") => {
                Err((StatusCode::UNAUTHORIZED, "sign in first").into_response())
            }
            None => Ok(LoginStart::sign_in(tenant)),
        }
    }

    async fn completed(&self, outcome: LoginOutcome, request: &SsoRequest) -> Response {
        // What a host might log: no cookie, code or state in it.
        self.requests.lock().unwrap().push(format!("{request:?}"));
        let line = match &outcome {
            LoginOutcome::SignedIn { user, .. } => format!("signed in as {user}"),
            LoginOutcome::LinkRequired { identity, .. } => {
                format!("link required for {}", identity.subject)
            }
            LoginOutcome::Linked { user, .. } => format!("linked to {user}"),
            other => format!("{other:?}"),
        };
        self.outcomes.lock().unwrap().push(line.clone());
        line.into_response()
    }

    async fn failed(&self, refusal: Refusal, error: &Error, _request: &SsoRequest) -> Response {
        self.failures
            .lock()
            .unwrap()
            .push((refusal.status(), error.to_string()));
        refusal.into_response()
    }
}

fn routes(broker: Broker, host: &Arc<TestHost>) -> Router {
    SsoRoutes::with_shared_host(broker, host.clone())
        .into_router()
        .unwrap()
}

async fn get(router: &Router, uri: &str, cookie: Option<&str>) -> Response {
    let mut request = Request::get(uri);
    if let Some(c) = cookie {
        request = request.header(COOKIE, c);
    }
    router
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn body_text(response: Response) -> String {
    let bytes = to_bytes(response.into_body(), 1 << 20).await.unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn header(response: &Response, name: http::header::HeaderName) -> Vec<&str> {
    response
        .headers()
        .get_all(name)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

/// Starts a login at the start route; returns the provider URL and the `Cookie` header value.
async fn start(router: &Router, uri: &str) -> (String, String) {
    let response = get(router, uri, None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = header(&response, LOCATION)[0].to_owned();
    let set_cookie = header(&response, SET_COOKIE)[0];
    let pair = set_cookie.split(';').next().unwrap().to_owned();
    (location, pair)
}

/// Plays the user at the provider and brings the browser back to the callback route.
async fn come_back(
    w: &World,
    router: &Router,
    location: &str,
    cookie: &str,
    subject: &str,
) -> Response {
    let query = w.idp.authorize(location, subject).unwrap();
    get(
        router,
        &format!("/sso/callback/google?{query}"),
        Some(cookie),
    )
    .await
}

#[tokio::test]
async fn start_redirects_to_the_provider_with_a_secure_httponly_lax_cookie() {
    let w = google_world().await;
    let host = Arc::new(TestHost::default());
    let router = routes(w.broker.clone(), &host);

    let response = get(&router, "/sso/login/google", None).await;

    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        header(&response, LOCATION)[0].starts_with("https://accounts.google.com/o/oauth2/v2/auth?")
    );
    let cookies = header(&response, SET_COOKIE);
    assert_eq!(cookies.len(), 1);
    let attributes: Vec<&str> = cookies[0].split("; ").collect();
    assert!(
        attributes[0].starts_with("__Host-cx_sso_login="),
        "{cookies:?}"
    );
    assert!(attributes[0].len() > "__Host-cx_sso_login=".len() + 40);
    for wanted in [
        "Path=/",
        "Max-Age=600",
        "HttpOnly",
        "SameSite=Lax",
        "Secure",
    ] {
        assert!(
            attributes.contains(&wanted),
            "{wanted} missing from {cookies:?}"
        );
    }
    assert_eq!(header(&response, CACHE_CONTROL), ["no-store"]);
}

#[tokio::test]
async fn a_full_login_hands_the_outcome_to_the_host_with_no_referrer_and_no_store() {
    let w = google_world().await;
    let host = Arc::new(TestHost::default());
    let router = routes(w.broker.clone(), &host);

    // First sign-in: the account is not bound yet.
    let (location, cookie) = start(&router, "/sso/login/google").await;
    let response = come_back(&w, &router, &location, &cookie, "g-alice").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(header(&response, REFERRER_POLICY), ["no-referrer"]);
    assert_eq!(header(&response, CACHE_CONTROL), ["no-store"]);
    let cleared = header(&response, SET_COOKIE);
    assert_eq!(cleared.len(), 1);
    assert!(
        cleared[0].starts_with("__Host-cx_sso_login=; "),
        "{cleared:?}"
    );
    assert!(cleared[0].contains("Max-Age=0"));
    assert_eq!(body_text(response).await, "link required for g-alice");

    // Ana binds it from her settings, then signs in with it.
    let (location, cookie) = start(&router, "/sso/login/google?link=ana").await;
    let response = come_back(&w, &router, &location, &cookie, "g-alice").await;
    assert_eq!(body_text(response).await, "linked to ana");
    let (location, cookie) = start(&router, "/sso/login/google").await;
    let response = come_back(&w, &router, &location, &cookie, "g-alice").await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body_text(response).await, "signed in as ana");

    assert_eq!(
        *host.outcomes.lock().unwrap(),
        [
            "link required for g-alice",
            "linked to ana",
            "signed in as ana"
        ]
    );
    // The request as a host would log it: the route, never the cookie, the code or the state.
    let logged = host.requests.lock().unwrap()[2].clone();
    assert!(logged.contains("/sso/callback/google"), "{logged}");
    let cookie_value = cookie.split_once('=').unwrap().1;
    for secret in [cookie_value, "code=", "state="] {
        assert!(!logged.contains(secret), "{logged}");
    }
}

#[tokio::test]
async fn a_callback_without_the_cookie_is_refused_with_a_short_message() {
    let w = google_world().await;
    let host = Arc::new(TestHost::default());
    let router = routes(w.broker.clone(), &host);

    let (location, _cookie) = start(&router, "/sso/login/google").await;
    let response = come_back(
        &w,
        &router,
        &location,
        "__Host-cx_sso_login=forged",
        "g-alice",
    )
    .await;

    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(header(&response, REFERRER_POLICY), ["no-referrer"]);
    assert_eq!(header(&response, CACHE_CONTROL), ["no-store"]);
    let body = body_text(response).await;
    assert!(
        body.contains("This sign-in is no longer valid. Please sign in again."),
        "{body}"
    );
    assert!(!body.contains("browser"), "internal detail leaked: {body}");
    assert!(host.outcomes.lock().unwrap().is_empty());
    // The host saw the error itself, for its logs.
    assert!(
        host.failures.lock().unwrap()[0]
            .1
            .contains("another browser")
    );
}

#[tokio::test]
async fn refusals_map_to_status_codes_without_internal_detail() {
    let w = google_world().await;
    let host = Arc::new(TestHost::default());
    let router = routes(w.broker.clone(), &host);

    // An application the tenant does not have: the SSO warning, before any redirect.
    let response = get(&router, "/sso/login/office365", None).await;
    assert_eq!(response.status(), StatusCode::CONFLICT);
    assert!(header(&response, SET_COOKIE).is_empty());
    let body = body_text(response).await;
    assert!(
        body.contains("Single sign-on is not set up for your company"),
        "{body}"
    );
    assert!(
        !body.contains("office365") && !body.contains("acme"),
        "{body}"
    );

    // The user cancels at the provider.
    let (location, cookie) = start(&router, "/sso/login/google").await;
    let query = w.idp.deny(&location, "access_denied").unwrap();
    let response = get(
        &router,
        &format!("/sso/callback/google?{query}"),
        Some(&cookie),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(
        body_text(response)
            .await
            .contains("You may not sign in this way.")
    );

    // A forged ID token.
    w.idp.misbehave(Misbehavior::BadSignature);
    let (location, cookie) = start(&router, "/sso/login/google").await;
    let response = come_back(&w, &router, &location, &cookie, "g-alice").await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    let body = body_text(response).await;
    assert!(body.contains("could not be verified"), "{body}");
    assert!(
        !body.contains("signature") && !body.contains("google.com"),
        "{body}"
    );
    w.idp.behave();

    // The provider is down at the token exchange.
    w.idp.misbehave(Misbehavior::TokenEndpointStatus(503));
    let (location, cookie) = start(&router, "/sso/login/google").await;
    let response = come_back(&w, &router, &location, &cookie, "g-alice").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        body_text(response)
            .await
            .contains("try again in a few minutes")
    );
    w.idp.behave();

    // A malformed callback query (it comes from the browser): start again.
    let response = get(&router, "/sso/callback/google?state=x&state=y", None).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(body_text(response).await.contains("Please sign in again."));

    // A possible mix-up attack: the callback's `iss` is another provider's.
    w.idp.misbehave(Misbehavior::WrongIssParameter);
    let (location, cookie) = start(&router, "/sso/login/google").await;
    let response = come_back(&w, &router, &location, &cookie, "g-alice").await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = body_text(response).await;
    assert!(body.contains("refused for security reasons"), "{body}");
    assert!(!body.contains("wrong-issuer"), "{body}");
    w.idp.behave();

    // A path naming no valid application.
    let response = get(&router, "/sso/login/bad%20id", None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // The host's refusal of a start (not signed in) is passed through, uncached.
    let response = get(&router, "/sso/login/google?signed-out", None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(header(&response, CACHE_CONTROL), ["no-store"]);

    // No error page ever shows the client secret.
    for (_, error) in host.failures.lock().unwrap().iter() {
        assert!(!error.contains(CLIENT_SECRET));
    }
}

#[tokio::test]
async fn the_development_cookie_drops_secure_only_on_loopback_http() {
    let w = google_world().await;
    let host = Arc::new(TestHost::default());

    let refused = SsoRoutes::with_shared_host(w.broker.clone(), host.clone())
        .cookie(BindingCookie::insecure_for_loopback_development())
        .into_router::<()>();
    assert!(refused.is_err(), "https://cx.example.com must keep Secure");

    let loopback = Broker::builder()
        .http_client(w.idp.clone())
        .public_base_url("http://127.0.0.1:8080")
        .build()
        .unwrap();
    let router = SsoRoutes::with_shared_host(loopback.clone(), host.clone())
        .cookie(BindingCookie::insecure_for_loopback_development())
        .into_router()
        .unwrap();
    loopback
        .configure_provider(
            &common::tenant("acme"),
            cx_sso::ProviderConfig::google(
                common::pid("google"),
                common::CLIENT_ID,
                cx_sso::ClientSecret::new(CLIENT_SECRET),
            ),
        )
        .await
        .unwrap();
    let response = get(&router, "/sso/login/google", None).await;
    let cookie = header(&response, SET_COOKIE)[0];
    assert!(cookie.starts_with("cx_sso_login="), "{cookie}");
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"));
    assert!(!cookie.contains("Secure"), "{cookie}");
}

#[tokio::test]
async fn routes_must_be_on_the_broker_redirect_path() {
    let w = google_world().await;
    let host = Arc::new(TestHost::default());
    let wrong = SsoRoutes::with_shared_host(w.broker.clone(), host.clone())
        .callback_path("/auth/{provider}/callback")
        .into_router::<()>();
    assert!(wrong.is_err());
    let no_provider = SsoRoutes::with_shared_host(w.broker.clone(), host.clone())
        .start_path("/login")
        .into_router::<()>();
    assert!(no_provider.is_err());
    let custom_start = SsoRoutes::with_shared_host(w.broker.clone(), host.clone())
        .start_path("/t/{tenant}/login/{provider}")
        .into_router::<()>();
    assert!(custom_start.is_ok());
}

#[tokio::test]
async fn the_start_route_accepts_a_form_post() {
    let w = google_world().await;
    let host = Arc::new(TestHost::default());
    let router = routes(w.broker.clone(), &host);
    let response = router
        .oneshot(
            Request::post("/sso/login/google")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[cfg(feature = "reqwest")]
mod over_http {
    //! The development provider served over HTTP, reached through the reqwest transport.

    use super::*;
    use cx_sso::testing::{FakeIdpServer, FakeUser};
    use cx_sso::{ClientSecret, ProviderConfig, ReqwestHttpClient};

    #[tokio::test]
    async fn a_login_through_the_development_provider_crosses_real_sockets() {
        let server = FakeIdpServer::start(0).await.unwrap();
        server
            .idp()
            .register_client("dev-client", "dev-secret-value");
        server.add_user(
            FakeUser::new("248289761001")
                .email("ana@acme.example")
                .name("Ana"),
        );
        let broker = Broker::builder()
            .http_client(ReqwestHttpClient::new().unwrap())
            .public_base_url("http://127.0.0.1:9")
            .build()
            .unwrap();
        let tenant = common::tenant("acme");
        let check = broker
            .configure_provider(
                &tenant,
                ProviderConfig::oidc(
                    common::pid("dev"),
                    server.issuer(),
                    "dev-client",
                    ClientSecret::new("dev-secret-value"),
                ),
            )
            .await
            .unwrap();
        assert!(check.is_ready(), "{check:?}");
        let host = Arc::new(TestHost::default());
        let router = SsoRoutes::with_shared_host(broker, host.clone())
            .cookie(BindingCookie::insecure_for_loopback_development())
            .into_router()
            .unwrap();

        let response = get(&router, "/sso/login/dev", None).await;
        let location = header(&response, LOCATION)[0].to_owned();
        let cookie = header(&response, SET_COOKIE)[0]
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        assert!(location.starts_with(&format!("{}/authorize?", server.issuer())));

        // The login page lists the user; choosing them redirects back with a code.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let page = http
            .get(&location)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("Ana &lt;ana@acme.example&gt;"), "{page}");
        let request = location.split_once('?').unwrap().1;
        let answer = http
            .post(format!("{}/authorize", server.issuer()))
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("request", request)
                    .append_pair("subject", "248289761001")
                    .finish(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::SEE_OTHER);
        let back = answer.headers()[LOCATION].to_str().unwrap();
        let callback = back.strip_prefix("http://127.0.0.1:9").unwrap();
        assert!(
            callback.starts_with("/sso/callback/dev?code="),
            "{callback}"
        );

        let response = get(&router, callback, Some(&cookie)).await;
        assert_eq!(body_text(response).await, "link required for 248289761001");
    }
}

/// A host whose tenant is in the path: `/t/{tenant}/...`.
#[derive(Debug, Default)]
struct PathTenantHost;

#[async_trait::async_trait]
impl SsoHost for PathTenantHost {
    async fn start(&self, request: &SsoRequest) -> Result<LoginStart, Response> {
        let tenant = request
            .tenant
            .clone()
            .ok_or_else(|| StatusCode::NOT_FOUND.into_response())?;
        Ok(LoginStart::sign_in(tenant))
    }

    async fn completed(&self, outcome: LoginOutcome, request: &SsoRequest) -> Response {
        match outcome {
            LoginOutcome::LinkRequired { tenant, .. } => format!(
                "link required in {tenant} at {:?}",
                request.tenant.as_ref().map(|t| t.to_string())
            )
            .into_response(),
            other => format!("{other:?}").into_response(),
        }
    }
}

#[tokio::test]
async fn routes_on_the_host_template_refuse_a_callback_at_another_tenant_route() {
    let w = google_world().await;
    let broker = Broker::builder()
        .http_client(w.idp.clone())
        .clock(w.clock.clone())
        .public_base_url("https://cx.example.com")
        .redirect_path("/t/{tenant}/sso/{provider}/callback")
        .build()
        .unwrap();
    for t in ["acme", "globex"] {
        broker
            .configure_provider(
                &common::tenant(t),
                cx_sso::ProviderConfig::google(
                    common::pid("google"),
                    common::CLIENT_ID,
                    cx_sso::ClientSecret::new(CLIENT_SECRET),
                ),
            )
            .await
            .unwrap();
    }
    // The callback path must be the broker's redirect path.
    assert!(
        SsoRoutes::new(broker.clone(), PathTenantHost)
            .into_router::<()>()
            .is_err()
    );
    let router: Router = SsoRoutes::new(broker.clone(), PathTenantHost)
        .start_path("/t/{tenant}/login/{provider}")
        .callback_path("/t/{tenant}/sso/{provider}/callback")
        .into_router()
        .unwrap();

    let (location, cookie) = start(&router, "/t/acme/login/google").await;
    assert!(location.contains(
        "redirect_uri=https%3A%2F%2Fcx.example.com%2Ft%2Facme%2Fsso%2Fgoogle%2Fcallback"
    ));
    let query = w.idp.authorize(&location, "g-alice").unwrap();

    // Delivered to globex's route: refused, and acme's login is not spent.
    let response = get(
        &router,
        &format!("/t/globex/sso/google/callback?{query}"),
        Some(&cookie),
    )
    .await;
    assert!(!response.status().is_success(), "{}", response.status());
    assert_eq!(header(&response, REFERRER_POLICY), ["no-referrer"]);
    let response = get(
        &router,
        &format!("/t/acme/sso/google/callback?{query}"),
        Some(&cookie),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        body_text(response).await,
        "link required in acme at Some(\"acme\")"
    );
}
