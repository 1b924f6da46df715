//! An in-memory [`Lock`] with fault injection, for tests and simulations.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kube_flowcontrol::{RealClock, SharedClock};
use parking_lot::Mutex;

use crate::lock::{Lock, LockError, Observed};
use crate::record::LeaderElectionRecord;

/// A lock operation, as seen by a [`FaultInjector`] or counted by [`MemoryStore::operations`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// [`Lock::get`].
    Get,
    /// [`Lock::create`].
    Create,
    /// [`Lock::update`].
    Update,
}

/// What happens to one request (see [`Fault`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FaultOutcome {
    /// The request is applied and answered.
    #[default]
    Proceed,
    /// The request fails before reaching the store (nothing is applied).
    Fail,
    /// The request is applied, but its reply is lost: the caller gets an error.
    LoseResponse,
}

/// The fault injected into one request: delays on the way in and out, and its outcome.
///
/// Delays are slept on the store's clock, so with a `FakeClock` they cost no real time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fault {
    /// Time before the request reaches the store.
    pub request_delay: Duration,
    /// What happens at the store.
    pub outcome: FaultOutcome,
    /// Time between the store applying the request and the caller getting the reply.
    pub response_delay: Duration,
}

impl Fault {
    /// No fault: the request is applied and answered at once.
    pub fn none() -> Fault {
        Fault::default()
    }

    /// The request fails without being applied.
    pub fn fail() -> Fault {
        Fault {
            outcome: FaultOutcome::Fail,
            ..Fault::default()
        }
    }

    /// The request is applied but the reply is lost.
    pub fn lose_response() -> Fault {
        Fault {
            outcome: FaultOutcome::LoseResponse,
            ..Fault::default()
        }
    }

    /// Sets the delay before the request is applied.
    pub fn request_delay(mut self, delay: Duration) -> Fault {
        self.request_delay = delay;
        self
    }

    /// Sets the delay between applying the request and answering it.
    pub fn response_delay(mut self, delay: Duration) -> Fault {
        self.response_delay = delay;
        self
    }
}

/// Decides the [`Fault`] of each request to a [`MemoryStore`].
///
/// Implemented for closures `Fn(&str, Operation) -> Fault` (the candidate's identity and the
/// operation).
pub trait FaultInjector: Send + Sync {
    /// The fault for `identity`'s next `operation`.
    fn inject(&self, identity: &str, operation: Operation) -> Fault;
}

impl<F> FaultInjector for F
where
    F: Fn(&str, Operation) -> Fault + Send + Sync,
{
    fn inject(&self, identity: &str, operation: Operation) -> Fault {
        self(identity, operation)
    }
}

/// A write applied to a [`MemoryStore`], as reported to its write observer.
#[derive(Debug, Clone)]
pub struct WriteEvent {
    /// Who wrote.
    pub identity: String,
    /// [`Operation::Create`] or [`Operation::Update`].
    pub operation: Operation,
    /// The record written.
    pub record: LeaderElectionRecord,
    /// When it was applied, on the store's clock.
    pub at: Instant,
}

/// How many requests of each kind a candidate sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OperationCounts {
    /// Gets.
    pub gets: u64,
    /// Creates.
    pub creates: u64,
    /// Updates.
    pub updates: u64,
}

impl OperationCounts {
    /// All requests.
    pub fn total(&self) -> u64 {
        self.gets + self.creates + self.updates
    }
}

/// A function told about every applied write ([`MemoryStore::set_write_observer`]).
pub type WriteObserver = Arc<dyn Fn(&WriteEvent) + Send + Sync>;

/// The shared state behind [`MemoryLock`]s: one record with a version counter.
///
/// Every candidate gets its own [`MemoryLock`] handle from [`lock`](MemoryStore::lock); the
/// store counts each candidate's requests and can inject faults into them.
///
/// ```
/// use kube_leader::{Lock, LeaderElectionRecord, MemoryStore};
///
/// # futures_executor::block_on(async {
/// let store = MemoryStore::new("default/demo");
/// let a = store.lock("a");
/// let b = store.lock("b");
/// let record = LeaderElectionRecord { holder_identity: "a".into(), ..Default::default() };
/// let version = a.create(&record).await.unwrap();
/// let seen = b.get().await.unwrap().unwrap();
/// assert_eq!(seen.record.holder_identity, "a");
/// a.update(&version, &record).await.unwrap();
/// // b read the record before a's update: its update is a conflict.
/// assert!(b.update(&seen.version, &record).await.unwrap_err().is_conflict());
/// # });
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<StoreInner>,
}

struct StoreInner {
    name: String,
    clock: SharedClock,
    state: Mutex<StoreState>,
}

#[derive(Default)]
struct StoreState {
    object: Option<(LeaderElectionRecord, u64)>,
    next_version: u64,
    counts: HashMap<String, OperationCounts>,
    faults: Option<Arc<dyn FaultInjector>>,
    observer: Option<WriteObserver>,
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.state.lock();
        f.debug_struct("MemoryStore")
            .field("name", &self.inner.name)
            .field("record", &state.object)
            .finish_non_exhaustive()
    }
}

impl MemoryStore {
    /// An empty store named `name` (what [`Lock::describe`] returns), sleeping injected delays
    /// on the real clock.
    pub fn new(name: impl Into<String>) -> MemoryStore {
        MemoryStore::with_clock(name, RealClock::shared())
    }

    /// An empty store whose injected delays and write times use `clock`.
    pub fn with_clock(name: impl Into<String>, clock: SharedClock) -> MemoryStore {
        MemoryStore {
            inner: Arc::new(StoreInner {
                name: name.into(),
                clock,
                state: Mutex::new(StoreState {
                    next_version: 1,
                    ..StoreState::default()
                }),
            }),
        }
    }

    /// A lock handle for the candidate `identity`.
    pub fn lock(&self, identity: impl Into<String>) -> MemoryLock {
        MemoryLock {
            store: self.clone(),
            identity: identity.into(),
        }
    }

    /// Installs (or, with `None`, removes) the fault injector consulted before every request.
    pub fn set_faults(&self, faults: Option<Arc<dyn FaultInjector>>) {
        self.inner.state.lock().faults = faults;
    }

    /// Installs a function called (outside the store's lock) after every applied write.
    pub fn set_write_observer(&self, observer: Option<WriteObserver>) {
        self.inner.state.lock().observer = observer;
    }

    /// The current record, if the lock object exists.
    pub fn record(&self) -> Option<LeaderElectionRecord> {
        self.inner
            .state
            .lock()
            .object
            .as_ref()
            .map(|(r, _)| r.clone())
    }

    /// Writes `record` directly (creating the object if needed), as an administrator would;
    /// returns the new version.
    pub fn force(&self, record: LeaderElectionRecord) -> u64 {
        let mut state = self.inner.state.lock();
        let version = state.next_version;
        state.next_version += 1;
        state.object = Some((record, version));
        version
    }

    /// Deletes the lock object.
    pub fn delete(&self) {
        self.inner.state.lock().object = None;
    }

    /// The requests `identity` sent so far.
    pub fn operations(&self, identity: &str) -> OperationCounts {
        self.inner
            .state
            .lock()
            .counts
            .get(identity)
            .copied()
            .unwrap_or_default()
    }

    fn fault(&self, identity: &str, operation: Operation) -> Fault {
        let faults = self.inner.state.lock().faults.clone();
        faults.map_or_else(Fault::none, |f| f.inject(identity, operation))
    }

    async fn request<T>(
        &self,
        identity: &str,
        operation: Operation,
        apply: impl FnOnce(&mut StoreState, &str) -> Result<(T, Option<WriteEvent>), LockError>,
    ) -> Result<T, LockError> {
        let fault = self.fault(identity, operation);
        if !fault.request_delay.is_zero() {
            self.inner.clock.sleep(fault.request_delay).await;
        }
        let (result, observer) = {
            let mut state = self.inner.state.lock();
            let counts = state.counts.entry(identity.to_string()).or_default();
            match operation {
                Operation::Get => counts.gets += 1,
                Operation::Create => counts.creates += 1,
                Operation::Update => counts.updates += 1,
            }
            if fault.outcome == FaultOutcome::Fail {
                return Err(self.unavailable("injected failure: the request was not applied"));
            }
            (apply(&mut state, &self.inner.name), state.observer.clone())
        };
        let result = match result {
            Ok((value, write)) => {
                if let (Some(write), Some(observer)) = (write, observer) {
                    observer(&write);
                }
                Ok(value)
            }
            Err(e) => Err(e),
        };
        if !fault.response_delay.is_zero() {
            self.inner.clock.sleep(fault.response_delay).await;
        }
        if fault.outcome == FaultOutcome::LoseResponse {
            return Err(self
                .unavailable("injected failure: the request was applied but its reply was lost"));
        }
        result
    }

    fn unavailable(&self, reason: &str) -> LockError {
        LockError::Unavailable {
            lock: self.inner.name.clone(),
            reason: reason.to_string(),
        }
    }
}

/// One candidate's handle on a [`MemoryStore`]: a [`Lock`] whose version is a counter.
#[derive(Debug, Clone)]
pub struct MemoryLock {
    store: MemoryStore,
    identity: String,
}

impl MemoryLock {
    /// The store behind this lock.
    pub fn store(&self) -> &MemoryStore {
        &self.store
    }
}

impl Lock for MemoryLock {
    type Version = u64;

    async fn get(&self) -> Result<Option<Observed<u64>>, LockError> {
        self.store
            .request(&self.identity, Operation::Get, |state, _| {
                let observed = state.object.as_ref().map(|(record, version)| Observed {
                    raw: record.raw(),
                    record: record.clone(),
                    version: *version,
                });
                Ok((observed, None))
            })
            .await
    }

    async fn create(&self, record: &LeaderElectionRecord) -> Result<u64, LockError> {
        let at = self.store.inner.clock.now();
        self.store
            .request(&self.identity, Operation::Create, |state, name| {
                if state.object.is_some() {
                    return Err(LockError::AlreadyExists {
                        lock: name.to_string(),
                    });
                }
                let version = state.next_version;
                state.next_version += 1;
                state.object = Some((record.clone(), version));
                let write = write_event(&self.identity, Operation::Create, record, at);
                Ok((version, Some(write)))
            })
            .await
    }

    async fn update(&self, version: &u64, record: &LeaderElectionRecord) -> Result<u64, LockError> {
        let clock = self.store.inner.clock.clone();
        self.store
            .request(&self.identity, Operation::Update, |state, name| {
                let current = match &state.object {
                    None => {
                        return Err(LockError::NotFound {
                            lock: name.to_string(),
                        });
                    }
                    Some((_, current)) => *current,
                };
                if current != *version {
                    return Err(LockError::Conflict {
                        lock: name.to_string(),
                    });
                }
                let next = state.next_version;
                state.next_version += 1;
                state.object = Some((record.clone(), next));
                let write = write_event(&self.identity, Operation::Update, record, clock.now());
                Ok((next, Some(write)))
            })
            .await
    }

    fn identity(&self) -> &str {
        &self.identity
    }

    fn describe(&self) -> String {
        self.store.inner.name.clone()
    }
}

fn write_event(
    identity: &str,
    operation: Operation,
    record: &LeaderElectionRecord,
    at: Instant,
) -> WriteEvent {
    WriteEvent {
        identity: identity.to_string(),
        operation,
        record: record.clone(),
        at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_executor::block_on;

    fn held_by(holder: &str) -> LeaderElectionRecord {
        LeaderElectionRecord {
            holder_identity: holder.into(),
            lease_duration_seconds: 15,
            ..Default::default()
        }
    }

    #[test]
    fn create_get_update_with_versions() {
        block_on(async {
            let store = MemoryStore::new("ns/lock");
            let a = store.lock("a");
            assert!(a.get().await.unwrap().is_none());
            assert!(
                a.update(&1, &held_by("a"))
                    .await
                    .unwrap_err()
                    .is_not_found()
            );
            let v1 = a.create(&held_by("a")).await.unwrap();
            assert!(
                a.create(&held_by("a"))
                    .await
                    .unwrap_err()
                    .is_already_exists()
            );
            let seen = a.get().await.unwrap().unwrap();
            assert_eq!(seen.version, v1);
            let v2 = a.update(&v1, &held_by("a")).await.unwrap();
            assert_ne!(v1, v2);
            assert!(
                a.update(&v1, &held_by("a"))
                    .await
                    .unwrap_err()
                    .is_conflict()
            );
            assert_eq!(
                store.operations("a"),
                OperationCounts {
                    gets: 2,
                    creates: 2,
                    updates: 3
                }
            );
        });
    }

    #[test]
    fn injected_failures_and_lost_replies() {
        block_on(async {
            let store = MemoryStore::new("ns/lock");
            let a = store.lock("a");
            let v1 = a.create(&held_by("a")).await.unwrap();
            store.set_faults(Some(Arc::new(|_: &str, op: Operation| {
                if op == Operation::Update {
                    Fault::lose_response()
                } else {
                    Fault::fail()
                }
            })));
            let err = a.get().await.unwrap_err();
            assert!(matches!(err, LockError::Unavailable { .. }));
            // The update is applied although the caller sees an error.
            let mut renewed = held_by("a");
            renewed.leader_transitions = 7;
            assert!(a.update(&v1, &renewed).await.is_err());
            assert_eq!(store.record().unwrap().leader_transitions, 7);
            store.set_faults(None);
            assert!(a.update(&v1, &renewed).await.unwrap_err().is_conflict());
        });
    }

    #[test]
    fn write_observer_sees_applied_writes_only() {
        block_on(async {
            let store = MemoryStore::new("ns/lock");
            let seen = Arc::new(Mutex::new(Vec::new()));
            store.set_write_observer(Some(Arc::new({
                let seen = seen.clone();
                move |w: &WriteEvent| seen.lock().push(w.identity.clone())
            })));
            let a = store.lock("a");
            let b = store.lock("b");
            let v = a.create(&held_by("a")).await.unwrap();
            assert!(b.create(&held_by("b")).await.is_err());
            b.update(&v, &held_by("b")).await.unwrap();
            assert_eq!(*seen.lock(), vec!["a".to_string(), "b".to_string()]);
        });
    }
}
