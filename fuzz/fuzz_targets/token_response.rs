//! Token-endpoint responses: the code exchange (a login) and the mailbox refresh
//! (`access_token` after the stored token expired), each answer from the input.
//!
//! Input parts: the code-exchange answer and the refresh answer (`STATUS\nBODY`, templates
//! over `{id_token}`, `{access_token}` ...; empty for the well-behaved answer), and one byte
//! choosing the login's intent for the exchange.
#![no_main]

use cx_sso::{LoginIntent, LoginOptions};
use cx_sso_fuzz::{Answer, World, block_on, connection, parts, user};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = parts(data, 3);
    let intent = match p[2].first().copied().unwrap_or(0) % 3 {
        0 => LoginIntent::SignIn,
        1 => LoginIntent::Link {
            user: user("alice"),
        },
        _ => LoginIntent::Connect {
            connection: connection("box-1"),
        },
    };
    block_on(async {
        // The code exchange.
        let w = World::new(None);
        w.configure().await.expect("configure");
        w.idp.script().token = Answer::from_part(p[0]);
        if let Err(e) = w.login(intent, LoginOptions::new()).await {
            let _ = format!("{e} {e:?}");
        }

        // The refresh of a connected mailbox.
        let w = World::new(None);
        w.configure().await.expect("configure");
        let c = connection("box-2");
        w.login(
            LoginIntent::Connect {
                connection: c.clone(),
            },
            LoginOptions::new(),
        )
        .await
        .expect("connect");
        w.idp.script().refresh = Answer::from_part(p[1]);
        w.clock.advance(time::Duration::hours(2));
        let refreshed = w.broker.access_token(&w.tenant, &c).await;
        if let Ok(token) = &refreshed {
            assert!(!token.secret().is_empty());
        }
        let _ = w.broker.xoauth2(&w.tenant, &c).await;
        // Whatever the provider answered, the connection is still readable and listed.
        let info = w.broker.connection_info(&w.tenant, &c).await;
        assert!(info.is_ok(), "{info:?}");
        let list = w.broker.list_connections(&w.tenant).await;
        assert!(list.is_ok_and(|l| l.len() == 1));
    });
});
