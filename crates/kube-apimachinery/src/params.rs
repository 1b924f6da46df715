//! Options of list and watch requests (`metav1.ListOptions`), and their query strings.

/// Options of a list (client-go's `metav1.ListOptions` for lists).
///
/// Built with its methods; the fields can be read:
///
/// ```
/// use kube_apimachinery::{ListParams, VersionMatch};
///
/// let params = ListParams::default()
///     .labels("app=web")
///     .limit(500)
///     .at("12345", VersionMatch::NotOlderThan);
/// assert_eq!(params.limit, Some(500));
/// assert_eq!(
///     params.to_query(),
///     [
///         ("labelSelector", "app=web".to_string()),
///         ("limit", "500".to_string()),
///         ("resourceVersion", "12345".to_string()),
///         ("resourceVersionMatch", "NotOlderThan".to_string()),
///     ]
/// );
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListParams {
    /// A label selector (`app=web,tier in (a,b),!legacy`).
    pub label_selector: Option<String>,
    /// A field selector (`metadata.name=x,status.phase!=Running`).
    pub field_selector: Option<String>,
    /// The page size (0 or `None`: everything at once).
    pub limit: Option<u32>,
    /// The continue token of the previous page.
    pub continue_token: Option<String>,
    /// The resourceVersion to list at (see `resource_version_match`).
    pub resource_version: Option<String>,
    /// `NotOlderThan` or `Exact`.
    pub resource_version_match: Option<VersionMatch>,
    /// A server-side timeout.
    pub timeout_seconds: Option<u32>,
}

/// How `resourceVersion` is interpreted by a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VersionMatch {
    /// Any data not older than the resourceVersion (may be served from the cache).
    NotOlderThan,
    /// Exactly the resourceVersion (fails with 410 when it was compacted).
    Exact,
}

impl VersionMatch {
    /// The wire name (`NotOlderThan`, `Exact`).
    pub fn as_str(self) -> &'static str {
        match self {
            VersionMatch::NotOlderThan => "NotOlderThan",
            VersionMatch::Exact => "Exact",
        }
    }
}

impl ListParams {
    /// Sets the label selector (a string, or a label `Selector`
    /// through its `Display`).
    pub fn labels(mut self, selector: impl Into<String>) -> Self {
        self.label_selector = Some(selector.into());
        self
    }

    /// Sets the field selector.
    pub fn fields(mut self, selector: impl Into<String>) -> Self {
        self.field_selector = Some(selector.into());
        self
    }

    /// Sets the page size.
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Sets the continue token.
    pub fn continue_token(mut self, token: impl Into<String>) -> Self {
        self.continue_token = Some(token.into());
        self
    }

    /// Lists at this resourceVersion with this match rule.
    pub fn at(mut self, resource_version: impl Into<String>, rule: VersionMatch) -> Self {
        self.resource_version = Some(resource_version.into());
        self.resource_version_match = Some(rule);
        self
    }

    /// Lists at this resourceVersion with the server's legacy rule (no
    /// `resourceVersionMatch`: `"0"` is any age, another version "not older than" it).
    pub fn resource_version(mut self, resource_version: impl Into<String>) -> Self {
        self.resource_version = Some(resource_version.into());
        self.resource_version_match = None;
        self
    }

    /// Lists from the API server's cache (`resourceVersion=0`, any age).
    pub fn any_version(self) -> Self {
        self.resource_version("0")
    }

    /// Sets the server-side timeout.
    pub fn timeout(mut self, seconds: u32) -> Self {
        self.timeout_seconds = Some(seconds);
        self
    }

    /// The query parameters of this list, in a stable order; unset and empty values are left
    /// out, as client-go's parameter codec does.
    pub fn to_query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        push(&mut q, "labelSelector", self.label_selector.as_deref());
        push(&mut q, "fieldSelector", self.field_selector.as_deref());
        if let Some(limit) = self.limit.filter(|l| *l > 0) {
            q.push(("limit", limit.to_string()));
        }
        push(&mut q, "continue", self.continue_token.as_deref());
        push(&mut q, "resourceVersion", self.resource_version.as_deref());
        if let Some(rule) = self.resource_version_match {
            q.push(("resourceVersionMatch", rule.as_str().into()));
        }
        if let Some(t) = self.timeout_seconds {
            q.push(("timeoutSeconds", t.to_string()));
        }
        q
    }
}

fn push(q: &mut Vec<(&'static str, String)>, key: &'static str, value: Option<&str>) {
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        q.push((key, value.into()));
    }
}

/// Options of a watch (client-go's `metav1.ListOptions` with `watch=true`). The
/// resourceVersion to start from is given to the watch call itself.
///
/// ```
/// use kube_apimachinery::WatchParams;
///
/// let params = WatchParams::default().labels("app=web").send_initial_events(true);
/// assert!(params.bookmarks, "initial events need bookmarks");
/// let query = params.to_query("");
/// assert!(query.contains(&("sendInitialEvents", "true".to_string())));
/// assert!(query.contains(&("resourceVersionMatch", "NotOlderThan".to_string())));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WatchParams {
    /// A label selector.
    pub label_selector: Option<String>,
    /// A field selector.
    pub field_selector: Option<String>,
    /// Ask for `BOOKMARK` events.
    pub bookmarks: bool,
    /// Ends the watch after this many seconds (server side).
    pub timeout_seconds: Option<u32>,
    /// Start with the current objects as `ADDED` events, ended by a bookmark (needs
    /// `bookmarks` and `resourceVersionMatch=NotOlderThan`, which this sets).
    pub send_initial_events: bool,
}

impl WatchParams {
    /// Sets the label selector.
    pub fn labels(mut self, selector: impl Into<String>) -> Self {
        self.label_selector = Some(selector.into());
        self
    }

    /// Sets the field selector.
    pub fn fields(mut self, selector: impl Into<String>) -> Self {
        self.field_selector = Some(selector.into());
        self
    }

    /// Asks for bookmarks.
    pub fn bookmarks(mut self, on: bool) -> Self {
        self.bookmarks = on;
        self
    }

    /// Sets the server-side timeout.
    pub fn timeout(mut self, seconds: u32) -> Self {
        self.timeout_seconds = Some(seconds);
        self
    }

    /// Asks for the initial events (watch-list), which also turns bookmarks on.
    pub fn send_initial_events(mut self, on: bool) -> Self {
        self.send_initial_events = on;
        if on {
            self.bookmarks = true;
        }
        self
    }

    /// The watch's selectors as list options (same label and field selectors).
    pub fn list_params(&self) -> ListParams {
        ListParams {
            label_selector: self.label_selector.clone(),
            field_selector: self.field_selector.clone(),
            ..ListParams::default()
        }
    }

    /// The query parameters of a watch from `resource_version` (`""` for "now, with the
    /// current objects first").
    pub fn to_query(&self, resource_version: &str) -> Vec<(&'static str, String)> {
        let mut q = vec![("watch", "true".to_string())];
        push(&mut q, "labelSelector", self.label_selector.as_deref());
        push(&mut q, "fieldSelector", self.field_selector.as_deref());
        push(&mut q, "resourceVersion", Some(resource_version));
        if self.bookmarks {
            q.push(("allowWatchBookmarks", "true".into()));
        }
        if let Some(t) = self.timeout_seconds {
            q.push(("timeoutSeconds", t.to_string()));
        }
        if self.send_initial_events {
            q.push(("sendInitialEvents", "true".into()));
            q.push((
                "resourceVersionMatch",
                VersionMatch::NotOlderThan.as_str().into(),
            ));
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_left_out() {
        let params = ListParams::default().labels("").limit(0).continue_token("");
        assert!(params.to_query().is_empty());
        let watch = WatchParams::default().timeout(30).bookmarks(true);
        assert_eq!(
            watch.to_query("7"),
            [
                ("watch", "true".to_string()),
                ("resourceVersion", "7".to_string()),
                ("allowWatchBookmarks", "true".to_string()),
                ("timeoutSeconds", "30".to_string()),
            ]
        );
    }

    #[test]
    fn any_version_clears_the_match_rule() {
        let p = ListParams::default()
            .at("5", VersionMatch::Exact)
            .any_version();
        assert_eq!(p.resource_version.as_deref(), Some("0"));
        assert_eq!(p.resource_version_match, None);
        let w = WatchParams::default().labels("a=b").fields("x=y");
        assert_eq!(w.list_params().label_selector.as_deref(), Some("a=b"));
        assert_eq!(w.list_params().field_selector.as_deref(), Some("x=y"));
    }
}
