//! The watch stream decoder, fed the input in chunks chosen by the fuzzer.
#![no_main]

use std::collections::VecDeque;

use k8s_openapi::api::core::v1::ConfigMap;
use kube_rest::watch::WatchDecoder;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (Vec<u8>, Vec<u16>)| {
    let (bytes, cuts) = input;
    let mut decoder = WatchDecoder::with_max_event_bytes(64 << 10);
    let mut out: VecDeque<Result<kube_rest::WatchEvent<ConfigMap>, kube_rest::Error>> =
        VecDeque::new();
    let mut points: Vec<usize> = cuts.iter().map(|&c| usize::from(c) % (bytes.len() + 1)).collect();
    points.sort_unstable();
    let mut start = 0;
    for end in points.into_iter().chain([bytes.len()]) {
        decoder.push(&bytes[start..end], &mut out);
        start = end;
    }
    let _ = decoder.finish();
});
