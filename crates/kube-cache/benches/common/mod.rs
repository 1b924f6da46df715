//! What the benchmarks share: the realistic pod fixture, and a list page of copies of it.

#![allow(dead_code)] // each benchmark uses a part of it

/// The realistic pod fixture (`POD_FIXTURE`, else shared/fixtures/pod-realistic.json) as
/// JSON; `None` (with a message) when there is none.
pub fn fixture() -> Option<serde_json::Value> {
    let path = std::env::var("POD_FIXTURE").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/pod-realistic.json"
        )
        .to_string()
    });
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("skipped, no pod fixture ({path}: {e}); set POD_FIXTURE");
            return None;
        }
    };
    Some(serde_json::from_str(&text).expect("fixture is JSON"))
}

/// A `PodList` of `page` copies of the fixture (distinct names and uids), as the server sends
/// it; `None` (with a message) when there is no fixture.
pub fn page_json(page: usize) -> Option<Vec<u8>> {
    let template = fixture()?;
    let items: Vec<serde_json::Value> = (0..page)
        .map(|i| {
            let mut pod = template.clone();
            pod["metadata"]["name"] = format!("web-7d9f8c6b5d-{i:05}").into();
            pod["metadata"]["uid"] = format!("5f0c1a2e-8b7d-4c6e-9a1b-{i:012}").into();
            pod
        })
        .collect();
    let list = serde_json::json!({
        "kind": "PodList",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": "184467", "continue": "eyJ2IjoibWV0YS5rOHMuaW8vdjEifQ"},
        "items": items,
    });
    Some(serde_json::to_vec(&list).expect("serializable"))
}
