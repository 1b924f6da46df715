//! Test helpers: a clock that steps at every reading (`testclocks.SimpleIntervalClock`).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use kube_flowcontrol::SharedClock;
use kube_flowcontrol::clock::{Clock, Sleep};
use parking_lot::Mutex;

/// Every [`Clock::now`] moves the time forward by the interval first, as client-go's
/// `SimpleIntervalClock`; [`Clock::wall_now`] reads the same time without moving it.
#[derive(Debug, Clone)]
pub(crate) struct IntervalClock {
    base: Instant,
    wall_base: SystemTime,
    interval: Duration,
    offset: Arc<Mutex<Duration>>,
}

impl IntervalClock {
    pub(crate) fn new(interval: Duration) -> IntervalClock {
        IntervalClock {
            base: Instant::now(),
            wall_base: SystemTime::now(),
            interval,
            offset: Arc::new(Mutex::new(Duration::ZERO)),
        }
    }

    pub(crate) fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }

    /// Moves the time forward by the interval and returns the wall time.
    pub(crate) fn step_wall(&self) -> SystemTime {
        let mut offset = self.offset.lock();
        *offset += self.interval;
        self.wall_base + *offset
    }
}

impl Clock for IntervalClock {
    fn now(&self) -> Instant {
        let mut offset = self.offset.lock();
        *offset += self.interval;
        self.base + *offset
    }

    fn wall_now(&self) -> SystemTime {
        self.wall_base + *self.offset.lock()
    }

    fn sleep_until(&self, deadline: Instant) -> Sleep {
        Sleep::from_future(deadline, std::future::ready(()))
    }

    fn block_sleep(&self, _duration: Duration) {}
}
