//! Admin > Web chat: several JWT configurations (one per brand or user collection), their keys
//! and the rotation steps (add a key, promote it, retire the old one).

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use cx_sso::{VisitorAudience, VisitorConfigOptions, VisitorKeyId, VisitorKeyState};
use http::HeaderMap;
use maud::html;
use serde::Deserialize;

use super::super::App;
use super::super::layout::{fmt_time, page};
use super::super::sessions::Flash;

pub async fn show(State(app): State<App>, headers: HeaderMap) -> Response {
    let me = match app.admin(&headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let audiences = app
        .broker
        .list_visitor_configs(&app.tenant)
        .await
        .unwrap_or_default();
    let mut rings = Vec::new();
    for a in audiences {
        let keys = app
            .broker
            .list_visitor_keys(&app.tenant, &a)
            .await
            .unwrap_or_default();
        rings.push((a, keys));
    }
    let content = html! {
        div.card {
            h2 { "Authenticated visitors" }
            p.help { "Your website signs a JWT (HS256, with a key id) for a visitor who is signed in there; the chat widget verifies it, so the visitor is not asked who they are, tickets are created in their name with an \"authenticated\" badge, and their external ID shows on their profile. Keep one configuration per brand or user collection (end users, team members). Keys are stored encrypted and never shown here." }
            @if rings.is_empty() { p.help { "No configuration yet." } }
            @for (audience, keys) in &rings {
                div.card {
                    h2 { (audience) }
                    table {
                        thead { tr { th { "Key id" } th { "State" } th { "Created" } th {} } }
                        tbody {
                            @for k in keys {
                                tr {
                                    td { code { (k.kid) } }
                                    td {
                                        @match k.state {
                                            VisitorKeyState::Signing => span.badge.ok { "signing" },
                                            VisitorKeyState::VerifyOnly => span.badge.warn { "verify only" },
                                            _ => span.badge.muted { "retired" },
                                        }
                                    }
                                    td { (fmt_time(k.created_at)) @if let Some(r) = k.retired_at { br; small.help { "retired " (fmt_time(r)) } } }
                                    td {
                                        @if k.state == VisitorKeyState::VerifyOnly {
                                            form.inline method="post" action={ "/admin/chat/" (audience) "/keys" } {
                                                input type="hidden" name="action" value="promote";
                                                input type="hidden" name="kid" value=(k.kid);
                                                button.small.secondary type="submit" { "Make signing key" }
                                            }
                                            " "
                                            form.inline method="post" action={ "/admin/chat/" (audience) "/keys" } {
                                                input type="hidden" name="action" value="retire";
                                                input type="hidden" name="kid" value=(k.kid);
                                                button.small.danger type="submit" { "Retire" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    div.actions {
                        form.inline method="post" action={ "/admin/chat/" (audience) "/keys" } {
                            input type="hidden" name="action" value="add";
                            button.small.secondary type="submit" { "Add a key (rotation)" }
                        }
                        a.button.small href={ "/chat/" (audience) } { "Open the sample chat page" }
                        form.inline method="post" action={ "/admin/chat/" (audience) "/keys" } {
                            input type="hidden" name="action" value="delete";
                            button.small.danger type="submit" { "Delete configuration" }
                        }
                    }
                }
            }
        }
        div.card {
            h2 { "Add a configuration" }
            form method="post" action="/admin/chat" {
                label for="audience" { "Brand or user collection" }
                input #audience type="text" name="audience" value="acme-shop" required pattern="[A-Za-z0-9_.-]+";
                p.help { "A signing key is generated; tokens live 10 minutes by default, at most one hour." }
                div.actions { button type="submit" id="create-chat-config" { "Create" } }
            }
        }
    };
    page(
        app.shell(Some(&me), "Admin › Web chat", "/admin/chat"),
        content,
    )
}

#[derive(Deserialize)]
pub struct Create {
    audience: String,
}

pub async fn create(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<Create>,
) -> Response {
    let me = match app.admin(&headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let flash = match VisitorAudience::new(form.audience.trim()) {
        Err(_) => {
            Flash::Error("The name may hold letters, digits, '-', '_' and '.' only.".to_owned())
        }
        Ok(audience) => match app
            .broker
            .create_visitor_config(&app.tenant, &audience, VisitorConfigOptions::default())
            .await
        {
            Ok(key) => Flash::Ok(format!(
                "{audience}: created, signing with key {}.",
                key.kid()
            )),
            Err(e) => Flash::Error(cx_sso::axum::Refusal::from_error(&e).message().to_owned()),
        },
    };
    app.redirect_with(&me.session, flash, "/admin/chat")
}

#[derive(Deserialize)]
pub struct KeyAction {
    action: String,
    #[serde(default)]
    kid: String,
}

pub async fn keys(
    State(app): State<App>,
    headers: HeaderMap,
    Path(audience): Path<String>,
    Form(form): Form<KeyAction>,
) -> Response {
    let me = match app.admin(&headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let Ok(audience) = VisitorAudience::new(audience) else {
        return app.redirect_with(
            &me.session,
            Flash::Error("No such configuration.".to_owned()),
            "/admin/chat",
        );
    };
    let kid = VisitorKeyId::new(form.kid);
    let broker = &app.broker;
    let tenant = &app.tenant;
    let result = match (form.action.as_str(), kid) {
        ("add", _) => broker.add_visitor_key(tenant, &audience).await.map(|k| {
            format!(
                "Key {} added (verify only). Make it the signing key once your website has it.",
                k.kid()
            )
        }),
        ("promote", Ok(kid)) => broker
            .promote_visitor_key(tenant, &audience, &kid)
            .await
            .map(|()| {
                format!("Key {kid} now signs; the previous key still verifies until you retire it.")
            }),
        ("retire", Ok(kid)) => broker
            .retire_visitor_key(tenant, &audience, &kid)
            .await
            .map(|()| format!("Key {kid} retired: its tokens are refused from now on.")),
        ("delete", _) => broker
            .delete_visitor_config(tenant, &audience)
            .await
            .map(|_| format!("{audience} deleted.")),
        _ => Ok("Nothing to do.".to_owned()),
    };
    let flash = match result {
        Ok(m) => Flash::Ok(m),
        Err(e) => Flash::Error(cx_sso::axum::Refusal::from_error(&e).message().to_owned()),
    };
    app.redirect_with(&me.session, flash, "/admin/chat")
}
