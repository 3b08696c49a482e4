//! A sample customer website with the chat widget: the website signs a visitor token for its
//! signed-in customer, the widget verifies it and shows the authenticated visitor.
//!
//! In production the website hands the token to the widget in the browser; here both sides
//! run in this process, so the token passes server-side and never appears in the page.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use cx_sso::{VisitorAudience, VisitorClaims};
use http::StatusCode;
use maud::{Markup, html};
use serde::Deserialize;

use super::super::App;
use super::super::layout::{Shell, fmt_time, page_with_status};

/// The website's own customers.
const CUSTOMERS: [(&str, &str, &str); 2] = [
    ("cust-1042", "Carla Customer", "carla@example.com"),
    ("cust-2077", "Dan Doe", "dan@example.com"),
];

fn render(app: &App, status: StatusCode, audience: &str, widget: Markup) -> Response {
    let content = html! {
        div.card {
            h2 { "Acme Shop · customer website (sample)" }
            p.help { "This stands for your own website, where customers sign in. Choose who is signed in here, then open the chat: the website signs a visitor token with the " code { (audience) } " configuration." }
            form method="post" {
                label for="customer" { "Signed in to the shop as" }
                select #customer name="customer" {
                    @for (id, name, email) in CUSTOMERS {
                        option value=(id) { (name) " (" (email) ", id " (id) ")" }
                    }
                }
                div.actions { button type="submit" id="open-chat" { "Open chat" } }
            }
        }
        (widget)
    };
    let shell = Shell {
        title: "Sample chat page",
        viewer: None,
        flash: None,
        now: app.now(),
        clock_control: false,
        active: "",
    };
    page_with_status(status, shell, content)
}

pub async fn show(State(app): State<App>, Path(audience): Path<String>) -> Response {
    render(&app, StatusCode::OK, &audience, html! {})
}

#[derive(Deserialize)]
pub struct Open {
    customer: String,
}

pub async fn start(
    State(app): State<App>,
    Path(audience): Path<String>,
    Form(form): Form<Open>,
) -> Response {
    let Ok(aud) = VisitorAudience::new(audience.as_str()) else {
        return render(
            &app,
            StatusCode::NOT_FOUND,
            &audience,
            html! { div.flash.error { "No such chat configuration." } },
        );
    };
    let Some((id, name, email)) = CUSTOMERS.iter().find(|c| c.0 == form.customer) else {
        return render(
            &app,
            StatusCode::BAD_REQUEST,
            &audience,
            html! { div.flash.error { "Choose a customer." } },
        );
    };
    // The website's server signs...
    let claims = VisitorClaims::new(*id).name(*name).email(*email, true);
    let token = match app
        .broker
        .mint_visitor_token(&app.tenant, &aud, &claims, None)
        .await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "visitor token not minted");
            let message = cx_sso::axum::Refusal::from_error(&e).message();
            return render(
                &app,
                StatusCode::CONFLICT,
                &audience,
                html! { div.flash.error { "The chat is not set up: " (message) } },
            );
        }
    };
    // ...and the widget verifies.
    let widget = match app
        .broker
        .verify_visitor_token(&app.tenant, &aud, &token)
        .await
    {
        Ok(visitor) => html! {
            div.chat id="chat-widget" {
                div.head { "Chat with Acme Support" }
                div.body {
                    p { span.badge.ok id="authenticated" { "✓ Authenticated visitor" } }
                    table {
                        tr { th { "External ID" } td id="external-id" { (visitor.external_id) } }
                        tr { th { "Name" } td { (visitor.name.as_deref().unwrap_or("")) } }
                        tr { th { "Email" } td { (visitor.email.as_deref().unwrap_or("")) @if visitor.email_verified { " " span.badge.ok { "verified" } } } }
                        tr { th { "Signed with key" } td { code { (visitor.kid) } } }
                        tr { th { "Token expires" } td { (fmt_time(visitor.expires_at)) } }
                    }
                    div.bubble { "Hi " (visitor.name.as_deref().unwrap_or("there")) "! No need to tell us who you are: your ticket is created in your name." }
                }
            }
        },
        Err(e) => html! {
            div.chat id="chat-widget" {
                div.head { "Chat with Acme Support" }
                div.body { span.badge.warn { "Anonymous visitor" } p.help { "The token was refused (" (format!("{:?}", e.kind())) "): the visitor is treated as anonymous." } }
            }
        },
    };
    render(&app, StatusCode::OK, &audience, widget)
}
