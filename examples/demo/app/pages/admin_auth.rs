//! Admin > Authentication method: password or single sign-on (the Google sign-in toggle),
//! when the switch takes effect and sessions end, cancelling it, privileged users.

use axum::Form;
use axum::extract::State;
use axum::response::Response;
use cx_sso::{AuthMethod, Error, PolicyError, ProviderId, UserId};
use http::HeaderMap;
use maud::html;
use serde::Deserialize;

use super::super::layout::{fmt_relative, fmt_time, page};
use super::super::sessions::Flash;
use super::super::{App, provider_label};
use super::{method_label, sso_applications};

pub async fn show(State(app): State<App>, headers: HeaderMap) -> Response {
    let me = match app.admin(&headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let now = app.now();
    let status = app.broker.tenant_auth_status(&app.tenant).await.ok();
    let configs = sso_applications(
        app.broker
            .list_providers(&app.tenant)
            .await
            .unwrap_or_default(),
    );
    let label = |p: &ProviderId| {
        configs
            .iter()
            .find(|c| c.id() == p)
            .map(|c| provider_label(c, &app.provider_issuer))
            .unwrap_or_else(|| p.to_string())
    };
    let privileged = app
        .broker
        .list_privileged_users(&app.tenant)
        .await
        .unwrap_or_default();
    let current = status
        .as_ref()
        .map(|s| s.method.clone())
        .unwrap_or(AuthMethod::Either);
    let content = html! {
        div.card {
            h2 { "Sign-in method" }
            p { "In force now: " strong id="method-now" { (method_label(&current, label)) } }
            @if let Some((method, at)) = status.as_ref().and_then(|s| s.pending.clone()) {
                div.warning id="pending-switch" {
                    strong { "Scheduled: " (method_label(&method, label)) }
                    "Takes effect at " (fmt_time(at)) " (" (fmt_relative(now, at)) "). "
                    "All users will be signed out then, privileged users included; calls in progress are not cut, but everyone must sign in again before the next one."
                    form method="post" action="/admin/auth/cancel" {
                        div.actions { button.secondary type="submit" id="cancel-switch" { "Cancel the scheduled switch" } }
                    }
                }
            }
            form method="post" action="/admin/auth" {
                label.radio { input type="radio" name="method" value="either" checked[matches!(current, AuthMethod::Either)]; span { strong { "Password or single sign-on" } br; small.help { "Users choose." } } }
                label.radio { input type="radio" name="method" value="password" checked[matches!(current, AuthMethod::Password)]; span { strong { "Password only" } br; small.help { "Single sign-on buttons disappear from the sign-in page." } } }
                label.radio { input #method-sso type="radio" name="method" value="sso" checked[matches!(current, AuthMethod::Sso { .. })]; span { strong { "Google sign-in only (single sign-on)" } br; small.help { "Users and admins sign in with the application below; passwords stop working, except for privileged users." } } }
                label for="provider" { "Application" }
                select #provider name="provider" {
                    @for c in &configs {
                        option value=(c.id()) { (provider_label(c, &app.provider_issuer)) " (" (c.id()) ")" }
                    }
                }
                p.help { "A change takes effect one hour after you save it, so that users can bind their accounts first. All users will be signed out then." }
                div.actions { button type="submit" id="save-method" { "Save changes" } }
            }
        }
        div.card {
            h2 { "Privileged users" }
            p.help { "Privileged users may sign in with their password or with single sign-on, so an admin can still get in when the identity provider is down." }
            table {
                tbody {
                    @for u in &privileged {
                        tr {
                            td { (app.users.get(u).map(|x| x.name.as_str()).unwrap_or(u.as_str())) }
                            td {
                                form method="post" action="/admin/auth/privileged" {
                                    input type="hidden" name="user" value=(u);
                                    input type="hidden" name="action" value="remove";
                                    button.small.danger type="submit" { "Remove" }
                                }
                            }
                        }
                    }
                    @if privileged.is_empty() { tr { td.help { "No privileged users." } } }
                }
            }
            form method="post" action="/admin/auth/privileged" {
                input type="hidden" name="action" value="add";
                label for="user" { "Add a privileged user" }
                select #user name="user" {
                    @for u in app.users.all().iter().filter(|u| !privileged.contains(&u.id)) {
                        option value=(u.id) { (u.name) " (" (u.email) ")" }
                    }
                }
                div.actions { button.secondary type="submit" id="add-privileged" { "Add" } }
            }
        }
    };
    page(
        app.shell(Some(&me), "Admin › Authentication method", "/admin/auth"),
        content,
    )
}

#[derive(Deserialize)]
pub struct Save {
    method: String,
    #[serde(default)]
    provider: String,
}

pub async fn save(State(app): State<App>, headers: HeaderMap, Form(form): Form<Save>) -> Response {
    let me = match app.admin(&headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let method = match form.method.as_str() {
        "password" => AuthMethod::Password,
        "sso" => match ProviderId::new(form.provider) {
            Ok(p) => AuthMethod::Sso { providers: vec![p] },
            Err(_) => {
                return app.redirect_with(
                    &me.session,
                    Flash::Error(
                        "Choose an SSO application first (Admin › SSO applications).".to_owned(),
                    ),
                    "/admin/auth",
                );
            }
        },
        _ => AuthMethod::Either,
    };
    let flash = match app.broker.set_auth_method(&app.tenant, method, None).await {
        Ok(status) => match status.pending {
            Some((_, at)) => Flash::Ok(format!(
                "Saved. The new sign-in method takes effect at {}; all users will be signed out then.",
                fmt_time(at)
            )),
            None => Flash::Ok("Saved: nothing changes.".to_owned()),
        },
        Err(Error::Policy(PolicyError::SsoNotReady { reason })) => Flash::Error(format!(
            "Single sign-on cannot be enforced yet: {reason}. Everyone would be locked out."
        )),
        Err(e) => Flash::Error(cx_sso::axum::Refusal::from_error(&e).message().to_owned()),
    };
    app.redirect_with(&me.session, flash, "/admin/auth")
}

pub async fn cancel(State(app): State<App>, headers: HeaderMap) -> Response {
    let me = match app.admin(&headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let flash = match app.broker.cancel_auth_method_switch(&app.tenant).await {
        Ok(true) => {
            Flash::Ok("The scheduled switch is cancelled; nobody will be signed out.".to_owned())
        }
        Ok(false) => Flash::Error(
            "Nothing was scheduled (or the switch has already taken effect).".to_owned(),
        ),
        Err(e) => Flash::Error(cx_sso::axum::Refusal::from_error(&e).message().to_owned()),
    };
    app.redirect_with(&me.session, flash, "/admin/auth")
}

#[derive(Deserialize)]
pub struct Privileged {
    user: String,
    action: String,
}

pub async fn privileged(
    State(app): State<App>,
    headers: HeaderMap,
    Form(form): Form<Privileged>,
) -> Response {
    let me = match app.admin(&headers).await {
        Ok(me) => me,
        Err(r) => return r,
    };
    let Some(user) = UserId::new(form.user)
        .ok()
        .and_then(|u| app.users.get(&u).cloned())
    else {
        return app.redirect_with(
            &me.session,
            Flash::Error("No such user.".to_owned()),
            "/admin/auth",
        );
    };
    let result = if form.action == "remove" {
        app.broker
            .remove_privileged_user(&app.tenant, &user.id)
            .await
            .map(|_| "is no longer")
    } else {
        app.broker
            .add_privileged_user(&app.tenant, &user.id)
            .await
            .map(|()| "is now")
    };
    let flash = match result {
        Ok(what) => Flash::Ok(format!("{} {what} a privileged user.", user.name)),
        Err(e) => Flash::Error(cx_sso::axum::Refusal::from_error(&e).message().to_owned()),
    };
    app.redirect_with(&me.session, flash, "/admin/auth")
}
