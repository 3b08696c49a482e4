//! The compact-JWS codec for visitor tokens, written out so that every refusal has its own
//! error and nothing is decoded before it must be.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::Mac;
use rand::RngCore as _;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::claims::{MAX_CLAIM_CHARS, VisitorClaims};
use super::keys::is_slug;
use super::ring::HmacSha256;
use super::token::MAX_TOKEN_BYTES;
use crate::error::{VisitorAdminError, VisitorTokenError};

const SIG_B64_LEN: usize = 43; // 32 bytes, unpadded
const MAX_MEMBERS: usize = 64;

// ---------------------------------------------------------------------------------------------
// Mint

#[derive(Serialize)]
struct ClaimsOut<'a> {
    scope: &'static str,
    external_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    email_verified: Option<bool>,
    iat: i64,
    exp: i64,
    jti: &'a str,
}

pub(super) fn mint(
    header_b64: &str,
    mac: &HmacSha256,
    claims: &VisitorClaims,
    iat: i64,
    exp: i64,
) -> Result<String, VisitorAdminError> {
    let mut jti_bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut jti_bytes);
    let mut jti_buf = [0u8; 22];
    let jti = URL_SAFE_NO_PAD
        .encode_slice(jti_bytes, &mut jti_buf)
        .ok()
        .and_then(|n| jti_buf.get(..n))
        .and_then(|b| std::str::from_utf8(b).ok())
        .ok_or(VisitorAdminError::InvalidClaims("jti encoding"))?;
    let payload = serde_json::to_vec(&ClaimsOut {
        scope: "user",
        external_id: &claims.external_id,
        name: claims.name.as_deref(),
        email: claims.email.as_deref(),
        email_verified: claims.email.as_ref().map(|_| claims.email_verified),
        iat,
        exp,
        jti,
    })
    .map_err(|_| VisitorAdminError::InvalidClaims("not serializable"))?;
    let mut token =
        String::with_capacity(header_b64.len() + 2 + payload.len() * 4 / 3 + 4 + SIG_B64_LEN);
    token.push_str(header_b64);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    let mut mac = mac.clone();
    mac.update(token.as_bytes());
    let sig = mac.finalize().into_bytes();
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(sig, &mut token);
    Ok(token)
}

// ---------------------------------------------------------------------------------------------
// Parse (header only: nothing here touches the store)

/// A token whose shape and header passed; the signature and claims are not checked yet.
pub(super) struct Parsed<'a> {
    pub(super) kid: String,
    signing_input: &'a str,
    payload_b64: &'a str,
    sig_b64: &'a str,
}

/// The bytes allowed in a compact JWS: the base64url alphabet and `.`. A table, because this
/// runs over every byte of every token.
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

/// What [`mint`] writes before the `kid` (the key order of `HeaderOut`).
const CANONICAL_HEADER_START: &[u8] = br#"{"alg":"HS256","typ":"JWT","kid":""#;

pub(super) fn parse(token: &str) -> Result<Parsed<'_>, VisitorTokenError> {
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
    let signing_input = token
        .get(..h.len() + 1 + p.len())
        .ok_or(VisitorTokenError::Malformed(
            "not three dot-separated parts",
        ))?;
    // The header every token we mint carries, byte for byte: no JSON parsing needed. Anything
    // else takes the full, strict path below.
    if let Some(kid) = header_bytes
        .strip_prefix(CANONICAL_HEADER_START)
        .and_then(|rest| rest.strip_suffix(b"\"}"))
        .and_then(|kid| std::str::from_utf8(kid).ok())
        .filter(|kid| is_slug(kid, 64))
    {
        return Ok(Parsed {
            kid: kid.to_owned(),
            signing_input,
            payload_b64: p,
            sig_b64: s,
        });
    }
    let header: RawHeader<'_> = serde_json::from_slice(&header_bytes)
        .map_err(|_| VisitorTokenError::Malformed("header is not a JSON object"))?;
    if header.too_many {
        return Err(VisitorTokenError::Malformed("too many header members"));
    }
    if header.duplicate {
        return Err(VisitorTokenError::DuplicateHeaderMember);
    }
    if header.crit {
        return Err(VisitorTokenError::UnsupportedCritical);
    }
    match header.alg {
        None => return Err(VisitorTokenError::MissingAlg),
        Some(Val::Str(a)) if a == "HS256" => {}
        Some(Val::Str(a)) => {
            let shown = if is_slug(&a, 16) {
                a.into_owned()
            } else {
                "?".into()
            };
            return Err(VisitorTokenError::AlgorithmNotAllowed(shown));
        }
        Some(_) => return Err(VisitorTokenError::AlgorithmNotAllowed("?".into())),
    }
    match header.typ {
        None | Some(Val::Null) => {}
        Some(Val::Str(t)) if t.eq_ignore_ascii_case("JWT") => {}
        Some(_) => return Err(VisitorTokenError::WrongType),
    }
    let kid = match header.kid {
        None => return Err(VisitorTokenError::MissingKid),
        Some(Val::Str(k)) if is_slug(&k, 64) => k.into_owned(),
        Some(_) => return Err(VisitorTokenError::InvalidKid),
    };
    Ok(Parsed {
        kid,
        signing_input,
        payload_b64: p,
        sig_b64: s,
    })
}

// ---------------------------------------------------------------------------------------------
// Check (signature, then claims)

pub(super) struct Checked {
    pub(super) external_id: String,
    pub(super) name: Option<String>,
    pub(super) email: Option<String>,
    pub(super) email_verified: bool,
    pub(super) iat: Option<i64>,
    pub(super) exp: i64,
    pub(super) jti: Option<String>,
}

pub(super) fn check(
    parsed: &Parsed<'_>,
    mac: &HmacSha256,
    now: i64,
    leeway: i64,
    max_lifetime: i64,
    single_use: bool,
) -> Result<Checked, VisitorTokenError> {
    if parsed.sig_b64.len() != SIG_B64_LEN {
        return Err(VisitorTokenError::TruncatedSignature);
    }
    let mut sig = [0u8; 33];
    let n = URL_SAFE_NO_PAD
        .decode_slice(parsed.sig_b64.as_bytes(), &mut sig)
        .map_err(|_| VisitorTokenError::BadBase64)?;
    let sig = sig.get(..n).ok_or(VisitorTokenError::BadSignature)?;
    let mut mac = mac.clone();
    mac.update(parsed.signing_input.as_bytes());
    let expected = mac.finalize().into_bytes();
    if !bool::from(expected.as_slice().ct_eq(sig)) {
        return Err(VisitorTokenError::BadSignature);
    }

    let payload = URL_SAFE_NO_PAD
        .decode(parsed.payload_b64.as_bytes())
        .map_err(|_| VisitorTokenError::BadBase64)?;
    let c: RawClaims<'_> = serde_json::from_slice(&payload)
        .map_err(|_| VisitorTokenError::Malformed("claims are not a JSON object"))?;
    if c.too_many {
        return Err(VisitorTokenError::Malformed("too many claims"));
    }
    if c.duplicate {
        return Err(VisitorTokenError::DuplicateClaim);
    }

    let exp = match c.exp {
        None => return Err(VisitorTokenError::MissingClaim("exp")),
        Some(v) => numeric(v, "exp")?,
    };
    let iat = c.iat.map(|v| numeric(v, "iat")).transpose()?;
    let nbf = c.nbf.map(|v| numeric(v, "nbf")).transpose()?;
    match c.scope {
        None => return Err(VisitorTokenError::MissingClaim("scope")),
        Some(Val::Str(s)) if s == "user" => {}
        Some(_) => return Err(VisitorTokenError::WrongScope),
    }
    if now.saturating_sub(leeway) >= exp {
        return Err(VisitorTokenError::Expired);
    }
    if exp > now.saturating_add(max_lifetime).saturating_add(leeway) {
        return Err(VisitorTokenError::ExpiresTooLate);
    }
    if iat.is_some_and(|t| t > now.saturating_add(leeway)) {
        return Err(VisitorTokenError::IssuedInFuture);
    }
    if nbf.is_some_and(|t| t > now.saturating_add(leeway)) {
        return Err(VisitorTokenError::NotYetValid);
    }

    let external_id = match c.external_id {
        None => return Err(VisitorTokenError::MissingClaim("external_id")),
        Some(v) => text(v, "external_id")?.ok_or(VisitorTokenError::MissingClaim("external_id"))?,
    };
    let name = c.name.map(|v| text(v, "name")).transpose()?.flatten();
    let email = c.email.map(|v| text(v, "email")).transpose()?.flatten();
    let email_verified = match c.email_verified {
        None | Some(Val::Null) => false,
        Some(Val::Bool(b)) => b,
        Some(_) => return Err(VisitorTokenError::MalformedClaim("email_verified")),
    };
    let jti = c.jti.map(|v| text(v, "jti")).transpose()?.flatten();
    if single_use && jti.is_none() {
        return Err(VisitorTokenError::MissingClaim("jti"));
    }
    Ok(Checked {
        external_id,
        name,
        email,
        email_verified,
        iat,
        exp,
        jti,
    })
}

/// A NumericDate: an integer, or a finite number (truncated). Anything else is malformed.
fn numeric(v: Val<'_>, what: &'static str) -> Result<i64, VisitorTokenError> {
    match v {
        Val::Int(i) => Ok(i),
        #[allow(clippy::cast_possible_truncation)]
        Val::Float(f) if f.is_finite() && f.abs() < 1e15 => Ok(f.trunc() as i64),
        _ => Err(VisitorTokenError::MalformedClaim(what)),
    }
}

/// At most `max` characters, none of them a control character (one pass).
fn plain_text_within(s: &str, max: usize) -> bool {
    if s.is_ascii() {
        return s.len() <= max && !s.bytes().any(|b| b.is_ascii_control());
    }
    let mut n = 0;
    for c in s.chars() {
        n += 1;
        if n > max || c.is_control() {
            return false;
        }
    }
    true
}

/// An optional text claim: `null` is absent; otherwise 1 to 255 characters, no control
/// characters.
fn text(v: Val<'_>, what: &'static str) -> Result<Option<String>, VisitorTokenError> {
    match v {
        Val::Null => Ok(None),
        Val::Str(s) if !s.is_empty() && plain_text_within(&s, MAX_CLAIM_CHARS) => {
            Ok(Some(s.into_owned()))
        }
        _ => Err(VisitorTokenError::MalformedClaim(what)),
    }
}

// ---------------------------------------------------------------------------------------------
// Lenient JSON views: every member is read, types are judged afterwards so that each refusal
// gets its own error, and duplicates of any member are noticed.

enum Val<'de> {
    Str(Cow<'de, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    Other,
}

impl<'de> Deserialize<'de> for Val<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValVisitor)
    }
}

struct ValVisitor;

impl<'de> Visitor<'de> for ValVisitor {
    type Value = Val<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Borrowed(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Val<'de>, E> {
        Ok(Val::Str(Cow::Owned(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Val<'de>, E> {
        Ok(Val::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Val<'de>, E> {
        Ok(i64::try_from(v).map_or(Val::Other, Val::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Val<'de>, E> {
        Ok(Val::Float(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Val<'de>, E> {
        Ok(Val::Bool(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Val<'de>, E> {
        Ok(Val::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Val<'de>, E> {
        Ok(Val::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Val<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Val::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Val<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Val::Other)
    }
}

/// A member name, borrowed when it has no escapes.
struct Name<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Name<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Name<'de>, E> {
                Ok(Name(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Walks an object's members, calling `on` for each name not seen before; records duplicates
/// and overflow instead of failing, so that they get their own errors.
fn walk_members<'de, A, F>(
    mut map: A,
    duplicate: &mut bool,
    too_many: &mut bool,
    mut on: F,
) -> Result<(), A::Error>
where
    A: MapAccess<'de>,
    F: FnMut(&str, &mut A) -> Result<(), A::Error>,
{
    let mut seen: Vec<Cow<'de, str>> = Vec::with_capacity(12);
    while let Some(Name(name)) = map.next_key::<Name<'de>>()? {
        if seen.len() >= MAX_MEMBERS {
            *too_many = true;
            map.next_value::<IgnoredAny>()?;
            continue;
        }
        if seen.contains(&name) {
            *duplicate = true;
            map.next_value::<IgnoredAny>()?;
            continue;
        }
        on(&name, &mut map)?;
        seen.push(name);
    }
    Ok(())
}

#[derive(Default)]
struct RawHeader<'de> {
    alg: Option<Val<'de>>,
    kid: Option<Val<'de>>,
    typ: Option<Val<'de>>,
    crit: bool,
    duplicate: bool,
    too_many: bool,
}

impl<'de> Deserialize<'de> for RawHeader<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawHeader<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JOSE header object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawHeader<'de>, A::Error> {
                let mut h = RawHeader::default();
                let (mut dup, mut many) = (false, false);
                walk_members(map, &mut dup, &mut many, |name, map| {
                    match name {
                        "alg" => h.alg = Some(map.next_value()?),
                        "kid" => h.kid = Some(map.next_value()?),
                        "typ" => h.typ = Some(map.next_value()?),
                        "crit" => {
                            h.crit = true;
                            map.next_value::<IgnoredAny>()?;
                        }
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                    Ok(())
                })?;
                h.duplicate = dup;
                h.too_many = many;
                Ok(h)
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Default)]
struct RawClaims<'de> {
    scope: Option<Val<'de>>,
    external_id: Option<Val<'de>>,
    name: Option<Val<'de>>,
    email: Option<Val<'de>>,
    email_verified: Option<Val<'de>>,
    iat: Option<Val<'de>>,
    exp: Option<Val<'de>>,
    nbf: Option<Val<'de>>,
    jti: Option<Val<'de>>,
    duplicate: bool,
    too_many: bool,
}

impl<'de> Deserialize<'de> for RawClaims<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawClaims<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JWT claims object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawClaims<'de>, A::Error> {
                let mut c = RawClaims::default();
                let (mut dup, mut many) = (false, false);
                walk_members(map, &mut dup, &mut many, |name, map| {
                    let slot = match name {
                        "scope" => &mut c.scope,
                        "external_id" => &mut c.external_id,
                        "name" => &mut c.name,
                        "email" => &mut c.email,
                        "email_verified" => &mut c.email_verified,
                        "iat" => &mut c.iat,
                        "exp" => &mut c.exp,
                        "nbf" => &mut c.nbf,
                        "jti" => &mut c.jti,
                        _ => {
                            map.next_value::<IgnoredAny>()?;
                            return Ok(());
                        }
                    };
                    *slot = Some(map.next_value()?);
                    Ok(())
                })?;
                c.duplicate = dup;
                c.too_many = many;
                Ok(c)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    fn parse_header(h: &str) -> Result<String, VisitorTokenError> {
        let token = format!("{}.{}.sig", b64(h), b64("{}"));
        parse(&token).map(|p| p.kid)
    }

    #[test]
    fn header_refusals() {
        assert_eq!(
            parse_header(r#"{"alg":"HS256","kid":"k1"}"#),
            Ok("k1".into())
        );
        assert_eq!(
            parse_header(r#"{"alg":"HS256","typ":"JWT","kid":"k\u0031"}"#),
            Ok("k1".into())
        );
        assert_eq!(
            parse_header(r#"{"kid":"k1"}"#),
            Err(VisitorTokenError::MissingAlg)
        );
        assert_eq!(
            parse_header(r#"{"alg":"none","kid":"k1"}"#),
            Err(VisitorTokenError::AlgorithmNotAllowed("none".into()))
        );
        assert_eq!(
            parse_header(r#"{"alg":"RS256","kid":"k1"}"#),
            Err(VisitorTokenError::AlgorithmNotAllowed("RS256".into()))
        );
        assert_eq!(
            parse_header(r#"{"alg":256,"kid":"k1"}"#),
            Err(VisitorTokenError::AlgorithmNotAllowed("?".into()))
        );
        assert_eq!(
            parse_header(r#"{"alg":"HS256","alg":"HS256","kid":"k1"}"#),
            Err(VisitorTokenError::DuplicateHeaderMember)
        );
        assert_eq!(
            parse_header(r#"{"alg":"HS256","x":1,"\u0078":2,"kid":"k1"}"#),
            Err(VisitorTokenError::DuplicateHeaderMember)
        );
        assert_eq!(
            parse_header(r#"{"alg":"HS256","kid":"k1","crit":["exp"]}"#),
            Err(VisitorTokenError::UnsupportedCritical)
        );
        assert_eq!(
            parse_header(r#"{"alg":"HS256","typ":"JOSE+JSON","kid":"k1"}"#),
            Err(VisitorTokenError::WrongType)
        );
        assert_eq!(
            parse_header(r#"{"alg":"HS256"}"#),
            Err(VisitorTokenError::MissingKid)
        );
        assert_eq!(
            parse_header(r#"{"alg":"HS256","kid":7}"#),
            Err(VisitorTokenError::InvalidKid)
        );
        assert_eq!(
            parse_header(r#"["alg"]"#),
            Err(VisitorTokenError::Malformed("header is not a JSON object"))
        );
    }
}

#[cfg(test)]
mod canonical_tests {
    use super::*;

    #[test]
    fn the_minted_header_takes_the_fast_path_and_others_the_strict_one() {
        let header =
            serde_json::to_vec(&serde_json::json!({"alg": "HS256", "typ": "JWT", "kid": "k1"}))
                .unwrap();
        // serde_json sorts map keys; the broker's HeaderOut keeps alg, typ, kid order, which is
        // what the fast path expects.
        let minted = br#"{"alg":"HS256","typ":"JWT","kid":"k1"}"#;
        assert!(minted.starts_with(CANONICAL_HEADER_START));
        let _ = header;
        for h in [
            &minted[..],
            br#"{"alg":"HS256","kid":"k1","typ":"JWT"}"#,
            br#"{"alg":"HS256","typ":"JWT","kid":"k1","kid":"k2"}"#,
            br#"{"alg":"HS256","typ":"JWT","kid":"../x"}"#,
        ] {
            let token = format!(
                "{}.{}.{}",
                URL_SAFE_NO_PAD.encode(h),
                URL_SAFE_NO_PAD.encode(b"{}"),
                "a".repeat(43)
            );
            let parsed = parse(&token);
            match h {
                x if x == &minted[..] => assert_eq!(parsed.ok().map(|p| p.kid), Some("k1".into())),
                x if x.ends_with(br#""kid":"k2"}"#) => {
                    assert!(matches!(
                        parsed,
                        Err(VisitorTokenError::DuplicateHeaderMember)
                    ))
                }
                x if x.ends_with(br#""../x"}"#) => {
                    assert!(matches!(parsed, Err(VisitorTokenError::InvalidKid)))
                }
                _ => assert_eq!(parsed.ok().map(|p| p.kid), Some("k1".into())),
            }
        }
    }
}
