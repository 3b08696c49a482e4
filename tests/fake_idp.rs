//! Tests of `testing::FakeIdp` itself, through its `HttpClient` implementation.
#![cfg(feature = "test-util")]

use std::collections::HashSet;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use cx_sso::testing::{FakeIdp, FakeIdpError, FakeUser, Misbehavior};
use cx_sso::{HttpClient, ManualClock};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use openidconnect::core::CoreProviderMetadata;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use url::Url;

const CLIENT: &str = "client-1";
const SECRET: &str = "s3cret";
const REDIRECT: &str = "https://app.example.test/sso/callback";
/// 2026-01-01 09:00 UTC.
const START: i64 = 1_767_258_000;
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn start() -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(START).expect("valid time")
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn google() -> FakeIdp {
    let idp = FakeIdp::google();
    idp.register_client(CLIENT, SECRET);
    idp.add_user(
        FakeUser::new("g-123")
            .email("alice@example.com")
            .name("Alice")
            .hosted_domain("example.com"),
    );
    idp
}

/// An authorization URL at `endpoint` with the usual parameters, minus `omit`, plus `extra`.
fn authorize_url(endpoint: &str, scope: &str, omit: &[&str], extra: &[(&str, &str)]) -> String {
    let challenge = challenge(VERIFIER);
    let base = [
        ("response_type", "code"),
        ("client_id", CLIENT),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "the-state"),
        ("nonce", "the-nonce"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let params = base
        .iter()
        .filter(|(k, _)| !omit.contains(k))
        .chain(extra.iter())
        .copied();
    Url::parse_with_params(endpoint, params)
        .expect("test URL")
        .to_string()
}

fn google_authorize_url() -> String {
    authorize_url(
        "https://accounts.google.com/o/oauth2/v2/auth",
        "openid email profile",
        &[],
        &[],
    )
}

fn query_param(query: &str, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

async fn get(idp: &FakeIdp, url: &str) -> http::Response<Vec<u8>> {
    let request = http::Request::get(url).body(Vec::new()).expect("request");
    idp.call(request).await.expect("in-process call")
}

async fn get_bearer(idp: &FakeIdp, url: &str, token: &str) -> http::Response<Vec<u8>> {
    let request = http::Request::get(url)
        .header("authorization", format!("Bearer {token}"))
        .body(Vec::new())
        .expect("request");
    idp.call(request).await.expect("in-process call")
}

async fn post_form(
    idp: &FakeIdp,
    url: &str,
    basic: Option<&str>,
    form: &[(&str, &str)],
) -> http::Response<Vec<u8>> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let mut request = http::Request::post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json");
    if let Some(basic) = basic {
        request = request.header("authorization", format!("Basic {basic}"));
    }
    let request = request.body(body.into_bytes()).expect("request");
    idp.call(request).await.expect("in-process call")
}

fn basic(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    STANDARD.encode(format!("{}:{}", enc(id), enc(secret)))
}

fn json(response: &http::Response<Vec<u8>>) -> Value {
    serde_json::from_slice(response.body()).expect("JSON body")
}

fn oauth_error(response: &http::Response<Vec<u8>>) -> String {
    json(response)["error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

const GOOGLE_TOKEN: &str = "https://oauth2.googleapis.com/token";
const GOOGLE_JWKS: &str = "https://www.googleapis.com/oauth2/v3/certs";
const GOOGLE_USERINFO: &str = "https://openidconnect.googleapis.com/v1/userinfo";

/// Redeems the code of `callback` at `token_url` with basic auth.
async fn redeem(idp: &FakeIdp, token_url: &str, callback: &str) -> http::Response<Vec<u8>> {
    let code = query_param(callback, "code").expect("code in callback");
    post_form(
        idp,
        token_url,
        Some(&basic(CLIENT, SECRET)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

/// A full Google login: authorize, then redeem; returns the token response JSON.
async fn google_login(idp: &FakeIdp) -> Value {
    let callback = idp
        .authorize(&google_authorize_url(), "g-123")
        .expect("authorize");
    let response = redeem(idp, GOOGLE_TOKEN, &callback).await;
    assert_eq!(
        response.status(),
        200,
        "{}",
        String::from_utf8_lossy(response.body())
    );
    json(&response)
}

fn decode_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("JWT part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

fn signature(token: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD
        .decode(token.split('.').nth(2).expect("signature part"))
        .expect("base64url")
}

/// The ID token of a Google login with `m` on.
async fn google_token_with(m: Misbehavior) -> (FakeIdp, String) {
    let idp = google();
    idp.misbehave(m);
    let body = google_login(&idp).await;
    let token = body["id_token"].as_str().expect("id_token").to_owned();
    (idp, token)
}

/// Verifies `token` against the FakeIdp's JWKS with jsonwebtoken; returns the claims.
async fn verify(idp: &FakeIdp, jwks_url: &str, token: &str, issuer: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("header");
    let kid = header.kid.expect("kid");
    let jwks = json(&get(idp, jwks_url).await);
    let jwk = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("kid published");
    let key = DecodingKey::from_rsa_components(
        jwk["n"].as_str().expect("n"),
        jwk["e"].as_str().expect("e"),
    )
    .expect("RSA key");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[CLIENT]);
    validation.set_issuer(&[issuer]);
    // The FakeIdp may run on a ManualClock; `exp` is checked by the tests themselves.
    validation.validate_exp = false;
    validation.required_spec_claims = HashSet::new();
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("valid signature and claims")
        .claims
}

// ---------------------------------------------------------------------------------------------
// Type properties
// ---------------------------------------------------------------------------------------------

#[test]
fn fake_idp_is_clone_send_sync_and_an_http_client() {
    fn assert_traits<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}
    assert_traits::<FakeIdp>();
    let _: Arc<dyn HttpClient> = Arc::new(FakeIdp::oidc("https://idp.example.test"));
}

#[test]
fn debug_shows_no_secrets() {
    let idp = google();
    let debug = format!("{idp:?}");
    assert!(debug.contains("accounts.google.com"), "{debug}");
    assert!(debug.contains(CLIENT));
    assert!(!debug.contains(SECRET), "{debug}");
    assert!(!debug.to_lowercase().contains("private"), "{debug}");
}

#[tokio::test]
async fn clones_share_state() {
    let idp = google();
    let clone = idp.clone();
    get(
        &clone,
        "https://accounts.google.com/.well-known/openid-configuration",
    )
    .await;
    clone.rotate_key();
    assert_eq!(idp.discovery_fetches(), 1);
    assert_eq!(idp.key_ids().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Discovery and routing
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn google_discovery_parses_as_core_provider_metadata() {
    let idp = google();
    let response = get(
        &idp,
        "https://accounts.google.com/.well-known/openid-configuration",
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let metadata: CoreProviderMetadata =
        serde_json::from_slice(response.body()).expect("CoreProviderMetadata");
    assert_eq!(metadata.issuer().as_str(), "https://accounts.google.com");
    assert_eq!(
        metadata.authorization_endpoint().as_str(),
        "https://accounts.google.com/o/oauth2/v2/auth"
    );
    assert_eq!(
        metadata.token_endpoint().map(|u| u.as_str()),
        Some(GOOGLE_TOKEN)
    );
    assert_eq!(metadata.jwks_uri().as_str(), GOOGLE_JWKS);
    assert_eq!(
        metadata.userinfo_endpoint().map(|u| u.as_str()),
        Some(GOOGLE_USERINFO)
    );
    let doc = json(&response);
    assert_eq!(
        doc["revocation_endpoint"],
        "https://oauth2.googleapis.com/revoke"
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    assert!(
        doc.get("authorization_response_iss_parameter_supported")
            .is_none()
    );
    assert_eq!(idp.discovery_fetches(), 1);
}

#[tokio::test]
async fn entra_discovery_states_template_issuer_for_multitenant_and_guid_issuer_for_a_tenant() {
    let idp = FakeIdp::entra();
    for x in ["organizations", "common"] {
        let url =
            format!("https://login.microsoftonline.com/{x}/v2.0/.well-known/openid-configuration");
        let response = get(&idp, &url).await;
        assert_eq!(response.status(), 200, "{x}");
        let metadata: CoreProviderMetadata =
            serde_json::from_slice(response.body()).expect("CoreProviderMetadata");
        let doc = json(&response);
        assert_eq!(
            doc["issuer"],
            "https://login.microsoftonline.com/{tenantid}/v2.0"
        );
        let _ = metadata;
        assert_eq!(
            doc["authorization_endpoint"],
            format!("https://login.microsoftonline.com/{x}/oauth2/v2.0/authorize")
        );
        assert_eq!(
            doc["token_endpoint"],
            format!("https://login.microsoftonline.com/{x}/oauth2/v2.0/token")
        );
        assert_eq!(
            doc["jwks_uri"],
            format!("https://login.microsoftonline.com/{x}/discovery/v2.0/keys")
        );
        assert_eq!(
            doc["userinfo_endpoint"],
            "https://graph.microsoft.com/oidc/userinfo"
        );
    }
    let guid = "0b5f6c4e-1a2b-4c3d-8e9f-0123456789ab";
    let url =
        format!("https://login.microsoftonline.com/{guid}/v2.0/.well-known/openid-configuration");
    let response = get(&idp, &url).await;
    let metadata: CoreProviderMetadata =
        serde_json::from_slice(response.body()).expect("CoreProviderMetadata");
    assert_eq!(
        metadata.issuer().as_str(),
        format!("https://login.microsoftonline.com/{guid}/v2.0")
    );
    assert_eq!(idp.discovery_fetches(), 3);

    let response = get(
        &idp,
        "https://login.microsoftonline.com/not-a-tenant/v2.0/.well-known/openid-configuration",
    )
    .await;
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn oidc_discovery_and_endpoints_follow_the_issuer() {
    for (issuer, base) in [
        ("https://idp.example.test", "https://idp.example.test"),
        ("http://127.0.0.1:9/", "http://127.0.0.1:9"),
    ] {
        let idp = FakeIdp::oidc(issuer);
        let response = get(&idp, &format!("{base}/.well-known/openid-configuration")).await;
        assert_eq!(response.status(), 200, "{issuer}");
        let _: CoreProviderMetadata =
            serde_json::from_slice(response.body()).expect("CoreProviderMetadata");
        let doc = json(&response);
        assert_eq!(doc["issuer"], issuer);
        assert_eq!(doc["authorization_endpoint"], format!("{base}/authorize"));
        assert_eq!(doc["token_endpoint"], format!("{base}/token"));
        assert_eq!(doc["userinfo_endpoint"], format!("{base}/userinfo"));
        assert_eq!(doc["jwks_uri"], format!("{base}/jwks"));
        assert_eq!(doc["revocation_endpoint"], format!("{base}/revoke"));
        assert_eq!(get(&idp, &format!("{base}/jwks")).await.status(), 200);
    }
}

#[tokio::test]
async fn iss_parameter_is_advertised_only_when_set() {
    let idp = google();
    let url = "https://accounts.google.com/.well-known/openid-configuration";
    assert!(
        json(&get(&idp, url).await)
            .get("authorization_response_iss_parameter_supported")
            .is_none()
    );
    idp.set_iss_parameter(true);
    assert_eq!(
        json(&get(&idp, url).await)["authorization_response_iss_parameter_supported"],
        true
    );
    let callback = idp
        .authorize(&google_authorize_url(), "g-123")
        .expect("authorize");
    assert_eq!(
        query_param(&callback, "iss").as_deref(),
        Some("https://accounts.google.com")
    );
    idp.set_iss_parameter(false);
    let callback = idp
        .authorize(&google_authorize_url(), "g-123")
        .expect("authorize");
    assert_eq!(query_param(&callback, "iss"), None);
}

#[tokio::test]
async fn unknown_urls_are_404() {
    let idp = google();
    for url in [
        "https://accounts.google.com/nope",
        "https://evil.example.test/.well-known/openid-configuration",
        "http://accounts.google.com/.well-known/openid-configuration",
        "https://accounts.google.com:8443/.well-known/openid-configuration",
        "https://login.microsoftonline.com/common/v2.0/.well-known/openid-configuration",
    ] {
        assert_eq!(get(&idp, url).await.status(), 404, "{url}");
    }
    assert_eq!(idp.discovery_fetches(), 0);
}

#[tokio::test]
async fn wrong_methods_are_refused() {
    let idp = google();
    let response = get(&idp, GOOGLE_TOKEN).await;
    assert_eq!(response.status(), 405);
    assert_eq!(idp.token_requests(), 1);
}

// ---------------------------------------------------------------------------------------------
// JWKS, ID tokens, keys
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn jwks_publishes_the_signing_key_and_google_id_tokens_verify() {
    let clock = Arc::new(ManualClock::new(start()));
    let idp = google().with_clock(clock.clone());
    let jwks = json(&get(&idp, GOOGLE_JWKS).await);
    let keys = jwks["keys"].as_array().expect("keys");
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    assert_eq!(key["e"], "AQAB");
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(key["n"].as_str().expect("n"))
            .expect("n")
            .len(),
        256
    );
    assert_eq!(idp.jwks_fetches(), 1);

    let body = google_login(&idp).await;
    let token = body["id_token"].as_str().expect("id_token");
    let header = decode_part(token, 0);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "JWT");
    assert_eq!(header["kid"], key["kid"]);
    let claims = verify(&idp, GOOGLE_JWKS, token, "https://accounts.google.com").await;
    let now = START;
    assert_eq!(claims["iat"], now);
    assert_eq!(claims["exp"], now + 3600);
    assert_eq!(claims["sub"], "g-123");
    assert_eq!(claims["aud"], CLIENT);
    assert_eq!(claims["azp"], CLIENT);
    assert_eq!(claims["nonce"], "the-nonce");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Alice");
    assert_eq!(claims["hd"], "example.com");
    assert!(claims.get("tid").is_none());
    // OpenID Connect Core 3.1.3.6: the left half of the access token's SHA-256.
    let access_token = body["access_token"].as_str().expect("access_token");
    let digest = Sha256::digest(access_token.as_bytes());
    assert_eq!(claims["at_hash"], URL_SAFE_NO_PAD.encode(&digest[..16]));
}

#[tokio::test]
async fn wrong_at_hash_names_another_access_token() {
    let idp = google();
    let at_hash_of = |body: &Value| {
        let digest = Sha256::digest(body["access_token"].as_str().expect("at").as_bytes());
        URL_SAFE_NO_PAD.encode(&digest[..16])
    };
    idp.misbehave(Misbehavior::WrongAtHash);
    let body = google_login(&idp).await;
    let claims = decode_part(body["id_token"].as_str().expect("id_token"), 1);
    assert_eq!(claims["at_hash"].as_str().expect("at_hash").len(), 22);
    assert_ne!(claims["at_hash"], at_hash_of(&body));
    idp.behave();
    let body = google_login(&idp).await;
    let claims = decode_part(body["id_token"].as_str().expect("id_token"), 1);
    assert_eq!(claims["at_hash"], at_hash_of(&body));
}

#[tokio::test]
async fn entra_id_tokens_carry_tenant_claims_and_unverified_email() {
    let idp = FakeIdp::entra();
    idp.register_client(CLIENT, SECRET);
    let tid = "0b5f6c4e-1a2b-4c3d-8e9f-0123456789ab";
    idp.add_user(
        FakeUser::new("pairwise-sub-1")
            .email("bob@contoso.example")
            .name("Bob")
            .tenant_id(tid)
            .email_domain_verified(true),
    );
    idp.add_user(FakeUser::new("pairwise-sub-2").email("carol@fabrikam.example"));
    let endpoint = "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize";
    let token_url = "https://login.microsoftonline.com/organizations/oauth2/v2.0/token";
    let jwks_url = "https://login.microsoftonline.com/organizations/discovery/v2.0/keys";
    let url = authorize_url(endpoint, "openid profile email offline_access", &[], &[]);

    let callback = idp.authorize(&url, "pairwise-sub-1").expect("authorize");
    let body = json(&redeem(&idp, token_url, &callback).await);
    assert!(
        body["refresh_token"].is_string(),
        "offline_access gives a refresh token"
    );
    let token = body["id_token"].as_str().expect("id_token");
    let issuer = format!("https://login.microsoftonline.com/{tid}/v2.0");
    assert_eq!(FakeIdp::entra_issuer(tid), issuer);
    let claims = verify(&idp, jwks_url, token, &issuer).await;
    assert_eq!(claims["tid"], tid);
    assert_eq!(claims["sub"], "pairwise-sub-1");
    assert!(claims["oid"].is_string());
    assert_ne!(claims["oid"], claims["sub"]);
    assert_eq!(claims["email"], "bob@contoso.example");
    assert!(
        claims.get("email_verified").is_none(),
        "Entra's email is unverified"
    );
    assert_eq!(claims["preferred_username"], "bob@contoso.example");
    assert_eq!(claims["xms_edov"], true);

    let callback = idp.authorize(&url, "pairwise-sub-2").expect("authorize");
    let body = json(&redeem(&idp, token_url, &callback).await);
    let claims = decode_part(body["id_token"].as_str().expect("id_token"), 1);
    assert_eq!(claims["tid"], FakeUser::DEFAULT_TENANT_ID);
    assert_eq!(
        claims["iss"],
        FakeIdp::entra_issuer(FakeUser::DEFAULT_TENANT_ID)
    );
    assert!(claims.get("xms_edov").is_none());

    let response = get_bearer(
        &idp,
        "https://graph.microsoft.com/oidc/userinfo",
        body["access_token"].as_str().expect("access_token"),
    )
    .await;
    assert_eq!(response.status(), 200);
    let info = json(&response);
    assert_eq!(info["sub"], "pairwise-sub-2");
    assert!(info.get("email_verified").is_none());
}

#[tokio::test]
async fn omitted_profile_is_only_in_userinfo() {
    let idp = google();
    idp.add_user(
        FakeUser::new("g-123")
            .email("alice@example.com")
            .email_verified(false)
            .name("Alice")
            .omit_profile_from_id_token(true),
    );
    let body = google_login(&idp).await;
    let claims = decode_part(body["id_token"].as_str().expect("id_token"), 1);
    assert!(claims.get("email").is_none());
    assert!(claims.get("email_verified").is_none());
    assert!(claims.get("name").is_none());
    let info = json(
        &get_bearer(
            &idp,
            GOOGLE_USERINFO,
            body["access_token"].as_str().expect("at"),
        )
        .await,
    );
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["email_verified"], false);
    assert_eq!(info["name"], "Alice");
}

#[tokio::test]
async fn rotate_key_signs_with_the_new_key_and_publishes_both_until_retired() {
    let idp = google();
    let before = idp.key_ids();
    assert_eq!(before.len(), 1);
    let old_token = google_login(&idp).await["id_token"]
        .as_str()
        .expect("id_token")
        .to_owned();
    idp.rotate_key();
    let after = idp.key_ids();
    assert_eq!(after.len(), 2);
    assert_eq!(after[0], before[0]);
    assert_ne!(after[1], before[0]);
    let new_token = google_login(&idp).await["id_token"]
        .as_str()
        .expect("id_token")
        .to_owned();
    assert_eq!(decode_part(&new_token, 0)["kid"], after[1].as_str());
    let jwks = json(&get(&idp, GOOGLE_JWKS).await);
    assert_eq!(jwks["keys"].as_array().expect("keys").len(), 2);
    verify(&idp, GOOGLE_JWKS, &old_token, "https://accounts.google.com").await;
    verify(&idp, GOOGLE_JWKS, &new_token, "https://accounts.google.com").await;

    idp.retire_old_keys();
    assert_eq!(idp.key_ids(), vec![after[1].clone()]);
    let jwks = json(&get(&idp, GOOGLE_JWKS).await);
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert_eq!(kids, vec![after[1].as_str()]);
}

// ---------------------------------------------------------------------------------------------
// Authorize step
// ---------------------------------------------------------------------------------------------

#[test]
fn authorize_returns_code_and_state() {
    let idp = google();
    let callback = idp
        .authorize(&google_authorize_url(), "g-123")
        .expect("authorize");
    let code = query_param(&callback, "code").expect("code");
    assert!(code.len() >= 32);
    assert_eq!(
        query_param(&callback, "state").as_deref(),
        Some("the-state")
    );
    assert!(!callback.starts_with('?'));
    let again = idp
        .authorize(&google_authorize_url(), "g-123")
        .expect("authorize");
    assert_ne!(query_param(&again, "code"), Some(code), "codes are random");
}

#[test]
fn authorize_checks_the_request_like_a_provider() {
    let idp = google();
    let endpoint = "https://accounts.google.com/o/oauth2/v2/auth";
    let scope = "openid email";
    let cases: Vec<(String, FakeIdpError)> = vec![
        (
            authorize_url(endpoint, scope, &["nonce"], &[]),
            FakeIdpError::MissingParameter("nonce"),
        ),
        (
            authorize_url(endpoint, scope, &["state"], &[]),
            FakeIdpError::MissingParameter("state"),
        ),
        (
            authorize_url(endpoint, scope, &["redirect_uri"], &[]),
            FakeIdpError::MissingParameter("redirect_uri"),
        ),
        (
            authorize_url(endpoint, scope, &["code_challenge"], &[]),
            FakeIdpError::MissingParameter("code_challenge"),
        ),
        (
            authorize_url(endpoint, scope, &["code_challenge_method"], &[]),
            FakeIdpError::MissingParameter("code_challenge_method"),
        ),
        (
            authorize_url(
                endpoint,
                scope,
                &["state"],
                &[("state", "a"), ("state", "b")],
            ),
            FakeIdpError::DuplicateParameter("state".to_owned()),
        ),
    ];
    for (url, expected) in cases {
        assert_eq!(idp.authorize(&url, "g-123"), Err(expected), "{url}");
    }
    let invalid = |url: String, name: &str| match idp.authorize(&url, "g-123") {
        Err(FakeIdpError::InvalidParameter { name: n, .. }) => assert_eq!(n, name, "{url}"),
        other => panic!("{url}: {other:?}"),
    };
    invalid(
        authorize_url(
            endpoint,
            scope,
            &["code_challenge_method"],
            &[("code_challenge_method", "plain")],
        ),
        "code_challenge_method",
    );
    invalid(
        authorize_url(
            endpoint,
            scope,
            &["response_type"],
            &[("response_type", "token")],
        ),
        "response_type",
    );
    assert_eq!(
        idp.authorize(&authorize_url(endpoint, scope, &["scope"], &[]), "g-123"),
        Err(FakeIdpError::MissingParameter("scope"))
    );

    assert_eq!(
        idp.authorize(&google_authorize_url(), "nobody"),
        Err(FakeIdpError::UnknownUser("nobody".to_owned()))
    );
    let other_client = authorize_url(endpoint, scope, &["client_id"], &[("client_id", "who")]);
    assert_eq!(
        idp.authorize(&other_client, "g-123"),
        Err(FakeIdpError::UnknownClient("who".to_owned()))
    );
    assert!(matches!(
        idp.authorize("https://evil.example.test/auth?x=1", "g-123"),
        Err(FakeIdpError::NotAuthorizationEndpoint(_))
    ));
    assert!(matches!(
        idp.authorize("not a url", "g-123"),
        Err(FakeIdpError::InvalidUrl(_))
    ));
}

#[test]
fn deny_returns_error_and_state() {
    let idp = google();
    let callback = idp
        .deny(&google_authorize_url(), "access_denied")
        .expect("deny");
    assert_eq!(callback, "error=access_denied&state=the-state");
    idp.set_iss_parameter(true);
    let callback = idp
        .deny(&google_authorize_url(), "access_denied")
        .expect("deny");
    assert_eq!(
        query_param(&callback, "iss").as_deref(),
        Some("https://accounts.google.com")
    );
}

// ---------------------------------------------------------------------------------------------
// Token endpoint
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn token_exchange_with_basic_auth_returns_tokens() {
    let idp = google();
    let body = google_login(&idp).await;
    assert!(body["access_token"].is_string());
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "openid email profile");
    assert!(body["id_token"].is_string());
    assert!(
        body.get("refresh_token").is_none(),
        "no offline access asked"
    );
    assert_eq!(idp.token_requests(), 1);
}

#[tokio::test]
async fn token_exchange_with_post_auth_works() {
    let idp = google();
    let callback = idp
        .authorize(&google_authorize_url(), "g-123")
        .expect("authorize");
    let code = query_param(&callback, "code").expect("code");
    let response = post_form(
        &idp,
        GOOGLE_TOKEN,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", CLIENT),
            ("client_secret", SECRET),
        ],
    )
    .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn basic_auth_form_encodes_id_and_secret() {
    let idp = google();
    let (id, secret) = ("client:with/odd chars", "p@ss+w:rd%");
    idp.register_client(id, secret);
    let url = authorize_url(
        "https://accounts.google.com/o/oauth2/v2/auth",
        "openid",
        &["client_id"],
        &[("client_id", id)],
    );
    let callback = idp.authorize(&url, "g-123").expect("authorize");
    let code = query_param(&callback, "code").expect("code");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    // Without the form-encoding step, the credentials are refused.
    let raw = STANDARD.encode(format!("{id}:{secret}"));
    let response = post_form(&idp, GOOGLE_TOKEN, Some(&raw), &form).await;
    assert_eq!(response.status(), 401);
    // That attempt spent the code? No: client authentication comes first.
    let response = post_form(&idp, GOOGLE_TOKEN, Some(&basic(id, secret)), &form).await;
    assert_eq!(
        response.status(),
        200,
        "{}",
        String::from_utf8_lossy(response.body())
    );
}

#[tokio::test]
async fn bad_client_authentication_is_invalid_client() {
    let idp = google();
    let callback = idp
        .authorize(&google_authorize_url(), "g-123")
        .expect("authorize");
    let code = query_param(&callback, "code").expect("code");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
        ("code_verifier", VERIFIER),
    ];
    let response = post_form(&idp, GOOGLE_TOKEN, Some(&basic(CLIENT, "wrong")), &form).await;
    assert_eq!(response.status(), 401);
    assert_eq!(oauth_error(&response), "invalid_client");
    assert!(response.headers().contains_key("www-authenticate"));

    let response = post_form(&idp, GOOGLE_TOKEN, None, &form).await;
    assert_eq!(response.status(), 401);
    assert_eq!(oauth_error(&response), "invalid_client");

    let response = post_form(&idp, GOOGLE_TOKEN, Some(&basic("who", SECRET)), &form).await;
    assert_eq!(oauth_error(&response), "invalid_client");

    let response = post_form(&idp, GOOGLE_TOKEN, Some("%%%not-base64"), &form).await;
    assert_eq!(oauth_error(&response), "invalid_client");

    let mut post_form_fields = form.to_vec();
    post_form_fields.push(("client_id", CLIENT));
    post_form_fields.push(("client_secret", "wrong"));
    let response = post_form(&idp, GOOGLE_TOKEN, None, &post_form_fields).await;
    assert_eq!(response.status(), 401);

    // Two methods at once is an invalid_request.
    post_form_fields.pop();
    post_form_fields.push(("client_secret", SECRET));
    let response = post_form(
        &idp,
        GOOGLE_TOKEN,
        Some(&basic(CLIENT, SECRET)),
        &post_form_fields,
    )
    .await;
    assert_eq!(response.status(), 400);
    assert_eq!(oauth_error(&response), "invalid_request");

    // The code survived all of that.
    let response = post_form(&idp, GOOGLE_TOKEN, Some(&basic(CLIENT, SECRET)), &form).await;
    assert_eq!(response.status(), 200);
    assert_eq!(idp.token_requests(), 7);
}

#[tokio::test]
async fn codes_are_single_use() {
    let idp = google();
    let callback = idp
        .authorize(&google_authorize_url(), "g-123")
        .expect("authorize");
    assert_eq!(redeem(&idp, GOOGLE_TOKEN, &callback).await.status(), 200);
    let response = redeem(&idp, GOOGLE_TOKEN, &callback).await;
    assert_eq!(response.status(), 400);
    assert_eq!(oauth_error(&response), "invalid_grant");
}

#[tokio::test]
async fn pkce_redirect_uri_and_client_are_checked_and_a_failed_attempt_burns_the_code() {
    let idp = google();
    idp.register_client("client-2", "other-secret");
    let cases: [(&str, &str, (&str, &str)); 3] = [
        (
            "wrong-verifier-wrong-verifier-wrong-verifier",
            REDIRECT,
            (CLIENT, SECRET),
        ),
        (VERIFIER, "https://app.example.test/other", (CLIENT, SECRET)),
        (VERIFIER, REDIRECT, ("client-2", "other-secret")),
    ];
    for (verifier, redirect, (id, secret)) in cases {
        let callback = idp
            .authorize(&google_authorize_url(), "g-123")
            .expect("authorize");
        let code = query_param(&callback, "code").expect("code");
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
        ];
        let response = post_form(&idp, GOOGLE_TOKEN, Some(&basic(id, secret)), &form).await;
        assert_eq!(response.status(), 400, "{verifier} {redirect} {id}");
        assert_eq!(oauth_error(&response), "invalid_grant");
        // Burned: the right request now fails too.
        assert_eq!(redeem(&idp, GOOGLE_TOKEN, &callback).await.status(), 400);
    }
    // A missing verifier is refused as well.
    let callback = idp
        .authorize(&google_authorize_url(), "g-123")
        .expect("authorize");
    let code = query_param(&callback, "code").expect("code");
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let response = post_form(&idp, GOOGLE_TOKEN, Some(&basic(CLIENT, SECRET)), &form).await;
    assert_eq!(oauth_error(&response), "invalid_grant");
}

#[tokio::test]
async fn codes_expire_after_ten_minutes_on_the_fake_clock() {
    let clock = Arc::new(ManualClock::new(start()));
    let idp = google().with_clock(clock.clone());
    let first = idp
        .authorize(&google_authorize_url(), "g-123")
        .expect("authorize");
    let second = idp
        .authorize(&google_authorize_url(), "g-123")
        .expect("authorize");
    clock.advance(time::Duration::minutes(10));
    assert_eq!(redeem(&idp, GOOGLE_TOKEN, &first).await.status(), 200);
    clock.advance(time::Duration::seconds(1));
    let response = redeem(&idp, GOOGLE_TOKEN, &second).await;
    assert_eq!(oauth_error(&response), "invalid_grant");
}

#[tokio::test]
async fn malformed_token_requests_get_oauth_errors() {
    let idp = google();
    let auth = basic(CLIENT, SECRET);
    // Not a form.
    let request = http::Request::post(GOOGLE_TOKEN)
        .header("authorization", format!("Basic {auth}"))
        .header("content-type", "application/json")
        .body(b"{}".to_vec())
        .expect("request");
    let response = idp.call(request).await.expect("call");
    assert_eq!(response.status(), 400);
    assert_eq!(oauth_error(&response), "invalid_request");
    // Garbage bytes.
    let request = http::Request::post(GOOGLE_TOKEN)
        .header("authorization", format!("Basic {auth}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'=', b'&', b'&', 0x00])
        .expect("request");
    let response = idp.call(request).await.expect("call");
    assert_eq!(response.status(), 400);
    // Duplicate parameter.
    let response = post_form(
        &idp,
        GOOGLE_TOKEN,
        Some(&auth),
        &[
            ("grant_type", "authorization_code"),
            ("code", "a"),
            ("code", "b"),
        ],
    )
    .await;
    assert_eq!(oauth_error(&response), "invalid_request");
    // No code, unknown code, unknown grant type.
    let response = post_form(
        &idp,
        GOOGLE_TOKEN,
        Some(&auth),
        &[("grant_type", "authorization_code")],
    )
    .await;
    assert_eq!(oauth_error(&response), "invalid_request");
    let response = post_form(
        &idp,
        GOOGLE_TOKEN,
        Some(&auth),
        &[("grant_type", "authorization_code"), ("code", "nope")],
    )
    .await;
    assert_eq!(oauth_error(&response), "invalid_grant");
    let response = post_form(
        &idp,
        GOOGLE_TOKEN,
        Some(&auth),
        &[("grant_type", "refresh_token"), ("refresh_token", "x")],
    )
    .await;
    assert_eq!(oauth_error(&response), "invalid_grant");
    let response = post_form(
        &idp,
        GOOGLE_TOKEN,
        Some(&auth),
        &[("grant_type", "password"), ("username", "x")],
    )
    .await;
    assert_eq!(oauth_error(&response), "unsupported_grant_type");
}

#[tokio::test]
async fn refresh_token_only_with_offline_access() {
    let idp = google();
    let url = authorize_url(
        "https://accounts.google.com/o/oauth2/v2/auth",
        "openid email",
        &[],
        &[("access_type", "offline"), ("prompt", "consent")],
    );
    let callback = idp.authorize(&url, "g-123").expect("authorize");
    let body = json(&redeem(&idp, GOOGLE_TOKEN, &callback).await);
    assert!(body["refresh_token"].is_string());
    assert!(google_login(&idp).await.get("refresh_token").is_none());
}

/// Google's authorization URL as the email-asset forms show it (the older path beside
/// `/o/oauth2/v2/auth`).
const GOOGLE_FORM_AUTHORIZE: &str = "https://accounts.google.com/o/oauth2/auth";

#[tokio::test]
async fn google_answers_a_plain_oauth2_mailbox_request_at_the_form_urls() {
    let idp = google();
    // The mail scope alone: no `openid`, so no nonce either.
    let url = authorize_url(
        GOOGLE_FORM_AUTHORIZE,
        "https://mail.google.com/",
        &["nonce"],
        &[("access_type", "offline"), ("prompt", "consent")],
    );
    let callback = idp.authorize(&url, "g-123").expect("authorize");
    assert_eq!(
        query_param(&callback, "state").as_deref(),
        Some("the-state")
    );

    let body = json(&redeem(&idp, GOOGLE_TOKEN, &callback).await);
    assert_eq!(body["scope"], "https://mail.google.com/");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body.get("id_token").is_none(), "no ID token without openid");
    let refresh_token = body["refresh_token"].as_str().expect("refresh_token");

    // The refresh URL of the form is the same token endpoint.
    let refreshed = post_form(
        &idp,
        GOOGLE_TOKEN,
        Some(&basic(CLIENT, SECRET)),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await;
    assert_eq!(refreshed.status(), 200);
    let refreshed = json(&refreshed);
    assert_eq!(refreshed["scope"], "https://mail.google.com/");
    let access_token = refreshed["access_token"].as_str().expect("access_token");
    assert_ne!(refreshed["access_token"], body["access_token"]);

    // A mail-only token is not good for userinfo: the mailbox comes from the form.
    let response = get_bearer(&idp, GOOGLE_USERINFO, access_token).await;
    assert_eq!(response.status(), 403);
    assert_eq!(oauth_error(&response), "insufficient_scope");
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .expect("ascii");
    assert!(challenge.contains("insufficient_scope"), "{challenge}");

    // Plain OAuth 2.0 with the email scope: userinfo answers, still no ID token.
    let url = authorize_url(GOOGLE_FORM_AUTHORIZE, "email profile", &["nonce"], &[]);
    let callback = idp.authorize(&url, "g-123").expect("authorize");
    let body = json(&redeem(&idp, GOOGLE_TOKEN, &callback).await);
    assert!(body.get("id_token").is_none());
    let access_token = body["access_token"].as_str().expect("access_token");
    let info = json(&get_bearer(&idp, GOOGLE_USERINFO, access_token).await);
    assert_eq!(info["email"], "alice@example.com");

    // OpenID Connect at the older path works as at the v2 path, and still needs its nonce.
    let url = authorize_url(GOOGLE_FORM_AUTHORIZE, "openid email", &["nonce"], &[]);
    assert_eq!(
        idp.authorize(&url, "g-123"),
        Err(FakeIdpError::MissingParameter("nonce"))
    );
    let url = authorize_url(GOOGLE_FORM_AUTHORIZE, "openid email", &[], &[]);
    let callback = idp.authorize(&url, "g-123").expect("authorize");
    assert!(json(&redeem(&idp, GOOGLE_TOKEN, &callback).await)["id_token"].is_string());
}

// ---------------------------------------------------------------------------------------------
// Userinfo and revocation
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn userinfo_needs_a_valid_bearer_token() {
    let idp = google();
    let body = google_login(&idp).await;
    let access_token = body["access_token"].as_str().expect("access_token");
    let response = get_bearer(&idp, GOOGLE_USERINFO, access_token).await;
    assert_eq!(response.status(), 200);
    let info = json(&response);
    assert_eq!(info["sub"], "g-123");
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["email_verified"], true);
    assert_eq!(info["name"], "Alice");
    assert_eq!(info["hd"], "example.com");

    let response = get_bearer(&idp, GOOGLE_USERINFO, "not-a-token").await;
    assert_eq!(response.status(), 401);
    let response = get(&idp, GOOGLE_USERINFO).await;
    assert_eq!(response.status(), 401);
    assert_eq!(idp.userinfo_requests(), 3);
}

#[tokio::test]
async fn access_tokens_expire_after_an_hour() {
    let clock = Arc::new(ManualClock::new(start()));
    let idp = google().with_clock(clock.clone());
    let body = google_login(&idp).await;
    let access_token = body["access_token"].as_str().expect("access_token");
    clock.advance(time::Duration::seconds(3601));
    assert_eq!(
        get_bearer(&idp, GOOGLE_USERINFO, access_token)
            .await
            .status(),
        401
    );
}

#[tokio::test]
async fn revocation_answers_200_and_kills_the_token() {
    let idp = google();
    let body = google_login(&idp).await;
    let access_token = body["access_token"].as_str().expect("access_token");
    let response = post_form(
        &idp,
        "https://oauth2.googleapis.com/revoke",
        None,
        &[("token", access_token)],
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        get_bearer(&idp, GOOGLE_USERINFO, access_token)
            .await
            .status(),
        401
    );
    let response = post_form(&idp, "https://oauth2.googleapis.com/revoke", None, &[]).await;
    assert_eq!(oauth_error(&response), "invalid_request");
}

// ---------------------------------------------------------------------------------------------
// Misbehaviours
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn bad_signature_flips_signature_bits() {
    let (idp, token) = google_token_with(Misbehavior::BadSignature).await;
    let header = jsonwebtoken::decode_header(&token).expect("header");
    let jwks = json(&get(&idp, GOOGLE_JWKS).await);
    let jwk = &jwks["keys"][0];
    assert_eq!(header.kid.as_deref(), jwk["kid"].as_str());
    let key = DecodingKey::from_rsa_components(
        jwk["n"].as_str().expect("n"),
        jwk["e"].as_str().expect("e"),
    )
    .expect("key");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[CLIENT]);
    let err = jsonwebtoken::decode::<Value>(&token, &key, &validation).expect_err("bad signature");
    assert_eq!(
        *err.kind(),
        jsonwebtoken::errors::ErrorKind::InvalidSignature
    );
    assert_eq!(signature(&token).len(), 256);
}

#[tokio::test]
async fn alg_none_has_an_empty_signature() {
    let (_, token) = google_token_with(Misbehavior::AlgNone).await;
    assert_eq!(decode_part(&token, 0)["alg"], "none");
    assert!(token.ends_with('.'));
    assert!(signature(&token).is_empty());
}

#[tokio::test]
async fn hs256_with_public_key_is_an_hmac_keyed_with_the_spki_der() {
    let (idp, token) = google_token_with(Misbehavior::Hs256WithPublicKey).await;
    assert_eq!(decode_part(&token, 0)["alg"], "HS256");
    // Rebuild the SPKI DER from the JWKS (n, e) and check the HMAC.
    let jwks = json(&get(&idp, GOOGLE_JWKS).await);
    let jwk = &jwks["keys"][0];
    let n = URL_SAFE_NO_PAD
        .decode(jwk["n"].as_str().expect("n"))
        .expect("n");
    let e = URL_SAFE_NO_PAD
        .decode(jwk["e"].as_str().expect("e"))
        .expect("e");
    let components = aws_lc_rs::rsa::PublicKeyComponents { n, e };
    let spki =
        aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der>::as_der(&components)
            .expect("DER");
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, spki.as_ref());
    let (signing_input, _) = token.rsplit_once('.').expect("JWT");
    aws_lc_rs::hmac::verify(&key, signing_input.as_bytes(), &signature(&token))
        .expect("HMAC keyed with the DER SubjectPublicKeyInfo");
}

/// A check of an ID token's claims.
type ClaimCheck = Box<dyn Fn(&Value)>;

#[tokio::test]
async fn claim_shaping_misbehaviors_do_what_they_say() {
    let now = |claims: &Value| claims["iat"].as_i64().expect("iat");
    let cases: Vec<(Misbehavior, ClaimCheck)> = vec![
        (
            Misbehavior::WrongIssuer,
            Box::new(|c| assert_ne!(c["iss"], "https://accounts.google.com")),
        ),
        (
            Misbehavior::WrongAudience,
            Box::new(|c| {
                assert_eq!(c["aud"], "other-client");
                assert!(c.get("azp").is_none());
            }),
        ),
        (
            Misbehavior::ExtraAudienceWithoutAzp,
            Box::new(|c| {
                assert_eq!(c["aud"], serde_json::json!([CLIENT, "other-client"]));
                assert!(c.get("azp").is_none());
            }),
        ),
        (
            Misbehavior::AzpMismatch,
            Box::new(|c| {
                assert_eq!(c["aud"], CLIENT);
                assert_eq!(c["azp"], "other-client");
            }),
        ),
        (
            Misbehavior::Expired,
            Box::new(move |c| {
                let exp = c["exp"].as_i64().expect("exp");
                assert!(now(c) < exp, "iat before exp");
                assert!(exp <= START - 3601);
            }),
        ),
        (
            Misbehavior::IssuedInFuture,
            Box::new(|c| {
                let start = START;
                assert_eq!(c["iat"], start + 3600);
                assert!(c["exp"].as_i64().expect("exp") > start + 3600);
            }),
        ),
        (
            Misbehavior::MissingSub,
            Box::new(|c| assert!(c.get("sub").is_none())),
        ),
        (
            Misbehavior::MissingNonce,
            Box::new(|c| assert!(c.get("nonce").is_none())),
        ),
        (
            Misbehavior::WrongNonce,
            Box::new(|c| {
                assert!(c["nonce"].is_string());
                assert_ne!(c["nonce"], "the-nonce");
            }),
        ),
        (
            Misbehavior::ExpAsString,
            Box::new(|c| {
                let start = START;
                assert_eq!(c["exp"], (start + 3600).to_string());
            }),
        ),
    ];
    for (m, check) in cases {
        let clock = Arc::new(ManualClock::new(start()));
        let idp = google().with_clock(clock);
        idp.misbehave(m);
        let body = google_login(&idp).await;
        let token = body["id_token"].as_str().expect("id_token");
        let header = decode_part(token, 0);
        assert_eq!(header["alg"], "RS256", "{m:?}");
        check(&decode_part(token, 1));
        // Signed for real: only the claims are wrong.
        let (signing_input, _) = token.rsplit_once('.').expect("JWT");
        let jwks = json(&get(&idp, GOOGLE_JWKS).await);
        let jwk = &jwks["keys"][0];
        let public = aws_lc_rs::signature::RsaPublicKeyComponents {
            n: URL_SAFE_NO_PAD
                .decode(jwk["n"].as_str().expect("n"))
                .expect("n"),
            e: URL_SAFE_NO_PAD
                .decode(jwk["e"].as_str().expect("e"))
                .expect("e"),
        };
        public
            .verify(
                &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256,
                signing_input.as_bytes(),
                &signature(token),
            )
            .unwrap_or_else(|_| panic!("{m:?}: signature verifies"));
    }
}

#[tokio::test]
async fn no_kid_with_several_keys_publishes_two_keys() {
    let (idp, token) = google_token_with(Misbehavior::NoKidWithSeveralKeys).await;
    assert!(decode_part(&token, 0).get("kid").is_none());
    assert_eq!(idp.key_ids().len(), 2);
    let jwks = json(&get(&idp, GOOGLE_JWKS).await);
    assert_eq!(jwks["keys"].as_array().expect("keys").len(), 2);
}

#[tokio::test]
async fn unknown_kid_is_never_published() {
    let (idp, token) = google_token_with(Misbehavior::UnknownKid).await;
    let kid = decode_part(&token, 0)["kid"]
        .as_str()
        .expect("kid")
        .to_owned();
    assert!(!idp.key_ids().contains(&kid));
    for _ in 0..2 {
        let jwks = json(&get(&idp, GOOGLE_JWKS).await);
        assert!(
            jwks["keys"]
                .as_array()
                .expect("keys")
                .iter()
                .all(|k| k["kid"] != kid.as_str())
        );
    }
}

#[tokio::test]
async fn token_endpoint_misbehaviors() {
    let idp = google();
    idp.misbehave(Misbehavior::TokenEndpointStatus(503));
    let callback = idp
        .authorize(&google_authorize_url(), "g-123")
        .expect("authorize");
    let response = redeem(&idp, GOOGLE_TOKEN, &callback).await;
    assert_eq!(response.status(), 503);
    assert_eq!(oauth_error(&response), "server_error");
    idp.behave();

    idp.misbehave(Misbehavior::InvalidGrant);
    let response = redeem(&idp, GOOGLE_TOKEN, &callback).await;
    assert_eq!(response.status(), 400);
    assert_eq!(oauth_error(&response), "invalid_grant");
    idp.behave();
    // Neither consumed the code.
    assert_eq!(redeem(&idp, GOOGLE_TOKEN, &callback).await.status(), 200);

    idp.misbehave(Misbehavior::NoIdToken);
    idp.misbehave(Misbehavior::TokenTypeNotBearer);
    let body = google_login(&idp).await;
    assert!(body.get("id_token").is_none());
    assert_eq!(body["token_type"], "mac");
    assert!(body["access_token"].is_string());
    idp.behave();

    idp.misbehave(Misbehavior::OversizedTokenResponse);
    let callback = idp
        .authorize(&google_authorize_url(), "g-123")
        .expect("authorize");
    let response = redeem(&idp, GOOGLE_TOKEN, &callback).await;
    assert_eq!(response.status(), 200);
    assert!(response.body().len() > 2 * 1024 * 1024);
    let body = json(&response);
    assert!(body["id_token"].is_string());
}

#[tokio::test]
async fn discovery_redirect_answers_302_elsewhere() {
    let idp = google();
    idp.misbehave(Misbehavior::DiscoveryRedirect);
    let response = get(
        &idp,
        "https://accounts.google.com/.well-known/openid-configuration",
    )
    .await;
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().expect("location");
    let location = Url::parse(location).expect("URL");
    assert_eq!(location.scheme(), "https");
    assert_ne!(location.host_str(), Some("accounts.google.com"));
    assert_eq!(idp.discovery_fetches(), 1);
}

#[tokio::test]
async fn wrong_iss_parameter_forces_a_wrong_iss() {
    let idp = google();
    idp.misbehave(Misbehavior::WrongIssParameter);
    let callback = idp
        .authorize(&google_authorize_url(), "g-123")
        .expect("authorize");
    let iss = query_param(&callback, "iss").expect("iss forced on");
    assert_ne!(iss, "https://accounts.google.com");
    let doc = json(
        &get(
            &idp,
            "https://accounts.google.com/.well-known/openid-configuration",
        )
        .await,
    );
    assert_eq!(doc["authorization_response_iss_parameter_supported"], true);
    let denied = idp
        .deny(&google_authorize_url(), "access_denied")
        .expect("deny");
    assert_eq!(query_param(&denied, "iss"), Some(iss));
}

#[tokio::test]
async fn userinfo_wrong_sub() {
    let idp = google();
    idp.misbehave(Misbehavior::UserInfoWrongSub);
    let body = google_login(&idp).await;
    let info = json(
        &get_bearer(
            &idp,
            GOOGLE_USERINFO,
            body["access_token"].as_str().expect("at"),
        )
        .await,
    );
    assert!(info["sub"].is_string());
    assert_ne!(info["sub"], "g-123");
}

#[tokio::test]
async fn behave_switches_everything_off() {
    let idp = google();
    idp.misbehave(Misbehavior::AlgNone);
    idp.misbehave(Misbehavior::WrongNonce);
    idp.misbehave(Misbehavior::WrongNonce);
    idp.behave();
    let body = google_login(&idp).await;
    let token = body["id_token"].as_str().expect("id_token");
    let claims = verify(&idp, GOOGLE_JWKS, token, "https://accounts.google.com").await;
    assert_eq!(claims["nonce"], "the-nonce");
}

#[tokio::test]
async fn entra_tenant_endpoints_and_iss_parameter() {
    let idp = FakeIdp::entra();
    idp.register_client(CLIENT, SECRET);
    let tid = "0b5f6c4e-1a2b-4c3d-8e9f-0123456789ab";
    idp.add_user(FakeUser::new("sub-1").tenant_id(tid));
    idp.set_iss_parameter(true);
    let base = format!("https://login.microsoftonline.com/{tid}");
    let url = authorize_url(&format!("{base}/oauth2/v2.0/authorize"), "openid", &[], &[]);
    let callback = idp.authorize(&url, "sub-1").expect("authorize");
    assert_eq!(
        query_param(&callback, "iss").as_deref(),
        Some(FakeIdp::entra_issuer(tid).as_str())
    );
    let response = redeem(&idp, &format!("{base}/oauth2/v2.0/token"), &callback).await;
    assert_eq!(response.status(), 200);
    let body = json(&response);
    assert!(body.get("refresh_token").is_none());
    let token = body["id_token"].as_str().expect("id_token");
    verify(
        &idp,
        &format!("{base}/discovery/v2.0/keys"),
        token,
        &FakeIdp::entra_issuer(tid),
    )
    .await;

    let url = authorize_url(
        "https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize",
        "openid",
        &[],
        &[],
    );
    let callback = idp.authorize(&url, "sub-1").expect("authorize");
    assert_eq!(
        query_param(&callback, "iss").as_deref(),
        Some("https://login.microsoftonline.com/{tenantid}/v2.0")
    );
    assert_eq!(
        idp.issuer(),
        "https://login.microsoftonline.com/{tenantid}/v2.0"
    );
    assert!(matches!(
        idp.authorize(&url.replace("organizations", "consumers"), "sub-1"),
        Err(FakeIdpError::NotAuthorizationEndpoint(_))
    ));
}
