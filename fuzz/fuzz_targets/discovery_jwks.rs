//! Discovery documents and JWKS: the provider's metadata and keys from the input, through the
//! connection check (`configure_provider`), `begin_login` and a whole login whose ID token is
//! signed with the provider's usual key.
//!
//! Input parts: the discovery answer and the JWKS answer (`STATUS\nBODY`, templates over
//! `{issuer}` ...; empty for the well-behaved answer), and one byte choosing the intent.
#![no_main]

use cx_sso::{LoginIntent, LoginOptions};
use cx_sso_fuzz::{Answer, World, block_on, connection, parts};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = parts(data, 3);
    let connect = p[2].first().is_some_and(|b| b % 2 == 1);
    block_on(async {
        let w = World::new(None);
        {
            let mut s = w.idp.script();
            s.discovery = Answer::from_part(p[0]);
            s.jwks = Answer::from_part(p[1]);
        }
        let configured = w.configure().await;
        if let Ok(report) = &configured {
            let _ = format!("{report:?}");
        }
        let status = w.broker.provider_status(&w.tenant, &w.provider).await;
        let _ = format!("{status:?}");
        let _ = w.broker.test_connection(&w.tenant, &w.provider).await;
        let intent = if connect {
            LoginIntent::Connect {
                connection: connection("box-1"),
            }
        } else {
            LoginIntent::SignIn
        };
        let Ok(begun) = w.begin(intent, LoginOptions::new()).await else {
            return;
        };
        // Login can begin only with a configuration whose check passed.
        assert!(
            configured.as_ref().is_ok_and(|r| r.is_ready()),
            "a login began on a failed check: {configured:?}"
        );
        let _ = w
            .complete(&World::callback_query(&begun), &begun.binding)
            .await;
    });
});
