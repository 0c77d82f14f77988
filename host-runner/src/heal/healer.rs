//! The healer loop: gather the view, verify what is in flight, decide, act (enforce
//! only), audit.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::runtime::reflector::Store;
use tokio::sync::watch;

use super::actions::{ActionError, EventSpec, KubeActions, Regarding, http_ok};
use super::audit::{AuditRecord, HealMetrics};
use super::decide::{
    Action, ClusterView, Decision, GuardState, HealthEndpoints, Planned, PodHealth, PodView,
    Policy, Refusal, Verdict, Verification, decide, verify,
};
use super::lease::LeaderElector;

/// Healer settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealConfig {
    /// Decision policy and guardrails.
    pub policy: Policy,
    /// CoreDNS namespace (where pods are evicted and Events written).
    pub namespace: String,
    /// This replica's identity (pod name), for Events and the Lease.
    pub identity: String,
    /// Probe each pod's `:8181/ready` and `:8080/health` (only in a cluster).
    pub probe_endpoints: bool,
    /// Port of CoreDNS' `ready` plugin (default 8181).
    pub ready_port: u16,
    /// Port of CoreDNS' `health` plugin (default 8080).
    pub health_port: u16,
    /// Time between decisions (default 5 s).
    pub interval: Duration,
    /// Timeout of each API request (default 5 s).
    pub request_timeout: Duration,
}

impl HealConfig {
    /// Defaults (dry-run) for a CoreDNS namespace and identity.
    pub fn new(namespace: impl Into<String>, identity: impl Into<String>) -> HealConfig {
        HealConfig {
            policy: Policy::default(),
            namespace: namespace.into(),
            identity: identity.into(),
            probe_endpoints: false,
            ready_port: 8181,
            health_port: 8080,
            interval: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// The scorer's current view of the CoreDNS servers, keyed by pod name (the
/// [`crate::kube::Server::name`] of pod servers). The runner publishes it on a watch channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HealthSnapshot {
    /// Per pod.
    pub pods: BTreeMap<String, PodHealth>,
    /// The kube-dns ClusterIP.
    pub service: Option<PodHealth>,
}

/// What one [`Healer::step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// Verification of an earlier action, if it concluded in this step.
    pub verified: Option<(Planned, Verification)>,
    /// The decision.
    pub decision: Decision,
    /// The result label (`success`, `failed`, `dry_run`, ...), `None` for no action.
    pub result: Option<&'static str>,
    /// Whether an audit record was written (repeats of the same refusal are not).
    pub audited: bool,
}

/// The healer. Drive it with [`run_healer`], or call [`Healer::view`] and
/// [`Healer::step`] yourself.
#[derive(Debug)]
pub struct Healer {
    cfg: HealConfig,
    guard: GuardState,
    actions: KubeActions,
    metrics: HealMetrics,
    last_audit: Option<(&'static str, &'static str, String)>,
    /// Per pod: its restart count when its DNS verdict was last not critical (or when
    /// it was first seen); restarts beyond it are [`PodView::new_restarts`].
    restart_base: BTreeMap<String, u32>,
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn pod_restarts(pod: &Pod) -> u32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .map_or(0, |cs| {
            cs.iter()
                .map(|c| u32::try_from(c.restart_count).unwrap_or(0))
                .sum()
        })
}

impl Healer {
    /// A healer; `metrics` should be registered with the runner's registry.
    pub fn new(client: Client, cfg: HealConfig, metrics: HealMetrics) -> Healer {
        let actions = KubeActions::new(
            client,
            cfg.namespace.clone(),
            cfg.identity.clone(),
            cfg.request_timeout,
        );
        Healer {
            cfg,
            guard: GuardState::default(),
            actions,
            metrics,
            last_audit: None,
            restart_base: BTreeMap::new(),
        }
    }

    /// The guardrail state.
    pub fn guard(&self) -> &GuardState {
        &self.guard
    }

    /// The metrics.
    pub fn metrics(&self) -> &HealMetrics {
        &self.metrics
    }

    /// Builds the view from the pod store, the scorer snapshot and the API status.
    /// Resolves each pod's Deployment (cached ReplicaSet GETs); a failed lookup marks
    /// the API unreachable.
    pub async fn view(
        &mut self,
        pods: &[Arc<Pod>],
        health: &HealthSnapshot,
        api_ok: bool,
        is_leader: bool,
    ) -> ClusterView {
        let mut api_reachable = api_ok;
        let mut out = Vec::with_capacity(pods.len());
        let mut seen = Vec::with_capacity(pods.len());
        let mut sorted: Vec<&Arc<Pod>> = pods.iter().collect();
        sorted.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        for pod in sorted {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let deployment = match self.actions.deployment_of(pod).await {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!(pod = %name, error = %e, "cannot resolve the owning Deployment");
                    api_reachable = false;
                    None
                }
            };
            let endpoints = match pod
                .status
                .as_ref()
                .and_then(|s| s.pod_ip.as_deref())
                .and_then(|ip| ip.parse::<IpAddr>().ok())
            {
                Some(ip) if self.cfg.probe_endpoints => {
                    let t = Duration::from_secs(1);
                    let ready = SocketAddr::new(ip, self.cfg.ready_port);
                    let live = SocketAddr::new(ip, self.cfg.health_port);
                    HealthEndpoints {
                        ready: Some(http_ok(ready, "/ready", t).await),
                        health: Some(http_ok(live, "/health", t).await),
                    }
                }
                _ => HealthEndpoints::default(),
            };
            let dns = health.pods.get(&name).cloned();
            let restarts = pod_restarts(pod);
            let critical = dns.as_ref().is_some_and(|h| h.verdict == Verdict::Critical);
            let base = self.restart_base.entry(name.clone()).or_insert(restarts);
            if !critical || restarts < *base {
                *base = restarts;
            }
            let new_restarts = restarts - *base;
            seen.push(name.clone());
            out.push(PodView {
                dns,
                ready: pod_ready(pod),
                restarts,
                new_restarts,
                terminating: pod.metadata.deletion_timestamp.is_some(),
                deployment,
                endpoints,
                name,
            });
        }
        self.restart_base.retain(|name, _| seen.contains(name));
        ClusterView {
            api_reachable,
            is_leader,
            pods: out,
            service: health.service.clone(),
        }
    }

    /// One step at `now_us` (the clock of [`PodHealth::since_us`]) and wall time
    /// `wall` (for the restart annotation and Events).
    pub async fn step(&mut self, now_us: u64, wall: Timestamp, view: &ClusterView) -> StepReport {
        let mut verified = None;
        if let Some(f) = self.guard.in_flight.clone()
            && let Some(v) = verify(&f, now_us, view, &self.cfg.policy)
        {
            self.guard.in_flight = None;
            let secs = now_us.saturating_sub(f.started_us) as f64 / 1e6;
            self.metrics
                .duration
                .get_or_create(&super::audit::DurationLabels {
                    action: f.action.label(),
                })
                .observe(secs);
            let result = match v {
                Verification::Recovered => "recovered",
                Verification::NotRecovered => "not_recovered",
            };
            let mut decision = decide(now_us, view, &self.cfg.policy, &self.guard);
            decision.evidence.reason = format!(
                "{} {}: {result} after {secs:.1} s",
                f.action.label(),
                f.action.target()
            );
            let decision = Decision {
                action: action_of(&f.action),
                evidence: decision.evidence,
            };
            self.audit(
                &decision,
                f.action.label(),
                result,
                None,
                Some(&f.action),
                v == Verification::NotRecovered,
                view.is_leader,
                wall,
            )
            .await;
            verified = Some((f.action, v));
        }
        let decision = decide(now_us, view, &self.cfg.policy, &self.guard);
        let (result, error) = if let Some(planned) = decision.action.planned() {
            let before: Vec<String> = view
                .pods
                .iter()
                .filter(|p| !p.terminating)
                .map(|p| p.name.clone())
                .collect();
            self.guard.record(planned.clone(), now_us, before);
            let res = match &planned {
                Planned::EvictPod(pod) => self.actions.evict(pod).await,
                Planned::RolloutRestart(d) => self.actions.rollout_restart(d, wall).await,
            };
            match res {
                Ok(()) => ("success", None),
                Err(e) => {
                    // Nothing to verify; the attempt still counts for cool-down and budget.
                    self.guard.in_flight = None;
                    (e.kind(), Some(e))
                }
            }
        } else {
            match &decision.action {
                Action::ReportLocalProblem => ("reported", None),
                Action::Refuse(r) => (r.label(), None),
                _ => {
                    self.last_audit = None;
                    return StepReport {
                        verified,
                        decision,
                        result: None,
                        audited: false,
                    };
                }
            }
        };
        let taken = decision.action.planned();
        let key = (
            decision.action.label(),
            result,
            target_of(&decision.action).unwrap_or_default().to_owned(),
        );
        let audited = taken.is_some() || self.last_audit.as_ref() != Some(&key);
        if audited {
            let warning = error.is_some()
                || matches!(
                    decision.action,
                    Action::ReportLocalProblem | Action::Refuse(_)
                );
            self.audit(
                &decision,
                decision.action.label(),
                result,
                error.as_ref(),
                None,
                warning,
                view.is_leader,
                wall,
            )
            .await;
        }
        self.last_audit = Some(key);
        StepReport {
            verified,
            decision,
            result: Some(result),
            audited,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn audit(
        &self,
        decision: &Decision,
        action: &'static str,
        result: &'static str,
        error: Option<&ActionError>,
        about: Option<&Planned>,
        warning: bool,
        leader: bool,
        wall: Timestamp,
    ) {
        let record = AuditRecord {
            mode: self.cfg.policy.mode,
            leader,
            action,
            result,
            decision,
            error: error.map(ToString::to_string),
        };
        record.log();
        self.metrics.count(action, result);
        // Events go on the pod or Deployment concerned; a refusal because the API is
        // unreachable or a local problem has no object (and maybe no API) to write to.
        let regarding = match about {
            Some(p) => Some(regarding_of(p)),
            None => match &decision.action {
                Action::EvictPod { pod } => Some(Regarding::Pod(pod)),
                Action::RolloutRestart { deployment } => Some(Regarding::Deployment(deployment)),
                Action::Refuse(Refusal::KubernetesDisagrees { pod }) => Some(Regarding::Pod(pod)),
                // Followers leave the Event to the leader (one Event per decision, not
                // one per replica); their refusal is still logged and counted.
                Action::Refuse(Refusal::NotLeader { .. }) => None,
                Action::Refuse(r) => r.would().map(regarding_of),
                _ => None,
            },
        };
        let Some(regarding) = regarding else { return };
        let reason = match result {
            "success" => "Taken",
            "recovered" => "Recovered",
            "not_recovered" => "NotRecovered",
            "failed" | "api_error" | "timeout" | "blocked_by_pdb" => "Failed",
            _ => "Refused",
        };
        let action_name = match action {
            "evict_pod" => "EvictPod",
            "rollout_restart" => "RolloutRestart",
            _ => "None",
        };
        let note = format!(
            "dnswarden self-heal ({} mode): {} [{result}]",
            self.cfg.policy.mode.as_str(),
            decision.evidence.reason
        );
        let spec = EventSpec {
            action: action_name,
            reason,
            note: &note,
            warning,
        };
        if let Err(e) = self.actions.event(regarding, spec, wall).await {
            tracing::warn!(error = %e, "cannot write the audit Event");
        }
    }
}

fn action_of(p: &Planned) -> Action {
    match p {
        Planned::EvictPod(pod) => Action::EvictPod { pod: pod.clone() },
        Planned::RolloutRestart(d) => Action::RolloutRestart {
            deployment: d.clone(),
        },
    }
}

fn regarding_of(p: &Planned) -> Regarding<'_> {
    match p {
        Planned::EvictPod(n) => Regarding::Pod(n),
        Planned::RolloutRestart(n) => Regarding::Deployment(n),
    }
}

fn target_of(a: &Action) -> Option<&str> {
    match a {
        Action::EvictPod { pod } => Some(pod),
        Action::RolloutRestart { deployment } => Some(deployment),
        Action::Refuse(Refusal::KubernetesDisagrees { pod }) => Some(pod),
        Action::Refuse(r) => r.would().map(Planned::target),
        _ => None,
    }
}

/// Runs the healer every `interval` until `shutdown`: leader election (if an elector
/// is given; without one this replica is the only one), view, step. `clock` returns
/// the runner's microsecond clock, the one [`PodHealth::since_us`] uses. On shutdown
/// the Lease is released so another replica takes over at once.
pub async fn run_healer(
    mut healer: Healer,
    pods: Store<Pod>,
    health: watch::Receiver<HealthSnapshot>,
    api_ok: watch::Receiver<bool>,
    mut elector: Option<LeaderElector>,
    clock: impl Fn() -> u64 + Send,
    shutdown: impl Future<Output = ()> + Send,
) {
    if healer.cfg.policy.mode == super::decide::Mode::Off {
        shutdown.await;
        return;
    }
    let mut tick = tokio::time::interval(healer.cfg.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let shutdown = shutdown.fuse();
    futures::pin_mut!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = tick.tick() => {}
        }
        let leader = match elector.as_mut() {
            Some(e) => e
                .tick(Timestamp::now())
                .await
                .is_ok_and(|r| r == super::lease::Role::Leader),
            None => true,
        };
        let snapshot = health.borrow().clone();
        let ok = *api_ok.borrow();
        let view = healer.view(&pods.state(), &snapshot, ok, leader).await;
        healer.step(clock(), Timestamp::now(), &view).await;
    }
    if let Some(e) = elector.as_mut()
        && let Err(err) = e.release(Timestamp::now()).await
    {
        tracing::warn!(error = %err, "cannot release the leader Lease");
    }
}
