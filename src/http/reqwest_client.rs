//! [`HttpClient`] over reqwest, with the limits a provider-facing client needs.

use std::time::Duration;

use async_trait::async_trait;

use super::{
    DEFAULT_MAX_RESPONSE_BYTES, HttpClient, HttpError, HttpErrorKind, is_allowed_endpoint,
};

/// The default [`HttpClient`]: reqwest with rustls, no redirects, timeouts and a body cap.
///
/// ```
/// # fn main() -> Result<(), cx_sso::Error> {
/// use std::time::Duration;
/// let client = cx_sso::ReqwestHttpClient::builder()
///     .timeout(Duration::from_secs(5))
///     .max_response_bytes(256 * 1024)
///     .build()?;
/// # let _ = client; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ReqwestHttpClient {
    client: reqwest::Client,
    max_response_bytes: usize,
}

/// Builder for [`ReqwestHttpClient`].
#[derive(Debug, Clone)]
pub struct ReqwestHttpClientBuilder {
    connect_timeout: Duration,
    timeout: Duration,
    max_response_bytes: usize,
}

impl Default for ReqwestHttpClientBuilder {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(15),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

impl ReqwestHttpClientBuilder {
    /// Time allowed to establish a connection (default 5 s).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Time allowed for the whole exchange, body included (default 15 s).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// The largest response body accepted (default [`DEFAULT_MAX_RESPONSE_BYTES`], 1 MiB).
    pub fn max_response_bytes(mut self, n: usize) -> Self {
        self.max_response_bytes = n;
        self
    }

    /// Builds the client.
    ///
    /// # Errors
    ///
    /// [`Error::Http`](crate::Error::Http) when the TLS backend cannot be initialised.
    pub fn build(self) -> Result<ReqwestHttpClient, crate::Error> {
        let client = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| HttpError::new(HttpErrorKind::Request, TransportCause::new(&e, None)))?;
        Ok(ReqwestHttpClient {
            client,
            max_response_bytes: self.max_response_bytes,
        })
    }
}

impl ReqwestHttpClient {
    /// A builder with the defaults: 5 s to connect, 15 s in all, 1 MiB bodies.
    pub fn builder() -> ReqwestHttpClientBuilder {
        ReqwestHttpClientBuilder::default()
    }

    /// A client with the defaults.
    ///
    /// # Errors
    ///
    /// See [`ReqwestHttpClientBuilder::build`].
    pub fn new() -> Result<Self, crate::Error> {
        Self::builder().build()
    }
}

/// The cause of a reqwest failure, as [`HttpError`]'s source: reqwest's description without the
/// URL, and the operating-system error below it, if any, as its own source.
///
/// reqwest's error is not kept itself: it (and any reqwest error nested in it) prints the URL,
/// whose query can carry an authorization code. What is kept is rebuilt from text that went
/// through [`strip`] and [`redact`], and the raw OS error code.
#[derive(Debug)]
struct TransportCause {
    description: String,
    io: Option<std::io::Error>,
}

impl TransportCause {
    fn new(e: &reqwest::Error, url: Option<&url::Url>) -> Self {
        let clean = |msg: String| match url {
            Some(url) => redact(msg, url),
            None => msg,
        };
        let mut io = None;
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            if let Some(found) = s.downcast_ref::<std::io::Error>() {
                io = Some(match found.raw_os_error() {
                    Some(code) => std::io::Error::from_raw_os_error(code),
                    None => std::io::Error::new(found.kind(), clean(found.to_string())),
                });
                break;
            }
            source = s.source();
        }
        Self {
            description: clean(strip(e)),
            io,
        }
    }
}

impl std::fmt::Display for TransportCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.description)
    }
}

impl std::error::Error for TransportCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.io
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The error's description without the URL it carries: reqwest's own message names the URL, so it
/// is replaced by the kind, followed by every cause below it (hyper, io, rustls), which is
/// what a host needs to tell "connection refused" from "certificate not valid for name".
fn strip(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connect"
    } else if e.is_body() || e.is_decode() {
        "body"
    } else {
        "request"
    };
    let mut msg = format!("reqwest {kind} error");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        // A nested reqwest error would print its URL: skip its text, keep its causes.
        if !s.is::<reqwest::Error>() {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
        }
        source = s.source();
    }
    msg
}

/// Removes the request's URL, path and query from `msg`, should any cause ever print them: the
/// query of a provider call can carry an authorization code.
fn redact(mut msg: String, url: &url::Url) -> String {
    let mut parts = vec![url.as_str().to_owned()];
    if let Some(q) = url.query().filter(|q| !q.is_empty()) {
        parts.push(q.to_owned());
    }
    if url.path().len() > 1 {
        parts.push(url.path().to_owned());
    }
    for part in parts {
        if msg.contains(&part) {
            msg = msg.replace(&part, "[redacted]");
        }
    }
    msg
}

fn classify(e: &reqwest::Error, url: &url::Url) -> HttpError {
    let kind = if e.is_timeout() {
        HttpErrorKind::Timeout
    } else if e.is_connect() {
        HttpErrorKind::Connect
    } else if e.is_body() || e.is_decode() {
        HttpErrorKind::Decode
    } else {
        HttpErrorKind::Request
    };
    HttpError::new(kind, TransportCause::new(e, Some(url)))
}

#[async_trait]
impl HttpClient for ReqwestHttpClient {
    async fn call(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, HttpError> {
        let url = url::Url::parse(&request.uri().to_string())
            .map_err(|_| HttpError::new(HttpErrorKind::Request, "request URI is not a URL"))?;
        if !is_allowed_endpoint(&url) {
            return Err(HttpError::new(
                HttpErrorKind::InsecureUrl,
                "provider endpoints must use https (http only on loopback)",
            ));
        }
        let (parts, body) = request.into_parts();
        let mut builder = self.client.request(parts.method, url.clone()).body(body);
        for (name, value) in &parts.headers {
            builder = builder.header(name, value);
        }
        let mut response = builder.send().await.map_err(|e| classify(&e, &url))?;
        if let Some(len) = response.content_length()
            && len > self.max_response_bytes as u64
        {
            return Err(too_large(self.max_response_bytes));
        }
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e, &url))? {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(too_large(self.max_response_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        let mut out = http::Response::new(body);
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        Ok(out)
    }
}

fn too_large(cap: usize) -> HttpError {
    HttpError::new(
        HttpErrorKind::BodyTooLarge,
        format!("response body exceeds the {cap}-byte cap"),
    )
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn redact_removes_url_path_and_query() {
        let url = url::Url::parse("http://127.0.0.1:1/cb?code=SECRET&state=S").unwrap();
        let msg = redact(
            format!("oops {url} then /cb then code=SECRET&state=S"),
            &url,
        );
        assert!(!msg.contains("SECRET"), "{msg}");
        assert!(!msg.contains("/cb"), "{msg}");
        assert_eq!(
            redact("connection refused".into(), &url),
            "connection refused"
        );
    }
}
