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
/// - Never put the request URL, headers or body in the error, nor in any error below it: URLs
///   and bodies carry codes and secrets. Keep the cause as the [`HttpError`]'s source
///   ([`HttpError::new`]) so that hosts can tell a refused connection from a bad certificate.
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

/// What went wrong in a transport: its [`kind`](Self::kind), and the cause, kept as the error's
/// [`source`](std::error::Error::source) (without the URL or any body).
///
/// `Display` prints the kind and the cause (`connection failed: ... Connection refused`);
/// the cause itself can be inspected through `source()`. [`ReqwestHttpClient`] keeps the
/// operating-system error under its description (a [`std::io::Error`] to downcast to, when
/// there was one) and removes the request URL from every level, as `object_store` does: URLs
/// here carry authorization codes.
#[derive(Debug)]
pub struct HttpError {
    kind: HttpErrorKind,
    source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl HttpError {
    /// A transport error of `kind` caused by `source`: an error (kept as this error's
    /// [`source`](std::error::Error::source), downcastable) or a message.
    ///
    /// Neither `source` nor any error below it may print the request URL, a header or a body:
    /// they end up in logs.
    ///
    /// ```
    /// use cx_sso::{HttpError, HttpErrorKind};
    /// use std::error::Error as _;
    ///
    /// let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
    /// let err = HttpError::new(HttpErrorKind::Connect, refused);
    /// assert!(err.is_transient());
    /// let cause = err.source().and_then(|s| s.downcast_ref::<std::io::Error>());
    /// assert_eq!(cause.map(|e| e.kind()), Some(std::io::ErrorKind::ConnectionRefused));
    ///
    /// let err = HttpError::new(HttpErrorKind::Timeout, "no answer in 5 s");
    /// assert_eq!(err.to_string(), "timed out: no answer in 5 s");
    /// ```
    pub fn new(
        kind: HttpErrorKind,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> Self {
        Self {
            kind,
            source: source.into(),
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

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.source)
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
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
    use std::error::Error as _;

    #[derive(Debug, thiserror::Error)]
    #[error("handshake failed")]
    struct Handshake(#[source] std::io::Error);

    #[test]
    fn the_cause_is_kept_and_printed() {
        let err = HttpError::new(
            HttpErrorKind::Connect,
            Handshake(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
        );
        assert_eq!(err.kind(), HttpErrorKind::Connect);
        assert_eq!(err.to_string(), "connection failed: handshake failed");
        let source = err.source().expect("a source");
        assert!(source.is::<Handshake>());
        let io = source
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .expect("the io error below");
        assert_eq!(io.kind(), std::io::ErrorKind::ConnectionReset);
        // A message is a source too.
        let err = HttpError::new(HttpErrorKind::Decode, String::from("truncated body"));
        assert_eq!(
            err.source().map(|s| s.to_string()).as_deref(),
            Some("truncated body")
        );
    }

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
