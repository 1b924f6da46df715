//! Execution tests: every case of client-go's `jsonpath_test.go` (and `empty_array_test.go`),
//! written anew, plus edge cases checked against kubectl 1.37.

use super::*;
use serde_json::{Value, json};

/// Runs `template` on `data` and returns the output or the error message.
fn run_with<V: JsonValue>(
    template: &str,
    data: &V,
    allow_missing_keys: bool,
) -> Result<String, String> {
    let jp = JsonPath::parse(template)
        .map_err(|e| format!("parse: {e}"))?
        .allow_missing_keys(allow_missing_keys);
    jp.render(data).map_err(|e| e.to_string())
}

fn ok(template: &str, data: &Value, expected: &str) {
    assert_eq!(
        run_with(template, data, false).as_deref(),
        Ok(expected),
        "template {template}"
    );
}

fn ok_doc(template: &str, data: &Document, expected: &str) {
    assert_eq!(
        run_with(template, data, false).as_deref(),
        Ok(expected),
        "template {template}"
    );
}

fn ok_missing(template: &str, data: &Value, expected: &str) {
    assert_eq!(
        run_with(template, data, true).as_deref(),
        Ok(expected),
        "template {template}"
    );
}

fn fails(template: &str, data: &Value) -> String {
    match run_with(template, data, false) {
        Ok(out) => panic!("template {template}: expected an error, got {out:?}"),
        Err(e) => e,
    }
}

fn fails_with(template: &str, data: &Value, message: &str) {
    assert_eq!(fails(template, data), message, "template {template}");
}

// TestTypesInput. Go's typed slices become JSON arrays. Structs become maps, whose keys print
// sorted (kubectl always converts objects to maps before running a template).
#[test]
fn types_input() {
    let types = json!({
        "bools": [true, false, true, false],
        "integers": [1, 2, 3, 4],
        "floats": [1.0, 2.2, 3.3, 4.0],
        "strings": ["one", "two", "three", "four"],
        "interfaces": [true, "one", 1, 1.1],
        "maps": [
            {"name": "one", "value": 1},
            {"name": "two", "value": 2.02},
            {"name": "three", "value": 3.03},
            {"name": "four", "value": 4.04},
        ],
        "structs": [
            {"name": "one", "value": 1, "type": "integer"},
            {"name": "two", "value": 2.002, "type": "float"},
            {"name": "three", "value": 3, "type": "integer"},
            {"name": "four", "value": 4.004, "type": "float"},
        ],
    });
    let cases = [
        ("{ .bools }", "[true,false,true,false]"),
        ("{ .bools[0] }", "true"),
        ("{ .bools[-1] }", "false"),
        ("{ .bools[0:2] }", "true false"),
        ("{ .bools[:2] }", "true false"),
        ("{ .bools[:4:2] }", "true true"),
        ("{ .integers }", "[1,2,3,4]"),
        ("{ .integers[0] }", "1"),
        ("{ .integers[-2] }", "3"),
        ("{ .integers[0:2] }", "1 2"),
        ("{ .integers[:2] }", "1 2"),
        ("{ .integers[:4:2] }", "1 3"),
        ("{ .floats }", "[1,2.2,3.3,4]"),
        ("{ .floats[0] }", "1"),
        ("{ .floats[-2] }", "3.3"),
        ("{ .floats[0:2] }", "1 2.2"),
        ("{ .floats[:2] }", "1 2.2"),
        ("{ .floats[:4:2] }", "1 3.3"),
        ("{ .strings }", r#"["one","two","three","four"]"#),
        ("{ .strings[0] }", "one"),
        ("{ .strings[-2] }", "three"),
        ("{ .strings[0:2] }", "one two"),
        ("{ .strings[:2] }", "one two"),
        ("{ .strings[:4:2] }", "one three"),
        ("{ .interfaces }", r#"[true,"one",1,1.1]"#),
        ("{ .interfaces[0] }", "true"),
        ("{ .interfaces[-2] }", "1"),
        ("{ .interfaces[0:2] }", "true one"),
        ("{ .interfaces[:2] }", "true one"),
        ("{ .interfaces[:4:2] }", "true 1"),
        (
            "{ .maps }",
            r#"[{"name":"one","value":1},{"name":"two","value":2.02},{"name":"three","value":3.03},{"name":"four","value":4.04}]"#,
        ),
        ("{ .maps[0] }", r#"{"name":"one","value":1}"#),
        ("{ .maps[-2] }", r#"{"name":"three","value":3.03}"#),
        (
            "{ .maps[0:2] }",
            r#"{"name":"one","value":1} {"name":"two","value":2.02}"#,
        ),
        (
            "{ .maps[:2] }",
            r#"{"name":"one","value":1} {"name":"two","value":2.02}"#,
        ),
        (
            "{ .maps[::2] }",
            r#"{"name":"one","value":1} {"name":"three","value":3.03}"#,
        ),
        (
            "{ .maps[1::2] }",
            r#"{"name":"two","value":2.02} {"name":"four","value":4.04}"#,
        ),
        (
            "{ .structs }",
            r#"[{"name":"one","type":"integer","value":1},{"name":"two","type":"float","value":2.002},{"name":"three","type":"integer","value":3},{"name":"four","type":"float","value":4.004}]"#,
        ),
        (
            "{ .structs[0] }",
            r#"{"name":"one","type":"integer","value":1}"#,
        ),
        (
            "{ .structs[-2] }",
            r#"{"name":"three","type":"integer","value":3}"#,
        ),
        (
            "{ .structs[0:2] }",
            r#"{"name":"one","type":"integer","value":1} {"name":"two","type":"float","value":2.002}"#,
        ),
        (
            "{ .structs[:2] }",
            r#"{"name":"one","type":"integer","value":1} {"name":"two","type":"float","value":2.002}"#,
        ),
        (
            "{ .structs[::2] }",
            r#"{"name":"one","type":"integer","value":1} {"name":"three","type":"integer","value":3}"#,
        ),
        (
            "{ .structs[1::2] }",
            r#"{"name":"two","type":"float","value":2.002} {"name":"four","type":"float","value":4.004}"#,
        ),
    ];
    for (template, expected) in cases {
        ok(template, &types, expected);
    }
}

/// client-go's `store` struct as a document (fields in declaration order).
fn store() -> Document {
    Document::from_json_str(
        r#"{
        "Book": [
            {"Category": "reference", "Author": "Nigel Rees", "Title": "Sayings of the Centurey", "Price": 8.95},
            {"Category": "fiction", "Author": "Evelyn Waugh", "Title": "Sword of Honour", "Price": 12.99},
            {"Category": "fiction", "Author": "Herman Melville", "Title": "Moby Dick", "Price": 8.99}
        ],
        "Bicycle": [
            {"Color": "red", "Price": 19.95, "IsNew": true},
            {"Color": "green", "Price": 20.01, "IsNew": false}
        ],
        "Name": "jsonpath",
        "Labels": {"engieer": 10, "web/html": 15, "k8s-app": 20},
        "Employees": {"jason": "manager", "dan": "clerk"}
    }"#,
    )
    .expect("store document")
}

// TestStructInput.
#[test]
fn struct_input() {
    let store = store();
    ok("hello jsonpath", &Value::Null, "hello jsonpath");
    ok("{..}", &json!([1, 2, 3]), "[1,2,3]");
    ok("{[?(@<5)]}", &json!([2, 6, 3, 7]), "2 3");
    ok(r#"{"{"}"#, &Value::Null, "{");
    ok("{[1,3,4]}", &json!([0, 1, 2, 3, 4]), "1 3 4");
    ok("{[0:2]}", &json!(["Monday", "Tudesday"]), "Monday Tudesday");
    let cases = [
        ("hello {.Name}", "hello jsonpath"),
        ("{$.Labels.web/html}", "15"),
        ("{$.Employees.jason}", "manager"),
        ("{$.Employees.dan}", "clerk"),
        ("{.Labels.k8s-app}", "20"),
        ("{.Bicycle[*].Color}", "red green"),
        (
            "{.Book[*].Author}",
            "Nigel Rees Evelyn Waugh Herman Melville",
        ),
        (
            r#"{range .Bicycle[*]}{ "{" }{ @.* }{ "} " }{end}"#,
            "{red 19.95 true} {green 20.01 false} ",
        ),
        ("{..Price}", "8.95 12.99 8.99 19.95 20.01"),
        ("{...Price}", "8.95 12.99 8.99 19.95 20.01"),
        (
            "{.Bicycle}",
            r#"[{"Color":"red","IsNew":true,"Price":19.95},{"Color":"green","IsNew":false,"Price":20.01}]"#,
        ),
        (
            r#"{range .Bicycle[*]}{ @ }{ " " }{end}"#,
            r#"{"Color":"red","IsNew":true,"Price":19.95} {"Color":"green","IsNew":false,"Price":20.01} "#,
        ),
        (
            "{.Book[-1:]}",
            r#"{"Author":"Herman Melville","Category":"fiction","Price":8.99,"Title":"Moby Dick"}"#,
        ),
        (
            "{..Book[2]}",
            r#"{"Author":"Herman Melville","Category":"fiction","Price":8.99,"Title":"Moby Dick"}"#,
        ),
        (
            "{.Bicycle[?(@.IsNew==true)]}",
            r#"{"Color":"red","IsNew":true,"Price":19.95}"#,
        ),
    ];
    for (template, expected) in cases {
        ok_doc(template, &store, expected);
    }
    // "superrecurfields": an error (client-go now rejects it while parsing).
    assert!(
        run_with(
            "{............................................................Price}",
            &store,
            false
        )
        .is_err()
    );

    // Missing keys allowed.
    assert_eq!(run_with("{.hello}", &store, true).as_deref(), Ok(""));
    assert_eq!(
        run_with("before-{.hello}after", &store, true).as_deref(),
        Ok("before-after")
    );

    // Failures, with client-go's messages (a JSON map is `map[string]interface {}`).
    let failures = [
        ("{hello}", "unrecognized identifier hello"),
        ("{.hello}", "hello is not found"),
        (
            "{.Labels[0]}",
            "map[string]interface {} is not array or slice",
        ),
        ("{.Book[?(@.Price<>10)]}", "unrecognized filter operator <>"),
        (
            "{range .Labels.*}{@}{end}{end}",
            "not in range, nothing to end",
        ),
    ];
    for (template, message) in failures {
        assert_eq!(
            run_with(template, &store, false),
            Err(message.to_string()),
            "template {template}"
        );
    }
}

// TestJSONInput.
#[test]
fn json_input() {
    let points = json!([
        {"id": "i1", "x": 4, "y": -5},
        {"id": "i2", "x": -2, "y": -5, "z": 1},
        {"id": "i3", "x": 8, "y": 3},
        {"id": "i4", "x": -6, "y": -1},
        {"id": "i5", "x": 0, "y": 2, "z": 1},
        {"id": "i6", "x": 1, "y": 4},
        {"id": "i7", "x": null, "y": 4}
    ]);
    ok("{[?(@.z)].id}", &points, "i2 i5");
    ok("{[0]['id']}", &points, "i1");
    ok("{[-1]['x']}", &points, "null");
}

fn kubernetes_nodes() -> Value {
    json!({
        "kind": "List",
        "items": [
            {
                "kind": "None",
                "metadata": {
                    "name": "127.0.0.1",
                    "labels": {"kubernetes.io/hostname": "127.0.0.1"}
                },
                "status": {
                    "capacity": {"cpu": "4"},
                    "ready": true,
                    "addresses": [{"type": "LegacyHostIP", "address": "127.0.0.1"}]
                }
            },
            {
                "kind": "None",
                "metadata": {
                    "name": "127.0.0.2",
                    "labels": {"kubernetes.io/hostname": "127.0.0.2"}
                },
                "status": {
                    "capacity": {"cpu": "8"},
                    "ready": false,
                    "addresses": [
                        {"type": "LegacyHostIP", "address": "127.0.0.2"},
                        {"type": "another", "address": "127.0.0.3"}
                    ]
                }
            }
        ],
        "users": [
            {"name": "myself", "user": {}},
            {"name": "e2e", "user": {"username": "admin", "password": "secret"}}
        ]
    })
}

// TestKubernetes.
#[test]
fn kubernetes() {
    let nodes = kubernetes_nodes();
    let cases = [
        (
            "{range .items[*]}{.metadata.name}, {end}{.kind}",
            "127.0.0.1, 127.0.0.2, List",
        ),
        (
            r#"{range .items[*]}{.metadata.name}{"\t"}{end}"#,
            "127.0.0.1\t127.0.0.2\t",
        ),
        (
            "{.items[*].status.addresses[*].address}",
            "127.0.0.1 127.0.0.2 127.0.0.3",
        ),
        (
            "{range .items[*]}{range .status.addresses[*]}{.address}, {end}{end}",
            "127.0.0.1, 127.0.0.2, 127.0.0.3, ",
        ),
        ("{.items[*].metadata.name}", "127.0.0.1 127.0.0.2"),
        (
            "{.items[*]['metadata.name', 'status.capacity']}",
            r#"127.0.0.1 127.0.0.2 {"cpu":"4"} {"cpu":"8"}"#,
        ),
        (
            "{range .items[*]}[{.metadata.name}, {.status.capacity}] {end}",
            r#"[127.0.0.1, {"cpu":"4"}] [127.0.0.2, {"cpu":"8"}] "#,
        ),
        (r#"{.users[?(@.name=="e2e")].user.password}"#, "secret"),
        (
            r"{.items[0].metadata.labels.kubernetes\.io/hostname}",
            "127.0.0.1",
        ),
        (
            r#"{.items[?(@.metadata.labels.kubernetes\.io/hostname=="127.0.0.1")].kind}"#,
            "None",
        ),
        ("{.items[?(@..ready==true)].metadata.name}", "127.0.0.1"),
    ];
    for (template, expected) in cases {
        ok(template, &nodes, expected);
    }
    // client-go compares this one sorted because Go maps iterate randomly; our order is the
    // map's iteration order, so the sorted words must match.
    let out = run_with("{..name}", &nodes, false).expect("recursive name");
    let mut words: Vec<&str> = out.split_whitespace().collect();
    words.sort_unstable();
    assert_eq!(words, ["127.0.0.1", "127.0.0.2", "e2e", "myself"]);
    // With a Document the order is the document's.
    let doc = Document::from(nodes);
    ok_doc("{..name}", &doc, "127.0.0.1 127.0.0.2 myself e2e");
}

// TestEmptyRange (missing keys allowed, as in client-go's test).
#[test]
fn empty_range() {
    let empty = json!({"items": []});
    ok_missing("{range .items[*]}{.metadata.name}{end}", &empty, "");
    ok_missing(
        r#"{range .items[*]}{.metadata.name}{":"}{range @.spec.containers[*]}{.name}{","}{end}{"+"}{end}"#,
        &empty,
        "",
    );
    // Without it, the body is still walked once with no value and fails, like client-go.
    fails_with(
        "{range .items[*]}{.metadata.name}{end}",
        &empty,
        "metadata is not found",
    );
}

fn nested_pods() -> Value {
    json!({
        "items": [
            {
                "metadata": {"name": "pod1"},
                "spec": {"containers": [
                    {"name": "foo", "another": [{"name": "value1"}, {"name": "value2"}]},
                    {"name": "bar", "another": [{"name": "value1"}, {"name": "value2"}]}
                ]}
            },
            {
                "metadata": {"name": "pod2"},
                "spec": {"containers": [
                    {"name": "baz", "another": [{"name": "value1"}, {"name": "value2"}]}
                ]}
            }
        ]
    })
}

// TestNestedRanges.
#[test]
fn nested_ranges() {
    let data = nested_pods();
    ok(
        r#"{range .items[*]}{.metadata.name}{":"}{range @.spec.containers[*]}{.name}{","}{end}{"+"}{end}"#,
        &data,
        "pod1:foo,bar,+pod2:baz,+",
    );
    ok(
        r##"{range .items[*]}{.metadata.name}{"~"}{range @.spec.containers[*]}{.name}{":"}{range @.another[*]}{.name}{","}{end}{"+"}{end}{"#"}{end}"##,
        &data,
        "pod1~foo:value1,value2,+bar:value1,value2,+#pod2~baz:value1,value2,+#",
    );
    ok(
        r#"{range .items[*]}{.metadata.name}{"\t"}{range @.spec.containers[*]}{.name}{" "}{end}{"\t"}{range @.spec.containers[*]}{.name}{" "}{end}{"\n"}{end}"#,
        &data,
        "pod1\tfoo bar \tfoo bar \npod2\tbaz \tbaz \n",
    );
}

// TestFilterPartialMatchesSometimesMissingAnnotations.
#[test]
fn filter_partial_matches_missing_annotations() {
    let data = json!({
        "kind": "List",
        "items": [
            {"kind": "Pod", "metadata": {"name": "pod1", "annotations": {"color": "blue"}}},
            {"kind": "Pod", "metadata": {"name": "pod2"}},
            {"kind": "Pod", "metadata": {"name": "pod3", "annotations": {"color": "green"}}},
            {"kind": "Pod", "metadata": {"name": "pod4", "annotations": {"color": "blue"}}}
        ]
    });
    let template = r#"{.items[?(@.metadata.annotations.color=="blue")].metadata.name}"#;
    ok_missing(template, &data, "pod1 pod4");
    fails_with(template, &data, "annotations is not found");
}

fn containers(n: usize) -> Value {
    let list: Vec<Value> = (0..n)
        .map(|i| json!({"image": "radial/busyboxplus:curl", "name": format!("fake{i}")}))
        .collect();
    json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": list}})
}

// TestNegativeIndex.
#[test]
fn negative_index() {
    let data = containers(4);
    let cases = [
        ("{.spec.containers[0].name}", Some("fake0")),
        ("{.spec.containers[0:0].name}", Some("")),
        ("{.spec.containers[0:-1].name}", Some("fake0 fake1 fake2")),
        ("{.spec.containers[-1:0].name}", None),
        ("{.spec.containers[-1].name}", Some("fake3")),
        ("{.spec.containers[-1:].name}", Some("fake3")),
        ("{.spec.containers[-2].name}", Some("fake2")),
        ("{.spec.containers[-2:].name}", Some("fake2 fake3")),
        ("{.spec.containers[-3].name}", Some("fake1")),
        ("{.spec.containers[-4].name}", Some("fake0")),
        (
            "{.spec.containers[-4:].name}",
            Some("fake0 fake1 fake2 fake3"),
        ),
        ("{.spec.containers[-5].name}", None),
        ("{.spec.containers[5:5].name}", Some("")),
        ("{.spec.containers[-5:-5].name}", Some("")),
        ("{.spec.containers[3:1].name}", None),
        ("{.spec.containers[-1:-2].name}", None),
    ];
    for (template, expected) in cases {
        match expected {
            Some(out) => ok(template, &data, out),
            None => {
                fails(template, &data);
            }
        }
    }
    fails_with(
        "{.spec.containers[-5].name}",
        &data,
        "array index out of bounds: index -1, length 4",
    );
    fails_with(
        "{.spec.containers[3:1].name}",
        &data,
        "starting index 3 is greater than ending index 1",
    );
}

// TestRunningPodsJSONPathOutput.
#[test]
fn running_pods() {
    let data = json!({
        "kind": "List",
        "items": [
            {"kind": "Pod", "metadata": {"name": "pod1"}, "status": {"phase": "Running"}},
            {"kind": "Pod", "metadata": {"name": "pod2"}, "status": {"phase": "Running"}},
            {"kind": "Pod", "metadata": {"name": "pod3"}, "status": {"phase": "Running"}},
            {"resourceVersion": ""}
        ]
    });
    ok_missing(
        r#"{range .items[?(.status.phase=="Running")]}{.metadata.name}{" is Running\n"}{end}"#,
        &data,
        "pod1 is Running\npod2 is Running\npod3 is Running\n",
    );
}

// TestStep.
#[test]
fn step() {
    let data = containers(6);
    let cases = [
        (
            "{.spec.containers[0:].name}",
            Some("fake0 fake1 fake2 fake3 fake4 fake5"),
        ),
        (
            "{.spec.containers[0:6:].name}",
            Some("fake0 fake1 fake2 fake3 fake4 fake5"),
        ),
        (
            "{.spec.containers[0:6:1].name}",
            Some("fake0 fake1 fake2 fake3 fake4 fake5"),
        ),
        ("{.spec.containers[0:6:0].name}", None),
        ("{.spec.containers[0:6:-1].name}", None),
        ("{.spec.containers[1:4:2].name}", Some("fake1 fake3")),
        ("{.spec.containers[1:4:3].name}", Some("fake1")),
        ("{.spec.containers[1:4:4].name}", Some("fake1")),
        ("{.spec.containers[0:6:2].name}", Some("fake0 fake2 fake4")),
        ("{.spec.containers[0:6:3].name}", Some("fake0 fake3")),
        ("{.spec.containers[0:6:5].name}", Some("fake0 fake5")),
        ("{.spec.containers[0:6:6].name}", Some("fake0")),
    ];
    for (template, expected) in cases {
        match expected {
            Some(out) => ok(template, &data, out),
            None => fails_with(template, &data, "step must be > 0"),
        }
    }
}

// The inputs of newer client-go's TestEmptyArrayDoesNotStopFollowingInputs, with what kubectl
// (v1.32.4) prints: a zero-length selection returns what the step has so far and ignores the
// remaining inputs (client-go's `evalArray` returns at once when start == end).
#[test]
fn an_empty_selection_ends_the_step_like_kubectl() {
    let cases = [
        (json!([[], ["second"]]), "{[*][*]}", ""),
        (json!([["first"], [], ["third"]]), "{[*][*]}", "first"),
        (json!([["first"], []]), "{[*][:]}", "first"),
        (json!([[], []]), "{[*][*]}", ""),
        // [0:-1] of a one-element array is empty too.
        (json!([["first"], ["second", "third"]]), "{[*][0:-1]}", ""),
        (json!([["first"], ["second"]]), "{[*][*]}", "first second"),
        (json!([[1, 2], [3, 4, 5], [], [6]]), "{[*][*]}", "1 2 3 4 5"),
        (json!([[1, 2], [3, 4]]), "{[*][1:1]}|{[*][0:0]}", "|"),
        (json!([[1, 2], [3, 4]]), "{[*][-1:-1]}", ""),
        (
            json!([[1, 2], [3, 4, 5], [], [6]]),
            "{[2:2]}{[*][:]}",
            "1 2 3 4 5",
        ),
        // Each range iteration is a step of its own.
        (
            json!([[1, 2], [3, 4, 5], [], [6]]),
            "{range [*]}[{@[*]}]{end}",
            "[1 2][3 4 5][][6]",
        ),
    ];
    for (data, template, expected) in cases {
        ok(template, &data, expected);
    }
    // [0] on the empty array is out of bounds: a zero-length selection is only start == end.
    fails_with(
        "{[*][0]}",
        &json!([[1, 2], [3, 4, 5], [], [6]]),
        "array index out of bounds: index 0, length 0",
    );
}

// Strings kubectl reads with U+FFFD (checked with kubectl v1.32.4 on the same bytes).
#[test]
fn invalid_text_reads_as_replacement_characters() {
    let cases: [(&[u8], &str); 8] = [
        (br#"{"s": "a\ud800x"}"#, "a\u{fffd}x"),
        (br#"{"s": "\ud800\u0041"}"#, "\u{fffd}A"),
        (br#"{"s": "\udc00z"}"#, "\u{fffd}z"),
        (br#"{"s": "\ud800\ud800\udc00"}"#, "\u{fffd}\u{10000}"),
        (br#"{"s": "\ud83d\ude00"}"#, "\u{1f600}"),
        (b"{\"s\": \"x\xff\xfey\"}", "x\u{fffd}\u{fffd}y"),
        (
            b"{\"s\": \"\xe2\x82z\xf0\x9f\x98w\xed\xa0\x80v\"}",
            "\u{fffd}z\u{fffd}w\u{fffd}\u{fffd}\u{fffd}v",
        ),
        // An escaped backslash before "u" is no escape.
        (br#"{"s": "\\ud800"}"#, "\\ud800"),
    ];
    for (input, expected) in cases {
        let doc = Document::from_json_slice(input).expect("kubectl reads it");
        ok_doc("{.s}", &doc, expected);
    }
    // Keys too; JSON output writes the replacement character itself.
    let doc = Document::from_json_str(r#"{"k": {"\ud800": 1}}"#).expect("json");
    ok_doc("{.k}", &doc, "{\"\u{fffd}\":1}");
    // Still not JSON.
    assert!(Document::from_json_slice(b"{\"s\": \"\\x\"}").is_err());
}

// Go's invalid reflect.Value: what kubectl prints for a null document.
#[test]
fn a_null_document_has_no_value() {
    let null = json!(null);
    ok("{@}", &null, "<no value>");
    ok("{}", &null, "<no value>");
    ok("{$}", &null, "<no value>");
    ok("a{@}b", &null, "a<no value>b");
    fails_with("{.a}", &null, "a is not found");
    ok_missing("{.a}", &null, "");
    // A null inside a document is a value.
    ok("{.a}", &json!({"a": null}), "null");
    ok("{@}", &json!(0), "0");
}

// The seed's TestJsonpathUsage.
#[test]
fn seed_usage() {
    let bools = json!([true, false, true, false]);
    ok("{@}", &bools, "[true,false,true,false]");
    ok("{@[0]}", &bools, "true");
    ok("{@[-1]}", &bools, "false");
    ok("{@[0:2]}", &bools, "true false");
    ok("{@[0:4:2]}", &bools, "true true");
}

// -- beyond client-go's tests: behaviour checked against kubectl 1.37 ------------------------

#[test]
fn numbers_print_like_kubectl() {
    let data = Document::from_json_str(
        r#"{"f": [1.0, 2.5, 1234567.0, 1e21, 1e-7, 0.0001, 0.00001, -0.0, 1e6, 123456.0,
                  9223372036854775808, -5, 0]}"#,
    )
    .expect("json");
    ok_doc(
        "{.f[*]}",
        &data,
        "1 2.5 1.234567e+06 1e+21 1e-07 0.0001 1e-05 -0 1e+06 123456 9.223372036854776e+18 -5 0",
    );
    ok_doc(
        "{.f}",
        &data,
        "[1,2.5,1234567,1e+21,1e-7,0.0001,0.00001,-0,1000000,123456,9223372036854776000,-5,0]",
    );
    // Integers stay integers.
    ok("{.a}", &json!({"a": 1234567}), "1234567");
}

// kubectl converts YAML to JSON through Go's encoder and reads it back keeping integers:
// integral floats below 1e21 that fit in an int64 print as integers (checked with kubectl
// v1.32.4: `f: [-0.0, 1234567.0, 1e6, 2.5, -0]` prints `0 1234567 1000000 2.5 0`).
#[cfg(feature = "yaml")]
#[test]
fn yaml_numbers_print_like_kubectl() {
    let data = Document::from_yaml_str(
        "f: [-0.0, 1234567.0, 1e6, 2.5, -0, 1.0e21, 1.0e19, 9.2233720368547748e18, -9.2233720368547758e18, 0.5e1]\n",
    )
    .expect("yaml");
    ok_doc(
        "{.f[*]}",
        &data,
        "0 1234567 1000000 2.5 0 1e+21 1e+19 9223372036854774784 -9223372036854775808 5",
    );
    // JSON input keeps its floats: kubectl prints a JSON -0.0 as -0.
    let json = Document::from_json_str(r#"{"f": [-0.0, 1e6]}"#).expect("json");
    ok_doc("{.f[*]}", &json, "-0 1e+06");
}

#[test]
fn strings_and_html_in_json_output() {
    let data = json!({"s": ["<&>", "a\"b", "\u{2028}", "\u{8}\u{c}\u{1}", "é", ""]});
    ok("{.s[0]}", &data, "<&>");
    ok(
        "{.s}",
        &data,
        r#"["\u003c\u0026\u003e","a\"b","\u2028","\b\f\u0001","é",""]"#,
    );
    ok(r#"{"\u2028<>&"}"#, &data, "\u{2028}<>&");
}

#[test]
fn nulls() {
    let data = json!({"n": [null, 1, null], "nul": null});
    ok("{.n[*]}", &data, "null 1 null");
    ok("{.nul}", &data, "null");
    // Ranging over a null gives Go's invalid value.
    ok(
        "{range .n[*]}[{@}]{end}",
        &data,
        "[<no value>][1][<no value>]",
    );
    fails_with("{.nul.x}", &data, "x is not found");
    ok("{.nul[0]}", &data, "");
    fails_with(
        "{.nul[?(@.x)]}",
        &data,
        "<nil> is not array or slice and cannot be filtered",
    );
}

#[test]
fn filters_compare_like_go_templates() {
    let pts = json!({"pts": [
        {"id": "i1", "x": 4}, {"id": "i2", "x": -2, "z": 1}, {"id": "i3", "x": null}, {"id": "i4", "x": 2.5}
    ]});
    // An int64 and a float literal are different kinds: client-go fails.
    fails_with(
        "{.pts[?(@.x<1.5)].id}",
        &pts,
        "incompatible types for comparison",
    );
    fails_with("{.pts[?(@.x>1)].id}", &pts, "invalid type for comparison");
    ok(r#"{.pts[?(@.id<"i3")].id}"#, &pts, "i1 i2");
    ok("{.pts[?(@.id>='i2')].id}", &pts, "i2 i3 i4");
    fails_with(
        "{.pts[?(@.id==1)].id}",
        &pts,
        "incompatible types for comparison",
    );
    ok("{.pts[?(@.x)].id}", &pts, "i1 i2 i3 i4");
    ok("{.pts[?(@.z)].id}", &pts, "i2");
    ok(
        "{.pts[?(@.q==3)].id}",
        &json!({"pts": [{"q": 1}, {"q": 2}]}),
        "",
    );
    fails_with("{.pts[?(@.q==1)].id}", &pts, "q is not found");
    let bools = json!([true, false]);
    ok("{[?(@==true)]}", &bools, "true");
    fails_with("{[?(@<true)]}", &bools, "invalid type for comparison");
    // `=~` is not an operator: `=` is, and `~1` does not parse.
    fails_with(
        "{.pts[?(@.x=~1)]}",
        &pts,
        "parse: unrecognized character in action: U+007E '~'",
    );
    // Existence filters look at what the operand returned, even on error (client-go quirk).
    let containers = json!({"c": [{"name": "a", "ports": [{"p": 80}]}, {"name": "b"}]});
    ok("{.c[?(@.ports[5])].name}", &containers, "a");
    ok(
        "{.c[?(@.ports[0].p==80)].name}",
        &json!({"c": [{"ports": [{"p": 80}], "name": "a"}]}),
        "a",
    );
    // Two operands that yield several values.
    fails_with(
        "{.c[?(@.ports[*].p==80)].name}",
        &json!({"c": [{"ports": [{"p": 80}, {"p": 81}], "name": "a"}]}),
        "can only compare one element at a time",
    );
    // Bytes of a string are Go `uint8`s, printed as numbers.
    fails_with(
        "{.s.*[?(@==97)]}",
        &json!({"s": "abc"}),
        "97 is not array or slice and cannot be filtered",
    );
    fails_with(
        "{.s[?(@==97)]}",
        &json!({"s": "abc"}),
        "abc is not array or slice and cannot be filtered",
    );
}

#[test]
fn wildcards_recursion_and_strings() {
    let data = json!({"str": "ab", "nested": {"x": {"y": [{"z": 1}, {"z": "2"}]}}});
    ok("{.str.*}", &data, "97 98");
    ok("{range .str.*}{@} {end}", &data, "97 98 ");
    ok("{.nested..z}", &data, "1 2");
    ok("{.nested..y[0]}", &data, r#"{"z":1}"#);
    fails_with(
        "{.nested..[0]}",
        &data,
        "map[string]interface {} is not array or slice",
    );
    fails_with("{.str[0]}", &data, "string is not array or slice");
    ok("{.str.*.x}", &json!({"str": ""}), "");
    fails_with("{.str.*.x}", &data, "x is not found");
}

#[test]
fn literals_identifiers_and_unions() {
    let data = json!({"kind": "Pod", "pts": [{"id": "a", "x": 1}, {"id": "b", "x": 2}]});
    ok(
        r#"{1} {2.5} {true} {"x"} {.kind 5}"#,
        &data,
        "1 2.5 true x 5",
    );
    fails_with(r#"{.kind "x" .y}"#, &data, "y is not found");
    ok(
        "{true}{false}{1.50}{-0}{007}{1.}{+.5}",
        &data,
        "truefalse1.50710.5",
    );
    ok("{.pts[*]['id','x']}", &data, "a b 1 2");
    ok(r#"{.pts[1, ?(@.id=="a")].id}"#, &data, "b a");
    // A filter first in the brackets is parsed as a filter, so a union cannot start with one.
    assert_eq!(
        fails(r#"{.pts[?(@.id=="a"), 1].id}"#, &data),
        "parse: unclosed array expect ]"
    );
    ok("{.pts[ 0 , 1 ].id}", &data, "a b");
    fails_with("{hello}", &data, "unrecognized identifier hello");
    fails_with("{end}", &data, "not in range, nothing to end");
    ok(r#"{"\x41\101\u00e9"}"#, &data, "AAé");
    ok(r#"{"a}b"}{'{'}"#, &data, "a}b{");
}

#[test]
fn range_quirks_match_client_go() {
    let data = json!({"kind": "Pod", "c": [{"name": "a"}, {"name": "b"}], "e": []});
    ok("{range .c[*]}{.name},{end}", &data, "a,b,");
    // Without `{end}`, client-go runs the rest once more on the outer value.
    fails_with("{range .c[*]}{.name}", &data, "name is not found");
    ok("{range .c[*]}{.name}{end}{.kind}", &data, "abPod");
    fails_with(
        "{range .c[*]}{.name}{end}{end}",
        &data,
        "not in range, nothing to end",
    );
    ok("{range}{.kind}{end}", &data, "Pod");
    ok("{range .kind}{@}{end}", &data, "Pod");
    ok("{range 1}{@}{end}", &data, "1");
    ok_missing("{range .e[*]}{.x}{end}done", &json!({"e": []}), "done");
    fails_with(
        "{range .e[*]}{.x}{end}done",
        &json!({"e": []}),
        "x is not found",
    );
    ok_missing(
        "{range .c[*]}{range .c[*]}{.name}{end}{end}",
        &json!({"c": [{"name": "a", "c": [{"name": "x"}]}, {"name": "b", "c": []}]}),
        "x",
    );
}

#[test]
fn range_templates_can_run_twice() {
    // client-go mutates its parse tree while ranging; ours is read-only.
    let data = nested_pods();
    let jp = JsonPath::parse(r#"{range .items[*]}{.metadata.name}{"\n"}{end}"#).expect("parse");
    for _ in 0..3 {
        assert_eq!(jp.render(&data).expect("render"), "pod1\npod2\n");
    }
}

#[test]
fn deep_range_nesting_is_an_error_not_a_crash() {
    let template = "{range}".repeat(2000);
    let err = JsonPath::parse(&template)
        .expect("parse")
        .render(&json!(1))
        .unwrap_err();
    assert_eq!(err.to_string(), "range nesting too deep");
}

#[test]
fn json_output_mode() {
    let data = json!({"metadata": {"labels": {"a": "1", "b": "2"}, "name": "web"}, "e": []});
    let jp = JsonPath::parse("{.metadata.labels}{.metadata.name} x{.e[*]}")
        .expect("parse")
        .json_output(true);
    assert_eq!(
        jp.render(&data).expect("render"),
        "[\n    {\n        \"a\": \"1\",\n        \"b\": \"2\"\n    }\n]\n[\n    \"web\"\n]\n[\n    \" x\"\n]\n[]\n"
    );
}

#[test]
fn execute_writes_nothing_on_error() {
    let jp = JsonPath::parse("a{.nope}").expect("parse");
    let mut out = Vec::new();
    assert!(jp.execute(&mut out, &json!({})).is_err());
    assert!(out.is_empty());
    let mut partial = Vec::new();
    assert!(jp.execute_into(&mut partial, &json!({})).is_err());
    assert_eq!(partial, b"a");
}

#[test]
fn typed_input_through_serialize() {
    #[derive(serde::Serialize)]
    struct Meta {
        name: &'static str,
        labels: std::collections::BTreeMap<&'static str, &'static str>,
    }
    #[derive(serde::Serialize)]
    struct Pod {
        metadata: Meta,
        replicas: u32,
    }
    let pod = Pod {
        metadata: Meta {
            name: "web",
            labels: [("tier", "fe"), ("app", "shop")].into_iter().collect(),
        },
        replicas: 3,
    };
    let jp = JsonPath::parse("{.metadata.name} {.replicas} {.metadata.labels}").expect("parse");
    assert_eq!(
        jp.render_serialize(&pod).expect("render"),
        r#"web 3 {"app":"shop","tier":"fe"}"#
    );
    let mut out = Vec::new();
    jp.execute_serialize(&mut out, &pod).expect("execute");
    assert_eq!(out, br#"web 3 {"app":"shop","tier":"fe"}"#);
}

#[test]
fn non_utf8_literals_are_written_as_bytes() {
    let jp = JsonPath::parse(r#"{"\xff"}"#).expect("parse");
    assert_eq!(jp.render_to_vec(&json!(null)).expect("render"), b"\xff");
    assert_eq!(jp.render(&json!(null)).expect("render"), "\u{fffd}");
}

#[test]
fn api_traits() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<JsonPath>();
    assert_send_sync::<Template>();
    assert_send_sync::<Error>();
    let jp: JsonPath = "{.a}".parse().expect("parse");
    assert_eq!(jp.to_string(), "{.a}");
    assert_eq!(jp.template().segments.len(), 1);
    let err = "{.a".parse::<JsonPath>().unwrap_err();
    assert_eq!(err.kind(), &ParseErrorKind::UnclosedAction);
    let jp = JsonPath::from_template(Template::parse("{.b}").expect("parse"));
    assert_eq!(jp.render(&json!({"b": 2})).expect("render"), "2");
}
