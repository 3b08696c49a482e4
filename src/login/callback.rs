//! Strict parsing of the provider's redirect back to the host.

use crate::error::CallbackError;

/// The largest callback query accepted.
pub(crate) const MAX_CALLBACK_BYTES: usize = 8 * 1024;

#[derive(Debug)]
pub(crate) struct Callback {
    pub(crate) state: String,
    pub(crate) result: CallbackResult,
    pub(crate) iss: Option<String>,
}

pub(crate) enum CallbackResult {
    Code(String),
    Error {
        error: String,
        description: Option<String>,
    },
}

impl std::fmt::Debug for CallbackResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Code(_) => f.write_str("Code([redacted])"),
            Self::Error { error, .. } => f.debug_struct("Error").field("error", error).finish(),
        }
    }
}

/// Parses the query string of the callback (with or without a leading `?`).
pub(crate) fn parse(query: &str) -> Result<Callback, CallbackError> {
    if query.len() > MAX_CALLBACK_BYTES {
        return Err(CallbackError::TooLarge {
            limit: MAX_CALLBACK_BYTES,
        });
    }
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut code = None;
    let mut state = None;
    let mut error = None;
    let mut description = None;
    let mut iss = None;
    let mut seen: Vec<String> = Vec::new();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if seen.iter().any(|s| *s == name) {
            return Err(CallbackError::DuplicateParameter(truncate(&name)));
        }
        seen.push(name.to_string());
        let slot = match name.as_ref() {
            "code" => &mut code,
            "state" => &mut state,
            "error" => &mut error,
            "error_description" => &mut description,
            "iss" => &mut iss,
            _ => continue,
        };
        *slot = Some(value.into_owned());
    }
    let state = state.ok_or(CallbackError::Missing("state"))?;
    if state.is_empty() || state.len() > 512 || !state.bytes().all(is_token_char) {
        return Err(CallbackError::Malformed("state"));
    }
    if let Some(i) = &iss
        && (i.len() > 2048 || i.chars().any(char::is_control))
    {
        return Err(CallbackError::Malformed("iss"));
    }
    let result = match (code, error) {
        (Some(_), Some(_)) => return Err(CallbackError::CodeAndError),
        (Some(code), None) => {
            if code.is_empty() || code.len() > 4096 || code.chars().any(char::is_control) {
                return Err(CallbackError::Malformed("code"));
            }
            CallbackResult::Code(code)
        }
        (None, Some(error)) => {
            if error.is_empty() || error.len() > 128 || !error.bytes().all(is_token_char) {
                return Err(CallbackError::Malformed("error"));
            }
            CallbackResult::Error {
                error,
                description: description.map(|d| {
                    d.chars()
                        .filter(|c| c.is_ascii_graphic() || *c == ' ')
                        .take(256)
                        .collect()
                }),
            }
        }
        (None, None) => return Err(CallbackError::Missing("code")),
    };
    Ok(Callback { state, result, iss })
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~')
}

fn truncate(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_parsing() {
        assert!(matches!(
            parse("code=a&state=b&state=c"),
            Err(CallbackError::DuplicateParameter(p)) if p == "state"
        ));
        assert!(matches!(
            parse("code=a&error=access_denied&state=b"),
            Err(CallbackError::CodeAndError)
        ));
        assert!(matches!(
            parse("code=a"),
            Err(CallbackError::Missing("state"))
        ));
        assert!(matches!(
            parse("state=a"),
            Err(CallbackError::Missing("code"))
        ));
        let big = format!("state=a&code={}", "x".repeat(MAX_CALLBACK_BYTES));
        assert!(matches!(parse(&big), Err(CallbackError::TooLarge { .. })));
        let ok = parse("?code=abc&state=s1&iss=https%3A%2F%2Fidp&scope=openid").unwrap();
        assert_eq!(ok.state, "s1");
        assert_eq!(ok.iss.as_deref(), Some("https://idp"));
        assert!(matches!(ok.result, CallbackResult::Code(c) if c == "abc"));
        assert!(format!("{:?}", parse("code=SECRET&state=s").unwrap()).contains("redacted"));
    }
}
