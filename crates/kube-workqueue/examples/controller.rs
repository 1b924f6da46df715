//! The seed's workqueue controller (client-go's `workqueue` example) on an in-memory store.
//!
//! Event producers (standing in for an informer) add pod keys to a rate-limiting queue; workers
//! take keys, sync them against the store, and on error retry with backoff while
//! `num_requeues < 5`, then drop the key (logged through `tracing` and counted).
//!
//! ```sh
//! cargo run -p kube-workqueue --example controller
//! ```

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kube_flowcontrol::RealClock;
use kube_flowcontrol::wait::until;
use kube_workqueue::RateLimitingQueue;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// A pod as the store knows it.
#[derive(Debug, Clone)]
struct Pod {
    name: String,
}

/// The informer's cache (client-go's `cache.Indexer`), keyed by `namespace/name`.
#[derive(Debug, Default)]
struct Indexer {
    pods: Mutex<HashMap<String, Pod>>,
}

impl Indexer {
    fn upsert(&self, namespace: &str, name: &str) -> String {
        let key = format!("{namespace}/{name}");
        self.pods.lock().insert(
            key.clone(),
            Pod {
                name: name.to_string(),
            },
        );
        key
    }

    fn delete(&self, key: &str) {
        self.pods.lock().remove(key);
    }

    fn get_by_key(&self, key: &str) -> Result<Option<Pod>, String> {
        // An in-memory map cannot fail; the `Result` mirrors client-go's `GetByKey`.
        Ok(self.pods.lock().get(key).cloned())
    }
}

#[derive(Debug, Default)]
struct Stats {
    synced: AtomicUsize,
    retried: AtomicUsize,
    dropped: AtomicUsize,
}

struct Controller {
    indexer: Arc<Indexer>,
    queue: RateLimitingQueue<String>,
    /// Sync attempts per key, to make `flaky-*` pods fail twice.
    attempts: Mutex<HashMap<String, usize>>,
    stats: Stats,
}

impl Controller {
    fn new(queue: RateLimitingQueue<String>, indexer: Arc<Indexer>) -> Self {
        Controller {
            indexer,
            queue,
            attempts: Mutex::default(),
            stats: Stats::default(),
        }
    }

    /// One key from the queue; `false` once the queue is shut down.
    async fn process_next_item(&self) -> bool {
        let Some(key) = self.queue.get_guarded().await else {
            return false;
        };
        // Dropping `key` tells the queue we are done with it, like the seed's
        // `defer c.queue.Done(key)` (even if the sync panics). This unblocks the key for other
        // workers: two workers never process the same key at once.
        let result = self.sync_to_stdout(&key);
        self.handle_err(result, &key);
        true
    }

    /// The business logic: print what happened to the pod.
    fn sync_to_stdout(&self, key: &str) -> Result<(), String> {
        let attempt = {
            let mut attempts = self.attempts.lock();
            let attempt = attempts.entry(key.to_string()).or_insert(0);
            *attempt += 1;
            *attempt
        };
        let pod = self.indexer.get_by_key(key)?;
        match pod {
            None => say(format_args!("Pod {key} does not exist anymore")),
            Some(pod) if pod.name.starts_with("broken") => {
                return Err(format!("{} is broken (attempt {attempt})", pod.name));
            }
            Some(pod) if pod.name.starts_with("flaky") && attempt <= 2 => {
                return Err(format!("{} is flaky (attempt {attempt})", pod.name));
            }
            Some(pod) => say(format_args!("Sync/Add/Update for Pod {}", pod.name)),
        }
        self.stats.synced.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Retries a failed key up to 5 times with backoff, then drops it.
    fn handle_err(&self, result: Result<(), String>, key: &str) {
        let Err(error) = result else {
            // Forget the key's rate-limit history on every successful sync.
            self.queue.forget(&key.to_string());
            return;
        };
        let key = key.to_string();
        if self.queue.num_requeues(&key) < 5 {
            tracing::info!(%key, %error, "error syncing pod; retrying");
            self.stats.retried.fetch_add(1, Ordering::Relaxed);
            self.queue.add_rate_limited(key);
            return;
        }
        self.queue.forget(&key);
        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(%key, %error, "dropping pod out of the queue after 5 retries");
    }

    /// Runs `workers` workers until `cancel` fires, then shuts the queue down.
    async fn run(self: Arc<Self>, workers: usize, cancel: CancellationToken) {
        tracing::info!("starting pod controller");
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let controller = Arc::clone(&self);
                let cancel = cancel.clone();
                tokio::spawn(async move {
                    // Go's `wait.Until(c.runWorker, time.Second, stopCh)`.
                    until(&RealClock, Duration::from_secs(1), &cancel, || async {
                        while controller.process_next_item().await {}
                    })
                    .await;
                })
            })
            .collect();
        cancel.cancelled().await;
        tracing::info!("stopping pod controller");
        self.queue.shut_down_with_drain().await;
        for handle in handles {
            if let Err(error) = handle.await {
                tracing::error!(%error, "worker failed");
            }
        }
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_target(false)
        .init();
    let started = Instant::now();

    let indexer = Arc::new(Indexer::default());
    let queue = RateLimitingQueue::builder().name("pods").build();
    // Warm the cache with a pod we knew about on our last run: "mypod" no longer exists, so the
    // informer reports its deletion once synced.
    indexer.upsert("default", "mypod");
    let controller = Arc::new(Controller::new(queue.clone(), Arc::clone(&indexer)));
    let cancel = CancellationToken::new();
    let running = tokio::spawn(Arc::clone(&controller).run(4, cancel.clone()));

    // The "informer": three producers add, update (several times: deduplicated while waiting)
    // and delete pods, adding the key to the queue on every event.
    let producers: Vec<_> = ["default", "kube-system", "team-a"]
        .into_iter()
        .map(|namespace| {
            let indexer = Arc::clone(&indexer);
            let queue = queue.clone();
            tokio::spawn(async move {
                for name in ["web", "db", "flaky-cache", "broken-job"] {
                    let key = indexer.upsert(namespace, name);
                    queue.add(key.clone());
                    for _ in 0..3 {
                        // Updates.
                        queue.add(key.clone());
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                }
                let gone = indexer.upsert(namespace, "temporary");
                queue.add(gone.clone());
                tokio::time::sleep(Duration::from_millis(5)).await;
                indexer.delete(&gone);
                queue.add(gone);
            })
        })
        .collect();
    indexer.delete("default/mypod");
    queue.add("default/mypod".to_string());
    for producer in producers {
        if let Err(error) = producer.await {
            tracing::error!(%error, "producer failed");
        }
    }

    // Wait until every key is settled: nothing queued, in progress or waiting for a retry (or
    // give up after a while, should a worker have died with a key in hand).
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(queue.is_empty() && queue.processing() == 0 && queue.waiting_len() == 0) {
        if Instant::now() > deadline {
            tracing::warn!("keys still in flight after 10 s; stopping anyway");
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cancel.cancel();
    if let Err(error) = running.await {
        tracing::error!(%error, "controller failed");
    }

    let stats = &controller.stats;
    say(format_args!(
        "synced {} times, retried {} times, dropped {} keys (after 5 retries each), in {:?}",
        stats.synced.load(Ordering::Relaxed),
        stats.retried.load(Ordering::Relaxed),
        stats.dropped.load(Ordering::Relaxed),
        started.elapsed(),
    ));
}

/// Prints a line; a closed stdout (`| head`) is not worth a panic in a worker.
fn say(line: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}
