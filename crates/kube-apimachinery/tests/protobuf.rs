//! Kubernetes protobuf read through serde: bodies encoded by kube-testserver's encoder (an
//! independent implementation, over prost-reflect) read back as the JSON they came from, as
//! typed k8s-openapi objects and as `Compact` objects.
#![cfg(feature = "protobuf")]

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use kube_apimachinery::protobuf::{Decoder, ProtobufError};
use kube_apimachinery::{Compact, ObjectList};
use kube_testserver::protobuf::encode;
use proptest::prelude::*;
use serde_json::{Value, json};

fn realistic_pod() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../kube-testserver/src/protobuf/testdata/pod-realistic.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn objects() -> Vec<Value> {
    vec![
        realistic_pod(),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "default", "labels": {"app": "web"},
                         "annotations": {"note": "ünïcödé ✓"}, "resourceVersion": "42",
                         "creationTimestamp": "2026-01-02T03:04:05Z",
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment",
                             "name": "web", "uid": "4a1d2f7e", "controller": true,
                             "blockOwnerDeletion": false}]},
            "data": {"a": "b", "empty": "", "multi": "line1\nline2\n"},
            "binaryData": {"blob": "AAEC/w=="},
            "immutable": false
        }),
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "creds", "namespace": "default"},
            "type": "Opaque", "data": {"password": "aHVudGVyMg=="}
        }),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "prod", "generation": 3},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "strategy": {"type": "RollingUpdate",
                             "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 1}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "nginx:1.27",
                        "ports": [{"containerPort": 80, "protocol": "TCP"}],
                        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}},
                        "livenessProbe": {"httpGet": {"path": "/", "port": "http"},
                                          "periodSeconds": 10}}],
                        "volumes": [{"name": "cfg", "configMap": {"name": "settings",
                                     "defaultMode": 420}}]}
                }
            },
            "status": {"observedGeneration": 3, "replicas": 2, "conditions": [{
                "type": "Available", "status": "True",
                "lastUpdateTime": "2026-01-02T03:04:05Z",
                "lastTransitionTime": "2026-01-02T03:04:05Z"}]}
        }),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web", "namespace": "prod"},
            "spec": {"ports": [{"port": 80, "targetPort": 8080, "protocol": "TCP"}],
                     "selector": {"app": "web"}, "type": "ClusterIP",
                     "clusterIPs": ["10.0.0.10"]}
        }),
        json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "leader", "namespace": "kube-system"},
            "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15,
                     "acquireTime": "2026-01-02T03:04:05.123456Z",
                     "renewTime": "2026-01-02T03:04:06.000001Z", "leaseTransitions": 0}
        }),
    ]
}

#[test]
fn objects_read_back_as_the_json_they_came_from() {
    for object in objects() {
        let body = encode(&object).unwrap();
        let read: Value = Decoder::new().object(&body).unwrap();
        let server: Value = kube_testserver::protobuf::decode(&body).unwrap();
        let mut d = Vec::new();
        diff(&read, &server, "", &mut d);
        assert!(d.is_empty(), "{}: {d:#?}", object["kind"]);
        assert_eq!(read, object, "{}", object["kind"]);
    }
}

#[test]
fn typed_objects_equal_their_json_decoding() {
    let objects = objects();
    let check = |object: &Value| {
        let body = encode(object).unwrap();
        match object["kind"].as_str().unwrap() {
            "Pod" => assert_eq!(
                Decoder::new().object::<Pod>(&body).unwrap(),
                serde_json::from_value::<Pod>(object.clone()).unwrap()
            ),
            "ConfigMap" => assert_eq!(
                Decoder::new().object::<ConfigMap>(&body).unwrap(),
                serde_json::from_value::<ConfigMap>(object.clone()).unwrap()
            ),
            "Secret" => assert_eq!(
                Decoder::new().object::<Secret>(&body).unwrap(),
                serde_json::from_value::<Secret>(object.clone()).unwrap()
            ),
            "Deployment" => assert_eq!(
                Decoder::new().object::<Deployment>(&body).unwrap(),
                serde_json::from_value::<Deployment>(object.clone()).unwrap()
            ),
            "Service" => assert_eq!(
                Decoder::new().object::<Service>(&body).unwrap(),
                serde_json::from_value::<Service>(object.clone()).unwrap()
            ),
            _ => {}
        }
    };
    objects.iter().for_each(check);
}

#[test]
fn compact_pods_equal_their_json_decoding() {
    let pod = realistic_pod();
    let body = encode(&pod).unwrap();
    let from_proto: Compact<Pod> = Decoder::new().object(&body).unwrap();
    let from_json: Compact<Pod> = serde_json::from_value(pod).unwrap();
    assert_eq!(from_proto.metadata(), from_json.metadata());
    // Same fields and values (protobuf sends them in field-number order).
    let rest = |pod: &Compact<Pod>| serde_json::from_str::<Value>(&pod.rest_json()).unwrap();
    assert_eq!(rest(&from_proto), rest(&from_json));
    assert_eq!(from_proto.decode().unwrap(), from_json.decode().unwrap());
}

#[test]
fn managed_fields_are_skipped_on_request() {
    let pod = realistic_pod();
    assert!(pod["metadata"]["managedFields"].is_array());
    let body = encode(&pod).unwrap();
    let read: Value = Decoder::new()
        .skip_managed_fields(true)
        .object(&body)
        .unwrap();
    let mut expected = pod.clone();
    expected["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("managedFields");
    assert_eq!(read, expected);
}

fn pod_list(n: usize) -> Value {
    let items: Vec<Value> = (0..n)
        .map(|i| {
            let mut pod = realistic_pod();
            pod["metadata"]["name"] = json!(format!("pod-{i}"));
            pod.as_object_mut().unwrap().remove("apiVersion");
            pod.as_object_mut().unwrap().remove("kind");
            pod
        })
        .collect();
    json!({"apiVersion": "v1", "kind": "PodList",
           "metadata": {"resourceVersion": "99", "continue": "token-1", "remainingItemCount": 7},
           "items": items})
}

#[test]
fn lists_read_whole_and_in_pieces() {
    let list = pod_list(5);
    let body = encode(&list).unwrap();
    let whole: ObjectList<Value> = Decoder::new().list(&body).unwrap();
    assert_eq!(whole.metadata.resource_version.as_deref(), Some("99"));
    assert_eq!(whole.metadata.continue_token.as_deref(), Some("token-1"));
    assert_eq!(whole.metadata.remaining_item_count, Some(7));
    assert_eq!(whole.items, list["items"].as_array().unwrap().clone());
    for chunk in [1, 7, 100, 4096] {
        let mut scanner = Decoder::new().list_scanner::<Compact<Pod>>();
        let mut metadata_at = None;
        for (i, piece) in body.chunks(chunk).enumerate() {
            if scanner.feed(piece).unwrap() {
                assert!(metadata_at.is_none());
                metadata_at = Some(i);
                // The metadata comes before any item.
                assert_eq!(scanner.items_len(), 0);
            }
        }
        assert!(metadata_at.is_some());
        let pieces = scanner.finish().unwrap();
        let names: Vec<_> = pieces
            .items
            .iter()
            .map(|p| p.metadata().name.clone())
            .collect();
        assert_eq!(names.len(), 5);
        assert_eq!(names[4].as_deref(), Some("pod-4"));
    }
}

#[test]
fn bad_bodies_are_errors() {
    let body = encode(&pod_list(2)).unwrap();
    let decoder = Decoder::new();
    assert!(matches!(
        decoder.list::<Value>(b"{\"kind\":\"PodList\"}"),
        Err(ProtobufError::NoMagic)
    ));
    for cut in [5, 20, body.len() / 2, body.len() - 1] {
        assert!(decoder.list::<Value>(&body[..cut]).is_err(), "cut at {cut}");
    }
    let pod = encode(&realistic_pod()).unwrap();
    assert!(matches!(
        decoder.list::<Value>(&pod),
        Err(ProtobufError::NotAList { .. })
    ));
    assert!(decoder.object::<Value>(&pod[..pod.len() - 3]).is_err());
    // A list read as a type that does not fit: the type's error, not a panic.
    assert!(decoder.list::<Vec<String>>(&body).is_err());
}

proptest! {
    #[test]
    fn corrupted_bodies_never_panic(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut body = encode(&pod_list(2)).unwrap();
        for (at, byte) in flips {
            let i = at.index(body.len());
            body[i] = byte;
        }
        let end = cut.index(body.len() + 1);
        let _ = Decoder::new().list::<Value>(&body[..end]);
        let _ = Decoder::new().list::<Compact<Pod>>(&body[..end]);
        let _ = Decoder::new().object::<Pod>(&body[..end]);
    }
}

/// Where two JSON values differ (for readable failures).
#[allow(dead_code)]
fn diff(a: &Value, b: &Value, path: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => diff(v, w, &format!("{path}.{k}"), out),
                    None => out.push(format!("{path}.{k}: only left {v}")),
                }
            }
            for (k, w) in y {
                if !x.contains_key(k) {
                    out.push(format!("{path}.{k}: only right {w}"));
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                diff(v, w, &format!("{path}[{i}]"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} != {b}")),
        _ => {}
    }
}

#[test]
fn watch_events_read_every_type() {
    use kube_apimachinery::WatchEvent;
    use kube_testserver::protobuf::encode_watch_event;
    let pod = realistic_pod();
    let decoder = Decoder::new().skip_managed_fields(true);
    for (kind, expect) in [("ADDED", 0), ("MODIFIED", 1), ("DELETED", 2)] {
        let frame = encode_watch_event(kind, &pod).unwrap();
        // The frame's 4-byte length, then the message.
        assert_eq!(
            u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize,
            frame.len() - 4
        );
        let event: WatchEvent<Compact<Pod>> = decoder.watch_event(&frame[4..]).unwrap();
        let object = event.object().unwrap();
        assert_eq!(
            object.metadata().name,
            pod["metadata"]["name"].as_str().map(String::from)
        );
        assert!(object.metadata().managed_fields.is_none());
        let index = match event {
            WatchEvent::Added(_) => 0,
            WatchEvent::Modified(_) => 1,
            WatchEvent::Deleted(_) => 2,
            _ => 3,
        };
        assert_eq!(index, expect);
    }
    let bookmark = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "resourceVersion": "12345", "annotations": {"k8s.io/initial-events-end": "true"}}});
    let frame = encode_watch_event("BOOKMARK", &bookmark).unwrap();
    match decoder.watch_event::<Pod>(&frame[4..]).unwrap() {
        WatchEvent::Bookmark(b) => {
            assert_eq!(b.resource_version, "12345");
            assert!(b.is_initial_events_end());
        }
        other => panic!("{other:?}"),
    }
    let status = json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
        "message": "too old resource version: 1 (5)", "reason": "Expired", "code": 410});
    let frame = encode_watch_event("ERROR", &status).unwrap();
    match decoder.watch_event::<Pod>(&frame[4..]).unwrap() {
        WatchEvent::Error(s) => {
            assert_eq!(s.code, 410);
            assert!(s.is_gone());
        }
        other => panic!("{other:?}"),
    }
    assert!(decoder.watch_event::<Pod>(b"\x0a\x03BAD").is_err());
    assert!(
        decoder
            .watch_event::<Pod>(&frame[4..frame.len() - 2])
            .is_err()
    );
}
