//! Fuzzing without nightly (docs/fuzzing.md): kubeconfig YAML and watch streams, as arbitrary
//! input and as mutations of valid input. Every parse returns `Ok` or `Err` without panicking
//! or hanging; whatever parses also resolves to a `Config` (or a `ConfigError`) without
//! panicking; YAML alias bombs and deep nesting are refused without blowing memory or stack.
//! `PROPTEST_CASES` raises the number of cases.

use std::collections::VecDeque;
use std::path::Path;

use k8s_openapi::api::core::v1::ConfigMap;
use kube_rest::watch::WatchDecoder;
use kube_rest::{Config, Error, Kubeconfig, WatchEvent};
use kube_test_support::mutate::{cases, mutated, mutated_text, within_budget};
use proptest::prelude::*;

const KUBECONFIG: &str = r#"apiVersion: v1
kind: Config
current-context: dev
preferences: {}
clusters:
- name: dev
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUIKLS0tLS1FTkQgQ0VSVElGSUNBVEUtLS0tLQo=
    tls-server-name: kubernetes
    proxy-url: socks5://proxy:1080
- name: prod
  cluster: {server: "https://prod.example:443/prefix", insecure-skip-tls-verify: true, certificate-authority: ca.crt}
contexts:
- name: dev
  context: {cluster: dev, user: admin, namespace: team-a}
- name: prod
  context:
    cluster: prod
    user: exec
users:
- name: admin
  user:
    token: abc.def.ghi
    client-certificate-data: Y2VydA==
    client-key-data: a2V5
- name: basic
  user: {username: bob, password: "p@ss"}
- name: file
  user: {tokenFile: ../token, client-certificate: /tmp/c.crt, client-key: k.key}
- name: exec
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1beta1
      command: ./bin/plugin
      args: [get-token, --cluster, prod]
      env: [{name: A, value: "1"}, {name: B}]
      installHint: install it
      provideClusterInfo: false
      interactiveMode: Never
"#;

const JSON_KUBECONFIG: &str = r#"{"apiVersion":"v1","kind":"Config","current-context":"c","clusters":[{"name":"k","cluster":{"server":"http://localhost:8080"}}],"users":[{"name":"u","user":{"auth-provider":{"name":"gcp"}}}],"contexts":[{"name":"c","context":{"cluster":"k","user":"u"}}]}"#;

/// Parses `text` and, when it parses, resolves every context into a `Config`.
fn parse_and_resolve(text: String) {
    within_budget(move || {
        let Ok(kubeconfig) = Kubeconfig::parse(&text, Path::new("/fuzz/kubeconfig")) else {
            return;
        };
        let merged = kubeconfig.clone().merge(kubeconfig.clone());
        assert_eq!(merged.contexts.len(), kubeconfig.contexts.len());
        let _ = format!("{kubeconfig:?}");
        let mut names: Vec<Option<String>> = kubeconfig
            .contexts
            .iter()
            .map(|c| Some(c.name.clone()))
            .collect();
        names.push(None);
        for name in names.into_iter().take(8) {
            let mut kubeconfig = kubeconfig.clone();
            kubeconfig.current_context = name;
            if let Ok(config) = Config::from_kubeconfig(&kubeconfig) {
                let _ = format!("{config:?}");
            }
        }
        // Serializing and parsing again gives the same configuration.
        if let Ok(yaml) = serde_yaml_ng::to_string(&kubeconfig) {
            let again = Kubeconfig::parse(&yaml, Path::new("/fuzz/kubeconfig"))
                .expect("a serialized kubeconfig parses");
            assert_eq!(again.clusters, kubeconfig.clusters);
            assert_eq!(again.auth_infos, kubeconfig.auth_infos);
            assert_eq!(again.contexts, kubeconfig.contexts);
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn kubeconfig_arbitrary_text(text in "\\PC{0,200}") {
        parse_and_resolve(text);
    }

    #[test]
    fn kubeconfig_yaml_soup(text in "[a-z:{}\\[\\], \\n&*!|>'\"#-]{0,120}") {
        parse_and_resolve(text);
    }

    #[test]
    fn kubeconfig_mutated(text in mutated_text(vec![KUBECONFIG.into(), JSON_KUBECONFIG.into()])) {
        parse_and_resolve(text);
    }
}

#[test]
fn yaml_alias_bombs_and_deep_nesting_are_refused() {
    // "Billion laughs": nine levels of nine aliases would expand to 9^9 strings.
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for pair in names.windows(2) {
        let (prev, next) = (pair[0], pair[1]);
        bomb.push_str(&format!(
            "{next}: &{next} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"
        ));
    }
    bomb.push_str("users: *i\n");
    let result = within_budget(move || Kubeconfig::parse(&bomb, Path::new("/k")).map(|_| ()));
    assert!(result.is_err(), "an alias bomb must be refused");

    for deep in [
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
        format!("users: {}", "- ".repeat(50_000)),
        format!("{}1{}", "{a: ".repeat(50_000), "}".repeat(50_000)),
    ] {
        let result = within_budget(move || Kubeconfig::parse(&deep, Path::new("/k")).map(|_| ()));
        assert!(result.is_err());
    }
}

// ---------------------------------------------------------------------------------------------
// Watch streams: arbitrary and mutated bytes, any chunking
// ---------------------------------------------------------------------------------------------

fn valid_stream() -> Vec<u8> {
    let events = [
        r#"{"type":"ADDED","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a","resourceVersion":"7"},"data":{"k":"v"}}}"#,
        r#"{"type":"MODIFIED","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a","resourceVersion":"8"}}}"#,
        r#"{"type":"BOOKMARK","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"resourceVersion":"9","annotations":{"k8s.io/initial-events-end":"true"}}}}"#,
        r#"{"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","status":"Failure","message":"too old","reason":"Expired","code":410}}"#,
        r#"{"type":"DELETED","object":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"a"}}}"#,
    ];
    events.join("\n").into_bytes()
}

/// Decodes `bytes` cut at `cuts` with a 4 KiB event limit; returns how many items came out.
fn decode(bytes: Vec<u8>, cuts: Vec<usize>) -> usize {
    within_budget(move || {
        let mut decoder = WatchDecoder::with_max_event_bytes(4096);
        let mut out: VecDeque<Result<WatchEvent<ConfigMap>, Error>> = VecDeque::new();
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        points.sort_unstable();
        let mut start = 0;
        for p in points.into_iter().chain([bytes.len()]) {
            decoder.push(&bytes[start..p], &mut out);
            start = p;
        }
        let end = decoder.finish();
        // Every complete event yields at most one item per byte; nothing is buffered beyond
        // the limit.
        assert!(out.len() <= bytes.len() + 1);
        out.len() + usize::from(end.is_err())
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn watch_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..512),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        decode(bytes, cuts);
    }

    #[test]
    fn watch_mutated(
        bytes in mutated(vec![valid_stream()]),
        cuts in prop::collection::vec(any::<usize>(), 0..8),
    ) {
        decode(bytes, cuts);
    }
}

#[test]
fn watch_garbage_without_end_is_bounded() {
    // An unterminated string grows the buffer: refused past the limit, not kept forever.
    let mut decoder = WatchDecoder::with_max_event_bytes(1024);
    let mut out: VecDeque<Result<WatchEvent<ConfigMap>, Error>> = VecDeque::new();
    decoder.push(br#"{"type":"ADDED","object":{"data":""#, &mut out);
    for _ in 0..100 {
        decoder.push(&[b'x'; 100], &mut out);
        decoder.push(b"}", &mut out);
    }
    assert!(
        out.iter()
            .any(|e| matches!(e, Err(Error::WatchFrameTooLarge { .. }))),
        "{out:?}"
    );
}
