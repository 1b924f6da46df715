//! Port-forward port specifications and listen addresses.
#![no_main]

use kube_portforward::ports::{parse_addresses, parse_port};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(port) = parse_port(text) {
        assert_eq!(parse_port(&port.to_string()).ok(), Some(port));
    }
    let _ = parse_addresses(&text.split(',').collect::<Vec<_>>());
});
