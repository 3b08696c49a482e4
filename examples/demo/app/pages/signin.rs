//! Sign in: password, and one button per SSO application the company's method allows; the SSO
//! warning when no application is configured or it is invalid.

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use cx_sso::{AuthMethod, Error, PolicyError, ProviderStatus};
use http::header::SET_COOKIE;
use http::{HeaderMap, StatusCode};
use maud::{Markup, html};
use serde::Deserialize;

use super::super::layout::{Shell, fmt_relative, fmt_time, page_with_status};
use super::super::sessions::{self, Flash, SignedIn};
use super::super::{App, provider_label};
use super::{method_label, sso_applications};

/// Something to show above the forms.
enum Notice {
    None,
    Error(String),
    SsoWarning(Vec<String>),
}

pub async fn show(State(app): State<App>, headers: HeaderMap) -> Response {
    if app.me(&headers).await.is_ok() {
        return Redirect::to("/").into_response();
    }
    let flash = app
        .sessions
        .id(&headers)
        .and_then(|id| app.sessions.take_flash(&id));
    render(&app, StatusCode::OK, Notice::None, flash).await
}

pub async fn with_error(app: &App, status: StatusCode, message: &str) -> Response {
    render(app, status, Notice::Error(message.to_owned()), None).await
}

/// The sign-in page with the SSO warning of the CX document: no application configured, or
/// the one asked for is invalid.
pub async fn with_sso_warning(
    app: &App,
    status: StatusCode,
    provider: &ProviderStatus,
) -> Response {
    let line = match provider {
        ProviderStatus::Invalid { .. } => {
            "The single sign-on application is invalid: its configuration could not be verified."
        }
        _ => "No single sign-on application is configured for Acme Support.",
    };
    render(app, status, Notice::SsoWarning(vec![line.to_owned()]), None).await
}

async fn render(app: &App, status: StatusCode, notice: Notice, flash: Option<Flash>) -> Response {
    let auth = app.broker.tenant_auth_status(&app.tenant).await.ok();
    let method = auth
        .as_ref()
        .map(|a| a.method.clone())
        .unwrap_or(AuthMethod::Either);
    let configs = sso_applications(
        app.broker
            .list_providers(&app.tenant)
            .await
            .unwrap_or_default(),
    );
    let buttons: Vec<(String, String)> = match &method {
        AuthMethod::Password => Vec::new(),
        AuthMethod::Sso { providers } if !providers.is_empty() => configs
            .iter()
            .filter(|c| providers.contains(c.id()))
            .map(|c| (c.id().to_string(), provider_label(c, &app.provider_issuer)))
            .collect(),
        _ => configs
            .iter()
            .map(|c| (c.id().to_string(), provider_label(c, &app.provider_issuer)))
            .collect(),
    };
    let sso_only = matches!(method, AuthMethod::Sso { .. });
    let password_allowed = !matches!(method, AuthMethod::Password);
    let now = app.now();
    let sso_block: Markup = html! {
        @if buttons.is_empty() && password_allowed {
            // Nothing configured: the button leads to the SSO warning.
            form method="post" action="/sso/login/sso" {
                button.provider type="submit" { "Sign in with single sign-on" }
            }
        }
        @for (id, label) in &buttons {
            form method="post" action={ "/sso/login/" (id) } {
                button.provider type="submit" { "Sign in with " (label) }
            }
        }
    };
    let password_form: Markup = html! {
        form method="post" action="/signin" {
            label for="email" { "Email" }
            input #email type="email" name="email" autocomplete="username" required;
            label for="password" { "Password" }
            input #password type="password" name="password" autocomplete="current-password" required;
            div.actions { button type="submit" id="password-signin" { "Sign in" } }
        }
    };
    let content = html! {
        div.card.narrow {
            p.help { "Acme Support · agent and admin sign-in" }
            @match &flash {
                Some(Flash::Ok(m)) => div.flash.ok role="status" { (m) },
                Some(Flash::Error(m)) => div.flash.error role="alert" { (m) },
                None => {},
            }
            @match &notice {
                Notice::Error(m) => div.flash.error role="alert" { (m) },
                Notice::SsoWarning(lines) => div.warning role="alert" id="sso-warning" {
                    strong { "Single sign-on is not available" }
                    @for l in lines { (l) " " }
                    "Ask your administrator to set it up under Admin › SSO applications"
                    @if password_allowed { ", or sign in with your password." } @else { "." }
                },
                Notice::None => {},
            }
            @if let Some((pending, at)) = auth.as_ref().and_then(|a| a.pending.clone()) {
                div.warning {
                    strong { "Sign-in method changing" }
                    "From " (fmt_time(at)) " (" (fmt_relative(now, at)) ") your company signs in with: "
                    (method_label(&pending, |p| p.to_string())) ". Everyone will be signed out then."
                }
            }
            @if sso_only {
                p { "Your company signs in with single sign-on." }
                (sso_block)
                div.or { "Privileged users can also sign in with their password" }
                (password_form)
            } @else if password_allowed {
                (password_form)
                div.or { "or" }
                (sso_block)
            } @else {
                p.help { "Your company signs in with passwords only." }
                (password_form)
            }
            p.help { "Demo accounts: alice@acme.example (admin), ana@acme.example and bruno@acme.example (agents); password " code { "demo" } "." }
        }
    };
    let shell = Shell {
        title: "Sign in",
        viewer: None,
        flash: None,
        now,
        clock_control: false,
        active: "",
    };
    page_with_status(status, shell, content)
}

#[derive(Deserialize)]
pub struct Credentials {
    email: String,
    password: String,
}

pub async fn submit(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Response {
    let Some(user) = app
        .users
        .check_password(&form.email, &form.password)
        .cloned()
    else {
        return with_error(&app, StatusCode::UNAUTHORIZED, "Wrong email or password.").await;
    };
    match app
        .broker
        .grant_password_session(&app.tenant, &user.id)
        .await
    {
        Ok(grant) => {
            let signed_in = SignedIn {
                user: user.id,
                grant,
                via: "password".to_owned(),
            };
            app.start_session(app.sessions.id(&headers).as_deref(), signed_in, None, "/")
        }
        Err(Error::Policy(PolicyError::PasswordNotAllowed { .. })) => {
            with_error(
                &app,
                StatusCode::FORBIDDEN,
                "Your company signs in with single sign-on: passwords only work for privileged \
                 users. Use the single sign-on button.",
            )
            .await
        }
        Err(e) => {
            tracing::warn!(error = %e, "password sign-in failed");
            with_error(
                &app,
                StatusCode::SERVICE_UNAVAILABLE,
                "Sign-in is unavailable; try again.",
            )
            .await
        }
    }
}

pub async fn sign_out(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Some(id) = app.sessions.id(&headers) {
        app.sessions.remove(&id);
    }
    let mut response = Redirect::to("/signin").into_response();
    if let Ok(v) = sessions::clear_cookie().parse() {
        response.headers_mut().append(SET_COOKIE, v);
    }
    response
}
