//! The controller: informers over PodSets and their pods feed a rate-limited workqueue; workers
//! reconcile its keys, retrying failures with per-key backoff (client-go's sample-controller
//! shape).

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube_cache::informer::{
    HandlerFuncs, InformerError, SharedIndexInformer, SharedInformerFactory,
};
use kube_cache::{IndexError, Indexers, ObjectOrTombstone, meta_namespace_key};
use kube_record::EventRecorder;
use kube_rest::Client;
use kube_workqueue::RateLimitingQueue;
use kube_workqueue::prometheus::PrometheusMetricsProvider;
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::expectations::Expectations;
use crate::metrics::{ControllerMetrics, InformerMetrics};
use crate::podset::{NAME_LABEL, PodSet};
use crate::reconcile::{OWNER_INDEX, Reconciled, Reconciler, owner_index, podset_owner};

/// The workqueue's name (the `name` label of its metrics).
pub const QUEUE_NAME: &str = "podset";

/// How the controller runs.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// Workers reconciling at once (different keys; one key is never reconciled twice at
    /// once).
    pub workers: usize,
    /// Failed reconciles of a key retried with backoff before the key is dropped (until its
    /// next change or resync).
    pub max_retries: usize,
    /// Creations per reconcile at most.
    pub burst: usize,
    /// How long an unconfirmed write is trusted.
    pub expectations_ttl: Duration,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        ControllerOptions {
            workers: 4,
            max_retries: 15,
            burst: 500,
            expectations_ttl: crate::expectations::DEFAULT_EXPECTATIONS_TTL,
        }
    }
}

/// Why the controller could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// An informer refused a handler or an index.
    #[error("informer: {0}")]
    Informer(#[from] InformerError),
    /// The owner index could not be added.
    #[error("index: {0}")]
    Index(#[from] IndexError),
}

/// The PodSet controller.
#[derive(Debug, Clone)]
pub struct Controller {
    reconciler: Arc<Reconciler>,
    queue: RateLimitingQueue<String>,
    podsets: SharedIndexInformer<PodSet>,
    pods: SharedIndexInformer<Pod>,
    informer_metrics: InformerMetrics,
    options: ControllerOptions,
}

/// Enqueues the PodSet that controls `pod`, if any.
fn enqueue_owner(queue: &RateLimitingQueue<String>, pod: &Pod) -> Option<String> {
    let owner = podset_owner(pod)?;
    let key = format!("{}/{}", pod.metadata.namespace.as_deref()?, owner.name);
    queue.add(key.clone());
    Some(key)
}

impl Controller {
    /// A controller over the factory's PodSet informer and an informer of the pods carrying
    /// [`NAME_LABEL`] (indexed by owner), registering its metrics (workqueue, informers,
    /// reconciles) in `registry` when given. `observer` gets every completed reconcile.
    pub fn new(
        client: Client,
        factory: &SharedInformerFactory<Client>,
        recorder: EventRecorder,
        mut registry: Option<&mut Registry>,
        options: ControllerOptions,
        observer: Option<mpsc::UnboundedSender<Reconciled>>,
    ) -> Result<Controller, ControllerError> {
        let podsets = factory.informer::<PodSet>();
        let pod_scope = factory.scope().clone().labels(NAME_LABEL);
        let pods = factory.informer_in::<Pod>(&pod_scope);
        pods.add_indexers(Indexers::new().with(OWNER_INDEX, owner_index))?;

        let mut builder = RateLimitingQueue::builder().name(QUEUE_NAME);
        if let Some(registry) = registry.as_deref_mut() {
            builder = builder.metrics(Arc::new(PrometheusMetricsProvider::new(registry)));
        }
        let queue = builder.build();
        let metrics = ControllerMetrics::new(registry.as_deref_mut());
        let expectations = Arc::new(Expectations::new(options.expectations_ttl));
        let mut reconciler =
            Reconciler::new(client, podsets.lister(), pods.indexer().clone(), recorder)
                .with_expectations(Arc::clone(&expectations))
                .with_metrics(metrics)
                .with_burst(options.burst);
        if let Some(observer) = observer {
            reconciler = reconciler.with_observer(observer);
        }

        let enqueue = {
            let queue = queue.clone();
            move |podset: &PodSet| queue.add(meta_namespace_key(podset))
        };
        let (on_add, on_update) = (enqueue.clone(), enqueue.clone());
        let podset_registration = podsets.add_event_handler(
            HandlerFuncs::new()
                .on_add(move |podset: &Arc<PodSet>, _| on_add(podset))
                .on_update(move |_, podset: &Arc<PodSet>| on_update(podset))
                .on_delete({
                    let queue = queue.clone();
                    move |deleted: &ObjectOrTombstone<PodSet>| match deleted {
                        ObjectOrTombstone::Object(podset) => {
                            queue.add(meta_namespace_key(&**podset))
                        }
                        ObjectOrTombstone::Tombstone(t) => queue.add(t.key.clone()),
                    }
                }),
        )?;

        let pod_registration = pods.add_event_handler(
            HandlerFuncs::new()
                .on_add({
                    let (queue, expectations) = (queue.clone(), Arc::clone(&expectations));
                    move |pod: &Arc<Pod>, _| {
                        if let Some(key) = enqueue_owner(&queue, pod) {
                            expectations.observed_present(&key, pod_name(pod));
                        }
                    }
                })
                .on_update({
                    let queue = queue.clone();
                    move |old: &Arc<Pod>, new: &Arc<Pod>| {
                        if old.metadata.resource_version == new.metadata.resource_version {
                            return; // a resync: the PodSet informer's resync covers it
                        }
                        let new_key = enqueue_owner(&queue, new);
                        let old_key = podset_owner(old).map(|o| o.name.as_str());
                        if old_key != new_key.as_deref().and_then(|k| k.split('/').nth(1)) {
                            enqueue_owner(&queue, old);
                        }
                    }
                })
                .on_delete({
                    let (queue, expectations) = (queue.clone(), Arc::clone(&expectations));
                    move |deleted: &ObjectOrTombstone<Pod>| {
                        if let Some(pod) = deleted.object()
                            && let Some(key) = enqueue_owner(&queue, pod)
                        {
                            expectations.observed_gone(&key, pod_name(pod));
                        }
                    }
                }),
        )?;

        let informer_metrics = InformerMetrics::default();
        informer_metrics.add("podsets", podsets.clone(), podset_registration);
        informer_metrics.add("pods", pods.clone(), pod_registration);
        if let Some(registry) = registry {
            registry.register_collector(Box::new(informer_metrics.clone()));
        }
        Ok(Controller {
            reconciler: Arc::new(reconciler),
            queue,
            podsets,
            pods,
            informer_metrics,
            options,
        })
    }

    /// The reconciler.
    pub fn reconciler(&self) -> &Arc<Reconciler> {
        &self.reconciler
    }

    /// The workqueue.
    pub fn queue(&self) -> &RateLimitingQueue<String> {
        &self.queue
    }

    /// The PodSet informer.
    pub fn podset_informer(&self) -> &SharedIndexInformer<PodSet> {
        &self.podsets
    }

    /// The pod informer.
    pub fn pod_informer(&self) -> &SharedIndexInformer<Pod> {
        &self.pods
    }

    /// The informers' metrics.
    pub fn informer_metrics(&self) -> &InformerMetrics {
        &self.informer_metrics
    }

    /// Waits for both informers to sync (the factory must be started), then runs the workers
    /// until `cancel` fires; then shuts the queue down and waits for the reconciles under way.
    /// Returns false if `cancel` fired before the caches synced.
    pub async fn run(&self, cancel: CancellationToken) -> bool {
        let synced = async {
            while !(self.podsets.has_synced() && self.pods.has_synced()) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::select! {
            _ = cancel.cancelled() => {
                self.queue.shut_down();
                return false;
            }
            _ = synced => {}
        }
        tracing::info!(
            workers = self.options.workers,
            "caches synced; starting workers"
        );
        let workers: Vec<_> = (0..self.options.workers.max(1))
            .map(|_| {
                let controller = self.clone();
                tokio::spawn(async move { while controller.process_next().await {} })
            })
            .collect();
        cancel.cancelled().await;
        tracing::info!("stopping workers");
        self.queue.shut_down_with_drain().await;
        for worker in workers {
            let _ = worker.await;
        }
        true
    }

    /// Takes one key and reconciles it; false once the queue is shut down.
    async fn process_next(&self) -> bool {
        let Some(item) = self.queue.get_guarded().await else {
            return false;
        };
        let key = item.item().clone();
        let started = Instant::now();
        let result = self.reconciler.reconcile(&key).await;
        self.reconciler
            .metrics()
            .reconciled(result.is_ok(), started.elapsed().as_secs_f64());
        match result {
            Ok(_) => self.queue.forget(&key),
            Err(error) if self.queue.num_requeues(&key) < self.options.max_retries => {
                tracing::info!(%key, %error, "reconcile failed; retrying with backoff");
                self.queue.add_rate_limited(key);
            }
            Err(error) => {
                self.queue.forget(&key);
                self.reconciler.metrics().key_dropped();
                tracing::warn!(%key, %error, retries = self.options.max_retries,
                    "dropping PodSet out of the queue after its retries");
            }
        }
        drop(item); // done: another worker may take the key again
        true
    }
}

fn pod_name(pod: &Pod) -> &str {
    pod.metadata.name.as_deref().unwrap_or("")
}
