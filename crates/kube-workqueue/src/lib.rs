//! Work queues for Kubernetes controllers, in async Rust: client-go's `util/workqueue`.
//!
//! A controller's reconcile loop runs on a work queue. Its guarantees are what make controllers
//! correct:
//!
//! * a key is never processed by two workers at once;
//! * a key added many times while it waits is processed once;
//! * a key added again while it is being processed is processed again after `done`.
//!
//! | type | what it adds | client-go |
//! | --- | --- | --- |
//! | [`WorkQueue`] | deduplicating FIFO with processing/dirty tracking, async and blocking `get`, shutdown with drain | `workqueue.Type` |
//! | [`DelayingQueue`] | `add_after(item, delay)` on an injected clock | `DelayingInterface` |
//! | [`RateLimitingQueue`] | `add_rate_limited`, `forget`, `num_requeues` | `RateLimitingInterface` |
//! | [`rate_limiter`] | exponential, fast-slow, token bucket, max-of, with-max-wait, the default controller limiter | `default_rate_limiters.go` |
//! | [`parallelize`] | `parallelize_until(workers, pieces, chunk_size, work, cancel)` | `ParallelizeUntil` |
//! | [`metrics`] | `MetricsProvider` (depth, adds, latency, work duration, unfinished work, retries); a `prometheus-client` provider in `prometheus` (feature `prometheus`) | `metrics.go` |
//!
//! All queues are built by one [`QueueBuilder`] (name, clock, metrics provider, rate limiter)
//! and are cheap handles: clone them into every task.
//!
//! # A controller loop
//!
//! ```
//! use kube_flowcontrol::FakeClock;
//! use kube_workqueue::RateLimitingQueue;
//!
//! async fn reconcile(key: &str) -> Result<(), String> {
//!     if key.ends_with("broken") { Err("boom".into()) } else { Ok(()) }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let clock = FakeClock::new(); // the real clock unless told otherwise
//! let queue = RateLimitingQueue::<String>::builder()
//!     .name("pods")
//!     .clock(clock.shared())
//!     .build();
//! for key in ["default/web", "default/db", "default/broken"] {
//!     queue.add(key.to_string());
//! }
//!
//! let worker = tokio::spawn({
//!     let queue = queue.clone();
//!     async move {
//!         let mut dropped = Vec::new();
//!         while let Some(key) = queue.get().await {
//!             match reconcile(&key).await {
//!                 Ok(()) => queue.forget(&key),
//!                 Err(_) if queue.num_requeues(&key) < 5 => queue.add_rate_limited(key.clone()),
//!                 Err(_) => {
//!                     queue.forget(&key);
//!                     dropped.push(key.clone());
//!                 }
//!             }
//!             queue.done(&key);
//!         }
//!         dropped
//!     }
//! });
//!
//! // The broken key is retried after 5, 10, 20, 40 and 80 ms (of the fake clock)...
//! for _ in 0..5 {
//!     clock.wait_for_waiters(1).await; // the retry waits on the clock
//!     clock.step_to_next_deadline();
//! }
//! while queue.waiting_len() > 0 {
//!     tokio::task::yield_now().await;
//! }
//! // ...then dropped by the worker. Shut down once every key handed out is done.
//! queue.shut_down_with_drain().await;
//! assert_eq!(worker.await.unwrap(), vec!["default/broken".to_string()]);
//! # }
//! ```
//!
//! # Testing with a fake clock
//!
//! Delays run on a [`Clock`](kube_flowcontrol::Clock) from kube-flowcontrol. Give the builder a
//! [`FakeClock`](kube_flowcontrol::FakeClock) and step it: nothing becomes ready early, and
//! everything becomes ready as soon as the clock passes its time.
//!
//! ```
//! use std::time::Duration;
//! use kube_flowcontrol::FakeClock;
//! use kube_workqueue::DelayingQueue;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let clock = FakeClock::new();
//! let queue = DelayingQueue::builder().clock(clock.shared()).build();
//! queue.add_after("later", Duration::from_secs(3600));
//! clock.wait_for_waiters(1).await; // the waiting loop sleeps until the item is ready...
//! clock.step(Duration::from_secs(3599));
//! tokio::task::yield_now().await;
//! assert_eq!(queue.len(), 0); // ...not a second earlier
//! clock.step(Duration::from_secs(1));
//! assert_eq!(queue.get().await, Some("later"));
//! # }
//! ```
//!
//! # Where this crate differs from client-go, and why
//!
//! * `get` is async and returns `Option<T>` (`None` = shut down and empty) instead of
//!   `(item, shutdown)`; [`WorkQueue::get_blocking`] serves non-async callers and
//!   [`WorkQueue::try_get`] never waits. [`WorkQueue::shut_down_with_drain`] is async (with a
//!   `_blocking` twin).
//! * Nothing is lost silently: items added after shutdown are dropped as in Go, but logged
//!   through `tracing` and counted ([`WorkQueue::dropped`]); so are delayed items still waiting
//!   when the queue shuts down, when its last handle is dropped, or when the runtime running its
//!   waiting loop shuts down.
//! * `done` for an item that is not being processed is ignored with a warning; client-go would
//!   queue a dirty item a second time, breaking deduplication.
//! * `add_after` never blocks: client-go's 1000-slot channel to the waiting loop is replaced by
//!   a shared min-heap, and the loop is woken only when a new item is due before its deadline.
//! * [`WorkQueue::get_guarded`] hands out the item in a guard that calls `done` when dropped,
//!   so a worker task that panics or is cancelled never leaves its key processing forever (in
//!   Go a panic ends the process; in tokio it ends only the task).
//! * [`WorkQueue::add_ref`] adds a borrowed key (say `&str` into a `String` queue), copying it
//!   only if the queue does not track it yet; [`WorkQueue::add_all`] adds a batch under one lock.
//! * Background work (waiting loop, metrics updater) runs on tokio tasks that end when the queue
//!   shuts down or its last handle is dropped, rather than goroutines that live until shutdown.
//!   A queue built outside any runtime runs it on a thread of its own. With the real clock, the
//!   runtime needs its time driver (as any tokio timer does).
//! * The default controller rate limiter's token bucket runs on the queue's clock, so it can be
//!   faked too.
//! * [`parallelize::parallelize_until`] treats zero workers as one (Go does no work at all) and
//!   returns the number of pieces that ran; [`parallelize::parallelize_until_async`] is new.
//! * [`metrics::set_provider`] reports a second call as an error (Go ignores it silently).

pub mod builder;
mod delaying;
pub mod error;
pub mod metrics;
pub mod parallelize;
#[cfg(feature = "prometheus")]
pub mod prometheus;
mod queue;
pub mod rate_limiter;
mod rate_limiting;
mod runtime;

pub use builder::QueueBuilder;
pub use delaying::DelayingQueue;
pub use error::Error;
pub use queue::{Processing, WorkQueue};
pub use rate_limiter::{ItemRateLimiter, default_controller_rate_limiter};
pub use rate_limiting::RateLimitingQueue;
