//! The browser-binding cookie: set when a login starts, read and cleared at the callback.

use http::header::{COOKIE, HeaderMap, HeaderValue};
use time::{Duration, OffsetDateTime};

use crate::secret::BrowserBinding;

/// The name of the cookie when it is `Secure`. The `__Host-` prefix makes the browser refuse it
/// unless it is `Secure`, has `Path=/` and no `Domain`: a sibling subdomain cannot plant one.
const SECURE_NAME: &str = "__Host-cx_sso_login";
/// The name of the cookie in loopback development, where `Secure` (and so the prefix) is off.
const DEVELOPMENT_NAME: &str = "cx_sso_login";
/// The longest value read back: the broker's values are 43 characters.
const MAX_VALUE_LEN: usize = 256;

/// How the browser-binding cookie of a login is written: always `HttpOnly`, `SameSite=Lax`
/// (the provider's redirect back is a top-level GET, which Lax lets through) and `Path=/`,
/// expiring with the login; `Secure` unless explicitly turned off for loopback development.
///
/// ```
/// use cx_sso::axum::BindingCookie;
///
/// let production = BindingCookie::secure();
/// assert_eq!(production.name(), "__Host-cx_sso_login");
/// // Only for http://127.0.0.1 or http://localhost: the router refuses it for any other
/// // redirect URI.
/// let development = BindingCookie::insecure_for_loopback_development();
/// assert!(!development.is_secure());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingCookie {
    secure: bool,
}

impl Default for BindingCookie {
    fn default() -> Self {
        Self::secure()
    }
}

impl BindingCookie {
    /// The default: `__Host-cx_sso_login`, `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`.
    pub fn secure() -> Self {
        Self { secure: true }
    }

    /// `cx_sso_login` without `Secure`, so that it travels over plain `http` on loopback
    /// (browsers drop `Secure` cookies set over `http`). `HttpOnly` and `SameSite=Lax` stay.
    /// [`SsoRoutes::into_router`](crate::axum::SsoRoutes::into_router) refuses it unless the
    /// broker's redirect URIs are `http` on a loopback host.
    pub fn insecure_for_loopback_development() -> Self {
        Self { secure: false }
    }

    /// Whether the cookie carries `Secure`.
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// The cookie's name.
    pub fn name(&self) -> &'static str {
        if self.secure {
            SECURE_NAME
        } else {
            DEVELOPMENT_NAME
        }
    }

    /// The `Set-Cookie` value that stores `binding` until `expires_at`.
    pub(crate) fn set(
        &self,
        binding: &BrowserBinding,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Option<HeaderValue> {
        let max_age = (expires_at - now).clamp(Duration::ZERO, Duration::hours(1));
        let value = format!(
            "{}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{}",
            self.name(),
            binding.secret(),
            max_age.whole_seconds(),
            if self.secure { "; Secure" } else { "" }
        );
        // The broker's values are base64url: always a valid header value.
        HeaderValue::from_str(&value).ok()
    }

    /// The `Set-Cookie` value that deletes the cookie.
    pub(crate) fn clear(&self) -> HeaderValue {
        let value = format!(
            "{}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}",
            self.name(),
            if self.secure { "; Secure" } else { "" }
        );
        HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
    }

    /// The cookie's value in a request, if there is exactly one usable value.
    pub(crate) fn read<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        let mut found = None;
        for header in headers.get_all(COOKIE) {
            let Ok(text) = header.to_str() else { continue };
            for pair in text.split(';') {
                let Some((name, value)) = pair.trim().split_once('=') else {
                    continue;
                };
                if name != self.name() {
                    continue;
                }
                if found.is_some() || value.is_empty() || value.len() > MAX_VALUE_LEN {
                    // Two cookies of the same name (one planted by someone else?): trust neither.
                    return None;
                }
                found = Some(value);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_exactly_one_value() {
        let cookie = BindingCookie::secure();
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; __Host-cx_sso_login=abc; b=2"),
        );
        assert_eq!(cookie.read(&headers), Some("abc"));
        headers.append(COOKIE, HeaderValue::from_static("__Host-cx_sso_login=def"));
        assert_eq!(cookie.read(&headers), None);
        assert_eq!(cookie.read(&HeaderMap::new()), None);
        let mut empty = HeaderMap::new();
        empty.insert(COOKIE, HeaderValue::from_static("__Host-cx_sso_login="));
        assert_eq!(cookie.read(&empty), None);
    }
}
