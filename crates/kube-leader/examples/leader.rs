//! Three candidates in one process elect a leader on a `Lease`; the leader is killed (no
//! release, as a crash), another takes over once the lease expires; then that leader steps
//! down with a release and the last one takes over at its next poll. Prints the timeline and
//! the measured failover times, and exits 1 if a failover exceeded its bound or two candidates
//! led at once.
//!
//! Runs against the cluster of the current kubeconfig when one answers, otherwise against an
//! embedded kube-testserver. Timings are shortened (6 s lease, 4 s renew deadline, 1 s retry
//! period) so the demo takes about 20 seconds; `--defaults` uses client-go's 15/10/2 s.
//!
//! ```sh
//! cargo run -p kube-leader --features rest --example leader
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube_leader::rest::LeaseLock;
use kube_leader::{CancellationToken, JITTER_FACTOR, LeaderElector};
use kube_rest::{Api, Client, Config, DeleteParams};
use kube_testserver::TestServer;
use parking_lot::Mutex;

type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

/// The timeline, shared by the callbacks.
struct Timeline {
    start: Instant,
    events: Mutex<Vec<(Duration, String)>>,
    leading: Mutex<Vec<String>>,
    overlaps: Mutex<u32>,
}

impl Timeline {
    fn log(&self, what: String) {
        let at = self.start.elapsed();
        println!("{:>7.3} s  {what}", at.as_secs_f64());
        self.events.lock().push((at, what));
    }

    fn started(&self, id: &str) {
        let mut leading = self.leading.lock();
        if !leading.is_empty() {
            *self.overlaps.lock() += 1;
        }
        leading.push(id.to_string());
        drop(leading);
        self.log(format!("{id} starts leading"));
    }

    fn stopped(&self, id: &str) {
        let was = {
            let mut leading = self.leading.lock();
            let was = leading.iter().any(|l| l == id);
            leading.retain(|l| l != id);
            was
        };
        if was {
            self.log(format!("{id} stops leading"));
        }
    }

    fn leader(&self) -> Option<String> {
        self.leading.lock().first().cloned()
    }
}

/// Connects to the current kubeconfig's cluster if it answers, else starts a kube-testserver.
async fn connect() -> Result<(Client, Option<TestServer>)> {
    let reason = match Config::infer() {
        Ok(config) => {
            let server = config.cluster_url.to_string();
            let client = Client::try_from_config(config)?;
            match tokio::time::timeout(Duration::from_secs(5), client.server_version()).await {
                Ok(Ok(version)) => {
                    println!(
                        "target: the cluster of the current kubeconfig ({server}, {})",
                        version.git_version
                    );
                    return Ok((client, None));
                }
                Ok(Err(e)) => format!("{server} answered {e}"),
                Err(_) => format!("{server} did not answer within 5 s"),
            }
        }
        Err(e) => e.to_string(),
    };
    println!("target: an embedded kube-testserver ({reason})");
    let server = TestServer::builder().start().await?;
    let kubeconfig =
        kube_rest::Kubeconfig::parse(&server.kubeconfig_yaml(), std::path::Path::new("embedded"))?;
    let client = Client::try_from_config(Config::from_kubeconfig(&kubeconfig)?)?;
    Ok((client, Some(server)))
}

struct Candidate {
    id: String,
    elector: LeaderElector<LeaseLock>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn candidate(
    api: &Api<Lease>,
    lease_name: &str,
    id: &str,
    timings: (Duration, Duration, Duration),
    timeline: &Arc<Timeline>,
) -> Result<Candidate> {
    let (lease, renew, retry) = timings;
    let elector = LeaderElector::builder(LeaseLock::new(api.clone(), lease_name, id))
        .lease_duration(lease)
        .renew_deadline(renew)
        .retry_period(retry)
        .release_on_cancel(true)
        .on_started_leading({
            let (timeline, id) = (timeline.clone(), id.to_string());
            move |token: CancellationToken| {
                timeline.started(&id);
                // The leader's work would run here until the token is cancelled.
                async move { token.cancelled().await }
            }
        })
        .on_stopped_leading({
            let (timeline, id) = (timeline.clone(), id.to_string());
            move || timeline.stopped(&id)
        })
        .on_new_leader({
            let (timeline, id) = (timeline.clone(), id.to_string());
            move |leader: &str| {
                let leader = if leader.is_empty() {
                    "nobody (released)"
                } else {
                    leader
                };
                timeline.log(format!("{id} observes the leader: {leader}"));
            }
        })
        .build()?;
    let cancel = CancellationToken::new();
    let task = tokio::spawn({
        let (elector, cancel) = (elector.clone(), cancel.clone());
        async move {
            if let Err(e) = elector.run(cancel).await {
                eprintln!("{e}");
            }
        }
    });
    Ok(Candidate {
        id: id.to_string(),
        elector,
        cancel,
        task,
    })
}

async fn wait_for_leader(
    timeline: &Timeline,
    not: Option<&str>,
    limit: Duration,
) -> Option<String> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(leader) = timeline.leader()
            && Some(leader.as_str()) != not
        {
            return Some(leader);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<bool> {
    let defaults = std::env::args().any(|a| a == "--defaults");
    let s = Duration::from_secs;
    let timings = if defaults {
        (s(15), s(10), s(2))
    } else {
        (s(6), s(4), s(1))
    };
    let (lease, renew, retry) = timings;
    let (client, _server) = connect().await?;
    let api = Api::<Lease>::default_namespaced(client);
    let lease_name = format!("kube-leader-demo-{}", std::process::id());
    println!(
        "lease {lease_name}: lease duration {lease:?}, renew deadline {renew:?}, retry period {retry:?}\n"
    );
    let timeline = Arc::new(Timeline {
        start: Instant::now(),
        events: Mutex::new(Vec::new()),
        leading: Mutex::new(Vec::new()),
        overlaps: Mutex::new(0),
    });
    let mut candidates = Vec::new();
    for id in ["candidate-1", "candidate-2", "candidate-3"] {
        candidates.push(candidate(&api, &lease_name, id, timings, &timeline)?);
    }
    let mut ok = true;
    let poll = retry.mul_f64(1.0 + JITTER_FACTOR);

    let Some(first) = wait_for_leader(&timeline, None, lease + poll * 2).await else {
        println!("no leader elected");
        return Ok(false);
    };
    tokio::time::sleep(s(3)).await;

    // 1. Kill the leader: no release, the others wait for the lease to expire.
    let victim = candidates
        .iter()
        .position(|c| c.id == first)
        .expect("a candidate");
    let killed = candidates.remove(victim);
    killed.task.abort();
    let _ = killed.task.await;
    let killed_at = Instant::now();
    timeline.log(format!("{first} is killed (no release)"));
    let crash_bound = lease + poll * 2 + s(1);
    let Some(second) = wait_for_leader(&timeline, Some(&first), crash_bound).await else {
        println!("no failover within {crash_bound:?}");
        return Ok(false);
    };
    let crash_failover = killed_at.elapsed();
    tokio::time::sleep(s(2)).await;

    // 2. The new leader steps down with a release: the last candidate takes over at its poll.
    let index = candidates
        .iter()
        .position(|c| c.id == second)
        .expect("a candidate");
    let stepping_down = candidates.remove(index);
    let released_at = Instant::now();
    timeline.log(format!("{second} steps down (release)"));
    stepping_down.cancel.cancel();
    let _ = stepping_down.task.await;
    let release_bound = poll + s(1);
    let third = wait_for_leader(&timeline, Some(&second), release_bound).await;
    let release_failover = released_at.elapsed();
    if third.is_none() {
        println!("no handover within {release_bound:?} of the release");
        ok = false;
    }

    for c in &candidates {
        c.cancel.cancel();
    }
    for c in candidates {
        let _ = c.task.await;
        let _ = c.elector;
    }
    let _ = api.delete(&lease_name, &DeleteParams::default()).await;

    let overlaps = *timeline.overlaps.lock();
    println!(
        "\nfailover after killing the leader: {:.2} s (bound {:.1} s: lease + 2 jittered retry periods + 1 s)",
        crash_failover.as_secs_f64(),
        crash_bound.as_secs_f64()
    );
    println!(
        "handover after a release: {:.2} s (bound {:.1} s: one jittered retry period + 1 s)",
        release_failover.as_secs_f64(),
        release_bound.as_secs_f64()
    );
    println!("moments with two leaders: {overlaps}");
    if overlaps > 0 {
        ok = false;
    }
    if ok {
        println!("leader election demo passed");
    }
    Ok(ok)
}
