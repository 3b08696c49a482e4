//! ID-token verification, through `complete_login`: the token endpoint answers with an ID
//! token built from the input.
//!
//! Input parts: the token's header and claims (JSON templates over `{nonce}`, `{issuer}`,
//! `{client_id}`, `{kid}`, `{now}`, `{exp}`, `{at_hash}`), its signature (empty: signed with
//! the provider's key; otherwise that text as the signature), and one byte choosing the intent.
#![no_main]

use cx_sso::{LoginIntent, LoginOptions};
use cx_sso_fuzz::{World, block_on, connection, id_token, parts, text, user};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let p = parts(data, 4);
    let intent = match p[3].first().copied().unwrap_or(0) % 3 {
        0 => LoginIntent::SignIn,
        1 => LoginIntent::Link {
            user: user("alice"),
        },
        _ => LoginIntent::Connect {
            connection: connection("box-1"),
        },
    };
    let signature = (!p[2].is_empty()).then(|| text(p[2]));
    block_on(async {
        let w = World::new(None);
        w.configure().await.expect("configure");
        let begun = w.begin(intent, LoginOptions::new()).await.expect("begin");
        let token = id_token(p[0], p[1], &begun.nonce, signature.as_deref());
        w.idp.script().id_token = Some(token);
        let out = w
            .complete(&World::callback_query(&begun), &begun.binding)
            .await;
        if out.is_ok() {
            // Only the provider's key signs: any other signature is refused.
            assert!(
                signature.is_none(),
                "a token with a forged signature passed: {out:?}"
            );
            // The nonce is 256 random bits: a token that does not carry it is refused.
            assert!(
                p[1].windows(7).any(|x| x == b"{nonce}"),
                "a token without the login's nonce passed: {out:?}"
            );
        }
    });
});
