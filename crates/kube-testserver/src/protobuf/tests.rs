//! Round trips JSON -> protobuf -> JSON, the wire envelope, and the Go JSON conventions.

use base64::Engine as _;
use prost_reflect::{DynamicMessage, ReflectMessage as _, Value as PValue};
use serde_json::{Value, json};

use super::*;

fn round_trip(object: &Value) -> Value {
    let body = encode(object).unwrap_or_else(|e| panic!("encode: {e}"));
    assert!(body.starts_with(b"k8s\0"));
    decode(&body).unwrap_or_else(|e| panic!("decode: {e}"))
}

/// Asserts equality with a readable diff of the first differing path.
fn assert_same(got: &Value, want: &Value, path: &str) {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            for key in g.keys().chain(w.keys()) {
                let (gv, wv) = (g.get(key), w.get(key));
                match (gv, wv) {
                    (Some(gv), Some(wv)) => assert_same(gv, wv, &format!("{path}.{key}")),
                    _ => panic!("{path}.{key}: got {gv:?}, want {wv:?}"),
                }
            }
        }
        (Value::Array(g), Value::Array(w)) => {
            assert_eq!(g.len(), w.len(), "{path}: lengths");
            for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
                assert_same(gv, wv, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(got, want, "{path}"),
    }
}

/// The embedded object's own message, decoded with prost-reflect alone (not our converter).
fn raw_message(body: &[u8]) -> DynamicMessage {
    let schema = schema::schema().unwrap();
    let envelope =
        DynamicMessage::decode(schema.message(schema::UNKNOWN).unwrap(), &body[4..]).unwrap();
    let PValue::Message(type_meta) = envelope.get_field_by_name("typeMeta").unwrap().into_owned()
    else {
        panic!("no typeMeta");
    };
    let text = |m: &DynamicMessage, f: &str| {
        m.get_field_by_name(f)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    };
    let desc = schema
        .kind(&text(&type_meta, "apiVersion"), &text(&type_meta, "kind"))
        .unwrap();
    let PValue::Bytes(raw) = envelope.get_field_by_name("raw").unwrap().into_owned() else {
        panic!("no raw");
    };
    DynamicMessage::decode(desc, raw).unwrap()
}

fn child(message: &DynamicMessage, field: &str) -> DynamicMessage {
    match message.get_field_by_name(field).unwrap().into_owned() {
        PValue::Message(m) => m,
        other => panic!("{field} is {other:?}"),
    }
}

#[test]
fn realistic_pod_round_trips() {
    let pod: Value = serde_json::from_str(include_str!("testdata/pod-realistic.json")).unwrap();
    assert_same(&round_trip(&pod), &pod, "");
}

#[test]
fn config_map_round_trips() {
    let binary: Vec<u8> = (0..=255u8).collect();
    let config_map = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "settings",
            "namespace": "default",
            "labels": {"app": "web"},
            "annotations": {"note": "ünïcödé ✓"},
            "resourceVersion": "42",
            "uid": "0b5c4e4e-1c1a-4f43-9f2e-2f2f6d5f7a11",
            "creationTimestamp": "2026-01-02T03:04:05Z",
            "finalizers": ["example.com/keep"],
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                "uid": "4a1d2f7e-3c55-4e8b-8d0e-96c1a8a3b4c5", "controller": true,
                "blockOwnerDeletion": false
            }]
        },
        "data": {"a": "b", "empty": "", "multi": "line1\nline2\n"},
        "binaryData": {"blob": base64::engine::general_purpose::STANDARD.encode(&binary)},
        "immutable": false
    });
    assert_same(&round_trip(&config_map), &config_map, "");
}

#[test]
fn secret_with_binary_data_round_trips() {
    let secret = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "creds", "namespace": "default"},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.key": base64::engine::general_purpose::STANDARD.encode([0u8, 0xff, 0xfe, 0x80, 0x7f, 0x0a]),
            "empty": "",
        },
        "stringData": {"plain": "text"}
    });
    let got = round_trip(&secret);
    assert_same(&got, &secret, "");
    // The bytes themselves travel, not their base64.
    let message = raw_message(&encode(&secret).unwrap());
    let data = message.get_field_by_name("data").unwrap().into_owned();
    let PValue::Map(data) = data else {
        panic!("data is not a map")
    };
    let key = prost_reflect::MapKey::String("tls.key".into());
    assert_eq!(
        data[&key].as_bytes().unwrap().as_ref(),
        &[0u8, 0xff, 0xfe, 0x80, 0x7f, 0x0a]
    );
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "generation": 9_007_199_254_740_993i64},
        "spec": {
            "replicas": 0,
            "paused": true,
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "selector": {
                "matchLabels": {"app": "web"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]
            },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}
            },
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [{
                        "name": "nginx",
                        "image": "nginx:1.27",
                        "ports": [{"containerPort": 80, "name": "http", "protocol": "TCP"}],
                        "resources": {
                            "requests": {"cpu": "100m", "memory": "128Mi"},
                            "limits": {"memory": "1Gi"}
                        },
                        "livenessProbe": {
                            "httpGet": {"path": "/healthz", "port": "http", "scheme": "HTTP"},
                            "initialDelaySeconds": 3,
                            "periodSeconds": 10
                        },
                        "readinessProbe": {"tcpSocket": {"port": 8080}},
                        "volumeMounts": [{"name": "config", "mountPath": "/etc/web", "readOnly": true}]
                    }],
                    "volumes": [
                        {"name": "config", "configMap": {"name": "settings", "defaultMode": 420,
                            "items": [{"key": "a", "path": "a.txt"}]}},
                        {"name": "scratch", "emptyDir": {"sizeLimit": "1Gi"}}
                    ],
                    "terminationGracePeriodSeconds": 0,
                    "automountServiceAccountToken": false
                }
            }
        },
        "status": {
            "observedGeneration": 9_007_199_254_740_993i64,
            "replicas": 3,
            "conditions": [{
                "type": "Available", "status": "True",
                "lastUpdateTime": "2026-01-02T03:04:05Z",
                "lastTransitionTime": "2026-01-02T03:04:05Z",
                "reason": "MinimumReplicasAvailable", "message": "ok"
            }]
        }
    })
}

#[test]
fn deployment_round_trips() {
    let deployment = deployment();
    assert_same(&round_trip(&deployment), &deployment, "");
}

#[test]
fn pointer_zeros_are_on_the_wire_and_value_zeros_are_left_out() {
    let mut deployment = deployment();
    deployment["metadata"]["generateName"] = json!("");
    deployment["spec"]["paused"] = json!(false);
    deployment["spec"]["minReadySeconds"] = json!(0);
    let got = round_trip(&deployment);
    // Pointers keep their zero (replicas: 0 is not "unset"); omitempty values do not.
    assert_eq!(got["spec"]["replicas"], json!(0));
    assert_eq!(
        got["spec"]["template"]["spec"]["automountServiceAccountToken"],
        json!(false)
    );
    assert_eq!(
        got["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
        json!(0)
    );
    assert!(got["metadata"].get("generateName").is_none());
    assert!(got["spec"].get("paused").is_none());
    assert!(got["spec"].get("minReadySeconds").is_none());
    let message = raw_message(&encode(&deployment).unwrap());
    let spec = child(&message, "spec");
    assert!(spec.has_field_by_name("replicas"));
    assert_eq!(
        spec.get_field_by_name("replicas").unwrap().as_i32(),
        Some(0)
    );
    // int64 beyond 2^53 stays exact and is a JSON number, not a string.
    assert_eq!(
        got["status"]["observedGeneration"],
        json!(9_007_199_254_740_993i64)
    );
}

#[test]
fn int_or_string_quantity_and_inline_fields_use_their_messages() {
    let message = raw_message(&encode(&deployment()).unwrap());
    let strategy = child(&child(&message, "spec"), "strategy");
    let rolling = child(&strategy, "rollingUpdate");
    let surge = child(&rolling, "maxSurge");
    assert_eq!(surge.get_field_by_name("type").unwrap().as_i64(), Some(1));
    assert_eq!(
        surge.get_field_by_name("strVal").unwrap().as_str(),
        Some("25%")
    );
    let unavailable = child(&rolling, "maxUnavailable");
    assert_eq!(
        unavailable.get_field_by_name("type").unwrap().as_i64(),
        Some(0)
    );
    assert_eq!(
        unavailable.get_field_by_name("intVal").unwrap().as_i32(),
        Some(1)
    );
    let pod_spec = child(&child(&child(&message, "spec"), "template"), "spec");
    let PValue::List(volumes) = pod_spec.get_field_by_name("volumes").unwrap().into_owned() else {
        panic!("volumes")
    };
    let PValue::Message(volume) = &volumes[0] else {
        panic!("volume")
    };
    // Volume.configMap is Volume.volumeSource.configMap on the wire, and its name is
    // ConfigMapVolumeSource.localObjectReference.name.
    let source = child(&child(volume, "volumeSource"), "configMap");
    assert_eq!(
        child(&source, "localObjectReference")
            .get_field_by_name("name")
            .unwrap()
            .as_str(),
        Some("settings")
    );
}

#[test]
fn micro_time_and_time_fields_round_trip() {
    let event = json!({
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": "web.1", "namespace": "default"},
        "eventTime": "2026-01-02T03:04:05.123456Z",
        "series": {"count": 2, "lastObservedTime": "2026-01-02T03:04:06.000001Z"},
        "reportingController": "example.com/ctl",
        "reportingInstance": "ctl-1",
        "action": "Scale",
        "reason": "Scaled",
        "regarding": {"kind": "Deployment", "namespace": "default", "name": "web"},
        "note": "scaled",
        "type": "Normal",
        "deprecatedFirstTimestamp": "2026-01-02T03:04:05Z",
        // A zero non-pointer Time: Go writes null (omitempty leaves no struct out).
        "deprecatedLastTimestamp": null,
        "deprecatedCount": 2
    });
    assert_same(&round_trip(&event), &event, "");
    let lease = json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "leader", "namespace": "kube-system"},
        "spec": {
            "holderIdentity": "a",
            "leaseDurationSeconds": 15,
            "acquireTime": "2026-01-02T03:04:05.000000Z",
            "renewTime": "2026-01-02T03:04:15.500000Z",
            "leaseTransitions": 0
        }
    });
    assert_same(&round_trip(&lease), &lease, "");
}

#[test]
fn custom_resource_definition_schemas_round_trip() {
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {
            "group": "stable.example.com",
            "scope": "Namespaced",
            "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"]},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "required": ["spec"],
                    "properties": {
                        "spec": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": true,
                            "properties": {
                                "cron": {"type": "string", "pattern": "^\\d+$", "default": "* * * * *"},
                                "replicas": {"type": "integer", "format": "int32", "minimum": 1.0, "maximum": 10.0},
                                "mode": {"type": "string", "enum": ["a", "b"]},
                                "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
                                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                                "port": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]}
                            }
                        },
                        "status": {"type": "object", "additionalProperties": false}
                    }
                }}
            }]
        }
    });
    assert_same(&round_trip(&crd), &crd, "");
}

#[test]
fn lists_status_and_delete_options_round_trip() {
    let list = json!({
        "apiVersion": "v1",
        "kind": "ConfigMapList",
        "metadata": {"resourceVersion": "12", "continue": "abc", "remainingItemCount": 0},
        "items": [
            {"metadata": {"name": "a", "namespace": "default"}, "data": {"k": "v"}},
            {"metadata": {"name": "b", "namespace": "default"}}
        ]
    });
    assert_same(&round_trip(&list), &list, "");
    let status = json!({
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "message": "configmaps \"x\" not found",
        "reason": "NotFound",
        "details": {"name": "x", "kind": "configmaps"},
        "code": 404
    });
    assert_same(&round_trip(&status), &status, "");
    let options = json!({
        "apiVersion": "v1",
        "kind": "DeleteOptions",
        "gracePeriodSeconds": 0,
        "propagationPolicy": "Background",
        "preconditions": {"uid": "u", "resourceVersion": "3"},
        "dryRun": ["All"]
    });
    assert_same(&round_trip(&options), &options, "");
}

#[test]
fn service_ports_round_trip() {
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "selector": {"app": "web"},
            "ports": [
                {"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080},
                {"name": "metrics", "port": 9090, "protocol": "TCP", "targetPort": "metrics"}
            ],
            "type": "ClusterIP",
            "clusterIP": "10.96.0.10",
            "clusterIPs": ["10.96.0.10"],
            "sessionAffinity": "None"
        },
        "status": {"loadBalancer": {}}
    });
    assert_same(&round_trip(&service), &service, "");
}

#[test]
fn the_envelope_is_what_go_writes() {
    // k8s\0, then runtime.Unknown{typeMeta{apiVersion: "v1", kind: "ConfigMap"},
    // raw: ConfigMap{metadata{name: "a"}}, contentEncoding: "", contentType: ""}.
    let body = encode(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}))
        .unwrap();
    let mut want = b"k8s\0".to_vec();
    want.extend_from_slice(&[0x0a, 0x0f, 0x0a, 0x02, b'v', b'1', 0x12, 0x09]);
    want.extend_from_slice(b"ConfigMap");
    want.extend_from_slice(&[0x12, 0x05, 0x0a, 0x03, 0x0a, 0x01, b'a']);
    want.extend_from_slice(&[0x1a, 0x00, 0x22, 0x00]);
    assert_eq!(body, want);
}

#[test]
fn watch_frames_are_length_prefixed_watch_events() {
    let object = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}});
    let frame = encode_watch_event("ADDED", &object).unwrap();
    let length = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) as usize;
    assert_eq!(length, frame.len() - 4);
    // WatchEvent{type: "ADDED", object: RawExtension{raw: <the object's body>}}.
    let body = encode(&object).unwrap();
    let mut want = vec![0x0a, 0x05];
    want.extend_from_slice(b"ADDED");
    want.push(0x12);
    want.push((body.len() + 2) as u8);
    want.push(0x0a);
    want.push(body.len() as u8);
    want.extend_from_slice(&body);
    assert_eq!(&frame[4..], &want[..]);
    let (event_type, decoded) = decode_watch_event(&frame[4..]).unwrap();
    assert_eq!(event_type, "ADDED");
    assert_eq!(decoded, object);
}

#[test]
fn bad_bodies_are_errors_not_panics() {
    assert!(matches!(decode(b""), Err(ProtobufError::NoMagic)));
    assert!(matches!(
        decode(b"{\"kind\":\"Pod\"}"),
        Err(ProtobufError::NoMagic)
    ));
    assert!(matches!(decode(b"k8s\0"), Err(ProtobufError::Empty)));
    assert!(matches!(
        decode(b"k8s\0\xff\xff\xff"),
        Err(ProtobufError::Decode { .. })
    ));
    // An envelope without a kind.
    assert!(matches!(
        decode(b"k8s\0\x12\x00"),
        Err(ProtobufError::MissingKind { .. })
    ));
    let cron = json!({"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "a"}});
    assert!(matches!(
        encode(&cron),
        Err(ProtobufError::UnknownKind { .. })
    ));
    let wrong =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": "three"}});
    match encode(&wrong) {
        Err(ProtobufError::Convert { path, .. }) => assert_eq!(path, "spec.replicas"),
        other => panic!("{other:?}"),
    }
    let too_big =
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 1u64 << 40}});
    assert!(matches!(
        encode(&too_big),
        Err(ProtobufError::Convert { .. })
    ));
    // A body whose raw is the wrong message still decodes field by field or fails cleanly;
    // truncated bodies fail cleanly at every length.
    let body = encode(&deployment()).unwrap();
    for end in 4..body.len() {
        let _ = decode(&body[..end]);
    }
}

#[test]
fn nesting_is_bounded() {
    // RawExtension inside RawExtension... as JSON: the conversion stops at MAX_DEPTH.
    let mut value = json!({"a": 1});
    for _ in 0..120 {
        value = json!({"apiVersion": "v1", "kind": "List", "items": [value]});
    }
    let result = encode(&value);
    assert!(result.is_ok() || matches!(result, Err(ProtobufError::TooDeep { .. })));
    let mut props = json!({"type": "string"});
    for _ in 0..150 {
        props = json!({"type": "object", "properties": {"x": props}});
    }
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": props}}]}
    });
    assert!(matches!(encode(&crd), Err(ProtobufError::TooDeep { .. })));
}

#[test]
fn every_kind_of_the_served_groups_has_a_message() {
    let schema = schema::schema().unwrap();
    for (api_version, kind) in [
        ("v1", "Namespace"),
        ("v1", "Node"),
        ("v1", "Pod"),
        ("v1", "Service"),
        ("v1", "Endpoints"),
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "ServiceAccount"),
        ("v1", "Event"),
        ("events.k8s.io/v1", "Event"),
        ("coordination.k8s.io/v1", "Lease"),
        ("apps/v1", "Deployment"),
        ("apps/v1", "ReplicaSet"),
        ("batch/v1", "Job"),
        ("batch/v1", "CronJob"),
        ("autoscaling/v1", "Scale"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
    ] {
        let desc = schema
            .kind(api_version, kind)
            .unwrap_or_else(|| panic!("{api_version} {kind}"));
        assert_eq!(desc.name(), kind);
        let list = format!("{kind}List");
        if kind != "Scale" {
            assert!(schema.kind(api_version, &list).is_some(), "{list}");
        }
    }
    let _ = DynamicMessage::new(schema.kind("v1", "Pod").unwrap()).descriptor();
}
