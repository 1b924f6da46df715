//! The API server locks against kube-testserver over HTTP (real clock, short timings), or
//! against the cluster of `KUBE_TOOLKIT_TEST_KUBECONFIG` when it is set (each test in a
//! namespace of its own; see `cluster/mod.rs`).

use kube_test_support::cluster;

use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Endpoints};
use kube_leader::rest::{ConfigMapLock, EndpointsLock, LeaseLock};
use kube_leader::{
    CancellationToken, JITTER_FACTOR, LeaderElectionRecord, LeaderElector, Lock, MultiLock,
};
use kube_rest::Api;
use kube_testserver::TestServer;
use parking_lot::Mutex;

use cluster::TestEnv;

/// The test's server (or cluster); its namespace is `env.ns(NS)`.
async fn server(test: &str) -> TestEnv {
    TestEnv::start(test, TestServer::builder(), &[NS]).await
}

/// The namespace of the locks on kube-testserver.
const NS: &str = "leader-election";

/// (candidate, "started" or "stopped", when).
type Events = Arc<Mutex<Vec<(String, &'static str, Instant)>>>;

const RETRY: Duration = Duration::from_millis(300);

/// A candidate with short timings that records when it started and stopped leading.
fn candidate<L: Lock>(lock: L, events: Events) -> LeaderElector<L> {
    let id = lock.identity().to_string();
    LeaderElector::builder(lock)
        .lease_duration(Duration::from_secs(3))
        .renew_deadline(Duration::from_secs(2))
        .retry_period(RETRY)
        .release_on_cancel(true)
        .on_started_leading({
            let (events, id) = (events.clone(), id.clone());
            move |token: CancellationToken| {
                events.lock().push((id.clone(), "started", Instant::now()));
                async move { token.cancelled().await }
            }
        })
        .on_stopped_leading({
            let (events, id) = (events.clone(), id.clone());
            move || events.lock().push((id.clone(), "stopped", Instant::now()))
        })
        .build()
        .unwrap()
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_electors_one_wins_and_release_hands_over_within_a_retry_period() {
    let env = server("two-electors").await;
    let api = Api::<Lease>::namespaced(env.client.clone(), env.ns(NS));
    let events = Arc::new(Mutex::new(Vec::new()));
    let a = candidate(LeaseLock::new(api.clone(), "demo", "a"), events.clone());
    let b = candidate(LeaseLock::new(api.clone(), "demo", "b"), events.clone());
    let (cancel_a, cancel_b) = (CancellationToken::new(), CancellationToken::new());
    let run_a = tokio::spawn({
        let (a, cancel) = (a.clone(), cancel_a.clone());
        async move { a.run(cancel).await }
    });
    let run_b = tokio::spawn({
        let (b, cancel) = (b.clone(), cancel_b.clone());
        async move { b.run(cancel).await }
    });
    wait_for("a leader", || !events.lock().is_empty()).await;
    // Both have seen the lease for a few retry periods: still exactly one leader.
    tokio::time::sleep(RETRY * 5).await;
    let started: Vec<String> = events.lock().iter().map(|e| e.0.clone()).collect();
    assert_eq!(started.len(), 1, "{started:?}");
    let (winner, loser, cancel_winner, run_winner, run_loser, cancel_loser) = if started[0] == "a" {
        (a.clone(), b.clone(), cancel_a, run_a, run_b, cancel_b)
    } else {
        (b.clone(), a.clone(), cancel_b, run_b, run_a, cancel_a)
    };
    assert!(winner.is_leader() && !loser.is_leader());
    assert_eq!(loser.leader(), winner.identity());
    let lease = api.get("demo").await.unwrap();
    assert_eq!(
        lease.spec.unwrap().holder_identity.as_deref(),
        Some(winner.identity())
    );

    // The winner steps down: it releases the lease and the other takes over at its next poll.
    cancel_winner.cancel();
    run_winner.await.unwrap().unwrap();
    let released = Instant::now();
    let lease = api.get("demo").await.unwrap();
    let spec = lease.spec.unwrap();
    assert_eq!(spec.holder_identity.as_deref(), Some(""));
    assert_eq!(spec.lease_duration_seconds, Some(1));
    wait_for("the handover", || loser.is_leader()).await;
    let handover = events
        .lock()
        .iter()
        .find(|e| e.0 == loser.identity() && e.1 == "started")
        .map(|e| e.2)
        .expect("the other started leading");
    let took = handover.saturating_duration_since(released);
    // One jittered retry period, plus the time of the requests.
    let bound = RETRY.mul_f64(1.0 + JITTER_FACTOR) + Duration::from_millis(300);
    assert!(took <= bound, "handover took {took:?}");
    println!("release handed over in {took:?}");
    cancel_loser.cancel();
    run_loser.await.unwrap().unwrap();
}

#[tokio::test]
async fn concurrent_updates_conflict() {
    let env = server("concurrent-updates").await;
    let (client, ns) = (env.client.clone(), env.ns(NS));
    let leases = Api::<Lease>::namespaced(client.clone(), ns);
    let a = LeaseLock::new(leases.clone(), "race", "a");
    let b = LeaseLock::new(leases, "race", "b");
    let held = |who: &str| LeaderElectionRecord {
        holder_identity: who.into(),
        lease_duration_seconds: 15,
        ..Default::default()
    };
    assert!(a.get().await.unwrap().is_none());
    a.create(&held("a")).await.unwrap();
    assert!(b.create(&held("b")).await.unwrap_err().is_already_exists());
    let seen_a = a.get().await.unwrap().unwrap();
    let seen_b = b.get().await.unwrap().unwrap();
    assert_eq!(seen_a.raw, seen_b.raw);
    // A write that changes nothing does not bump the resourceVersion (as the API server), so
    // the winner's update changes the record.
    let renewed = |who: &str| LeaderElectionRecord {
        leader_transitions: 1,
        ..held(who)
    };
    a.update(&seen_a.version, &renewed("a")).await.unwrap();
    let err = b.update(&seen_b.version, &held("b")).await.unwrap_err();
    assert!(err.is_conflict(), "{err}");
    assert_eq!(a.get().await.unwrap().unwrap().record.holder_identity, "a");

    // The same for a ConfigMap and an Endpoints annotation.
    let cm = ConfigMapLock::new(
        Api::<ConfigMap>::namespaced(client.clone(), ns),
        "race",
        "a",
    );
    let cm_b = ConfigMapLock::new(
        Api::<ConfigMap>::namespaced(client.clone(), ns),
        "race",
        "b",
    );
    cm.create(&held("a")).await.unwrap();
    let (seen_a, seen_b) = (
        cm.get().await.unwrap().unwrap(),
        cm_b.get().await.unwrap().unwrap(),
    );
    assert_eq!(seen_a.record.holder_identity, "a");
    cm.update(&seen_a.version, &renewed("a")).await.unwrap();
    assert!(
        cm_b.update(&seen_b.version, &held("b"))
            .await
            .unwrap_err()
            .is_conflict()
    );
    let ep = EndpointsLock::new(Api::<Endpoints>::namespaced(client, ns), "race", "a");
    let v = ep.create(&held("a")).await.unwrap();
    let seen = ep.get().await.unwrap().unwrap();
    assert_eq!(seen.record.holder_identity, "a");
    assert!(seen.raw.contains("\"holderIdentity\":\"a\""));
    ep.update(&seen.version, &renewed("a")).await.unwrap();
    assert!(ep.update(&v, &held("a")).await.unwrap_err().is_conflict());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multilock_migrates_from_configmap_to_lease() {
    let env = server("multilock-migrates").await;
    let configmaps = Api::<ConfigMap>::namespaced(env.client.clone(), env.ns(NS));
    let leases = Api::<Lease>::namespaced(env.client.clone(), env.ns(NS));
    let events = Arc::new(Mutex::new(Vec::new()));
    // An old candidate leads on the ConfigMap alone.
    let old = candidate(
        ConfigMapLock::new(configmaps.clone(), "mig", "old"),
        events.clone(),
    );
    let cancel_old = CancellationToken::new();
    let run_old = tokio::spawn({
        let (old, cancel) = (old.clone(), cancel_old.clone());
        async move { old.run(cancel).await }
    });
    wait_for("the old leader", || old.is_leader()).await;
    // A migrated candidate respects it...
    let new = candidate(
        MultiLock::new(
            ConfigMapLock::new(configmaps.clone(), "mig", "new"),
            LeaseLock::new(leases.clone(), "mig", "new"),
        ),
        events.clone(),
    );
    let cancel_new = CancellationToken::new();
    let run_new = tokio::spawn({
        let (new, cancel) = (new.clone(), cancel_new.clone());
        async move { new.run(cancel).await }
    });
    tokio::time::sleep(RETRY * 4).await;
    assert!(!new.is_leader());
    assert_eq!(new.leader(), "old");
    // ...and takes both locks once the old one releases.
    cancel_old.cancel();
    run_old.await.unwrap().unwrap();
    wait_for("the migrated leader", || new.is_leader()).await;
    let lease = leases.get("mig").await.unwrap();
    assert_eq!(lease.spec.unwrap().holder_identity.as_deref(), Some("new"));
    let cm = configmaps.get("mig").await.unwrap();
    let record = LeaderElectionRecord::from_annotation(
        &cm.metadata.annotations.unwrap()[kube_leader::LEADER_ELECTION_RECORD_ANNOTATION],
    )
    .unwrap();
    assert_eq!(record.holder_identity, "new");
    assert!(record.leader_transitions >= 1);
    cancel_new.cancel();
    run_new.await.unwrap().unwrap();
}
