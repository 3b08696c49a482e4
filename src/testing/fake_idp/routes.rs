//! Personalities and routing: each personality's URLs and issuers, which endpoint a request
//! names, and the dispatch of an HTTP request to it.

use std::sync::atomic::Ordering;

use async_trait::async_trait;
use http::{Method, StatusCode};
use url::Url;

use super::wire::{Response, error_response, method_not_allowed};
use super::{ENTRA_HOST, ENTRA_ISSUER_TEMPLATE, FakeIdp, FakeUser, Inner};
use crate::http::{HttpClient, HttpError};

pub(super) enum Personality {
    Google(FixedRoutes),
    Entra,
    Oidc(FixedRoutes),
}

impl Personality {
    pub(super) fn is_entra(&self) -> bool {
        matches!(self, Self::Entra)
    }

    pub(super) fn is_google(&self) -> bool {
        matches!(self, Self::Google(_))
    }
}

pub(super) struct FixedUrls {
    pub(super) issuer: String,
    pub(super) discovery: String,
    pub(super) authorize: String,
    /// Other paths the authorization endpoint answers at, not in the discovery document (such as
    /// Google's `/o/oauth2/auth`, the URL the email-asset forms show).
    pub(super) authorize_aliases: Vec<String>,
    pub(super) token: String,
    pub(super) userinfo: String,
    pub(super) jwks: String,
    pub(super) revoke: Option<String>,
}

/// The endpoints of a single-issuer provider, with their normalised match keys.
pub(super) struct FixedRoutes {
    pub(super) urls: FixedUrls,
    pub(super) keys: Vec<(String, Endpoint)>,
}

impl FixedRoutes {
    pub(super) fn new(urls: FixedUrls) -> Self {
        let mut keys = Vec::new();
        let mut add = |url: &str, endpoint: Endpoint| {
            if let Some(key) = Url::parse(url).ok().as_ref().and_then(route_key) {
                keys.push((key, endpoint));
            }
        };
        add(&urls.discovery, Endpoint::Discovery);
        add(&urls.authorize, Endpoint::Authorize);
        for alias in &urls.authorize_aliases {
            add(alias, Endpoint::Authorize);
        }
        add(&urls.token, Endpoint::Token);
        add(&urls.userinfo, Endpoint::Userinfo);
        add(&urls.jwks, Endpoint::Jwks);
        if let Some(revoke) = &urls.revoke {
            add(revoke, Endpoint::Revoke);
        }
        Self { urls, keys }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Endpoint {
    Discovery,
    Authorize,
    Token,
    Userinfo,
    Jwks,
    Revoke,
}

/// `scheme://host:port/path`, the part of a URL that selects an endpoint.
fn route_key(url: &Url) -> Option<String> {
    Some(format!(
        "{}://{}:{}{}",
        url.scheme(),
        url.host_str()?.to_ascii_lowercase(),
        url.port_or_known_default()?,
        url.path()
    ))
}

/// The `{x}` path segment of an Entra URL: `organizations`, `common` or a tenant GUID.
pub(super) fn entra_segment_ok(x: &str) -> bool {
    if x == "organizations" || x == "common" {
        return true;
    }
    x.len() == 36
        && x.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

impl Inner {
    /// Which endpoint `url` names, with the Entra `{x}` segment when there is one.
    pub(super) fn route(&self, url: &Url) -> Option<(Endpoint, Option<String>)> {
        match &self.personality {
            Personality::Oidc(routes) | Personality::Google(routes) => {
                let key = route_key(url)?;
                routes
                    .keys
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, e)| (*e, None))
            }
            Personality::Entra => {
                if url.scheme() != "https" || url.port_or_known_default() != Some(443) {
                    return None;
                }
                let host = url.host_str()?.to_ascii_lowercase();
                if host == "graph.microsoft.com" && url.path() == "/oidc/userinfo" {
                    return Some((Endpoint::Userinfo, None));
                }
                if host != ENTRA_HOST {
                    return None;
                }
                let segments: Vec<&str> = url.path_segments()?.collect();
                let (x, rest) = segments.split_first()?;
                if !entra_segment_ok(x) {
                    return None;
                }
                let endpoint = match rest {
                    ["v2.0", ".well-known", "openid-configuration"] => Endpoint::Discovery,
                    ["oauth2", "v2.0", "authorize"] => Endpoint::Authorize,
                    ["oauth2", "v2.0", "token"] => Endpoint::Token,
                    ["discovery", "v2.0", "keys"] => Endpoint::Jwks,
                    _ => return None,
                };
                Some((endpoint, Some((*x).to_owned())))
            }
        }
    }

    /// The issuer of ID tokens for `user`.
    pub(super) fn token_issuer(&self, user: &FakeUser) -> String {
        match &self.personality {
            Personality::Oidc(routes) | Personality::Google(routes) => routes.urls.issuer.clone(),
            Personality::Entra => FakeIdp::entra_issuer(user.effective_tenant_id()),
        }
    }

    /// The issuer a discovery document states (and the callback's `iss` parameter carries).
    pub(super) fn metadata_issuer(&self, entra_segment: Option<&str>) -> String {
        match &self.personality {
            Personality::Oidc(routes) | Personality::Google(routes) => routes.urls.issuer.clone(),
            Personality::Entra => match entra_segment {
                Some(x) if x != "organizations" && x != "common" => FakeIdp::entra_issuer(x),
                _ => ENTRA_ISSUER_TEMPLATE.to_owned(),
            },
        }
    }
}

#[async_trait]
impl HttpClient for FakeIdp {
    async fn call(&self, request: http::Request<Vec<u8>>) -> Result<Response, HttpError> {
        Ok(self.handle(&request))
    }
}

impl FakeIdp {
    fn handle(&self, request: &http::Request<Vec<u8>>) -> Response {
        let Ok(url) = Url::parse(&request.uri().to_string()) else {
            return error_response(StatusCode::NOT_FOUND, "not_found");
        };
        let Some((endpoint, segment)) = self.inner.route(&url) else {
            return error_response(StatusCode::NOT_FOUND, "not_found");
        };
        let method = request.method();
        match endpoint {
            Endpoint::Discovery => {
                self.inner.discovery_fetches.fetch_add(1, Ordering::Relaxed);
                if method != Method::GET {
                    return method_not_allowed();
                }
                self.discovery(segment.as_deref())
            }
            Endpoint::Jwks => {
                self.inner.jwks_fetches.fetch_add(1, Ordering::Relaxed);
                if method != Method::GET {
                    return method_not_allowed();
                }
                self.jwks()
            }
            Endpoint::Token => {
                self.inner.token_requests.fetch_add(1, Ordering::Relaxed);
                if method != Method::POST {
                    return method_not_allowed();
                }
                self.token(request)
            }
            Endpoint::Userinfo => {
                self.inner.userinfo_requests.fetch_add(1, Ordering::Relaxed);
                if method != Method::GET && method != Method::POST {
                    return method_not_allowed();
                }
                self.userinfo(request)
            }
            Endpoint::Revoke => {
                if method != Method::POST {
                    return method_not_allowed();
                }
                self.revoke(request)
            }
            // The authorization endpoint is for browsers: use `FakeIdp::authorize`.
            Endpoint::Authorize => error_response(StatusCode::NOT_FOUND, "not_found"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entra_segments() {
        assert!(entra_segment_ok("organizations"));
        assert!(entra_segment_ok("common"));
        assert!(entra_segment_ok(FakeUser::DEFAULT_TENANT_ID));
        assert!(!entra_segment_ok("consumers-ish"));
        assert!(!entra_segment_ok("11111111x2222-4333-8444-555555555555"));
    }
}
