//! A simulated kubelet: binds pods to a fake node and, after a delay, reports them Running and
//! Ready with container statuses; a changed container image restarts that container.
//!
//! It reacts to the store's change feed, so it sees every pod however it was written.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::api::ApiServer;
use crate::object::{meta_str, now_rfc3339};
use crate::status::ApiError;
use crate::store::{Change, EventType, ObjectKey, StoredEvent};

/// The name of the node the simulated kubelet runs pods on.
pub const NODE_NAME: &str = "kube-testserver-node";

const POD_IP: &str = "10.244.0.10";
const HOST_IP: &str = "172.18.0.2";

fn pods_storage() -> (String, String) {
    (String::new(), "pods".to_string())
}

/// The node object the simulated kubelet registers.
pub fn node() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": NODE_NAME, "labels": {"kubernetes.io/hostname": NODE_NAME, "kubernetes.io/os": "linux"}},
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status (simulated)"}],
            "addresses": [{"type": "InternalIP", "address": HOST_IP}, {"type": "Hostname", "address": NODE_NAME}],
            "nodeInfo": {"kubeletVersion": "v1.24.0-kube-testserver", "operatingSystem": "linux", "architecture": "amd64"}
        }
    })
}

/// Whether the kubelet has something to do for this pod: not running yet, or a container whose
/// image differs from what runs.
fn needs_work(pod: &Value) -> bool {
    if meta_str(pod, "deletionTimestamp").is_some() {
        return false;
    }
    if pod["status"]["phase"] != "Running" {
        return true;
    }
    let statuses = pod["status"]["containerStatuses"].as_array();
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|container| {
            let running = statuses.and_then(|s| s.iter().find(|s| s["name"] == container["name"]));
            running.is_none_or(|s| s["image"] != container["image"])
        })
}

/// The pod as a kubelet would report it now.
fn run_pod(pod: &Value) -> Value {
    let now = now_rfc3339();
    let mut pod = pod.clone();
    if pod["spec"]["nodeName"].as_str().unwrap_or("").is_empty() {
        pod["spec"]["nodeName"] = json!(NODE_NAME);
    }
    let previous: Vec<Value> = pod["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let statuses: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|container| {
            let before = previous.iter().find(|s| s["name"] == container["name"]);
            let (restarts, started) = match before {
                // Same image: the container keeps running.
                Some(s) if s["image"] == container["image"] => (
                    s["restartCount"].as_i64().unwrap_or(0),
                    s["state"]["running"]["startedAt"].clone(),
                ),
                // New image: the container restarts.
                Some(s) => (s["restartCount"].as_i64().unwrap_or(0) + 1, json!(now)),
                None => (0, json!(now)),
            };
            json!({
                "name": container["name"],
                "image": container["image"],
                "imageID": format!("docker.io/library/{}@sha256:0", container["image"].as_str().unwrap_or("")),
                "containerID": format!("containerd://{}", crate::object::new_uid().replace('-', "")),
                "ready": true,
                "started": true,
                "restartCount": restarts,
                "state": {"running": {"startedAt": started}},
            })
        })
        .collect();
    let condition = |kind: &str| json!({"type": kind, "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
    let start_time = pod["status"]["startTime"].clone();
    pod["status"] = json!({
        "phase": "Running",
        "conditions": [condition("Initialized"), condition("Ready"), condition("ContainersReady"), condition("PodScheduled")],
        "hostIP": HOST_IP,
        "podIP": POD_IP,
        "podIPs": [{"ip": POD_IP}],
        "startTime": if start_time.is_null() { json!(now) } else { start_time },
        "containerStatuses": statuses,
        "qosClass": pod["status"]["qosClass"].as_str().unwrap_or("BestEffort"),
    });
    pod
}

/// Runs the simulated kubelet until the server shuts down: every pod that needs work is
/// updated `delay` after the change that made it need it.
pub async fn run(server: Arc<ApiServer>, delay: Duration) {
    let pending: Arc<Mutex<HashSet<ObjectKey>>> = Arc::default();
    let mut feed = match server
        .store
        .watch(&pods_storage(), crate::store::WatchStart::Now)
    {
        Ok(feed) => feed,
        Err(error) => {
            tracing::error!(?error, "simulated kubelet cannot watch pods");
            return;
        }
    };
    for event in &feed.initial {
        schedule(&server, &pending, event, delay);
    }
    loop {
        let received = tokio::select! {
            _ = server.shutdown.cancelled() => return,
            received = feed.live.recv() => received,
        };
        match received {
            Ok(event) => {
                if event.storage == pods_storage() && event.kind != EventType::Deleted {
                    schedule(&server, &pending, &event, delay);
                }
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "simulated kubelet fell behind; rescanning pods");
                if let Ok(snapshot) = server.store.list(&pods_storage(), None, None) {
                    for pod in snapshot.objects {
                        let key = (
                            meta_str(&pod, "namespace").unwrap_or("").to_string(),
                            meta_str(&pod, "name").unwrap_or("").to_string(),
                        );
                        schedule_key(&server, &pending, key, &pod, delay);
                    }
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}

fn schedule(
    server: &Arc<ApiServer>,
    pending: &Arc<Mutex<HashSet<ObjectKey>>>,
    event: &StoredEvent,
    delay: Duration,
) {
    schedule_key(server, pending, event.key.clone(), &event.object, delay);
}

fn schedule_key(
    server: &Arc<ApiServer>,
    pending: &Arc<Mutex<HashSet<ObjectKey>>>,
    key: ObjectKey,
    pod: &Value,
    delay: Duration,
) {
    if !needs_work(pod) || !pending.lock().insert(key.clone()) {
        return;
    }
    let server = Arc::clone(server);
    let pending = Arc::clone(pending);
    tokio::spawn(async move {
        tokio::select! {
            _ = server.shutdown.cancelled() => return,
            _ = tokio::time::sleep(delay) => {}
        }
        pending.lock().remove(&key);
        let result =
            server
                .store
                .update(&pods_storage(), &key, ApiError::path_not_found, |current| {
                    if needs_work(current) {
                        Ok(Change::Replace(run_pod(current)))
                    } else {
                        Ok(Change::Unchanged)
                    }
                });
        if let Err(error) = result {
            // Deleted meanwhile: nothing to run.
            tracing::debug!(?error, pod = %key.1, "simulated kubelet skipped a pod");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_start_and_restart_on_image_change() {
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
            "status": {"phase": "Pending"}});
        assert!(needs_work(&pod));
        let running = run_pod(&pod);
        assert_eq!(running["status"]["phase"], "Running");
        assert_eq!(running["spec"]["nodeName"], NODE_NAME);
        assert_eq!(running["status"]["containerStatuses"][0]["restartCount"], 0);
        assert!(!needs_work(&running));
        let mut updated = running.clone();
        updated["spec"]["containers"][0]["image"] = json!("nginx:2");
        assert!(needs_work(&updated));
        let restarted = run_pod(&updated);
        assert_eq!(
            restarted["status"]["containerStatuses"][0]["restartCount"],
            1
        );
        assert_eq!(
            restarted["status"]["containerStatuses"][0]["image"],
            "nginx:2"
        );
        let mut terminating = pod.clone();
        terminating["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert!(!needs_work(&terminating));
    }
}
