//! The OAuth 2.0 / OpenID Connect protocol layer: the token endpoint (code exchange, refresh,
//! RFC 7009 revocation) and PKCE on the [`oauth2`] crate; discovery documents and key sets
//! (`metadata.rs`, on `openidconnect`), userinfo (`userinfo.rs`), and ID-token verification (`id_token.rs`, signatures on
//! `jsonwebtoken`). It takes plain parameters ([`Env`], [`ClientCredentials`],
//! [`MetadataSource`], [`IdTokenRules`]): nothing here imports a capability.
//!
//! The rest of the crate sees [`TokenClient`], [`TokenResponse`], [`PkceVerifier`] and
//! [`TokenEndpointError`]; oauth2's typestate client and its request and response types stay
//! inside this module, behind aliases in `token.rs`.
//!
//! - `http_adapter.rs`: oauth2's [`AsyncHttpClient`](oauth2::AsyncHttpClient) over the
//!   broker's [`HttpClient`](crate::HttpClient). It applies the response-size cap and reads a
//!   5xx as a transient failure before oauth2 parses anything, and remembers the status so that
//!   an error body oauth2 cannot parse still says which status it came with.
//! - `token.rs`: code exchange (with the PKCE verifier and the redirect URI), refresh,
//!   revocation and the client-authentication probe; `client_secret_basic` (oauth2 form-urlencodes
//!   the id and secret first, RFC 6749 §2.3.1) and `client_secret_post`.
//! - `pkce.rs`: the S256 challenge of a login.
//! - `error.rs`: the mapping of oauth2's errors to [`TokenEndpointError`] (defined in the
//!   crate's error primitives).
//!
//! # What stays hand-written, and why
//!
//! - The mapping of oauth2's `RequestTokenError` to [`TokenEndpointError`]: oauth2's `Parse`
//!   error keeps the whole response body and its `Display` ("failed to parse server response")
//!   hides the cause; ours keeps the cause (serde's category, position and field path) and never
//!   the data, which can hold tokens.
//! - oauth2's copies of secrets (its `ClientSecret`, the `RefreshToken` it sends, the tokens it
//!   parses) are plain `String`s, dropped without zeroizing as soon as the request is done, like
//!   the request and response bodies they travel in. The long-lived copies are ours, and are
//!   zeroized on drop.
//!
//! # Behaviour that comes from oauth2
//!
//! - oauth2 revokes only at `https` endpoints, loopback included (RFC 7009 §2.1). The crate
//!   admits loopback `http` for development and tests everywhere, so a loopback `http`
//!   revocation endpoint (and only that) gets the same RFC 7009 request written out in
//!   `token.rs`; [`TokenEndpointError::InsecureEndpoint`] remains for a URL oauth2 refuses.
//! - A `200` token response whose `Content-Type` is present and not `application/json`
//!   (RFC 6749 §5.1), or whose `expires_in` is not a non-negative integer, is
//!   [`TokenEndpointError::Invalid`].

mod error;
mod http_adapter;
mod id_token;
mod metadata;
mod pkce;
#[cfg(test)]
mod tests;
mod token;
mod userinfo;

use std::sync::Arc;

use time::Duration;

use crate::clock::Clock;
pub(crate) use crate::error::TokenEndpointError;
use crate::http::HttpClient;

pub(crate) use id_token::{
    ENTRA_ISSUER_TEMPLATE, IdClaims, IdTokenRules, IssuerRule, verify, verify_refreshed,
};
pub(crate) use metadata::{
    DEFAULT_METADATA_CACHE_CAPACITY, MetadataCache, MetadataSource, ProviderMetadata,
};
pub(crate) use pkce::{PkceVerifier, pkce_s256};
pub use token::ClientAuthMethod;
pub(crate) use token::{ClientCredentials, TokenClient, TokenResponse};
pub(crate) use userinfo::fetch_userinfo;

/// What the protocol layer takes from the broker: its transport, its clock and its limits, as
/// plain values. Nothing below the capabilities sees a provider configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Env<'a> {
    /// The transport to providers.
    pub(crate) http: &'a Arc<dyn HttpClient>,
    /// The broker's clock: every time check reads it, never the system time.
    pub(crate) clock: &'a Arc<dyn Clock>,
    /// The largest provider response accepted.
    pub(crate) max_response_bytes: usize,
    /// How long discovery documents and key sets are cached.
    pub(crate) metadata_ttl: Duration,
    /// How many providers' metadata the cache holds at most.
    pub(crate) metadata_cache_capacity: usize,
    /// The least time between two key-set refetches caused by unknown `kid`s.
    pub(crate) jwks_refetch_cooldown: Duration,
    /// Clock-skew leeway for `exp` and `iat`.
    pub(crate) leeway: Duration,
}
