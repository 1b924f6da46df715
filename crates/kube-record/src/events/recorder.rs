//! The events.k8s.io/v1 [`EventRecorder`] (client-go's `tools/events` recorder).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_flowcontrol::SharedClock;

use super::Event;
use crate::fanout::{Fanout, RecordError};
use crate::types::{
    EventType, NAMESPACE_DEFAULT, Referent, generate_event_name, micro_time, unix_nanos,
};

struct Inner {
    reporting_controller: String,
    reporting_instance: String,
    fanout: Arc<Fanout<Event>>,
    clock: SharedClock,
}

/// Records events.k8s.io/v1 events on behalf of a reporting controller and instance. Made by
/// [`EventBroadcaster::new_recorder`](super::EventBroadcaster::new_recorder); clones are cheap.
///
/// Recording never waits: the event is queued, or dropped (logged, counted, and reported by the
/// `Err`) when a queue is full or the broadcaster is shut down.
#[derive(Clone)]
pub struct EventRecorder {
    inner: Arc<Inner>,
}

impl fmt::Debug for EventRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventRecorder")
            .field("reporting_controller", &self.inner.reporting_controller)
            .field("reporting_instance", &self.inner.reporting_instance)
            .finish_non_exhaustive()
    }
}

impl EventRecorder {
    pub(crate) fn new(
        reporting_controller: String,
        reporting_instance: String,
        fanout: Arc<Fanout<Event>>,
        clock: SharedClock,
    ) -> EventRecorder {
        EventRecorder {
            inner: Arc::new(Inner {
                reporting_controller,
                reporting_instance,
                fanout,
                clock,
            }),
        }
    }

    /// The `reportingController` of every event.
    pub fn reporting_controller(&self) -> &str {
        &self.inner.reporting_controller
    }

    /// The `reportingInstance` of every event.
    pub fn reporting_instance(&self) -> &str {
        &self.inner.reporting_instance
    }

    /// Records an event about `regarding` (and optionally `related`, a second object):
    /// `action` is what was done (or failed), `reason` why, `note` the human-readable
    /// description (client-go's `Eventf`, with the note formatted by `format_args!`).
    pub fn eventf<R: Referent + ?Sized>(
        &self,
        regarding: &R,
        related: Option<&dyn Referent>,
        event_type: EventType,
        reason: &str,
        action: &str,
        note: fmt::Arguments<'_>,
    ) -> Result<(), RecordError> {
        let note = match note.as_str() {
            Some(literal) => literal.to_string(),
            None => note.to_string(),
        };
        self.generate(
            regarding,
            related,
            BTreeMap::new(),
            event_type,
            reason,
            action,
            note,
        )
    }

    /// Like [`eventf`](EventRecorder::eventf) with a plain note.
    pub fn event<R: Referent + ?Sized>(
        &self,
        regarding: &R,
        related: Option<&dyn Referent>,
        event_type: EventType,
        reason: &str,
        action: &str,
        note: &str,
    ) -> Result<(), RecordError> {
        self.generate(
            regarding,
            related,
            BTreeMap::new(),
            event_type,
            reason,
            action,
            note.to_string(),
        )
    }

    /// Like [`event`](EventRecorder::event), with annotations on the event (client-go's
    /// `AnnotatedEventf`).
    #[allow(clippy::too_many_arguments)]
    pub fn annotated_event<R: Referent + ?Sized>(
        &self,
        regarding: &R,
        related: Option<&dyn Referent>,
        annotations: BTreeMap<String, String>,
        event_type: EventType,
        reason: &str,
        action: &str,
        note: &str,
    ) -> Result<(), RecordError> {
        self.generate(
            regarding,
            related,
            annotations,
            event_type,
            reason,
            action,
            note.to_string(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn generate<R: Referent + ?Sized>(
        &self,
        regarding: &R,
        related: Option<&dyn Referent>,
        annotations: BTreeMap<String, String>,
        event_type: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) -> Result<(), RecordError> {
        let inner = &*self.inner;
        let regarding = regarding.object_reference();
        let related = related.map(Referent::object_reference);
        let wall = inner.clock.wall_now();
        let namespace = regarding
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| NAMESPACE_DEFAULT.to_string());
        let name = generate_event_name(regarding.name.as_deref().unwrap_or(""), unix_nanos(wall));
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(namespace),
                annotations: (!annotations.is_empty()).then_some(annotations),
                ..ObjectMeta::default()
            },
            event_time: Some(micro_time(wall)),
            series: None,
            reporting_controller: Some(inner.reporting_controller.clone()),
            reporting_instance: Some(inner.reporting_instance.clone()),
            action: Some(action.to_string()),
            reason: Some(reason.to_string()),
            regarding: Some(regarding),
            related,
            note: Some(note),
            type_: Some(event_type.as_str().to_string()),
            ..Event::default()
        };
        inner.fanout.send(event, |event| {
            format!(
                "{}/{} (reason {:?} action {:?})",
                event.metadata.namespace.as_deref().unwrap_or(""),
                event.metadata.name.as_deref().unwrap_or(""),
                event.reason.as_deref().unwrap_or(""),
                event.action.as_deref().unwrap_or(""),
            )
        })
    }
}
