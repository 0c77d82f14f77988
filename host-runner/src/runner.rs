//! The long-running service: one probe loop per (server, target) pair, the rate limits,
//! one scorer per server and per target, metrics, events, HTTP, and shutdown.
//!
//! Shutdown (mini-redis style): when the `shutdown` future completes, the loops stop
//! scheduling, probes in flight finish and are scored, the final verdicts are logged,
//! then the HTTP server stops and [`Runner::run`] returns `Ok(())`.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::RngExt as _;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, broadcast, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::config::{Config, ServerConfig, TargetConfig};
use crate::confirm::{Class, Confirm, classify};
use crate::heal::{self, HealMetrics, Healer, HealthSnapshot, LeaderElector, PodHealth};
use crate::http::{self, HttpState};
use crate::kube::plan::{CoreExpectation, TargetSource};
use crate::kube::{Discovery, Expected, ProbePlan, RecordType, ServerKind};
use crate::metrics::{
    ChangeLabels, ClockLabels, FallbackLabels, Metrics, OutcomeLabels, PairLabels, ProbeLabels,
    ReasonLabels, ScopeLabels, ServerLabels, SkipLabels,
};
use crate::probe::{Outcome, ProbeResult, ProbeSpec, Prober, Transport};
use crate::ratelimit::{TokenBucket, backoff};
use crate::scoring::{Assessment, Scorer, Verdict, expected_members, verdict_level};
use crate::{Error, Result};

/// Which scorer a verdict belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// A server's scorer (fed by every target probed on it).
    Server,
    /// A target's scorer (fed by every server it is probed on).
    Target,
}

impl Scope {
    /// A bounded label.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Server => "server",
            Scope::Target => "target",
        }
    }
}

/// A verdict changed.
#[derive(Debug, Clone)]
pub struct VerdictChange {
    /// Server or target scorer.
    pub scope: Scope,
    /// The server or target name.
    pub name: String,
    /// The previous verdict.
    pub from: Verdict,
    /// The new verdict.
    pub to: Verdict,
    /// The fused score.
    pub score: f32,
    /// The causes that contributed (bounded labels, e.g. `servfail_concentrated`).
    pub causes: Vec<&'static str>,
    /// The core's explanations, with server and target names.
    pub reasons: Vec<String>,
    /// The server of the probe that caused the change (`None` when the change came
    /// from the periodic evaluation, e.g. a step down after calm).
    pub server: Option<String>,
    /// The target of the probe that caused the change.
    pub target: Option<String>,
    /// When (monotonic).
    pub at: Instant,
}

/// One probe, as it was scored.
#[derive(Debug, Clone)]
pub struct ProbeEvent {
    /// Server name.
    pub server: String,
    /// Target name.
    pub target: String,
    /// The probe result.
    pub result: ProbeResult,
    /// The server scorer's assessment after it.
    pub server_assessment: Assessment,
    /// The target scorer's assessment after it.
    pub target_assessment: Assessment,
    /// When it finished.
    pub at: Instant,
    /// It was a retry.
    pub retry: bool,
    /// It was a confirmation probe of the suspicion cadence (`probe.confirm`).
    pub confirm: bool,
}

/// What a running [`Runner`] reports to subscribers.
#[derive(Debug, Clone)]
pub enum Event {
    /// A probe was scored.
    Probe(Box<ProbeEvent>),
    /// A verdict changed.
    Verdict(VerdictChange),
}

/// Logs once whether UDP RTTs come from the kernel's receive timestamps. Checked for up
/// to 1 s: the kernel turns stamping on a moment after the prober asks for it.
async fn log_rtt_clock(prober: &Prober) {
    let mut tick = tokio::time::interval(Duration::from_millis(10));
    for _ in 0..100 {
        tick.tick().await;
        if prober.kernel_stamps_live() {
            tracing::info!("UDP RTTs come from kernel receive timestamps (SO_TIMESTAMPNS)");
            return;
        }
    }
    tracing::warn!(
        "no kernel receive timestamps (SO_TIMESTAMPNS): UDP RTTs include this runner's own \
         scheduling delays (dnswarden_probe_rtt_clock_total counts them as clock=\"runner\")"
    );
}

/// What every generation of probe loops shares; lives as long as the [`Runner`].
#[derive(Debug, Clone)]
struct Base {
    metrics: Arc<Metrics>,
    http: Arc<HttpState>,
    events: broadcast::Sender<Event>,
    /// The runner's microsecond clock starts here (scorer `at_us`, healer clock).
    start: Instant,
    /// Pod and ClusterIP verdicts for the healer (only with `kube:` and healing on).
    health: Option<Arc<watch::Sender<HealthSnapshot>>>,
}

/// A discovered target's expectation, in the core's terms.
#[derive(Debug, Clone, PartialEq)]
struct KubeExpect {
    core: CoreExpectation,
    /// When the expectation last changed (runner clock, µs).
    since_us: u64,
    /// Mismatches before `since_us + grace` are not drift.
    grace: Duration,
}

/// The servers and targets of one generation of probe loops: the static
/// configuration, plus what discovery found (with `kube:`).
#[derive(Debug, Clone)]
struct Generation {
    config: Config,
    /// Per server: what discovery says it is (`None` for a static server).
    kinds: Vec<Option<ServerKind>>,
    /// Per target: the discovered expectation (`None` for a static target).
    expects: Vec<Option<KubeExpect>>,
}

impl Generation {
    fn fixed(config: Config) -> Generation {
        Generation {
            kinds: vec![None; config.servers.len()],
            expects: vec![None; config.targets.len()],
            config,
        }
    }

    /// The static configuration plus the plan's servers (and its unready pods when
    /// `probe_unready`) and targets. Names already taken are skipped.
    fn with_plan(config: &Config, plan: &ProbePlan, probe_unready: bool) -> Generation {
        let mut g = Generation::fixed(config.clone());
        let mut names: std::collections::HashSet<String> =
            g.config.servers.iter().map(|s| s.name.clone()).collect();
        let unready = if probe_unready {
            plan.unready.as_slice()
        } else {
            &[]
        };
        for s in plan.servers.iter().chain(unready) {
            if names.insert(s.name.clone()) {
                g.config.servers.push(ServerConfig {
                    name: s.name.clone(),
                    address: SocketAddr::new(s.addr, s.port),
                });
                g.kinds.push(Some(s.kind));
            }
        }
        let mut names: std::collections::HashSet<String> =
            g.config.targets.iter().map(|t| t.name.clone()).collect();
        for pt in &plan.targets {
            let t = &pt.target;
            let name = format!("{}/{}", t.qname, t.rtype.as_str());
            if !names.insert(name.clone()) {
                continue;
            }
            let expect = match &t.expected {
                Expected::NonEmpty => Default::default(),
                Expected::Addrs(a) => a.iter().map(ToString::to_string).collect(),
                Expected::Srv(set) => set
                    .iter()
                    .map(|s| format!("0 0 {} {}.", s.port, s.target))
                    .collect(),
                Expected::Cname(n) => [format!("{n}.")].into(),
            };
            let namespace = match &t.source {
                TargetSource::Service { namespace, .. } => namespace.clone(),
                TargetSource::ApiServer => "default".into(),
            };
            g.config.targets.push(TargetConfig {
                name,
                qname: t.qname.clone(),
                qtype: rtype(t.rtype),
                expect,
                namespace,
                interval: config.probe.interval,
                own_interval: false,
                tcp: false,
            });
            g.expects.push(Some(KubeExpect {
                core: t.core_expectation(),
                since_us: pt.expected_since_us,
                grace: pt.grace,
            }));
        }
        // Discovered servers and targets change each server's share of the budget.
        let servers = g.config.servers.len();
        let global = g.config.rate_limit.global_qps;
        if let Err(e) =
            crate::config::spread_intervals(&mut g.config.targets, &g.config.probe, servers, global)
        {
            tracing::warn!(error = %e, "probe intervals kept as configured");
        }
        g
    }
}

fn rtype(r: RecordType) -> dnswarden_core::wire::Rtype {
    use dnswarden_core::wire::Rtype;
    match r {
        RecordType::A => Rtype::A,
        RecordType::Aaaa => Rtype::AAAA,
        RecordType::Srv => Rtype::SRV,
        RecordType::Cname => Rtype::CNAME,
    }
}

#[derive(Debug)]
struct Shared {
    config: Config,
    kinds: Vec<Option<ServerKind>>,
    expects: Vec<Option<KubeExpect>>,
    /// The scorer keys of the servers and targets (stable across plan changes).
    keys: ScorerKeys,
    /// Per target: answers that differ from `expected` count as drift from then on
    /// (runner clock, µs).
    drift_from_us: Vec<u64>,
    health: Option<Arc<watch::Sender<HealthSnapshot>>>,
    expected: Vec<Vec<String>>,
    prober: Prober,
    metrics: Arc<Metrics>,
    http: Arc<HttpState>,
    servers: Vec<Mutex<Scorer>>,
    targets: Vec<Mutex<Scorer>>,
    global: TokenBucket,
    namespaces: HashMap<String, TokenBucket>,
    in_flight: Semaphore,
    start: Instant,
    events: broadcast::Sender<Event>,
    unprobed: AtomicUsize,
}

/// The service, bound and ready to run.
pub struct Runner {
    shared: Arc<Shared>,
    base: Base,
    listener: TcpListener,
    http_addr: SocketAddr,
    heal_metrics: Option<HealMetrics>,
    kube_client: Option<::kube::Client>,
}

impl std::fmt::Debug for Runner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("http_addr", &self.http_addr)
            .field("servers", &self.shared.config.servers.len())
            .field("targets", &self.shared.config.targets.len())
            .field("kube", &self.shared.config.kube.is_some())
            .field("mock_kube_client", &self.kube_client.is_some())
            .finish_non_exhaustive()
    }
}

/// Runs the service until `shutdown` completes (see [`Runner`]).
pub async fn run(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    Runner::new(config).await?.run(shutdown).await
}

/// A server's identity across probe plans: its name (the pod name for a CoreDNS pod)
/// and its address.
type ServerId = (String, SocketAddr);

/// A target's identity across probe plans: its name (`qname/TYPE` when discovered),
/// qname and type.
type TargetId = (String, String, dnswarden_core::wire::Rtype);

fn server_id(s: &ServerConfig) -> ServerId {
    (s.name.clone(), s.address)
}

fn target_id(t: &TargetConfig) -> TargetId {
    (t.name.clone(), t.qname.clone(), t.qtype)
}

/// Scorer keys that outlive a probe plan. An identity keeps its key for as long as it
/// stays in the plans; the key of one that left is free for the next newcomer (once
/// every kept scorer has forgotten it), so keys stay below the largest plan's size.
#[derive(Debug, Clone)]
struct KeyTable<I> {
    slots: Vec<Option<I>>,
}

impl<I> Default for KeyTable<I> {
    fn default() -> Self {
        KeyTable { slots: Vec::new() }
    }
}

fn key_of(slot: usize) -> u32 {
    u32::try_from(slot).unwrap_or(u32::MAX)
}

impl<I: PartialEq + Clone> KeyTable<I> {
    /// The keys of `ids` (in order), and the keys freed because their identity is no
    /// longer among `ids`.
    fn assign(&mut self, ids: &[I]) -> (Vec<u32>, Vec<u32>) {
        let mut gone = Vec::new();
        for (k, slot) in self.slots.iter_mut().enumerate() {
            if slot.as_ref().is_some_and(|id| !ids.contains(id)) {
                *slot = None;
                gone.push(key_of(k));
            }
        }
        let keys = ids
            .iter()
            .map(|id| {
                if let Some(k) = self.slots.iter().position(|s| s.as_ref() == Some(id)) {
                    return key_of(k);
                }
                match self.slots.iter().position(Option::is_none) {
                    Some(k) => {
                        if let Some(slot) = self.slots.get_mut(k) {
                            *slot = Some(id.clone());
                        }
                        key_of(k)
                    }
                    None => {
                        self.slots.push(Some(id.clone()));
                        key_of(self.slots.len() - 1)
                    }
                }
            })
            .collect();
        (keys, gone)
    }

    /// Names indexed by key (`""` for a free key), as [`Scorer`] wants them.
    fn names(&self, name: impl Fn(&I) -> &str) -> Vec<String> {
        self.slots
            .iter()
            .map(|s| s.as_ref().map_or("", &name).to_string())
            .collect()
    }
}

/// The scorer keys of one generation.
#[derive(Debug, Clone, Default)]
struct ScorerKeys {
    servers: KeyTable<ServerId>,
    targets: KeyTable<TargetId>,
    /// Per server of the generation (in `config.servers` order): its key.
    server: Vec<u32>,
    /// Per target of the generation (in `config.targets` order): its key.
    target: Vec<u32>,
}

/// The scorers of a generation and which of them were kept from the previous one.
struct Scorers {
    keys: ScorerKeys,
    servers: Vec<Mutex<Scorer>>,
    targets: Vec<Mutex<Scorer>>,
    /// Per server: its scorer (verdict, since when, history) was kept.
    kept_servers: Vec<bool>,
    /// Per target: its scorer was kept.
    kept_targets: Vec<bool>,
}

fn expect_kube(scorer: &mut Scorer, key: u32, k: &KubeExpect, at_us: u64) {
    match &k.core {
        CoreExpectation::Members(m) => scorer.expect(key, at_us, m),
        CoreExpectation::FinalName(fp) => scorer.expect_final_name(key, at_us, *fp),
        CoreExpectation::None => scorer.forget_target(key),
    }
}

/// Sets target `ti`'s expectation (discovered, or the static `expect:`) under `key`.
fn expect_target(scorer: &mut Scorer, g: &Generation, ti: usize, key: u32, now_us: u64) {
    let Some(t) = g.config.targets.get(ti) else {
        return;
    };
    match g.expects.get(ti) {
        Some(Some(k)) => expect_kube(scorer, key, k, k.since_us.min(now_us)),
        _ => {
            let expect: Vec<String> = t.expect.iter().cloned().collect();
            if let Some(members) = expected_members(t.qtype, &expect) {
                scorer.expect(key, now_us, &members);
            }
        }
    }
}

/// Takes the scorers out of a finished generation, by identity.
fn scorers_by_id<I: std::hash::Hash + Eq>(
    ids: impl Iterator<Item = I>,
    slots: Vec<Mutex<Scorer>>,
) -> HashMap<I, Scorer> {
    ids.zip(slots)
        .filter_map(|(id, m)| m.into_inner().ok().map(|s| (id, s)))
        .collect()
}

/// The scorers of generation `g`. A server or target that was in the previous
/// generation keeps its scorer (verdict, since when, history), whatever else came or
/// went: the scorer forgets the servers and targets that left, learns the new names
/// and the new or changed expectations. Newcomers get fresh scorers; scorers of those
/// that left are dropped.
fn carry_scorers(previous: Option<Shared>, g: &Generation, now_us: u64) -> Result<Scorers> {
    let server_ids: Vec<ServerId> = g.config.servers.iter().map(server_id).collect();
    let target_ids: Vec<TargetId> = g.config.targets.iter().map(target_id).collect();
    let (mut keys, mut old_servers, mut old_targets, old_expects) = match previous {
        Some(p) => {
            let servers = scorers_by_id(p.config.servers.iter().map(server_id), p.servers);
            let ids: Vec<TargetId> = p.config.targets.iter().map(target_id).collect();
            let expects: HashMap<TargetId, Option<KubeExpect>> =
                ids.iter().cloned().zip(p.expects).collect();
            let targets = scorers_by_id(ids.into_iter(), p.targets);
            (p.keys, servers, targets, expects)
        }
        None => Default::default(),
    };
    let (server_keys, gone_servers) = keys.servers.assign(&server_ids);
    let (target_keys, gone_targets) = keys.targets.assign(&target_ids);
    keys.server = server_keys;
    keys.target = target_keys;
    let server_names = keys.servers.names(|id| &id.0);
    let target_names = keys.targets.names(|id| &id.0);
    // Targets whose expectation a kept scorer does not know yet: new, or changed.
    let relearn: Vec<usize> = target_ids
        .iter()
        .enumerate()
        .filter(|(ti, id)| {
            old_expects
                .get(*id)
                .is_none_or(|old| old.as_ref() != g.expects.get(*ti).and_then(Option::as_ref))
        })
        .map(|(ti, _)| ti)
        .collect();
    // `only`: the one target a target's own scorer is fed (it learns only that
    // target's expectation); `None` for a server's scorer, which sees every target.
    let keep = |mut s: Scorer, only: Option<usize>| {
        s.rekey(
            server_names.clone(),
            target_names.clone(),
            &gone_servers,
            &gone_targets,
        );
        for &ti in relearn.iter().filter(|&&ti| only.is_none_or(|o| o == ti)) {
            if let Some(&key) = keys.target.get(ti) {
                expect_target(&mut s, g, ti, key, now_us);
            }
        }
        s
    };
    let fresh = |only: Option<usize>| -> Result<Scorer> {
        let (cfg, servers, targets) =
            (g.config.scoring, server_names.clone(), target_names.clone());
        let mut s = match only {
            None => Scorer::new(cfg, servers, targets),
            Some(_) => Scorer::for_one_target(cfg, servers, targets),
        }
        .map_err(|e| Error::config(format!("scoring.{}", e.field), e.problem, e.fix))?;
        for (ti, &key) in keys.target.iter().enumerate() {
            if only.is_none_or(|o| o == ti) {
                expect_target(&mut s, g, ti, key, now_us);
            }
        }
        Ok(s)
    };
    let pick = |old: Option<Scorer>, only: Option<usize>| -> Result<(Mutex<Scorer>, bool)> {
        Ok(match old {
            Some(s) => (Mutex::new(keep(s, only)), true),
            None => (Mutex::new(fresh(only)?), false),
        })
    };
    let (servers, kept_servers) = server_ids
        .iter()
        .map(|id| pick(old_servers.remove(id), None))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    let (targets, kept_targets) = target_ids
        .iter()
        .enumerate()
        .map(|(ti, id)| pick(old_targets.remove(id), Some(ti)))
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .unzip();
    Ok(Scorers {
        keys,
        servers,
        targets,
        kept_servers,
        kept_targets,
    })
}

impl Runner {
    /// Binds the HTTP listener and sets up scorers, rate limits and metrics. With
    /// `kube:`, the self-healing metrics are registered too; discovery starts in
    /// [`Runner::run`].
    pub async fn new(config: Config) -> Result<Runner> {
        let listener = http::bind(config.listen).await?;
        let http_addr = listener.local_addr().map_err(|source| Error::Listen {
            addr: config.listen,
            source,
        })?;
        let mut metrics = Metrics::new();
        let heal_metrics = config.kube.as_ref().map(|_| {
            let m = HealMetrics::default();
            m.register(&mut metrics.registry);
            m
        });
        let metrics = Arc::new(metrics);
        let (events, _) = broadcast::channel(8192);
        let base = Base {
            http: Arc::new(HttpState {
                metrics: metrics.clone(),
                ready: false.into(),
            }),
            metrics,
            events,
            start: Instant::now(),
            health: None,
        };
        let shared = Shared::new(Generation::fixed(config), &base, 0)?;
        Ok(Runner {
            shared: Arc::new(shared),
            base,
            listener,
            http_addr,
            heal_metrics,
            kube_client: None,
        })
    }

    /// Uses this Kubernetes client for discovery and healing instead of the
    /// in-cluster config / kubeconfig (tests pass a mock API). Only used with `kube:`.
    pub fn with_kube_client(mut self, client: ::kube::Client) -> Runner {
        self.kube_client = Some(client);
        self
    }

    /// The address `/metrics` is served on (useful with port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Events from now on (probe results and verdict changes). A subscriber that falls
    /// behind loses the oldest events (`RecvError::Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// The metrics (also served on `/metrics`).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.shared.metrics.clone()
    }

    /// Probes until `shutdown` completes, then drains and returns.
    ///
    /// With `kube:`, discovery runs next to the probe loops: every new probe plan
    /// (CoreDNS pods, the kube-dns ClusterIP, targets) replaces the probe loops (the
    /// static servers and targets stay), and with healing on, the unready CoreDNS pods
    /// are probed too and every pod verdict change is handed to the healer.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let Runner {
            shared,
            mut base,
            listener,
            http_addr,
            heal_metrics,
            kube_client,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let kube = match &shared.config.kube {
            Some(k) => Some(
                start_kube(
                    &shared.config,
                    k,
                    kube_client,
                    heal_metrics,
                    &mut base,
                    &stop_rx,
                )
                .await?,
            ),
            None => None,
        };
        let (http_stop_tx, http_stop_rx) = tokio::sync::oneshot::channel::<()>();
        tracing::info!(
            http = %http_addr,
            servers = shared.config.servers.len(),
            targets = shared.config.targets.len(),
            kube = kube.is_some(),
            "dnswarden running"
        );
        let stamps = shared.clone();
        let stamps_task = tokio::spawn(async move { log_rtt_clock(&stamps.prober).await });
        let http_task = tokio::spawn(http::serve(listener, base.http.clone(), async move {
            let _ = http_stop_rx.await;
        }));
        let stopper = tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
            stop_tx
        });

        let last = match kube {
            None => {
                probe_until(shared.clone(), stop_rx).await;
                shared
            }
            Some(k) => k.probe(&base, stop_rx).await?,
        };
        // Every loop has returned: in-flight probes finished and were scored.
        log_final_verdicts(&last);
        let _ = http_stop_tx.send(());
        let http_result = http_task.await;
        stopper.abort();
        stamps_task.abort();
        tracing::info!("dnswarden stopped");
        match http_result {
            Ok(r) => r,
            Err(_) => Ok(()),
        }
    }
}

/// Discovery (and the healer) started by [`Runner::run`].
struct KubeRun {
    config: Config,
    plan: watch::Receiver<Arc<ProbePlan>>,
    probe_unready: bool,
    discovery: tokio::task::JoinHandle<()>,
    healer: Option<tokio::task::JoinHandle<()>>,
}

fn stop_future(stop: &watch::Receiver<bool>) -> impl Future<Output = ()> + Send + 'static {
    let mut stop = stop.clone();
    async move { stop_requested(&mut stop).await }
}

/// Starts discovery and, unless `heal.mode` is `off`, the healer (fed through
/// `base.health`).
async fn start_kube(
    config: &Config,
    k: &crate::kube::KubeSettings,
    client: Option<::kube::Client>,
    heal_metrics: Option<HealMetrics>,
    base: &mut Base,
    stop: &watch::Receiver<bool>,
) -> Result<KubeRun> {
    let discovery_cfg = k.discovery().map_err(|e| Error::Kube(e.to_string()))?;
    let client = match client {
        Some(c) => c,
        None => crate::kube::client().await.map_err(|e| {
            Error::Kube(format!(
                "no Kubernetes client ({e}); fix: run in a cluster with a service account, or set KUBECONFIG"
            ))
        })?,
    };
    let discovery =
        Discovery::new(client.clone(), discovery_cfg).map_err(|e| Error::Kube(e.to_string()))?;
    let plan = discovery.plan();
    let pods = discovery.pods();
    let api_ok = discovery.api_status();
    let heal_on = config.heal.mode != heal::Mode::Off;
    let mut healer = None;
    if heal_on {
        let ns = std::env::var("POD_NAMESPACE").unwrap_or_default();
        let me = std::env::var("POD_NAME").unwrap_or_default();
        let in_cluster = std::env::var_os("KUBERNETES_SERVICE_HOST").is_some();
        let (heal_cfg, lease) = config
            .heal
            .into_configs(&k.coredns_namespace, &ns, &me, in_cluster)
            .map_err(|e| Error::config(e.field, e.problem, e.fix))?;
        let (health_tx, health_rx) = watch::channel(HealthSnapshot::default());
        base.health = Some(Arc::new(health_tx));
        let h = Healer::new(client.clone(), heal_cfg, heal_metrics.unwrap_or_default());
        let elector = lease.map(|l| LeaderElector::new(client, l));
        // The scorers' clock (`at_us`, hence `PodHealth::since_us`).
        let start = base.start;
        let clock = move || u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        healer = Some(tokio::spawn(heal::run_healer(
            h,
            pods,
            health_rx,
            api_ok,
            elector,
            clock,
            stop_future(stop),
        )));
    }
    let discovery = tokio::spawn(discovery.run(stop_future(stop)));
    Ok(KubeRun {
        config: config.clone(),
        plan,
        probe_unready: heal_on,
        discovery,
        healer,
    })
}

impl KubeRun {
    /// One generation of probe loops per plan, until `stop`. Returns the last one.
    async fn probe(mut self, base: &Base, mut stop: watch::Receiver<bool>) -> Result<Arc<Shared>> {
        let mut previous: Option<Shared> = None;
        let last = loop {
            let plan = self.plan.borrow_and_update().clone();
            let g = Generation::with_plan(&self.config, &plan, self.probe_unready);
            let now_us = u64::try_from(base.start.elapsed().as_micros()).unwrap_or(u64::MAX);
            let shared = Arc::new(Shared::with_scorers(g, base, now_us, previous.take())?);
            let (gen_tx, gen_rx) = watch::channel(false);
            let loops = tokio::spawn(probe_until(shared.clone(), gen_rx));
            let replan = tokio::select! {
                r = self.plan.changed() => r.is_ok(),
                _ = stop_requested(&mut stop) => false,
            };
            if !replan && !stopped(&stop) {
                // Discovery ended (its sender is gone): keep this plan until stop.
                stop_requested(&mut stop).await;
            }
            let _ = gen_tx.send(true);
            let _ = loops.await;
            if !replan || stopped(&stop) {
                break shared;
            }
            // The loops are done: take the scorers back if the next plan can use them.
            previous = Arc::try_unwrap(shared).ok();
        };
        if let Some(h) = self.healer.take() {
            let _ = h.await;
        }
        self.discovery.abort();
        Ok(last)
    }
}

impl Shared {
    /// The scorer key of server `si` (stable across plan changes).
    fn server_key(&self, si: usize) -> u32 {
        self.keys.server.get(si).copied().unwrap_or(u32::MAX)
    }

    /// The scorer key of target `ti` (stable across plan changes).
    fn target_key(&self, ti: usize) -> u32 {
        self.keys.target.get(ti).copied().unwrap_or(u32::MAX)
    }

    /// Scorers, rate limits and gauges for one generation of probe loops.
    fn new(g: Generation, base: &Base, now_us: u64) -> Result<Shared> {
        Shared::with_scorers(g, base, now_us, None)
    }

    /// Like [`Shared::new`], keeping the scorers of the `previous` generation's servers
    /// and targets that are still there (see [`carry_scorers`]). The healer keeps the
    /// verdicts of kept pod scorers and forgets the others; the verdict and score
    /// gauges of servers and targets that left are removed, the newcomers' start at ok.
    fn with_scorers(
        g: Generation,
        base: &Base,
        now_us: u64,
        previous: Option<Shared>,
    ) -> Result<Shared> {
        let gone: Vec<(Scope, String)> = previous.as_ref().map_or_else(Vec::new, |p| {
            let servers = p.config.servers.iter().map(|s| (Scope::Server, &s.name));
            let targets = p.config.targets.iter().map(|t| (Scope::Target, &t.name));
            servers
                .chain(targets)
                .filter(|(scope, name)| match scope {
                    Scope::Server => !g.config.servers.iter().any(|s| &s.name == *name),
                    Scope::Target => !g.config.targets.iter().any(|t| &t.name == *name),
                })
                .map(|(scope, name)| (scope, name.clone()))
                .collect()
        });
        let config = &g.config;
        let mut namespaces = HashMap::new();
        for t in &config.targets {
            namespaces.entry(t.namespace.clone()).or_insert_with(|| {
                TokenBucket::new(
                    config.rate_limit.namespace_qps,
                    config.rate_limit.namespace_burst,
                )
            });
        }
        let Scorers {
            keys,
            servers,
            targets,
            kept_servers,
            kept_targets,
        } = carry_scorers(previous, &g, now_us)?;
        tracing::info!(
            servers = config.servers.len(),
            targets = config.targets.len(),
            servers_kept = kept_servers.iter().filter(|k| **k).count(),
            targets_kept = kept_targets.iter().filter(|k| **k).count(),
            server_qps = (crate::config::server_qps(&config.targets) * 10.0).round() / 10.0,
            pair_interval_ms = config
                .targets
                .iter()
                .map(|t| t.interval.as_millis())
                .min()
                .unwrap_or(0),
            "probe plan"
        );
        let drift_from_us = g
            .expects
            .iter()
            .map(|k| {
                k.as_ref().map_or(0, |k| {
                    k.since_us
                        .saturating_add(u64::try_from(k.grace.as_micros()).unwrap_or(u64::MAX))
                })
            })
            .collect();
        let shared = Shared {
            expected: config
                .targets
                .iter()
                .map(|t| t.expect.iter().cloned().collect())
                .collect(),
            prober: Prober::new(config.probe.tcp_reuse),
            http: base.http.clone(),
            metrics: base.metrics.clone(),
            servers,
            targets,
            global: TokenBucket::new(config.rate_limit.global_qps, config.rate_limit.global_burst),
            namespaces,
            in_flight: Semaphore::new(config.probe.concurrency),
            start: base.start,
            events: base.events.clone(),
            unprobed: AtomicUsize::new(config.servers.len() * config.targets.len()),
            kinds: g.kinds,
            expects: g.expects,
            keys,
            drift_from_us,
            health: base.health.clone(),
            config: g.config,
        };
        if let Some(h) = &shared.health {
            // Verdicts of kept pod scorers stay (their `since` too, so `sick_for` keeps
            // counting); a fresh scorer starts at ok, so the healer forgets the rest.
            let kept_pod = |name: &str| {
                shared
                    .config
                    .servers
                    .iter()
                    .zip(&shared.kinds)
                    .zip(&kept_servers)
                    .any(|((s, kind), kept)| {
                        *kept && s.name == name && *kind == Some(ServerKind::Pod)
                    })
            };
            let kept_service = shared
                .kinds
                .iter()
                .zip(&kept_servers)
                .any(|(kind, kept)| *kept && *kind == Some(ServerKind::ClusterIp));
            h.send_modify(|s| {
                s.pods.retain(|name, _| kept_pod(name));
                if !kept_service {
                    s.service = None;
                }
            });
        }
        let m = &shared.metrics;
        for (scope, name) in gone {
            let l = ScopeLabels {
                scope: scope.as_str().into(),
                name,
            };
            m.verdict.remove(&l);
            m.score.remove(&l);
        }
        // Start every new gauge at ok so dashboards see the series before any change;
        // kept scorers' gauges already show them.
        let servers = shared.config.servers.iter().map(|s| &s.name);
        let targets = shared.config.targets.iter().map(|t| &t.name);
        let fresh = servers
            .zip(&kept_servers)
            .map(|(n, k)| (Scope::Server, n, k))
            .chain(
                targets
                    .zip(&kept_targets)
                    .map(|(n, k)| (Scope::Target, n, k)),
            )
            .filter(|(_, _, kept)| !**kept);
        for (scope, name, _) in fresh {
            let l = ScopeLabels {
                scope: scope.as_str().into(),
                name: name.clone(),
            };
            m.verdict.get_or_create(&l).set(0);
            m.score.get_or_create(&l).set(0.0);
        }
        Ok(shared)
    }
}

/// Runs one generation's probe loops until `stop`; in-flight probes finish and are
/// scored.
async fn probe_until(shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let mut loops = JoinSet::new();
    loops.spawn(evaluate_loop(shared.clone(), stop.clone()));
    let confirm = Arc::new(Confirm::new(
        shared.config.probe.confirm,
        shared.config.servers.len(),
        shared.config.targets.len(),
    ));
    for si in 0..shared.config.servers.len() {
        for ti in 0..shared.config.targets.len() {
            loops.spawn(pair_loop(
                shared.clone(),
                confirm.clone(),
                si,
                ti,
                stop.clone(),
            ));
        }
    }
    while loops.join_next().await.is_some() {}
    shared.prober.close_idle();
}

fn log_final_verdicts(shared: &Shared) {
    for (scope, slots, names) in [
        (
            Scope::Server,
            &shared.servers,
            shared
                .config
                .servers
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
        ),
        (
            Scope::Target,
            &shared.targets,
            shared
                .config
                .targets
                .iter()
                .map(|t| t.name.as_str())
                .collect(),
        ),
    ] {
        for (slot, name) in slots.iter().zip(names) {
            if let Ok(s) = slot.lock() {
                tracing::info!(scope = scope.as_str(), name, verdict = %s.verdict(), "final verdict");
            }
        }
    }
}

fn stopped(stop: &watch::Receiver<bool>) -> bool {
    *stop.borrow()
}

/// Resolves when a stop is requested (or the stop sender is gone).
async fn stop_requested(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Which kind of probe [`probe_and_score`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeKind {
    Scheduled,
    Retry,
    Confirm,
}

/// What [`probe_and_score`] found.
#[derive(Debug, Clone, Copy)]
struct Scored {
    /// No answer at all: worth a retry.
    failed: bool,
    /// The result's class, for the suspicion cadence.
    class: Class,
    /// The probe's RTT in microseconds (for the cadence's slow-answer check).
    rtt_us: u32,
}

/// One (server, target) pair's schedule. Suspicious answers (see [`Confirm::note`])
/// start a confirmation burst on the side ([`confirm_burst`]); the loop waits for its
/// bursts before it returns, so their probes are scored before shutdown completes.
/// Where in the interval the pair (si, ti) starts, as a fraction: a server's targets are
/// spread evenly over the interval (and the servers evenly within one target's slot),
/// so the probes one server gets are evenly spaced and the first probe after a fault
/// comes at most about `interval / targets` later. A little randomness keeps separate
/// runners from falling into step.
fn phase(si: usize, ti: usize, cfg: &Config) -> f64 {
    let targets = cfg.targets.len().max(1) as f64;
    let servers = cfg.servers.len().max(1) as f64;
    let slot = (ti as f64 + si as f64 / servers) / targets;
    (slot + rand::rng().random_range(0.0..0.1) / targets).fract()
}

/// The first tick of the grid `last + k * interval` (k ≥ 1) that is not before `now`.
fn next_tick(last: Instant, interval: Duration, now: Instant) -> Instant {
    let next = last + interval;
    if next >= now || interval.is_zero() {
        return next;
    }
    let behind = (now - next).as_nanos();
    let skip = u32::try_from(behind.div_ceil(interval.as_nanos())).unwrap_or(u32::MAX);
    next.checked_add(interval.saturating_mul(skip))
        .unwrap_or(now + interval)
}

async fn pair_loop(
    shared: Arc<Shared>,
    confirm: Arc<Confirm>,
    si: usize,
    ti: usize,
    mut stop: watch::Receiver<bool>,
) {
    let mut bursts = JoinSet::new();
    pair_schedule(&shared, &confirm, si, ti, &mut stop, &mut bursts).await;
    while bursts.join_next().await.is_some() {}
}

/// Starts a confirmation burst for server `si` if the probe's answer is news for the
/// pair (see [`Confirm::note_answer`]) and the server may burst now.
fn maybe_confirm(
    shared: &Arc<Shared>,
    confirm: &Arc<Confirm>,
    si: usize,
    ti: usize,
    scored: &Scored,
    stop: &watch::Receiver<bool>,
    bursts: &mut JoinSet<()>,
) {
    while bursts.try_join_next().is_some() {}
    if confirm.note_answer(si, ti, scored.class, scored.rtt_us) && confirm.claim(si, Instant::now())
    {
        bursts.spawn(confirm_burst(
            shared.clone(),
            confirm.clone(),
            si,
            ti,
            stop.clone(),
        ));
    }
}

async fn pair_schedule(
    shared: &Arc<Shared>,
    confirm: &Arc<Confirm>,
    si: usize,
    ti: usize,
    stop: &mut watch::Receiver<bool>,
    bursts: &mut JoinSet<()>,
) {
    let cfg = &shared.config;
    let (Some(server), Some(target)) = (cfg.servers.get(si), cfg.targets.get(ti)) else {
        return;
    };
    let interval = target.interval;
    let mut next = Instant::now() + interval.mul_f64(phase(si, ti, cfg));
    let mut first = true;
    loop {
        let jitter = cfg.probe.jitter * rand::rng().random_range(-1.0..=1.0);
        let at = if jitter >= 0.0 {
            next + interval.mul_f64(jitter)
        } else {
            next.checked_sub(interval.mul_f64(-jitter)).unwrap_or(next)
        };
        tokio::select! {
            _ = tokio::time::sleep_until(at) => {}
            _ = stop_requested(stop) => break,
        }
        if stopped(stop) {
            break;
        }
        // The schedule keeps its rhythm: the next tick does not depend on how long this
        // probe takes; ticks that already passed (a probe that waited out its timeout)
        // are skipped, on the pair's own grid. Restarting the grid from "now" instead let
        // each timeout shift the pair's phase, so after a few faults a server's targets
        // were no longer spread over the interval and the first probe after a new fault
        // could come a whole interval later.
        next = next_tick(next, interval, Instant::now());
        if !shared.global.take(next).await {
            skip(shared, "global_rate");
            continue;
        }
        if let Some(bucket) = shared.namespaces.get(&target.namespace)
            && !bucket.take(next).await
        {
            skip(shared, "namespace_rate");
            continue;
        }
        let permit = tokio::select! {
            p = shared.in_flight.acquire() => p,
            _ = stop_requested(stop) => break,
        };
        let Ok(_permit) = permit else { break };
        let scored = probe_and_score(shared, si, ti, ProbeKind::Scheduled).await;
        maybe_confirm(shared, confirm, si, ti, &scored, stop, bursts);
        let mut failed = scored.failed;
        if first {
            first = false;
            if shared.unprobed.fetch_sub(1, Ordering::Relaxed) == 1 {
                shared.http.ready.store(true, Ordering::Relaxed);
            }
        }
        // Retries only for failures, with backoff, and only when they fit before the
        // next scheduled probe.
        let mut attempt = 0;
        while failed && attempt < cfg.retry.max_attempts && !stopped(stop) {
            let delay = backoff(cfg.retry.base, cfg.retry.max, attempt);
            if Instant::now() + delay + cfg.probe.timeout >= next {
                break;
            }
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = stop_requested(stop) => break,
            }
            shared
                .metrics
                .retries
                .get_or_create(&PairLabels {
                    server: server.name.clone(),
                    target: target.name.clone(),
                })
                .inc();
            let scored = probe_and_score(shared, si, ti, ProbeKind::Retry).await;
            maybe_confirm(shared, confirm, si, ti, &scored, stop, bursts);
            failed = scored.failed;
            attempt += 1;
        }
    }
}

/// The suspicion cadence's burst for server `si`, started by a suspicious answer of
/// target `first`: `rounds` rounds `spacing` apart (the first at once), each probing
/// `first` and then the server's other targets. Each confirmation probe needs a token
/// of the global and of its namespace's rate limit and a free in-flight slot right
/// away; otherwise it is skipped (counted in `probes_skipped{reason="confirm_*"}`), so
/// bursts never delay scheduled probes beyond the tokens they use. Rounds do not wait
/// for the previous round's answers (a slow answer does not slow the cadence); the
/// burst returns when all its probes are scored.
async fn confirm_burst(
    shared: Arc<Shared>,
    confirm: Arc<Confirm>,
    si: usize,
    first: usize,
    mut stop: watch::Receiver<bool>,
) {
    let settings = confirm.settings();
    let Some(server) = shared.config.servers.get(si) else {
        return;
    };
    shared
        .metrics
        .confirm_bursts
        .get_or_create(&ServerLabels {
            server: server.name.clone(),
        })
        .inc();
    let n = shared.config.targets.len();
    let start = Instant::now();
    let mut probes = JoinSet::new();
    for round in 0..settings.rounds {
        if round > 0 {
            tokio::select! {
                _ = tokio::time::sleep_until(start + settings.spacing * round) => {}
                _ = stop_requested(&mut stop) => break,
            }
        }
        if stopped(&stop) {
            break;
        }
        for k in 0..n {
            let ti = (first + k) % n;
            let Some(target) = shared.config.targets.get(ti) else {
                continue;
            };
            let now = Instant::now();
            if shared.global.try_take(now).is_err() {
                skip(&shared, "confirm_global_rate");
                continue;
            }
            if let Some(bucket) = shared.namespaces.get(&target.namespace)
                && bucket.try_take(now).is_err()
            {
                skip(&shared, "confirm_namespace_rate");
                continue;
            }
            let (shared, confirm) = (shared.clone(), confirm.clone());
            probes.spawn(async move {
                let Ok(_permit) = shared.in_flight.try_acquire() else {
                    skip(&shared, "confirm_concurrency");
                    return;
                };
                if let (Some(server), Some(target)) =
                    (shared.config.servers.get(si), shared.config.targets.get(ti))
                {
                    shared
                        .metrics
                        .confirm_probes
                        .get_or_create(&PairLabels {
                            server: server.name.clone(),
                            target: target.name.clone(),
                        })
                        .inc();
                }
                let scored = probe_and_score(&shared, si, ti, ProbeKind::Confirm).await;
                // Keeps the pair's class current, so its next scheduled probe is not
                // news again; this burst (and its cool-down) covers the server.
                confirm.note_answer(si, ti, scored.class, scored.rtt_us);
            });
        }
    }
    while probes.join_next().await.is_some() {}
}

fn skip(shared: &Shared, reason: &str) {
    shared
        .metrics
        .skipped
        .get_or_create(&SkipLabels {
            reason: reason.into(),
        })
        .inc();
}

/// Probes once, records metrics, feeds both scorers. Returns whether the probe failed
/// (no answer at all: worth a retry) and the result's class.
async fn probe_and_score(shared: &Shared, si: usize, ti: usize, kind: ProbeKind) -> Scored {
    let cfg = &shared.config;
    let (Some(server), Some(target)) = (cfg.servers.get(si), cfg.targets.get(ti)) else {
        return Scored {
            failed: false,
            class: Class::Unknown,
            rtt_us: 0,
        };
    };
    let spec = ProbeSpec {
        server: server.address,
        qname: &target.qname,
        qtype: target.qtype,
        tcp: target.tcp,
        timeout: cfg.probe.timeout,
        edns_udp_size: cfg.probe.edns_udp_size,
    };
    let res = shared.prober.probe(&spec).await;
    let at = Instant::now();
    let m = &shared.metrics;
    let pair = PairLabels {
        server: server.name.clone(),
        target: target.name.clone(),
    };
    m.probe_duration
        .get_or_create(&ProbeLabels {
            server: server.name.clone(),
            target: target.name.clone(),
            qtype: target.qtype.to_string(),
            transport: res.transport.as_str().into(),
        })
        .observe(res.rtt.as_secs_f64());
    m.outcomes
        .get_or_create(&OutcomeLabels {
            server: server.name.clone(),
            target: target.name.clone(),
            outcome: res.outcome.label().into(),
        })
        .inc();
    m.rtt_clock
        .get_or_create(&ClockLabels {
            clock: res.rtt_clock.as_str().into(),
        })
        .inc();
    if res.truncated {
        m.truncated.get_or_create(&pair).inc();
    }
    if res.mismatches > 0 {
        m.mismatches
            .get_or_create(&pair)
            .inc_by(u64::from(res.mismatches));
    }
    if res.malformed > 0 {
        m.malformed
            .get_or_create(&pair)
            .inc_by(u64::from(res.malformed));
    }
    if let Some(ok) = res.tcp_fallback {
        m.tcp_fallbacks
            .get_or_create(&FallbackLabels {
                server: server.name.clone(),
                result: if ok { "ok" } else { "failed" }.into(),
            })
            .inc();
    }
    let at_us = micros(shared, at);
    let drift_counts = shared.drift_from_us.get(ti).is_none_or(|&t| at_us >= t);
    let drift = drift_counts
        && res.answer_drift(
            shared
                .expected
                .get(ti)
                .map(Vec::as_slice)
                .unwrap_or_default(),
            target.qtype,
        );
    if drift {
        m.drift.get_or_create(&pair).inc();
    }
    let class = classify(&res, drift);
    let from = Some((server.name.as_str(), target.name.as_str()));
    let server_a = score(shared, Scope::Server, si, &server.name, at, from, |s| {
        s.observe_probe(shared.server_key(si), shared.target_key(ti), at_us, &res)
    });
    let target_a = score(shared, Scope::Target, ti, &target.name, at, from, |s| {
        s.observe_probe(shared.server_key(si), shared.target_key(ti), at_us, &res)
    });
    let failed = !res.outcome.answered() && res.transport == Transport::Udp
        || matches!(
            res.outcome,
            Outcome::Timeout | Outcome::NetworkError(_) | Outcome::Mismatch | Outcome::Malformed
        );
    let rtt_us = u32::try_from(res.rtt.as_micros()).unwrap_or(u32::MAX);
    if shared.events.receiver_count() > 0 {
        let _ = shared.events.send(Event::Probe(Box::new(ProbeEvent {
            server: server.name.clone(),
            target: target.name.clone(),
            result: res,
            server_assessment: server_a,
            target_assessment: target_a,
            at,
            retry: kind == ProbeKind::Retry,
            confirm: kind == ProbeKind::Confirm,
        })));
    }
    Scored {
        failed,
        class,
        rtt_us,
    }
}

fn micros(shared: &Shared, at: Instant) -> u64 {
    u64::try_from(at.duration_since(shared.start).as_micros()).unwrap_or(u64::MAX)
}

/// Runs `f` on one scorer, then records gauges and reasons, and logs and publishes a
/// verdict change (once per change).
fn score(
    shared: &Shared,
    scope: Scope,
    idx: usize,
    name: &str,
    at: Instant,
    from_probe: Option<(&str, &str)>,
    f: impl FnOnce(&mut Scorer) -> Assessment,
) -> Assessment {
    let slots = match scope {
        Scope::Server => &shared.servers,
        Scope::Target => &shared.targets,
    };
    let Some(Ok(mut scorer)) = slots.get(idx).map(Mutex::lock) else {
        return Assessment {
            score: 0.0,
            verdict: Verdict::Ok,
            change: None,
            reasons: Vec::new(),
        };
    };
    let a = f(&mut scorer);
    drop(scorer);
    let m = &shared.metrics;
    let labels = ScopeLabels {
        scope: scope.as_str().into(),
        name: name.into(),
    };
    m.score.get_or_create(&labels).set(f64::from(a.score));
    m.verdict
        .get_or_create(&labels)
        .set(verdict_level(a.verdict));
    if from_probe.is_some() {
        for r in &a.reasons {
            m.reasons
                .get_or_create(&ReasonLabels {
                    scope: scope.as_str().into(),
                    name: name.into(),
                    reason: r.cause.into(),
                })
                .inc();
        }
    }
    if let Some(change) = a.change {
        if scope == Scope::Server
            && let Some(health) = &shared.health
            && let Some(Some(kind)) = shared.kinds.get(idx)
        {
            let h = PodHealth::from_change(&change, a.reasons.iter().map(|r| r.cause).collect());
            health.send_modify(|s| match kind {
                ServerKind::Pod => {
                    s.pods.insert(name.to_string(), h);
                }
                ServerKind::ClusterIp => s.service = Some(h),
            });
        }
        m.verdict_changes
            .get_or_create(&ChangeLabels {
                scope: scope.as_str().into(),
                name: name.into(),
                to: change.to.name().into(),
            })
            .inc();
        let reasons: Vec<String> = a.reasons.iter().map(|r| r.text.clone()).collect();
        // Logged once per change, with its reasons (JSON lines with the default
        // `--log-format json`).
        tracing::warn!(
            event = "verdict_change",
            scope = scope.as_str(),
            name,
            from = change.from.name(),
            to = change.to.name(),
            score = f64::from(change.score),
            causes = %a.causes(),
            reasons = %reasons.join("; "),
            probe_server = from_probe.map(|p| p.0),
            probe_target = from_probe.map(|p| p.1),
            "verdict changed"
        );
        let _ = shared.events.send(Event::Verdict(VerdictChange {
            scope,
            name: name.into(),
            from: change.from,
            to: change.to,
            score: change.score,
            causes: a.reasons.iter().map(|r| r.cause).collect(),
            reasons,
            server: from_probe.map(|p| p.0.to_string()),
            target: from_probe.map(|p| p.1.to_string()),
            at,
        }));
    }
    a
}

/// Lets verdicts step down when probes stop arriving (the core's `evaluate`).
async fn evaluate_loop(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop_requested(&mut stop) => return,
        }
        let at = Instant::now();
        let now_us = micros(&shared, at);
        for (i, s) in shared.config.servers.iter().enumerate() {
            score(&shared, Scope::Server, i, &s.name, at, None, |sc| {
                sc.evaluate(now_us)
            });
        }
        for (i, t) in shared.config.targets.iter().enumerate() {
            score(&shared, Scope::Target, i, &t.name, at, None, |sc| {
                sc.evaluate(now_us)
            });
        }
    }
}

/// How long a pair's probe may take at most (both transports), for callers that wait.
pub fn max_probe_time(config: &Config) -> Duration {
    config.probe.timeout * 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::plan::{PlannedTarget, Server, Target};

    #[test]
    fn a_slow_probe_skips_ticks_on_the_pairs_own_grid() {
        let ms = Duration::from_millis;
        let t0 = Instant::now();
        // On time: the next tick.
        assert_eq!(next_tick(t0, ms(25), t0 + ms(3)), t0 + ms(25));
        // A probe that waited out a 100 ms timeout: the ticks it covered are skipped and
        // the phase stays (t0 + k * 25 ms), not restarted from the end of the probe.
        assert_eq!(next_tick(t0, ms(25), t0 + ms(103)), t0 + ms(125));
        assert_eq!(next_tick(t0, ms(25), t0 + ms(125)), t0 + ms(125));
        assert_eq!(next_tick(t0, ms(25), t0 + ms(126)), t0 + ms(150));
    }

    fn base() -> Base {
        let metrics = Arc::new(Metrics::new());
        Base {
            http: Arc::new(HttpState {
                metrics: metrics.clone(),
                ready: false.into(),
            }),
            metrics,
            events: broadcast::channel(16).0,
            start: Instant::now(),
            health: None,
        }
    }

    fn pod(name: &str, last: u8) -> Server {
        Server {
            name: name.into(),
            kind: ServerKind::Pod,
            addr: std::net::IpAddr::from([127, 0, 0, last]),
            port: 5353,
        }
    }

    fn plan(ips: &[u8], pods: &[&str], unready: &[&str]) -> ProbePlan {
        let expected = Expected::Addrs(
            ips.iter()
                .map(|l| std::net::IpAddr::from([10, 1, 0, *l]))
                .collect(),
        );
        ProbePlan {
            servers: pods.iter().map(|p| pod(p, 1)).collect(),
            unready: unready.iter().map(|p| pod(p, 2)).collect(),
            targets: vec![PlannedTarget {
                target: Target {
                    qname: "web.shop.svc.cluster.local".into(),
                    rtype: RecordType::A,
                    expected,
                    source: TargetSource::Service {
                        namespace: "shop".into(),
                        name: "web".into(),
                        kind: crate::kube::plan::ServiceTargetKind::ClusterIp,
                    },
                },
                expected_since_us: 0,
                grace: Duration::from_secs(1),
            }],
            cluster_domain: "cluster.local".into(),
        }
    }

    fn kube_config() -> Config {
        let mut c = Config::single(SocketAddr::from(([127, 0, 0, 1], 53)), Vec::new());
        c.servers.clear();
        c.kube = Some(crate::kube::KubeSettings::default());
        c
    }

    #[test]
    fn plans_become_servers_and_targets_with_unready_pods_only_when_healing() {
        let c = kube_config();
        let p = plan(&[1], &["coredns-a"], &["coredns-b"]);
        let g = Generation::with_plan(&c, &p, false);
        let names: Vec<&str> = g.config.servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["coredns-a"]);
        let g = Generation::with_plan(&c, &p, true);
        let names: Vec<&str> = g.config.servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["coredns-a", "coredns-b"]);
        assert_eq!(g.kinds, [Some(ServerKind::Pod), Some(ServerKind::Pod)]);
        let t = &g.config.targets[0];
        assert_eq!(t.name, "web.shop.svc.cluster.local/A");
        assert_eq!(t.namespace, "shop");
        assert_eq!(t.expect, ["10.1.0.1".to_string()].into());
        assert_eq!(
            g.config.servers[0].address,
            SocketAddr::from(([127, 0, 0, 1], 5353))
        );
    }

    /// Feeds `n` unanswered probes (a silent loopback socket) of every target to
    /// server `si`'s scorer, as `probe_and_score` does (stable keys).
    async fn time_out(shared: &Shared, si: usize, n: usize) {
        let silent = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let prober = Prober::new(false);
        for _ in 0..n {
            for (ti, t) in shared.config.targets.iter().enumerate() {
                let spec = ProbeSpec {
                    server: silent.local_addr().unwrap(),
                    qname: &t.qname,
                    qtype: t.qtype,
                    tcp: false,
                    timeout: Duration::from_millis(20),
                    edns_udp_size: 1232,
                };
                let res = prober.probe(&spec).await;
                assert!(!res.outcome.answered());
                let at_us = shared.start.elapsed().as_micros() as u64;
                let (sk, tk) = (shared.server_key(si), shared.target_key(ti));
                shared.servers[si]
                    .lock()
                    .unwrap()
                    .observe_probe(sk, tk, at_us, &res);
                shared.targets[ti]
                    .lock()
                    .unwrap()
                    .observe_probe(sk, tk, at_us, &res);
            }
        }
    }

    fn names(s: &Shared) -> Vec<&str> {
        s.config.servers.iter().map(|s| s.name.as_str()).collect()
    }

    fn observations(slots: &[Mutex<Scorer>]) -> Vec<u64> {
        slots
            .iter()
            .map(|m| m.lock().unwrap().observations())
            .collect()
    }

    fn verdicts(slots: &[Mutex<Scorer>]) -> Vec<Verdict> {
        slots.iter().map(|m| m.lock().unwrap().verdict()).collect()
    }

    #[tokio::test]
    async fn scorers_are_kept_by_identity_when_pods_come_and_go() {
        let c = kube_config();
        let mut b = base();
        let (health_tx, health_rx) = watch::channel(HealthSnapshot::default());
        b.health = Some(Arc::new(health_tx));
        let g1 = Generation::with_plan(&c, &plan(&[1], &["coredns-a", "coredns-b"], &[]), false);
        let s1 = Shared::new(g1, &b, 0).unwrap();
        time_out(&s1, 0, 5).await;
        let sick = verdicts(&s1.servers)[0];
        assert_ne!(sick, Verdict::Ok, "five timeouts make coredns-a unwell");
        assert_eq!(observations(&s1.servers), [5, 0]);
        assert_eq!(observations(&s1.targets), [5]);
        // A target's scorer is fed that one target only: one slot, not 64 (memory).
        let slots = |v: &[Mutex<Scorer>]| -> Vec<usize> {
            v.iter().map(|m| m.lock().unwrap().target_slots()).collect()
        };
        assert_eq!(slots(&s1.servers), [64, 64]);
        assert_eq!(slots(&s1.targets), [1]);
        let pod_health = |v: Verdict| PodHealth {
            verdict: v.into(),
            since_us: 7,
            reasons: vec!["loss"],
        };
        b.health.as_ref().unwrap().send_modify(|h| {
            h.pods.insert("coredns-a".into(), pod_health(sick));
            h.pods.insert("coredns-b".into(), pod_health(Verdict::Ok));
        });

        // coredns-c joins: a and b keep their scorers (verdict, history) and keys,
        // the target keeps its scorer; c starts fresh with the next key.
        let g2 = Generation::with_plan(
            &c,
            &plan(&[1], &["coredns-a", "coredns-b", "coredns-c"], &[]),
            false,
        );
        let s2 = Shared::with_scorers(g2, &b, 10, Some(s1)).unwrap();
        assert_eq!(names(&s2), ["coredns-a", "coredns-b", "coredns-c"]);
        assert_eq!(s2.keys.server, [0, 1, 2]);
        assert_eq!(observations(&s2.servers), [5, 0, 0]);
        assert_eq!(observations(&s2.targets), [5]);
        assert_eq!(verdicts(&s2.servers)[0], sick);
        assert_eq!(verdicts(&s2.servers)[2], Verdict::Ok);
        // The healer keeps the verdicts (and their `since`) of kept pods.
        assert_eq!(
            health_rx.borrow().pods.get("coredns-a"),
            Some(&pod_health(sick))
        );

        // coredns-b leaves and the target's expectation changes: a keeps everything,
        // b's key is free and b is forgotten by the healer; its gauges are removed.
        let g3 = Generation::with_plan(&c, &plan(&[1, 2], &["coredns-a", "coredns-c"], &[]), false);
        let s3 = Shared::with_scorers(g3, &b, 20, Some(s2)).unwrap();
        assert_eq!(s3.keys.server, [0, 2]);
        assert_eq!(observations(&s3.servers), [5, 0]);
        assert_eq!(observations(&s3.targets), [5]);
        assert_eq!(verdicts(&s3.servers)[0], sick);
        assert_eq!(
            health_rx.borrow().pods.keys().collect::<Vec<_>>(),
            ["coredns-a"]
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &b.metrics.registry).unwrap();
        assert!(text.contains("name=\"coredns-c\""), "{text}");
        assert!(!text.contains("name=\"coredns-b\""), "{text}");

        // coredns-d takes the free key; the kept scorers forgot what b left there.
        let g4 = Generation::with_plan(
            &c,
            &plan(&[1, 2], &["coredns-a", "coredns-c", "coredns-d"], &[]),
            false,
        );
        let s4 = Shared::with_scorers(g4, &b, 30, Some(s3)).unwrap();
        assert_eq!(s4.keys.server, [0, 2, 1]);
        assert_eq!(observations(&s4.servers), [5, 0, 0]);
        assert_eq!(verdicts(&s4.servers)[0], sick);
        time_out(&s4, 2, 1).await;
        assert_eq!(observations(&s4.servers), [5, 0, 1]);
        assert_eq!(observations(&s4.targets), [6]);

        // A new target: the server scorers stay, the target gets a fresh scorer.
        let mut p5 = plan(&[1, 2], &["coredns-a", "coredns-c", "coredns-d"], &[]);
        let mut extra = p5.targets[0].clone();
        extra.target.qname = "db.shop.svc.cluster.local".into();
        p5.targets.push(extra);
        let g5 = Generation::with_plan(&c, &p5, false);
        let s5 = Shared::with_scorers(g5, &b, 40, Some(s4)).unwrap();
        assert_eq!(s5.keys.target, [0, 1]);
        assert_eq!(observations(&s5.servers), [5, 0, 1]);
        assert_eq!(observations(&s5.targets), [6, 0]);
    }

    #[test]
    fn key_table_reuses_freed_keys_lowest_first() {
        let mut t = KeyTable::<&str>::default();
        assert_eq!(t.assign(&["a", "b", "c"]), (vec![0, 1, 2], vec![]));
        assert_eq!(t.assign(&["c", "a"]), (vec![2, 0], vec![1]));
        // a's key is freed and given out again in the same plan change (the kept
        // scorers forget it first).
        assert_eq!(t.assign(&["d", "c", "e"]), (vec![0, 2, 1], vec![0]));
        assert_eq!(t.names(|s| s), ["d", "e", "c"]);
        assert_eq!(t.assign(&[]), (vec![], vec![0, 1, 2]));
        assert_eq!(t.names(|s| s), ["", "", ""]);
    }
}
