//! A simulated kubelet: binds pods to a fake node and, after a delay, reports them Running and
//! Ready with container statuses; a changed container image restarts that container (the old
//! instance goes to `lastState.terminated`); a pod being deleted has its containers stopped and
//! is then removed, within its grace period. The containers' run times are recorded for their
//! logs ([`crate::logs`]).
//!
//! It reacts to the store's change feed, so it sees every pod however it was written.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use jiff::Timestamp;

use crate::api::{ApiServer, ResourceRequest};
use crate::logs::Containers;
use crate::object::{self, meta_str};
use crate::pod_connect::pods_storage;
use crate::status::ApiError;
use crate::store::{Change, EventType, ObjectKey};

/// The name of the node the simulated kubelet runs pods on.
pub const NODE_NAME: &str = "kube-testserver-node";

const POD_IP: &str = "10.244.0.10";
const HOST_IP: &str = "172.18.0.2";

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

/// Whether the kubelet has to stop this pod: it is being deleted, it runs here (is bound), and
/// its containers still run or its grace period has not been cut to 0 yet.
fn needs_termination(pod: &Value) -> bool {
    if meta_str(pod, "deletionTimestamp").is_none()
        || pod["spec"]["nodeName"].as_str().unwrap_or("").is_empty()
    {
        return false;
    }
    let grace = pod["metadata"]["deletionGracePeriodSeconds"]
        .as_i64()
        .unwrap_or(0);
    let running = pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| !s["state"]["terminated"].is_object());
    grace > 0 || running
}

fn seconds(time: Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The pod as a kubelet would report it at `now`; the container instances it starts or stops
/// are recorded in `containers`.
fn run_pod(pod: &Value, now: Timestamp, containers: &Containers) -> Value {
    let now_text = seconds(now);
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
            let running = before.filter(|s| s["state"]["running"].is_object());
            match running {
                // Same image: the container keeps running.
                Some(s) if s["image"] == container["image"] => return s.clone(),
                _ => {}
            }
            let id = format!("containerd://{}", crate::object::new_uid().replace('-', ""));
            containers.started(&id, now);
            let (restarts, last_state) = match before {
                // New image: the running container is killed and a new one starts.
                Some(s) => {
                    let old_id = &s["containerID"];
                    if let Some(old) = old_id.as_str() {
                        containers.finished(old, now);
                    }
                    let last = if s["state"]["running"].is_object() {
                        // The instance before the previous one can no longer be asked for.
                        if let Some(older) = s["lastState"]["terminated"]["containerID"].as_str()
                        {
                            containers.forget(older);
                        }
                        json!({"terminated": crate::logs::terminated_state(
                            137,
                            &s["state"]["running"]["startedAt"],
                            &now_text,
                            old_id,
                        )})
                    } else {
                        s["lastState"].clone()
                    };
                    (s["restartCount"].as_i64().unwrap_or(0) + 1, last)
                }
                None => (0, json!({})),
            };
            json!({
                "name": container["name"],
                "image": container["image"],
                "imageID": format!("docker.io/library/{}@sha256:0", container["image"].as_str().unwrap_or("")),
                "containerID": id,
                "ready": true,
                "started": true,
                "restartCount": restarts,
                "state": {"running": {"startedAt": now_text}},
                "lastState": last_state,
            })
        })
        .collect();
    let condition = |kind: &str| json!({"type": kind, "status": "True", "lastProbeTime": null, "lastTransitionTime": now_text});
    let start_time = pod["status"]["startTime"].clone();
    pod["status"] = json!({
        "phase": "Running",
        "conditions": [condition("Initialized"), condition("Ready"), condition("ContainersReady"), condition("PodScheduled")],
        "hostIP": HOST_IP,
        "podIP": POD_IP,
        "podIPs": [{"ip": POD_IP}],
        "startTime": if start_time.is_null() { json!(now_text) } else { start_time },
        "containerStatuses": statuses,
        "qosClass": pod["status"]["qosClass"].as_str().unwrap_or("BestEffort"),
    });
    pod
}

/// The pod as a v1.24 kubelet reports it once its containers stopped for its deletion: each
/// container terminated (they exit on SIGTERM: exit code 143), not ready; the phase stays.
fn stop_pod(pod: &Value, now: Timestamp, containers: &Containers) -> Value {
    let now_text = seconds(now);
    let mut pod = pod.clone();
    let mut names = Vec::new();
    if let Some(statuses) = pod["status"]["containerStatuses"].as_array_mut() {
        for status in statuses.iter_mut() {
            if status["state"]["terminated"].is_object() {
                continue;
            }
            names.push(status["name"].as_str().unwrap_or("").to_string());
            if let Some(id) = status["containerID"].as_str() {
                containers.finished(id, now);
            }
            let started = status["state"]["running"]["startedAt"].clone();
            status["state"] = json!({"terminated": crate::logs::terminated_state(
                143,
                &started,
                &now_text,
                &status["containerID"],
            )});
            status["ready"] = json!(false);
            status["started"] = json!(false);
        }
    }
    if let Some(conditions) = pod["status"]["conditions"].as_array_mut() {
        for condition in conditions.iter_mut() {
            if condition["type"] == "Ready" || condition["type"] == "ContainersReady" {
                condition["status"] = json!("False");
                condition["reason"] = json!("ContainersNotReady");
                condition["message"] = json!(format!(
                    "containers with unready status: [{}]",
                    names.join(" ")
                ));
                condition["lastTransitionTime"] = json!(now_text);
            }
        }
    }
    pod
}

/// A piece of work the kubelet has scheduled for a pod.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Work {
    /// Start its containers (or restart those with a new image).
    Run,
    /// Stop it for the deletion with this deletionTimestamp, then remove it.
    Stop(String),
}

type Pending = Arc<Mutex<HashSet<(ObjectKey, Work)>>>;

/// Runs the simulated kubelet until the server shuts down: every pod that needs work is
/// updated `delay` after the change that made it need it, and every pod being deleted is
/// stopped and removed `delay` later, or by its deletionTimestamp if that comes first.
pub async fn run(server: Arc<ApiServer>, delay: Duration) {
    let pending: Pending = Arc::default();
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
    for event in std::mem::take(&mut feed.initial) {
        schedule(
            &server,
            &pending,
            event.key.clone(),
            &event.object.value(),
            delay,
        );
    }
    loop {
        let received = tokio::select! {
            _ = server.shutdown.cancelled() => return,
            received = feed.live.recv() => received,
        };
        match received {
            Ok(event) if event.storage == pods_storage() => {
                let deleted = event.kind == EventType::Deleted;
                let pod = event.object.value();
                server.port_forward.pod_changed(&pod, deleted);
                if deleted {
                    forget_containers(&server.containers, &pod);
                } else {
                    schedule(&server, &pending, event.key.clone(), &pod, delay);
                }
            }
            Ok(_) => {}
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "simulated kubelet fell behind; rescanning pods");
                server.port_forward.resync(&server);
                if let Ok(snapshot) = server.store.list(&pods_storage(), None, None) {
                    for pod in snapshot.objects {
                        let pod = pod.value();
                        let key = (
                            meta_str(&pod, "namespace").unwrap_or("").to_string(),
                            meta_str(&pod, "name").unwrap_or("").to_string(),
                        );
                        schedule(&server, &pending, key, &pod, delay);
                    }
                }
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// Drops the recorded run times of a deleted pod's containers.
fn forget_containers(containers: &Containers, pod: &Value) {
    for status in pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for id in [
            &status["containerID"],
            &status["lastState"]["terminated"]["containerID"],
        ] {
            if let Some(id) = id.as_str() {
                containers.forget(id);
            }
        }
    }
}

fn schedule(
    server: &Arc<ApiServer>,
    pending: &Pending,
    key: ObjectKey,
    pod: &Value,
    delay: Duration,
) {
    if needs_termination(pod) {
        let deletion = meta_str(pod, "deletionTimestamp").unwrap_or("").to_string();
        // Never later than the deletionTimestamp: the grace period is over then.
        let remaining = deletion
            .parse::<Timestamp>()
            .ok()
            .and_then(|at| Timestamp::now().duration_until(at).try_into().ok())
            .unwrap_or(Duration::ZERO);
        let wait = delay.min(remaining);
        let uid = meta_str(pod, "uid").unwrap_or("").to_string();
        spawn_work(
            server,
            pending,
            key,
            Work::Stop(deletion),
            wait,
            move |server, key| {
                stop_and_remove(server, key, &uid);
            },
        );
    } else if needs_work(pod) {
        spawn_work(server, pending, key, Work::Run, delay, |server, key| {
            let containers = &server.containers;
            let result =
                server
                    .store
                    .update(&pods_storage(), key, ApiError::path_not_found, |current| {
                        if needs_work(current) {
                            Ok(Change::Replace(run_pod(
                                current,
                                Timestamp::now(),
                                containers,
                            )))
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
}

/// Runs `work` on the pod at `key` after `wait`, unless the same work is already scheduled.
/// Stopping stays scheduled while it runs (its own status write needs no second stop); running
/// does not, so a change made while it writes gets its own turn.
fn spawn_work(
    server: &Arc<ApiServer>,
    pending: &Pending,
    key: ObjectKey,
    work: Work,
    wait: Duration,
    job: impl FnOnce(&ApiServer, &ObjectKey) + Send + 'static,
) {
    let entry = (key, work);
    if !pending.lock().insert(entry.clone()) {
        return;
    }
    let server = Arc::clone(server);
    let pending = Arc::clone(pending);
    tokio::spawn(async move {
        tokio::select! {
            _ = server.shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let stopping = matches!(entry.1, Work::Stop(_));
        if !stopping {
            pending.lock().remove(&entry);
        }
        job(&server, &entry.0);
        if stopping {
            pending.lock().remove(&entry);
        }
    });
}

/// Stops a terminating pod's containers, reports them terminated, and deletes the pod for
/// good (grace period 0), as the kubelet's status manager does.
fn stop_and_remove(server: &ApiServer, key: &ObjectKey, uid: &str) {
    let containers = &server.containers;
    let stopped = server
        .store
        .update(&pods_storage(), key, ApiError::path_not_found, |current| {
            if meta_str(current, "uid") != Some(uid) || !needs_termination(current) {
                return Ok(Change::Unchanged);
            }
            let stopped = stop_pod(current, Timestamp::now(), containers);
            if object::differs_ignoring_version(current, &stopped) {
                Ok(Change::Replace(stopped))
            } else {
                Ok(Change::Unchanged)
            }
        });
    if let Err(error) = stopped {
        tracing::debug!(?error, pod = %key.1, "simulated kubelet: pod already gone");
        return;
    }
    let Some(pods) = server.registry.get("", "v1", "pods") else {
        return;
    };
    let request = ResourceRequest {
        resource: pods,
        namespace: Some(key.0.clone()),
        name: Some(key.1.clone()),
        subresource: None,
    };
    let options = json!({"gracePeriodSeconds": 0, "preconditions": {"uid": uid}});
    if let Err(error) = server.delete_object(&request, &key.1, &options) {
        tracing::debug!(?error, pod = %key.1, "simulated kubelet: final delete");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_start_and_restart_on_image_change() {
        let containers = Containers::default();
        let t0: Timestamp = "2026-01-01T00:00:00.5Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:01:00.5Z".parse().unwrap();
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
            "status": {"phase": "Pending"}});
        assert!(needs_work(&pod));
        let running = run_pod(&pod, t0, &containers);
        assert_eq!(running["status"]["phase"], "Running");
        assert_eq!(running["spec"]["nodeName"], NODE_NAME);
        let status = &running["status"]["containerStatuses"][0];
        assert_eq!(status["restartCount"], 0);
        assert_eq!(
            status["state"]["running"]["startedAt"],
            "2026-01-01T00:00:00Z"
        );
        let first_id = status["containerID"].as_str().unwrap().to_string();
        assert_eq!(containers.run(&first_id).unwrap().started, t0);
        assert!(!needs_work(&running));
        // Nothing changed: the same instance keeps running.
        let again = run_pod(&running, t1, &containers);
        assert_eq!(
            again["status"]["containerStatuses"][0]["containerID"],
            first_id.as_str()
        );
        let mut updated = running.clone();
        updated["spec"]["containers"][0]["image"] = json!("nginx:2");
        assert!(needs_work(&updated));
        let restarted = run_pod(&updated, t1, &containers);
        let status = &restarted["status"]["containerStatuses"][0];
        assert_eq!(status["restartCount"], 1);
        assert_eq!(status["image"], "nginx:2");
        assert_ne!(status["containerID"], first_id.as_str());
        assert_eq!(
            status["lastState"]["terminated"],
            json!({"exitCode": 137, "reason": "Error", "startedAt": "2026-01-01T00:00:00Z",
                "finishedAt": "2026-01-01T00:01:00Z", "containerID": first_id})
        );
        assert_eq!(containers.run(&first_id).unwrap().finished, Some(t1));
        // A second restart: the first instance is no longer anyone's previous one.
        let second_id = status["containerID"].as_str().unwrap().to_string();
        let mut updated = restarted.clone();
        updated["spec"]["containers"][0]["image"] = json!("nginx:3");
        let again = run_pod(&updated, t1, &containers);
        assert_eq!(
            again["status"]["containerStatuses"][0]["lastState"]["terminated"]["containerID"],
            second_id.as_str()
        );
        assert!(containers.run(&first_id).is_none());
        assert!(containers.run(&second_id).is_some());
        let mut terminating = pod.clone();
        terminating["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert!(!needs_work(&terminating));
    }

    #[test]
    fn terminating_pods_are_stopped() {
        let containers = Containers::default();
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
            "status": {"phase": "Pending"}});
        let mut running = run_pod(&pod, t0, &containers);
        assert!(!needs_termination(&running));
        running["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:30Z");
        running["metadata"]["deletionGracePeriodSeconds"] = json!(30);
        assert!(needs_termination(&running));
        let stopped = stop_pod(&running, t0, &containers);
        let status = &stopped["status"]["containerStatuses"][0];
        assert_eq!(status["state"]["terminated"]["exitCode"], 143);
        assert_eq!(status["ready"], false);
        assert_eq!(stopped["status"]["phase"], "Running");
        assert_eq!(stopped["status"]["conditions"][1]["status"], "False");
        // Still graceful: the final delete is left to do.
        assert!(needs_termination(&stopped));
        let mut removed = stopped.clone();
        removed["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        assert!(!needs_termination(&removed));
        let mut unbound = pod.clone();
        unbound["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:30Z");
        assert!(!needs_termination(&unbound));
    }
}
