//! Label and field selectors: what parses prints back to text that parses to the same terms.
#![no_main]

use kube_apimachinery::{fields, labels};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(selector) = labels::Selector::parse(text) {
        let printed = selector.to_string();
        let again = labels::Selector::parse(&printed).expect("a printed label selector parses");
        assert_eq!(again, selector);
    }
    if let Ok(selector) = fields::Selector::parse(text) {
        let printed = selector.to_string();
        let again = fields::Selector::parse(&printed).expect("a printed field selector parses");
        assert_eq!(again.terms().len(), selector.terms().len());
    }
});
