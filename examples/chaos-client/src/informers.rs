//! Informers on config maps, secrets and pods (all namespaces) with handlers, and one more on
//! config maps that lists in pages of 7. At `check`, each
//! cache must equal the server's state, each handler must have seen the final state of every
//! object, every object it saw deleted must have been delivered as a delete or a tombstone, and
//! no update may go back in resourceVersion.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use kube_apimachinery::Object;
use kube_cache::ObjectOrTombstone;
use kube_cache::informer::{HandlerFuncs, SharedIndexInformer, SharedInformerFactory};
use kube_rest::{Api, ApiResource, Client, ListParams};
use parking_lot::Mutex;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::common::{Options, Report, Result, emit, wait_for_check};

/// What a handler saw.
#[derive(Default)]
struct Seen {
    /// The resourceVersion last delivered for each live object.
    live: HashMap<String, u64>,
    adds: u64,
    updates: u64,
    deletes: u64,
    tombstones: u64,
    /// Updates whose resourceVersion was older than the one delivered before.
    backwards: Vec<String>,
}

fn key_of<K: Object>(object: &K) -> String {
    format!("{}/{}", object.namespace().unwrap_or(""), object.name())
}

fn rv_of<K: Object>(object: &K) -> u64 {
    object
        .resource_version()
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

struct Watched<K> {
    kind: &'static str,
    informer: SharedIndexInformer<K>,
    seen: Arc<Mutex<Seen>>,
}

fn watch<K>(factory: &SharedInformerFactory<Client>, kind: &'static str) -> Result<Watched<K>>
where
    K: Object + ApiResource + k8s_openapi::Resource<Scope = NamespaceResourceScope> + Sync,
    Client: kube_cache::informer::ListerWatcherFactory<K>,
{
    handle(factory.informer::<K>(), kind)
}

/// Registers the recording handler on `informer`.
fn handle<K>(informer: SharedIndexInformer<K>, kind: &'static str) -> Result<Watched<K>>
where
    K: Object + ApiResource + k8s_openapi::Resource<Scope = NamespaceResourceScope> + Sync,
{
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (on_add, on_update, on_delete) = (seen.clone(), seen.clone(), seen.clone());
    informer.add_event_handler(
        HandlerFuncs::new()
            .on_add(move |object: &Arc<K>, _initial| {
                let mut seen = on_add.lock();
                seen.adds += 1;
                seen.live
                    .insert(key_of(object.as_ref()), rv_of(object.as_ref()));
            })
            .on_update(move |_old: &Arc<K>, new: &Arc<K>| {
                let mut seen = on_update.lock();
                seen.updates += 1;
                let (key, rv) = (key_of(new.as_ref()), rv_of(new.as_ref()));
                if let Some(before) = seen.live.insert(key.clone(), rv)
                    && before > rv
                {
                    seen.backwards.push(format!("{key}: {before} then {rv}"));
                }
            })
            .on_delete(move |object: &ObjectOrTombstone<K>| {
                let mut seen = on_delete.lock();
                let key = match object {
                    ObjectOrTombstone::Object(object) => {
                        seen.deletes += 1;
                        key_of(object.as_ref())
                    }
                    ObjectOrTombstone::Tombstone(tombstone) => {
                        seen.tombstones += 1;
                        tombstone.key.clone()
                    }
                };
                seen.live.remove(&key);
            }),
    )?;
    Ok(Watched {
        kind,
        informer,
        seen,
    })
}

/// The differences between two key → resourceVersion maps, for a violation's detail.
fn diff(name: &str, got: &BTreeMap<String, u64>, want: &BTreeMap<String, u64>) -> String {
    let mut lines = Vec::new();
    for (key, rv) in want {
        match got.get(key) {
            None => lines.push(format!("{key}@{rv} missing")),
            Some(other) if other != rv => lines.push(format!("{key} at {other}, server {rv}")),
            Some(_) => {}
        }
    }
    for (key, rv) in got {
        if !want.contains_key(key) {
            lines.push(format!("{key}@{rv} deleted on the server"));
        }
    }
    let shown: Vec<String> = lines.iter().take(5).cloned().collect();
    format!("{name}: {} differences: {}", lines.len(), shown.join("; "))
}

impl<K> Watched<K>
where
    K: Object + ApiResource + k8s_openapi::Resource<Scope = NamespaceResourceScope> + Sync,
{
    async fn truth(&self, client: &Client) -> Result<BTreeMap<String, u64>> {
        let list = Api::<K>::all_namespaces(client.clone())
            .list(&ListParams::default())
            .await?;
        Ok(list.items.iter().map(|o| (key_of(o), rv_of(o))).collect())
    }

    fn cache(&self) -> BTreeMap<String, u64> {
        let objects = self.informer.lister().list(&Default::default());
        objects
            .iter()
            .map(|o| (key_of(o.as_ref()), rv_of(o.as_ref())))
            .collect()
    }

    fn handled(&self) -> BTreeMap<String, u64> {
        let seen = self.seen.lock();
        seen.live.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }

    /// Waits (until `deadline`) for the cache and the handler's view to equal the server's
    /// state, then checks them.
    async fn check(
        &self,
        client: &Client,
        deadline: tokio::time::Instant,
        report: &mut Report,
    ) -> Result<()> {
        let (mut truth, mut cache, mut handled);
        loop {
            truth = self.truth(client).await?;
            cache = self.cache();
            handled = self.handled();
            if (cache == truth && handled == truth) || tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let kind = self.kind;
        report.check(cache == truth, || {
            diff(&format!("{kind} cache"), &cache, &truth)
        });
        let finals: BTreeMap<String, u64> = handled
            .iter()
            .filter(|(k, _)| truth.contains_key(*k))
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        report.check(finals == truth, || {
            diff(&format!("{kind} handler final states"), &finals, &truth)
        });
        let undeleted: Vec<&String> = handled.keys().filter(|k| !truth.contains_key(*k)).collect();
        report.check(undeleted.is_empty(), || {
            format!(
                "{kind}: {} deleted objects never delivered as a delete or tombstone: {:?}",
                undeleted.len(),
                undeleted.iter().take(5).collect::<Vec<_>>()
            )
        });
        let seen = self.seen.lock();
        report.check(seen.backwards.is_empty(), || {
            format!(
                "{kind}: updates going back in resourceVersion: {:?}",
                seen.backwards
            )
        });
        report.stat(&format!("{kind}_objects"), truth.len());
        report.stat(&format!("{kind}_adds"), seen.adds);
        report.stat(&format!("{kind}_updates"), seen.updates);
        report.stat(&format!("{kind}_deletes"), seen.deletes);
        report.stat(&format!("{kind}_tombstones"), seen.tombstones);
        Ok(())
    }
}

pub async fn run(options: &Options) -> Result<()> {
    let client = options.client()?;
    let factory = SharedInformerFactory::builder(client.clone())
        .default_resync(Duration::from_secs(10))
        .build();
    let configmaps = watch::<ConfigMap>(&factory, "configmaps")?;
    let secrets = watch::<Secret>(&factory, "secrets")?;
    let pods = watch::<Pod>(&factory, "pods")?;
    // One more, outside the factory, listing in pages of 7: continue tokens meet compactions
    // (410, then a full list) and stalls mid-page.
    let paged = handle(
        SharedIndexInformer::builder(Api::<ConfigMap>::all_namespaces(client.clone()))
            .name("configmaps-paged")
            .resync_period(Duration::from_secs(10))
            .page_size(7)
            .build(),
        "configmaps_paged",
    )?;
    let cancel = CancellationToken::new();
    factory.start(&cancel)?;
    let paged_task = tokio::spawn({
        let (informer, cancel) = (paged.informer.clone(), cancel.clone());
        async move { informer.run(cancel).await }
    });
    factory.wait_for_cache_sync(&cancel).await;
    paged.informer.wait_for_sync().await;
    emit(json!({"ready": true}));
    wait_for_check().await;
    // The faults are over: a fresh client (not the informers' connections) reads the truth.
    let truth_client = options.client()?;
    let mut report = Report::default();
    // A reflector that failed many times in a row may sleep up to 60 s (client-go's backoff:
    // 30 s at most, jitter 1.0) before it lists again: the caches get two minutes in all.
    let limit = tokio::time::Instant::now() + Duration::from_secs(120);
    let started = std::time::Instant::now();
    configmaps.check(&truth_client, limit, &mut report).await?;
    secrets.check(&truth_client, limit, &mut report).await?;
    pods.check(&truth_client, limit, &mut report).await?;
    paged.check(&truth_client, limit, &mut report).await?;
    // How long the caches took to catch up once the faults and the writes were over.
    report.stat("converge_ms", started.elapsed().as_millis() as u64);
    report.emit();
    cancel.cancel();
    factory.shutdown().await;
    paged_task.await?;
    Ok(())
}
