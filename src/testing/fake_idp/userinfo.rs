//! The userinfo endpoint.

use http::{StatusCode, header};
use serde_json::{Map, Value, json};

use super::FakeIdp;
use super::knobs::Misbehavior;
use super::wire::{Response, json_response, strip_scheme};

impl FakeIdp {
    /// `Authorization: Bearer <access token>`: the user's claims. An unknown or expired token
    /// is a 401 `invalid_token`; a token whose scope holds none of `openid`, `email` and
    /// `profile` (a plain OAuth 2.0 mail-only token) is a 403 `insufficient_scope`.
    pub(super) fn userinfo(&self, request: &http::Request<Vec<u8>>) -> Response {
        let unauthorized = || {
            http::Response::builder()
                .status(StatusCode::UNAUTHORIZED)
                .header(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")
                .header(header::CONTENT_TYPE, "application/json")
                .body(br#"{"error":"invalid_token"}"#.to_vec())
                .unwrap_or_default()
        };
        let Some(token) = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| strip_scheme(v, "Bearer"))
        else {
            return unauthorized();
        };
        let state = self.state();
        let now = state.clock.now().unix_timestamp();
        let Some(grant) = state
            .access_tokens
            .get(token)
            .filter(|g| now <= g.expires_at)
        else {
            return unauthorized();
        };
        if !grant
            .scope
            .split(' ')
            .any(|s| matches!(s, "openid" | "email" | "profile"))
        {
            // RFC 6750 §3.1: a valid token without a scope userinfo serves (a mail-only token).
            return http::Response::builder()
                .status(StatusCode::FORBIDDEN)
                .header(
                    header::WWW_AUTHENTICATE,
                    "Bearer error=\"insufficient_scope\", scope=\"openid email profile\"",
                )
                .header(header::CONTENT_TYPE, "application/json")
                .body(br#"{"error":"insufficient_scope"}"#.to_vec())
                .unwrap_or_default();
        }
        let Some(user) = state.users.get(&grant.subject) else {
            return unauthorized();
        };
        let personality = &self.inner.personality;
        let mut body = Map::new();
        let sub = if state.misbehaviors.contains(&Misbehavior::UserInfoWrongSub) {
            format!("other-{}", user.subject)
        } else {
            user.subject.clone()
        };
        body.insert("sub".into(), json!(sub));
        if let Some(email) = &user.email {
            body.insert("email".into(), json!(email));
            if !personality.is_entra() {
                body.insert("email_verified".into(), json!(user.email_verified));
            }
        }
        if let Some(name) = &user.name {
            body.insert("name".into(), json!(name));
        }
        if personality.is_google()
            && let Some(hd) = &user.hosted_domain
        {
            body.insert("hd".into(), json!(hd));
        }
        drop(state);
        json_response(StatusCode::OK, &Value::Object(body))
    }
}
