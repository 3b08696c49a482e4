//! Admin > Email assets: the OAuth 2.0 form of the Webex Connect email-asset documents,
//! "Generate Token", then the access token's validity, the status, reconnect and revoke. The
//! tokens themselves are never shown.

use axum::Form;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use cx_sso::{
    ClientSecret, ConnectionId, ConnectionStatus, ProviderConfig, ProviderId, ProviderKind,
    ProviderRevocation,
};
use http::HeaderMap;
use maud::html;
use serde::Deserialize;

use super::super::App;
use super::super::layout::{fmt_relative, fmt_time, page};
use super::super::sessions::Flash;

pub async fn show(State(app): State<App>, headers: HeaderMap) -> Response {
    let me = match app.admin(&headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let now = app.now();
    let assets: Vec<ProviderConfig> = app
        .broker
        .list_providers(&app.tenant)
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|c| matches!(c.kind(), ProviderKind::OAuth2 { .. }))
        .collect();
    let connections = app
        .broker
        .list_connections(&app.tenant)
        .await
        .unwrap_or_default();
    let callback_prefix = ProviderId::new("asset")
        .map(|p| app.broker.redirect_uri(&app.tenant, &p))
        .unwrap_or_default();
    let callback_prefix = callback_prefix.trim_end_matches("asset");
    let content = html! {
        div.card {
            h2 { "Email assets" }
            p.help { "A platform mailbox is connected with OAuth 2.0 (Google retired password access for apps). The access and refresh tokens are stored encrypted, refreshed before they expire, and used for SMTP and IMAP with XOAUTH2. They are never shown." }
            @if assets.is_empty() { p.help { "No email asset yet: fill in the form below." } }
            @if !assets.is_empty() {
                table {
                    thead { tr { th { "Asset" } th { "Email ID" } th { "Status" } th { "Validity" } th {} } }
                    tbody {
                        @for a in &assets {
                            @let conn = connections.iter().find(|c| c.connection.as_str() == a.id().as_str());
                            @let mailbox = match a.kind() { ProviderKind::OAuth2 { mailbox, .. } => mailbox.clone().unwrap_or_default(), _ => String::new() };
                            tr {
                                td { strong { (a.id()) } }
                                td { (conn.map(|c| c.mailbox.clone()).unwrap_or(mailbox)) }
                                @match conn.map(|c| &c.status) {
                                    Some(ConnectionStatus::Connected { valid_until }) => {
                                        td { span.badge.ok { "Connected" } }
                                        td.validity { "Access token valid until " (fmt_time(*valid_until)) " (" (fmt_relative(now, *valid_until)) "); refreshed automatically" }
                                    }
                                    Some(ConnectionStatus::NeedsReconsent { reason }) => {
                                        td { span.badge.err { "Needs reconnecting" } br; small.help { (reason) } }
                                        td { "—" }
                                    }
                                    Some(ConnectionStatus::Revoked) => {
                                        td { span.badge.muted { "Revoked" } }
                                        td { "—" }
                                    }
                                    _ => {
                                        td { span.badge.warn { "No token yet" } }
                                        td { "—" }
                                    }
                                }
                                td {
                                    form method="post" action={ "/sso/login/" (a.id()) "?connect" } {
                                        button.small.secondary type="submit" {
                                            @if conn.is_some() { "Reconnect" } @else { "Generate token" }
                                        }
                                    }
                                    @if matches!(conn.map(|c| &c.status), Some(ConnectionStatus::Connected { .. }) | Some(ConnectionStatus::NeedsReconsent { .. })) {
                                        form method="post" action={ "/admin/email/" (a.id()) "/revoke" } {
                                            button.small.danger type="submit" { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        div.card {
            h2 { "Configure an email asset (OAuth 2.0)" }
            form method="post" action="/admin/email" {
                div.grid2 {
                    div { label for="asset" { "Asset name" } input #asset type="text" name="asset" value="support-mailbox" required pattern="[A-Za-z0-9_.-]+"; }
                    div { label for="email" { "Email ID" } input #email type="email" name="email" value="support@acme.example" required; }
                    div { label { "Authentication type" } input type="text" value="OAuth 2.0" readonly; }
                    div { label { "SMTP server and port" } input type="text" value="smtp.gmail.com:587 (STARTTLS, XOAUTH2)" readonly; }
                    div { label for="client_id" { "Client ID" } input #client_id type="text" name="client_id" required autocomplete="off"; }
                    div { label for="client_secret" { "Client secret" } input #client_secret type="password" name="client_secret" required autocomplete="new-password"; }
                }
                label { "Call back URL (register it at the provider)" }
                input type="text" value={ (callback_prefix) "<asset name>" } readonly;
                label for="authorization_url" { "Authorization URL" }
                input #authorization_url type="url" name="authorization_url" value={ (app.provider_issuer) "/authorize" } required;
                label for="scope" { "Scope" }
                input #scope type="text" name="scope" value="https://mail.google.com/" required;
                div.grid2 {
                    div { label for="token_url" { "Access token URL" } input #token_url type="url" name="token_url" value={ (app.provider_issuer) "/token" } required; }
                    div { label for="refresh_url" { "Refresh token URL" } input #refresh_url type="url" name="refresh_url" value={ (app.provider_issuer) "/token" } required; }
                }
                p.help { "The values are the development provider's. For Gmail: authorization URL " code { "https://accounts.google.com/o/oauth2/auth" } ", scope " code { "https://mail.google.com/" } ", token URLs " code { "https://oauth2.googleapis.com/token" } "." }
                div.actions { button type="submit" id="generate-token" { "Generate Token" } }
            }
        }
    };
    page(
        app.shell(Some(&me), "Admin › Email assets", "/admin/email"),
        content,
    )
}

#[derive(Deserialize)]
pub struct Asset {
    asset: String,
    email: String,
    client_id: String,
    client_secret: String,
    authorization_url: String,
    scope: String,
    token_url: String,
    refresh_url: String,
}

/// Saves the asset's OAuth 2.0 application, then starts the consent ("Generate Token").
pub async fn save(State(app): State<App>, headers: HeaderMap, Form(form): Form<Asset>) -> Response {
    let me = match app.admin(&headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let (Ok(id), Ok(_)) = (
        ProviderId::new(form.asset.trim()),
        ConnectionId::new(form.asset.trim()),
    ) else {
        return app.redirect_with(
            &me.session,
            Flash::Error(
                "The asset name may hold letters, digits, '-', '_' and '.' only.".to_owned(),
            ),
            "/admin/email",
        );
    };
    let config = ProviderConfig::oauth2(
        id.clone(),
        form.authorization_url.trim(),
        form.token_url.trim(),
        form.scope.split_whitespace(),
        form.client_id.trim(),
        ClientSecret::new(form.client_secret),
    )
    .with_oauth2_refresh_url(form.refresh_url.trim())
    .and_then(|config| config.with_oauth2_mailbox(form.email.trim()));
    let saved = match config {
        Ok(config) => app.broker.configure_provider(&app.tenant, config).await,
        Err(e) => Err(e),
    };
    match saved {
        // Saved: on to the provider's consent (the start route, as an admin).
        Ok(_) => Redirect::to(&format!("/sso/login/{id}?connect")).into_response(),
        Err(e) => app.redirect_with(
            &me.session,
            Flash::Error(format!("Not saved: {e}")),
            "/admin/email",
        ),
    }
}

pub async fn revoke(
    State(app): State<App>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let me = match app.admin(&headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let flash = match ConnectionId::new(id) {
        Err(_) => Flash::Error("No such asset.".to_owned()),
        Ok(id) => match app.broker.revoke_connection(&app.tenant, &id).await {
            Ok(ProviderRevocation::Revoked) => Flash::Ok(format!(
                "{id}: revoked at the provider; the tokens are deleted."
            )),
            Ok(ProviderRevocation::Failed { reason }) => Flash::Error(format!(
                "{id}: the tokens are deleted here, but the provider's revocation failed ({reason}); remove the grant at the provider too."
            )),
            Ok(_) => Flash::Ok(format!("{id}: the tokens are deleted.")),
            Err(e) => Flash::Error(cx_sso::axum::Refusal::from_error(&e).message().to_owned()),
        },
    };
    app.redirect_with(&me.session, flash, "/admin/email")
}
