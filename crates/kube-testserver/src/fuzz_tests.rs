//! Property tests of what a client reaches in the server (docs/fuzzing.md): SPDY frames and
//! header blocks, protobuf bodies and watch frames, request paths. Arbitrary bytes and
//! mutations of valid input; no panic, no hang, and no allocation sized by a length field
//! before the bytes arrive. `PROPTEST_CASES` raises the number of cases.

use std::sync::mpsc;
use std::time::Duration;

use bytes::BytesMut;
use proptest::prelude::*;

use crate::spdy::frame::{FLAG_FIN, Frame};
use crate::spdy::headers::{HeaderCompressor, HeaderDecompressor, decode_block};

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Runs `f` on another thread; a hang (ten seconds) or a panic fails the test.
fn within_budget<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(10))
        .expect("the parser hung or panicked")
}

fn mutate(mut bytes: Vec<u8>, edits: &[(u8, usize, u8)]) -> Vec<u8> {
    for &(op, at, byte) in edits {
        let len = bytes.len();
        match op % 4 {
            0 if len > 0 => bytes[at % len] ^= byte,
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

fn edits() -> impl Strategy<Value = Vec<(u8, usize, u8)>> {
    prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 0..8)
}

/// A valid client conversation: a stream opened with headers, data, pings, settings.
fn valid_spdy() -> Vec<u8> {
    let headers = |list: &[(&str, &str)]| {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect::<Vec<_>>()
    };
    let frames = [
        Frame::Settings {
            flags: 0,
            entries: vec![(0, 7, 1 << 20)],
        },
        Frame::SynStream {
            stream_id: 1,
            associated_to: 0,
            priority: 0,
            slot: 0,
            flags: 0,
            headers: headers(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")]),
        },
        Frame::SynStream {
            stream_id: 3,
            associated_to: 0,
            priority: 0,
            slot: 0,
            flags: 0,
            headers: headers(&[("streamtype", "data"), ("port", "80"), ("requestid", "0")]),
        },
        Frame::Data {
            stream_id: 3,
            flags: 0,
            data: bytes::Bytes::from_static(b"GET / HTTP/1.1\r\n\r\n"),
        },
        Frame::Ping { id: 1 },
        Frame::Headers {
            stream_id: 3,
            flags: FLAG_FIN,
            headers: headers(&[("a", "b")]),
        },
        Frame::WindowUpdate {
            stream_id: 0,
            delta: 4096,
        },
    ];
    let mut compressor = HeaderCompressor::new().expect("zlib");
    frames
        .iter()
        .flat_map(|f| f.encode(&mut compressor).expect("encodes"))
        .collect()
}

/// Decodes `wire` as a connection would, fed in chunks of `chunk` bytes; returns the frames.
fn decode_spdy(wire: Vec<u8>, chunk: usize) -> usize {
    within_budget(move || {
        let mut decompressor = HeaderDecompressor::new();
        let mut buffer = BytesMut::new();
        let mut frames = 0;
        for piece in wire.chunks(chunk.max(1)) {
            buffer.extend_from_slice(piece);
            loop {
                match Frame::decode(&mut buffer, &mut decompressor) {
                    Ok(Some(_)) => frames += 1,
                    Ok(None) => break,
                    // The connection ends with GOAWAY at the first bad frame.
                    Err(_) => return frames,
                }
            }
            // Never more than 64 KiB reserved beyond the bytes that came (twice that once
            // BytesMut doubles its allocation); 16 MiB before the fix.
            assert!(
                buffer.capacity() <= 2 * wire.len() + (1 << 18),
                "capacity {} for {} bytes",
                buffer.capacity(),
                wire.len()
            );
        }
        frames
    })
}

fn valid_configmap() -> serde_json::Value {
    serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "a", "namespace": "default", "resourceVersion": "7",
            "labels": {"app": "x"}, "creationTimestamp": "2025-01-01T00:00:00Z"},
        "data": {"k": "v"}})
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn spdy_arbitrary_bytes(wire in prop::collection::vec(any::<u8>(), 0..512), chunk in 1usize..64) {
        decode_spdy(wire, chunk);
    }

    #[test]
    fn spdy_mutated(edits in edits(), chunk in 1usize..64) {
        decode_spdy(mutate(valid_spdy(), &edits), chunk);
    }

    #[test]
    fn spdy_header_blocks(block in prop::collection::vec(any::<u8>(), 0..128)) {
        within_budget(move || {
            let _ = decode_block(&block);
            let _ = HeaderDecompressor::new().decompress(&block);
        });
    }

    #[test]
    fn protobuf_bodies(body in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256).prop_map(|b| [b"k8s\0".to_vec(), b].concat()),
        edits().prop_map(|e| mutate(crate::protobuf::encode(&valid_configmap()).expect("encodes"), &e)),
    ]) {
        within_budget(move || {
            if let Ok(object) = crate::protobuf::decode(&body) {
                // Whatever decodes encodes again.
                let _ = crate::protobuf::encode(&object);
            }
        });
    }

    #[test]
    fn protobuf_watch_frames(payload in prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        edits().prop_map(|e| {
            let frame = crate::protobuf::encode_watch_event("ADDED", &valid_configmap()).expect("encodes");
            mutate(frame[4..].to_vec(), &e)
        }),
    ]) {
        within_budget(move || {
            let _ = crate::protobuf::decode_watch_event(&payload);
        });
    }

    #[test]
    fn request_paths(raw in "[a-z/%0-9A-F.]{0,40}", body in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Some(path) = crate::request::decode_path(&raw) {
            prop_assert!(path.len() <= raw.len() * 3);
        }
        prop_assert!(crate::request::summarize(&body).len() <= 2 * 30 + 4);
    }
}

/// Found by the property tests: a frame header declaring 16 MiB made the decoder reserve
/// 16 MiB before a byte of the payload arrived.
#[test]
fn a_huge_declared_length_is_not_allocated_up_front() {
    // A data frame on stream 1 declaring 0xFFFFFF bytes, with 4 of them.
    let mut buffer = BytesMut::from(&[0, 0, 0, 1, 0, 0xff, 0xff, 0xff, 1, 2, 3, 4][..]);
    let mut decompressor = HeaderDecompressor::new();
    assert_eq!(
        Frame::decode(&mut buffer, &mut decompressor).ok(),
        Some(None)
    );
    assert!(buffer.capacity() < 1 << 20, "{}", buffer.capacity());
}

/// A header block that inflates without end is cut at the limit (1 MiB), not followed.
#[test]
fn a_zlib_bomb_in_headers_is_refused() {
    use flate2::{Compress, Compression, FlushCompress};
    let mut zlib = Compress::new(Compression::best(), true);
    zlib.set_dictionary(crate::spdy::headers::dictionary())
        .expect("dictionary");
    let zeros = vec![0u8; 8 << 20];
    let mut out = Vec::with_capacity(1 << 16);
    zlib.compress_vec(&zeros, &mut out, FlushCompress::Sync)
        .expect("compresses");
    assert!(out.len() < 64 << 10);
    let result = within_budget(move || HeaderDecompressor::new().decompress(&out).map(|_| ()));
    assert!(result.is_err());
    // A header count of u32::MAX with nothing behind it.
    assert!(decode_block(&[0xff, 0xff, 0xff, 0xff]).is_err());
}
