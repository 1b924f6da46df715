//! Discovery against kube-testserver: version, groups, resources and name resolution.

use std::path::Path;

use kube_rest::{Api, Client, Config, Kubeconfig, ListParams};
use kube_testserver::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_resolution() {
    let server = TestServer::builder().start().await.unwrap();
    let kubeconfig = Kubeconfig::parse(&server.kubeconfig_yaml(), Path::new("/k")).unwrap();
    let client = Client::try_from_config(
        Config::from_kubeconfig(&kubeconfig)
            .unwrap()
            .without_throttle(),
    )
    .unwrap();

    let version = client.server_version().await.unwrap();
    assert_eq!(version.major, "1");
    assert!(version.git_version.starts_with("v1."), "{version:?}");

    let discovery = client.discover().await.unwrap();
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
            deployments.namespaced
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
    assert!(!discovery.resolve_name("namespaces").unwrap().namespaced);
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
            .is_empty()
    );
}
