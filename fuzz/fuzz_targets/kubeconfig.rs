//! Kubeconfig YAML: parse, merge, resolve every context into a `Config`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(kubeconfig) = kube_rest::Kubeconfig::parse(text, std::path::Path::new("/fuzz/config"))
    else {
        return;
    };
    let _ = format!("{kubeconfig:?}");
    let merged = kubeconfig.clone().merge(kubeconfig.clone());
    for context in merged.contexts.iter().take(8) {
        let mut one = merged.clone();
        one.current_context = Some(context.name.clone());
        if let Ok(config) = kube_rest::Config::from_kubeconfig(&one) {
            let _ = format!("{config:?}");
        }
    }
});
