//! Minting and verifying tokens with `jsonwebtoken`, and the checks made around it.
//!
//! `jsonwebtoken` signs (`encode`), and on verify it reads the header into its typed `Header`
//! and checks the HS256 signature in constant time (`crypto::verify`). Verification does what
//! `jsonwebtoken::decode` does, in its order, but reads each part once: `decode` decodes the
//! header from base64 a second time and parses the claims twice (once more into the struct its
//! `Validation` checks, which checks nothing the claim checks here do not), which made a
//! verification 4.7 times its floor instead of 1.8 (see the README's bench table). What stays
//! here, and why:
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
//! - **The claims** ([`claims::check`](super::claims::check)): `exp` present and a NumericDate,
//!   every time against the broker's clock, not the system time, and the visitor's claims.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use rand::RngCore as _;
use serde_json::Value;
use time::Duration;

use super::VisitorAudience;
use super::Visitors;
use super::claims::{self, Checked, Members, VisitorClaims, VisitorIdentity, Window};
use super::keys::{VisitorKeyId, is_slug};
use super::ring::from_unix;
use crate::error::{Error, VisitorAdminError, VisitorTokenError};
use crate::ids::TenantId;
use crate::store::records::{self, SeenJti};
use crate::store::{self, Inserted};

/// The largest token [`Broker::verify_visitor_token`](crate::Broker::verify_visitor_token) reads.
const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// An HMAC-SHA256 signature in unpadded base64url: 32 bytes.
const SIG_B64_LEN: usize = 43;
/// The store namespace of the `jti`s accepted in single-use mode.
const NS_JTI: &str = records::VISITOR_JTI.name;

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
    /// The decoded header, read again into jsonwebtoken's typed `Header` after the key
    /// lookup, as `jsonwebtoken::decode` would.
    header_json: Vec<u8>,
    /// `header.payload`: what the signature covers.
    signing_input: &'a str,
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
        header_json: header_bytes,
        // Three parts, so the last '.' ends the signing input.
        signing_input: token.rsplit_once('.').map_or(token, |(input, _)| input),
        payload_b64: p,
        sig_b64: s,
    })
}

/// What `jsonwebtoken::decode` checks, in its order, without its second parse of the claims
/// (into the struct its `Validation` reads, which checks nothing [`claims::check`] does not:
/// `exp` present and a NumericDate, against our clock) and without re-decoding the header from
/// base64: the header read into jsonwebtoken's typed `Header` (a registered member of the wrong
/// type, such as a `jwk` that is not a key, is refused), the HS256 signature by
/// `jsonwebtoken::crypto::verify` (constant time), then the claims decoded once and checked.
/// Cheaper than `decode` on a widget's token, for the same answers (`tests/visitor.rs` holds
/// them).
fn verify_signed(
    unverified: &Unverified<'_>,
    key: &jsonwebtoken::DecodingKey,
    window: Window,
) -> Result<Checked, VisitorTokenError> {
    if serde_json::from_slice::<jsonwebtoken::Header>(&unverified.header_json).is_err() {
        return Err(VisitorTokenError::Malformed(
            "a header member is not of its registered type",
        ));
    }
    match jsonwebtoken::crypto::verify(
        unverified.sig_b64,
        unverified.signing_input.as_bytes(),
        key,
        Algorithm::HS256,
    ) {
        Ok(true) => {}
        Ok(false) => return Err(VisitorTokenError::BadSignature),
        Err(e) => {
            return Err(match e.kind() {
                JwtErrorKind::Base64(_) => VisitorTokenError::BadBase64,
                JwtErrorKind::InvalidAlgorithm | JwtErrorKind::InvalidAlgorithmName => {
                    VisitorTokenError::AlgorithmNotAllowed("?".into())
                }
                _ => VisitorTokenError::Malformed("refused by the JWT decoder"),
            });
        }
    }
    let Ok(payload) = URL_SAFE_NO_PAD.decode(unverified.payload_b64.as_bytes()) else {
        return Err(VisitorTokenError::BadBase64);
    };
    let claims: Members = serde_json::from_slice(&payload)
        .map_err(|_| VisitorTokenError::Malformed("claims are not a JSON object"))?;
    claims::check(&claims, window)
}

/// A fresh `jti`: 128 random bits, unpadded base64url.
fn new_jti() -> String {
    let mut b = [0u8; 16];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

impl Visitors {
    /// The work of `Broker::mint_visitor_token`, whose docs say what it does.
    pub(crate) async fn mint_visitor_token(
        &self,
        tenant: &TenantId,
        audience: &VisitorAudience,
        claims: &VisitorClaims,
        lifetime: Option<Duration>,
    ) -> Result<String, Error> {
        claims.validate()?;
        let now = self.cx.now();
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

    /// The work of `Broker::verify_visitor_token`, whose docs say what it does.
    pub(crate) async fn verify_visitor_token(
        &self,
        tenant: &TenantId,
        audience: &VisitorAudience,
        token: &str,
    ) -> Result<VisitorIdentity, Error> {
        let now = self.cx.now();
        let unverified = read_header(token)?;
        let ring = self.load_visitor_ring(tenant, audience, now).await?;
        let key = ring.verifier(&unverified.kid)?;
        if unverified.sig_b64.len() != SIG_B64_LEN {
            return Err(VisitorTokenError::TruncatedSignature.into());
        }
        let window = Window {
            now: now.unix_timestamp(),
            leeway: self.cx.options.leeway.whole_seconds(),
            max_lifetime: ring.max_lifetime,
            single_use: ring.single_use,
        };
        let checked = verify_signed(&unverified, key, window)?;
        if ring.single_use {
            let jti = checked
                .jti
                .as_deref()
                .ok_or(VisitorTokenError::MissingClaim("jti"))?;
            let until = from_unix(checked.exp).saturating_add(self.cx.options.leeway);
            let rkey = store::key(&[tenant.as_str(), audience.as_str(), jti]);
            let rec = records::encode(&SeenJti)?.expires_at(until);
            if self.cx.store.insert(NS_JTI, &rkey, rec, now).await? == Inserted::No {
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

    /// A token signed with `key` over `claims` (the header of a minted token).
    fn signed(claims: &str, key: &[u8]) -> String {
        let input = format!(
            "{}.{}",
            b64(r#"{"alg":"HS256","typ":"JWT","kid":"k1"}"#),
            b64(claims)
        );
        let sig = jsonwebtoken::crypto::sign(
            input.as_bytes(),
            &jsonwebtoken::EncodingKey::from_secret(key),
            Algorithm::HS256,
        )
        .unwrap();
        format!("{input}.{sig}")
    }

    fn verify_at(token: &str, key: &[u8], now: i64) -> Result<Checked, VisitorTokenError> {
        let unverified = read_header(token)?;
        let window = Window {
            now,
            leeway: 0,
            max_lifetime: 600,
            single_use: false,
        };
        verify_signed(
            &unverified,
            &jsonwebtoken::DecodingKey::from_secret(key),
            window,
        )
    }

    #[test]
    fn the_signed_path_never_reads_the_system_clock_and_requires_exp() {
        let key = [7u8; 32];
        // Expired long ago by the system clock, valid by the broker's.
        let token = signed(r#"{"scope":"user","external_id":"c","exp":1000}"#, &key);
        assert_eq!(verify_at(&token, &key, 900).map(|c| c.exp), Ok(1000));
        assert_eq!(
            verify_at(&token, &key, 1000).map(|c| c.exp),
            Err(VisitorTokenError::Expired)
        );
        let no_exp = signed(r#"{"scope":"user","external_id":"c"}"#, &key);
        assert_eq!(
            verify_at(&no_exp, &key, 900).map(|c| c.exp),
            Err(VisitorTokenError::MissingClaim("exp"))
        );
        let string_exp = signed(r#"{"scope":"user","external_id":"c","exp":"1000"}"#, &key);
        assert_eq!(
            verify_at(&string_exp, &key, 900).map(|c| c.exp),
            Err(VisitorTokenError::MalformedClaim("exp"))
        );
        assert_eq!(
            verify_at(&token, &[8u8; 32], 900).map(|c| c.exp),
            Err(VisitorTokenError::BadSignature)
        );
    }
}
