//! The bucket behind [`Limiter`](super::Limiter): lock-free for the calls that matter, exact
//! for all of them.
//!
//! # Why this design
//!
//! A throttle is shared by every task of a client, so `allow()` is called from several cores at
//! once. With the bucket behind a mutex, two cores calling `allow()` in a loop spent most of
//! their time handing the lock over: 155-180 ns per call from 2 or 8 tasks against 47 ns from
//! one, where Go's `x/time/rate`, also a mutex, took 83-98 ns. Sharding the bucket per core would remove the contention but not keep Go's
//! results (a shard runs dry while another has tokens, or the shards must be summed on every
//! call), and a generic cell rate algorithm on one integer would change the float arithmetic
//! whose results the ported `x/time/rate` tests pin down. What is left is one compare-and-swap
//! on a packed state that holds exactly Go's numbers:
//!
//! * the 128-bit word holds the tokens (the `f64`, bit for bit) and a 64-bit tag: when the
//!   tokens were last updated (48 bits of nanoseconds, relative to a base that moves when
//!   needed), a 15-bit generation and one bit saying whether Go's `lastEvent` is the one a
//!   successful reservation leaves behind (then it is computed from the tokens, the time and
//!   the limit instead of being stored);
//! * a reservation (`allow`, `reserve`, the first step of `wait`) reads the word and the limit,
//!   burst and base next to it, computes with the very functions of [`BucketState`] and swaps
//!   the word in one `compare_exchange`; after a failed swap it spins 1, 2, 4 ... 64 times before
//!   retrying, so the core that won keeps the cache line for a few reservations instead of the
//!   two cores taking it from each other on every call (without the backoff the lock-free
//!   bucket was no faster than the mutex: 171-185 ns from 2 tasks; with it, 64-67 ns); a
//!   refusal writes nothing;
//! * everything rarer (`set_limit`, `set_burst`, `cancel`, a zero limit, whose reservations
//!   spend the burst, a clock that went backwards, a time more than 78 hours from the base)
//!   takes a mutex, marks the word locked, rebuilds the full [`BucketState`], runs the
//!   reference method on it and publishes the new word with the next generation. A fast call
//!   that finds the word locked waits on that mutex (no spinning).
//!
//! The generation makes a fast call that read the limit, burst or base of one state fail its
//! swap if a slow operation changed them meanwhile. It wraps after 32,768 slow operations: a
//! fast call would have to stall between its read and its swap while exactly a multiple of
//! that many slow operations ran and left the word bit for bit as it was, the usual bound of a
//! tagged compare-and-swap.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use parking_lot::Mutex;
use portable_atomic::AtomicU128;

use super::Limit;
use super::bucket::{BucketState, RawReservation};

/// Bits of the tag that hold the time of the last update.
const OFF_BITS: u32 = 48;
const OFF_MASK: u64 = (1 << OFF_BITS) - 1;
/// `off` of Go's zero time (`last == i64::MIN`).
const OFF_ZERO_TIME: u64 = 0;
/// `off` of a word a slow operation holds; never a time.
const OFF_LOCKED: u64 = OFF_MASK;
/// Where a base is put below the time it must represent, so the clock may also step back.
const REBASE_MARGIN: i64 = 1 << 46;
const GEN_MASK: u64 = 0x7fff << OFF_BITS;
const GEN_ONE: u64 = 1 << OFF_BITS;
/// `last_event` is [`BucketState::implied_last_event`] of the word.
const IMPLIED: u64 = 1 << 63;

/// After the n-th failed swap in a row, a reservation spins 2^n times (n at most this) before
/// trying again.
const MAX_BACKOFF: u32 = 6;

/// The word a slow operation leaves while it holds the bucket.
const LOCKED_WORD: u128 = (OFF_LOCKED as u128) << 64;

#[inline]
fn pack(tokens: f64, tag: u64) -> u128 {
    (u128::from(tag) << 64) | u128::from(tokens.to_bits())
}

#[inline]
fn tokens_of(word: u128) -> f64 {
    f64::from_bits(word as u64)
}

#[inline]
fn tag_of(word: u128) -> u64 {
    (word >> 64) as u64
}

/// The tag offset of `last` over `base`, if it fits.
#[inline]
fn encode_last(last: i64, base: i64) -> Option<u64> {
    if last == i64::MIN {
        return Some(OFF_ZERO_TIME);
    }
    let off = last.checked_sub(base)?.checked_add(1)?;
    (1..OFF_LOCKED as i64).contains(&off).then_some(off as u64)
}

#[inline]
fn decode_last(off: u64, base: i64) -> i64 {
    if off == OFF_ZERO_TIME {
        i64::MIN
    } else {
        // Encoded from an i64 over this base, so it is back in range.
        base.wrapping_add(off as i64 - 1)
    }
}

/// A base under which `last` fits, and its offset.
fn rebase(last: i64) -> (i64, u64) {
    if last == i64::MIN {
        return (0, OFF_ZERO_TIME);
    }
    // last > i64::MIN: either base = last - margin and off = margin + 1, or base = i64::MIN and
    // 1 <= off <= margin.
    let base = last.saturating_sub(REBASE_MARGIN);
    let off = (last.wrapping_sub(base) as u64) + 1;
    (base, off)
}

/// Limit, burst and base: written only by a slow operation while the word is locked.
#[derive(Debug)]
struct Config {
    limit: AtomicU64,
    burst: AtomicU64,
    base: AtomicI64,
}

/// What only slow operations touch.
#[derive(Debug)]
struct Slow {
    /// Go's `lastEvent` while the word does not imply it.
    last_event: i64,
}

/// A token bucket whose reservations are one compare-and-swap (see the module docs).
#[derive(Debug)]
pub(super) struct AtomicBucket {
    word: AtomicU128,
    config: Config,
    slow: Mutex<Slow>,
}

impl AtomicBucket {
    pub(super) fn new(limit: Limit, burst: usize) -> AtomicBucket {
        let state = BucketState::new(limit, burst);
        // A full bucket: tokens >= 0 at the zero time, so the implied last event is the zero
        // time too, which is Go's initial lastEvent.
        AtomicBucket {
            word: AtomicU128::new(pack(state.tokens, IMPLIED | OFF_ZERO_TIME)),
            config: Config {
                limit: AtomicU64::new(limit.as_f64().to_bits()),
                burst: AtomicU64::new(burst as u64),
                base: AtomicI64::new(0),
            },
            slow: Mutex::new(Slow {
                last_event: state.last_event,
            }),
        }
    }

    /// The current limit.
    pub(super) fn limit(&self) -> Limit {
        Limit(f64::from_bits(self.config.limit.load(Ordering::Acquire)))
    }

    /// The current burst.
    pub(super) fn burst(&self) -> usize {
        self.config.burst.load(Ordering::Acquire) as usize
    }

    /// Loads the word, waiting for a slow operation to finish if one holds it.
    #[inline]
    fn load_unlocked(&self) -> u128 {
        loop {
            let word = self.word.load(Ordering::Acquire);
            if tag_of(word) & OFF_MASK != OFF_LOCKED {
                return word;
            }
            // The holder keeps the mutex until it has published the word.
            drop(self.slow.lock());
        }
    }

    /// The bucket as of `word` (whose limit, burst and base are read after it: the caller
    /// validates them by swapping or re-reading the word). `last_event` is not filled in (it is
    /// set to `last`): only slow operations read it.
    #[inline]
    fn view(&self, word: u128) -> (BucketState, i64) {
        let base = self.config.base.load(Ordering::Acquire);
        let limit = self.limit();
        let burst = self.burst();
        let tokens = tokens_of(word);
        let last = decode_last(tag_of(word) & OFF_MASK, base);
        let state = BucketState {
            limit,
            burst,
            tokens,
            last,
            last_event: last,
        };
        (state, base)
    }

    /// Go's `reserveN` (see [`BucketState::reserve`]).
    #[inline]
    pub(super) fn reserve(&self, now: i64, n: usize, max_wait: i64) -> RawReservation {
        let mut word = self.load_unlocked();
        let mut backoff = 0u32;
        loop {
            let (state, base) = self.view(word);
            if state.limit.is_inf() {
                // Nothing to write: valid if the word did not change while the limit was read.
                let again = self.load_unlocked();
                if again == word {
                    return RawReservation {
                        ok: true,
                        tokens: n,
                        time_to_act: now,
                        limit: Limit(0.0),
                    };
                }
                word = again;
                continue;
            }
            if state.limit.as_f64() == 0.0 {
                return self.locked(|s| s.reserve(now, n, max_wait));
            }
            let plan = state.plan(now, n, max_wait);
            if !plan.ok {
                if now < state.last {
                    // The clock went backwards: the refusal moves `last`.
                    return self.locked(|s| s.reserve(now, n, max_wait));
                }
                let again = self.load_unlocked();
                if again == word {
                    return RawReservation::refused(state.limit);
                }
                word = again;
                continue;
            }
            let Some(off) = encode_last(now, base) else {
                return self.locked(|s| s.reserve(now, n, max_wait));
            };
            let tag = IMPLIED | (tag_of(word) & GEN_MASK) | off;
            match self.word.compare_exchange_weak(
                word,
                pack(plan.tokens, tag),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    return RawReservation {
                        ok: true,
                        tokens: n,
                        time_to_act: now.saturating_add(plan.wait),
                        limit: state.limit,
                    };
                }
                Err(actual) => {
                    // Another core got there first: let it run a few reservations with the
                    // cache line to itself rather than taking the line back at once.
                    for _ in 0..(1u32 << backoff) {
                        std::hint::spin_loop();
                    }
                    backoff = (backoff + 1).min(MAX_BACKOFF);
                    word = actual;
                    if tag_of(word) & OFF_MASK == OFF_LOCKED {
                        word = self.load_unlocked();
                    }
                }
            }
        }
    }

    /// The tokens the bucket holds at `now`.
    pub(super) fn tokens_at(&self, now: i64) -> f64 {
        let mut word = self.load_unlocked();
        loop {
            let (state, _) = self.view(word);
            let tokens = state.advance(now);
            let again = self.load_unlocked();
            if again == word {
                return tokens;
            }
            word = again;
        }
    }

    /// A copy of the whole state.
    #[cfg(test)]
    pub(super) fn snapshot(&self) -> BucketState {
        self.locked(|s| *s)
    }

    /// Runs `f` on the full state with the word locked, then publishes the result.
    pub(super) fn locked<R>(&self, f: impl FnOnce(&mut BucketState) -> R) -> R {
        let mut slow = self.slow.lock();
        // Only a holder of `slow` locks the word, so the word is not locked now.
        let mut word = self.word.load(Ordering::Acquire);
        while let Err(actual) =
            self.word
                .compare_exchange_weak(word, LOCKED_WORD, Ordering::Acquire, Ordering::Acquire)
        {
            word = actual;
        }
        let tag = tag_of(word);
        let base = self.config.base.load(Ordering::Relaxed);
        let limit = self.limit();
        let tokens = tokens_of(word);
        let last = decode_last(tag & OFF_MASK, base);
        let last_event = if tag & IMPLIED != 0 {
            BucketState::implied_last_event(tokens, last, limit)
        } else {
            slow.last_event
        };
        let mut state = BucketState {
            limit,
            burst: self.burst(),
            tokens,
            last,
            last_event,
        };

        let result = f(&mut state);

        let (base, off) = match encode_last(state.last, base) {
            Some(off) => (base, off),
            None => rebase(state.last),
        };
        let implied = state.last_event
            == BucketState::implied_last_event(state.tokens, state.last, state.limit);
        slow.last_event = state.last_event;
        self.config
            .limit
            .store(state.limit.as_f64().to_bits(), Ordering::Release);
        self.config
            .burst
            .store(state.burst as u64, Ordering::Release);
        self.config.base.store(base, Ordering::Release);
        let generation = (tag & GEN_MASK).wrapping_add(GEN_ONE) & GEN_MASK;
        let tag = if implied { IMPLIED } else { 0 } | generation | off;
        self.word.store(pack(state.tokens, tag), Ordering::Release);
        drop(slow);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;

    #[test]
    fn offsets_round_trip_and_refuse_what_does_not_fit() {
        for base in [i64::MIN, -5, 0, 1 << 40, i64::MAX - (1 << 47)] {
            for last in [base, base.saturating_add(1), base.saturating_add(1 << 47)] {
                if last == i64::MIN {
                    continue;
                }
                let off = encode_last(last, base).expect("fits");
                assert_ne!(off, OFF_LOCKED);
                assert_eq!(decode_last(off, base), last);
            }
        }
        assert_eq!(encode_last(i64::MIN, 7), Some(OFF_ZERO_TIME));
        assert_eq!(decode_last(OFF_ZERO_TIME, 7), i64::MIN);
        assert_eq!(encode_last(-1, 0), None);
        assert_eq!(encode_last(OFF_MASK as i64, 0), None);
        assert_eq!(encode_last(i64::MAX, i64::MIN), None);
    }

    #[test]
    fn rebase_always_fits() {
        for last in [i64::MIN + 1, -1, 0, 1, 1 << 50, i64::MAX] {
            let (base, off) = rebase(last);
            assert_eq!(encode_last(last, base), Some(off));
            assert_eq!(decode_last(off, base), last);
        }
        assert_eq!(rebase(i64::MIN).1, OFF_ZERO_TIME);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Reserve { n: usize, max_wait: i64 },
        Cancel { which: usize },
        SetLimit(Limit),
        SetBurst(usize),
        TokensAt,
    }

    fn limit_strategy() -> impl Strategy<Value = Limit> {
        prop_oneof![
            1 => Just(Limit(0.0)),
            1 => Just(Limit::INF),
            1 => Just(Limit(-1.0)),
            6 => (0.001f64..1e9).prop_map(Limit),
            1 => Just(Limit(1e12)),
        ]
    }

    /// Steps of the clock: mostly small and forward, sometimes backwards, sometimes days (past
    /// the 48-bit offset, so the base moves).
    fn step_strategy() -> impl Strategy<Value = i64> {
        prop_oneof![
            8 => 0i64..200_000_000,
            2 => -200_000_000i64..0,
            1 => Just(0i64),
            1 => (1i64 << 47)..(1i64 << 50),
            1 => -(1i64 << 50)..-(1i64 << 47),
        ]
    }

    fn op_strategy() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0usize..6, prop_oneof![Just(0i64), Just(i64::MAX), 0i64..1_000_000_000])
                .prop_map(|(n, max_wait)| Op::Reserve { n, max_wait }),
            2 => (0usize..64).prop_map(|which| Op::Cancel { which }),
            1 => limit_strategy().prop_map(Op::SetLimit),
            1 => (0usize..12).prop_map(Op::SetBurst),
            2 => Just(Op::TokensAt),
        ]
    }

    fn assert_same(atomic: &BucketState, reference: &BucketState) -> Result<(), TestCaseError> {
        prop_assert_eq!(
            atomic.limit.as_f64().to_bits(),
            reference.limit.as_f64().to_bits()
        );
        prop_assert_eq!(atomic.burst, reference.burst);
        prop_assert_eq!(atomic.tokens.to_bits(), reference.tokens.to_bits());
        prop_assert_eq!(atomic.last, reference.last);
        prop_assert_eq!(atomic.last_event, reference.last_event);
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Call by call, the atomic bucket grants exactly what the reference arithmetic grants
        /// (same reservations, same times to act, same tokens, bit for bit) and ends every call
        /// in the same state, whatever the mix of reservations, cancellations, limit and burst
        /// changes and clock jumps.
        #[test]
        fn atomic_bucket_matches_the_reference(
            limit in limit_strategy(),
            burst in 0usize..12,
            start in prop_oneof![Just(0i64), -(1i64 << 40)..(1i64 << 40)],
            ops in proptest::collection::vec((step_strategy(), op_strategy()), 1..120),
        ) {
            let atomic = AtomicBucket::new(limit, burst);
            let mut reference = BucketState::new(limit, burst);
            let mut reservations: Vec<RawReservation> = Vec::new();
            let mut now = start;
            for (step, op) in ops {
                now = now.saturating_add(step);
                match op {
                    Op::Reserve { n, max_wait } => {
                        let got = atomic.reserve(now, n, max_wait);
                        let want = reference.reserve(now, n, max_wait);
                        prop_assert_eq!(got.ok, want.ok);
                        prop_assert_eq!(got.tokens, want.tokens);
                        prop_assert_eq!(got.time_to_act, want.time_to_act);
                        prop_assert_eq!(got.limit.as_f64().to_bits(), want.limit.as_f64().to_bits());
                        reservations.push(want);
                    }
                    Op::Cancel { which } => {
                        if let Some(raw) = reservations.get(which % reservations.len().max(1)) {
                            atomic.locked(|s| s.cancel(now, raw));
                            reference.cancel(now, raw);
                        }
                    }
                    Op::SetLimit(limit) => {
                        atomic.locked(|s| s.set_limit(now, limit));
                        reference.set_limit(now, limit);
                    }
                    Op::SetBurst(burst) => {
                        atomic.locked(|s| s.set_burst(now, burst));
                        reference.set_burst(now, burst);
                    }
                    Op::TokensAt => {
                        prop_assert_eq!(
                            atomic.tokens_at(now).to_bits(),
                            reference.advance(now).to_bits()
                        );
                    }
                }
                assert_same(&atomic.snapshot(), &reference)?;
            }
        }
    }

    /// Threads taking tokens at one instant get exactly the burst between them, no more and no
    /// less, while another thread keeps changing the burst back and forth through the slow path.
    #[test]
    fn concurrent_allows_grant_exactly_the_tokens_there_are() {
        const BURST: usize = 20_000;
        let bucket = Arc::new(AtomicBucket::new(Limit(1.0), BURST));
        let granted: usize = std::thread::scope(|scope| {
            let takers: Vec<_> = (0..4)
                .map(|_| {
                    let bucket = Arc::clone(&bucket);
                    scope.spawn(move || (0..10_000).filter(|_| bucket.reserve(0, 1, 0).ok).count())
                })
                .collect();
            let churn = {
                let bucket = Arc::clone(&bucket);
                scope.spawn(move || {
                    for i in 0..2_000 {
                        // Same instant, same burst in the end: only the generation moves.
                        bucket.locked(|s| s.set_burst(0, BURST + i % 2));
                        bucket.locked(|s| s.set_burst(0, BURST));
                    }
                })
            };
            churn.join().expect("churn thread");
            takers
                .into_iter()
                .map(|t| t.join().expect("taker thread"))
                .sum()
        });
        assert_eq!(granted, BURST);
        assert_eq!(bucket.tokens_at(0), 0.0);
    }
}
