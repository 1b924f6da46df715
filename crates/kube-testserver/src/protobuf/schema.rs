//! The embedded Kubernetes protobuf schema: the descriptor set of every `generated.proto` and
//! what the Go types add for JSON (kube-apimachinery's `proto/README.md`), loaded once on first use.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};

use super::ProtobufError;

use kube_apimachinery::protobuf::schema::{
    DESCRIPTOR_SET, JSON_FIELDS, message_name_candidates, parse_json_fields,
};

/// Package of the meta/v1 messages (Status, DeleteOptions, WatchEvent...).
pub(crate) use kube_apimachinery::protobuf::schema::META_V1;
/// The envelope of every top-level protobuf body.
pub(crate) const UNKNOWN: &str = "k8s.io.apimachinery.pkg.runtime.Unknown";

/// One field of a message, with what JSON needs to know about it.
#[derive(Debug, Clone)]
pub(crate) struct FieldInfo {
    /// The protobuf field.
    pub desc: FieldDescriptor,
    /// The JSON name (the proto name unless the Go type says otherwise).
    pub json: String,
    /// An embedded Go struct whose fields are written inline in JSON.
    pub inline: bool,
    /// A Go pointer to a scalar: written to JSON when set, even when zero.
    pub ptr: bool,
    /// A Go scalar without `omitempty` (written to JSON even when zero) or a Time without
    /// `omitzero` (its zero written as `null`).
    pub always: bool,
}

/// A message's fields and how JSON keys map onto them.
#[derive(Debug)]
pub(crate) struct Layout {
    /// Fields in field-number order.
    pub fields: Vec<FieldInfo>,
    /// JSON key to the index in `fields` that takes it (the inline field for keys of an
    /// inlined struct).
    pub by_json: HashMap<String, usize>,
}

/// The loaded schema.
#[derive(Debug)]
pub(crate) struct Schema {
    pool: DescriptorPool,
    layouts: HashMap<String, Layout>,
    slices: HashSet<String>,
}

static SCHEMA: OnceLock<Result<Schema, String>> = OnceLock::new();

/// The schema, loaded on first use.
pub(crate) fn schema() -> Result<&'static Schema, ProtobufError> {
    SCHEMA
        .get_or_init(Schema::load)
        .as_ref()
        .map_err(|message| ProtobufError::Schema(message.clone()))
}

impl Schema {
    fn load() -> Result<Schema, String> {
        let pool = DescriptorPool::decode(DESCRIPTOR_SET)
            .map_err(|e| format!("the embedded descriptor set does not decode: {e}"))?;
        let parsed = parse_json_fields(JSON_FIELDS)?;
        let (attrs, slices) = (parsed.attrs, parsed.slices);
        let mut layouts = HashMap::new();
        for message in pool.all_messages() {
            let fields: Vec<FieldInfo> = message
                .fields()
                .map(|desc| {
                    let key = (message.full_name().to_string(), desc.name().to_string());
                    let a = attrs.get(&key).cloned().unwrap_or_default();
                    FieldInfo {
                        json: a.json.unwrap_or_else(|| desc.name().to_string()),
                        inline: a.inline && matches!(desc.kind(), Kind::Message(_)),
                        ptr: a.ptr,
                        always: a.always,
                        desc,
                    }
                })
                .collect();
            layouts.insert(
                message.full_name().to_string(),
                Layout {
                    fields,
                    by_json: HashMap::new(),
                },
            );
        }
        // JSON keys, inlined structs' keys included (they nest: resolve recursively).
        let names: Vec<String> = layouts.keys().cloned().collect();
        for name in names {
            let mut keys = HashMap::new();
            collect_keys(&layouts, &name, None, &mut keys, 0);
            if let Some(layout) = layouts.get_mut(&name) {
                layout.by_json = keys;
            }
        }
        Ok(Schema {
            pool,
            layouts,
            slices,
        })
    }

    /// A message by full name.
    pub fn message(&self, full_name: &str) -> Option<MessageDescriptor> {
        self.pool.get_message_by_name(full_name)
    }

    /// The layout of a message of this pool.
    pub fn layout(&self, message: &MessageDescriptor) -> Result<&Layout, ProtobufError> {
        self.layouts
            .get(message.full_name())
            .ok_or_else(|| ProtobufError::Schema(format!("no layout for {}", message.full_name())))
    }

    /// Whether a message stands for a named Go slice type (a JSON array of its `items`).
    pub fn is_slice(&self, message: &MessageDescriptor) -> bool {
        self.slices.contains(message.full_name())
    }

    /// The message of a Kubernetes kind, if it has one: built-in kinds do, custom resources
    /// do not.
    pub fn kind(&self, api_version: &str, kind: &str) -> Option<MessageDescriptor> {
        let [own, meta] = message_name_candidates(api_version, kind)?;
        self.message(&own).or_else(|| self.message(&meta))
    }
}

fn collect_keys(
    layouts: &HashMap<String, Layout>,
    message: &str,
    via: Option<usize>,
    keys: &mut HashMap<String, usize>,
    depth: usize,
) {
    let Some(layout) = layouts.get(message) else {
        return;
    };
    if depth > 8 {
        return; // inline structs do not recurse in Kubernetes; bound it anyway
    }
    for (index, field) in layout.fields.iter().enumerate() {
        let slot = via.unwrap_or(index);
        if field.inline {
            if let Kind::Message(child) = field.desc.kind() {
                collect_keys(layouts, child.full_name(), Some(slot), keys, depth + 1);
            }
        } else {
            keys.entry(field.json.clone()).or_insert(slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_and_finds_kinds() {
        let schema = schema().unwrap();
        assert_eq!(
            schema.kind("v1", "Pod").unwrap().full_name(),
            "k8s.io.api.core.v1.Pod"
        );
        assert_eq!(
            schema
                .kind("apps/v1", "DeploymentList")
                .unwrap()
                .full_name(),
            "k8s.io.api.apps.v1.DeploymentList"
        );
        assert_eq!(
            schema
                .kind("rbac.authorization.k8s.io/v1", "ClusterRole")
                .unwrap()
                .full_name(),
            "k8s.io.api.rbac.v1.ClusterRole"
        );
        assert_eq!(
            schema
                .kind("apiextensions.k8s.io/v1", "CustomResourceDefinition")
                .unwrap()
                .full_name(),
            "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"
        );
        assert_eq!(
            schema.kind("apps/v1", "Status").unwrap().full_name(),
            "k8s.io.apimachinery.pkg.apis.meta.v1.Status"
        );
        assert!(schema.kind("stable.example.com/v1", "CronTab").is_none());
        assert!(schema.kind("v1", "NoSuchKind").is_none());
        assert!(schema.kind("", "Pod").is_none());
    }

    #[test]
    fn layouts_know_renamed_and_inlined_fields() {
        let schema = schema().unwrap();
        let volume = schema.message("k8s.io.api.core.v1.Volume").unwrap();
        let layout = schema.layout(&volume).unwrap();
        let inline = layout.by_json["configMap"];
        assert_eq!(layout.fields[inline].desc.name(), "volumeSource");
        assert!(layout.fields[inline].inline);
        let props = schema
            .message("k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.v1.JSONSchemaProps")
            .unwrap();
        let layout = schema.layout(&props).unwrap();
        assert_eq!(layout.fields[layout.by_json["$ref"]].desc.name(), "ref");
        assert!(layout.fields[layout.by_json["$ref"]].ptr);
        let spec = schema.message("k8s.io.api.apps.v1.DeploymentSpec").unwrap();
        let layout = schema.layout(&spec).unwrap();
        assert!(layout.fields[layout.by_json["replicas"]].ptr);
        assert!(schema.is_slice(&schema.message(&format!("{META_V1}.Verbs")).unwrap()));
    }
}
