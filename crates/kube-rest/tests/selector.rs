//! Label selectors through kube-rest's re-export: parsing, printing, matching and list
//! parameters (the apimachinery tables are ported in kube-apimachinery).

use std::collections::BTreeMap;

use kube_rest::{ListParams, Selector};
use proptest::prelude::*;

#[test]
fn parse_and_print_canonically() {
    let cases = [
        ("", ""),
        ("app=web", "app=web"),
        // apimachinery keeps the operator as written: `==` prints as `==`.
        ("app==web", "app==web"),
        ("  app = web , tier!=db ", "app=web,tier!=db"),
        ("x in (b, a, b)", "x in (a,b)"),
        ("x notin (a)", "x notin (a)"),
        ("z,!y,x", "x,!y,z"),
        ("app=", "app="),
        (
            "example.com/team in (a-b,c_d,e.f)",
            "example.com/team in (a-b,c_d,e.f)",
        ),
        ("a=1,a!=2", "a=1,a!=2"),
    ];
    for (input, printed) in cases {
        let selector: Selector = input.parse().unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(selector.to_string(), printed, "{input}");
        // Printing is a fixed point.
        assert_eq!(printed.parse::<Selector>().unwrap(), selector, "{input}");
    }
}

#[test]
fn matching_and_list_params() {
    let selector = Selector::new()
        .eq("app", "web")
        .unwrap()
        .not_in("tier", ["db"])
        .unwrap()
        .does_not_exist("legacy")
        .unwrap();
    let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert!(selector.matches(&labels(&[("app", "web")])));
    assert!(selector.matches(&labels(&[("app", "web"), ("tier", "fe")])));
    assert!(!selector.matches(&labels(&[("app", "web"), ("tier", "db")])));
    assert!(!selector.matches(&labels(&[("app", "web"), ("legacy", "")])));
    assert!(!selector.matches(&labels(&[("app", "api")])));
    assert!(Selector::new().matches(&labels(&[])));
    let params = ListParams::default().labels(&selector);
    assert_eq!(
        params.label_selector.as_deref(),
        Some("app=web,!legacy,tier notin (db)")
    );
}

fn requirement() -> impl Strategy<Value = String> {
    let key = "([a-z]{1,5}\\.)?[a-z]{1,5}/?[a-z][a-z0-9]{0,4}"
        .prop_filter("one slash at most", |k| {
            k.matches('/').count() <= 1 && !k.ends_with('/')
        });
    let value = "[a-z0-9]{0,5}";
    (key, prop::collection::vec(value, 1..4), 0..6u8).prop_map(|(key, values, op)| match op {
        0 => format!("{key}={}", values[0]),
        1 => format!("{key}!={}", values[0]),
        2 => format!(
            "{key} in ({})",
            values
                .iter()
                .filter(|v| !v.is_empty())
                .cloned()
                .chain(["x".to_string()])
                .collect::<Vec<_>>()
                .join(",")
        ),
        3 => format!(
            "{key} notin ({})",
            values
                .iter()
                .filter(|v| !v.is_empty())
                .cloned()
                .chain(["x".to_string()])
                .collect::<Vec<_>>()
                .join(",")
        ),
        4 => key,
        _ => format!("!{key}"),
    })
}

proptest! {
    #[test]
    fn printing_round_trips(requirements in prop::collection::vec(requirement(), 0..6)) {
        let input = requirements.join(",");
        let selector: Selector = input.parse().map_err(|e: kube_rest::SelectorError| TestCaseError::fail(e.to_string()))?;
        let printed = selector.to_string();
        let again: Selector = printed.parse().map_err(|e: kube_rest::SelectorError| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again.to_string(), printed);
        prop_assert_eq!(again, selector);
    }
}
