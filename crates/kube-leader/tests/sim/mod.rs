//! A deterministic simulation of N candidates sharing one in-memory lock on one fake clock.
//!
//! Every candidate's `run` future is a task of a single-threaded `LocalPool`. The pool runs
//! until every task is idle (the state of the current instant is then settled), the invariants
//! are checked, and the clock jumps to the next timer or scheduled harness action. A paused
//! candidate's task is not polled (its timers fire but it does not see them until it resumes);
//! a crashed candidate's future is dropped (as a killed process, it does nothing more).

#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_executor::LocalPool;
use futures_util::task::LocalSpawnExt as _;
use kube_flowcontrol::{Clock, FakeClock};
use kube_leader::{
    CancellationToken, Fault, LeaderElector, MemoryLock, MemoryStore, Operation, WriteEvent,
};
use parking_lot::Mutex;

/// Control of one candidate's task: pause, resume, kill.
#[derive(Default)]
pub struct Ctl {
    paused: Cell<bool>,
    killed: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Ctl {
    fn wake(&self) {
        if let Some(w) = self.waker.borrow_mut().take() {
            w.wake();
        }
    }
}

struct Controlled<F> {
    inner: Option<Pin<Box<F>>>,
    ctl: Rc<Ctl>,
}

impl<F: Future<Output = ()>> Future for Controlled<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        *self.ctl.waker.borrow_mut() = Some(cx.waker().clone());
        if self.ctl.killed.get() {
            self.inner = None; // drop: the elector's guard ends the leading section
            return Poll::Ready(());
        }
        if self.ctl.paused.get() {
            return Poll::Pending;
        }
        match self.inner.as_mut() {
            None => Poll::Ready(()),
            Some(inner) => inner.as_mut().poll(cx),
        }
    }
}

/// Who is inside a leading section, and what went wrong.
#[derive(Default)]
pub struct Tracker {
    /// Candidates between `on_started_leading` and `on_stopped_leading`.
    pub inside: HashMap<String, Instant>,
    /// Leading sections started.
    pub sections: u64,
    /// Safety violations found (two active leaders at once).
    pub violations: Vec<String>,
    /// The last candidate to start leading, and when.
    pub last_leader: Option<(String, Instant)>,
    /// The last write applied by each identity.
    pub last_write: HashMap<String, Instant>,
    /// Gaps between the previous leader's last write and the next start of leading.
    pub gaps: Vec<Gap>,
}

/// One failover: the previous leader's last applied write, and the next start of leading.
#[derive(Debug, Clone)]
pub struct Gap {
    /// The previous leader.
    pub prev: String,
    /// Its last applied write.
    pub from: Instant,
    /// When the next section started.
    pub at: Instant,
}

impl Gap {
    /// The failover time.
    pub fn gap(&self) -> Duration {
        self.at.saturating_duration_since(self.from)
    }
}

/// An interval in which a candidate was disturbed (paused, crashed, faulty requests).
#[derive(Debug, Clone, Copy)]
struct Disturbance {
    from: Instant,
    to: Instant,
}

/// Per-candidate fault windows, consulted by the store's injector.
#[derive(Debug, Default, Clone)]
pub struct FaultWindows {
    pub outage_until: Option<Instant>,
    pub slow_until: Option<Instant>,
    pub slow_max: Duration,
    pub lossy_until: Option<Instant>,
}

/// Shared state of the fault injector.
pub struct Faults {
    pub rng: fastrand::Rng,
    pub windows: HashMap<String, FaultWindows>,
    /// Probability that any request gets a random fault.
    pub noise: f64,
    disturbances: HashMap<String, Vec<Disturbance>>,
}

impl Faults {
    fn disturb(&mut self, id: &str, from: Instant, to: Instant) {
        self.disturbances
            .entry(id.to_string())
            .or_default()
            .push(Disturbance { from, to });
    }

    fn decide(&mut self, id: &str, op: Operation, now: Instant) -> Fault {
        let w = self.windows.get(id).cloned().unwrap_or_default();
        let active = |until: Option<Instant>| until.is_some_and(|u| now < u);
        let fault = if active(w.outage_until) {
            Fault::fail().request_delay(self.delay(Duration::from_secs(1)))
        } else if active(w.lossy_until) && op != Operation::Get && self.rng.bool() {
            Fault::lose_response()
        } else if active(w.slow_until) {
            let (a, b) = (self.delay(w.slow_max / 4), self.delay(w.slow_max));
            Fault::none().request_delay(a).response_delay(b)
        } else if self.rng.f64() < self.noise {
            match self.rng.u8(0..4) {
                0 => Fault::fail(),
                1 => Fault::lose_response(),
                2 => Fault::none().response_delay(self.delay(Duration::from_secs(9))),
                _ => Fault::none().request_delay(self.delay(Duration::from_secs(5))),
            }
        } else {
            Fault::none()
        };
        if fault != Fault::none() {
            let end = now + fault.request_delay + fault.response_delay;
            self.disturb(id, now, end);
        }
        fault
    }

    fn delay(&mut self, max: Duration) -> Duration {
        Duration::from_millis(self.rng.u64(0..=max.as_millis() as u64))
    }
}

/// One candidate.
pub struct Candidate {
    pub id: String,
    pub elector: LeaderElector<MemoryLock>,
    ctl: Rc<Ctl>,
    cancel: CancellationToken,
    pub alive: bool,
    pub paused_until: Option<Instant>,
    pub restart_at: Option<Instant>,
    pub resumed_at: Option<Instant>,
}

/// The simulation.
pub struct Sim {
    pub clock: FakeClock,
    pub start: Instant,
    pub store: MemoryStore,
    pub pool: LocalPool,
    pub candidates: Vec<Candidate>,
    pub tracker: Arc<Mutex<Tracker>>,
    pub faults: Arc<Mutex<Faults>>,
    pub lease: Duration,
    pub renew: Duration,
    pub retry: Duration,
}

impl Sim {
    /// `n` candidates with client-go's default timings; `seed` seeds the faults and the
    /// electors' jitter (fastrand's thread-local generator).
    pub fn new(n: usize, seed: u64, noise: f64) -> Sim {
        fastrand::seed(seed);
        let clock = FakeClock::new();
        let store = MemoryStore::with_clock("sim/lock", clock.shared());
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        store.set_write_observer(Some(Arc::new({
            let tracker = tracker.clone();
            move |w: &WriteEvent| {
                tracker.lock().last_write.insert(w.identity.clone(), w.at);
            }
        })));
        let faults = Arc::new(Mutex::new(Faults {
            rng: fastrand::Rng::with_seed(seed ^ 0x5eed),
            windows: HashMap::new(),
            noise,
            disturbances: HashMap::new(),
        }));
        store.set_faults(Some(Arc::new({
            let (faults, clock) = (faults.clone(), clock.clone());
            move |id: &str, op: Operation| faults.lock().decide(id, op, clock.now())
        })));
        let mut sim = Sim {
            start: clock.now(),
            clock,
            store,
            pool: LocalPool::new(),
            candidates: Vec::new(),
            tracker,
            faults,
            lease: Duration::from_secs(15),
            renew: Duration::from_secs(10),
            retry: Duration::from_secs(2),
        };
        for i in 0..n {
            let id = format!("c{i}");
            let c = sim.spawn(&id);
            sim.candidates.push(c);
        }
        sim
    }

    fn spawn(&mut self, id: &str) -> Candidate {
        let tracker = self.tracker.clone();
        let clock = self.clock.clone();
        let elector = LeaderElector::builder(self.store.lock(id))
            .lease_duration(self.lease)
            .renew_deadline(self.renew)
            .retry_period(self.retry)
            .release_on_cancel(true)
            .clock(self.clock.shared())
            .on_started_leading({
                let (tracker, clock, id) = (tracker.clone(), clock.clone(), id.to_string());
                move |token: CancellationToken| {
                    let now = clock.now();
                    let mut t = tracker.lock();
                    t.sections += 1;
                    if let Some(since) = t.inside.get(&id).copied() {
                        t.violations
                            .push(format!("{id} started leading twice (since {since:?})"));
                    }
                    t.inside.insert(id.clone(), now);
                    // The start of a section is a failover from the previous leader.
                    if let Some((prev, _)) = t.last_leader.clone() {
                        let last_write = t.last_write.get(&prev).copied();
                        if let Some(from) = last_write {
                            t.gaps.push(Gap {
                                prev,
                                from,
                                at: now,
                            });
                        }
                    }
                    t.last_leader = Some((id.clone(), now));
                    async move { token.cancelled().await }
                }
            })
            .on_stopped_leading({
                let (tracker, id) = (tracker.clone(), id.to_string());
                move || {
                    tracker.lock().inside.remove(&id);
                }
            })
            .build()
            .expect("valid configuration");
        let ctl = Rc::new(Ctl::default());
        let cancel = CancellationToken::new();
        let run = {
            let (elector, cancel) = (elector.clone(), cancel.clone());
            async move {
                elector.run(cancel).await.expect("not running twice");
            }
        };
        self.pool
            .spawner()
            .spawn_local(Controlled {
                inner: Some(Box::pin(run)),
                ctl: ctl.clone(),
            })
            .expect("spawn");
        Candidate {
            id: id.to_string(),
            elector,
            ctl,
            cancel,
            alive: true,
            paused_until: None,
            restart_at: None,
            resumed_at: None,
        }
    }

    pub fn now(&self) -> Instant {
        self.clock.now()
    }

    /// Runs every task until idle, then checks that at most one running candidate leads.
    pub fn settle(&mut self) {
        self.pool.run_until_stalled();
        let now = self.now();
        let active: Vec<String> = {
            let t = self.tracker.lock();
            self.candidates
                .iter()
                .filter(|c| t.inside.contains_key(&c.id) && !c.ctl.paused.get())
                .map(|c| c.id.clone())
                .collect()
        };
        if active.len() > 1 {
            let at = now - self.start;
            self.tracker
                .lock()
                .violations
                .push(format!("at {at:?}: {active:?} lead at once"));
        }
    }

    /// Moves the clock to the next timer or `limit`, whichever is first, and applies due
    /// resumes and restarts.
    pub fn advance(&mut self, limit: Instant) {
        let mut next = limit;
        if let Some(d) = self.clock.next_deadline() {
            next = next.min(d);
        }
        for c in &self.candidates {
            for t in [c.paused_until, c.restart_at].into_iter().flatten() {
                next = next.min(t);
            }
        }
        if next > self.now() {
            self.clock.set_time(next);
        }
        let now = self.now();
        for i in 0..self.candidates.len() {
            if self.candidates[i].paused_until.is_some_and(|t| t <= now) {
                self.resume(i);
            }
            if self.candidates[i].restart_at.is_some_and(|t| t <= now) {
                self.candidates[i].restart_at = None;
                let id = self.candidates[i].id.clone();
                self.candidates[i] = self.spawn(&id);
            }
        }
    }

    /// Runs until `until`, settling and checking at every instant.
    pub fn run_until(&mut self, until: Instant) {
        loop {
            self.settle();
            if self.now() >= until {
                return;
            }
            self.advance(until);
        }
    }

    pub fn pause(&mut self, i: usize, length: Duration) {
        let now = self.now();
        let c = &mut self.candidates[i];
        if !c.alive || c.paused_until.is_some() {
            return;
        }
        c.ctl.paused.set(true);
        c.paused_until = Some(now + length);
        self.faults.lock().disturb(&c.id, now, now + length);
    }

    fn resume(&mut self, i: usize) {
        let now = self.now();
        let c = &mut self.candidates[i];
        c.paused_until = None;
        c.resumed_at = Some(now);
        c.ctl.paused.set(false);
        c.ctl.wake();
    }

    /// Kills candidate `i`; it restarts (a fresh elector, same identity) after `downtime`.
    pub fn crash(&mut self, i: usize, downtime: Duration) {
        let now = self.now();
        let c = &mut self.candidates[i];
        if !c.alive || c.restart_at.is_some() {
            return;
        }
        c.ctl.killed.set(true);
        c.ctl.wake();
        c.paused_until = None;
        c.restart_at = Some(now + downtime);
        self.faults.lock().disturb(&c.id, now, now + downtime);
    }

    /// Cancels candidate `i`'s run (it releases the lock if it holds it); restarts it after
    /// `downtime`.
    pub fn stop(&mut self, i: usize, downtime: Duration) {
        let now = self.now();
        let c = &mut self.candidates[i];
        if c.restart_at.is_some() || c.paused_until.is_some() {
            return;
        }
        c.cancel.cancel();
        c.restart_at = Some(now + downtime);
        self.faults.lock().disturb(&c.id, now, now + downtime);
    }

    /// Sets a fault window for candidate `i`.
    pub fn window(&mut self, i: usize, f: impl FnOnce(&mut FaultWindows), until: Instant) {
        let now = self.now();
        let id = self.candidates[i].id.clone();
        let mut faults = self.faults.lock();
        f(faults.windows.entry(id.clone()).or_default());
        faults.disturb(&id, now, until + Duration::from_secs(10));
    }

    /// The running leader, if any.
    pub fn leader(&self) -> Option<usize> {
        let t = self.tracker.lock();
        self.candidates
            .iter()
            .position(|c| t.inside.contains_key(&c.id) && !c.ctl.paused.get())
    }

    /// Whether any candidate other than `except` was disturbed during `[from, to]`.
    pub fn others_disturbed(&self, except: &str, from: Instant, to: Instant) -> bool {
        let faults = self.faults.lock();
        faults
            .disturbances
            .iter()
            .filter(|(id, _)| id.as_str() != except)
            .flat_map(|(_, ds)| ds.iter())
            .any(|d| d.from <= to && d.to >= from)
    }

    pub fn requests(&self, id: &str) -> u64 {
        self.store.operations(id).total()
    }
}
