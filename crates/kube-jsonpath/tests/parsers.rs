//! Fuzzing without nightly (docs/fuzzing.md): kubectl's JSONPath templates, mutated from valid
//! ones, parsed and executed against a realistic object under a time budget; deep nesting is
//! an error, not a stack overflow. `PROPTEST_CASES` raises the number of cases.

use kube_test_support::mutate;

use kube_jsonpath::{JsonPath, Template};
use mutate::{cases, mutated_text, within_budget};
use proptest::prelude::*;

const TEMPLATES: &[&str] = &[
    "{.metadata.name}",
    "{range .items[*]}{.metadata.name}{\"\\t\"}{.status.phase}{\"\\n\"}{end}",
    "{.items[?(@.status.phase==\"Running\")].metadata.name}",
    "{.items[0:2].spec.containers[*].image}",
    "{.items[-1:].metadata['name','namespace']}",
    "{..image}",
    "{$.items[*].metadata.labels.app\\.kubernetes\\.io/name}",
    "{.items[?(@.spec.replicas > 1)].metadata.uid} and {.kind}",
    "{range .items[*]}[{.metadata.name}, {.status.conditions[?(@.type=='Ready')].status}]{end}",
];

const POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web-7d4b9c","namespace":"team-a","uid":"3f1c","labels":{"app":"web","app.kubernetes.io/name":"web"},"annotations":{"a/b":"c"},"ownerReferences":[{"kind":"ReplicaSet","name":"web-7d4b","controller":true}]},"spec":{"replicas":2,"containers":[{"name":"web","image":"nginx:1.27","ports":[{"containerPort":80,"protocol":"TCP"}],"env":[{"name":"A","value":"1"}],"resources":{"limits":{"cpu":"500m","memory":"128Mi"}}},{"name":"sidecar","image":"busybox","args":["sleep","3600"]}],"nodeName":"node-1"},"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"},{"type":"PodScheduled","status":"True"}],"containerStatuses":[{"name":"web","ready":true,"restartCount":0,"image":"nginx:1.27"}],"podIP":"10.0.0.7"}}"#;

fn pod_list() -> serde_json::Value {
    let pod: serde_json::Value = serde_json::from_str(POD).expect("fixture");
    serde_json::json!({"kind": "List", "items": [pod.clone(), pod, {"metadata": {"name": "x"}, "spec": {"replicas": 3}}]})
}

fn run(text: String) {
    within_budget(move || {
        let data = pod_list();
        if let Ok(template) = Template::parse(&text) {
            let printed = template.to_string();
            assert_eq!(
                Template::parse(&printed).ok().as_ref(),
                Some(&template),
                "{printed}"
            );
            for allow in [false, true] {
                let path = JsonPath::from_template(template.clone()).allow_missing_keys(allow);
                if let Ok(out) = path.render_to_vec(&data) {
                    // Output is bounded by the template's loops over a finite document.
                    assert!(out.len() < 64 << 20);
                }
                let _ = path.json_output(true).render_to_vec(&data);
            }
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn templates_mutated(text in mutated_text(TEMPLATES.iter().map(|t| t.to_string()).collect())) {
        run(text);
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    for text in [
        "{".repeat(100_000),
        format!("{{{}}}", "[".repeat(100_000)),
        format!("{{.a{}}}", "[?(@.b".repeat(20_000)),
        format!("{{{}}}", "(".repeat(100_000)),
        format!("{}{}", "{range .a}".repeat(20_000), "{end}".repeat(20_000)),
    ] {
        within_budget(move || {
            if let Ok(template) = Template::parse(&text) {
                let _ = JsonPath::from_template(template).render_to_vec(&pod_list());
            }
        });
    }
}

#[test]
fn recursive_descent_stays_bounded() {
    // Each `..` visits every node below the previous matches: the output stays bounded
    // by the document's size times the path's depth.
    let data = pod_list();
    let out = within_budget(move || {
        JsonPath::parse("{..metadata..name}")
            .unwrap()
            .render_to_vec(&data)
            .map(|o| o.len())
    });
    assert!(out.is_ok());
}
