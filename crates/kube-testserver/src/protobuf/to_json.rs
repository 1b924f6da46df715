//! Protobuf to JSON, as a Go client or server would write the decoded Go struct: the Go JSON
//! names, `omitempty` zero values left out, pointers written when set, and the custom JSON forms
//! of the special types (Time, MicroTime, Duration, IntOrString, Quantity, RawExtension,
//! FieldsV1, apiextensions' JSON and JSONSchemaPropsOr*).

use base64::Engine as _;
use prost_reflect::{DynamicMessage, Kind, MapKey, ReflectMessage as _, Value as PValue};
use serde_json::{Map, Number, Value};

use super::schema::Schema;
use super::{MAX_DEPTH, ProtobufError, special};

/// Converts a decoded message to its JSON form.
pub(crate) fn message(
    schema: &Schema,
    message: &DynamicMessage,
    path: &str,
    depth: usize,
) -> Result<Value, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep { path: path.into() });
    }
    let desc = message.descriptor();
    if let Some(value) = special_to_json(schema, message, path, depth)? {
        return Ok(value);
    }
    if schema.is_slice(&desc) {
        let items = message.get_field_by_name("items");
        return match items.as_deref() {
            Some(PValue::List(items)) if !items.is_empty() => items
                .iter()
                .enumerate()
                .map(|(i, item)| scalar_or_message(schema, item, &format!("{path}[{i}]"), depth))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            _ => Ok(Value::Array(Vec::new())),
        };
    }
    let layout = schema.layout(&desc)?;
    let mut object = Map::new();
    for field in &layout.fields {
        let desc = &field.desc;
        if !message.has_field(desc) {
            // Go writes a field without omitempty even when zero: its zero, null for a Time.
            if field.always && !desc.is_list() && !desc.is_map() {
                let zero = match desc.kind() {
                    Kind::Message(_) => Value::Null,
                    _ => scalar_to_json(&desc.default_value(), path)?,
                };
                object.insert(field.json.clone(), zero);
            }
            continue;
        }
        let value = message.get_field(desc);
        let child_path = join(path, &field.json);
        if field.inline {
            if let Value::Object(inner) = scalar_or_message(schema, &value, &child_path, depth)? {
                object.extend(inner);
            }
            continue;
        }
        let json = match value.as_ref() {
            PValue::List(items) => {
                if items.is_empty() {
                    continue;
                }
                Value::Array(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| {
                            scalar_or_message(schema, item, &format!("{child_path}[{i}]"), depth)
                        })
                        .collect::<Result<_, _>>()?,
                )
            }
            PValue::Map(entries) => {
                if entries.is_empty() {
                    continue;
                }
                let mut map = Map::new();
                let mut sorted: Vec<_> = entries.iter().collect();
                sorted.sort_by(|a, b| a.0.cmp(b.0));
                for (key, item) in sorted {
                    let key = map_key(key);
                    let item = scalar_or_message(schema, item, &join(&child_path, &key), depth)?;
                    map.insert(key, item);
                }
                Value::Object(map)
            }
            PValue::Message(inner) => {
                let converted = self::message(schema, inner, &child_path, depth + 1)?;
                if converted.is_null() && !field.always {
                    continue; // a zero Time: Go leaves it out (omitzero) or writes null
                }
                converted
            }
            scalar => {
                if is_zero(scalar) && !field.ptr && !field.always {
                    continue;
                }
                scalar_to_json(scalar, &child_path)?
            }
        };
        object.insert(field.json.clone(), json);
    }
    Ok(Value::Object(object))
}

fn scalar_or_message(
    schema: &Schema,
    value: &PValue,
    path: &str,
    depth: usize,
) -> Result<Value, ProtobufError> {
    match value {
        PValue::Message(inner) => message(schema, inner, path, depth + 1),
        scalar => scalar_to_json(scalar, path),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn map_key(key: &MapKey) -> String {
    match key {
        MapKey::Bool(b) => b.to_string(),
        MapKey::I32(v) => v.to_string(),
        MapKey::I64(v) => v.to_string(),
        MapKey::U32(v) => v.to_string(),
        MapKey::U64(v) => v.to_string(),
        MapKey::String(s) => s.clone(),
    }
}

fn is_zero(value: &PValue) -> bool {
    match value {
        PValue::Bool(b) => !b,
        PValue::I32(v) => *v == 0,
        PValue::I64(v) => *v == 0,
        PValue::U32(v) => *v == 0,
        PValue::U64(v) => *v == 0,
        PValue::F32(v) => *v == 0.0,
        PValue::F64(v) => *v == 0.0,
        PValue::String(s) => s.is_empty(),
        PValue::Bytes(b) => b.is_empty(),
        PValue::EnumNumber(v) => *v == 0,
        PValue::Message(_) | PValue::List(_) | PValue::Map(_) => false,
    }
}

fn scalar_to_json(value: &PValue, path: &str) -> Result<Value, ProtobufError> {
    Ok(match value {
        PValue::Bool(b) => Value::Bool(*b),
        PValue::I32(v) => Value::from(*v),
        PValue::I64(v) => Value::from(*v),
        PValue::U32(v) => Value::from(*v),
        PValue::U64(v) => Value::from(*v),
        PValue::EnumNumber(v) => Value::from(*v),
        PValue::F32(v) => float(f64::from(*v), path)?,
        PValue::F64(v) => float(*v, path)?,
        PValue::String(s) => Value::String(s.clone()),
        PValue::Bytes(b) => Value::String(base64::engine::general_purpose::STANDARD.encode(b)),
        PValue::Message(_) | PValue::List(_) | PValue::Map(_) => {
            return Err(ProtobufError::Convert {
                path: path.into(),
                message: "a nested list or map".into(),
            });
        }
    })
}

fn float(v: f64, path: &str) -> Result<Value, ProtobufError> {
    Number::from_f64(v)
        .map(Value::Number)
        .ok_or_else(|| ProtobufError::Convert {
            path: path.into(),
            message: format!("{v} has no JSON form"),
        })
}

/// The JSON of the special types, or `None` for an ordinary message.
fn special_to_json(
    schema: &Schema,
    msg: &DynamicMessage,
    path: &str,
    depth: usize,
) -> Result<Option<Value>, ProtobufError> {
    let name = msg.descriptor().full_name().to_string();
    let int = |field: &str| -> i64 {
        match msg.get_field_by_name(field).as_deref() {
            Some(PValue::I64(v)) => *v,
            Some(PValue::I32(v)) => i64::from(*v),
            _ => 0,
        }
    };
    let string = |field: &str| -> String {
        match msg.get_field_by_name(field).as_deref() {
            Some(PValue::String(s)) => s.clone(),
            _ => String::new(),
        }
    };
    let bytes = |field: &str| -> Option<bytes::Bytes> {
        match msg.get_field_by_name(field).as_deref() {
            Some(PValue::Bytes(b)) if msg.has_field_by_name(field) => Some(b.clone()),
            _ => None,
        }
    };
    let sub = |field: &str| -> Option<DynamicMessage> {
        match msg.get_field_by_name(field).as_deref() {
            Some(PValue::Message(m)) if msg.has_field_by_name(field) => Some(m.clone()),
            _ => None,
        }
    };
    Ok(Some(match special::of(&name) {
        None => return Ok(None),
        Some(special::Special::Time) => {
            let (seconds, nanos) = (int("seconds"), int("nanos"));
            if seconds == 0 && nanos == 0 {
                Value::Null
            } else {
                Value::String(special::format_time(seconds, 0, path)?)
            }
        }
        Some(special::Special::MicroTime) => {
            let (seconds, nanos) = (int("seconds"), int("nanos"));
            if seconds == 0 && nanos == 0 {
                Value::Null
            } else {
                Value::String(special::format_micro_time(seconds, nanos, path)?)
            }
        }
        Some(special::Special::Duration) => {
            Value::String(special::format_duration(int("duration")))
        }
        Some(special::Special::IntOrString) => {
            if int("type") == 1 {
                Value::String(string("strVal"))
            } else {
                Value::from(int("intVal"))
            }
        }
        Some(special::Special::Quantity) => Value::String(string("string")),
        Some(special::Special::RawJson) => match bytes(special::raw_field(&name)) {
            None => Value::Null,
            Some(raw) => embedded(schema, &raw, path, depth)?,
        },
        Some(special::Special::PropsOrArray) => {
            let schemas = msg.get_field_by_name("jSONSchemas");
            match schemas.as_deref() {
                Some(PValue::List(items)) if !items.is_empty() => Value::Array(
                    items
                        .iter()
                        .enumerate()
                        .map(|(i, item)| {
                            scalar_or_message(schema, item, &format!("{path}[{i}]"), depth)
                        })
                        .collect::<Result<_, _>>()?,
                ),
                _ => match sub("schema") {
                    Some(inner) => message(schema, &inner, path, depth + 1)?,
                    None => Value::Null,
                },
            }
        }
        Some(special::Special::PropsOrBool) => match sub("schema") {
            Some(inner) => message(schema, &inner, path, depth + 1)?,
            None => Value::Bool(matches!(
                msg.get_field_by_name("allows").as_deref(),
                Some(PValue::Bool(true))
            )),
        },
        Some(special::Special::PropsOrStringArray) => {
            let property = msg.get_field_by_name("property");
            match property.as_deref() {
                Some(PValue::List(items)) if !items.is_empty() => Value::Array(
                    items
                        .iter()
                        .map(|item| scalar_to_json(item, path))
                        .collect::<Result<_, _>>()?,
                ),
                _ => match sub("schema") {
                    Some(inner) => message(schema, &inner, path, depth + 1)?,
                    None => Value::Null,
                },
            }
        }
    }))
}

/// The JSON of embedded raw bytes: JSON as is, or a protobuf-encoded object (magic prefix).
fn embedded(schema: &Schema, raw: &[u8], path: &str, depth: usize) -> Result<Value, ProtobufError> {
    if raw.starts_with(&super::MAGIC) {
        return super::decode_object_at(schema, raw, path, depth + 1);
    }
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(raw).map_err(|e| ProtobufError::Convert {
        path: path.into(),
        message: format!("embedded object is neither JSON nor protobuf: {e}"),
    })
}
