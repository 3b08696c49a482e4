//! Shared set-up for the integration tests: a broker on a ManualClock over a FakeIdp.
#![allow(dead_code)]

use std::sync::Arc;

use cx_sso::testing::{FakeIdp, FakeUser};
use cx_sso::{
    Broker, CallbackRoute, ClientSecret, EntraAudience, EntraTenancy, Error, LoginIntent,
    LoginOptions, LoginOutcome, ManualClock, MemoryAuditSink, ProviderConfig, ProviderId, TenantId,
    UserId,
};
use time::macros::datetime;

pub const CLIENT_ID: &str = "client-123.apps.example";
pub const CLIENT_SECRET: &str = "GOCSPX-super-secret-value";
pub const ENTRA_TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";
pub const OTHER_ENTRA_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

pub struct World {
    pub broker: Broker,
    pub idp: FakeIdp,
    pub clock: Arc<ManualClock>,
    pub audit: Arc<MemoryAuditSink>,
    pub tenant: TenantId,
    pub provider: ProviderId,
}

pub fn tenant(s: &str) -> TenantId {
    TenantId::new(s).unwrap()
}

pub fn user(s: &str) -> UserId {
    UserId::new(s).unwrap()
}

pub fn pid(s: &str) -> ProviderId {
    ProviderId::new(s).unwrap()
}

pub fn broker_over(
    idp: &FakeIdp,
    clock: &Arc<ManualClock>,
    audit: &Arc<MemoryAuditSink>,
) -> Broker {
    Broker::builder()
        .http_client(idp.clone())
        .clock(clock.clone())
        .audit_sink(audit.clone())
        .public_base_url("https://cx.example.com")
        .build()
        .unwrap()
}

fn new_world(idp: FakeIdp, provider: &str) -> World {
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-02 09:00 UTC)));
    let idp = idp.with_clock(clock.clone());
    idp.register_client(CLIENT_ID, CLIENT_SECRET);
    let audit = Arc::new(MemoryAuditSink::new());
    World {
        broker: broker_over(&idp, &clock, &audit),
        idp,
        clock,
        audit,
        tenant: tenant("acme"),
        provider: pid(provider),
    }
}

/// A tenant with a Google application configured, and two Google users.
pub async fn google_world() -> World {
    google_world_with(|c| c).await
}

pub async fn google_world_with(f: impl FnOnce(ProviderConfig) -> ProviderConfig) -> World {
    let w = new_world(FakeIdp::google(), "google");
    w.idp.add_user(
        FakeUser::new("g-alice")
            .email("alice@acme.example")
            .email_verified(true)
            .name("Alice")
            .hosted_domain("acme.example"),
    );
    w.idp.add_user(
        FakeUser::new("g-bob")
            .email("bob@gmail.example")
            .email_verified(true)
            .name("Bob"),
    );
    let config = f(ProviderConfig::google(
        w.provider.clone(),
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    ));
    let report = w
        .broker
        .configure_provider(&w.tenant, config)
        .await
        .unwrap();
    assert!(report.is_ready(), "{report:?}");
    w
}

/// A tenant with a multi-tenant Entra application allowing ENTRA_TENANT only.
pub async fn entra_world() -> World {
    let w = new_world(FakeIdp::entra(), "office365");
    w.idp.add_user(
        FakeUser::new("pairwise-sub-carol")
            .tenant_id(ENTRA_TENANT)
            .object_id("00000000-0000-0000-0000-00000000ca01")
            .email("carol@contoso.example")
            .name("Carol"),
    );
    w.idp.add_user(
        FakeUser::new("pairwise-sub-mallory")
            .tenant_id(OTHER_ENTRA_TENANT)
            .object_id("00000000-0000-0000-0000-00000000ba01")
            .email("carol@contoso.example")
            .name("Mallory"),
    );
    let config = ProviderConfig::microsoft(
        w.provider.clone(),
        EntraTenancy::multi(EntraAudience::Organizations, [ENTRA_TENANT]).unwrap(),
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    );
    let report = w
        .broker
        .configure_provider(&w.tenant, config)
        .await
        .unwrap();
    assert!(report.is_ready(), "{report:?}");
    w
}

/// A tenant with a generic OIDC application.
pub async fn oidc_world() -> World {
    let w = new_world(FakeIdp::oidc("https://idp.example.test"), "okta");
    w.idp.add_user(
        FakeUser::new("o-dave")
            .email("dave@acme.example")
            .email_verified(true)
            .name("Dave"),
    );
    let config = ProviderConfig::oidc(
        w.provider.clone(),
        "https://idp.example.test",
        CLIENT_ID,
        ClientSecret::new(CLIENT_SECRET),
    );
    let report = w
        .broker
        .configure_provider(&w.tenant, config)
        .await
        .unwrap();
    assert!(report.is_ready(), "{report:?}");
    w
}

impl World {
    /// The same world (shared FakeIdp, clock and audit), for rebuilding the broker.
    pub fn clone_world(&self) -> World {
        World {
            broker: self.broker.clone(),
            idp: self.idp.clone(),
            clock: self.clock.clone(),
            audit: self.audit.clone(),
            tenant: self.tenant.clone(),
            provider: self.provider.clone(),
        }
    }

    /// Whether `user_id` has no binding in the world's tenant.
    pub async fn no_bindings(&self, user_id: &str) -> bool {
        self.broker
            .list_bindings(&self.tenant, &user(user_id))
            .await
            .unwrap()
            .is_empty()
    }

    /// The route the world's callbacks arrive at (the world's application and tenant).
    pub fn route(&self) -> CallbackRoute {
        CallbackRoute::new(self.provider.clone()).with_tenant(self.tenant.clone())
    }

    /// The clock's reading.
    pub fn clock_now(&self) -> time::OffsetDateTime {
        use cx_sso::Clock;
        self.clock.now()
    }

    /// Begins a login, plays the user's consent at the FakeIdp, and returns the callback query
    /// and the browser binding.
    pub async fn consent(&self, intent: LoginIntent, subject: &str) -> (String, String) {
        let redirect = self
            .broker
            .begin_login(&self.tenant, &self.provider, intent, LoginOptions::new())
            .await
            .unwrap();
        let callback = self
            .idp
            .authorize(redirect.authorize_url.as_str(), subject)
            .unwrap();
        (callback, redirect.browser_binding.secret().to_owned())
    }

    /// The whole round trip.
    pub async fn login(&self, intent: LoginIntent, subject: &str) -> Result<LoginOutcome, Error> {
        let (callback, binding) = self.consent(intent, subject).await;
        self.broker
            .complete_login(&self.route(), &callback, &binding)
            .await
    }

    /// Binds `subject` to `user` from the settings page.
    pub async fn bind(&self, user_id: &str, subject: &str) {
        let out = self
            .login(
                LoginIntent::Link {
                    user: user(user_id),
                },
                subject,
            )
            .await
            .unwrap();
        assert!(matches!(out, LoginOutcome::Linked { .. }), "{out:?}");
    }
}
