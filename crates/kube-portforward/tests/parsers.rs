//! Fuzzing without nightly (docs/fuzzing.md): the port and listen-address parsers, fed
//! arbitrary and mutated text. No panic, no hang; what parses prints back to the same ports.
//! `PROPTEST_CASES` raises the number of cases.

use kube_test_support::mutate;

use kube_portforward::ports::{parse_addresses, parse_port, parse_ports};
use mutate::{cases, mutated_text, within_budget};
use proptest::prelude::*;

fn check_port(spec: String) -> Result<(), TestCaseError> {
    let parsed = within_budget({
        let spec = spec.clone();
        move || parse_port(&spec)
    });
    match parsed {
        Ok(port) => {
            prop_assert!(port.remote != 0);
            // `local:remote` parses back to the same pair.
            prop_assert_eq!(parse_port(&port.to_string()).ok(), Some(port));
        }
        Err(e) => prop_assert!(!e.to_string().is_empty()),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn ports_arbitrary(spec in "\\PC{0,12}") {
        check_port(spec)?;
    }

    #[test]
    fn ports_soup(spec in "[0-9:+ -]{0,14}") {
        check_port(spec)?;
    }

    #[test]
    fn ports_mutated(spec in mutated_text(vec!["8080".into(), "8888:5000".into(), ":443".into(), "0:65535".into()])) {
        check_port(spec)?;
    }

    #[test]
    fn many_ports(specs in prop::collection::vec("[0-9:]{0,8}", 0..8)) {
        let all_ok = specs.iter().all(|s| parse_port(s).is_ok());
        prop_assert_eq!(parse_ports(&specs).is_ok(), all_ok);
    }

    #[test]
    fn addresses(addresses in prop::collection::vec(prop_oneof![
        "\\PC{0,16}",
        "[0-9.]{0,16}",
        "[0-9a-f:]{0,20}",
        Just("localhost".to_string()),
    ], 0..5)) {
        let parsed = within_budget({
            let addresses = addresses.clone();
            move || parse_addresses(&addresses)
        });
        if let Ok(parsed) = parsed {
            // Each IP once.
            let mut ips: Vec<_> = parsed.iter().map(|a| a.ip).collect();
            ips.dedup();
            prop_assert_eq!(ips.len(), parsed.len());
        }
    }
}
