//! Watch: a chunked stream of JSON watch events, one per line.
//!
//! Semantics of kube-apiserver's watch cache: resourceVersion "" or "0" starts with synthetic
//! ADDED events for the current objects; a specific version replays the changes after it (or
//! sends one ERROR event with a 410 Expired Status when that history is gone); objects moving
//! into a selector arrive as ADDED and out of it as DELETED (carrying their last matching
//! state with the new resourceVersion); `allowWatchBookmarks` adds periodic BOOKMARK events;
//! `sendInitialEvents=true` streams the current objects and ends them with a BOOKMARK annotated
//! `k8s.io/initial-events-end`; `timeoutSeconds` ends the stream.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::api::{
    ApiServer, Body, Query, ResourceRequest, flag, list_options_invalid, parse_resource_version,
    too_large_resource_version,
};
use crate::selector::fields_match;
use crate::status::{ApiError, Cause};
use crate::store::{EventType, ObjectKey, StoredEvent, WatchStart};
use crate::stored::{StoredObject, event_line};
use crate::views;
use kube_apimachinery::fields::Selector as FieldSelector;
use kube_apimachinery::labels::Selector as LabelSelector;

/// Which objects a watch wants.
struct Filter {
    namespace: Option<String>,
    name: Option<String>,
    labels: LabelSelector,
    fields: FieldSelector,
}

impl Filter {
    /// Whether the object stored at `key` is one the watch wants (its namespace and name are
    /// its key's: the server stores objects under their own).
    fn matches(&self, key: &ObjectKey, object: &StoredObject) -> bool {
        self.namespace.as_deref().is_none_or(|ns| key.0 == ns)
            && self.name.as_deref().is_none_or(|name| key.1 == name)
            && (self.labels.is_empty() || self.labels.matches(&object.labels()))
            && (self.fields.is_empty() || fields_match(&self.fields, &object.value()))
    }
}

fn with_resource_version(object: &Value, rv: u64) -> Value {
    let mut object = object.clone();
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert("resourceVersion".into(), json!(rv.to_string()));
    }
    object
}

/// What a watcher sees of a change: the event type, and the object when it is not the
/// event's own (a DELETED for an object leaving the selector carries its previous state).
fn transform(event: &StoredEvent, filter: &Filter) -> Option<(&'static str, Option<Value>)> {
    let now = filter.matches(&event.key, &event.object);
    let before = event
        .prev
        .as_deref()
        .is_some_and(|prev| filter.matches(&event.key, prev));
    match event.kind {
        EventType::Added => now.then_some(("ADDED", None)),
        EventType::Modified => match (before, now) {
            (false, true) => Some(("ADDED", None)),
            (true, true) => Some(("MODIFIED", None)),
            (true, false) => event.prev.as_deref().map(|prev| {
                (
                    "DELETED",
                    Some(with_resource_version(&prev.value(), event.rv)),
                )
            }),
            (false, false) => None,
        },
        EventType::Deleted => (before || now).then_some(("DELETED", None)),
    }
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut bytes =
        serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

fn bookmark(request: &ResourceRequest, rv: u64, initial_events_end: bool) -> Bytes {
    let mut metadata = json!({"resourceVersion": rv.to_string(), "creationTimestamp": null});
    if initial_events_end {
        metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
    }
    line(
        "BOOKMARK",
        &json!({
            "kind": request.resource.kind,
            "apiVersion": request.resource.api_version(),
            "metadata": metadata,
        }),
    )
}

/// Checks the watch options the way the API server version being emulated does.
fn validate_options(watch_list: bool, query: &Query, rv: Option<u64>) -> Result<(), ApiError> {
    let rv_match = query
        .get("resourceVersionMatch")
        .map(String::as_str)
        .unwrap_or("");
    let send_initial = flag(query, "sendInitialEvents");
    let mut causes = Vec::new();
    if !watch_list {
        if !rv_match.is_empty() {
            causes.push(Cause::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden for watch",
            ));
            if rv.is_none() {
                causes.push(Cause::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
        }
    } else if send_initial {
        if rv_match != "NotOlderThan" {
            causes.push(Cause::forbidden(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            ));
        }
        if !flag(query, "allowWatchBookmarks") {
            causes.push(Cause::forbidden(
                "allowWatchBookmarks",
                "allowWatchBookmarks must be true if sendInitialEvents = true",
            ));
        }
    } else if !rv_match.is_empty() {
        causes.push(Cause::forbidden(
            "resourceVersionMatch",
            "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
        ));
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(list_options_invalid(causes))
    }
}

/// Answers a watch request with a streaming body.
pub fn serve(
    server: Arc<ApiServer>,
    request: ResourceRequest,
    query: &Query,
    as_table: bool,
) -> Result<Response<Body>, ApiError> {
    let (labels, fields) = ApiServer::selectors(&request.resource, query)?;
    let rv = parse_resource_version(query.get("resourceVersion").map(String::as_str))?;
    let settings = server.settings.read().clone();
    validate_options(settings.watch_list, query, rv)?;
    let send_initial = settings.watch_list && flag(query, "sendInitialEvents");
    let bookmarks = flag(query, "allowWatchBookmarks");
    let start = if send_initial {
        if let Some(rv) = rv.filter(|rv| *rv > server.store.current_rv()) {
            return Err(too_large_resource_version(rv, server.store.current_rv()));
        }
        WatchStart::Now
    } else {
        match rv {
            None | Some(0) => WatchStart::Now,
            Some(rv) if rv > server.store.current_rv() => {
                return Err(too_large_resource_version(rv, server.store.current_rv()));
            }
            Some(rv) => WatchStart::After(rv),
        }
    };
    let timeout = match query
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
    {
        Some(seconds) if seconds > 0 => Duration::from_secs(seconds),
        // The API server's default: a random time between 30 and 60 minutes.
        _ => Duration::from_secs(1800 + fastrand::u64(..1800)),
    };
    let filter = Filter {
        namespace: request.namespace.clone(),
        name: request.name.clone(),
        labels,
        fields,
    };
    let (tx, mut rx) = mpsc::channel::<Bytes>(256);
    match server.store.watch(&request.storage_key(), start) {
        Ok(feed) => {
            let stream = WatchStream {
                server: Arc::clone(&server),
                request,
                filter,
                tx,
                timeout,
                bookmarks,
                bookmark_interval: settings.bookmark_interval,
                send_initial,
                as_table,
                columns_sent: std::sync::atomic::AtomicBool::new(false),
            };
            tokio::spawn(stream.run(feed));
        }
        Err(error) => {
            // Like the real server: 200, then one ERROR event carrying the Status.
            let _ = tx.try_send(line("ERROR", &error.to_status()));
        }
    }
    let body = StreamBody::new(futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx)
            .map(|chunk| chunk.map(|bytes| Ok::<_, Infallible>(Frame::data(bytes))))
    }));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::TRANSFER_ENCODING, "chunked")
        .body(body.boxed_unsync())
        .map_err(|e| ApiError::internal(format!("cannot build the watch response: {e}")))
}

/// The most events sent in one chunk.
const MAX_BATCH: usize = 256;

struct WatchStream {
    server: Arc<ApiServer>,
    request: ResourceRequest,
    filter: Filter,
    tx: mpsc::Sender<Bytes>,
    timeout: Duration,
    bookmarks: bool,
    bookmark_interval: Duration,
    send_initial: bool,
    /// Events carry one-row Tables (what `kubectl get --watch` asks for).
    as_table: bool,
    /// Whether the column definitions went out with an earlier event.
    columns_sent: std::sync::atomic::AtomicBool,
}

impl WatchStream {
    async fn send(&self, bytes: Bytes) -> bool {
        self.tx.send(bytes).await.is_ok()
    }

    /// Sends what this watcher sees of `event`, if anything; false once the client is gone.
    async fn send_event(&self, event: &StoredEvent) -> bool {
        match self.encode(event) {
            Some(bytes) => self.send(bytes).await,
            None => true,
        }
    }

    /// The line this watcher sees for `event`, if it sees it at all.
    fn encode(&self, event: &StoredEvent) -> Option<Bytes> {
        let (kind, replacement) = transform(event, &self.filter)?;
        let resource = &self.request.resource;
        if self.as_table {
            let object = match replacement {
                Some(object) => views::for_resource(resource, &object),
                None => views::for_resource(resource, &event.object.value()),
            };
            let first = !self
                .columns_sent
                .swap(true, std::sync::atomic::Ordering::Relaxed);
            let rv = event.rv.to_string();
            return Some(line(
                kind,
                &crate::table::table(resource, &[&object], &rv, None, first),
            ));
        }
        Some(match replacement {
            // The common case: the stored encoding as it is.
            None if resource.storage.is_none() => event_line(kind, event.object.json()),
            None => line(kind, &views::for_resource(resource, &event.object.value())),
            Some(object) => line(kind, &views::for_resource(resource, &object)),
        })
    }

    async fn run(self, feed: crate::store::WatchFeed) {
        let server = Arc::clone(&self.server);
        // A fault may cut this watch alone (`Faults::cut_watches`).
        let registration = server.faults.register_watch();
        let storage = self.request.storage_key();
        let mut last_rv = feed.rv;
        // Each initial event is dropped once sent (a watch from "now" holds one per object).
        for event in feed.initial {
            if !self.send_event(&event).await {
                return;
            }
        }
        if self.send_initial && !self.send(bookmark(&self.request, feed.rv, true)).await {
            return;
        }
        let mut live = feed.live;
        let relisted = feed.relisted;
        let reset = self.server.watch_reset.lock().clone();
        let shutdown = self.server.shutdown.clone();
        let deadline = tokio::time::sleep(self.timeout);
        tokio::pin!(deadline);
        let period = self.bookmark_interval.max(Duration::from_millis(10));
        let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = reset.cancelled() => return,
                _ = registration.cut().cancelled() => return,
                // The watch cache relisted: the cacher ends its watches (the client re-watches).
                _ = relisted.cancelled() => return,
                _ = &mut deadline => return,
                _ = self.tx.closed() => return,
                _ = ticker.tick(), if self.bookmarks => {
                    if !self.send(bookmark(&self.request, last_rv, false)).await {
                        return;
                    }
                }
                received = live.recv() => match received {
                    Ok(event) => {
                        // Whatever else is already queued goes out in the same chunk: one
                        // write for a burst of events instead of one per event.
                        let mut batch = bytes::BytesMut::new();
                        let mut next = Some(event);
                        let mut taken = 0;
                        while let Some(event) = next.take() {
                            if event.storage == storage {
                                last_rv = event.rv;
                                if let Some(line) = self.encode(&event) {
                                    batch.extend_from_slice(&line);
                                }
                            }
                            taken += 1;
                            if taken < MAX_BATCH {
                                match live.try_recv() {
                                    Ok(more) => next = Some(more),
                                    Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                                        tracing::warn!(missed, "watcher fell behind; closing its stream so it re-watches");
                                        return;
                                    }
                                    Err(_) => {}
                                }
                            }
                        }
                        if !batch.is_empty() && !self.send(batch.freeze()).await {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "watcher fell behind; closing its stream so it re-watches");
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventType, object: Value, prev: Option<Value>) -> StoredEvent {
        StoredEvent {
            kind,
            rv: 9,
            storage: (String::new(), "pods".into()),
            key: ("ns".into(), "p".into()),
            object: Arc::new(StoredObject::encode(&object)),
            prev: prev.map(|prev| Arc::new(StoredObject::encode(&prev))),
        }
    }

    fn filter(selector: &str) -> Filter {
        Filter {
            namespace: Some("ns".into()),
            name: None,
            labels: LabelSelector::parse(selector).unwrap(),
            fields: FieldSelector::default(),
        }
    }

    fn pod(app: &str) -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns", "labels": {"app": app}, "resourceVersion": "8"}})
    }

    #[test]
    fn selector_transitions() {
        let f = filter("app=demo");
        let leaving = event(EventType::Modified, pod("moved"), Some(pod("demo")));
        let (kind, object) = transform(&leaving, &f).unwrap();
        let object = object.unwrap();
        assert_eq!(kind, "DELETED");
        assert_eq!(object["metadata"]["labels"]["app"], "demo");
        assert_eq!(object["metadata"]["resourceVersion"], "9");
        let entering = event(EventType::Modified, pod("demo"), Some(pod("moved")));
        assert_eq!(transform(&entering, &f).unwrap().0, "ADDED");
        let elsewhere = event(EventType::Modified, pod("x"), Some(pod("y")));
        assert!(transform(&elsewhere, &f).is_none());
        let deleted = event(EventType::Deleted, pod("demo"), Some(pod("demo")));
        assert_eq!(transform(&deleted, &f).unwrap().0, "DELETED");
    }

    #[test]
    fn option_validation_follows_the_emulated_version() {
        let query: Query = [
            ("sendInitialEvents".to_string(), "true".to_string()),
            (
                "resourceVersionMatch".to_string(),
                "NotOlderThan".to_string(),
            ),
        ]
        .into_iter()
        .collect();
        let old = validate_options(false, &query, None).unwrap_err();
        assert_eq!(
            old.message,
            "ListOptions.meta.k8s.io \"\" is invalid: [resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch, resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided]"
        );
        // Watch-list needs bookmarks too.
        assert!(validate_options(true, &query, None).is_err());
        let mut with_bookmarks = query.clone();
        with_bookmarks.insert("allowWatchBookmarks".into(), "true".into());
        assert!(validate_options(true, &with_bookmarks, None).is_ok());
    }
}
