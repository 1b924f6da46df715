//! The dynamic API (`Api<DynamicObject>`) against kube-testserver (or the cluster of
//! `KUBE_TOOLKIT_TEST_KUBECONFIG`, see `common`).

mod common;

use std::time::Duration;

use common::TestEnv;
use futures_util::StreamExt as _;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube_rest::{
    Api, DeleteParams, DynamicObject, Error, ListParams, Patch, PatchParams, PostParams,
    ResourceInfo, Scope, WatchEvent, WatchParams,
};
use serde_json::json;

#[test]
fn resource_info_of_typed_kinds() {
    let pod = ResourceInfo::of::<Pod>();
    assert_eq!(
        (
            pod.group.as_str(),
            pod.version.as_str(),
            pod.plural.as_str(),
            pod.is_namespaced()
        ),
        ("", "v1", "pods", true)
    );
    assert_eq!(pod.api_version(), "v1");
    let deployment = ResourceInfo::of::<Deployment>();
    assert_eq!(deployment.api_version(), "apps/v1");
    assert_eq!(deployment.kind, "Deployment");
    assert!(!ResourceInfo::of::<Namespace>().is_namespaced());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_crud_and_watch() {
    let env = TestEnv::start("dynamic_crud_and_watch").await;
    let (client, ns) = (env.client.clone(), env.namespace.as_str());
    let info = ResourceInfo::new("", "v1", "ConfigMap", "configmaps", Scope::Namespaced);
    let api = Api::dynamic(client.clone(), &info, Some(ns));
    assert_eq!(api.namespace(), Some(ns));

    let object = DynamicObject::new("dyn", &info).with("data", json!({"a": "b"}));
    let created = api.create(&PostParams::default(), &object).await.unwrap();
    assert_eq!(created.kind, "ConfigMap");
    assert!(created.metadata.uid.is_some());
    assert_eq!(created.data["data"]["a"], "b");

    // The same object, typed.
    let typed: Api<ConfigMap> = Api::namespaced(client.clone(), ns);
    assert_eq!(typed.get("dyn").await.unwrap().data.unwrap()["a"], "b");

    let patched = api
        .patch(
            "dyn",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"c": "d"}})),
        )
        .await
        .unwrap();
    assert_eq!(patched.data["data"], json!({"a": "b", "c": "d"}));
    let list = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let rv = list.metadata.resource_version.unwrap();

    let mut events = std::pin::pin!(api.watch(&WatchParams::default(), &rv).await.unwrap());
    api.delete("dyn", &DeleteParams::default()).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
    {
        Some(Ok(WatchEvent::Deleted(object))) => {
            assert_eq!(object.metadata.name.as_deref(), Some("dyn"))
        }
        other => panic!("expected DELETED, got {other:?}"),
    }
    assert!(api.get("dyn").await.unwrap_err().is_not_found());

    // Another group, and all namespaces.
    let deployments = ResourceInfo::of::<Deployment>();
    let api = Api::dynamic(client.clone(), &deployments, Some(ns));
    let deployment = DynamicObject::new("web", &deployments).with(
        "spec",
        json!({"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
               "template": {"metadata": {"labels": {"app": "web"}},
                            "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}),
    );
    api.create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let everywhere = Api::dynamic(client.clone(), &deployments, None);
    assert_eq!(everywhere.namespace(), None);
    // Found across namespaces (a shared cluster may hold others).
    assert!(
        everywhere
            .list_all(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .any(|d| d.metadata.name.as_deref() == Some("web")
                && d.metadata.namespace.as_deref() == Some(ns))
    );
    let err = everywhere.get("web").await.unwrap_err();
    assert!(
        matches!(err, Error::Request(ref m) if m.contains("Deployment is namespaced")),
        "{err}"
    );

    // Cluster-scoped: a namespace given is ignored.
    let namespaces = Api::dynamic(
        client.clone(),
        &ResourceInfo::of::<Namespace>(),
        Some("ignored"),
    );
    assert_eq!(namespaces.namespace(), None);
    let names: Vec<_> = namespaces
        .list_all(&ListParams::default())
        .await
        .unwrap()
        .into_iter()
        .filter_map(|ns| ns.metadata.name)
        .collect();
    assert!(names.contains(&"default".to_string()), "{names:?}");

    // A resource the server does not serve: 404.
    let missing = ResourceInfo::new("example.com", "v1", "Widget", "widgets", Scope::Namespaced);
    let err = Api::dynamic(client, &missing, Some(ns))
        .list(&ListParams::default())
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
}
