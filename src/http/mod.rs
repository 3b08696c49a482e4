//! The transport seam: [`HttpClient`], its error, and the default reqwest implementation.
//!
//! The broker talks to providers (discovery, JWKS, token, userinfo, revocation) only through
//! [`HttpClient`]. A non-2xx status is still an `Ok` response: the broker decides what it means.
//! Redirects are never followed, whatever the client: a 3xx answer is refused by the broker.

use std::fmt;

use async_trait::async_trait;

#[cfg(feature = "reqwest")]
mod reqwest_client;
#[cfg(feature = "reqwest")]
pub use reqwest_client::{ReqwestHttpClient, ReqwestHttpClientBuilder};

/// The default cap on a provider response body: 1 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// An HTTP transport.
///
/// # Contract
///
/// - Send the request as given; do not follow redirects (return the 3xx response).
/// - Return any status, 2xx or not, as `Ok`; `Err` is for transport failures only.
/// - Put a time limit on the whole exchange and a cap on the body size.
/// - Never put the request URL, headers or body in the error: URLs and bodies carry codes and
///   secrets.
///
/// [`ReqwestHttpClient`] (feature `reqwest`, on by default) does all of this. Tests plug in
/// [`FakeIdp`](crate::testing::FakeIdp) (feature `test-util`), which answers in-process.
#[async_trait]
pub trait HttpClient: fmt::Debug + Send + Sync + 'static {
    /// Sends one request and returns the response.
    async fn call(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, HttpError>;
}

/// What went wrong in a transport, without the URL or any body.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct HttpError {
    kind: HttpErrorKind,
    message: String,
}

impl HttpError {
    /// A transport error of `kind`. `message` must not contain a URL, a header or a body.
    pub fn new(kind: HttpErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> HttpErrorKind {
        self.kind
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, HttpErrorKind::Connect | HttpErrorKind::Timeout)
    }
}

/// The kinds of [`HttpError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HttpErrorKind {
    /// The connection could not be made (DNS, TCP, TLS).
    Connect,
    /// The exchange took longer than allowed.
    Timeout,
    /// The response body is larger than the configured cap.
    BodyTooLarge,
    /// The URL is not allowed: not `https`, and not `http` on a loopback address.
    InsecureUrl,
    /// The request could not be built or sent.
    Request,
    /// The response could not be read.
    Decode,
}

impl fmt::Display for HttpErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connection failed",
            Self::Timeout => "timed out",
            Self::BodyTooLarge => "response body too large",
            Self::InsecureUrl => "URL not allowed",
            Self::Request => "request failed",
            Self::Decode => "response could not be read",
        })
    }
}

/// Whether `url` may be used for a provider endpoint: `https`, or `http` on a loopback host
/// (for development and tests).
pub(crate) fn is_allowed_endpoint(url: &url::Url) -> bool {
    match url.scheme() {
        "https" => url.host().is_some(),
        "http" => match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_policy() {
        let ok = |s: &str| is_allowed_endpoint(&url::Url::parse(s).unwrap());
        assert!(ok("https://accounts.google.com/x"));
        assert!(ok("http://127.0.0.1:8080/x"));
        assert!(ok("http://localhost/x"));
        assert!(ok("http://[::1]/x"));
        assert!(!ok("http://example.com/x"));
        assert!(!ok("http://10.0.0.1/x"));
        assert!(!ok("ftp://example.com/x"));
        assert!(!ok("file:///etc/passwd"));
    }
}
