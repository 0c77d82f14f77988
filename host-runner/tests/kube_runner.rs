//! `run()` with a `kube:` section: the runner probes the CoreDNS pods, the kube-dns
//! ClusterIP and the targets that a fake API server reports (`kube_support`), here
//! all pointing at the demo's DNS server on loopback. No cluster is contacted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kube_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use dnswarden::config::Overrides;
use dnswarden::demo::DemoServer;
use dnswarden::probe::Outcome;
use dnswarden::{Config, Event, Runner};
use dnswarden_core::wire::Rcode;
use k8s_openapi::api::core::v1::{ObjectReference, Pod, Service, ServicePort, ServiceSpec};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_support::{FakeCluster, mock_client};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn labels(kv: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    Some(
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn meta(ns: &str, name: &str, labels_: &[(&str, &str)], ann: &[(&str, &str)]) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(ns.into()),
        labels: labels(labels_),
        annotations: labels(ann),
        ..Default::default()
    }
}

/// kube-dns with its ClusterIP on loopback (the demo server's port).
fn kube_dns(port: u16) -> Service {
    Service {
        metadata: meta("kube-system", "kube-dns", &[("k8s-app", "kube-dns")], &[]),
        spec: Some(ServiceSpec {
            cluster_ip: Some("127.0.0.1".into()),
            ports: Some(vec![ServicePort {
                name: Some("dns".into()),
                port: i32::from(port),
                protocol: Some("UDP".into()),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        status: None,
    }
}

fn ep(ip: &str, ready: bool, pod: &str) -> Endpoint {
    Endpoint {
        addresses: vec![ip.into()],
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            ..Default::default()
        }),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            name: Some(pod.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn slice(ns: &str, name: &str, svc: &str, eps: Vec<Endpoint>, port: u16) -> EndpointSlice {
    EndpointSlice {
        metadata: meta(ns, name, &[("kubernetes.io/service-name", svc)], &[]),
        address_type: "IPv4".into(),
        endpoints: Some(eps),
        ports: Some(vec![EndpointPort {
            name: Some("dns".into()),
            port: Some(i32::from(port)),
            protocol: Some("UDP".into()),
            ..Default::default()
        }]),
    }
}

fn coredns_pod(name: &str) -> Pod {
    Pod {
        metadata: meta("kube-system", name, &[("k8s-app", "kube-dns")], &[]),
        ..Default::default()
    }
}

/// A headless Service whose ready endpoints are the demo zone's five
/// `my-headless.default.svc.cluster.local` addresses.
fn my_headless() -> (Service, EndpointSlice) {
    let svc = Service {
        metadata: meta(
            "default",
            "my-headless",
            &[],
            &[("dnswarden.io/probe", "true")],
        ),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            ..Default::default()
        }),
        status: None,
    };
    let eps = [
        "10.244.1.10",
        "10.244.1.11",
        "10.244.2.12",
        "10.244.2.13",
        "10.244.3.14",
    ]
    .iter()
    .enumerate()
    .map(|(i, ip)| ep(ip, true, &format!("web-{i}")))
    .collect();
    let mut s = slice("default", "my-headless-1", "my-headless", eps, 80);
    if let Some(p) = s.ports.as_mut().and_then(|p| p.first_mut()) {
        p.name = None; // no named port: no SRV target
        p.protocol = Some("TCP".into());
    }
    (svc, s)
}

async fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut body = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut body))
        .await
        .expect("response within 5 s")
        .unwrap();
    String::from_utf8_lossy(&body).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_probes_the_servers_and_targets_the_api_reports() {
    let dns = DemoServer::start().await.unwrap();
    let port = dns.addr().port();
    let cluster = FakeCluster::default();
    cluster.apply(&kube_dns(port));
    cluster.apply(&coredns_pod("coredns-a"));
    cluster.apply(&coredns_pod("coredns-b"));
    // coredns-a is ready; coredns-b is out of rotation (probed because healing is on).
    cluster.apply(&slice(
        "kube-system",
        "kube-dns-1",
        "kube-dns",
        vec![ep("127.0.0.1", true, "coredns-a")],
        port,
    ));
    cluster.apply(&slice(
        "kube-system",
        "kube-dns-2",
        "kube-dns",
        vec![ep("127.0.0.1", false, "coredns-b")],
        port,
    ));
    let (svc, eps) = my_headless();
    cluster.apply(&svc);
    cluster.apply(&eps);
    let (client, handle) = mock_client();
    let _api = cluster.serve(handle, "kube-system");

    let yaml = "listen: 127.0.0.1:0\n\
                probe: {interval_ms: 50, timeout_ms: 500}\n\
                kube: {cluster_domain: cluster.local, drift_grace_s: 0}\n\
                heal: {mode: dry-run, lease: false}\n";
    let config = Config::from_yaml_str(yaml, &Overrides::default()).unwrap();
    assert!(config.servers.is_empty() && config.targets.is_empty());
    let runner = Runner::new(config).await.unwrap().with_kube_client(client);
    let http = runner.http_addr();
    let mut events = runner.subscribe();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(runner.run(async move {
        let _ = stop_rx.await;
    }));

    // Answered probes of every (server, target) pair the API implies.
    let headless = "my-headless.default.svc.cluster.local/A";
    let api = "kubernetes.default.svc.cluster.local/A";
    let mut want: Vec<(&str, &str)> = vec![
        ("coredns-a", headless),
        ("coredns-a", api),
        ("coredns-b", headless),
        ("kube-system/kube-dns", headless),
        ("kube-system/kube-dns", api),
    ];
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        while !want.is_empty() {
            match events.recv().await {
                Ok(Event::Probe(p)) if p.result.outcome == Outcome::Answer(Rcode::NOERROR) => {
                    want.retain(|(s, t)| !(p.server == *s && p.target == *t));
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event stream ended: {e}"),
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "never probed (server, target): {want:?}");

    let text = http_get(http, "/metrics").await;
    for (server, target) in [("coredns-a", headless), ("kube-system/kube-dns", api)] {
        let series = format!(
            "dnswarden_probe_outcomes_total{{server=\"{server}\",target=\"{target}\",outcome=\"noerror\"}}"
        );
        assert!(text.contains(&series), "{series} missing from:\n{text}");
    }
    // The answers match the expectations from the EndpointSlice: no drift.
    assert!(
        !text.contains("dnswarden_answer_drift_total{"),
        "unexpected drift:\n{text}"
    );
    // The heal metrics are registered without a second prefix (their names are
    // asserted in `metrics::tests`; families without series are not encoded).
    assert!(!text.contains("dnswarden_dnswarden_"), "{text}");

    // A new CoreDNS pod appears: probed without a restart.
    cluster.apply(&coredns_pod("coredns-c"));
    cluster.apply(&slice(
        "kube-system",
        "kube-dns-3",
        "kube-dns",
        vec![ep("127.0.0.1", true, "coredns-c")],
        port,
    ));
    let seen_c = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match events.recv().await {
                Ok(Event::Probe(p))
                    if p.server == "coredns-c"
                        && p.result.outcome == Outcome::Answer(Rcode::NOERROR) =>
                {
                    return;
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event stream ended: {e}"),
            }
        }
    })
    .await;
    assert!(seen_c.is_ok(), "the new pod coredns-c was never probed");

    let _ = stop_tx.send(());
    let r = tokio::time::timeout(Duration::from_secs(10), run)
        .await
        .expect("run() returns after shutdown")
        .unwrap();
    assert!(r.is_ok(), "{r:?}");
}
