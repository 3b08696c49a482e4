//! Differential: `verify_visitor_token` and `jsonwebtoken` used directly agree on accept or
//! reject for every visitor token, with the same keys, the same clock and the same claim rules.
//!
//! The oracle below is written from the documented rules (the `visitor` module's
//! "Verification" section, RFC 7519), not from the crate's code: `jsonwebtoken::decode` checks
//! the structure, the algorithm (HS256 only), the signature and that `exp` is a number; the
//! oracle adds what jsonwebtoken does not check or checks against the system clock: the size
//! cap, the base64url alphabet, `crit`, `typ`, the `kid` (retired and unknown keys refused),
//! repeated members, the times against the fixed clock and leeway, the maximum lifetime, the
//! scope and the visitor's claims.
//!
//! Input: `raw:TOKEN`, the token as it is; or three parts: the header and the claims (JSON
//! templates over `{now}`, `{exp}`, `{kid}`) and the signature (empty: HMAC with `vk1`'s key;
//! `0`, `1`, `2`: with that key of the ring; anything else: that text as the signature).
#![no_main]

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use cx_sso::{VisitorAudience, VisitorIdentity};
use cx_sso_fuzz::{
    LEEWAY, VISITOR_AUDIENCE, VISITOR_KEYS, VISITOR_MAX_LIFETIME, World, block_on, fill, parts,
    start, text,
};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use libfuzzer_sys::fuzz_target;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

/// The members of a JSON object, repeats kept (serde_json's map keeps only the last).
struct Members(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Members, A::Error> {
                let mut out = Vec::new();
                while let Some(e) = m.next_entry::<String, Value>()? {
                    out.push(e);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl Members {
    fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }
    /// At most 64 members, none repeated.
    fn well_formed(&self) -> bool {
        let mut names: Vec<&str> = self.0.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        self.0.len() <= 64 && names.len() == self.0.len()
    }
}

/// A NumericDate: an integer, or a finite number under 1e15 in magnitude (truncated).
fn numeric(v: &Value) -> Result<i64, &'static str> {
    match v {
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Ok(i),
            #[allow(clippy::cast_possible_truncation)]
            (None, Some(f)) if f.is_finite() && f.abs() < 1e15 => Ok(f.trunc() as i64),
            _ => Err("not a NumericDate"),
        },
        _ => Err("not a number"),
    }
}

/// An optional text claim: absent or null, or 1 to 255 characters without control characters.
fn text_claim(v: Option<&Value>) -> Result<Option<&str>, &'static str> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s))
            if !s.is_empty() && s.chars().count() <= 255 && !s.chars().any(char::is_control) =>
        {
            Ok(Some(s))
        }
        Some(_) => Err("bad text claim"),
    }
}

/// The oracle: the external id of an accepted token, or why it is refused.
fn oracle(token: &str, now: i64) -> Result<String, &'static str> {
    if token.len() > 8 * 1024 {
        return Err("over 8 KiB");
    }
    if !token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("not base64url");
    }
    let segments: Vec<&str> = token.split('.').collect();
    let [h, p, _] = segments[..] else {
        return Err("not three parts");
    };
    let header: Members = URL_SAFE_NO_PAD
        .decode(h)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("header")?;
    if !header.well_formed() {
        return Err("header members");
    }
    if header.get("crit").is_some() {
        return Err("crit");
    }
    match header.get("typ") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t.eq_ignore_ascii_case("JWT") => {}
        Some(_) => return Err("typ"),
    }
    // Retired (vk0) and unknown keys verify nothing.
    let secret = match header.get("kid") {
        Some(Value::String(k)) if k == "vk1" => VISITOR_KEYS[1].1,
        Some(Value::String(k)) if k == "vk2" => VISITOR_KEYS[2].1,
        _ => return Err("kid"),
    };
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_required_spec_claims(&["exp"]);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_secret(secret), &validation)
        .map_err(|_| "jsonwebtoken refused")?;
    let claims: Members = URL_SAFE_NO_PAD
        .decode(p)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("claims")?;
    if !claims.well_formed() {
        return Err("claim members");
    }
    let exp = numeric(claims.get("exp").ok_or("exp")?)?;
    let iat = claims.get("iat").map(numeric).transpose()?;
    let nbf = claims.get("nbf").map(numeric).transpose()?;
    if claims.get("scope") != Some(&Value::String("user".into())) {
        return Err("scope");
    }
    // RFC 7519 §4.1.4: the current time must be before `exp` (give or take the leeway).
    if exp <= now - LEEWAY {
        return Err("expired");
    }
    if exp > now + VISITOR_MAX_LIFETIME + LEEWAY {
        return Err("lifetime");
    }
    if iat.is_some_and(|t| t > now + LEEWAY) || nbf.is_some_and(|t| t > now + LEEWAY) {
        return Err("future");
    }
    let external_id = text_claim(claims.get("external_id"))?.ok_or("external_id")?;
    text_claim(claims.get("name"))?;
    text_claim(claims.get("email"))?;
    text_claim(claims.get("jti"))?;
    match claims.get("email_verified") {
        None | Some(Value::Null | Value::Bool(_)) => {}
        Some(_) => return Err("email_verified"),
    }
    Ok(external_id.to_owned())
}

fn hs256(message: &str, key: &[u8]) -> String {
    jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(key),
        Algorithm::HS256,
    )
    .expect("HMAC")
}

fn token_from(data: &[u8]) -> String {
    if let Some(raw) = data.strip_prefix(b"raw:") {
        return text(raw);
    }
    let p = parts(data, 3);
    let now = start().unix_timestamp();
    let vars = [
        ("now", now.to_string()),
        ("exp", (now + 600).to_string()),
        ("kid", "vk1".to_owned()),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let h = URL_SAFE_NO_PAD.encode(fill(p[0], &vars));
    let c = URL_SAFE_NO_PAD.encode(fill(p[1], &vars));
    let message = format!("{h}.{c}");
    let signature = match p[2] {
        b"" | b"1" => hs256(&message, VISITOR_KEYS[1].1),
        b"0" => hs256(&message, VISITOR_KEYS[0].1),
        b"2" => hs256(&message, VISITOR_KEYS[2].1),
        other => text(other),
    };
    format!("{message}.{signature}")
}

fuzz_target!(|data: &[u8]| {
    let token = token_from(data);
    let now = start().unix_timestamp();
    block_on(async {
        let w = World::new(None);
        w.visitor_rings().await.expect("visitor rings");
        let chat = VisitorAudience::new(VISITOR_AUDIENCE).expect("audience");
        let crate_says: Result<VisitorIdentity, _> = w
            .broker
            .verify_visitor_token(&w.tenant, &chat, &token)
            .await;
        let oracle_says = oracle(&token, now);
        match (&crate_says, &oracle_says) {
            (Ok(id), Ok(external_id)) => assert_eq!(&id.external_id, external_id),
            (Err(_), Err(_)) => {}
            _ => panic!(
                "disagreement on {token:?}: cx-sso {crate_says:?}, jsonwebtoken oracle {oracle_says:?}"
            ),
        }
    });
});
