//! The XOAUTH2 challenge decoder: `Xoauth2Failure::parse` on any text is a value or a typed
//! error, never a panic; what it keeps is bounded by what it was given.
#![no_main]

use cx_sso::{AccessToken, Xoauth2, Xoauth2Failure};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(failure) = Xoauth2Failure::parse(&text) {
        // Whatever was decoded came from at most 4 KiB of challenge.
        let kept = failure.status.len()
            + failure.scope.as_deref().map_or(0, str::len)
            + failure.schemes.as_deref().map_or(0, str::len);
        assert!(kept <= 4096, "kept {kept} bytes of a bounded challenge");
        let _ = failure.is_unauthorized();
        let _ = format!("{failure:?}");
    }
    // The SASL string builder refuses what it cannot frame instead of building it.
    let mut halves = text.splitn(2, '\u{1}');
    let mailbox = halves.next().unwrap_or_default();
    let token = AccessToken::new(halves.next().unwrap_or("tok"));
    if let Ok(x) = Xoauth2::new(mailbox, &token) {
        // Exactly the three separators of the SASL frame: nothing the caller gave adds one.
        assert_eq!(x.raw().matches('\u{1}').count(), 3, "{:?}", x.raw());
        assert!(x.raw().ends_with("\u{1}\u{1}"));
        assert_eq!(x.mailbox(), mailbox);
        // The redacted form never carries the token (the mailbox may hold the same text).
        let bearer = format!("Bearer {}", token.secret());
        assert!(!x.redacted().contains(&bearer), "{}", x.redacted());
        assert!(x.raw().contains(&bearer));
    }
});
