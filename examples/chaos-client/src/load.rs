//! The load generator: creates, updates and deletes config maps, secrets and pods across
//! namespaces, from a seed, for a duration; counts what it wrote.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{ConfigMap, Container, Namespace, Pod, PodSpec, Secret};
use kube_rest::{Api, Client, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::common::{Options, Result, emit, namespace, retry};

const WORKERS: u64 = 4;
/// Names per kind, worker and namespace: small, so updates and deletes find objects.
const NAMES: u32 = 12;

#[derive(Default)]
struct Counts {
    created: AtomicU64,
    updated: AtomicU64,
    deleted: AtomicU64,
    /// 404 on update/delete, 409 on create: the object was not where the generator thought.
    missed: AtomicU64,
    /// Errors (faults the client gave up on).
    failed: AtomicU64,
    /// The errors by message (digits dropped), for the log.
    errors: parking_lot::Mutex<std::collections::BTreeMap<String, u64>>,
}

fn count(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

pub async fn run(options: &Options) -> Result<()> {
    let client = Client::try_from_config(options.config()?.with_rate_limit(100.0, 200))?;
    for index in 0..options.namespaces {
        let api = Api::<Namespace>::cluster(client.clone());
        let mut ns = Namespace::default();
        ns.metadata.name = Some(namespace(index));
        retry(Duration::from_secs(60), || async {
            match api.create(&PostParams::default(), &ns).await {
                Ok(_) => Ok(()),
                Err(e) if e.is_already_exists() => Ok(()),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
    }
    emit(json!({"ready": true}));
    let counts = Arc::new(Counts::default());
    let deadline = tokio::time::Instant::now() + options.duration;
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let (client, counts) = (client.clone(), Arc::clone(&counts));
        let seed = options.seed.wrapping_mul(1_000_003).wrapping_add(worker);
        let namespaces = options.namespaces;
        workers.push(tokio::spawn(async move {
            let mut rng = fastrand::Rng::with_seed(seed);
            while tokio::time::Instant::now() < deadline {
                let ns = namespace(rng.usize(..namespaces.max(1)));
                let name = format!("w{worker}-{}", rng.u32(..NAMES));
                let op = rng.u8(..10);
                let version = rng.u32(..);
                match rng.u8(..3) {
                    0 => write::<ConfigMap>(&client, &ns, &name, op, version, &counts).await,
                    1 => write::<Secret>(&client, &ns, &name, op, version, &counts).await,
                    _ => write::<Pod>(&client, &ns, &name, op, version, &counts).await,
                }
                tokio::time::sleep(Duration::from_millis(rng.u64(10..60))).await;
            }
        }));
    }
    for worker in workers {
        worker.await?;
    }
    for (message, n) in counts.errors.lock().iter() {
        eprintln!("{n:>6} {message}");
    }
    let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
    emit(json!({"writes": {
        "created": load(&counts.created),
        "updated": load(&counts.updated),
        "deleted": load(&counts.deleted),
        "missed": load(&counts.missed),
        "failed": load(&counts.failed),
    }}));
    Ok(())
}

/// A new object of each kind.
trait Fresh: Sized {
    fn fresh(name: &str) -> Self;
}

impl Fresh for ConfigMap {
    fn fresh(name: &str) -> Self {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        cm.data = Some([("v".to_string(), "0".to_string())].into());
        cm
    }
}

impl Fresh for Secret {
    fn fresh(name: &str) -> Self {
        let mut secret = Secret::default();
        secret.metadata.name = Some(name.into());
        secret.string_data = Some([("v".to_string(), "0".to_string())].into());
        secret
    }
}

impl Fresh for Pod {
    fn fresh(name: &str) -> Self {
        let mut pod = Pod::default();
        pod.metadata.name = Some(name.into());
        pod.spec = Some(PodSpec {
            containers: vec![Container {
                name: "main".into(),
                image: Some("busybox".into()),
                ..Container::default()
            }],
            ..PodSpec::default()
        });
        pod
    }
}

async fn write<K>(client: &Client, ns: &str, name: &str, op: u8, version: u32, counts: &Counts)
where
    K: Fresh + kube_rest::ApiResource + k8s_openapi::Resource<Scope = NamespaceResourceScope>,
{
    let api = Api::<K>::namespaced(client.clone(), ns);
    let outcome = match op {
        // 40% creates, 40% updates (a label change), 20% deletes.
        0..=3 => api
            .create(&PostParams::default(), &K::fresh(name))
            .await
            .map(|_| &counts.created),
        4..=7 => {
            let patch = json!({"metadata": {"labels": {"v": version.to_string()}}});
            api.patch(name, &PatchParams::default(), &Patch::Merge(patch))
                .await
                .map(|_| &counts.updated)
        }
        _ => api
            .delete(name, &DeleteParams::default().grace_period(0))
            .await
            .map(|_| &counts.deleted),
    };
    match outcome {
        Ok(counter) => count(counter),
        Err(e) if e.is_not_found() || e.is_already_exists() || e.is_conflict() => {
            count(&counts.missed)
        }
        Err(e) => {
            count(&counts.failed);
            let message: String = e
                .to_string()
                .chars()
                .filter(|c| !c.is_ascii_digit())
                .take(120)
                .collect();
            *counts.errors.lock().entry(message).or_default() += 1;
        }
    }
}
