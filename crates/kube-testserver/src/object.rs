//! Object-level rules: metadata access, name validation, generated names, uids, timestamps,
//! and the defaults and validation the real server applies to a few built-in kinds.

use serde_json::{Map, Value, json};

use crate::registry::ResourceType;
use crate::status::Cause;

/// `metadata.<field>` as a string, if set.
pub fn meta_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    object.get("metadata")?.get(field)?.as_str()
}

/// `metadata`, created if missing (and replaced if it is not an object).
pub fn metadata_mut(object: &mut Value) -> &mut Map<String, Value> {
    if !object.is_object() {
        *object = Value::Object(Map::new());
    }
    let Value::Object(map) = object else {
        unreachable!("made an object above") // ok: replaced just above
    };
    let metadata = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(Map::new());
    }
    match metadata {
        Value::Object(m) => m,
        _ => unreachable!("made an object above"), // ok: replaced just above
    }
}

/// The current time as the API server writes it (`2026-11-23T13:53:20Z`).
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// A random v4 uid.
pub fn new_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `prefix` plus five random characters from the alphabet the API server uses.
pub fn generate_name(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let suffix: String = (0..5)
        .map(|_| ALPHABET[fastrand::usize(..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{suffix}")
}

const DNS1123_SUBDOMAIN_MESSAGE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const DNS1123_LABEL_MESSAGE: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.split('.').all(is_dns1123_label)
}

/// Validates `metadata.name` for a resource: namespaces (and other label-named kinds) must be
/// RFC 1123 labels, everything else RFC 1123 subdomains; events and leases accept any path
/// segment name.
pub fn validate_name(resource: &ResourceType, name: &str) -> Option<Cause> {
    if name.is_empty() {
        return Some(Cause::required(
            "metadata.name",
            "name or generateName is required",
        ));
    }
    match resource.plural.as_str() {
        "namespaces" | "services" => (!is_dns1123_label(name))
            .then(|| Cause::invalid("metadata.name", name, DNS1123_LABEL_MESSAGE)),
        "events" => (name.contains('/') || name == "." || name == "..")
            .then(|| Cause::invalid("metadata.name", name, "may not contain '/'")),
        _ => (!is_dns1123_subdomain(name))
            .then(|| Cause::invalid("metadata.name", name, DNS1123_SUBDOMAIN_MESSAGE)),
    }
}

/// Kind-specific validation the real server does that tests commonly rely on.
pub fn validate_kind(resource: &ResourceType, object: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    if resource.group.is_empty() && resource.plural == "pods" {
        let containers = object
            .get("spec")
            .and_then(|s| s.get("containers"))
            .and_then(Value::as_array);
        match containers {
            None => causes.push(Cause::required("spec.containers", "")),
            Some(list) if list.is_empty() => causes.push(Cause::required("spec.containers", "")),
            Some(list) => {
                for (i, container) in list.iter().enumerate() {
                    if container
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .is_empty()
                    {
                        causes.push(Cause::required(&format!("spec.containers[{i}].name"), ""));
                    }
                    if container
                        .get("image")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .is_empty()
                    {
                        causes.push(Cause::required(&format!("spec.containers[{i}].image"), ""));
                    }
                }
            }
        }
    }
    causes
}

fn default_field(map: &mut Map<String, Value>, key: &str, value: Value) {
    map.entry(key.to_string()).or_insert(value);
}

fn image_pull_policy(image: &str) -> &'static str {
    let tag = image
        .rsplit('/')
        .next()
        .and_then(|last| last.split_once(':'));
    match tag {
        _ if image.contains('@') => "IfNotPresent",
        Some((_, "latest")) | None => "Always",
        Some(_) => "IfNotPresent",
    }
}

/// The defaults the API server fills in for pods (a subset of the real defaulting: what
/// kubectl and controllers read back), and the Pending status of a new pod.
pub fn apply_defaults(resource: &ResourceType, object: &mut Value, creating: bool) {
    if !(resource.group.is_empty() && resource.plural == "pods") {
        return;
    }
    let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(containers)) = spec.get_mut(list) {
            for container in containers.iter_mut().filter_map(Value::as_object_mut) {
                let image = container
                    .get("image")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                default_field(
                    container,
                    "imagePullPolicy",
                    json!(image_pull_policy(&image)),
                );
                default_field(container, "resources", json!({}));
                default_field(
                    container,
                    "terminationMessagePath",
                    json!("/dev/termination-log"),
                );
                default_field(container, "terminationMessagePolicy", json!("File"));
            }
        }
    }
    default_field(spec, "restartPolicy", json!("Always"));
    default_field(spec, "terminationGracePeriodSeconds", json!(30));
    default_field(spec, "dnsPolicy", json!("ClusterFirst"));
    default_field(spec, "securityContext", json!({}));
    default_field(spec, "schedulerName", json!("default-scheduler"));
    default_field(spec, "enableServiceLinks", json!(true));
    default_field(spec, "preemptionPolicy", json!("PreemptLowerPriority"));
    default_field(spec, "priority", json!(0));
    default_field(
        spec,
        "tolerations",
        json!([
            {"effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300},
            {"effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300}
        ]),
    );
    if creating && let Some(map) = object.as_object_mut() {
        let status = map.entry("status").or_insert_with(|| json!({}));
        if let Some(status) = status.as_object_mut() {
            default_field(status, "phase", json!("Pending"));
            default_field(status, "qosClass", json!("BestEffort"));
        }
    }
}

/// Labels the server maintains itself: `kubernetes.io/metadata.name` on namespaces.
pub fn apply_labels(resource: &ResourceType, object: &mut Value) {
    if !(resource.group.is_empty() && resource.plural == "namespaces") {
        return;
    }
    let name = meta_str(object, "name").unwrap_or("").to_string();
    let metadata = metadata_mut(object);
    let labels = metadata.entry("labels").or_insert_with(|| json!({}));
    if !labels.is_object() {
        *labels = json!({});
    }
    if let Some(labels) = labels.as_object_mut() {
        labels.insert("kubernetes.io/metadata.name".into(), json!(name));
    }
}

/// Whether two objects differ in anything but `metadata.resourceVersion` and
/// `metadata.managedFields`.
pub fn differs_ignoring_version(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
            m.remove("managedFields");
        }
        v
    };
    strip(a) != strip(b)
}

/// Whether anything outside `metadata` and `status` differs (what bumps `generation`).
pub fn spec_differs(a: &Value, b: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.as_object_mut() {
            m.remove("metadata");
            m.remove("status");
        }
        v
    };
    strip(a) != strip(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Registry;

    #[test]
    fn names_are_validated_like_the_api_server() {
        let registry = Registry::with_builtins();
        let pods = registry.get("", "v1", "pods").unwrap();
        let ns = registry.get("", "v1", "namespaces").unwrap();
        assert!(validate_name(&pods, "p1.example").is_none());
        let cause = validate_name(&pods, "Bad_Name").unwrap();
        assert!(
            cause
                .message
                .starts_with("Invalid value: \"Bad_Name\": a lowercase RFC 1123 subdomain")
        );
        assert!(validate_name(&ns, "a.b").is_some());
        assert!(validate_name(&pods, "").is_some());
    }

    #[test]
    fn generated_names_have_five_char_suffix() {
        let name = generate_name("gen-");
        assert_eq!(name.len(), 9);
        assert!(name.starts_with("gen-"));
    }

    #[test]
    fn pod_defaults_and_validation() {
        let registry = Registry::with_builtins();
        let pods = registry.get("", "v1", "pods").unwrap();
        let mut pod = json!({"spec": {"containers": [{"name": "main", "image": "busybox"}]}});
        assert!(validate_kind(&pods, &pod).is_empty());
        apply_defaults(&pods, &mut pod, true);
        assert_eq!(pod["spec"]["containers"][0]["imagePullPolicy"], "Always");
        assert_eq!(pod["status"]["phase"], "Pending");
        assert_eq!(image_pull_policy("busybox:1.35"), "IfNotPresent");
        let empty = json!({"spec": {"containers": []}});
        assert_eq!(validate_kind(&pods, &empty)[0].field, "spec.containers");
    }
}
