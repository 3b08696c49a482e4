//! [`TokenEndpointError`] and the [`IdTokenAlgorithm`] an [`IdTokenError`](super::IdTokenError)
//! names, defined here so that the error primitives never import the protocol layer or the
//! providers; `oauth/error.rs` maps oauth2's errors to [`TokenEndpointError`].

use serde::{Deserialize, Serialize};

use super::{ConfigError, Error};
use crate::http::HttpError;

/// Why the token endpoint exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenEndpointError {
    /// The code (or refresh token) was refused: `invalid_grant`.
    #[error("grant refused (invalid_grant)")]
    InvalidGrant,
    /// The client authentication was refused: `invalid_client` (a wrong client secret).
    #[error("client authentication refused (invalid_client)")]
    InvalidClient,
    /// Another OAuth error code.
    #[error("OAuth error `{0}`")]
    OAuth(String),
    /// A server error (5xx): transient, try again later.
    #[error("server error (status {0})")]
    ServerError(u16),
    /// Another unexpected status.
    #[error("unexpected status {0}")]
    Status(u16),
    /// The response is larger than the cap.
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    /// The response is not a valid token response.
    #[error("invalid token response: {0}")]
    Invalid(String),
    /// `token_type` is not `Bearer`.
    #[error("token_type is not Bearer")]
    NotBearer,
    /// The response has no `id_token`.
    #[error("the token response has no id_token")]
    MissingIdToken,
    /// The endpoint (named here) is not `https`, so nothing was sent. A revocation endpoint
    /// must be `https` even on a loopback address (RFC 7009 §2).
    #[error("the {0} endpoint is not https; nothing was sent")]
    InsecureEndpoint(&'static str),
    /// The transport failed.
    #[error("{0}")]
    Http(#[source] HttpError),
}

impl TokenEndpointError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::ServerError(_) => true,
            Self::Http(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// The algorithms an ID token may be signed with (never `none` or HMAC), for
/// [`ProviderConfig::with_id_token_signed_response_alg`](crate::ProviderConfig::with_id_token_signed_response_alg). Written as in JOSE (`"RS256"`) in
/// text and in serialised configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum IdTokenAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (`RS256`), what Google and Entra sign with.
    #[serde(rename = "RS256")]
    Rs256,
    /// RSASSA-PSS with SHA-256 (`PS256`).
    #[serde(rename = "PS256")]
    Ps256,
    /// ECDSA P-256 with SHA-256 (`ES256`).
    #[serde(rename = "ES256")]
    Es256,
    /// EdDSA (Ed25519) (`EdDSA`).
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl IdTokenAlgorithm {
    pub(crate) const ALL: [Self; 4] = [Self::Rs256, Self::Ps256, Self::Es256, Self::EdDsa];

    /// The JOSE name, such as `"RS256"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Ps256 => "PS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The jsonwebtoken algorithm.
    pub(crate) fn jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Rs256 => jsonwebtoken::Algorithm::RS256,
            Self::Ps256 => jsonwebtoken::Algorithm::PS256,
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
            Self::EdDsa => jsonwebtoken::Algorithm::EdDSA,
        }
    }
}

impl std::fmt::Display for IdTokenAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for IdTokenAlgorithm {
    type Err = Error;

    /// Parses a JOSE name (`"RS256"`, `"PS256"`, `"ES256"`, `"EdDSA"`, exactly).
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| {
                ConfigError::Invalid {
                    what: "id_token_signed_response_alg",
                    reason: "must be one of RS256, PS256, ES256, EdDSA (never none or HMAC)".into(),
                }
                .into()
            })
    }
}
