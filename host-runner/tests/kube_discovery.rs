//! Discovery against a fake API server: EndpointSlice add/update/delete, Service
//! kinds, drift expectations and grace, API errors. No cluster is contacted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kube_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use dnswarden::kube::api::ApiCall;
use dnswarden::kube::plan::{Expected, ProbePlan, RecordType, ServerKind};
use dnswarden::kube::{Discovery, DiscoveryConfig};
use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_support::{FakeCluster, mock_client};
use tokio::sync::watch;

fn labels(kv: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn kube_dns() -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some("kube-dns".into()),
            namespace: Some("kube-system".into()),
            labels: labels(&[("k8s-app", "kube-dns")]),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some("10.96.0.10".into()),
            ..Default::default()
        }),
        status: None,
    }
}

fn ep(ip: &str, ready: bool, pod: &str, hostname: Option<&str>) -> Endpoint {
    Endpoint {
        addresses: vec![ip.into()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            ..Default::default()
        }),
        hostname: hostname.map(Into::into),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            name: Some(pod.into()),
            namespace: None,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn slice(
    ns: &str,
    name: &str,
    svc: &str,
    eps: Vec<Endpoint>,
    port: (&str, i32, &str),
) -> EndpointSlice {
    EndpointSlice {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            labels: labels(&[("kubernetes.io/service-name", svc)]),
            ..Default::default()
        },
        address_type: "IPv4".into(),
        endpoints: Some(eps),
        ports: Some(vec![EndpointPort {
            name: Some(port.0.into()),
            port: Some(port.1),
            protocol: Some(port.2.into()),
            ..Default::default()
        }]),
    }
}

fn coredns_pod(name: &str) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("kube-system".into()),
            labels: labels(&[("k8s-app", "kube-dns")]),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn pg() -> Service {
    Service {
        metadata: ObjectMeta {
            name: Some("pg".into()),
            namespace: Some("db".into()),
            annotations: labels(&[("dnswarden.io/probe", "true")]),
            ..Default::default()
        },
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            ..Default::default()
        }),
        status: None,
    }
}

async fn wait_plan(
    rx: &mut watch::Receiver<Arc<ProbePlan>>,
    what: &str,
    f: impl FnMut(&Arc<ProbePlan>) -> bool,
) -> Arc<ProbePlan> {
    let got = match tokio::time::timeout(Duration::from_secs(10), rx.wait_for(f)).await {
        Ok(Ok(p)) => Some(p.clone()),
        _ => None,
    };
    got.unwrap_or_else(|| panic!("plan never reached: {what}; last plan: {:#?}", rx.borrow()))
}

fn pods_of(p: &ProbePlan) -> Vec<(String, String)> {
    p.pod_servers()
        .map(|s| (s.name.clone(), s.addr.to_string()))
        .collect()
}

#[tokio::test]
async fn endpointslice_changes_update_the_plan_without_restart() {
    let cluster = FakeCluster::default();
    cluster.apply(&kube_dns());
    cluster.apply(&coredns_pod("coredns-a"));
    cluster.apply(&slice(
        "kube-system",
        "kube-dns-1",
        "kube-dns",
        vec![
            ep("10.244.0.5", true, "coredns-a", None),
            ep("10.244.1.6", true, "coredns-b", None),
        ],
        ("dns", 53, "UDP"),
    ));
    cluster.apply(&pg());
    cluster.apply(&slice(
        "db",
        "pg-1",
        "pg",
        vec![ep("10.1.0.1", true, "pg-0", Some("pg-0"))],
        ("postgres", 5432, "TCP"),
    ));

    let (client, handle) = mock_client();
    let server = cluster.serve(handle, "kube-system");
    let cfg = DiscoveryConfig {
        cluster_domain: Some("cluster.local".into()),
        drift_grace: Duration::from_secs(20),
        ..Default::default()
    };
    let discovery = Discovery::new(client, cfg).unwrap();
    let mut rx = discovery.plan();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(discovery.run(async move {
        let _ = stop_rx.await;
    }));

    // Initial plan: two ready pods + the ClusterIP; headless targets.
    let p = wait_plan(&mut rx, "two pods", |p| p.pod_servers().count() == 2).await;
    assert_eq!(
        pods_of(&p),
        vec![
            ("coredns-a".into(), "10.244.0.5".into()),
            ("coredns-b".into(), "10.244.1.6".into())
        ]
    );
    let cip: Vec<_> = p
        .servers
        .iter()
        .filter(|s| s.kind == ServerKind::ClusterIp)
        .map(|s| (s.name.as_str(), s.addr.to_string()))
        .collect();
    assert_eq!(
        cip,
        vec![("kube-system/kube-dns", "10.96.0.10".to_string())]
    );
    assert!(
        p.target("kubernetes.default.svc.cluster.local", RecordType::A)
            .is_some()
    );
    let a = p.target("pg.db.svc.cluster.local", RecordType::A).unwrap();
    assert_eq!(
        a.target.expected,
        Expected::Addrs(["10.1.0.1".parse().unwrap()].into())
    );
    assert!(
        p.target("_postgres._tcp.pg.db.svc.cluster.local", RecordType::Srv)
            .is_some()
    );
    assert!(
        p.target("pg-0.pg.db.svc.cluster.local", RecordType::A)
            .is_some()
    );
    let first_since = a.expected_since_us;

    // A third CoreDNS pod becomes ready (update of the slice).
    cluster.apply(&slice(
        "kube-system",
        "kube-dns-1",
        "kube-dns",
        vec![
            ep("10.244.0.5", true, "coredns-a", None),
            ep("10.244.1.6", true, "coredns-b", None),
            ep("10.244.2.7", true, "coredns-c", None),
        ],
        ("dns", 53, "UDP"),
    ));
    let p = wait_plan(&mut rx, "three pods", |p| p.pod_servers().count() == 3).await;
    assert_eq!(pods_of(&p)[2], ("coredns-c".into(), "10.244.2.7".into()));
    // Unchanged expectations keep their start time: no new grace period.
    assert_eq!(
        p.target("pg.db.svc.cluster.local", RecordType::A)
            .unwrap()
            .expected_since_us,
        first_since
    );

    // coredns-b goes unready.
    cluster.apply(&slice(
        "kube-system",
        "kube-dns-1",
        "kube-dns",
        vec![
            ep("10.244.0.5", true, "coredns-a", None),
            ep("10.244.1.6", false, "coredns-b", None),
            ep("10.244.2.7", true, "coredns-c", None),
        ],
        ("dns", 53, "UDP"),
    ));
    let p = wait_plan(&mut rx, "b unready", |p| p.pod_servers().count() == 2).await;
    assert!(!pods_of(&p).iter().any(|(n, _)| n == "coredns-b"));
    assert_eq!(
        p.unready
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        vec!["coredns-b"],
        "kept for the healer's evidence"
    );

    // The headless service scales: the expected set changes and a new grace period starts.
    cluster.apply(&slice(
        "db",
        "pg-1",
        "pg",
        vec![
            ep("10.1.0.1", true, "pg-0", Some("pg-0")),
            ep("10.1.0.2", true, "pg-1", Some("pg-1")),
        ],
        ("postgres", 5432, "TCP"),
    ));
    let p = wait_plan(&mut rx, "pg scaled", |p| {
        p.target("pg-1.pg.db.svc.cluster.local", RecordType::A)
            .is_some()
    })
    .await;
    let a = p.target("pg.db.svc.cluster.local", RecordType::A).unwrap();
    assert_eq!(
        a.target.expected,
        Expected::Addrs(["10.1.0.1".parse().unwrap(), "10.1.0.2".parse().unwrap()].into())
    );
    assert!(a.expected_since_us >= first_since);
    assert!(
        !a.drift_counts_at(a.expected_since_us + 19_999_999),
        "a mismatch inside the grace period is not drift"
    );
    assert!(a.drift_counts_at(a.expected_since_us + 20_000_000));

    // The slice is deleted: no pod servers, the ClusterIP stays.
    cluster.delete(&slice(
        "kube-system",
        "kube-dns-1",
        "kube-dns",
        vec![],
        ("dns", 53, "UDP"),
    ));
    let p = wait_plan(&mut rx, "no pods", |p| p.pod_servers().count() == 0).await;
    assert_eq!(p.servers.len(), 1);

    let _ = stop_tx.send(());
    task.await.unwrap();
    drop(server);

    // The exact requests: list then watch for each watcher, with the right selectors.
    let reqs = cluster.requests();
    let find = |call: ApiCall, watch: bool| {
        reqs.iter()
            .find(|(s, c)| *c == call && s.query.get("watch").is_some_and(|w| w == "true") == watch)
            .unwrap_or_else(|| panic!("no {call:?} watch={watch}"))
            .0
            .clone()
    };
    let l = find(ApiCall::CoreDnsServices, false);
    assert_eq!(l.path, "/api/v1/namespaces/kube-system/services");
    assert_eq!(
        l.query.get("labelSelector").map(String::as_str),
        Some("k8s-app=kube-dns")
    );
    let l = find(ApiCall::CoreDnsEndpointSlices, true);
    assert_eq!(
        l.path,
        "/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices"
    );
    assert_eq!(
        l.query.get("labelSelector").map(String::as_str),
        Some("kubernetes.io/service-name")
    );
    let l = find(ApiCall::CoreDnsPods, false);
    assert_eq!(l.path, "/api/v1/namespaces/kube-system/pods");
    let l = find(ApiCall::WatchedServices, true);
    assert_eq!(l.path, "/api/v1/services", "cluster-wide by default");
    let l = find(ApiCall::WatchedEndpointSlices, false);
    assert_eq!(l.path, "/apis/discovery.k8s.io/v1/endpointslices");
    assert!(
        reqs.iter().all(|(s, _)| s.method == http::Method::GET),
        "discovery only reads"
    );
}

#[tokio::test]
async fn namespace_list_and_opt_in_and_external_name() {
    let cluster = FakeCluster::default();
    cluster.apply(&kube_dns());
    let mut web = pg();
    web.metadata.name = Some("web".into());
    web.metadata.namespace = Some("shop".into());
    web.spec = Some(ServiceSpec {
        cluster_ip: Some("10.96.7.7".into()),
        ..Default::default()
    });
    cluster.apply(&web);
    let mut hidden = web.clone();
    hidden.metadata.name = Some("hidden".into());
    hidden.metadata.annotations = None;
    cluster.apply(&hidden);
    let mut ext = pg();
    ext.metadata.name = Some("mail".into());
    ext.metadata.namespace = Some("shop".into());
    ext.spec = Some(ServiceSpec {
        type_: Some("ExternalName".into()),
        external_name: Some("smtp.example.com".into()),
        ..Default::default()
    });
    cluster.apply(&ext);
    cluster.apply(&pg()); // namespace db is not watched

    let (client, handle) = mock_client();
    let _server = cluster.serve(handle, "kube-system");
    let cfg = DiscoveryConfig {
        namespaces: vec!["shop".into()],
        ..Default::default()
    };
    let discovery = Discovery::with_resolv_conf(
        client,
        cfg,
        Some("search shop.svc.k8s.test svc.k8s.test k8s.test\n"),
    )
    .unwrap();
    assert_eq!(discovery.cluster_domain(), "k8s.test");
    let mut rx = discovery.plan();
    let task = tokio::spawn(discovery.run(std::future::pending()));
    let p = wait_plan(&mut rx, "targets", |p| p.targets.len() == 3).await;
    let names: Vec<(&str, RecordType)> = p
        .targets
        .iter()
        .map(|t| (t.target.qname.as_str(), t.target.rtype))
        .collect();
    assert!(names.contains(&("kubernetes.default.svc.k8s.test", RecordType::A)));
    assert!(names.contains(&("web.shop.svc.k8s.test", RecordType::A)));
    assert_eq!(
        p.target("mail.shop.svc.k8s.test", RecordType::Cname)
            .unwrap()
            .target
            .expected,
        Expected::Cname("smtp.example.com".into())
    );
    task.abort();
    let reqs = cluster.requests();
    assert!(reqs.iter().any(
        |(s, c)| *c == ApiCall::WatchedServices && s.path == "/api/v1/namespaces/shop/services"
    ));
    assert!(
        !reqs.iter().any(|(s, _)| s.path == "/api/v1/services"),
        "no cluster-wide watch with a namespace list"
    );
}

#[tokio::test]
async fn a_failing_list_is_retried_and_reported() {
    let cluster = FakeCluster::default();
    cluster.apply(&kube_dns());
    cluster.apply(&slice(
        "kube-system",
        "kube-dns-1",
        "kube-dns",
        vec![ep("10.244.0.5", true, "coredns-a", None)],
        ("dns", 53, "UDP"),
    ));
    cluster.fail_next_list("etcd leader changed");
    let (client, handle) = mock_client();
    let _server = cluster.serve(handle, "kube-system");
    let cfg = DiscoveryConfig {
        cluster_domain: Some("cluster.local".into()),
        ..Default::default()
    };
    let discovery = Discovery::new(client, cfg).unwrap();
    let mut rx = discovery.plan();
    let mut api = discovery.api_status();
    let task = tokio::spawn(discovery.run(std::future::pending()));
    // The watcher backs off and retries; the plan arrives and the API is fine again.
    let p = wait_plan(&mut rx, "one pod after retry", |p| {
        p.pod_servers().count() == 1
    })
    .await;
    assert_eq!(p.pod_servers().next().unwrap().name, "coredns-a");
    assert!(
        api.has_changed().unwrap(),
        "the failure was published on api_status"
    );
    assert!(*api.borrow_and_update(), "and cleared by the next success");
    let lists = cluster
        .requests()
        .iter()
        .filter(|(s, _)| !s.query.contains_key("watch"))
        .count();
    assert_eq!(lists, 6, "five watchers listed once, one of them twice");
    task.abort();
}

#[test]
fn missing_cluster_domain_is_a_config_error() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _g = rt.enter();
    let (client, _h) = mock_client();
    let e = Discovery::with_resolv_conf(
        client,
        DiscoveryConfig::default(),
        Some("search example.org\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("kube.cluster_domain") && e.contains("fix"),
        "{e}"
    );
}

#[tokio::test]
async fn a_lost_delete_is_repaired_by_the_relist_after_410_gone() {
    let cluster = FakeCluster::default();
    cluster.apply(&kube_dns());
    let two = slice(
        "kube-system",
        "kube-dns-1",
        "kube-dns",
        vec![ep("10.244.0.5", true, "coredns-a", None)],
        ("dns", 53, "UDP"),
    );
    let other = slice(
        "kube-system",
        "kube-dns-2",
        "kube-dns",
        vec![ep("10.244.1.6", true, "coredns-b", None)],
        ("dns", 53, "UDP"),
    );
    cluster.apply(&two);
    cluster.apply(&other);
    let (client, handle) = mock_client();
    let _server = cluster.serve(handle, "kube-system");
    let cfg = DiscoveryConfig {
        cluster_domain: Some("cluster.local".into()),
        ..Default::default()
    };
    let discovery = Discovery::new(client, cfg).unwrap();
    let mut rx = discovery.plan();
    let task = tokio::spawn(discovery.run(std::future::pending()));
    wait_plan(&mut rx, "two pods", |p| p.pod_servers().count() == 2).await;
    // The DELETE event is lost; the watch then expires (410) and the watcher re-lists.
    cluster.delete_silently_and_expire(&other);
    let p = wait_plan(&mut rx, "one pod after relist", |p| {
        p.pod_servers().count() == 1
    })
    .await;
    assert_eq!(
        pods_of(&p),
        vec![("coredns-a".to_string(), "10.244.0.5".to_string())]
    );
    task.abort();
}
