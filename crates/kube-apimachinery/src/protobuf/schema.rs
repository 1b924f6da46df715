//! The embedded Kubernetes protobuf schema, flattened for decoding: every message of the
//! `generated.proto` files with, per field, its number, wire type, JSON name and the JSON
//! rules of the Go type behind it (see `proto/README.md`). Loaded once, on first use, from
//! the descriptor set with prost-reflect; decoding then only indexes arrays.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use prost_reflect::{DescriptorPool, Kind};

/// `protoc --include_imports --descriptor_set_out` of the Kubernetes `generated.proto` files
/// (k8s.io/api, k8s.io/apimachinery, apiextensions/v1): see `proto/README.md`.
pub const DESCRIPTOR_SET: &[u8] = include_bytes!("../../proto/kubernetes.binpb");

/// What the `.proto` files do not say about the Go types behind the messages, which
/// Kubernetes' JSON follows: renamed and inlined fields, pointer and non-`omitempty`
/// scalars, named slice types (format: `proto/generate.py`; parsed by [`parse_json_fields`]).
pub const JSON_FIELDS: &str = include_str!("../../proto/json-fields.txt");

/// Package of the meta/v1 messages (Status, DeleteOptions, WatchEvent...).
pub const META_V1: &str = "k8s.io.apimachinery.pkg.apis.meta.v1";

/// Kinds of meta/v1 that every group version serves (the real server registers them in each).
const META_KINDS: &[&str] = &[
    "Status",
    "DeleteOptions",
    "ListOptions",
    "GetOptions",
    "CreateOptions",
    "UpdateOptions",
    "PatchOptions",
    "WatchEvent",
];

/// How the Go type writes one field in JSON, when it differs from the default rule (the
/// proto field name, `omitempty`, not a pointer).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct JsonFieldAttrs {
    /// The JSON name, when it is not the proto field name.
    pub json: Option<String>,
    /// An embedded struct whose fields are written inline.
    pub inline: bool,
    /// A pointer to a scalar: written when set, even when zero.
    pub ptr: bool,
    /// A scalar without `omitempty` (written even when zero), or a Time without `omitzero`
    /// (its zero written as `null`).
    pub always: bool,
}

/// [`JSON_FIELDS`] parsed: the attributes by (message full name, proto field name), and the
/// messages that stand for named Go slice types (a JSON array of their `items`).
#[derive(Debug, Default)]
pub struct JsonFields {
    /// Attributes of the fields that differ from the default rule.
    pub attrs: HashMap<(String, String), JsonFieldAttrs>,
    /// Messages written in JSON as the array of their `items`.
    pub slices: HashSet<String>,
}

/// Parses the format of [`JSON_FIELDS`].
pub fn parse_json_fields(text: &str) -> Result<JsonFields, String> {
    let mut parsed = JsonFields::default();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        let (Some(message), Some(field)) = (words.next(), words.next()) else {
            return Err(format!("json-fields.txt: malformed line {line:?}"));
        };
        let mut entry = JsonFieldAttrs::default();
        for word in words {
            match word {
                "slice" => {
                    parsed.slices.insert(message.to_string());
                }
                "inline" => entry.inline = true,
                "ptr" => entry.ptr = true,
                "always" => entry.always = true,
                other => match other.strip_prefix("json=") {
                    Some(name) => entry.json = Some(name.to_string()),
                    None => {
                        return Err(format!("json-fields.txt: unknown attribute {other:?}"));
                    }
                },
            }
        }
        parsed
            .attrs
            .insert((message.to_string(), field.to_string()), entry);
    }
    Ok(parsed)
}

/// The full name of the message of a Kubernetes kind (`v1` `Pod` is
/// `k8s.io.api.core.v1.Pod`), built from the group's Go package; `None` for groups outside
/// Kubernetes' own (custom resources have no protobuf form). Whether the message exists is
/// for the caller's schema to say.
pub fn message_name_candidates(api_version: &str, kind: &str) -> Option<[String; 2]> {
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    if version.is_empty() || kind.is_empty() {
        return None;
    }
    let package = match group {
        "" => "k8s.io.api.core".to_string(),
        "apiextensions.k8s.io" => "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions".into(),
        "internal.apiserver.k8s.io" => "k8s.io.api.apiserverinternal".into(),
        "meta.k8s.io" => "k8s.io.apimachinery.pkg.apis.meta".into(),
        group
            if group == "apps"
                || group == "batch"
                || group == "policy"
                || group == "autoscaling"
                || group == "extensions"
                || group.ends_with(".k8s.io") =>
        {
            // The Go package of a group is its first label (rbac.authorization.k8s.io is
            // k8s.io/api/rbac); only Kubernetes' own groups have messages.
            format!("k8s.io.api.{}", group.split('.').next().unwrap_or(group))
        }
        _ => return None,
    };
    let meta = if META_KINDS.contains(&kind) {
        format!("{META_V1}.{kind}")
    } else {
        String::new()
    };
    Some([format!("{package}.{version}.{kind}"), meta])
}

/// A message whose JSON form is not an object of its fields (a Go type with its own
/// `MarshalJSON`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// meta/v1 Time: an RFC 3339 string in UTC, whole seconds; `null` when zero.
    Time,
    /// meta/v1 MicroTime: RFC 3339 in UTC with microseconds; `null` when zero.
    MicroTime,
    /// meta/v1 Duration: a Go duration string (`1h2m3s`).
    Duration,
    /// IntOrString: a JSON number or string.
    IntOrString,
    /// Quantity: its canonical string.
    Quantity,
    /// Embedded JSON (or a protobuf object) in a bytes field ([`raw_field`]): RawExtension,
    /// FieldsV1, apiextensions' JSON.
    RawJson,
    /// JSONSchemaPropsOrArray: a schema or an array of schemas.
    PropsOrArray,
    /// JSONSchemaPropsOrBool: a schema or a boolean.
    PropsOrBool,
    /// JSONSchemaPropsOrStringArray: a schema or an array of strings.
    PropsOrStringArray,
}

/// The bytes field of the embedded-JSON messages: `raw` in RawExtension and apiextensions'
/// JSON, `Raw` in FieldsV1.
pub fn raw_field(full_name: &str) -> &'static str {
    if full_name.ends_with(".FieldsV1") {
        "Raw"
    } else {
        "raw"
    }
}

const APIEXTENSIONS: &str = "k8s.io.apiextensions_apiserver.pkg.apis.apiextensions.";

/// The special JSON form of a message, by full name (`None` for an ordinary message).
pub fn special_of(full_name: &str) -> Option<Special> {
    Some(match full_name {
        "k8s.io.apimachinery.pkg.apis.meta.v1.Time" => Special::Time,
        "k8s.io.apimachinery.pkg.apis.meta.v1.MicroTime" => Special::MicroTime,
        "k8s.io.apimachinery.pkg.apis.meta.v1.Duration" => Special::Duration,
        "k8s.io.apimachinery.pkg.apis.meta.v1.FieldsV1"
        | "k8s.io.apimachinery.pkg.runtime.RawExtension" => Special::RawJson,
        "k8s.io.apimachinery.pkg.util.intstr.IntOrString" => Special::IntOrString,
        "k8s.io.apimachinery.pkg.api.resource.Quantity"
        | "k8s.io.apimachinery.pkg.api.resource.QuantityValue" => Special::Quantity,
        other => match other
            .strip_prefix(APIEXTENSIONS)
            .and_then(|rest| rest.split_once('.'))
            .map(|(_, name)| name)
        {
            Some("JSON") => Special::RawJson,
            Some("JSONSchemaPropsOrArray") => Special::PropsOrArray,
            Some("JSONSchemaPropsOrBool") => Special::PropsOrBool,
            Some("JSONSchemaPropsOrStringArray") => Special::PropsOrStringArray,
            _ => return None,
        },
    })
}

/// The type of a field's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Bool,
    /// int32, int64, enums: varints.
    Int,
    /// uint32, uint64: varints.
    UInt,
    /// sint32, sint64: zigzag varints.
    SInt,
    Fixed32,
    SFixed32,
    Fixed64,
    SFixed64,
    Float,
    Double,
    String,
    Bytes,
    /// A message, by index in [`Schema::messages`].
    Message(u32),
}

/// One field of a message.
#[derive(Debug, Clone)]
pub(crate) struct Field {
    /// The field number.
    pub number: u32,
    /// The JSON key.
    pub json: Box<str>,
    pub ty: Ty,
    pub repeated: bool,
    /// A map: `ty` is the entry message (key 1, value 2).
    pub map: bool,
    /// An embedded struct whose fields are written inline.
    pub inline: bool,
    /// A pointer scalar: written even when zero.
    pub ptr: bool,
    /// Written even when zero (non-`omitempty` scalars, Times without `omitzero`).
    pub always: bool,
}

/// One message.
#[derive(Debug)]
pub(crate) struct Message {
    pub full_name: Box<str>,
    pub special: Option<Special>,
    /// The number of the bytes field of a [`Special::RawJson`] message.
    pub raw_number: u32,
    /// A named Go slice: JSON is the array of field 1 (`items`).
    pub slice: bool,
    /// Fields by number: `by_number[n]` is the index in `fields` plus one, 0 for none.
    by_number: Box<[u16]>,
    pub fields: Box<[Field]>,
    /// Indexes in `fields` of the fields Go writes even when absent from the message (zero
    /// scalars without `omitempty`, zero Times without `omitzero` as `null`).
    pub always: Box<[u16]>,
}

impl Message {
    /// The field of number `number`.
    #[inline]
    pub fn field(&self, number: u32) -> Option<&Field> {
        let slot = *self.by_number.get(number as usize)?;
        (slot != 0).then(|| &self.fields[usize::from(slot) - 1])
    }

    /// The index in `fields` of the field of number `number`.
    #[inline]
    pub fn index_of(&self, number: u32) -> Option<usize> {
        let slot = *self.by_number.get(number as usize)?;
        (slot != 0).then(|| usize::from(slot) - 1)
    }
}

/// Every message of the embedded descriptor set.
#[derive(Debug)]
pub(crate) struct Schema {
    pub messages: Box<[Message]>,
    by_name: HashMap<Box<str>, u32>,
    /// ObjectMeta and the number of its `managedFields` field.
    pub object_meta: Option<u32>,
}

pub(crate) const MANAGED_FIELDS_NUMBER: u32 = 17;

static SCHEMA: OnceLock<Result<Schema, String>> = OnceLock::new();

/// The schema, loaded on first use.
pub(crate) fn schema() -> Result<&'static Schema, String> {
    SCHEMA
        .get_or_init(Schema::load)
        .as_ref()
        .map_err(Clone::clone)
}

impl Schema {
    fn load() -> Result<Schema, String> {
        let pool = DescriptorPool::decode(DESCRIPTOR_SET)
            .map_err(|e| format!("the embedded descriptor set does not decode: {e}"))?;
        let json_fields = parse_json_fields(JSON_FIELDS)?;
        let descriptors: Vec<_> = pool.all_messages().collect();
        let by_name: HashMap<Box<str>, u32> = descriptors
            .iter()
            .enumerate()
            .map(|(i, m)| (Box::from(m.full_name()), i as u32))
            .collect();
        let index = |name: &str| {
            by_name
                .get(name)
                .copied()
                .ok_or_else(|| format!("message {name} is referenced but not defined"))
        };
        let mut messages = Vec::with_capacity(descriptors.len());
        for desc in &descriptors {
            let mut fields = Vec::new();
            let mut max = 0;
            for field in desc.fields() {
                let key = (desc.full_name().to_string(), field.name().to_string());
                let attrs = json_fields.attrs.get(&key).cloned().unwrap_or_default();
                let ty = match field.kind() {
                    Kind::Bool => Ty::Bool,
                    Kind::Int32 | Kind::Int64 | Kind::Enum(_) => Ty::Int,
                    Kind::Uint32 | Kind::Uint64 => Ty::UInt,
                    Kind::Sint32 | Kind::Sint64 => Ty::SInt,
                    Kind::Fixed32 => Ty::Fixed32,
                    Kind::Sfixed32 => Ty::SFixed32,
                    Kind::Fixed64 => Ty::Fixed64,
                    Kind::Sfixed64 => Ty::SFixed64,
                    Kind::Float => Ty::Float,
                    Kind::Double => Ty::Double,
                    Kind::String => Ty::String,
                    Kind::Bytes => Ty::Bytes,
                    Kind::Message(m) => Ty::Message(index(m.full_name())?),
                };
                max = max.max(field.number());
                fields.push((
                    field.number(),
                    Field {
                        number: field.number(),
                        json: attrs
                            .json
                            .unwrap_or_else(|| field.name().to_string())
                            .into(),
                        ty,
                        repeated: field.is_list() || field.is_map(),
                        map: field.is_map(),
                        inline: attrs.inline && matches!(ty, Ty::Message(_)),
                        ptr: attrs.ptr,
                        always: attrs.always,
                    },
                ));
            }
            if max > 4096 || fields.len() >= usize::from(u16::MAX) {
                return Err(format!("{}: field numbers too large", desc.full_name()));
            }
            let mut by_number = vec![0u16; max as usize + 1];
            for (i, (number, _)) in fields.iter().enumerate() {
                by_number[*number as usize] = i as u16 + 1;
            }
            let always = fields
                .iter()
                .enumerate()
                .filter(|(_, (_, f))| f.always && !f.repeated && !f.inline)
                .map(|(i, _)| i as u16)
                .collect();
            let raw_name = raw_field(desc.full_name());
            let raw_number = desc
                .fields()
                .find(|f| f.name() == raw_name)
                .map_or(0, |f| f.number());
            messages.push(Message {
                raw_number,
                always,
                full_name: desc.full_name().into(),
                special: special_of(desc.full_name()),
                slice: json_fields.slices.contains(desc.full_name()),
                by_number: by_number.into(),
                fields: fields.into_iter().map(|(_, f)| f).collect(),
            });
        }
        let object_meta = by_name.get(&*format!("{META_V1}.ObjectMeta")).copied();
        Ok(Schema {
            messages: messages.into(),
            by_name,
            object_meta,
        })
    }

    /// A message by full name.
    pub fn by_name(&self, full_name: &str) -> Option<u32> {
        self.by_name.get(full_name).copied()
    }

    /// The message of a Kubernetes kind, if it has one.
    pub fn kind(&self, api_version: &str, kind: &str) -> Option<u32> {
        let [own, meta] = message_name_candidates(api_version, kind)?;
        self.by_name(&own).or_else(|| self.by_name(&meta))
    }

    #[inline]
    pub fn message(&self, index: u32) -> &Message {
        &self.messages[index as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_and_finds_kinds() {
        let schema = schema().unwrap();
        let name = |i: Option<u32>| schema.message(i.unwrap()).full_name.to_string();
        assert_eq!(name(schema.kind("v1", "Pod")), "k8s.io.api.core.v1.Pod");
        assert_eq!(
            name(schema.kind("apps/v1", "DeploymentList")),
            "k8s.io.api.apps.v1.DeploymentList"
        );
        assert_eq!(
            name(schema.kind("rbac.authorization.k8s.io/v1", "ClusterRole")),
            "k8s.io.api.rbac.v1.ClusterRole"
        );
        assert_eq!(
            name(schema.kind("apps/v1", "Status")),
            "k8s.io.apimachinery.pkg.apis.meta.v1.Status"
        );
        assert!(schema.kind("stable.example.com/v1", "CronTab").is_none());
        assert!(schema.kind("v1", "NoSuchKind").is_none());
        assert!(schema.kind("", "Pod").is_none());
    }

    #[test]
    fn fields_know_their_json_rules() {
        let schema = schema().unwrap();
        let volume = schema.message(schema.by_name("k8s.io.api.core.v1.Volume").unwrap());
        assert!(volume.field(2).unwrap().inline);
        let spec = schema.message(schema.by_name("k8s.io.api.apps.v1.DeploymentSpec").unwrap());
        let replicas = spec.fields.iter().find(|f| &*f.json == "replicas").unwrap();
        assert!(replicas.ptr);
        let meta = schema.message(schema.object_meta.unwrap());
        assert_eq!(
            &*meta.field(MANAGED_FIELDS_NUMBER).unwrap().json,
            "managedFields"
        );
        let labels = meta.fields.iter().find(|f| &*f.json == "labels").unwrap();
        assert!(labels.map && labels.repeated);
        assert!(
            schema
                .message(schema.by_name(&format!("{META_V1}.Verbs")).unwrap())
                .slice
        );
    }
}
