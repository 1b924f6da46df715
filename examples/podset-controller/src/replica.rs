//! One replica of the controller process: the CRD installed if missing, informers started
//! (warm caches on every replica), the controller's workers running only while this replica
//! holds the Lease, events recorded through the API, and `/healthz` and `/metrics` served.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube_cache::informer::SharedInformerFactory;
use kube_leader::LeaderElector;
use kube_leader::rest::LeaseLock;
use kube_leader::{ConfigError, HealthzAdaptor};
use kube_record::{EventBroadcaster, RestSink, StartError};
use kube_rest::{Api, Client};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::controller::{Controller, ControllerError, ControllerOptions};
use crate::http::{Endpoints, serve};
use crate::podset::{CrdError, install_crd};
use crate::reconcile::Reconciled;

/// The component name of events, and the `name` label of the leader-election metrics.
pub const COMPONENT: &str = "podset-controller";

/// How a replica runs.
#[derive(Debug, Clone)]
pub struct ReplicaOptions {
    /// This replica's identity in the Lease (a pod name, or host name plus a suffix).
    pub identity: String,
    /// The namespace of the Lease.
    pub lease_namespace: String,
    /// The Lease's name.
    pub lease_name: String,
    /// Lease duration (client-go default 15 s).
    pub lease_duration: Duration,
    /// Renew deadline (10 s).
    pub renew_deadline: Duration,
    /// Retry period (2 s).
    pub retry_period: Duration,
    /// Where `/healthz` and `/metrics` are served (port 0: any free port).
    pub metrics_address: SocketAddr,
    /// Watch one namespace only (default: all).
    pub namespace: Option<String>,
    /// The informers' resync period (zero: none).
    pub resync: Duration,
    /// The controller's options.
    pub controller: ControllerOptions,
}

impl Default for ReplicaOptions {
    fn default() -> Self {
        ReplicaOptions {
            identity: format!("{}-{}", kube_record::hostname(), std::process::id()),
            lease_namespace: "default".into(),
            lease_name: COMPONENT.into(),
            lease_duration: kube_leader::DEFAULT_LEASE_DURATION,
            renew_deadline: kube_leader::DEFAULT_RENEW_DEADLINE,
            retry_period: kube_leader::DEFAULT_RETRY_PERIOD,
            metrics_address: SocketAddr::from(([127, 0, 0, 1], 8080)),
            namespace: None,
            resync: Duration::from_secs(300),
            controller: ControllerOptions::default(),
        }
    }
}

/// Why a replica could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// Installing the CRD failed.
    #[error("installing the CRD: {0}")]
    Crd(#[from] CrdError),
    /// The controller could not be built.
    #[error("building the controller: {0}")]
    Controller(#[from] ControllerError),
    /// The leader election is misconfigured.
    #[error("leader election: {0}")]
    LeaderElection(#[from] ConfigError),
    /// The event broadcaster did not start.
    #[error("events: {0}")]
    Events(#[from] StartError),
    /// The metrics address could not be bound.
    #[error("listening on {address}: {source}")]
    Listen {
        /// The address.
        address: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The informers could not start.
    #[error("starting the informers: {0}")]
    Informers(#[from] kube_cache::informer::FactoryError),
}

/// A running replica.
#[derive(Debug)]
pub struct Replica {
    identity: String,
    address: SocketAddr,
    controller: Controller,
    elector: LeaderElector<LeaseLock>,
    leading: watch::Receiver<bool>,
    cancel: CancellationToken,
    elector_task: JoinHandle<()>,
    server_task: JoinHandle<()>,
    factory: SharedInformerFactory<Client>,
    broadcaster: EventBroadcaster,
}

impl Replica {
    /// Installs the CRD if missing, then starts the replica: informers, leader election,
    /// endpoints. `observer` gets every reconcile this replica completes.
    pub async fn start(
        client: Client,
        options: ReplicaOptions,
        observer: Option<mpsc::UnboundedSender<Reconciled>>,
    ) -> Result<Replica, ReplicaError> {
        install_crd(&client, Duration::from_secs(30)).await?;
        let mut registry = Registry::default();

        let broadcaster = EventBroadcaster::builder()
            .metrics(Arc::new(kube_record::prometheus::PrometheusMetrics::new(
                &mut registry,
            )))
            .flush_timeout(Duration::from_secs(5))
            .build();
        broadcaster.start_recording_to_sink(RestSink::new(client.clone()))?;
        let recorder = broadcaster.new_recorder(COMPONENT);

        let mut factory = SharedInformerFactory::builder(client.clone());
        if let Some(namespace) = &options.namespace {
            factory = factory.namespace(namespace.clone());
        }
        if !options.resync.is_zero() {
            factory = factory.default_resync(options.resync);
        }
        let factory = factory.build();
        let controller = Controller::new(
            client.clone(),
            &factory,
            recorder,
            Some(&mut registry),
            options.controller.clone(),
            observer,
        )?;

        let (leading_tx, leading) = watch::channel(false);
        let leading_tx = Arc::new(leading_tx);
        let lock = LeaseLock::new(
            Api::<Lease>::namespaced(client, &options.lease_namespace),
            &options.lease_name,
            &options.identity,
        );
        let elector = LeaderElector::builder(lock)
            .name(COMPONENT)
            .metrics(Arc::new(kube_leader::prometheus::PrometheusMetrics::new(
                &mut registry,
            )))
            .lease_duration(options.lease_duration)
            .renew_deadline(options.renew_deadline)
            .retry_period(options.retry_period)
            .release_on_cancel(true)
            .on_started_leading({
                let (controller, leading_tx) = (controller.clone(), Arc::clone(&leading_tx));
                move |token: CancellationToken| {
                    let (controller, leading_tx) = (controller.clone(), Arc::clone(&leading_tx));
                    async move {
                        leading_tx.send_replace(true);
                        controller.run(token).await;
                    }
                }
            })
            .on_stopped_leading({
                let (identity, leading_tx) = (options.identity.clone(), Arc::clone(&leading_tx));
                move || {
                    if leading_tx.send_replace(false) {
                        tracing::info!(%identity, "stopped leading");
                    }
                }
            })
            .on_new_leader({
                let identity = options.identity.clone();
                move |leader: &str| {
                    tracing::info!(%identity, leader, "new leader observed");
                }
            })
            .build()?;
        let healthz = HealthzAdaptor::new(Duration::from_secs(20));
        healthz.set_leader_election(&elector);

        let cancel = CancellationToken::new();
        let listener = TcpListener::bind(options.metrics_address)
            .await
            .map_err(|source| ReplicaError::Listen {
                address: options.metrics_address,
                source,
            })?;
        let address = listener
            .local_addr()
            .map_err(|source| ReplicaError::Listen {
                address: options.metrics_address,
                source,
            })?;
        let endpoints = Arc::new(Endpoints {
            registry,
            healthz,
            informers: controller.informer_metrics().clone(),
        });
        let server_task = tokio::spawn(serve(listener, endpoints, cancel.clone()));
        factory.start(&cancel)?;
        let elector_task = tokio::spawn({
            let (elector, cancel) = (elector.clone(), cancel.clone());
            async move {
                // ok to ignore: this is the only run of this elector
                let _ = elector.run(cancel).await;
            }
        });
        Ok(Replica {
            identity: options.identity,
            address,
            controller,
            elector,
            leading,
            cancel,
            elector_task,
            server_task,
            factory,
            broadcaster,
        })
    }

    /// The identity in the Lease.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Where `/healthz` and `/metrics` are served.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The controller.
    pub fn controller(&self) -> &Controller {
        &self.controller
    }

    /// Whether this replica leads (its workers run).
    pub fn is_leading(&self) -> bool {
        *self.leading.borrow()
    }

    /// The holder of the Lease as this replica last observed it.
    pub fn observed_leader(&self) -> String {
        self.elector.leader()
    }

    /// Waits until this replica leads, for at most `timeout`.
    pub async fn wait_leading(&self, timeout: Duration) -> bool {
        let mut leading = self.leading.clone();
        tokio::time::timeout(timeout, leading.wait_for(|l| *l))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Runs until the replica stops leading after having led (client-go exits the process
    /// then), or until `stop` fires.
    pub async fn wait_lost(&self) {
        let mut leading = self.leading.clone();
        if leading.wait_for(|l| *l).await.is_ok() {
            let _ = leading.wait_for(|l| !*l).await;
        }
    }

    /// Stops gracefully: the workers finish their reconciles, the Lease is released (another
    /// replica takes over at its next retry), the informers stop, queued events are written.
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.elector_task.await;
        self.factory.shutdown().await;
        let report = self.broadcaster.shutdown().await;
        tracing::debug!(?report, "event broadcaster shut down");
        let _ = self.server_task.await;
    }
}
