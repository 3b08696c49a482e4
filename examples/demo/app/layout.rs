//! The page shell: header, navigation, flash message, footer with the demo clock; the style
//! sheet; time formatting.

use axum::response::{Html, IntoResponse, Response};
use http::StatusCode;
use maud::{DOCTYPE, Markup, PreEscaped, html};
use time::{Duration, OffsetDateTime};

use super::sessions::Flash;

/// Who is looking at the page, for the navigation.
pub struct Viewer<'a> {
    pub name: &'a str,
    pub admin: bool,
    pub via: &'a str,
}

/// What the shell needs besides the page's own content.
pub struct Shell<'a> {
    pub title: &'a str,
    pub viewer: Option<Viewer<'a>>,
    pub flash: Option<Flash>,
    pub now: OffsetDateTime,
    pub clock_control: bool,
    /// The navigation entry to highlight.
    pub active: &'a str,
}

pub fn page(shell: Shell<'_>, content: Markup) -> Response {
    page_with_status(StatusCode::OK, shell, content)
}

pub fn page_with_status(status: StatusCode, shell: Shell<'_>, content: Markup) -> Response {
    let nav = |href: &str, label: &str| {
        html! {
            a href=(href) class=@if shell.active == href { "active" } { (label) }
        }
    };
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (shell.title) " · Acme Support" }
                link rel="stylesheet" href="/style.css";
            }
            body {
                header.top {
                    a.brand href="/" { span.logo { "A" } "Acme Support" }
                    @if let Some(v) = &shell.viewer {
                        nav {
                            (nav("/", "Home"))
                            (nav("/profile/security", "Security Setting"))
                            @if v.admin {
                                span.sep { "Admin:" }
                                (nav("/admin/sso", "SSO applications"))
                                (nav("/admin/auth", "Authentication method"))
                                (nav("/admin/email", "Email assets"))
                                (nav("/admin/chat", "Web chat"))
                            }
                        }
                        div.who {
                            span { (v.name) } small { " via " (v.via) }
                            form method="post" action="/signout" { button.link type="submit" { "Sign out" } }
                        }
                    }
                }
                main {
                    h1 { (shell.title) }
                    @match &shell.flash {
                        Some(Flash::Ok(m)) => div.flash.ok role="status" { (m) },
                        Some(Flash::Error(m)) => div.flash.error role="alert" { (m) },
                        None => {},
                    }
                    (content)
                }
                footer {
                    "Demo clock: " span #clock { (fmt_time(shell.now)) }
                    @if shell.clock_control && shell.viewer.as_ref().is_some_and(|v| v.admin) {
                        form.inline method="post" action="/admin/clock" {
                            input type="hidden" name="minutes" value="61";
                            button.small type="submit" id="advance-clock" { "Advance the clock 61 minutes" }
                        }
                    }
                    " · a demo of the cx-sso library; nothing here is real."
                }
            }
        }
    };
    (status, Html(markup.into_string())).into_response()
}

/// `2026-12-02 04:31 UTC`
pub fn fmt_time(t: OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// `in 59 minutes`, `2 minutes ago`
pub fn fmt_relative(now: OffsetDateTime, t: OffsetDateTime) -> String {
    let d = t - now;
    let minutes = d.abs().whole_minutes();
    let amount = if d.abs() >= Duration::hours(2) {
        format!("{} hours", d.abs().whole_hours())
    } else if minutes == 1 {
        "1 minute".to_owned()
    } else {
        format!("{minutes} minutes")
    };
    if d.is_negative() {
        format!("{amount} ago")
    } else {
        format!("in {amount}")
    }
}

pub const STYLE: &str = r#"
:root { --ink:#111827; --muted:#4b5563; --line:#e5e7eb; --brand:#4338ca; --bg:#f3f4f6;
        --ok:#065f46; --okbg:#d1fae5; --warn:#92400e; --warnbg:#fef3c7; --err:#991b1b; --errbg:#fee2e2; }
* { box-sizing: border-box; }
body { margin:0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--ink);
       background:var(--bg); line-height:1.45; }
header.top { display:flex; align-items:center; gap:1rem; padding:.6rem 1.5rem; background:#fff;
             border-bottom:1px solid var(--line); flex-wrap:wrap; }
.brand { font-weight:700; color:var(--ink); text-decoration:none; display:flex; align-items:center; gap:.5rem; }
.logo { display:inline-grid; place-items:center; width:1.8rem; height:1.8rem; border-radius:6px;
        background:var(--brand); color:#fff; }
nav { display:flex; gap:.25rem; flex-wrap:wrap; align-items:center; flex:1; }
nav a { color:var(--muted); text-decoration:none; padding:.3rem .45rem; border-radius:6px; font-size:.88rem; white-space:nowrap; }
nav a:hover { background:var(--bg); }
nav a.active { background:#eef2ff; color:var(--brand); font-weight:600; }
nav .sep { color:#9ca3af; font-size:.78rem; margin-left:.5rem; }
.who { display:flex; gap:.5rem; align-items:center; font-size:.88rem; white-space:nowrap; }
.who small { color:var(--muted); }
main { max-width:60rem; margin:1.5rem auto; padding:0 1.5rem; }
h1 { font-size:1.6rem; margin:.5rem 0 1rem; }
main:has(> .narrow) > h1 { text-align:center; }
h2 { font-size:1.15rem; margin:0 0 .75rem; }
.card { background:#fff; border:1px solid var(--line); border-radius:10px; padding:1.25rem 1.5rem; margin:0 0 1.25rem; }
.narrow { max-width:26rem; margin-left:auto; margin-right:auto; }
p.help, .help { color:var(--muted); font-size:.92rem; }
label { display:block; font-weight:600; font-size:.9rem; margin:.75rem 0 .25rem; }
input[type=text], input[type=email], input[type=password], input[type=url], select {
  width:100%; padding:.55rem .7rem; border:1px solid #d1d5db; border-radius:7px; font-size:1rem; background:#fff; }
input[readonly] { background:var(--bg); color:var(--muted); }
.radio { font-weight:400; display:flex; gap:.5rem; align-items:flex-start; margin:.4rem 0; }
.radio input { margin-top:.3rem; }
button, .button { display:inline-block; padding:.55rem 1rem; border-radius:7px; border:1px solid var(--brand);
  background:var(--brand); color:#fff; font-size:.95rem; cursor:pointer; text-decoration:none; }
button.secondary, .button.secondary { background:#fff; color:var(--brand); }
button.danger { background:#fff; color:var(--err); border-color:#fca5a5; }
button.small, .button.small { padding:.3rem .6rem; font-size:.85rem; }
button.link { background:none; border:none; color:var(--brand); padding:0; font-size:.93rem; }
button.provider { width:100%; background:#fff; color:var(--ink); border-color:#d1d5db; margin:.3rem 0; text-align:center; }
button.provider:hover { background:#eef2ff; }
.actions { display:flex; gap:.5rem; flex-wrap:wrap; margin-top:1rem; align-items:center; }
form.inline { display:inline; }
.flash { padding:.75rem 1rem; border-radius:8px; margin:0 0 1rem; }
.flash.ok { background:var(--okbg); color:var(--ok); }
.flash.error { background:var(--errbg); color:var(--err); }
.warning { background:var(--warnbg); color:var(--warn); border-radius:8px; padding:.75rem 1rem; margin:.75rem 0; }
.warning strong { display:block; }
table { width:100%; border-collapse:collapse; font-size:.93rem; }
th, td { text-align:left; padding:.55rem .5rem; border-bottom:1px solid var(--line); vertical-align:top; }
th { color:var(--muted); font-weight:600; font-size:.82rem; text-transform:uppercase; letter-spacing:.03em; }
.badge { display:inline-block; padding:.1rem .55rem; border-radius:999px; font-size:.8rem; font-weight:600; }
.badge.ok { background:var(--okbg); color:var(--ok); }
.badge.warn { background:var(--warnbg); color:var(--warn); }
.badge.err { background:var(--errbg); color:var(--err); }
.badge.muted { background:var(--bg); color:var(--muted); }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size:.88em; background:var(--bg);
  padding:.05rem .3rem; border-radius:4px; word-break:break-all; }
.or { text-align:center; color:var(--muted); margin:1rem 0; font-size:.9rem; }
.grid2 { display:grid; grid-template-columns:1fr 1fr; gap:0 1rem; }
ul.reasons { margin:.25rem 0 0; padding-left:1.2rem; }
footer { max-width:60rem; margin:2rem auto; padding:0 1.5rem; color:#6b7280; font-size:.85rem; }
footer form { margin-left:.5rem; }
.chat { border:1px solid var(--line); border-radius:12px; overflow:hidden; max-width:24rem; }
.chat .head { background:var(--brand); color:#fff; padding:.6rem 1rem; font-weight:600; }
.chat .body { padding:1rem; background:#fff; }
.bubble { background:var(--bg); border-radius:10px; padding:.5rem .75rem; margin:.4rem 0; }
"#;

/// The style sheet response.
pub fn style() -> Response {
    (
        [(http::header::CONTENT_TYPE, "text/css; charset=utf-8")],
        PreEscaped(STYLE).into_string(),
    )
        .into_response()
}
