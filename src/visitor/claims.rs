//! Claims: what the host asserts when minting, what a verified token yields, and the checks a
//! token's claims pass, against the broker's clock.
//!
//! `jsonwebtoken` reads the claims only once their signature holds, and makes sure `exp` is
//! there and numeric; everything else is checked here, for two reasons: its clock checks read
//! the system time where ours read the broker's [`Clock`](crate::Clock) (tests and replays
//! depend on that), and it does not check `iat`, a maximum lifetime, the widget's claims, or
//! repeated members.

use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::error::{VisitorAdminError, VisitorTokenError};

use super::keys::VisitorKeyId;

/// The longest text claim, in characters.
const MAX_CLAIM_CHARS: usize = 255;
/// The most members a header or claims object may have.
const MAX_MEMBERS: usize = 64;

/// Who the visitor is, as the host asserts it when minting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisitorClaims {
    external_id: String,
    name: Option<String>,
    email: Option<String>,
    email_verified: bool,
}

impl VisitorClaims {
    /// Claims for the visitor with this id in the host's system (1 to 255 characters, no control
    /// characters; checked when minting).
    pub fn new(external_id: impl Into<String>) -> Self {
        Self {
            external_id: external_id.into(),
            name: None,
            email: None,
            email_verified: false,
        }
    }

    /// The visitor's display name (at most 255 characters, no control characters).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The visitor's email, and whether the host verified it.
    pub fn email(mut self, email: impl Into<String>, verified: bool) -> Self {
        self.email = Some(email.into());
        self.email_verified = verified;
        self
    }

    pub(super) fn validate(&self) -> Result<(), VisitorAdminError> {
        if !valid_text(&self.external_id) {
            return Err(VisitorAdminError::InvalidClaims(
                "external_id must be 1 to 255 characters without control characters",
            ));
        }
        if self.name.as_deref().is_some_and(|n| !valid_text(n)) {
            return Err(VisitorAdminError::InvalidClaims(
                "name must be 1 to 255 characters without control characters",
            ));
        }
        if self.email.as_deref().is_some_and(|e| !valid_email(e)) {
            return Err(VisitorAdminError::InvalidClaims(
                "email must be at most 255 characters, with an @ and no whitespace",
            ));
        }
        Ok(())
    }

    /// The claims of a token minted for this visitor.
    pub(super) fn to_token<'a>(&'a self, iat: i64, exp: i64, jti: &'a str) -> TokenClaims<'a> {
        TokenClaims {
            scope: "user",
            external_id: &self.external_id,
            name: self.name.as_deref(),
            email: self.email.as_deref(),
            email_verified: self.email.as_ref().map(|_| self.email_verified),
            iat,
            exp,
            jti,
        }
    }
}

fn valid_text(s: &str) -> bool {
    !s.is_empty() && s.chars().count() <= MAX_CLAIM_CHARS && !s.chars().any(char::is_control)
}

fn valid_email(s: &str) -> bool {
    valid_text(s)
        && !s.chars().any(char::is_whitespace)
        && s.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
}

/// The claims a minted token carries, in the shape chat widgets expect.
#[derive(Serialize)]
pub(super) struct TokenClaims<'a> {
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

/// A verified visitor.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VisitorIdentity {
    /// The visitor's id in the host's system.
    pub external_id: String,
    /// The display name, if given.
    pub name: Option<String>,
    /// The email, if given.
    pub email: Option<String>,
    /// Whether the host verified the email (`false` when absent).
    pub email_verified: bool,
    /// The key that signed the token.
    pub kid: VisitorKeyId,
    /// `iat`, if present.
    pub issued_at: Option<OffsetDateTime>,
    /// `exp`.
    pub expires_at: OffsetDateTime,
    /// `jti`, if present.
    pub jti: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Reading a token's JSON

/// The members of a JSON object in document order, repeated names kept. serde_json's `Map` and
/// jsonwebtoken's header keep the last of a repeated name without a word; two parsers that pick
/// different copies read different tokens, so a repeat is refused instead
/// ([`VisitorTokenError::DuplicateHeaderMember`], [`VisitorTokenError::DuplicateClaim`]).
pub(super) struct Members(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(8).min(MAX_MEMBERS));
                while let Some(member) = map.next_entry::<String, Value>()? {
                    out.push(member);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

impl Members {
    /// The value of `name`, if present.
    pub(super) fn get(&self, name: &str) -> Option<&Value> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// More members than any header or claims object we accept has.
    pub(super) fn too_many(&self) -> bool {
        self.0.len() > MAX_MEMBERS
    }

    /// Whether a name appears twice (at most [`MAX_MEMBERS`] names: call after
    /// [`too_many`](Self::too_many)).
    pub(super) fn has_duplicate(&self) -> bool {
        self.0
            .iter()
            .enumerate()
            .any(|(i, (n, _))| self.0.iter().skip(i + 1).any(|(m, _)| m == n))
    }
}

// ---------------------------------------------------------------------------------------------
// Checking a token's claims

/// What a token's times are checked against, and whether it must carry a `jti`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Window {
    /// The broker's clock, Unix seconds.
    pub(super) now: i64,
    pub(super) leeway: i64,
    pub(super) max_lifetime: i64,
    pub(super) single_use: bool,
}

/// The claims of a token that passed every check.
pub(super) struct Checked {
    pub(super) external_id: String,
    pub(super) name: Option<String>,
    pub(super) email: Option<String>,
    pub(super) email_verified: bool,
    pub(super) iat: Option<i64>,
    pub(super) exp: i64,
    pub(super) jti: Option<String>,
}

/// Checks the claims of a token whose signature holds. The order is the order of the refusals
/// a host sees when several things are wrong: shape, times, then the visitor's claims.
pub(super) fn check(c: &Members, w: Window) -> Result<Checked, VisitorTokenError> {
    if c.too_many() {
        return Err(VisitorTokenError::Malformed("too many claims"));
    }
    if c.has_duplicate() {
        return Err(VisitorTokenError::DuplicateClaim);
    }
    let exp = match c.get("exp") {
        None => return Err(VisitorTokenError::MissingClaim("exp")),
        Some(v) => numeric(v, "exp")?,
    };
    let iat = c.get("iat").map(|v| numeric(v, "iat")).transpose()?;
    let nbf = c.get("nbf").map(|v| numeric(v, "nbf")).transpose()?;
    match c.get("scope") {
        None => return Err(VisitorTokenError::MissingClaim("scope")),
        Some(Value::String(s)) if s == "user" => {}
        Some(_) => return Err(VisitorTokenError::WrongScope),
    }
    if w.now.saturating_sub(w.leeway) >= exp {
        return Err(VisitorTokenError::Expired);
    }
    if exp
        > w.now
            .saturating_add(w.max_lifetime)
            .saturating_add(w.leeway)
    {
        return Err(VisitorTokenError::ExpiresTooLate);
    }
    if iat.is_some_and(|t| t > w.now.saturating_add(w.leeway)) {
        return Err(VisitorTokenError::IssuedInFuture);
    }
    if nbf.is_some_and(|t| t > w.now.saturating_add(w.leeway)) {
        return Err(VisitorTokenError::NotYetValid);
    }

    let external_id = match c.get("external_id") {
        None => return Err(VisitorTokenError::MissingClaim("external_id")),
        Some(v) => text(v, "external_id")?.ok_or(VisitorTokenError::MissingClaim("external_id"))?,
    };
    let name = c
        .get("name")
        .map(|v| text(v, "name"))
        .transpose()?
        .flatten();
    let email = c
        .get("email")
        .map(|v| text(v, "email"))
        .transpose()?
        .flatten();
    let email_verified = match c.get("email_verified") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(VisitorTokenError::MalformedClaim("email_verified")),
    };
    let jti = c.get("jti").map(|v| text(v, "jti")).transpose()?.flatten();
    if w.single_use && jti.is_none() {
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

/// A NumericDate: an integer, or a finite number (truncated). Anything else (a string, the
/// CVE-2026-25537 pattern) is malformed.
fn numeric(v: &Value, what: &'static str) -> Result<i64, VisitorTokenError> {
    let Value::Number(n) = v else {
        return Err(VisitorTokenError::MalformedClaim(what));
    };
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        #[allow(clippy::cast_possible_truncation)]
        Some(f) if f.is_finite() && f.abs() < 1e15 => Ok(f.trunc() as i64),
        _ => Err(VisitorTokenError::MalformedClaim(what)),
    }
}

/// An optional text claim: `null` is absent; otherwise 1 to 255 characters, no control
/// characters.
fn text(v: &Value, what: &'static str) -> Result<Option<String>, VisitorTokenError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if valid_text(s) => Ok(Some(s.clone())),
        _ => Err(VisitorTokenError::MalformedClaim(what)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_validation() {
        assert!(VisitorClaims::new("c-1").validate().is_ok());
        assert!(VisitorClaims::new("").validate().is_err());
        assert!(VisitorClaims::new("x".repeat(256)).validate().is_err());
        assert!(VisitorClaims::new("é".repeat(255)).validate().is_ok());
        assert!(VisitorClaims::new("a\u{7}b").validate().is_err());
        assert!(VisitorClaims::new("a").name("n\n").validate().is_err());
        assert!(
            VisitorClaims::new("a")
                .email("no-at", true)
                .validate()
                .is_err()
        );
        assert!(
            VisitorClaims::new("a")
                .email("a@b", true)
                .validate()
                .is_ok()
        );
    }

    fn members(json: &str) -> Members {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn members_keep_repeats_and_escaped_names() {
        assert!(members(r#"{"a":1,"b":2,"a":3}"#).has_duplicate());
        assert!(members(r#"{"x":1,"\u0078":2}"#).has_duplicate());
        assert!(!members(r#"{"a":1,"b":{"a":2}}"#).has_duplicate());
        assert!(serde_json::from_str::<Members>("[1]").is_err());
        let many = format!(
            "{{{}}}",
            (0..65)
                .map(|i| format!(r#""m{i}":0"#))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert!(members(&many).too_many());
    }

    const W: Window = Window {
        now: 1_000_000,
        leeway: 60,
        max_lifetime: 3600,
        single_use: false,
    };

    #[test]
    fn numeric_dates() {
        let ok = |json: &str| check(&members(json), W).map(|c| (c.exp, c.iat));
        assert_eq!(
            ok(r#"{"scope":"user","external_id":"a","exp":1000600.9,"iat":999999}"#).ok(),
            Some((1_000_600, Some(999_999)))
        );
        assert_eq!(
            ok(r#"{"scope":"user","external_id":"a","exp":"1000600"}"#).err(),
            Some(VisitorTokenError::MalformedClaim("exp"))
        );
        assert_eq!(
            ok(r#"{"scope":"user","external_id":"a","exp":18446744073709551615}"#).err(),
            Some(VisitorTokenError::MalformedClaim("exp"))
        );
        assert_eq!(
            ok(r#"{"scope":"user","external_id":"a","exp":-5}"#).err(),
            Some(VisitorTokenError::Expired)
        );
        assert_eq!(
            ok(r#"{"scope":"user","external_id":"a","exp":1000600,"nbf":null}"#).err(),
            Some(VisitorTokenError::MalformedClaim("nbf"))
        );
    }
}
