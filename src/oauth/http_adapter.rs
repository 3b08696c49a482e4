//! oauth2's [`AsyncHttpClient`] over the broker's [`HttpClient`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use oauth2::{AsyncHttpClient, HttpRequest, HttpResponse};

use crate::http::{HttpClient, HttpError};

/// Sends oauth2's requests through the broker's transport, one adapter per request.
///
/// Before oauth2 sees a response, the adapter refuses a body over the broker's cap and a 5xx
/// (a transient failure, whatever its body says). It remembers the status it let through, for
/// the errors in which oauth2 does not keep it.
///
/// It owns a clone of the `Arc` rather than borrowing the client: with a lifetime parameter, the
/// impl would need `'a: 'c`, and rustc then cannot prove the futures that hold oauth2's request
/// future `Send` for every lifetime (the connection refresh's `tokio::spawn` fails to compile).
pub(super) struct HttpAdapter {
    http: Arc<dyn HttpClient>,
    max_response_bytes: usize,
    /// The status of the last response handed to oauth2; 0 until there is one.
    status: AtomicU16,
}

/// Why the adapter gave oauth2 no response.
#[derive(Debug, thiserror::Error)]
pub(super) enum AdapterError {
    /// The transport failed.
    #[error("{0}")]
    Http(#[source] HttpError),
    /// The body is larger than the cap (the limit in bytes).
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    /// A 5xx status.
    #[error("server error (status {0})")]
    ServerError(u16),
}

impl HttpAdapter {
    pub(super) fn new(http: Arc<dyn HttpClient>, max_response_bytes: usize) -> Self {
        Self {
            http,
            max_response_bytes,
            status: AtomicU16::new(0),
        }
    }

    /// The status of the response handed to oauth2, if one was.
    pub(super) fn status(&self) -> Option<u16> {
        match self.status.load(Ordering::Relaxed) {
            0 => None,
            status => Some(status),
        }
    }
}

impl<'c> AsyncHttpClient<'c> for HttpAdapter {
    type Error = AdapterError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, AdapterError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let response = self.http.call(request).await.map_err(AdapterError::Http)?;
            if response.body().len() > self.max_response_bytes {
                return Err(AdapterError::TooLarge(self.max_response_bytes));
            }
            let status = response.status();
            if status.is_server_error() {
                return Err(AdapterError::ServerError(status.as_u16()));
            }
            self.status.store(status.as_u16(), Ordering::Relaxed);
            Ok(response)
        })
    }
}
