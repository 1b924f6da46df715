//! Splitting work into pieces processed by a fixed number of workers (client-go's
//! `workqueue.ParallelizeUntil`).
//!
//! The pieces `0..pieces` are grouped in chunks of `chunk_size`; `workers` workers take chunks
//! one at a time and call `work(piece)` for each piece. Before every piece, a worker checks the
//! cancellation token and stops if it is cancelled. Each piece runs exactly once unless the work
//! is cancelled.
//!
//! * [`parallelize_until`] runs CPU-bound work on threads (scoped: `work` may borrow).
//! * [`parallelize_until_async`] runs async work concurrently on the calling task.
//!
//! ```
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use tokio_util::sync::CancellationToken;
//! use kube_workqueue::parallelize::parallelize_until;
//!
//! let sum = AtomicU64::new(0);
//! let done = parallelize_until(4, 1000, 10, |piece| {
//!     sum.fetch_add(piece as u64, Ordering::Relaxed);
//! }, &CancellationToken::new());
//! assert_eq!(done, 1000);
//! assert_eq!(sum.into_inner(), 999 * 1000 / 2);
//! ```

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_util::sync::CancellationToken;

/// The chunking shared by both flavours.
struct Plan {
    pieces: usize,
    chunk_size: usize,
    chunks: usize,
    workers: usize,
}

impl Plan {
    /// A zero `chunk_size` means 1 (as in Go); zero `workers` means 1 (Go would do nothing).
    fn new(workers: usize, pieces: usize, chunk_size: usize) -> Plan {
        let chunk_size = chunk_size.max(1);
        let chunks = pieces.div_ceil(chunk_size);
        Plan {
            pieces,
            chunk_size,
            chunks,
            workers: workers.max(1).min(chunks),
        }
    }

    /// The pieces of chunk number `chunk`.
    fn chunk(&self, chunk: usize) -> std::ops::Range<usize> {
        // chunk < chunks, so start < pieces: only the end needs guarding against overflow.
        let start = chunk.saturating_mul(self.chunk_size);
        start..start.saturating_add(self.chunk_size).min(self.pieces)
    }
}

/// Runs `work(piece)` for every piece in `0..pieces` on `workers` threads, `chunk_size` pieces
/// at a time, until done or until `cancel` is cancelled; returns how many pieces ran.
///
/// One worker runs on the calling thread, the others on scoped threads (if a thread cannot be
/// started, the remaining workers do its share). A panic in `work` stops the other workers
/// from taking more pieces and is propagated once every worker has stopped.
pub fn parallelize_until<F>(
    workers: usize,
    pieces: usize,
    chunk_size: usize,
    work: F,
    cancel: &CancellationToken,
) -> usize
where
    F: Fn(usize) + Sync,
{
    if pieces == 0 {
        return 0;
    }
    let plan = Plan::new(workers, pieces, chunk_size);
    let next_chunk = AtomicUsize::new(0);
    let completed = AtomicUsize::new(0);
    // Set when a piece panics, so the other workers stop taking pieces (Go's process would die).
    let panicked = std::sync::atomic::AtomicBool::new(false);
    let worker = || {
        let mut ran = 0;
        let guard = PanicFlag(&panicked);
        'chunks: loop {
            let chunk = next_chunk.fetch_add(1, Ordering::Relaxed);
            if chunk >= plan.chunks {
                break;
            }
            for piece in plan.chunk(chunk) {
                if cancel.is_cancelled() || panicked.load(Ordering::Relaxed) {
                    break 'chunks;
                }
                work(piece);
                ran += 1;
            }
        }
        drop(guard);
        completed.fetch_add(ran, Ordering::Relaxed);
    };
    std::thread::scope(|scope| {
        for index in 1..plan.workers {
            let spawned = std::thread::Builder::new()
                .name(format!("parallelize-{index}"))
                .spawn_scoped(scope, worker);
            if let Err(error) = spawned {
                tracing::warn!(%error, "kube-workqueue: parallelize runs with fewer threads");
                break;
            }
        }
        worker();
    });
    completed.into_inner()
}

/// Raises its flag when dropped during a panic.
struct PanicFlag<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for PanicFlag<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Relaxed);
        }
    }
}

/// Runs `work(piece).await` for every piece in `0..pieces` with `workers` pieces in flight at
/// once, `chunk_size` pieces per worker at a time, until done or until `cancel` is cancelled;
/// returns how many pieces ran.
///
/// The workers are futures polled by the calling task (no spawning, so `work` may borrow): the
/// concurrency suits I/O-bound work such as API calls. Use [`parallelize_until`] for CPU-bound
/// work. A piece already started is not interrupted by cancellation.
pub async fn parallelize_until_async<F, Fut>(
    workers: usize,
    pieces: usize,
    chunk_size: usize,
    work: F,
    cancel: &CancellationToken,
) -> usize
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = ()>,
{
    if pieces == 0 {
        return 0;
    }
    let plan = Plan::new(workers, pieces, chunk_size);
    let next_chunk = AtomicUsize::new(0);
    let worker = || async {
        let mut ran = 0;
        loop {
            let chunk = next_chunk.fetch_add(1, Ordering::Relaxed);
            if chunk >= plan.chunks {
                return ran;
            }
            for piece in plan.chunk(chunk) {
                if cancel.is_cancelled() {
                    return ran;
                }
                work(piece).await;
                ran += 1;
            }
        }
    };
    futures_util::future::join_all((0..plan.workers).map(|_| worker()))
        .await
        .into_iter()
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_panicking_piece_stops_the_other_workers() {
        use std::sync::atomic::AtomicUsize;
        let started = AtomicUsize::new(0);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            parallelize_until(
                2,
                10_000,
                1,
                |piece| {
                    started.fetch_add(1, Ordering::SeqCst);
                    if piece == 0 {
                        panic!("piece 0 fails");
                    }
                    std::thread::sleep(std::time::Duration::from_micros(50));
                },
                &CancellationToken::new(),
            )
        }));
        assert!(result.is_err(), "the panic is propagated");
        assert!(
            started.load(Ordering::SeqCst) < 10_000,
            "the other worker stopped early"
        );
    }

    use super::*;
    use std::sync::atomic::AtomicU32;
    use std::time::Duration;

    /// client-go's TestParallelizeUntil cases.
    const CASES: [(usize, usize, usize); 6] = [
        (1000, 10, 1),
        (1000, 10, 10),
        (1000, 10, 100),
        (999, 10, 13),
        (5, 100, 1), // more workers than chunks
        (10, 0, 0),  // zero workers and zero chunk size are treated as 1
    ];

    #[test]
    fn every_piece_runs_exactly_once() {
        for (pieces, workers, chunk_size) in CASES {
            let seen: Vec<AtomicU32> = (0..pieces).map(|_| AtomicU32::new(0)).collect();
            let ran = parallelize_until(
                workers,
                pieces,
                chunk_size,
                |p| {
                    seen[p].fetch_add(1, Ordering::Relaxed);
                },
                &CancellationToken::new(),
            );
            assert_eq!(
                ran, pieces,
                "pieces {pieces} workers {workers} chunk {chunk_size}"
            );
            assert!(seen.iter().all(|count| count.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn huge_chunks_do_not_overflow() {
        let cancel = CancellationToken::new();
        let ran = parallelize_until(
            2,
            3,
            usize::MAX,
            |piece| {
                if piece == 2 {
                    cancel.cancel();
                }
            },
            &cancel,
        );
        assert_eq!(ran, 3);
    }

    #[test]
    fn no_pieces_no_work() {
        let ran = parallelize_until(4, 0, 1, |_| panic!("no piece"), &CancellationToken::new());
        assert_eq!(ran, 0);
    }

    #[test]
    fn work_runs_on_several_threads() {
        let threads = parking_lot::Mutex::new(std::collections::HashSet::new());
        let barrier = std::sync::Barrier::new(2);
        parallelize_until(
            2,
            2,
            1,
            |_| {
                // Both pieces must be in progress at once for the barrier to open.
                barrier.wait();
                threads.lock().insert(std::thread::current().id());
            },
            &CancellationToken::new(),
        );
        assert_eq!(threads.lock().len(), 2);
    }

    #[test]
    fn cancellation_stops_before_the_next_piece() {
        let cancel = CancellationToken::new();
        let ran = parallelize_until(
            1,
            100,
            10,
            |piece| {
                if piece == 41 {
                    cancel.cancel();
                }
            },
            &cancel,
        );
        assert_eq!(ran, 42);
        // Cancelled before starting: nothing runs.
        assert_eq!(parallelize_until(4, 100, 1, |_| {}, &cancel), 0);
    }

    #[tokio::test]
    async fn async_every_piece_runs_exactly_once() {
        for (pieces, workers, chunk_size) in CASES {
            let seen: Vec<AtomicU32> = (0..pieces).map(|_| AtomicU32::new(0)).collect();
            let ran = parallelize_until_async(
                workers,
                pieces,
                chunk_size,
                |p| {
                    seen[p].fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now()
                },
                &CancellationToken::new(),
            )
            .await;
            assert_eq!(ran, pieces);
            assert!(seen.iter().all(|count| count.load(Ordering::Relaxed) == 1));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn async_workers_overlap_and_stop_on_cancel() {
        // 8 pieces of 1 s each on 4 workers take 2 s of (paused, auto-advancing) time.
        let start = tokio::time::Instant::now();
        let ran = parallelize_until_async(
            4,
            8,
            1,
            |_| tokio::time::sleep(Duration::from_secs(1)),
            &CancellationToken::new(),
        )
        .await;
        assert_eq!(ran, 8);
        assert_eq!(start.elapsed(), Duration::from_secs(2));

        let cancel = CancellationToken::new();
        let ran = parallelize_until_async(
            2,
            100,
            1,
            |piece| {
                if piece == 3 {
                    cancel.cancel();
                }
                std::future::ready(())
            },
            &cancel,
        )
        .await;
        assert!((4..=5).contains(&ran), "ran {ran}");
    }
}
