//! Property tests of the streaming list scanner (docs/fuzzing.md): arbitrary and mutated
//! bodies, any chunking. No panic, no hang; on every body that is a JSON object whose `items`
//! is an array, the scanner agrees with `serde_json`. `PROPTEST_CASES` raises the number of
//! cases.

use proptest::prelude::*;

use super::*;

const LIST: &str = r#"{"kind":"PodList","apiVersion":"v1","metadata":{"resourceVersion":"42","continue":"abc"},"items":[{"metadata":{"name":"a","annotations":{"x":"}]\"[{"}}},{"metadata":{"name":"b"},"n":[1,2,{"c":-1.5e3}],"t":true,"u":"\u00e9\\"} ]}"#;
const EMPTY: &str = r#"{"kind":"List","items":[],"metadata":{}}"#;
const NULL_ITEMS: &str = r#"{"items":null,"metadata":{"resourceVersion":"1"}}"#;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

fn mutate(mut bytes: Vec<u8>, edits: &[(u8, usize, u8)]) -> Vec<u8> {
    for &(op, at, byte) in edits {
        let len = bytes.len();
        match op % 4 {
            0 if len > 0 => bytes[at % len] = byte,
            1 => bytes.insert(at % (len + 1), byte),
            2 if len > 0 => {
                bytes.remove(at % len);
            }
            3 => bytes.truncate(at % (len + 1)),
            _ => {}
        }
    }
    bytes
}

/// Scans `body` cut at `cuts`, on a thread with a time budget (a hang fails the test).
fn scan(body: Vec<u8>, cuts: Vec<usize>) -> Result<(Vec<serde_json::Value>, ListMeta), String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        points.sort_unstable();
        let mut scanner = ListScanner::<serde_json::Value>::new();
        let mut start = 0;
        let mut result = Ok(());
        for end in points.into_iter().chain([body.len()]) {
            result = scanner.feed(&body[start..end]);
            if result.is_err() {
                break;
            }
            start = end;
        }
        let _ = tx.send(
            result
                .and_then(|()| scanner.finish())
                .map_err(|e| e.to_string()),
        );
    });
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("the scanner hung or panicked")
}

fn agrees_with_serde(body: Vec<u8>, cuts: Vec<usize>) -> Result<(), TestCaseError> {
    let expected = serde_json::from_slice::<serde_json::Value>(&body).ok();
    let scanned = scan(body.clone(), cuts);
    let Some(serde_json::Value::Object(object)) = expected else {
        return Ok(());
    };
    let items = match object.get("items") {
        Some(serde_json::Value::Array(items)) => items.clone(),
        Some(serde_json::Value::Null) | None => Vec::new(),
        Some(_) => return Ok(()),
    };
    if object
        .get("metadata")
        .is_some_and(|m| serde_json::from_value::<ListMeta>(m.clone()).is_err())
    {
        return Ok(());
    }
    let (scanned, _) = scanned
        .map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&body))))?;
    prop_assert_eq!(scanned, items, "{}", String::from_utf8_lossy(&body));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn arbitrary_bodies(
        body in prop::collection::vec(any::<u8>(), 0..256),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let _ = scan(body, cuts);
    }

    #[test]
    fn json_soup(
        body in r#"\{("items"|"metadata"|"kind"|[\[\]{}:,"\\ 0-9a-z.eE+-]){0,40}"#,
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        agrees_with_serde(body.into_bytes(), cuts)?;
    }

    #[test]
    fn mutated_lists(
        base in prop::sample::select(vec![LIST, EMPTY, NULL_ITEMS]),
        edits in prop::collection::vec((any::<u8>(), any::<usize>(), prop::sample::select(
            b"{}[]\",:\\ 0aetn-".to_vec())), 0..6),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        agrees_with_serde(mutate(base.as_bytes().to_vec(), &edits), cuts)?;
    }
}
