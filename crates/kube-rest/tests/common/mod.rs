//! The shared harness of kube-rest's integration tests.
//!
//! By default each test runs against its own kube-testserver. When the environment variable
//! [`KUBECONFIG_VAR`] (`KUBE_TOOLKIT_TEST_KUBECONFIG`) names a kubeconfig, the tests that can
//! run against any cluster use the current context of that file instead: each creates its own
//! namespace (`kt-<test>-<random>`) and deletes it at the end, even when it fails. Tests that
//! need what only kube-testserver offers (fault injection, compaction on demand, the simulated
//! kubelet, its own tokens and certificates) skip themselves there and print why
//! ([`skip_on_cluster`]); tests against hand-written servers never touch the cluster and run
//! as usual.

#![allow(dead_code, unreachable_pub)] // each test file uses a part of it

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube_rest::{Api, Client, Config, DeleteParams, Kubeconfig, KubeconfigLoader, PostParams};
use kube_testserver::{TestServer, TestServerBuilder};

/// The environment variable naming the kubeconfig of a cluster to run the tests against.
pub const KUBECONFIG_VAR: &str = "KUBE_TOOLKIT_TEST_KUBECONFIG";

/// The kubeconfig named by [`KUBECONFIG_VAR`], if any.
pub fn cluster_kubeconfig() -> Option<PathBuf> {
    std::env::var_os(KUBECONFIG_VAR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// Whether the tests run against a real cluster.
pub fn on_cluster() -> bool {
    cluster_kubeconfig().is_some()
}

/// `true` (after printing why) when running against a real cluster: the test needs something
/// only kube-testserver offers.
pub fn skip_on_cluster(test: &str, reason: &str) -> bool {
    if on_cluster() {
        eprintln!("skipping {test} on the cluster of ${KUBECONFIG_VAR}: {reason}");
        return true;
    }
    false
}

/// The client configuration of a kube-testserver (throttle on, as a user would get it).
pub fn config_of(server: &TestServer) -> Config {
    let kubeconfig = Kubeconfig::parse(
        &server.kubeconfig_yaml(),
        Path::new("/testserver/kubeconfig"),
    )
    .expect("kube-testserver writes a valid kubeconfig");
    Config::from_kubeconfig(&kubeconfig).expect("kube-testserver's kubeconfig resolves")
}

/// One test's server (or cluster), client and namespace.
pub struct TestEnv {
    /// A client without throttle whose default namespace is [`TestEnv::namespace`].
    pub client: Client,
    /// The test's namespace (created for it).
    pub namespace: String,
    config: Config,
    server: Option<TestServer>,
}

impl TestEnv {
    /// A kube-testserver with default options, or the cluster of [`KUBECONFIG_VAR`].
    pub async fn start(test: &str) -> TestEnv {
        TestEnv::start_with(test, TestServer::builder()).await
    }

    /// A kube-testserver built by `builder`, or the cluster of [`KUBECONFIG_VAR`] (where the
    /// builder's options do not apply: the test must not depend on them there).
    pub async fn start_with(test: &str, builder: TestServerBuilder) -> TestEnv {
        let (config, server) = match cluster_kubeconfig() {
            Some(path) => {
                let config = KubeconfigLoader::new()
                    .explicit_path(&path)
                    .load()
                    .unwrap_or_else(|e| panic!("${KUBECONFIG_VAR} ({}): {e}", path.display()));
                (config, None)
            }
            None => {
                let server = builder.start().await.expect("kube-testserver starts");
                (config_of(&server), Some(server))
            }
        };
        let namespace = namespace_name(test);
        let config = config.without_throttle().with_namespace(&namespace);
        let client = Client::try_from_config(config.clone()).expect("a client for the tests");
        let mut ns = Namespace::default();
        ns.metadata.name = Some(namespace.clone());
        ns.metadata.labels = Some([("kube-toolkit-test".to_string(), test.to_string())].into());
        Api::<Namespace>::cluster(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating the test namespace {namespace}: {e}"));
        if server.is_none() {
            // Without kube-controller-manager no `default` service account appears, and pods
            // are refused without one.
            let mut account = ServiceAccount::default();
            account.metadata.name = Some("default".into());
            match Api::<ServiceAccount>::namespaced(client.clone(), &namespace)
                .create(&PostParams::default(), &account)
                .await
            {
                Ok(_) => {}
                Err(e) if e.is_already_exists() => {}
                Err(e) => panic!("creating the default service account in {namespace}: {e}"),
            }
        }
        TestEnv {
            client,
            namespace,
            config,
            server,
        }
    }

    /// The configuration of [`TestEnv::client`] (no throttle, the test's namespace).
    pub fn config(&self) -> Config {
        self.config.clone()
    }

    /// The kube-testserver, `None` on a real cluster.
    pub fn server(&self) -> Option<&TestServer> {
        self.server.as_ref()
    }

    /// Whether this test runs against a real cluster.
    pub fn on_cluster(&self) -> bool {
        self.server.is_none()
    }

    /// Skips the rest of a test on a real cluster (printing why): `Some(server)` on
    /// kube-testserver.
    pub fn testserver_part(&self, test: &str, what: &str) -> Option<&TestServer> {
        if self.server.is_none() {
            eprintln!("{test}: skipping {what} on the cluster of ${KUBECONFIG_VAR}");
        }
        self.server.as_ref()
    }
}

impl Drop for TestEnv {
    /// Deletes the namespace of a test on a real cluster, also when the test failed (on
    /// another thread with its own runtime and client: this may run while the test's runtime
    /// unwinds).
    fn drop(&mut self) {
        if self.server.is_some() {
            return;
        }
        let config = self.config.clone();
        let namespace = self.namespace.clone();
        let deleted = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let client = Client::try_from_config(config).map_err(|e| e.to_string())?;
                match Api::<Namespace>::cluster(client)
                    .delete(&namespace, &DeleteParams::background())
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(e) if e.is_not_found() => Ok(()),
                    Err(e) => Err(e.to_string()),
                }
            })
        })
        .join();
        match deleted {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!(
                "could not delete the test namespace {}: {e}",
                self.namespace
            ),
            Err(_) => eprintln!("deleting the test namespace {} panicked", self.namespace),
        }
    }
}

/// `kt-<test>-<random>`: a valid namespace name (a DNS label of at most 63 characters).
fn namespace_name(test: &str) -> String {
    let mut name: String = test
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(45);
    let name = name.trim_matches('-');
    format!("kt-{name}-{:08x}", fastrand::u32(..))
}
