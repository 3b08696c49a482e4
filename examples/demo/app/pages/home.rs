//! The agent desktop's home, and the demo clock control.

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode};
use maud::html;
use serde::Deserialize;
use time::Duration;

use super::super::App;
use super::super::layout::page;

pub async fn show(State(app): State<App>, headers: HeaderMap) -> Response {
    let me = match app.me(&headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let content = html! {
        div.card {
            h2 { "Welcome, " (me.user.name) }
            p { "You are signed in to Acme Support as " strong { (me.user.email) } " (via " (me.via) ")." }
            p.help { "Conversations in your queue: 3 emails, 1 chat. (This demo has no real inbox.)" }
        }
        div.card {
            h2 { "Where to go" }
            ul {
                li { a href="/profile/security" { "Edit Profile › Security Setting" } ": bind or unbind your Google, Office 365 or development provider account." }
                @if me.user.admin {
                    li { a href="/admin/sso" { "SSO applications" } ": client id and secret, the redirect URI to register, connection status." }
                    li { a href="/admin/auth" { "Authentication method" } ": password or Google sign-in, privileged users." }
                    li { a href="/admin/email" { "Email assets" } ": connect the support mailbox with OAuth 2.0." }
                    li { a href="/admin/chat" { "Web chat" } ": JWT configurations for authenticated visitors." }
                }
            }
        }
    };
    page(app.shell(Some(&me), "Home", "/"), content)
}

#[derive(Deserialize)]
pub struct Advance {
    minutes: i64,
}

/// `POST /admin/clock`: only with `DEMO_CLOCK_CONTROL=1`, only for admins.
pub async fn advance_clock(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<Advance>,
) -> Response {
    if !app.clock_control {
        return StatusCode::NOT_FOUND.into_response();
    }
    if let Err(r) = app.admin(&headers).await {
        return r;
    }
    let minutes = form.minutes.clamp(1, 24 * 60);
    app.clock.advance(Duration::minutes(minutes));
    tracing::info!(minutes, "demo clock advanced");
    let back = headers
        .get(http::header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| r.strip_prefix(app.base_url.as_str()))
        .filter(|p| p.starts_with('/') && !p.starts_with("//"))
        .unwrap_or("/")
        .to_owned();
    Redirect::to(&back).into_response()
}
