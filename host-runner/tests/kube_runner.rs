//! `run()` with a `kube:` section: the runner probes the CoreDNS pods, the kube-dns
//! ClusterIP and the targets that a fake API server reports (`kube_support`), here
//! all pointing at the demo's DNS server on loopback. No cluster is contacted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kube_support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use dnswarden::config::Overrides;
use dnswarden::demo::{DemoServer, Fault};
use dnswarden::kube::api::ApiCall;
use dnswarden::probe::Outcome;
use dnswarden::{Config, Event, Runner};
use dnswarden_core::score::Verdict as CoreVerdict;
use dnswarden_core::wire::Rcode;
use http::Method;
use k8s_openapi::api::core::v1::{
    ObjectReference, Pod, PodCondition, PodStatus, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions, EndpointPort, EndpointSlice};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_support::{FakeCluster, Seen, mock_client};
use serde_json::{Value, json};
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

/// Adds a CoreDNS pod and its EndpointSlice (`slice_name`, the pod's loopback address
/// on `port`, `ready` in rotation or not).
fn add_coredns(cluster: &FakeCluster, slice_name: &str, pod: Pod, ready: bool, port: u16) {
    let name = pod.metadata.name.clone().unwrap();
    cluster.apply(&pod);
    cluster.apply(&slice(
        "kube-system",
        slice_name,
        "kube-dns",
        vec![ep("127.0.0.1", ready, &name)],
        port,
    ));
}

/// `run()` against the fake cluster, until [`stop`].
/// Two CoreDNS "pods" behind a fake API, each a loopback DNS server: coredns-a healthy
/// (also behind the kube-dns Service), coredns-b answering SERVFAIL and Ready as
/// `b_ready` says. The servers run as long as the returned handles live.
async fn healthy_and_servfailing_pods(b_ready: bool) -> (DemoServer, DemoServer, FakeCluster) {
    let ok = DemoServer::start().await.unwrap();
    let bad = DemoServer::start().await.unwrap();
    bad.set_fault(Fault::Servfail);
    let cluster = FakeCluster::default();
    let (ok_port, bad_port) = (ok.addr().port(), bad.addr().port());
    cluster.apply(&kube_dns(ok_port));
    add_coredns(
        &cluster,
        "kube-dns-1",
        coredns_pod_ready("coredns-a", true),
        true,
        ok_port,
    );
    add_coredns(
        &cluster,
        "kube-dns-2",
        coredns_pod_ready("coredns-b", b_ready),
        b_ready,
        bad_port,
    );
    (ok, bad, cluster)
}

struct Running {
    http: SocketAddr,
    events: tokio::sync::broadcast::Receiver<Event>,
    stop: tokio::sync::oneshot::Sender<()>,
    run: tokio::task::JoinHandle<dnswarden::Result<()>>,
}

async fn start(cluster: &FakeCluster, yaml: &str) -> Running {
    let (client, handle) = mock_client();
    // The server task ends when the runner drops the client.
    drop(cluster.serve(handle, "kube-system"));
    let config = Config::from_yaml_str(yaml, &Overrides::default()).unwrap();
    assert!(config.servers.is_empty() && config.targets.is_empty());
    let runner = Runner::new(config).await.unwrap().with_kube_client(client);
    let http = runner.http_addr();
    let events = runner.subscribe();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let run = tokio::spawn(runner.run(async move {
        let _ = stop_rx.await;
    }));
    Running {
        http,
        events,
        stop,
        run,
    }
}

async fn stop(r: Running) {
    let _ = r.stop.send(());
    let res = tokio::time::timeout(Duration::from_secs(10), r.run)
        .await
        .expect("run() returns after shutdown")
        .unwrap();
    assert!(res.is_ok(), "{res:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_probes_the_servers_and_targets_the_api_reports() {
    let dns = DemoServer::start().await.unwrap();
    let port = dns.addr().port();
    let cluster = FakeCluster::default();
    cluster.apply(&kube_dns(port));
    // coredns-a is ready; coredns-b is out of rotation (probed because healing is on).
    add_coredns(&cluster, "kube-dns-1", coredns_pod("coredns-a"), true, port);
    add_coredns(
        &cluster,
        "kube-dns-2",
        coredns_pod("coredns-b"),
        false,
        port,
    );
    let (svc, eps) = my_headless();
    cluster.apply(&svc);
    cluster.apply(&eps);
    let mut r = start(&cluster, DRY_RUN).await;

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
    let waited = wait_events(&mut r.events, 20, |e| {
        if let Event::Probe(p) = e
            && p.result.outcome == Outcome::Answer(Rcode::NOERROR)
        {
            want.retain(|(s, t)| !(p.server == *s && p.target == *t));
        }
        want.is_empty()
    })
    .await;
    assert!(waited, "never probed (server, target): {want:?}");

    let text = http_get(r.http, "/metrics").await;
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
    add_coredns(&cluster, "kube-dns-3", coredns_pod("coredns-c"), true, port);
    let seen_c = wait_events(&mut r.events, 20, |e| {
        matches!(e, Event::Probe(p) if p.server == "coredns-c"
            && p.result.outcome == Outcome::Answer(Rcode::NOERROR))
    })
    .await;
    assert!(seen_c, "the new pod coredns-c was never probed");
    stop(r).await;
}

const DRY_RUN: &str = "listen: 127.0.0.1:0\n\
                       probe: {interval_ms: 50, timeout_ms: 500}\n\
                       kube: {cluster_domain: cluster.local, drift_grace_s: 0}\n\
                       heal: {mode: dry-run, lease: false}\n";

/// A CoreDNS pod with its `Ready` condition.
fn coredns_pod_ready(name: &str, ready: bool) -> Pod {
    Pod {
        status: Some(PodStatus {
            conditions: Some(vec![PodCondition {
                type_: "Ready".into(),
                status: if ready { "True" } else { "False" }.into(),
                ..Default::default()
            }]),
            pod_ip: Some("127.0.0.1".into()),
            ..Default::default()
        }),
        ..coredns_pod(name)
    }
}

/// Waits for `cond` on the events (and for nothing else), for at most `secs`.
async fn wait_events(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    secs: u64,
    mut cond: impl FnMut(&Event) -> bool,
) -> bool {
    tokio::time::timeout(Duration::from_secs(secs), async {
        loop {
            match events.recv().await {
                Ok(e) if cond(&e) => return,
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("event stream ended: {e}"),
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pods_joining_and_leaving_keep_the_other_pods_verdicts_and_history() {
    let (ok, _bad, cluster) = healthy_and_servfailing_pods(true).await;
    let ok_port = ok.addr().port();
    let mut r = start(&cluster, DRY_RUN).await;

    // coredns-b answers SERVFAIL: critical.
    let critical = wait_events(&mut r.events, 20, |e| {
        matches!(e, Event::Verdict(v) if v.name == "coredns-b" && v.to == CoreVerdict::Critical)
    })
    .await;
    assert!(critical, "coredns-b never became critical");

    // coredns-c joins. Until it has answered 5 probes and coredns-b has been probed
    // 10 more times on the new plan, coredns-b's verdict never moves up from ok: its
    // scorer was kept (a reset restarts it at ok, and the SERVFAILs raise it again:
    // "ok -> degraded"). Moves between degraded and critical are the scorer's own.
    add_coredns(
        &cluster,
        "kube-dns-3",
        coredns_pod_ready("coredns-c", true),
        true,
        ok_port,
    );
    let (mut c_answers, mut b_after) = (0, 0);
    let mut changes = Vec::new();
    let settled = wait_events(&mut r.events, 20, |e| {
        match e {
            Event::Probe(p) if p.server == "coredns-c" => c_answers += 1,
            Event::Probe(p) if p.server == "coredns-b" && c_answers > 0 => b_after += 1,
            Event::Verdict(v) if v.name == "coredns-b" && v.from == CoreVerdict::Ok => {
                changes.push(format!("{}: {} -> {}", v.name, v.from, v.to));
            }
            _ => {}
        }
        c_answers >= 5 && b_after >= 10
    })
    .await;
    assert!(
        settled,
        "coredns-c probed {c_answers} times, coredns-b {b_after}"
    );
    assert!(changes.is_empty(), "verdicts restarted: {changes:?}");
    let text = http_get(r.http, "/metrics").await;
    for name in ["coredns-a", "coredns-b", "coredns-c"] {
        let series = format!("dnswarden_verdict{{scope=\"server\",name=\"{name}\"}}");
        assert!(text.contains(&series), "{series} missing from:\n{text}");
    }
    assert!(
        !text.contains("dnswarden_verdict{scope=\"server\",name=\"coredns-b\"} 0"),
        "{text}"
    );

    // coredns-c leaves again: its verdict series goes, a and b keep theirs.
    let c_slice = slice(
        "kube-system",
        "kube-dns-3",
        "kube-dns",
        vec![ep("127.0.0.1", true, "coredns-c")],
        ok_port,
    );
    cluster.delete(&c_slice);
    cluster.delete(&coredns_pod_ready("coredns-c", true));
    let c_series = "dnswarden_verdict{scope=\"server\",name=\"coredns-c\"}";
    let gone = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let text = http_get(r.http, "/metrics").await;
            if !text.contains(c_series) {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("coredns-c's verdict series removed within 20 s");
    assert!(
        gone.contains("dnswarden_verdict{scope=\"server\",name=\"coredns-a\"}"),
        "{gone}"
    );
    assert!(
        !gone.contains("dnswarden_verdict{scope=\"server\",name=\"coredns-b\"} 0"),
        "{gone}"
    );
    let mut changes = Vec::new();
    while let Ok(e) = r.events.try_recv() {
        if let Event::Verdict(v) = e
            && v.name == "coredns-b"
            && v.from == CoreVerdict::Ok
        {
            changes.push(format!("{}: {} -> {}", v.name, v.from, v.to));
        }
    }
    assert!(changes.is_empty(), "verdicts restarted: {changes:?}");
    stop(r).await;
}

/// Captures the runner's JSON log lines (one global subscriber per test binary).
fn captured_logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::INFO)
            .with_writer(move || LogSink(sink.clone()))
            .finish();
        let _ = tracing::subscriber::set_global_default(subscriber);
        buf
    })
}

struct LogSink(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogSink {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The audit records logged so far (`dnswarden::audit` lines, their `audit` JSON).
fn audit_records() -> Vec<Value> {
    let bytes = captured_logs().lock().unwrap().clone();
    String::from_utf8_lossy(&bytes)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "dnswarden::audit")
        .filter_map(|l| serde_json::from_str(l["fields"]["audit"].as_str()?).ok())
        .collect()
}

/// Waits until `cond` holds on the API requests seen so far.
async fn wait_requests(
    cluster: &FakeCluster,
    secs: u64,
    cond: impl Fn(&[(Seen, ApiCall)]) -> bool,
) -> bool {
    tokio::time::timeout(Duration::from_secs(secs), async {
        while !cond(&cluster.requests()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .is_ok()
}

/// The whole path through `run()`: two CoreDNS "pods" that are loopback DNS servers,
/// one healthy and one answering SERVFAIL (and not Ready), healing in enforce mode.
/// The runner probes both, its healer evicts exactly the sick pod, audits it (log
/// record, Event, metric) and verifies the recovery once the pod is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_evicts_exactly_the_sick_pod_in_enforce_mode() {
    captured_logs();
    let (_ok, _bad, cluster) = healthy_and_servfailing_pods(false).await;
    let yaml = "listen: 127.0.0.1:0\n\
                probe: {interval_ms: 50, timeout_ms: 500}\n\
                kube: {cluster_domain: cluster.local, drift_grace_s: 0}\n\
                heal: {mode: enforce, lease: false, interval_s: 1, sick_for_s: 1, cooldown_s: 1, verify_timeout_s: 30}\n";
    let r = start(&cluster, yaml).await;

    let is_eviction = |s: &Seen| s.method == Method::POST && s.path.ends_with("/eviction");
    let evicted = wait_requests(&cluster, 30, |r| r.iter().any(|(s, _)| is_eviction(s))).await;
    assert!(evicted, "no eviction; requests: {:#?}", cluster.requests());
    // The eviction removed coredns-b; the healer sees it gone, with coredns-a ready
    // and fine: recovered (an Event on the pod says so).
    let recovered = wait_requests(&cluster, 30, |r| {
        r.iter()
            .any(|(s, _)| s.path.ends_with("/events") && s.body["reason"] == "Recovered")
    })
    .await;
    assert!(
        recovered,
        "no recovery; requests: {:#?}",
        cluster.requests()
    );

    let requests = cluster.requests();
    let evictions: Vec<&Seen> = requests
        .iter()
        .map(|(s, _)| s)
        .filter(|s| is_eviction(s))
        .collect();
    assert_eq!(evictions.len(), 1, "{evictions:#?}");
    assert_eq!(
        evictions[0].path,
        "/api/v1/namespaces/kube-system/pods/coredns-b/eviction"
    );
    assert_eq!(
        evictions[0].body,
        json!({"delete_options": null, "metadata": {"name": "coredns-b"}})
    );
    assert!(
        requests.iter().all(|(s, _)| s.method != Method::PATCH),
        "no rollout restart"
    );
    let events: Vec<&Value> = requests
        .iter()
        .filter(|(s, c)| *c == ApiCall::CreateEvent && s.method == Method::POST)
        .map(|(s, _)| &s.body)
        .collect();
    let taken = events
        .iter()
        .find(|b| b["reason"] == "Taken")
        .expect("an Event for the eviction");
    assert_eq!(taken["regarding"]["kind"], "Pod");
    assert_eq!(taken["regarding"]["name"], "coredns-b");
    assert_eq!(taken["action"], "EvictPod");
    assert!(taken["note"].as_str().unwrap().contains("enforce mode"));

    // The audit log: the eviction with its evidence, then the verified recovery.
    let records = audit_records();
    let evict = records
        .iter()
        .find(|r| r["action"] == "evict_pod" && r["result"] == "success")
        .unwrap_or_else(|| panic!("no audit record of the eviction: {records:#?}"));
    assert_eq!(
        evict["decision"]["action"],
        json!({"action": "evict_pod", "pod": "coredns-b"})
    );
    assert_eq!(evict["mode"], "enforce");
    let pods = evict["decision"]["evidence"]["pods"].as_array().unwrap();
    let b = pods.iter().find(|p| p["pod"] == "coredns-b").unwrap();
    assert_eq!(
        (b["dns_sick"].clone(), b["ready"].clone()),
        (json!(true), json!(false))
    );
    assert!(
        b["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("servfail")),
        "{b:#}"
    );
    let a = pods.iter().find(|p| p["pod"] == "coredns-a").unwrap();
    assert_eq!(a["healthy"], true, "{a:#}");
    assert!(
        records
            .iter()
            .any(|r| r["action"] == "evict_pod" && r["result"] == "recovered"),
        "{records:#?}"
    );

    let text = http_get(r.http, "/metrics").await;
    for series in [
        "dnswarden_selfheal_actions_total{action=\"evict_pod\",result=\"success\"} 1",
        "dnswarden_selfheal_actions_total{action=\"evict_pod\",result=\"recovered\"} 1",
        "dnswarden_selfheal_action_duration_seconds_count{action=\"evict_pod\"} 1",
    ] {
        assert!(text.contains(series), "{series} missing from:\n{text}");
    }
    assert!(!text.contains("action=\"rollout_restart\""), "{text}");
    stop(r).await;
}
