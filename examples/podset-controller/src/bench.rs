//! Reconcile figures on an embedded kube-testserver with its simulated kubelet (run in release:
//! `cargo run --release -p podset-controller -- bench`):
//!
//! 1. convergence: `podsets` PodSets of `pods_per_set` pods exist before the controller
//!    starts; from its start until every one reports all its pods Ready, how many reconciles
//!    ran and how fast (pods created, events written through the API as usual);
//! 2. no-op reconciles: every key enqueued again, several rounds, with everything converged
//!    (the cost of a reconcile that reads the caches and writes nothing);
//! 3. change to reconcile: `changes` PodSets scaled up by one, one at a time, each timed from
//!    just before the PATCH is sent to the start and to the end of the reconcile that saw the
//!    new generation (p50, p99).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use kube_cache::informer::SharedInformerFactory;
use kube_record::{EventBroadcaster, RestSink};
use kube_rest::{Api, Patch, PatchParams, PostParams};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::controller::{Controller, ControllerOptions};
use crate::podset::{PodSet, install_crd};
use crate::reconcile::Reconciled;
use crate::target::embedded;

/// The benchmark's options.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// PodSets.
    pub podsets: usize,
    /// Pods of each.
    pub pods_per_set: i32,
    /// Workers.
    pub workers: usize,
    /// Changes timed for the change-to-reconcile latency.
    pub changes: usize,
    /// Rounds of no-op reconciles of every key.
    pub noop_rounds: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            podsets: 1000,
            pods_per_set: 3,
            workers: 4,
            changes: 200,
            noop_rounds: 10,
        }
    }
}

/// Why the benchmark failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BenchError(String);

fn fail(what: &str) -> impl FnOnce(kube_rest::Error) -> BenchError + '_ {
    move |e| BenchError(format!("{what}: {e}"))
}

const NAMESPACE: &str = "default";

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Receives reconciles until `done` holds, for at most `timeout`.
async fn until(
    rx: &mut mpsc::UnboundedReceiver<Reconciled>,
    timeout: Duration,
    mut done: impl FnMut(&Reconciled) -> bool,
) -> Result<(), BenchError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(r)) => {
                if done(&r) {
                    return Ok(());
                }
            }
            Ok(None) => return Err(BenchError("the controller stopped".into())),
            Err(_) => return Err(BenchError(format!("not done within {timeout:?}"))),
        }
    }
}

/// Runs the benchmark and prints its figures.
pub async fn run(options: BenchOptions) -> Result<(), BenchError> {
    if cfg!(debug_assertions) {
        println!("note: a debug build; run with --release for figures worth reporting");
    }
    let target = embedded(Duration::from_millis(200), "bench")
        .await
        .map_err(|e| BenchError(e.to_string()))?;
    println!("{}", target.description);
    let client = target
        .client(0.0, 0)
        .map_err(|e| BenchError(e.to_string()))?;
    install_crd(&client, Duration::from_secs(20))
        .await
        .map_err(|e| BenchError(e.to_string()))?;
    let podsets: Api<PodSet> = Api::namespaced(client.clone(), NAMESPACE);
    let template: k8s_openapi::api::core::v1::PodTemplateSpec = serde_json::from_value(serde_json::json!({
        "metadata": {"labels": {"app": "bench"}},
        "spec": {"containers": [{"name": "main", "image": "nginx"}], "terminationGracePeriodSeconds": 0},
    }))
    .map_err(|e| BenchError(e.to_string()))?;
    let names: Vec<String> = (0..options.podsets).map(|i| format!("set-{i}")).collect();
    let created = Instant::now();
    for name in &names {
        podsets
            .create(
                &PostParams::default(),
                &PodSet::new(name, options.pods_per_set, template.clone()),
            )
            .await
            .map_err(fail("creating a PodSet"))?;
    }
    println!(
        "{} PodSets of {} pods created in {:.1} s; starting the controller ({} workers)",
        options.podsets,
        options.pods_per_set,
        created.elapsed().as_secs_f64(),
        options.workers
    );

    let broadcaster = EventBroadcaster::new();
    broadcaster
        .start_recording_to_sink(RestSink::new(client.clone()))
        .map_err(|e| BenchError(e.to_string()))?;
    let factory = SharedInformerFactory::builder(client.clone())
        .namespace(NAMESPACE)
        .build();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let controller = Controller::new(
        client.clone(),
        &factory,
        broadcaster.new_recorder("podset-bench"),
        None,
        ControllerOptions {
            workers: options.workers,
            ..ControllerOptions::default()
        },
        Some(tx),
    )
    .map_err(|e| BenchError(e.to_string()))?;
    let cancel = CancellationToken::new();
    let started = Instant::now();
    factory
        .start(&cancel)
        .map_err(|e| BenchError(e.to_string()))?;
    let run = tokio::spawn({
        let (controller, cancel) = (controller.clone(), cancel.clone());
        async move { controller.run(cancel).await }
    });

    // 1. Convergence.
    let want = options.pods_per_set;
    let mut ready: HashSet<String> = HashSet::new();
    let mut reconciles = 0u64;
    let total = options.podsets;
    until(&mut rx, Duration::from_secs(600), |r| {
        reconciles += 1;
        if r.status
            .as_ref()
            .is_some_and(|s| s.ready_replicas == want && s.replicas == want)
        {
            ready.insert(r.key.clone());
        }
        ready.len() == total
    })
    .await?;
    let took = started.elapsed();
    let pods = total as f64 * f64::from(want);
    println!(
        "convergence: {total} PodSets, {pods} pods Ready in {:.2} s: {reconciles} reconciles, {:.0} reconciles/s, {:.0} pods/s",
        took.as_secs_f64(),
        reconciles as f64 / took.as_secs_f64(),
        pods / took.as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    while rx.try_recv().is_ok() {}

    // 2. No-op reconciles.
    let rounds = options.noop_rounds;
    let started = Instant::now();
    for _ in 0..rounds {
        for name in &names {
            controller.queue().add(format!("{NAMESPACE}/{name}"));
        }
        // The queue dedups a key that is still queued: wait for the round to drain.
        let mut seen = 0usize;
        until(&mut rx, Duration::from_secs(120), |_| {
            seen += 1;
            seen >= total
        })
        .await?;
    }
    let took = started.elapsed();
    let count = rounds * total;
    println!(
        "no-op reconciles: {count} in {:.2} s: {:.0} reconciles/s ({:.1} µs each, {} workers)",
        took.as_secs_f64(),
        count as f64 / took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / count as f64,
        options.workers
    );
    while rx.try_recv().is_ok() {}

    // 3. Change to reconcile.
    let mut to_start = Vec::new();
    let mut to_end = Vec::new();
    for name in names.iter().take(options.changes) {
        let key = format!("{NAMESPACE}/{name}");
        let patch = Patch::Merge(serde_json::json!({"spec": {"replicas": want + 1}}));
        let sent = Instant::now();
        let patched = podsets
            .patch(name, &PatchParams::default(), &patch)
            .await
            .map_err(fail("scaling a PodSet"))?;
        let generation = patched.metadata.generation.unwrap_or(0);
        let mut seen: Option<Reconciled> = None;
        until(&mut rx, Duration::from_secs(30), |r| {
            if r.key == key && r.generation >= generation {
                seen = Some(r.clone());
                true
            } else {
                false
            }
        })
        .await?;
        if let Some(r) = seen {
            to_start.push(r.started.saturating_duration_since(sent));
            to_end.push(r.at.saturating_duration_since(sent));
        }
    }
    to_start.sort();
    to_end.sort();
    println!(
        "change to reconcile ({} changes, one at a time): start p50 {} p99 {}; end (pod created, status written) p50 {} p99 {}",
        to_start.len(),
        ms(percentile(&to_start, 50.0)),
        ms(percentile(&to_start, 99.0)),
        ms(percentile(&to_end, 50.0)),
        ms(percentile(&to_end, 99.0)),
    );

    let (ok, failed) = controller.reconciler().metrics().reconcile_counts();
    println!("reconciles in all: {ok} succeeded, {failed} failed");
    cancel.cancel();
    let _ = run.await;
    factory.shutdown().await;
    let counters = broadcaster.counters();
    let report = broadcaster.shutdown().await;
    println!(
        "events: {counters:?} (a burst beyond client-go's 1000 queued events is dropped and counted); {report:?}"
    );
    Ok(())
}
