//! What the endpoints share: parsing form requests and `Authorization` headers, and building
//! JSON and OAuth error responses.

use std::collections::HashMap;

use http::{StatusCode, header};
use serde_json::{Value, json};

pub(super) type Response = http::Response<Vec<u8>>;

/// Why a form request was refused before its grant was looked at (a small `Err` type; the
/// response is built at the end).
pub(super) enum Refusal {
    /// 400 `invalid_request`.
    InvalidRequest,
    /// 401 `invalid_client`, with `WWW-Authenticate: Basic` when the client tried basic auth.
    InvalidClient { basic: bool },
}

impl Refusal {
    pub(super) fn into_response(self) -> Response {
        match self {
            Self::InvalidRequest => error_response(StatusCode::BAD_REQUEST, "invalid_request"),
            Self::InvalidClient { basic } => invalid_client(basic),
        }
    }
}

/// Parses an `application/x-www-form-urlencoded` body; duplicates and other content types are
/// an `invalid_request`.
pub(super) fn parse_form_request(
    request: &http::Request<Vec<u8>>,
) -> Result<HashMap<String, String>, Refusal> {
    let content_type_ok = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !content_type_ok {
        return Err(Refusal::InvalidRequest);
    }
    let mut form = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(request.body()) {
        if form.insert(k.into_owned(), v.into_owned()).is_some() {
            return Err(Refusal::InvalidRequest);
        }
    }
    Ok(form)
}

/// The credentials after `scheme ` in an `Authorization` header (scheme case-insensitive).
pub(super) fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = value.split_once(' ')?;
    given
        .eq_ignore_ascii_case(scheme)
        .then(|| rest.trim())
        .filter(|s| !s.is_empty())
}

pub(super) fn json_response(status: StatusCode, body: &Value) -> Response {
    http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(serde_json::to_vec(body).unwrap_or_default())
        .unwrap_or_default()
}

pub(super) fn error_response(status: StatusCode, error: &str) -> Response {
    json_response(status, &json!({ "error": error }))
}

fn invalid_client(used_basic: bool) -> Response {
    let mut response = error_response(StatusCode::UNAUTHORIZED, "invalid_client");
    if used_basic {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            http::HeaderValue::from_static("Basic realm=\"fake-idp\""),
        );
    }
    response
}

pub(super) fn method_not_allowed() -> Response {
    error_response(StatusCode::METHOD_NOT_ALLOWED, "invalid_request")
}
