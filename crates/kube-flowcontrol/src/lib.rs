//! Flow control for Kubernetes controllers, in async Rust.
//!
//! One small crate for what client-go spreads over `k8s.io/utils/clock`,
//! `golang.org/x/time/rate`, `client-go/util/flowcontrol`, `apimachinery/pkg/util/wait` and
//! `client-go/util/retry`:
//!
//! | module | what it is | Go counterpart |
//! | --- | --- | --- |
//! | [`clock`] | [`Clock`] trait, [`RealClock`] on tokio, [`FakeClock`] for tests, [`Ticker`](clock::Ticker) | `k8s.io/utils/clock` |
//! | [`rate`] | token bucket [`Limiter`] with reservations | `golang.org/x/time/rate` |
//! | [`throttle`] | client-side throttles ([`throttle::RateLimiter`]) | `flowcontrol.RateLimiter` |
//! | [`backoff`] | per-key exponential backoff ([`PerKeyBackoff`]) | `flowcontrol.Backoff` |
//! | [`wait`] | `until`, `poll`, exponential backoff, backoff managers | `wait` |
//! | [`retry`] | `on_error`, `retry_on_conflict` | `retry` |
//!
//! Everything time-dependent takes a [`Clock`], so tests step a [`FakeClock`] and run in
//! microseconds instead of sleeping:
//!
//! ```
//! use std::time::Duration;
//! use kube_flowcontrol::{Clock, FakeClock, Limit, Limiter};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let clock = FakeClock::new();
//! let limiter = Limiter::with_clock(Limit::per_second(1.0), 1, clock.shared());
//! limiter.wait().await.unwrap(); // the bucket starts full
//!
//! let waiter = tokio::spawn({
//!     let clock = clock.clone();
//!     async move {
//!         let limiter = Limiter::with_clock(Limit::per_second(1.0), 1, clock.shared());
//!         limiter.wait().await.unwrap();
//!         limiter.wait().await.unwrap(); // waits one (fake) second
//!     }
//! });
//! clock.wait_for_waiters(1).await;
//! clock.step(Duration::from_secs(1));
//! waiter.await.unwrap();
//! # }
//! ```
//!
//! # Where this crate differs from Go, and why
//!
//! * Cancellation is by [`CancellationToken`](tokio_util::sync::CancellationToken) or by dropping
//!   a future, not by `context.Context`. Dropping [`Limiter::wait_n`] gives its tokens back, as a
//!   cancelled context does in Go.
//! * Go's `Timer` (with `Reset`/`Stop`) is a [`Sleep`](clock::Sleep) future: drop it to stop it,
//!   create another to reset it. [`BackoffManager`](wait::BackoffManager) hands out durations
//!   rather than timers for the same reason.
//! * [`retry::on_error`] runs the operation once when the backoff has zero steps (Go returns
//!   success without running it) because the caller needs the operation's value.
//! * [`wait`] functions report a cancelled `_with_cancel` wait as
//!   [`WaitError::Cancelled`](wait::WaitError::Cancelled); the `poll_*` family reports
//!   cancellation as a timeout, exactly like Go.
//! * Panics in user callbacks are not caught (`runtime.HandleCrash` re-panics by default too).

pub mod backoff;
pub mod clock;
pub mod rate;
pub mod retry;
pub mod throttle;
pub mod wait;

pub use backoff::PerKeyBackoff;
pub use clock::{Clock, FakeClock, RealClock, SharedClock};
pub use rate::{Limit, Limiter, Reservation};
pub use throttle::{RateLimiter, TokenBucketRateLimiter};
