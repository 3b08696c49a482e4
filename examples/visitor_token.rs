//! Mints a visitor token for a brand and verifies it.
//!
//! ```text
//! cargo run --example visitor_token
//! ```
//!
//! Prints the token, the verified identity, and the exported key and kid so that the Node and
//! Python snippets in the crate docs (module `visitor`) can verify the same token.

use cx_sso::{Broker, TenantId, VisitorAudience, VisitorClaims, VisitorConfigOptions};

#[tokio::main]
async fn main() -> Result<(), cx_sso::Error> {
    let broker = Broker::builder()
        .public_base_url("https://cx.example.com")
        .build()?;
    let tenant = TenantId::new("acme")?;
    let brand = VisitorAudience::new("brand-acme")?;

    // Once, at setup: the library generates the signing key and hands it out this one time.
    let exported = broker
        .create_visitor_config(&tenant, &brand, VisitorConfigOptions::default())
        .await?;

    // Per chat visitor: the host backend mints a short-lived token (10 minutes by default).
    let claims = VisitorClaims::new("customer-42")
        .name("Ada Lovelace")
        .email("ada@example.com", true);
    let token = broker
        .mint_visitor_token(&tenant, &brand, &claims, None)
        .await?;
    println!("token:    {token}");

    // Wherever the token arrives: verify it against this tenant's brand configuration.
    let visitor = broker.verify_visitor_token(&tenant, &brand, &token).await?;
    println!("verified: {visitor:?}");

    // For the Node/Python snippets (a demo only: never print a real key).
    println!("VISITOR_KID={}", exported.kid());
    println!("VISITOR_KEY={}", exported.key().secret_base64url());
    Ok(())
}
