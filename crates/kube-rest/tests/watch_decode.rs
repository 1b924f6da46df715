//! Incremental watch decoding: any chunking of a valid stream decodes to the same events;
//! truncation and garbage are errors, never hangs.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt as _;
use k8s_openapi::api::core::v1::ConfigMap;
use kube_rest::Error;
use kube_rest::WatchEvent;
use kube_rest::watch::{WatchDecoder, WatchStream};
use proptest::prelude::*;

fn line(kind: &str, name: &str, data: &str) -> String {
    let object = match kind {
        "BOOKMARK" => serde_json::json!({"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"resourceVersion": name, "annotations": {"k8s.io/initial-events-end": "true"}}}),
        "ERROR" => serde_json::json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
            "message": data, "reason": "Expired", "code": 410}),
        _ => serde_json::json!({"kind": "ConfigMap", "apiVersion": "v1",
            "metadata": {"name": name, "resourceVersion": "7"}, "data": {"k": data}}),
    };
    format!("{}\n", serde_json::json!({"type": kind, "object": object}))
}

fn describe(event: &Result<WatchEvent<ConfigMap>, Error>) -> String {
    match event {
        Ok(WatchEvent::Added(cm)) => format!("ADDED {:?} {:?}", cm.metadata.name, cm.data),
        Ok(WatchEvent::Modified(cm)) => format!("MODIFIED {:?} {:?}", cm.metadata.name, cm.data),
        Ok(WatchEvent::Deleted(cm)) => format!("DELETED {:?} {:?}", cm.metadata.name, cm.data),
        Ok(WatchEvent::Bookmark(b)) => format!(
            "BOOKMARK {} {}",
            b.resource_version,
            b.is_initial_events_end()
        ),
        Ok(WatchEvent::Error(status)) => format!("ERROR {} {}", status.code, status.message),
        Err(e) => {
            // The message and its causes, as a log line would show them.
            let mut text = format!("error: {e}");
            let mut source = std::error::Error::source(e);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            text
        }
    }
}

async fn decode_chunks(chunks: Vec<Vec<u8>>) -> Vec<String> {
    let body =
        futures_util::stream::iter(chunks.into_iter().map(|c| Ok::<_, Error>(Bytes::from(c))));
    let events = WatchStream::<ConfigMap>::from_stream(body);
    tokio::time::timeout(
        Duration::from_secs(5),
        events.map(|e| describe(&e)).collect::<Vec<_>>(),
    )
    .await
    .expect("the decoder must not hang")
}

fn split(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    points.dedup();
    let mut chunks = Vec::new();
    let mut start = 0;
    for p in points {
        chunks.push(bytes[start..p].to_vec());
        start = p;
    }
    chunks.push(bytes[start..].to_vec());
    chunks
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn several_events_per_chunk_and_split_events() {
    let stream = [
        line("ADDED", "a", "1"),
        line("MODIFIED", "a", "héllo \"quoted\" {braces}\n"),
        line("BOOKMARK", "42", ""),
        line("DELETED", "a", "2"),
        line("ERROR", "", "too old resource version"),
    ]
    .concat();
    let rt = runtime();
    let whole = rt.block_on(decode_chunks(vec![stream.clone().into_bytes()]));
    assert_eq!(
        whole,
        [
            "ADDED Some(\"a\") Some({\"k\": \"1\"})",
            "MODIFIED Some(\"a\") Some({\"k\": \"héllo \\\"quoted\\\" {braces}\\n\"})",
            "BOOKMARK 42 true",
            "DELETED Some(\"a\") Some({\"k\": \"2\"})",
            "ERROR 410 too old resource version",
        ]
    );
    // One byte at a time.
    let bytes: Vec<Vec<u8>> = stream.bytes().map(|b| vec![b]).collect();
    assert_eq!(rt.block_on(decode_chunks(bytes)), whole);
    // Without newlines between events (concatenated JSON) and with empty chunks.
    let compact = stream.replace("}\n{", "}{");
    assert_eq!(
        rt.block_on(decode_chunks(vec![compact.into_bytes(), Vec::new()])),
        whole
    );
}

#[test]
fn truncated_final_event_is_an_error_not_a_hang() {
    let rt = runtime();
    let full = line("ADDED", "a", "1");
    let stream = format!("{full}{}", &full[..full.len() / 2]);
    let events = rt.block_on(decode_chunks(split(stream.as_bytes(), &[10, 70])));
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events[0].starts_with("ADDED"));
    assert!(events[1].contains("watch stream truncated"), "{events:?}");

    // A body error ends the stream after reporting it.
    let body = futures_util::stream::iter(vec![
        Ok(Bytes::from(line("ADDED", "a", "1"))),
        Err(Error::Transport {
            context: "connection reset".into(),
            source: None,
        }),
        Ok(Bytes::from(line("ADDED", "b", "1"))),
    ]);
    let events: Vec<_> = rt.block_on(
        WatchStream::<ConfigMap>::from_stream(body)
            .map(|e| describe(&e))
            .collect::<Vec<_>>(),
    );
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(
        events[1].contains("watch stream truncated") && events[1].contains("connection reset"),
        "the cut is a WatchTruncated whose source is the transport error: {events:?}"
    );
}

#[test]
fn garbage_lines_and_unknown_types_are_errors_and_decoding_goes_on() {
    let rt = runtime();
    let stream = [
        "{\"type\": \"ADDED\", \"object\": nope}\n".to_string(),
        line("ADDED", "ok", "1"),
        "{\"type\": \"SURPRISE\", \"object\": {}}\n".to_string(),
        "{\"type\": \"ADDED\", \"object\": {\"metadata\": {\"name\": 5}}}\n".to_string(),
        line("DELETED", "ok", "1"),
    ]
    .concat();
    let events = rt.block_on(decode_chunks(vec![stream.into_bytes()]));
    assert_eq!(events.len(), 5, "{events:?}");
    assert!(
        events[0].starts_with("error: decoding the response: watch event"),
        "{events:?}"
    );
    assert!(events[1].starts_with("ADDED Some(\"ok\")"));
    assert!(
        events[2].contains("unknown watch event type \"SURPRISE\""),
        "{events:?}"
    );
    assert!(events[3].contains("watch ADDED object"), "{events:?}");
    assert!(events[4].starts_with("DELETED"));
}

#[test]
fn decoder_keeps_partial_events() {
    let mut decoder = WatchDecoder::new();
    let mut out: VecDeque<Result<WatchEvent<ConfigMap>, Error>> = VecDeque::new();
    let full = line("ADDED", "a", "1");
    let (first, second) = full.split_at(20);
    decoder.push(first.as_bytes(), &mut out);
    assert!(out.is_empty());
    decoder.push(second.as_bytes(), &mut out);
    assert_eq!(out.len(), 1);
    decoder.finish().unwrap();
    decoder.push(b"{\"type\":", &mut out);
    assert!(decoder.finish().unwrap_err().is_watch_truncated());
}

#[test]
fn an_event_over_the_size_limit_ends_the_stream() {
    let rt = runtime();
    let big = line("ADDED", "big", &"x".repeat(4096));
    let small = line("ADDED", "small", "1");
    // Limit below the big event: the small one passes, the big one ends the stream (in one
    // chunk or many, with or without its end).
    for chunks in [
        vec![format!("{small}{big}{small}").into_bytes()],
        split(
            format!("{small}{big}{small}").as_bytes(),
            &[5, 300, 1000, 2000, 3000, 4000],
        ),
        vec![
            small.clone().into_bytes(),
            big.as_bytes()[..3000].to_vec(),
            big.as_bytes()[3000..].to_vec(),
        ],
    ] {
        let body =
            futures_util::stream::iter(chunks.into_iter().map(|c| Ok::<_, Error>(Bytes::from(c))));
        let events: Vec<_> = rt.block_on(
            WatchStream::<ConfigMap>::from_stream(body)
                .max_event_bytes(2048)
                .collect::<Vec<_>>(),
        );
        assert_eq!(
            events.len(),
            2,
            "{:?}",
            events.iter().map(describe).collect::<Vec<_>>()
        );
        assert!(matches!(events[0], Ok(WatchEvent::Added(_))));
        assert!(
            matches!(events[1], Err(Error::WatchFrameTooLarge { limit: 2048 })),
            "{:?}",
            events[1]
        );
    }
}

fn event_strategy() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["ADDED", "MODIFIED", "DELETED", "BOOKMARK", "ERROR"]),
        "[a-z][a-z0-9-]{0,20}",
        "\\PC{0,40}",
    )
        .prop_map(|(kind, name, data)| line(kind, &name, &data))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn any_chunking_decodes_to_the_same_events(
        events in prop::collection::vec(event_strategy(), 0..12),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let stream = events.concat().into_bytes();
        let rt = runtime();
        let whole = rt.block_on(decode_chunks(vec![stream.clone()]));
        prop_assert_eq!(whole.len(), events.len());
        prop_assert!(whole.iter().all(|e| !e.starts_with("error")), "{:?}", whole);
        let chunked = rt.block_on(decode_chunks(split(&stream, &cuts)));
        prop_assert_eq!(chunked, whole);
    }

    #[test]
    fn any_truncation_ends_with_an_error(
        events in prop::collection::vec(event_strategy(), 1..6),
        cut in any::<usize>(),
    ) {
        let stream = events.concat().into_bytes();
        let cut = cut % stream.len();
        // Cut strictly inside the last event's JSON (not in its trailing newline).
        let last_start = stream.len() - events.last().unwrap().len();
        let cut = last_start + 1 + cut % (stream.len() - last_start - 2);
        let rt = runtime();
        let decoded = rt.block_on(decode_chunks(split(&stream[..cut], &[cut / 2])));
        prop_assert_eq!(decoded.len(), events.len(), "{:?}", decoded);
        prop_assert!(decoded.last().unwrap().contains("watch stream truncated"), "{:?}", decoded);
    }
}

/// A protobuf watch stream (kube-testserver's encoder) of the same events as `line` writes.
fn protobuf_stream(events: &[(&str, &str, &str)]) -> Vec<u8> {
    let mut stream = Vec::new();
    for (kind, name, data) in events {
        let line: serde_json::Value = serde_json::from_str(&line(kind, name, data)).unwrap();
        stream
            .extend(kube_testserver::protobuf::encode_watch_event(kind, &line["object"]).unwrap());
    }
    stream
}

#[test]
fn protobuf_frames_decode_in_any_chunking() {
    let events = [
        ("ADDED", "a", "1"),
        ("MODIFIED", "a", "ünï"),
        ("BOOKMARK", "42", ""),
        ("DELETED", "a", "2"),
        ("ERROR", "", "too old"),
    ];
    let stream = protobuf_stream(&events);
    let decoder = || WatchDecoder::protobuf(kube_apimachinery::protobuf::Decoder::new());
    let mut whole = VecDeque::new();
    decoder().push(&stream, &mut whole);
    let expected: Vec<String> = whole.iter().map(describe).collect();
    assert_eq!(expected.len(), 5, "{expected:?}");
    assert!(expected[1].contains("ünï"), "{expected:?}");
    for size in [1, 3, 64] {
        let mut d = decoder();
        let mut out = VecDeque::new();
        for chunk in stream.chunks(size) {
            d.push(chunk, &mut out);
        }
        d.finish().unwrap();
        assert_eq!(out.iter().map(describe).collect::<Vec<_>>(), expected);
    }
    // Cut inside a frame: the complete events, then a truncation.
    let mut d = decoder();
    let mut out = VecDeque::<Result<WatchEvent<ConfigMap>, Error>>::new();
    d.push(&stream[..stream.len() - 3], &mut out);
    assert_eq!(out.len(), 4);
    assert!(matches!(d.finish(), Err(Error::WatchTruncated { .. })));
    // A frame announcing more than the limit ends the stream.
    let mut d = WatchDecoder::protobuf(kube_apimachinery::protobuf::Decoder::new());
    let mut out = VecDeque::<Result<WatchEvent<ConfigMap>, Error>>::new();
    d.push(&[0x7f, 0xff, 0xff, 0xff, 0], &mut out);
    assert!(matches!(
        out.pop_front(),
        Some(Err(Error::WatchFrameTooLarge { .. }))
    ));
}
