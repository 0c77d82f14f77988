//! Property tests of the pure healing decision: for arbitrary sequences of verdicts
//! and cluster states, the guardrails always hold.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use dnswarden::heal::decide::{HealthEndpoints, Planned, UNANSWERED_REASONS, Verification, verify};
use dnswarden::heal::{
    Action, ClusterView, GuardState, Mode, PodHealth, PodView, Policy, Refusal, Verdict, decide,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct PodGen {
    ready: bool,
    verdict: Verdict,
    /// How long the verdict has held, seconds.
    held_s: u64,
    terminating: bool,
    new_restarts: u32,
    /// The DNS trouble is answers (SERVFAIL), not their absence (timeouts).
    answered: bool,
    ready_ep: Option<bool>,
    health_ep: Option<bool>,
}

#[derive(Debug, Clone)]
struct StepGen {
    dt_s: u64,
    pods: Vec<PodGen>,
    api_reachable: bool,
    is_leader: bool,
    service: Option<Verdict>,
    owned: bool,
}

fn verdict() -> impl Strategy<Value = Verdict> {
    prop_oneof![
        Just(Verdict::Ok),
        Just(Verdict::Degraded),
        Just(Verdict::Critical)
    ]
}

fn pod() -> impl Strategy<Value = PodGen> {
    (
        any::<bool>(),
        verdict(),
        0u64..200,
        prop::bool::weighted(0.1),
        prop_oneof![4 => Just(0u32), 1 => 1u32..4],
        any::<bool>(),
        prop::option::of(any::<bool>()),
        prop::option::of(any::<bool>()),
    )
        .prop_map(
            |(ready, verdict, held_s, terminating, new_restarts, answered, ready_ep, health_ep)| {
                PodGen {
                    ready,
                    verdict,
                    held_s,
                    terminating,
                    new_restarts,
                    answered,
                    ready_ep,
                    health_ep,
                }
            },
        )
}

fn step() -> impl Strategy<Value = StepGen> {
    (
        0u64..400,
        prop::collection::vec(pod(), 1..5),
        prop::bool::weighted(0.9),
        prop::bool::weighted(0.8),
        prop::option::of(verdict()),
        prop::bool::weighted(0.9),
    )
        .prop_map(
            |(dt_s, pods, api_reachable, is_leader, service, owned)| StepGen {
                dt_s,
                pods,
                api_reachable,
                is_leader,
                service,
                owned,
            },
        )
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![
        Just(Mode::Off),
        Just(Mode::DryRun),
        Just(Mode::Enforce),
        Just(Mode::Enforce)
    ]
}

fn view_of(s: &StepGen, now_us: u64, generation: u64) -> ClusterView {
    ClusterView {
        api_reachable: s.api_reachable,
        is_leader: s.is_leader,
        service: s.service.map(|v| PodHealth {
            verdict: v,
            since_us: 0,
            reasons: vec![],
        }),
        pods: s
            .pods
            .iter()
            .enumerate()
            .map(|(i, p)| PodView {
                // Names change over time so evicted pods can be replaced.
                name: format!("coredns-{generation}-{i}"),
                ready: p.ready,
                restarts: p.new_restarts + 2,
                new_restarts: p.new_restarts,
                terminating: p.terminating,
                deployment: s.owned.then(|| "coredns".to_string()),
                dns: Some(PodHealth {
                    verdict: p.verdict,
                    since_us: now_us.saturating_sub(p.held_s * 1_000_000),
                    reasons: if p.answered {
                        vec!["servfail_spread"]
                    } else {
                        vec!["loss_rate"]
                    },
                }),
                endpoints: HealthEndpoints {
                    ready: p.ready_ep,
                    health: p.health_ep,
                },
            })
            .collect(),
    }
}

/// Persistently critical by DNS.
fn sick(p: &PodView, now_us: u64, sick_for_s: u64) -> bool {
    p.dns.as_ref().is_some_and(|d| {
        d.verdict == Verdict::Critical && now_us - d.since_us >= sick_for_s * 1_000_000
    })
}

/// Kubernetes (not Ready, new restarts) or the endpoints say the pod is unwell.
fn agrees(p: &PodView) -> bool {
    !p.ready || p.new_restarts > 0 || p.endpoints.any_failed()
}

fn healthy_other(v: &ClusterView, target: &str) -> usize {
    v.pods
        .iter()
        .filter(|p| {
            p.name != target
                && !p.terminating
                && p.ready
                && !p.endpoints.any_failed()
                && p.dns
                    .as_ref()
                    .is_none_or(|d| d.verdict != Verdict::Critical)
        })
        .count()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn guardrails_hold_for_any_sequence(
        mode in mode(),
        steps in prop::collection::vec(step(), 1..60),
        cooldown_s in 0u64..900,
        budget in 0u32..5,
        min_healthy in 0usize..3,
        sick_for_s in 0u64..120,
        verify_s in 1u64..600,
    ) {
        let policy = Policy {
            mode,
            cooldown: Duration::from_secs(cooldown_s),
            hourly_budget: budget,
            min_healthy,
            sick_for: Duration::from_secs(sick_for_s),
            verify_timeout: Duration::from_secs(verify_s),
        };
        let mut guard = GuardState::default();
        let mut now_us = 10_000_000_000u64;
        let mut taken: Vec<u64> = Vec::new();
        for (generation, s) in steps.iter().enumerate() {
            now_us += s.dt_s * 1_000_000;
            let view = view_of(s, now_us, generation as u64);
            if let Some(f) = guard.in_flight.clone()
                && let Some(v) = verify(&f, now_us, &view, &policy)
            {
                prop_assert!(v == Verification::Recovered || now_us - f.started_us >= verify_s * 1_000_000);
                guard.in_flight = None;
            }
            let d = decide(now_us, &view, &policy, &guard);
            if let Some(planned) = d.action.planned() {
                prop_assert_eq!(mode, Mode::Enforce, "an action outside enforce mode");
                prop_assert!(view.api_reachable && view.is_leader, "acted without API or leadership");
                prop_assert!(guard.in_flight.is_none(), "two actions in flight");
                if let Some(&last) = taken.last() {
                    prop_assert!(now_us - last >= cooldown_s * 1_000_000, "two actions within a cool-down");
                }
                let in_hour = taken.iter().filter(|&&t| now_us - t < 3_600_000_000).count() as u32;
                prop_assert!(in_hour < budget, "hourly budget exceeded");
                match &planned {
                    Planned::EvictPod(target) => {
                        prop_assert!(healthy_other(&view, target) >= min_healthy, "below the healthy minimum");
                        let p = view.pods.iter().find(|p| &p.name == target).unwrap();
                        let dns = p.dns.as_ref().unwrap();
                        prop_assert!(dns.verdict == Verdict::Critical && now_us - dns.since_us >= sick_for_s * 1_000_000);
                        prop_assert!(agrees(p), "evicted a pod Kubernetes and its endpoints call fine");
                        prop_assert!(!p.terminating);
                    }
                    Planned::RolloutRestart(dep) => {
                        prop_assert_eq!(dep.as_str(), "coredns");
                        prop_assert!(view.pods.iter().filter(|p| !p.terminating).all(|p| sick(p, now_us, sick_for_s) && agrees(p)),
                            "a restart while some pod is not sick");
                    }
                }
                taken.push(now_us);
                let before = view.pods.iter().map(|p| p.name.clone()).collect();
                guard.record(planned, now_us, before);
            } else if mode == Mode::Off {
                prop_assert_eq!(&d.action, &Action::None);
            }
            if let Action::Refuse(Refusal::DryRun { .. }) = &d.action {
                prop_assert_eq!(mode, Mode::DryRun);
            }
            // A lone sick replica next to others is evicted (or refused), never rolled.
            let live: Vec<&PodView> = view.pods.iter().filter(|p| !p.terminating).collect();
            let wanted = match &d.action {
                Action::Refuse(r) => r.would().cloned(),
                a => a.planned(),
            };
            if live.len() > 1 && live.iter().any(|p| !(sick(p, now_us, sick_for_s) && agrees(p))) {
                prop_assert!(!matches!(wanted, Some(Planned::RolloutRestart(_))), "rolled with a pod not sick: {:?}", d.action);
            }
            // Every pod failing from here for lack of answers while Kubernetes says all
            // are fine: local, whatever the runner's own endpoint probes say.
            if mode != Mode::Off
                && !live.is_empty()
                && live.iter().all(|p| sick(p, now_us, sick_for_s) && p.ready && p.new_restarts == 0)
                && live.iter().all(|p| p.dns.as_ref().unwrap().reasons.iter().all(|r| UNANSWERED_REASONS.contains(r)))
                && view.service.as_ref().is_none_or(|s| s.verdict == Verdict::Critical)
            {
                prop_assert_eq!(&d.action, &Action::ReportLocalProblem);
            }
        }
    }

    #[test]
    fn local_problem_is_never_an_action(
        pods in prop::collection::vec((0u64..100, prop::option::of(any::<bool>()), prop::option::of(any::<bool>()), 0u32..9), 1..5),
    ) {
        // Every pod critical for long, Kubernetes says all Ready with no new restarts
        // (old restarts do not count); the runner's own endpoint probes may fail
        // (cut off from the pods) or not.
        let now = 1_000_000_000_000u64;
        let view = ClusterView {
            api_reachable: true,
            is_leader: true,
            service: Some(PodHealth { verdict: Verdict::Critical, since_us: 0, reasons: vec![] }),
            pods: pods.iter().enumerate().map(|(i, (held, ready_ep, health_ep, old))| PodView {
                name: format!("p{i}"), ready: true, restarts: *old, new_restarts: 0, terminating: false, deployment: Some("coredns".into()),
                dns: Some(PodHealth { verdict: Verdict::Critical, since_us: now - (held + 31) * 1_000_000, reasons: vec!["loss_rate"] }),
                endpoints: HealthEndpoints { ready: *ready_ep, health: *health_ep },
            }).collect(),
        };
        let policy = Policy { mode: Mode::Enforce, ..Policy::default() };
        let d = decide(now, &view, &policy, &GuardState::default());
        prop_assert_eq!(d.action, Action::ReportLocalProblem);
    }
}
