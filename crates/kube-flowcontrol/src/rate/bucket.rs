//! The bucket arithmetic of `golang.org/x/time/rate`, on a plain value.
//!
//! [`BucketState`] is the reference: every operation of the [`Limiter`](super::Limiter) is
//! defined by what these methods do to one state, one call at a time. The lock-free fast path
//! in [`atomic`](super::atomic) computes the same numbers with the same functions
//! ([`BucketState::plan`]), and the tests check that the two never disagree.

use super::Limit;

/// The state of a bucket. Times are nanoseconds since the limiter's epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct BucketState {
    pub(super) limit: Limit,
    pub(super) burst: usize,
    pub(super) tokens: f64,
    /// When `tokens` was last updated; `i64::MIN` stands for Go's zero time (a full bucket).
    pub(super) last: i64,
    /// The latest time of a rate-limited event (past or future).
    pub(super) last_event: i64,
}

/// What a reservation took (Go's `Reservation` without its limiter).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct RawReservation {
    pub(super) ok: bool,
    pub(super) tokens: usize,
    pub(super) time_to_act: i64,
    pub(super) limit: Limit,
}

impl RawReservation {
    pub(super) const fn refused(limit: Limit) -> RawReservation {
        RawReservation {
            ok: false,
            tokens: 0,
            time_to_act: 0,
            limit,
        }
    }
}

/// The outcome of the general (finite, non-zero limit) case of a reservation, before it is
/// written back.
#[derive(Debug, Clone, Copy)]
pub(super) struct Plan {
    /// Tokens left once the reservation is made (negative while tokens are owed).
    pub(super) tokens: f64,
    /// Nanoseconds until the reserved tokens exist.
    pub(super) wait: i64,
    /// Whether the reservation is made.
    pub(super) ok: bool,
}

impl BucketState {
    /// A full bucket that has never been used.
    pub(super) fn new(limit: Limit, burst: usize) -> BucketState {
        BucketState {
            limit,
            burst,
            // Full from the start (current x/time/rate does the same; the older version reached
            // it through a saturated elapsed time, short of full for tiny limits).
            tokens: burst as f64,
            last: i64::MIN,
            last_event: i64::MIN,
        }
    }

    /// Go's `advance`: the tokens the bucket holds at `now`, without changing the state.
    #[inline]
    pub(super) fn advance(&self, now: i64) -> f64 {
        let last = self.last.min(now);
        let elapsed = now.saturating_sub(last);
        let tokens = self.tokens + self.limit.tokens_from_duration(elapsed);
        let burst = self.burst as f64;
        if tokens > burst { burst } else { tokens }
    }

    /// The general case of Go's `reserveN` (a finite, non-zero limit), without writing it back.
    #[inline]
    pub(super) fn plan(&self, now: i64, n: usize, max_wait: i64) -> Plan {
        let tokens = self.advance(now) - n as f64;
        let wait = if tokens < 0.0 {
            self.limit.duration_from_tokens(-tokens)
        } else {
            0
        };
        Plan {
            tokens,
            wait,
            ok: n <= self.burst && wait <= max_wait,
        }
    }

    /// The `last_event` a successful reservation leaves behind: the time its tokens exist.
    ///
    /// Right after any successful reservation `last_event` equals this, which lets the atomic
    /// bucket leave it out of its packed word until some other operation sets it apart.
    #[inline]
    pub(super) fn implied_last_event(tokens: f64, last: i64, limit: Limit) -> i64 {
        if tokens < 0.0 {
            last.saturating_add(limit.duration_from_tokens(-tokens))
        } else {
            last
        }
    }

    /// Go's `reserveN`: `max_wait` is the longest wait (in nanoseconds) the caller accepts.
    pub(super) fn reserve(&mut self, now: i64, n: usize, max_wait: i64) -> RawReservation {
        if self.limit.is_inf() {
            // Go leaves the reservation's limit at zero here.
            return RawReservation {
                ok: true,
                tokens: n,
                time_to_act: now,
                limit: Limit(0.0),
            };
        }
        if self.limit.as_f64() == 0.0 {
            // Go's special case: with no refill the burst itself is spent.
            let ok = self.burst >= n;
            if ok {
                self.burst -= n;
            }
            return RawReservation {
                ok,
                tokens: self.burst,
                time_to_act: now,
                limit: Limit(0.0),
            };
        }
        let plan = self.plan(now, n, max_wait);
        if plan.ok {
            let time_to_act = now.saturating_add(plan.wait);
            self.last = now;
            self.tokens = plan.tokens;
            self.last_event = time_to_act;
            RawReservation {
                ok: true,
                tokens: n,
                time_to_act,
                limit: self.limit,
            }
        } else {
            // As in the Go version this crate follows: a refused request still lets the bucket
            // follow a clock that went backwards.
            self.last = self.last.min(now);
            RawReservation::refused(self.limit)
        }
    }

    /// Go's `setLimitAt`: tokens accumulated so far are kept.
    pub(super) fn set_limit(&mut self, now: i64, limit: Limit) {
        let tokens = self.advance(now);
        self.last = now;
        self.tokens = tokens;
        self.limit = limit;
    }

    /// Go's `setBurstAt`.
    pub(super) fn set_burst(&mut self, now: i64, burst: usize) {
        let tokens = self.advance(now);
        self.last = now;
        self.tokens = tokens;
        self.burst = burst;
    }

    /// Go's `Reservation.CancelAt`: give back, as of `now`, the tokens of `raw` that no later
    /// reservation has come to depend on.
    pub(super) fn cancel(&mut self, now: i64, raw: &RawReservation) {
        if !raw.ok || self.limit.is_inf() || raw.tokens == 0 || raw.time_to_act < now {
            return;
        }
        // Tokens reserved after this one (between time_to_act and last_event) stay taken.
        let reserved_after = raw
            .limit
            .tokens_from_duration(self.last_event.saturating_sub(raw.time_to_act));
        let restore = raw.tokens as f64 - reserved_after;
        if restore <= 0.0 {
            return;
        }
        let burst = self.burst as f64;
        let tokens = (self.advance(now) + restore).min(burst);
        self.last = now;
        self.tokens = tokens;
        if raw.time_to_act == self.last_event {
            let previous = raw
                .time_to_act
                .saturating_add(raw.limit.duration_from_tokens(-(raw.tokens as f64)));
            if previous >= now {
                self.last_event = previous;
            }
        }
    }
}
