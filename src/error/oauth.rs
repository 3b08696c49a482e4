//! [`TokenEndpointError`], defined here so that the error primitives never import the
//! protocol layer; `oauth/error.rs` maps oauth2's errors to it.

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
