//! The platform's side of cx-sso's axum routes: who starts which login, and what a result
//! means for the platform's sessions and pages.

use axum::response::{IntoResponse, Redirect, Response};
use cx_sso::axum::{LoginStart, Refusal, SsoHost, SsoRequest};
use cx_sso::{ConnectionId, Error, LoginOutcome};
use http::header::SET_COOKIE;

use super::layout::fmt_time;
use super::sessions::{self, Flash, PendingLink, SignedIn};
use super::{App, pages};

#[derive(Clone)]
pub struct Host(pub App);

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("demo::Host")
    }
}

/// What a start request asks for: `?bind` (Security Setting), `?connect` (Email assets).
fn asked(request: &SsoRequest) -> &'static str {
    match request.parts.uri.query() {
        Some(q) if q.split('&').any(|p| p == "bind") => "bind",
        Some(q) if q.split('&').any(|p| p == "connect") => "connect",
        _ => "sign-in",
    }
}

#[async_trait::async_trait]
impl SsoHost for Host {
    async fn start(&self, request: &SsoRequest) -> Result<LoginStart, Response> {
        let app = &self.0;
        let tenant = app.tenant.clone();
        match asked(request) {
            "bind" => {
                let me = app.me(&request.parts.headers).await?;
                Ok(LoginStart::link(tenant, me.user.id))
            }
            "connect" => {
                app.admin(&request.parts.headers).await?;
                let connection = ConnectionId::new(request.provider.as_str())
                    .map_err(|_| Redirect::to("/admin/email").into_response())?;
                Ok(LoginStart::connect(tenant, connection))
            }
            // An application that is not configured or not ready is refused by the broker
            // before any redirect: `failed` shows the SSO warning.
            _ => Ok(LoginStart::sign_in(tenant)),
        }
    }

    async fn completed(&self, outcome: LoginOutcome, request: &SsoRequest) -> Response {
        let app = &self.0;
        let session = app.sessions.id(&request.parts.headers);
        match outcome {
            LoginOutcome::SignedIn {
                user,
                session: grant,
                return_to,
                ..
            } => {
                let via = app.provider_name(&request.provider).await;
                let signed_in = SignedIn { user, grant, via };
                app.start_session(session.as_deref(), signed_in, None, &return_to)
            }
            LoginOutcome::LinkRequired {
                ticket,
                identity,
                return_to,
                ..
            } => {
                let account = identity.email.clone().unwrap_or(identity.subject.clone());
                let pending = PendingLink {
                    ticket,
                    provider: request.provider.clone(),
                    account,
                    return_to,
                };
                let (id, new) = app.sessions.update(session.as_deref(), |s| {
                    s.pending_link = Some(pending);
                });
                let mut response = Redirect::to("/link").into_response();
                if new && let Ok(v) = sessions::cookie(&id).parse() {
                    response.headers_mut().append(SET_COOKIE, v);
                }
                response
            }
            LoginOutcome::Linked { binding, .. } => {
                let name = app.provider_name(&binding.provider).await;
                let account = binding.email.unwrap_or(binding.subject);
                let message =
                    format!("Your {name} account {account} is bound: you can sign in with it.");
                match session {
                    Some(s) => app.redirect_with(&s, Flash::Ok(message), "/profile/security"),
                    None => Redirect::to("/signin").into_response(),
                }
            }
            LoginOutcome::Connected {
                mailbox,
                valid_until,
                ..
            } => {
                let message = format!(
                    "Token generated for {mailbox}. The access token is valid until {}; it is \
                     refreshed automatically.",
                    fmt_time(valid_until)
                );
                match session {
                    Some(s) => app.redirect_with(&s, Flash::Ok(message), "/admin/email"),
                    None => Redirect::to("/signin").into_response(),
                }
            }
            _ => Redirect::to("/").into_response(),
        }
    }

    async fn failed(&self, refusal: Refusal, error: &Error, request: &SsoRequest) -> Response {
        let app = &self.0;
        let session = app.sessions.id(&request.parts.headers);
        let signed_in = session
            .as_deref()
            .is_some_and(|s| app.sessions.get(s).signed_in.is_some());
        let back = match asked(request) {
            "bind" => Some("/profile/security"),
            "connect" => Some("/admin/email"),
            _ if signed_in => Some("/"),
            _ => None,
        };
        if let (Some(back), Some(session)) = (back, session) {
            return app.redirect_with(&session, Flash::Error(refusal.message().to_owned()), back);
        }
        if let Some(status) = error.provider_status() {
            // The SSO warning of the CX document, on the sign-in page.
            return pages::signin::with_sso_warning(app, refusal.status(), &status).await;
        }
        pages::signin::with_error(app, refusal.status(), refusal.message()).await
    }
}
