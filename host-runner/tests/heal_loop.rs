//! `run_healer` end to end against a mocked API: leader election, the view from the
//! pod store, a dry-run decision audited once, and the Lease handed over on shutdown.
//! Also the health-endpoint probe against a loopback HTTP server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kube_support;

use std::collections::BTreeMap;
use std::time::Duration;

use dnswarden::heal::actions::http_ok;
use dnswarden::heal::{
    HealConfig, HealMetrics, Healer, HealthSnapshot, LeaderElector, LeaseConfig, PodHealth,
    Verdict, run_healer,
};
use http::Method;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::runtime::{reflector, watcher};
use kube_support::{Expect, mock_client, scenario, status};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;

fn pod(name: &str, ready: bool) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("kube-system".into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: "coredns-rs".into(),
                uid: "u".into(),
                controller: Some(true),
                ..Default::default()
            }]),
            ..Default::default()
        },
        spec: None,
        status: Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
    }
}

/// Runs the healer (clock: 60 s into the runner's life, then real time) until the
/// returned sender fires.
fn spawn_healer(
    healer: Healer,
    store: reflector::Store<Pod>,
    health_rx: watch::Receiver<HealthSnapshot>,
    api_rx: watch::Receiver<bool>,
    elector: Option<LeaderElector>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let start = tokio::time::Instant::now();
    let clock = move || 60_000_000 + start.elapsed().as_micros() as u64;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(run_healer(
        healer,
        store,
        health_rx,
        api_rx,
        elector,
        clock,
        async {
            let _ = stop_rx.await;
        },
    ));
    (stop_tx, task)
}

const LEASE: &str = "/apis/coordination.k8s.io/v1/namespaces/dnswarden/leases/dnswarden-healer";

#[tokio::test(start_paused = true)]
async fn dry_run_leader_audits_once_and_hands_over_on_shutdown() {
    let (client, mut api) = mock_client();
    let (store, mut writer) = reflector::store::<Pod>();
    writer.apply_watcher_event(&watcher::Event::Init);
    writer.apply_watcher_event(&watcher::Event::InitApply(pod("coredns-a", false)));
    writer.apply_watcher_event(&watcher::Event::InitApply(pod("coredns-b", true)));
    writer.apply_watcher_event(&watcher::Event::InitApply(pod("coredns-c", true)));
    writer.apply_watcher_event(&watcher::Event::InitDone);

    let health = HealthSnapshot {
        pods: BTreeMap::from([(
            "coredns-a".to_string(),
            PodHealth {
                verdict: Verdict::Critical,
                since_us: 0,
                reasons: vec!["servfail"],
            },
        )]),
        service: None,
    };
    let (_health_tx, health_rx) = watch::channel(health);
    let (_api_tx, api_rx) = watch::channel(true);
    let healer = Healer::new(
        client.clone(),
        HealConfig::new("kube-system", "runner-a"),
        HealMetrics::default(),
    );
    let metrics = healer.metrics().clone();
    let elector = LeaderElector::new(client, LeaseConfig::new("dnswarden", "runner-a"));
    let (stop_tx, task) = spawn_healer(healer, store, health_rx, api_rx, Some(elector));

    let lease = |holder: Option<&str>, rv: &str| {
        json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
               "metadata": {"name": "dnswarden-healer", "namespace": "dnswarden", "resourceVersion": rv},
               "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15, "renewTime": "2026-11-22T03:00:00.000000Z", "leaseTransitions": 0}})
    };
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {"name": "coredns-rs", "namespace": "kube-system",
                                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "coredns", "uid": "d", "controller": true}]}});
    // Tick 1: acquire the Lease, resolve the owner once, refuse (dry-run) with an Event.
    // Tick 2 (5 s later): renew; the same refusal is not audited again.
    let seen = scenario(
        &mut api,
        vec![
            Expect::new(Method::GET, LEASE).respond(404, status(404, "NotFound", "not found")),
            Expect::new(
                Method::POST,
                "/apis/coordination.k8s.io/v1/namespaces/dnswarden/leases",
            )
            .respond(201, lease(Some("runner-a"), "1")),
            Expect::new(
                Method::GET,
                "/apis/apps/v1/namespaces/kube-system/replicasets/coredns-rs",
            )
            .respond(200, rs),
            Expect::new(
                Method::POST,
                "/apis/events.k8s.io/v1/namespaces/kube-system/events",
            )
            .check(|s| {
                assert_eq!(s.body["regarding"]["name"], "coredns-a");
                assert_eq!(s.body["reason"], "Refused");
                assert!(
                    s.body["note"].as_str().unwrap().contains("dry-run"),
                    "{:#}",
                    s.body
                );
            })
            .respond(201, json!({})),
            Expect::new(Method::GET, LEASE).respond(200, lease(Some("runner-a"), "1")),
            Expect::new(Method::PUT, LEASE).respond(200, lease(Some("runner-a"), "2")),
        ],
    )
    .await;
    assert!(
        seen.iter()
            .all(|s| s.method != Method::PATCH && !s.path.ends_with("/eviction")),
        "dry-run never acts"
    );
    assert_eq!(metrics.get("evict_pod", "dry_run"), 1);

    // Shutdown: the Lease is released for the next replica.
    let _ = stop_tx.send(());
    scenario(
        &mut api,
        vec![
            Expect::new(Method::GET, LEASE).respond(200, lease(Some("runner-a"), "2")),
            Expect::new(Method::PUT, LEASE)
                .check(|s| assert!(s.body["spec"]["holderIdentity"].is_null()))
                .respond(200, lease(None, "3")),
        ],
    )
    .await;
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}

/// A one-shot HTTP server on loopback answering every connection with `status`.
async fn http_server(status: &'static str) -> std::net::SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\n\r\nOK").as_bytes())
                .await;
        }
    });
    addr
}

#[tokio::test]
async fn health_endpoint_probe_on_loopback() {
    let ok = http_server("200 OK").await;
    let bad = http_server("503 Service Unavailable").await;
    assert!(http_ok(ok, "/ready", Duration::from_secs(5)).await);
    assert!(!http_ok(bad, "/health", Duration::from_secs(5)).await);
    // A closed port fails (bind then drop to get a free one).
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    assert!(!http_ok(closed, "/ready", Duration::from_secs(5)).await);
}

/// The runner is cut off: every CoreDNS pod (and the ClusterIP) fails DNS from here
/// and so do the runner's own probes of the pods' ready and health endpoints, but
/// Kubernetes says every pod is Ready with no new restarts. The loop reports a local
/// problem and never acts (enforce mode, no guardrail in the way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_off_runner_reports_a_local_problem_and_never_acts() {
    let (client, mut api) = mock_client();
    let (store, mut writer) = reflector::store::<Pod>();
    writer.apply_watcher_event(&watcher::Event::Init);
    for name in ["coredns-a", "coredns-b"] {
        let mut p = pod(name, true);
        if let Some(s) = p.status.as_mut() {
            s.pod_ip = Some("127.0.0.1".into());
            // Old restarts, from before the trouble: not evidence.
            s.container_statuses = Some(vec![ContainerStatus {
                name: "coredns".into(),
                restart_count: 7,
                ready: true,
                ..Default::default()
            }]);
        }
        writer.apply_watcher_event(&watcher::Event::InitApply(p));
    }
    writer.apply_watcher_event(&watcher::Event::InitDone);
    let critical = PodHealth {
        verdict: Verdict::Critical,
        since_us: 0,
        reasons: vec!["loss_rate"],
    };
    let health = HealthSnapshot {
        pods: BTreeMap::from([
            ("coredns-a".to_string(), critical.clone()),
            ("coredns-b".to_string(), critical.clone()),
        ]),
        service: Some(critical),
    };
    let (_health_tx, health_rx) = watch::channel(health);
    let (_api_tx, api_rx) = watch::channel(true);
    // The endpoints answer 503 from here (as a half-broken path would).
    let ready = http_server("503 Service Unavailable").await;
    let live = http_server("503 Service Unavailable").await;
    let mut cfg = HealConfig::new("kube-system", "runner-a");
    cfg.policy.mode = dnswarden::heal::Mode::Enforce;
    cfg.probe_endpoints = true;
    cfg.ready_port = ready.port();
    cfg.health_port = live.port();
    cfg.interval = Duration::from_millis(50);
    let healer = Healer::new(client, cfg, HealMetrics::default());
    let metrics = healer.metrics().clone();
    let (stop_tx, task) = spawn_healer(healer, store, health_rx, api_rx, None);
    let rs = json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "metadata": {"name": "coredns-rs", "namespace": "kube-system",
                                 "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "coredns", "uid": "d", "controller": true}]}});
    // The only request: the owner lookup (cached). No eviction, no patch, and no
    // Event (a local problem has no object to write it on).
    scenario(
        &mut api,
        vec![
            Expect::new(
                Method::GET,
                "/apis/apps/v1/namespaces/kube-system/replicasets/coredns-rs",
            )
            .respond(200, rs),
        ],
    )
    .await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while metrics.get("local_problem", "reported") == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a local-problem decision within 10 s");
    // Several more decisions (every 50 ms): still no request of any kind.
    let more = tokio::time::timeout(Duration::from_millis(400), api.next_request()).await;
    if let Ok(Some((req, _))) = more {
        panic!("the healer acted: {:?}", kube_support::seen_of(req).await);
    }
    assert_eq!(metrics.get("local_problem", "reported"), 1, "audited once");
    for result in ["success", "dry_run", "below_min_healthy"] {
        assert_eq!(metrics.get("rollout_restart", result), 0);
        assert_eq!(metrics.get("evict_pod", result), 0);
    }
    let _ = stop_tx.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
}
