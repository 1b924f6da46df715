//! The server of the HTTP tests: a kube-testserver of their own, or, when
//! `KUBE_TOOLKIT_TEST_KUBECONFIG` names a kubeconfig, the cluster of its current context (as
//! kube-rest's tests do it). On a cluster each test gets namespaces of its own
//! (`kt-<test>-<name>-<random>`, labelled `kube-toolkit-test`), deleted at the end also when it
//! fails; tests that need what only kube-testserver offers (fault injection, compaction on
//! demand, closing watches, a server without watch-list) skip themselves there and say why.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
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

/// `true` (after printing why) when running against a real cluster: the test needs something
/// only kube-testserver offers.
pub fn skip_on_cluster(test: &str, reason: &str) -> bool {
    if cluster_kubeconfig().is_some() {
        eprintln!("skipping {test} on the cluster of ${KUBECONFIG_VAR}: {reason}");
        return true;
    }
    false
}

/// One test's server (or cluster), client and namespaces.
pub struct TestEnv {
    /// A client without throttle.
    pub client: Client,
    namespaces: Vec<(String, String)>,
    config: Config,
    server: Option<Arc<TestServer>>,
}

impl TestEnv {
    /// A kube-testserver built by `builder` with the namespaces `names`, or the cluster of
    /// [`KUBECONFIG_VAR`] with a fresh namespace for each name (the builder's options do not
    /// apply there: the test must not depend on them).
    pub async fn start(test: &str, builder: TestServerBuilder, names: &[&str]) -> TestEnv {
        TestEnv::start_configured(test, builder, names, |config| config).await
    }

    /// [`TestEnv::start`] with the client configuration changed by `configure` (after the
    /// throttle is turned off).
    pub async fn start_configured(
        test: &str,
        builder: TestServerBuilder,
        names: &[&str],
        configure: impl FnOnce(Config) -> Config,
    ) -> TestEnv {
        let (config, server) = match cluster_kubeconfig() {
            Some(path) => {
                let config = KubeconfigLoader::new()
                    .explicit_path(&path)
                    .load()
                    .unwrap_or_else(|e| panic!("${KUBECONFIG_VAR} ({}): {e}", path.display()));
                (config, None)
            }
            None => {
                // ok: test harness: a server that cannot start fails the test.
                let server = builder.start().await.expect("kube-testserver starts");
                // ok: test harness: kube-testserver's own kubeconfig is valid, or the test fails.
                let kubeconfig = Kubeconfig::parse(&server.kubeconfig_yaml(), Path::new("/t"))
                    .expect("kube-testserver writes a valid kubeconfig");
                // ok: test harness, as above.
                let config = Config::from_kubeconfig(&kubeconfig).expect("it resolves");
                (config, Some(Arc::new(server)))
            }
        };
        let config = configure(config.without_throttle());
        // ok: test harness: no client, no test.
        let client = Client::try_from_config(config.clone()).expect("a client for the tests");
        let namespaces: Vec<(String, String)> = names
            .iter()
            .map(|name| {
                let actual = if server.is_some() {
                    name.to_string()
                } else {
                    namespace_name(test, name)
                };
                (name.to_string(), actual)
            })
            .collect();
        // Built before the namespaces exist, so a failure below still deletes those made.
        let env = TestEnv {
            client,
            namespaces,
            config,
            server,
        };
        for (_, namespace) in &env.namespaces {
            let mut ns = Namespace::default();
            ns.metadata.name = Some(namespace.clone());
            ns.metadata.labels = Some([("kube-toolkit-test".to_string(), test.to_string())].into());
            Api::<Namespace>::cluster(env.client.clone())
                .create(&PostParams::default(), &ns)
                .await
                .unwrap_or_else(|e| panic!("creating the test namespace {namespace}: {e}"));
        }
        env
    }

    /// The actual name of the test's namespace `name` (`name` itself on kube-testserver).
    pub fn ns(&self, name: &str) -> &str {
        self.namespaces
            .iter()
            .find(|(given, _)| given == name)
            .map(|(_, actual)| actual.as_str())
            .unwrap_or_else(|| panic!("no test namespace {name}"))
    }

    /// `base` on kube-testserver; `base-<random>` on a cluster, where objects of earlier runs
    /// may remain (a cluster without namespace controller never empties deleted namespaces).
    pub fn unique(&self, base: &str) -> String {
        if self.server.is_some() {
            return base.to_string();
        }
        use std::hash::{BuildHasher as _, Hasher as _};
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish() as u32;
        format!("{base}-{random:08x}")
    }

    /// The kube-testserver, `None` on a real cluster.
    pub fn server(&self) -> Option<&TestServer> {
        self.server.as_deref()
    }

    /// The kube-testserver, shared (for a lister-watcher that outlives the test's borrow).
    pub fn shared_server(&self) -> Option<Arc<TestServer>> {
        self.server.clone()
    }
}

impl Drop for TestEnv {
    /// Deletes the test's namespaces on a real cluster, also when the test failed (on another
    /// thread with its own runtime and client: this may run while the test's runtime unwinds).
    fn drop(&mut self) {
        if self.server.is_some() {
            return;
        }
        let config = self.config.clone();
        let namespaces: Vec<String> = self.namespaces.iter().map(|(_, n)| n.clone()).collect();
        let deleted = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let client = Client::try_from_config(config).map_err(|e| e.to_string())?;
                let api = Api::<Namespace>::cluster(client);
                for namespace in &namespaces {
                    match api.delete(namespace, &DeleteParams::background()).await {
                        Ok(_) => {}
                        Err(e) if e.is_not_found() => {}
                        Err(e) => return Err(format!("{namespace}: {e}")),
                    }
                }
                Ok(())
            })
        })
        .join();
        match deleted {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not delete a test namespace: {e}"),
            Err(_) => eprintln!("deleting the test namespaces panicked"),
        }
    }
}

/// `kt-<test>-<name>-<random>`: a valid namespace name (a DNS label of at most 63 characters).
fn namespace_name(test: &str, name: &str) -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let label = |text: &str, max: usize| -> String {
        let mut label: String = text
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        label.truncate(max);
        label.trim_matches('-').to_string()
    };
    // Randomly keyed by the standard library: enough to keep runs apart.
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish() as u32;
    format!("kt-{}-{}-{random:08x}", label(test, 32), label(name, 12))
}
