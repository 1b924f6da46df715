//! Error answers: a `Status` body or anything else, under any status code.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u16, &[u8])| {
    let (code, body) = input;
    if let Some(code) = kube_rest::fuzzing::error_body(100 + code % 500, body) {
        assert!(code != 0);
    }
    let status = kube_apimachinery::Status::from_code(500, body);
    assert!(status.message.chars().count() <= 515);
    let _ = serde_json::from_slice::<kube_apimachinery::Status>(body);
});
