//! The token endpoint through the adapter: what is sent, and how every answer maps to a
//! [`TokenEndpointError`].

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use url::Url;

use super::token::TokenClient;
use super::{ClientAuthMethod, ClientCredentials, TokenEndpointError, pkce_s256};
use crate::http::{HttpClient, HttpError, HttpErrorKind};
use crate::secret::{ClientSecret, RefreshToken};

const CLIENT_ID: &str = "client id:1";
const CLIENT_SECRET: &str = "CS-SECRET&:é+/";
const REFRESH: &str = "RT-SECRET";
const CODE: &str = "CODE-SECRET";
const REDIRECT: &str = "https://cx.example.com/sso/callback/google";
const CAP: usize = 1024;

/// Answers every request with one canned response (or a transport error) and keeps the
/// requests.
#[derive(Debug)]
struct Canned {
    answer: Result<(u16, Option<&'static str>, Vec<u8>), HttpErrorKind>,
    seen: Mutex<Vec<http::Request<Vec<u8>>>>,
}

#[async_trait]
impl HttpClient for Canned {
    async fn call(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, HttpError> {
        self.seen.lock().unwrap().push(request);
        let (status, content_type, body) = match &self.answer {
            Ok(a) => a.clone(),
            Err(kind) => return Err(HttpError::new(*kind, "canned failure")),
        };
        let mut response = http::Response::builder().status(status);
        if let Some(ct) = content_type {
            response = response.header(http::header::CONTENT_TYPE, ct);
        }
        Ok(response.body(body).unwrap())
    }
}

struct Endpoint {
    canned: Arc<Canned>,
    http: Arc<dyn HttpClient>,
    secret: ClientSecret,
    auth_method: ClientAuthMethod,
}

impl Endpoint {
    fn answering(status: u16, content_type: Option<&'static str>, body: &[u8]) -> Self {
        Self::with(Ok((status, content_type, body.to_vec())))
    }

    fn json(status: u16, body: &str) -> Self {
        Self::answering(status, Some("application/json"), body.as_bytes())
    }

    fn with(answer: Result<(u16, Option<&'static str>, Vec<u8>), HttpErrorKind>) -> Self {
        let canned = Arc::new(Canned {
            answer,
            seen: Mutex::new(Vec::new()),
        });
        Self {
            http: canned.clone(),
            canned,
            secret: ClientSecret::new(CLIENT_SECRET),
            auth_method: ClientAuthMethod::default(),
        }
    }

    fn post(mut self) -> Self {
        self.auth_method = ClientAuthMethod::ClientSecretPost;
        self
    }

    fn client(&self) -> TokenClient<'_> {
        TokenClient::over(
            &self.http,
            CAP,
            ClientCredentials {
                client_id: CLIENT_ID,
                client_secret: &self.secret,
                auth_method: self.auth_method,
            },
        )
    }

    async fn exchange(&self) -> Result<super::TokenResponse, TokenEndpointError> {
        let (verifier, _) = pkce_s256();
        self.client()
            .exchange_code(&url("https://idp.example/token"), CODE, REDIRECT, &verifier)
            .await
    }

    async fn refresh(&self) -> Result<super::TokenResponse, TokenEndpointError> {
        self.client()
            .refresh(
                &url("https://idp.example/token"),
                &RefreshToken::new(REFRESH),
            )
            .await
    }

    async fn revoke(&self, endpoint: &str) -> Result<(), TokenEndpointError> {
        self.client()
            .revoke(&url(endpoint), &RefreshToken::new(REFRESH))
            .await
    }

    /// The one request sent, as (authorization header, form pairs).
    fn sent(&self) -> (Option<String>, Vec<(String, String)>) {
        let seen = self.canned.seen.lock().unwrap();
        assert_eq!(seen.len(), 1, "exactly one request");
        let request = &seen[0];
        assert_eq!(request.method(), http::Method::POST);
        assert_eq!(
            request.headers()[http::header::CONTENT_TYPE],
            "application/x-www-form-urlencoded"
        );
        assert_eq!(request.headers()[http::header::ACCEPT], "application/json");
        let auth = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let form = url::form_urlencoded::parse(request.body())
            .into_owned()
            .collect();
        (auth, form)
    }
}

fn url(s: &str) -> Url {
    Url::parse(s).unwrap()
}

fn pair<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

const TOKENS: &str = r#"{"access_token":"AT-SECRET","token_type":"Bearer","expires_in":3599,
    "refresh_token":"RT-NEW-SECRET","scope":"openid  email https://mail.google.com/",
    "id_token":"ID-SECRET"}"#;

/// Every secret the tests send or receive: none may appear in an error.
const SECRETS: [&str; 7] = [
    "CS-SECRET",
    "CS-SECRET%26",
    REFRESH,
    CODE,
    "AT-SECRET",
    "ID-SECRET",
    "BODY-SECRET",
];

fn assert_no_secret(e: &TokenEndpointError) {
    let printed = format!("{e} {e:?}");
    for secret in SECRETS {
        assert!(!printed.contains(secret), "{secret} in {printed}");
    }
}

// --- what is sent --------------------------------------------------------------------------

#[tokio::test]
async fn basic_auth_form_urlencodes_id_and_secret_before_base64() {
    let e = Endpoint::json(200, TOKENS);
    e.exchange().await.unwrap();
    let (auth, form) = e.sent();
    let auth = auth.expect("client_secret_basic sends an Authorization header");
    let decoded = STANDARD
        .decode(auth.strip_prefix("Basic ").unwrap())
        .unwrap();
    // RFC 6749 §2.3.1: each of id and secret form-urlencoded, then joined with `:`.
    assert_eq!(
        String::from_utf8(decoded).unwrap(),
        "client+id%3A1:CS-SECRET%26%3A%C3%A9%2B%2F"
    );
    assert_eq!(pair(&form, "client_secret"), None);
    assert_eq!(pair(&form, "grant_type"), Some("authorization_code"));
    assert_eq!(pair(&form, "code"), Some(CODE));
    assert_eq!(pair(&form, "redirect_uri"), Some(REDIRECT));
    let verifier = pair(&form, "code_verifier").unwrap();
    assert_eq!(verifier.len(), 43);
}

#[tokio::test]
async fn client_secret_post_sends_the_credentials_in_the_body() {
    let e = Endpoint::json(200, TOKENS).post();
    e.exchange().await.unwrap();
    let (auth, form) = e.sent();
    assert_eq!(auth, None);
    assert_eq!(pair(&form, "client_id"), Some(CLIENT_ID));
    assert_eq!(pair(&form, "client_secret"), Some(CLIENT_SECRET));
}

#[tokio::test]
async fn refresh_sends_the_refresh_token_grant() {
    let e = Endpoint::json(200, TOKENS);
    e.refresh().await.unwrap();
    let (_, form) = e.sent();
    assert_eq!(pair(&form, "grant_type"), Some("refresh_token"));
    assert_eq!(pair(&form, "refresh_token"), Some(REFRESH));
    assert_eq!(pair(&form, "scope"), None);
}

/// An `https` endpoint goes through oauth2; a loopback `http` one (development, tests), which
/// oauth2 refuses, through the crate's own RFC 7009 request. Both send the same request and
/// read the answer the same way.
const REVOCATION_ENDPOINTS: [&str; 2] = ["https://idp.example/revoke", "http://127.0.0.1:9/revoke"];

#[tokio::test]
async fn revocation_sends_the_token_with_its_hint_and_a_200_is_success() {
    let mut headers = Vec::new();
    for endpoint in REVOCATION_ENDPOINTS {
        let e = Endpoint::answering(200, None, b"");
        e.revoke(endpoint).await.unwrap();
        let (auth, form) = e.sent();
        assert!(auth.is_some(), "{endpoint}");
        assert_eq!(pair(&form, "token"), Some(REFRESH), "{endpoint}");
        assert_eq!(
            pair(&form, "token_type_hint"),
            Some("refresh_token"),
            "{endpoint}"
        );
        headers.push(auth);
    }
    assert_eq!(headers[0], headers[1], "the same client authentication");
}

#[tokio::test]
async fn revocation_refusals_are_typed() {
    for endpoint in REVOCATION_ENDPOINTS {
        let e = Endpoint::json(400, r#"{"error":"unsupported_token_type"}"#);
        let err = e.revoke(endpoint).await.unwrap_err();
        assert!(
            matches!(&err, TokenEndpointError::OAuth(c) if c == "unsupported_token_type"),
            "{endpoint}: {err:?}"
        );
        let e = Endpoint::json(401, r#"{"error":"invalid_client"}"#);
        let err = e.revoke(endpoint).await.unwrap_err();
        assert!(
            matches!(err, TokenEndpointError::InvalidClient),
            "{endpoint}: {err:?}"
        );
        let e = Endpoint::answering(503, None, b"");
        let err = e.revoke(endpoint).await.unwrap_err();
        assert!(
            matches!(err, TokenEndpointError::ServerError(503)),
            "{endpoint}: {err:?}"
        );
        assert!(err.is_transient());
    }
}

// --- what is read ------------------------------------------------------------------------

#[tokio::test]
async fn a_token_response_is_read_whole() {
    let e = Endpoint::json(200, TOKENS);
    let tokens = e.exchange().await.unwrap();
    assert_eq!(tokens.access_token.secret(), "AT-SECRET");
    assert_eq!(
        tokens.refresh_token.as_ref().map(|t| t.secret()),
        Some("RT-NEW-SECRET")
    );
    assert_eq!(tokens.expires_in, Some(3599));
    // The scope string as sent, double space included.
    assert_eq!(
        tokens.scope.as_deref(),
        Some("openid  email https://mail.google.com/")
    );
    assert_eq!(tokens.id_token.as_deref(), Some("ID-SECRET"));
    let printed = format!("{tokens:?}");
    for secret in ["AT-SECRET", "RT-NEW-SECRET", "ID-SECRET"] {
        assert!(!printed.contains(secret), "{printed}");
    }

    let minimal = Endpoint::json(200, r#"{"access_token":"AT-SECRET","token_type":"bearer"}"#);
    let tokens = minimal.exchange().await.unwrap();
    assert!(tokens.refresh_token.is_none() && tokens.id_token.is_none());
    assert_eq!((tokens.expires_in, tokens.scope), (None, None));
}

#[tokio::test]
async fn a_token_type_other_than_bearer_is_refused() {
    let e = Endpoint::json(200, r#"{"access_token":"AT-SECRET","token_type":"mac"}"#);
    let err = e.exchange().await.unwrap_err();
    assert!(matches!(err, TokenEndpointError::NotBearer), "{err:?}");
}

// --- the adapter: size cap and 5xx before oauth2 parses ------------------------------------

#[tokio::test]
async fn a_body_over_the_cap_is_too_large_whatever_the_status() {
    let mut big = r#"{"access_token":"AT-SECRET","token_type":"Bearer","p":""#.to_owned();
    big.push_str(&"x".repeat(CAP));
    big.push_str("\"}");
    for status in [200, 400, 503] {
        let e = Endpoint::json(status, &big);
        let err = e.exchange().await.unwrap_err();
        assert!(matches!(err, TokenEndpointError::TooLarge(CAP)), "{err:?}");
        assert_no_secret(&err);
    }
}

#[tokio::test]
async fn a_body_of_exactly_the_cap_is_read() {
    let head = r#"{"access_token":"AT-SECRET","token_type":"Bearer","p":""#;
    let body = format!("{head}{}\"}}", "x".repeat(CAP - head.len() - 2));
    assert_eq!(body.len(), CAP);
    Endpoint::json(200, &body).exchange().await.unwrap();
}

#[tokio::test]
async fn a_5xx_is_a_transient_server_error_whatever_its_body() {
    for (status, body) in [
        (500, r#"{"error":"invalid_grant"}"#),
        (502, "<html>Bad gateway BODY-SECRET</html>"),
        (503, ""),
    ] {
        let e = Endpoint::answering(status, Some("text/html"), body.as_bytes());
        let err = e.refresh().await.unwrap_err();
        assert!(
            matches!(err, TokenEndpointError::ServerError(s) if s == status),
            "{status}: {err:?}"
        );
        assert!(err.is_transient());
        assert_no_secret(&err);
    }
}

#[tokio::test]
async fn a_transport_failure_keeps_its_kind() {
    let e = Endpoint::with(Err(HttpErrorKind::Timeout));
    let err = e.exchange().await.unwrap_err();
    assert!(
        matches!(&err, TokenEndpointError::Http(h) if h.kind() == HttpErrorKind::Timeout),
        "{err:?}"
    );
    assert!(err.is_transient());
}

// --- error bodies ------------------------------------------------------------------------

/// A status, a Content-Type, a body, and the refusal expected.
type Case<'a> = (
    u16,
    Option<&'static str>,
    &'a str,
    fn(&TokenEndpointError) -> bool,
);

#[tokio::test]
async fn oauth_error_bodies_map_to_their_variants() {
    let cases: [Case; 10] = [
        (
            400,
            Some("application/json"),
            r#"{"error":"invalid_grant","error_description":"BODY-SECRET"}"#,
            |e| matches!(e, TokenEndpointError::InvalidGrant),
        ),
        (
            401,
            Some("application/json"),
            r#"{"error":"invalid_client"}"#,
            |e| matches!(e, TokenEndpointError::InvalidClient),
        ),
        // Other codes keep the code, printable and at most 64 characters.
        (
            400,
            Some("application/json"),
            r#"{"error":"invalid_scope"}"#,
            |e| matches!(e, TokenEndpointError::OAuth(c) if c == "invalid_scope"),
        ),
        (
            400,
            None,
            &format!(r#"{{"error":"odd\u0007code {}"}}"#, "y".repeat(100)),
            |e| matches!(e, TokenEndpointError::OAuth(c) if c.len() == 64 && c.starts_with("oddcodeyyy")),
        ),
        // No readable error body: a 401 is the client authentication failing.
        (
            401,
            Some("text/html"),
            "<html>Unauthorized BODY-SECRET</html>",
            |e| matches!(e, TokenEndpointError::InvalidClient),
        ),
        (401, None, "", |e| {
            matches!(e, TokenEndpointError::InvalidClient)
        }),
        // Anything else only has its status.
        (403, Some("text/plain"), "Forbidden BODY-SECRET", |e| {
            matches!(e, TokenEndpointError::Status(403))
        }),
        (302, None, "", |e| {
            matches!(e, TokenEndpointError::Status(302))
        }),
        // oauth2 reads `error_description` as a string (RFC 6749 §5.2): another type makes the
        // body unreadable, and the status decides.
        (
            400,
            Some("application/json"),
            r#"{"error":"invalid_grant","error_description":42}"#,
            |e| matches!(e, TokenEndpointError::Status(400)),
        ),
        (
            400,
            Some("application/json"),
            r#"{"error":42,"x":"BODY-SECRET"}"#,
            |e| matches!(e, TokenEndpointError::Status(400)),
        ),
    ];
    for (status, content_type, body, expected) in cases {
        let e = Endpoint::answering(status, content_type, body.as_bytes());
        let err = e.exchange().await.unwrap_err();
        assert!(expected(&err), "{status} {body}: {err:?}");
        assert!(!err.is_transient());
        assert_no_secret(&err);
    }
}

#[tokio::test]
async fn an_invalid_200_says_what_is_wrong_without_the_data() {
    let cases = [
        (
            Some("application/json"),
            "{not json BODY-SECRET",
            "Syntax error at line 1",
        ),
        // A string where a number belongs: serde would quote it.
        (
            Some("application/json"),
            r#"{"access_token":"AT-SECRET","token_type":"Bearer","expires_in":"BODY-SECRET"}"#,
            "`expires_in`",
        ),
        (
            Some("application/json"),
            r#"{"access_token":"AT-SECRET","token_type":"Bearer","expires_in":-5}"#,
            "Data error",
        ),
        (
            Some("application/json"),
            r#"{"token_type":"Bearer"}"#,
            "Data error",
        ),
        (Some("application/json"), "", "empty response body"),
        (
            Some("text/html"),
            r#"{"access_token":"AT-SECRET","token_type":"Bearer"}"#,
            "Content-Type",
        ),
    ];
    for (content_type, body, cause) in cases {
        let e = Endpoint::answering(200, content_type, body.as_bytes());
        let err = e.exchange().await.unwrap_err();
        match &err {
            TokenEndpointError::Invalid(reason) => {
                assert!(reason.contains(cause), "{body}: {reason}")
            }
            other => panic!("{body}: {other:?}"),
        }
        assert_no_secret(&err);
    }
}

// --- PKCE and Send -----------------------------------------------------------------------

#[tokio::test]
async fn the_probe_sends_an_impossible_code_and_reports_the_answer() {
    let e = Endpoint::json(400, r#"{"error":"invalid_grant"}"#);
    let err = e
        .client()
        .probe(&url("https://idp.example/token"), REDIRECT)
        .await
        .unwrap_err();
    assert!(matches!(err, TokenEndpointError::InvalidGrant), "{err:?}");
    let (auth, form) = e.sent();
    assert!(auth.is_some());
    assert!(
        pair(&form, "code")
            .unwrap()
            .starts_with("cx-sso-connection-check-")
    );
    assert_eq!(pair(&form, "redirect_uri"), Some(REDIRECT));
    assert_eq!(pair(&form, "code_verifier").map(str::len), Some(43));
}

#[test]
fn every_token_endpoint_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    let e = Endpoint::json(200, TOKENS);
    let client = e.client();
    let endpoint = url("https://idp.example/token");
    let (verifier, _) = pkce_s256();
    let refresh = RefreshToken::new(REFRESH);
    assert_send(&client.exchange_code(&endpoint, CODE, REDIRECT, &verifier));
    assert_send(&client.refresh(&endpoint, &refresh));
    assert_send(&client.revoke(&endpoint, &refresh));
    assert_send(&client.probe(&endpoint, REDIRECT));
}
