//! What [`DeltaFifo`](crate::DeltaFifo) and [`RealFifo`](crate::RealFifo) share: pop errors,
//! the initial-sync bookkeeping and the wake-up of waiting poppers.

use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{Notify, watch};

/// Why a pop did not hand out deltas.
#[derive(Debug, thiserror::Error)]
pub enum PopError<E> {
    /// The queue was closed and is empty (client-go's `ErrFIFOClosed`).
    #[error("DeltaFIFO: manipulating with closed queue")]
    Closed,
    /// The process function failed; for a [`DeltaFifo`](crate::DeltaFifo), the deltas were
    /// re-queued if it asked for it ([`ProcessError::Requeue`]).
    #[error("processing popped deltas failed")]
    Process(#[source] E),
}

impl<E> PopError<E> {
    /// Whether the queue is closed.
    pub fn is_closed(&self) -> bool {
        matches!(self, PopError::Closed)
    }
}

/// How a [`DeltaFifo`](crate::DeltaFifo) process function fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessError<E> {
    /// Processing failed; the deltas are not re-queued (as in client-go, where the process
    /// function's error is returned by `Pop` and the item is gone).
    Failed(E),
    /// Put the deltas back at the end of the queue, unless new deltas arrived for the key
    /// meanwhile (client-go's `ErrRequeue`, removed from client-go in v1.33 but asked for
    /// here): `pop` then returns the inner error, or the deltas when there is none.
    Requeue(Option<E>),
}

/// The initial-sync bookkeeping of client-go's queues: synced once populated (by a first
/// `replace`, or by any other write first) and every item of the first `replace` popped.
pub(crate) struct SyncState {
    pub(crate) populated: bool,
    pub(crate) initial_population_count: usize,
    pub(crate) synced: bool,
}

impl SyncState {
    pub(crate) fn new() -> SyncState {
        SyncState {
            populated: false,
            initial_population_count: 0,
            synced: false,
        }
    }

    /// client-go's `checkSynced_locked`: flips `synced` once and tells the watchers.
    pub(crate) fn check(&mut self, signal: &watch::Sender<bool>) {
        if self.populated && self.initial_population_count == 0 && !self.synced {
            self.synced = true;
            signal.send_replace(true);
        }
    }

    /// Marks the queue populated by a write other than the first `replace`.
    pub(crate) fn populate(&mut self, signal: &watch::Sender<bool>) {
        self.populated = true;
        self.check(signal);
    }
}

/// Waits until `synced` is true.
pub(crate) async fn wait_synced(signal: &watch::Sender<bool>) {
    let mut rx = signal.subscribe();
    // The sender lives as long as the queue, so this cannot fail while we hold `signal`.
    let _ = rx.wait_for(|synced| *synced).await;
}

/// Wakes waiting poppers: a tokio [`Notify`] plus a count of the poppers waiting, so a write
/// with nobody waiting skips the notification.
pub(crate) struct Wakeup {
    notify: Notify,
    waiting: AtomicUsize,
}

/// Counts a popper as waiting for as long as it lives (a dropped pop future included).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Wakeup {
    pub(crate) fn new() -> Wakeup {
        Wakeup {
            notify: Notify::new(),
            waiting: AtomicUsize::new(0),
        }
    }

    /// Wakes one waiting popper, if any. Call it after queuing, under the queue lock: a popper
    /// counts itself as waiting before it takes that lock to look at the queue, so either it
    /// sees the new item or this sees it waiting.
    pub(crate) fn wake_one(&self) {
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.notify.notify_one();
        }
    }

    /// Wakes every waiting popper (on close).
    pub(crate) fn wake_all(&self) {
        self.notify.notify_waiters();
    }

    /// Runs `attempt` (which takes the queue lock) until it returns `Some`, waiting without
    /// spinning in between: the popper registers its waiter and counts itself as waiting
    /// before `attempt` looks at the queue, so a wake-up sent after the look is never lost.
    pub(crate) async fn wait_until<T>(&self, mut attempt: impl FnMut() -> Option<T>) -> T {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        loop {
            let mut notified = pin!(self.notify.notified());
            notified.as_mut().enable();
            if let Some(out) = attempt() {
                return out;
            }
            notified.await;
        }
    }
}
