//! The callback: the query parser and the whole `complete_login` path, with the provider's
//! token and userinfo answers from the input.
//!
//! Input parts (see `cx_sso_fuzz::parts`): the callback query (a template over `{state}`,
//! `{nonce}`, `{issuer}`), the browser binding (a template over `{binding}`), the token
//! endpoint's answer (`STATUS\nBODY`, a template over `{id_token}` ...; empty for the
//! well-behaved answer), the userinfo answer, and one byte choosing the login's intent.
#![no_main]

use cx_sso::{LoginIntent, LoginOptions, LoginOutcome};
use cx_sso_fuzz::{Answer, CLIENT_SECRET, World, block_on, connection, fill, parts, text, user};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = parts(data, 5);
    let intent = match p[4].first().copied().unwrap_or(0) % 3 {
        0 => LoginIntent::SignIn,
        1 => LoginIntent::Link {
            user: user("alice"),
        },
        _ => LoginIntent::Connect {
            connection: connection("box-1"),
        },
    };
    block_on(async {
        let w = World::new(None);
        let report = w.configure().await.expect("configure");
        assert!(report.is_ready(), "{report:?}");
        let begun = w.begin(intent, LoginOptions::new()).await.expect("begin");
        {
            let mut s = w.idp.script();
            s.token = Answer::from_part(p[2]);
            s.userinfo = Answer::from_part(p[3]);
        }
        let query = text(&fill(
            p[0],
            &[
                ("state", &begun.state),
                ("nonce", &begun.nonce),
                ("issuer", cx_sso_fuzz::ISSUER),
            ],
        ));
        let binding = text(&fill(p[1], &[("binding", &begun.binding)]));
        let first = w.complete(&query, &binding).await;
        match &first {
            Ok(out) => {
                // The state and the cookie are 256 random bits each: a callback that does not
                // carry both cannot complete the login.
                assert!(
                    p[0].windows(7).any(|x| x == b"{state}"),
                    "completed without the state: {out:?}"
                );
                assert!(
                    p[1].windows(9).any(|x| x == b"{binding}"),
                    "completed without the browser binding: {out:?}"
                );
                let tenant = match out {
                    LoginOutcome::SignedIn { tenant, .. }
                    | LoginOutcome::LinkRequired { tenant, .. }
                    | LoginOutcome::Linked { tenant, .. }
                    | LoginOutcome::Connected { tenant, .. } => tenant,
                    _ => &w.tenant,
                };
                assert_eq!(tenant, &w.tenant);
            }
            Err(e) => {
                let shown = format!("{e} {e:?}");
                assert!(!shown.contains(CLIENT_SECRET), "{shown}");
            }
        }
        // A pending login is taken at most once: the same callback again is refused.
        let again = w.complete(&query, &binding).await;
        assert!(again.is_err(), "a replayed callback completed: {again:?}");
    });
});
