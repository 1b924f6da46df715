//! apimachinery's `fields/selector_test.go` tables, ported to our API.

use std::collections::BTreeMap;

use super::*;

fn set(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn split_terms_table() {
    let cases: &[(&str, &[&str])] = &[
        ("a", &["a"]),
        ("a=avalue", &["a=avalue"]),
        ("a=avalue,b=bvalue", &["a=avalue", "b=bvalue"]),
        (
            "a=avalue,b==bvalue,c!=cvalue",
            &["a=avalue", "b==bvalue", "c!=cvalue"],
        ),
        ("", &[]),
        ("a=a,", &["a=a", ""]),
        (",a=a", &["", "a=a"]),
        (r"k=\,,k2=v2", &[r"k=\,", "k2=v2"]),
        (r"k=\\,k2=v2", &[r"k=\\", "k2=v2"]),
        (r"k=\\\,,k2=v2", &[r"k=\\\,", "k2=v2"]),
        (r"k=\a\b\", &[r"k=\a\b\"]),
        (r"k=\", &[r"k=\"]),
        ("함=수,목=록", &["함=수", "목=록"]),
    ];
    for (selector, terms) in cases {
        assert_eq!(split_terms(selector), *terms, "{selector}");
    }
}

#[test]
fn split_term_table() {
    type Split<'a> = Option<(&'a str, Operator, &'a str)>;
    let cases: &[(&str, Split)] = &[
        ("a=value", Some(("a", Operator::Equals, "value"))),
        ("b==value", Some(("b", Operator::Equals, "value"))),
        ("c!=value", Some(("c", Operator::NotEquals, "value"))),
        ("", None),
        ("a", None),
        (r"k=\,", Some(("k", Operator::Equals, r"\,"))),
        (r"k=\=", Some(("k", Operator::Equals, r"\="))),
        (
            r"k=\\\a\b\=\,\",
            Some(("k", Operator::Equals, r"\\\a\b\=\,\")),
        ),
        ("함=수", Some(("함", Operator::Equals, "수"))),
    ];
    for (term, expected) in cases {
        assert_eq!(split_term(term), *expected, "{term}");
    }
}

#[test]
fn escape_value_table() {
    let cases = [
        ("", ""),
        ("a", "a"),
        ("=", r"\="),
        (",", r"\,"),
        (r"\", r"\\"),
        (r"\=\,\", r"\\\=\\\,\\"),
    ];
    for (plain, escaped) in cases {
        assert_eq!(escape_value(plain), escaped);
        assert_eq!(unescape_value(escaped).unwrap(), plain);
    }
    for invalid in [r"\", r"\\\", r"\a"] {
        assert!(
            matches!(unescape_value(invalid), Err(Error::InvalidEscape { .. })),
            "{invalid}"
        );
    }
    assert_eq!(
        unescape_value(r"\a").unwrap_err().to_string(),
        r"invalid field selector: invalid escape sequence: \a"
    );
    assert_eq!(
        unescape_value("a=b").unwrap_err().to_string(),
        "invalid field selector: unescaped character in value: 61"
    );
}

#[test]
fn selector_parse() {
    for good in ["x=a,y=b,z=c", "", "x!=a,y=b", r"x=a||y\=b", r"x=a\=\=b"] {
        let selector = Selector::parse(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        assert_eq!(selector.to_string(), good);
    }
    for bad in [
        "x=a||y=b",
        "x==a==b",
        "x=a,b",
        "x in (a)",
        "x in (a,b,c)",
        "x",
    ] {
        assert!(Selector::parse(bad).is_err(), "{bad}");
    }
    assert_eq!(
        Selector::parse("x=a,b").unwrap_err().to_string(),
        "invalid selector: 'x=a,b'; can't understand 'b'"
    );
    assert_eq!(
        Selector::parse("x==a==b").unwrap_err().to_string(),
        "invalid field selector: unescaped character in value: 61"
    );
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
}

#[test]
fn selector_matches() {
    let yes = [
        ("", set(&[("x", "y")])),
        ("x=y", set(&[("x", "y")])),
        ("x=y,z=w", set(&[("x", "y"), ("z", "w")])),
        ("x!=y,z!=w", set(&[("x", "z"), ("z", "a")])),
        ("notin=in", set(&[("notin", "in")])),
    ];
    let no = [
        ("x=y", set(&[("x", "z")])),
        ("x=y,z=w", set(&[("x", "w"), ("z", "w")])),
        ("x!=y,z!=w", set(&[("x", "z"), ("z", "w")])),
    ];
    for (text, fields) in &yes {
        assert!(Selector::parse(text).unwrap().matches(fields), "{text}");
    }
    for (text, fields) in &no {
        assert!(!Selector::parse(text).unwrap().matches(fields), "{text}");
    }
    let fields = set(&[("foo", "bar"), ("baz", "blah"), ("complex", r"=value\,\")]);
    for text in [
        "foo=bar",
        "baz=blah",
        "foo=bar,baz=blah",
        r"foo=bar,baz=blah,complex=\=value\\\,\\",
    ] {
        assert!(Selector::parse(text).unwrap().matches(&fields), "{text}");
    }
    for text in ["foo=blah", "baz=bar", "foo=bar,foobar=bar,baz=blah"] {
        assert!(!Selector::parse(text).unwrap().matches(&fields), "{text}");
    }
    // A missing field reads as the empty string.
    assert!(Selector::parse("x=").unwrap().matches(&set(&[])));
    assert!(Selector::parse("x!=y").unwrap().matches(&set(&[])));
}

#[test]
fn one_term_selectors() {
    assert!(Selector::new().eq("x", "y").matches(&set(&[("x", "y")])));
    assert!(!Selector::new().eq("x", "y").matches(&set(&[("x", "z")])));
    assert!(Selector::new().ne("x", "y").matches(&set(&[("x", "z")])));
}

#[test]
fn set_matches() {
    let fields = set(&[("foo", "bar"), ("baz", "blah")]);
    for wanted in [
        set(&[]),
        set(&[("foo", "bar")]),
        set(&[("baz", "blah")]),
        set(&[("foo", "bar"), ("baz", "blah")]),
    ] {
        assert!(Selector::from_set(wanted).matches(&fields));
    }
    for unwanted in [
        set(&[("foo", "=blah")]),
        set(&[("baz", "=bar")]),
        set(&[("foo", "=bar"), ("foobar", "bar"), ("baz", "blah")]),
    ] {
        assert!(!Selector::from_set(unwanted).matches(&fields));
    }
    assert!(Selector::from_set(set(&[])).is_empty());
}

#[test]
fn requires_exact_match() {
    let cases = [
        (Selector::new(), "test", None),
        (Selector::new().eq("a", "b"), "test", None),
        (Selector::new().eq("test", "b"), "test", Some("b")),
        (Selector::new().eq("test", ""), "test", Some("")),
        (Selector::new().ne("test", "b"), "test", None),
        (Selector::new().ne("test", ""), "test", None),
        (
            Selector::new().eq("a", "").eq("test", "b"),
            "test",
            Some("b"),
        ),
        (
            Selector::parse("test!=a,test=b").unwrap(),
            "test",
            Some("b"),
        ),
    ];
    for (selector, field, expected) in cases {
        assert_eq!(selector.required_value(field), expected, "{selector}");
    }
}

#[test]
fn empty_terms_are_dropped() {
    // apimachinery's parse drops a term with neither field nor value.
    assert!(Selector::parse("=").unwrap().is_empty());
    assert!(Selector::parse("!=,a=b").unwrap().to_string() == "a=b");
    assert!(Selector::parse(",,").unwrap().is_empty());
    // A field with an empty value stays.
    assert_eq!(Selector::parse("a=").unwrap().to_string(), "a=");
}

#[test]
fn builder_order_matches_parse_order() {
    let built = Selector::new().eq("x", "a").ne("b", "c,d").eq("a", "=");
    assert_eq!(built.to_string(), r"a=\=,b!=c\,d,x=a");
    assert_eq!(built.to_string().parse::<Selector>().unwrap(), built);
    assert_eq!(built.fields().collect::<Vec<_>>(), ["a", "b", "x"]);
    assert!(built.matches_with(|field| match field {
        "a" => "=".to_string(),
        "b" => "other".to_string(),
        _ => "a".to_string(),
    }));
    assert_eq!(String::from(built.clone()), built.to_string());
}

#[test]
fn spaces_are_part_of_fields_and_values() {
    // No trimming, as in apimachinery.
    let selector = Selector::parse("a = b").unwrap();
    assert_eq!(selector.terms()[0].field(), "a ");
    assert_eq!(selector.terms()[0].value(), " b");
}
