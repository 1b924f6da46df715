//! The proxy the environment selects for the API server, as Go's `http.ProxyFromEnvironment`
//! (which client-go uses when the kubeconfig names no `proxy-url`):
//!
//! * `HTTPS_PROXY` (or `https_proxy`) for an `https://` server, `HTTP_PROXY` (or `http_proxy`)
//!   for an `http://` one; a value without a scheme means `http://`;
//! * never for `localhost` or a loopback address;
//! * not for hosts matched by `NO_PROXY` (or `no_proxy`): comma-separated `*`, IP addresses,
//!   CIDR ranges, and domain names (`example.com` matches it and its subdomains,
//!   `.example.com` only its subdomains), each with an optional `:port`.

use std::net::IpAddr;

use http::Uri;

use crate::proxy::{ProxyUrl, parse_proxy_url};

/// The proxy for `server` given the environment `var`; `Ok(None)` to connect directly.
pub(crate) fn proxy_for(
    server: &Uri,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<ProxyUrl>, String> {
    let first = |names: [&'static str; 2]| {
        names.into_iter().find_map(|name| {
            var(name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (name, v.trim().to_string()))
        })
    };
    let https = server.scheme_str() != Some("http");
    let Some((name, value)) = first(if https {
        ["HTTPS_PROXY", "https_proxy"]
    } else {
        ["HTTP_PROXY", "http_proxy"]
    }) else {
        return Ok(None);
    };
    let Some(host) = server.host() else {
        return Ok(None);
    };
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = server.port_u16().unwrap_or(if https { 443 } else { 80 });
    if host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()) {
        return Ok(None);
    }
    if let Some((_, no_proxy)) = first(["NO_PROXY", "no_proxy"])
        && excluded(&host, port, &no_proxy)
    {
        return Ok(None);
    }
    let url = if value.contains("://") {
        value
    } else {
        format!("http://{value}")
    };
    parse_proxy_url(&url)
        .map(Some)
        .map_err(|e| format!("{name} from the environment: {e}"))
}

/// Whether `NO_PROXY` excludes `host:port`.
fn excluded(host: &str, port: u16, no_proxy: &str) -> bool {
    let ip = host.parse::<IpAddr>().ok();
    no_proxy
        .split(',')
        .map(|entry| entry.trim().to_ascii_lowercase())
        .filter(|entry| !entry.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            if let Some((network, bits)) = entry.split_once('/') {
                return match (ip, network.parse::<IpAddr>(), bits.parse::<u32>()) {
                    (Some(ip), Ok(network), Ok(bits)) => in_cidr(ip, network, bits),
                    _ => false,
                };
            }
            let (name, entry_port) = split_port(&entry);
            if entry_port.is_some_and(|p| p != port) {
                return false;
            }
            if let Ok(entry_ip) = name.parse::<IpAddr>() {
                return ip == Some(entry_ip);
            }
            let name = name.strip_prefix('*').unwrap_or(name);
            match name.strip_prefix('.') {
                Some(domain) => host.ends_with(&format!(".{domain}")),
                None => host == name || host.ends_with(&format!(".{name}")),
            }
        })
}

/// `host:port`, `[v6]:port`, or a bare host (an IPv6 address without brackets has no port).
fn split_port(entry: &str) -> (&str, Option<u16>) {
    if let Some(rest) = entry.strip_prefix('[') {
        let (address, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (
            address,
            after.strip_prefix(':').and_then(|p| p.parse().ok()),
        );
    }
    match entry.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => match port.parse() {
            Ok(port) => (name, Some(port)),
            Err(_) => (entry, None),
        },
        _ => (entry, None),
    }
}

fn in_cidr(ip: IpAddr, network: IpAddr, bits: u32) -> bool {
    match (ip, network) {
        (IpAddr::V4(ip), IpAddr::V4(network)) if bits <= 32 => {
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(ip) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(network)) if bits <= 128 => {
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(ip) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn proxy(server: &str, env: &[(&str, &str)]) -> Result<Option<String>, String> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let server: Uri = server.parse().unwrap();
        proxy_for(&server, |name| env.get(name).cloned()).map(|p| p.map(|p| p.uri().to_string()))
    }

    #[test]
    fn the_scheme_picks_the_variable() {
        let env = [
            ("HTTPS_PROXY", "http://secure:3128"),
            ("HTTP_PROXY", "plain:8080"),
        ];
        assert_eq!(
            proxy("https://k8s.example:6443", &env).unwrap().as_deref(),
            Some("http://secure:3128/")
        );
        assert_eq!(
            proxy("http://k8s.example", &env).unwrap().as_deref(),
            Some("http://plain:8080/")
        );
        assert_eq!(
            proxy("https://k8s.example", &[("https_proxy", "socks5://s:1080")])
                .unwrap()
                .as_deref(),
            Some("socks5://s:1080/")
        );
        assert_eq!(
            proxy("https://k8s.example", &[("HTTP_PROXY", "p:1")]).unwrap(),
            None
        );
        assert_eq!(
            proxy("https://k8s.example", &[("HTTPS_PROXY", " ")]).unwrap(),
            None
        );
    }

    #[test]
    fn loopback_is_never_proxied() {
        let env = [("HTTPS_PROXY", "http://p:3128")];
        for server in [
            "https://localhost:6443",
            "https://127.0.0.1:6443",
            "https://[::1]:6443",
        ] {
            assert_eq!(proxy(server, &env).unwrap(), None, "{server}");
        }
    }

    #[test]
    fn no_proxy_matches_like_go() {
        let with = |no_proxy: &str, server: &str| {
            proxy(
                server,
                &[("HTTPS_PROXY", "http://p:3128"), ("NO_PROXY", no_proxy)],
            )
            .unwrap()
            .is_none()
        };
        assert!(with("*", "https://anything.example"));
        assert!(with("example.com", "https://example.com"));
        assert!(with("example.com", "https://api.example.com"));
        assert!(!with("example.com", "https://notexample.com"));
        assert!(!with(".example.com", "https://example.com"));
        assert!(with(".example.com", "https://api.example.com"));
        assert!(with("*.example.com", "https://api.example.com"));
        assert!(with("other, 10.0.0.0/8", "https://10.1.2.3:6443"));
        assert!(!with("10.0.0.0/8", "https://11.1.2.3:6443"));
        assert!(with("192.168.1.5", "https://192.168.1.5"));
        assert!(with("fd00::/8", "https://[fd00::1]:6443"));
        assert!(with("example.com:6443", "https://example.com:6443"));
        assert!(!with("example.com:443", "https://example.com:6443"));
        assert!(with("EXAMPLE.com", "https://Api.Example.COM"));
    }

    #[test]
    fn bad_values_name_their_variable() {
        let error = proxy("https://k8s.example", &[("HTTPS_PROXY", "https://p:3128")]).unwrap_err();
        assert!(error.contains("HTTPS_PROXY"), "{error}");
        assert!(error.contains("https proxies"), "{error}");
    }
}
