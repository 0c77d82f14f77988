//! `dnswarden demo`: an embedded DNS server (hickory-server) on a free loopback port
//! serving a small `cluster.local` zone, with a fault switch; the real runner probes it
//! while a script injects faults one after another and reports, live, which verdict
//! changed, why, and how many milliseconds after the fault started.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_proto::rr::Name;
use hickory_proto::serialize::txt::Parser;
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::store::in_memory::InMemoryZoneHandler;
use hickory_server::zone_handler::{AxfrPolicy, Catalog, MessageResponseBuilder, ZoneType};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::Instant;

use crate::config::{Config, TargetConfig, parse_qtype};
use crate::runner::{Event, Runner, Scope};
use crate::scoring::Verdict;
use crate::{Error, Result};

/// The demo zone: a few Kubernetes-style names (addresses are data, never contacted).
pub const CLUSTER_ZONE: &str = "\
$ORIGIN cluster.local.
$TTL 5
@   30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5
@   30 IN NS  ns.dns.cluster.local.
ns.dns                     IN A     10.96.0.10
kubernetes.default.svc     IN A     10.96.0.1
kube-dns.kube-system.svc   IN A     10.96.0.10
my-svc.default.svc         IN A     10.96.12.34
my-svc.default.svc         IN AAAA  fd00:10:96::1234
_http._tcp.my-svc.default.svc IN SRV 0 100 80 my-svc.default.svc.cluster.local.
my-headless.default.svc    IN A     10.244.1.10
my-headless.default.svc    IN A     10.244.1.11
my-headless.default.svc    IN A     10.244.2.12
my-headless.default.svc    IN A     10.244.2.13
my-headless.default.svc    IN A     10.244.3.14
";

/// The same zone with only its apex: every name is a real NXDOMAIN (with SOA).
const EMPTY_ZONE: &str = "\
$ORIGIN cluster.local.
$TTL 5
@   30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5
@   30 IN NS  ns.dns.cluster.local.
ns.dns                     IN A     10.96.0.10
";

/// What the embedded server does to every query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer normally.
    None,
    /// Answer normally after a delay.
    Latency(Duration),
    /// Answer SERVFAIL.
    Servfail,
    /// Answer from an empty zone: NXDOMAIN with SOA, as a broken zone would.
    Nxdomain,
    /// Do not answer.
    Blackhole,
    /// Over UDP answer with TC=1 and no records (TCP answers normally).
    Truncate,
}

impl Fault {
    /// A short description.
    pub fn describe(self) -> String {
        match self {
            Fault::None => "none".into(),
            Fault::Latency(d) => format!("latency spike +{} ms", d.as_millis()),
            Fault::Servfail => "SERVFAIL burst".into(),
            Fault::Nxdomain => "NXDOMAIN flood (empty zone)".into(),
            Fault::Blackhole => "blackhole (no answers)".into(),
            Fault::Truncate => "truncation (TC=1 over UDP)".into(),
        }
    }
}

fn catalog(zone: &str) -> Result<Catalog> {
    let origin = Name::from_str("cluster.local.").map_err(|e| Error::Demo(e.to_string()))?;
    let (origin, records) = Parser::new(zone, None, Some(origin))
        .parse()
        .map_err(|e| Error::Demo(format!("zone: {e}")))?;
    let handler = InMemoryZoneHandler::<hickory_server::net::runtime::TokioRuntimeProvider>::new(
        origin.clone(),
        records,
        ZoneType::Primary,
        AxfrPolicy::Deny,
    )
    .map_err(Error::Demo)?;
    let mut catalog = Catalog::new();
    catalog.upsert(origin.into(), vec![Arc::new(handler)]);
    Ok(catalog)
}

/// The request handler: a catalog, an empty-zone catalog, and the fault switch.
struct FaultyHandler {
    zone: Catalog,
    empty: Catalog,
    fault: Arc<Mutex<Fault>>,
}

#[async_trait::async_trait]
impl RequestHandler for FaultyHandler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let fault = self.fault.lock().map(|f| *f).unwrap_or(Fault::None);
        let udp = request.protocol() == hickory_server::net::xfer::Protocol::Udp;
        match fault {
            Fault::None => {}
            Fault::Latency(d) => tokio::time::sleep(d).await,
            Fault::Nxdomain => {
                return self
                    .empty
                    .handle_request::<R, T>(request, response_handle)
                    .await;
            }
            Fault::Blackhole => {
                return ResponseInfo::from(Header {
                    metadata: Metadata::response_from_request(&request.metadata),
                    counts: HeaderCounts::default(),
                });
            }
            Fault::Servfail | Fault::Truncate if fault == Fault::Servfail || udp => {
                let mut metadata = Metadata::response_from_request(&request.metadata);
                if fault == Fault::Servfail {
                    metadata.response_code = ResponseCode::ServFail;
                } else {
                    metadata.truncation = true;
                }
                let response = MessageResponseBuilder::from_message_request(request)
                    .build_no_records(metadata);
                return match response_handle.send_response(response).await {
                    Ok(info) => info,
                    Err(_) => ResponseInfo::from(Header {
                        metadata: Metadata::response_from_request(&request.metadata),
                        counts: HeaderCounts::default(),
                    }),
                };
            }
            Fault::Servfail | Fault::Truncate => {}
        }
        self.zone
            .handle_request::<R, T>(request, response_handle)
            .await
    }
}

/// The embedded DNS server: UDP and TCP on the same free loopback port.
#[derive(Debug)]
pub struct DemoServer {
    addr: SocketAddr,
    fault: Arc<Mutex<Fault>>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FaultyHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyHandler").finish_non_exhaustive()
    }
}

impl DemoServer {
    /// Starts the server on 127.0.0.1 with a free port (same port for UDP and TCP).
    pub async fn start() -> Result<DemoServer> {
        let handler = FaultyHandler {
            zone: catalog(CLUSTER_ZONE)?,
            empty: catalog(EMPTY_ZONE)?,
            fault: Arc::new(Mutex::new(Fault::None)),
        };
        let fault = handler.fault.clone();
        let io = |source| Error::Io {
            context: "demo server: binding a loopback port",
            source,
        };
        // Find a port free for both protocols: TCP picks, UDP must get the same one.
        let mut bound = None;
        for _ in 0..50 {
            let tcp = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .await
                .map_err(io)?;
            let addr = tcp.local_addr().map_err(io)?;
            if let Ok(udp) = UdpSocket::bind(addr).await {
                bound = Some((tcp, udp, addr));
                break;
            }
        }
        let Some((tcp, udp, addr)) = bound else {
            return Err(Error::Demo(
                "no loopback port free for both UDP and TCP".into(),
            ));
        };
        let mut server = Server::new(handler);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(10), 64 * 1024);
        let task = tokio::spawn(async move {
            let _ = server.block_until_done().await;
        });
        Ok(DemoServer { addr, fault, task })
    }

    /// The server's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Switches the fault.
    pub fn set_fault(&self, fault: Fault) {
        if let Ok(mut f) = self.fault.lock() {
            *f = fault;
        }
    }
}

impl Drop for DemoServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The demo's targets on the embedded zone.
pub fn demo_targets(interval: Duration) -> Vec<TargetConfig> {
    let t = |name: &str, qname: &str, qtype: &str, expect: &[&str]| TargetConfig {
        name: name.into(),
        qname: qname.into(),
        qtype: parse_qtype(qtype).unwrap_or(dnswarden_core::wire::Rtype::A),
        expect: expect.iter().map(|s| (*s).to_string()).collect(),
        namespace: "default".into(),
        interval,
        own_interval: true,
        tcp: false,
    };
    vec![
        t(
            "kubernetes",
            "kubernetes.default.svc.cluster.local",
            "A",
            &["10.96.0.1"],
        ),
        t(
            "my-svc",
            "my-svc.default.svc.cluster.local",
            "A",
            &["10.96.12.34"],
        ),
        t(
            "my-headless",
            "my-headless.default.svc.cluster.local",
            "A",
            &[
                "10.244.1.10",
                "10.244.1.11",
                "10.244.2.12",
                "10.244.2.13",
                "10.244.3.14",
            ],
        ),
    ]
}

/// One row of the summary.
#[derive(Debug, Clone)]
pub struct PhaseResult {
    /// The fault.
    pub fault: Fault,
    /// The first verdict change after the fault started: (scope/name, verdict, reasons).
    pub detected: Option<(String, Verdict, String)>,
    /// Milliseconds from the switch to that change.
    pub detect_ms: Option<f64>,
    /// Milliseconds from clearing the fault to every verdict back at ok.
    pub recover_ms: Option<f64>,
}

/// Runs the demo and prints to stdout. `quick` shortens every phase.
pub async fn run_demo(quick: bool) -> Result<()> {
    let server = DemoServer::start().await?;
    let mut config = Config::single(server.addr(), demo_targets(Duration::from_millis(50)));
    config.servers[0].name = "demo-dns".into();
    // hickory-server (like knot) always returns a record set in the same order; CoreDNS
    // rotates it with the `loadbalance` plugin. The round-robin detector would rightly
    // call that "stuck", which is not what this demo is about.
    config.scoring.weights.round_robin = 0.0;
    let runner = Runner::new(config.clone()).await?;
    let mut events = runner.subscribe();
    let metrics_addr = runner.http_addr();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(runner.run(async move {
        let _ = stop_rx.await;
    }));

    println!("dnswarden demo");
    println!(
        "  embedded DNS server (hickory-server) on {} serving cluster.local (UDP+TCP)",
        server.addr()
    );
    println!(
        "  probing {} names every 50 ms (timeout 100 ms); metrics on http://{metrics_addr}/metrics",
        config.targets.len()
    );
    let warmup = if quick {
        Duration::from_secs(2)
    } else {
        Duration::from_secs(4)
    };
    println!(
        "  warming up for {} s (clean traffic, the RTT baseline forms)...",
        warmup.as_secs()
    );
    let start = Instant::now();
    let mut probes = 0u64;
    drain_for(&mut events, warmup, &mut probes, |_| {}).await;
    println!("  {probes} clean probes, no alarm raised\n");

    let faults = [
        Fault::Latency(Duration::from_millis(60)),
        Fault::Servfail,
        Fault::Nxdomain,
        Fault::Blackhole,
        Fault::Truncate,
    ];
    // Truncation with a working TCP fallback is judged as a rate over the core's 5 s
    // window (about 3 s to detect), so every phase gets room for that; the other faults
    // end their phase as soon as they are seen.
    let detect_limit = if quick {
        Duration::from_secs(6)
    } else {
        Duration::from_secs(8)
    };
    let hold = if quick {
        Duration::from_millis(300)
    } else {
        Duration::from_millis(1500)
    };
    let recover_limit = if quick {
        Duration::from_secs(6)
    } else {
        Duration::from_secs(8)
    };
    let mut results = Vec::new();
    for fault in faults {
        println!("▶ fault on: {}", fault.describe());
        // Drop events from before the switch.
        while events.try_recv().is_ok() {}
        let t0 = Instant::now();
        server.set_fault(fault);
        let mut first: Option<(String, Verdict, String, f64)> = None;
        let deadline = t0 + detect_limit;
        let mut hold_until = None;
        loop {
            let until = hold_until.unwrap_or(deadline).min(deadline);
            let ev = match tokio::time::timeout_at(until, events.recv()).await {
                Err(_) => break,
                Ok(Err(RecvError::Lagged(_))) => continue,
                Ok(Err(RecvError::Closed)) => break,
                Ok(Ok(ev)) => ev,
            };
            if let Event::Verdict(v) = ev {
                let ms = v.at.duration_since(t0).as_secs_f64() * 1000.0;
                println!(
                    "    +{ms:7.1} ms  {:<6} {:<12} {} -> {:<8} score {:.2}  reasons: {}",
                    v.scope.as_str(),
                    v.name,
                    v.from,
                    v.to,
                    v.score,
                    v.causes.join(",")
                );
                if first.is_none() && v.to != Verdict::Ok {
                    first = Some((
                        format!("{}/{}", v.scope.as_str(), v.name),
                        v.to,
                        v.causes.join(","),
                        ms,
                    ));
                    hold_until = Some(Instant::now() + hold);
                }
            }
        }
        if first.is_none() {
            println!("    no verdict change within {} s", detect_limit.as_secs());
        }
        server.set_fault(Fault::None);
        let t1 = Instant::now();
        println!("  ✔ fault cleared");
        let recovered =
            wait_all_ok(&mut events, &runner_verdicts(&config), t1, recover_limit).await;
        match recovered {
            Some(ms) => println!("    every verdict back to ok after {ms:.0} ms\n"),
            None => println!(
                "    not every verdict back to ok within {} s\n",
                recover_limit.as_secs()
            ),
        }
        results.push(PhaseResult {
            fault,
            detect_ms: first.as_ref().map(|f| f.3),
            detected: first.map(|(who, v, why, _)| (who, v, why)),
            recover_ms: recovered,
        });
    }
    let _ = stop_tx.send(());
    let run_result = task.await;
    println!("{}", summary_table(&results));
    println!("demo finished in {:.1} s", start.elapsed().as_secs_f64());
    match run_result {
        Ok(r) => r,
        Err(e) => Err(Error::Demo(format!("runner task: {e}"))),
    }
}

fn runner_verdicts(config: &Config) -> BTreeMap<(Scope, String), Verdict> {
    let mut m = BTreeMap::new();
    for s in &config.servers {
        m.insert((Scope::Server, s.name.clone()), Verdict::Ok);
    }
    for t in &config.targets {
        m.insert((Scope::Target, t.name.clone()), Verdict::Ok);
    }
    m
}

/// Follows verdict changes (starting from "the fault made something non-ok") until every
/// scorer is back at ok, or the limit passes.
async fn wait_all_ok(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    _names: &BTreeMap<(Scope, String), Verdict>,
    t1: Instant,
    limit: Duration,
) -> Option<f64> {
    // The verdicts are tracked from the probe events, which carry both assessments.
    let mut verdicts: BTreeMap<(Scope, String), Verdict> = BTreeMap::new();
    let deadline = t1 + limit;
    loop {
        let ev = match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) => return None,
            Ok(Err(RecvError::Lagged(_))) => continue,
            Ok(Err(RecvError::Closed)) => return None,
            Ok(Ok(ev)) => ev,
        };
        match ev {
            Event::Probe(p) => {
                verdicts.insert(
                    (Scope::Server, p.server.clone()),
                    p.server_assessment.verdict,
                );
                verdicts.insert(
                    (Scope::Target, p.target.clone()),
                    p.target_assessment.verdict,
                );
            }
            Event::Verdict(v) => {
                println!(
                    "    +{:7.1} ms  {:<6} {:<12} {} -> {:<8} (recovery)",
                    v.at.duration_since(t1).as_secs_f64() * 1000.0,
                    v.scope.as_str(),
                    v.name,
                    v.from,
                    v.to
                );
                verdicts.insert((v.scope, v.name.clone()), v.to);
            }
        }
        if verdicts.len() >= _names.len() && verdicts.values().all(|v| *v == Verdict::Ok) {
            return Some(t1.elapsed().as_secs_f64() * 1000.0);
        }
    }
}

async fn drain_for(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    d: Duration,
    probes: &mut u64,
    mut on_verdict: impl FnMut(&crate::runner::VerdictChange),
) {
    let deadline = Instant::now() + d;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Err(_) | Ok(Err(RecvError::Closed)) => return,
            Ok(Err(RecvError::Lagged(_))) => {}
            Ok(Ok(Event::Probe(_))) => *probes += 1,
            Ok(Ok(Event::Verdict(v))) => {
                println!(
                    "    unexpected verdict change: {} {} {} -> {} ({})",
                    v.scope.as_str(),
                    v.name,
                    v.from,
                    v.to,
                    v.causes.join(",")
                );
                on_verdict(&v);
            }
        }
    }
}

/// The summary table printed at the end.
pub fn summary_table(results: &[PhaseResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<30} {:<22} {:<9} {:>10} {:>12}  reasons",
        "fault", "first change", "verdict", "detect ms", "recover ms"
    );
    let _ = writeln!(out, "{}", "-".repeat(100));
    for r in results {
        let (who, verdict, why) = match &r.detected {
            Some((w, v, why)) => (w.as_str(), v.name(), why.as_str()),
            None => ("-", "-", "not detected"),
        };
        let ms = |x: Option<f64>| x.map_or_else(|| "-".to_string(), |v| format!("{v:.1}"));
        let _ = writeln!(
            out,
            "{:<30} {:<22} {:<9} {:>10} {:>12}  {}",
            r.fault.describe(),
            who,
            verdict,
            ms(r.detect_ms),
            ms(r.recover_ms),
            why
        );
    }
    out
}
