//! The plain queue: the seed test (client-go's TestBasic) and client-go's queue_test.go cases,
//! plus the async/blocking/cancellation behaviour of this crate.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::FutureExt;
use kube_workqueue::WorkQueue;
use tokio::time::timeout;

/// Generous bound for things that should happen promptly (tests fail instead of hanging).
const PATIENCE: Duration = Duration::from_secs(10);

const AFTER_SHUTDOWN: &str = "added after shutdown!";

#[derive(Clone, Copy, Debug)]
enum ShutDownMode {
    Plain,
    Drain,
}

/// The seed test (tools/cache workqueue TestBasic): 50 producers add their own key 50 times,
/// 1 ms apart; 10 consumers take 3 ms per item. After the producers finish, the queue is shut
/// down (both ways) and one more item is added: it must never be handed out, every consumer
/// must exit, and the queue must end empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_test_producers_and_consumers_async() {
    for mode in [ShutDownMode::Plain, ShutDownMode::Drain] {
        let queue = WorkQueue::<String>::new();
        let producers: Vec<_> = (0..50)
            .map(|i| {
                let queue = queue.clone();
                tokio::spawn(async move {
                    for _ in 0..50 {
                        queue.add(i.to_string());
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                })
            })
            .collect();
        let in_progress: Arc<parking_lot::Mutex<HashSet<String>>> = Arc::default();
        let consumers: Vec<_> = (0..10)
            .map(|_| {
                let queue = queue.clone();
                let in_progress = Arc::clone(&in_progress);
                tokio::spawn(async move {
                    let mut processed = 0usize;
                    while let Some(item) = queue.get().await {
                        assert_ne!(item, AFTER_SHUTDOWN, "got an item added after shutdown");
                        assert!(
                            in_progress.lock().insert(item.clone()),
                            "{item} handed to two workers at once"
                        );
                        tokio::time::sleep(Duration::from_millis(3)).await;
                        in_progress.lock().remove(&item);
                        queue.done(&item);
                        processed += 1;
                    }
                    processed
                })
            })
            .collect();
        for producer in producers {
            producer.await.unwrap();
        }
        match mode {
            ShutDownMode::Plain => queue.shut_down(),
            ShutDownMode::Drain => timeout(PATIENCE, queue.shut_down_with_drain())
                .await
                .expect("drain finished"),
        }
        queue.add(AFTER_SHUTDOWN.to_string());
        let mut processed = 0;
        for consumer in consumers {
            processed += timeout(PATIENCE, consumer).await.unwrap().unwrap();
        }
        assert!(
            processed >= 50,
            "{mode:?}: every key was processed at least once"
        );
        assert_eq!(queue.len(), 0, "{mode:?}");
        assert_eq!(queue.processing(), 0, "{mode:?}");
        assert_eq!(queue.dropped(), 1, "{mode:?}: the late add was counted");
    }
}

/// The seed test again with OS threads and the blocking API, as Go goroutines would use it.
#[test]
fn seed_test_producers_and_consumers_blocking() {
    for mode in [ShutDownMode::Plain, ShutDownMode::Drain] {
        let queue = WorkQueue::<String>::new();
        let producers: Vec<_> = (0..50)
            .map(|i| {
                let queue = queue.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        queue.add(i.to_string());
                        std::thread::sleep(Duration::from_millis(1));
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..10)
            .map(|_| {
                let queue = queue.clone();
                std::thread::spawn(move || {
                    while let Some(item) = queue.get_blocking() {
                        assert_ne!(item, AFTER_SHUTDOWN, "got an item added after shutdown");
                        std::thread::sleep(Duration::from_millis(3));
                        queue.done(&item);
                    }
                })
            })
            .collect();
        for producer in producers {
            producer.join().unwrap();
        }
        match mode {
            ShutDownMode::Plain => queue.shut_down(),
            ShutDownMode::Drain => queue.shut_down_with_drain_blocking(),
        }
        queue.add(AFTER_SHUTDOWN.to_string());
        for consumer in consumers {
            consumer.join().unwrap();
        }
        assert_eq!(queue.len(), 0, "{mode:?}");
        assert_eq!(queue.dropped(), 1, "{mode:?}");
    }
}

/// client-go's TestAddWhileProcessing: every worker re-adds each item it gets once more while
/// processing it (the dirty-while-processing case).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_while_processing() {
    for mode in [ShutDownMode::Plain, ShutDownMode::Drain] {
        let queue = WorkQueue::<u32>::new();
        let producers: Vec<_> = (0..50)
            .map(|i| {
                let queue = queue.clone();
                tokio::spawn(async move { queue.add(i) })
            })
            .collect();
        let consumers: Vec<_> = (0..10)
            .map(|_| {
                let queue = queue.clone();
                tokio::spawn(async move {
                    let mut counters = std::collections::HashMap::new();
                    while let Some(item) = queue.get().await {
                        let count = counters.entry(item).or_insert(0);
                        *count += 1;
                        if *count < 2 {
                            queue.add(item);
                        }
                        tokio::task::yield_now().await;
                        queue.done(&item);
                    }
                })
            })
            .collect();
        for producer in producers {
            producer.await.unwrap();
        }
        match mode {
            ShutDownMode::Plain => queue.shut_down(),
            ShutDownMode::Drain => timeout(PATIENCE, queue.shut_down_with_drain())
                .await
                .expect("drained"),
        }
        for consumer in consumers {
            timeout(PATIENCE, consumer).await.unwrap().unwrap();
        }
        assert_eq!(queue.len(), 0, "{mode:?}");
    }
}

/// client-go's TestLen.
#[test]
fn len_counts_distinct_waiting_items() {
    let queue = WorkQueue::new();
    assert!(queue.is_empty());
    queue.add("foo");
    assert_eq!(queue.len(), 1);
    queue.add("bar");
    assert_eq!(queue.len(), 2);
    queue.add("foo"); // should not increase the queue length
    assert_eq!(queue.len(), 2);
    assert!(!queue.is_empty());
}

/// client-go's TestReinsert.
#[test]
fn reinsert_while_processing() {
    let queue = WorkQueue::new();
    queue.add("foo");
    let item = queue.try_get().unwrap();
    assert_eq!(item, "foo");
    queue.add(item); // add it back while processing
    assert_eq!(queue.len(), 0, "not handed out while being processed");
    assert_eq!(queue.try_get(), None);
    queue.done(&item);
    assert_eq!(queue.try_get(), Some("foo")); // back on the queue
    queue.done(&"foo");
    assert_eq!(queue.len(), 0);
    assert_eq!(queue.processing(), 0);
}

/// client-go's TestQueueDrainageUsingShutDownWithDrain: the drain waits for the items in
/// progress; getters see the shutdown meanwhile.
#[tokio::test]
async fn drain_waits_for_items_in_progress() {
    let queue = WorkQueue::new();
    queue.add("foo");
    queue.add("bar");
    let first = queue.get().await.unwrap();
    let second = queue.get().await.unwrap();
    let mut drain = Box::pin(queue.shut_down_with_drain());
    assert!(
        (&mut drain).now_or_never().is_none(),
        "two items in progress"
    );
    assert_eq!(queue.get().await, None, "getters are told to exit");
    queue.done(&first);
    assert!(
        (&mut drain).now_or_never().is_none(),
        "one item in progress"
    );
    queue.done(&second);
    timeout(PATIENCE, drain).await.expect("drained");
}

/// client-go's TestNoQueueDrainageUsingShutDown: a plain shutdown does not wait.
#[tokio::test]
async fn plain_shutdown_does_not_wait() {
    let queue = WorkQueue::new();
    queue.add("foo");
    queue.add("bar");
    queue.get().await.unwrap();
    queue.get().await.unwrap();
    queue.shut_down();
    assert!(queue.shutting_down());
    assert_eq!(queue.processing(), 2);
    // Blocking twin too.
    let queue = WorkQueue::new();
    queue.add("foo");
    queue.try_get().unwrap();
    std::thread::spawn(move || queue.shut_down())
        .join()
        .unwrap();
}

/// client-go's TestForceQueueShutdownUsingShutDown: `shut_down` ends a drain in progress.
#[tokio::test]
async fn shut_down_ends_a_drain() {
    let queue = WorkQueue::new();
    queue.add("foo");
    queue.add("bar");
    queue.get().await.unwrap();
    queue.get().await.unwrap();
    let drain = tokio::spawn({
        let queue = queue.clone();
        async move { queue.shut_down_with_drain().await }
    });
    while queue.get().await.is_some() {}
    tokio::task::yield_now().await;
    assert!(!drain.is_finished());
    queue.shut_down(); // as on a second SIGTERM
    timeout(PATIENCE, drain).await.unwrap().unwrap();
}

/// client-go's TestQueueDrainageUsingShutDownWithDrainWithDirtyItem: an item added while in
/// progress is handed out again during the drain.
#[tokio::test]
async fn drain_hands_out_dirty_items_again() {
    let queue = WorkQueue::new();
    queue.add("foo");
    let gotten = queue.get().await.unwrap();
    queue.add("foo");
    let drain = tokio::spawn({
        let queue = queue.clone();
        async move { queue.shut_down_with_drain().await }
    });
    while !queue.shutting_down() {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        queue.get().await,
        None,
        "nothing to hand out while foo is in progress"
    );
    queue.done(&gotten);
    // Done put the dirty item back: not done yet.
    let again = queue.get().await;
    assert_eq!(again, Some("foo"));
    assert!(!drain.is_finished());
    queue.done(&"foo");
    assert_eq!(queue.get().await, None, "now really done");
    timeout(PATIENCE, drain).await.unwrap().unwrap();
}

/// client-go's TestGarbageCollection: the queue keeps nothing alive once an item is done.
#[test]
fn done_items_are_released() {
    let queue = WorkQueue::new();
    let item = Arc::new(String::from("big object"));
    queue.add(Arc::clone(&item));
    queue.add(Arc::clone(&item));
    assert_eq!(
        Arc::strong_count(&item),
        2,
        "the queue stores a waiting item once"
    );
    let gotten = queue.try_get().unwrap();
    assert_eq!(Arc::strong_count(&item), 3, "tracked, and handed out");
    queue.done(&gotten);
    drop(gotten);
    assert_eq!(Arc::strong_count(&item), 1);
}

/// A worker that panics with a guarded item does not leave it processing forever.
#[tokio::test]
async fn guarded_items_are_done_even_when_the_worker_panics() {
    let queue = WorkQueue::<String>::new();
    queue.add("default/web".to_string());
    let worker = tokio::spawn({
        let queue = queue.clone();
        async move {
            let item = queue.get_guarded().await.unwrap();
            queue.add(item.clone()); // dirty while processing
            panic!("reconcile of {} blew up", *item);
        }
    });
    assert!(worker.await.unwrap_err().is_panic());
    assert_eq!(queue.processing(), 0);
    // The add made while it was processed is honoured.
    let item = queue.get_guarded().await.unwrap();
    assert_eq!(item.item(), "default/web");
    assert_eq!(format!("{item:?}"), "Processing(Some(\"default/web\"))");
    assert_eq!(item.done().as_deref(), Some("default/web"));
    assert_eq!(queue.processing(), 0);
    // Cancelled while holding the item: done as well.
    queue.add("default/db".to_string());
    {
        let mut work = Box::pin(async {
            let _item = queue.get_guarded().await;
            std::future::pending::<()>().await;
        });
        assert!((&mut work).now_or_never().is_none());
        assert_eq!(queue.processing(), 1);
    }
    assert_eq!(queue.processing(), 0);
    queue.shut_down();
    assert!(queue.get_guarded().await.is_none());
}

#[test]
fn distinct_items_come_out_in_fifo_order() {
    let queue = WorkQueue::new();
    for i in [5, 3, 9, 3, 1, 5, 7] {
        queue.add(i);
    }
    let order: Vec<i32> = std::iter::from_fn(|| queue.try_get()).collect();
    assert_eq!(order, vec![5, 3, 9, 1, 7]);
}

#[test]
fn add_ref_copies_only_new_items() {
    let queue = WorkQueue::<String>::new();
    queue.add_ref("default/web");
    queue.add_ref("default/web");
    queue.add("default/web".to_string());
    queue.add_ref(&"default/db".to_string());
    assert_eq!(queue.len(), 2);
    let item = queue.try_get().unwrap();
    assert_eq!(item, "default/web");
    queue.add_ref("default/web"); // being processed: queued again by done
    assert_eq!(queue.len(), 1);
    queue.done(&item);
    assert_eq!(queue.len(), 2);
    queue.shut_down();
    queue.add_ref("late");
    assert_eq!(queue.dropped(), 1);
    assert_eq!(queue.try_get().as_deref(), Some("default/db"));
    assert_eq!(queue.try_get().as_deref(), Some("default/web"));
}

#[test]
fn add_all_is_add_in_a_batch() {
    let queue = WorkQueue::new();
    queue.add(2);
    queue.add_all([1, 2, 3, 1]);
    assert_eq!(queue.len(), 3);
    let order: Vec<i32> = std::iter::from_fn(|| queue.try_get()).collect();
    assert_eq!(order, vec![2, 1, 3]);
    queue.shut_down();
    queue.add_all([4, 5]);
    queue.add_all(Vec::new());
    assert_eq!(queue.dropped(), 2);
}

/// The caller's iterator runs outside the queue's lock: one that reads and adds to the queue
/// itself completes (before, it deadlocked on the lock).
#[test]
fn add_all_runs_an_iterator_that_uses_the_queue() {
    let queue = WorkQueue::new();
    queue.add(0);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let worker = std::thread::spawn({
        let queue = queue.clone();
        move || {
            queue.add_all((1..=3).map(|i| {
                let before = queue.len();
                queue.add(i * 10);
                before + i
            }));
            done_tx.send(()).expect("test thread waits");
        }
    });
    done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("add_all with an iterator touching the queue deadlocked");
    worker.join().expect("worker thread");
    let order: Vec<usize> = std::iter::from_fn(|| queue.try_get()).collect();
    // The iterator's own adds happen while it is collected, before the batch goes in.
    assert_eq!(order, vec![0, 10, 20, 30, 2, 4, 6]);
}

/// A guarded item owns its handle to the queue: it moves into a spawned task and is marked
/// done when that task drops it, after the handle it came from is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guarded_items_move_into_spawned_tasks() {
    let queue = WorkQueue::<String>::new();
    for key in ["default/a", "default/b", "default/c"] {
        queue.add(key.to_string());
    }
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let getter = queue.clone();
        let item = getter.get_guarded().await.unwrap();
        drop(getter);
        tasks.push(tokio::spawn(async move {
            tokio::task::yield_now().await;
            item.to_uppercase()
        }));
    }
    assert_eq!(queue.processing(), 3);
    let mut seen = Vec::new();
    for task in tasks {
        seen.push(task.await.unwrap());
    }
    assert_eq!(seen, ["DEFAULT/A", "DEFAULT/B", "DEFAULT/C"]);
    assert_eq!(queue.processing(), 0);
    assert!(queue.is_empty());
}

#[test]
fn done_for_an_item_not_in_progress_is_ignored() {
    let queue = WorkQueue::new();
    queue.done(&"never-added");
    queue.add("foo");
    queue.done(&"foo"); // waiting, not handed out: must not be queued twice
    assert_eq!(queue.len(), 1);
    assert_eq!(queue.try_get(), Some("foo"));
    queue.done(&"foo");
    queue.done(&"foo"); // twice
    assert_eq!(queue.len(), 0);
    assert_eq!(queue.processing(), 0);
}

#[tokio::test]
async fn get_waits_for_an_add() {
    let queue = WorkQueue::new();
    let getter = tokio::spawn({
        let queue = queue.clone();
        async move { queue.get().await }
    });
    tokio::task::yield_now().await;
    assert!(!getter.is_finished());
    queue.add(42);
    assert_eq!(timeout(PATIENCE, getter).await.unwrap().unwrap(), Some(42));
}

#[test]
fn get_blocking_waits_for_an_add_from_another_thread() {
    let queue = WorkQueue::new();
    let getter = {
        let queue = queue.clone();
        std::thread::spawn(move || queue.get_blocking())
    };
    std::thread::sleep(Duration::from_millis(2));
    queue.add("x");
    assert_eq!(getter.join().unwrap(), Some("x"));
}

/// Every idle getter wakes up and exits at shutdown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_wakes_every_idle_getter() {
    let queue = WorkQueue::<u8>::new();
    let getters: Vec<_> = (0..16)
        .map(|_| {
            let queue = queue.clone();
            tokio::spawn(async move { queue.get().await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(2)).await;
    queue.shut_down();
    for getter in getters {
        assert_eq!(timeout(PATIENCE, getter).await.unwrap().unwrap(), None);
    }
}

/// Each add wakes a different idle getter: no item waits while a getter sleeps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_add_wakes_one_getter() {
    let queue = WorkQueue::<usize>::new();
    let started = Arc::new(AtomicUsize::new(0));
    let getters: Vec<_> = (0..8)
        .map(|_| {
            let queue = queue.clone();
            let started = Arc::clone(&started);
            tokio::spawn(async move {
                started.fetch_add(1, Ordering::SeqCst);
                // Hold the item: a second item must go to another getter.
                queue.get().await
            })
        })
        .collect();
    while started.load(Ordering::SeqCst) < 8 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(2)).await;
    for i in 0..8 {
        queue.add(i);
    }
    let mut got = Vec::new();
    for getter in getters {
        got.push(timeout(PATIENCE, getter).await.unwrap().unwrap().unwrap());
    }
    got.sort_unstable();
    assert_eq!(got, (0..8).collect::<Vec<_>>());
}

/// Dropping a waiting `get` takes nothing and leaves no stale waiter behind.
#[tokio::test]
async fn cancelled_get_takes_nothing() {
    let queue = WorkQueue::new();
    {
        let mut get = Box::pin(queue.get());
        assert!((&mut get).now_or_never().is_none());
        // Dropped while registered as idle.
    }
    assert!(
        timeout(Duration::from_millis(5), queue.get())
            .await
            .is_err(),
        "nothing to get"
    );
    let getter = tokio::spawn({
        let queue = queue.clone();
        async move { queue.get().await }
    });
    tokio::task::yield_now().await;
    queue.add("a");
    assert_eq!(timeout(PATIENCE, getter).await.unwrap().unwrap(), Some("a"));
    assert_eq!(queue.processing(), 1);
    assert_eq!(queue.len(), 0);
}

/// A getter woken for an item but cancelled before running passes the wake-up on.
#[tokio::test]
async fn a_cancelled_notified_getter_passes_the_wakeup_on() {
    let queue = WorkQueue::new();
    let mut first = Box::pin(queue.get());
    let mut second = Box::pin(queue.get());
    assert!((&mut first).now_or_never().is_none());
    assert!((&mut second).now_or_never().is_none());
    queue.add(1); // notifies `first`
    drop(first);
    assert_eq!(timeout(PATIENCE, second).await.unwrap(), Some(1));
}

#[tokio::test]
async fn items_queued_before_shutdown_are_still_handed_out() {
    let queue = WorkQueue::new();
    queue.add("a");
    queue.add("b");
    queue.shut_down();
    queue.shut_down(); // idempotent
    queue.add("c");
    assert_eq!(queue.get().await, Some("a"));
    assert_eq!(queue.get().await, Some("b"));
    assert_eq!(queue.get().await, None);
    assert_eq!(queue.get_blocking(), None);
    assert_eq!(queue.dropped(), 1);
    queue.done(&"a");
    queue.done(&"b");
    // A drain with nothing in progress returns at once.
    timeout(PATIENCE, queue.shut_down_with_drain())
        .await
        .expect("nothing to wait for");
}

#[test]
fn queues_are_debug_and_named() {
    let queue = WorkQueue::<u8>::builder().name("pods").build();
    queue.add(1);
    let debug = format!("{queue:?}");
    assert!(
        debug.contains("pods") && debug.contains("len: 1"),
        "{debug}"
    );
    assert_eq!(queue.name(), "pods");
    let _ = WorkQueue::<u8>::default();
}

/// Workers built outside tokio entirely (blocking API, no runtime anywhere).
#[test]
fn works_without_any_runtime() {
    let queue = WorkQueue::new();
    let stop = Arc::new(AtomicBool::new(false));
    let worker = {
        let queue = queue.clone();
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut seen = Vec::new();
            while let Some(item) = queue.get_blocking() {
                seen.push(item);
                queue.done(&item);
            }
            stop.store(true, Ordering::SeqCst);
            seen
        })
    };
    for i in 0..100 {
        queue.add(i);
    }
    queue.shut_down_with_drain_blocking();
    let seen = worker.join().unwrap();
    assert!(stop.load(Ordering::SeqCst));
    assert_eq!(seen.len(), 100, "distinct items are each handed out once");
}
