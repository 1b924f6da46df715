//! The server's side of label and field selectors: kube-apimachinery parses and matches
//! them (apimachinery's rules and error messages); this module reads an object's labels
//! and field labels out of its JSON.

use kube_apimachinery::fields::Selector as FieldSelector;
use kube_apimachinery::labels::Selector as LabelSelector;
use serde_json::Value;

/// Whether the labels of `object` (`metadata.labels`, possibly absent) match `selector`.
pub(crate) fn labels_match(selector: &LabelSelector, object: &Value) -> bool {
    selector.is_empty()
        || selector.matches(
            &object
                .get("metadata")
                .and_then(|m| m.get("labels"))
                .and_then(Value::as_object),
        )
}

/// Whether the field labels of `object` match `selector`.
pub(crate) fn fields_match(selector: &FieldSelector, object: &Value) -> bool {
    selector.is_empty() || selector.matches_with(|field| field_value(object, field))
}

/// The value of a field label of an object, as the API server renders it for selectors
/// (empty when the object has no such field).
pub(crate) fn field_value(object: &Value, field: &str) -> String {
    let path: Vec<&str> = match field {
        // events: `source` is source.component.
        "source" => vec!["source", "component"],
        other => other.split('.').collect(),
    };
    let mut current = object;
    for segment in path {
        match current.get(segment) {
            Some(next) => current = next,
            None => return String::new(),
        }
    }
    match current {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn labels_come_from_the_metadata() {
        let pod = json!({"metadata": {"labels": {"app": "demo", "idx": "3", "n": 4}}});
        let yes = |s: &str| labels_match(&s.parse().unwrap(), &pod);
        assert!(yes("app=demo"));
        assert!(yes("idx in (2,3),app!=other"));
        assert!(yes("idx>2"));
        assert!(!yes("idx<3"));
        assert!(yes(""));
        // A label value that is not a string is no label.
        assert!(yes("!n"));
        let bare = json!({"metadata": {"name": "x"}});
        assert!(labels_match(&"!tier".parse().unwrap(), &bare));
        assert!(!labels_match(&"tier".parse().unwrap(), &bare));
    }

    #[test]
    fn field_labels_come_from_the_object() {
        let pod = json!({"metadata": {"name": "p2", "namespace": "trace"}, "status": {"phase": "Running"}, "spec": {"n": 2, "b": true}});
        let matches = |s: &str| fields_match(&s.parse().unwrap(), &pod);
        assert!(matches("metadata.name=p2,status.phase!=Pending"));
        assert!(!matches("status.phase=Pending"));
        assert!(matches("spec.n=2,spec.b=true,spec.missing="));
        let event = json!({"source": {"component": "kubelet"}});
        assert!(fields_match(&"source=kubelet".parse().unwrap(), &event));
        assert!(fields_match(
            &"a=b\\,c".parse().unwrap(),
            &json!({"a": "b,c"})
        ));
    }
}
