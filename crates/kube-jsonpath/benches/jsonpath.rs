//! The figures of issue 4: executing compiled templates over a 200-pod list, and parsing 1000
//! mixed templates.
//!
//! `cargo bench -p kube-jsonpath -- --warm-up-time 1 --measurement-time 3`

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kube_jsonpath::{Document, JsonPath, Template};
use serde_json::{Value, json};

/// A pod as `kubectl get pods -o json` returns it: labels, two containers, status with
/// conditions and container statuses.
fn pod(i: usize) -> Value {
    let phase = if i.is_multiple_of(5) {
        "Pending"
    } else {
        "Running"
    };
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": format!("web-{i:04}"),
            "namespace": "default",
            "uid": format!("6f1c2a3e-8a2b-4c1d-9e0f-{i:012}"),
            "resourceVersion": format!("{}", 1000 + i),
            "creationTimestamp": "2024-05-01T10:00:00Z",
            "labels": {
                "app": "web",
                "pod-template-hash": "5d8f7c9b6d",
                "tier": if i.is_multiple_of(2) { "frontend" } else { "backend" },
            },
            "annotations": {"kubernetes.io/psp": "restricted"},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f7c9b6d",
                "uid": "0b0e4f3a-1111-2222-3333-444455556666", "controller": true,
                "blockOwnerDeletion": true
            }]
        },
        "spec": {
            "containers": [
                {
                    "name": "app", "image": "registry.example.com/web:1.2.3",
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                  "limits": {"cpu": "500m", "memory": "256Mi"}},
                    "env": [{"name": "MODE", "value": "prod"}],
                    "volumeMounts": [{"name": "kube-api-access", "mountPath": "/var/run/secrets", "readOnly": true}]
                },
                {
                    "name": "sidecar", "image": "registry.example.com/proxy:0.9",
                    "ports": [{"containerPort": 15001, "protocol": "TCP"}],
                    "resources": {}
                }
            ],
            "nodeName": format!("node-{}", i % 7),
            "restartPolicy": "Always",
            "serviceAccountName": "default",
            "tolerations": [
                {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
                {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}
            ]
        },
        "status": {
            "phase": phase,
            "hostIP": "192.168.49.2",
            "podIP": format!("10.244.{}.{}", i / 250, i % 250),
            "qosClass": "Burstable",
            "startTime": "2024-05-01T10:00:01Z",
            "conditions": [
                {"type": "Initialized", "status": "True", "lastTransitionTime": "2024-05-01T10:00:01Z"},
                {"type": "Ready", "status": "True", "lastTransitionTime": "2024-05-01T10:00:05Z"},
                {"type": "ContainersReady", "status": "True", "lastTransitionTime": "2024-05-01T10:00:05Z"},
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2024-05-01T10:00:00Z"}
            ],
            "containerStatuses": [
                {"name": "app", "ready": true, "restartCount": 0, "started": true,
                 "image": "registry.example.com/web:1.2.3",
                 "state": {"running": {"startedAt": "2024-05-01T10:00:03Z"}}},
                {"name": "sidecar", "ready": true, "restartCount": 1, "started": true,
                 "image": "registry.example.com/proxy:0.9",
                 "state": {"running": {"startedAt": "2024-05-01T10:00:04Z"}}}
            ]
        }
    })
}

fn pod_list(n: usize) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "List",
        "metadata": {"resourceVersion": ""},
        "items": (0..n).map(pod).collect::<Vec<_>>(),
    })
}

/// 1000 templates of the kinds people write (varied field names and indices).
fn mixed_templates() -> Vec<String> {
    let shapes = [
        "{.items[*].metadata.name}",
        "{.metadata.labels.app}",
        r#"{range .items[*]}{.metadata.name}{"\t"}{.status.phase}{"\n"}{end}"#,
        r#"{.items[?(@.status.phase=="Running")].metadata.name}"#,
        r"{.metadata.labels.kubernetes\.io/hostname}",
        "{.spec.containers[0].image}",
        "{.items[-1:].metadata.uid}",
        "{['metadata.name', 'status.podIP']}",
        r#"{range .items[*]}{.metadata.name}{":"}{range .spec.containers[*]}{.image}{","}{end}{"\n"}{end}"#,
        r#"{.status.conditions[?(@.type=="Ready")].status}"#,
        "{..image}",
        "{.spec.containers[*].ports[*].containerPort}",
        "name: {.metadata.name} node: {.spec.nodeName}",
        "{.items[0:10:2].metadata.name}",
        r#"{range .items[*]}{@.metadata.namespace}/{@.metadata.name}{'\n'}{end}"#,
        "{.spec.tolerations[?(@.tolerationSeconds>=300)].key}",
        "{$.kind}",
        "{.items[*].status.containerStatuses[?(@.restartCount > 0)].name}",
        "{.metadata.annotations}",
        "{.spec.volumes[*].configMap.name}",
    ];
    (0..1000)
        .map(|i| {
            shapes[i % shapes.len()]
                .replace("metadata.name", &format!("metadata.name{}", i % 3))
                .replace("[0]", &format!("[{}]", i % 4))
        })
        .collect()
}

fn bench_execute(c: &mut Criterion) {
    let list = pod_list(200);
    let doc = Document::from(list.clone());
    let mut group = c.benchmark_group("execute_200_pods");
    group.throughput(Throughput::Elements(200));

    let cases = [
        ("items_names", "{.items[*].metadata.name}"),
        (
            "range_name_phase",
            r#"{range .items[*]}{.metadata.name}{"\t"}{.status.phase}{"\n"}{end}"#,
        ),
        (
            "filter_running",
            r#"{.items[?(@.status.phase=="Running")].metadata.name}"#,
        ),
    ];
    for (name, template) in cases {
        let jp = JsonPath::parse(template).expect("template");
        let mut out = Vec::with_capacity(64 * 1024);
        group.bench_function(format!("{name}/serde_json_value"), |b| {
            b.iter(|| {
                out.clear();
                jp.execute_into(&mut out, black_box(&list))
                    .expect("execute");
                black_box(out.len())
            })
        });
        group.bench_function(format!("{name}/document"), |b| {
            b.iter(|| {
                out.clear();
                jp.execute_into(&mut out, black_box(&doc)).expect("execute");
                black_box(out.len())
            })
        });
    }
    // Whole call, output buffer allocated each time (what a one-shot caller pays).
    let jp = JsonPath::parse("{.items[*].metadata.name}").expect("template");
    group.bench_function("items_names/render_to_vec", |b| {
        b.iter(|| black_box(jp.render_to_vec(black_box(&list)).expect("execute")))
    });
    group.finish();
}

fn bench_parse(c: &mut Criterion) {
    let templates = mixed_templates();
    let mut group = c.benchmark_group("parse");
    group.throughput(Throughput::Elements(templates.len() as u64));
    group.bench_function("1000_mixed_templates", |b| {
        b.iter(|| {
            for t in &templates {
                black_box(Template::parse(black_box(t)).expect("parse"));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_execute, bench_parse);
criterion_main!(benches);
