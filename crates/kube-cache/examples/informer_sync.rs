//! The `informer_sync` measurement (issue 14): how long a pod informer takes from start to
//! `has_synced`, its CPU time, and its RSS growth per cached pod, printed in the same
//! `RESULT ...` line as the client-go and kube-rs peer programs (`shared/peers/`).
//!
//! `cargo xtask bench informer-sync` drives it: it starts the kube-testserver binary in
//! another process (or takes a kubeconfig of any cluster), loads the pods with `load`, then
//! runs `sync` in fresh processes and takes medians.
//!
//! ```sh
//! informer_sync load --kubeconfig KC --pods 10000 [--fixture pod-realistic.json]
//! informer_sync sync --kubeconfig KC [--compact] [--streaming] [--json] [--keep-managed-fields]
//!     [--kube-client | --kube-rs [--strip]]
//! ```
//!
//! `sync` caches every pod of the cluster, as `k8s_openapi::api::core::v1::Pod` by default
//! or as `kube_apimachinery::Compact<Pod>` with `--compact`. With `--kube-client`, our
//! informer lists and watches through kube-rs's `kube::Client` (the `kube` feature's
//! `KubeListerWatcher`) instead of kube-rest. With `--kube-rs`, the process runs kube-rs's own
//! `watcher` + `reflector` instead (what `shared/peers/kube-rs` measures), keeping
//! managedFields unless `--strip` drops them with `.modify()`: the side-by-side figures of
//! one binary against one server.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube_apimachinery::{Compact, Object};
use kube_cache::informer::SharedIndexInformer;
use kube_cache::kube::KubeListerWatcher;
use kube_cache::rest::ApiListerWatcher;
use kube_rest::{Api, Client, Config, Kubeconfig, PostParams};
use tokio_util::sync::CancellationToken;

type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

/// Fields of `/proc/self/status` in KiB (`VmRSS:`, `VmHWM:`).
fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with(field))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kb| kb.parse().ok())
        })
        .unwrap_or(0)
}

/// User + system CPU time of this process, in milliseconds (`/proc/self/stat`, 100 Hz ticks).
fn cpu_ms() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|t| t.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) * 10.0
}

struct Options {
    command: String,
    kubeconfig: Option<String>,
    pods: usize,
    fixture: String,
    compact: bool,
    streaming: bool,
    json: bool,
    keep_managed_fields: bool,
    kube_client: bool,
    kube_rs: bool,
    strip: bool,
}

fn options() -> Result<Options> {
    let mut args = std::env::args().skip(1);
    let mut options = Options {
        command: args.next().unwrap_or_default(),
        kubeconfig: None,
        pods: 10_000,
        fixture: concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/fixtures/pod-realistic.json"
        )
        .to_string(),
        compact: false,
        streaming: false,
        json: false,
        keep_managed_fields: false,
        kube_client: false,
        kube_rs: false,
        strip: false,
    };
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--kubeconfig" => options.kubeconfig = Some(value("--kubeconfig")?),
            "--pods" => options.pods = value("--pods")?.parse()?,
            "--fixture" => options.fixture = value("--fixture")?,
            "--compact" => options.compact = true,
            "--streaming" => options.streaming = true,
            "--json" => options.json = true,
            "--keep-managed-fields" => options.keep_managed_fields = true,
            "--kube-client" => options.kube_client = true,
            "--kube-rs" => options.kube_rs = true,
            "--strip" => options.strip = true,
            other => return Err(format!("unknown argument {other:?}").into()),
        }
    }
    if options.command != "load" && options.command != "sync" {
        return Err(
            "usage: informer_sync load|sync --kubeconfig PATH [--pods N] [--fixture F] \
                    [--compact] [--streaming] [--json] [--keep-managed-fields] \
                    [--kube-client | --kube-rs [--strip]]"
                .into(),
        );
    }
    Ok(options)
}

fn client(options: &Options) -> Result<Client> {
    let mut config = match &options.kubeconfig {
        Some(path) => Config::from_kubeconfig(&Kubeconfig::read(path)?)?,
        None => Config::infer()?,
    };
    // A benchmark, not a polite controller: no client-side throttle.
    config.qps = 5000.0;
    config.burst = 5000;
    Ok(Client::try_from_config(config)?)
}

/// Creates `pods` pods built from the fixture in namespaces `bench-0`..`bench-9`, with the
/// fixture's status written through the status subresource (as `peerload` does).
async fn load(options: &Options) -> Result<()> {
    let client = client(options)?;
    let fixture: Pod = serde_json::from_str(&std::fs::read_to_string(&options.fixture)?)?;
    let namespaces: Api<Namespace> = Api::cluster(client.clone());
    for i in 0..10 {
        let mut ns = Namespace::default();
        ns.meta_mut().name = Some(format!("bench-{i}"));
        match namespaces.create(&PostParams::default(), &ns).await {
            Ok(_) => {}
            Err(e) if e.status().is_some_and(|s| s.is_already_exists()) => {}
            Err(e) => return Err(e.into()),
        }
    }
    let mut base = fixture.clone();
    base.metadata.uid = None;
    base.metadata.resource_version = None;
    base.metadata.creation_timestamp = None;
    base.metadata.owner_references = None;
    base.status = None;
    let status = fixture.status.clone();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..32 {
        let (client, base, status, next) = (
            client.clone(),
            base.clone(),
            status.clone(),
            Arc::clone(&next),
        );
        let total = options.pods;
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<(), kube_rest::Error>(());
                }
                let namespace = format!("bench-{}", i % 10);
                let pods: Api<Pod> = Api::namespaced(client.clone(), &namespace);
                let mut pod = base.clone();
                pod.metadata.namespace = Some(namespace);
                pod.metadata.name = Some(format!("web-7d9f8c6b5d-{i:05}"));
                let mut created = match pods.create(&PostParams::default(), &pod).await {
                    Ok(created) => created,
                    Err(e) if e.status().is_some_and(|s| s.is_already_exists()) => {
                        pods.get(pod.name()).await?
                    }
                    Err(e) => return Err(e),
                };
                created.status = status.clone();
                let name = created.name().to_string();
                pods.replace_status(&name, &PostParams::default(), &created)
                    .await?;
                if (i + 1) % 10_000 == 0 {
                    eprintln!("{} pods, {:.1} s", i + 1, started.elapsed().as_secs_f64());
                }
            }
        }));
    }
    for worker in workers {
        worker.await??;
    }
    println!(
        "loaded {} pods in {:.1} s",
        options.pods,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// A kube-rs client for the kubeconfig of `options` (kube-rs has no client-side throttle).
async fn kube_client(options: &Options) -> Result<kube::Client> {
    let config = match &options.kubeconfig {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path)?;
            kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?
        }
        None => kube::Config::infer().await?,
    };
    Ok(kube::Client::try_from(config)?)
}

fn print_result(
    implementation: &str,
    mode: &str,
    n: usize,
    (t0, t1, cpu0, rss0): (Instant, Instant, f64, u64),
) {
    let synced = t1.elapsed();
    let total = t0.elapsed();
    let cpu = cpu_ms();
    let rss1 = status_kb("VmRSS:");
    let hwm = status_kb("VmHWM:");
    println!(
        "RESULT impl={implementation} mode={mode} n={n} sync_ms={:.1} total_ms={:.1} cpu_ms={cpu:.1} \
         cpu_sync_ms={:.1} rss0_kb={rss0} rss1_kb={rss1} hwm_kb={hwm} growth_b_per_obj={:.0}",
        synced.as_secs_f64() * 1000.0,
        total.as_secs_f64() * 1000.0,
        cpu - cpu0,
        if n > 0 {
            (rss1 as f64 - rss0 as f64) * 1024.0 / n as f64
        } else {
            0.0
        }
    );
}

/// kube-rs's own `watcher` + `reflector` on every pod, until its store is ready.
async fn sync_kube_rs(options: &Options, mode: &str) -> Result<()> {
    use futures_util::StreamExt as _;
    use kube::ResourceExt as _;
    use kube::runtime::{WatchStreamExt as _, reflector, watcher};
    let t0 = Instant::now();
    let client = kube_client(options).await?;
    let rss0 = status_kb("VmRSS:");
    let cpu0 = cpu_ms();
    let t1 = Instant::now();
    let api = kube::Api::<Pod>::all(client);
    let (reader, writer) = reflector::store();
    let mut config = watcher::Config::default();
    if options.streaming {
        config = config.streaming_lists();
    }
    let events = watcher(api, config);
    let task = if options.strip {
        let stream = reflector(writer, events.modify(|p| p.managed_fields_mut().clear()));
        tokio::spawn(stream.for_each(|_| std::future::ready(())))
    } else {
        tokio::spawn(reflector(writer, events).for_each(|_| std::future::ready(())))
    };
    reader.wait_until_ready().await?;
    print_result("kube-rs", mode, reader.state().len(), (t0, t1, cpu0, rss0));
    task.abort();
    Ok(())
}

/// Starts an informer over every pod, waits for `has_synced`, prints the `RESULT` line.
async fn sync<K>(options: &Options, mode: &str, api: impl FnOnce(Client) -> Api<K>) -> Result<()>
where
    K: Object + Send + Sync + 'static,
    K: kube_cache::rest::RestObject,
{
    let t0 = Instant::now();
    let client = client(options)?;
    let rss0 = status_kb("VmRSS:");
    let cpu0 = cpu_ms();
    let t1 = Instant::now();
    // Lists in protobuf unless --json (client-go's default for built-in kinds).
    let lister_watcher = ApiListerWatcher::new(api(client)).protobuf(!options.json);
    let informer = SharedIndexInformer::builder(lister_watcher);
    measure(options, mode, informer, (t0, t1, cpu0, rss0)).await
}

/// Our informer through kube-rs's client.
async fn sync_kube_client(options: &Options, mode: &str) -> Result<()> {
    let t0 = Instant::now();
    let client = kube_client(options).await?;
    let rss0 = status_kb("VmRSS:");
    let cpu0 = cpu_ms();
    let t1 = Instant::now();
    let lw = KubeListerWatcher::new(kube::Api::<Pod>::all(client));
    let informer = SharedIndexInformer::builder(lw);
    measure(options, mode, informer, (t0, t1, cpu0, rss0)).await
}

/// Runs the informer until it has synced and prints the `RESULT` line.
async fn measure<K, L>(
    options: &Options,
    mode: &str,
    informer: kube_cache::informer::SharedIndexInformerBuilder<K, L>,
    start: (Instant, Instant, f64, u64),
) -> Result<()>
where
    K: Object + Send + Sync + 'static,
    L: kube_cache::ListerWatcher<K>,
{
    let informer: SharedIndexInformer<K> = informer
        .streaming_list(options.streaming)
        .drop_managed_fields(!options.keep_managed_fields)
        .build();
    let cancel = CancellationToken::new();
    let run = {
        let informer = informer.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move { informer.run(cancel).await })
    };
    informer.wait_for_sync().await;
    print_result("kube-toolkit", mode, informer.indexer().len(), start);
    cancel.cancel();
    let _ = run.await;
    Ok(())
}

async fn run(options: Options) -> Result<()> {
    if options.command == "load" {
        return load(&options).await;
    }
    let mut mode = String::from(if options.kube_rs {
        "kube-rs"
    } else if options.compact {
        "compact"
    } else {
        "typed"
    });
    if options.kube_client {
        mode.push_str("+kubeclient");
    }
    if options.streaming {
        mode.push_str("+stream");
    }
    if options.json {
        mode.push_str("+json");
    }
    if options.keep_managed_fields {
        mode.push_str("+managedfields");
    }
    if options.strip {
        mode.push_str("+strip");
    }
    if options.kube_rs {
        sync_kube_rs(&options, &mode).await
    } else if options.kube_client {
        sync_kube_client(&options, &mode).await
    } else if options.compact {
        sync(&options, &mode, Api::<Compact<Pod>>::all_namespaces).await
    } else {
        sync(&options, &mode, Api::<Pod>::all_namespaces).await
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("informer_sync: {e}");
            return ExitCode::from(2);
        }
    };
    match run(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("informer_sync: {e}");
            ExitCode::FAILURE
        }
    }
}
