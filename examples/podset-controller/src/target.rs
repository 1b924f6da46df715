//! Where the controller runs: the cluster of a kubeconfig, or an embedded kube-testserver
//! with its simulated kubelet (the pattern of kube-rest's `pod_lifecycle` example).

use std::path::{Path, PathBuf};
use std::time::Duration;

use kube_rest::{Client, Config, Kubeconfig};
use kube_testserver::TestServer;

/// Why no target could be reached.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The kubeconfig could not be read or used.
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: kube_rest::ConfigError,
    },
    /// A client could not be built.
    #[error("client: {0}")]
    Client(#[from] kube_rest::Error),
    /// The cluster named explicitly did not answer.
    #[error("the cluster of {path} ({server}) did not answer: {reason}")]
    Unreachable {
        /// The kubeconfig.
        path: String,
        /// Its server.
        server: String,
        /// What happened.
        reason: String,
    },
    /// The embedded server did not start.
    #[error("embedded kube-testserver: {0}")]
    Embedded(#[from] kube_testserver::Error),
}

/// Where to run.
#[derive(Debug, Clone, Default)]
pub enum Choice {
    /// The current kubeconfig's cluster when it answers, else an embedded server.
    #[default]
    Auto,
    /// This kubeconfig's cluster, which must answer.
    Kubeconfig(PathBuf),
    /// An embedded server, whatever the kubeconfig says.
    Embedded,
}

/// A reachable API server.
pub struct Target {
    /// The configuration (each replica makes its own client from it).
    pub config: Config,
    /// A line saying what the target is and why.
    pub description: String,
    /// The embedded server, when there is one (dropping it stops it).
    pub server: Option<TestServer>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("description", &self.description)
            .field("embedded", &self.server.is_some())
            .finish()
    }
}

impl Target {
    /// Whether the target is the embedded kube-testserver.
    pub fn is_embedded(&self) -> bool {
        self.server.is_some()
    }

    /// A new client with `qps`/`burst` client-side throttling (`qps` 0: none).
    pub fn client(&self, qps: f32, burst: usize) -> Result<Client, kube_rest::Error> {
        let config = if qps > 0.0 {
            self.config.clone().with_rate_limit(qps, burst)
        } else {
            self.config.clone().without_throttle()
        };
        Client::try_from_config(config)
    }
}

async fn answers(config: &Config) -> Result<String, String> {
    let client = Client::try_from_config(config.clone()).map_err(|e| e.to_string())?;
    match tokio::time::timeout(Duration::from_secs(5), client.server_version()).await {
        Ok(Ok(version)) => Ok(version.git_version),
        Ok(Err(e)) => Err(format!("answered {e}")),
        Err(_) => Err("no answer within 5 s".into()),
    }
}

/// An embedded kube-testserver with its simulated kubelet (pods Ready `kubelet_delay` after
/// they are created).
pub async fn embedded(kubelet_delay: Duration, reason: &str) -> Result<Target, TargetError> {
    let server = TestServer::builder()
        .simulated_kubelet(Some(kubelet_delay))
        .start()
        .await?;
    let kubeconfig =
        Kubeconfig::parse(&server.kubeconfig_yaml(), Path::new("embedded")).map_err(|source| {
            TargetError::Kubeconfig {
                path: "embedded".into(),
                source,
            }
        })?;
    let config =
        Config::from_kubeconfig(&kubeconfig).map_err(|source| TargetError::Kubeconfig {
            path: "embedded".into(),
            source,
        })?;
    Ok(Target {
        config,
        description: format!(
            "target: an embedded kube-testserver with a simulated kubelet at {} ({reason})",
            server.url()
        ),
        server: Some(server),
    })
}

/// Connects as `choice` says.
pub async fn connect(choice: &Choice, kubelet_delay: Duration) -> Result<Target, TargetError> {
    match choice {
        Choice::Embedded => embedded(kubelet_delay, "--embedded").await,
        Choice::Kubeconfig(path) => {
            let shown = path.display().to_string();
            let kubeconfig = Kubeconfig::read(path).map_err(|source| TargetError::Kubeconfig {
                path: shown.clone(),
                source,
            })?;
            let config =
                Config::from_kubeconfig(&kubeconfig).map_err(|source| TargetError::Kubeconfig {
                    path: shown.clone(),
                    source,
                })?;
            let server = config.cluster_url.to_string();
            match answers(&config).await {
                Ok(version) => Ok(Target {
                    description: format!(
                        "target: the cluster of {shown} ({server}, {version}), not an embedded server"
                    ),
                    config,
                    server: None,
                }),
                Err(reason) => Err(TargetError::Unreachable {
                    path: shown,
                    server,
                    reason,
                }),
            }
        }
        Choice::Auto => {
            let reason = match Config::infer() {
                Ok(config) => {
                    let server = config.cluster_url.to_string();
                    match answers(&config).await {
                        Ok(version) => {
                            return Ok(Target {
                                description: format!(
                                    "target: the cluster of the current kubeconfig ({server}, {version}), not an embedded server"
                                ),
                                config,
                                server: None,
                            });
                        }
                        Err(reason) => format!("the current kubeconfig's {server}: {reason}"),
                    }
                }
                Err(e) => format!("no cluster configured: {e}"),
            };
            embedded(kubelet_delay, &reason).await
        }
    }
}
