//! The token endpoint (authorization-code and refresh grants, client authentication) and the
//! revocation endpoint.

use std::collections::HashMap;
use std::sync::MutexGuard;
use std::sync::atomic::Ordering;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http::{StatusCode, header};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::id_token::sign_id_token;
use super::keys::random_token;
use super::knobs::Misbehavior;
use super::wire::{
    Refusal, Response, error_response, json_response, parse_form_request, strip_scheme,
};
use super::{FakeIdp, State, TOKEN_TTL_SECS};

impl FakeIdp {
    pub(super) fn token(&self, request: &http::Request<Vec<u8>>) -> Response {
        let form = match parse_form_request(request) {
            Ok(form) => form,
            Err(refusal) => return refusal.into_response(),
        };
        if form.get("grant_type").map(String::as_str) == Some("refresh_token") {
            self.inner.refresh_requests.fetch_add(1, Ordering::Relaxed);
        }
        let mut state = self.state();
        for m in &state.misbehaviors {
            match m {
                Misbehavior::TokenEndpointStatus(status) => {
                    let status =
                        StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    return error_response(status, "server_error");
                }
                Misbehavior::InvalidGrant => {
                    return error_response(StatusCode::BAD_REQUEST, "invalid_grant");
                }
                _ => {}
            }
        }
        let client_id = match authenticate_client(&state.clients, request, &form) {
            Ok(id) => id,
            Err(refusal) => return refusal.into_response(),
        };
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => {}
            Some("refresh_token") => return self.refresh_grant(state, &form, &client_id),
            Some(_) => return error_response(StatusCode::BAD_REQUEST, "unsupported_grant_type"),
            None => return error_response(StatusCode::BAD_REQUEST, "invalid_request"),
        }
        let Some(code) = form.get("code") else {
            return error_response(StatusCode::BAD_REQUEST, "invalid_request");
        };
        // Single use: taken out whatever happens next.
        let Some(issued) = state.codes.remove(code) else {
            return error_response(StatusCode::BAD_REQUEST, "invalid_grant");
        };
        let now = state.clock.now().unix_timestamp();
        let verifier_ok = form
            .get("code_verifier")
            .is_some_and(|v| pkce_matches(v, &issued.code_challenge));
        if now > issued.expires_at
            || issued.client_id != client_id
            || form.get("redirect_uri") != Some(&issued.redirect_uri)
            || !verifier_ok
        {
            return error_response(StatusCode::BAD_REQUEST, "invalid_grant");
        }

        let access_token = issued.access_token;
        let mut grant = issued.grant;
        grant.expires_at = now + TOKEN_TTL_SECS;
        let refresh_token = issued.offline.then(|| random_token(32));
        if let Some(rt) = &refresh_token {
            state.refresh_tokens.insert(rt.clone(), grant.clone());
        }
        let scope = grant.scope.clone();
        state.access_tokens.insert(access_token.clone(), grant);
        let active = |m: Misbehavior| state.misbehaviors.contains(&m);
        let mut body = Map::new();
        body.insert("access_token".into(), json!(access_token));
        body.insert(
            "token_type".into(),
            json!(if active(Misbehavior::TokenTypeNotBearer) {
                "mac"
            } else {
                "Bearer"
            }),
        );
        body.insert("expires_in".into(), json!(TOKEN_TTL_SECS));
        body.insert("scope".into(), json!(scope));
        if let Some(id_token) = issued.id_token
            && !active(Misbehavior::NoIdToken)
        {
            body.insert("id_token".into(), Value::String(id_token));
        }
        if let Some(rt) = refresh_token {
            body.insert("refresh_token".into(), json!(rt));
        }
        if active(Misbehavior::OversizedTokenResponse) {
            body.insert("padding".into(), json!("x".repeat(2 * 1024 * 1024 + 1)));
        }
        drop(state);
        json_response(StatusCode::OK, &Value::Object(body))
    }

    pub(super) fn revoke(&self, request: &http::Request<Vec<u8>>) -> Response {
        let form = match parse_form_request(request) {
            Ok(form) => form,
            Err(refusal) => return refusal.into_response(),
        };
        let Some(token) = form.get("token") else {
            return error_response(StatusCode::BAD_REQUEST, "invalid_request");
        };
        let mut state = self.state();
        state.access_tokens.remove(token);
        state.refresh_tokens.remove(token);
        drop(state);
        http::Response::builder()
            .status(StatusCode::OK)
            .body(Vec::new())
            .unwrap_or_default()
    }
}

impl FakeIdp {
    /// The `refresh_token` grant: a new access token for the same consent; with rotation, a new
    /// refresh token too, and reuse detection; with [`FakeIdp::set_refresh_id_token`], a new ID
    /// token.
    fn refresh_grant(
        &self,
        mut state: MutexGuard<'_, State>,
        form: &HashMap<String, String>,
        client_id: &str,
    ) -> Response {
        if state
            .misbehaviors
            .contains(&Misbehavior::RefreshInvalidGrant)
        {
            return error_response(StatusCode::BAD_REQUEST, "invalid_grant");
        }
        let Some(presented) = form.get("refresh_token") else {
            return error_response(StatusCode::BAD_REQUEST, "invalid_request");
        };
        if let Some(family) = state.used_refresh_tokens.remove(presented) {
            // Reuse of a rotated-out token: someone has a copy. Revoke the whole consent, as
            // Entra and OAuth 2.0 Security BCP §4.14 do.
            state.refresh_tokens.map.retain(|_, g| g.family != family);
            return error_response(StatusCode::BAD_REQUEST, "invalid_grant");
        }
        let Some(grant) = state.refresh_tokens.get(presented).cloned() else {
            return error_response(StatusCode::BAD_REQUEST, "invalid_grant");
        };
        if grant.client_id != client_id {
            return error_response(StatusCode::BAD_REQUEST, "invalid_grant");
        }
        let now = state.clock.now().unix_timestamp();
        let access_token = random_token(32);
        let mut access_grant = grant.clone();
        access_grant.expires_at = now + TOKEN_TTL_SECS;
        state
            .access_tokens
            .insert(access_token.clone(), access_grant);
        let rotated = if state.refresh_rotation {
            let next = random_token(32);
            state.refresh_tokens.remove(presented);
            state
                .used_refresh_tokens
                .insert(presented.clone(), grant.family.clone());
            state.refresh_tokens.insert(next.clone(), grant.clone());
            Some(next)
        } else {
            None
        };
        let openid = grant.scope.split(' ').any(|s| s == "openid");
        let id_token = match state.users.get(&grant.subject) {
            Some(user) if state.refresh_id_token && openid => {
                // OpenID Connect Core §12.2: no nonce in a refreshed ID token.
                let mut claims = self.id_token_claims(&state, user, &grant.client_id, "", now);
                claims.remove("nonce");
                let digest = Sha256::digest(access_token.as_bytes());
                let (left, _) = digest.split_at(digest.len() / 2);
                claims.insert("at_hash".into(), json!(URL_SAFE_NO_PAD.encode(left)));
                match sign_id_token(&state, &claims) {
                    Ok(t) => Some(t),
                    Err(_) => {
                        return error_response(StatusCode::INTERNAL_SERVER_ERROR, "server_error");
                    }
                }
            }
            _ => None,
        };
        drop(state);
        let mut body = Map::new();
        body.insert("access_token".into(), json!(access_token));
        body.insert("token_type".into(), json!("Bearer"));
        body.insert("expires_in".into(), json!(TOKEN_TTL_SECS));
        body.insert("scope".into(), json!(grant.scope));
        if let Some(rt) = rotated {
            body.insert("refresh_token".into(), json!(rt));
        }
        if let Some(id_token) = id_token {
            body.insert("id_token".into(), json!(id_token));
        }
        json_response(StatusCode::OK, &Value::Object(body))
    }
}

/// Authenticates the client with `client_secret_basic` or `client_secret_post` (exactly one).
/// Returns the client id, or the error response.
fn authenticate_client(
    clients: &HashMap<String, String>,
    request: &http::Request<Vec<u8>>,
    form: &HashMap<String, String>,
) -> Result<String, Refusal> {
    let basic = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| strip_scheme(v, "Basic"));
    let (client_id, secret, used_basic) = match (basic, form.get("client_secret")) {
        (Some(_), Some(_)) => {
            // RFC 6749 §2.3: a client MUST NOT use more than one authentication method.
            return Err(Refusal::InvalidRequest);
        }
        (Some(credentials), None) => match decode_basic(credentials) {
            Some((id, secret)) => {
                if form.get("client_id").is_some_and(|body_id| *body_id != id) {
                    return Err(Refusal::InvalidClient { basic: true });
                }
                (id, secret, true)
            }
            None => return Err(Refusal::InvalidClient { basic: true }),
        },
        (None, Some(secret)) => match form.get("client_id") {
            Some(id) => (id.clone(), secret.clone(), false),
            None => return Err(Refusal::InvalidClient { basic: false }),
        },
        (None, None) => return Err(Refusal::InvalidClient { basic: false }),
    };
    let accepted = clients
        .get(&client_id)
        .is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(secret.as_bytes())));
    if accepted {
        Ok(client_id)
    } else {
        Err(Refusal::InvalidClient { basic: used_basic })
    }
}

/// `base64(urlencode(id) ":" urlencode(secret))` → `(id, secret)` (RFC 6749 §2.3.1).
fn decode_basic(credentials: &str) -> Option<(String, String)> {
    let decoded = STANDARD.decode(credentials.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

/// `BASE64URL(SHA256(verifier)) == challenge`.
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let encoded = STANDARD.encode("my%3Aclient:s%2Bcr+t%25");
        assert_eq!(
            decode_basic(&encoded),
            Some(("my:client".to_owned(), "s+cr t%".to_owned()))
        );
        assert_eq!(decode_basic("!!!"), None);
        assert_eq!(decode_basic(&STANDARD.encode("no-colon")), None);
    }
}
