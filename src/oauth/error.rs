//! How oauth2's errors map to [`TokenEndpointError`] (defined with the crate's other errors).

use oauth2::{ErrorResponseType, RequestTokenError, StandardErrorResponse};

use super::http_adapter::AdapterError;
use crate::error::TokenEndpointError;

impl From<AdapterError> for TokenEndpointError {
    fn from(e: AdapterError) -> Self {
        match e {
            AdapterError::Http(e) => Self::Http(e),
            AdapterError::TooLarge(limit) => Self::TooLarge(limit),
            AdapterError::ServerError(status) => Self::ServerError(status),
        }
    }
}

/// Maps what oauth2 reported for one request. `status` is the status of the response the
/// adapter handed to oauth2 (`None` if nothing was received): oauth2 does not keep it in the
/// errors about bodies it could not parse.
pub(super) fn from_oauth2<T>(
    e: RequestTokenError<AdapterError, StandardErrorResponse<T>>,
    status: Option<u16>,
) -> TokenEndpointError
where
    T: ErrorResponseType + AsRef<str> + std::fmt::Display + 'static,
{
    match e {
        RequestTokenError::Request(e) => e.into(),
        RequestTokenError::ServerResponse(body) => match body.error().as_ref() {
            "invalid_grant" => TokenEndpointError::InvalidGrant,
            "invalid_client" => TokenEndpointError::InvalidClient,
            code => TokenEndpointError::OAuth(
                code.chars()
                    .filter(|c| c.is_ascii_graphic())
                    .take(64)
                    .collect(),
            ),
        },
        // The body oauth2 keeps beside the error is dropped here unread: it may hold tokens.
        RequestTokenError::Parse(e, _body) => match status {
            Some(200) | None => TokenEndpointError::Invalid(format!(
                "{} (at `{}`)",
                scrub(e.inner()),
                printable(&e.path().to_string(), 64)
            )),
            Some(status) => not_ok(status),
        },
        // oauth2's own words (an empty body, a Content-Type that is not JSON, a request that
        // could not be built): no response data beyond a header value.
        RequestTokenError::Other(message) => match status {
            Some(200) | None => TokenEndpointError::Invalid(printable(&message, 160)),
            Some(status) => not_ok(status),
        },
    }
}

/// A non-200 answer without a readable OAuth error body: a bare 401 is the client
/// authentication failing (RFC 6749 §5.2), anything else only has its status to say.
fn not_ok(status: u16) -> TokenEndpointError {
    if status == 401 {
        TokenEndpointError::InvalidClient
    } else {
        TokenEndpointError::Status(status)
    }
}

/// A serde error's category and position, without the data it quotes.
pub(crate) fn scrub(e: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}

/// At most `max` characters of `s`, printable ASCII and spaces only.
fn printable(s: &str, max: usize) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(max)
        .collect()
}
