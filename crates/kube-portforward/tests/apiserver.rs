//! What the API server itself decides about a forward, before any kubelet is asked: against
//! kube-testserver, or against the cluster of `KUBE_TOOLKIT_TEST_KUBECONFIG` when it is set
//! (each test in a namespace of its own; see `cluster/mod.rs`). The pods carry a scheduling
//! gate, so no scheduler binds them on a full cluster either: they never get a node.

use kube_test_support::cluster;

use k8s_openapi::api::core::v1::{Container, ContainerPort, Pod, PodSchedulingGate, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_portforward::rest::PodDialer;
use kube_portforward::{DialError, Error, PortForwarder};
use kube_rest::{Api, PostParams};
use kube_testserver::TestServer;

use cluster::TestEnv;

const NS: &str = "forward";

/// A gated nginx pod (never scheduled), created in the test's namespace.
async fn gated_pod(pods: &Api<Pod>, name: &str) -> Pod {
    let pod = Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "nginx".into(),
                image: Some("nginx:1.27".into()),
                ports: Some(vec![ContainerPort {
                    container_port: 80,
                    ..ContainerPort::default()
                }]),
                ..Container::default()
            }],
            scheduling_gates: Some(vec![PodSchedulingGate {
                name: "kube-toolkit.test/never".into(),
            }]),
            ..PodSpec::default()
        }),
        ..Pod::default()
    };
    pods.create(&PostParams::default(), &pod).await.unwrap()
}

fn forwarder(env: &TestEnv, pod: &str) -> PortForwarder {
    PortForwarder::builder(PodDialer::new(env.client.clone(), env.ns(NS), pod))
        .addresses(["127.0.0.1"])
        .port("0:80")
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_pod_is_refused_before_any_upgrade() {
    let env = TestEnv::start("pending-pod", TestServer::builder(), &[NS]).await;
    let pods = Api::<Pod>::namespaced(env.client.clone(), env.ns(NS));
    let created = gated_pod(&pods, "pending").await;
    // The API server sets the phase of a new pod.
    let phase = created.status.and_then(|s| s.phase);
    assert_eq!(phase.as_deref(), Some("Pending"));
    // `forward` checks the pod first, as kubectl does.
    let error = forwarder(&env, "pending").forward().await.unwrap_err();
    assert!(
        matches!(&error, Error::Dial(DialError::NotRunning { phase }) if phase == "Pending"),
        "{error:?}"
    );
    // kubectl's words: "error upgrading connection: unable to forward port because ...".
    let cause = std::error::Error::source(&error).map(ToString::to_string);
    assert_eq!(
        (error.to_string(), cause.as_deref()),
        (
            "error upgrading connection".to_string(),
            Some("unable to forward port because pod is not running. Current status=Pending")
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_servers_refusal_of_a_pod_without_a_node_is_the_error() {
    let env = TestEnv::start("no-node", TestServer::builder(), &[NS]).await;
    let pods = Api::<Pod>::namespaced(env.client.clone(), env.ns(NS));
    gated_pod(&pods, "unbound").await;
    // `connect` does not check the pod: the upgrade request reaches the API server, which has
    // no node to send it to and answers 400 with its reason.
    let error = forwarder(&env, "unbound").connect(80).await.unwrap_err();
    let Error::Dial(DialError::Rest(cause)) = &error else {
        panic!("{error:?}")
    };
    assert!(cause.is_bad_request(), "{cause:?}");
    let status = cause.status().expect("the API server's Status");
    assert_eq!(status.message, "pod unbound does not have a host assigned");
}
