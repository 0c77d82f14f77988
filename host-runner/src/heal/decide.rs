//! The pure healing decision: evidence and guardrail state in, one [`Decision`] out.
//! No clock, no I/O: the caller passes `now_us`.

use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;

/// Healing mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Never decide anything.
    Off,
    /// Decide and audit, never act (the default).
    #[default]
    DryRun,
    /// Act.
    Enforce,
}

impl Mode {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::DryRun => "dry-run",
            Mode::Enforce => "enforce",
        }
    }

    /// Parses `off`, `dry-run`, `enforce`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "off" => Some(Mode::Off),
            "dry-run" | "dryrun" | "dry_run" => Some(Mode::DryRun),
            "enforce" => Some(Mode::Enforce),
            _ => None,
        }
    }
}

/// The scorer's verdict on one server (maps 1:1 from the core/runner verdict).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Healthy.
    Ok,
    /// Something is off.
    Degraded,
    /// Broken.
    Critical,
}

impl From<dnswarden_core::score::Verdict> for Verdict {
    fn from(v: dnswarden_core::score::Verdict) -> Self {
        match v {
            dnswarden_core::score::Verdict::Ok => Verdict::Ok,
            dnswarden_core::score::Verdict::Degraded => Verdict::Degraded,
            dnswarden_core::score::Verdict::Critical => Verdict::Critical,
        }
    }
}

/// What the DNS scorer says about one CoreDNS pod (or the ClusterIP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodHealth {
    /// Current verdict.
    pub verdict: Verdict,
    /// Since when (runner clock, µs) the verdict has been this value.
    pub since_us: u64,
    /// Bounded reason labels (e.g. `servfail`, `loss`).
    pub reasons: Vec<&'static str>,
}

impl PodHealth {
    /// The health after a core verdict change (`since_us` = the change time).
    pub fn from_change(
        change: &dnswarden_core::score::VerdictChange,
        reasons: Vec<&'static str>,
    ) -> PodHealth {
        PodHealth {
            verdict: change.to.into(),
            since_us: change.at_us,
            reasons,
        }
    }
}

/// Results of the pod's own health endpoints (in-cluster only); `None` = not probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct HealthEndpoints {
    /// `:8181/ready` answered 200.
    pub ready: Option<bool>,
    /// `:8080/health` answered 200.
    pub health: Option<bool>,
}

impl HealthEndpoints {
    /// Whether any probed endpoint failed.
    pub fn any_failed(&self) -> bool {
        self.ready == Some(false) || self.health == Some(false)
    }
}

/// One CoreDNS pod as the healer sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodView {
    /// Pod name.
    pub name: String,
    /// Kubernetes readiness (the `Ready` condition).
    pub ready: bool,
    /// Sum of container restart counts.
    pub restarts: u32,
    /// Restarts since the pod's DNS verdict was last not critical (the healer keeps the
    /// baseline): Kubernetes noticing the trouble too. Restarts from before the DNS
    /// trouble began are not evidence about it.
    pub new_restarts: u32,
    /// Has a deletionTimestamp (already going away).
    pub terminating: bool,
    /// The Deployment owning it (Pod → ReplicaSet → Deployment), if found.
    pub deployment: Option<String>,
    /// The DNS verdict from probing this pod directly; `None` = not probed yet.
    pub dns: Option<PodHealth>,
    /// The pod's own health endpoints.
    pub endpoints: HealthEndpoints,
}

/// Everything the decision looks at, gathered by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterView {
    /// The last API request succeeded (the pod list is fresh).
    pub api_reachable: bool,
    /// This replica holds the leader Lease.
    pub is_leader: bool,
    /// The CoreDNS pods.
    pub pods: Vec<PodView>,
    /// The verdict on the kube-dns ClusterIP, if probed.
    pub service: Option<PodHealth>,
}

/// Guardrail settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// Mode.
    pub mode: Mode,
    /// Minimum time between two actions (default 5 min).
    pub cooldown: Duration,
    /// Maximum actions per rolling hour (default 3).
    pub hourly_budget: u32,
    /// Healthy pods that must remain besides the one evicted (default 1).
    pub min_healthy: usize,
    /// How long a pod must stay critical before it counts as sick (default 30 s).
    pub sick_for: Duration,
    /// How long to wait for recovery after acting (default 3 min).
    pub verify_timeout: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            mode: Mode::DryRun,
            cooldown: Duration::from_secs(300),
            hourly_budget: 3,
            min_healthy: 1,
            sick_for: Duration::from_secs(30),
            verify_timeout: Duration::from_secs(180),
        }
    }
}

/// A cluster action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "target", rename_all = "snake_case")]
pub enum Planned {
    /// Evict this pod through the Eviction API.
    EvictPod(String),
    /// Rollout-restart this Deployment.
    RolloutRestart(String),
}

impl Planned {
    /// Bounded metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Planned::EvictPod(_) => "evict_pod",
            Planned::RolloutRestart(_) => "rollout_restart",
        }
    }
    /// The object acted on.
    pub fn target(&self) -> &str {
        match self {
            Planned::EvictPod(n) | Planned::RolloutRestart(n) => n,
        }
    }
}

/// Why an action was not taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
pub enum Refusal {
    /// Dry-run: this is what enforce mode would have done.
    DryRun {
        /// The action.
        would: Planned,
    },
    /// Another replica holds the Lease.
    NotLeader {
        /// The action.
        would: Planned,
    },
    /// The Kubernetes API is unreachable; the view may be stale.
    ApiUnreachable,
    /// An earlier action is still being verified.
    InFlight {
        /// The action.
        would: Planned,
        /// The action in flight.
        in_flight: Planned,
    },
    /// The cool-down since the last action has not elapsed.
    CoolDown {
        /// The action.
        would: Planned,
        /// Seconds left.
        remaining_s: u64,
    },
    /// The hourly budget is used up.
    BudgetExhausted {
        /// The action.
        would: Planned,
        /// Actions in the last hour.
        used: u32,
    },
    /// Acting would leave fewer healthy pods than the minimum.
    BelowMinHealthy {
        /// The action.
        would: Planned,
        /// Healthy pods that would remain.
        healthy: usize,
        /// The minimum.
        min: usize,
    },
    /// The DNS verdict says critical but Kubernetes and the pod's health endpoints say
    /// fine: not enough agreement to act.
    KubernetesDisagrees {
        /// The pod.
        pod: String,
    },
    /// Every pod is sick but no single owning Deployment was found.
    NoOwningDeployment,
}

impl Refusal {
    /// Bounded label.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::DryRun { .. } => "dry_run",
            Refusal::NotLeader { .. } => "not_leader",
            Refusal::ApiUnreachable => "api_unreachable",
            Refusal::InFlight { .. } => "in_flight",
            Refusal::CoolDown { .. } => "cooldown",
            Refusal::BudgetExhausted { .. } => "budget_exhausted",
            Refusal::BelowMinHealthy { .. } => "below_min_healthy",
            Refusal::KubernetesDisagrees { .. } => "kubernetes_disagrees",
            Refusal::NoOwningDeployment => "no_owning_deployment",
        }
    }
    /// The action that was refused, if there was one.
    pub fn would(&self) -> Option<&Planned> {
        match self {
            Refusal::DryRun { would }
            | Refusal::NotLeader { would }
            | Refusal::InFlight { would, .. }
            | Refusal::CoolDown { would, .. }
            | Refusal::BudgetExhausted { would, .. }
            | Refusal::BelowMinHealthy { would, .. } => Some(would),
            _ => None,
        }
    }
}

/// What to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    /// Nothing to do.
    None,
    /// Evict this pod.
    EvictPod {
        /// Pod name.
        pod: String,
    },
    /// Rollout-restart this Deployment.
    RolloutRestart {
        /// Deployment name.
        deployment: String,
    },
    /// Every server fails from here while Kubernetes says CoreDNS is fine: the
    /// problem is this runner's network. Reported, never acted on.
    ReportLocalProblem,
    /// An action was wanted and refused.
    Refuse(Refusal),
}

impl Action {
    /// Bounded metric label of the action (or of the refused action).
    pub fn label(&self) -> &'static str {
        match self {
            Action::None => "none",
            Action::EvictPod { .. } => "evict_pod",
            Action::RolloutRestart { .. } => "rollout_restart",
            Action::ReportLocalProblem => "local_problem",
            Action::Refuse(r) => r.would().map_or("none", Planned::label),
        }
    }
    /// The cluster action, if this decision takes one.
    pub fn planned(&self) -> Option<Planned> {
        match self {
            Action::EvictPod { pod } => Some(Planned::EvictPod(pod.clone())),
            Action::RolloutRestart { deployment } => {
                Some(Planned::RolloutRestart(deployment.clone()))
            }
            _ => None,
        }
    }
}

/// One pod's part of the evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PodEvidence {
    /// Pod name.
    pub pod: String,
    /// Kubernetes readiness.
    pub ready: bool,
    /// Restart count.
    pub restarts: u32,
    /// Restarts since the DNS verdict was last not critical.
    pub new_restarts: u32,
    /// DNS verdict.
    pub verdict: Option<Verdict>,
    /// How long the verdict has been critical (ms), if it is.
    pub critical_for_ms: Option<u64>,
    /// DNS reasons.
    pub reasons: Vec<&'static str>,
    /// Health endpoints.
    pub endpoints: HealthEndpoints,
    /// Persistently critical by DNS.
    pub dns_sick: bool,
    /// Kubernetes calls it fine: Ready, and no new restarts.
    pub kubernetes_fine: bool,
    /// Kubernetes (not Ready, or new restarts) or the health endpoints agree that it
    /// is unwell.
    pub kubernetes_agrees: bool,
    /// Counted as healthy.
    pub healthy: bool,
}

/// Why the decision is what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    /// One-line reason.
    pub reason: String,
    /// Per pod.
    pub pods: Vec<PodEvidence>,
    /// The kube-dns ClusterIP verdict.
    pub service: Option<Verdict>,
    /// Healthy pods.
    pub healthy: usize,
    /// Sick pods (DNS and Kubernetes agree).
    pub sick: usize,
    /// Actions in the last hour.
    pub actions_last_hour: u32,
}

/// A decision: the action (or refusal) and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// What to do.
    pub action: Action,
    /// Why.
    pub evidence: Evidence,
}

/// An action being verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InFlight {
    /// The action.
    pub action: Planned,
    /// When it started (µs).
    pub started_us: u64,
    /// Pod names at the time of acting (a restart is done when all are gone).
    pub pods_before: Vec<String>,
}

/// Guardrail memory: the action in flight and the start times of recent actions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GuardState {
    /// The action being verified.
    pub in_flight: Option<InFlight>,
    /// Start times (µs) of actions in the last hour, oldest first.
    pub recent_us: VecDeque<u64>,
}

const HOUR_US: u64 = 3_600_000_000;

impl GuardState {
    /// Actions started in the hour before `now_us`.
    pub fn actions_in_last_hour(&self, now_us: u64) -> u32 {
        self.recent_us
            .iter()
            .filter(|&&t| now_us.saturating_sub(t) < HOUR_US)
            .count() as u32
    }
    /// Records that `action` was taken at `now_us`.
    pub fn record(&mut self, action: Planned, now_us: u64, pods_before: Vec<String>) {
        while self
            .recent_us
            .front()
            .is_some_and(|&t| now_us.saturating_sub(t) >= HOUR_US)
        {
            self.recent_us.pop_front();
        }
        self.recent_us.push_back(now_us);
        self.in_flight = Some(InFlight {
            action,
            started_us: now_us,
            pods_before,
        });
    }
    /// The last action's start.
    pub fn last_action_us(&self) -> Option<u64> {
        self.recent_us.back().copied()
    }
}

/// Reason labels that say answers did not come back (or came back late): what a
/// runner cut off from the pods sees. Any other reason means a pod answered (with
/// SERVFAIL, NXDOMAIN, a wrong set...), so the path from here works.
pub const UNANSWERED_REASONS: &[&str] = &[
    "consecutive_timeouts",
    "loss_rate",
    "rtt_spike",
    "tcp_fallback_failed",
];

fn us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn pod_evidence(p: &PodView, now_us: u64, policy: &Policy) -> PodEvidence {
    let critical_for = p
        .dns
        .as_ref()
        .filter(|h| h.verdict == Verdict::Critical)
        .map(|h| now_us.saturating_sub(h.since_us));
    let dns_sick = !p.terminating && critical_for.is_some_and(|d| d >= us(policy.sick_for));
    let kubernetes_fine = p.ready && p.new_restarts == 0;
    let kubernetes_agrees = !kubernetes_fine || p.endpoints.any_failed();
    let healthy = !p.terminating
        && p.ready
        && !p.endpoints.any_failed()
        && p.dns
            .as_ref()
            .is_none_or(|h| h.verdict != Verdict::Critical);
    PodEvidence {
        pod: p.name.clone(),
        ready: p.ready,
        restarts: p.restarts,
        new_restarts: p.new_restarts,
        verdict: p.dns.as_ref().map(|h| h.verdict),
        critical_for_ms: critical_for.map(|d| d / 1000),
        reasons: p
            .dns
            .as_ref()
            .map(|h| h.reasons.clone())
            .unwrap_or_default(),
        endpoints: p.endpoints,
        dns_sick,
        kubernetes_fine,
        kubernetes_agrees,
        healthy,
    }
}

/// The decision. Rules, in order:
///
/// 1. mode `off` → nothing.
/// 2. Every (non-terminating) pod persistently critical by DNS for lack of answers
///    (only [`UNANSWERED_REASONS`]), the ClusterIP failing too (or not probed), while
///    Kubernetes says every pod is Ready with no new restarts →
///    [`Action::ReportLocalProblem`]. The runner's own probes of the pods'
///    health endpoints do not change this: when every DNS probe fails from here,
///    failing endpoint probes from here are the same cut-off, and the kubelet, which
///    probes the same endpoints from the node, is the witness that counts.
/// 3. Every pod sick (DNS critical for `sick_for` AND not Ready, new restarts, or a
///    health endpoint failing) → rollout-restart their common Deployment. With one
///    replica in total this is the only way out (the surge brings the new pod up
///    before the old one goes); with more, it needs every one of them sick.
/// 4. Some pods sick while others are not → evict the one sick longest, a lone sick
///    replica included (never a restart while another pod is not sick).
/// 5. A pod critical by DNS that Kubernetes calls fine → refuse (`kubernetes_disagrees`).
///
/// A wanted action then passes the guardrails, each one a [`Refusal`]: API
/// reachable, leader, nothing in flight, cool-down, hourly budget, healthy minimum
/// (for evictions: healthy pods other than the target), and finally dry-run.
pub fn decide(now_us: u64, view: &ClusterView, policy: &Policy, guard: &GuardState) -> Decision {
    let pods: Vec<PodEvidence> = view
        .pods
        .iter()
        .map(|p| pod_evidence(p, now_us, policy))
        .collect();
    let live: Vec<&PodEvidence> = view
        .pods
        .iter()
        .zip(&pods)
        .filter(|(p, _)| !p.terminating)
        .map(|(_, e)| e)
        .collect();
    let healthy = pods.iter().filter(|e| e.healthy).count();
    let sick: Vec<&PodEvidence> = live
        .iter()
        .copied()
        .filter(|e| e.dns_sick && e.kubernetes_agrees)
        .collect();
    let used = guard.actions_in_last_hour(now_us);
    let mut evidence = Evidence {
        reason: String::new(),
        pods: pods.clone(),
        service: view.service.as_ref().map(|h| h.verdict),
        healthy,
        sick: sick.len(),
        actions_last_hour: used,
    };
    let done = |action, reason: String, mut evidence: Evidence| {
        evidence.reason = reason;
        Decision { action, evidence }
    };
    if policy.mode == Mode::Off {
        return done(Action::None, "healing is off".into(), evidence);
    }
    if live.is_empty() {
        return done(Action::None, "no CoreDNS pods".into(), evidence);
    }
    let all_dns_sick = live.iter().all(|e| e.dns_sick);
    let kubernetes_all_fine = live.iter().all(|e| e.kubernetes_fine);
    let none_answers = live
        .iter()
        .all(|e| e.reasons.iter().all(|r| UNANSWERED_REASONS.contains(r)));
    let service_fails = view
        .service
        .as_ref()
        .is_none_or(|h| h.verdict == Verdict::Critical);
    let wanted = if all_dns_sick && kubernetes_all_fine && service_fails && none_answers {
        let endpoints = if live.iter().any(|e| e.endpoints.any_failed()) {
            "their health endpoints fail from here too, "
        } else {
            ""
        };
        let reason = format!(
            "every CoreDNS pod fails from here, {endpoints}while Kubernetes says every pod is Ready with no new restarts: local problem"
        );
        return done(Action::ReportLocalProblem, reason, evidence);
    } else if sick.len() == live.len() {
        // Every live pod is sick (with a single replica, that one): only a rollout
        // restart helps, and the Deployment's surge brings a new pod up before an
        // old one goes. A lone sick replica next to others is evicted below.
        let mut owners = view
            .pods
            .iter()
            .filter(|p| !p.terminating)
            .map(|p| p.deployment.as_ref());
        match owners.next() {
            Some(Some(d)) if owners.all(|o| o == Some(d)) => {
                evidence.reason = format!(
                    "all {} CoreDNS pods are sick and Kubernetes agrees",
                    live.len()
                );
                Planned::RolloutRestart(d.clone())
            }
            _ => {
                return done(
                    Action::Refuse(Refusal::NoOwningDeployment),
                    "all CoreDNS pods are sick but they have no single owning Deployment".into(),
                    evidence,
                );
            }
        }
    } else if let Some(worst) = sick
        .iter()
        .max_by_key(|e| (e.critical_for_ms, std::cmp::Reverse(e.pod.clone())))
    {
        evidence.reason = format!(
            "pod {} has been critical for {} ms and Kubernetes agrees",
            worst.pod,
            worst.critical_for_ms.unwrap_or(0)
        );
        Planned::EvictPod(worst.pod.clone())
    } else if let Some(p) = live.iter().find(|e| e.dns_sick) {
        let reason = format!(
            "pod {} is critical by DNS but Ready with no new restarts, and its health endpoints do not fail",
            p.pod
        );
        return done(
            Action::Refuse(Refusal::KubernetesDisagrees { pod: p.pod.clone() }),
            reason,
            evidence,
        );
    } else {
        return done(Action::None, "no pod is persistently sick".into(), evidence);
    };
    let reason = evidence.reason.clone();
    let refuse = |r: Refusal, why: &str, ev: Evidence| {
        done(Action::Refuse(r), format!("{reason}; refused: {why}"), ev)
    };
    if !view.api_reachable {
        return refuse(
            Refusal::ApiUnreachable,
            "the Kubernetes API is unreachable",
            evidence,
        );
    }
    if !view.is_leader {
        return refuse(
            Refusal::NotLeader { would: wanted },
            "another replica is the leader",
            evidence,
        );
    }
    if let Some(f) = &guard.in_flight {
        return refuse(
            Refusal::InFlight {
                would: wanted,
                in_flight: f.action.clone(),
            },
            "an earlier action is still being verified",
            evidence,
        );
    }
    if let Some(last) = guard.last_action_us() {
        let since = now_us.saturating_sub(last);
        if since < us(policy.cooldown) {
            let remaining_s = (us(policy.cooldown) - since).div_ceil(1_000_000);
            return refuse(
                Refusal::CoolDown {
                    would: wanted,
                    remaining_s,
                },
                "cool-down",
                evidence,
            );
        }
    }
    if used >= policy.hourly_budget {
        return refuse(
            Refusal::BudgetExhausted {
                would: wanted,
                used,
            },
            "hourly budget used up",
            evidence,
        );
    }
    if let Planned::EvictPod(target) = &wanted {
        let remaining = pods
            .iter()
            .filter(|e| e.healthy && &e.pod != target)
            .count();
        if remaining < policy.min_healthy {
            let min = policy.min_healthy;
            return refuse(
                Refusal::BelowMinHealthy {
                    would: wanted,
                    healthy: remaining,
                    min,
                },
                "too few healthy pods would remain",
                evidence,
            );
        }
    }
    if policy.mode == Mode::DryRun {
        return refuse(Refusal::DryRun { would: wanted }, "dry-run", evidence);
    }
    let action = match wanted {
        Planned::EvictPod(pod) => Action::EvictPod { pod },
        Planned::RolloutRestart(deployment) => Action::RolloutRestart { deployment },
    };
    done(action, reason, evidence)
}

/// The outcome of verifying an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    /// The cluster recovered.
    Recovered,
    /// `verify_timeout` passed without recovery.
    NotRecovered,
}

/// Checks an in-flight action: `None` while waiting. Recovered means the acted-on
/// pods are gone (the evicted pod; for a restart, every pod from before), every
/// remaining pod is ready and none is critical by DNS.
pub fn verify(
    in_flight: &InFlight,
    now_us: u64,
    view: &ClusterView,
    policy: &Policy,
) -> Option<Verification> {
    let replaced = match &in_flight.action {
        Planned::EvictPod(pod) => view.pods.iter().all(|p| &p.name != pod || p.terminating),
        Planned::RolloutRestart(_) => view
            .pods
            .iter()
            .all(|p| !in_flight.pods_before.contains(&p.name) || p.terminating),
    };
    let live: Vec<&PodView> = view.pods.iter().filter(|p| !p.terminating).collect();
    let fine = !live.is_empty()
        && live.iter().all(|p| {
            p.ready
                && !p.endpoints.any_failed()
                && p.dns
                    .as_ref()
                    .is_none_or(|h| h.verdict != Verdict::Critical)
        });
    if view.api_reachable && replaced && fine {
        Some(Verification::Recovered)
    } else if now_us.saturating_sub(in_flight.started_us) >= us(policy.verify_timeout) {
        Some(Verification::NotRecovered)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 10_000_000_000;

    /// A pod: DNS critical for 60 s when `dns_sick`, else ok.
    fn pod(name: &str, ready: bool, dns_sick: bool) -> PodView {
        PodView {
            name: name.into(),
            ready,
            restarts: 3,
            new_restarts: 0,
            terminating: false,
            deployment: Some("coredns".into()),
            dns: Some(PodHealth {
                verdict: if dns_sick {
                    Verdict::Critical
                } else {
                    Verdict::Ok
                },
                since_us: NOW - 60_000_000,
                reasons: vec![if dns_sick { "loss_rate" } else { "none" }],
            }),
            endpoints: HealthEndpoints::default(),
        }
    }

    fn view(pods: Vec<PodView>, service: Verdict) -> ClusterView {
        ClusterView {
            api_reachable: true,
            is_leader: true,
            pods,
            service: Some(PodHealth {
                verdict: service,
                since_us: NOW - 60_000_000,
                reasons: vec![],
            }),
        }
    }

    fn enforce(view: &ClusterView) -> Action {
        let policy = Policy {
            mode: Mode::Enforce,
            ..Policy::default()
        };
        decide(NOW, view, &policy, &GuardState::default()).action
    }

    fn evict(pod: &str) -> Action {
        Action::EvictPod { pod: pod.into() }
    }

    fn restart() -> Action {
        Action::RolloutRestart {
            deployment: "coredns".into(),
        }
    }

    #[test]
    fn a_lone_sick_replica_is_evicted_and_only_an_all_sick_set_is_rolled() {
        let sick = |n| pod(n, false, true);
        let fine = |n| pod(n, true, false);
        let cases: Vec<(&str, Vec<PodView>, Action)> = vec![
            (
                "one sick of three",
                vec![fine("a"), sick("b"), fine("c")],
                evict("b"),
            ),
            ("one sick of two", vec![sick("a"), fine("b")], evict("a")),
            ("the single replica sick", vec![sick("a")], restart()),
            ("both replicas sick", vec![sick("a"), sick("b")], restart()),
            (
                "two of three sick: the other is kept",
                vec![sick("a"), sick("b"), fine("c")],
                evict("a"),
            ),
            (
                // The other pod is not sick, only not counted healthy (unready, DNS
                // fine): an eviction, refused by the healthy minimum, never a restart.
                "one sick, the other starting",
                vec![sick("a"), pod("b", false, false)],
                Action::Refuse(Refusal::BelowMinHealthy {
                    would: Planned::EvictPod("a".into()),
                    healthy: 0,
                    min: 1,
                }),
            ),
        ];
        for (name, pods, want) in cases {
            let got = enforce(&view(pods, Verdict::Ok));
            assert_eq!(got, want, "{name}");
        }
        // A terminating pod is neither healthy nor a target: one sick live pod next to
        // a healthy one is still an eviction.
        let mut going = fine("c");
        going.terminating = true;
        let got = enforce(&view(vec![sick("a"), fine("b"), going], Verdict::Ok));
        assert_eq!(got, evict("a"));
    }

    #[test]
    fn cut_off_runner_is_a_local_problem_even_when_its_endpoint_probes_fail() {
        let cut_off = |name| {
            let mut p = pod(name, true, true);
            p.endpoints = HealthEndpoints {
                ready: Some(false),
                health: Some(false),
            };
            p
        };
        let v = view(vec![cut_off("a"), cut_off("b")], Verdict::Critical);
        let d = decide(
            NOW,
            &v,
            &Policy {
                mode: Mode::Enforce,
                ..Policy::default()
            },
            &GuardState::default(),
        );
        assert_eq!(d.action, Action::ReportLocalProblem);
        assert!(
            d.evidence
                .reason
                .contains("health endpoints fail from here"),
            "{}",
            d.evidence.reason
        );
        assert!(d.evidence.pods.iter().all(|p| p.kubernetes_fine));
        // Old restarts (restarts: 3, none new) do not count; endpoints not probed
        // at all (outside a cluster) are the same.
        let mut plain = view(
            vec![pod("a", true, true), pod("b", true, true)],
            Verdict::Critical,
        );
        assert_eq!(enforce(&plain), Action::ReportLocalProblem);
        plain.service = None;
        assert_eq!(enforce(&plain), Action::ReportLocalProblem);

        // Every pod answers SERVFAIL: the path from here works, so it is not local;
        // Kubernetes calls them fine, so no action either.
        let mut answering = plain.clone();
        for p in &mut answering.pods {
            p.dns.as_mut().unwrap().reasons = vec!["servfail_spread"];
        }
        assert_eq!(
            enforce(&answering),
            Action::Refuse(Refusal::KubernetesDisagrees { pod: "a".into() })
        );

        // Kubernetes sees it too: a new restart on one pod, the other not Ready.
        let mut v2 = v.clone();
        v2.pods[0].restarts = 4;
        v2.pods[0].new_restarts = 1;
        v2.pods[1].ready = false;
        assert_eq!(enforce(&v2), restart());
        // Or only one pod restarted: it is sick; the other is cut off like the rest.
        let mut v3 = v.clone();
        v3.pods[0].new_restarts = 2;
        assert_eq!(enforce(&v3), restart(), "both agree (restarts, endpoints)");
        // The ClusterIP answers: the runner's network works, so it is not local.
        let mut v4 = v;
        v4.service = Some(PodHealth {
            verdict: Verdict::Ok,
            since_us: NOW,
            reasons: vec![],
        });
        assert_eq!(enforce(&v4), restart());
    }

    #[test]
    fn new_restarts_make_kubernetes_agree() {
        let mut a = pod("a", true, true);
        let b = pod("b", true, false);
        let v = view(vec![a.clone(), b.clone()], Verdict::Ok);
        assert_eq!(
            enforce(&v),
            Action::Refuse(Refusal::KubernetesDisagrees { pod: "a".into() })
        );
        a.new_restarts = 1;
        assert_eq!(enforce(&view(vec![a, b], Verdict::Ok)), evict("a"));
    }
}
