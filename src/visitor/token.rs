//! Minting and verifying tokens with `jsonwebtoken`, and the checks made before it.
//!
//! `jsonwebtoken` signs, and on verify it checks the algorithm, the signature (in constant
//! time) and that `exp` is present and numeric, then hands over the claims. What stays here, and
//! why:
//!
//! - **Before any store lookup** ([`read_header`]): the size cap, and the header's `alg`, `typ`,
//!   `crit`, `kid` and repeated members. jsonwebtoken would refuse `none` or `RS256` too, but as
//!   one "invalid algorithm" or JSON error where a host (and our tests) tell them apart; it
//!   accepts `crit` and any `typ`, and keeps the last copy of a repeated unknown member. A
//!   hostile `kid` must never reach the store.
//! - **The base64url alphabet**, over the whole token: jsonwebtoken checks the signature over
//!   the raw text before it decodes the payload, so a `+` or `=` in the payload would read as a
//!   bad signature rather than as what it is.
//! - **The signature's length**: jsonwebtoken reports a signature cut short as a base64 error or
//!   a bad signature; a host tells "truncated in transit" from "forged".
//! - **The claims** ([`claims::check`](super::claims::check)): against the broker's clock, not
//!   the system time.
//!
//! When jsonwebtoken refuses a token after its signature held (a claim it cannot read, `exp`
//! missing or not a number it takes), the claims are read again here to name the refusal.

use std::sync::LazyLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use rand::RngCore as _;
use serde_json::Value;
use time::Duration;

use super::VisitorAudience;
use super::claims::{self, Checked, Members, VisitorClaims, VisitorIdentity, Window};
use super::keys::{VisitorKeyId, is_slug};
use super::ring::from_unix;
use crate::broker::Broker;
use crate::error::{Error, VisitorAdminError, VisitorTokenError};
use crate::ids::TenantId;
use crate::store::{self, Inserted, NewRecord};

/// The largest token [`Broker::verify_visitor_token`] reads.
const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// An HMAC-SHA256 signature in unpadded base64url: 32 bytes.
const SIG_B64_LEN: usize = 43;
/// The store namespace of the `jti`s accepted in single-use mode.
const NS_JTI: &str = "visitor_jti";

/// What jsonwebtoken checks: HS256 only, `exp` required (and numeric: a string `exp` counts as
/// missing since the CVE-2026-25537 fix), and nothing that reads the system clock. Times are
/// checked by [`claims::check`] against the broker's clock; `aud` is not part of the widget's
/// token shape, so it is not checked.
static VALIDATION: LazyLock<Validation> = LazyLock::new(|| {
    let mut v = Validation::new(Algorithm::HS256);
    v.set_required_spec_claims(&["exp"]);
    v.validate_exp = false;
    v.validate_nbf = false;
    v.validate_aud = false;
    v.leeway = 0;
    v
});

/// The bytes allowed in a compact JWS: the base64url alphabet and `.`.
const TOKEN_ALPHABET: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.';
        i += 1;
    }
    t
};

/// A token whose size, alphabet, shape and header passed; nothing is verified yet.
#[derive(Debug)]
struct Unverified<'a> {
    kid: String,
    payload_b64: &'a str,
    sig_b64: &'a str,
}

/// The checks made before any store lookup (see the module docs for why they are ours).
fn read_header(token: &str) -> Result<Unverified<'_>, VisitorTokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(VisitorTokenError::TooLarge(MAX_TOKEN_BYTES));
    }
    if !token.bytes().all(|b| TOKEN_ALPHABET[usize::from(b)]) {
        return Err(VisitorTokenError::BadBase64);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(VisitorTokenError::Malformed(
            "not three dot-separated parts",
        ));
    };
    if h.is_empty() || p.is_empty() {
        return Err(VisitorTokenError::Malformed("empty part"));
    }
    let header_bytes = URL_SAFE_NO_PAD
        .decode(h.as_bytes())
        .map_err(|_| VisitorTokenError::BadBase64)?;
    let header: Members = serde_json::from_slice(&header_bytes)
        .map_err(|_| VisitorTokenError::Malformed("header is not a JSON object"))?;
    if header.too_many() {
        return Err(VisitorTokenError::Malformed("too many header members"));
    }
    if header.has_duplicate() {
        return Err(VisitorTokenError::DuplicateHeaderMember);
    }
    if header.get("crit").is_some() {
        return Err(VisitorTokenError::UnsupportedCritical);
    }
    match header.get("alg") {
        None => return Err(VisitorTokenError::MissingAlg),
        Some(Value::String(a)) if a == "HS256" => {}
        Some(Value::String(a)) if is_slug(a, 16) => {
            return Err(VisitorTokenError::AlgorithmNotAllowed(a.clone()));
        }
        Some(_) => return Err(VisitorTokenError::AlgorithmNotAllowed("?".into())),
    }
    match header.get("typ") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t.eq_ignore_ascii_case("JWT") => {}
        Some(_) => return Err(VisitorTokenError::WrongType),
    }
    let kid = match header.get("kid") {
        None => return Err(VisitorTokenError::MissingKid),
        Some(Value::String(k)) if is_slug(k, 64) => k.clone(),
        Some(_) => return Err(VisitorTokenError::InvalidKid),
    };
    Ok(Unverified {
        kid,
        payload_b64: p,
        sig_b64: s,
    })
}

/// Names what jsonwebtoken refused.
fn refusal(
    e: &jsonwebtoken::errors::Error,
    token: &str,
    unverified: &Unverified<'_>,
    window: Window,
) -> VisitorTokenError {
    match e.kind() {
        JwtErrorKind::InvalidSignature => VisitorTokenError::BadSignature,
        JwtErrorKind::Base64(_) => VisitorTokenError::BadBase64,
        // `read_header` took the header; jsonwebtoken reads it into its own typed `Header`,
        // which refuses members of the wrong type (a `jwk` that is not a key, ...).
        JwtErrorKind::Json(_) if jsonwebtoken::decode_header(token).is_err() => {
            VisitorTokenError::Malformed("a header member is not of its registered type")
        }
        // The signature held; the claims were refused. Our checks say which and why.
        JwtErrorKind::Json(_) => claims_refusal(unverified.payload_b64, window)
            .unwrap_or(VisitorTokenError::Malformed("claims are not a JSON object")),
        JwtErrorKind::MissingRequiredClaim(_) | JwtErrorKind::InvalidClaimFormat(_) => {
            claims_refusal(unverified.payload_b64, window)
                .unwrap_or(VisitorTokenError::MissingClaim("exp"))
        }
        JwtErrorKind::InvalidAlgorithm | JwtErrorKind::InvalidAlgorithmName => {
            VisitorTokenError::AlgorithmNotAllowed("?".into())
        }
        _ => VisitorTokenError::Malformed("refused by the JWT decoder"),
    }
}

/// Reads the claims of a token whose signature held and checks them; the refusal, if any.
fn claims_refusal(payload_b64: &str, window: Window) -> Option<VisitorTokenError> {
    let Ok(payload) = URL_SAFE_NO_PAD.decode(payload_b64.as_bytes()) else {
        return Some(VisitorTokenError::BadBase64);
    };
    match serde_json::from_slice::<Members>(&payload) {
        Err(_) => Some(VisitorTokenError::Malformed("claims are not a JSON object")),
        Ok(c) => claims::check(&c, window).err(),
    }
}

/// A fresh `jti`: 128 random bits, unpadded base64url.
fn new_jti() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

impl Broker {
    /// Mints a visitor token with the ring's signing key. `lifetime` defaults to the
    /// configuration's default (10 minutes unless changed).
    ///
    /// # Errors
    ///
    /// [`VisitorAdminError::InvalidClaims`], [`VisitorAdminError::LifetimeTooLong`] (not
    /// positive, or over the configuration's maximum), [`VisitorAdminError::NotConfigured`],
    /// [`Error::Store`].
    pub async fn mint_visitor_token(
        &self,
        tenant: &TenantId,
        audience: &VisitorAudience,
        claims: &VisitorClaims,
        lifetime: Option<Duration>,
    ) -> Result<String, Error> {
        claims.validate()?;
        let now = self.now();
        let ring = self.load_visitor_ring(tenant, audience, now).await?;
        let lifetime = lifetime.map_or(ring.default_lifetime, |d| d.whole_seconds());
        if lifetime < 1 || lifetime > ring.max_lifetime {
            return Err(VisitorAdminError::LifetimeTooLong.into());
        }
        let signer = ring.signer()?;
        let iat = now.unix_timestamp();
        let jti = new_jti();
        let body = claims.to_token(iat, iat.saturating_add(lifetime), &jti);
        jsonwebtoken::encode(&signer.header, &body, &signer.key)
            .map_err(|_| VisitorAdminError::InvalidClaims("not encodable as a JWT").into())
    }

    /// Verifies a visitor token against this tenant's configuration for `audience`.
    ///
    /// # Errors
    ///
    /// A [`VisitorTokenError`] naming the check that failed (see the
    /// [module docs](crate::visitor#verification)); [`VisitorAdminError::NotConfigured`];
    /// [`Error::Store`] when the store fails (never an identity).
    pub async fn verify_visitor_token(
        &self,
        tenant: &TenantId,
        audience: &VisitorAudience,
        token: &str,
    ) -> Result<VisitorIdentity, Error> {
        let now = self.now();
        let unverified = read_header(token)?;
        let ring = self.load_visitor_ring(tenant, audience, now).await?;
        let key = ring.verifier(&unverified.kid)?;
        if unverified.sig_b64.len() != SIG_B64_LEN {
            return Err(VisitorTokenError::TruncatedSignature.into());
        }
        let window = Window {
            now: now.unix_timestamp(),
            leeway: self.inner.options.leeway.whole_seconds(),
            max_lifetime: ring.max_lifetime,
            single_use: ring.single_use,
        };
        let checked: Checked = match jsonwebtoken::decode::<Members>(token, key, &VALIDATION) {
            Ok(data) => claims::check(&data.claims, window)?,
            Err(e) => return Err(refusal(&e, token, &unverified, window).into()),
        };
        if ring.single_use {
            let jti = checked
                .jti
                .as_deref()
                .ok_or(VisitorTokenError::MissingClaim("jti"))?;
            let until = from_unix(checked.exp).saturating_add(self.inner.options.leeway);
            let rkey = store::key(&[tenant.as_str(), audience.as_str(), jti]);
            let rec = NewRecord::new(Vec::new()).expires_at(until);
            if self.inner.store.insert(NS_JTI, &rkey, rec, now).await? == Inserted::No {
                return Err(VisitorTokenError::Replayed.into());
            }
        }
        Ok(VisitorIdentity {
            external_id: checked.external_id,
            name: checked.name,
            email: checked.email,
            email_verified: checked.email_verified,
            kid: VisitorKeyId::new(unverified.kid).map_err(|_| VisitorTokenError::InvalidKid)?,
            issued_at: checked.iat.map(from_unix),
            expires_at: from_unix(checked.exp),
            jti: checked.jti,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn header_of(h: &str) -> Result<String, VisitorTokenError> {
        let token = format!("{}.{}.sig", b64(h), b64("{}"));
        read_header(&token).map(|u| u.kid)
    }

    #[test]
    fn header_refusals() {
        assert_eq!(header_of(r#"{"alg":"HS256","kid":"k1"}"#), Ok("k1".into()));
        assert_eq!(
            header_of(r#"{"alg":"HS256","typ":"JWT","kid":"k\u0031"}"#),
            Ok("k1".into())
        );
        assert_eq!(
            header_of(r#"{"typ":"JWT","alg":"HS256","kid":"k1"}"#),
            Ok("k1".into())
        );
        assert_eq!(
            header_of(r#"{"kid":"k1"}"#),
            Err(VisitorTokenError::MissingAlg)
        );
        assert_eq!(
            header_of(r#"{"alg":"none","kid":"k1"}"#),
            Err(VisitorTokenError::AlgorithmNotAllowed("none".into()))
        );
        assert_eq!(
            header_of(r#"{"alg":"RS256","kid":"k1"}"#),
            Err(VisitorTokenError::AlgorithmNotAllowed("RS256".into()))
        );
        assert_eq!(
            header_of(r#"{"alg":256,"kid":"k1"}"#),
            Err(VisitorTokenError::AlgorithmNotAllowed("?".into()))
        );
        assert_eq!(
            header_of(r#"{"alg":"HS256","alg":"HS256","kid":"k1"}"#),
            Err(VisitorTokenError::DuplicateHeaderMember)
        );
        assert_eq!(
            header_of(r#"{"alg":"HS256","x":1,"\u0078":2,"kid":"k1"}"#),
            Err(VisitorTokenError::DuplicateHeaderMember)
        );
        assert_eq!(
            header_of(r#"{"alg":"HS256","kid":"k1","crit":["exp"]}"#),
            Err(VisitorTokenError::UnsupportedCritical)
        );
        assert_eq!(
            header_of(r#"{"alg":"HS256","typ":"JOSE+JSON","kid":"k1"}"#),
            Err(VisitorTokenError::WrongType)
        );
        assert_eq!(
            header_of(r#"{"alg":"HS256"}"#),
            Err(VisitorTokenError::MissingKid)
        );
        assert_eq!(
            header_of(r#"{"alg":"HS256","kid":7}"#),
            Err(VisitorTokenError::InvalidKid)
        );
        assert_eq!(
            header_of(r#"["alg"]"#),
            Err(VisitorTokenError::Malformed("header is not a JSON object"))
        );
    }

    #[test]
    fn the_validation_never_reads_the_system_clock_and_requires_exp() {
        assert!(!VALIDATION.validate_exp && !VALIDATION.validate_nbf);
        assert_eq!(VALIDATION.algorithms, vec![Algorithm::HS256]);
        assert!(VALIDATION.required_spec_claims.contains("exp"));
    }
}
