//! Options, the client, and the JSON-lines protocol with the runner.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use kube_rest::{Client, Config, Kubeconfig};
use serde_json::{Map, Value, json};
use tokio::io::AsyncBufReadExt;

/// Errors of a scenario (a binary, not a library).
pub type Result<T, E = Box<dyn std::error::Error + Send + Sync>> = std::result::Result<T, E>;

/// The command line.
pub struct Options {
    pub kubeconfig: PathBuf,
    pub seed: u64,
    pub duration: Duration,
    pub namespaces: usize,
    /// The `/metrics` addresses of the flagship's replicas.
    pub metrics: Vec<String>,
}

impl Options {
    pub fn parse(args: &[String]) -> std::result::Result<Options, String> {
        let mut options = Options {
            kubeconfig: PathBuf::new(),
            seed: 1,
            duration: Duration::from_secs(20),
            namespaces: 3,
            metrics: Vec::new(),
        };
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            let value = iter.next().ok_or_else(|| format!("{arg} needs a value"))?;
            match arg.as_str() {
                "--kubeconfig" => options.kubeconfig = PathBuf::from(value),
                "--seed" => options.seed = value.parse().map_err(|e| format!("--seed: {e}"))?,
                "--duration" => {
                    let ms: u64 = value.parse().map_err(|e| format!("--duration: {e}"))?;
                    options.duration = Duration::from_millis(ms);
                }
                "--namespaces" => {
                    options.namespaces = value.parse().map_err(|e| format!("--namespaces: {e}"))?
                }
                "--metrics" => {
                    options.metrics = value.split(',').map(str::to_string).collect();
                }
                other => return Err(format!("unknown argument {other}")),
            }
        }
        if options.kubeconfig.as_os_str().is_empty() {
            return Err("--kubeconfig is required".into());
        }
        Ok(options)
    }

    /// The client configuration of the kubeconfig.
    pub fn config(&self) -> Result<Config> {
        Ok(Config::from_kubeconfig(&Kubeconfig::read(
            &self.kubeconfig,
        )?)?)
    }

    /// A client with the kubeconfig's settings (client-go's defaults: QPS 5, burst 10).
    pub fn client(&self) -> Result<Client> {
        Ok(Client::try_from_config(self.config()?)?)
    }
}

/// Prints one JSON line for the runner.
pub fn emit(value: Value) {
    let mut out = std::io::stdout().lock();
    // The runner reads these; a closed pipe means it is gone, and then nothing matters.
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

/// Waits for the runner's `check` (or the end of standard input).
pub async fn wait_for_check() {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim() == "check" {
            return;
        }
    }
}

/// The checks of a scenario, with the violations' details.
#[derive(Default)]
pub struct Report {
    checks: u64,
    passed: u64,
    violations: Vec<String>,
    stats: Map<String, Value>,
}

impl Report {
    /// One check: `ok`, or a violation described by `detail`.
    pub fn check(&mut self, ok: bool, detail: impl FnOnce() -> String) {
        self.checks += 1;
        if ok {
            self.passed += 1;
        } else {
            self.violations.push(detail());
        }
    }

    /// A figure for the runner's table.
    pub fn stat(&mut self, name: &str, value: impl Into<Value>) {
        self.stats.insert(name.to_string(), value.into());
    }

    /// Prints the report line.
    pub fn emit(self) {
        emit(json!({"report": {
            "checks": self.checks,
            "passed": self.passed,
            "violations": self.violations,
            "stats": self.stats,
        }}));
    }
}

/// Retries `attempt` (with a short pause) until it succeeds or `limit` passes.
pub async fn retry<T, F, Fut>(limit: Duration, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(error) if tokio::time::Instant::now() >= deadline => return Err(error),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// The namespaces the load generator writes in.
pub fn namespace(index: usize) -> String {
    format!("chaos-{index}")
}
