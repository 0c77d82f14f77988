use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{ObjectReference, Service, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use super::*;

fn meta(ns: &str, name: &str) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(ns.into()),
        name: Some(name.into()),
        ..ObjectMeta::default()
    }
}

fn svc(ns: &str, name: &str, spec: ServiceSpec) -> Service {
    let mut m = meta(ns, name);
    m.annotations = Some(BTreeMap::from([(
        "dnswarden.io/probe".to_string(),
        "true".to_string(),
    )]));
    Service {
        metadata: m,
        spec: Some(spec),
        status: None,
    }
}

fn ep(ip: &str, ready: Option<bool>, hostname: Option<&str>, pod: Option<&str>) -> Endpoint {
    Endpoint {
        addresses: vec![ip.into()],
        conditions: Some(EndpointConditions {
            ready,
            ..EndpointConditions::default()
        }),
        hostname: hostname.map(Into::into),
        target_ref: pod.map(|p| ObjectReference {
            kind: Some("Pod".into()),
            name: Some(p.into()),
            ..ObjectReference::default()
        }),
        ..Endpoint::default()
    }
}

fn slice(
    ns: &str,
    name: &str,
    service: &str,
    family: &str,
    eps: Vec<Endpoint>,
    ports: Vec<(&str, i32, &str)>,
) -> EndpointSlice {
    let mut m = meta(ns, name);
    m.labels = Some(BTreeMap::from([(
        SERVICE_NAME_LABEL.to_string(),
        service.to_string(),
    )]));
    EndpointSlice {
        metadata: m,
        address_type: family.into(),
        endpoints: Some(eps),
        ports: Some(
            ports
                .into_iter()
                .map(|(n, p, proto)| EndpointPort {
                    name: Some(n.into()),
                    port: Some(p),
                    protocol: Some(proto.into()),
                    ..EndpointPort::default()
                })
                .collect(),
        ),
    }
}

fn ips(list: &[&str]) -> Expected {
    Expected::Addrs(list.iter().map(|s| s.parse().unwrap()).collect())
}

#[test]
fn coredns_ready_pods_and_cluster_ip_become_servers() {
    let kube_dns = svc(
        "kube-system",
        "kube-dns",
        ServiceSpec {
            cluster_ip: Some("10.96.0.10".into()),
            ..ServiceSpec::default()
        },
    );
    let s = slice(
        "kube-system",
        "kube-dns-abc",
        "kube-dns",
        "IPv4",
        vec![
            ep("10.244.0.5", Some(true), None, Some("coredns-1")),
            ep("10.244.1.7", None, None, Some("coredns-2")),
            ep("10.244.2.9", Some(false), None, Some("coredns-3")),
        ],
        vec![
            ("dns", 53, "UDP"),
            ("dns-tcp", 53, "TCP"),
            ("metrics", 9153, "TCP"),
        ],
    );
    let other = slice(
        "kube-system",
        "metrics-xyz",
        "metrics-server",
        "IPv4",
        vec![ep("10.244.3.3", Some(true), None, Some("ms"))],
        vec![],
    );
    let servers = coredns_servers(&[&kube_dns], &[&s, &other]);
    let unready = unready_coredns_pods(&[&kube_dns], &[&s, &other]);
    assert_eq!(
        unready
            .iter()
            .map(|s| (s.name.as_str(), s.addr.to_string()))
            .collect::<Vec<_>>(),
        vec![("coredns-3", "10.244.2.9".to_string())]
    );
    let got: Vec<(&str, ServerKind, String, u16)> = servers
        .iter()
        .map(|s| (s.name.as_str(), s.kind, s.addr.to_string(), s.port))
        .collect();
    assert_eq!(
        got,
        vec![
            ("coredns-1", ServerKind::Pod, "10.244.0.5".into(), 53),
            ("coredns-2", ServerKind::Pod, "10.244.1.7".into(), 53),
            (
                "kube-system/kube-dns",
                ServerKind::ClusterIp,
                "10.96.0.10".into(),
                53
            ),
        ]
    );
}

#[test]
fn cluster_ip_service_expects_its_cluster_ips_per_family() {
    let s = svc(
        "shop",
        "Web",
        ServiceSpec {
            cluster_ip: Some("10.96.5.5".into()),
            cluster_ips: Some(vec!["10.96.5.5".into(), "fd00::5".into()]),
            ..ServiceSpec::default()
        },
    );
    let t = service_targets(&s, &[], "cluster.local");
    assert_eq!(t.len(), 2);
    assert_eq!(
        (t[0].qname.as_str(), t[0].rtype, &t[0].expected),
        (
            "web.shop.svc.cluster.local",
            RecordType::A,
            &ips(&["10.96.5.5"])
        )
    );
    assert_eq!(
        (t[1].rtype, &t[1].expected),
        (RecordType::Aaaa, &ips(&["fd00::5"]))
    );
}

#[test]
fn headless_service_expects_ready_endpoints_srv_and_pod_names() {
    let s = svc(
        "db",
        "pg",
        ServiceSpec {
            cluster_ip: Some("None".into()),
            ..ServiceSpec::default()
        },
    );
    let a = slice(
        "db",
        "pg-1",
        "pg",
        "IPv4",
        vec![
            ep("10.1.0.1", Some(true), Some("pg-0"), Some("pg-0")),
            ep("10.1.0.2", Some(false), Some("pg-1"), Some("pg-1")),
        ],
        vec![("postgres", 5432, "TCP")],
    );
    let b = slice(
        "db",
        "pg-2",
        "pg",
        "IPv4",
        vec![ep("10.1.0.3", None, None, Some("x"))],
        vec![("postgres", 5432, "TCP")],
    );
    let foreign = slice(
        "other",
        "pg-3",
        "pg",
        "IPv4",
        vec![ep("10.9.9.9", Some(true), None, None)],
        vec![],
    );
    let t = service_targets(&s, &[&a, &b, &foreign], "cluster.local");
    let base = "pg.db.svc.cluster.local";
    let a_rec = t
        .iter()
        .find(|t| t.qname == base && t.rtype == RecordType::A)
        .unwrap();
    assert_eq!(a_rec.expected, ips(&["10.1.0.1", "10.1.0.3"]));
    let srv = t.iter().find(|t| t.rtype == RecordType::Srv).unwrap();
    assert_eq!(srv.qname, format!("_postgres._tcp.{base}"));
    let want: BTreeSet<SrvAnswer> = [
        SrvAnswer {
            target: format!("pg-0.{base}"),
            port: 5432,
        },
        SrvAnswer {
            target: format!("10-1-0-3.{base}"),
            port: 5432,
        },
    ]
    .into();
    assert_eq!(srv.expected, Expected::Srv(want));
    let pod = t
        .iter()
        .find(|t| t.qname == format!("pg-0.{base}"))
        .unwrap();
    assert_eq!(
        (pod.rtype, &pod.expected),
        (RecordType::A, &ips(&["10.1.0.1"]))
    );
    // The not-ready pg-1 has no per-pod name, and nothing else was produced.
    assert!(!t.iter().any(|t| t.qname.starts_with("pg-1.")));
    assert_eq!(t.len(), 3);
}

#[test]
fn headless_without_ready_endpoints_has_no_target() {
    let s = svc(
        "db",
        "empty",
        ServiceSpec {
            cluster_ip: Some("None".into()),
            ..ServiceSpec::default()
        },
    );
    let a = slice(
        "db",
        "e-1",
        "empty",
        "IPv4",
        vec![ep("10.1.0.1", Some(false), None, None)],
        vec![("x", 1, "TCP")],
    );
    assert!(service_targets(&s, &[&a], "cluster.local").is_empty());
}

#[test]
fn external_name_expects_cname() {
    let s = svc(
        "ext",
        "mail",
        ServiceSpec {
            type_: Some("ExternalName".into()),
            external_name: Some("SMTP.Example.com.".into()),
            ..ServiceSpec::default()
        },
    );
    let t = service_targets(&s, &[], "corp.local");
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].qname.as_str(), t[0].rtype, &t[0].expected),
        (
            "mail.ext.svc.corp.local",
            RecordType::Cname,
            &Expected::Cname("smtp.example.com".into())
        )
    );
}

#[test]
fn ipv6_host_labels_follow_coredns() {
    let e = ep("fd00::", Some(true), None, None);
    assert_eq!(
        endpoint_host_label(&e, &"fd00::".parse().unwrap()),
        "fd00--0"
    );
    assert_eq!(
        endpoint_host_label(&e, &"fd00::1".parse().unwrap()),
        "fd00--1"
    );
    let named = ep("10.0.0.1", Some(true), Some("Web-0"), None);
    assert_eq!(
        endpoint_host_label(&named, &"10.0.0.1".parse().unwrap()),
        "web-0"
    );
}

#[test]
fn opt_in_annotation_filters_and_api_server_is_always_there() {
    let mut s = svc(
        "a",
        "x",
        ServiceSpec {
            cluster_ip: Some("10.0.0.1".into()),
            ..ServiceSpec::default()
        },
    );
    let with = all_targets(&[&s], &[], "cluster.local", Some("dnswarden.io/probe"));
    assert_eq!(with.len(), 2);
    assert!(
        with.iter()
            .any(|t| t.qname == "kubernetes.default.svc.cluster.local"
                && t.expected == Expected::NonEmpty)
    );
    s.metadata.annotations = None;
    assert_eq!(
        all_targets(&[&s], &[], "cluster.local", Some("dnswarden.io/probe")).len(),
        1
    );
    assert_eq!(all_targets(&[&s], &[], "cluster.local", None).len(), 2);
}

#[test]
fn fqdn_slices_are_ignored() {
    let s = svc(
        "a",
        "h",
        ServiceSpec {
            cluster_ip: Some("None".into()),
            ..ServiceSpec::default()
        },
    );
    let f = slice(
        "a",
        "h-1",
        "h",
        "FQDN",
        vec![ep("example.com", Some(true), None, None)],
        vec![],
    );
    assert!(service_targets(&s, &[&f], "cluster.local").is_empty());
}
