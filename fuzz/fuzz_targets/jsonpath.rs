//! JSONPath templates: parse, print and parse again, execute against a small document.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(template) = kube_jsonpath::Template::parse(text) else {
        return;
    };
    let printed = template.to_string();
    assert_eq!(kube_jsonpath::Template::parse(&printed).ok(), Some(template.clone()));
    let data = serde_json::json!({"kind": "List", "items": [
        {"metadata": {"name": "a", "labels": {"app": "x"}}, "spec": {"replicas": 2}},
        {"metadata": {"name": "b"}, "status": {"phase": "Running", "conditions": [{"type": "Ready"}]}}
    ]});
    for allow in [false, true] {
        let path = kube_jsonpath::JsonPath::from_template(template.clone()).allow_missing_keys(allow);
        let _ = path.render_to_vec(&data);
    }
});
