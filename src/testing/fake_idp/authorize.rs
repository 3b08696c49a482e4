//! The authorize step: the user consenting ([`FakeIdp::authorize`]) or refusing
//! ([`FakeIdp::deny`]), and why a request is refused ([`FakeIdpError`]).

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use url::Url;

use super::id_token::sign_id_token;
use super::keys::random_token;
use super::knobs::Misbehavior;
use super::routes::Endpoint;
use super::{FakeIdp, Grant, IssuedCode, State, WRONG_ISSUER};

/// How long an authorization code stays redeemable, in seconds (10 minutes).
const CODE_TTL_SECS: i64 = 600;

/// Why [`FakeIdp::authorize`] or [`FakeIdp::deny`] refused an authorization URL: the relying
/// party under test built a request that the provider would refuse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FakeIdpError {
    /// The URL does not parse.
    #[error("the authorization URL does not parse: {0}")]
    InvalidUrl(String),
    /// The URL is not this provider's authorization endpoint.
    #[error("not this provider's authorization endpoint: {0}")]
    NotAuthorizationEndpoint(String),
    /// A required parameter is missing (or empty).
    #[error("parameter `{0}` is missing")]
    MissingParameter(&'static str),
    /// A parameter appears more than once.
    #[error("parameter `{0}` appears more than once")]
    DuplicateParameter(String),
    /// A parameter has a value the provider does not accept (`response_type` not `code`,
    /// `code_challenge_method` not `S256`, ...).
    #[error("parameter `{name}` is not acceptable: {reason}")]
    InvalidParameter {
        /// The parameter.
        name: &'static str,
        /// Why.
        reason: String,
    },
    /// No client with this id was registered with [`FakeIdp::register_client`].
    #[error("unknown client `{0}`")]
    UnknownClient(String),
    /// No user with this subject was added with [`FakeIdp::add_user`].
    #[error("unknown user `{0}`")]
    UnknownUser(String),
    /// Signing the ID token failed (should not happen).
    #[error("signing failed")]
    Signing,
}

/// The query of an authorization URL, with duplicates refused.
struct Query(HashMap<String, String>);

impl Query {
    fn parse(url: &Url) -> Result<Self, FakeIdpError> {
        let mut map = HashMap::new();
        for (k, v) in url.query_pairs() {
            if map.insert(k.to_string(), v.into_owned()).is_some() {
                return Err(FakeIdpError::DuplicateParameter(k.into_owned()));
            }
        }
        Ok(Self(map))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn require(&self, name: &'static str) -> Result<&str, FakeIdpError> {
        self.get(name).ok_or(FakeIdpError::MissingParameter(name))
    }
}

impl FakeIdp {
    /// Plays the user `subject` consenting at the provider to the authorization request
    /// `authorize_url` (as built by the relying party), and returns the query of the callback
    /// the browser would bring back, without `?`: `code=...&state=...`, plus `&iss=...` when the
    /// `iss` parameter is on.
    ///
    /// Checks what the provider would: this provider's authorization endpoint,
    /// `response_type=code`, a registered `client_id`, a `redirect_uri`, a `scope`, `state`, a
    /// `code_challenge` with `code_challenge_method=S256`, the user, and a `nonce` when `scope`
    /// holds `openid`. The code is random, single-use and valid 10 minutes. The ID token is
    /// signed here, not at the token endpoint, so that timing the token exchange does not time
    /// the provider's signing.
    ///
    /// Without `openid` in `scope` the request is plain OAuth 2.0, as a mailbox form sends it
    /// (scope `https://mail.google.com/` alone): no nonce is needed and the token endpoint
    /// answers no ID token.
    ///
    /// A refresh token is issued at the exchange when `scope` holds `offline_access` or the URL
    /// says `access_type=offline`.
    pub fn authorize(&self, authorize_url: &str, subject: &str) -> Result<String, FakeIdpError> {
        let (url, entra_segment) = self.parse_authorize_url(authorize_url)?;
        let query = Query::parse(&url)?;
        let response_type = query.require("response_type")?;
        if response_type != "code" {
            return Err(FakeIdpError::InvalidParameter {
                name: "response_type",
                reason: format!("`{response_type}` is not supported, only `code`"),
            });
        }
        let client_id = query.require("client_id")?;
        let redirect_uri = query.require("redirect_uri")?;
        let scope = query.require("scope")?;
        let openid = scope.split(' ').any(|s| s == "openid");
        let state_param = query.require("state")?;
        // OpenID Connect only: a plain OAuth 2.0 request has no nonce to echo.
        let nonce = if openid {
            Some(query.require("nonce")?)
        } else {
            None
        };
        let code_challenge = query.require("code_challenge")?;
        let method = query.require("code_challenge_method")?;
        if method != "S256" {
            return Err(FakeIdpError::InvalidParameter {
                name: "code_challenge_method",
                reason: format!("`{method}` is not supported, only `S256`"),
            });
        }
        let offline = scope.split(' ').any(|s| s == "offline_access")
            || query.get("access_type") == Some("offline");

        let mut state = self.state();
        if !state.clients.contains_key(client_id) {
            return Err(FakeIdpError::UnknownClient(client_id.to_owned()));
        }
        let user = state
            .users
            .get(subject)
            .ok_or_else(|| FakeIdpError::UnknownUser(subject.to_owned()))?;
        let now = state.clock.now().unix_timestamp();
        let access_token = random_token(32);
        let id_token = match nonce {
            Some(nonce) => {
                let mut claims = self.id_token_claims(&state, user, client_id, nonce, now);
                let hashed = if state.misbehaviors.contains(&Misbehavior::WrongAtHash) {
                    random_token(32)
                } else {
                    access_token.clone()
                };
                // OpenID Connect Core 3.1.3.6: the left half of the SHA-256 (RS256) of the
                // access token.
                let digest = Sha256::digest(hashed.as_bytes());
                let (left, _) = digest.split_at(digest.len() / 2);
                claims.insert("at_hash".into(), json!(URL_SAFE_NO_PAD.encode(left)));
                Some(sign_id_token(&state, &claims)?)
            }
            None => None,
        };
        let code = random_token(32);
        let grant = Grant {
            subject: subject.to_owned(),
            client_id: client_id.to_owned(),
            scope: scope.to_owned(),
            expires_at: 0,
            family: random_token(16),
        };
        state.codes.insert(
            code.clone(),
            IssuedCode {
                client_id: client_id.to_owned(),
                redirect_uri: redirect_uri.to_owned(),
                code_challenge: code_challenge.to_owned(),
                expires_at: now + CODE_TTL_SECS,
                id_token,
                access_token,
                grant,
                offline,
            },
        );
        let iss = self.callback_iss(&state, entra_segment.as_deref());
        drop(state);

        let mut out = url::form_urlencoded::Serializer::new(String::new());
        out.append_pair("code", &code);
        out.append_pair("state", state_param);
        if let Some(iss) = iss {
            out.append_pair("iss", &iss);
        }
        Ok(out.finish())
    }

    /// Plays the user (or the provider) refusing the authorization request: returns the callback
    /// query `error=<error>&state=...` (plus `&iss=...` when the `iss` parameter is on).
    /// `error` is typically `access_denied`.
    pub fn deny(&self, authorize_url: &str, error: &str) -> Result<String, FakeIdpError> {
        let (url, entra_segment) = self.parse_authorize_url(authorize_url)?;
        let query = Query::parse(&url)?;
        let state_param = query.require("state")?;
        let iss = self.callback_iss(&self.state(), entra_segment.as_deref());
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        out.append_pair("error", error);
        out.append_pair("state", state_param);
        if let Some(iss) = iss {
            out.append_pair("iss", &iss);
        }
        Ok(out.finish())
    }

    fn parse_authorize_url(
        &self,
        authorize_url: &str,
    ) -> Result<(Url, Option<String>), FakeIdpError> {
        let url = Url::parse(authorize_url).map_err(|e| FakeIdpError::InvalidUrl(e.to_string()))?;
        match self.inner.route(&url) {
            Some((Endpoint::Authorize, segment)) => Ok((url, segment)),
            _ => {
                let mut shown = url.clone();
                shown.set_query(None);
                Err(FakeIdpError::NotAuthorizationEndpoint(shown.to_string()))
            }
        }
    }

    fn callback_iss(&self, state: &State, entra_segment: Option<&str>) -> Option<String> {
        if state.misbehaviors.contains(&Misbehavior::WrongIssParameter) {
            Some(WRONG_ISSUER.to_owned())
        } else if state.iss_parameter {
            Some(self.inner.metadata_issuer(entra_segment))
        } else {
            None
        }
    }
}
