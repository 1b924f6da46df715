//! kube-testserver's protobuf bodies (`k8s\0` envelopes) and protobuf watch frames.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(object) = kube_testserver::protobuf::decode(data) {
        let _ = kube_testserver::protobuf::encode(&object);
    }
    let _ = kube_testserver::protobuf::decode_watch_event(data);
});
