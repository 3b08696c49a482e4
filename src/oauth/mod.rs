//! The OAuth 2.0 protocol layer: the token endpoint (code exchange, refresh, RFC 7009
//! revocation) and PKCE, on the [`oauth2`] crate.
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
mod pkce;
#[cfg(test)]
mod tests;
mod token;

pub(crate) use crate::error::TokenEndpointError;

pub(crate) use pkce::{PkceVerifier, pkce_s256};
pub(crate) use token::{TokenClient, TokenResponse};
