//! Which hosts and ports a plugin may reach, and which addresses are never
//! reached unless granted by address. Enforced by the runtime's network
//! capability; written here, without it, so that the registry and the CLI
//! parse grants without linking wasmtime.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Serialize};

/// Why a network grant was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct BadNetGrant {
    pub reason: String,
}

/// A host a plugin may reach, with an optional port (any port when absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NetGrant {
    host: GrantedHost,
    port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum GrantedHost {
    /// A DNS name, lowercase.
    Name(String),
    /// An address; the only way to allow a restricted one.
    Ip(IpAddr),
}

impl NetGrant {
    /// Parse `HOST`, `HOST:PORT`, `IP`, `IP:PORT`, `[IPV6]` or `[IPV6]:PORT`.
    pub fn parse(spec: &str) -> Result<Self, BadNetGrant> {
        Self::parse_text(spec).map_err(|reason| BadNetGrant { reason })
    }

    fn parse_text(spec: &str) -> Result<Self, String> {
        if spec.contains("://") || spec.contains('/') {
            return Err(
                "give a host and optional port, like api.example.com:443, not a URL".into(),
            );
        }
        if let Ok(ip) = spec.parse::<IpAddr>() {
            return Ok(NetGrant {
                host: GrantedHost::Ip(ip),
                port: None,
            });
        }
        let (host, port) = if let Some(rest) = spec.strip_prefix('[') {
            let (ip, after) = rest
                .split_once(']')
                .ok_or("an IPv6 address in brackets needs its closing `]`")?;
            let port = match after {
                "" => None,
                _ => Some(
                    after
                        .strip_prefix(':')
                        .ok_or("expected `:PORT` after `]`")?,
                ),
            };
            (ip, port)
        } else {
            match spec.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (spec, None),
            }
        };
        let port = port
            .map(|p| match p.parse::<u16>() {
                Ok(0) | Err(_) => Err(format!("`{p}` is not a port (1 to 65535)")),
                Ok(port) => Ok(port),
            })
            .transpose()?;
        let host = match host.parse::<IpAddr>() {
            Ok(ip) => GrantedHost::Ip(ip),
            Err(_) => GrantedHost::Name(valid_host_name(host)?),
        };
        Ok(NetGrant { host, port })
    }

    /// Whether this grant admits `host` (a name or an address) on `port`.
    pub fn admits(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        match &self.host {
            GrantedHost::Name(name) => name.eq_ignore_ascii_case(host),
            GrantedHost::Ip(ip) => host.parse::<IpAddr>().is_ok_and(|h| same_address(h, *ip)),
        }
    }

    /// Whether this grant names `address` itself (and its port, if it has one).
    pub fn admits_address(&self, address: SocketAddr) -> bool {
        matches!(self.host, GrantedHost::Ip(ip) if same_address(ip, address.ip()))
            && self.port.is_none_or(|p| p == address.port())
    }

    /// The address it names, when it names one rather than a host name.
    pub fn address(&self) -> Option<IpAddr> {
        match self.host {
            GrantedHost::Ip(ip) => Some(ip),
            GrantedHost::Name(_) => None,
        }
    }

    /// Whether this grant covers what a plugin's info asks for, written as
    /// `host` or `host:port`.
    pub fn covers(&self, request: &str) -> bool {
        NetGrant::parse_text(request).is_ok_and(|asked| {
            asked.host == self.host && self.port.is_none_or(|p| asked.port == Some(p))
        })
    }
}

impl fmt::Display for NetGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.host, self.port) {
            (GrantedHost::Ip(IpAddr::V6(ip)), Some(port)) => write!(f, "[{ip}]:{port}"),
            (GrantedHost::Ip(ip), Some(port)) => write!(f, "{ip}:{port}"),
            (GrantedHost::Ip(ip), None) => write!(f, "{ip}"),
            (GrantedHost::Name(name), Some(port)) => write!(f, "{name}:{port}"),
            (GrantedHost::Name(name), None) => write!(f, "{name}"),
        }
    }
}

impl TryFrom<String> for NetGrant {
    type Error = String;
    fn try_from(spec: String) -> Result<Self, String> {
        NetGrant::parse_text(&spec).map_err(|reason| format!("network grant `{spec}`: {reason}"))
    }
}

impl From<NetGrant> for String {
    fn from(grant: NetGrant) -> String {
        grant.to_string()
    }
}

fn valid_host_name(host: &str) -> Result<String, String> {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) {
        return Err(format!(
            "`{host}` is not a host name (letters, digits, `-` and dots) or an IP address"
        ));
    }
    Ok(host)
}

/// An IPv4 address written as IPv4-mapped IPv6 is the same address.
fn same_address(a: IpAddr, b: IpAddr) -> bool {
    a.to_canonical() == b.to_canonical()
}

/// Why an address may not be reached unless it is granted itself: it belongs
/// to the host or its network, not to the internet.
pub fn restricted(ip: IpAddr) -> Option<&'static str> {
    match ip.to_canonical() {
        IpAddr::V4(ip) => restricted_v4(ip),
        IpAddr::V6(ip) => restricted_v6(ip),
    }
}

fn restricted_v4(ip: Ipv4Addr) -> Option<&'static str> {
    const METADATA: [Ipv4Addr; 2] = [
        Ipv4Addr::new(169, 254, 169, 254),
        // Alibaba Cloud's metadata service.
        Ipv4Addr::new(100, 100, 100, 200),
    ];
    let [a, b, ..] = ip.octets();
    Some(if METADATA.contains(&ip) {
        "cloud-metadata"
    } else if ip.is_loopback() {
        "loopback"
    } else if ip.is_private() {
        "private"
    } else if ip.is_link_local() {
        "link-local"
    } else if a == 0 {
        "unspecified"
    } else if a == 100 && (64..128).contains(&b) {
        "shared (carrier-grade NAT)"
    } else if ip.is_broadcast() || ip.is_multicast() || a >= 240 {
        "broadcast, multicast or reserved"
    } else {
        return None;
    })
}

fn restricted_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    let metadata: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);
    Some(if ip == metadata {
        "cloud-metadata"
    } else if ip.is_loopback() {
        "loopback"
    } else if ip.is_unspecified() {
        "unspecified"
    } else if first & 0xffc0 == 0xfe80 {
        "link-local"
    } else if first & 0xfe00 == 0xfc00 {
        "private"
    } else if ip.is_multicast() {
        "broadcast, multicast or reserved"
    } else if let Some(embedded) = nat64_embedded(ip) {
        // A NAT64 address reaches the IPv4 address inside it.
        return restricted_v4(embedded);
    } else {
        return None;
    })
}

fn nat64_embedded(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]).then(|| {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_parse_and_print_back() {
        for (spec, printed) in [
            ("api.example.com", "api.example.com"),
            ("API.Example.com:443", "api.example.com:443"),
            ("127.0.0.1:8080", "127.0.0.1:8080"),
            ("169.254.169.254", "169.254.169.254"),
            ("::1", "::1"),
            ("[::1]:8080", "[::1]:8080"),
        ] {
            assert_eq!(
                NetGrant::parse(spec).unwrap().to_string(),
                printed,
                "{spec}"
            );
        }
        for bad in [
            "",
            "https://api.example.com",
            "host:0",
            "host:99999",
            "bad_name",
            "[::1",
            "-x.org",
        ] {
            assert!(NetGrant::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn restricted_addresses_are_named() {
        for (ip, why) in [
            ("127.0.0.1", Some("loopback")),
            ("10.1.2.3", Some("private")),
            ("192.168.0.1", Some("private")),
            ("172.20.0.1", Some("private")),
            ("169.254.169.254", Some("cloud-metadata")),
            ("169.254.1.1", Some("link-local")),
            ("100.64.0.1", Some("shared (carrier-grade NAT)")),
            ("0.0.0.0", Some("unspecified")),
            ("::1", Some("loopback")),
            ("::ffff:127.0.0.1", Some("loopback")),
            ("fe80::1", Some("link-local")),
            ("fd00:ec2::254", Some("cloud-metadata")),
            ("fd12::1", Some("private")),
            ("64:ff9b::a9fe:a9fe", Some("cloud-metadata")),
            ("93.184.216.34", None),
            ("2606:4700::1111", None),
        ] {
            assert_eq!(restricted(ip.parse().unwrap()), why, "{ip}");
        }
    }
}
