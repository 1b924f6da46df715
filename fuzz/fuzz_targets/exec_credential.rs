//! An exec credential plugin's standard output, and `proxy-url`s.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = kube_rest::fuzzing::exec_credential(data);
    let _ = kube_rest::fuzzing::proxy_url(&String::from_utf8_lossy(data));
});
