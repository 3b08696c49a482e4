//! Stored records decoded from arbitrary bytes: a store holds one record of every type the
//! broker writes (provider, policy, privileged user, pending login, link ticket, binding,
//! connection, lease, visitor configuration, visitor jti), one of them replaced by the input;
//! every broker operation that reads them answers a value or a typed error, never a panic.
//!
//! Input: one byte choosing the record (modulo their number), then its new value.
#![no_main]

use std::sync::LazyLock;

use cx_sso::{LoginIntent, LoginOptions, VisitorAudience, VisitorClaims};
use cx_sso_fuzz::records::{Snapshot, snapshot, store_with};
use cx_sso_fuzz::{VISITOR_AUDIENCE, VISITOR_ONCE, World, block_on, connection, user};
use libfuzzer_sys::fuzz_target;

static SNAPSHOT: LazyLock<Snapshot> = LazyLock::new(snapshot);

fuzz_target!(|data: &[u8]| {
    let Some((&index, value)) = data.split_first() else {
        return;
    };
    let s = &*SNAPSHOT;
    block_on(async {
        let w = World::new(Some(store_with(s, usize::from(index), value).await));
        let b = &w.broker;
        let t = &w.tenant;
        let chat = VisitorAudience::new(VISITOR_AUDIENCE).expect("audience");
        let once = VisitorAudience::new(VISITOR_ONCE).expect("audience");
        let alice = user("alice");
        let root = user("root");
        let box1 = connection("box-1");

        let _ = b.provider_status(t, &w.provider).await;
        let _ = b.list_providers(t).await;
        let _ = b.sso_status(t).await;
        let _ = b.tenant_auth_status(t).await;
        let _ = b.list_privileged_users(t).await;
        let _ = b.check_password_login(t, &alice).await;
        let _ = b.check_password_login(t, &root).await;
        let _ = b.check_session(&s.session).await;
        let _ = b.list_bindings(t, &alice).await;
        let _ = b.connection_info(t, &box1).await;
        let _ = b.list_connections(t).await;
        let _ = b.access_token(t, &box1).await;
        let _ = b.xoauth2(t, &box1).await;
        let _ = b.list_visitor_configs(t).await;
        let _ = b.list_visitor_keys(t, &chat).await;
        let _ = b.verify_visitor_token(t, &chat, &s.visitor_tokens.0).await;
        let _ = b.verify_visitor_token(t, &once, &s.visitor_tokens.1).await;
        let claims = VisitorClaims::new("c-7");
        let _ = b.mint_visitor_token(t, &chat, &claims, None).await;
        let _ = w
            .complete(&World::callback_query(&s.pending), &s.pending.binding)
            .await;
        let _ = b.redeem_link_ticket(t, &s.ticket, &alice).await;
        let _ = w.login(LoginIntent::SignIn, LoginOptions::new()).await;
        let _ = b.cancel_auth_method_switch(t).await;
        let _ = b.revoke_connection(t, &box1).await;
        let _ = b.test_connection(t, &w.provider).await;
        // Time passes: expiries and the pending method switch fall due.
        w.clock.advance(time::Duration::hours(3));
        let _ = b.tenant_auth_status(t).await;
        let _ = b.check_session(&s.session).await;
        let _ = b.access_token(t, &box1).await;
    });
});
