//! Pod logs (`GET /api/v1/namespaces/{ns}/pods/{name}/log`), as kube-apiserver and a kubelet
//! answer them.
//!
//! Every simulated container runs the equivalent of `while :; do date +%s; sleep 1; done`: from
//! its start, one line per log interval, each the Unix time of the line in seconds. Nothing is
//! stored: the lines are computed from the container's start (and finish) time, which the
//! simulated kubelet records here with full precision ([`Containers`]; the API objects only
//! carry seconds).

use std::collections::HashMap;
use std::convert::Infallible;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::api::{ApiServer, Body, Query, ResourceRequest, flag};
use crate::object::meta_str;
use crate::pod_connect::pods_storage;
use crate::status::{ApiError, Cause};
use crate::store::{EventType, ObjectKey, StoredEvent};

/// When one container instance ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// When it started.
    pub started: Timestamp,
    /// When it stopped, if it has.
    pub finished: Option<Timestamp>,
}

/// The precise start and finish times of the simulated containers, by container ID.
#[derive(Debug, Default)]
pub struct Containers {
    runs: parking_lot::Mutex<HashMap<String, Run>>,
}

impl Containers {
    /// Records that the container `id` started at `at`.
    pub fn started(&self, id: &str, at: Timestamp) {
        self.runs.lock().insert(
            id.to_string(),
            Run {
                started: at,
                finished: None,
            },
        );
    }

    /// Records that the container `id` stopped at `at`.
    pub fn finished(&self, id: &str, at: Timestamp) {
        if let Some(run) = self.runs.lock().get_mut(id) {
            run.finished = Some(at);
        }
    }

    /// When the container `id` ran, if it is known.
    pub fn run(&self, id: &str) -> Option<Run> {
        self.runs.lock().get(id).copied()
    }

    /// Forgets the container `id` (its pod is gone).
    pub fn forget(&self, id: &str) {
        self.runs.lock().remove(id);
    }
}

/// The output of one container instance: line `k` is written at `start + k * interval`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lines {
    start: i128,
    interval: i128,
}

impl Lines {
    /// The output of a container started at `start` writing a line every `interval`.
    pub fn new(start: Timestamp, interval: Duration) -> Lines {
        Lines {
            start: start.as_nanosecond(),
            interval: i128::try_from(interval.as_nanos())
                .unwrap_or(i128::MAX)
                .max(1),
        }
    }

    /// When line `k` is written (nanoseconds since the Unix epoch).
    fn nanos_of(&self, k: u64) -> i128 {
        self.start
            .saturating_add(self.interval.saturating_mul(i128::from(k)))
    }

    /// When line `k` is written.
    pub fn time_of(&self, k: u64) -> Timestamp {
        Timestamp::from_nanosecond(self.nanos_of(k)).unwrap_or(Timestamp::MAX)
    }

    /// How many lines have been written by `at` (a line written exactly at `at` counts).
    pub fn count_at(&self, at: Timestamp) -> u64 {
        let elapsed = at.as_nanosecond() - self.start;
        if elapsed < 0 {
            return 0;
        }
        u64::try_from(elapsed / self.interval + 1).unwrap_or(u64::MAX)
    }

    /// The first line written at or after `since`.
    pub fn first_since(&self, since: Timestamp) -> u64 {
        let elapsed = since.as_nanosecond() - self.start;
        if elapsed <= 0 {
            return 0;
        }
        let whole = elapsed / self.interval;
        let k = if elapsed % self.interval == 0 {
            whole
        } else {
            whole + 1
        };
        u64::try_from(k).unwrap_or(u64::MAX)
    }

    /// Line `k` as written (`date +%s`), with the kubelet's timestamp prefix when asked for.
    pub fn render(&self, k: u64, timestamps: bool) -> String {
        let time = self.time_of(k);
        let seconds = time.as_second();
        if timestamps {
            format!("{} {seconds}\n", format_timestamp(time))
        } else {
            format!("{seconds}\n")
        }
    }

    /// Which lines a request gets out of the first `count`: the last `tail` of them, and of
    /// those the ones written at or after `since` (the kubelet applies tail, then since).
    pub fn select(&self, count: u64, tail: Option<u64>, since: Option<Timestamp>) -> Range<u64> {
        self.first_line(count, tail, since).min(count)..count
    }

    /// The first line a request gets, which may not be written yet (a `since` in the future:
    /// a followed log starts there).
    pub fn first_line(&self, count: u64, tail: Option<u64>, since: Option<Timestamp>) -> u64 {
        let first = tail.map_or(0, |tail| count.saturating_sub(tail));
        match since {
            Some(since) => first.max(self.first_since(since)),
            None => first,
        }
    }
}

/// The kubelet's timestamp format: RFC 3339 with nine fractional digits, in UTC.
pub fn format_timestamp(time: Timestamp) -> String {
    time.strftime("%Y-%m-%dT%H:%M:%S.%9fZ").to_string()
}

/// `PodLogOptions`, from the query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogOptions {
    /// `container`.
    pub container: Option<String>,
    /// `follow`.
    pub follow: bool,
    /// `previous`.
    pub previous: bool,
    /// `timestamps`.
    pub timestamps: bool,
    /// `sinceSeconds`.
    pub since_seconds: Option<i64>,
    /// `sinceTime`.
    pub since_time: Option<Timestamp>,
    /// `tailLines`.
    pub tail_lines: Option<i64>,
    /// `limitBytes`.
    pub limit_bytes: Option<i64>,
}

fn int_param(query: &Query, name: &str) -> Result<Option<i64>, ApiError> {
    match query.get(name) {
        None => Ok(None),
        Some(text) => text.parse::<i64>().map(Some).map_err(|_| {
            ApiError::bad_request(format!(
                "strconv.ParseInt: parsing {}: invalid syntax",
                crate::status::go_quote(text)
            ))
        }),
    }
}

fn invalid_number(field: &str, value: i64, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {value}: {detail}"),
        field: field.to_string(),
    }
}

impl LogOptions {
    /// Decodes the query (400 for values that do not parse) and validates the options as
    /// kube-apiserver's `ValidatePodLogOptions` does (422 Invalid, kind `PodLogOptions`).
    pub fn parse(query: &Query, pod: &str) -> Result<LogOptions, ApiError> {
        let since_time = match query.get("sinceTime") {
            None => None,
            Some(text) => Some(text.parse::<Timestamp>().map_err(|_| {
                ApiError::bad_request(format!(
                    "parsing time {} as \"2006-01-02T15:04:05Z07:00\": cannot parse {} as \"2006\"",
                    crate::status::go_quote(text),
                    crate::status::go_quote(text)
                ))
            })?),
        };
        let options = LogOptions {
            container: query.get("container").filter(|c| !c.is_empty()).cloned(),
            follow: flag(query, "follow"),
            previous: flag(query, "previous"),
            timestamps: flag(query, "timestamps"),
            since_seconds: int_param(query, "sinceSeconds")?,
            since_time,
            tail_lines: int_param(query, "tailLines")?,
            limit_bytes: int_param(query, "limitBytes")?,
        };
        let mut causes = Vec::new();
        if let Some(tail) = options.tail_lines.filter(|t| *t < 0) {
            causes.push(invalid_number(
                "tailLines",
                tail,
                "must be greater than or equal to 0",
            ));
        }
        if let Some(limit) = options.limit_bytes.filter(|l| *l < 1) {
            causes.push(invalid_number(
                "limitBytes",
                limit,
                "must be greater than 0",
            ));
        }
        match (options.since_seconds, options.since_time) {
            (Some(_), Some(_)) => causes.push(Cause::forbidden(
                "",
                "at most one of `sinceTime` or `sinceSeconds` may be specified",
            )),
            (Some(seconds), None) if seconds < 1 => causes.push(invalid_number(
                "sinceSeconds",
                seconds,
                "must be greater than 0",
            )),
            _ => {}
        }
        if causes.is_empty() {
            Ok(options)
        } else {
            Err(ApiError::invalid("PodLogOptions", "", pod, causes))
        }
    }

    /// The earliest line time asked for, if any.
    fn since(&self, now: Timestamp) -> Option<Timestamp> {
        self.since_time.or_else(|| {
            self.since_seconds.map(|s| {
                now.checked_sub(jiff::SignedDuration::from_secs(s))
                    .unwrap_or(Timestamp::MIN)
            })
        })
    }
}

/// The container a request is for: the named one (a container, init or ephemeral container,
/// as `podHasContainerWithName`), or the only one (kube-apiserver's LogLocation).
fn choose_container(pod: &Value, name: &str, asked: Option<&str>) -> Result<String, ApiError> {
    let names = |list: &str| -> Vec<&str> {
        pod["spec"][list]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["name"].as_str())
            .collect()
    };
    let (containers, init) = (names("containers"), names("initContainers"));
    match asked {
        Some(container)
            if containers.contains(&container)
                || init.contains(&container)
                || names("ephemeralContainers").contains(&container) =>
        {
            Ok(container.to_string())
        }
        Some(container) => Err(ApiError::bad_request(format!(
            "container {container} is not valid for pod {name}"
        ))),
        None => match containers.as_slice() {
            [only] => Ok((*only).to_string()),
            [] => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            ))),
            _ => {
                let mut message = format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    containers.join(" ")
                );
                if !init.is_empty() {
                    message.push_str(&format!(
                        " or one of the init containers: [{}]",
                        init.join(" ")
                    ));
                }
                Err(ApiError::bad_request(message))
            }
        },
    }
}

/// The container instance whose output a request reads: its ID and when it ran.
#[derive(Debug, Clone, PartialEq)]
struct Instance {
    id: String,
    run: Run,
}

fn parse_time(value: &Value) -> Option<Timestamp> {
    value.as_str()?.parse().ok()
}

fn instance_from(containers: &Containers, state: &Value) -> Option<Instance> {
    let id = state["containerID"].as_str().filter(|id| !id.is_empty())?;
    let run = containers.run(id).or_else(|| {
        Some(Run {
            started: parse_time(&state["startedAt"])?,
            finished: parse_time(&state["finishedAt"]),
        })
    })?;
    Some(Instance {
        id: id.to_string(),
        run,
    })
}

/// Which container instance the kubelet reads (its `validateContainerLogStatus`), or the 400
/// it answers.
fn find_instance(
    containers: &Containers,
    pod: &Value,
    container: &str,
    previous: bool,
) -> Result<Instance, ApiError> {
    let name = meta_str(pod, "name").unwrap_or("");
    let status = ["containerStatuses", "initContainerStatuses"]
        .iter()
        .flat_map(|list| pod["status"][list].as_array().into_iter().flatten())
        .find(|s| s["name"] == container);
    let Some(status) = status else {
        return Err(ApiError::bad_request(format!(
            "container {} in pod {} is waiting to start: ContainerCreating",
            crate::status::go_quote(container),
            crate::status::go_quote(name)
        )));
    };
    let last = &status["lastState"]["terminated"];
    if previous {
        return instance_from(containers, last).ok_or_else(|| {
            ApiError::bad_request(format!(
                "previous terminated container {} in pod {} not found",
                crate::status::go_quote(container),
                crate::status::go_quote(name)
            ))
        });
    }
    let state = &status["state"];
    let running = state["running"].as_object().map(|_| {
        let mut running = state["running"].clone();
        running["containerID"] = status["containerID"].clone();
        running
    });
    if let Some(instance) = running.and_then(|r| instance_from(containers, &r)) {
        return Ok(instance);
    }
    if state["terminated"].is_object() {
        let mut terminated = state["terminated"].clone();
        if terminated["containerID"].as_str().unwrap_or("").is_empty() {
            terminated["containerID"] = status["containerID"].clone();
        }
        return instance_from(containers, &terminated)
            .or_else(|| instance_from(containers, last))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "container {} in pod {} is terminated",
                    crate::status::go_quote(container),
                    crate::status::go_quote(name)
                ))
            });
    }
    if let Some(instance) = instance_from(containers, last) {
        return Ok(instance);
    }
    let reason = state["waiting"]["reason"]
        .as_str()
        .unwrap_or("ContainerCreating");
    Err(ApiError::bad_request(format!(
        "container {} in pod {} is waiting to start: {reason}",
        crate::status::go_quote(container),
        crate::status::go_quote(name)
    )))
}

/// Whether `pod` (a later version, or none once deleted) still runs `instance` of `container`.
fn still_running(pod: Option<&Value>, uid: &str, container: &str, instance: &str) -> bool {
    let Some(pod) = pod else {
        return false;
    };
    if meta_str(pod, "uid") != Some(uid) {
        return false;
    }
    pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(
            pod["status"]["initContainerStatuses"]
                .as_array()
                .into_iter()
                .flatten(),
        )
        .any(|s| {
            s["name"] == container
                && s["containerID"] == instance
                && s["state"]["running"].is_object()
        })
}

/// Counts the open log streams while alive.
struct StreamGuard(Arc<ApiServer>);

impl StreamGuard {
    fn new(server: &Arc<ApiServer>) -> StreamGuard {
        server.log_streams.fetch_add(1, Ordering::Relaxed);
        StreamGuard(Arc::clone(server))
    }
}

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.log_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The most lines sent in one chunk.
const CHUNK_LINES: u64 = 4096;

/// One log response body being produced.
struct LogStream {
    guard: StreamGuard,
    key: ObjectKey,
    uid: String,
    container: String,
    instance: Instance,
    lines: Lines,
    next: u64,
    /// The line count at which the body ends (known unless following a running container).
    end: Option<u64>,
    timestamps: bool,
    /// Bytes left under `limitBytes`.
    budget: Option<u64>,
    feed: Option<broadcast::Receiver<Arc<StoredEvent>>>,
}

impl LogStream {
    fn server(&self) -> &Arc<ApiServer> {
        &self.guard.0
    }

    /// The next chunk of the body, or `None` at its end.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if self.budget == Some(0) {
                return None;
            }
            let available = match self.end {
                Some(end) => end,
                None => self.lines.count_at(Timestamp::now()),
            };
            if self.next < available {
                return Some(self.render(available));
            }
            if self.end.is_some() {
                return None;
            }
            self.wait_for_more().await?;
        }
    }

    fn render(&mut self, available: u64) -> Bytes {
        let upto = available.min(self.next.saturating_add(CHUNK_LINES));
        let mut text = String::new();
        for k in self.next..upto {
            text.push_str(&self.lines.render(k, self.timestamps));
            if self
                .budget
                .is_some_and(|budget| text.len() as u64 >= budget)
            {
                break;
            }
        }
        self.next = upto;
        if let Some(budget) = self.budget.as_mut() {
            let keep = (*budget).min(text.len() as u64);
            text.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
            *budget -= keep;
        }
        Bytes::from(text)
    }

    /// Waits until the next line is due, or the container stops (then `end` is set). `None`
    /// when the server shuts down.
    async fn wait_for_more(&mut self) -> Option<()> {
        let due = self.lines.nanos_of(self.next) - Timestamp::now().as_nanosecond();
        let wait = Duration::from_nanos(u64::try_from(due.max(0)).unwrap_or(u64::MAX));
        let shutdown = self.server().shutdown.clone();
        let feed = self.feed.as_mut()?;
        let changed = tokio::select! {
            _ = shutdown.cancelled() => return None,
            _ = tokio::time::sleep(wait) => false,
            received = feed.recv() => match received {
                Ok(event) => event.key == self.key && event.storage == pods_storage() && {
                    let pod = (event.kind != EventType::Deleted).then(|| event.object.value());
                    !still_running(pod.as_ref(), &self.uid, &self.container, &self.instance.id)
                },
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let pod = self.guard.0.store.get(&pods_storage(), &self.key);
                    !still_running(pod.as_deref(), &self.uid, &self.container, &self.instance.id)
                }
                Err(broadcast::error::RecvError::Closed) => true,
            },
        };
        if changed {
            // The container stopped (or restarted, or its pod is gone): the output ends with
            // what it wrote until then.
            let finished = self
                .server()
                .containers
                .run(&self.instance.id)
                .and_then(|run| run.finished)
                .unwrap_or_else(Timestamp::now);
            self.end = Some(self.lines.count_at(finished).max(self.next));
        }
        Some(())
    }
}

fn text_body(status: StatusCode, body: Body) -> Result<Response<Body>, ApiError> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain")
        .body(body)
        .map_err(|e| ApiError::internal(format!("cannot build the log response: {e}")))
}

/// Answers `GET .../pods/{name}/log`.
pub fn serve(
    server: &Arc<ApiServer>,
    request: &ResourceRequest,
    query: &Query,
) -> Result<Response<Body>, ApiError> {
    let name = request.name.clone().unwrap_or_default();
    let options = LogOptions::parse(query, &name)?;
    let key = (request.namespace.clone().unwrap_or_default(), name.clone());
    // Subscribe before reading the pod, so no change between the two is missed.
    let feed = options.follow.then(|| server.store.subscribe());
    let pod = server
        .store
        .get(&request.storage_key(), &key)
        .ok_or_else(|| ApiError::not_found(&request.resource, &name))?;
    let container = choose_container(&pod, &name, options.container.as_deref())?;
    if pod["spec"]["nodeName"].as_str().unwrap_or("").is_empty() {
        // Not scheduled: kube-apiserver has no kubelet to ask, streams nothing and answers
        // 204 No Content, without a Content-Type (its LocationStreamer without a location).
        return Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(http_body_util::Empty::new().boxed_unsync())
            .map_err(|e| ApiError::internal(format!("cannot build the log response: {e}")));
    }
    let instance = find_instance(&server.containers, &pod, &container, options.previous)?;
    let interval = server.settings.read().log_interval;
    let lines = Lines::new(instance.run.started, interval);
    let now = Timestamp::now();
    let running = !options.previous && instance.run.finished.is_none();
    let count = lines.count_at(instance.run.finished.unwrap_or(now));
    let tail = options.tail_lines.map(|t| u64::try_from(t).unwrap_or(0));
    let since = options.since(now);
    let range = lines.select(count, tail, since);
    let follow = options.follow && running;
    let stream = LogStream {
        guard: StreamGuard::new(server),
        key,
        uid: meta_str(&pod, "uid").unwrap_or("").to_string(),
        container,
        instance,
        lines,
        // Following, lines before `since` are never sent, even those not written yet.
        next: if follow {
            lines.first_line(count, tail, since)
        } else {
            range.start
        },
        end: (!follow).then_some(range.end),
        timestamps: options.timestamps,
        budget: options.limit_bytes.map(|l| u64::try_from(l).unwrap_or(0)),
        feed: if follow { feed } else { None },
    };
    let chunks = futures_util::stream::unfold(stream, |mut stream| async move {
        let chunk = stream.next_chunk().await?;
        Some((Ok::<_, Infallible>(Frame::data(chunk)), stream))
    });
    text_body(StatusCode::OK, StreamBody::new(chunks).boxed_unsync())
}

/// The JSON shape of a terminated container state (for the kubelet's bookkeeping).
pub fn terminated_state(
    exit_code: i64,
    started: &Value,
    finished: &str,
    container_id: &Value,
) -> Value {
    json!({
        "exitCode": exit_code,
        "reason": "Error",
        "startedAt": started,
        "finishedAt": finished,
        "containerID": container_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn lines_are_the_unix_time_of_each_tick() {
        let lines = Lines::new(at("2026-11-23T20:43:30.5Z"), Duration::from_secs(1));
        assert_eq!(lines.render(0, false), "1795466610\n");
        assert_eq!(lines.render(1, false), "1795466611\n");
        assert_eq!(
            lines.render(1, true),
            "2026-11-23T20:43:31.500000000Z 1795466611\n"
        );
        assert_eq!(lines.count_at(at("2026-11-23T20:43:30Z")), 0);
        assert_eq!(lines.count_at(at("2026-11-23T20:43:30.5Z")), 1);
        assert_eq!(lines.count_at(at("2026-11-23T20:43:33.4Z")), 3);
        assert_eq!(lines.count_at(at("2026-11-23T20:43:33.5Z")), 4);
        assert_eq!(
            format_timestamp(at("2026-11-23T20:43:31Z")),
            "2026-11-23T20:43:31.000000000Z"
        );
    }

    #[test]
    fn tail_then_since() {
        let lines = Lines::new(at("2026-01-01T00:00:00Z"), Duration::from_millis(500));
        // 10 lines: 0.0s .. 4.5s.
        assert_eq!(lines.select(10, None, None), 0..10);
        assert_eq!(lines.select(10, Some(3), None), 7..10);
        assert_eq!(lines.select(10, Some(0), None), 10..10);
        assert_eq!(lines.select(10, Some(50), None), 0..10);
        assert_eq!(
            lines.select(10, None, Some(at("2026-01-01T00:00:03Z"))),
            6..10
        );
        assert_eq!(
            lines.select(10, None, Some(at("2026-01-01T00:00:03.1Z"))),
            7..10
        );
        assert_eq!(
            lines.select(10, Some(2), Some(at("2026-01-01T00:00:01Z"))),
            8..10
        );
        assert_eq!(
            lines.select(10, Some(8), Some(at("2026-01-01T00:00:04Z"))),
            8..10
        );
        assert_eq!(
            lines.select(10, None, Some(at("2025-01-01T00:00:00Z"))),
            0..10
        );
        assert_eq!(
            lines.select(10, None, Some(at("2027-01-01T00:00:00Z"))),
            10..10
        );
    }

    fn query(pairs: &[(&str, &str)]) -> Query {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_are_validated_like_the_api_server() {
        let options = LogOptions::parse(
            &query(&[("follow", "true"), ("tailLines", "2"), ("container", "c")]),
            "p",
        )
        .unwrap();
        assert!(options.follow);
        assert_eq!(options.tail_lines, Some(2));
        assert_eq!(options.container.as_deref(), Some("c"));
        let error = LogOptions::parse(&query(&[("tailLines", "-1")]), "p").unwrap_err();
        assert_eq!(error.code, 422);
        assert_eq!(
            error.message,
            "PodLogOptions \"p\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
        );
        let error = LogOptions::parse(&query(&[("sinceSeconds", "0")]), "p").unwrap_err();
        assert_eq!(
            error.message,
            "PodLogOptions \"p\" is invalid: sinceSeconds: Invalid value: 0: must be greater than 0"
        );
        let error = LogOptions::parse(&query(&[("limitBytes", "0")]), "p").unwrap_err();
        assert_eq!(error.details.unwrap()["causes"][0]["field"], "limitBytes");
        let error = LogOptions::parse(
            &query(&[("sinceSeconds", "5"), ("sinceTime", "2026-01-01T00:00:00Z")]),
            "p",
        )
        .unwrap_err();
        assert_eq!(
            error.message,
            "PodLogOptions \"p\" is invalid: : Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"
        );
        assert_eq!(
            LogOptions::parse(&query(&[("tailLines", "x")]), "p")
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(
            LogOptions::parse(&query(&[("sinceTime", "yesterday")]), "p")
                .unwrap_err()
                .code,
            400
        );
    }

    #[test]
    fn containers_are_chosen_like_the_api_server() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        assert_eq!(
            choose_container(&pod, "p", None).unwrap_err().message,
            "a container name must be specified for pod p, choose one of: [a b]"
        );
        assert_eq!(
            choose_container(&pod, "p", Some("x")).unwrap_err().message,
            "container x is not valid for pod p"
        );
        assert_eq!(choose_container(&pod, "p", Some("b")).unwrap(), "b");
        let single = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(choose_container(&single, "p", None).unwrap(), "a");
        let with_init = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}],
            "initContainers": [{"name": "setup"}], "ephemeralContainers": [{"name": "debug"}]}});
        assert_eq!(
            choose_container(&with_init, "p", None).unwrap_err().message,
            "a container name must be specified for pod p, choose one of: [a b] or one of the init containers: [setup]"
        );
        assert_eq!(
            choose_container(&with_init, "p", Some("setup")).unwrap(),
            "setup"
        );
        assert_eq!(
            choose_container(&with_init, "p", Some("debug")).unwrap(),
            "debug"
        );
    }

    #[test]
    fn the_instance_follows_the_kubelet_rules() {
        let containers = Containers::default();
        let pending = json!({"metadata": {"name": "p"}, "status": {}});
        assert_eq!(
            find_instance(&containers, &pending, "c", false)
                .unwrap_err()
                .message,
            "container \"c\" in pod \"p\" is waiting to start: ContainerCreating"
        );
        let running = json!({"metadata": {"name": "p"}, "status": {"containerStatuses": [{
            "name": "c", "containerID": "containerd://2",
            "state": {"running": {"startedAt": "2026-01-01T00:00:10Z"}},
            "lastState": {}
        }]}});
        assert_eq!(
            find_instance(&containers, &running, "c", true)
                .unwrap_err()
                .message,
            "previous terminated container \"c\" in pod \"p\" not found"
        );
        let instance = find_instance(&containers, &running, "c", false).unwrap();
        assert_eq!(instance.id, "containerd://2");
        assert_eq!(instance.run.started, at("2026-01-01T00:00:10Z"));
        // The precise time recorded by the kubelet wins over the status's seconds.
        containers.started("containerd://2", at("2026-01-01T00:00:10.25Z"));
        let instance = find_instance(&containers, &running, "c", false).unwrap();
        assert_eq!(instance.run.started, at("2026-01-01T00:00:10.25Z"));
        let mut restarted = running.clone();
        restarted["status"]["containerStatuses"][0]["lastState"] = json!({"terminated":
            terminated_state(137, &json!("2026-01-01T00:00:00Z"), "2026-01-01T00:00:10Z", &json!("containerd://1"))});
        let previous = find_instance(&containers, &restarted, "c", true).unwrap();
        assert_eq!(previous.id, "containerd://1");
        assert_eq!(previous.run.finished, Some(at("2026-01-01T00:00:10Z")));
        restarted["metadata"]["uid"] = json!("u");
        assert!(still_running(Some(&restarted), "u", "c", "containerd://2"));
        assert!(!still_running(Some(&restarted), "u", "c", "containerd://1"));
        assert!(!still_running(
            Some(&restarted),
            "other",
            "c",
            "containerd://2"
        ));
        assert!(!still_running(None, "u", "c", "containerd://2"));
    }
}
