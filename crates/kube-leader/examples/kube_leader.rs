//! Leader election on kube-rs's client (feature `kube`): two candidates on one Lease through
//! `kube::Api<Lease>`; the first leads, releases on stop, and the second takes over within a
//! retry period.
//!
//! The client is `kube::Client::try_default()` when the current kubeconfig's cluster answers;
//! otherwise the example starts an embedded kube-testserver, writes its kubeconfig to a file
//! and reads that file with kube-rs's own kubeconfig loader.
//!
//! ```sh
//! cargo run -p kube-leader --features kube --example kube_leader
//! ```

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::coordination::v1::Lease;
use kube_leader::kube::LeaseLock;
use kube_leader::{CancellationToken, LeaderElector};
use kube_testserver::TestServer;
use parking_lot::Mutex;

type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

const RETRY: Duration = Duration::from_millis(500);

/// The current kubeconfig's cluster if it answers, else an embedded kube-testserver.
async fn connect() -> Result<(kube::Client, Option<TestServer>)> {
    let reason = match kube::Client::try_default().await {
        Ok(client) => {
            match tokio::time::timeout(Duration::from_secs(5), client.apiserver_version()).await {
                Ok(Ok(version)) => {
                    println!(
                        "target: the cluster of the current kubeconfig ({})",
                        version.git_version
                    );
                    return Ok((client, None));
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "no answer within 5 s".to_string(),
            }
        }
        Err(e) => e.to_string(),
    };
    println!("target: an embedded kube-testserver ({reason})");
    let server = TestServer::builder().start().await?;
    let path = std::env::temp_dir().join(format!("kube-leader-kube-{}.yaml", std::process::id()));
    server.write_kubeconfig(&path)?;
    let kubeconfig = kube::config::Kubeconfig::read_from(&path)?;
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let _ = std::fs::remove_file(&path);
    Ok((kube::Client::try_from(config)?, Some(server)))
}

fn candidate(
    api: &kube::Api<Lease>,
    id: &str,
    leading: Arc<Mutex<Vec<(String, Instant)>>>,
) -> Result<LeaderElector<LeaseLock>> {
    let lock = LeaseLock::new(api.clone(), "kube-rs-demo", id);
    let id = id.to_string();
    let stopped = id.clone();
    Ok(LeaderElector::builder(lock)
        .lease_duration(Duration::from_secs(4))
        .renew_deadline(Duration::from_secs(3))
        .retry_period(RETRY)
        .release_on_cancel(true)
        .on_started_leading(move |token: CancellationToken| {
            println!("{id}: started leading");
            leading.lock().push((id.clone(), Instant::now()));
            async move { token.cancelled().await }
        })
        .on_stopped_leading(move || println!("{stopped}: stopped leading"))
        .build()?)
}

async fn run() -> Result<()> {
    let (client, _server) = connect().await?;
    let api = kube::Api::<Lease>::namespaced(client, "default");
    let leading = Arc::new(Mutex::new(Vec::new()));
    let first = candidate(&api, "candidate-1", Arc::clone(&leading))?;
    let cancel_first = CancellationToken::new();
    let run_first = tokio::spawn({
        let (e, c) = (first.clone(), cancel_first.clone());
        async move { e.run(c).await }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !first.is_leader() {
        if Instant::now() > deadline {
            return Err("candidate-1 never led".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = candidate(&api, "candidate-2", Arc::clone(&leading))?;
    let cancel_second = CancellationToken::new();
    let run_second = tokio::spawn({
        let (e, c) = (second.clone(), cancel_second.clone());
        async move { e.run(c).await }
    });
    while second.leader() != "candidate-1" {
        if Instant::now() > deadline {
            return Err("candidate-2 never saw the leader".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!("candidate-2 sees candidate-1 leading");
    cancel_first.cancel();
    run_first.await??;
    let released = Instant::now();
    let lease = api.get("kube-rs-demo").await?;
    let holder = lease
        .spec
        .and_then(|s| s.holder_identity)
        .unwrap_or_default();
    println!("candidate-1 released the lease (holder now {holder:?})");
    while !second.is_leader() {
        if Instant::now() > deadline {
            return Err("no handover".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = released.elapsed();
    println!("candidate-2 took over {took:?} after the release");
    if took > RETRY * 2 + Duration::from_secs(1) {
        return Err(format!("the handover took {took:?}").into());
    }
    cancel_second.cancel();
    run_second.await??;
    let order: Vec<String> = leading.lock().iter().map(|(id, _)| id.clone()).collect();
    if order != ["candidate-1", "candidate-2"] {
        return Err(format!("unexpected leaders: {order:?}").into());
    }
    api.delete("kube-rs-demo", &Default::default()).await?;
    println!("kube-rs leader election demo passed");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kube_leader: {e}");
            ExitCode::FAILURE
        }
    }
}
