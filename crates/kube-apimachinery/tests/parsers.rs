//! Fuzzing without nightly (docs/fuzzing.md): label and field selectors, WebSocket channel
//! framing, resize messages and `Status` bodies, fed arbitrary input and mutations of valid
//! input. No panic, no hang; what parses prints back to text that parses to the same value.
//! `PROPTEST_CASES` raises the number of cases.

use kube_test_support::mutate;

use bytes::Bytes;
use kube_apimachinery::channel::{ChannelProtocol, Decoded, Frame, TerminalSize};
use kube_apimachinery::{Status, fields, labels};
use mutate::{cases, mutated, mutated_text, within_budget};
use proptest::prelude::*;

const LABEL_SELECTORS: &[&str] = &[
    "app=web",
    "app==web,tier!=db",
    "environment in (production, qa),tier notin (frontend)",
    "partition,!canary",
    "example.com/app-name=x_y.z,k8s.io/zone in (a,b,c)",
    "replicas>3,replicas<10",
    "",
];

const FIELD_SELECTORS: &[&str] = &[
    "metadata.name=a",
    r"status.phase!=Running,metadata.name=a\,b",
    r"spec.nodeName==node-1,metadata.namespace!=kube-system",
    r"metadata.name=x\=y\\z",
    "",
];

fn label_round_trip(text: String) -> Result<(), TestCaseError> {
    let parsed = within_budget({
        let text = text.clone();
        move || labels::Selector::parse(&text)
    });
    if let Ok(selector) = parsed {
        let printed = selector.to_string();
        let again = labels::Selector::parse(&printed)
            .map_err(|e| TestCaseError::fail(format!("{text:?} printed {printed:?}: {e}")))?;
        prop_assert_eq!(&again, &selector, "{:?} printed {:?}", text, printed);
        prop_assert_eq!(again.to_string(), printed);
    }
    Ok(())
}

fn field_round_trip(text: String) -> Result<(), TestCaseError> {
    let parsed = within_budget({
        let text = text.clone();
        move || fields::Selector::parse(&text)
    });
    if let Ok(selector) = parsed {
        let printed = selector.to_string();
        let again = fields::Selector::parse(&printed)
            .map_err(|e| TestCaseError::fail(format!("{text:?} printed {printed:?}: {e}")))?;
        // The same terms. Their order may differ once: apimachinery sorts the raw terms, so
        // `== ,=.\\` (two terms, `==` sorting after `=.`) prints as `=.\\,= `, which sorts
        // the other way round. From then on printing is stable.
        prop_assert_eq!(
            sorted(&again),
            sorted(&selector),
            "{:?} printed {:?}",
            text,
            printed
        );
        let stable = again.to_string();
        let third = fields::Selector::parse(&stable)
            .map_err(|e| TestCaseError::fail(format!("{stable:?}: {e}")))?;
        prop_assert_eq!(third.to_string(), stable);
        prop_assert_eq!(third, again);
    }
    Ok(())
}

fn sorted(selector: &fields::Selector) -> Vec<String> {
    let mut terms: Vec<String> = selector.terms().iter().map(|t| t.to_string()).collect();
    terms.sort();
    terms
}

fn decode_everywhere(bytes: Vec<u8>) {
    within_budget(move || {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        for protocol in ChannelProtocol::ALL {
            match protocol.decode(Frame::Binary(Bytes::from(bytes.clone()))) {
                Ok(Some(Decoded::Data { channel, data })) => {
                    assert!(!protocol.is_base64());
                    assert_eq!(channel, bytes[0]);
                    assert_eq!(&data[..], &bytes[1..]);
                }
                Ok(Some(Decoded::Close { .. })) => assert!(protocol.can_close_channels()),
                Ok(None) => assert!(bytes.is_empty()),
                Err(e) => {
                    let _ = e.to_string();
                }
            }
            if let Ok(Some(Decoded::Data { channel, data })) = protocol.decode_text(&text) {
                // What decodes encodes back to the same message.
                if let Ok(Frame::Text(again)) = protocol.encode(channel, &data) {
                    assert_eq!(
                        protocol.decode_text(&again).unwrap(),
                        Some(Decoded::Data { channel, data })
                    );
                }
            }
        }
        let _ = TerminalSize::from_json(&bytes);
        let status = Status::from_code(500, &bytes);
        assert!(status.message.chars().count() <= 515);
        let _ = serde_json::from_slice::<Status>(&bytes);
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn label_selector_arbitrary(text in "\\PC{0,40}") {
        label_round_trip(text)?;
    }

    #[test]
    fn label_selector_soup(text in "[a-z0-9!=<>(), ./_-]{0,40}") {
        label_round_trip(text)?;
    }

    #[test]
    fn label_selector_mutated(text in mutated_text(LABEL_SELECTORS.iter().map(|s| s.to_string()).collect())) {
        label_round_trip(text)?;
    }

    #[test]
    fn field_selector_arbitrary(text in "\\PC{0,40}") {
        field_round_trip(text)?;
    }

    #[test]
    fn field_selector_soup(text in r"[a-z.!=,\\ ]{0,40}") {
        field_round_trip(text)?;
    }

    #[test]
    fn field_selector_mutated(text in mutated_text(FIELD_SELECTORS.iter().map(|s| s.to_string()).collect())) {
        field_round_trip(text)?;
    }

    #[test]
    fn field_selector_values_round_trip(
        terms in prop::collection::vec(("[a-z][a-z.]{0,10}", any::<bool>(), r"[a-z,=\\ ]{0,8}"), 0..5),
    ) {
        let mut selector = fields::Selector::new();
        for (field, equal, value) in &terms {
            selector = if *equal { selector.eq(field, value) } else { selector.ne(field, value) };
        }
        let printed = selector.to_string();
        let parsed = fields::Selector::parse(&printed)
            .map_err(|e| TestCaseError::fail(format!("{printed:?}: {e}")))?;
        prop_assert_eq!(parsed.to_string(), printed);
    }

    #[test]
    fn channel_frames_arbitrary(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        decode_everywhere(bytes);
    }

    #[test]
    fn channel_frames_mutated(bytes in mutated(vec![
        b"\x01hello".to_vec(),
        b"\xff\x00".to_vec(),
        b"1aGVsbG8=".to_vec(),
        b"4eyJXaWR0aCI6ODAsIkhlaWdodCI6MjR9".to_vec(),
        br#"{"Width":80,"Height":24}"#.to_vec(),
        br#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"command terminated with non-zero exit code","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}"#.to_vec(),
    ])) {
        decode_everywhere(bytes);
    }

    #[test]
    fn channel_encode_decode_round_trips(
        channel in any::<u8>(),
        data in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        for protocol in ChannelProtocol::ALL {
            let Ok(frame) = protocol.encode(channel, &data) else {
                prop_assert!(protocol.is_base64());
                continue;
            };
            let decoded = protocol.decode(frame).map_err(|e| TestCaseError::fail(e.to_string()))?;
            if channel == 255 && protocol.can_close_channels() {
                // 255 is v5's close message: a data frame cannot use it.
                continue;
            }
            prop_assert_eq!(decoded, Some(Decoded::Data { channel, data: Bytes::from(data.clone()) }));
        }
    }
}

#[test]
fn huge_selectors_are_parsed_in_linear_time() {
    // Ten thousand terms: parsing and printing must not be quadratic enough to hang.
    let labels_text = (0..10_000)
        .map(|i| format!("k{i}=v"))
        .collect::<Vec<_>>()
        .join(",");
    let fields_text = labels_text.replace('k', "f.");
    within_budget(move || {
        assert_eq!(
            labels::Selector::parse(&labels_text)
                .unwrap()
                .requirements()
                .len(),
            10_000
        );
        let fields = fields::Selector::parse(&fields_text).unwrap();
        assert_eq!(fields.to_string().len(), fields_text.len());
    });
    let deep = "(".repeat(100_000);
    within_budget(move || assert!(labels::Selector::parse(&deep).is_err()));
}
