//! End-to-end tests of the `kube-jsonpath` binary: the seed README's examples on the seed's
//! test pod (outputs recorded from `kubectl` 1.37, which prints the same bytes), input
//! formats, flags and exit codes.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const POD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/pod.yaml");

fn cli(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_kube-jsonpath"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn kube-jsonpath");
    {
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).expect("write stdin");
        }
    }
    child.wait_with_output().expect("wait")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).expect("utf8 stdout")
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).expect("utf8 stderr")
}

/// The seed README's examples (`kubectl get pod test-jsonpath -o jsonpath=...`), plus two
/// common ones; outputs as kubectl printed them for `testdata/pod.yaml`.
const SEED_EXAMPLES: &[(&str, &str)] = &[
    ("{.kind}", "Pod"),
    ("{.metadata.name}", "test-jsonpath"),
    ("{['metadata.name']}", "test-jsonpath"),
    (
        "names : [{..name}] ",
        "names : [test-jsonpath nginx kube-api-access-w9kjk kube-api-access-w9kjk kube-root-ca.crt nginx] ",
    ),
    (
        "{.spec.tolerations}",
        "[{\"effect\":\"NoExecute\",\"key\":\"node.kubernetes.io/not-ready\",\"operator\":\"Exists\",\"tolerationSeconds\":300},{\"effect\":\"NoExecute\",\"key\":\"node.kubernetes.io/unreachable\",\"operator\":\"Exists\",\"tolerationSeconds\":300}]",
    ),
    (
        "{.spec.tolerations[*]}",
        "{\"effect\":\"NoExecute\",\"key\":\"node.kubernetes.io/not-ready\",\"operator\":\"Exists\",\"tolerationSeconds\":300} {\"effect\":\"NoExecute\",\"key\":\"node.kubernetes.io/unreachable\",\"operator\":\"Exists\",\"tolerationSeconds\":300}",
    ),
    (
        "{.spec.tolerations[0]}",
        "{\"effect\":\"NoExecute\",\"key\":\"node.kubernetes.io/not-ready\",\"operator\":\"Exists\",\"tolerationSeconds\":300}",
    ),
    (
        "{.spec.tolerations[0:2]}",
        "{\"effect\":\"NoExecute\",\"key\":\"node.kubernetes.io/not-ready\",\"operator\":\"Exists\",\"tolerationSeconds\":300} {\"effect\":\"NoExecute\",\"key\":\"node.kubernetes.io/unreachable\",\"operator\":\"Exists\",\"tolerationSeconds\":300}",
    ),
    (
        "{.spec.tolerations[?(@.effect==\"NoExecute\")]}",
        "{\"effect\":\"NoExecute\",\"key\":\"node.kubernetes.io/not-ready\",\"operator\":\"Exists\",\"tolerationSeconds\":300} {\"effect\":\"NoExecute\",\"key\":\"node.kubernetes.io/unreachable\",\"operator\":\"Exists\",\"tolerationSeconds\":300}",
    ),
    (
        "{range .spec.tolerations[*]} effect:{.effect} , key:{.key} | {end}",
        " effect:NoExecute , key:node.kubernetes.io/not-ready |  effect:NoExecute , key:node.kubernetes.io/unreachable | ",
    ),
    (
        "{range .spec.tolerations[*]}effect:{.effect}{'\\t'}key:{.key}{'\\n'}{end}",
        "effect:NoExecute\tkey:node.kubernetes.io/not-ready\neffect:NoExecute\tkey:node.kubernetes.io/unreachable\n",
    ),
    ("{.spec.containers[*].ports[*].containerPort}", "80"),
    ("{.status.conditions[?(@.type==\"Ready\")].status}", "True"),
];

#[test]
fn seed_readme_examples_match_kubectl() {
    for (template, expected) in SEED_EXAMPLES {
        let output = cli(&["--", template, POD], None);
        assert!(output.status.success(), "{template}: {}", stderr(&output));
        assert_eq!(stdout(&output), *expected, "template {template}");
    }
}

#[test]
fn whole_object_prints_as_sorted_compact_json() {
    let output = cli(&["{@}", POD], None);
    assert!(output.status.success());
    let text = stdout(&output);
    assert!(text.starts_with(r#"{"apiVersion":"v1","kind":"Pod","metadata":{"creationTimestamp""#));
    assert!(!text.ends_with('\n'), "no newline is added");
}

#[test]
fn json_input_on_stdin() {
    let output = cli(
        &["{.items[*].metadata.name}"],
        Some(r#"{"items": [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}]}"#),
    );
    assert!(output.status.success());
    assert_eq!(stdout(&output), "a b");
    let output = cli(&["{.a}", "-"], Some("a: 1.5\n"));
    assert_eq!(stdout(&output), "1.5");
    // YAML flow style that is not JSON.
    let output = cli(&["{.a}"], Some("{a: x}"));
    assert_eq!(stdout(&output), "x");
}

#[test]
fn map_wildcards_follow_document_order() {
    let output = cli(&["{.m.*}"], Some(r#"{"m": {"z": 1, "a": 2, "k": 3}}"#));
    assert_eq!(stdout(&output), "1 2 3");
    let output = cli(&["{.m}"], Some(r#"{"m": {"z": 1, "a": 2, "k": 3}}"#));
    assert_eq!(stdout(&output), r#"{"a":2,"k":3,"z":1}"#);
}

#[test]
fn flags() {
    let output = cli(&["{.metadata.nope}", POD], None);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: error executing jsonpath \"{.metadata.nope}\": Error executing template: nope is not found\n"
    );
    assert!(output.stdout.is_empty());

    let output = cli(&["--allow-missing-keys", "x{.metadata.nope}y", POD], None);
    assert!(output.status.success());
    assert_eq!(stdout(&output), "xy");

    let output = cli(&["--json-output", "{.metadata.name}", POD], None);
    assert_eq!(stdout(&output), "[\n    \"test-jsonpath\"\n]\n");

    // `--` lets a template start with `-`.
    let output = cli(&["--", "-{.kind}", POD], None);
    assert_eq!(stdout(&output), "-Pod");
}

#[test]
fn parse_errors_exit_1_with_client_go_message() {
    let output = cli(&["{.metadata.name", POD], None);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        "error: error parsing jsonpath {.metadata.name, unclosed action\n"
    );
}

#[test]
fn bad_input_exits_1() {
    let output = cli(&["{.a}"], Some("{\"a\": "));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).starts_with("error: invalid input document: invalid JSON"));
    let output = cli(&["{.a}", "/nonexistent/file.json"], None);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("cannot read /nonexistent/file.json"));
}

#[test]
fn usage_errors_exit_2() {
    for args in [
        &[][..],
        &["--bogus", "{.a}"][..],
        &["{.a}", "f", "extra"][..],
    ] {
        let output = cli(args, None);
        assert_eq!(output.status.code(), Some(2), "args {args:?}");
        assert!(stderr(&output).contains("usage: kube-jsonpath"));
    }
    let output = cli(&["--help"], None);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).starts_with("usage: kube-jsonpath"));
    let output = cli(&["--version"], None);
    assert_eq!(
        stdout(&output),
        format!("kube-jsonpath {}\n", env!("CARGO_PKG_VERSION"))
    );
}
