//! kube-testserver's SPDY/3.1 frame decoder and header blocks, and its request paths.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u8, &[u8])| {
    let (chunk, wire) = input;
    let _ = kube_testserver::fuzzing::spdy_frames(wire, usize::from(chunk));
    let _ = kube_testserver::fuzzing::spdy_header_block(wire);
    let _ = kube_testserver::fuzzing::request_path(&String::from_utf8_lossy(wire));
});
