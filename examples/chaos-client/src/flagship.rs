//! The flagship controller under faults: PodSets (created here, as `DynamicObject`s) reconciled
//! by two `podset-controller run` replicas the runner started. This client watches the pods
//! itself and checks every state it sees (a PodSet never owns more live pods than it asks for),
//! polls both replicas' `/metrics` every 100 ms (never both leading, never both reconciling in
//! one interval), kills a pod a second during the faults so the controller has work, and after
//! the faults waits for every PodSet to own exactly its replicas.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube_apimachinery::{DynamicObject, Object, ResourceInfo, Scope, WatchEvent};
use kube_rest::{Api, Client, DeleteParams, ListParams, PostParams, WatchParams};
use parking_lot::Mutex;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::common::{Options, Report, Result, emit, retry, wait_for_check};

const NAMESPACE: &str = "chaos-flagship";
const PODSETS: usize = 4;
const REPLICAS: usize = 3;

fn podset_info() -> ResourceInfo {
    ResourceInfo::new(
        "demo.kube-toolkit.dev",
        "v1",
        "PodSet",
        "podsets",
        Scope::Namespaced,
    )
}

/// The pods as the watch shows them, and what was seen wrong.
#[derive(Default)]
struct PodView {
    /// name → (controlling PodSet uid, terminating)
    pods: HashMap<String, (Option<String>, bool)>,
    /// PodSet uid → most live pods ever owned at once.
    most: HashMap<String, usize>,
    over: Vec<String>,
    states: u64,
    relists: u64,
}

impl PodView {
    fn apply(&mut self, pod: &Pod, deleted: bool) {
        let name = pod.name().to_string();
        if deleted {
            self.pods.remove(&name);
        } else {
            let owner = pod.controller_ref().map(|r| r.uid.clone());
            self.pods.insert(name, (owner, pod.is_being_deleted()));
        }
        self.check();
    }

    fn check(&mut self) {
        self.states += 1;
        let mut owned: HashMap<&String, usize> = HashMap::new();
        for (owner, terminating) in self.pods.values() {
            if let (Some(owner), false) = (owner, terminating) {
                *owned.entry(owner).or_default() += 1;
            }
        }
        for (owner, count) in owned {
            let most = self.most.entry(owner.clone()).or_default();
            *most = (*most).max(count);
            if count > REPLICAS && self.over.len() < 20 {
                self.over.push(format!(
                    "PodSet {owner} owned {count} live pods (asked {REPLICAS})"
                ));
            }
        }
    }
}

/// Follows the namespace's pods: resumes from the last resourceVersion after a cut, relists
/// only on 410.
async fn watch_pods(client: Client, view: Arc<Mutex<PodView>>, cancel: CancellationToken) {
    let api = Api::<Pod>::namespaced(client, NAMESPACE);
    'relist: loop {
        let list = loop {
            if cancel.is_cancelled() {
                return;
            }
            match api.list(&ListParams::default()).await {
                Ok(list) => break list,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let mut rv = list.metadata.resource_version.clone().unwrap_or_default();
        {
            let mut view = view.lock();
            view.relists += 1;
            view.pods.clear();
            for pod in &list.items {
                let owner = pod.controller_ref().map(|r| r.uid.clone());
                view.pods
                    .insert(pod.name().to_string(), (owner, pod.is_being_deleted()));
            }
            view.check();
        }
        loop {
            let params = WatchParams::default().timeout(60);
            let mut stream = match api.watch(&params, &rv).await {
                Ok(stream) => stream,
                Err(e) if e.is_gone() => continue 'relist,
                Err(_) => {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => continue,
                    }
                }
            };
            loop {
                let event = tokio::select! {
                    _ = cancel.cancelled() => return,
                    event = stream.next() => event,
                };
                match event {
                    Some(Ok(WatchEvent::Added(pod))) | Some(Ok(WatchEvent::Modified(pod))) => {
                        rv = pod.resource_version().unwrap_or(&rv).to_string();
                        view.lock().apply(&pod, false);
                    }
                    Some(Ok(WatchEvent::Deleted(pod))) => {
                        rv = pod.resource_version().unwrap_or(&rv).to_string();
                        view.lock().apply(&pod, true);
                    }
                    Some(Ok(WatchEvent::Bookmark(mark))) => rv = mark.resource_version,
                    Some(Ok(WatchEvent::Error(status))) if status.code == 410 => continue 'relist,
                    // A cut stream or an error: resume from the last resourceVersion.
                    Some(Ok(WatchEvent::Error(_))) | Some(Err(_)) | None => break,
                }
            }
        }
    }
}

/// `GET /metrics` of a replica (plain HTTP on loopback).
async fn scrape(address: &str) -> Option<String> {
    let connect = tokio::net::TcpStream::connect(address);
    let mut stream = tokio::time::timeout(Duration::from_millis(500), connect)
        .await
        .ok()?
        .ok()?;
    let request = format!("GET /metrics HTTP/1.0\r\nHost: {address}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut body = String::new();
    tokio::time::timeout(Duration::from_secs(1), stream.read_to_string(&mut body))
        .await
        .ok()?
        .ok()?;
    Some(body)
}

/// (leading, reconciles so far) from a replica's metrics.
fn read_metrics(text: &str) -> (bool, f64) {
    let mut leading = false;
    let mut reconciles = 0.0;
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
        if line.starts_with("leader_election_master_status") && value == 1.0 {
            leading = true;
        }
        if line.starts_with("podset_reconciles") && !line.contains("_created") {
            reconciles += value;
        }
    }
    (leading, reconciles)
}

#[derive(Default)]
struct Witness {
    both_leading: Vec<String>,
    both_reconciling: Vec<String>,
    reconciles: Vec<f64>,
    polls: u64,
    leader_changes: u64,
}

async fn poll_replicas(
    addresses: Vec<String>,
    witness: Arc<Mutex<Witness>>,
    cancel: CancellationToken,
) {
    let start = Instant::now();
    let mut last: Vec<Option<(bool, f64)>> = vec![None; addresses.len()];
    let mut leader: Option<usize> = None;
    while !cancel.is_cancelled() {
        let mut now = Vec::new();
        for address in &addresses {
            now.push(scrape(address).await.map(|text| read_metrics(&text)));
        }
        let at = start.elapsed().as_secs_f64();
        {
            let mut w = witness.lock();
            w.polls += 1;
            let leaders: Vec<usize> = (0..now.len())
                .filter(|i| now[*i].is_some_and(|(leading, _)| leading))
                .collect();
            if leaders.len() > 1 {
                w.both_leading
                    .push(format!("at {at:.1}s replicas {leaders:?} both lead"));
            }
            if let Some(&current) = leaders.first()
                && leader != Some(current)
            {
                w.leader_changes += 1;
                leader = Some(current);
            }
            let reconciling: Vec<usize> = (0..now.len())
                .filter(|i| match (last[*i], now[*i]) {
                    (Some((_, before)), Some((_, after))) => after > before,
                    _ => false,
                })
                .collect();
            if reconciling.len() > 1 {
                w.both_reconciling.push(format!(
                    "at {at:.1}s replicas {reconciling:?} both reconciled"
                ));
            }
            w.reconciles = now.iter().map(|m| m.map_or(0.0, |(_, r)| r)).collect();
        }
        for (slot, value) in last.iter_mut().zip(now) {
            if value.is_some() {
                *slot = value;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn run(options: &Options) -> Result<()> {
    let client = options.client()?;
    let mut ns = Namespace::default();
    ns.metadata.name = Some(NAMESPACE.into());
    let namespaces = Api::<Namespace>::cluster(client.clone());
    retry(Duration::from_secs(60), || async {
        match namespaces.create(&PostParams::default(), &ns).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_already_exists() => Ok(()),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    // The replicas install the CRD: retry until PodSets are served.
    let podsets = Api::dynamic(client.clone(), &podset_info(), Some(NAMESPACE));
    for index in 0..PODSETS {
        let podset = DynamicObject::new(&format!("ps-{index}"), &podset_info())
            .within(NAMESPACE)
            .with(
                "spec",
                json!({"replicas": REPLICAS, "template": {
                    "metadata": {"labels": {"app": "chaos"}},
                    "spec": {"containers": [{"name": "main", "image": "busybox"}]}
                }}),
            );
        retry(Duration::from_secs(90), || async {
            match podsets.create(&PostParams::default(), &podset).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_already_exists() => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
    }
    let view = Arc::new(Mutex::new(PodView::default()));
    let witness = Arc::new(Mutex::new(Witness::default()));
    let cancel = CancellationToken::new();
    let watcher = tokio::spawn(watch_pods(client.clone(), view.clone(), cancel.clone()));
    let poller = tokio::spawn(poll_replicas(
        options.metrics.clone(),
        witness.clone(),
        cancel.clone(),
    ));
    emit(json!({"ready": true}));
    // A pod killer until the check: the controller must replace what it loses.
    let killing = CancellationToken::new();
    let killer = tokio::spawn({
        let (client, view, killing) = (client.clone(), view.clone(), killing.clone());
        let mut rng = fastrand::Rng::with_seed(options.seed);
        async move {
            let api = Api::<Pod>::namespaced(client, NAMESPACE);
            let mut killed = 0u64;
            loop {
                tokio::select! {
                    _ = killing.cancelled() => return killed,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                let names: Vec<String> = {
                    let view = view.lock();
                    let mut names: Vec<String> = view.pods.keys().cloned().collect();
                    names.sort();
                    names
                };
                if names.is_empty() {
                    continue;
                }
                let name = &names[rng.usize(..names.len())];
                if api.delete(name, &DeleteParams::default()).await.is_ok() {
                    killed += 1;
                }
            }
        }
    });
    wait_for_check().await;
    killing.cancel();
    let killed = killer.await?;
    // Convergence: every PodSet owns exactly its replicas (live pods, read from the server).
    let started = Instant::now();
    let truth_client = options.client()?;
    let pods = Api::<Pod>::namespaced(truth_client.clone(), NAMESPACE);
    let podsets = Api::dynamic(truth_client, &podset_info(), Some(NAMESPACE));
    let mut owned: BTreeMap<String, usize> = BTreeMap::new();
    let mut converged = false;
    while started.elapsed() < Duration::from_secs(120) {
        if let (Ok(sets), Ok(list)) = (
            podsets.list(&ListParams::default()).await,
            pods.list(&ListParams::default()).await,
        ) {
            owned = sets
                .items
                .iter()
                .map(|set| {
                    let uid = set.uid().unwrap_or_default();
                    let count = list
                        .items
                        .iter()
                        .filter(|p| !p.is_being_deleted())
                        .filter(|p| p.controller_ref().is_some_and(|r| r.uid == uid))
                        .count();
                    (set.name().to_string(), count)
                })
                .collect();
            if owned.len() == PODSETS && owned.values().all(|c| *c == REPLICAS) {
                converged = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let converge_ms = started.elapsed().as_millis() as u64;
    // A last look at the replicas, then stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    cancel.cancel();
    let _ = watcher.await;
    let _ = poller.await;
    let view = view.lock();
    let witness = witness.lock();
    let mut report = Report::default();
    report.check(view.over.is_empty(), || {
        format!("more pods than asked: {:?}", view.over)
    });
    report.check(witness.both_leading.is_empty(), || {
        format!("two replicas leading at once: {:?}", witness.both_leading)
    });
    report.check(witness.both_reconciling.is_empty(), || {
        format!(
            "two replicas reconciling at once: {:?}",
            witness.both_reconciling
        )
    });
    report.check(converged, || {
        format!("not converged within 120 s after the faults: {owned:?}")
    });
    report.stat("pods_killed", killed);
    report.stat("pod_states_checked", view.states);
    report.stat("pod_relists", view.relists);
    report.stat(
        "most_pods_owned",
        view.most.values().copied().max().unwrap_or(0),
    );
    report.stat("converge_ms", converge_ms);
    report.stat("metric_polls", witness.polls);
    report.stat("leader_changes", witness.leader_changes);
    report.stat("reconciles", json!(witness.reconciles));
    report.emit();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_read() {
        let text = "# HELP x\nleader_election_master_status{name=\"podset-controller\"} 1\npodset_reconciles_total{result=\"success\"} 7\npodset_reconciles_total{result=\"error\"} 2\n";
        assert_eq!(read_metrics(text), (true, 9.0));
        assert_eq!(
            read_metrics("leader_election_master_status{name=\"a\"} 0\n"),
            (false, 0.0)
        );
    }
}
