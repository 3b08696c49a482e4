//! Time, injectable so that tests can move it.

use std::fmt::Debug;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

use time::{Duration, OffsetDateTime};

/// A source of the current time.
///
/// The broker reads every "now" through this trait; the default is [`SystemClock`]. Tests use
/// [`ManualClock`] to play timelines (expiry, grace delays, key rotation) without sleeping.
pub trait Clock: Debug + Send + Sync + 'static {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to. Useful in tests.
///
/// ```
/// use cx_sso::{Clock, ManualClock};
/// use time::{Duration, macros::datetime};
///
/// let clock = ManualClock::new(datetime!(2026-01-01 09:00 UTC));
/// clock.advance(Duration::hours(1));
/// assert_eq!(clock.now(), datetime!(2026-01-01 10:00 UTC));
/// ```
#[derive(Debug)]
pub struct ManualClock {
    nanos: AtomicI64,
    // Serialises `set`/`advance` so that concurrent advances are not lost.
    write: Mutex<()>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            nanos: AtomicI64::new(to_nanos(start)),
            write: Mutex::new(()),
        }
    }

    /// Moves the clock forward (or backward, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let _guard = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let now = self.nanos.load(Ordering::SeqCst);
        let by = i64::try_from(by.whole_nanoseconds()).unwrap_or(i64::MAX);
        self.nanos.store(now.saturating_add(by), Ordering::SeqCst);
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: OffsetDateTime) {
        let _guard = self.write.lock().unwrap_or_else(|e| e.into_inner());
        self.nanos.store(to_nanos(at), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.nanos.load(Ordering::SeqCst)))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

fn to_nanos(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}
