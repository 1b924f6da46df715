//! Seeded random fault schedules: the faults a production API server throws at its clients
//! (watches cut by a load balancer, 410 after a compaction, 429 storms from priority and
//! fairness, 5xx, latency, responses stalled mid-body, a listener bouncing, an apiserver
//! restarting with its data kept but its watch caches lost), spread over time.
//!
//! A [`FaultSchedule`] is a pure function of its seed and [`ScheduleOptions`]: a failure seen
//! with seed `S` replays with the same faults at the same offsets (which watches a "cut some"
//! fault picks among those open, and which requests meet an armed failure, depend on the
//! clients' timing). [`TestServer::run_fault_schedule`] applies one and logs every fault with
//! the seed through `tracing`.
//!
//! ```
//! use std::time::Duration;
//! use kube_testserver::schedule::{FaultSchedule, ScheduleOptions};
//!
//! let options = ScheduleOptions::new(Duration::from_secs(30)).mean_interval(Duration::from_secs(2));
//! let schedule = FaultSchedule::random(7, &options);
//! assert_eq!(schedule, FaultSchedule::random(7, &options)); // the seed decides everything
//! assert!(schedule.faults().iter().all(|f| f.at < Duration::from_secs(30)));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::TestServer;
use crate::faults::StallEnd;

/// The kinds of fault a schedule draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FaultKind {
    /// Every open watch stream ends.
    CutAllWatches,
    /// A random share of the open watch streams ends.
    CutSomeWatches,
    /// etcd compacts to the current revision: lists, continue tokens and watches from
    /// older resourceVersions get 410 Gone.
    Compact,
    /// The next requests get 429 Too Many Requests with `Retry-After: 1`.
    TooManyRequests,
    /// The next requests get 500, 503 (with `Retry-After: 1`) or 504.
    ServerError,
    /// Every request is delayed for a while.
    Latency,
    /// The next responses pause mid-body, then go on or are cut.
    Stall,
    /// The listener stops (connections dropped and refused) and comes back on the same port.
    RestartListener,
    /// The server restarts with its data kept: connections dropped and refused for a while,
    /// watch caches lost (410 for watches from before the restart).
    RestartServer,
}

impl FaultKind {
    /// Every kind.
    pub const ALL: [FaultKind; 9] = [
        FaultKind::CutAllWatches,
        FaultKind::CutSomeWatches,
        FaultKind::Compact,
        FaultKind::TooManyRequests,
        FaultKind::ServerError,
        FaultKind::Latency,
        FaultKind::Stall,
        FaultKind::RestartListener,
        FaultKind::RestartServer,
    ];

    /// The kind's name (`cut-all-watches`, `compact`, `429`, ...), as [`FromStr`] reads it.
    pub fn as_str(self) -> &'static str {
        match self {
            FaultKind::CutAllWatches => "cut-all-watches",
            FaultKind::CutSomeWatches => "cut-some-watches",
            FaultKind::Compact => "compact",
            FaultKind::TooManyRequests => "429",
            FaultKind::ServerError => "5xx",
            FaultKind::Latency => "latency",
            FaultKind::Stall => "stall",
            FaultKind::RestartListener => "restart-listener",
            FaultKind::RestartServer => "restart-server",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fault kind name that is not one of [`FaultKind::ALL`]'s.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "unknown fault kind {0:?} (one of cut-all-watches, cut-some-watches, compact, 429, 5xx, latency, stall, restart-listener, restart-server)"
)]
pub struct UnknownFaultKind(pub String);

impl FromStr for FaultKind {
    type Err = UnknownFaultKind;

    fn from_str(text: &str) -> Result<FaultKind, UnknownFaultKind> {
        FaultKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == text)
            .ok_or_else(|| UnknownFaultKind(text.to_string()))
    }
}

/// One fault with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Ends every open watch stream.
    CutAllWatches,
    /// Ends each open watch stream with this probability, in percent.
    CutSomeWatches {
        /// The share of watches cut, in percent.
        percent: u8,
    },
    /// Compacts the history to the current revision.
    Compact,
    /// Answers the next `count` requests with `status` (429, 500, 503 or 504).
    FailRequests {
        /// The HTTP status.
        status: u16,
        /// How many requests.
        count: usize,
    },
    /// Delays every request by `delay` for `lasting`.
    Latency {
        /// The added delay.
        delay: Duration,
        /// How long the delay stays.
        lasting: Duration,
    },
    /// Pauses the next `count` responses mid-body for `pause`, then resumes or cuts them.
    Stall {
        /// How many responses.
        count: usize,
        /// The pause.
        pause: Duration,
        /// What follows the pause.
        end: StallEnd,
    },
    /// Stops the listener for `down`, then listens again on the same port.
    RestartListener {
        /// How long connections are refused.
        down: Duration,
    },
    /// Restarts the server (data kept, watch caches lost), down for `down`.
    RestartServer {
        /// How long connections are refused.
        down: Duration,
    },
}

impl Fault {
    /// The fault's kind.
    pub fn kind(&self) -> FaultKind {
        match self {
            Fault::CutAllWatches => FaultKind::CutAllWatches,
            Fault::CutSomeWatches { .. } => FaultKind::CutSomeWatches,
            Fault::Compact => FaultKind::Compact,
            Fault::FailRequests { status: 429, .. } => FaultKind::TooManyRequests,
            Fault::FailRequests { .. } => FaultKind::ServerError,
            Fault::Latency { .. } => FaultKind::Latency,
            Fault::Stall { .. } => FaultKind::Stall,
            Fault::RestartListener { .. } => FaultKind::RestartListener,
            Fault::RestartServer { .. } => FaultKind::RestartServer,
        }
    }

    /// How long applying the fault takes (the schedule's next fault comes after it).
    fn takes(&self) -> Duration {
        match self {
            Fault::Latency { lasting, .. } => *lasting,
            Fault::RestartListener { down } | Fault::RestartServer { down } => *down,
            _ => Duration::ZERO,
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::CutAllWatches => write!(f, "cut all watches"),
            Fault::CutSomeWatches { percent } => write!(f, "cut {percent}% of the watches"),
            Fault::Compact => write!(f, "compact"),
            Fault::FailRequests { status, count } => {
                write!(f, "answer the next {count} requests {status}")
            }
            Fault::Latency { delay, lasting } => {
                write!(f, "add {delay:?} of latency for {lasting:?}")
            }
            Fault::Stall { count, pause, end } => {
                let end = match end {
                    StallEnd::Resume => "resume",
                    StallEnd::Truncate => "truncate",
                };
                write!(
                    f,
                    "stall the next {count} responses for {pause:?}, then {end}"
                )
            }
            Fault::RestartListener { down } => write!(f, "stop the listener for {down:?}"),
            Fault::RestartServer { down } => {
                write!(f, "restart the server (data kept), down for {down:?}")
            }
        }
    }
}

/// A fault and when it comes, from the schedule's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledFault {
    /// The offset from the schedule's start.
    pub at: Duration,
    /// The fault.
    pub fault: Fault,
}

/// What a random schedule draws from.
#[derive(Debug, Clone)]
pub struct ScheduleOptions {
    duration: Duration,
    mean_interval: Duration,
    kinds: Vec<FaultKind>,
    max_down: Duration,
}

impl ScheduleOptions {
    /// Faults over `duration`, one every second on average, of every kind, down at most 2 s.
    pub fn new(duration: Duration) -> ScheduleOptions {
        ScheduleOptions {
            duration,
            mean_interval: Duration::from_secs(1),
            kinds: FaultKind::ALL.to_vec(),
            max_down: Duration::from_secs(2),
        }
    }

    /// The mean time between two faults (each gap is drawn between half and 1.5 times it).
    pub fn mean_interval(mut self, interval: Duration) -> Self {
        self.mean_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// The kinds drawn from (default: all; none gives an empty schedule).
    pub fn kinds(mut self, kinds: impl IntoIterator<Item = FaultKind>) -> Self {
        self.kinds = kinds.into_iter().collect();
        self.kinds.sort();
        self.kinds.dedup();
        self
    }

    /// The longest time a restart or listener stop keeps the server down, and the longest
    /// latency period and stall (default 2 s).
    pub fn max_down(mut self, down: Duration) -> Self {
        self.max_down = down.max(Duration::from_millis(10));
        self
    }
}

/// A timed list of faults drawn from a seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultSchedule {
    seed: u64,
    duration: Duration,
    faults: Vec<ScheduledFault>,
}

fn millis_between(rng: &mut fastrand::Rng, low: Duration, high: Duration) -> Duration {
    let (low, high) = (low.as_millis() as u64, high.as_millis() as u64);
    Duration::from_millis(rng.u64(low..=high.max(low)))
}

impl FaultSchedule {
    /// The schedule of seed `seed`: the same seed and options always give the same faults.
    pub fn random(seed: u64, options: &ScheduleOptions) -> FaultSchedule {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut faults = Vec::new();
        let mean = options.mean_interval;
        let max_down = options.max_down;
        let mut at = Duration::ZERO;
        while !options.kinds.is_empty() {
            at += millis_between(&mut rng, mean / 2, mean * 3 / 2);
            if at >= options.duration {
                break;
            }
            let kind = options.kinds[rng.usize(..options.kinds.len())];
            let fault = match kind {
                FaultKind::CutAllWatches => Fault::CutAllWatches,
                FaultKind::CutSomeWatches => Fault::CutSomeWatches {
                    percent: rng.u8(20..=80),
                },
                FaultKind::Compact => Fault::Compact,
                FaultKind::TooManyRequests => Fault::FailRequests {
                    status: 429,
                    count: rng.usize(5..=60),
                },
                FaultKind::ServerError => Fault::FailRequests {
                    status: [500, 503, 504][rng.usize(..3)],
                    count: rng.usize(1..=20),
                },
                FaultKind::Latency => Fault::Latency {
                    delay: millis_between(&mut rng, Duration::from_millis(20), max_down / 4),
                    lasting: millis_between(&mut rng, max_down / 4, max_down),
                },
                FaultKind::Stall => Fault::Stall {
                    count: rng.usize(1..=5),
                    pause: millis_between(&mut rng, Duration::from_millis(100), max_down),
                    end: if rng.bool() {
                        StallEnd::Resume
                    } else {
                        StallEnd::Truncate
                    },
                },
                FaultKind::RestartListener => Fault::RestartListener {
                    down: millis_between(&mut rng, Duration::from_millis(50), max_down),
                },
                FaultKind::RestartServer => Fault::RestartServer {
                    down: millis_between(&mut rng, Duration::from_millis(100), max_down),
                },
            };
            let takes = fault.takes();
            faults.push(ScheduledFault { at, fault });
            at += takes;
        }
        FaultSchedule {
            seed,
            duration: options.duration,
            faults,
        }
    }

    /// A schedule of the given faults (sorted by time), for tests that want exact ones.
    pub fn from_faults(seed: u64, duration: Duration, mut faults: Vec<ScheduledFault>) -> Self {
        faults.sort_by_key(|f| f.at);
        FaultSchedule {
            seed,
            duration,
            faults,
        }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// How long the schedule runs.
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// The faults, by time.
    pub fn faults(&self) -> &[ScheduledFault] {
        &self.faults
    }
}

/// What running a schedule did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FaultReport {
    /// The schedule's seed.
    pub seed: u64,
    /// Faults applied, by kind.
    pub by_kind: BTreeMap<FaultKind, u64>,
    /// Requests answered with an injected failure while the schedule ran.
    pub requests_failed: u64,
    /// Responses stalled while the schedule ran.
    pub responses_stalled: u64,
    /// Watch streams the cut faults ended.
    pub watches_cut: u64,
    /// Listener restarts that failed (the port was taken meanwhile); the schedule stops there.
    pub restart_errors: u64,
    /// Whether the schedule was cancelled before its end.
    pub cancelled: bool,
}

impl FaultReport {
    /// Every fault applied.
    pub fn total(&self) -> u64 {
        self.by_kind.values().sum()
    }
}

impl TestServer {
    /// Applies `schedule`: each fault at its offset from now, logged (`tracing`, info level)
    /// with the schedule's seed and handed to `observe` as it is applied; returns once the
    /// schedule's duration has passed (or `cancel` fires). Armed failures and stalls that no
    /// request met by then are disarmed, and the latency removed.
    pub async fn run_fault_schedule(
        &self,
        schedule: &FaultSchedule,
        cancel: &CancellationToken,
        mut observe: impl FnMut(usize, &ScheduledFault),
    ) -> FaultReport {
        let faults = self.faults();
        let start = tokio::time::Instant::now();
        let (failed_before, stalled_before) =
            (faults.failures_injected(), faults.stalls_injected());
        let mut report = FaultReport {
            seed: schedule.seed,
            ..FaultReport::default()
        };
        let mut rng = fastrand::Rng::with_seed(schedule.seed ^ 0x5eed_c4a0_5eed_c4a0);
        for (step, scheduled) in schedule.faults.iter().enumerate() {
            tokio::select! {
                _ = cancel.cancelled() => {
                    report.cancelled = true;
                    break;
                }
                _ = tokio::time::sleep_until(start + scheduled.at) => {}
            }
            tracing::info!(
                seed = schedule.seed,
                step,
                at_ms = scheduled.at.as_millis() as u64,
                kind = scheduled.fault.kind().as_str(),
                fault = %scheduled.fault,
                "fault injected"
            );
            observe(step, scheduled);
            *report.by_kind.entry(scheduled.fault.kind()).or_default() += 1;
            let applied = match &scheduled.fault {
                Fault::CutAllWatches => {
                    report.watches_cut += faults.open_watches() as u64;
                    self.close_all_watches();
                    Ok(())
                }
                Fault::CutSomeWatches { percent } => {
                    let cut = faults.cut_watches(|| rng.u8(0..100) < *percent);
                    report.watches_cut += cut as u64;
                    Ok(())
                }
                Fault::Compact => {
                    self.compact();
                    Ok(())
                }
                Fault::FailRequests { status, count } => {
                    faults.fail_next(None, "/", *status, *count);
                    Ok(())
                }
                Fault::Latency { delay, lasting } => {
                    faults.set_latency(Some(*delay));
                    tokio::select! {
                        _ = cancel.cancelled() => {}
                        _ = tokio::time::sleep(*lasting) => {}
                    }
                    faults.set_latency(None);
                    Ok(())
                }
                Fault::Stall { count, pause, end } => {
                    faults.stall_next(None, "/", *pause, *end, *count);
                    Ok(())
                }
                Fault::RestartListener { down } => self.bounce_listener(*down).await,
                Fault::RestartServer { down } => self.restart(*down).await,
            };
            if let Err(error) = applied {
                tracing::error!(seed = schedule.seed, step, %error, "fault schedule stopped: the listener could not come back");
                report.restart_errors += 1;
                break;
            }
        }
        if !report.cancelled && report.restart_errors == 0 {
            tokio::select! {
                _ = cancel.cancelled() => report.cancelled = true,
                _ = tokio::time::sleep_until(start + schedule.duration) => {}
            }
        }
        faults.clear();
        report.requests_failed = faults.failures_injected() - failed_before;
        report.responses_stalled = faults.stalls_injected() - stalled_before;
        tracing::info!(
            seed = schedule.seed,
            faults = report.total(),
            requests_failed = report.requests_failed,
            responses_stalled = report.responses_stalled,
            watches_cut = report.watches_cut,
            "fault schedule done"
        );
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_decides_the_schedule() {
        let options = ScheduleOptions::new(Duration::from_secs(120));
        let a = FaultSchedule::random(1, &options);
        assert_eq!(a, FaultSchedule::random(1, &options));
        assert_ne!(a, FaultSchedule::random(2, &options));
        // About one fault a second, every kind present over two minutes.
        assert!(a.faults().len() > 40, "{}", a.faults().len());
        for kind in FaultKind::ALL {
            assert!(a.faults().iter().any(|f| f.fault.kind() == kind), "{kind}");
        }
        // Faults that take time do not overlap the next one.
        for pair in a.faults().windows(2) {
            assert!(pair[0].at + pair[0].fault.takes() <= pair[1].at);
        }
    }

    #[test]
    fn kinds_restrict_the_draw() {
        let options = ScheduleOptions::new(Duration::from_secs(30))
            .kinds([FaultKind::Compact, FaultKind::TooManyRequests]);
        let schedule = FaultSchedule::random(9, &options);
        assert!(!schedule.faults().is_empty());
        assert!(schedule.faults().iter().all(|f| matches!(
            f.fault,
            Fault::Compact | Fault::FailRequests { status: 429, .. }
        )));
        let none = ScheduleOptions::new(Duration::from_secs(30)).kinds([]);
        assert!(FaultSchedule::random(9, &none).faults().is_empty());
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in FaultKind::ALL {
            assert_eq!(kind.as_str().parse::<FaultKind>().unwrap(), kind);
        }
        assert!("flood".parse::<FaultKind>().is_err());
    }
}
