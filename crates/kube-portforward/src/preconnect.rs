//! The spare connection of a forwarder ([`PortForwarderBuilder::preconnect`]): one connection
//! to the server opened ahead of time ([`Dialer::prepare`]: TCP and TLS, no request), taken
//! by the next stream opened, and replaced behind it.
//!
//! [`PortForwarderBuilder::preconnect`]: crate::PortForwarderBuilder::preconnect

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::FutureExt as _;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::dialer::{Dialer, Prepared};

/// How long a spare connection waits unused before it is replaced by a new one. kube-apiserver
/// closes a connection that sent no request header within 32 s (its `ReadHeaderTimeout`).
pub(crate) const MAX_IDLE: Duration = Duration::from_secs(25);
/// How long after a spare was taken the next one is opened: opened at once, its TLS handshake
/// competes with the stream's own upgrade and first exchange for the CPU (as `warm_streams`
/// found). A stream opened meanwhile dials its own connection.
const REFILL_DELAY: Duration = Duration::from_millis(5);

enum State {
    /// No spare, none being opened: the last one was taken (the next is opened shortly), or
    /// opening it failed (the next stream asks for one again).
    Empty,
    /// One is being opened.
    Opening,
    /// One is ready.
    Ready(Prepared),
    /// The dialer cannot prepare connections.
    Unsupported,
}

/// One spare connection, kept by a background task that a stopped forwarder (or a dropped
/// one: see `stop`) ends.
pub(crate) struct Spare {
    dialer: Arc<dyn Dialer>,
    state: Mutex<State>,
    /// State changes, for streams waiting for the connection being opened.
    changed: Notify,
    /// A spare was taken (or is wanted): open another.
    wanted: Notify,
    started: AtomicBool,
    stop: CancellationToken,
    max_idle: Duration,
}

impl Spare {
    /// A spare for `dialer`, kept until `stop` is cancelled.
    pub(crate) fn new(
        dialer: Arc<dyn Dialer>,
        stop: CancellationToken,
        max_idle: Duration,
    ) -> Spare {
        Spare {
            dialer,
            state: Mutex::new(State::Empty),
            changed: Notify::new(),
            wanted: Notify::new(),
            started: AtomicBool::new(false),
            stop,
            max_idle,
        }
    }

    /// Starts keeping a spare (once; later calls do nothing). Needs a Tokio runtime.
    pub(crate) fn start(self: &Arc<Self>) {
        if self.started.swap(true, Ordering::AcqRel) || self.stop.is_cancelled() {
            return;
        }
        // Streams opened before the task runs wait for its connection.
        self.set(State::Opening);
        tokio::spawn(Arc::clone(self).keep());
    }

    /// The spare connection, if one is ready, or the one being opened once it is; `None`
    /// when there is none (opening the last one failed: the caller dials its own, and
    /// another spare is opened behind it), or when stopped.
    pub(crate) async fn take(self: &Arc<Self>) -> Option<Prepared> {
        self.start();
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            {
                let mut state = self.state.lock();
                // Taking one, or finding none, has the task open another shortly; a stream
                // that comes before it is being opened dials its own.
                match std::mem::replace(&mut *state, State::Empty) {
                    State::Ready(prepared) => {
                        self.wanted.notify_one();
                        return Some(prepared);
                    }
                    State::Empty => {
                        self.wanted.notify_one();
                        return None;
                    }
                    State::Unsupported => {
                        *state = State::Unsupported;
                        return None;
                    }
                    State::Opening => *state = State::Opening,
                }
            }
            tokio::select! {
                _ = self.stop.cancelled() => return None,
                _ = changed => {}
            }
        }
    }

    fn set(&self, state: State) {
        *self.state.lock() = state;
        self.changed.notify_waiters();
    }

    /// Opens a spare, waits until it is taken or too old, and again, until stopped. A failure
    /// is logged and the next stream asks again (there is no retry loop).
    async fn keep(self: Arc<Self>) {
        loop {
            self.set(State::Opening);
            let Some(prepare) = self.dialer.prepare() else {
                self.set(State::Unsupported);
                return;
            };
            let prepared = tokio::select! {
                _ = self.stop.cancelled() => break,
                prepared = prepare => prepared,
            };
            let opened = prepared.is_ok();
            match prepared {
                Ok(prepared) => self.set(State::Ready(prepared)),
                Err(error) => {
                    tracing::debug!(%error, "opening a spare connection failed");
                    self.set(State::Empty);
                }
            }
            // A stream that found no spare while this one was being opened asked for one:
            // this is it.
            let _ = self.wanted.notified().now_or_never();
            let idle = async {
                if opened {
                    tokio::time::sleep(self.max_idle).await;
                } else {
                    std::future::pending::<()>().await;
                }
            };
            let refill = async {
                self.wanted.notified().await;
                tokio::time::sleep(REFILL_DELAY).await;
            };
            tokio::select! {
                _ = self.stop.cancelled() => break,
                () = refill => {}
                () = idle => tracing::trace!("replacing the idle spare connection"),
            }
        }
        // Close the spare now rather than when the forwarder is dropped.
        self.set(State::Empty);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialer::{BoxFuture, Upgraded};
    use crate::error::DialError;
    use std::sync::atomic::AtomicUsize;

    /// Counts preparations; a prepared connection is its number.
    #[derive(Default)]
    struct Counting {
        prepared: AtomicUsize,
        attempts: AtomicUsize,
        fail: AtomicBool,
    }

    impl Dialer for Counting {
        fn dial<'a>(
            &'a self,
            _port: u16,
            _protocols: &'a [&'a str],
        ) -> BoxFuture<'a, Result<Upgraded, DialError>> {
            Box::pin(async {
                Err(DialError::Protocol {
                    offered: String::new(),
                    selected: String::new(),
                })
            })
        }

        fn prepare(&self) -> Option<BoxFuture<'_, Result<Prepared, DialError>>> {
            Some(Box::pin(async {
                self.attempts.fetch_add(1, Ordering::Relaxed);
                if self.fail.load(Ordering::Relaxed) {
                    return Err(DialError::Protocol {
                        offered: String::new(),
                        selected: String::new(),
                    });
                }
                Ok(Prepared::new(
                    self.prepared.fetch_add(1, Ordering::Relaxed) + 1,
                ))
            }))
        }
    }

    fn number(prepared: Option<Prepared>) -> Option<usize> {
        prepared.map(|p| p.downcast::<usize>().ok().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn a_spare_is_taken_replaced_and_recycled_when_idle() {
        let dialer = Arc::new(Counting::default());
        let stop = CancellationToken::new();
        let spare = Arc::new(Spare::new(dialer.clone(), stop.clone(), MAX_IDLE));
        // The first take waits for the connection being opened.
        assert_eq!(number(spare.take().await), Some(1));
        // The next one is opened shortly after; a stream before that dials its own.
        assert_eq!(number(spare.take().await), None);
        tokio::time::sleep(REFILL_DELAY * 2).await;
        assert_eq!(number(spare.take().await), Some(2));
        tokio::time::sleep(REFILL_DELAY * 2).await;
        assert_eq!(dialer.prepared.load(Ordering::Relaxed), 3);
        // Unused for too long: replaced.
        tokio::time::sleep(MAX_IDLE + Duration::from_secs(1)).await;
        assert_eq!(dialer.prepared.load(Ordering::Relaxed), 4);
        assert_eq!(number(spare.take().await), Some(4));
        stop.cancel();
        assert_eq!(number(spare.take().await), None);
    }

    #[tokio::test(start_paused = true)]
    async fn after_a_failure_the_next_take_asks_again() {
        let dialer = Arc::new(Counting::default());
        dialer.fail.store(true, Ordering::Relaxed);
        let spare = Arc::new(Spare::new(
            dialer.clone(),
            CancellationToken::new(),
            MAX_IDLE,
        ));
        // The first attempt failed; this stream asked again.
        assert_eq!(number(spare.take().await), None);
        // That attempt fails too, and nothing more is tried: no retry loop.
        tokio::time::sleep(MAX_IDLE * 2).await;
        assert_eq!(dialer.attempts.load(Ordering::Relaxed), 2);
        dialer.fail.store(false, Ordering::Relaxed);
        assert_eq!(number(spare.take().await), None);
        tokio::time::sleep(REFILL_DELAY * 2).await;
        assert_eq!(number(spare.take().await), Some(1));
    }

    #[tokio::test]
    async fn a_dialer_without_prepare_gets_no_spare() {
        struct Plain;
        impl Dialer for Plain {
            fn dial<'a>(
                &'a self,
                _port: u16,
                _protocols: &'a [&'a str],
            ) -> BoxFuture<'a, Result<Upgraded, DialError>> {
                Box::pin(std::future::pending())
            }
        }
        let spare = Arc::new(Spare::new(
            Arc::new(Plain),
            CancellationToken::new(),
            MAX_IDLE,
        ));
        assert!(spare.take().await.is_none());
        assert!(spare.take().await.is_none());
    }
}
