//! Visitor-token mint and verify, beside their floors measured in the same run.
//!
//! The floors do the irreducible work on the same bytes: `mint` = serde_json encoding of the same
//! claims + base64url + a raw HMAC-SHA256 (keyed per call); `verify` = a raw HMAC-SHA256 over the
//! same signing input + constant-time compare + base64url decoding and serde_json parsing of the
//! same claims into a plain struct.
//!
//! Two more show what changed inside `verify` (same run, same token): `jsonwebtoken_decode`, the
//! `jsonwebtoken::decode` call verification used before (header decoded again, claims parsed
//! twice), and `jsonwebtoken_verify_then_parse`, what it does now (the typed header read,
//! `jsonwebtoken::crypto::verify`, the claims decoded and parsed once).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use cx_sso::{Broker, TenantId, VisitorAudience, VisitorClaims, VisitorConfigOptions};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::hint::black_box;
use subtle::ConstantTimeEq;

#[derive(Serialize, Deserialize)]
struct FloorClaims<'a> {
    scope: &'a str,
    external_id: &'a str,
    name: &'a str,
    email: &'a str,
    email_verified: bool,
    iat: i64,
    exp: i64,
    jti: &'a str,
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let broker = Broker::builder()
        .public_base_url("https://cx.example.com")
        .build()
        .expect("broker");
    let tenant = TenantId::new("acme").expect("tenant");
    let aud = VisitorAudience::new("brand-acme").expect("audience");
    let exported = rt
        .block_on(broker.create_visitor_config(&tenant, &aud, VisitorConfigOptions::default()))
        .expect("config");
    let key = exported.key().secret().to_vec();
    let claims = VisitorClaims::new("customer-42")
        .name("Ada Lovelace")
        .email("ada@example.com", true);
    let token = rt
        .block_on(broker.mint_visitor_token(&tenant, &aud, &claims, None))
        .expect("mint");
    let (signing_input, sig_b64) = token.rsplit_once('.').expect("token");
    let (header_b64, payload_b64) = signing_input.split_once('.').expect("token");
    let sig = URL_SAFE_NO_PAD.decode(sig_b64).expect("sig");
    let payload = URL_SAFE_NO_PAD.decode(payload_b64).expect("payload");
    let fc: FloorClaims<'_> = serde_json::from_slice(&payload).expect("claims");

    let mut g = c.benchmark_group("visitor");
    g.bench_function("visitor_mint", |b| {
        b.to_async(&rt).iter(|| async {
            broker
                .mint_visitor_token(&tenant, &aud, black_box(&claims), None)
                .await
                .expect("mint")
        })
    });
    g.bench_function("visitor_verify", |b| {
        b.to_async(&rt).iter(|| async {
            broker
                .verify_visitor_token(&tenant, &aud, black_box(&token))
                .await
                .expect("verify")
        })
    });
    g.bench_function("floor_hmac_sha256_plus_json/mint", |b| {
        b.iter(|| {
            let json = serde_json::to_vec(black_box(&fc)).expect("json");
            let mut out = String::with_capacity(512);
            out.push_str(header_b64);
            out.push('.');
            URL_SAFE_NO_PAD.encode_string(&json, &mut out);
            let mut mac = Hmac::<Sha256>::new_from_slice(black_box(&key)).expect("key");
            mac.update(out.as_bytes());
            let tag = mac.finalize().into_bytes();
            out.push('.');
            URL_SAFE_NO_PAD.encode_string(tag, &mut out);
            out
        })
    });
    g.bench_function("floor_hmac_sha256_plus_json/verify", |b| {
        b.iter(|| {
            let mut mac = Hmac::<Sha256>::new_from_slice(black_box(&key)).expect("key");
            mac.update(black_box(signing_input).as_bytes());
            let tag = mac.finalize().into_bytes();
            assert!(bool::from(tag.as_slice().ct_eq(&sig)));
            let bytes = URL_SAFE_NO_PAD.decode(black_box(payload_b64)).expect("b64");
            let c: FloorClaims<'_> = serde_json::from_slice(&bytes).expect("json");
            black_box(c.exp);
        })
    });
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_required_spec_claims(&["exp"]);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    let decoding_key = jsonwebtoken::DecodingKey::from_secret(&key);
    type Claims = serde_json::Map<String, serde_json::Value>;
    g.bench_function("jsonwebtoken_decode", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<Claims>(black_box(&token), &decoding_key, &validation)
                .expect("decode")
        })
    });
    let header_json = URL_SAFE_NO_PAD.decode(header_b64).expect("header");
    g.bench_function("jsonwebtoken_verify_then_parse", |b| {
        b.iter(|| {
            serde_json::from_slice::<jsonwebtoken::Header>(black_box(&header_json))
                .expect("header");
            assert!(
                jsonwebtoken::crypto::verify(
                    sig_b64,
                    black_box(signing_input).as_bytes(),
                    &decoding_key,
                    jsonwebtoken::Algorithm::HS256,
                )
                .expect("verify")
            );
            let bytes = URL_SAFE_NO_PAD.decode(black_box(payload_b64)).expect("b64");
            serde_json::from_slice::<Claims>(&bytes).expect("json")
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
