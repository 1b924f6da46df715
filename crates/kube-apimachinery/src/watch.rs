//! Watch events (client-go's `watch.Event`) and bookmarks.

use std::collections::BTreeMap;

use crate::status::Status;

/// The annotation a bookmark carries to end the initial events of a `sendInitialEvents` watch.
pub const INITIAL_EVENTS_END_ANNOTATION: &str = "k8s.io/initial-events-end";

/// One event of a watch (client-go's `watch.Event`).
#[derive(Debug, Clone, PartialEq)]
pub enum WatchEvent<K> {
    /// An object was created (or existed when the watch started).
    Added(K),
    /// An object was changed.
    Modified(K),
    /// An object was deleted (its last state).
    Deleted(K),
    /// A progress marker: every event up to this resourceVersion was sent.
    Bookmark(Bookmark),
    /// The server reported an error in the stream (`410 Expired` when the resourceVersion is
    /// too old: re-list, then watch again).
    Error(Status),
}

impl<K> WatchEvent<K> {
    /// The object of an `Added`, `Modified` or `Deleted` event.
    pub fn object(&self) -> Option<&K> {
        match self {
            WatchEvent::Added(o) | WatchEvent::Modified(o) | WatchEvent::Deleted(o) => Some(o),
            WatchEvent::Bookmark(_) | WatchEvent::Error(_) => None,
        }
    }

    /// The event's type as the wire names it (`ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`,
    /// `ERROR`).
    pub fn type_name(&self) -> &'static str {
        match self {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            WatchEvent::Bookmark(_) => "BOOKMARK",
            WatchEvent::Error(_) => "ERROR",
        }
    }

    /// Applies `f` to the object, keeping the event type.
    pub fn map<T>(self, f: impl FnOnce(K) -> T) -> WatchEvent<T> {
        match self {
            WatchEvent::Added(o) => WatchEvent::Added(f(o)),
            WatchEvent::Modified(o) => WatchEvent::Modified(f(o)),
            WatchEvent::Deleted(o) => WatchEvent::Deleted(f(o)),
            WatchEvent::Bookmark(b) => WatchEvent::Bookmark(b),
            WatchEvent::Error(s) => WatchEvent::Error(s),
        }
    }
}

/// The content of a `BOOKMARK` event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bookmark {
    /// The resourceVersion the watch has reached.
    pub resource_version: String,
    /// The bookmark's annotations (`k8s.io/initial-events-end: "true"` ends the initial events
    /// of a `sendInitialEvents` watch).
    pub annotations: BTreeMap<String, String>,
}

impl Bookmark {
    /// Whether this bookmark ends the initial events of a `sendInitialEvents=true` watch.
    pub fn is_initial_events_end(&self) -> bool {
        self.annotations
            .get(INITIAL_EVENTS_END_ANNOTATION)
            .is_some_and(|v| v == "true")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_and_map() {
        let e = WatchEvent::Modified(3);
        assert_eq!(e.object(), Some(&3));
        assert_eq!(e.type_name(), "MODIFIED");
        assert_eq!(e.map(|n| n * 2), WatchEvent::Modified(6));
        let b: WatchEvent<u8> = WatchEvent::Bookmark(Bookmark {
            resource_version: "5".into(),
            annotations: [(
                INITIAL_EVENTS_END_ANNOTATION.to_string(),
                "true".to_string(),
            )]
            .into(),
        });
        assert!(b.object().is_none());
        assert!(matches!(b, WatchEvent::Bookmark(ref b) if b.is_initial_events_end()));
    }
}
