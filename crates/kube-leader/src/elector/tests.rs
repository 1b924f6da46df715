//! client-go's leaderelection_test tables, ported: a scripted lock plays the fake clientset's
//! reactors (in call order, so a test also checks the order of the requests), on a fake clock.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_executor::LocalPool;
use futures_util::task::LocalSpawnExt as _;
use kube_flowcontrol::{Clock, FakeClock};
use parking_lot::Mutex;

use super::*;
use crate::lock::Observed;
use crate::multilock::{MultiLock, UNKNOWN_LEADER, concat_raw_records};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Get,
    Create,
    Update,
}

/// What a scripted request answers.
enum Reply {
    /// A get finding this record.
    Found(LeaderElectionRecord),
    /// A get finding nothing.
    NotFound,
    /// A create or update applied.
    Ok,
    /// A conflict.
    Conflict,
}

struct Expect {
    verb: Verb,
    target: &'static str,
    reply: Reply,
    then: Option<Box<dyn FnOnce() + Send>>,
}

#[derive(Default)]
struct Script {
    expected: VecDeque<Expect>,
    calls: Vec<(Verb, &'static str)>,
    unexpected: Vec<String>,
}

type SharedScript = Arc<Mutex<Script>>;

fn expect(verb: Verb, target: &'static str, reply: Reply) -> Expect {
    Expect {
        verb,
        target,
        reply,
        then: None,
    }
}

/// A lock answering from a shared script.
struct ScriptedLock {
    target: &'static str,
    identity: String,
    script: SharedScript,
}

impl ScriptedLock {
    fn answer(&self, verb: Verb) -> Result<Option<LeaderElectionRecord>, LockError> {
        let (reply, then) = {
            let mut script = self.script.lock();
            script.calls.push((verb, self.target));
            match script.expected.pop_front() {
                Some(e) if e.verb == verb && e.target == self.target => (e.reply, e.then),
                other => {
                    let message = format!(
                        "unexpected {verb:?} on {}, expected {:?}",
                        self.target,
                        other.map(|e| (e.verb, e.target))
                    );
                    script.unexpected.push(message.clone());
                    return Err(LockError::Unavailable {
                        lock: self.target.to_string(),
                        reason: message,
                    });
                }
            }
        };
        if let Some(then) = then {
            then();
        }
        match reply {
            Reply::Found(record) => Ok(Some(record)),
            Reply::NotFound => Ok(None),
            Reply::Ok => Ok(None),
            Reply::Conflict => Err(LockError::Conflict {
                lock: self.target.to_string(),
            }),
        }
    }
}

impl Lock for ScriptedLock {
    type Version = u64;

    async fn get(&self) -> Result<Option<Observed<u64>>, LockError> {
        Ok(self.answer(Verb::Get)?.map(|record| Observed {
            raw: record.raw(),
            record,
            version: 1,
        }))
    }

    async fn create(&self, _record: &LeaderElectionRecord) -> Result<u64, LockError> {
        self.answer(Verb::Create).map(|_| 1)
    }

    async fn update(
        &self,
        _version: &u64,
        _record: &LeaderElectionRecord,
    ) -> Result<u64, LockError> {
        self.answer(Verb::Update).map(|_| 2)
    }

    fn identity(&self) -> &str {
        &self.identity
    }

    fn describe(&self) -> String {
        format!("foo/{}", self.target)
    }
}

fn held(holder: &str) -> LeaderElectionRecord {
    LeaderElectionRecord {
        holder_identity: holder.to_string(),
        ..LeaderElectionRecord::default()
    }
}

/// A record held by `holder` with a lease: client-go's tables use leases of 0 s in the cases
/// where the candidate must not acquire, and pass only because nanoseconds elapse between
/// `now` and the observation on the real clock; on a fake clock a 0 s lease has expired.
fn held_for(holder: &str, seconds: i32) -> LeaderElectionRecord {
    LeaderElectionRecord {
        lease_duration_seconds: seconds,
        ..held(holder)
    }
}

fn elector<L: Lock>(
    lock: L,
    clock: &FakeClock,
    reported: Arc<Mutex<Vec<String>>>,
) -> LeaderElector<L> {
    LeaderElector::builder(lock)
        .lease_duration(Duration::from_secs(10))
        .renew_deadline(Duration::from_secs(5))
        .retry_period(Duration::from_secs(1))
        .clock(clock.shared())
        .on_started_leading(|_| async {})
        .on_stopped_leading(|| {})
        .on_new_leader(move |l| reported.lock().push(l.to_string()))
        .build()
        .unwrap()
}

#[derive(Clone, Copy)]
enum ObservedAt {
    Never,
    Past,
    Future,
}

struct Case {
    name: &'static str,
    observed: LeaderElectionRecord,
    /// The raw form observed; `None`: the raw form of `observed`.
    observed_raw: Option<String>,
    observed_at: ObservedAt,
    retry_after: Option<Duration>,
    script: Vec<Expect>,
    expect_success: bool,
    transition: bool,
    holder: &'static str,
}

fn run_case<L: Lock>(case: Case, lock: L, script: &SharedScript) {
    let clock = FakeClock::new();
    // Move the clock so that "past" (the start) is long before now.
    let start = clock.now();
    clock.step(Duration::from_secs(1000 * 3600));
    let reported = Arc::new(Mutex::new(Vec::new()));
    let le = elector(lock, &clock, reported.clone());
    let raw = case
        .observed_raw
        .clone()
        .unwrap_or_else(|| case.observed.raw());
    let time = match case.observed_at {
        ObservedAt::Never => None,
        ObservedAt::Past => Some(start),
        ObservedAt::Future => Some(clock.now() + Duration::from_secs(1000 * 3600)),
    };
    le.set_observed_for_test(case.observed.clone(), Some(raw), time);
    script.lock().expected.extend(case.script);

    let mut succeeded = futures_executor::block_on(le.try_acquire_or_renew()).succeeded();
    if succeeded != case.expect_success
        && let Some(after) = case.retry_after
    {
        clock.step(after);
        succeeded = futures_executor::block_on(le.try_acquire_or_renew()).succeeded();
    }
    assert_eq!(succeeded, case.expect_success, "{}: success", case.name);
    let observed = le.observed_record();
    assert_eq!(
        observed.holder_identity, case.holder,
        "{}: holder",
        case.name
    );
    let script = script.lock();
    assert!(
        script.unexpected.is_empty(),
        "{}: {:?}",
        case.name,
        script.unexpected
    );
    assert!(
        script.expected.is_empty(),
        "{}: {} expected requests not made",
        case.name,
        script.expected.len()
    );
    assert_eq!(
        observed.leader_transitions,
        i32::from(case.transition),
        "{}: transitions",
        case.name
    );
    le.maybe_report_transition();
    assert_eq!(
        reported.lock().last().map(String::as_str),
        Some(case.holder),
        "{}: reported leader",
        case.name
    );
}

const LEASE: &str = "leases";

#[test]
fn try_acquire_or_renew_table() {
    use Reply::*;
    use Verb::*;
    let cases = vec![
        Case {
            name: "acquire from no object",
            observed: LeaderElectionRecord::default(),
            observed_raw: None,
            observed_at: ObservedAt::Never,
            retry_after: None,
            script: vec![expect(Get, LEASE, NotFound), expect(Create, LEASE, Ok)],
            expect_success: true,
            transition: false,
            holder: "baz",
        },
        Case {
            name: "acquire from object without annotations",
            observed: LeaderElectionRecord::default(),
            observed_raw: None,
            observed_at: ObservedAt::Never,
            retry_after: None,
            script: vec![
                expect(Get, LEASE, Found(LeaderElectionRecord::default())),
                expect(Update, LEASE, Ok),
            ],
            expect_success: true,
            transition: true,
            holder: "baz",
        },
        Case {
            name: "acquire from led object with the lease duration seconds",
            observed: LeaderElectionRecord::default(),
            observed_raw: None,
            observed_at: ObservedAt::Never,
            retry_after: Some(Duration::from_secs(3)),
            script: vec![
                expect(Get, LEASE, Found(held_for("bing", 3))),
                expect(Get, LEASE, Found(held_for("bing", 3))),
                expect(Update, LEASE, Ok),
            ],
            expect_success: true,
            transition: true,
            holder: "baz",
        },
        Case {
            name: "acquire from unled object",
            observed: LeaderElectionRecord::default(),
            observed_raw: None,
            observed_at: ObservedAt::Never,
            retry_after: None,
            script: vec![
                expect(Get, LEASE, Found(LeaderElectionRecord::default())),
                expect(Update, LEASE, Ok),
            ],
            expect_success: true,
            transition: true,
            holder: "baz",
        },
        Case {
            name: "acquire from led, unacked object",
            observed: held("bing"),
            observed_raw: None,
            observed_at: ObservedAt::Past,
            retry_after: None,
            script: vec![
                expect(Get, LEASE, Found(held("bing"))),
                expect(Update, LEASE, Ok),
            ],
            expect_success: true,
            transition: true,
            holder: "baz",
        },
        Case {
            name: "acquire from empty led, acked object",
            observed: LeaderElectionRecord::default(),
            observed_raw: None,
            observed_at: ObservedAt::Future,
            retry_after: None,
            script: vec![
                expect(Get, LEASE, Found(held(""))),
                expect(Update, LEASE, Ok),
            ],
            expect_success: true,
            transition: true,
            holder: "baz",
        },
        Case {
            name: "don't acquire from led, acked object",
            observed: LeaderElectionRecord::default(),
            observed_raw: None,
            observed_at: ObservedAt::Future,
            retry_after: None,
            script: vec![expect(Get, LEASE, Found(held_for("bing", 10)))],
            expect_success: false,
            transition: false,
            holder: "bing",
        },
        Case {
            name: "renew already acquired object",
            observed: held("baz"),
            observed_raw: None,
            observed_at: ObservedAt::Future,
            retry_after: None,
            script: vec![
                expect(Get, LEASE, Found(held("baz"))),
                expect(Update, LEASE, Ok),
            ],
            expect_success: true,
            transition: false,
            holder: "baz",
        },
    ];
    for case in cases {
        let script = SharedScript::default();
        let lock = ScriptedLock {
            target: LEASE,
            identity: "baz".into(),
            script: script.clone(),
        };
        run_case(case, lock, &script);
    }
}

const PRIMARY: &str = "configmaps";
const SECONDARY: &str = "leases";

fn raw2(record: &LeaderElectionRecord) -> Option<String> {
    Some(concat_raw_records(&record.raw(), &record.raw()))
}

#[test]
fn try_acquire_or_renew_multilock_table() {
    use Reply::*;
    use Verb::*;
    let cases = vec![
        Case {
            name: "acquire from no object",
            observed: LeaderElectionRecord::default(),
            observed_raw: None,
            observed_at: ObservedAt::Never,
            retry_after: None,
            script: vec![
                expect(Get, PRIMARY, NotFound),
                expect(Create, PRIMARY, Ok),
                expect(Create, SECONDARY, Ok),
            ],
            expect_success: true,
            transition: false,
            holder: "baz",
        },
        Case {
            name: "acquire from unled old object",
            observed: LeaderElectionRecord::default(),
            observed_raw: None,
            observed_at: ObservedAt::Never,
            retry_after: None,
            script: vec![
                expect(Get, PRIMARY, Found(LeaderElectionRecord::default())),
                expect(Get, SECONDARY, NotFound),
                expect(Update, PRIMARY, Ok),
                expect(Get, SECONDARY, NotFound),
                expect(Create, SECONDARY, Ok),
            ],
            expect_success: true,
            transition: true,
            holder: "baz",
        },
        Case {
            name: "acquire from unled transition object",
            observed: LeaderElectionRecord::default(),
            observed_raw: None,
            observed_at: ObservedAt::Never,
            retry_after: None,
            script: vec![
                expect(Get, PRIMARY, Found(LeaderElectionRecord::default())),
                expect(Get, SECONDARY, Found(LeaderElectionRecord::default())),
                expect(Update, PRIMARY, Ok),
                expect(Get, SECONDARY, Found(LeaderElectionRecord::default())),
                expect(Update, SECONDARY, Ok),
            ],
            expect_success: true,
            transition: true,
            holder: "baz",
        },
        Case {
            name: "acquire from led, unack old object",
            observed: held("bing"),
            observed_raw: Some(held("bing").raw()),
            observed_at: ObservedAt::Past,
            retry_after: None,
            script: vec![
                expect(Get, PRIMARY, Found(held("bing"))),
                expect(Get, SECONDARY, NotFound),
                expect(Update, PRIMARY, Ok),
                // client-go lists a get finding "bing" here, but its fake clientset answers
                // every secondary get with the first matching reactor (not found).
                expect(Get, SECONDARY, NotFound),
                expect(Create, SECONDARY, Ok),
            ],
            expect_success: true,
            transition: true,
            holder: "baz",
        },
        Case {
            name: "acquire from led, unack transition object",
            observed: held("bing"),
            observed_raw: raw2(&held("bing")),
            observed_at: ObservedAt::Past,
            retry_after: None,
            script: vec![
                expect(Get, PRIMARY, Found(held("bing"))),
                expect(Get, SECONDARY, Found(held("bing"))),
                expect(Update, PRIMARY, Ok),
                expect(Get, SECONDARY, Found(held("bing"))),
                expect(Update, SECONDARY, Ok),
            ],
            expect_success: true,
            transition: true,
            holder: "baz",
        },
        Case {
            name: "acquire from conflict led, ack transition object",
            observed: held("bing"),
            observed_raw: raw2(&held("bing")),
            observed_at: ObservedAt::Future,
            retry_after: None,
            script: vec![
                expect(Get, PRIMARY, Found(held_for("bing", 10))),
                expect(Get, SECONDARY, Found(held_for("baz", 10))),
            ],
            expect_success: false,
            transition: false,
            holder: UNKNOWN_LEADER,
        },
        Case {
            name: "acquire from led, unack unknown object",
            observed: held(UNKNOWN_LEADER),
            observed_raw: raw2(&held(UNKNOWN_LEADER)),
            observed_at: ObservedAt::Past,
            retry_after: None,
            script: vec![
                expect(Get, PRIMARY, Found(held(UNKNOWN_LEADER))),
                expect(Get, SECONDARY, Found(held(UNKNOWN_LEADER))),
                expect(Update, PRIMARY, Ok),
                expect(Get, SECONDARY, Found(held(UNKNOWN_LEADER))),
                expect(Update, SECONDARY, Ok),
            ],
            expect_success: true,
            transition: true,
            holder: "baz",
        },
        Case {
            name: "don't acquire from led, ack old object",
            observed: held("bing"),
            observed_raw: Some(held("bing").raw()),
            observed_at: ObservedAt::Future,
            retry_after: None,
            script: vec![
                expect(Get, PRIMARY, Found(held("bing"))),
                expect(Get, SECONDARY, NotFound),
            ],
            expect_success: false,
            transition: false,
            holder: "bing",
        },
        Case {
            name: "don't acquire from led, acked new object, observe new record",
            observed: held("bing"),
            observed_raw: Some(held("bing").raw()),
            observed_at: ObservedAt::Future,
            retry_after: None,
            script: vec![
                expect(Get, PRIMARY, Found(held_for("baz", 10))),
                expect(Get, SECONDARY, Found(held_for("bing", 10))),
            ],
            expect_success: false,
            transition: false,
            holder: UNKNOWN_LEADER,
        },
        Case {
            name: "don't acquire from led, acked new object, observe transition record",
            observed: held("bing"),
            observed_raw: raw2(&held("bing")),
            observed_at: ObservedAt::Future,
            retry_after: None,
            script: vec![
                expect(Get, PRIMARY, Found(held("bing"))),
                expect(Get, SECONDARY, Found(held("bing"))),
            ],
            expect_success: false,
            transition: false,
            holder: "bing",
        },
        Case {
            name: "renew already required object",
            observed: held("baz"),
            observed_raw: raw2(&held("baz")),
            observed_at: ObservedAt::Future,
            retry_after: None,
            script: vec![
                expect(Get, PRIMARY, Found(held("baz"))),
                expect(Get, SECONDARY, Found(held("baz"))),
                expect(Update, PRIMARY, Ok),
                expect(Get, SECONDARY, Found(held("baz"))),
                expect(Update, SECONDARY, Ok),
            ],
            expect_success: true,
            transition: false,
            holder: "baz",
        },
    ];
    for case in cases {
        let script = SharedScript::default();
        let lock = MultiLock::new(
            ScriptedLock {
                target: PRIMARY,
                identity: "baz".into(),
                script: script.clone(),
            },
            ScriptedLock {
                target: SECONDARY,
                identity: "baz".into(),
                script: script.clone(),
            },
        );
        run_case(case, lock, &script);
    }
}

fn scripted(script: &SharedScript) -> ScriptedLock {
    ScriptedLock {
        target: LEASE,
        identity: "baz".into(),
        script: script.clone(),
    }
}

/// client-go's testReleaseLease (its reactor list matches by verb, not order; these are the
/// requests actually made).
#[test]
fn release_lease() {
    use Reply::*;
    use Verb::*;
    let script = SharedScript::default();
    script.lock().expected.extend([
        expect(Get, LEASE, Found(held("baz"))),
        expect(Update, LEASE, Ok),
        expect(Get, LEASE, Found(held("baz"))),
        expect(Update, LEASE, Ok),
    ]);
    let clock = FakeClock::new();
    let reported = Arc::new(Mutex::new(Vec::new()));
    let le = elector(scripted(&script), &clock, reported.clone());
    assert!(futures_executor::block_on(le.try_acquire_or_renew()).succeeded());
    le.maybe_report_transition();
    assert!(futures_executor::block_on(le.release()));
    let observed = le.observed_record();
    assert_eq!(observed.holder_identity, "");
    assert_eq!(observed.lease_duration_seconds, 1);
    assert_eq!(observed.leader_transitions, 0);
    le.maybe_report_transition();
    assert_eq!(*reported.lock(), vec!["baz".to_string(), String::new()]);
    let script = script.lock();
    assert!(script.expected.is_empty() && script.unexpected.is_empty());
}

#[test]
fn release_calls_get() {
    use Reply::*;
    use Verb::*;
    let script = SharedScript::default();
    script.lock().expected.extend([
        expect(Get, LEASE, Found(held_for("baz", 10))),
        expect(Update, LEASE, Ok),
    ]);
    let clock = FakeClock::new();
    let le = elector(scripted(&script), &clock, Default::default());
    le.set_observed_for_test(held("baz"), Some(held("baz").raw()), Some(clock.now()));
    assert!(futures_executor::block_on(le.release()));
    assert_eq!(script.lock().calls, vec![(Get, LEASE), (Update, LEASE)]);
}

#[test]
fn release_retries_on_conflict() {
    use Reply::*;
    use Verb::*;
    let script = SharedScript::default();
    script.lock().expected.extend([
        expect(Get, LEASE, Found(held_for("baz", 10))),
        expect(Update, LEASE, Conflict),
        expect(Get, LEASE, Found(held_for("baz", 10))),
        expect(Update, LEASE, Ok),
    ]);
    let clock = FakeClock::new();
    let le = elector(scripted(&script), &clock, Default::default());
    le.set_observed_for_test(held("baz"), Some(held("baz").raw()), Some(clock.now()));
    assert!(futures_executor::block_on(le.release()));
    assert!(script.lock().expected.is_empty());
}

/// Ours: the release reads the lock and leaves a successor's record alone.
#[test]
fn release_does_not_clobber_a_successor() {
    use Reply::*;
    use Verb::*;
    let script = SharedScript::default();
    script
        .lock()
        .expected
        .extend([expect(Get, LEASE, Found(held_for("bing", 10)))]);
    let clock = FakeClock::new();
    let le = elector(scripted(&script), &clock, Default::default());
    le.set_observed_for_test(held("baz"), Some(held("baz").raw()), Some(clock.now()));
    assert!(futures_executor::block_on(le.release()));
    let script = script.lock();
    assert!(script.expected.is_empty() && script.unexpected.is_empty());
}

/// Runs `future` on a local pool, stepping the fake clock whenever everything is idle.
fn drive<T: 'static>(clock: &FakeClock, future: impl Future<Output = T> + 'static) -> T {
    let mut pool = LocalPool::new();
    let out = std::rc::Rc::new(std::cell::RefCell::new(None));
    pool.spawner()
        .spawn_local({
            let out = out.clone();
            async move { *out.borrow_mut() = Some(future.await) }
        })
        .expect("spawn");
    loop {
        pool.run_until_stalled();
        if let Some(out) = out.borrow_mut().take() {
            return out;
        }
        assert!(
            clock.step_to_next_deadline().is_some(),
            "stalled with no timer pending"
        );
    }
}

use std::future::Future;

fn fast_path_ops(update_replies: Vec<Reply>, cancel_on_update: usize) -> Vec<(Verb, &'static str)> {
    use Reply::*;
    use Verb::*;
    let script = SharedScript::default();
    let cancel = CancellationToken::new();
    {
        let mut s = script.lock();
        s.expected.push_back(expect(Get, LEASE, NotFound));
        s.expected.push_back(expect(Create, LEASE, Ok));
        for (i, reply) in update_replies.into_iter().enumerate() {
            let conflict = matches!(reply, Conflict);
            let mut e = expect(Update, LEASE, reply);
            if i + 1 == cancel_on_update {
                let cancel = cancel.clone();
                e.then = Some(Box::new(move || cancel.cancel()));
            }
            s.expected.push_back(e);
            if conflict {
                s.expected
                    .push_back(expect(Get, LEASE, Found(held_for("baz", 15))));
            }
        }
    }
    let clock = FakeClock::new();
    let le = LeaderElector::builder(scripted(&script))
        .lease_duration(Duration::from_secs(15))
        .renew_deadline(Duration::from_secs(2))
        .retry_period(Duration::from_secs(1))
        .clock(clock.shared())
        .on_started_leading(|_| async {})
        .on_stopped_leading(|| {})
        .build()
        .unwrap();
    drive(&clock, async move { le.run(cancel).await.unwrap() });
    let s = script.lock();
    assert!(s.unexpected.is_empty(), "{:?}", s.unexpected);
    s.calls.clone()
}

#[test]
fn fast_path_after_lock_acquired() {
    use Verb::*;
    assert_eq!(
        fast_path_ops(vec![Reply::Ok, Reply::Ok], 2),
        vec![
            (Get, LEASE),
            (Create, LEASE),
            (Update, LEASE),
            (Update, LEASE)
        ]
    );
}

#[test]
fn fallback_to_slow_path_after_fast_path_fails() {
    use Verb::*;
    assert_eq!(
        fast_path_ops(vec![Reply::Ok, Reply::Conflict, Reply::Ok, Reply::Ok], 4),
        vec![
            (Get, LEASE),
            (Create, LEASE),
            (Update, LEASE),
            (Update, LEASE),
            (Get, LEASE),
            (Update, LEASE),
            (Update, LEASE)
        ]
    );
}

/// client-go's testReleaseOnCancellation: cancel while a renewal is in flight; the renewal is
/// abandoned and the lock released.
#[test]
fn release_on_cancellation_of_an_inflight_renewal() {
    use crate::memory::{Fault, MemoryStore, Operation};
    let clock = FakeClock::new();
    let store = MemoryStore::with_clock("foo/bar", clock.shared());
    let updates = Arc::new(Mutex::new(0u32));
    store.set_faults(Some(Arc::new({
        let updates = updates.clone();
        move |_: &str, op: Operation| {
            if op != Operation::Update {
                return Fault::none();
            }
            let mut n = updates.lock();
            *n += 1;
            // The third update (a renewal) hangs until the deadline.
            if *n == 3 {
                Fault::none().request_delay(Duration::from_secs(30))
            } else {
                Fault::none()
            }
        }
    })));
    let cancel = CancellationToken::new();
    let events = Arc::new(Mutex::new(Vec::new()));
    let le = LeaderElector::builder(store.lock("baz"))
        .lease_duration(Duration::from_secs(15))
        .renew_deadline(Duration::from_secs(2))
        .retry_period(Duration::from_secs(1))
        .release_on_cancel(true)
        .clock(clock.shared())
        .on_started_leading({
            let events = events.clone();
            move |token| {
                events.lock().push("started");
                let events = events.clone();
                async move {
                    token.cancelled().await;
                    events.lock().push("work done");
                }
            }
        })
        .on_stopped_leading({
            let events = events.clone();
            move || events.lock().push("stopped")
        })
        .build()
        .unwrap();
    let mut pool = LocalPool::new();
    let finished = Arc::new(Mutex::new(false));
    pool.spawner()
        .spawn_local({
            let (le, cancel, finished) = (le.clone(), cancel.clone(), finished.clone());
            async move {
                le.run(cancel).await.unwrap();
                *finished.lock() = true;
            }
        })
        .unwrap();
    // Acquire (create), renew at once (update 1), renew after 1 s (update 2), then update 3
    // hangs.
    pool.run_until_stalled();
    for _ in 0..2 {
        clock.step(Duration::from_secs(1));
        pool.run_until_stalled();
    }
    assert_eq!(*updates.lock(), 3);
    assert!(le.is_leader());
    cancel.cancel();
    pool.run_until_stalled();
    assert!(*finished.lock());
    assert_eq!(store.record().unwrap().holder_identity, "");
    assert_eq!(store.record().unwrap().lease_duration_seconds, 1);
    assert_eq!(*events.lock(), vec!["started", "stopped", "work done"]);
}

/// Ours: a renewal whose reply outlives the deadline of the last successful attempt ends the
/// leadership at that deadline (client-go would keep leading until a round after the reply).
#[test]
fn leadership_ends_at_renew_deadline_after_last_successful_attempt_start() {
    use crate::memory::{Fault, MemoryStore, Operation};
    let clock = FakeClock::new();
    let start = clock.now();
    let store = MemoryStore::with_clock("foo/bar", clock.shared());
    // 0: healthy; 1: the next update is applied at once but answered 7 s later; 2: everything
    // fails.
    let phase = Arc::new(Mutex::new(0));
    store.set_faults(Some(Arc::new({
        let phase = phase.clone();
        move |_: &str, op: Operation| {
            let mut phase = phase.lock();
            match (*phase, op) {
                (0, _) => Fault::none(),
                (1, Operation::Update) => {
                    *phase = 2;
                    Fault::none().response_delay(Duration::from_secs(7))
                }
                _ => Fault::fail(),
            }
        }
    })));
    let stopped_at = Arc::new(Mutex::new(None));
    let le = LeaderElector::builder(store.lock("a"))
        .clock(clock.shared())
        .on_started_leading(|token| async move { token.cancelled().await })
        .on_stopped_leading({
            let (clock, stopped_at) = (clock.clone(), stopped_at.clone());
            move || *stopped_at.lock() = Some(clock.now())
        })
        .build()
        .unwrap();
    let mut pool = LocalPool::new();
    let cancel = CancellationToken::new();
    pool.spawner()
        .spawn_local({
            let le = le.clone();
            async move { le.run(cancel).await.unwrap() }
        })
        .unwrap();
    pool.run_until_stalled(); // acquired at 0 and renewed at once
    assert!(le.is_leader());
    *phase.lock() = 1;
    // The renewal at 2 s is applied at once but answered at 9 s; everything after fails.
    // client-go would start its next round at 11 s and lead until 21 s, while others may take
    // over from 2 s + 15 s.
    while stopped_at.lock().is_none() {
        clock.step_to_next_deadline().unwrap();
        pool.run_until_stalled();
    }
    let stopped = stopped_at.lock().unwrap() - start;
    assert_eq!(
        stopped,
        Duration::from_secs(12),
        "2 s attempt start + 10 s deadline"
    );
}
