//! Visitor-token verification: any text given to `verify_visitor_token` is an identity or a
//! typed refusal, never a panic; a single-use token is accepted at most once; a token of one
//! tenant is nothing in another.
#![no_main]

use cx_sso::{TenantId, VisitorAudience};
use cx_sso_fuzz::{LEEWAY, VISITOR_AUDIENCE, VISITOR_ONCE, World, block_on, start};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    block_on(async {
        let w = World::new(None);
        w.visitor_rings().await.expect("visitor rings");
        let chat = VisitorAudience::new(VISITOR_AUDIENCE).expect("audience");
        let once = VisitorAudience::new(VISITOR_ONCE).expect("audience");
        let b = &w.broker;
        if let Ok(id) = b.verify_visitor_token(&w.tenant, &chat, &token).await {
            assert!(
                matches!(id.kid.as_str(), "vk1" | "vk2"),
                "accepted with key {:?}",
                id.kid
            );
            assert!(id.expires_at.unix_timestamp() > start().unix_timestamp() - LEEWAY);
            assert!(!id.external_id.is_empty());
        }
        if b.verify_visitor_token(&w.tenant, &once, &token)
            .await
            .is_ok()
        {
            let again = b.verify_visitor_token(&w.tenant, &once, &token).await;
            assert!(again.is_err(), "a single-use token was accepted twice");
        }
        let other = TenantId::new("other").expect("tenant");
        let elsewhere = b.verify_visitor_token(&other, &chat, &token).await;
        assert!(
            elsewhere.is_err(),
            "accepted for a tenant with no configuration"
        );
    });
});
