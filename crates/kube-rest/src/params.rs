//! Options of write, patch and delete requests (list and watch options are
//! kube-apimachinery's [`ListParams`](crate::ListParams) and [`WatchParams`](crate::WatchParams)).

use serde::Serialize;

fn push(q: &mut Vec<(String, String)>, key: &str, value: Option<&str>) {
    if let Some(value) = value.filter(|v| !v.is_empty()) {
        q.push((key.into(), value.into()));
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
