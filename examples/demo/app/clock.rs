//! The demo's clock: the system clock plus an offset an admin can advance (with
//! `DEMO_CLOCK_CONTROL=1`), so that a sign-in method switch scheduled an hour ahead can be seen
//! taking effect. The broker and the development provider read the same clock.

use std::sync::atomic::{AtomicI64, Ordering};

use cx_sso::Clock;
use time::{Duration, OffsetDateTime};

#[derive(Debug, Default)]
pub struct DemoClock {
    offset_seconds: AtomicI64,
}

impl DemoClock {
    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        self.offset_seconds
            .fetch_add(by.whole_seconds(), Ordering::SeqCst);
    }
}

impl Clock for DemoClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc().saturating_add(Duration::seconds(
            self.offset_seconds.load(Ordering::SeqCst),
        ))
    }
}
