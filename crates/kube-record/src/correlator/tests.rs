//! client-go's `events_cache_test.go`, ported: the aggregation keys, `TestEventCorrelator` and
//! `TestEventSpamFilter`, on a clock that steps at every reading as `SimpleIntervalClock`.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};

use super::*;
use crate::testing::IntervalClock;

fn make_object_reference(kind: &str, name: &str, namespace: &str) -> ObjectReference {
    ObjectReference {
        kind: Some(kind.into()),
        name: Some(name.into()),
        namespace: Some(namespace.into()),
        uid: Some("C934D34AFB20242".into()),
        api_version: Some("version".into()),
        field_path: Some("spec.containers{mycontainer}".into()),
        resource_version: None,
    }
}

fn make_event(reason: &str, message: &str, involved_object: ObjectReference) -> Event {
    let now = meta_time(SystemTime::now());
    Event {
        reason: Some(reason.into()),
        message: Some(message.into()),
        involved_object,
        source: Some(EventSource {
            component: Some("kubelet".into()),
            host: Some("kublet.node1".into()),
        }),
        count: Some(1),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        type_: Some("Normal".into()),
        ..Event::default()
    }
}

fn make_events(n: usize, template: &Event) -> Vec<Event> {
    vec![template.clone(); n]
}

fn make_unique_events(n: usize) -> Vec<Event> {
    (0..n)
        .map(|i| {
            make_event(
                &format!("reason-{i}"),
                &format!("message-{i}"),
                make_object_reference("Pod", &format!("pod-{i}"), &format!("ns-{i}")),
            )
        })
        .collect()
}

fn make_similar_events(n: usize, template: &Event, prefix: &str) -> Vec<Event> {
    make_events(n, template)
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e.message = Some(format!("{prefix}-{i}-{}", keys::s(&e.message)));
            e
        })
        .collect()
}

fn set_count(mut event: Event, count: i32) -> Event {
    event.count = Some(count);
    event
}

/// client-go's `validateEvent`: timestamps set, equal for a single occurrence and different
/// for a repeat; name prefixed as expected; everything else equal.
pub(crate) fn validate_event(scenario: &str, actual: &Event, expected: &Event) {
    let first = actual.first_timestamp.clone();
    let last = actual.last_timestamp.clone();
    assert!(
        first.is_some() && last.is_some(),
        "{scenario}: timestamps not set"
    );
    let expect_compression = expected.count.unwrap_or(0) > 1;
    if first == last {
        assert!(
            !expect_compression,
            "{scenario}: first and last timestamps equal for a repeated event"
        );
    } else {
        assert_ne!(
            expected.count,
            Some(1),
            "{scenario}: first and last timestamps differ for a single event"
        );
    }
    let mut received = actual.clone();
    received.first_timestamp = expected.first_timestamp.clone();
    received.last_timestamp = expected.last_timestamp.clone();
    received.reporting_component = expected.reporting_component.clone();
    let name = received.metadata.name.clone().unwrap_or_default();
    let expected_name = expected.metadata.name.clone().unwrap_or_default();
    assert!(
        name.starts_with(&expected_name),
        "{scenario}: name {name:?} does not start with {expected_name:?}"
    );
    received.metadata.name = expected.metadata.name.clone();
    assert_eq!(&received, expected, "{scenario}");
}

#[test]
fn aggregate_by_reason_groups_events_varying_by_message() {
    let event1 = make_event(
        "end-of-world",
        "it was fun",
        make_object_reference("Pod", "pod1", "other"),
    );
    let event2 = make_event(
        "end-of-world",
        "it was awful",
        make_object_reference("Pod", "pod1", "other"),
    );
    let event3 = make_event(
        "nevermind",
        "it was a bug",
        make_object_reference("Pod", "pod1", "other"),
    );
    let (agg1, local1) = aggregate_by_reason(&event1);
    let (agg2, local2) = aggregate_by_reason(&event2);
    let (agg3, _) = aggregate_by_reason(&event3);
    assert_eq!(agg1, agg2);
    assert_ne!(local1, local2);
    assert_ne!(agg1, agg3);
}

#[test]
fn aggregate_message_has_the_prefix() {
    let event = make_event(
        "end-of-world",
        "it was fun",
        make_object_reference("Pod", "pod1", "other"),
    );
    assert_eq!(
        aggregate_message_by_reason(&event),
        "(combined from similar events): it was fun"
    );
}

#[test]
fn keys_join_fields_without_separator() {
    let event = make_event("R", "M", make_object_reference("Pod", "p", "ns"));
    assert_eq!(
        event_key(&event),
        "kubeletkublet.node1Podnspspec.containers{mycontainer}C934D34AFB20242versionNormalRM"
    );
    assert_eq!(
        spam_key(&event),
        "kubeletkublet.node1PodnspC934D34AFB20242versionNormal"
    );
}

struct Scenario {
    previous: Vec<Event>,
    new_event: Event,
    expected: Option<Event>,
    interval_seconds: u64,
}

#[test]
fn event_correlator() {
    let first = make_event(
        "first",
        "i am first",
        make_object_reference("Pod", "my-pod", "my-ns"),
    );
    let duplicate = make_event(
        "duplicate",
        "me again",
        make_object_reference("Pod", "my-pod", "my-ns"),
    );
    let unique = make_event(
        "unique",
        "snowflake",
        make_object_reference("Pod", "my-pod", "my-ns"),
    );
    let mut similar = make_event(
        "similar",
        "similar message",
        make_object_reference("Pod", "my-pod", "my-ns"),
    );
    similar.involved_object.field_path = Some("spec.containers{container1}".into());
    let aggregate = make_event(
        "similar",
        &aggregate_message_by_reason(&similar),
        similar.involved_object.clone(),
    );
    let mut similar_other_container = similar.clone();
    similar_other_container.involved_object.field_path = Some("spec.containers{container2}".into());
    let similar_message = keys::s(&similar.message).to_string();
    let max = DEFAULT_AGGREGATE_MAX_EVENTS;

    let scenarios: Vec<(&str, Scenario)> = vec![
        (
            "create-a-single-event",
            Scenario {
                previous: vec![],
                new_event: first.clone(),
                expected: Some(set_count(first.clone(), 1)),
                interval_seconds: 5,
            },
        ),
        (
            "the-same-event-should-just-count",
            Scenario {
                previous: make_events(1, &duplicate),
                new_event: duplicate.clone(),
                expected: Some(set_count(duplicate.clone(), 2)),
                interval_seconds: 5,
            },
        ),
        (
            "the-same-event-should-just-count-even-if-more-than-aggregate",
            Scenario {
                previous: make_events(max, &duplicate),
                new_event: duplicate.clone(),
                expected: Some(set_count(duplicate.clone(), max as i32 + 1)),
                interval_seconds: 30,
            },
        ),
        (
            "the-same-event-is-spam-if-happens-too-frequently",
            Scenario {
                previous: make_events(DEFAULT_SPAM_BURST + 1, &duplicate),
                new_event: duplicate.clone(),
                expected: None,
                interval_seconds: 1,
            },
        ),
        (
            "create-many-unique-events",
            Scenario {
                previous: make_unique_events(30),
                new_event: unique.clone(),
                expected: Some(set_count(unique.clone(), 1)),
                interval_seconds: 5,
            },
        ),
        (
            "similar-events-should-aggregate-event",
            Scenario {
                previous: make_similar_events(max - 1, &similar, &similar_message),
                new_event: similar.clone(),
                expected: Some(set_count(aggregate.clone(), 1)),
                interval_seconds: 5,
            },
        ),
        (
            "similar-events-many-times-should-count-the-aggregate",
            Scenario {
                previous: make_similar_events(max, &similar, &similar_message),
                new_event: similar.clone(),
                expected: Some(set_count(aggregate.clone(), 2)),
                interval_seconds: 5,
            },
        ),
        (
            "events-from-different-containers-do-not-aggregate",
            Scenario {
                previous: make_events(1, &similar_other_container),
                new_event: similar.clone(),
                expected: Some(set_count(similar.clone(), 1)),
                interval_seconds: 5,
            },
        ),
        (
            "similar-events-whose-interval-is-greater-than-aggregate-interval-do-not-aggregate",
            Scenario {
                previous: make_similar_events(max - 1, &similar, &similar_message),
                new_event: similar.clone(),
                expected: Some(set_count(similar.clone(), 1)),
                interval_seconds: DEFAULT_AGGREGATE_INTERVAL.as_secs(),
            },
        ),
    ];

    for (name, scenario) in scenarios {
        let clock = IntervalClock::new(Duration::from_secs(scenario.interval_seconds));
        let correlator = EventCorrelator::new(CorrelatorOptions::default().clock(clock.shared()));
        for mut event in scenario.previous {
            let now = meta_time(clock.step_wall());
            event.first_timestamp = Some(now.clone());
            event.last_timestamp = Some(now);
            if let Correlation::Record(result) = correlator.correlate(event) {
                correlator.update_state(&result.event);
            }
        }
        let mut event = scenario.new_event;
        let now = meta_time(clock.step_wall());
        event.first_timestamp = Some(now.clone());
        event.last_timestamp = Some(now);
        match (correlator.correlate(event), scenario.expected) {
            (Correlation::Skip, None) => {}
            (Correlation::Record(result), Some(expected)) => {
                validate_event(name, &result.event, &expected);
                assert_eq!(
                    result.aggregated,
                    name.contains("aggregate-event") || name.contains("count-the-aggregate"),
                    "{name}"
                );
            }
            (got, expected) => panic!("{name}: got {got:?}, expected {expected:?}"),
        }
    }
}

#[test]
fn event_spam_filter() {
    let by_objects_and_reason = |e: &Event| {
        let o = &e.involved_object;
        let source = e.source.clone().unwrap_or_default();
        [
            keys::s(&source.component),
            keys::s(&source.host),
            keys::s(&o.kind),
            keys::s(&o.namespace),
            keys::s(&o.name),
            keys::s(&o.uid),
            keys::s(&o.api_version),
            keys::s(&e.reason),
        ]
        .concat()
    };
    let original = make_event(
        "original",
        "i am first",
        make_object_reference("Pod", "my-pod", "my-ns"),
    );
    let different_reason = make_event(
        "duplicate",
        "me again",
        make_object_reference("Pod", "my-pod", "my-ns"),
    );
    let spam = make_event(
        "original",
        "me again",
        make_object_reference("Pod", "my-pod", "my-ns"),
    );
    let cases: Vec<(&str, Event, bool, bool)> = vec![
        (
            "same object is spam for the default filter",
            different_reason.clone(),
            true,
            false,
        ),
        (
            "different reason is not spam for a filter keyed by reason",
            different_reason.clone(),
            false,
            true,
        ),
        (
            "same reason, different message is spam for a filter keyed by reason",
            spam,
            true,
            true,
        ),
    ];
    for (name, new_event, expect_skip, custom_key) in cases {
        let clock = IntervalClock::new(Duration::from_secs(1));
        let mut options = CorrelatorOptions::default().clock(clock.shared()).burst(1);
        if custom_key {
            options = options.spam_key(by_objects_and_reason);
        }
        let correlator = EventCorrelator::new(options);
        if let Correlation::Record(result) = correlator.correlate(original.clone()) {
            correlator.update_state(&result.event);
        }
        match correlator.correlate(new_event.clone()) {
            Correlation::Skip => assert!(expect_skip, "{name}: skipped"),
            Correlation::Record(result) => {
                assert!(!expect_skip, "{name}: not skipped");
                validate_event(name, &result.event, &new_event);
            }
        }
    }
}

#[test]
fn spam_filter_refills_one_event_every_five_minutes() {
    let clock = kube_flowcontrol::FakeClock::new();
    let correlator = EventCorrelator::new(CorrelatorOptions::default().clock(clock.shared()));
    let event = make_event("R", "M", make_object_reference("Pod", "p", "ns"));
    let mut written = 0;
    for _ in 0..40 {
        if matches!(correlator.correlate(event.clone()), Correlation::Record(_)) {
            written += 1;
        }
    }
    assert_eq!(written, DEFAULT_SPAM_BURST);
    clock.step(Duration::from_secs(299));
    assert_eq!(correlator.correlate(event.clone()), Correlation::Skip);
    clock.step(Duration::from_secs(1));
    let Correlation::Record(result) = correlator.correlate(event.clone()) else {
        panic!("a token is back after 5 minutes");
    };
    // The logger counted the skipped repeats too (client-go observes before filtering).
    assert_eq!(result.event.count, Some(42));
    assert_eq!(correlator.correlate(event), Correlation::Skip);
}

#[test]
fn aggregation_after_ten_distinct_messages_within_the_interval() {
    let clock = kube_flowcontrol::FakeClock::new();
    let correlator = EventCorrelator::new(CorrelatorOptions::default().clock(clock.shared()));
    let template = make_event("BackOff", "x", make_object_reference("Pod", "p", "ns"));
    let mut results = Vec::new();
    for i in 0..15 {
        let mut event = template.clone();
        event.message = Some(format!("message {i}"));
        let Correlation::Record(result) = correlator.correlate(event) else {
            panic!("event {i} skipped");
        };
        correlator.update_state(&result.event);
        results.push(result);
        clock.step(Duration::from_secs(1));
    }
    for (i, result) in results.iter().enumerate().take(9) {
        assert!(!result.aggregated, "event {i}");
        assert_eq!(
            result.event.message.as_deref(),
            Some(format!("message {i}").as_str())
        );
    }
    let names: HashMap<_, _> = results[9..]
        .iter()
        .map(|r| (r.event.metadata.name.clone(), ()))
        .collect();
    assert_eq!(names.len(), 1, "one aggregate event from the 10th on");
    for (i, result) in results.iter().enumerate().skip(9) {
        assert!(result.aggregated);
        assert_eq!(result.event.count, Some(i as i32 - 8));
        assert_eq!(
            result.event.message.as_deref(),
            Some(format!("(combined from similar events): message {i}").as_str())
        );
        assert_eq!(result.patch.is_some(), i > 9);
    }
    // After the interval (strictly more than 600 s of silence) the group starts over.
    clock.step(Duration::from_secs(601));
    let mut event = template.clone();
    event.message = Some("fresh".into());
    let Correlation::Record(result) = correlator.correlate(event) else {
        panic!("skipped");
    };
    assert!(!result.aggregated);
}

#[test]
fn repeat_patch_has_count_last_timestamp_and_message() {
    let clock = kube_flowcontrol::FakeClock::new();
    let correlator = EventCorrelator::new(CorrelatorOptions::default().clock(clock.shared()));
    let mut event = make_event("R", "M", make_object_reference("Pod", "p", "ns"));
    event.metadata.name = Some("p.1".into());
    let Correlation::Record(first) = correlator.correlate(event.clone()) else {
        panic!()
    };
    let mut stored = first.event.clone();
    stored.metadata.resource_version = Some("5".into());
    correlator.update_state(&stored);
    event.metadata.name = Some("p.2".into());
    event.last_timestamp = Some(meta_time(
        SystemTime::UNIX_EPOCH + Duration::from_secs(86_400),
    ));
    let Correlation::Record(second) = correlator.correlate(event) else {
        panic!()
    };
    assert_eq!(second.event.metadata.name.as_deref(), Some("p.1"));
    assert_eq!(second.event.metadata.resource_version.as_deref(), Some("5"));
    assert_eq!(
        second.patch,
        Some(serde_json::json!({
            "count": 2,
            "lastTimestamp": "1970-01-02T00:00:00Z",
            "message": "M",
        }))
    );
}

#[test]
fn lru_bounds_the_spam_filter() {
    let clock = kube_flowcontrol::FakeClock::new();
    let correlator = EventCorrelator::new(
        CorrelatorOptions::default()
            .clock(clock.shared())
            .burst(1)
            .lru_cache_size(2),
    );
    let a = make_event("R", "M", make_object_reference("Pod", "a", "ns"));
    let b = make_event("R", "M", make_object_reference("Pod", "b", "ns"));
    let c = make_event("R", "M", make_object_reference("Pod", "c", "ns"));
    assert!(matches!(
        correlator.correlate(a.clone()),
        Correlation::Record(_)
    ));
    assert_eq!(correlator.correlate(a.clone()), Correlation::Skip);
    assert!(matches!(correlator.correlate(b), Correlation::Record(_)));
    assert!(matches!(correlator.correlate(c), Correlation::Record(_)));
    // a's bucket was evicted: a fresh one with a full burst.
    assert!(matches!(correlator.correlate(a), Correlation::Record(_)));
}
