//! The Lease lock on kube-rs's client (feature `kube`) against kube-testserver: the lock's
//! contract (absent, create, already exists, conflict on a stale version), the errors
//! classified as on kube-rest, and an election shared with a kube-rest candidate.

use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube_leader::{CancellationToken, LeaderElectionRecord, LeaderElector, Lock};
use kube_testserver::TestServer;

async fn kube_client(server: &TestServer) -> kube::Client {
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig_yaml()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("it resolves");
    kube::Client::try_from(config).expect("a client")
}

fn rest_client(server: &TestServer) -> kube_rest::Client {
    let kubeconfig =
        kube_rest::Kubeconfig::parse(&server.kubeconfig_yaml(), std::path::Path::new("test"))
            .expect("kubeconfig");
    kube_rest::Client::try_from_config(kube_rest::Config::from_kubeconfig(&kubeconfig).unwrap())
        .unwrap()
}

fn held(who: &str) -> LeaderElectionRecord {
    LeaderElectionRecord {
        holder_identity: who.into(),
        lease_duration_seconds: 15,
        acquire_time: Some(std::time::SystemTime::now()),
        ..Default::default()
    }
}

#[tokio::test]
async fn the_lock_contract_and_its_errors() {
    let server = TestServer::builder().start().await.expect("test server");
    let api = kube::Api::<Lease>::namespaced(kube_client(&server).await, "default");
    let a = kube_leader::kube::LeaseLock::new(api.clone(), "race", "a");
    let b = kube_leader::kube::LeaseLock::new(api.clone(), "race", "b");
    assert!(a.get().await.unwrap().is_none());
    let written = held("a");
    a.create(&written).await.unwrap();
    let exists = b.create(&held("b")).await.unwrap_err();
    assert!(
        exists.is_already_exists() && !exists.is_conflict(),
        "{exists:?}"
    );

    let seen_a = a.get().await.unwrap().unwrap();
    let seen_b = b.get().await.unwrap().unwrap();
    assert_eq!(seen_a.record.holder_identity, "a");
    assert_eq!(seen_a.raw, seen_b.raw);
    // The record round-trips through the Lease (times truncated to microseconds).
    assert_eq!(
        seen_a
            .record
            .acquire_time
            .map(|t| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_micros()),
        written
            .acquire_time
            .map(|t| t.duration_since(std::time::UNIX_EPOCH).unwrap().as_micros())
    );
    a.update(&seen_a.version, &held("a")).await.unwrap();
    // b writes from the version it read before a's update: a conflict.
    let conflict = b.update(&seen_b.version, &held("b")).await.unwrap_err();
    assert!(
        conflict.is_conflict() && !conflict.is_already_exists(),
        "{conflict:?}"
    );

    // An update of a lease that is gone: not found.
    let seen = a.get().await.unwrap().unwrap();
    api.delete("race", &Default::default()).await.unwrap();
    let gone = a.update(&seen.version, &held("a")).await.unwrap_err();
    assert!(gone.is_not_found(), "{gone:?}");
    assert_eq!(a.describe(), "default/race");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kube_rs_candidate_and_a_kube_rest_candidate_share_an_election() {
    let server = TestServer::builder().start().await.expect("test server");
    let kube_api = kube::Api::<Lease>::namespaced(kube_client(&server).await, "default");
    let rest_api = kube_rest::Api::<Lease>::namespaced(rest_client(&server), "default");
    let elector = |lock| {
        LeaderElector::builder(lock)
            .lease_duration(Duration::from_secs(3))
            .renew_deadline(Duration::from_secs(2))
            .retry_period(Duration::from_millis(300))
            .release_on_cancel(true)
            .on_started_leading(|token: CancellationToken| async move { token.cancelled().await })
            .on_stopped_leading(|| {})
            .build()
            .unwrap()
    };
    let kube_rs = LeaderElector::builder(kube_leader::kube::LeaseLock::new(
        kube_api, "shared", "kube-rs",
    ))
    .lease_duration(Duration::from_secs(3))
    .renew_deadline(Duration::from_secs(2))
    .retry_period(Duration::from_millis(300))
    .release_on_cancel(true)
    .on_started_leading(|token: CancellationToken| async move { token.cancelled().await })
    .on_stopped_leading(|| {})
    .build()
    .unwrap();
    let rest = elector(kube_leader::rest::LeaseLock::new(
        rest_api,
        "shared",
        "kube-rest",
    ));
    let cancel_kube_rs = CancellationToken::new();
    let run_kube_rs = tokio::spawn({
        let (e, c) = (kube_rs.clone(), cancel_kube_rs.clone());
        async move { e.run(c).await }
    });
    // kube-rs's candidate leads first; the kube-rest one then sees it as the leader.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !kube_rs.is_leader() {
        assert!(Instant::now() < deadline, "kube-rs never led");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let cancel_rest = CancellationToken::new();
    let run_rest = tokio::spawn({
        let (e, c) = (rest.clone(), cancel_rest.clone());
        async move { e.run(c).await }
    });
    while rest.leader() != "kube-rs" {
        assert!(Instant::now() < deadline, "kube-rest never saw the leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!rest.is_leader());
    // kube-rs's candidate releases: the kube-rest one takes over.
    cancel_kube_rs.cancel();
    run_kube_rs.await.unwrap().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !rest.is_leader() {
        assert!(Instant::now() < deadline, "no handover");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel_rest.cancel();
    run_rest.await.unwrap().unwrap();
}
