//! What a browser is told when a login cannot start or complete.

use ::axum::response::{Html, IntoResponse, Response};
use http::StatusCode;

use crate::error::{Error, ErrorKind};

/// A refused login as the browser sees it: a status code and a short message the user can act
/// on, chosen from the error's [`ErrorKind`] alone, so no internal detail (an issuer, a
/// reason from the provider, a store error) reaches the page. Log the [`Error`] itself.
///
/// Its [`IntoResponse`] renders a minimal HTML page; a host renders its own page from
/// [`status`](Self::status) and [`message`](Self::message) in
/// [`SsoHost::failed`](crate::axum::SsoHost::failed).
///
/// ```
/// use cx_sso::axum::Refusal;
/// use cx_sso::{Error, StateError};
///
/// let refusal = Refusal::from_error(&Error::State(StateError::Unknown));
/// assert_eq!(refusal.status().as_u16(), 400);
/// assert_eq!(refusal.message(), "This sign-in is no longer valid. Please sign in again.");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    status: StatusCode,
    message: &'static str,
    kind: Option<ErrorKind>,
}

impl Refusal {
    /// The refusal for `error`, from its [`ErrorKind`]:
    ///
    /// | kind | status | message |
    /// |---|---|---|
    /// | `InvalidInput` | 500 | a configuration problem: contact the administrator |
    /// | `NotConfigured` | 409 | single sign-on is not set up (correctly) for your company |
    /// | `NotFound` | 404 | this page does not exist |
    /// | `LoginExpired` | 400 | this sign-in is no longer valid: sign in again |
    /// | `Denied` | 403 | you may not sign in this way |
    /// | `SecurityRefusal` | 403 | refused for security reasons: contact the administrator |
    /// | `ProviderRejected` | 502 | the provider's answer could not be verified |
    /// | `Conflict` | 409 | the account is linked to another user |
    /// | `Unavailable` | 503 | temporarily unavailable: try again in a few minutes |
    /// | `Internal` | 500 | something went wrong on our side |
    /// | `Unauthenticated` | 401 | please sign in |
    /// | `ReconsentRequired` | 409 | an administrator must connect the mailbox again |
    pub fn from_error(error: &Error) -> Self {
        let kind = error.kind();
        let (status, message) = match kind {
            ErrorKind::InvalidInput => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Sign-in could not be completed because of a configuration problem. \
                 Please contact your administrator.",
            ),
            ErrorKind::NotConfigured => (
                StatusCode::CONFLICT,
                "Single sign-on is not set up for your company, or its setup is invalid. \
                 Please contact your administrator.",
            ),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "This page does not exist."),
            ErrorKind::LoginExpired => (
                StatusCode::BAD_REQUEST,
                "This sign-in is no longer valid. Please sign in again.",
            ),
            ErrorKind::Denied => (
                StatusCode::FORBIDDEN,
                "You may not sign in this way. Use the sign-in method your company allows, \
                 or contact your administrator.",
            ),
            ErrorKind::SecurityRefusal => (
                StatusCode::FORBIDDEN,
                "Sign-in was refused for security reasons. Please contact your administrator.",
            ),
            ErrorKind::ProviderRejected => (
                StatusCode::BAD_GATEWAY,
                "The identity provider's answer could not be verified. Please try again; \
                 if it keeps happening, contact your administrator.",
            ),
            ErrorKind::Conflict => (
                StatusCode::CONFLICT,
                "This account is already linked to another user, or cannot be changed now.",
            ),
            ErrorKind::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is temporarily unavailable. Please try again in a few minutes.",
            ),
            ErrorKind::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side. Please contact your administrator.",
            ),
            ErrorKind::Unauthenticated => (StatusCode::UNAUTHORIZED, "Please sign in."),
            ErrorKind::ReconsentRequired => (
                StatusCode::CONFLICT,
                "This mailbox must be connected again by an administrator.",
            ),
        };
        Self {
            status,
            message,
            kind: Some(kind),
        }
    }

    /// A route parameter (application or tenant id) that names nothing: 404.
    pub(crate) fn not_found() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: "This sign-in page does not exist.",
            kind: None,
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message for the user: one or two plain sentences, no internal detail.
    pub fn message(&self) -> &'static str {
        self.message
    }

    /// The error's kind; `None` when the route itself named nothing (an unknown or malformed
    /// application or tenant id in the path).
    pub fn kind(&self) -> Option<ErrorKind> {
        self.kind
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        // The message is one of the static texts above: nothing to escape.
        let page = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <title>Sign-in refused</title></head><body><h1>Sign-in refused</h1>\
             <p>{}</p><p><a href=\"/\">Back</a></p></body></html>",
            self.message
        );
        (self.status, Html(page)).into_response()
    }
}
