//! Property tests of the queue's guarantees under any interleaving of add/get/done:
//!
//! * no item is held by two workers at once;
//! * every item added is handed out once more after its last add;
//! * the queue behaves exactly like client-go's dirty/processing/queue model (order included).
//!
//! The first test explores interleavings deterministically (each operation tagged with the
//! worker that runs it) against a reference model; the second runs real tasks on a
//! multi-threaded runtime.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use kube_workqueue::WorkQueue;
use proptest::prelude::*;

/// client-go's `workqueue.Type`, transcribed as plainly as possible.
#[derive(Default)]
struct Model {
    queue: VecDeque<u8>,
    dirty: HashSet<u8>,
    processing: HashSet<u8>,
    shutting_down: bool,
}

impl Model {
    fn add(&mut self, item: u8) {
        if self.shutting_down || self.dirty.contains(&item) {
            return;
        }
        self.dirty.insert(item);
        if !self.processing.contains(&item) {
            self.queue.push_back(item);
        }
    }
    fn get(&mut self) -> Option<u8> {
        let item = self.queue.pop_front()?;
        self.processing.insert(item);
        self.dirty.remove(&item);
        Some(item)
    }
    fn done(&mut self, item: u8) {
        self.processing.remove(&item);
        if self.dirty.contains(&item) {
            self.queue.push_back(item);
        }
    }
}

#[derive(Debug, Clone)]
enum Op {
    Add(u8),
    /// Worker `w` takes an item if it holds none.
    Get(usize),
    /// Worker `w` finishes the item it holds, if any.
    Done(usize),
    ShutDown,
}

const WORKERS: usize = 4;

/// Records that `worker` got `item`, checking that no other worker holds it.
fn hand_out(
    worker: usize,
    item: u8,
    held: &mut [Option<u8>; WORKERS],
    step: usize,
    last_get: &mut HashMap<u8, usize>,
) -> Result<(), TestCaseError> {
    prop_assert!(
        !held.contains(&Some(item)),
        "{} handed to worker {} while another worker holds it",
        item,
        worker
    );
    held[worker] = Some(item);
    last_get.insert(item, step);
    Ok(())
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..10).prop_map(Op::Add),
        4 => (0..WORKERS).prop_map(Op::Get),
        4 => (0..WORKERS).prop_map(Op::Done),
        1 => Just(Op::ShutDown),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn interleavings_match_the_model(ops in proptest::collection::vec(op(), 1..120)) {
        let queue = WorkQueue::new();
        let mut model = Model::default();
        let mut held: [Option<u8>; WORKERS] = [None; WORKERS];
        // Step number of each key's last accepted add and last hand-out.
        let mut last_add: HashMap<u8, usize> = HashMap::new();
        let mut last_get: HashMap<u8, usize> = HashMap::new();

        let mut step = 0;
        for op in ops {
            step += 1;
            match op {
                Op::Add(item) => {
                    if !model.shutting_down {
                        last_add.insert(item, step);
                    }
                    // Both ways in: by value, and borrowed (copied only if new).
                    if item % 2 == 0 {
                        queue.add(item);
                    } else {
                        queue.add_ref(&item);
                    }
                    model.add(item);
                }
                Op::Get(worker) => {
                    if held[worker].is_none() {
                        let got = queue.try_get();
                        prop_assert_eq!(got, model.get());
                        if let Some(item) = got {
                            hand_out(worker, item, &mut held, step, &mut last_get)?;
                        }
                    }
                }
                Op::Done(worker) => {
                    if let Some(item) = held[worker].take() {
                        queue.done(&item);
                        model.done(item);
                    }
                }
                Op::ShutDown => {
                    queue.shut_down();
                    model.shutting_down = true;
                }
            }
            prop_assert_eq!(queue.len(), model.queue.len());
            prop_assert_eq!(queue.processing(), model.processing.len());
            prop_assert_eq!(queue.shutting_down(), model.shutting_down);
        }

        // Let the workers finish, then drain with worker 0 until nothing is left.
        for slot in &mut held {
            if let Some(item) = slot.take() {
                queue.done(&item);
                model.done(item);
            }
        }
        while let Some(item) = queue.try_get() {
            step += 1;
            prop_assert_eq!(Some(item), model.get());
            hand_out(0, item, &mut held, step, &mut last_get)?;
            held[0] = None;
            queue.done(&item);
            model.done(item);
        }
        prop_assert_eq!(model.get(), None);
        prop_assert_eq!(queue.len(), 0);
        prop_assert_eq!(queue.processing(), 0);
        for (item, added) in &last_add {
            let got = last_get.get(item).copied().unwrap_or(0);
            prop_assert!(got > *added, "{} last added at step {} but last handed out at {}", item, added, got);
        }
    }
}

/// One concurrent scenario: producers add random keys, workers get/done them.
#[derive(Debug, Clone)]
struct Scenario {
    producers: Vec<Vec<u8>>,
    workers: usize,
    drain: bool,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        proptest::collection::vec(proptest::collection::vec(0u8..12, 1..60), 1..5),
        1usize..6,
        any::<bool>(),
    )
        .prop_map(|(producers, workers, drain)| Scenario {
            producers,
            workers,
            drain,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn concurrent_tasks_never_share_an_item(scenario in scenario()) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(run_scenario(scenario))?;
    }
}

async fn run_scenario(scenario: Scenario) -> Result<(), TestCaseError> {
    let queue = WorkQueue::<u8>::new();
    let held: Arc<Vec<AtomicBool>> = Arc::new((0..12).map(|_| AtomicBool::new(false)).collect());
    // A logical clock: adds read it before adding, gets after the item is returned.
    let clock = Arc::new(AtomicU64::new(1));
    let last_add: Arc<Vec<AtomicU64>> = Arc::new((0..12).map(|_| AtomicU64::new(0)).collect());
    let last_get: Arc<Vec<AtomicU64>> = Arc::new((0..12).map(|_| AtomicU64::new(0)).collect());
    let shared_violation = Arc::new(AtomicBool::new(false));

    let workers: Vec<_> = (0..scenario.workers)
        .map(|_| {
            let queue = queue.clone();
            let held = Arc::clone(&held);
            let clock = Arc::clone(&clock);
            let last_get = Arc::clone(&last_get);
            let violation = Arc::clone(&shared_violation);
            tokio::spawn(async move {
                while let Some(item) = queue.get().await {
                    let at = clock.fetch_add(1, Ordering::SeqCst);
                    last_get[usize::from(item)].fetch_max(at, Ordering::SeqCst);
                    if held[usize::from(item)].swap(true, Ordering::SeqCst) {
                        violation.store(true, Ordering::SeqCst);
                    }
                    if at & 3 == 0 {
                        tokio::task::yield_now().await;
                    }
                    held[usize::from(item)].store(false, Ordering::SeqCst);
                    queue.done(&item);
                }
            })
        })
        .collect();
    let producers: Vec<_> = scenario
        .producers
        .iter()
        .cloned()
        .map(|keys| {
            let queue = queue.clone();
            let clock = Arc::clone(&clock);
            let last_add = Arc::clone(&last_add);
            tokio::spawn(async move {
                for (i, key) in keys.into_iter().enumerate() {
                    let at = clock.fetch_add(1, Ordering::SeqCst);
                    last_add[usize::from(key)].fetch_max(at, Ordering::SeqCst);
                    queue.add(key);
                    if i & 3 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for producer in producers {
        producer.await.unwrap();
    }
    if scenario.drain {
        tokio::time::timeout(Duration::from_secs(10), queue.shut_down_with_drain())
            .await
            .expect("drained");
    } else {
        queue.shut_down();
    }
    for worker in workers {
        tokio::time::timeout(Duration::from_secs(10), worker)
            .await
            .expect("worker exited")
            .unwrap();
    }
    prop_assert!(
        !shared_violation.load(Ordering::SeqCst),
        "an item was held by two workers"
    );
    prop_assert_eq!(queue.len(), 0);
    prop_assert_eq!(queue.processing(), 0);
    for key in 0..12 {
        let added = last_add[key].load(Ordering::SeqCst);
        let got = last_get[key].load(Ordering::SeqCst);
        prop_assert!(
            added == 0 || got > added,
            "key {} last added at {} but last handed out at {}",
            key,
            added,
            got
        );
    }
    Ok(())
}
