//! The JSON patches the recorders send: a two-way merge patch between an event as it was and
//! as it is now (apimachinery's `strategicpatch.CreateTwoWayMergePatch` for what events
//! change: top-level scalars and the `series` object), and its application in the in-memory
//! sink.

use serde_json::{Map, Value};

/// The patch turning `old` into `new`: for objects, every key whose value changed (recursively
/// for nested objects), `null` for keys removed; anything else (lists included) is replaced
/// whole. Equal inputs give `{}`.
///
/// This is the strategic two-way merge patch for every change the recorders make (counts,
/// timestamps, messages, series); lists never differ between the two sides, so their merge
/// strategies do not matter here.
pub(crate) fn two_way_merge_patch(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(old), Value::Object(new)) => Value::Object(diff_objects(old, new)),
        _ => new.clone(),
    }
}

fn diff_objects(old: &Map<String, Value>, new: &Map<String, Value>) -> Map<String, Value> {
    let mut patch = Map::new();
    for (key, new_value) in new {
        match old.get(key) {
            Some(old_value) if old_value == new_value => {}
            Some(Value::Object(old_object)) => {
                if let Value::Object(new_object) = new_value {
                    patch.insert(
                        key.clone(),
                        Value::Object(diff_objects(old_object, new_object)),
                    );
                } else {
                    patch.insert(key.clone(), new_value.clone());
                }
            }
            _ => {
                patch.insert(key.clone(), new_value.clone());
            }
        }
    }
    for key in old.keys() {
        if !new.contains_key(key) {
            patch.insert(key.clone(), Value::Null);
        }
    }
    patch
}

/// Applies a merge patch (RFC 7386; for the patches of [`two_way_merge_patch`] the same as a
/// strategic merge): objects merge recursively, `null` deletes, anything else replaces.
pub(crate) fn apply_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target) = target else {
        return;
    };
    for (key, value) in patch {
        if value.is_null() {
            target.remove(key);
        } else {
            apply_merge_patch(target.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_of_the_event_logger() {
        // What client-go's eventObserve sends: count, lastTimestamp and message.
        let old = json!({"metadata": {"name": "a.1"}, "lastTimestamp": "1970-01-01T00:00:00Z",
                         "reason": "R"});
        let new = json!({"metadata": {"name": "a.1"}, "lastTimestamp": "2024-01-01T00:00:00Z",
                         "reason": "R", "count": 3, "message": "m"});
        assert_eq!(
            two_way_merge_patch(&old, &new),
            json!({"count": 3, "lastTimestamp": "2024-01-01T00:00:00Z", "message": "m"})
        );
        assert_eq!(two_way_merge_patch(&new, &new), json!({}));
    }

    #[test]
    fn nested_objects_and_removals() {
        let old = json!({"series": {"count": 2, "lastObservedTime": "x"}, "gone": 1});
        let new = json!({"series": {"count": 3, "lastObservedTime": "x"}, "list": [1]});
        let patch = two_way_merge_patch(&old, &new);
        assert_eq!(
            patch,
            json!({"series": {"count": 3}, "gone": null, "list": [1]})
        );
        let mut target = old.clone();
        apply_merge_patch(&mut target, &patch);
        assert_eq!(target, new);
    }

    #[test]
    fn non_objects_are_replaced() {
        assert_eq!(two_way_merge_patch(&json!(1), &json!([2])), json!([2]));
        let mut target = json!("x");
        apply_merge_patch(&mut target, &json!({"a": {"b": 1}}));
        assert_eq!(target, json!({"a": {"b": 1}}));
    }
}
