//! The demo: two replicas, one leads; a PodSet converges, scales, heals; the leader stops and
//! the other takes over; events, a JSONPath status line and the metrics are shown. Every step
//! is verified; the first failure ends the story (the cleanup still runs).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, Pod, PodTemplateSpec, ServiceAccount};
use kube_jsonpath::JsonPath;
use kube_rest::{Api, Client, DeleteParams, ListParams, Patch, PatchParams, PostParams};

use crate::podset::{CRD_NAME, Installed, KIND, NAME_LABEL, PodSet, install_crd};
use crate::reconcile::{is_ready, podset_owner};
use crate::replica::{Replica, ReplicaOptions};
use crate::target::{Choice, Target, connect};

/// A demo failure: what was being verified and what went wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct DemoError(String);

impl DemoError {
    fn new(message: impl Into<String>) -> DemoError {
        DemoError(message.into())
    }
}

fn api_error(what: &str) -> impl FnOnce(kube_rest::Error) -> DemoError + '_ {
    move |e| DemoError(format!("{what}: {e}"))
}

type Result<T, E = DemoError> = std::result::Result<T, E>;

/// The demo's options.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where to run.
    pub target: Choice,
    /// The pods' image.
    pub image: String,
    /// How long one step may take.
    pub step_timeout: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            target: Choice::Auto,
            image: "nginx:1.27".into(),
            step_timeout: Duration::from_secs(30),
        }
    }
}

const PODSET: &str = "web";
const QPS: f32 = 50.0;
const BURST: usize = 100;

/// Prints what each step verified.
struct Story {
    started: Instant,
    step: Instant,
    verified: usize,
}

impl Story {
    fn new() -> Story {
        Story {
            started: Instant::now(),
            step: Instant::now(),
            verified: 0,
        }
    }

    fn say(&self, text: &str) {
        println!("{:>6.2}s  {text}", self.started.elapsed().as_secs_f64());
    }

    fn begin(&mut self, text: &str) {
        self.step = Instant::now();
        self.say(text);
    }

    fn verified(&mut self, text: &str) {
        self.verified += 1;
        println!(
            "{:>6.2}s    verified: {text} ({:.2} s)",
            self.started.elapsed().as_secs_f64(),
            self.step.elapsed().as_secs_f64()
        );
    }
}

/// The state of a PodSet's pods, read from the API server.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    /// Owned, not terminating: (name, uid, ready).
    active: Vec<(String, String, bool)>,
    terminating: usize,
    status_replicas: i32,
    status_ready: i32,
    observed_generation: i64,
    generation: i64,
}

impl Observed {
    fn ready(&self) -> usize {
        self.active.iter().filter(|p| p.2).count()
    }

    fn names(&self) -> String {
        let mut names: Vec<&str> = self.active.iter().map(|p| p.0.as_str()).collect();
        names.sort();
        names.join(", ")
    }
}

struct Demo {
    client: Client,
    namespace: String,
    readiness: bool,
    timeout: Duration,
    story: Story,
}

impl Demo {
    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn podsets(&self) -> Api<PodSet> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    async fn observe(&self) -> Result<Observed> {
        let podset = self
            .podsets()
            .get(PODSET)
            .await
            .map_err(api_error("reading the PodSet"))?;
        let uid = podset.metadata.uid.clone().unwrap_or_default();
        let selector = format!("{NAME_LABEL}={PODSET}");
        let pods = self
            .pods()
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(api_error("listing pods"))?;
        let mut active = Vec::new();
        let mut terminating = 0;
        for pod in &pods.items {
            if podset_owner(pod).map(|o| o.uid.as_str()) != Some(uid.as_str()) {
                return Err(DemoError::new(format!(
                    "pod {} carries the PodSet's label but no controller ownerReference to it",
                    pod.metadata.name.as_deref().unwrap_or("")
                )));
            }
            if pod.metadata.deletion_timestamp.is_some() {
                terminating += 1;
                continue;
            }
            active.push((
                pod.metadata.name.clone().unwrap_or_default(),
                pod.metadata.uid.clone().unwrap_or_default(),
                is_ready(pod),
            ));
        }
        let status = podset.status.clone().unwrap_or_default();
        Ok(Observed {
            active,
            terminating,
            status_replicas: status.replicas,
            status_ready: status.ready_replicas,
            observed_generation: status.observed_generation,
            generation: podset.metadata.generation.unwrap_or(0),
        })
    }

    /// Waits until `replicas` owned pods are active (and Ready, when the cluster can run
    /// them) and the status says so for the current generation.
    async fn converge(
        &mut self,
        replicas: usize,
        extra: impl Fn(&Observed) -> bool,
    ) -> Result<Observed> {
        let deadline = Instant::now() + self.timeout;
        let mut last = None;
        loop {
            let observed = self.observe().await?;
            let want = i32::try_from(replicas).unwrap_or(i32::MAX);
            let done = observed.active.len() == replicas
                && observed.terminating == 0
                && observed.status_replicas == want
                && observed.observed_generation == observed.generation
                && (!self.readiness
                    || (observed.ready() == replicas && observed.status_ready == want))
                && extra(&observed);
            if done {
                return Ok(observed);
            }
            if Instant::now() >= deadline {
                return Err(DemoError::new(format!(
                    "not converged to {replicas} pods within {:?}: {observed:?}",
                    self.timeout
                )));
            }
            if last.as_ref() != Some(&observed) {
                last = Some(observed);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn converged_text(&self, observed: &Observed) -> String {
        let ready = if self.readiness {
            format!(
                ", all Ready; status.readyReplicas={}",
                observed.status_ready
            )
        } else {
            format!(
                "; status.replicas={} (readiness not verified: no kubelet)",
                observed.status_replicas
            )
        };
        format!(
            "{} pods ({}), each with a controller ownerReference to PodSet {PODSET}{ready}, observedGeneration={}",
            observed.active.len(),
            observed.names(),
            observed.observed_generation
        )
    }

    async fn scale(&self, replicas: i32) -> Result<()> {
        let patch = Patch::Merge(serde_json::json!({"spec": {"replicas": replicas}}));
        self.podsets()
            .patch(PODSET, &PatchParams::default(), &patch)
            .await
            .map_err(api_error("scaling the PodSet"))?;
        Ok(())
    }
}

fn template(image: &str) -> PodTemplateSpec {
    // ok: a constant document that matches the type
    serde_json::from_value(serde_json::json!({
        "metadata": {"labels": {"app": "web"}},
        "spec": {
            "containers": [{"name": "web", "image": image, "ports": [{"containerPort": 80}]}],
            "terminationGracePeriodSeconds": 1,
        }
    }))
    // ok: a literal of this file, checked by the tests and every demo run.
    .expect("the demo's template is a valid PodTemplateSpec")
}

/// Runs the demo; prints each verification; `Err` on the first failure.
pub async fn run(options: DemoOptions) -> Result<()> {
    let target = connect(&options.target, Duration::from_millis(300))
        .await
        .map_err(|e| DemoError::new(format!("no target: {e}")))?;
    println!("{}", target.description);
    let client = target
        .client(QPS, BURST)
        .map_err(|e| DemoError::new(format!("client: {e}")))?;
    let namespace = format!("podset-demo-{:04x}", fastrand::u16(..));
    let mut story = Story::new();
    story.begin(&format!("namespace {namespace}"));
    let readiness = setup(&client, &target, &namespace).await?;
    if readiness {
        story.verified("namespace created; the cluster runs pods (readiness will be verified)");
    } else {
        story.verified(
            "namespace created; NOTE: the cluster has no nodes (no kubelet), so pods never become Ready: \
             readiness is NOT verified, pod counts, ownership, recreation and failover are",
        );
    }
    let mut demo = Demo {
        client: client.clone(),
        namespace: namespace.clone(),
        readiness,
        timeout: options.step_timeout,
        story,
    };
    let mut replicas = Vec::new();
    let result = story_steps(&mut demo, &target, &options, &mut replicas).await;
    // Cleanup, whatever happened.
    let cleanup = cleanup(&demo, &target, replicas).await;
    match (&result, cleanup) {
        (Ok(()), Ok(())) => {
            println!(
                "podset demo passed: {} steps verified in {:.1} s",
                demo.story.verified,
                demo.story.started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        (Ok(()), Err(e)) => Err(DemoError::new(format!("cleanup: {e}"))),
        (Err(e), cleanup) => {
            if let Err(c) = cleanup {
                eprintln!("cleanup also failed: {c}");
            }
            Err(DemoError::new(e.to_string()))
        }
    }
}

/// Creates the namespace (and its `default` service account where no controller-manager
/// makes it); tells whether pods can become Ready (the cluster has a node).
async fn setup(client: &Client, target: &Target, namespace: &str) -> Result<bool> {
    let mut ns = Namespace::default();
    ns.metadata.name = Some(namespace.to_string());
    Api::<Namespace>::cluster(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .map_err(api_error("creating the namespace"))?;
    if !target.is_embedded() {
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
        let mut account = ServiceAccount::default();
        account.metadata.name = Some("default".into());
        match accounts.create(&PostParams::default(), &account).await {
            Ok(_) => {}
            Err(e) if e.is_already_exists() => {}
            Err(e) => return Err(api_error("creating the default service account")(e)),
        }
    }
    let nodes = Api::<Node>::cluster(client.clone())
        .list(&ListParams::default().limit(1))
        .await
        .map_err(api_error("listing nodes"))?;
    Ok(!nodes.items.is_empty())
}

fn replica_options(namespace: &str, name: &str) -> ReplicaOptions {
    let mut options = ReplicaOptions {
        identity: format!("podset-controller-{name}"),
        lease_namespace: namespace.to_string(),
        lease_name: "podset-controller".into(),
        // Short, so the demo is quick: a crashed leader is replaced within about 4 s; a
        // stopped one (which releases the Lease) within one retry period.
        lease_duration: Duration::from_secs(4),
        renew_deadline: Duration::from_secs(3),
        retry_period: Duration::from_millis(500),
        metrics_address: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        namespace: Some(namespace.to_string()),
        resync: Duration::from_secs(30),
        ..ReplicaOptions::default()
    };
    options.controller.workers = 3;
    options
}

async fn story_steps(
    demo: &mut Demo,
    target: &Target,
    options: &DemoOptions,
    replicas: &mut Vec<Replica>,
) -> Result<()> {
    let client = demo.client.clone();
    let client = &client;
    demo.story.begin(&format!("the PodSet CRD ({CRD_NAME})"));
    let installed = install_crd(client, Duration::from_secs(20))
        .await
        .map_err(|e| DemoError::new(e.to_string()))?;
    demo.story.verified(match installed {
        Installed::Created => "CRD was missing: installed, Established, podsets served",
        Installed::Found => "CRD already installed and served",
    });

    demo.story.begin("two controller replicas start (each: informers, workqueue, Lease candidate, /healthz and /metrics)");
    for name in ["a", "b"] {
        let client = target
            .client(QPS, BURST)
            .map_err(|e| DemoError::new(format!("client: {e}")))?;
        let replica = Replica::start(client, replica_options(&demo.namespace, name), None)
            .await
            .map_err(|e| DemoError::new(format!("replica {name}: {e}")))?;
        demo.story.say(&format!(
            "  replica {} serves http://{}/metrics",
            replica.identity(),
            replica.address()
        ));
        if name == "a" && !replica.wait_leading(Duration::from_secs(10)).await {
            replicas.push(replica);
            return Err(DemoError::new(
                "the first replica did not acquire the Lease within 10 s",
            ));
        }
        replicas.push(replica);
    }
    // The second one observes the holder at its first try; then give it a few more retry
    // periods to (not) take the Lease.
    let observed_by = Instant::now() + Duration::from_secs(10);
    while replicas[1].observed_leader() != replicas[0].identity() && Instant::now() < observed_by {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let leaders: Vec<&str> = replicas
        .iter()
        .filter(|r| r.is_leading())
        .map(|r| r.identity())
        .collect();
    let lease = Api::<Lease>::namespaced(client.clone(), &demo.namespace)
        .get("podset-controller")
        .await
        .map_err(api_error("reading the Lease"))?;
    let holder = lease
        .spec
        .and_then(|s| s.holder_identity)
        .unwrap_or_default();
    if leaders != [replicas[0].identity()]
        || holder != replicas[0].identity()
        || replicas[1].observed_leader() != holder
    {
        return Err(DemoError::new(format!(
            "expected exactly {} to lead: leading {leaders:?}, Lease holder {holder:?}, b observes {:?}",
            replicas[0].identity(),
            replicas[1].observed_leader()
        )));
    }
    demo.story.verified(&format!(
        "exactly one leads: {holder} holds Lease podset-controller; {} is on standby and observes it",
        replicas[1].identity()
    ));

    demo.story
        .begin(&format!("create PodSet {PODSET} with replicas=3"));
    let mut podset = PodSet::new(PODSET, 3, template(&options.image));
    podset.metadata.namespace = Some(demo.namespace.clone());
    demo.podsets()
        .create(&PostParams::default(), &podset)
        .await
        .map_err(api_error("creating the PodSet"))?;
    let observed = demo.converge(3, |_| true).await?;
    let text = demo.converged_text(&observed);
    demo.story.verified(&text);

    demo.story.begin(&format!("scale PodSet {PODSET} to 5"));
    demo.scale(5).await?;
    let observed = demo.converge(5, |_| true).await?;
    let text = demo.converged_text(&observed);
    demo.story.verified(&text);

    let (victim, victim_uid, _) = observed
        .active
        .iter()
        .find(|p| p.0.ends_with("-1"))
        .or(observed.active.first())
        .cloned()
        .ok_or_else(|| DemoError::new("no pod to delete"))?;
    demo.story.begin(&format!("delete pod {victim} by hand"));
    demo.pods()
        .delete(&victim, &DeleteParams::default())
        .await
        .map_err(api_error("deleting a pod by hand"))?;
    let before: HashSet<String> = observed.active.iter().map(|p| p.1.clone()).collect();
    let observed = demo
        .converge(5, |o| o.active.iter().all(|p| p.1 != victim_uid))
        .await?;
    // A new uid: on a cluster where the deleted pod is gone at once (no kubelet to wait for),
    // its replacement may take the same name.
    let new: Vec<String> = observed
        .active
        .iter()
        .filter(|p| !before.contains(&p.1))
        .map(|p| format!("{} (uid {})", p.0, &p.1[..8.min(p.1.len())]))
        .collect();
    demo.story.verified(&format!(
        "{victim} (uid {}) is gone and was replaced by {}: {}",
        &victim_uid[..8.min(victim_uid.len())],
        new.join(", "),
        demo.converged_text(&observed)
    ));

    demo.story
        .begin(&format!("stop the leader {}", replicas[0].identity()));
    let leader = replicas.remove(0);
    let stopped = Instant::now();
    leader.stop().await;
    if !replicas[0].wait_leading(Duration::from_secs(15)).await {
        return Err(DemoError::new("the standby did not take over within 15 s"));
    }
    demo.story.verified(&format!(
        "{} took over {:.2} s after the leader stopped (it released the Lease on its way out)",
        replicas[0].identity(),
        stopped.elapsed().as_secs_f64()
    ));

    demo.story.begin(&format!(
        "the new leader keeps reconciling: scale {PODSET} to 2"
    ));
    demo.scale(2).await?;
    let observed = demo.converge(2, |_| true).await?;
    let text = demo.converged_text(&observed);
    demo.story.verified(&text);

    demo.story
        .begin(&format!("events of PodSet {PODSET} (kubectl get events)"));
    let events = wait_events(demo, 6, 3).await?;
    print!("{}", events_table(&events));
    let total = |reason: &str| -> i32 {
        events
            .iter()
            .filter(|e| e.reason.as_deref() == Some(reason))
            .map(|e| e.count.unwrap_or(1))
            .sum()
    };
    let (creates, deletes) = (total("SuccessfulCreate"), total("SuccessfulDelete"));
    demo.story.verified(&format!(
        "{creates} SuccessfulCreate and {deletes} SuccessfulDelete events on PodSet {PODSET}"
    ));

    demo.story.begin("status line (kube-jsonpath)");
    let template = "{.metadata.name}: {.status.readyReplicas}/{.spec.replicas} ready, {.status.replicas} current, observedGeneration {.status.observedGeneration} of generation {.metadata.generation}";
    let path = JsonPath::parse(template).map_err(|e| DemoError::new(e.to_string()))?;
    let podset = demo
        .podsets()
        .get(PODSET)
        .await
        .map_err(api_error("reading the PodSet"))?;
    let line = path
        .render_serialize(&podset)
        .map_err(|e| DemoError::new(e.to_string()))?;
    println!("          {line}");
    let want_ready = if demo.readiness {
        "2/2 ready"
    } else {
        "0/2 ready"
    };
    let generation = podset.metadata.generation.unwrap_or(0);
    if !line.contains(want_ready) || !line.contains(&format!("observedGeneration {generation} of"))
    {
        return Err(DemoError::new(format!("unexpected status line: {line}")));
    }
    demo.story
        .verified("the status is current (observedGeneration = generation)");

    demo.story.begin(&format!(
        "/healthz and /metrics of {}",
        replicas[0].identity()
    ));
    let address = replicas[0].address();
    let (code, body) = crate::http::get(address, "/healthz")
        .await
        .map_err(|e| DemoError::new(e.to_string()))?;
    if code != 200 || body != "ok" {
        return Err(DemoError::new(format!("/healthz answered {code} {body:?}")));
    }
    let (code, metrics) = crate::http::get(address, "/metrics")
        .await
        .map_err(|e| DemoError::new(e.to_string()))?;
    let wanted = [
        "workqueue_adds_total{name=\"podset\"}",
        "workqueue_depth{name=\"podset\"}",
        "informer_objects{resource=\"podsets\"} 1",
        "informer_synced{resource=\"pods\"} 1",
        "kube_record_events_recorded_total{api=\"core/v1\"}",
        "leader_election_master_status{name=\"podset-controller\"} 1",
        "podset_reconciles_total{result=\"success\"}",
    ];
    let missing: Vec<&str> = wanted
        .iter()
        .copied()
        .filter(|w| !metrics.contains(w))
        .collect();
    if code != 200 || !missing.is_empty() {
        return Err(DemoError::new(format!(
            "/metrics answered {code}, missing {missing:?}"
        )));
    }
    for line in metrics.lines().filter(|l| {
        !l.starts_with('#')
            && (wanted
                .iter()
                .any(|w| l.starts_with(w.split(' ').next().unwrap_or(w)))
                || l.starts_with("podset_pods_"))
    }) {
        println!("          {line}");
    }
    demo.story.verified(
        "/healthz is ok; /metrics has the workqueue, informer, event, leader and reconcile metrics",
    );
    Ok(())
}

async fn wait_events(demo: &Demo, creates: usize, deletes: usize) -> Result<Vec<Event>> {
    let events: Api<Event> = Api::namespaced(demo.client.clone(), &demo.namespace);
    let selector = format!("involvedObject.kind={KIND},involvedObject.name={PODSET}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let list = events
            .list(&ListParams::default().fields(&selector))
            .await
            .map_err(api_error("listing events"))?;
        // Identical events (a pod of the same name created twice) are one event with a count.
        let count = |reason: &str| {
            list.items
                .iter()
                .filter(|e| e.reason.as_deref() == Some(reason))
                .map(|e| usize::try_from(e.count.unwrap_or(1)).unwrap_or(1))
                .sum::<usize>()
        };
        if count("SuccessfulCreate") >= creates && count("SuccessfulDelete") >= deletes {
            let mut items = list.items;
            items.sort_by_key(|e| e.last_timestamp.as_ref().map(|t| t.0));
            return Ok(items);
        }
        if Instant::now() >= deadline {
            return Err(DemoError::new(format!(
                "expected at least {creates} SuccessfulCreate and {deletes} SuccessfulDelete events, found {} and {}",
                count("SuccessfulCreate"),
                count("SuccessfulDelete")
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn since(at: Option<jiff::Timestamp>) -> String {
    let Some(at) = at else {
        return "<unknown>".into();
    };
    let seconds = jiff::Timestamp::now().duration_since(at).as_secs().max(0);
    if seconds < 120 {
        format!("{seconds}s")
    } else {
        format!("{}m", seconds / 60)
    }
}

/// kubectl's Last Seen: the age of the last occurrence, and `(xN over AGE)` for repeats.
fn age(event: &Event) -> String {
    let last = since(event.last_timestamp.as_ref().map(|t| t.0));
    match event.count {
        Some(count) if count > 1 => format!(
            "{last} (x{count} over {})",
            since(event.first_timestamp.as_ref().map(|t| t.0))
        ),
        _ => last,
    }
}

/// The events as `kubectl get events` prints them.
pub fn events_table(events: &[Event]) -> String {
    let rows: Vec<[String; 5]> = events
        .iter()
        .map(|e| {
            [
                age(e),
                e.type_.clone().unwrap_or_default(),
                e.reason.clone().unwrap_or_default(),
                format!(
                    "{}/{}",
                    e.involved_object
                        .kind
                        .as_deref()
                        .unwrap_or("")
                        .to_lowercase(),
                    e.involved_object.name.as_deref().unwrap_or("")
                ),
                e.message.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let header = ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"];
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    let mut line = |cells: [&str; 5]| {
        let _ = write!(out, "          ");
        for (i, cell) in cells.iter().enumerate() {
            if i == 4 {
                let _ = writeln!(out, "{cell}");
            } else {
                let _ = write!(out, "{cell:<width$}   ", width = widths[i]);
            }
        }
    };
    line(header);
    for row in &rows {
        line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
    }
    out
}

async fn cleanup(demo: &Demo, target: &Target, replicas: Vec<Replica>) -> Result<()> {
    let podsets = demo.podsets();
    let mut problems = Vec::new();
    // Stop the controllers first, so nothing recreates what is deleted.
    for replica in replicas {
        replica.stop().await;
    }
    if let Err(e) = podsets.delete(PODSET, &DeleteParams::default()).await
        && !e.is_not_found()
    {
        problems.push(format!("deleting the PodSet: {e}"));
    }
    // A cluster's garbage collector removes the pods through their ownerReferences; the
    // embedded server and a bare API server have none.
    let selector = format!("{NAME_LABEL}={PODSET}");
    if let Err(e) = demo
        .pods()
        .delete_collection(
            &DeleteParams::default().grace_period(0),
            &ListParams::default().labels(&selector),
        )
        .await
    {
        problems.push(format!("deleting the pods: {e}"));
    }
    if let Err(e) = Api::<Namespace>::cluster(demo.client.clone())
        .delete(&demo.namespace, &DeleteParams::default())
        .await
    {
        problems.push(format!("deleting the namespace: {e}"));
    }
    if target.is_embedded() {
        demo.story
            .say(&format!("cleaned up namespace {}", demo.namespace));
    } else {
        demo.story.say(&format!(
            "cleaned up: PodSet, pods and namespace {} deleted (the CRD stays installed)",
            demo.namespace
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(DemoError::new(problems.join("; ")))
    }
}
