//! JSON to protobuf, as a Go client or server would decode the JSON into the Go struct and
//! marshal it: keys by their Go JSON names (inlined structs included), unknown keys and `null`
//! dropped, and the special types read from their custom JSON forms.

use base64::Engine as _;
use prost_reflect::{
    DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor, ReflectMessage as _,
    Value as PValue,
};
use serde_json::{Map, Value};

use super::schema::Schema;
use super::special::{self, Special};
use super::{MAX_DEPTH, ProtobufError};

fn error(path: &str, message: impl Into<String>) -> ProtobufError {
    ProtobufError::Convert {
        path: path.into(),
        message: message.into(),
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn set(
    message: &mut DynamicMessage,
    field: &FieldDescriptor,
    value: PValue,
    path: &str,
) -> Result<(), ProtobufError> {
    message
        .try_set_field(field, value)
        .map_err(|e| error(path, e.to_string()))
}

/// Converts a JSON value to a message of type `desc`.
pub(crate) fn message(
    schema: &Schema,
    desc: &MessageDescriptor,
    value: &Value,
    path: &str,
    depth: usize,
) -> Result<DynamicMessage, ProtobufError> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep { path: path.into() });
    }
    let mut message = DynamicMessage::new(desc.clone());
    if let Some(kind) = special::of(desc.full_name()) {
        special_from_json(schema, &mut message, kind, value, path, depth)?;
        return Ok(message);
    }
    if schema.is_slice(desc) {
        let field = desc
            .get_field_by_name("items")
            .ok_or_else(|| error(path, "a slice message without items"))?;
        let items = list(schema, &field, value, path, depth)?;
        set(&mut message, &field, items, path)?;
        return Ok(message);
    }
    let Value::Object(object) = value else {
        return Err(error(
            path,
            format!("expected an object, got {}", type_name(value)),
        ));
    };
    let layout = schema.layout(desc)?;
    // Keys of inlined structs are gathered per inline field and converted together.
    let mut inlined: Vec<(usize, Map<String, Value>)> = Vec::new();
    for (key, item) in object {
        let Some(&index) = layout.by_json.get(key) else {
            continue; // unknown fields are dropped, as Go's decoder does
        };
        if item.is_null() {
            continue;
        }
        let info = &layout.fields[index];
        let child_path = join(path, key);
        if info.inline {
            match inlined.iter_mut().find(|(i, _)| *i == index) {
                Some((_, map)) => {
                    map.insert(key.clone(), item.clone());
                }
                None => inlined.push((index, Map::from_iter([(key.clone(), item.clone())]))),
            }
            continue;
        }
        let converted = field_value(schema, &info.desc, item, &child_path, depth)?;
        set(&mut message, &info.desc, converted, &child_path)?;
    }
    for (index, map) in inlined {
        let info = &layout.fields[index];
        let Kind::Message(child) = info.desc.kind() else {
            continue;
        };
        let inner = self::message(schema, &child, &Value::Object(map), path, depth + 1)?;
        set(&mut message, &info.desc, PValue::Message(inner), path)?;
    }
    Ok(message)
}

fn field_value(
    schema: &Schema,
    field: &FieldDescriptor,
    value: &Value,
    path: &str,
    depth: usize,
) -> Result<PValue, ProtobufError> {
    if field.is_map() {
        let Kind::Message(entry) = field.kind() else {
            return Err(error(path, "a map field without an entry message"));
        };
        let Value::Object(object) = value else {
            return Err(error(
                path,
                format!("expected an object, got {}", type_name(value)),
            ));
        };
        let key_field = entry.map_entry_key_field();
        let value_field = entry.map_entry_value_field();
        let mut map = std::collections::HashMap::new();
        for (key, item) in object {
            let item_path = join(path, key);
            let key = match key_field.kind() {
                Kind::String => MapKey::String(key.clone()),
                Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => MapKey::I32(
                    key.parse()
                        .map_err(|_| error(&item_path, "not an int32 key"))?,
                ),
                Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => MapKey::I64(
                    key.parse()
                        .map_err(|_| error(&item_path, "not an int64 key"))?,
                ),
                _ => return Err(error(&item_path, "unsupported map key type")),
            };
            if item.is_null() && !matches!(value_field.kind(), Kind::Message(_)) {
                // Go decodes null as the zero value.
                map.insert(key, value_field.default_value());
                continue;
            }
            map.insert(
                key,
                single(schema, &value_field.kind(), item, &item_path, depth)?,
            );
        }
        return Ok(PValue::Map(map));
    }
    if field.is_list() {
        return list(schema, field, value, path, depth);
    }
    single(schema, &field.kind(), value, path, depth)
}

fn list(
    schema: &Schema,
    field: &FieldDescriptor,
    value: &Value,
    path: &str,
    depth: usize,
) -> Result<PValue, ProtobufError> {
    let Value::Array(items) = value else {
        return Err(error(
            path,
            format!("expected an array, got {}", type_name(value)),
        ));
    };
    let kind = field.kind();
    items
        .iter()
        .enumerate()
        .map(|(i, item)| single(schema, &kind, item, &format!("{path}[{i}]"), depth))
        .collect::<Result<Vec<_>, _>>()
        .map(PValue::List)
}

fn single(
    schema: &Schema,
    kind: &Kind,
    value: &Value,
    path: &str,
    depth: usize,
) -> Result<PValue, ProtobufError> {
    let int = |min: i128, max: i128| -> Result<i128, ProtobufError> {
        let n = match value {
            Value::Number(n) => n
                .as_i64()
                .map(i128::from)
                .or_else(|| n.as_u64().map(i128::from))
                .or_else(|| {
                    // Go reads 1.0 into an int; 1.5 is an error.
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9.3e18)
                        .map(|f| f as i128)
                }),
            _ => None,
        }
        .ok_or_else(|| error(path, format!("expected an integer, got {value}")))?;
        if n < min || n > max {
            return Err(error(path, format!("{n} is out of range")));
        }
        Ok(n)
    };
    // The casts below are in range: checked by `int`.
    Ok(match kind {
        Kind::Message(desc) => PValue::Message(message(schema, desc, value, path, depth + 1)?),
        Kind::String => match value {
            Value::String(s) => PValue::String(s.clone()),
            other => {
                return Err(error(
                    path,
                    format!("expected a string, got {}", type_name(other)),
                ));
            }
        },
        Kind::Bytes => match value {
            Value::String(s) => PValue::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(s)
                    .map_err(|e| error(path, format!("illegal base64 data: {e}")))?
                    .into(),
            ),
            other => {
                return Err(error(
                    path,
                    format!("expected a base64 string, got {}", type_name(other)),
                ));
            }
        },
        Kind::Bool => match value {
            Value::Bool(b) => PValue::Bool(*b),
            other => {
                return Err(error(
                    path,
                    format!("expected a boolean, got {}", type_name(other)),
                ));
            }
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            PValue::I32(int(i32::MIN.into(), i32::MAX.into())? as i32)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            PValue::I64(int(i64::MIN.into(), i64::MAX.into())? as i64)
        }
        Kind::Uint32 | Kind::Fixed32 => PValue::U32(int(0, u32::MAX.into())? as u32),
        Kind::Uint64 | Kind::Fixed64 => PValue::U64(int(0, u64::MAX.into())? as u64),
        Kind::Double | Kind::Float => {
            let f = value.as_f64().ok_or_else(|| {
                error(path, format!("expected a number, got {}", type_name(value)))
            })?;
            if matches!(kind, Kind::Float) {
                PValue::F32(f as f32)
            } else {
                PValue::F64(f)
            }
        }
        Kind::Enum(_) => PValue::EnumNumber(int(i32::MIN.into(), i32::MAX.into())? as i32),
    })
}

fn special_from_json(
    schema: &Schema,
    message: &mut DynamicMessage,
    kind: Special,
    value: &Value,
    path: &str,
    depth: usize,
) -> Result<(), ProtobufError> {
    let desc = message.descriptor();
    let field = |name: &str| {
        desc.get_field_by_name(name)
            .ok_or_else(|| error(path, format!("{} has no field {name}", desc.full_name())))
    };
    let string = |value: &Value| -> Result<String, ProtobufError> {
        match value {
            Value::String(s) => Ok(s.clone()),
            other => Err(error(
                path,
                format!("expected a string, got {}", type_name(other)),
            )),
        }
    };
    match kind {
        Special::Time | Special::MicroTime => {
            let (seconds, nanos) =
                special::parse_time(&string(value)?, kind == Special::MicroTime, path)?;
            set(message, &field("seconds")?, PValue::I64(seconds), path)?;
            set(message, &field("nanos")?, PValue::I32(nanos), path)?;
        }
        Special::Duration => {
            let nanos = special::parse_duration(&string(value)?, path)?;
            set(message, &field("duration")?, PValue::I64(nanos), path)?;
        }
        Special::IntOrString => match value {
            Value::String(s) => {
                set(message, &field("type")?, PValue::I64(1), path)?;
                set(message, &field("strVal")?, PValue::String(s.clone()), path)?;
            }
            Value::Number(_) => {
                let PValue::I32(n) = single(schema, &Kind::Int32, value, path, depth)? else {
                    return Err(error(path, "expected an int32"));
                };
                set(message, &field("type")?, PValue::I64(0), path)?;
                set(message, &field("intVal")?, PValue::I32(n), path)?;
            }
            other => {
                return Err(error(
                    path,
                    format!("expected an integer or a string, got {}", type_name(other)),
                ));
            }
        },
        Special::Quantity => {
            // Quantity.UnmarshalJSON takes a string or a bare number.
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => {
                    return Err(error(
                        path,
                        format!("expected a quantity, got {}", type_name(other)),
                    ));
                }
            };
            set(message, &field("string")?, PValue::String(text), path)?;
        }
        Special::RawJson => {
            let raw = serde_json::to_vec(value).map_err(|e| error(path, e.to_string()))?;
            set(
                message,
                &field(special::raw_field(desc.full_name()))?,
                PValue::Bytes(raw.into()),
                path,
            )?;
        }
        Special::PropsOrArray => {
            if value.is_array() {
                let schemas = field("jSONSchemas")?;
                let items = list(schema, &schemas, value, path, depth)?;
                set(message, &schemas, items, path)?;
            } else {
                props(schema, message, &field("schema")?, value, path, depth)?;
            }
        }
        Special::PropsOrBool => match value {
            Value::Bool(b) => set(message, &field("allows")?, PValue::Bool(*b), path)?,
            other => {
                // A schema allows (JSONSchemaPropsOrBool.UnmarshalJSON sets Allows).
                set(message, &field("allows")?, PValue::Bool(true), path)?;
                props(schema, message, &field("schema")?, other, path, depth)?;
            }
        },
        Special::PropsOrStringArray => {
            if value.is_array() {
                let property = field("property")?;
                let items = list(schema, &property, value, path, depth)?;
                set(message, &property, items, path)?;
            } else {
                props(schema, message, &field("schema")?, value, path, depth)?;
            }
        }
    }
    Ok(())
}

fn props(
    schema: &Schema,
    message: &mut DynamicMessage,
    field: &FieldDescriptor,
    value: &Value,
    path: &str,
    depth: usize,
) -> Result<(), ProtobufError> {
    let Kind::Message(desc) = field.kind() else {
        return Err(error(path, "schema is not a message"));
    };
    let inner = self::message(schema, &desc, value, path, depth + 1)?;
    set(message, field, PValue::Message(inner), path)
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
