//! The discovery document and the JWKS endpoint.

use http::{StatusCode, header};
use serde_json::{Value, json};

use super::knobs::Misbehavior;
use super::routes::Personality;
use super::wire::{Response, json_response};
use super::{ENTRA_HOST, FakeIdp, Inner};

/// Where [`Misbehavior::DiscoveryRedirect`] points.
const REDIRECT_LOCATION: &str = "https://elsewhere.example.test/.well-known/openid-configuration";

const ENTRA_USERINFO: &str = "https://graph.microsoft.com/oidc/userinfo";

impl Inner {
    pub(super) fn discovery_document(
        &self,
        entra_segment: Option<&str>,
        iss_parameter: bool,
    ) -> Value {
        let issuer = self.metadata_issuer(entra_segment);
        let mut doc = match &self.personality {
            Personality::Oidc(routes) | Personality::Google(routes) => {
                let u = &routes.urls;
                let google = self.personality.is_google();
                let mut claims = vec![
                    "aud",
                    "email",
                    "email_verified",
                    "exp",
                    "iat",
                    "iss",
                    "name",
                    "nonce",
                    "sub",
                ];
                if google {
                    claims.push("hd");
                }
                let mut doc = json!({
                    "issuer": issuer,
                    "authorization_endpoint": u.authorize,
                    "token_endpoint": u.token,
                    "userinfo_endpoint": u.userinfo,
                    "jwks_uri": u.jwks,
                    "response_types_supported": ["code"],
                    "response_modes_supported": ["query"],
                    "subject_types_supported": ["public"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "scopes_supported": if google {
                        json!(["openid", "email", "profile"])
                    } else {
                        json!(["openid", "email", "profile", "offline_access"])
                    },
                    "token_endpoint_auth_methods_supported":
                        ["client_secret_basic", "client_secret_post"],
                    "claims_supported": claims,
                    "code_challenge_methods_supported": ["S256"],
                    "grant_types_supported": ["authorization_code", "refresh_token"],
                });
                if let (Some(revoke), Some(obj)) = (&u.revoke, doc.as_object_mut()) {
                    obj.insert("revocation_endpoint".to_owned(), json!(revoke));
                }
                doc
            }
            Personality::Entra => {
                let x = entra_segment.unwrap_or("organizations");
                let base = format!("https://{ENTRA_HOST}/{x}");
                json!({
                    "issuer": issuer,
                    "authorization_endpoint": format!("{base}/oauth2/v2.0/authorize"),
                    "token_endpoint": format!("{base}/oauth2/v2.0/token"),
                    "userinfo_endpoint": ENTRA_USERINFO,
                    "jwks_uri": format!("{base}/discovery/v2.0/keys"),
                    "response_types_supported": ["code"],
                    "response_modes_supported": ["query"],
                    "subject_types_supported": ["pairwise"],
                    "id_token_signing_alg_values_supported": ["RS256"],
                    "scopes_supported": ["openid", "profile", "email", "offline_access"],
                    "token_endpoint_auth_methods_supported":
                        ["client_secret_basic", "client_secret_post"],
                    "claims_supported": [
                        "sub", "iss", "aud", "exp", "iat", "nonce", "name", "email",
                        "preferred_username", "tid", "oid", "ver", "xms_edov"
                    ],
                    "code_challenge_methods_supported": ["S256"],
                    "grant_types_supported": ["authorization_code", "refresh_token"],
                    "tenant_region_scope": null,
                })
            }
        };
        if iss_parameter && let Some(obj) = doc.as_object_mut() {
            obj.insert(
                "authorization_response_iss_parameter_supported".to_owned(),
                Value::Bool(true),
            );
        }
        doc
    }
}

impl FakeIdp {
    pub(super) fn discovery(&self, segment: Option<&str>) -> Response {
        let (iss_parameter, es256) = {
            let state = self.state();
            if state.misbehaviors.contains(&Misbehavior::DiscoveryRedirect) {
                return http::Response::builder()
                    .status(StatusCode::FOUND)
                    .header(header::LOCATION, REDIRECT_LOCATION)
                    .body(Vec::new())
                    .unwrap_or_default();
            }
            (
                state.iss_parameter || state.misbehaviors.contains(&Misbehavior::WrongIssParameter),
                state.keys.iter().any(|k| k.alg() == "ES256"),
            )
        };
        let mut doc = self.inner.discovery_document(segment, iss_parameter);
        if es256 && let Some(obj) = doc.as_object_mut() {
            obj.insert(
                "id_token_signing_alg_values_supported".to_owned(),
                json!(["RS256", "ES256"]),
            );
        }
        json_response(StatusCode::OK, &doc)
    }

    pub(super) fn jwks(&self) -> Response {
        let keys: Vec<Value> = self.state().keys.iter().map(|k| k.jwk.clone()).collect();
        json_response(StatusCode::OK, &json!({ "keys": keys }))
    }
}
