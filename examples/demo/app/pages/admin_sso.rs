//! Admin > SSO applications: client id and secret, the redirect URI to register at the
//! provider, "test the connection", and each application's status with its reasons.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, State};
use axum::response::Response;
use cx_sso::{ClientSecret, EntraTenancy, ProviderConfig, ProviderId, SsoStatus};
use http::HeaderMap;
use maud::html;
use serde::Deserialize;

use super::super::layout::page;
use super::super::sessions::Flash;
use super::super::{App, provider_label};
use super::sso_applications;

pub async fn show(State(app): State<App>, headers: HeaderMap) -> Response {
    let me = match app.admin(&headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let configs = sso_applications(
        app.broker
            .list_providers(&app.tenant)
            .await
            .unwrap_or_default(),
    );
    let status = app.broker.sso_status(&app.tenant).await;
    let mut reasons: HashMap<ProviderId, Vec<String>> = HashMap::new();
    let problems = match &status {
        Ok(SsoStatus::Invalid(p)) => p.clone(),
        Ok(SsoStatus::Ready { problems, .. }) => problems.clone(),
        _ => Vec::new(),
    };
    for p in problems {
        reasons.entry(p.provider).or_default().push(p.reason);
    }
    let example_uri = ProviderId::new("dev")
        .map(|id| app.broker.redirect_uri(&app.tenant, &id))
        .unwrap_or_default();
    let content = html! {
        div.card {
            h2 { "Status" }
            @match &status {
                Ok(SsoStatus::NotConfigured) => div.warning id="sso-status" {
                    strong { "Not configured" }
                    "No SSO application is configured: users who try single sign-on see a warning."
                },
                Ok(SsoStatus::Invalid(_)) => div.warning id="sso-status" {
                    strong { "Invalid" }
                    "No SSO application is usable: users who try single sign-on see a warning. See the reasons below."
                },
                Ok(SsoStatus::Ready { providers, .. }) => div.flash.ok id="sso-status" {
                    "Ready: users can sign in with "
                    (providers.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")) "."
                },
                Err(_) => div.flash.error { "The status could not be read; try again." },
            }
            @if !configs.is_empty() {
                table {
                    thead { tr { th { "Application" } th { "Client ID" } th { "Redirect URI to register" } th { "Status" } th {} } }
                    tbody {
                        @for c in &configs {
                            @let why = reasons.get(c.id());
                            tr {
                                td { strong { (provider_label(c, &app.provider_issuer)) } br; small.help { "id " (c.id()) } }
                                td { code { (c.client_id()) } }
                                td { code { (app.broker.redirect_uri(&app.tenant, c.id())) } }
                                td {
                                    @match why {
                                        None => span.badge.ok { "Ready" },
                                        Some(list) => {
                                            span.badge.err { "Invalid" }
                                            ul.reasons { @for r in list { li { (r) } } }
                                        }
                                    }
                                }
                                td {
                                    form method="post" action={ "/admin/sso/" (c.id()) "/test" } {
                                        button.small.secondary type="submit" { "Test connection" }
                                    }
                                    form method="post" action={ "/admin/sso/" (c.id()) "/remove" } {
                                        button.small.danger type="submit" { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        div.card {
            h2 { "Add or update an application" }
            p.help {
                "Register the application at the provider with the redirect URI "
                code { (example_uri.trim_end_matches("dev")) "<application id>" }
                " (for the id " code { "dev" } ": " code { (example_uri) } "), then enter the client ID and client secret it gives you. The secret is stored encrypted and never shown again."
            }
            form method="post" action="/admin/sso" {
                label for="kind" { "Provider" }
                select #kind name="kind" {
                    option value="dev" selected { "Development provider (OpenID Connect, on this machine)" }
                    option value="google" { "Google" }
                    option value="microsoft" { "Office 365 (Microsoft Entra ID)" }
                    option value="oidc" { "Other OpenID Connect provider" }
                }
                div.grid2 {
                    div {
                        label for="id" { "Application id" }
                        input #id type="text" name="id" value="dev" required pattern="[A-Za-z0-9_.-]+";
                    }
                    div {
                        label for="client_id" { "Client ID" }
                        input #client_id type="text" name="client_id" required autocomplete="off";
                    }
                }
                label for="client_secret" { "Client secret" }
                input #client_secret type="password" name="client_secret" required autocomplete="new-password";
                div.grid2 {
                    div {
                        label for="issuer" { "Issuer (OpenID Connect only)" }
                        input #issuer type="url" name="issuer" value=(app.provider_issuer);
                    }
                    div {
                        label for="entra_tenant" { "Entra tenant id (Office 365 only)" }
                        input #entra_tenant type="text" name="entra_tenant" placeholder="9188040d-6c67-4c5b-b112-36a304b66dad";
                    }
                }
                p.help { "The development provider knows this platform as client " code { (app.provider_client_id) } "; its secret is in the README (" code { "DEMO_PROVIDER_SECRET" } ")." }
                div.actions { button type="submit" id="save-sso" { "Save" } }
            }
        }
    };
    page(
        app.shell(Some(&me), "Admin › SSO applications", "/admin/sso"),
        content,
    )
}

#[derive(Deserialize)]
pub struct Save {
    kind: String,
    id: String,
    client_id: String,
    client_secret: String,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    entra_tenant: String,
}

fn build(app: &App, form: Save) -> Result<ProviderConfig, String> {
    let id = ProviderId::new(form.id.trim()).map_err(|_| {
        "The application id may hold letters, digits, '-', '_' and '.' only.".to_owned()
    })?;
    let secret = ClientSecret::new(form.client_secret);
    let client_id = form.client_id.trim().to_owned();
    Ok(match form.kind.as_str() {
        "google" => ProviderConfig::google(id, client_id, secret),
        "microsoft" => {
            let tenancy = EntraTenancy::single(form.entra_tenant.trim())
                .map_err(|_| "The Entra tenant id must be a GUID.".to_owned())?;
            ProviderConfig::microsoft(id, tenancy, client_id, secret)
        }
        "oidc" => ProviderConfig::oidc(id, form.issuer.trim(), client_id, secret),
        _ => ProviderConfig::oidc(id, app.provider_issuer.clone(), client_id, secret),
    })
}

pub async fn save(State(app): State<App>, headers: HeaderMap, Form(form): Form<Save>) -> Response {
    let me = match app.admin(&headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let flash = match build(&app, form) {
        Err(message) => Flash::Error(message),
        Ok(config) => {
            let name = provider_label(&config, &app.provider_issuer);
            match app.broker.configure_provider(&app.tenant, config).await {
                Ok(report) if report.is_ready() => {
                    Flash::Ok(format!("{name} saved. Status: ready."))
                }
                Ok(report) => Flash::Error(format!(
                    "{name} saved, but it is not ready: {}",
                    report.reasons().join("; ")
                )),
                Err(e) => Flash::Error(format!("Not saved: {e}")),
            }
        }
    };
    app.redirect_with(&me.session, flash, "/admin/sso")
}

pub async fn test(State(app): State<App>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let me = match app.admin(&headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let flash = match ProviderId::new(id) {
        Err(_) => Flash::Error("No such application.".to_owned()),
        Ok(id) => match app.broker.test_connection(&app.tenant, &id).await {
            Ok(report) if report.is_ready() => {
                Flash::Ok(format!("{id}: the connection works. Status: ready."))
            }
            Ok(report) => Flash::Error(format!("{id}: {}", report.reasons().join("; "))),
            Err(e) => Flash::Error(cx_sso::axum::Refusal::from_error(&e).message().to_owned()),
        },
    };
    app.redirect_with(&me.session, flash, "/admin/sso")
}

pub async fn remove(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let me = match app.admin(&headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let flash = match ProviderId::new(id) {
        Err(_) => Flash::Error("No such application.".to_owned()),
        Ok(id) => match app.broker.remove_provider(&app.tenant, &id).await {
            Ok(()) => Flash::Ok(format!("{id} removed. Bindings made through it are kept.")),
            Err(e) => Flash::Error(cx_sso::axum::Refusal::from_error(&e).message().to_owned()),
        },
    };
    app.redirect_with(&me.session, flash, "/admin/sso")
}
