//! Options of list, watch, write, patch and delete requests.

use serde::Serialize;

/// Options of a list (client-go's `metav1.ListOptions` for lists).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListParams {
    /// A label selector (`app=web,tier in (a,b),!legacy`).
    pub label_selector: Option<String>,
    /// A field selector (`metadata.name=x,status.phase!=Running`).
    pub field_selector: Option<String>,
    /// The page size (0: everything at once).
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionMatch {
    /// Any data not older than the resourceVersion (may be served from the cache).
    NotOlderThan,
    /// Exactly the resourceVersion (fails with 410 when it was compacted).
    Exact,
}

impl ListParams {
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

    /// Lists from the API server's cache (`resourceVersion=0`, any age).
    pub fn any_version(mut self) -> Self {
        self.resource_version = Some("0".into());
        self.resource_version_match = None;
        self
    }

    pub(crate) fn query(&self) -> Vec<(String, String)> {
        let mut q = Vec::new();
        push(&mut q, "labelSelector", self.label_selector.as_deref());
        push(&mut q, "fieldSelector", self.field_selector.as_deref());
        if let Some(limit) = self.limit.filter(|l| *l > 0) {
            q.push(("limit".into(), limit.to_string()));
        }
        push(&mut q, "continue", self.continue_token.as_deref());
        push(&mut q, "resourceVersion", self.resource_version.as_deref());
        if let Some(rule) = self.resource_version_match {
            let rule = match rule {
                VersionMatch::NotOlderThan => "NotOlderThan",
                VersionMatch::Exact => "Exact",
            };
            q.push(("resourceVersionMatch".into(), rule.into()));
        }
        if let Some(t) = self.timeout_seconds {
            q.push(("timeoutSeconds".into(), t.to_string()));
        }
        q
    }
}

fn push(q: &mut Vec<(String, String)>, key: &str, value: Option<&str>) {
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        q.push((key.into(), value.into()));
    }
}

/// Options of a watch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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

    pub(crate) fn query(&self, resource_version: &str) -> Vec<(String, String)> {
        let mut q = vec![("watch".to_string(), "true".to_string())];
        push(&mut q, "labelSelector", self.label_selector.as_deref());
        push(&mut q, "fieldSelector", self.field_selector.as_deref());
        push(&mut q, "resourceVersion", Some(resource_version));
        if self.bookmarks {
            q.push(("allowWatchBookmarks".into(), "true".into()));
        }
        if let Some(t) = self.timeout_seconds {
            q.push(("timeoutSeconds".into(), t.to_string()));
        }
        if self.send_initial_events {
            q.push(("sendInitialEvents".into(), "true".into()));
            q.push(("resourceVersionMatch".into(), "NotOlderThan".into()));
        }
        q
    }
}

/// Options of create and replace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PostParams {
    /// Validate and admit but do not persist.
    pub dry_run: bool,
    /// The field manager recorded in managedFields.
    pub field_manager: Option<String>,
}

impl PostParams {
    pub(crate) fn query(&self) -> Vec<(String, String)> {
        let mut q = Vec::new();
        if self.dry_run {
            q.push(("dryRun".into(), "All".into()));
        }
        push(&mut q, "fieldManager", self.field_manager.as_deref());
        q
    }
}

/// A patch and its kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Patch<T: Serialize> {
    /// An RFC 6902 JSON patch (a list of operations).
    Json(serde_json::Value),
    /// An RFC 7386 JSON merge patch.
    Merge(T),
    /// A Kubernetes strategic merge patch (built-in kinds only).
    Strategic(T),
    /// A server-side apply of this (partial) object; needs a field manager.
    Apply(T),
}

impl<T: Serialize> Patch<T> {
    pub(crate) fn content_type(&self) -> &'static str {
        match self {
            Patch::Json(_) => "application/json-patch+json",
            Patch::Merge(_) => "application/merge-patch+json",
            Patch::Strategic(_) => "application/strategic-merge-patch+json",
            Patch::Apply(_) => "application/apply-patch+yaml",
        }
    }

    pub(crate) fn body(&self) -> Result<Vec<u8>, serde_json::Error> {
        match self {
            Patch::Json(ops) => serde_json::to_vec(ops),
            Patch::Merge(v) | Patch::Strategic(v) | Patch::Apply(v) => serde_json::to_vec(v),
        }
    }
}

/// Options of a patch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PatchParams {
    /// Validate and admit but do not persist.
    pub dry_run: bool,
    /// The field manager (required for apply).
    pub field_manager: Option<String>,
    /// Take ownership of conflicting fields (apply only).
    pub force: bool,
}

impl PatchParams {
    /// Options of a server-side apply by this field manager.
    pub fn apply(field_manager: impl Into<String>) -> PatchParams {
        PatchParams {
            dry_run: false,
            field_manager: Some(field_manager.into()),
            force: false,
        }
    }

    /// Forces the apply over conflicts.
    pub fn force(mut self) -> Self {
        self.force = true;
        self
    }

    pub(crate) fn query(&self) -> Vec<(String, String)> {
        let mut q = Vec::new();
        if self.dry_run {
            q.push(("dryRun".into(), "All".into()));
        }
        push(&mut q, "fieldManager", self.field_manager.as_deref());
        if self.force {
            q.push(("force".into(), "true".into()));
        }
        q
    }
}

/// How dependents are deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PropagationPolicy {
    /// Leave dependents alone.
    Orphan,
    /// Delete dependents in the background.
    Background,
    /// Delete dependents first.
    Foreground,
}

/// Preconditions of a delete.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preconditions {
    /// Delete only if the object has this UID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Delete only if the object is at this resourceVersion.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_version: Option<String>,
}

/// Options of a delete (sent as a `DeleteOptions` body).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteParams {
    /// Validate but do not delete.
    pub dry_run: bool,
    /// Seconds before the object is deleted (0: at once).
    pub grace_period_seconds: Option<u32>,
    /// How dependents are deleted.
    pub propagation_policy: Option<PropagationPolicy>,
    /// Conditions the object must meet.
    pub preconditions: Option<Preconditions>,
}

impl DeleteParams {
    /// Deletes in the foreground.
    pub fn foreground() -> Self {
        DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
            ..Default::default()
        }
    }

    /// Deletes in the background.
    pub fn background() -> Self {
        DeleteParams {
            propagation_policy: Some(PropagationPolicy::Background),
            ..Default::default()
        }
    }

    /// Sets the grace period.
    pub fn grace_period(mut self, seconds: u32) -> Self {
        self.grace_period_seconds = Some(seconds);
        self
    }

    /// Requires this resourceVersion.
    pub fn with_resource_version(mut self, resource_version: impl Into<String>) -> Self {
        self.preconditions
            .get_or_insert_with(Preconditions::default)
            .resource_version = Some(resource_version.into());
        self
    }

    /// Requires this UID.
    pub fn with_uid(mut self, uid: impl Into<String>) -> Self {
        self.preconditions
            .get_or_insert_with(Preconditions::default)
            .uid = Some(uid.into());
        self
    }

    pub(crate) fn body(&self) -> serde_json::Value {
        let mut body = serde_json::json!({ "kind": "DeleteOptions", "apiVersion": "v1" });
        if self.dry_run {
            body["dryRun"] = serde_json::json!(["All"]);
        }
        if let Some(g) = self.grace_period_seconds {
            body["gracePeriodSeconds"] = g.into();
        }
        if let Some(p) = self.propagation_policy {
            body["propagationPolicy"] = serde_json::json!(p);
        }
        if let Some(p) = &self.preconditions {
            body["preconditions"] = serde_json::json!(p);
        }
        body
    }
}
