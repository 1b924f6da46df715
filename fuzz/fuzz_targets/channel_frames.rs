//! WebSocket channel messages of every `*.channel.k8s.io` protocol, and resize messages.
#![no_main]

use bytes::Bytes;
use kube_apimachinery::channel::{ChannelProtocol, Frame, TerminalSize};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for protocol in ChannelProtocol::ALL {
        let _ = protocol.decode(Frame::Binary(Bytes::copy_from_slice(data)));
        let _ = protocol.decode_text(&String::from_utf8_lossy(data));
    }
    let _ = TerminalSize::from_json(data);
});
