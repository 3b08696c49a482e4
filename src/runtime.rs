//! The runtime seam: how the broker spawns a task and waits, when it must.
//!
//! The broker runs on whatever executor polls its futures and never reaches for a runtime
//! behind the caller's back: it spawns only through a [`Spawner`] and sleeps only through a
//! [`Sleeper`] that the host gives [`BrokerBuilder`](crate::BrokerBuilder), and measures every
//! wait with the broker's [`Clock`](crate::Clock). Both are optional; only the mailbox
//! connection refresh ([`Broker::access_token`](crate::Broker::access_token)) uses them.
//!
//! Two traits rather than one, because a host can have one without the other: a tokio
//! runtime built without `enable_time` can spawn but not sleep.
//!
//! | given | what changes |
//! |---|---|
//! | a [`Spawner`] | A refresh that has started at the provider runs on its own task, so a caller that gives up (a timeout around `access_token`, a dropped request) does not lose a rotated refresh token: the task stores it all the same. |
//! | no spawner | The refresh runs inline, in the caller's future. A caller that drops that future after the provider answered and before the store write loses the answer: with a provider that rotates refresh tokens and detects reuse (Microsoft), the next refresh presents the old token and the connection becomes [`NeedsReconsent`](crate::ConnectionStatus::NeedsReconsent). Do not put a timeout around `access_token` then, or give it a spawner. |
//! | a [`Sleeper`] | When another node holds the connection's refresh lease, the caller re-reads the record every 25 ms until the fresh token appears or 10 s have passed on the broker's [`Clock`](crate::Clock) (then [`ConnectionError::Transient`](crate::ConnectionError::Transient)). |
//! | no sleeper | When another node holds the lease, the caller gets [`ConnectionError::Transient`](crate::ConnectionError::Transient) at once, with a 1-second retry hint; it never spins. Single-node hosts never meet this. |
//!
//! With the `tokio` feature (on by default), [`TokioRuntime`] is both:
//!
//! ```
//! # #[cfg(feature = "tokio")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), cx_sso::Error> {
//! let broker = cx_sso::Broker::builder()
//!     .runtime(cx_sso::TokioRuntime::current()?)
//! #   .http_client(cx_sso::testing::FakeIdp::google())
//!     .public_base_url("https://cx.example.com")
//!     .build()?;
//! # let _ = broker; Ok(()) }
//! # #[cfg(not(feature = "tokio"))]
//! # fn main() {}
//! ```
//!
//! # Implementing
//!
//! Another executor plugs in with a few lines; for instance a spawner that gives each task a
//! thread of its own (a real host would use its executor's `spawn`):
//!
//! ```
//! use std::future::Future;
//! use std::pin::Pin;
//!
//! #[derive(Debug)]
//! struct ThreadSpawner;
//!
//! impl cx_sso::Spawner for ThreadSpawner {
//!     fn spawn(&self, task: Pin<Box<dyn Future<Output = ()> + Send + 'static>>) {
//!         std::thread::spawn(move || futures_executor::block_on(task));
//!     }
//! }
//! ```

use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;

/// A task for a [`Spawner`]: a boxed, `Send`, `'static` future with no output.
pub type Task = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Runs a task to completion independently of the future that spawned it.
///
/// # Contract
///
/// - Run the task to completion even when nobody waits for it, and return at once.
/// - If the task cannot be run (the executor is shutting down), drop it: the broker notices
///   and answers [`ConnectionError::Transient`](crate::ConnectionError::Transient).
/// - Never block the calling thread.
pub trait Spawner: Debug + Send + Sync + 'static {
    /// Starts `task` and returns without waiting for it.
    fn spawn(&self, task: Task);
}

/// Waits for a while without blocking the thread.
///
/// # Contract
///
/// Complete after about `duration` of real time, without blocking the thread. Waking early
/// or late is harmless: the broker measures elapsed time with its [`Clock`](crate::Clock),
/// not with the sleeper, and also bounds the number of waits.
#[async_trait]
pub trait Sleeper: Debug + Send + Sync + 'static {
    /// Completes after `duration`.
    async fn sleep(&self, duration: Duration);
}

#[cfg(feature = "tokio")]
pub use self::tokio_runtime::TokioRuntime;

#[cfg(feature = "tokio")]
mod tokio_runtime {
    use super::{Duration, Sleeper, Spawner, Task, async_trait};
    use crate::error::{ConfigError, Error};

    /// [`Spawner`] and [`Sleeper`] on a tokio runtime (feature `tokio`, on by default).
    ///
    /// Spawning works on any tokio runtime. Sleeping needs the runtime's timers: `#[tokio::main]`
    /// and `#[tokio::test]` enable them, a `tokio::runtime::Builder` needs `enable_time()` (or
    /// `enable_all()`). On a runtime without timers, give the broker this value as its
    /// [`spawner`](crate::BrokerBuilder::spawner) only.
    #[derive(Debug, Clone)]
    pub struct TokioRuntime {
        handle: tokio::runtime::Handle,
    }

    impl TokioRuntime {
        /// The runtime the caller runs on.
        ///
        /// # Errors
        ///
        /// [`ConfigError::Invalid`] when called outside a tokio runtime.
        pub fn current() -> Result<Self, Error> {
            let handle =
                tokio::runtime::Handle::try_current().map_err(|_| ConfigError::Invalid {
                    what: "runtime",
                    reason: "TokioRuntime::current() was called outside a tokio runtime".into(),
                })?;
            Ok(Self { handle })
        }

        /// The runtime behind `handle`.
        pub fn from_handle(handle: tokio::runtime::Handle) -> Self {
            Self { handle }
        }
    }

    impl Spawner for TokioRuntime {
        fn spawn(&self, task: Task) {
            // The join handle is dropped: the task runs on, detached.
            drop(self.handle.spawn(task));
        }
    }

    #[async_trait]
    impl Sleeper for TokioRuntime {
        async fn sleep(&self, duration: Duration) {
            // Entering the handle ties the timer to this runtime, whichever executor polls us.
            let sleep = {
                let _entered = self.handle.enter();
                tokio::time::sleep(duration)
            };
            sleep.await;
        }
    }
}
