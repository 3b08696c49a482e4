//! Visitor-auth tokens: mint, verify, every refusal, rotation, interop with `jsonwebtoken`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cx_sso::store::{CasOutcome, DeleteOutcome, Inserted, NewRecord, Record};
use cx_sso::{
    Broker, Clock, Error, ErrorKind, ExportedVisitorKey, ManualClock, MemoryStore, Store,
    StoreError, TenantId, VisitorAdminError, VisitorAudience, VisitorClaims, VisitorConfigOptions,
    VisitorIdentity, VisitorKeyId, VisitorKeyInfo, VisitorKeyState, VisitorSigningKey,
    VisitorTokenError,
};
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Value, json};
use sha2::Sha256;
use time::{Duration, OffsetDateTime};

/// A MemoryStore that counts reads of visitor configurations, to prove that hostile `kid`s are
/// refused before any lookup.
#[derive(Debug, Default)]
struct CountingStore {
    inner: MemoryStore,
    config_reads: AtomicUsize,
}

#[async_trait]
impl Store for CountingStore {
    async fn get(
        &self,
        ns: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        if ns == "visitor_config" {
            self.config_reads.fetch_add(1, Ordering::SeqCst);
        }
        self.inner.get(ns, key, now).await
    }
    async fn insert(
        &self,
        ns: &str,
        key: &str,
        r: NewRecord,
        now: OffsetDateTime,
    ) -> Result<Inserted, StoreError> {
        self.inner.insert(ns, key, r, now).await
    }
    async fn put(
        &self,
        ns: &str,
        key: &str,
        r: NewRecord,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        self.inner.put(ns, key, r, now).await
    }
    async fn take(
        &self,
        ns: &str,
        key: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Record>, StoreError> {
        self.inner.take(ns, key, now).await
    }
    async fn compare_and_swap(
        &self,
        ns: &str,
        key: &str,
        expected: u64,
        r: NewRecord,
        now: OffsetDateTime,
    ) -> Result<CasOutcome, StoreError> {
        self.inner.compare_and_swap(ns, key, expected, r, now).await
    }
    async fn compare_and_delete(
        &self,
        ns: &str,
        key: &str,
        expected: u64,
        now: OffsetDateTime,
    ) -> Result<DeleteOutcome, StoreError> {
        self.inner.compare_and_delete(ns, key, expected, now).await
    }
    async fn delete(&self, ns: &str, key: &str, now: OffsetDateTime) -> Result<bool, StoreError> {
        self.inner.delete(ns, key, now).await
    }
    async fn list(
        &self,
        ns: &str,
        index: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<(String, Record)>, StoreError> {
        self.inner.list(ns, index, now).await
    }
}

struct Fx {
    broker: Broker,
    clock: Arc<ManualClock>,
    store: Arc<CountingStore>,
    tenant: TenantId,
    aud: VisitorAudience,
    key: ExportedVisitorKey,
}

fn start() -> OffsetDateTime {
    // Near real time, so that `jsonwebtoken` (which reads the system clock) agrees.
    OffsetDateTime::from_unix_timestamp(OffsetDateTime::now_utc().unix_timestamp())
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

async fn fixture_with(options: VisitorConfigOptions) -> Fx {
    let clock = Arc::new(ManualClock::new(start()));
    let store = Arc::new(CountingStore::default());
    let broker = Broker::builder()
        .clock(clock.clone() as Arc<dyn Clock>)
        .shared_store(store.clone() as Arc<dyn Store>)
        .public_base_url("https://cx.example.test")
        .build()
        .unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let aud = VisitorAudience::new("brand-acme").unwrap();
    let key = broker
        .create_visitor_config(&tenant, &aud, options)
        .await
        .unwrap();
    Fx {
        broker,
        clock,
        store,
        tenant,
        aud,
        key,
    }
}

async fn fixture() -> Fx {
    fixture_with(VisitorConfigOptions::default()).await
}

impl Fx {
    async fn mint(&self) -> String {
        self.broker
            .mint_visitor_token(&self.tenant, &self.aud, &claims(), None)
            .await
            .unwrap()
    }

    async fn verify(&self, token: &str) -> Result<VisitorIdentity, Error> {
        self.broker
            .verify_visitor_token(&self.tenant, &self.aud, token)
            .await
    }

    async fn snapshot(&self) -> (Vec<VisitorKeyInfo>, u64) {
        let keys = self
            .broker
            .list_visitor_keys(&self.tenant, &self.aud)
            .await
            .unwrap();
        let version = self
            .store
            .get("visitor_config", "acme|brand-acme", self.clock.now())
            .await
            .unwrap()
            .unwrap()
            .version;
        (keys, version)
    }

    /// Verifies `token`, expects `expected`, and checks that the key ring did not change.
    async fn assert_refused(&self, token: &str, expected: VisitorTokenError) {
        let before = self.snapshot().await;
        let err = self.verify(token).await.unwrap_err();
        assert!(
            matches!(&err, Error::VisitorToken(e) if *e == expected),
            "expected {expected:?}, got {err:?}"
        );
        assert_eq!(
            self.snapshot().await,
            before,
            "a refusal changed the key ring"
        );
    }

    fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    /// Signs arbitrary header and claims JSON text with this fixture's key.
    fn sign_raw(&self, header: &str, claims: &str) -> String {
        sign_raw(self.key.key().secret(), header, claims)
    }

    fn header(&self) -> String {
        format!(
            r#"{{"alg":"HS256","typ":"JWT","kid":"{}"}}"#,
            self.key.kid()
        )
    }

    /// A well-formed claims object with `extra` merged in (null removes a member).
    fn claims_json(&self, extra: Value) -> String {
        let now = self.now();
        let mut c = json!({
            "scope": "user", "external_id": "c-42", "iat": now, "exp": now + 600,
            "jti": format!("j-{now}-{}", rand_suffix()),
        });
        if let (Some(c), Some(extra)) = (c.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                if v.is_null() {
                    c.remove(k);
                } else {
                    c.insert(k.clone(), v.clone());
                }
            }
        }
        c.to_string()
    }
}

fn rand_suffix() -> u64 {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst) as u64
}

fn sign_raw(key: &[u8], header: &str, claims: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(input.as_bytes());
    let sig = mac.finalize().into_bytes();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn claims() -> VisitorClaims {
    VisitorClaims::new("c-42")
        .name("Ada Lovelace")
        .email("ada@example.com", true)
}

fn parts(token: &str) -> Vec<String> {
    token.split('.').map(str::to_owned).collect()
}

fn decode_json(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

// ---------------------------------------------------------------------------------------------
// Mint and verify

#[tokio::test]
async fn minted_token_has_the_widget_shape_and_verifies() {
    let fx = fixture().await;
    let token = fx.mint().await;
    let p = parts(&token);
    assert_eq!(p.len(), 3);
    assert_eq!(
        decode_json(&p[0]),
        json!({"alg": "HS256", "typ": "JWT", "kid": fx.key.kid().as_str()})
    );
    let c = decode_json(&p[1]);
    assert_eq!(c["scope"], "user");
    assert_eq!(c["external_id"], "c-42");
    assert_eq!(c["name"], "Ada Lovelace");
    assert_eq!(c["email"], "ada@example.com");
    assert_eq!(c["email_verified"], true);
    assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), 600);
    assert_eq!(c["iat"].as_i64().unwrap(), fx.now());
    assert!(c["jti"].as_str().unwrap().len() >= 16);

    let id = fx.verify(&token).await.unwrap();
    assert_eq!(id.external_id, "c-42");
    assert_eq!(id.name.as_deref(), Some("Ada Lovelace"));
    assert_eq!(id.email.as_deref(), Some("ada@example.com"));
    assert!(id.email_verified);
    assert_eq!(&id.kid, fx.key.kid());
    assert_eq!(id.expires_at, fx.clock.now() + Duration::minutes(10));
}

#[tokio::test]
async fn optional_claims_are_omitted_when_unset() {
    let fx = fixture().await;
    let token = fx
        .broker
        .mint_visitor_token(&fx.tenant, &fx.aud, &VisitorClaims::new("v-1"), None)
        .await
        .unwrap();
    let c = decode_json(&parts(&token)[1]);
    assert!(c.get("name").is_none() && c.get("email").is_none());
    assert!(c.get("email_verified").is_none());
    let id = fx.verify(&token).await.unwrap();
    assert_eq!(id.external_id, "v-1");
    assert!(!id.email_verified);
}

#[tokio::test]
async fn lifetime_can_be_chosen_up_to_the_maximum() {
    let fx = fixture().await;
    let t = fx
        .broker
        .mint_visitor_token(&fx.tenant, &fx.aud, &claims(), Some(Duration::hours(1)))
        .await
        .unwrap();
    let c = decode_json(&parts(&t)[1]);
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        3600
    );
}

#[tokio::test]
async fn lifetime_over_the_maximum_is_refused_at_mint() {
    let fx = fixture().await;
    for lifetime in [Duration::minutes(61), Duration::ZERO, Duration::seconds(-5)] {
        let err = fx
            .broker
            .mint_visitor_token(&fx.tenant, &fx.aud, &claims(), Some(lifetime))
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            Error::VisitorAdmin(VisitorAdminError::LifetimeTooLong)
        ));
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }
}

#[tokio::test]
async fn invalid_claims_are_refused_at_mint() {
    let fx = fixture().await;
    for c in [
        VisitorClaims::new(""),
        VisitorClaims::new("x".repeat(256)),
        VisitorClaims::new("a\nb"),
        VisitorClaims::new("ok").name("\u{0}"),
        VisitorClaims::new("ok").email("not an email", false),
    ] {
        let err = fx
            .broker
            .mint_visitor_token(&fx.tenant, &fx.aud, &c, None)
            .await
            .unwrap_err();
        assert!(matches!(
            err,
            Error::VisitorAdmin(VisitorAdminError::InvalidClaims(_))
        ));
    }
}

#[tokio::test]
async fn unknown_configuration_is_not_configured() {
    let fx = fixture().await;
    let other = VisitorAudience::new("team-members").unwrap();
    let err = fx
        .broker
        .mint_visitor_token(&fx.tenant, &other, &claims(), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotConfigured);
    let token = fx.mint().await;
    let err = fx
        .broker
        .verify_visitor_token(&fx.tenant, &other, &token)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::VisitorAdmin(VisitorAdminError::NotConfigured)
    ));
}

#[tokio::test]
async fn a_tenant_has_one_configuration_per_audience() {
    let fx = fixture().await;
    let team = VisitorAudience::new("team-members").unwrap();
    let k2 = fx
        .broker
        .create_visitor_config(&fx.tenant, &team, VisitorConfigOptions::default())
        .await
        .unwrap();
    assert_ne!(k2.kid(), fx.key.kid());
    let err = fx
        .broker
        .create_visitor_config(&fx.tenant, &team, VisitorConfigOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::VisitorAdmin(VisitorAdminError::ConfigExists)
    ));
    let mut auds = fx.broker.list_visitor_configs(&fx.tenant).await.unwrap();
    auds.sort();
    assert_eq!(auds, vec![fx.aud.clone(), team.clone()]);
    // A brand's token does not verify for the team collection.
    let token = fx.mint().await;
    let err = fx
        .broker
        .verify_visitor_token(&fx.tenant, &team, &token)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::VisitorToken(VisitorTokenError::UnknownKey)
    ));
}

// ---------------------------------------------------------------------------------------------
// Refusals, one per check; each leaves the ring unchanged

#[tokio::test]
async fn tampered_payload_is_refused() {
    let fx = fixture().await;
    let p = parts(&fx.mint().await);
    let mut claims = decode_json(&p[1]);
    claims["external_id"] = json!("admin");
    let forged = format!(
        "{}.{}.{}",
        p[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        p[2]
    );
    fx.assert_refused(&forged, VisitorTokenError::BadSignature)
        .await;
}

#[tokio::test]
async fn truncated_signature_is_refused() {
    let fx = fixture().await;
    let token = fx.mint().await;
    fx.assert_refused(
        &token[..token.len() - 4],
        VisitorTokenError::TruncatedSignature,
    )
    .await;
    let no_sig = &token[..=token.rfind('.').unwrap()];
    fx.assert_refused(no_sig, VisitorTokenError::TruncatedSignature)
        .await;
}

#[tokio::test]
async fn padding_plus_or_slash_in_base64url_is_refused() {
    let fx = fixture().await;
    let token = fx.mint().await;
    let p = parts(&token);
    for bad in [
        format!("{}=.{}.{}", p[0], p[1], p[2]),
        format!("{}.{}.{}==", p[0], p[1], p[2]),
        format!("{}.+{}.{}", p[0], &p[1][1..], p[2]),
        format!("{}.{}.{}/", p[0], p[1], &p[2][..p[2].len() - 1]),
        // A non-canonical last character (unused bits set) is not base64url either.
        format!("{}.{}.{}", p[0], p[1], {
            let mut s = p[2].clone();
            let last = s.pop().unwrap();
            s.push(if last == 'B' { 'C' } else { 'B' });
            s
        }),
    ] {
        let err = fx.verify(&bad).await.unwrap_err();
        assert!(
            matches!(
                err,
                Error::VisitorToken(VisitorTokenError::BadBase64 | VisitorTokenError::BadSignature)
            ),
            "{err:?}"
        );
        if bad.contains(['=', '+', '/']) {
            fx.assert_refused(&bad, VisitorTokenError::BadBase64).await;
        }
    }
}

#[tokio::test]
async fn not_three_parts_is_malformed() {
    let fx = fixture().await;
    let token = fx.mint().await;
    for bad in [
        format!("{token}.x"),
        token[..token.rfind('.').unwrap()].to_owned(),
    ] {
        let err = fx.verify(&bad).await.unwrap_err();
        assert!(matches!(
            err,
            Error::VisitorToken(VisitorTokenError::Malformed(_))
        ));
    }
}

#[tokio::test]
async fn wrong_kid_is_refused() {
    let fx = fixture().await;
    let token = fx.sign_raw(
        r#"{"alg":"HS256","typ":"JWT","kid":"vk_not-in-the-ring"}"#,
        &fx.claims_json(json!({})),
    );
    fx.assert_refused(&token, VisitorTokenError::UnknownKey)
        .await;
}

#[tokio::test]
async fn another_tenants_kid_is_refused() {
    let fx = fixture().await;
    let globex = TenantId::new("globex").unwrap();
    let theirs = fx
        .broker
        .create_visitor_config(&globex, &fx.aud, VisitorConfigOptions::default())
        .await
        .unwrap();
    let token = fx
        .broker
        .mint_visitor_token(&globex, &fx.aud, &claims(), None)
        .await
        .unwrap();
    assert!(
        fx.broker
            .verify_visitor_token(&globex, &fx.aud, &token)
            .await
            .is_ok()
    );
    fx.assert_refused(&token, VisitorTokenError::UnknownKey)
        .await;
    // Even signed with our own key, their kid is not looked up in our ring.
    let forged = fx.sign_raw(
        &format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{}"}}"#, theirs.kid()),
        &fx.claims_json(json!({})),
    );
    fx.assert_refused(&forged, VisitorTokenError::UnknownKey)
        .await;
}

#[tokio::test]
async fn expired_token_is_refused() {
    let fx = fixture().await;
    let token = fx.mint().await;
    fx.clock
        .advance(Duration::minutes(10) + Duration::seconds(59));
    assert!(fx.verify(&token).await.is_ok(), "within the leeway");
    fx.clock.advance(Duration::seconds(1));
    fx.assert_refused(&token, VisitorTokenError::Expired).await;
}

#[tokio::test]
async fn future_iat_is_refused() {
    let fx = fixture().await;
    let now = fx.now();
    let ok = fx.sign_raw(&fx.header(), &fx.claims_json(json!({"iat": now + 60})));
    assert!(fx.verify(&ok).await.is_ok(), "within the leeway");
    let token = fx.sign_raw(&fx.header(), &fx.claims_json(json!({"iat": now + 61})));
    fx.assert_refused(&token, VisitorTokenError::IssuedInFuture)
        .await;
}

#[tokio::test]
async fn future_nbf_is_refused() {
    let fx = fixture().await;
    let token = fx.sign_raw(
        &fx.header(),
        &fx.claims_json(json!({"nbf": fx.now() + 300})),
    );
    fx.assert_refused(&token, VisitorTokenError::NotYetValid)
        .await;
}

#[tokio::test]
async fn string_exp_is_refused() {
    let fx = fixture().await;
    let exp = (fx.now() + 600).to_string();
    let token = fx.sign_raw(&fx.header(), &fx.claims_json(json!({ "exp": exp })));
    fx.assert_refused(&token, VisitorTokenError::MalformedClaim("exp"))
        .await;
    let token = fx.sign_raw(&fx.header(), &fx.claims_json(json!({ "iat": "0" })));
    fx.assert_refused(&token, VisitorTokenError::MalformedClaim("iat"))
        .await;
    let token = fx.sign_raw(&fx.header(), &fx.claims_json(json!({ "nbf": [1] })));
    fx.assert_refused(&token, VisitorTokenError::MalformedClaim("nbf"))
        .await;
}

#[tokio::test]
async fn missing_exp_is_refused() {
    let fx = fixture().await;
    let token = fx.sign_raw(&fx.header(), &fx.claims_json(json!({"exp": null})));
    fx.assert_refused(&token, VisitorTokenError::MissingClaim("exp"))
        .await;
}

#[tokio::test]
async fn exp_beyond_the_maximum_lifetime_is_refused() {
    let fx = fixture().await;
    let token = fx.sign_raw(
        &fx.header(),
        &fx.claims_json(json!({"exp": fx.now() + 86_400 * 365})),
    );
    fx.assert_refused(&token, VisitorTokenError::ExpiresTooLate)
        .await;
}

#[tokio::test]
async fn wrong_scope_is_refused() {
    let fx = fixture().await;
    for scope in [json!("admin"), json!(["user"]), json!("USER")] {
        let token = fx.sign_raw(&fx.header(), &fx.claims_json(json!({ "scope": scope })));
        fx.assert_refused(&token, VisitorTokenError::WrongScope)
            .await;
    }
    let token = fx.sign_raw(&fx.header(), &fx.claims_json(json!({"scope": null})));
    fx.assert_refused(&token, VisitorTokenError::MissingClaim("scope"))
        .await;
}

#[tokio::test]
async fn missing_or_bad_external_id_is_refused() {
    let fx = fixture().await;
    let token = fx.sign_raw(&fx.header(), &fx.claims_json(json!({"external_id": null})));
    fx.assert_refused(&token, VisitorTokenError::MissingClaim("external_id"))
        .await;
    for bad in [
        json!(""),
        json!(42),
        json!("x".repeat(256)),
        json!("a\u{1}"),
    ] {
        let token = fx.sign_raw(&fx.header(), &fx.claims_json(json!({ "external_id": bad })));
        fx.assert_refused(&token, VisitorTokenError::MalformedClaim("external_id"))
            .await;
    }
}

#[tokio::test]
async fn duplicate_claims_are_refused() {
    let fx = fixture().await;
    let now = fx.now();
    let claims = format!(
        r#"{{"scope":"user","external_id":"c-42","external_id":"admin","exp":{}}}"#,
        now + 600
    );
    fx.assert_refused(
        &fx.sign_raw(&fx.header(), &claims),
        VisitorTokenError::DuplicateClaim,
    )
    .await;
    // A repeated registered claim too (the JWT decoder's own claim view refuses it first).
    let claims = format!(
        r#"{{"scope":"user","external_id":"c-42","exp":{},"exp":{}}}"#,
        now + 600,
        now + 60
    );
    fx.assert_refused(
        &fx.sign_raw(&fx.header(), &claims),
        VisitorTokenError::DuplicateClaim,
    )
    .await;
}

#[tokio::test]
async fn an_exp_before_1970_is_expired() {
    let fx = fixture().await;
    let token = fx.sign_raw(&fx.header(), &fx.claims_json(json!({"exp": -5})));
    fx.assert_refused(&token, VisitorTokenError::Expired).await;
}

#[tokio::test]
async fn signed_claims_that_are_not_an_object_are_malformed() {
    let fx = fixture().await;
    for claims in [r#"["scope","user"]"#, "42", r#""user""#] {
        fx.assert_refused(
            &fx.sign_raw(&fx.header(), claims),
            VisitorTokenError::Malformed("claims are not a JSON object"),
        )
        .await;
    }
}

#[tokio::test]
async fn a_registered_header_member_of_the_wrong_type_is_malformed() {
    let fx = fixture().await;
    let header = format!(
        r#"{{"alg":"HS256","typ":"JWT","kid":"{}","x5c":"not-a-list"}}"#,
        fx.key.kid()
    );
    let token = fx.sign_raw(&header, &fx.claims_json(json!({})));
    let err = fx.verify(&token).await.unwrap_err();
    assert!(
        matches!(err, Error::VisitorToken(VisitorTokenError::Malformed(_))),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_aud_claim_is_ignored_as_before() {
    // Not part of the widget's token shape; a vendor library may add one.
    let fx = fixture().await;
    let token = fx.sign_raw(
        &fx.header(),
        &fx.claims_json(json!({"aud": "someone-else"})),
    );
    assert_eq!(fx.verify(&token).await.unwrap().external_id, "c-42");
}

#[tokio::test]
async fn replay_in_single_use_mode_is_refused() {
    let fx = fixture_with(VisitorConfigOptions::default().with_single_use(true)).await;
    let token = fx.mint().await;
    assert!(fx.verify(&token).await.is_ok());
    fx.assert_refused(&token, VisitorTokenError::Replayed).await;
    // A token without jti cannot be single-use.
    let no_jti = fx.sign_raw(&fx.header(), &fx.claims_json(json!({"jti": null})));
    fx.assert_refused(&no_jti, VisitorTokenError::MissingClaim("jti"))
        .await;
    // Without single-use mode, a token verifies as often as it is presented.
    let fx = fixture().await;
    let token = fx.mint().await;
    assert!(fx.verify(&token).await.is_ok());
    assert!(fx.verify(&token).await.is_ok());
}

#[tokio::test]
async fn oversize_token_is_refused() {
    let fx = fixture().await;
    let token = fx.sign_raw(
        &fx.header(),
        &fx.claims_json(json!({"padding": "x".repeat(9 * 1024)})),
    );
    fx.assert_refused(&token, VisitorTokenError::TooLarge(8 * 1024))
        .await;
}

#[tokio::test]
async fn algorithms_other_than_hs256_are_refused() {
    let fx = fixture().await;
    let kid = fx.key.kid().as_str();
    let claims = fx.claims_json(json!({}));
    for (header, expected) in [
        (
            format!(r#"{{"alg":"none","kid":"{kid}"}}"#),
            VisitorTokenError::AlgorithmNotAllowed("none".into()),
        ),
        (
            format!(r#"{{"alg":"RS256","kid":"{kid}"}}"#),
            VisitorTokenError::AlgorithmNotAllowed("RS256".into()),
        ),
        (
            format!(r#"{{"alg":"HS512","kid":"{kid}"}}"#),
            VisitorTokenError::AlgorithmNotAllowed("HS512".into()),
        ),
        (
            format!(r#"{{"kid":"{kid}"}}"#),
            VisitorTokenError::MissingAlg,
        ),
    ] {
        fx.assert_refused(&fx.sign_raw(&header, &claims), expected.clone())
            .await;
    }
    // alg none with an empty signature, as an attacker would send it.
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{kid}"}}"#)),
        URL_SAFE_NO_PAD.encode(&claims)
    );
    fx.assert_refused(
        &unsigned,
        VisitorTokenError::AlgorithmNotAllowed("none".into()),
    )
    .await;
}

#[tokio::test]
async fn duplicate_header_members_and_crit_are_refused() {
    let fx = fixture().await;
    let kid = fx.key.kid().as_str();
    let claims = fx.claims_json(json!({}));
    for header in [
        format!(r#"{{"alg":"HS256","alg":"none","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"HS256","kid":"{kid}","kid":"other"}}"#),
        format!(r#"{{"alg":"HS256","typ":"JWT","typ":"JWT","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"HS256","kid":"{kid}","x5u":"a","x5u":"b"}}"#),
    ] {
        fx.assert_refused(
            &fx.sign_raw(&header, &claims),
            VisitorTokenError::DuplicateHeaderMember,
        )
        .await;
    }
    let header = format!(r#"{{"alg":"HS256","kid":"{kid}","crit":["b64"],"b64":false}}"#);
    fx.assert_refused(
        &fx.sign_raw(&header, &claims),
        VisitorTokenError::UnsupportedCritical,
    )
    .await;
}

#[tokio::test]
async fn hostile_kid_values_are_refused_before_any_store_lookup() {
    let fx = fixture().await;
    let claims = fx.claims_json(json!({}));
    let cases = [
        (
            r#"{"alg":"HS256","kid":"../x"}"#.to_owned(),
            VisitorTokenError::InvalidKid,
        ),
        (
            format!(r#"{{"alg":"HS256","kid":"{}"}}"#, "k".repeat(65)),
            VisitorTokenError::InvalidKid,
        ),
        (
            r#"{"alg":"HS256","kid":42}"#.to_owned(),
            VisitorTokenError::InvalidKid,
        ),
        (
            r#"{"alg":"HS256","kid":""}"#.to_owned(),
            VisitorTokenError::InvalidKid,
        ),
        (
            r#"{"alg":"HS256","kid":"a|b%7C"}"#.to_owned(),
            VisitorTokenError::InvalidKid,
        ),
        (
            r#"{"alg":"HS256"}"#.to_owned(),
            VisitorTokenError::MissingKid,
        ),
        // 10 KB: refused by the size cap, before the header is even decoded.
        (
            format!(r#"{{"alg":"HS256","kid":"{}"}}"#, "k".repeat(10 * 1024)),
            VisitorTokenError::TooLarge(8 * 1024),
        ),
    ];
    for (header, expected) in cases {
        let token = fx.sign_raw(&header, &claims);
        let before = fx.store.config_reads.load(Ordering::SeqCst);
        let err = fx.verify(&token).await.unwrap_err();
        assert!(
            matches!(&err, Error::VisitorToken(e) if *e == expected),
            "{header:.40}: expected {expected:?}, got {err:?}"
        );
        assert_eq!(
            fx.store.config_reads.load(Ordering::SeqCst),
            before,
            "the store was read for a hostile kid"
        );
        fx.assert_refused(&token, expected).await;
    }
}

#[tokio::test]
async fn refusals_are_unauthenticated_and_never_echo_the_token() {
    let fx = fixture().await;
    let token = fx.mint().await;
    let tampered = format!("{}x", &token[..token.len() - 1]);
    let err = fx.verify(&tampered).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unauthenticated);
    let shown = format!("{err} {err:?}");
    for p in parts(&token) {
        assert!(!shown.contains(&p[..16]));
    }
}

// ---------------------------------------------------------------------------------------------
// Keys

#[tokio::test]
async fn keys_are_256_bit_and_listed_without_bytes() {
    let fx = fixture().await;
    assert_eq!(fx.key.key().secret().len(), 32);
    let keys = fx
        .broker
        .list_visitor_keys(&fx.tenant, &fx.aud)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(&keys[0].kid, fx.key.kid());
    assert_eq!(keys[0].state, VisitorKeyState::Signing);
    assert_eq!(keys[0].created_at, fx.clock.now());
    let b64 = fx.key.key().secret_base64url();
    let listed = format!("{keys:?}");
    assert!(!listed.contains(&b64));
}

#[tokio::test]
async fn debug_and_display_never_show_key_bytes() {
    let fx = fixture().await;
    let b64 = fx.key.key().secret_base64url();
    let hex: String = fx
        .key
        .key()
        .secret()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let raw = format!("{:?}", fx.key.key().secret());
    for shown in [
        format!("{:?}", fx.key),
        format!("{:?}", fx.key.key()),
        format!("{:?}", fx.broker),
        format!(
            "{:?}",
            fx.broker
                .list_visitor_keys(&fx.tenant, &fx.aud)
                .await
                .unwrap()
        ),
        format!(
            "{:?}",
            fx.store
                .get("visitor_config", "acme|brand-acme", fx.clock.now())
                .await
                .unwrap()
        ),
    ] {
        assert!(!shown.contains(&b64), "{shown}");
        assert!(!shown.contains(&hex[..16]), "{shown}");
        assert!(!shown.contains(&raw[..20]), "{shown}");
    }
    assert_eq!(
        format!("{:?}", fx.key.key()),
        "VisitorSigningKey([redacted])"
    );
    // Errors from key operations carry no bytes either.
    let err = fx
        .broker
        .import_visitor_key(
            &fx.tenant,
            &fx.aud,
            Some(fx.key.kid().clone()),
            VisitorSigningKey::new(fx.key.key().secret().to_vec()),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::VisitorAdmin(VisitorAdminError::DuplicateKid)
    ));
    assert!(!format!("{err} {err:?}").contains(&b64));
}

#[tokio::test]
async fn imported_key_shorter_than_32_bytes_is_refused() {
    let fx = fixture().await;
    let before = fx.snapshot().await;
    let err = fx
        .broker
        .import_visitor_key(
            &fx.tenant,
            &fx.aud,
            None,
            VisitorSigningKey::new(vec![7u8; 31]),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::VisitorAdmin(VisitorAdminError::KeyTooShort)
    ));
    assert_eq!(fx.snapshot().await, before);
}

#[tokio::test]
async fn imported_key_equal_to_a_client_secret_is_refused() {
    let fx = fixture().await;
    let secret = "GOCSPX-0123456789abcdefghijklmnopqrstuvwxyz";
    // The tenant's Google SSO application, configured through a broker on the same store.
    let admin = Broker::builder()
        .http_client(cx_sso::testing::FakeIdp::google())
        .shared_store(fx.store.clone() as Arc<dyn Store>)
        .clock(fx.clock.clone() as Arc<dyn Clock>)
        .public_base_url("https://cx.example.test")
        .build()
        .unwrap();
    admin
        .configure_provider(
            &fx.tenant,
            cx_sso::ProviderConfig::google(
                cx_sso::ProviderId::new("google").unwrap(),
                "x",
                cx_sso::ClientSecret::new(secret),
            ),
        )
        .await
        .unwrap();
    let before = fx.snapshot().await;
    let err = fx
        .broker
        .import_visitor_key(&fx.tenant, &fx.aud, None, VisitorSigningKey::new(secret))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::VisitorAdmin(VisitorAdminError::KeyReusesClientSecret)
    ));
    assert_eq!(fx.snapshot().await, before);
    // Another tenant's secrets are not ours to compare with.
    let globex = TenantId::new("globex").unwrap();
    fx.broker
        .create_visitor_config(&globex, &fx.aud, VisitorConfigOptions::default())
        .await
        .unwrap();
    assert!(
        fx.broker
            .import_visitor_key(&globex, &fx.aud, None, VisitorSigningKey::new(secret))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn imported_vendor_key_verifies_tokens_with_its_kid() {
    let fx = fixture().await;
    let vendor_secret = "a-vendor-shared-secret-of-at-least-32-bytes";
    let kid = VisitorKeyId::new("app_5f1c").unwrap();
    let info = fx
        .broker
        .import_visitor_key(
            &fx.tenant,
            &fx.aud,
            Some(kid.clone()),
            VisitorSigningKey::new(vendor_secret),
        )
        .await
        .unwrap();
    assert_eq!(info.state, VisitorKeyState::VerifyOnly);
    let token = sign_raw(
        vendor_secret.as_bytes(),
        r#"{"alg":"HS256","typ":"JWT","kid":"app_5f1c"}"#,
        &fx.claims_json(json!({})),
    );
    assert_eq!(fx.verify(&token).await.unwrap().kid, kid);
}

#[tokio::test]
async fn a_configuration_can_be_created_from_a_vendor_issued_key() {
    let fx = fixture().await;
    let team = VisitorAudience::new("team-members").unwrap();
    let vendor_secret = "a-key-the-chat-vendor-issued-of-at-least-32-bytes";
    let kid = VisitorKeyId::new("app_5f1c").unwrap();
    let info = fx
        .broker
        .create_visitor_config_with_key(
            &fx.tenant,
            &team,
            VisitorConfigOptions::default(),
            Some(kid.clone()),
            VisitorSigningKey::new(vendor_secret),
        )
        .await
        .unwrap();
    assert_eq!(info.kid, kid);
    assert_eq!(info.state, VisitorKeyState::Signing);
    assert_eq!(info.created_at, fx.clock.now());
    assert_eq!(
        fx.broker
            .list_visitor_keys(&fx.tenant, &team)
            .await
            .unwrap(),
        vec![info]
    );

    // The imported key signs: the vendor's own library verifies what we mint, with its kid.
    let token = fx
        .broker
        .mint_visitor_token(&fx.tenant, &team, &claims(), None)
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), Some("app_5f1c"));
    let data = jsonwebtoken::decode::<Value>(
        &token,
        &DecodingKey::from_secret(vendor_secret.as_bytes()),
        &Validation::new(Algorithm::HS256),
    )
    .unwrap();
    assert_eq!(data.claims["external_id"], "c-42");
    // And what the vendor signs verifies here.
    let theirs = sign_raw(
        vendor_secret.as_bytes(),
        r#"{"alg":"HS256","typ":"JWT","kid":"app_5f1c"}"#,
        &fx.claims_json(json!({})),
    );
    assert_eq!(
        fx.broker
            .verify_visitor_token(&fx.tenant, &team, &theirs)
            .await
            .unwrap()
            .kid,
        kid
    );

    // Without a kid, one is generated.
    let end_users = VisitorAudience::new("end-users").unwrap();
    let generated = fx
        .broker
        .create_visitor_config_with_key(
            &fx.tenant,
            &end_users,
            VisitorConfigOptions::default(),
            None,
            VisitorSigningKey::new(vendor_secret),
        )
        .await
        .unwrap();
    assert!(generated.kid.as_str().starts_with("vk_"));
}

#[tokio::test]
async fn a_configuration_from_a_key_refuses_what_import_refuses_and_stores_nothing() {
    let fx = fixture().await;
    let team = VisitorAudience::new("team-members").unwrap();
    let create = |key: VisitorSigningKey, aud: VisitorAudience| {
        let broker = fx.broker.clone();
        let tenant = fx.tenant.clone();
        async move {
            broker
                .create_visitor_config_with_key(
                    &tenant,
                    &aud,
                    VisitorConfigOptions::default(),
                    None,
                    key,
                )
                .await
                .unwrap_err()
        }
    };
    let err = create(VisitorSigningKey::new(vec![7u8; 31]), team.clone()).await;
    assert!(
        matches!(err, Error::VisitorAdmin(VisitorAdminError::KeyTooShort)),
        "{err:?}"
    );
    let err = create(VisitorSigningKey::new(vec![7u8; 513]), team.clone()).await;
    assert!(
        matches!(err, Error::VisitorAdmin(VisitorAdminError::KeyTooLong(512))),
        "{err:?}"
    );
    // The configuration that exists is kept as it is.
    let before = fx.snapshot().await;
    let err = create(VisitorSigningKey::new(vec![7u8; 32]), fx.aud.clone()).await;
    assert!(
        matches!(err, Error::VisitorAdmin(VisitorAdminError::ConfigExists)),
        "{err:?}"
    );
    assert_eq!(fx.snapshot().await, before);
    // Out-of-range options are refused like for a generated key.
    let err = fx
        .broker
        .create_visitor_config_with_key(
            &fx.tenant,
            &team,
            VisitorConfigOptions::default().with_max_lifetime(Duration::days(2)),
            None,
            VisitorSigningKey::new(vec![7u8; 32]),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        fx.broker.list_visitor_configs(&fx.tenant).await.unwrap(),
        vec![fx.aud.clone()]
    );
}

#[tokio::test]
async fn a_configuration_from_a_key_refuses_a_client_secret_of_the_tenant() {
    let fx = fixture().await;
    let secret = "GOCSPX-0123456789abcdefghijklmnopqrstuvwxyz";
    let admin = Broker::builder()
        .http_client(cx_sso::testing::FakeIdp::google())
        .shared_store(fx.store.clone() as Arc<dyn Store>)
        .clock(fx.clock.clone() as Arc<dyn Clock>)
        .public_base_url("https://cx.example.test")
        .build()
        .unwrap();
    admin
        .configure_provider(
            &fx.tenant,
            cx_sso::ProviderConfig::google(
                cx_sso::ProviderId::new("google").unwrap(),
                "x",
                cx_sso::ClientSecret::new(secret),
            ),
        )
        .await
        .unwrap();
    let team = VisitorAudience::new("team-members").unwrap();
    let err = fx
        .broker
        .create_visitor_config_with_key(
            &fx.tenant,
            &team,
            VisitorConfigOptions::default(),
            None,
            VisitorSigningKey::new(secret),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::VisitorAdmin(VisitorAdminError::KeyReusesClientSecret)
        ),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains(secret));
    assert_eq!(
        fx.broker.list_visitor_configs(&fx.tenant).await.unwrap(),
        vec![fx.aud.clone()]
    );
}

#[test]
fn options_getters_report_what_was_set() {
    let o = VisitorConfigOptions::default();
    assert_eq!(o.max_lifetime(), Duration::hours(1));
    assert_eq!(o.default_lifetime(), Duration::minutes(10));
    assert!(!o.is_single_use());
    let o = o
        .with_max_lifetime(Duration::hours(2))
        .with_default_lifetime(Duration::minutes(5))
        .with_single_use(true);
    assert_eq!(o.max_lifetime(), Duration::hours(2));
    assert_eq!(o.default_lifetime(), Duration::minutes(5));
    assert!(o.is_single_use());
}

#[tokio::test]
async fn rotation_timeline_has_no_disconnect_window() {
    let fx = fixture().await;
    let k1 = fx.key.kid().clone();
    let t0 = fx.mint().await; // signed by k1

    // Day 1: a new key, verify-only. k1 still signs.
    fx.clock.advance(Duration::days(1));
    let k2 = fx
        .broker
        .add_visitor_key(&fx.tenant, &fx.aud)
        .await
        .unwrap();
    assert_eq!(k2.created_at(), fx.clock.now());
    let t1 = fx.mint().await;
    assert_eq!(fx.verify(&t1).await.unwrap().kid, k1);
    // A party that already has k2 may sign with it: verifies.
    let by_k2 = sign_raw(
        k2.key().secret(),
        &format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{}"}}"#, k2.kid()),
        &fx.claims_json(json!({})),
    );
    assert_eq!(&fx.verify(&by_k2).await.unwrap().kid, k2.kid());
    assert!(matches!(
        fx.verify(&t0).await,
        Err(Error::VisitorToken(VisitorTokenError::Expired))
    ));

    // Promote k2: new tokens carry k2; t1 (k1) keeps verifying during the overlap.
    fx.clock.advance(Duration::minutes(1));
    fx.broker
        .promote_visitor_key(&fx.tenant, &fx.aud, k2.kid())
        .await
        .unwrap();
    let t2 = fx.mint().await;
    assert_eq!(&fx.verify(&t2).await.unwrap().kid, k2.kid());
    assert_eq!(fx.verify(&t1).await.unwrap().kid, k1);
    let states: Vec<_> = fx
        .broker
        .list_visitor_keys(&fx.tenant, &fx.aud)
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.state))
        .collect();
    assert_eq!(
        states,
        vec![
            (k1.clone(), VisitorKeyState::VerifyOnly),
            (k2.kid().clone(), VisitorKeyState::Signing)
        ]
    );
    // The signing key cannot be retired.
    let err = fx
        .broker
        .retire_visitor_key(&fx.tenant, &fx.aud, k2.kid())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::VisitorAdmin(VisitorAdminError::KeyState(_))
    ));

    // After the overlap, retire k1: a fresh k1 token (a stale backend) is refused.
    fx.clock.advance(Duration::hours(1));
    let stale = fx.sign_raw(&fx.header(), &fx.claims_json(json!({})));
    assert!(fx.verify(&stale).await.is_ok());
    fx.broker
        .retire_visitor_key(&fx.tenant, &fx.aud, &k1)
        .await
        .unwrap();
    fx.assert_refused(&stale, VisitorTokenError::KeyRetired)
        .await;
    let keys = fx
        .broker
        .list_visitor_keys(&fx.tenant, &fx.aud)
        .await
        .unwrap();
    assert_eq!(keys[0].state, VisitorKeyState::Retired);
    assert_eq!(keys[0].retired_at, Some(fx.clock.now()));
    // k2 keeps working; a retired key cannot come back.
    assert!(fx.verify(&fx.mint().await).await.is_ok());
    let err = fx
        .broker
        .promote_visitor_key(&fx.tenant, &fx.aud, &k1)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::VisitorAdmin(VisitorAdminError::KeyState(_))
    ));
}

#[tokio::test]
async fn retirement_on_one_node_is_seen_by_another_at_once() {
    let fx = fixture().await;
    let other_node = Broker::builder()
        .clock(fx.clock.clone() as Arc<dyn Clock>)
        .shared_store(fx.store.clone() as Arc<dyn Store>)
        .public_base_url("https://cx.example.test")
        .build()
        .unwrap();
    let k1 = fx.key.kid().clone();
    let token = fx.mint().await;
    // Warm the other node's cache.
    assert!(
        other_node
            .verify_visitor_token(&fx.tenant, &fx.aud, &token)
            .await
            .is_ok()
    );
    let k2 = fx
        .broker
        .add_visitor_key(&fx.tenant, &fx.aud)
        .await
        .unwrap();
    fx.broker
        .promote_visitor_key(&fx.tenant, &fx.aud, k2.kid())
        .await
        .unwrap();
    fx.broker
        .retire_visitor_key(&fx.tenant, &fx.aud, &k1)
        .await
        .unwrap();
    let err = other_node
        .verify_visitor_token(&fx.tenant, &fx.aud, &token)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::VisitorToken(VisitorTokenError::KeyRetired)
    ));
}

#[tokio::test]
async fn deleted_and_recreated_configuration_does_not_serve_old_keys() {
    let fx = fixture().await;
    let token = fx.mint().await;
    assert!(fx.verify(&token).await.is_ok());
    assert!(
        fx.broker
            .delete_visitor_config(&fx.tenant, &fx.aud)
            .await
            .unwrap()
    );
    fx.broker
        .create_visitor_config(&fx.tenant, &fx.aud, VisitorConfigOptions::default())
        .await
        .unwrap();
    let err = fx.verify(&token).await.unwrap_err();
    assert!(matches!(
        err,
        Error::VisitorToken(VisitorTokenError::UnknownKey)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_key_additions_are_not_lost() {
    let fx = fixture().await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (b, t, a) = (fx.broker.clone(), fx.tenant.clone(), fx.aud.clone());
        tasks.push(tokio::spawn(async move { b.add_visitor_key(&t, &a).await }));
    }
    let mut kids = Vec::new();
    for t in tasks {
        kids.push(t.await.unwrap().unwrap().kid().clone());
    }
    let listed: Vec<_> = fx
        .broker
        .list_visitor_keys(&fx.tenant, &fx.aud)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(listed.len(), 7);
    for k in kids {
        assert!(listed.contains(&k));
    }
    // The ring is capped.
    let _ = fx
        .broker
        .add_visitor_key(&fx.tenant, &fx.aud)
        .await
        .unwrap();
    let err = fx
        .broker
        .add_visitor_key(&fx.tenant, &fx.aud)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        Error::VisitorAdmin(VisitorAdminError::TooManyKeys(8))
    ));
}

// ---------------------------------------------------------------------------------------------
// Interop: `jsonwebtoken` as the independent implementation

#[tokio::test]
async fn jsonwebtoken_verifies_our_token_with_its_own_validation() {
    let fx = fixture().await;
    let token = fx.mint().await;
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.alg, Algorithm::HS256);
    assert_eq!(header.kid.as_deref(), Some(fx.key.kid().as_str()));
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp", "iat"]);
    let data = jsonwebtoken::decode::<Value>(
        &token,
        &DecodingKey::from_secret(fx.key.key().secret()),
        &validation,
    )
    .unwrap();
    assert_eq!(data.claims["scope"], "user");
    assert_eq!(data.claims["external_id"], "c-42");
    // And it refuses it with another key.
    assert!(
        jsonwebtoken::decode::<Value>(&token, &DecodingKey::from_secret(&[0u8; 32]), &validation)
            .is_err()
    );
}

#[tokio::test]
async fn we_verify_a_token_minted_by_jsonwebtoken() {
    let fx = fixture().await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(fx.key.kid().as_str().to_owned());
    let now = fx.now();
    let token = jsonwebtoken::encode(
        &header,
        &json!({"scope": "user", "external_id": "py-7", "email": "p@example.com",
                "email_verified": false, "iat": now, "exp": now + 300, "jti": "j-1"}),
        &EncodingKey::from_secret(fx.key.key().secret()),
    )
    .unwrap();
    let id = fx.verify(&token).await.unwrap();
    assert_eq!(id.external_id, "py-7");
    assert_eq!(id.jti.as_deref(), Some("j-1"));
    assert!(!id.email_verified);
}

#[tokio::test]
async fn visitor_keys_are_sealed_at_rest_with_an_encryption_key() {
    let store = Arc::new(MemoryStore::new());
    let broker = Broker::builder()
        .shared_store(store.clone() as Arc<dyn Store>)
        .encryption_key(cx_sso::EncryptionKey::from_bytes([3; 32]))
        .public_base_url("https://cx.example.test")
        .build()
        .unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let aud = VisitorAudience::new("brand-acme").unwrap();
    let exported = broker
        .create_visitor_config(&tenant, &aud, VisitorConfigOptions::default())
        .await
        .unwrap();
    let rows = store
        .list("visitor_config", "acme", OffsetDateTime::now_utc())
        .await
        .unwrap();
    let raw = String::from_utf8_lossy(&rows[0].1.value).into_owned();
    assert!(
        !raw.contains(&exported.key().secret_base64url()),
        "visitor key stored in the clear"
    );
    let token = broker
        .mint_visitor_token(&tenant, &aud, &claims(), None)
        .await
        .unwrap();
    assert!(
        broker
            .verify_visitor_token(&tenant, &aud, &token)
            .await
            .is_ok()
    );
    // Rotation rewrites the ring: still sealed, still working.
    broker.add_visitor_key(&tenant, &aud).await.unwrap();
    assert!(
        broker
            .verify_visitor_token(&tenant, &aud, &token)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_sealed_visitor_key_copied_to_another_record_does_not_open() {
    let store = Arc::new(MemoryStore::new());
    let build = |key: Option<[u8; 32]>| {
        let b = Broker::builder()
            .shared_store(store.clone() as Arc<dyn Store>)
            .public_base_url("https://cx.example.test");
        match key {
            Some(k) => b.encryption_key(cx_sso::EncryptionKey::from_bytes(k)),
            None => b,
        }
        .build()
        .unwrap()
    };
    let sealed = build(Some([3; 32]));
    let tenant = TenantId::new("acme").unwrap();
    let brand = VisitorAudience::new("brand-acme").unwrap();
    sealed
        .create_visitor_config(&tenant, &brand, VisitorConfigOptions::default())
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let stored = store
        .get("visitor_config", "acme|brand-acme", now)
        .await
        .unwrap()
        .unwrap();
    // The same bytes under another audience's key: the record says brand-acme.
    store
        .put(
            "visitor_config",
            "acme|team",
            NewRecord::new(stored.value.clone()).index("acme".to_owned()),
            now,
        )
        .await
        .unwrap();
    let team = VisitorAudience::new("team").unwrap();
    let err = sealed
        .mint_visitor_token(&tenant, &team, &claims(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Store(StoreError::Corrupt { .. })),
        "{err:?}"
    );
    // Rewritten to say team: the sealed keys are bound to brand-acme.
    let mut forged: Value = serde_json::from_slice(&stored.value).unwrap();
    forged["audience"] = json!("team");
    store
        .put(
            "visitor_config",
            "acme|team",
            NewRecord::new(forged.to_string().into_bytes()).index("acme".to_owned()),
            now,
        )
        .await
        .unwrap();
    let err = sealed
        .mint_visitor_token(&tenant, &team, &claims(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Store(StoreError::Corrupt { .. })),
        "{err:?}"
    );
    // A broker with the key refuses a ring stored in the clear as well.
    let globex = TenantId::new("globex").unwrap();
    build(None)
        .create_visitor_config(&globex, &brand, VisitorConfigOptions::default())
        .await
        .unwrap();
    let err = sealed
        .mint_visitor_token(&globex, &brand, &claims(), None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Store(StoreError::Corrupt { .. })),
        "{err:?}"
    );
    // The original record is untouched and still works.
    assert!(
        sealed
            .mint_visitor_token(&tenant, &brand, &claims(), None)
            .await
            .is_ok()
    );
}
