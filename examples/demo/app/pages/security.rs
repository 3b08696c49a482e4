//! Edit Profile > Security Setting: bind a third-party account, or unbind it.

use axum::Form;
use axum::extract::State;
use axum::response::Response;
use cx_sso::{BindingId, ErrorKind};
use http::HeaderMap;
use maud::html;
use serde::Deserialize;

use super::super::layout::{fmt_time, page};
use super::super::sessions::Flash;
use super::super::{App, provider_label};
use super::sso_applications;

pub async fn show(State(app): State<App>, headers: HeaderMap) -> Response {
    let me = match app.me(&headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let configs = sso_applications(
        app.broker
            .list_providers(&app.tenant)
            .await
            .unwrap_or_default(),
    );
    let bindings = app
        .broker
        .list_bindings(&app.tenant, &me.user.id)
        .await
        .unwrap_or_default();
    let content = html! {
        div.card {
            h2 { "Third-party accounts" }
            p.help { "Bind an account of your company's single sign-on application, then sign in with it directly from the sign-in page." }
            @if configs.is_empty() {
                div.warning { strong { "Single sign-on is not available" } "No SSO application is configured for Acme Support yet: ask your administrator." }
            } @else {
                table {
                    thead { tr { th { "Application" } th { "Account" } th {} } }
                    tbody {
                        @for c in &configs {
                            @let mine: Vec<_> = bindings.iter().filter(|b| b.provider == *c.id()).collect();
                            tr {
                                td { (provider_label(c, &app.provider_issuer)) }
                                td {
                                    @if mine.is_empty() { span.badge.muted { "Not bound" } }
                                    @for b in &mine {
                                        div {
                                            span.badge.ok { "Bound" } " "
                                            (b.email.as_deref().unwrap_or(&b.subject))
                                            small.help { " since " (fmt_time(b.created_at)) }
                                        }
                                    }
                                }
                                td {
                                    @if mine.is_empty() {
                                        form method="post" action={ "/sso/login/" (c.id()) "?bind" } {
                                            button.small type="submit" { "Bind " (provider_label(c, &app.provider_issuer)) " account" }
                                        }
                                    }
                                    @for b in &mine {
                                        form method="post" action="/profile/security/unbind" {
                                            input type="hidden" name="binding" value=(b.id());
                                            button.small.danger type="submit" { "Unbind" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(
        app.shell(
            Some(&me),
            "Edit Profile › Security Setting",
            "/profile/security",
        ),
        content,
    )
}

#[derive(Deserialize)]
pub struct Unbind {
    binding: String,
}

pub async fn unbind(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<Unbind>,
) -> Response {
    let me = match app.me(&headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let flash = match BindingId::new(form.binding) {
        Err(_) => Flash::Error("That account is not bound to you.".to_owned()),
        Ok(id) => match app.broker.unbind(&app.tenant, &me.user.id, &id).await {
            Ok(()) => Flash::Ok("The account is unbound.".to_owned()),
            Err(e) if e.kind() == ErrorKind::Conflict => Flash::Error(
                "You cannot unbind your last way to sign in while your company signs in with \
                 single sign-on only."
                    .to_owned(),
            ),
            Err(e) => Flash::Error(cx_sso::axum::Refusal::from_error(&e).message().to_owned()),
        },
    };
    app.redirect_with(&me.session, flash, "/profile/security")
}
