//! The router: login start and callback on the host's own paths.

use std::collections::HashMap;
use std::sync::Arc;

use ::axum::Router;
use ::axum::extract::rejection::PathRejection;
use ::axum::extract::{Path, Request, State};
use ::axum::response::{IntoResponse, Response};
use ::axum::routing::get;
use http::StatusCode;
use http::header::{CACHE_CONTROL, HeaderValue, LOCATION, REFERRER_POLICY, SET_COOKIE};

use crate::broker::Broker;
use crate::error::{ConfigError, Error};
use crate::ids::{ProviderId, TenantId};
use crate::login::CallbackRoute;

use super::{BindingCookie, Refusal, SsoHost, SsoRequest};

/// The default path of the start route.
const DEFAULT_START_PATH: &str = "/sso/login/{provider}";
/// The default path of the callback route: the broker's default redirect path.
const DEFAULT_CALLBACK_PATH: &str = "/sso/callback/{provider}";

/// The login routes for axum: a start route that redirects the browser to the provider with
/// the browser-binding cookie set, and the callback route the provider redirects back to,
/// which completes the login and hands the outcome to the host's [`SsoHost`].
///
/// Paths are templates in axum's syntax, with `{provider}` (required) and `{tenant}`
/// (optional). The start route answers `GET` and `POST` (a form button), the callback `GET`.
///
/// ```no_run
/// # use cx_sso::axum::{BindingCookie, LoginStart, SsoHost, SsoRequest, SsoRoutes};
/// # use cx_sso::{Broker, LoginOutcome, TenantId};
/// # use axum::response::{Redirect, IntoResponse, Response};
/// # #[derive(Debug)] struct MyApp;
/// # #[async_trait::async_trait] impl SsoHost for MyApp {
/// #   async fn start(&self, _: &SsoRequest) -> Result<LoginStart, Response> {
/// #       Err(Redirect::to("/").into_response())
/// #   }
/// #   async fn completed(&self, _: LoginOutcome, _: &SsoRequest) -> Response {
/// #       Redirect::to("/").into_response()
/// #   }
/// # }
/// # fn main() -> Result<(), cx_sso::Error> {
/// let broker = Broker::builder().public_base_url("https://cx.example.com").build()?;
/// let app: axum::Router = axum::Router::new()
///     // .route("/", ...) the host's own pages
///     .merge(
///         SsoRoutes::new(broker, MyApp)
///             .start_path("/login/{provider}")
///             .into_router()?,
///     );
/// # let _ = app; Ok(()) }
/// ```
#[derive(Debug)]
pub struct SsoRoutes {
    broker: Broker,
    host: Arc<dyn SsoHost>,
    cookie: BindingCookie,
    start_path: String,
    callback_path: String,
}

#[derive(Debug)]
struct Shared {
    broker: Broker,
    host: Arc<dyn SsoHost>,
    cookie: BindingCookie,
}

impl SsoRoutes {
    /// Routes over `broker` for `host`, at the default paths (`/sso/login/{provider}` and
    /// `/sso/callback/{provider}`), with the [`BindingCookie::secure`] cookie.
    pub fn new(broker: Broker, host: impl SsoHost) -> Self {
        Self::with_shared_host(broker, Arc::new(host))
    }

    /// As [`new`](Self::new), with a host the caller keeps a handle to.
    pub fn with_shared_host(broker: Broker, host: Arc<dyn SsoHost>) -> Self {
        Self {
            broker,
            host,
            cookie: BindingCookie::secure(),
            start_path: DEFAULT_START_PATH.to_owned(),
            callback_path: DEFAULT_CALLBACK_PATH.to_owned(),
        }
    }

    /// The path of the start route (default `/sso/login/{provider}`).
    #[must_use]
    pub fn start_path(mut self, template: impl Into<String>) -> Self {
        self.start_path = template.into();
        self
    }

    /// The path of the callback route (default `/sso/callback/{provider}`). It must be the
    /// broker's redirect path ([`BrokerBuilder::redirect_path`](crate::BrokerBuilder::redirect_path),
    /// in the same `{provider}` / `{tenant}` syntax), which [`into_router`](Self::into_router)
    /// checks. The callback tells [`Broker::complete_login`](crate::Broker::complete_login) the
    /// application and, when the path has `{tenant}`, the tenant it served, so a callback meant
    /// for another route is refused.
    #[must_use]
    pub fn callback_path(mut self, template: impl Into<String>) -> Self {
        self.callback_path = template.into();
        self
    }

    /// How the browser-binding cookie is written (default [`BindingCookie::secure`]).
    #[must_use]
    pub fn cookie(mut self, cookie: BindingCookie) -> Self {
        self.cookie = cookie;
        self
    }

    /// The router, to merge into the host's.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] when a path is not a template with `{provider}` once and at
    /// most `{tenant}` once, when the callback path is not the path of the broker's redirect
    /// URIs, or when the cookie is not `Secure` while the redirect URIs are not `http` on a
    /// loopback host.
    pub fn into_router<S>(self) -> Result<Router<S>, Error>
    where
        S: Clone + Send + Sync + 'static,
    {
        check_template("start_path", &self.start_path)?;
        check_template("callback_path", &self.callback_path)?;
        // The broker's redirect URI of a sample tenant and application must end with the
        // callback path filled in the same way.
        let sample_tenant = TenantId::new("cx-sso-route-check-tenant")?;
        let sample = ProviderId::new("cx-sso-route-check")?;
        let redirect_uri = self.broker.redirect_uri(&sample_tenant, &sample);
        let expected = self
            .callback_path
            .replace("{provider}", sample.as_str())
            .replace("{tenant}", sample_tenant.as_str());
        let redirect = url::Url::parse(&redirect_uri)
            .map_err(|_| invalid("callback_path", "the broker's redirect URI does not parse"))?;
        if !redirect.path().ends_with(&expected) {
            return Err(invalid(
                "callback_path",
                "it is not the path of the broker's redirect URIs (BrokerBuilder::redirect_path)",
            ));
        }
        if !self.cookie.is_secure() && !is_loopback_http(&redirect) {
            return Err(invalid(
                "cookie",
                "a cookie without `Secure` is only for http on a loopback host",
            ));
        }
        let shared = Arc::new(Shared {
            broker: self.broker,
            host: self.host,
            cookie: self.cookie,
        });
        Ok(Router::new()
            .route(&self.start_path, get(start).post(start))
            .route(&self.callback_path, get(callback))
            .with_state(shared))
    }
}

fn invalid(what: &'static str, reason: &str) -> Error {
    ConfigError::Invalid {
        what,
        reason: reason.to_owned(),
    }
    .into()
}

/// A path starting with `/`, with `{provider}` once, `{tenant}` at most once, no other
/// placeholder.
fn check_template(what: &'static str, template: &str) -> Result<(), Error> {
    if !template.starts_with('/') {
        return Err(invalid(what, "must start with `/`"));
    }
    if template.matches("{provider}").count() != 1 {
        return Err(invalid(what, "must hold `{provider}` once"));
    }
    if template.matches("{tenant}").count() > 1 {
        return Err(invalid(what, "may hold `{tenant}` at most once"));
    }
    let rest = template.replace("{provider}", "").replace("{tenant}", "");
    if rest.contains(['{', '}', '*', '?', '#']) {
        return Err(invalid(
            what,
            "only `{provider}` and `{tenant}` are known placeholders",
        ));
    }
    Ok(())
}

fn is_loopback_http(url: &url::Url) -> bool {
    url.scheme() == "http"
        && match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
}

/// The ids the route's path named; `None` when one is malformed.
fn sso_request(
    parts: http::request::Parts,
    params: Result<Path<HashMap<String, String>>, PathRejection>,
) -> Option<SsoRequest> {
    let Path(params) = params.ok()?;
    let provider = ProviderId::new(params.get("provider")?.as_str()).ok()?;
    let tenant = match params.get("tenant") {
        Some(t) => Some(TenantId::new(t.as_str()).ok()?),
        None => None,
    };
    Some(SsoRequest {
        parts,
        provider,
        tenant,
    })
}

fn log_refusal(route: &'static str, request: &SsoRequest, error: &Error) {
    // Errors never carry secrets, codes or URLs with a query: safe for the log.
    tracing::warn!(
        route,
        provider = %request.provider,
        kind = ?error.kind(),
        error = %error,
        "SSO login refused"
    );
}

async fn start(
    State(shared): State<Arc<Shared>>,
    params: Result<Path<HashMap<String, String>>, PathRejection>,
    request: Request,
) -> Response {
    let (parts, _body) = request.into_parts();
    let Some(request) = sso_request(parts, params) else {
        return no_store(Refusal::not_found().into_response());
    };
    let login = match shared.host.start(&request).await {
        Ok(login) => login,
        Err(response) => return no_store(response),
    };
    let now = shared.broker.now();
    match shared
        .broker
        .begin_login(
            &login.tenant,
            &request.provider,
            login.intent,
            login.options,
        )
        .await
    {
        Ok(redirect) => {
            let mut response = StatusCode::SEE_OTHER.into_response();
            let headers = response.headers_mut();
            match HeaderValue::from_str(redirect.authorize_url.as_str()) {
                Ok(location) => {
                    headers.insert(LOCATION, location);
                }
                Err(_) => return no_store(Refusal::not_found().into_response()),
            }
            if let Some(cookie) =
                shared
                    .cookie
                    .set(&redirect.browser_binding, now, redirect.expires_at)
            {
                headers.append(SET_COOKIE, cookie);
            }
            no_store(response)
        }
        Err(error) => {
            log_refusal("start", &request, &error);
            let refusal = Refusal::from_error(&error);
            no_store(shared.host.failed(refusal, &error, &request).await)
        }
    }
}

async fn callback(
    State(shared): State<Arc<Shared>>,
    params: Result<Path<HashMap<String, String>>, PathRejection>,
    request: Request,
) -> Response {
    let (parts, _body) = request.into_parts();
    let Some(request) = sso_request(parts, params) else {
        return finish_callback(Refusal::not_found().into_response(), &shared.cookie);
    };
    let query = request.parts.uri.query().unwrap_or("");
    let binding = shared.cookie.read(&request.parts.headers).unwrap_or("");
    // The route the callback reached: a callback meant for another tenant or application is
    // refused without spending that login.
    let mut route = CallbackRoute::new(request.provider.clone());
    if let Some(tenant) = &request.tenant {
        route = route.with_tenant(tenant.clone());
    }
    let response = match shared.broker.complete_login(&route, query, binding).await {
        Ok(outcome) => shared.host.completed(outcome, &request).await,
        Err(error) => {
            log_refusal("callback", &request, &error);
            let refusal = Refusal::from_error(&error);
            shared.host.failed(refusal, &error, &request).await
        }
    };
    finish_callback(response, &shared.cookie)
}

/// Pages about a login in flight are never cached.
fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
        .headers_mut()
        .insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

/// The callback's URL holds the code and state: it must not leak through a `Referer` header
/// or a cache. The binding cookie has served its purpose.
fn finish_callback(response: Response, cookie: &BindingCookie) -> Response {
    let mut response = no_store(response);
    response.headers_mut().append(SET_COOKIE, cookie.clear());
    response
}

#[cfg(test)]
mod tests {
    use super::check_template;

    #[test]
    fn templates_need_provider_once() {
        assert!(check_template("p", "/sso/login/{provider}").is_ok());
        assert!(check_template("p", "/t/{tenant}/login/{provider}").is_ok());
        for bad in [
            "sso/{provider}",
            "/sso/login",
            "/{provider}/{provider}",
            "/{tenant}/{tenant}/{provider}",
            "/{provider}/{user}",
            "/{provider}/{*rest}",
            "/{provider}?x=1",
        ] {
            assert!(check_template("p", bad).is_err(), "{bad}");
        }
    }
}
