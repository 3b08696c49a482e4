//! The SASL XOAUTH2 mechanism of Google and Microsoft for SMTP, IMAP and POP.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use crate::error::{ConnectionError, Error};
use crate::identity::check_mailbox;
use crate::secret::AccessToken;

/// The largest challenge accepted by [`Xoauth2Failure::parse`].
const MAX_CHALLENGE_BYTES: usize = 4096;

/// A SASL XOAUTH2 initial client response: `user=<mailbox>^Aauth=Bearer <token>^A^A`, raw and
/// base64-encoded (what `AUTH XOAUTH2` in SMTP and `AUTHENTICATE XOAUTH2` in IMAP send).
///
/// Both forms hold the access token: `Debug` prints only the mailbox, there is no `Display`,
/// and the strings are zeroized on drop.
#[derive(Clone)]
pub struct Xoauth2 {
    mailbox: String,
    raw: String,
    base64: String,
}

impl Xoauth2 {
    /// The mailbox address (the SASL `user`).
    pub fn mailbox(&self) -> &str {
        &self.mailbox
    }

    /// The raw initial response, with its `\x01` separators.
    ///
    /// # Security Warning
    ///
    /// This holds the access token. Do not log it, put it in an error message or send it
    /// anywhere but the mail server.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The base64 initial response, as sent on the wire.
    ///
    /// # Security Warning
    ///
    /// This holds the access token (base64 is not encryption). Do not log it, put it in an
    /// error message or send it anywhere but the mail server.
    pub fn base64(&self) -> &str {
        &self.base64
    }

    /// The raw response with the token replaced by `[redacted]`, for logs and examples.
    pub fn redacted(&self) -> String {
        format!("user={}^Aauth=Bearer [redacted]^A^A", self.mailbox)
    }
}

impl std::fmt::Debug for Xoauth2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Xoauth2")
            .field("mailbox", &self.mailbox)
            .field("raw", &format_args!("[redacted]"))
            .field("base64", &format_args!("[redacted]"))
            .finish()
    }
}

impl Drop for Xoauth2 {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.raw);
        zeroize::Zeroize::zeroize(&mut self.base64);
    }
}

impl Xoauth2 {
    /// Builds the SASL XOAUTH2 initial client response for `mailbox` and `token`, byte for byte as
    /// Google documents it: `"user=" + mailbox + "\x01auth=Bearer " + token + "\x01\x01"`.
    ///
    /// ```
    /// use cx_sso::{AccessToken, Xoauth2};
    ///
    /// # fn main() -> Result<(), cx_sso::Error> {
    /// let token = AccessToken::new("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg");
    /// let sasl = Xoauth2::new("someuser@example.com", &token)?;
    /// assert_eq!(
    ///     sasl.base64(),
    ///     "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhk\
    ///      SFJoZG1semRHRXVZMjl0Q2cBAQ=="
    /// );
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConnectionError::InvalidMailbox`] when the mailbox is empty, too long or holds `\x01`,
    /// CR, LF or another control character; the same when the token holds a control character
    /// or a space.
    pub fn new(mailbox: &str, token: &AccessToken) -> Result<Self, Error> {
        check_mailbox(mailbox)?;
        let t = token.secret();
        if t.is_empty() || t.chars().any(|c| c.is_control() || c == ' ') {
            return Err(ConnectionError::InvalidMailbox.into());
        }
        let raw = format!("user={mailbox}\x01auth=Bearer {t}\x01\x01");
        let base64 = STANDARD.encode(raw.as_bytes());
        Ok(Self {
            mailbox: mailbox.to_owned(),
            raw,
            base64,
        })
    }
}

/// What a mail server said when it refused an XOAUTH2 authentication: the decoded error
/// challenge, such as `{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}`.
///
/// The client answers such a challenge with an empty line, reads the final error, and then
/// (for a 401) gets a fresh access token or asks an admin to connect the mailbox again.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Xoauth2Failure {
    /// The HTTP-like status: `401` (token invalid or expired), `400`, ...
    pub status: String,
    /// The authentication schemes the server accepts (`Bearer`).
    pub schemes: Option<String>,
    /// The scope the server requires.
    pub scope: Option<String>,
}

impl Xoauth2Failure {
    /// Whether the token was refused (status 401): fetch a new one, and if that keeps
    /// failing, the connection needs consent again.
    pub fn is_unauthorized(&self) -> bool {
        self.status == "401"
    }
}

impl Xoauth2Failure {
    /// Decodes a server's XOAUTH2 error challenge (base64 JSON). A leading SMTP `334 ` or IMAP
    /// `+ ` is accepted and skipped.
    ///
    /// ```
    /// use cx_sso::Xoauth2Failure;
    ///
    /// let failure = Xoauth2Failure::parse(
    ///     "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ==",
    /// )?;
    /// assert!(failure.is_unauthorized());
    /// assert_eq!(failure.scope.as_deref(), Some("https://mail.google.com/"));
    /// # Ok::<(), cx_sso::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`ConnectionError::MalformedChallenge`] when it is not base64, not JSON, has no `status`,
    /// or is larger than 4 KiB.
    pub fn parse(challenge: &str) -> Result<Self, Error> {
        #[derive(Deserialize)]
        struct Raw {
            status: Option<serde_json::Value>,
            schemes: Option<String>,
            scope: Option<String>,
        }
        let mut text = challenge.trim();
        if text.len() > MAX_CHALLENGE_BYTES {
            return Err(ConnectionError::MalformedChallenge("too large").into());
        }
        for prefix in ["334 ", "+ "] {
            if let Some(rest) = text.strip_prefix(prefix) {
                text = rest.trim_start();
            }
        }
        let bytes = STANDARD
            .decode(text)
            .map_err(|_| ConnectionError::MalformedChallenge("not base64"))?;
        let raw: Raw = serde_json::from_slice(&bytes)
            .map_err(|_| ConnectionError::MalformedChallenge("not a JSON object"))?;
        let status = match raw.status {
            Some(serde_json::Value::String(s)) => s,
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => return Err(ConnectionError::MalformedChallenge("no status").into()),
        };
        let printable = |s: String| -> String {
            s.chars()
                .filter(|c| !c.is_control())
                .take(256)
                .collect::<String>()
        };
        Ok(Self {
            status: printable(status),
            schemes: raw.schemes.map(printable),
            scope: raw.scope.map(printable),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn googles_documented_example_byte_exact() {
        let token = AccessToken::new("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg");
        let x = Xoauth2::new("someuser@example.com", &token).unwrap();
        assert_eq!(
            x.raw().as_bytes(),
            b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
        );
        assert_eq!(
            x.base64(),
            "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
        );
        let debug = format!("{x:?}");
        assert!(!debug.contains("ya29"), "{debug}");
        assert!(!x.redacted().contains("ya29"));
    }

    #[test]
    fn framing_characters_are_refused() {
        let token = AccessToken::new("tok");
        for bad in [
            "a\x01b@x.example",
            "a@x.example\r\nRCPT TO:<evil>",
            "a@x.example\n",
            "",
        ] {
            assert!(Xoauth2::new(bad, &token).is_err(), "{bad:?}");
        }
        let bad_token = AccessToken::new("tok\x01auth=Bearer other");
        assert!(Xoauth2::new("a@x.example", &bad_token).is_err());
    }

    #[test]
    fn challenge_decoder() {
        let b64 = STANDARD
            .encode(r#"{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}"#);
        let f = Xoauth2Failure::parse(&b64).unwrap();
        assert_eq!(f.status, "401");
        assert_eq!(f.schemes.as_deref(), Some("Bearer"));
        assert!(f.is_unauthorized());
        assert_eq!(Xoauth2Failure::parse(&format!("334 {b64}")).unwrap(), f);
        assert_eq!(Xoauth2Failure::parse(&format!("+ {b64}")).unwrap(), f);
        assert!(Xoauth2Failure::parse("!!!").is_err());
        assert!(Xoauth2Failure::parse(&STANDARD.encode("[]")).is_err());
        assert!(Xoauth2Failure::parse(&STANDARD.encode("{}")).is_err());
    }
}
