//! Where background work runs, and a small `block_on` for the blocking API.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use tokio::runtime::Handle;

use crate::error::Error;

/// Runs a queue's background futures (the delaying queue's waiting loop, the metrics updater).
///
/// Inside a tokio runtime (or with a handle given to the builder) they are tokio tasks. A queue
/// built outside any runtime runs each background future on a dedicated thread with its own
/// current-thread runtime, so that the blocking API works without tokio anywhere else.
#[derive(Debug, Clone)]
pub(crate) enum Spawner {
    Runtime(Handle),
    Thread,
}

impl Spawner {
    /// The given handle, else the current runtime, else a thread per background future.
    pub(crate) fn new(handle: Option<Handle>) -> Spawner {
        match handle.or_else(|| Handle::try_current().ok()) {
            Some(handle) => Spawner::Runtime(handle),
            None => Spawner::Thread,
        }
    }

    /// Starts `future` in the background.
    pub(crate) fn spawn<F>(&self, what: &'static str, future: F) -> Result<(), Error>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match self {
            Spawner::Runtime(handle) => {
                // The task is detached: it ends by itself when its queue shuts down or is dropped.
                drop(handle.spawn(future));
                Ok(())
            }
            Spawner::Thread => std::thread::Builder::new()
                .name(format!("kube-workqueue-{what}"))
                .spawn(move || {
                    match tokio::runtime::Builder::new_current_thread()
                        .enable_time()
                        .build()
                    {
                        Ok(runtime) => runtime.block_on(future),
                        Err(error) => tracing::error!(
                            %error,
                            what,
                            "kube-workqueue: cannot build a runtime for background work"
                        ),
                    }
                })
                .map(drop)
                .map_err(|source| Error::Spawn { what, source }),
        }
    }
}

/// Wakes a parked thread.
struct ThreadWaker(Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Drives `future` to completion on the current thread, parking between polls.
///
/// Used by the `*_blocking` methods; the futures it runs only wait on `tokio::sync::Notify`,
/// which needs no runtime. Never call it from an async task (it would block the executor).
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        // Spurious unparks are harmless: the future is polled again and parks again.
        std::thread::park();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    #[test]
    fn block_on_waits_for_a_notification_from_another_thread() {
        let notify = Arc::new(tokio::sync::Notify::new());
        let notifier = {
            let notify = Arc::clone(&notify);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(2));
                notify.notify_one();
            })
        };
        block_on(notify.notified());
        notifier.join().unwrap();
    }

    #[test]
    fn thread_spawner_runs_futures_outside_any_runtime() {
        let spawner = Spawner::new(None);
        assert!(matches!(spawner, Spawner::Thread));
        let ran = Arc::new(AtomicBool::new(false));
        let done = Arc::new(tokio::sync::Notify::new());
        spawner
            .spawn("test", {
                let ran = Arc::clone(&ran);
                let done = Arc::clone(&done);
                async move {
                    // A tokio timer works: the thread has a runtime with the time driver.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    ran.store(true, Ordering::SeqCst);
                    done.notify_one();
                }
            })
            .unwrap();
        block_on(done.notified());
        assert!(ran.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn runtime_spawner_inside_a_runtime() {
        let spawner = Spawner::new(None);
        assert!(matches!(spawner, Spawner::Runtime(_)));
        let (tx, rx) = tokio::sync::oneshot::channel();
        spawner
            .spawn("test", async move {
                let _ = tx.send(7);
            })
            .unwrap();
        assert_eq!(rx.await.unwrap(), 7);
    }
}
