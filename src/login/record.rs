//! The stored form of a [`PendingLogin`]: format 2, compact binary; format 1 (JSON, written
//! before 0.x's compact records) still decodes, so logins begun before an upgrade complete
//! after it.
//!
//! Format 2 is the byte `2` followed by [`Format2`] in postcard (serde; integers are varints,
//! text is a varint length and UTF-8, an enum is a varint tag, fields have no names): tenant and
//! application; the intent (tag `0` sign-in, `1` link then the user, `2` connect then the
//! connection); the PKCE verifier and the nonce (random tokens: their 32 raw bytes, without a
//! length); the sanitised `return_to` and the redirect URI; the expiry (Unix seconds, then
//! nanoseconds); the tenant's policy epoch. About 140 bytes where the JSON took 300.
//!
//! The redirect URI is kept although the broker could render it again from the tenant, the
//! application and its redirect path: the token request must repeat the authorization
//! request's URI byte for byte (RFC 6749 §4.1.3), and a login begun before a change of the
//! public base URL or redirect path (or on a node configured differently) must still send the
//! URI it began with.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use zeroize::Zeroize as _;

use super::LoginIntent;
use super::pending::PendingLogin;
use crate::ids::{ConnectionId, ProviderId, TenantId, UserId};
use crate::oauth::PkceVerifier;
use crate::store::StoreError;
use crate::store::records::{self, Namespace, PENDING_LOGIN, StoredRecord};

/// The first byte of a format-2 record (the registry's format version).
const FORMAT: u8 = PENDING_LOGIN.format as u8;

/// The raw length of the two random tokens (`random_token(32)`: 43 base64url characters).
const TOKEN_BYTES: usize = 32;

/// Format 2 after its format byte, in postcard. Borrows the text of the record it is written
/// from or read out of; the two secrets are wiped when it is dropped.
#[derive(Serialize, Deserialize)]
struct Format2<'a> {
    tenant: &'a str,
    provider: &'a str,
    #[serde(borrow)]
    intent: Intent<'a>,
    pkce_verifier: [u8; TOKEN_BYTES],
    nonce: [u8; TOKEN_BYTES],
    return_to: &'a str,
    redirect_uri: &'a str,
    /// Unix seconds and nanoseconds, so the expiry reads back exactly.
    expires_at: (i64, u32),
    policy_epoch: u64,
}

impl Drop for Format2<'_> {
    fn drop(&mut self) {
        self.pkce_verifier.zeroize();
        self.nonce.zeroize();
    }
}

/// [`LoginIntent`] in format 2; the variant order is the stored tag.
#[derive(Serialize, Deserialize)]
enum Intent<'a> {
    SignIn,
    Link(&'a str),
    Connect(&'a str),
}

/// The raw bytes of a random token: canonical unpadded base64url of exactly 32 bytes, else
/// the namespace's [`StoreError::Corrupt`] (the broker only ever stores `random_token(32)`).
fn raw_token(ns: &Namespace, token: &str) -> Result<[u8; TOKEN_BYTES], StoreError> {
    // Room for more than 32 bytes, so a longer token is a wrong length, not a short buffer.
    let mut buf = [0u8; TOKEN_BYTES + 3];
    let decoded = URL_SAFE_NO_PAD.decode_slice(token, &mut buf);
    let raw = match (decoded, buf.first_chunk::<TOKEN_BYTES>()) {
        (Ok(TOKEN_BYTES), Some(raw)) => Ok(*raw),
        _ => Err(records::corrupt(ns)),
    };
    buf.zeroize();
    raw
}

/// Format 1, as written until format 2: a JSON object. Read only.
#[derive(Deserialize)]
struct Format1 {
    tenant: TenantId,
    provider: ProviderId,
    intent: LoginIntent,
    pkce_verifier: PkceVerifier,
    nonce: String,
    return_to: String,
    redirect_uri: String,
    expires_at: OffsetDateTime,
    policy_epoch: u64,
}

impl From<Format1> for PendingLogin {
    fn from(f: Format1) -> Self {
        Self {
            tenant: f.tenant,
            provider: f.provider,
            intent: f.intent,
            pkce_verifier: f.pkce_verifier,
            nonce: f.nonce,
            return_to: f.return_to,
            redirect_uri: f.redirect_uri,
            expires_at: f.expires_at,
            policy_epoch: f.policy_epoch,
        }
    }
}

impl StoredRecord for PendingLogin {
    const NAMESPACE: &'static Namespace = &PENDING_LOGIN;

    fn to_bytes(&self) -> Result<Vec<u8>, StoreError> {
        let ns = Self::NAMESPACE;
        let record = Format2 {
            tenant: self.tenant.as_str(),
            provider: self.provider.as_str(),
            intent: match &self.intent {
                LoginIntent::SignIn => Intent::SignIn,
                LoginIntent::Link { user } => Intent::Link(user.as_str()),
                LoginIntent::Connect { connection } => Intent::Connect(connection.as_str()),
            },
            pkce_verifier: raw_token(ns, self.pkce_verifier.secret())?,
            nonce: raw_token(ns, &self.nonce)?,
            return_to: &self.return_to,
            redirect_uri: &self.redirect_uri,
            expires_at: (
                self.expires_at.unix_timestamp(),
                self.expires_at.nanosecond(),
            ),
            policy_epoch: self.policy_epoch,
        };
        // Room for the longest encoding up front (a varint takes at most 10 bytes): a buffer
        // that grew would leave copies of the secrets behind in freed memory.
        let intent_text = match record.intent {
            Intent::SignIn => "",
            Intent::Link(text) | Intent::Connect(text) => text,
        };
        let texts = [
            record.tenant,
            record.provider,
            intent_text,
            record.return_to,
            record.redirect_uri,
        ];
        // The format byte, the secrets, the tag and three integers, the texts and their lengths.
        let capacity =
            1 + 2 * TOKEN_BYTES + 4 * 10 + texts.iter().map(|t| 10 + t.len()).sum::<usize>();
        let mut bytes = Vec::with_capacity(capacity);
        bytes.push(FORMAT);
        postcard::to_extend(&record, bytes).map_err(|_| records::corrupt(ns))
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, StoreError> {
        let ns = Self::NAMESPACE;
        let corrupt = || records::corrupt(ns);
        match bytes.split_first() {
            Some((b'{', _)) => records::from_json::<Format1>(ns, bytes).map(Self::from),
            Some((&FORMAT, rest)) => {
                let (record, left) =
                    postcard::take_from_bytes::<Format2<'_>>(rest).map_err(|_| corrupt())?;
                if !left.is_empty() {
                    return Err(corrupt());
                }
                let (secs, nanos) = record.expires_at;
                if nanos >= 1_000_000_000 {
                    return Err(corrupt());
                }
                let expires_at = OffsetDateTime::from_unix_timestamp_nanos(
                    i128::from(secs) * 1_000_000_000 + i128::from(nanos),
                )
                .map_err(|_| corrupt())?;
                Ok(Self {
                    tenant: TenantId::parse(record.tenant).map_err(|_| corrupt())?,
                    provider: ProviderId::parse(record.provider).map_err(|_| corrupt())?,
                    intent: match record.intent {
                        Intent::SignIn => LoginIntent::SignIn,
                        Intent::Link(user) => LoginIntent::Link {
                            user: UserId::parse(user).map_err(|_| corrupt())?,
                        },
                        Intent::Connect(connection) => LoginIntent::Connect {
                            connection: ConnectionId::parse(connection).map_err(|_| corrupt())?,
                        },
                    },
                    pkce_verifier: PkceVerifier::new(URL_SAFE_NO_PAD.encode(record.pkce_verifier)),
                    nonce: URL_SAFE_NO_PAD.encode(record.nonce),
                    return_to: record.return_to.to_owned(),
                    redirect_uri: record.redirect_uri.to_owned(),
                    expires_at,
                    policy_epoch: record.policy_epoch,
                })
            }
            _ => Err(corrupt()),
        }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::crypto::random_token;

    fn pending(intent: LoginIntent) -> PendingLogin {
        PendingLogin {
            tenant: TenantId::parse("acme").unwrap(),
            provider: ProviderId::parse("google").unwrap(),
            intent,
            pkce_verifier: PkceVerifier::new(random_token(32)),
            nonce: random_token(32),
            return_to: "/inbox?tab=2".to_owned(),
            redirect_uri: "https://cx.example.com/sso/callback/acme/google".to_owned(),
            expires_at: datetime!(2026-03-02 09:10:00.123456789 UTC),
            policy_epoch: 300,
        }
    }

    fn assert_same(a: &PendingLogin, b: &PendingLogin) {
        assert_eq!(a.tenant, b.tenant);
        assert_eq!(a.provider, b.provider);
        assert_eq!(a.intent, b.intent);
        assert_eq!(a.pkce_verifier.secret(), b.pkce_verifier.secret());
        assert_eq!(a.nonce, b.nonce);
        assert_eq!(a.return_to, b.return_to);
        assert_eq!(a.redirect_uri, b.redirect_uri);
        assert_eq!(a.expires_at, b.expires_at);
        assert_eq!(a.policy_epoch, b.policy_epoch);
    }

    #[test]
    fn every_intent_reads_back_as_written_in_under_half_the_json() {
        for intent in [
            LoginIntent::SignIn,
            LoginIntent::Link {
                user: UserId::parse("ü-1 with spaces").unwrap(),
            },
            LoginIntent::Connect {
                connection: ConnectionId::parse("box-1").unwrap(),
            },
        ] {
            let login = pending(intent);
            let bytes = login.to_bytes().unwrap();
            assert_eq!(bytes.first(), Some(&2));
            assert_same(&PendingLogin::from_bytes(&bytes).unwrap(), &login);
        }
        let login = pending(LoginIntent::SignIn);
        let json = serde_json::to_vec(&serde_json::json!({
            "tenant": "acme", "provider": "google", "intent": "SignIn",
            "pkce_verifier": login.pkce_verifier.secret(), "nonce": login.nonce,
            "return_to": login.return_to, "redirect_uri": login.redirect_uri,
            "expires_at": login.expires_at, "policy_epoch": 300,
        }))
        .unwrap();
        let bytes = login.to_bytes().unwrap();
        assert!(
            bytes.len() * 2 < json.len(),
            "{} vs {}",
            bytes.len(),
            json.len()
        );
    }

    #[test]
    fn a_format_1_record_still_decodes() {
        // As format 1 wrote it (the stored_records fuzz seed of before format 2).
        let v1 = br#"{"tenant":"acme","provider":"idp","intent":{"Link":{"user":"alice"}},"pkce_verifier":"-GoslLOh7UKgxTPcOoSbQ6JwjxZNNfw1arpPp99u6KE","nonce":"mO69OVbgfg4fAj6NMs_3yG5cuAq3RO_zls7ysnW_n24","return_to":"/inbox","redirect_uri":"https://cx.fuzz.test/sso/callback/idp","expires_at":[2026,61,9,10,0,0,0,0,0],"policy_epoch":4}"#;
        let p = PendingLogin::from_bytes(v1).unwrap();
        assert_eq!(p.tenant.as_str(), "acme");
        assert_eq!(p.provider.as_str(), "idp");
        assert_eq!(
            p.intent,
            LoginIntent::Link {
                user: UserId::parse("alice").unwrap()
            }
        );
        assert_eq!(
            p.pkce_verifier.secret(),
            "-GoslLOh7UKgxTPcOoSbQ6JwjxZNNfw1arpPp99u6KE"
        );
        assert_eq!(p.nonce, "mO69OVbgfg4fAj6NMs_3yG5cuAq3RO_zls7ysnW_n24");
        assert_eq!(p.return_to, "/inbox");
        assert_eq!(p.redirect_uri, "https://cx.fuzz.test/sso/callback/idp");
        assert_eq!(p.expires_at, datetime!(2026-03-02 09:10 UTC));
        assert_eq!(p.policy_epoch, 4);
        // Written again, it is format 2.
        assert_eq!(p.to_bytes().unwrap().first(), Some(&2));
    }

    #[test]
    fn a_corrupt_record_is_a_typed_error() {
        let bytes = pending(LoginIntent::Link {
            user: UserId::parse("alice").unwrap(),
        })
        .to_bytes()
        .unwrap();
        let mut bad: Vec<Vec<u8>> = vec![
            Vec::new(),
            vec![3],
            b"{\"tenant\":".to_vec(),
            [bytes.as_slice(), &[0]].concat(),
        ];
        // Every truncation, and every byte changed to values that break it.
        bad.extend((0..bytes.len()).map(|n| bytes[..n].to_vec()));
        for at in 1..bytes.len() {
            for v in [0x00, 0x09, 0x7f, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[at] = v;
                if let Err(e) = PendingLogin::from_bytes(&b) {
                    assert!(matches!(e, StoreError::Corrupt { .. }), "{e:?}");
                }
            }
        }
        for b in bad {
            let err = PendingLogin::from_bytes(&b).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt { .. }), "{b:?}: {err:?}");
            assert_eq!(err.to_string(), "stored record is corrupt: pending login");
        }
        // An id its type refuses (an empty tenant) is corrupt too, and so are nanoseconds of a
        // whole second and seconds beyond the calendar.
        let login = pending(LoginIntent::SignIn);
        let written = |edit: fn(&mut Format2<'_>)| {
            let mut record = Format2 {
                tenant: "acme",
                provider: "google",
                intent: Intent::SignIn,
                pkce_verifier: [7; TOKEN_BYTES],
                nonce: [9; TOKEN_BYTES],
                return_to: &login.return_to,
                redirect_uri: &login.redirect_uri,
                expires_at: (1_700_000_000, 0),
                policy_epoch: 1,
            };
            edit(&mut record);
            let mut bytes = vec![FORMAT];
            bytes.extend(postcard::to_allocvec(&record).unwrap());
            PendingLogin::from_bytes(&bytes)
        };
        assert!(written(|_| ()).is_ok());
        for edit in [
            (|r| r.tenant = "") as fn(&mut Format2<'_>),
            |r| r.intent = Intent::Link(""),
            |r| r.expires_at.1 = 1_000_000_000,
            |r| r.expires_at.0 = i64::MAX,
        ] {
            let err = written(edit).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        }
    }

    #[test]
    fn the_secrets_are_stored_as_their_raw_bytes_and_must_be_random_tokens() {
        let login = pending(LoginIntent::SignIn);
        let bytes = login.to_bytes().unwrap();
        // Format byte, "acme" and "google" with their lengths, the intent's tag, 2 × 32 raw
        // bytes, the two texts with their lengths, the expiry (5 + 4 bytes), the epoch (2).
        let texts = 2 + login.return_to.len() + login.redirect_uri.len();
        assert_eq!(bytes.len(), 1 + 5 + 7 + 1 + 64 + texts + 5 + 4 + 2);
        let raw = URL_SAFE_NO_PAD.decode(&login.nonce).unwrap();
        assert!(bytes.windows(TOKEN_BYTES).any(|w| w == raw.as_slice()));
        let text = login.nonce.as_bytes();
        assert!(!bytes.windows(text.len()).any(|w| w == text));
        // A secret that is not the base64url of exactly 32 bytes cannot be written; the error
        // does not carry it.
        let other = [
            random_token(31),
            random_token(33),
            "not base64!".to_owned(),
            // 43 characters whose last one has bits beyond the 32 bytes (not canonical).
            format!("{}B", &random_token(32)[..42]),
        ];
        for bad in other {
            let mut with_nonce = pending(LoginIntent::SignIn);
            with_nonce.nonce = bad.clone();
            let mut with_verifier = pending(LoginIntent::SignIn);
            with_verifier.pkce_verifier = PkceVerifier::new(bad.clone());
            for login in [with_nonce, with_verifier] {
                let err = login.to_bytes().unwrap_err();
                assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
                assert!(!format!("{err:?} {err}").contains(&bad), "{err:?}");
            }
        }
    }
}
