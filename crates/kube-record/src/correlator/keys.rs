//! The cache keys of the correlator, exactly as client-go builds them: fields joined with no
//! separator.

use k8s_openapi::api::core::v1::Event;

pub(crate) fn s(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("")
}

fn source_component(event: &Event) -> &str {
    event
        .source
        .as_ref()
        .map_or("", |source| s(&source.component))
}

fn source_host(event: &Event) -> &str {
    event.source.as_ref().map_or("", |source| s(&source.host))
}

/// The full key of an event (client-go's `getEventKey`): source, involved object (with its
/// field path), type, reason and message. Identical events share it and are counted.
pub fn event_key(event: &Event) -> String {
    let o = &event.involved_object;
    [
        source_component(event),
        source_host(event),
        s(&o.kind),
        s(&o.namespace),
        s(&o.name),
        s(&o.field_path),
        s(&o.uid),
        s(&o.api_version),
        s(&event.type_),
        s(&event.reason),
        s(&event.message),
    ]
    .concat()
}

/// The spam filter's key (client-go's `getSpamKey`): source, involved object (without field
/// path) and type. Each key has its own token bucket.
pub fn spam_key(event: &Event) -> String {
    let o = &event.involved_object;
    [
        source_component(event),
        source_host(event),
        s(&o.kind),
        s(&o.namespace),
        s(&o.name),
        s(&o.uid),
        s(&o.api_version),
        s(&event.type_),
    ]
    .concat()
}

/// Groups similar events (client-go's `EventAggregatorByReasonFunc`): the aggregate key is the
/// source, involved object (without field path), type, reason, reporting controller and
/// instance; the local key is the message.
pub fn aggregate_by_reason(event: &Event) -> (String, String) {
    let o = &event.involved_object;
    let key = [
        source_component(event),
        source_host(event),
        s(&o.kind),
        s(&o.namespace),
        s(&o.name),
        s(&o.uid),
        s(&o.api_version),
        s(&event.type_),
        s(&event.reason),
        s(&event.reporting_component),
        s(&event.reporting_instance),
    ]
    .concat();
    (key, s(&event.message).to_string())
}

/// The message prefix of an aggregate event.
pub const AGGREGATE_MESSAGE_PREFIX: &str = "(combined from similar events): ";

/// The message of an aggregate event (client-go's `EventAggregatorByReasonMessageFunc`):
/// `"(combined from similar events): "` and the latest message.
pub fn aggregate_message_by_reason(event: &Event) -> String {
    [AGGREGATE_MESSAGE_PREFIX, s(&event.message)].concat()
}
