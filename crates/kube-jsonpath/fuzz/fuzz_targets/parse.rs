//! Parsing any input must not panic, and whatever parses must print back to an equivalent
//! template.
#![no_main]

use kube_jsonpath::Template;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(template) = Template::parse(text) {
        let printed = template.to_string();
        let again = Template::parse(&printed).expect("a printed template parses");
        assert_eq!(again, template, "round trip through {printed:?}");
    }
});
