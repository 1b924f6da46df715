//! One reconcile of one PodSet: read the caches, plan, create and delete pods, write the
//! status, record events.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use futures_util::future::join_all;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube_cache::{IndexError, IndexValues, Indexer, Lister, split_meta_namespace_key};
use kube_record::{EventRecorder, EventType};
use kube_rest::{Api, Client, DeleteParams, Patch, PatchParams, PostParams};
use tokio::sync::mpsc;

use crate::expectations::Expectations;
use crate::metrics::ControllerMetrics;
use crate::plan::{PodView, plan};
use crate::podset::{API_VERSION, GROUP, KIND, NAME_LABEL, PodSet, PodSetStatus};

/// The pod index by controlling PodSet: the `uid` of a pod's controller ownerReference when it
/// is a PodSet.
pub const OWNER_INDEX: &str = "podset-owner";

/// The controller ownerReference of `pod` if a PodSet controls it.
pub fn podset_owner(pod: &Pod) -> Option<&OwnerReference> {
    pod.metadata
        .owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
        .filter(|r| r.kind == KIND && r.api_version.split('/').next() == Some(GROUP))
}

/// The index function of [`OWNER_INDEX`].
pub fn owner_index<'a>(pod: &'a Pod, values: &mut IndexValues<'a>) {
    if let Some(owner) = podset_owner(pod) {
        values.push(owner.uid.as_str());
    }
}

/// Whether the pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// A reconcile that completed, for observers (the demo's and the benchmark's clocks).
#[derive(Debug, Clone)]
pub struct Reconciled {
    /// The PodSet's key.
    pub key: String,
    /// The `metadata.generation` reconciled (0 when the PodSet is gone).
    pub generation: i64,
    /// The status written (or found up to date).
    pub status: Option<PodSetStatus>,
    /// Pods created.
    pub created: usize,
    /// Pods deleted.
    pub deleted: usize,
    /// When the reconcile started.
    pub started: Instant,
    /// When the reconcile ended.
    pub at: Instant,
}

/// Why a reconcile failed (the key is retried with backoff).
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The queue held a key that is not `namespace/name`.
    #[error("bad key {0:?}")]
    BadKey(String),
    /// The pod cache has no owner index.
    #[error("the pod cache: {0}")]
    Index(#[from] IndexError),
    /// The template cannot make a pod.
    #[error("invalid template: {0}")]
    Template(&'static str),
    /// Creating a pod failed.
    #[error("creating pod {pod}: {source}")]
    Create {
        /// The pod.
        pod: String,
        /// The server's error.
        #[source]
        source: kube_rest::Error,
    },
    /// A pod of that name exists and another owner (or none) controls it.
    #[error("pod {0} exists and is not controlled by this PodSet")]
    NameTaken(String),
    /// Deleting a pod failed.
    #[error("deleting pod {pod}: {source}")]
    Delete {
        /// The pod.
        pod: String,
        /// The server's error.
        #[source]
        source: kube_rest::Error,
    },
    /// Writing the status failed.
    #[error("updating the status: {0}")]
    Status(#[source] kube_rest::Error),
    /// Several of the above; the first is the source.
    #[error("{count} errors, the first: {first}")]
    Several {
        /// How many.
        count: usize,
        /// The first.
        #[source]
        first: Box<ReconcileError>,
    },
}

impl ReconcileError {
    fn several(mut errors: Vec<ReconcileError>) -> Option<ReconcileError> {
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            count => Some(ReconcileError::Several {
                count,
                first: Box::new(errors.swap_remove(0)),
            }),
        }
    }
}

/// Reconciles PodSets from a PodSet lister and a pod indexer with [`OWNER_INDEX`].
///
/// The controller feeds these from its informers; tests can fill them by hand to play an
/// informer that is behind.
#[derive(Debug)]
pub struct Reconciler {
    client: Client,
    podsets: Lister<PodSet>,
    pods: Indexer<Pod>,
    expectations: Arc<Expectations>,
    recorder: EventRecorder,
    metrics: ControllerMetrics,
    burst: usize,
    observer: Option<mpsc::UnboundedSender<Reconciled>>,
}

impl Reconciler {
    /// A reconciler over these caches, writing through `client`, recording with `recorder`.
    pub fn new(
        client: Client,
        podsets: Lister<PodSet>,
        pods: Indexer<Pod>,
        recorder: EventRecorder,
    ) -> Reconciler {
        Reconciler {
            client,
            podsets,
            pods,
            expectations: Arc::new(Expectations::default()),
            recorder,
            metrics: ControllerMetrics::new(None),
            burst: 500,
            observer: None,
        }
    }

    /// Uses these expectations (shared with the informer handlers).
    pub fn with_expectations(mut self, expectations: Arc<Expectations>) -> Reconciler {
        self.expectations = expectations;
        self
    }

    /// Counts into these metrics.
    pub fn with_metrics(mut self, metrics: ControllerMetrics) -> Reconciler {
        self.metrics = metrics;
        self
    }

    /// At most `burst` creations per reconcile (client-go's `burstReplicas`, 500).
    pub fn with_burst(mut self, burst: usize) -> Reconciler {
        self.burst = burst.max(1);
        self
    }

    /// Reports every completed reconcile on `observer`.
    pub fn with_observer(mut self, observer: mpsc::UnboundedSender<Reconciled>) -> Reconciler {
        self.observer = Some(observer);
        self
    }

    /// The expectations.
    pub fn expectations(&self) -> &Arc<Expectations> {
        &self.expectations
    }

    /// The metrics.
    pub fn metrics(&self) -> &ControllerMetrics {
        &self.metrics
    }

    /// Brings the pods of the PodSet `key` (`namespace/name`) to `spec.replicas` and writes
    /// its status. Every error is also recorded as a Warning event on the PodSet; the caller
    /// retries the key.
    pub async fn reconcile(&self, key: &str) -> Result<Reconciled, ReconcileError> {
        let started = Instant::now();
        let (namespace, name) =
            split_meta_namespace_key(key).map_err(|_| ReconcileError::BadKey(key.to_string()))?;
        let Some(podset) = self.podsets.get(namespace, name) else {
            // Deleted: the garbage collector removes its pods (ownerReferences).
            self.expectations.forget(key);
            return Ok(self.done(key, started, 0, None, 0, 0));
        };
        if podset.metadata.deletion_timestamp.is_some() {
            return Ok(self.done(key, started, 0, None, 0, 0));
        }
        let uid = podset.metadata.uid.clone().unwrap_or_default();
        let pods: Vec<Arc<Pod>> = self
            .pods
            .by_index(OWNER_INDEX, &uid)?
            .into_iter()
            .filter(|p| p.metadata.namespace.as_deref() == Some(namespace))
            .collect();
        let views: Vec<PodView> = pods
            .iter()
            .map(|p| PodView {
                name: p.metadata.name.clone().unwrap_or_default(),
                ready: is_ready(p),
                terminating: p.metadata.deletion_timestamp.is_some(),
            })
            .collect();
        let cached: HashSet<&str> = views.iter().map(|v| v.name.as_str()).collect();
        let pending = self.expectations.pending(key, &cached);
        let replicas = usize::try_from(podset.spec.replicas).unwrap_or(0);
        let plan = plan(name, replicas, &views, &pending, self.burst);

        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let creations = join_all(
            plan.create
                .iter()
                .map(|pod| self.create(&api, key, &podset, pod)),
        );
        let deletions = join_all(plan.delete.iter().map(|pod| {
            let uid = pods
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(pod.as_str()))
                .and_then(|p| p.metadata.uid.clone());
            self.delete(&api, key, &podset, pod, uid)
        }));
        let (creations, deletions) = tokio::join!(creations, deletions);
        let created = creations.iter().filter(|r| r.is_ok()).count();
        let deleted = deletions.iter().filter(|r| r.is_ok()).count();
        let mut errors: Vec<ReconcileError> = creations
            .into_iter()
            .chain(deletions)
            .filter_map(Result::err)
            .collect();

        let generation = podset.metadata.generation.unwrap_or(0);
        let status = PodSetStatus {
            replicas: i32::try_from(plan.active).unwrap_or(i32::MAX),
            ready_replicas: i32::try_from(plan.ready).unwrap_or(i32::MAX),
            observed_generation: generation,
        };
        if podset.status.as_ref() != Some(&status) {
            let podsets: Api<PodSet> = Api::namespaced(self.client.clone(), namespace);
            let patch = Patch::Merge(serde_json::json!({ "status": status }));
            match podsets
                .patch_status(name, &PatchParams::default(), &patch)
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => errors.push(ReconcileError::Status(e)),
            }
        }
        match ReconcileError::several(errors) {
            Some(error) => Err(error),
            None => Ok(self.done(key, started, generation, Some(status), created, deleted)),
        }
    }

    fn done(
        &self,
        key: &str,
        started: Instant,
        generation: i64,
        status: Option<PodSetStatus>,
        created: usize,
        deleted: usize,
    ) -> Reconciled {
        let reconciled = Reconciled {
            key: key.to_string(),
            generation,
            status,
            created,
            deleted,
            started,
            at: Instant::now(),
        };
        if let Some(observer) = &self.observer {
            // A closed observer only means nobody listens any more.
            let _ = observer.send(reconciled.clone());
        }
        reconciled
    }

    fn warn(&self, podset: &PodSet, reason: &str, message: &str) {
        if let Err(e) = self
            .recorder
            .event(podset, EventType::Warning, reason, message)
        {
            tracing::debug!(error = %e, "event not recorded");
        }
    }

    async fn create(
        &self,
        api: &Api<Pod>,
        key: &str,
        podset: &PodSet,
        name: &str,
    ) -> Result<(), ReconcileError> {
        let pod = match pod_from_template(podset, name) {
            Ok(pod) => pod,
            Err(e) => {
                self.warn(podset, "FailedCreate", &format!("Error creating: {e}"));
                return Err(e);
            }
        };
        self.expectations.expect_create(key, name);
        match api.create(&PostParams::default(), &pod).await {
            Ok(_) => {
                self.metrics.pod_created();
                let _ = self.recorder.event(
                    podset,
                    EventType::Normal,
                    "SuccessfulCreate",
                    &format!("Created pod: {name}"),
                );
                Ok(())
            }
            Err(e) if e.is_already_exists() => {
                // The cache is behind (a pod made by an earlier reconcile, or by a replica that
                // lost its lease): ours if this PodSet controls it.
                let uid = podset.metadata.uid.as_deref();
                match api.get_opt(name).await {
                    Ok(Some(existing))
                        if podset_owner(&existing).map(|o| o.uid.as_str()) == uid =>
                    {
                        tracing::debug!(pod = name, "pod exists already; the cache is behind");
                        Ok(())
                    }
                    Ok(Some(_)) => {
                        self.expectations.name_taken(key, name);
                        let error = ReconcileError::NameTaken(name.to_string());
                        self.warn(podset, "FailedCreate", &format!("Error creating: {error}"));
                        Err(error)
                    }
                    // Gone since: the next try creates it.
                    Ok(None) => {
                        self.expectations.create_failed(key, name);
                        Err(ReconcileError::Create {
                            pod: name.to_string(),
                            source: e,
                        })
                    }
                    Err(source) => {
                        self.expectations.create_failed(key, name);
                        Err(ReconcileError::Create {
                            pod: name.to_string(),
                            source,
                        })
                    }
                }
            }
            Err(source) => {
                self.expectations.create_failed(key, name);
                self.warn(podset, "FailedCreate", &format!("Error creating: {source}"));
                Err(ReconcileError::Create {
                    pod: name.to_string(),
                    source,
                })
            }
        }
    }

    async fn delete(
        &self,
        api: &Api<Pod>,
        key: &str,
        podset: &PodSet,
        name: &str,
        uid: Option<String>,
    ) -> Result<(), ReconcileError> {
        self.expectations.expect_delete(key, name);
        // The uid precondition: never delete a newer pod that took the name.
        let mut params = DeleteParams::default();
        if let Some(uid) = uid {
            params = params.with_uid(uid);
        }
        match api.delete(name, &params).await {
            Ok(_) => {
                self.metrics.pod_deleted();
                let _ = self.recorder.event(
                    podset,
                    EventType::Normal,
                    "SuccessfulDelete",
                    &format!("Deleted pod: {name}"),
                );
                Ok(())
            }
            // Already gone (the cache is behind): what we wanted.
            Err(e) if e.is_not_found() => {
                tracing::debug!(pod = name, "pod already deleted; the cache is behind");
                Ok(())
            }
            Err(source) => {
                self.expectations.delete_failed(key, name);
                self.warn(podset, "FailedDelete", &format!("Error deleting: {source}"));
                Err(ReconcileError::Delete {
                    pod: name.to_string(),
                    source,
                })
            }
        }
    }
}

/// The pod `name` of `podset`: the template's labels plus [`NAME_LABEL`], its annotations and
/// spec, and a controller ownerReference to the PodSet.
pub fn pod_from_template(podset: &PodSet, name: &str) -> Result<Pod, ReconcileError> {
    let template = &podset.spec.template;
    let spec = template
        .spec
        .clone()
        .ok_or(ReconcileError::Template("spec.template.spec is missing"))?;
    let podset_name = podset.metadata.name.clone().unwrap_or_default();
    let uid = podset
        .metadata
        .uid
        .clone()
        .ok_or(ReconcileError::Template("the PodSet has no uid"))?;
    let template_meta = template.metadata.clone().unwrap_or_default();
    let mut labels: BTreeMap<String, String> = template_meta.labels.unwrap_or_default();
    labels.insert(NAME_LABEL.to_string(), podset_name.clone());
    Ok(Pod {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: podset.metadata.namespace.clone(),
            labels: Some(labels),
            annotations: template_meta.annotations,
            owner_references: Some(vec![OwnerReference {
                api_version: API_VERSION.to_string(),
                kind: KIND.to_string(),
                name: podset_name,
                uid,
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        spec: Some(spec),
        status: None,
    })
}
