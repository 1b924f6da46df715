//! Executing any template that parses must not panic (errors are fine).
#![no_main]

use kube_jsonpath::JsonPath;
use libfuzzer_sys::fuzz_target;

const DOCUMENT: &str = r#"{"kind": "List", "items": [
    {"metadata": {"name": "a", "labels": {"x": "1"}}, "n": 1, "f": 1.5, "b": true, "s": "str"},
    {"metadata": {"name": "b"}, "n": null, "l": [1, [2, {"name": "c"}], "x"]},
    "text", 7, null, []
], "e": {}}"#;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(jsonpath) = JsonPath::parse(text) else {
        return;
    };
    let document: serde_json::Value = serde_json::from_str(DOCUMENT).expect("fixture");
    for allow in [false, true] {
        let _ = jsonpath
            .clone()
            .allow_missing_keys(allow)
            .render_to_vec(&document);
    }
});
