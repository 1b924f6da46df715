//! apimachinery's `labels/selector_test.go` tables, ported to our API, plus property tests.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;

use super::parser::{Context, Lexer, Parser, Token};
use super::*;

fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn req(key: &str, operator: Operator, values: &[&str]) -> Requirement {
    Requirement::new(key, operator, values.iter().copied())
        .unwrap_or_else(|e| panic!("{key} {operator} {values:?}: {e}"))
}

fn selector(requirements: Vec<Requirement>) -> Selector {
    Selector { requirements }
}

#[test]
fn selector_parse() {
    for good in [
        "x=a,y=b,z=c",
        "",
        "x!=a,y=b",
        "x=",
        "x= ",
        "x=,z= ",
        "x= ,z= ",
        "!x",
        "x>1",
        "x>1,z<5",
    ] {
        let parsed = Selector::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        assert_eq!(parsed.to_string(), good.replace(' ', ""), "{good}");
    }
    for bad in ["x=a||y=b", "x==a==b", "!x=a", "x<a"] {
        assert!(Selector::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn deterministic_parse() {
    let a = Selector::parse("x=a,a=x").unwrap();
    let b = Selector::parse("a=x,x=a").unwrap();
    assert_eq!(a.to_string(), b.to_string());
    assert_eq!(a, b);
}

#[test]
fn everything() {
    assert!(Selector::everything().matches(&set(&[("x", "y")])));
    assert!(Selector::everything().is_empty());
    assert!(Selector::new().is_empty());
    assert!(
        Selector::from_set(BTreeMap::<String, String>::new())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn selector_matches() {
    let yes = [
        ("", set(&[("x", "y")])),
        ("x=y", set(&[("x", "y")])),
        ("x=y,z=w", set(&[("x", "y"), ("z", "w")])),
        ("x!=y,z!=w", set(&[("x", "z"), ("z", "a")])),
        ("notin=in", set(&[("notin", "in")])),
        ("x", set(&[("x", "z")])),
        ("!x", set(&[("y", "z")])),
        ("x>1", set(&[("x", "2")])),
        ("x<1", set(&[("x", "0")])),
    ];
    let no = [
        ("x=z", set(&[])),
        ("x=y", set(&[("x", "z")])),
        ("x=y,z=w", set(&[("x", "w"), ("z", "w")])),
        ("x!=y,z!=w", set(&[("x", "z"), ("z", "w")])),
        ("x", set(&[("y", "z")])),
        ("!x", set(&[("x", "z")])),
        ("x>1", set(&[("x", "0")])),
        ("x<1", set(&[("x", "2")])),
    ];
    for (text, labels) in &yes {
        assert!(
            Selector::parse(text).unwrap().matches(labels),
            "{text} {labels:?}"
        );
    }
    for (text, labels) in &no {
        assert!(
            !Selector::parse(text).unwrap().matches(labels),
            "{text} {labels:?}"
        );
    }
    let labels = set(&[("foo", "bar"), ("baz", "blah")]);
    for text in ["foo=bar", "baz=blah", "foo=bar,baz=blah"] {
        assert!(Selector::parse(text).unwrap().matches(&labels), "{text}");
    }
    for text in ["foo=blah", "baz=bar", "foo=bar,foobar=bar,baz=blah"] {
        assert!(!Selector::parse(text).unwrap().matches(&labels), "{text}");
    }
}

#[test]
fn set_matches() {
    let labels = set(&[("foo", "bar"), ("baz", "blah")]);
    for wanted in [
        set(&[]),
        set(&[("foo", "bar")]),
        set(&[("baz", "blah")]),
        set(&[("foo", "bar"), ("baz", "blah")]),
    ] {
        assert!(
            Selector::from_set(wanted.clone()).unwrap().matches(&labels),
            "{wanted:?}"
        );
    }
    assert!(
        !Selector::from_set([("foo", "blah")])
            .unwrap()
            .matches(&labels)
    );
}

#[test]
fn every_labels_implementation_agrees() {
    let selector = Selector::parse("app=web,tier in (fe,be),!legacy,n>2").unwrap();
    let btree = set(&[("app", "web"), ("tier", "fe"), ("n", "3")]);
    let hash: HashMap<String, String> = btree.clone().into_iter().collect();
    let json = serde_json::json!({"app": "web", "tier": "fe", "n": "3"});
    let map = json.as_object().unwrap();
    assert!(selector.matches(&btree));
    assert!(selector.matches(&hash));
    assert!(selector.matches(map));
    assert!(selector.matches(&Some(map)));
    // A label value that is not a string is no label.
    let numeric = serde_json::json!({"app": "web", "tier": "fe", "n": 3});
    assert!(!selector.matches(numeric.as_object().unwrap()));
    // No labels at all.
    assert!(
        Selector::parse("!legacy")
            .unwrap()
            .matches(&None::<&serde_json::Map<String, serde_json::Value>>)
    );
    assert!(!selector.matches(&None::<BTreeMap<String, String>>));
    let borrowed: BTreeMap<&str, &str> = [("app", "web")].into();
    assert!(Selector::parse("app=web").unwrap().matches(&borrowed));
}

#[test]
fn lexer() {
    let cases = [
        ("", Token::EndOfString),
        (",", Token::Comma),
        ("notin", Token::NotIn),
        ("in", Token::In),
        ("=", Token::Equals),
        ("==", Token::DoubleEquals),
        (">", Token::GreaterThan),
        ("<", Token::LessThan),
        // The longest token wins.
        ("!", Token::DoesNotExist),
        ("!=", Token::NotEquals),
        ("(", Token::OpenPar),
        (")", Token::ClosedPar),
        // Other characters are part of identifiers.
        ("~", Token::Identifier),
        ("||", Token::Identifier),
    ];
    for (input, token) in cases {
        let (got, literal) = Lexer::new(input).lex();
        assert_eq!(got, token, "{input:?}");
        assert_eq!(literal, input);
    }
}

use Token::{
    ClosedPar as CP, Comma as C, DoesNotExist as Not, DoubleEquals as DEq, EndOfString as End,
    Equals as Eq_, GreaterThan as Gt, Identifier as Id, In, LessThan as Lt, NotEquals as Ne, NotIn,
    OpenPar as OP,
};

fn sequences() -> Vec<(&'static str, Vec<Token>)> {
    vec![
        ("key in ( value )", vec![Id, In, OP, Id, CP]),
        ("key notin ( value )", vec![Id, NotIn, OP, Id, CP]),
        ("key in ( value1, value2 )", vec![Id, In, OP, Id, C, Id, CP]),
        ("key", vec![Id]),
        ("!key", vec![Not, Id]),
        ("()", vec![OP, CP]),
        ("x in (),y", vec![Id, In, OP, CP, C, Id]),
        ("== != (), = notin", vec![DEq, Ne, OP, CP, C, Eq_, NotIn]),
        ("key>2", vec![Id, Gt, Id]),
        ("key<1", vec![Id, Lt, Id]),
    ]
}

#[test]
fn lexer_sequence() {
    for (input, expected) in sequences() {
        let mut lexer = Lexer::new(input);
        let mut tokens = Vec::new();
        loop {
            let (token, _) = lexer.lex();
            if token == End {
                break;
            }
            tokens.push(token);
        }
        assert_eq!(tokens, expected, "{input}");
    }
}

#[test]
fn parser_lookahead() {
    let mut cases = sequences();
    cases.push(("", vec![]));
    for (input, mut expected) in cases {
        expected.push(End);
        let mut parser = Parser::new(input);
        assert_eq!(parser.tokens(), expected, "{input}");
        loop {
            let ahead = parser.lookahead(Context::KeyAndOperator);
            let consumed = parser.consume(Context::KeyAndOperator);
            assert_eq!(ahead, consumed, "{input}");
            if ahead.0 == End {
                break;
            }
        }
    }
}

#[test]
fn lexer_reads_a_nul_byte_as_the_end() {
    // Go's lexer returns 0 for the end of the input and cannot tell a NUL byte apart.
    let mut lexer = Lexer::new("a\0b");
    assert_eq!(lexer.lex(), (Id, "a"));
    assert_eq!(lexer.lex(), (Id, "b"));
    assert_eq!(
        Selector::parse("a, \0b=c").unwrap_err().to_string(),
        "found '', expected: identifier after ','"
    );
    // Right after an operator the NUL is read (and dropped) with it.
    assert_eq!(Selector::parse("a,\0b=c").unwrap().to_string(), "a,b=c");
    assert_eq!(Selector::parse("a\0").unwrap().to_string(), "a");
    let mut lexer = Lexer::new("a=\0b");
    assert_eq!(lexer.lex(), (Id, "a"));
    assert_eq!(lexer.lex(), (Eq_, "="));
    assert_eq!(lexer.lex(), (Id, "b"));
}

#[test]
fn parse_operator() {
    let expected = "in, notin, =, ==, !=, gt, lt";
    for ok in ["in", "=", "==", ">", "<", "notin", "!="] {
        assert!(Parser::new(ok).operator().is_ok(), "{ok}");
    }
    for (input, found) in [("!", "!"), ("exists", "exists"), ("(", "(")] {
        assert_eq!(
            Parser::new(input).operator().unwrap_err().to_string(),
            format!("found '{found}', expected: {expected}")
        );
    }
}

#[test]
fn requirement_constructor() {
    use Operator::*;
    let ok: &[(&str, Operator, &[&str])] = &[
        ("x3", In, &["foo"]),
        ("x4", NotIn, &["foo"]),
        ("x6", Exists, &[]),
        ("x7", DoesNotExist, &[]),
        ("x9", In, &["bar"]),
        ("1foo", In, &["bar"]),
        ("1234", In, &["bar"]),
        ("x11", GreaterThan, &["1"]),
        ("x12", LessThan, &["6"]),
    ];
    for (key, op, values) in ok {
        Requirement::new(*key, *op, values.iter().copied())
            .unwrap_or_else(|e| panic!("{key} {op}: {e}"));
    }
    let long = "a".repeat(254);
    let bad: Vec<(&str, Operator, Vec<&str>, &str)> = vec![
        (
            "x1",
            In,
            vec![],
            r#"values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"#,
        ),
        (
            "x2",
            NotIn,
            vec![],
            r#"values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty"#,
        ),
        (
            "x5",
            Equals,
            vec!["foo", "bar"],
            r#"values: Invalid value: ["foo","bar"]: exact-match compatibility requires one single value"#,
        ),
        (
            "x8",
            Exists,
            vec!["foo"],
            r#"values: Invalid value: ["foo"]: values set must be empty for exists and does not exist"#,
        ),
        (
            "x13",
            GreaterThan,
            vec![],
            r#"values: Invalid value: []: for 'Gt', 'Lt' operators, exactly one value is required"#,
        ),
        (
            "x14",
            GreaterThan,
            vec!["bar"],
            r#"values[0]: Invalid value: "bar": for 'Gt', 'Lt' operators, the value must be an integer"#,
        ),
        (
            "x15",
            LessThan,
            vec!["bar"],
            r#"values[0]: Invalid value: "bar": for 'Gt', 'Lt' operators, the value must be an integer"#,
        ),
        (&long, Exists, vec![], "key: Invalid value: \"aaaa"),
        (
            "x16",
            Equals,
            vec![&long],
            "values[0][x16]: Invalid value: \"aaaa",
        ),
        (
            "x17",
            Equals,
            vec!["a b"],
            r#"values[0][x17]: Invalid value: "a b": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"#,
        ),
    ];
    for (key, op, values, message) in bad {
        let error = Requirement::new(key, op, values.clone()).unwrap_err();
        let Error::Invalid(invalid) = &error else {
            panic!("{key}: {error:?}");
        };
        assert_eq!(invalid.errors().len(), 1, "{key}: {error}");
        assert!(error.to_string().starts_with(message), "{key}: {error}");
    }
    // Several problems are reported together.
    let error = Requirement::new("-x", GreaterThan, ["a*"]).unwrap_err();
    let Error::Invalid(invalid) = &error else {
        panic!()
    };
    let fields: Vec<&str> = invalid.errors().iter().map(FieldError::field).collect();
    assert_eq!(fields, ["key", "values[0]", "values[0][-x]"]);
    assert!(
        error
            .to_string()
            .starts_with("[key: Invalid value: \"-x\": name part must consist")
    );
}

#[test]
fn to_string() {
    use Operator::*;
    let cases = [
        (
            vec![
                req("x", In, &["abc", "def"]),
                req("y", NotIn, &["jkl"]),
                req("z", Exists, &[]),
            ],
            "x in (abc,def),y notin (jkl),z",
        ),
        (
            vec![
                req("x", NotIn, &["abc", "def"]),
                req("y", NotEquals, &["jkl"]),
                req("z", DoesNotExist, &[]),
            ],
            "x notin (abc,def),y!=jkl,!z",
        ),
        (
            vec![
                req("x", NotIn, &["abc"]),
                req("y", In, &["jkl", "mno"]),
                req("z", NotIn, &[""]),
            ],
            "x notin (abc),y in (jkl,mno),z notin ()",
        ),
        (
            vec![
                req("x", Equals, &["abc"]),
                req("y", DoubleEquals, &["jkl"]),
                req("z", NotEquals, &["a"]),
                req("z", Exists, &[]),
            ],
            "x=abc,y==jkl,z!=a,z",
        ),
        (
            vec![
                req("x", GreaterThan, &["2"]),
                req("y", LessThan, &["8"]),
                req("z", Exists, &[]),
            ],
            "x>2,y<8,z",
        ),
    ];
    for (requirements, text) in cases {
        assert_eq!(selector(requirements).to_string(), text);
    }
    // Values print sorted whatever order they were given in.
    assert_eq!(req("x", In, &["b", "a", "b"]).to_string(), "x in (a,b)");
}

#[test]
fn requirement_selector_matching() {
    use Operator::*;
    let cases = [
        (
            set(&[("x", "foo"), ("y", "baz")]),
            vec![req("x", In, &["foo"]), req("y", NotIn, &["alpha"])],
            true,
        ),
        (
            set(&[("x", "foo"), ("y", "baz")]),
            vec![req("x", In, &["foo"]), req("y", In, &["alpha"])],
            false,
        ),
        (
            set(&[("y", "")]),
            vec![req("x", NotIn, &[""]), req("y", Exists, &[])],
            true,
        ),
        (
            set(&[("y", "")]),
            vec![req("x", DoesNotExist, &[]), req("y", Exists, &[])],
            true,
        ),
        (
            set(&[("y", "")]),
            vec![req("x", NotIn, &[""]), req("y", DoesNotExist, &[])],
            false,
        ),
        (set(&[("y", "baz")]), vec![req("x", In, &[""])], false),
        (
            set(&[("z", "2")]),
            vec![req("z", GreaterThan, &["1"])],
            true,
        ),
        (
            set(&[("z", "v2")]),
            vec![req("z", GreaterThan, &["1"])],
            false,
        ),
    ];
    for (labels, requirements, expected) in cases {
        let selector = selector(requirements);
        assert_eq!(selector.matches(&labels), expected, "{selector} {labels:?}");
    }
}

#[test]
fn set_selector_parser() {
    use Operator::*;
    // (input, expected requirements when `Some`: compared exactly).
    let valid: Vec<(&str, Option<Vec<Requirement>>)> = vec![
        ("", Some(vec![])),
        ("\rx", Some(vec![req("x", Exists, &[])])),
        (
            "this-is-a-dns.domain.com/key-with-dash",
            Some(vec![req(
                "this-is-a-dns.domain.com/key-with-dash",
                Exists,
                &[],
            )]),
        ),
        (
            "this-is-another-dns.domain.com/key-with-dash in (so,what)",
            Some(vec![req(
                "this-is-another-dns.domain.com/key-with-dash",
                In,
                &["so", "what"],
            )]),
        ),
        (
            "0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
            Some(vec![req(
                "0.1.2.domain/99",
                NotIn,
                &["10.10.100.1", "tick.tack.clock"],
            )]),
        ),
        ("foo  in\t (abc)", Some(vec![req("foo", In, &["abc"])])),
        ("x notin\n (abc)", Some(vec![req("x", NotIn, &["abc"])])),
        (
            "x  notin\t\t\t(abc,def)",
            Some(vec![req("x", NotIn, &["abc", "def"])]),
        ),
        ("x in (abc,def)", Some(vec![req("x", In, &["abc", "def"])])),
        ("x in (abc,)", Some(vec![req("x", In, &["abc", ""])])),
        ("x in (abc,abc)", Some(vec![req("x", In, &["abc"])])),
        ("x in ()", Some(vec![req("x", In, &[""])])),
        ("x in (a,,)", Some(vec![req("x", In, &["a", ""])])),
        ("x in (a,,,)", Some(vec![req("x", In, &["a", ""])])),
        ("x in (a,,,,,,)", Some(vec![req("x", In, &["a", ""])])),
        ("x in (a,,a,,a,,a,,)", Some(vec![req("x", In, &["a", ""])])),
        (
            "x notin (abc,,def),bar,z in (),w",
            Some(vec![
                req("bar", Exists, &[]),
                req("w", Exists, &[]),
                req("x", NotIn, &["abc", "", "def"]),
                req("z", In, &[""]),
            ]),
        ),
        ("x,y in (a)", None),
        ("x=a", Some(vec![req("x", Equals, &["a"])])),
        ("x>1", Some(vec![req("x", GreaterThan, &["1"])])),
        ("x<7", Some(vec![req("x", LessThan, &["7"])])),
        (
            "x=a,y!=b",
            Some(vec![req("x", Equals, &["a"]), req("y", NotEquals, &["b"])]),
        ),
        (
            "x=a,y!=b,z in (h,i,j)",
            Some(vec![
                req("x", Equals, &["a"]),
                req("y", NotEquals, &["b"]),
                req("z", In, &["h", "i", "j"]),
            ]),
        ),
        ("x notin ( )", Some(vec![req("x", NotIn, &[""])])),
        ("x notin (, a)", Some(vec![req("x", NotIn, &["", "a"])])),
        ("a ", Some(vec![req("a", Exists, &[])])),
        (
            "a in (x,y,notin, z,in)",
            Some(vec![req("a", In, &["in", "notin", "x", "y", "z"])]),
        ),
    ];
    for (input, expected) in valid {
        let parsed = Selector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        if let Some(expected) = expected {
            assert_eq!(parsed, selector(expected), "{input:?}");
        }
    }
    for input in [
        "x=a||y=b",
        "x,,y",
        ",x,y",
        "x nott in (y)",
        "a in (xyz),",
        "a in (xyz)b notin ()",
        "a in (xyz abc)",
        "a notin(",
        "a (",
        "(",
    ] {
        assert!(Selector::parse(input).is_err(), "{input:?}");
    }
}

#[test]
fn parse_errors_read_like_the_api_server() {
    let cases = [
        // Recorded from kube-apiserver (apiserver-traces, step label-invalid).
        (
            "app in (a",
            "unable to parse requirement: found '', expected: ',' or ')'",
        ),
        ("x,,y", "found ',', expected: identifier after ','"),
        (
            ",x",
            "found ',', expected: !, identifier, or 'end of string'",
        ),
        ("a in (xyz)b", "found 'b', expected: ',' or 'end of string'"),
        ("!x=a", "found '=', expected: ',' or 'end of string'"),
        (
            "a notin(",
            "unable to parse requirement: found '', expected: ',', ')' or identifier",
        ),
        (
            "a in x",
            "unable to parse requirement: found 'x' expected: '('",
        ),
        (
            "a (",
            "unable to parse requirement: found '(', expected: in, notin, =, ==, !=, gt, lt",
        ),
        (
            "x in (a b)",
            "unable to parse requirement: found 'b', expected: ',' or ')'",
        ),
        (
            "x in (a,=)",
            "unable to parse requirement: found '=', expected: ',', or identifier",
        ),
        (
            "x=(",
            "unable to parse requirement: found '(', expected: identifier",
        ),
        (
            "!",
            "unable to parse requirement: found '', expected: identifier",
        ),
        (
            "x<a",
            "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        (
            "-x=a",
            "unable to parse requirement: <nil>: Invalid value: \"-x\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
        ),
        (
            "x=a*",
            "unable to parse requirement: values[0][x]: Invalid value: \"a*\": a valid label must be an empty string",
        ),
    ];
    for (input, message) in cases {
        let error = Selector::parse(input).unwrap_err();
        assert!(error.to_string().starts_with(message), "{input:?}: {error}");
    }
    // The chain: the requirement error is the source.
    let error = Selector::parse("app in (a").unwrap_err();
    let source = std::error::Error::source(&error).expect("a source");
    assert_eq!(source.to_string(), "found '', expected: ',' or ')'");
}

#[test]
fn add_keeps_requirements_sorted() {
    let selector = Selector::new().and(req("key", Operator::In, &["value"]));
    assert_eq!(
        selector.requirements(),
        [req("key", Operator::In, &["value"])]
    );
    let selector = selector.and(req("key2", Operator::Equals, &["value2"]));
    assert_eq!(selector.to_string(), "key in (value),key2=value2");
    let selector = selector.and(req("a", Operator::Exists, &[]));
    assert_eq!(selector.to_string(), "a,key in (value),key2=value2");
}

#[test]
fn set_selector_string() {
    assert_eq!(
        Selector::from_set(BTreeMap::<String, String>::new())
            .unwrap()
            .to_string(),
        ""
    );
    assert_eq!(
        Selector::from_set([("app", "foo")]).unwrap().to_string(),
        "app=foo"
    );
    assert_eq!(
        Selector::from_set([("app", "foo"), ("a", "b")])
            .unwrap()
            .to_string(),
        "a=b,app=foo"
    );
}

#[test]
fn requires_exact_match() {
    use Operator::*;
    let cases: Vec<(Vec<Requirement>, &str, Option<&str>)> = vec![
        (vec![req("key", In, &["value"])], "key", Some("value")),
        (vec![req("key", In, &["value", "value2"])], "key", None),
        (
            vec![
                req("key", In, &["value", "value1"]),
                req("key2", In, &["value2"]),
            ],
            "key2",
            Some("value2"),
        ),
        (vec![req("key", Equals, &["value"])], "key", Some("value")),
        (
            vec![req("key", DoubleEquals, &["value"])],
            "key",
            Some("value"),
        ),
        (vec![req("key", NotEquals, &["value"])], "key", None),
        (
            vec![req("key", In, &["value"]), req("key2", In, &["value2"])],
            "key",
            Some("value"),
        ),
        (vec![req("key", Exists, &[])], "key", None),
        (vec![], "key", None),
    ];
    for (requirements, key, expected) in cases {
        let selector = selector(requirements);
        assert_eq!(selector.required_value(key), expected, "{selector} {key}");
    }
}

#[test]
fn validated_selector_from_set() {
    let selector = Selector::from_set([("key", "val")]).unwrap();
    assert_eq!(
        selector.requirements(),
        [req("key", Operator::Equals, &["val"])]
    );
    let error = Selector::from_set([(
        "Key",
        "axahm2EJ8Phiephe2eixohbee9eGeiyees1thuozi1xoh0GiuH3diewi8iem7Nui",
    )])
    .unwrap_err();
    let Error::Invalid(invalid) = error else {
        panic!()
    };
    assert_eq!(invalid.errors()[0].field(), "values[0][Key]");
    assert_eq!(
        invalid.errors()[0].detail(),
        "must be no more than 63 bytes"
    );
}

#[test]
fn requirement_equality() {
    use Operator::*;
    assert_eq!(
        req("key", In, &["foo", "bar"]),
        req("key", In, &["bar", "foo"])
    );
    assert_ne!(req("key1", In, &["foo"]), req("key2", In, &["foo"]));
    assert_ne!(req("key", Equals, &["foo"]), req("key", In, &["foo"]));
    assert_ne!(req("key", In, &["foo", "bar"]), req("key", In, &["foobar"]));
}

#[test]
fn builder() {
    let selector = Selector::new()
        .eq("app", "web")
        .unwrap()
        .ne("env", "dev")
        .unwrap()
        .is_in("tier", ["fe", "be"])
        .unwrap()
        .not_in("zone", ["a"])
        .unwrap()
        .exists("team")
        .unwrap()
        .does_not_exist("legacy")
        .unwrap()
        .gt("replicas", 1)
        .unwrap()
        .lt("age", 10)
        .unwrap();
    assert_eq!(
        selector.to_string(),
        "age<10,app=web,env!=dev,!legacy,replicas>1,team,tier in (be,fe),zone notin (a)"
    );
    assert_eq!(String::from(&selector), selector.to_string());
    assert_eq!(selector.to_string().parse::<Selector>().unwrap(), selector);
    assert!(Selector::new().eq("a", "b c").is_err());
    assert!(Selector::new().is_in("a", Vec::<String>::new()).is_err());
    assert!(
        Selector::new().gt("a", -1).is_err(),
        "a negative bound is no label value"
    );
    assert!(Selector::new().exists("a/b/c").is_err());
}

#[cfg(feature = "k8s-openapi")]
#[test]
fn from_label_selector() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    let empty = LabelSelector::default();
    assert!(Selector::try_from(&empty).unwrap().is_empty());
    let full = LabelSelector {
        match_labels: Some([("app".to_string(), "web".to_string())].into()),
        match_expressions: Some(vec![
            LabelSelectorRequirement {
                key: "tier".into(),
                operator: "In".into(),
                values: Some(vec!["fe".into(), "be".into()]),
            },
            LabelSelectorRequirement {
                key: "legacy".into(),
                operator: "DoesNotExist".into(),
                values: None,
            },
            LabelSelectorRequirement {
                key: "zone".into(),
                operator: "NotIn".into(),
                values: Some(vec!["a".into()]),
            },
            LabelSelectorRequirement {
                key: "team".into(),
                operator: "Exists".into(),
                values: Some(vec![]),
            },
        ]),
    };
    let selector = Selector::try_from(full).unwrap();
    assert_eq!(
        selector.to_string(),
        "app=web,!legacy,team,tier in (be,fe),zone notin (a)"
    );
    let unknown = LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "a".into(),
            operator: "Gt".into(),
            values: Some(vec!["1".into()]),
        }]),
        ..Default::default()
    };
    assert_eq!(
        Selector::try_from(&unknown).unwrap_err().to_string(),
        r#""Gt" is not a valid label selector operator"#
    );
    let no_values = LabelSelector {
        match_expressions: Some(vec![LabelSelectorRequirement {
            key: "a".into(),
            operator: "In".into(),
            values: None,
        }]),
        ..Default::default()
    };
    assert!(
        Selector::try_from(&no_values)
            .unwrap_err()
            .to_string()
            .contains("values set can't be empty")
    );
    let bad_label = LabelSelector {
        match_labels: Some([("a".to_string(), "b c".to_string())].into()),
        ..Default::default()
    };
    assert!(
        Selector::try_from(&bad_label)
            .unwrap_err()
            .to_string()
            .starts_with("values[0][a]: Invalid value: \"b c\"")
    );
}

// ---- properties ----

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]",
        "[A-Za-z0-9][-A-Za-z0-9_.]{0,10}[A-Za-z0-9]",
        Just("in".to_string()),
        Just("notin".to_string()),
    ]
}

fn key() -> impl Strategy<Value = String> {
    (
        proptest::option::of("[a-z0-9]([a-z0-9-]{0,5}[a-z0-9])?(\\.[a-z0-9]{1,4}){0,2}"),
        name(),
    )
        .prop_map(|(prefix, name)| match prefix {
            Some(prefix) => format!("{prefix}/{name}"),
            None => name,
        })
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), name()]
}

fn requirement() -> impl Strategy<Value = Requirement> {
    use Operator::*;
    let key = key();
    (
        key,
        0..9u8,
        proptest::collection::vec(value(), 1..4),
        0..1000i64,
    )
        .prop_map(|(key, op, values, n)| {
            let (operator, values) = match op {
                0 => (In, values),
                1 => (NotIn, values),
                2 => (Equals, values[..1].to_vec()),
                3 => (DoubleEquals, values[..1].to_vec()),
                4 => (NotEquals, values[..1].to_vec()),
                5 => (Exists, vec![]),
                6 => (DoesNotExist, vec![]),
                7 => (GreaterThan, vec![n.to_string()]),
                _ => (LessThan, vec![n.to_string()]),
            };
            Requirement::new(key, operator, values).expect("generated requirements are valid")
        })
}

fn generated_selector() -> impl Strategy<Value = Selector> {
    proptest::collection::vec(requirement(), 0..5).prop_map(|requirements| {
        requirements
            .into_iter()
            .fold(Selector::new(), Selector::and)
    })
}

/// A model of the semantics written independently of the implementation.
fn model_matches(requirement: &Requirement, labels: &BTreeMap<String, String>) -> bool {
    let value = labels.get(requirement.key());
    let values = requirement.values();
    let int = |s: &str| s.parse::<i64>().ok();
    match requirement.operator() {
        Operator::Exists => value.is_some(),
        Operator::DoesNotExist => value.is_none(),
        Operator::Equals | Operator::DoubleEquals | Operator::In => {
            matches!(value, Some(v) if values.contains(v))
        }
        Operator::NotEquals | Operator::NotIn => !matches!(value, Some(v) if values.contains(v)),
        Operator::GreaterThan => {
            matches!((value.and_then(|v| int(v)), int(&values[0])), (Some(a), Some(b)) if a > b)
        }
        Operator::LessThan => {
            matches!((value.and_then(|v| int(v)), int(&values[0])), (Some(a), Some(b)) if a < b)
        }
    }
}

fn labels_for(selector: &Selector) -> impl Strategy<Value = BTreeMap<String, String>> + use<> {
    // Labels drawn from the selector's own keys and values (and a few others), so that
    // matches and misses both happen.
    let mut keys: Vec<String> = selector
        .requirements()
        .iter()
        .map(|r| r.key().to_string())
        .collect();
    keys.push("other".into());
    let mut values: Vec<String> = selector
        .requirements()
        .iter()
        .flat_map(|r| r.values().iter().cloned())
        .collect();
    values.extend(["".to_string(), "5".into(), "500".into(), "x".into()]);
    proptest::collection::btree_map(
        proptest::sample::select(keys),
        proptest::sample::select(values),
        0..6,
    )
}

proptest! {
    #[test]
    fn display_parses_back_to_the_same_selector(selector in generated_selector()) {
        let text = selector.to_string();
        let parsed = Selector::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(&parsed, &selector, "{}", text);
        prop_assert_eq!(parsed.to_string(), text);
    }

    #[test]
    fn matching_agrees_with_the_model(
        (selector, labels) in generated_selector().prop_flat_map(|s| { let l = labels_for(&s); (Just(s), l) })
    ) {
        let expected = selector.requirements().iter().all(|r| model_matches(r, &labels));
        prop_assert_eq!(selector.matches(&labels), expected);
        let json: serde_json::Map<String, serde_json::Value> =
            labels.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect();
        prop_assert_eq!(selector.matches(&json), expected);
    }

    #[test]
    fn parsing_never_panics(text in "[a-z!=<>(), \t/.0-9-]{0,30}") {
        let _ = Selector::parse(&text);
    }
}
