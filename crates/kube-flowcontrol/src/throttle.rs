//! Client-side throttling: client-go's `flowcontrol.RateLimiter`.
//!
//! A [`RateLimiter`] gates outgoing work: [`try_accept`](RateLimiter::try_accept) never waits,
//! [`accept`](RateLimiter::accept) blocks the thread, [`wait`](RateLimiter::wait) is the async
//! form. [`TokenBucketRateLimiter`] is the real one (a [`Limiter`] that starts with a full
//! bucket); [`AlwaysAllow`] and [`NeverAllow`] are the fakes client-go offers for tests.
//!
//! ```
//! use kube_flowcontrol::throttle::{RateLimiter, TokenBucketRateLimiter};
//!
//! let throttle = TokenBucketRateLimiter::new(5.0, 10); // 5 QPS, bursts of 10
//! let admitted = (0..20).filter(|_| throttle.try_accept()).count();
//! assert_eq!(admitted, 10);
//! assert_eq!(throttle.qps(), 5.0);
//! ```

use std::future::Future;
use std::pin::Pin;

use parking_lot::{Condvar, Mutex};
use thiserror::Error;

use crate::clock::{RealClock, SharedClock};
use crate::rate::{Limit, Limiter, RateError};

/// Why [`RateLimiter::wait`] gave up.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ThrottleError {
    /// The token bucket refused the wait.
    #[error(transparent)]
    Rate(#[from] RateError),
    /// The limiter never accepts anything ([`NeverAllow`]).
    #[error("can not be accepted")]
    NeverAccepts,
}

/// The future returned by [`RateLimiter::wait`].
pub type WaitFuture<'a> = Pin<Box<dyn Future<Output = Result<(), ThrottleError>> + Send + 'a>>;

/// Decides when the next unit of work may go (client-go's `flowcontrol.RateLimiter`).
pub trait RateLimiter: Send + Sync {
    /// Takes a token if one is available now; never waits.
    fn try_accept(&self) -> bool;

    /// Blocks the current thread until a token is available, then takes it.
    ///
    /// For non-async callers; async code uses [`wait`](RateLimiter::wait).
    fn accept(&self);

    /// Waits until a token is available and takes it. Dropping the future gives the token back.
    fn wait(&self) -> WaitFuture<'_>;

    /// The sustained rate in queries per second.
    fn qps(&self) -> f32;

    /// Stops the limiter (a no-op for the token bucket, as in client-go; releases threads blocked
    /// in [`NeverAllow::accept`]).
    fn stop(&self);
}

/// A token-bucket throttle: `qps` sustained, `burst` at once, starting with a full bucket.
#[derive(Debug)]
pub struct TokenBucketRateLimiter {
    limiter: Limiter,
    qps: f32,
}

impl TokenBucketRateLimiter {
    /// A throttle on the real clock.
    pub fn new(qps: f32, burst: usize) -> TokenBucketRateLimiter {
        TokenBucketRateLimiter::with_clock(qps, burst, RealClock::shared())
    }

    /// A throttle on the given clock.
    pub fn with_clock(qps: f32, burst: usize, clock: SharedClock) -> TokenBucketRateLimiter {
        TokenBucketRateLimiter {
            limiter: Limiter::with_clock(Limit::per_second(f64::from(qps)), burst, clock),
            qps,
        }
    }

    /// The underlying token bucket.
    pub fn limiter(&self) -> &Limiter {
        &self.limiter
    }
}

impl RateLimiter for TokenBucketRateLimiter {
    #[inline]
    fn try_accept(&self) -> bool {
        self.limiter.allow()
    }

    fn accept(&self) {
        let clock = self.limiter.clock();
        let now = clock.now();
        let delay = self.limiter.reserve_n(now, 1).delay_from(now);
        if !delay.is_zero() {
            clock.block_sleep(delay);
        }
    }

    fn wait(&self) -> WaitFuture<'_> {
        Box::pin(async move { self.limiter.wait().await.map_err(ThrottleError::from) })
    }

    fn qps(&self) -> f32 {
        self.qps
    }

    fn stop(&self) {}
}

/// A throttle that accepts everything at once (client-go's `NewFakeAlwaysRateLimiter`).
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysAllow;

impl RateLimiter for AlwaysAllow {
    fn try_accept(&self) -> bool {
        true
    }

    fn accept(&self) {}

    fn wait(&self) -> WaitFuture<'_> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn qps(&self) -> f32 {
        1.0
    }

    fn stop(&self) {}
}

/// A throttle that accepts nothing (client-go's `NewFakeNeverRateLimiter`): `try_accept` is
/// false, `wait` fails, and `accept` blocks until [`stop`](RateLimiter::stop) is called.
#[derive(Debug, Default)]
pub struct NeverAllow {
    stopped: Mutex<bool>,
    released: Condvar,
}

impl NeverAllow {
    /// A new never-accepting throttle.
    pub fn new() -> NeverAllow {
        NeverAllow::default()
    }
}

impl RateLimiter for NeverAllow {
    fn try_accept(&self) -> bool {
        false
    }

    fn accept(&self) {
        let mut stopped = self.stopped.lock();
        while !*stopped {
            self.released.wait(&mut stopped);
        }
    }

    fn wait(&self) -> WaitFuture<'_> {
        Box::pin(std::future::ready(Err(ThrottleError::NeverAccepts)))
    }

    fn qps(&self) -> f32 {
        1.0
    }

    fn stop(&self) {
        *self.stopped.lock() = true;
        self.released.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, FakeClock};
    use futures_util::FutureExt;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn token_bucket_starts_full_then_refills() {
        // client-go's TestMultithreadedThrottling/TestBasicThrottle shape, on a fake clock.
        let clock = FakeClock::new();
        let throttle = TokenBucketRateLimiter::with_clock(1.0, 3, clock.shared());
        for _ in 0..3 {
            assert!(throttle.try_accept());
        }
        assert!(!throttle.try_accept());
        clock.step(Duration::from_secs(1));
        assert!(throttle.try_accept());
        assert!(!throttle.try_accept());
    }

    #[test]
    fn accept_blocks_for_the_next_token() {
        let clock = FakeClock::new();
        let throttle = Arc::new(TokenBucketRateLimiter::with_clock(10.0, 1, clock.shared()));
        let start = clock.now();
        throttle.accept(); // the initial token
        let worker = {
            let throttle = Arc::clone(&throttle);
            std::thread::spawn(move || throttle.accept())
        };
        while !clock.has_waiters() {
            std::thread::yield_now();
        }
        assert_eq!(
            clock.next_deadline(),
            Some(start + Duration::from_millis(100))
        );
        clock.step(Duration::from_millis(100));
        worker.join().unwrap();
    }

    #[tokio::test]
    async fn wait_is_throttled_on_the_clock() {
        let clock = FakeClock::new();
        let throttle = TokenBucketRateLimiter::with_clock(2.0, 1, clock.shared());
        throttle.wait().await.unwrap();
        let mut next = throttle.wait();
        assert!((&mut next).now_or_never().is_none());
        clock.step(Duration::from_millis(500));
        assert_eq!(next.now_or_never(), Some(Ok(())));
    }

    #[test]
    fn fakes() {
        assert!(AlwaysAllow.try_accept());
        assert_eq!(AlwaysAllow.wait().now_or_never(), Some(Ok(())));
        AlwaysAllow.accept();

        let never = Arc::new(NeverAllow::new());
        assert!(!never.try_accept());
        assert_eq!(
            never.wait().now_or_never(),
            Some(Err(ThrottleError::NeverAccepts))
        );
        let blocked = {
            let never = Arc::clone(&never);
            std::thread::spawn(move || never.accept())
        };
        never.stop();
        blocked.join().unwrap();
    }
}
