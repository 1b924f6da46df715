//! The event recorder: a steady stream of events (each about its own object, so neither the
//! spam filter nor aggregation folds them) written through `RestSink`. Recording must never
//! block the caller; an event may be lost only when a documented budget is exceeded (12 tries
//! per event, a queue of 1000), and then it is counted.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Event};
use kube_record::{EventBroadcaster, EventType, RestSink};
use kube_rest::{Api, Client, ListParams};
use serde_json::json;

use crate::common::{Options, Report, Result, emit, retry, wait_for_check};

const COMPONENT: &str = "chaos-recorder";
const NAMESPACE: &str = "default";
/// The pause between two writes of the same event (client-go: 10 s; shorter here so that a
/// run of a few seconds exercises the whole budget of 12 tries).
const SLEEP: Duration = Duration::from_secs(1);
/// The longest a recorder call may take.
const CALL_LIMIT: Duration = Duration::from_millis(250);

pub async fn run(options: &Options) -> Result<()> {
    // A controller's client: more than client-go's default QPS of 5, which events alone
    // would exceed.
    let client = Client::try_from_config(options.config()?.with_rate_limit(50.0, 100))?;
    let broadcaster = EventBroadcaster::builder().sleep_duration(SLEEP).build();
    broadcaster.start_recording_to_sink(RestSink::new(client))?;
    let recorder = broadcaster.new_recorder(COMPONENT);
    emit(json!({"ready": true}));
    let mut names = BTreeSet::new();
    let (mut slowest, mut slow_calls, mut refused) = (Duration::ZERO, 0u64, 0u64);
    let check = wait_for_check();
    tokio::pin!(check);
    let mut ticker = tokio::time::interval(Duration::from_millis(25));
    let mut index = options.seed.wrapping_mul(1_000_000);
    loop {
        tokio::select! {
            _ = &mut check => break,
            _ = ticker.tick() => {
                index += 1;
                let name = format!("obj-{index}");
                let mut object = ConfigMap::default();
                object.metadata.name = Some(name.clone());
                object.metadata.namespace = Some(NAMESPACE.into());
                let started = Instant::now();
                let recorded = recorder.event(&object, EventType::Normal, "Chaos", "an event under faults");
                let took = started.elapsed();
                slowest = slowest.max(took);
                if took > CALL_LIMIT {
                    slow_calls += 1;
                }
                match recorded {
                    Ok(()) => {
                        names.insert(name);
                    }
                    Err(_) => refused += 1,
                }
            }
        }
    }
    // The faults are over: let the writer drain what it holds (each event written, given up
    // or dropped), then shut down.
    let recorded = names.len() as u64;
    let drain_deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = broadcaster.counters();
        let settled = c.written + c.abandoned + c.spam_filtered;
        if settled + c.dropped_shut_down + c.dropped_flush_timeout >= c.recorded
            || Instant::now() >= drain_deadline
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    broadcaster.shutdown().await;
    let counters = broadcaster.counters();
    let truth_client = options.client()?;
    let events = retry(Duration::from_secs(30), || async {
        Ok(Api::<Event>::namespaced(truth_client.clone(), NAMESPACE)
            .list(&ListParams::default())
            .await?)
    })
    .await?;
    let on_server: BTreeSet<String> = events
        .items
        .iter()
        .filter(|e| e.source.as_ref().and_then(|s| s.component.as_deref()) == Some(COMPONENT))
        .filter_map(|e| e.involved_object.name.clone())
        .collect();
    let lost: Vec<&String> = names.difference(&on_server).collect();
    // Accepted events may be lost only by giving up after 12 tries or at shutdown, counted.
    let counted = counters.abandoned + counters.dropped_shut_down + counters.dropped_flush_timeout;
    let mut report = Report::default();
    report.check(slow_calls == 0, || {
        format!("{slow_calls} recorder calls took more than {CALL_LIMIT:?} (slowest {slowest:?})")
    });
    // A call is refused only when the queue of 1000 is full, and then counted.
    report.check(refused == counters.dropped_queue_full, || {
        format!(
            "{refused} recorder calls refused, {} counted as dropped on a full queue",
            counters.dropped_queue_full
        )
    });
    report.check(lost.len() as u64 <= counted, || {
        format!(
            "{} events lost but only {counted} counted (abandoned {}, dropped at shutdown {}): {:?}",
            lost.len(),
            counters.abandoned,
            counters.dropped_shut_down + counters.dropped_flush_timeout,
            lost.iter().take(5).collect::<Vec<_>>()
        )
    });
    report.check(counters.recorded == recorded, || {
        format!(
            "{recorded} events recorded, the counters say {}",
            counters.recorded
        )
    });
    report.stat("events_recorded", recorded);
    report.stat("events_refused", refused);
    report.stat("events_on_server", on_server.len());
    report.stat("events_lost", lost.len());
    report.stat("events_dropped_queue_full", counters.dropped_queue_full);
    report.stat("events_abandoned", counters.abandoned);
    report.stat("sink_errors", counters.sink_errors);
    report.stat("slowest_call_us", slowest.as_micros() as u64);
    report.emit();
    Ok(())
}
