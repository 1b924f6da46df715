//! Discovery against kube-testserver (or the cluster of `KUBE_TOOLKIT_TEST_KUBECONFIG`, see
//! `common`): version, groups, resources and name resolution.

mod common;

use common::TestEnv;
use kube_rest::{Api, Client, ListParams};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_resolution() {
    let env = TestEnv::start("discovery_and_resolution").await;
    let client = env.client.clone();

    let version = client.server_version().await.unwrap();
    assert_eq!(version.major, "1");
    assert!(version.git_version.starts_with("v1."), "{version:?}");

    let discovery = client.discover().await.unwrap();
    assert!(
        discovery.aggregated,
        "kube-testserver (and every server since v1.30) offers aggregated discovery"
    );
    // Both discovery flavours find the same resources, versions and preferences.
    let legacy = client.discover_legacy().await.unwrap();
    assert!(!legacy.aggregated);
    assert_eq!(legacy.groups, discovery.groups);
    let key = |r: &kube_rest::DiscoveredResource| {
        (
            r.info.group.clone(),
            r.info.version.clone(),
            r.info.plural.clone(),
            r.info.kind.clone(),
            r.info.is_namespaced(),
            r.preferred,
            r.singular.clone(),
            r.short_names.clone(),
        )
    };
    let mut a: Vec<_> = discovery.resources.iter().map(key).collect();
    let mut b: Vec<_> = legacy.resources.iter().map(key).collect();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert!(a.len() > 10, "{a:?}");
    assert_eq!(discovery.groups[""], ["v1"]);
    assert!(
        discovery.groups.contains_key("apps"),
        "{:?}",
        discovery.groups
    );
    assert!(
        discovery
            .resources
            .iter()
            .all(|r| !r.info.plural.contains('/')),
        "subresources are left out"
    );

    let deployments = discovery.resolve_kind("apps", "Deployment").unwrap();
    assert_eq!(
        (
            deployments.version.as_str(),
            deployments.plural.as_str(),
            deployments.is_namespaced()
        ),
        ("v1", "deployments", true)
    );
    assert_eq!(
        discovery.resolve_gvk("", "v1", "ConfigMap").unwrap().plural,
        "configmaps"
    );
    assert!(discovery.resolve_gvk("", "v2", "ConfigMap").is_none());
    assert!(discovery.resolve_kind("apps", "Widget").is_none());

    for (name, plural) in [
        ("pods", "pods"),
        ("pod", "pods"),
        ("Pod", "pods"),
        ("deployments.apps", "deployments"),
        ("configmaps", "configmaps"),
        ("namespaces", "namespaces"),
    ] {
        assert_eq!(
            discovery.resolve_name(name).map(|r| r.plural.as_str()),
            Some(plural),
            "{name}"
        );
    }
    assert!(
        !discovery
            .resolve_name("namespaces")
            .unwrap()
            .is_namespaced()
    );
    assert!(discovery.resolve_name("deployments.example.com").is_none());
    assert!(discovery.resolve_name("widgets").is_none());
    // Short names, when the server declares them.
    if let Some(cm) = discovery
        .resources
        .iter()
        .find(|r| r.info.plural == "configmaps")
        && let Some(short) = cm.short_names.first()
    {
        assert_eq!(discovery.resolve_name(short).unwrap().plural, "configmaps");
    }

    // What discovery finds drives the dynamic API.
    let api = Api::dynamic(client, discovery.resolve_name("namespaces").unwrap(), None);
    assert!(
        !api.list_all(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_cache_on_disk() {
    use std::time::{Duration, SystemTime};

    use kube_flowcontrol::clock::FakeClock;
    use kube_rest::DiscoveryCache;

    let env = TestEnv::start("discovery_cache_on_disk").await;
    let client = env.client.clone();
    let dir =
        std::env::temp_dir().join(format!("kube-rest-discovery-cache-{}", std::process::id()));
    let fake =
        FakeClock::with_wall_time(SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000));
    let cache = DiscoveryCache::new(&dir).clock(fake.shared());
    let path = cache.path_for(&client);
    assert!(path.starts_with(&dir));

    let first = cache.discovery(&client).await.unwrap();
    assert!(path.is_file());

    // Within the TTL the file is what answers: a resource planted in it is found.
    let mut planted: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut widget = planted["discovery"]["resources"][0].clone();
    widget["info"]["plural"] = "widgets".into();
    widget["info"]["kind"] = "Widget".into();
    widget["singular"] = "widget".into();
    widget["short_names"] = serde_json::json!([]);
    planted["discovery"]["resources"]
        .as_array_mut()
        .unwrap()
        .push(widget);
    std::fs::write(&path, serde_json::to_vec(&planted).unwrap()).unwrap();
    fake.step(Duration::from_secs(9 * 60));
    assert!(
        cache
            .discovery(&client)
            .await
            .unwrap()
            .resolve_name("widgets")
            .is_some()
    );

    // After the TTL it is fetched again.
    fake.step(Duration::from_secs(60));
    let fresh = cache.discovery(&client).await.unwrap();
    assert!(fresh.resolve_name("widgets").is_none());
    assert_eq!(fresh, first);

    // A miss fetches again: a name removed from the file is still resolved.
    let mut pruned: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    pruned["discovery"]["resources"]
        .as_array_mut()
        .unwrap()
        .retain(|r| r["info"]["plural"] != "configmaps");
    std::fs::write(&path, serde_json::to_vec(&pruned).unwrap()).unwrap();
    assert_eq!(
        cache
            .resolve_name(&client, "configmaps")
            .await
            .unwrap()
            .unwrap()
            .plural,
        "configmaps"
    );
    assert_eq!(
        cache
            .resolve_kind(&client, "apps", "Deployment")
            .await
            .unwrap()
            .unwrap()
            .plural,
        "deployments"
    );
    assert!(
        cache
            .resolve_name(&client, "nothing-like-this")
            .await
            .unwrap()
            .is_none()
    );

    // A corrupt file is a miss, not an error.
    std::fs::write(&path, b"{not json").unwrap();
    assert_eq!(cache.discovery(&client).await.unwrap(), first);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `task` to completion, moving the fake clock to each deadline it sleeps on.
async fn drive<T: Send + 'static>(
    fake: &kube_flowcontrol::clock::FakeClock,
    task: tokio::task::JoinHandle<T>,
) -> T {
    while !task.is_finished() {
        if fake.step_to_next_deadline().is_none() {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
    }
    task.await.unwrap()
}

/// Discovery has its own throttle with kubectl's headroom (QPS 50, burst 300): legacy
/// discovery does not wait behind the default QPS 5 / burst 10, and does not use up the budget
/// of the requests that follow it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_has_its_own_throttle() {
    use kube_flowcontrol::clock::{Clock, FakeClock};
    use std::time::Duration;

    let env = TestEnv::start("discovery_has_its_own_throttle").await;
    // The defaults, throttle on (the harness turns it off).
    let config = env.config().with_rate_limit(5.0, 10);
    assert_eq!((config.discovery_qps, config.discovery_burst), (50.0, 300));

    let fake = FakeClock::new();
    let client = Client::builder(config.clone())
        .clock(fake.shared())
        .build()
        .unwrap();
    let start = fake.now();
    // Two passes: more requests than the default burst of 10.
    let task = tokio::spawn({
        let client = client.clone();
        async move {
            client.discover_legacy().await.unwrap();
            client.discover_legacy().await
        }
    });
    let legacy = drive(&fake, task).await.unwrap();
    let requests = 2 + legacy.groups.values().map(Vec::len).sum::<usize>();
    assert!(2 * requests > 10, "{requests} discovery requests per pass");
    assert_eq!(fake.now() - start, Duration::ZERO, "no throttling wait");
    // The client's own burst of 10 is intact.
    let task = tokio::spawn({
        let api: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::default_namespaced(client);
        async move {
            for _ in 0..10 {
                api.list(&ListParams::default().limit(1)).await.unwrap();
            }
        }
    });
    drive(&fake, task).await;
    assert_eq!(fake.now() - start, Duration::ZERO, "no throttling wait");

    // The discovery throttle is the one discovery waits on: at 1 request per second, each
    // request after the first waits a second.
    let client = Client::builder(config.with_discovery_rate_limit(1.0, 1))
        .clock(fake.shared())
        .build()
        .unwrap();
    let start = fake.now();
    let task = tokio::spawn(async move { client.discover_legacy().await });
    drive(&fake, task).await.unwrap();
    assert_eq!(fake.now() - start, Duration::from_secs(requests as u64 - 1));
}
