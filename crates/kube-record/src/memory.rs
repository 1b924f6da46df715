//! [`MemorySink`]: an in-memory event store for tests, with fault injection.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::api::events::v1::Event as EventsV1Event;
use kube_apimachinery::{Object, reason_for_code};
use kube_flowcontrol::{RealClock, SharedClock};
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::patch::apply_merge_patch;
use crate::sink::{EventSink, SinkError};

/// A sink operation, for fault injection and call counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SinkOp {
    /// `create`.
    Create,
    /// `update`.
    Update,
    /// `patch`.
    Patch,
}

/// How many calls a [`MemorySink`] received (both event APIs together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkCalls {
    /// `create` calls.
    pub create: u64,
    /// `update` calls.
    pub update: u64,
    /// `patch` calls.
    pub patch: u64,
    /// Calls that failed (injected or not).
    pub failed: u64,
}

type MakeError = Arc<dyn Fn() -> SinkError + Send + Sync>;

struct FaultRule {
    op: Option<SinkOp>,
    remaining: usize,
    make: MakeError,
}

#[derive(Default)]
struct State {
    core: BTreeMap<(String, String), Event>,
    events_v1: BTreeMap<(String, String), EventsV1Event>,
    next_resource_version: u64,
    faults: Vec<FaultRule>,
    latency: Option<Duration>,
    calls: SinkCalls,
}

struct Inner {
    state: Mutex<State>,
    changed: tokio::sync::watch::Sender<u64>,
    clock: SharedClock,
}

/// An in-memory store of core/v1 and events.k8s.io/v1 events that behaves like the API server
/// for what the recorders do (names unique per namespace, `AlreadyExists`, `NotFound`,
/// resourceVersions, strategic-merge patches of the fields events change), with fault
/// injection: fail the next calls with a status, or slow every call down.
///
/// Clones share the same store.
///
/// ```
/// use kube_record::{MemorySink, SinkOp};
///
/// let sink = MemorySink::new();
/// sink.fail_next(Some(SinkOp::Create), 3, 500); // the next 3 creates answer 500
/// assert!(sink.events().is_empty());
/// ```
#[derive(Clone)]
pub struct MemorySink {
    inner: Arc<Inner>,
}

impl fmt::Debug for MemorySink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.inner.state.lock();
        f.debug_struct("MemorySink")
            .field("core_events", &state.core.len())
            .field("events_v1", &state.events_v1.len())
            .field("calls", &state.calls)
            .finish_non_exhaustive()
    }
}

impl Default for MemorySink {
    fn default() -> Self {
        MemorySink::new()
    }
}

impl MemorySink {
    /// An empty sink whose latency (if any) is spent on the real clock.
    pub fn new() -> MemorySink {
        MemorySink::with_clock(RealClock::shared())
    }

    /// An empty sink whose latency is spent on `clock`.
    pub fn with_clock(clock: SharedClock) -> MemorySink {
        MemorySink {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                changed: tokio::sync::watch::Sender::new(0),
                clock,
            }),
        }
    }

    /// Makes the next `count` calls of `op` (any operation if `None`) fail with an error
    /// `Status` of this code (reason from the code, as the API server's).
    pub fn fail_next(&self, op: Option<SinkOp>, count: usize, code: u16) {
        self.fail_next_with(op, count, move || {
            SinkError::status(code, reason_for_code(code), "injected failure")
        });
    }

    /// Makes the next `count` calls of `op` (any operation if `None`) fail with the error
    /// `make` returns.
    pub fn fail_next_with(
        &self,
        op: Option<SinkOp>,
        count: usize,
        make: impl Fn() -> SinkError + Send + Sync + 'static,
    ) {
        self.inner.state.lock().faults.push(FaultRule {
            op,
            remaining: count,
            make: Arc::new(make),
        });
    }

    /// Delays every call by `latency` on the sink's clock (`None` removes the delay).
    pub fn set_latency(&self, latency: Option<Duration>) {
        self.inner.state.lock().latency = latency;
    }

    /// The stored core/v1 events, ordered by namespace and name.
    pub fn events(&self) -> Vec<Event> {
        self.inner.state.lock().core.values().cloned().collect()
    }

    /// The stored core/v1 event with this namespace and name.
    pub fn event(&self, namespace: &str, name: &str) -> Option<Event> {
        self.inner
            .state
            .lock()
            .core
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// The stored events.k8s.io/v1 events, ordered by namespace and name.
    pub fn events_v1(&self) -> Vec<EventsV1Event> {
        self.inner
            .state
            .lock()
            .events_v1
            .values()
            .cloned()
            .collect()
    }

    /// How many calls the sink received.
    pub fn calls(&self) -> SinkCalls {
        self.inner.state.lock().calls
    }

    /// Waits until `condition` holds for the sink (checked after every change).
    pub async fn wait_until(&self, mut condition: impl FnMut(&MemorySink) -> bool) {
        let mut changes = self.inner.changed.subscribe();
        loop {
            if condition(self) {
                return;
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Latency, then an injected failure if one is armed for `op`.
    async fn before_call(&self, op: SinkOp) -> Result<(), SinkError> {
        let latency = {
            let mut state = self.inner.state.lock();
            match op {
                SinkOp::Create => state.calls.create += 1,
                SinkOp::Update => state.calls.update += 1,
                SinkOp::Patch => state.calls.patch += 1,
            }
            state.latency
        };
        if let Some(latency) = latency {
            self.inner.clock.sleep(latency).await;
        }
        let mut state = self.inner.state.lock();
        let Some(index) = state
            .faults
            .iter()
            .position(|rule| rule.remaining > 0 && rule.op.is_none_or(|o| o == op))
        else {
            return Ok(());
        };
        let rule = &mut state.faults[index];
        rule.remaining -= 1;
        let error = (rule.make)();
        if rule.remaining == 0 {
            state.faults.remove(index);
        }
        Err(error)
    }

    fn finish<T>(&self, result: Result<T, SinkError>) -> Result<T, SinkError> {
        if result.is_err() {
            self.inner.state.lock().calls.failed += 1;
        }
        self.inner.changed.send_modify(|version| *version += 1);
        result
    }

    async fn call<K, F>(&self, op: SinkOp, apply: F) -> Result<K, SinkError>
    where
        F: FnOnce(&mut State) -> Result<K, SinkError>,
    {
        let result = match self.before_call(op).await {
            Ok(()) => apply(&mut self.inner.state.lock()),
            Err(error) => Err(error),
        };
        self.finish(result)
    }
}

/// Where an object goes: its namespace (required) and name.
fn key_of<K: Object>(object: &K) -> Result<(String, String), SinkError> {
    let Some(namespace) = object.namespace() else {
        return Err(SinkError::Request {
            message: "an event needs a namespace".into(),
        });
    };
    if object.name().is_empty() {
        return Err(SinkError::status(
            422,
            "Invalid",
            "metadata.name: Required value: name or generateName is required",
        ));
    }
    Ok((namespace.to_string(), object.name().to_string()))
}

fn not_found(key: &(String, String)) -> SinkError {
    SinkError::status(404, "NotFound", format!("events {:?} not found", key.1))
}

fn next_version(state: &mut State) -> String {
    state.next_resource_version += 1;
    state.next_resource_version.to_string()
}

fn create_in<K: Object + Clone>(
    store: &mut BTreeMap<(String, String), K>,
    version: String,
    object: &K,
) -> Result<K, SinkError> {
    let key = key_of(object)?;
    if store.contains_key(&key) {
        return Err(SinkError::status(
            409,
            "AlreadyExists",
            format!("events {:?} already exists", key.1),
        ));
    }
    let mut stored = object.clone();
    stored.meta_mut().resource_version = Some(version);
    store.insert(key, stored.clone());
    Ok(stored)
}

fn update_in<K: Object + Clone>(
    store: &mut BTreeMap<(String, String), K>,
    version: String,
    object: &K,
) -> Result<K, SinkError> {
    let key = key_of(object)?;
    let Some(slot) = store.get_mut(&key) else {
        return Err(not_found(&key));
    };
    let mut stored = object.clone();
    stored.meta_mut().resource_version = Some(version);
    *slot = stored.clone();
    Ok(stored)
}

fn patch_in<K: Object + Clone + Serialize + DeserializeOwned>(
    store: &mut BTreeMap<(String, String), K>,
    version: String,
    object: &K,
    patch: &Value,
) -> Result<K, SinkError> {
    let key = key_of(object)?;
    let Some(slot) = store.get_mut(&key) else {
        return Err(not_found(&key));
    };
    let invalid = |e: serde_json::Error| SinkError::status(422, "Invalid", e.to_string());
    let mut value = serde_json::to_value(&*slot).map_err(invalid)?;
    apply_merge_patch(&mut value, patch);
    let mut patched: K = serde_json::from_value(value).map_err(invalid)?;
    patched.meta_mut().resource_version = Some(version);
    *slot = patched.clone();
    Ok(patched)
}

impl EventSink for MemorySink {
    async fn create(&self, event: &Event) -> Result<Event, SinkError> {
        self.call(SinkOp::Create, |state| {
            let version = next_version(state);
            create_in(&mut state.core, version, event)
        })
        .await
    }

    async fn update(&self, event: &Event) -> Result<Event, SinkError> {
        self.call(SinkOp::Update, |state| {
            let version = next_version(state);
            update_in(&mut state.core, version, event)
        })
        .await
    }

    async fn patch(&self, event: &Event, patch: &Value) -> Result<Event, SinkError> {
        self.call(SinkOp::Patch, |state| {
            let version = next_version(state);
            patch_in(&mut state.core, version, event, patch)
        })
        .await
    }
}

impl crate::events::EventSink for MemorySink {
    async fn create(&self, event: &EventsV1Event) -> Result<EventsV1Event, SinkError> {
        self.call(SinkOp::Create, |state| {
            let version = next_version(state);
            create_in(&mut state.events_v1, version, event)
        })
        .await
    }

    async fn update(&self, event: &EventsV1Event) -> Result<EventsV1Event, SinkError> {
        self.call(SinkOp::Update, |state| {
            let version = next_version(state);
            update_in(&mut state.events_v1, version, event)
        })
        .await
    }

    async fn patch(
        &self,
        event: &EventsV1Event,
        patch: &Value,
    ) -> Result<EventsV1Event, SinkError> {
        self.call(SinkOp::Patch, |state| {
            let version = next_version(state);
            patch_in(&mut state.events_v1, version, event, patch)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn event(name: &str) -> Event {
        Event {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                ..ObjectMeta::default()
            },
            count: Some(1),
            message: Some("m".into()),
            ..Event::default()
        }
    }

    #[tokio::test]
    async fn behaves_like_the_api_server() {
        let sink = MemorySink::new();
        let created = EventSink::create(&sink, &event("a")).await.unwrap();
        assert_eq!(created.metadata.resource_version.as_deref(), Some("1"));
        let err = EventSink::create(&sink, &event("a")).await.unwrap_err();
        assert!(err.is_already_exists());
        let patched = EventSink::patch(&sink, &event("a"), &serde_json::json!({"count": 2}))
            .await
            .unwrap();
        assert_eq!(patched.count, Some(2));
        assert_eq!(sink.event("ns", "a").unwrap().count, Some(2));
        let err = EventSink::patch(&sink, &event("b"), &serde_json::json!({}))
            .await
            .unwrap_err();
        assert!(err.is_not_found());
        let err = EventSink::update(&sink, &event("b")).await.unwrap_err();
        assert!(err.is_not_found());
        let mut no_namespace = event("c");
        no_namespace.metadata.namespace = None;
        let err = EventSink::create(&sink, &no_namespace).await.unwrap_err();
        assert!(matches!(err, SinkError::Request { .. }));
        assert_eq!(
            sink.calls(),
            SinkCalls {
                create: 3,
                update: 1,
                patch: 2,
                failed: 4
            }
        );
    }

    #[tokio::test]
    async fn injected_failures_are_consumed() {
        let sink = MemorySink::new();
        sink.fail_next(Some(SinkOp::Create), 2, 500);
        for _ in 0..2 {
            let err = EventSink::create(&sink, &event("a")).await.unwrap_err();
            assert_eq!(err.api_status().unwrap().code, 500);
            assert_eq!(err.api_status().unwrap().reason, "InternalError");
        }
        EventSink::create(&sink, &event("a")).await.unwrap();
        sink.fail_next_with(None, 1, || SinkError::Transport {
            message: "reset".into(),
            source: None,
        });
        let err = EventSink::patch(&sink, &event("a"), &serde_json::json!({}))
            .await
            .unwrap_err();
        assert!(err.is_retryable());
    }

    #[tokio::test]
    async fn latency_is_spent_on_the_clock() {
        let clock = kube_flowcontrol::FakeClock::new();
        let sink = MemorySink::with_clock(clock.shared());
        sink.set_latency(Some(Duration::from_secs(5)));
        let task = tokio::spawn({
            let sink = sink.clone();
            async move { EventSink::create(&sink, &event("a")).await }
        });
        clock.wait_for_waiters(1).await;
        assert!(sink.events().is_empty());
        clock.step(Duration::from_secs(5));
        task.await.unwrap().unwrap();
        assert_eq!(sink.events().len(), 1);
    }
}
