//! Every healing branch against a mocked API server: the exact requests (method,
//! path, query, body) the healer makes, and the audit (Events, metrics) for each
//! action and each refusal. Time is paused; timeouts are driven by tokio's clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kube_support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use dnswarden::heal::decide::{HealthEndpoints, Planned};
use dnswarden::heal::healer::StepReport;
use dnswarden::heal::{
    Action, ClusterView, HealConfig, HealMetrics, Healer, HealthSnapshot, Mode, PodHealth, PodView,
    Policy, Refusal, Verdict,
};
use http::Method;
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube_support::{Expect, Seen, mock_client, scenario, status};
use serde_json::{Value, json};

const NOW: u64 = 1_000_000_000_000;

fn wall() -> Timestamp {
    "2026-11-22T03:00:00Z".parse().unwrap()
}

fn pod(name: &str, ready: bool, verdict: Verdict, held_s: u64) -> PodView {
    PodView {
        name: name.into(),
        ready,
        restarts: if ready { 0 } else { 4 },
        new_restarts: 0,
        terminating: false,
        deployment: Some("coredns".into()),
        dns: Some(PodHealth {
            verdict,
            since_us: NOW - held_s * 1_000_000,
            reasons: vec!["servfail"],
        }),
        endpoints: HealthEndpoints::default(),
    }
}

fn view(pods: Vec<PodView>) -> ClusterView {
    ClusterView {
        api_reachable: true,
        is_leader: true,
        pods,
        service: Some(PodHealth {
            verdict: Verdict::Degraded,
            since_us: NOW,
            reasons: vec![],
        }),
    }
}

fn one_sick() -> ClusterView {
    view(vec![
        pod("coredns-a", false, Verdict::Critical, 60),
        pod("coredns-b", true, Verdict::Ok, 600),
        pod("coredns-c", true, Verdict::Ok, 600),
    ])
}

fn healer(
    mode: Mode,
    policy: impl FnOnce(&mut Policy),
) -> (
    Healer,
    tower_test::mock::Handle<http::Request<kube::client::Body>, http::Response<kube::client::Body>>,
) {
    let (client, handle) = mock_client();
    let mut cfg = HealConfig::new("kube-system", "dnswarden-0");
    cfg.policy.mode = mode;
    policy(&mut cfg.policy);
    (Healer::new(client, cfg, HealMetrics::default()), handle)
}

fn eviction(pod: &'static str) -> Expect {
    Expect::new(Method::POST, format!("/api/v1/namespaces/kube-system/pods/{pod}/eviction"))
        .check(move |s| {
            // kube-rs' Eviction body: the pod name, default delete options.
            assert_eq!(s.body, json!({"delete_options": null, "metadata": {"name": pod}}));
        })
        .respond(201, json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}))
}

/// An Event on `kind/name` with this reason and action.
fn event(
    kind: &'static str,
    name: &'static str,
    reason: &'static str,
    action: &'static str,
) -> Expect {
    Expect::new(
        Method::POST,
        "/apis/events.k8s.io/v1/namespaces/kube-system/events",
    )
    .check(move |s: &Seen| {
        let b = &s.body;
        assert_eq!(b["regarding"]["kind"], kind, "{b:#}");
        assert_eq!(b["regarding"]["name"], name, "{b:#}");
        assert_eq!(b["regarding"]["namespace"], "kube-system");
        assert_eq!(b["reason"], reason, "{b:#}");
        assert_eq!(b["action"], action, "{b:#}");
        assert_eq!(b["reportingController"], "dnswarden.io/healer");
        assert_eq!(b["reportingInstance"], "dnswarden-0");
        assert_eq!(b["eventTime"], "2026-11-22T03:00:00.000000Z");
        assert!(b["note"].as_str().unwrap().contains("dnswarden self-heal"));
    })
}

async fn step(
    h: &mut Healer,
    handle: &mut tower_test::mock::Handle<
        http::Request<kube::client::Body>,
        http::Response<kube::client::Body>,
    >,
    now: u64,
    v: &ClusterView,
    expects: Vec<Expect>,
) -> (StepReport, Vec<Seen>) {
    tokio::join!(h.step(now, wall(), v), scenario(handle, expects))
}

#[tokio::test(start_paused = true)]
async fn one_sick_pod_is_evicted_then_recovery_is_verified_and_guardrails_refuse_more() {
    let (mut h, mut api) = healer(Mode::Enforce, |p| p.hourly_budget = 2);
    let (r, _) = step(
        &mut h,
        &mut api,
        NOW,
        &one_sick(),
        vec![
            eviction("coredns-a"),
            event("Pod", "coredns-a", "Taken", "EvictPod"),
        ],
    )
    .await;
    assert_eq!(
        r.decision.action,
        Action::EvictPod {
            pod: "coredns-a".into()
        }
    );
    assert_eq!(r.result, Some("success"));
    assert!(r.decision.evidence.reason.contains("coredns-a"));
    assert_eq!(h.metrics().get("evict_pod", "success"), 1);

    // coredns-a still terminating-but-listed and coredns-b sick too: one action in flight.
    let mut v = one_sick();
    v.pods[0].terminating = true;
    v.pods[1] = pod("coredns-b", false, Verdict::Critical, 60);
    let (r, _) = step(
        &mut h,
        &mut api,
        NOW + 10_000_000,
        &v,
        vec![event("Pod", "coredns-b", "Refused", "EvictPod")],
    )
    .await;
    assert!(
        matches!(r.decision.action, Action::Refuse(Refusal::InFlight { in_flight: Planned::EvictPod(ref p), .. }) if p == "coredns-a"),
        "{:?}",
        r.decision.action
    );

    // Recovery: coredns-a is gone, its replacement is ready and answers.
    let healthy = view(vec![
        pod("coredns-b", true, Verdict::Ok, 600),
        pod("coredns-c", true, Verdict::Ok, 600),
        pod("coredns-d", true, Verdict::Ok, 5),
    ]);
    let (r, _) = step(
        &mut h,
        &mut api,
        NOW + 40_000_000,
        &healthy,
        vec![event("Pod", "coredns-a", "Recovered", "EvictPod")],
    )
    .await;
    assert_eq!(
        r.verified,
        Some((
            Planned::EvictPod("coredns-a".into()),
            dnswarden::heal::decide::Verification::Recovered
        ))
    );
    assert_eq!(r.decision.action, Action::None);
    assert_eq!(h.metrics().get("evict_pod", "recovered"), 1);

    // Another pod gets sick within the cool-down.
    let mut v = healthy.clone();
    v.pods[0] = pod("coredns-b", false, Verdict::Critical, 45);
    let (r, _) = step(
        &mut h,
        &mut api,
        NOW + 60_000_000,
        &v,
        vec![event("Pod", "coredns-b", "Refused", "EvictPod")],
    )
    .await;
    assert!(
        matches!(
            r.decision.action,
            Action::Refuse(Refusal::CoolDown {
                remaining_s: 240,
                ..
            })
        ),
        "{:?}",
        r.decision.action
    );
    // The same refusal again: audited once only (no second Event).
    let (r, _) = step(&mut h, &mut api, NOW + 65_000_000, &v, vec![]).await;
    assert!(!r.audited);
    assert_eq!(h.metrics().get("evict_pod", "cooldown"), 1);

    // After the cool-down: second eviction; then the budget (2/hour) is used up.
    let (r, _) = step(
        &mut h,
        &mut api,
        NOW + 301_000_000,
        &v,
        vec![
            eviction("coredns-b"),
            event("Pod", "coredns-b", "Taken", "EvictPod"),
        ],
    )
    .await;
    assert_eq!(r.result, Some("success"));
    let healed = view(vec![
        pod("coredns-c", true, Verdict::Ok, 600),
        pod("coredns-d", true, Verdict::Ok, 300),
        pod("coredns-e", true, Verdict::Ok, 5),
    ]);
    let (r, _) = step(
        &mut h,
        &mut api,
        NOW + 400_000_000,
        &healed,
        vec![event("Pod", "coredns-b", "Recovered", "EvictPod")],
    )
    .await;
    assert!(r.verified.is_some());
    let (r, _) = step(
        &mut h,
        &mut api,
        NOW + 700_000_000,
        &v,
        vec![event("Pod", "coredns-b", "Refused", "EvictPod")],
    )
    .await;
    assert!(
        matches!(
            r.decision.action,
            Action::Refuse(Refusal::BudgetExhausted { used: 2, .. })
        ),
        "{:?}",
        r.decision.action
    );
}

#[tokio::test(start_paused = true)]
async fn eviction_blocked_by_a_pdb_is_a_failed_action() {
    let (mut h, mut api) = healer(Mode::Enforce, |_| {});
    let blocked = eviction("coredns-a").respond(
        429,
        status(
            429,
            "TooManyRequests",
            "Cannot evict pod as it would violate the pod's disruption budget.",
        ),
    );
    let (r, _) = step(
        &mut h,
        &mut api,
        NOW,
        &one_sick(),
        vec![blocked, event("Pod", "coredns-a", "Failed", "EvictPod")],
    )
    .await;
    assert_eq!(r.result, Some("blocked_by_pdb"));
    assert!(h.guard().in_flight.is_none(), "nothing to verify");
    assert_eq!(
        h.guard().recent_us.len(),
        1,
        "the attempt counts for cool-down and budget"
    );
    assert_eq!(h.metrics().get("evict_pod", "blocked_by_pdb"), 1);
}

#[tokio::test(start_paused = true)]
async fn eviction_that_never_answers_times_out() {
    let (mut h, mut api) = healer(Mode::Enforce, |_| {});
    let before = tokio::time::Instant::now();
    let (r, _) = step(
        &mut h,
        &mut api,
        NOW,
        &one_sick(),
        vec![
            eviction("coredns-a").hang(),
            event("Pod", "coredns-a", "Failed", "EvictPod"),
        ],
    )
    .await;
    assert_eq!(r.result, Some("timeout"));
    assert!(
        before.elapsed() >= Duration::from_secs(5),
        "the request timeout elapsed on tokio's clock"
    );
}

#[tokio::test(start_paused = true)]
async fn every_pod_sick_restarts_the_owning_deployment() {
    let (mut h, mut api) = healer(Mode::Enforce, |_| {});
    let v = view(vec![
        pod("coredns-a", false, Verdict::Critical, 60),
        pod("coredns-b", false, Verdict::Critical, 90),
    ]);
    let patch = Expect::new(Method::PATCH, "/apis/apps/v1/namespaces/kube-system/deployments/coredns")
        .query("fieldManager", "dnswarden")
        .check(|s| {
            assert_eq!(s.content_type.as_deref(), Some("application/strategic-merge-patch+json"));
            assert_eq!(s.body, json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-22T03:00:00Z"}}}}}));
        })
        .respond(200, json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "coredns", "namespace": "kube-system"}}));
    let (r, _) = step(
        &mut h,
        &mut api,
        NOW,
        &v,
        vec![
            patch,
            event("Deployment", "coredns", "Taken", "RolloutRestart"),
        ],
    )
    .await;
    assert_eq!(
        r.decision.action,
        Action::RolloutRestart {
            deployment: "coredns".into()
        }
    );
    assert_eq!(r.result, Some("success"));
    // Verification: done only when every pod from before is replaced.
    let partly = view(vec![
        pod("coredns-b", true, Verdict::Ok, 1),
        pod("coredns-x", true, Verdict::Ok, 1),
    ]);
    let (r, _) = step(&mut h, &mut api, NOW + 30_000_000, &partly, vec![]).await;
    assert!(r.verified.is_none());
    // Never replaced within verify_timeout → not recovered.
    let (r, _) = step(
        &mut h,
        &mut api,
        NOW + 181_000_000,
        &partly,
        vec![event(
            "Deployment",
            "coredns",
            "NotRecovered",
            "RolloutRestart",
        )],
    )
    .await;
    assert_eq!(
        r.verified.map(|v| v.1),
        Some(dnswarden::heal::decide::Verification::NotRecovered)
    );
    assert_eq!(h.metrics().get("rollout_restart", "not_recovered"), 1);
}

/// Each refusal: the decision, the Event (or none), and no action request.
#[tokio::test(start_paused = true)]
async fn each_refusal_is_audited_and_nothing_is_done() {
    struct Case {
        name: &'static str,
        mode: Mode,
        view: ClusterView,
        policy: fn(&mut Policy),
        want: &'static str,
        event: Option<(&'static str, &'static str, &'static str)>,
    }
    let mut not_leader = one_sick();
    not_leader.is_leader = false;
    let mut no_api = one_sick();
    no_api.api_reachable = false;
    let mut orphans = view(vec![
        pod("coredns-a", false, Verdict::Critical, 60),
        pod("coredns-b", false, Verdict::Critical, 60),
    ]);
    for p in &mut orphans.pods {
        p.deployment = None;
    }
    let cases = vec![
        Case {
            name: "dry-run",
            mode: Mode::DryRun,
            view: one_sick(),
            policy: |_| {},
            want: "dry_run",
            event: Some(("Pod", "coredns-a", "EvictPod")),
        },
        Case {
            name: "not leader",
            mode: Mode::Enforce,
            view: not_leader,
            policy: |_| {},
            want: "not_leader",
            event: None,
        },
        Case {
            name: "api unreachable",
            mode: Mode::Enforce,
            view: no_api,
            policy: |_| {},
            want: "api_unreachable",
            event: None,
        },
        Case {
            name: "below min healthy",
            mode: Mode::Enforce,
            view: view(vec![
                pod("coredns-a", false, Verdict::Critical, 60),
                pod("coredns-b", true, Verdict::Ok, 60),
                pod("coredns-c", false, Verdict::Degraded, 60),
            ]),
            policy: |p| p.min_healthy = 2,
            want: "below_min_healthy",
            event: Some(("Pod", "coredns-a", "EvictPod")),
        },
        Case {
            name: "kubernetes disagrees",
            mode: Mode::Enforce,
            view: view(vec![
                pod("coredns-a", true, Verdict::Critical, 60),
                pod("coredns-b", true, Verdict::Ok, 60),
            ]),
            policy: |_| {},
            want: "kubernetes_disagrees",
            event: Some(("Pod", "coredns-a", "None")),
        },
        Case {
            name: "not yet persistent",
            mode: Mode::Enforce,
            view: view(vec![
                pod("coredns-a", false, Verdict::Critical, 10),
                pod("coredns-b", true, Verdict::Ok, 60),
            ]),
            policy: |_| {},
            want: "none",
            event: None,
        },
        Case {
            name: "no owning deployment",
            mode: Mode::Enforce,
            view: orphans,
            policy: |_| {},
            want: "no_owning_deployment",
            event: None,
        },
        Case {
            name: "budget zero",
            mode: Mode::Enforce,
            view: one_sick(),
            policy: |p| p.hourly_budget = 0,
            want: "budget_exhausted",
            event: Some(("Pod", "coredns-a", "EvictPod")),
        },
    ];
    for c in cases {
        let (mut h, mut api) = healer(c.mode, c.policy);
        let expects = match c.event {
            Some((kind, name, action)) => vec![event(kind, name, "Refused", action)],
            None => vec![],
        };
        let (r, _) = step(&mut h, &mut api, NOW, &c.view, expects).await;
        let got = match &r.decision.action {
            Action::Refuse(f) => f.label(),
            Action::None => "none",
            other => panic!("{}: acted: {other:?}", c.name),
        };
        assert_eq!(got, c.want, "{}: {:#?}", c.name, r.decision);
        assert!(
            r.decision.evidence.reason.len() > 10,
            "{}: a reason is given",
            c.name
        );
        assert!(h.guard().recent_us.is_empty(), "{}", c.name);
    }
}

#[tokio::test(start_paused = true)]
async fn all_pods_failing_from_here_while_kubernetes_is_fine_is_a_local_problem() {
    let (mut h, mut api) = healer(Mode::Enforce, |_| {});
    let mut v = view(vec![
        pod("coredns-a", true, Verdict::Critical, 60),
        pod("coredns-b", true, Verdict::Critical, 60),
    ]);
    for p in &mut v.pods {
        // No answers from here (timeouts), not answers carrying SERVFAIL.
        p.dns.as_mut().unwrap().reasons = vec!["consecutive_timeouts", "loss_rate"];
    }
    v.service = Some(PodHealth {
        verdict: Verdict::Critical,
        since_us: NOW - 60_000_000,
        reasons: vec!["loss_rate"],
    });
    for p in &mut v.pods {
        p.endpoints = HealthEndpoints {
            ready: Some(true),
            health: Some(true),
        };
    }
    let (r, _) = step(&mut h, &mut api, NOW, &v, vec![]).await;
    assert_eq!(r.decision.action, Action::ReportLocalProblem);
    assert_eq!(r.result, Some("reported"));
    assert_eq!(h.metrics().get("local_problem", "reported"), 1);
    // The runner's own probes of :8181/ready and :8080/health fail too (it is cut
    // off), but Kubernetes still says Ready with no new restarts: still local, and
    // no request at all (the scenario asserts none).
    for p in &mut v.pods {
        p.endpoints = HealthEndpoints {
            ready: Some(false),
            health: Some(false),
        };
    }
    let (r, seen) = step(&mut h, &mut api, NOW + 1, &v, vec![]).await;
    assert_eq!(r.decision.action, Action::ReportLocalProblem, "{r:#?}");
    assert!(seen.is_empty());
    assert!(
        r.decision
            .evidence
            .reason
            .contains("health endpoints fail from here"),
        "{}",
        r.decision.evidence.reason
    );
    assert!(h.guard().recent_us.is_empty());
    // Once Kubernetes sees it too (a pod restarted since its DNS went critical), the
    // pods are sick: restart.
    v.pods[0].restarts = 1;
    v.pods[0].new_restarts = 1;
    let patch = Expect::new(
        Method::PATCH,
        "/apis/apps/v1/namespaces/kube-system/deployments/coredns",
    )
    .respond(
        200,
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "coredns"}}),
    );
    let (r, _) = step(
        &mut h,
        &mut api,
        NOW + 2,
        &v,
        vec![
            patch,
            event("Deployment", "coredns", "Taken", "RolloutRestart"),
        ],
    )
    .await;
    assert_eq!(r.result, Some("success"));
}

#[tokio::test(start_paused = true)]
async fn mode_off_never_decides() {
    let (mut h, mut api) = healer(Mode::Off, |_| {});
    let (r, _) = step(&mut h, &mut api, NOW, &one_sick(), vec![]).await;
    assert_eq!(r.decision.action, Action::None);
}

#[tokio::test(start_paused = true)]
async fn an_event_write_failure_does_not_stop_the_healer() {
    let (mut h, mut api) = healer(Mode::DryRun, |_| {});
    let ev = event("Pod", "coredns-a", "Refused", "EvictPod")
        .respond(403, status(403, "Forbidden", "events is forbidden"));
    let (r, _) = step(&mut h, &mut api, NOW, &one_sick(), vec![ev]).await;
    assert_eq!(r.result, Some("dry_run"));
    assert_eq!(h.metrics().get("evict_pod", "dry_run"), 1);
}

fn k8s_pod(name: &str, rs: &str, ready: bool) -> Arc<Pod> {
    Arc::new(Pod {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("kube-system".into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "ReplicaSet".into(),
                name: rs.into(),
                uid: "u1".into(),
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
    })
}

#[tokio::test(start_paused = true)]
async fn the_view_finds_the_deployment_through_owner_references_once() {
    let (mut h, mut api) = healer(Mode::Enforce, |_| {});
    let pods = vec![
        k8s_pod("coredns-b", "coredns-5d78c9869d", true),
        k8s_pod("coredns-a", "coredns-5d78c9869d", false),
    ];
    let rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some("coredns-5d78c9869d".into()),
            namespace: Some("kube-system".into()),
            owner_references: Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: "coredns".into(),
                uid: "u0".into(),
                controller: Some(true),
                ..Default::default()
            }]),
            ..Default::default()
        },
        ..Default::default()
    };
    let mut rs_json: Value = serde_json::to_value(&rs).unwrap();
    rs_json["apiVersion"] = json!("apps/v1");
    rs_json["kind"] = json!("ReplicaSet");
    let health = HealthSnapshot {
        pods: BTreeMap::from([(
            "coredns-a".to_string(),
            PodHealth {
                verdict: Verdict::Critical,
                since_us: 5,
                reasons: vec!["servfail"],
            },
        )]),
        service: None,
    };
    let get = Expect::new(
        Method::GET,
        "/apis/apps/v1/namespaces/kube-system/replicasets/coredns-5d78c9869d",
    )
    .respond(200, rs_json);
    let (v, _) = tokio::join!(
        h.view(&pods, &health, true, true),
        scenario(&mut api, vec![get])
    );
    assert_eq!(
        v.pods
            .iter()
            .map(|p| (p.name.as_str(), p.ready, p.deployment.as_deref()))
            .collect::<Vec<_>>(),
        vec![
            ("coredns-a", false, Some("coredns")),
            ("coredns-b", true, Some("coredns"))
        ]
    );
    assert_eq!(v.pods[0].dns.as_ref().unwrap().verdict, Verdict::Critical);
    assert!(v.api_reachable);
    // Cached: no second GET.
    let (v, _) = tokio::join!(
        h.view(&pods, &health, true, true),
        scenario(&mut api, vec![])
    );
    assert_eq!(v.pods[1].deployment.as_deref(), Some("coredns"));

    // A failing lookup marks the API unreachable.
    let (mut h, mut api) = healer(Mode::Enforce, |_| {});
    let get = Expect::new(
        Method::GET,
        "/apis/apps/v1/namespaces/kube-system/replicasets/coredns-5d78c9869d",
    )
    .respond(500, status(500, "InternalError", "boom"));
    let fail = Expect::new(
        Method::GET,
        "/apis/apps/v1/namespaces/kube-system/replicasets/coredns-5d78c9869d",
    )
    .respond(500, status(500, "InternalError", "boom"));
    let (v, _) = tokio::join!(
        h.view(&pods, &health, true, true),
        scenario(&mut api, vec![get, fail])
    );
    assert!(!v.api_reachable);
}

/// New restarts are those since the pod's DNS verdict was last not critical: old
/// ones (before the trouble) are not evidence, ones during it are.
#[tokio::test(start_paused = true)]
async fn the_view_counts_restarts_since_the_dns_trouble_began() {
    let (mut h, mut api) = healer(Mode::Enforce, |_| {});
    let with_restarts = |n: i32| {
        let mut p = (*k8s_pod("coredns-a", "coredns-5d78c9869d", true)).clone();
        p.metadata.owner_references = None; // no owner lookup needed here
        if let Some(s) = p.status.as_mut() {
            s.container_statuses = Some(vec![k8s_openapi::api::core::v1::ContainerStatus {
                name: "coredns".into(),
                restart_count: n,
                ready: true,
                ..Default::default()
            }]);
        }
        vec![Arc::new(p)]
    };
    let health = |v: Verdict| HealthSnapshot {
        pods: BTreeMap::from([(
            "coredns-a".to_string(),
            PodHealth {
                verdict: v,
                since_us: 5,
                reasons: vec![],
            },
        )]),
        service: None,
    };
    let mut new_restarts = Vec::new();
    for (restarts, verdict) in [
        (7, Verdict::Critical), // first seen while critical: 7 old restarts
        (7, Verdict::Critical),
        (9, Verdict::Critical), // two during the trouble
        (9, Verdict::Ok),       // recovered: the baseline moves up
        (9, Verdict::Critical),
        (10, Verdict::Critical),
    ] {
        let (pods, snapshot) = (with_restarts(restarts), health(verdict));
        let (v, _) = tokio::join!(
            h.view(&pods, &snapshot, true, true),
            scenario(&mut api, vec![])
        );
        assert_eq!(v.pods[0].restarts, restarts as u32);
        new_restarts.push(v.pods[0].new_restarts);
    }
    assert_eq!(new_restarts, [0, 0, 2, 0, 0, 1]);
}
