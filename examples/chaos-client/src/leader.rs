//! Leader election with real HTTP and the real clock: three candidates (each with its own
//! client) on one Lease through the faults. Two candidates never lead at once; after the
//! faults, one leads within a lease duration or two.

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube_leader::rest::LeaseLock;
use kube_leader::{CancellationToken, LeaderElector};
use kube_rest::Api;
use parking_lot::Mutex;
use serde_json::json;

use crate::common::{Options, Report, Result, emit, wait_for_check};

const CANDIDATES: usize = 3;
// Short enough that an outage of more than 2 s (the runner's faults last up to 3 s) costs the
// leader its lease; a margin of 1 s between the leader's deadline and the others' takeover.
const LEASE: Duration = Duration::from_secs(3);
const RENEW: Duration = Duration::from_secs(2);
const RETRY: Duration = Duration::from_millis(400);

#[derive(Default)]
struct Witness {
    leading: Vec<String>,
    overlaps: Vec<String>,
    terms: u64,
}

impl Witness {
    fn started(&mut self, id: &str, start: Instant) {
        if !self.leading.is_empty() {
            self.overlaps.push(format!(
                "{id} started leading at {:.3}s while {:?} led",
                start.elapsed().as_secs_f64(),
                self.leading
            ));
        }
        self.leading.push(id.to_string());
        self.terms += 1;
    }

    fn stopped(&mut self, id: &str) {
        self.leading.retain(|l| l != id);
    }
}

pub async fn run(options: &Options) -> Result<()> {
    let start = Instant::now();
    let witness = Arc::new(Mutex::new(Witness::default()));
    let mut candidates = Vec::new();
    for index in 0..CANDIDATES {
        let id = format!("candidate-{index}");
        let api = Api::<Lease>::namespaced(options.client()?, "default");
        let elector = LeaderElector::builder(LeaseLock::new(api, "chaos-leader", &id))
            .lease_duration(LEASE)
            .renew_deadline(RENEW)
            .retry_period(RETRY)
            .release_on_cancel(true)
            .on_started_leading({
                let (witness, id) = (witness.clone(), id.clone());
                move |token: CancellationToken| {
                    witness.lock().started(&id, start);
                    async move { token.cancelled().await }
                }
            })
            .on_stopped_leading({
                let (witness, id) = (witness.clone(), id.clone());
                move || witness.lock().stopped(&id)
            })
            .build()?;
        let cancel = CancellationToken::new();
        let task = tokio::spawn({
            let (elector, cancel) = (elector.clone(), cancel.clone());
            async move {
                let _ = elector.run(cancel).await;
            }
        });
        candidates.push((elector, cancel, task));
    }
    emit(json!({"ready": true}));
    wait_for_check().await;
    // After the faults, a leader within two lease durations.
    let deadline = Instant::now() + 2 * LEASE + RENEW;
    let mut leader = None;
    while Instant::now() < deadline {
        if let Some((elector, _, _)) = candidates.iter().find(|(e, _, _)| e.is_leader()) {
            leader = Some(elector.identity().to_string());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (_, cancel, _) in &candidates {
        cancel.cancel();
    }
    for (_, _, task) in candidates {
        task.await?;
    }
    let witness = witness.lock();
    let mut report = Report::default();
    report.check(witness.overlaps.is_empty(), || {
        format!("two leaders at once: {:?}", witness.overlaps)
    });
    report.check(leader.is_some(), || {
        format!("no leader within {:?} after the faults", 2 * LEASE + RENEW)
    });
    report.check(witness.leading.is_empty(), || {
        format!("still leading after cancel: {:?}", witness.leading)
    });
    report.stat("leader_terms", witness.terms);
    report.emit();
    Ok(())
}
