//! The `return_to` sanitiser and the id types' parsers.
//!
//! Ids: each type accepts exactly what its documentation says (checked against an oracle
//! written from the doc comments), prints back what it was given, and decodes from JSON as it
//! parses. `return_to`: a whole login with the input as `return_to`; the outcome's path is the
//! input or `/`, and when it is the input it stays on the host's origin however a browser or a
//! server decodes it.
#![no_main]

use cx_sso::{
    BindingId, ConnectionId, LoginIntent, LoginOptions, LoginOutcome, ProviderId, TenantId, UserId,
    VisitorAudience, VisitorKeyId,
};
use cx_sso_fuzz::{World, block_on};
use libfuzzer_sys::fuzz_target;

fn slug(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

macro_rules! check_id {
    ($ty:ty, $s:expr, $expected:expr) => {{
        let s: &str = $s;
        let parsed = <$ty>::new(s);
        assert_eq!(
            parsed.is_ok(),
            $expected,
            "{} on {s:?}: {parsed:?}",
            stringify!($ty)
        );
        if let Ok(id) = &parsed {
            assert_eq!(id.as_str(), s);
            assert_eq!(id.to_string(), s);
            assert_eq!(s.parse::<$ty>().ok().as_ref(), Some(id));
        }
        let json = serde_json::to_string(s).expect("a JSON string");
        let decoded = serde_json::from_str::<$ty>(&json);
        assert_eq!(
            decoded.is_ok(),
            $expected,
            "{} from JSON {json}",
            stringify!($ty)
        );
    }};
}

/// Percent-decodes once, as a server would (invalid escapes kept as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = b
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok());
        if b[i] == b'%'
            && let Some(Ok(h)) = hex.map(|h| u8::from_str_radix(h, 16))
        {
            out.push(h);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `path`, as a redirect target of `https://cx.fuzz.test/...`, stays on that origin.
fn same_origin(path: &str) -> bool {
    let base = url::Url::parse("https://cx.fuzz.test/sso/callback/idp").expect("base");
    base.join(path).is_ok_and(|u| u.origin() == base.origin())
}

fn check_return_to(input: &str) {
    let out = block_on(async {
        let w = World::new(None);
        w.configure().await.expect("configure");
        w.login(
            LoginIntent::Link {
                user: cx_sso_fuzz::user("alice"),
            },
            LoginOptions::new().return_to(input),
        )
        .await
    });
    let kept = match out {
        Ok(LoginOutcome::Linked { return_to, .. }) => return_to,
        other => panic!("the login failed: {other:?}"),
    };
    if kept == "/" {
        return;
    }
    assert_eq!(kept, input, "return_to is kept as it is or replaced by /");
    assert!(kept.starts_with('/'), "{kept:?} is not a relative path");
    let mut current = kept.clone();
    for _ in 0..2 {
        assert!(
            same_origin(&current),
            "{kept:?} leaves the origin (as {current:?})"
        );
        assert!(
            !current.starts_with("//") && !current.contains('\\'),
            "{kept:?} reads as a network path once decoded ({current:?})"
        );
        current = percent_decode(&current);
    }
}

fuzz_target!(|data: &[u8]| {
    let s = String::from_utf8_lossy(data);
    let opaque = !s.is_empty() && s.len() <= 256 && !s.chars().any(char::is_control);
    check_id!(TenantId, &s, slug(&s, 128));
    check_id!(ProviderId, &s, slug(&s, 64));
    check_id!(ConnectionId, &s, slug(&s, 128));
    check_id!(UserId, &s, opaque);
    check_id!(VisitorAudience, &s, slug(&s, 64));
    check_id!(VisitorKeyId, &s, slug(&s, 64));
    // Exactly 43: a binding id is an unpadded base64url SHA-256.
    let b64 = s.len() == 43
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
    check_id!(BindingId, &s, b64);
    check_return_to(&s);
});
