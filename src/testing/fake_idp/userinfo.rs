//! The userinfo endpoint.

use http::{StatusCode, header};
use serde_json::{Map, Value, json};

use super::FakeIdp;
use super::knobs::Misbehavior;
use super::wire::{Response, json_response, strip_scheme};

impl FakeIdp {
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
