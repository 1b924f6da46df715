//! Writing correlated core/v1 events to a sink, with client-go's retries (`recordToSink` and
//! `recordEvent`).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Event;
use kube_flowcontrol::SharedClock;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::correlator::{CorrelatedEvent, Correlation, EventCorrelator};
use crate::metrics::{Metric, MetricsHub};
use crate::sink::{EventSink, SinkError};

/// Tries per event before it is given up (client-go's `maxTriesPerEvent`).
pub const MAX_TRIES_PER_EVENT: u32 = 12;
/// The pause between tries (client-go's `defaultSleepDuration`); the first pause is a random
/// fraction of it.
pub const DEFAULT_SLEEP_DURATION: Duration = Duration::from_secs(10);

/// What the writer needs besides the sink and the correlator.
#[derive(Clone)]
pub(crate) struct WriterContext {
    pub(crate) clock: SharedClock,
    pub(crate) sleep_duration: Duration,
    pub(crate) deadline: CancellationToken,
    pub(crate) metrics: Arc<MetricsHub>,
}

/// The outcome of one try.
enum Attempt {
    /// Written (or deliberately discarded).
    Done,
    /// Given up for good.
    Abandon,
    /// Worth another try.
    Retry,
}

/// A short description of an event for logs.
pub(crate) struct Described<'a>(pub(crate) &'a Event);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = self.0;
        let o = &e.involved_object;
        let s = |v: &Option<String>| v.as_deref().unwrap_or("").to_string();
        write!(
            f,
            "{}/{} ({} {}/{}: type {:?} reason {:?} count {} message {:?})",
            s(&e.metadata.namespace),
            s(&e.metadata.name),
            s(&o.kind),
            s(&o.namespace),
            s(&o.name),
            s(&e.type_),
            s(&e.reason),
            e.count.unwrap_or(0),
            s(&e.message),
        )
    }
}

/// Runs a sink call; the flush deadline of a shutdown interrupts a call still waiting.
async fn call<F>(deadline: &CancellationToken, call: F) -> Option<Result<Event, SinkError>>
where
    F: Future<Output = Result<Event, SinkError>>,
{
    tokio::select! {
        biased;
        result = call => Some(result),
        _ = deadline.cancelled() => None,
    }
}

/// Correlates `event` and writes the result, retrying as client-go does.
pub(crate) async fn record_to_sink<S: EventSink + ?Sized>(
    sink: &S,
    event: Event,
    correlator: &EventCorrelator,
    ctx: &WriterContext,
) {
    let CorrelatedEvent {
        mut event,
        patch,
        aggregated,
    } = match correlator.correlate(event) {
        Correlation::Skip => {
            ctx.metrics.inc(Metric::SpamFiltered);
            tracing::debug!("Event skipped by the spam filter");
            return;
        }
        Correlation::Record(result) => *result,
    };
    if aggregated {
        ctx.metrics.inc(Metric::Aggregated);
    }
    let update_existing = event.count.unwrap_or(0) > 1;
    let mut tries = 0;
    loop {
        match record_event(
            sink,
            &mut event,
            patch.as_ref(),
            update_existing,
            correlator,
            ctx,
        )
        .await
        {
            Attempt::Done => return,
            Attempt::Abandon => {
                ctx.metrics.inc(Metric::Abandoned);
                return;
            }
            Attempt::Retry => {}
        }
        tries += 1;
        if tries >= MAX_TRIES_PER_EVENT {
            tracing::error!(event = %Described(&event), tries, "Unable to write event (retry limit exceeded!)");
            ctx.metrics.inc(Metric::Abandoned);
            return;
        }
        // Randomize the first sleep so that clients do not all retry together after an API
        // server outage.
        let delay = if tries == 1 {
            ctx.sleep_duration.mul_f64(fastrand::f64())
        } else {
            ctx.sleep_duration
        };
        tokio::select! {
            biased;
            _ = ctx.deadline.cancelled() => {
                tracing::error!(event = %Described(&event), "Unable to write event (broadcaster is shut down)");
                ctx.metrics.inc(Metric::Abandoned);
                return;
            }
            _ = ctx.clock.sleep(delay) => {}
        }
    }
}

/// One try: a patch for a repeat (falling back to a create if the event is gone), a create
/// otherwise.
async fn record_event<S: EventSink + ?Sized>(
    sink: &S,
    event: &mut Event,
    patch: Option<&Value>,
    update_existing: bool,
    correlator: &EventCorrelator,
    ctx: &WriterContext,
) -> Attempt {
    let mut result = None;
    if update_existing {
        let empty = Value::Object(serde_json::Map::new());
        result = call(&ctx.deadline, sink.patch(event, patch.unwrap_or(&empty))).await;
        if result.is_none() {
            tracing::error!(event = %Described(event), "Unable to write event (broadcaster is shut down)");
            return Attempt::Abandon;
        }
    }
    // A patch fails with NotFound when the event was deleted meanwhile: create it again.
    let create = match &result {
        None => true,
        Some(Err(error)) => error.is_not_found(),
        Some(Ok(_)) => false,
    };
    if create {
        event.metadata.resource_version = None;
        result = call(&ctx.deadline, sink.create(event)).await;
    }
    let error = match result {
        None => {
            tracing::error!(event = %Described(event), "Unable to write event (broadcaster is shut down)");
            return Attempt::Abandon;
        }
        Some(Ok(stored)) => {
            // The server's state (name, resourceVersion, count) for the next repeat.
            correlator.update_state(&stored);
            ctx.metrics.inc(Metric::Written);
            return Attempt::Done;
        }
        Some(Err(error)) => error,
    };
    let retryable = error.is_retryable();
    ctx.metrics.inc(Metric::SinkError { retryable });
    if retryable {
        tracing::error!(event = %Described(event), %error, "Unable to write event (may retry after sleeping)");
        return Attempt::Retry;
    }
    if error.is_already_exists() || error.is_namespace_terminating() {
        tracing::debug!(event = %Described(event), %error, "Server rejected event (will not retry!)");
    } else if matches!(error, SinkError::Request { .. }) {
        tracing::error!(event = %Described(event), %error, "Unable to construct event (will not retry!)");
    } else {
        tracing::error!(event = %Described(event), %error, "Server rejected event (will not retry!)");
    }
    Attempt::Abandon
}
