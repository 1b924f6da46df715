//! Property tests: the parser and the evaluator never panic, and printing a template then
//! parsing it again gives the same tree.

use kube_jsonpath::{
    Document, Filter, FilterOp, JsonPath, Literal, Segment, Span, Step, StepKind, Subscript,
    Template,
};
use proptest::prelude::*;

/// Strings made mostly of the characters that matter to the template grammar.
fn template_like() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "{", "}", "[", "]", "(", ")", "?(", "[?(", "@", "$", ".", "..", "*", ",", ":", "'", "\"",
        "\\", "-", "+", "1", "0", "5", " ", "\t", "\n", "=", "==", "!=", "<", ">=", "range", "end",
        "true", "a", "name", "items", "é", "\\.", "x",
    ]);
    prop::collection::vec(pieces, 0..40).prop_map(|p| p.concat())
}

fn document() -> Document {
    Document::from_json_str(
        r#"{"kind": "List", "items": [
            {"metadata": {"name": "a", "labels": {"x": "1"}}, "n": 1, "f": 1.5, "b": true, "s": "str"},
            {"metadata": {"name": "b"}, "n": null, "l": [1, [2, {"name": "c"}], "x"]},
            "text", 7, null, []
        ], "name": {"name": "deep"}, "e": {}, "1": "one"}"#,
    )
    .expect("fixture")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(2000)
    ))]

    #[test]
    fn parsing_never_panics(text in any::<String>()) {
        let _ = Template::parse(&text);
    }

    #[test]
    fn parsing_and_executing_grammar_soup_never_panics(text in template_like()) {
        if let Ok(template) = Template::parse(&text) {
            let doc = document();
            let value: serde_json::Value =
                serde_json::from_str(r#"{"items": [{"a": 1}, {"a": "x"}, null], "m": {"k": [true]}}"#)
                    .expect("fixture");
            for allow in [false, true] {
                for json in [false, true] {
                    let jp = JsonPath::from_template(template.clone())
                        .allow_missing_keys(allow)
                        .json_output(json);
                    let _ = jp.render_to_vec(&doc);
                    let _ = jp.render_to_vec(&value);
                }
            }
        }
    }

    #[test]
    fn printing_a_parsed_soup_parses_back(text in template_like()) {
        if let Ok(template) = Template::parse(&text) {
            let printed = template.to_string();
            let again = Template::parse(&printed);
            prop_assert_eq!(again.as_ref().ok(), Some(&template), "printed as {:?}", printed);
        }
    }

    #[test]
    fn parse_of_display_is_identity(template in template_strategy()) {
        let printed = template.to_string();
        let parsed = Template::parse(&printed);
        prop_assert_eq!(parsed.as_ref().ok(), Some(&template), "printed as {:?}", printed);
    }
}

// -- a generator of trees the parser can produce ----------------------------------------------

#[derive(Clone, Copy, PartialEq)]
enum Place {
    /// Directly in an action.
    Action,
    /// In a filter operand.
    Filter,
    /// In a filter that is a union member (no brackets allowed inside).
    UnionFilter,
    /// In a quoted union member (`'a.b'`): no brackets, no quotes of its own.
    Chain,
}

fn rich_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-zA-Z0-9_/\\-]{1,6}",
        "[a-z0-9 .,\\[\\]@$*{}\\t\\r\\n\"'()=<>!/-]{1,8}",
    ]
}

fn plain_name() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[a-zA-Z0-9_/\\- .@$*]{1,8}"]
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..8).prop_map(Literal::String),
        "[ -~é\\n\\t]{0,8}".prop_map(|s| Literal::String(s.into_bytes())),
        any::<i64>().prop_map(Literal::Int),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Literal::Float),
        any::<bool>().prop_map(Literal::Bool),
    ]
}

fn subscript() -> impl Strategy<Value = Subscript> {
    let bound = prop::option::of(prop_oneof![-10i64..10, any::<i64>()]);
    prop_oneof![
        bound.clone().prop_map(Subscript::Index),
        (bound.clone(), bound.clone(), bound).prop_map(|(start, end, step)| Subscript::Slice {
            start,
            end,
            step
        }),
    ]
}

fn identifier() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["range", "end", "foo", "x_1", "é"]).prop_map(str::to_string)
}

fn op() -> impl Strategy<Value = FilterOp> {
    prop::sample::select(vec![
        FilterOp::Eq,
        FilterOp::Ne,
        FilterOp::Lt,
        FilterOp::Gt,
        FilterOp::Le,
        FilterOp::Ge,
        FilterOp::Other("<>".into()),
        FilterOp::Other("=".into()),
        FilterOp::Other("!".into()),
        FilterOp::Other("===".into()),
    ])
}

/// A single step allowed at `place`, without nested filters or unions (depth 0).
fn leaf_step(place: Place) -> BoxedStrategy<StepKind> {
    let name = if place == Place::Action {
        rich_name().boxed()
    } else {
        plain_name().boxed()
    };
    let mut options: Vec<BoxedStrategy<StepKind>> = vec![
        name.prop_map(StepKind::Field).boxed(),
        Just(StepKind::Wildcard).boxed(),
        Just(StepKind::Recursive).boxed(),
        identifier().prop_map(StepKind::Identifier).boxed(),
        literal().prop_map(StepKind::Literal).boxed(),
    ];
    if matches!(place, Place::Action | Place::Filter) {
        options.push(subscript().prop_map(StepKind::Subscript).boxed());
    }
    prop::strategy::Union::new(options).boxed()
}

/// No two recursive descents in a row (client-go rejects `....`).
fn valid_sequence(steps: &[StepKind]) -> bool {
    !steps
        .windows(2)
        .any(|w| w[0] == StepKind::Recursive && w[1] == StepKind::Recursive)
}

fn to_steps(kinds: Vec<StepKind>) -> Vec<Step> {
    kinds.into_iter().map(Step::new).collect()
}

fn pipeline(place: Place, max: usize) -> BoxedStrategy<Vec<Step>> {
    prop::collection::vec(leaf_step(place), 0..max)
        .prop_filter("no ....", |k| valid_sequence(k))
        .prop_map(to_steps)
        .boxed()
}

fn filter(place: Place) -> BoxedStrategy<Filter> {
    (pipeline(place, 4), op(), pipeline(place, 4), any::<bool>())
        .prop_map(|(left, op, right, exists)| {
            if exists {
                Filter {
                    left,
                    op: FilterOp::Exists,
                    right: Vec::new(),
                }
            } else {
                Filter { left, op, right }
            }
        })
        .boxed()
}

/// A quoted union member: `.key` re-parsed, so it starts with a field, `*` or `..`.
fn chain() -> BoxedStrategy<Vec<Step>> {
    let head = prop_oneof![
        plain_name().prop_map(StepKind::Field),
        Just(StepKind::Wildcard),
        Just(StepKind::Recursive),
    ];
    (head, prop::collection::vec(leaf_step(Place::Chain), 0..4))
        .prop_map(|(head, mut rest)| {
            rest.insert(0, head);
            rest
        })
        .prop_filter("no ....", |k| valid_sequence(k))
        .prop_map(to_steps)
        .boxed()
}

fn union_member(first: bool) -> BoxedStrategy<Vec<Step>> {
    let mut options = vec![
        subscript()
            .prop_map(|s| vec![Step::new(StepKind::Subscript(s))])
            .boxed(),
        chain(),
    ];
    if !first {
        options.push(
            filter(Place::UnionFilter)
                .prop_map(|f| vec![Step::new(StepKind::Filter(Box::new(f)))])
                .boxed(),
        );
    }
    prop::strategy::Union::new(options).boxed()
}

fn union() -> BoxedStrategy<StepKind> {
    (
        union_member(true),
        prop::collection::vec(union_member(false), 1..3),
    )
        .prop_map(|(first, mut rest)| {
            rest.insert(0, first);
            StepKind::Union(rest)
        })
        .boxed()
}

fn action_steps() -> BoxedStrategy<Vec<Step>> {
    let step = prop_oneof![
        6 => leaf_step(Place::Action),
        1 => union(),
        1 => filter(Place::Filter).prop_map(|f| StepKind::Filter(Box::new(f))),
    ];
    prop::collection::vec(step, 0..6)
        .prop_filter("no ....", |k| valid_sequence(k))
        .prop_map(to_steps)
        .boxed()
}

fn template_strategy() -> impl Strategy<Value = Template> {
    let text = "[^{]{1,6}";
    prop::collection::vec((prop::option::of(text), action_steps()), 0..4).prop_map(|parts| {
        let mut segments = Vec::new();
        for (text, steps) in parts {
            if let Some(text) = text {
                segments.push(Segment::Text {
                    text,
                    span: Span::default(),
                });
            }
            segments.push(Segment::Action {
                steps,
                span: Span::default(),
            });
        }
        Template { segments }
    })
}
