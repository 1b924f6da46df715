//! The listeners of one informer and the distribution of notifications to them (client-go's
//! `sharedProcessor`).

use std::future::poll_fn;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use kube_apimachinery::Object;
use kube_flowcontrol::clock::SharedClock;
use parking_lot::{Mutex, RwLock};
use tokio::runtime::Handle;
use tokio_util::task::TaskTracker;

use crate::informer::handler::InformerEvent;
use crate::informer::listener::Listener;

/// How long a handler rests after a panic before its next notification (client-go's
/// `wait.Until(..., 1*time.Second, ...)` around `processorListener.run`).
const PANIC_PAUSE: Duration = Duration::from_secs(1);

struct Entry<K> {
    listener: Arc<Listener<K>>,
    /// Whether sync notifications go to this listener (client-go's map value, recomputed by
    /// `shouldResync`; true at first).
    syncing: AtomicBool,
}

struct State<K> {
    listeners: Vec<Entry<K>>,
    /// The runtime the listener tasks run on, while started (client-go's `listenersStarted`).
    runtime: Option<Handle>,
}

/// The shared part of a processor; registrations keep a weak reference to it.
pub(crate) struct ProcessorShared<K> {
    state: RwLock<State<K>>,
    /// Held while a batch of deltas updates the store and is distributed, and while a handler
    /// joins or leaves: a late handler sees each change either in its initial list or as a
    /// notification, never both nor neither (client-go's `blockDeltas`).
    pub(crate) block_deltas: Mutex<()>,
    pub(crate) clock: SharedClock,
    tasks: TaskTracker,
    next_id: AtomicU64,
    distributed: AtomicU64,
}

/// A handle on a processor.
pub(crate) struct Processor<K> {
    pub(crate) shared: Arc<ProcessorShared<K>>,
}

impl<K> Clone for Processor<K> {
    fn clone(&self) -> Self {
        Processor {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K: Object + Send + Sync + 'static> Processor<K> {
    pub(crate) fn new(clock: SharedClock) -> Processor<K> {
        Processor {
            shared: Arc::new(ProcessorShared {
                state: RwLock::new(State {
                    listeners: Vec::new(),
                    runtime: None,
                }),
                block_deltas: Mutex::new(()),
                clock,
                tasks: TaskTracker::new(),
                next_id: AtomicU64::new(1),
                distributed: AtomicU64::new(0),
            }),
        }
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.shared.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Registers a listener, and starts its task if the processor runs (client-go's
    /// `addListener`).
    pub(crate) fn add_listener(&self, listener: Arc<Listener<K>>) {
        let mut state = self.shared.state.write();
        if let Some(runtime) = &state.runtime {
            self.spawn(&listener, runtime);
        }
        state.listeners.push(Entry {
            listener,
            syncing: AtomicBool::new(true),
        });
    }

    /// Unregisters and stops a listener; `false` if it was not registered here (client-go's
    /// `removeListener`, which ignores unknown handles).
    pub(crate) fn remove_listener(&self, id: u64) -> bool {
        let removed = {
            let mut state = self.shared.state.write();
            let index = state.listeners.iter().position(|e| e.listener.id == id);
            index.map(|i| state.listeners.swap_remove(i))
        };
        match removed {
            Some(entry) => {
                entry.listener.close();
                true
            }
            None => false,
        }
    }

    pub(crate) fn is_registered(&self, id: u64) -> bool {
        self.shared
            .state
            .read()
            .listeners
            .iter()
            .any(|e| e.listener.id == id)
    }

    pub(crate) fn listener_count(&self) -> usize {
        self.shared.state.read().listeners.len()
    }

    /// Queues a notification for every listener, or for the syncing ones only when `sync`
    /// (client-go's `distribute`).
    pub(crate) fn distribute(&self, event: InformerEvent<K>, sync: bool) {
        let state = self.shared.state.read();
        let mut targets = state
            .listeners
            .iter()
            .filter(|e| !sync || e.syncing.load(Ordering::Relaxed))
            .peekable();
        while let Some(entry) = targets.next() {
            if targets.peek().is_none() {
                // The last one takes the event itself.
                entry.listener.add(event);
                break;
            }
            entry.listener.add(event.clone());
        }
        self.shared.distributed.fetch_add(1, Ordering::Relaxed);
    }

    /// Decides which listeners get the coming resync: each whose resync is due is marked
    /// syncing and scheduled one period later; returns whether any is due (client-go's
    /// `shouldResync`, called by the reflector before each resync).
    pub(crate) fn should_resync(&self) -> bool {
        let state = self.shared.state.write();
        let now = self.shared.clock.now();
        let mut needed = false;
        for entry in &state.listeners {
            let due = entry.listener.should_resync(now);
            entry.syncing.store(due, Ordering::Relaxed);
            if due {
                needed = true;
                entry.listener.determine_next_resync(now);
            }
        }
        needed
    }

    /// Re-derives every listener's period from its requested one after the informer's
    /// resync check period changed (client-go's `resyncCheckPeriodChanged`).
    pub(crate) fn resync_check_period_changed(&self, check: Duration) {
        let state = self.shared.state.read();
        for entry in &state.listeners {
            let period = super::shared::determine_resync_period(
                entry.listener.requested_resync_period(),
                check,
            );
            entry.listener.set_resync_period(period);
        }
    }

    /// Starts the task of every registered handler on `runtime`; later handlers start when
    /// they are added (client-go's `sharedProcessor.run`, first half).
    pub(crate) fn start(&self, runtime: Handle) {
        let mut state = self.shared.state.write();
        for entry in &state.listeners {
            self.spawn(&entry.listener, &runtime);
        }
        state.runtime = Some(runtime);
    }

    /// Stops every listener and waits for their tasks to end; the listeners are forgotten
    /// (client-go's `sharedProcessor.run`, second half).
    pub(crate) async fn stop(&self) {
        let listeners = {
            let mut state = self.shared.state.write();
            state.runtime = None;
            std::mem::take(&mut state.listeners)
        };
        for entry in &listeners {
            entry.listener.close();
        }
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }

    fn spawn(&self, listener: &Arc<Listener<K>>, runtime: &Handle) {
        let Some(handler) = listener.handler() else {
            return; // a stream: its owner polls it
        };
        let listener = Arc::clone(listener);
        let clock = Arc::clone(&self.shared.clock);
        self.shared.tasks.spawn_on(
            async move {
                while let Some(event) = poll_fn(|cx| listener.poll_next(cx)).await {
                    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                        event.dispatch(handler.as_ref());
                    }));
                    listener.finished(&event);
                    if result.is_err() {
                        listener.record_panic();
                        tracing::error!(
                            listener = listener.id,
                            "event handler panicked; the notification is skipped and the next one comes in 1s"
                        );
                        clock.sleep(PANIC_PAUSE).await;
                    }
                }
            },
            runtime,
        );
    }
}
