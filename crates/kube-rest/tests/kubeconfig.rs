//! Kubeconfig loading: client-go's merge rules, overrides, relative paths, in-cluster and
//! broken files (table-driven).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use kube_rest::config::Credentials;
use kube_rest::{ConfigError, KubeconfigLoader, Source};

fn temp_dir() -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "kube-rest-kubeconfig-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path
}

const A: &str = r#"
apiVersion: v1
kind: Config
clusters:
- name: shared
  cluster: {server: "https://a.example:6443", certificate-authority: certs/ca.pem}
- name: only-a
  cluster: {server: "https://only-a.example"}
users:
- name: alice
  user: {token: alice-token}
contexts:
- name: a
  context: {cluster: shared, user: alice, namespace: team-a}
"#;

const B: &str = r#"
apiVersion: v1
kind: Config
current-context: b
clusters:
- name: shared
  cluster: {server: "https://b.example:6443"}
users:
- name: alice
  user: {token: bob-pretending-to-be-alice}
- name: bob
  user: {tokenFile: secrets/token}
contexts:
- name: a
  context: {cluster: only-a, user: bob}
- name: b
  context: {cluster: shared, user: bob}
"#;

const C: &str = r#"
current-context: a
"#;

struct Expect {
    server: &'static str,
    namespace: &'static str,
}

fn loader(dir: &Path, env: &[&str]) -> KubeconfigLoader {
    let list = std::env::join_paths(env.iter().map(|name| dir.join(name))).unwrap();
    KubeconfigLoader::new()
        .kubeconfig_env(Some(list))
        .home_dir(None::<PathBuf>)
        .in_cluster_env(None, None, dir.join("no-serviceaccount"))
}

#[test]
fn merging_follows_client_go_rules() {
    type Case = (
        &'static str,
        Vec<&'static str>,
        fn(KubeconfigLoader) -> KubeconfigLoader,
        Expect,
    );
    let cases: Vec<Case> = vec![
        // B sets current-context (A does not): context b, cluster "shared" from A (first wins).
        (
            "first file wins map keys",
            vec!["a", "b"],
            |l| l,
            Expect {
                server: "https://a.example:6443/",
                namespace: "default",
            },
        ),
        // Order reversed: shared comes from B now.
        (
            "order matters",
            vec!["b", "a"],
            |l| l,
            Expect {
                server: "https://b.example:6443/",
                namespace: "default",
            },
        ),
        // C sets current-context first: context "a" from A (A before B in the list).
        (
            "current-context from the first file that sets it",
            vec!["c", "a", "b"],
            |l| l,
            Expect {
                server: "https://a.example:6443/",
                namespace: "team-a",
            },
        ),
        // The context "a" of B loses against A's.
        (
            "contexts merge by name",
            vec!["c", "b", "a"],
            |l| l,
            Expect {
                server: "https://only-a.example/",
                namespace: "default",
            },
        ),
        (
            "missing files are skipped",
            vec!["missing", "a", "b"],
            |l| l,
            Expect {
                server: "https://a.example:6443/",
                namespace: "default",
            },
        ),
        (
            "duplicates are ignored",
            vec!["a", "a", "b"],
            |l| l,
            Expect {
                server: "https://a.example:6443/",
                namespace: "default",
            },
        ),
        (
            "context override",
            vec!["a", "b"],
            |l| l.context("a"),
            Expect {
                server: "https://a.example:6443/",
                namespace: "team-a",
            },
        ),
        (
            "namespace override",
            vec!["a", "b"],
            |l| l.namespace("ns"),
            Expect {
                server: "https://a.example:6443/",
                namespace: "ns",
            },
        ),
        (
            "cluster override",
            vec!["a", "b"],
            |l| l.cluster("only-a"),
            Expect {
                server: "https://only-a.example/",
                namespace: "default",
            },
        ),
        (
            "server override",
            vec!["a", "b"],
            |l| l.server("http://127.0.0.1:8080"),
            Expect {
                server: "http://127.0.0.1:8080/",
                namespace: "default",
            },
        ),
    ];
    for (name, env, configure, expect) in cases {
        let dir = temp_dir();
        write(&dir, "a", A);
        write(&dir, "b", B);
        write(&dir, "c", C);
        write(&dir, "secrets/token", "tok\n");
        let config = configure(loader(&dir, &env))
            .load()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(config.cluster_url.to_string(), expect.server, "{name}");
        assert_eq!(config.default_namespace, expect.namespace, "{name}");
    }
}

#[test]
fn relative_paths_resolve_against_their_file() {
    let dir = temp_dir();
    write(&dir, "a", A);
    write(&dir, "sub/b", B);
    write(&dir, "sub/secrets/token", "tok");
    let list = std::env::join_paths([dir.join("a"), dir.join("sub/b")]).unwrap();
    let loader = KubeconfigLoader::new()
        .kubeconfig_env(Some(list))
        .home_dir(None::<PathBuf>);
    let config = loader.clone().load().unwrap();
    // User bob comes from sub/b: its token file is relative to sub/.
    assert_eq!(
        config.credentials,
        Credentials::TokenFile(dir.join("sub/secrets/token"))
    );
    // Cluster shared comes from a: its CA is relative to the top directory.
    assert_eq!(config.root_ca, Some(Source::File(dir.join("certs/ca.pem"))));
    // The user "alice" of A wins over B's.
    let config = loader.user("alice").load().unwrap();
    assert_eq!(config.credentials, Credentials::Token("alice-token".into()));
}

#[test]
fn home_config_and_explicit_path() {
    let dir = temp_dir();
    write(&dir, ".kube/config", B);
    write(&dir, ".kube/secrets/token", "t");
    let config = KubeconfigLoader::new()
        .kubeconfig_env(None::<String>)
        .home_dir(Some(&dir))
        .load()
        .unwrap();
    assert_eq!(config.cluster_url.to_string(), "https://b.example:6443/");

    // An explicit path wins over $KUBECONFIG and home.
    write(&dir, "explicit", A);
    let config = loader(&dir, &["b"])
        .explicit_path(dir.join("explicit"))
        .context("a")
        .load()
        .unwrap();
    assert_eq!(config.default_namespace, "team-a");
    // ... and must exist.
    let err = loader(&dir, &["b"])
        .explicit_path(dir.join("nope"))
        .load()
        .unwrap_err();
    assert!(
        matches!(err, ConfigError::Read { ref path, .. } if path.ends_with("nope")),
        "{err}"
    );
    // An empty $KUBECONFIG falls back to home.
    let config = KubeconfigLoader::new()
        .kubeconfig_env(Some(""))
        .home_dir(Some(&dir))
        .load()
        .unwrap();
    assert_eq!(config.cluster_url.to_string(), "https://b.example:6443/");
}

#[test]
fn broken_and_inconsistent_files_give_clear_errors() {
    type Case = (
        &'static str,
        &'static str,
        fn(KubeconfigLoader) -> KubeconfigLoader,
        &'static [&'static str],
    );
    let cases: Vec<Case> = vec![
        (
            "invalid yaml",
            "clusters: [\n  - name: x\n   bad",
            |l| l,
            &["parsing kubeconfig", "/k"],
        ),
        (
            "not a mapping",
            "- a\n- b\n",
            |l| l,
            &["parsing kubeconfig", "mapping"],
        ),
        (
            "wrong shape",
            "clusters: \"nope\"\n",
            |l| l,
            &["parsing kubeconfig", "/k"],
        ),
        ("wrong kind", "kind: Pod\n", |l| l, &["kind is \"Pod\""]),
        (
            "unnamed entry",
            "clusters:\n- cluster: {server: https://x}\n  name: \"\"\n",
            |l| l,
            &["empty name"],
        ),
        ("empty file", "", |l| l, &["no current context", "/k"]),
        (
            "missing context",
            "current-context: ghost\n",
            |l| l,
            &["context \"ghost\" not found in", "/k"],
        ),
        (
            "missing cluster",
            "current-context: x\ncontexts: [{name: x, context: {cluster: nowhere, user: u}}]\n",
            |l| l,
            &["cluster \"nowhere\" not found"],
        ),
        (
            "missing user",
            "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: nobody}}]\nclusters: [{name: c, cluster: {server: \"https://c\"}}]\n",
            |l| l,
            &["user \"nobody\" not found"],
        ),
        (
            "no server",
            "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {}}]\n",
            |l| l,
            &["cluster \"c\" has no server"],
        ),
        (
            "bad server",
            "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {server: \"ftp://c\"}}]\n",
            |l| l,
            &["must be http:// or https://"],
        ),
        (
            "bad base64",
            "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {server: \"https://c\", certificate-authority-data: \"%%%\"}}]\n",
            |l| l,
            &["certificate-authority-data of cluster \"c\"", "base64"],
        ),
        (
            "insecure with a CA",
            "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {server: \"https://c\", certificate-authority: ca, insecure-skip-tls-verify: true}}]\n",
            |l| l,
            &["insecure flag"],
        ),
        (
            "token and basic auth",
            "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: \"https://c\"}}]\nusers: [{name: u, user: {token: t, username: me, password: p}}]\n",
            |l| l,
            &["not both"],
        ),
        (
            "certificate without key",
            "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: \"https://c\"}}]\nusers: [{name: u, user: {client-certificate: cert.pem}}]\n",
            |l| l,
            &["user \"u\"", "no client key"],
        ),
        (
            "exec plugin",
            "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: \"https://c\"}}]\nusers: [{name: u, user: {exec: {command: aws}}}]\n",
            |l| l,
            &["user \"u\"", "exec plugin apiVersion \"\" is not supported"],
        ),
        (
            "interactive exec plugin",
            "current-context: x\ncontexts: [{name: x, context: {cluster: c, user: u}}]\nclusters: [{name: c, cluster: {server: \"https://c\"}}]\nusers: [{name: u, user: {exec: {command: login, apiVersion: client.authentication.k8s.io/v1, interactiveMode: Always}}}]\n",
            |l| l,
            &["interactive terminal"],
        ),
        (
            "proxy-url",
            "current-context: x\ncontexts: [{name: x, context: {cluster: c}}]\nclusters: [{name: c, cluster: {server: \"https://c\", proxy-url: \"https://proxy:3128\"}}]\n",
            |l| l,
            &["cluster \"c\"", "https proxies are not supported"],
        ),
        (
            "context override missing",
            "",
            |l| l.context("nope"),
            &["context \"nope\" not found"],
        ),
    ];
    for (name, text, configure, needles) in cases {
        let dir = temp_dir();
        write(&dir, "k", text);
        let err = configure(loader(&dir, &["k"])).load().expect_err(name);
        let message = err.to_string();
        for needle in needles {
            assert!(
                message.contains(needle),
                "{name}: {message:?} does not contain {needle:?}"
            );
        }
    }
}

#[test]
fn credentials_and_inline_data() {
    let dir = temp_dir();
    let text = r#"
current-context: x
contexts: [{name: x, context: {cluster: c, user: u}}]
clusters: [{name: c, cluster: {server: "https://c", certificate-authority-data: "Q0EgUEVN", tls-server-name: kubernetes}}]
users: [{name: u, user: {token: inline, tokenFile: /ignored, client-certificate-data: "Q0VSVA==", client-key-data: "S0VZ"}}]
"#;
    write(&dir, "k", text);
    let config = loader(&dir, &["k"]).load().unwrap();
    assert_eq!(config.root_ca, Some(Source::Data(b"CA PEM".to_vec())));
    assert_eq!(config.tls_server_name.as_deref(), Some("kubernetes"));
    assert_eq!(config.credentials, Credentials::Token("inline".into()));
    assert_eq!(
        config.client_identity,
        Some((
            Source::Data(b"CERT".to_vec()),
            Source::Data(b"KEY".to_vec())
        ))
    );

    let text = r#"
current-context: x
contexts: [{name: x, context: {cluster: c, user: u}}]
clusters: [{name: c, cluster: {server: "https://c", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {username: me, password: secret}}]
"#;
    write(&dir, "k", text);
    let config = loader(&dir, &["k"]).load().unwrap();
    assert!(config.insecure_skip_tls_verify);
    assert_eq!(config.proxy_url, None);
    assert_eq!(
        config.credentials,
        Credentials::Basic {
            username: "me".into(),
            password: "secret".into()
        }
    );
}

#[test]
fn in_cluster_configuration() {
    let dir = temp_dir();
    let sa = dir.join("sa");
    write(&sa, "token", "sa-token");
    write(&sa, "ca.crt", "CA");
    write(&sa, "namespace", "kube-system\n");
    let base = || {
        KubeconfigLoader::new()
            .kubeconfig_env(None::<String>)
            .home_dir(None::<PathBuf>)
    };

    let config = base()
        .in_cluster_env(Some("10.0.0.1".into()), Some("443".into()), &sa)
        .load()
        .unwrap();
    assert_eq!(config.cluster_url.to_string(), "https://10.0.0.1:443/");
    assert_eq!(config.default_namespace, "kube-system");
    assert_eq!(config.credentials, Credentials::TokenFile(sa.join("token")));
    assert_eq!(config.root_ca, Some(Source::File(sa.join("ca.crt"))));

    let config = base()
        .in_cluster_env(Some("fd00::1".into()), Some("6443".into()), &sa)
        .namespace("x")
        .load()
        .unwrap();
    assert_eq!(config.cluster_url.to_string(), "https://[fd00::1]:6443/");
    assert_eq!(config.default_namespace, "x");

    // Without a token file.
    let err = base()
        .in_cluster_env(
            Some("10.0.0.1".into()),
            Some("443".into()),
            dir.join("empty"),
        )
        .load()
        .unwrap_err();
    assert!(
        err.to_string().contains("in-cluster configuration"),
        "{err}"
    );
    // Without the environment.
    let err = base()
        .in_cluster_env(None, Some("443".into()), &sa)
        .load()
        .unwrap_err();
    assert!(matches!(err, ConfigError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("KUBERNETES_SERVICE_HOST"), "{err}");
}

#[test]
fn kubeconfig_round_trips_through_yaml() {
    let dir = temp_dir();
    let path = write(&dir, "a", A);
    let parsed = kube_rest::Kubeconfig::read(&path).unwrap();
    assert_eq!(parsed.clusters.len(), 2);
    assert_eq!(parsed.sources, vec![path.clone()]);
    let yaml = serde_yaml_ng::to_string(&parsed).unwrap();
    let again = kube_rest::Kubeconfig::parse(&yaml, Path::new("/elsewhere/k")).unwrap();
    assert_eq!(again.clusters, parsed.clusters);
    assert_eq!(again.contexts, parsed.contexts);
}

#[test]
fn debug_output_redacts_secrets() {
    let dir = temp_dir();
    let text = r#"
current-context: x
contexts: [{name: x, context: {cluster: c, user: u}}]
clusters: [{name: c, cluster: {server: "https://c"}}]
users: [{name: u, user: {token: s3cret-token, client-certificate-data: "Q0VSVA==", client-key-data: "S0VZLVNFQ1JFVA=="}}]
"#;
    write(&dir, "k", text);
    let kubeconfig = kube_rest::Kubeconfig::read(dir.join("k")).unwrap();
    let printed = format!("{kubeconfig:?}");
    assert!(
        !printed.contains("s3cret") && !printed.contains("S0VZ"),
        "{printed}"
    );
    let config = kube_rest::Config::from_kubeconfig(&kubeconfig).unwrap();
    let printed = format!("{config:?}");
    assert!(
        !printed.contains("s3cret") && !printed.contains("KEY-SECRET"),
        "{printed}"
    );
    assert!(printed.contains("<redacted>"), "{printed}");
    let basic = Credentials::Basic {
        username: "me".into(),
        password: "hunter2".into(),
    };
    assert!(!format!("{basic:?}").contains("hunter2"));
}

/// An empty kubeconfig counts as none: in a pod, the in-cluster configuration is used (client-go
/// treats ErrEmptyConfig the same way).
#[test]
fn empty_kubeconfig_falls_back_to_in_cluster() {
    let dir = temp_dir();
    let sa = dir.join("sa");
    write(&sa, "token", "sa-token");
    write(&sa, "ca.crt", "CA");
    write(&sa, "namespace", "apps\n");
    write(&dir, "empty-config", "");
    let config = KubeconfigLoader::new()
        .kubeconfig_env(Some(dir.join("empty-config").display().to_string()))
        .home_dir(None::<PathBuf>)
        .in_cluster_env(Some("10.0.0.1".into()), Some("443".into()), &sa)
        .load()
        .unwrap();
    assert_eq!(config.default_namespace, "apps");
    assert_eq!(config.credentials, Credentials::TokenFile(sa.join("token")));
}
