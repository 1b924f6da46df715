//! Port and listen-address specifications, parsed as kubectl and client-go parse them.
//!
//! Ports: `5000` (local 5000 to remote 5000), `8888:5000` (local 8888 to remote 5000),
//! `:5000` or `0:5000` (a random free local port to remote 5000). The remote port must not be 0.
//!
//! Addresses: `localhost` means both `127.0.0.1` and `::1`, and it is enough that one of the two
//! can listen (the "all" group: all of it may fail only if another of it succeeds); an explicit
//! IP must always succeed (the "any" group: any failure fails the port). An explicit
//! `127.0.0.1` or `::1` next to `localhost` takes the explicit rule.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use crate::error::Error;

/// A local-to-remote port pair (client-go's `ForwardedPort`).
///
/// `local` is 0 for "any free port" until the listener is bound; the pairs reported by
/// [`Forwarding::ports`](crate::Forwarding::ports) carry the port actually bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ForwardedPort {
    /// The local port (0: chosen by the system).
    pub local: u16,
    /// The port in the pod.
    pub remote: u16,
}

impl fmt::Display for ForwardedPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.local, self.remote)
    }
}

/// Parses one port specification (`5000`, `8888:5000`, `:5000`, `0:5000`).
pub fn parse_port(spec: &str) -> Result<ForwardedPort, Error> {
    let invalid = |reason: String| Error::InvalidPort {
        spec: spec.to_string(),
        reason,
    };
    let parts: Vec<&str> = spec.split(':').collect();
    let (local, remote) = match parts.as_slice() {
        [both] => (*both, *both),
        [local, remote] => (if local.is_empty() { "0" } else { *local }, *remote),
        _ => return Err(invalid("invalid port format".into())),
    };
    // Go's strconv.ParseUint(s, 10, 16): decimal digits only (no sign), at most 65535.
    let number = |what: &str, text: &str| -> Result<u16, Error> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(format!("error parsing {what} port {text:?}")));
        }
        text.parse::<u16>()
            .map_err(|_| invalid(format!("{what} port {text:?} is out of range")))
    };
    let local = number("local", local)?;
    let remote = number("remote", remote)?;
    if remote == 0 {
        return Err(invalid("remote port must be > 0".into()));
    }
    Ok(ForwardedPort { local, remote })
}

/// Parses port specifications in order (client-go's `parsePorts`).
pub fn parse_ports<S: AsRef<str>>(specs: &[S]) -> Result<Vec<ForwardedPort>, Error> {
    specs.iter().map(|s| parse_port(s.as_ref())).collect()
}

/// How the failure of one listener of a port is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureMode {
    /// The `localhost` group: these listeners may fail as long as one of the group succeeds.
    All,
    /// An explicit address: its failure fails the port.
    Any,
}

/// One address to listen on, with its failure rule (client-go's `listenAddress`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenAddress {
    /// The IP address.
    pub ip: IpAddr,
    /// How a failure to listen on it is judged.
    pub failure_mode: FailureMode,
}

/// Parses listen addresses (client-go's `parseAddresses`): `localhost` or IP addresses; the
/// result has each IP once, sorted by its text as client-go sorts it (`127.0.0.1` before
/// `::1`), with an explicit address winning over the `localhost` group.
pub fn parse_addresses<S: AsRef<str>>(addresses: &[S]) -> Result<Vec<ListenAddress>, Error> {
    let mut parsed: BTreeMap<String, ListenAddress> = BTreeMap::new();
    for address in addresses {
        let address = address.as_ref();
        if address == "localhost" {
            for ip in [
                IpAddr::from(Ipv4Addr::LOCALHOST),
                IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
            ] {
                parsed.entry(ip.to_string()).or_insert(ListenAddress {
                    ip,
                    failure_mode: FailureMode::All,
                });
            }
            continue;
        }
        let ip = parse_ip_sloppy(address).ok_or_else(|| Error::InvalidAddress {
            address: address.to_string(),
        })?;
        // Go keys the map by the text as given; two spellings of one IP are one listener
        // here (a second bind of the same address would only fail).
        parsed.insert(
            ip.to_string(),
            ListenAddress {
                ip,
                failure_mode: FailureMode::Any,
            },
        );
    }
    Ok(parsed.into_values().collect())
}

/// Go's `netutils.ParseIPSloppy`: an IP address, where IPv4 parts may carry leading zeros
/// (read as decimal, as Go before 1.17 did).
fn parse_ip_sloppy(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut octets = [0u8; 4];
    for (octet, part) in octets.iter_mut().zip(parts) {
        if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *octet = part.parse().ok()?;
    }
    Some(IpAddr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use FailureMode::{All, Any};

    fn addr(ip: &str, failure_mode: FailureMode) -> ListenAddress {
        ListenAddress {
            ip: ip.parse().unwrap(),
            failure_mode,
        }
    }

    fn fp(local: u16, remote: u16) -> ForwardedPort {
        ForwardedPort { local, remote }
    }

    /// client-go's TestParsePortsAndNew, port half: which inputs fail to parse.
    #[test]
    fn client_go_port_table() {
        for bad in [
            "a", ":a", "-1", "65536", "0", "0:0", "a:5000", "5000:a", "5000:", "1:2:3", "", "+80",
            " 80",
        ] {
            assert!(parse_port(bad).is_err(), "{bad:?} should not parse");
        }
        assert_eq!(
            parse_ports(&[
                "5000",
                "5000:5000",
                "8888:5000",
                "5000:8888",
                ":5000",
                "0:5000"
            ])
            .unwrap(),
            vec![
                fp(5000, 5000),
                fp(5000, 5000),
                fp(8888, 5000),
                fp(5000, 8888),
                fp(0, 5000),
                fp(0, 5000),
            ]
        );
        // The seed's specifications.
        assert_eq!(parse_port("8080:80").unwrap(), fp(8080, 80));
        assert_eq!(parse_port(":80").unwrap(), fp(0, 80));
        assert_eq!(parse_port("80").unwrap(), fp(80, 80));
        assert_eq!(parse_port("65535").unwrap(), fp(65535, 65535));
        let error = parse_port("0").unwrap_err().to_string();
        assert!(error.contains("remote port must be > 0"), "{error}");
    }

    /// client-go's TestParsePortsAndNew, address half.
    #[test]
    fn client_go_address_table() {
        for bad in [
            "127.0.0.257",
            "::g",
            "domain.invalid",
            "",
            "1.2.3",
            "1.2.3.4.5",
        ] {
            assert!(parse_addresses(&[bad]).is_err(), "{bad:?} should not parse");
        }
        let table: &[(&[&str], Vec<ListenAddress>)] = &[
            (
                &["localhost"],
                vec![addr("127.0.0.1", All), addr("::1", All)],
            ),
            (
                &["localhost", "127.0.0.1"],
                vec![addr("127.0.0.1", Any), addr("::1", All)],
            ),
            (
                &["localhost", "::1"],
                vec![addr("127.0.0.1", All), addr("::1", Any)],
            ),
            (
                &["localhost", "127.0.0.1", "::1"],
                vec![addr("127.0.0.1", Any), addr("::1", Any)],
            ),
            (
                &["localhost", "127.0.0.1", "10.10.10.1"],
                vec![
                    addr("10.10.10.1", Any),
                    addr("127.0.0.1", Any),
                    addr("::1", All),
                ],
            ),
            (
                &["127.0.0.1", "::1", "localhost"],
                vec![addr("127.0.0.1", Any), addr("::1", Any)],
            ),
            (
                &["10.0.0.1", "127.0.0.1"],
                vec![addr("10.0.0.1", Any), addr("127.0.0.1", Any)],
            ),
            (&["0.0.0.0"], vec![addr("0.0.0.0", Any)]),
            (&["::"], vec![addr("::", Any)]),
        ];
        for (input, expected) in table {
            assert_eq!(&parse_addresses(input).unwrap(), expected, "{input:?}");
        }
    }

    #[test]
    fn sloppy_ipv4_accepts_leading_zeros() {
        assert_eq!(
            parse_addresses(&["010.000.000.001"]).unwrap(),
            vec![addr("10.0.0.1", Any)]
        );
        assert!(parse_addresses(&["1.2.3.0004"]).is_err());
    }
}
