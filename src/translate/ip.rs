//! `ipPreference` (the mesh's `serviceDiscovery.ipPreference`, overridden by a node's `dns` or
//! `awsCloudMap` one), App Mesh's way (its IPv6 walkthrough's table): the DNS lookup family of the
//! clusters that reach the node, the address of its local app, and what its listeners bind.
//!
//! | preference | DNS | Cloud Map | local app | listeners |
//! |---|---|---|---|---|
//! | none | AUTO (IPv6, then IPv4) | V4_PREFERRED | 127.0.0.1 | IPv4 only |
//! | IPv4_PREFERRED | V4_PREFERRED | V4_PREFERRED | 127.0.0.1 | IPv4 and IPv6 |
//! | IPv6_PREFERRED | AUTO | AUTO | ::1 | IPv4 and IPv6 |
//! | IPv4_ONLY | V4_ONLY | V4_ONLY | 127.0.0.1 | IPv4 and IPv6 |
//! | IPv6_ONLY | V6_ONLY | V6_ONLY | ::1 | IPv4 and IPv6 |

use envoy_types::pb::envoy::config::cluster::v3::cluster::DnsLookupFamily;
use envoy_types::pb::envoy::config::core::v3::{address, Address};
use envoy_types::pb::envoy::config::listener::v3::{AdditionalAddress, Listener};

use super::util::socket;
use crate::model::Mesh;
use crate::spec::{IpPreference, ServiceDiscovery};

/// The preference that applies to a node: its discovery's own, else the mesh's.
pub fn preference(mesh: &Mesh, sd: Option<&ServiceDiscovery>) -> Option<IpPreference> {
    let own = sd.and_then(|sd| {
        sd.dns
            .as_ref()
            .and_then(|d| d.ip_preference)
            .or_else(|| sd.aws_cloud_map.as_ref().and_then(|c| c.ip_preference))
    });
    own.or_else(|| mesh_preference(mesh))
}

/// The mesh-wide preference (virtual gateways have no preference of their own).
pub fn mesh_preference(mesh: &Mesh) -> Option<IpPreference> {
    mesh.spec
        .service_discovery
        .as_ref()
        .and_then(|s| s.ip_preference)
}

/// The lookup family of a DNS-resolved cluster; `cloud_map` for Cloud Map's name, where App Mesh
/// used the IPv4 address first when no preference is given.
pub fn dns_lookup_family(pref: Option<IpPreference>, cloud_map: bool) -> DnsLookupFamily {
    match pref {
        None if cloud_map => DnsLookupFamily::V4Preferred,
        None | Some(IpPreference::Ipv6Preferred) => DnsLookupFamily::Auto,
        Some(IpPreference::Ipv4Preferred) => DnsLookupFamily::V4Preferred,
        Some(IpPreference::Ipv4Only) => DnsLookupFamily::V4Only,
        Some(IpPreference::Ipv6Only) => DnsLookupFamily::V6Only,
    }
}

/// Where the sidecar reaches its local app.
pub fn local_app(pref: Option<IpPreference>) -> &'static str {
    match pref {
        Some(IpPreference::Ipv6Preferred | IpPreference::Ipv6Only) => "::1",
        _ => "127.0.0.1",
    }
}

/// With a preference, listeners take IPv6 as well as IPv4: one on `0.0.0.0` binds `::` instead
/// (IPv4 clients mapped into it), one on `127.0.0.1` also binds `::1`. Without one they stay IPv4.
pub fn bind_both_families(listeners: &mut [Listener], pref: Option<IpPreference>) {
    if pref.is_none() {
        return;
    }
    for l in listeners {
        let Some((ip, port)) = socket_of(l.address.as_ref()) else {
            continue;
        };
        match ip.as_str() {
            "0.0.0.0" => {
                let mut a = socket("::", port);
                if let Some(address::Address::SocketAddress(s)) = &mut a.address {
                    s.ipv4_compat = true;
                }
                l.address = Some(a);
            }
            "127.0.0.1" => l.additional_addresses.push(AdditionalAddress {
                address: Some(socket("::1", port)),
                ..Default::default()
            }),
            _ => {}
        }
    }
}

fn socket_of(a: Option<&Address>) -> Option<(String, u32)> {
    let Some(address::Address::SocketAddress(s)) = a.and_then(|a| a.address.as_ref()) else {
        return None;
    };
    use envoy_types::pb::envoy::config::core::v3::socket_address::PortSpecifier;
    match s.port_specifier {
        Some(PortSpecifier::PortValue(p)) => Some((s.address.clone(), p)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::IpPreference as P;

    #[test]
    fn lookup_families_follow_app_meshs_table() {
        use DnsLookupFamily as F;
        let dns = [
            None,
            Some(P::Ipv4Preferred),
            Some(P::Ipv6Preferred),
            Some(P::Ipv4Only),
            Some(P::Ipv6Only),
        ]
        .map(|p| dns_lookup_family(p, false));
        assert_eq!(
            dns,
            [F::Auto, F::V4Preferred, F::Auto, F::V4Only, F::V6Only]
        );
        assert_eq!(dns_lookup_family(None, true), F::V4Preferred);
        assert_eq!(dns_lookup_family(Some(P::Ipv6Preferred), true), F::Auto);
        assert_eq!(local_app(Some(P::Ipv6Only)), "::1");
        assert_eq!(local_app(Some(P::Ipv4Only)), "127.0.0.1");
        assert_eq!(local_app(None), "127.0.0.1");
    }

    #[test]
    fn a_preference_binds_ipv6_too() {
        let mk = |ip: &str| Listener {
            address: Some(socket(ip, 15000)),
            ..Default::default()
        };
        let mut ls = vec![mk("0.0.0.0"), mk("127.0.0.1")];
        bind_both_families(&mut ls, None);
        assert_eq!(socket_of(ls[0].address.as_ref()).unwrap().0, "0.0.0.0");
        assert!(ls[1].additional_addresses.is_empty());
        bind_both_families(&mut ls, Some(P::Ipv4Only));
        let Some(address::Address::SocketAddress(s)) =
            ls[0].address.as_ref().unwrap().address.as_ref()
        else {
            panic!()
        };
        assert_eq!((s.address.as_str(), s.ipv4_compat), ("::", true));
        assert_eq!(
            socket_of(ls[1].additional_addresses[0].address.as_ref()).unwrap(),
            ("::1".to_string(), 15000)
        );
    }
}
