//! kube-cache's streaming list decoder, fed in chunks; agrees with serde_json on lists.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&[u8], Vec<u16>)| {
    let (body, cuts) = input;
    let mut points: Vec<usize> = cuts.iter().map(|&c| usize::from(c) % (body.len() + 1)).collect();
    points.sort_unstable();
    let mut chunks = Vec::new();
    let mut start = 0;
    for end in points.into_iter().chain([body.len()]) {
        chunks.push(&body[start..end]);
        start = end;
    }
    let scanned = kube_cache::fuzzing::scan_list(&chunks);
    if let Ok(serde_json::Value::Object(object)) = serde_json::from_slice(body)
        && let Some(serde_json::Value::Array(items)) = object.get("items")
        && object.get("metadata").is_none_or(|m| m.is_object())
        && let Ok(count) = scanned
    {
        assert_eq!(count, items.len());
    }
});
