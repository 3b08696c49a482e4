//! Stored records across a change of their format: a pending login written in format 1 (JSON,
//! before the compact binary format 2) still completes after the upgrade, and a pending login
//! whose bytes are broken is a typed store error, not a panic.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cx_sso::store::{NewRecord, Record, Store};
use cx_sso::testing::{FakeIdp, FakeUser};
use cx_sso::{
    Broker, CallbackRoute, ClientSecret, Clock, Error, LoginIntent, LoginOptions, LoginOutcome,
    LoginRedirect, ManualClock, MemoryStore, ProviderConfig, ProviderId, StoreError, TenantId,
    UserId,
};
use sha2::{Digest, Sha256};
use time::macros::datetime;

struct World {
    broker: Broker,
    idp: FakeIdp,
    clock: Arc<ManualClock>,
    store: Arc<MemoryStore>,
    tenant: TenantId,
    provider: ProviderId,
}

async fn world() -> World {
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-02 09:00 UTC)));
    let idp = FakeIdp::google().with_clock(clock.clone());
    idp.register_client("client", "secret");
    idp.add_user(
        FakeUser::new("g-alice")
            .email("alice@acme.example")
            .email_verified(true)
            .name("Alice"),
    );
    let store = Arc::new(MemoryStore::new());
    let broker = Broker::builder()
        .http_client(idp.clone())
        .clock(clock.clone())
        .shared_store(store.clone())
        .public_base_url("https://cx.example.com")
        .build()
        .unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let provider = ProviderId::new("google").unwrap();
    broker
        .configure_provider(
            &tenant,
            ProviderConfig::google(provider.clone(), "client", ClientSecret::new("secret")),
        )
        .await
        .unwrap();
    World {
        broker,
        idp,
        clock,
        store,
        tenant,
        provider,
    }
}

fn param(redirect: &LoginRedirect, name: &str) -> String {
    redirect
        .authorize_url
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

impl World {
    async fn begin(&self, intent: LoginIntent) -> LoginRedirect {
        self.broker
            .begin_login(
                &self.tenant,
                &self.provider,
                intent,
                LoginOptions::new().return_to("/inbox"),
            )
            .await
            .unwrap()
    }

    /// The stored pending login of `redirect`, with its key: found by its index, the hash of
    /// its state.
    async fn stored(&self, redirect: &LoginRedirect) -> (String, Record) {
        let index = URL_SAFE_NO_PAD.encode(Sha256::digest(param(redirect, "state")));
        let mut found = self
            .store
            .list("pending_login", &index, self.clock.now())
            .await
            .unwrap();
        assert_eq!(found.len(), 1);
        found.remove(0)
    }

    async fn complete(
        &self,
        callback: &str,
        redirect: &LoginRedirect,
    ) -> Result<LoginOutcome, Error> {
        let route = CallbackRoute::new(self.provider.clone()).with_tenant(self.tenant.clone());
        self.broker
            .complete_login(&route, callback, redirect.browser_binding.secret())
            .await
    }
}

#[tokio::test]
async fn a_login_begun_in_the_json_format_completes_after_the_upgrade() {
    let w = world().await;
    let alice = UserId::new("alice").unwrap();
    let redirect = w
        .begin(LoginIntent::Link {
            user: alice.clone(),
        })
        .await;
    let (key, record) = w.stored(&redirect).await;
    assert_eq!(record.value.first(), Some(&2), "written in format 2");

    // The same login as format 1 wrote it, with a PKCE verifier of the test's own (RFC 7636
    // appendix B), and the authorization request carrying its challenge.
    let v1 = serde_json::json!({
        "tenant": "acme",
        "provider": "google",
        "intent": { "Link": { "user": "alice" } },
        "pkce_verifier": "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        "nonce": param(&redirect, "nonce"),
        "return_to": "/inbox",
        "redirect_uri": param(&redirect, "redirect_uri"),
        "expires_at": redirect.expires_at,
        "policy_epoch": 0,
    });
    let v1 = serde_json::to_vec(&v1).unwrap();
    assert_eq!(v1.first(), Some(&b'{'));
    let now = w.clock.now();
    w.store
        .put(
            "pending_login",
            &key,
            NewRecord::new(v1)
                .expires_at(redirect.expires_at)
                .index(record.index.clone().unwrap()),
            now,
        )
        .await
        .unwrap();
    let mut url = redirect.authorize_url.clone();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| match &*k {
            "code_challenge" => (
                k.into_owned(),
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned(),
            ),
            _ => (k.into_owned(), v.into_owned()),
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let callback = w.idp.authorize(url.as_str(), "g-alice").unwrap();

    let out = w.complete(&callback, &redirect).await.unwrap();
    match out {
        LoginOutcome::Linked {
            user, return_to, ..
        } => assert_eq!((user, return_to.as_str()), (alice, "/inbox")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_broken_pending_login_is_a_corrupt_record_error() {
    let w = world().await;
    for bytes in [&[2u8, 0xff][..], b"{\"tenant\":", &[9, 1, 2, 3]] {
        let redirect = w.begin(LoginIntent::SignIn).await;
        let (key, record) = w.stored(&redirect).await;
        w.store
            .put(
                "pending_login",
                &key,
                NewRecord::new(bytes.to_vec())
                    .expires_at(redirect.expires_at)
                    .index(record.index.clone().unwrap()),
                w.clock.now(),
            )
            .await
            .unwrap();
        let callback = w
            .idp
            .authorize(redirect.authorize_url.as_str(), "g-alice")
            .unwrap();
        let err = w.complete(&callback, &redirect).await.unwrap_err();
        assert!(
            matches!(err, Error::Store(StoreError::Corrupt { .. })),
            "{bytes:?}: {err:?}"
        );
        assert!(err.to_string().contains("pending login"), "{err}");
    }
}
