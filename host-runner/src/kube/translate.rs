//! Pure translation: Services + EndpointSlices → servers and targets with their
//! expected answer sets. No I/O; every rule here has a unit test.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};

use super::config::normalize_name;
use super::plan::{
    Expected, RecordType, Server, ServerKind, ServiceTargetKind, SrvAnswer, Target, TargetSource,
};

/// The label the EndpointSlice controller puts on every slice of a Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The well-known API server name for a cluster domain.
pub fn api_server_target(domain: &str) -> Target {
    Target {
        qname: format!("kubernetes.default.svc.{domain}"),
        rtype: RecordType::A,
        expected: Expected::NonEmpty,
        source: TargetSource::ApiServer,
    }
}

fn ns_name(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> (&str, &str) {
    (
        meta.namespace.as_deref().unwrap_or(""),
        meta.name.as_deref().unwrap_or(""),
    )
}

/// Whether `slice` belongs to `svc` (same namespace, service-name label).
pub fn slice_belongs_to(slice: &EndpointSlice, svc: &Service) -> bool {
    let (sns, sname) = ns_name(&svc.metadata);
    let (ens, _) = ns_name(&slice.metadata);
    ens == sns
        && slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
            .is_some_and(|n| n == sname)
}

/// An endpoint is ready unless it says otherwise (`nil` means ready, per the API).
pub fn endpoint_ready(ep: &Endpoint) -> bool {
    ep.conditions.as_ref().and_then(|c| c.ready) != Some(false)
}

fn endpoint_ips(slice: &EndpointSlice, ep: &Endpoint) -> Vec<IpAddr> {
    if slice.address_type == "FQDN" {
        return Vec::new();
    }
    ep.addresses.iter().filter_map(|a| a.parse().ok()).collect()
}

fn pod_endpoints(
    services: &[&Service],
    slices: &[&EndpointSlice],
    want: impl Fn(&Endpoint) -> bool,
) -> BTreeSet<Server> {
    let mut out = BTreeSet::new();
    for svc in services {
        for slice in slices.iter().filter(|s| slice_belongs_to(s, svc)) {
            let port = dns_port_of_slice(slice);
            for ep in slice.endpoints.iter().flatten().filter(|e| want(e)) {
                let pod = ep
                    .target_ref
                    .as_ref()
                    .filter(|r| r.kind.as_deref() == Some("Pod"))
                    .and_then(|r| r.name.clone());
                for addr in endpoint_ips(slice, ep) {
                    let name = pod.clone().unwrap_or_else(|| addr.to_string());
                    out.insert(Server {
                        name,
                        kind: ServerKind::Pod,
                        addr,
                        port,
                    });
                }
            }
        }
    }
    out
}

/// CoreDNS pods that Kubernetes took out of rotation (not ready, not terminating).
/// Clients no longer reach them through the ClusterIP, but the healer needs evidence
/// about exactly these pods, so the runner should keep probing them when healing is on.
pub fn unready_coredns_pods(services: &[&Service], slices: &[&EndpointSlice]) -> Vec<Server> {
    let unready = |e: &Endpoint| {
        let c = e.conditions.as_ref();
        c.and_then(|c| c.ready) == Some(false) && c.and_then(|c| c.terminating) != Some(true)
    };
    pod_endpoints(services, slices, unready)
        .into_iter()
        .collect()
}

/// Servers: every ready pod address of the CoreDNS EndpointSlices (labelled with the
/// pod name from `targetRef`), then the ClusterIPs of the CoreDNS Services.
pub fn coredns_servers(services: &[&Service], slices: &[&EndpointSlice]) -> Vec<Server> {
    let mut out = pod_endpoints(services, slices, endpoint_ready);
    for svc in services {
        let (ns, name) = ns_name(&svc.metadata);
        let port = svc
            .spec
            .as_ref()
            .and_then(|s| s.ports.as_ref())
            .and_then(|ps| {
                ps.iter()
                    .find(|p| p.protocol.as_deref().unwrap_or("TCP") == "UDP")
                    .or(ps.first())
            })
            .and_then(|p| u16::try_from(p.port).ok())
            .unwrap_or(53);
        for addr in cluster_ips(svc) {
            out.insert(Server {
                name: format!("{ns}/{name}"),
                kind: ServerKind::ClusterIp,
                addr,
                port,
            });
        }
    }
    // Pods first, then ClusterIPs (ServerKind orders Pod < ClusterIp).
    let mut v: Vec<Server> = out.into_iter().collect();
    v.sort_by(|a, b| (a.kind, &a.name, a.addr).cmp(&(b.kind, &b.name, b.addr)));
    v
}

fn dns_port_of_slice(slice: &EndpointSlice) -> u16 {
    let ports = slice.ports.as_deref().unwrap_or(&[]);
    ports
        .iter()
        .find(|p| p.protocol.as_deref().unwrap_or("TCP") == "UDP")
        .or_else(|| ports.iter().find(|p| p.name.as_deref() == Some("dns")))
        .and_then(|p| p.port)
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(53)
}

/// The ClusterIPs of a Service (none for headless and ExternalName).
pub fn cluster_ips(svc: &Service) -> Vec<IpAddr> {
    let Some(spec) = &svc.spec else {
        return Vec::new();
    };
    let mut ips: Vec<&str> = spec
        .cluster_ips
        .iter()
        .flatten()
        .map(String::as_str)
        .collect();
    if ips.is_empty()
        && let Some(ip) = &spec.cluster_ip
    {
        ips.push(ip);
    }
    ips.into_iter().filter_map(|ip| ip.parse().ok()).collect()
}

/// Whether a Service is headless (`clusterIP: None`).
pub fn is_headless(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some("None")
}

/// The host label CoreDNS gives an endpoint of a headless Service: its `hostname`
/// if set, else the address with `.`/`:` replaced by `-`.
pub fn endpoint_host_label(ep: &Endpoint, addr: &IpAddr) -> String {
    if let Some(h) = ep.hostname.as_deref().filter(|h| !h.is_empty()) {
        return h.to_ascii_lowercase();
    }
    let s = addr.to_string().replace(['.', ':'], "-");
    if s.ends_with('-') { format!("{s}0") } else { s }
}

/// Whether a Service opted in (annotation set to `"true"`), or no opt-in is required.
pub fn opted_in(svc: &Service, annotation: Option<&str>) -> bool {
    let Some(key) = annotation else { return true };
    svc.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

fn split(ips: &BTreeSet<IpAddr>) -> (BTreeSet<IpAddr>, BTreeSet<IpAddr>) {
    ips.iter().partition(|ip| ip.is_ipv4())
}

fn addr_targets(qname: &str, ips: &BTreeSet<IpAddr>, source: &TargetSource, out: &mut Vec<Target>) {
    let (v4, v6) = split(ips);
    for (rtype, set) in [(RecordType::A, v4), (RecordType::Aaaa, v6)] {
        if !set.is_empty() {
            out.push(Target {
                qname: qname.to_owned(),
                rtype,
                expected: Expected::Addrs(set),
                source: source.clone(),
            });
        }
    }
}

/// The targets of one Service, given its EndpointSlices (slices of other Services
/// are ignored). Names are `<svc>.<ns>.svc.<domain>`.
///
/// * ClusterIP → A/AAAA expecting the ClusterIP(s).
/// * Headless → A/AAAA expecting the ready endpoint addresses; SRV
///   `_<port>._<proto>.<svc>...` per named port expecting `<host>.<svc>...:<port>`
///   of every ready endpoint; and per-pod A/AAAA `<hostname>.<svc>...` for endpoints
///   with a `hostname` (StatefulSet pods).
/// * ExternalName → CNAME expecting the external name.
///
/// A headless Service without ready endpoints yields no target: CoreDNS answers
/// NXDOMAIN there, which is not an answer set to compare.
pub fn service_targets(svc: &Service, slices: &[&EndpointSlice], domain: &str) -> Vec<Target> {
    let (ns, name) = ns_name(&svc.metadata);
    let base = format!(
        "{}.{}.svc.{domain}",
        name.to_ascii_lowercase(),
        ns.to_ascii_lowercase()
    );
    let src = |kind| TargetSource::Service {
        namespace: ns.to_owned(),
        name: name.to_owned(),
        kind,
    };
    let mut out = Vec::new();
    let spec = svc.spec.as_ref();
    if spec.and_then(|s| s.type_.as_deref()) == Some("ExternalName") {
        if let Some(ext) = spec
            .and_then(|s| s.external_name.as_deref())
            .map(normalize_name)
            .filter(|e| !e.is_empty())
        {
            out.push(Target {
                qname: base,
                rtype: RecordType::Cname,
                expected: Expected::Cname(ext),
                source: src(ServiceTargetKind::ExternalName),
            });
        }
        return out;
    }
    if !is_headless(svc) {
        let ips: BTreeSet<IpAddr> = cluster_ips(svc).into_iter().collect();
        addr_targets(&base, &ips, &src(ServiceTargetKind::ClusterIp), &mut out);
        return out;
    }
    let mut all = BTreeSet::new();
    let mut per_host: BTreeMap<String, BTreeSet<IpAddr>> = BTreeMap::new();
    let mut srv: BTreeMap<(String, String), BTreeSet<SrvAnswer>> = BTreeMap::new();
    for slice in slices.iter().filter(|s| slice_belongs_to(s, svc)) {
        for ep in slice
            .endpoints
            .iter()
            .flatten()
            .filter(|e| endpoint_ready(e))
        {
            for addr in endpoint_ips(slice, ep) {
                all.insert(addr);
                let host = endpoint_host_label(ep, &addr);
                let fqdn = format!("{host}.{base}");
                if ep.hostname.as_deref().is_some_and(|h| !h.is_empty()) {
                    per_host.entry(fqdn.clone()).or_default().insert(addr);
                }
                for p in slice.ports.iter().flatten() {
                    let (Some(pname), Some(port)) =
                        (p.name.as_deref().filter(|n| !n.is_empty()), p.port)
                    else {
                        continue;
                    };
                    let Ok(port) = u16::try_from(port) else {
                        continue;
                    };
                    let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
                    srv.entry((pname.to_ascii_lowercase(), proto))
                        .or_default()
                        .insert(SrvAnswer {
                            target: fqdn.clone(),
                            port,
                        });
                }
            }
        }
    }
    addr_targets(&base, &all, &src(ServiceTargetKind::Headless), &mut out);
    for ((pname, proto), set) in srv {
        out.push(Target {
            qname: format!("_{pname}._{proto}.{base}"),
            rtype: RecordType::Srv,
            expected: Expected::Srv(set),
            source: src(ServiceTargetKind::HeadlessSrv),
        });
    }
    for (fqdn, ips) in per_host {
        addr_targets(&fqdn, &ips, &src(ServiceTargetKind::PodName), &mut out);
    }
    out
}

/// Every target: the API server name, then each opted-in Service's targets, sorted.
pub fn all_targets(
    services: &[&Service],
    slices: &[&EndpointSlice],
    domain: &str,
    annotation: Option<&str>,
) -> Vec<Target> {
    let mut out = vec![api_server_target(domain)];
    for svc in services.iter().filter(|s| opted_in(s, annotation)) {
        out.extend(service_targets(svc, slices, domain));
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
#[path = "translate_tests.rs"]
mod tests;
