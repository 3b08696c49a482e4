//! Link your account: the first sign-in with a provider account that is not bound yet. The
//! user proves who they are with their password once; cx-sso redeems the link ticket.

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use http::{HeaderMap, StatusCode};
use maud::html;
use serde::Deserialize;

use super::super::App;
use super::super::layout::{Shell, page_with_status};
use super::super::sessions::{Flash, PendingLink, SignedIn};

async fn render(
    app: &App,
    pending: &PendingLink,
    status: StatusCode,
    error: Option<&str>,
) -> Response {
    let provider = app.provider_name(&pending.provider).await;
    let content = html! {
        div.card.narrow {
            @if let Some(e) = error { div.flash.error role="alert" { (e) } }
            p { "You signed in with " strong { (provider) } " as " strong { (pending.account) } "." }
            p { "This account is not linked to an Acme Support user yet. Enter your Acme Support email and password once to link it; next time, " (provider) " signs you in directly." }
            form method="post" action="/link" {
                label for="email" { "Acme Support email" }
                input #email type="email" name="email" autocomplete="username" required;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                div.actions { button type="submit" id="link-account" { "Link account and sign in" } }
            }
            form method="post" action="/link/cancel" {
                div.actions { button.secondary type="submit" { "Cancel" } }
            }
        }
    };
    let shell = Shell {
        title: "Link your account",
        viewer: None,
        flash: None,
        now: app.now(),
        clock_control: false,
        active: "",
    };
    page_with_status(status, shell, content)
}

fn pending(app: &App, headers: &HeaderMap) -> Option<(String, PendingLink)> {
    let id = app.sessions.id(headers)?;
    let pending = app.sessions.get(&id).pending_link?;
    Some((id, pending))
}

pub async fn show(State(app): State<App>, headers: HeaderMap) -> Response {
    match pending(&app, &headers) {
        Some((_, p)) => render(&app, &p, StatusCode::OK, None).await,
        None => Redirect::to("/signin").into_response(),
    }
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
    let Some((session, pending)) = pending(&app, &headers) else {
        return Redirect::to("/signin").into_response();
    };
    let Some(user) = app
        .users
        .check_password(&form.email, &form.password)
        .cloned()
    else {
        return render(
            &app,
            &pending,
            StatusCode::UNAUTHORIZED,
            Some("Wrong email or password."),
        )
        .await;
    };
    match app
        .broker
        .redeem_link_ticket(&app.tenant, &pending.ticket, &user.id)
        .await
    {
        Ok(redeemed) => {
            let via = app.provider_name(&pending.provider).await;
            let flash = Flash::Ok(format!(
                "Your {via} account {} is now linked to {}.",
                pending.account, user.email
            ));
            let signed_in = SignedIn {
                user: user.id,
                grant: redeemed.session,
                via,
            };
            app.start_session(Some(&session), signed_in, Some(flash), &pending.return_to)
        }
        Err(e) => {
            tracing::warn!(kind = ?e.kind(), error = %e, "link refused");
            app.sessions.update(Some(&session), |s| {
                s.pending_link = None;
                s.flash = Some(Flash::Error(
                    cx_sso::axum::Refusal::from_error(&e).message().to_owned(),
                ));
            });
            Redirect::to("/signin").into_response()
        }
    }
}

pub async fn cancel(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Some(id) = app.sessions.id(&headers) {
        app.sessions.update(Some(&id), |s| s.pending_link = None);
    }
    Redirect::to("/signin").into_response()
}
