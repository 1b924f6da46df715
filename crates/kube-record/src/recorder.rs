//! [`EventRecorder`]: makes core/v1 events about objects (client-go's `record.EventRecorder`).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Event, EventSource};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_flowcontrol::SharedClock;

use crate::fanout::{Fanout, RecordError};
use crate::types::{
    EventType, NAMESPACE_DEFAULT, Referent, generate_event_name, meta_time, unix_nanos,
};
use crate::writer::Described;

struct Inner {
    source: EventSource,
    fanout: Arc<Fanout<Event>>,
    clock: SharedClock,
}

/// Records core/v1 events about objects on behalf of an event source. Made by
/// [`EventBroadcaster::new_recorder`](crate::EventBroadcaster::new_recorder); clones are cheap
/// and share the broadcaster.
///
/// Recording never waits: the event is queued for each of the broadcaster's watchers, or
/// dropped (logged, counted, and reported by the `Err`) when a queue is full or the broadcaster
/// is shut down. Callers may ignore the result.
#[derive(Clone)]
pub struct EventRecorder {
    inner: Arc<Inner>,
}

impl fmt::Debug for EventRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventRecorder")
            .field("source", &self.inner.source)
            .finish_non_exhaustive()
    }
}

impl EventRecorder {
    pub(crate) fn new(
        source: EventSource,
        fanout: Arc<Fanout<Event>>,
        clock: SharedClock,
    ) -> EventRecorder {
        EventRecorder {
            inner: Arc::new(Inner {
                source,
                fanout,
                clock,
            }),
        }
    }

    /// The source written into every event.
    pub fn source(&self) -> &EventSource {
        &self.inner.source
    }

    /// Records an event about `object`.
    ///
    /// `reason` should be short, unique and UpperCamelCase (machines switch on it); `message`
    /// is for humans. The event goes to the object's namespace (`default` for a cluster-scoped
    /// object), named `<object name>.<unix nanos in hex>`.
    pub fn event<R: Referent + ?Sized>(
        &self,
        object: &R,
        event_type: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), RecordError> {
        self.generate(
            object,
            BTreeMap::new(),
            event_type,
            reason,
            message.to_string(),
        )
    }

    /// Like [`event`](EventRecorder::event), with the message formatted by `format_args!`
    /// (client-go's `Eventf`).
    pub fn eventf<R: Referent + ?Sized>(
        &self,
        object: &R,
        event_type: EventType,
        reason: &str,
        message: fmt::Arguments<'_>,
    ) -> Result<(), RecordError> {
        let message = match message.as_str() {
            Some(literal) => literal.to_string(),
            None => message.to_string(),
        };
        self.generate(object, BTreeMap::new(), event_type, reason, message)
    }

    /// Like [`event`](EventRecorder::event), with annotations on the event (client-go's
    /// `AnnotatedEventf`).
    pub fn annotated_event<R: Referent + ?Sized>(
        &self,
        object: &R,
        annotations: BTreeMap<String, String>,
        event_type: EventType,
        reason: &str,
        message: &str,
    ) -> Result<(), RecordError> {
        self.generate(object, annotations, event_type, reason, message.to_string())
    }

    fn generate<R: Referent + ?Sized>(
        &self,
        object: &R,
        annotations: BTreeMap<String, String>,
        event_type: EventType,
        reason: &str,
        message: String,
    ) -> Result<(), RecordError> {
        let inner = &*self.inner;
        let reference = object.object_reference();
        let wall = inner.clock.wall_now();
        let timestamp = meta_time(wall);
        let namespace = reference
            .namespace
            .clone()
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| NAMESPACE_DEFAULT.to_string());
        let name = generate_event_name(reference.name.as_deref().unwrap_or(""), unix_nanos(wall));
        let event = Event {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(namespace),
                annotations: (!annotations.is_empty()).then_some(annotations),
                ..ObjectMeta::default()
            },
            involved_object: reference,
            reason: Some(reason.to_string()),
            message: Some(message),
            first_timestamp: Some(timestamp.clone()),
            last_timestamp: Some(timestamp),
            count: Some(1),
            type_: Some(event_type.as_str().to_string()),
            source: Some(inner.source.clone()),
            reporting_component: inner.source.component.clone().filter(|c| !c.is_empty()),
            reporting_instance: inner.source.host.clone().filter(|h| !h.is_empty()),
            ..Event::default()
        };
        inner
            .fanout
            .send(event, |event| Described(event).to_string())
    }
}
