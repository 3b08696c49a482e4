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
        // The SASL XOAUTH2 frame exactly, and its redacted form without the token (the frame
        // with \x01 shown as ^A): nothing the caller gave adds a separator.
        let t = token.secret();
        assert_eq!(
            x.raw(),
            format!("user={mailbox}\u{1}auth=Bearer {t}\u{1}\u{1}")
        );
        assert_eq!(x.mailbox(), mailbox);
        assert_eq!(
            x.redacted(),
            format!("user={mailbox}^Aauth=Bearer [redacted]^A^A")
        );
    }
});
