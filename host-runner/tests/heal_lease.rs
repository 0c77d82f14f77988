//! Leader election over the Lease API: acquire, renew, follow, take over an expired
//! Lease, lose a race (409), hand over on shutdown, API errors and timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod kube_support;

use std::time::Duration;

use dnswarden::heal::{LeaderElector, LeaseConfig, Role};
use http::Method;
use k8s_openapi::jiff::Timestamp;
use kube_support::{Expect, mock_client, scenario, status};
use serde_json::{Value, json};

const PATH: &str = "/apis/coordination.k8s.io/v1/namespaces/dnswarden/leases/dnswarden-healer";
const COLLECTION: &str = "/apis/coordination.k8s.io/v1/namespaces/dnswarden/leases";

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn lease(holder: Option<&str>, rv: &str, renew: &str, transitions: i32) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "dnswarden-healer", "namespace": "dnswarden", "resourceVersion": rv},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": 15,
            "acquireTime": "2026-11-22T02:00:00.000000Z",
            "renewTime": renew,
            "leaseTransitions": transitions
        }
    })
}

fn elector(
    id: &str,
) -> (
    LeaderElector,
    tower_test::mock::Handle<http::Request<kube::client::Body>, http::Response<kube::client::Body>>,
) {
    let (client, handle) = mock_client();
    (
        LeaderElector::new(client, LeaseConfig::new("dnswarden", id)),
        handle,
    )
}

#[tokio::test(start_paused = true)]
async fn creates_the_lease_when_absent() {
    let (mut e, mut api) = elector("runner-a");
    let get = Expect::new(Method::GET, PATH).respond(
        404,
        status(404, "NotFound", "leases \"dnswarden-healer\" not found"),
    );
    let create = Expect::new(Method::POST, COLLECTION)
        .check(|s| {
            assert_eq!(s.body["metadata"]["name"], "dnswarden-healer");
            assert_eq!(s.body["spec"]["holderIdentity"], "runner-a");
            assert_eq!(s.body["spec"]["leaseDurationSeconds"], 15);
            assert_eq!(s.body["spec"]["leaseTransitions"], 0);
            assert_eq!(s.body["spec"]["renewTime"], "2026-11-22T03:00:00.000000Z");
            assert_eq!(s.body["spec"]["acquireTime"], "2026-11-22T03:00:00.000000Z");
        })
        .respond(
            201,
            lease(Some("runner-a"), "1", "2026-11-22T03:00:00.000000Z", 0),
        );
    let (r, _) = tokio::join!(
        e.tick(t("2026-11-22T03:00:00Z")),
        scenario(&mut api, vec![get, create])
    );
    assert_eq!(r.unwrap(), Role::Leader);
    assert!(e.is_leader());
}

#[tokio::test(start_paused = true)]
async fn renews_with_the_resource_version_it_read() {
    let (mut e, mut api) = elector("runner-a");
    let get = Expect::new(Method::GET, PATH).respond(
        200,
        lease(Some("runner-a"), "41", "2026-11-22T02:59:55.000000Z", 3),
    );
    let put = Expect::new(Method::PUT, PATH)
        .check(|s| {
            assert_eq!(
                s.body["metadata"]["resourceVersion"], "41",
                "optimistic concurrency"
            );
            assert_eq!(s.body["spec"]["holderIdentity"], "runner-a");
            assert_eq!(s.body["spec"]["renewTime"], "2026-11-22T03:00:00.000000Z");
            assert_eq!(
                s.body["spec"]["acquireTime"], "2026-11-22T02:00:00.000000Z",
                "kept on renew"
            );
            assert_eq!(s.body["spec"]["leaseTransitions"], 3);
        })
        .respond(
            200,
            lease(Some("runner-a"), "42", "2026-11-22T03:00:00.000000Z", 3),
        );
    let (r, _) = tokio::join!(
        e.tick(t("2026-11-22T03:00:00Z")),
        scenario(&mut api, vec![get, put])
    );
    assert_eq!(r.unwrap(), Role::Leader);
}

#[tokio::test(start_paused = true)]
async fn follows_a_live_leader_and_takes_over_when_it_stops_renewing() {
    let (mut e, mut api) = elector("runner-b");
    let held = lease(Some("runner-a"), "7", "2026-11-22T03:00:00.000000Z", 1);
    // Held by runner-a: follower, no write.
    let (r, _) = tokio::join!(
        e.tick(t("2026-11-22T03:00:01Z")),
        scenario(
            &mut api,
            vec![Expect::new(Method::GET, PATH).respond(200, held.clone())]
        )
    );
    assert_eq!(r.unwrap(), Role::Follower);
    // runner-a renews (new resourceVersion): still follower even 20 s later.
    tokio::time::advance(Duration::from_secs(10)).await;
    let renewed = lease(Some("runner-a"), "8", "2026-11-22T03:00:10.000000Z", 1);
    let (r, _) = tokio::join!(
        e.tick(t("2026-11-22T03:00:11Z")),
        scenario(
            &mut api,
            vec![Expect::new(Method::GET, PATH).respond(200, renewed.clone())]
        )
    );
    assert_eq!(r.unwrap(), Role::Follower);
    tokio::time::advance(Duration::from_secs(10)).await;
    let (r, _) = tokio::join!(
        e.tick(t("2026-11-22T03:00:21Z")),
        scenario(
            &mut api,
            vec![Expect::new(Method::GET, PATH).respond(200, renewed.clone())]
        )
    );
    assert_eq!(
        r.unwrap(),
        Role::Follower,
        "10 s since the last observed renewal < 15 s"
    );
    // No renewal for 15 s on *our* clock: take over, transitions + 1.
    tokio::time::advance(Duration::from_secs(6)).await;
    let put = Expect::new(Method::PUT, PATH)
        .check(|s| {
            assert_eq!(s.body["metadata"]["resourceVersion"], "8");
            assert_eq!(s.body["spec"]["holderIdentity"], "runner-b");
            assert_eq!(s.body["spec"]["leaseTransitions"], 2);
            assert_eq!(s.body["spec"]["acquireTime"], "2026-11-22T03:00:27.000000Z");
        })
        .respond(
            200,
            lease(Some("runner-b"), "9", "2026-11-22T03:00:27.000000Z", 2),
        );
    let (r, _) = tokio::join!(
        e.tick(t("2026-11-22T03:00:27Z")),
        scenario(
            &mut api,
            vec![Expect::new(Method::GET, PATH).respond(200, renewed), put]
        )
    );
    assert_eq!(r.unwrap(), Role::Leader);
}

#[tokio::test(start_paused = true)]
async fn losing_the_race_is_following() {
    let (mut e, mut api) = elector("runner-b");
    let released = lease(None, "12", "2026-11-22T03:00:00.000000Z", 4);
    let put = Expect::new(Method::PUT, PATH)
        .respond(409, status(409, "Conflict", "the object has been modified"));
    let (r, _) = tokio::join!(
        e.tick(t("2026-11-22T03:00:01Z")),
        scenario(
            &mut api,
            vec![Expect::new(Method::GET, PATH).respond(200, released), put]
        )
    );
    assert_eq!(r.unwrap(), Role::Follower);
    let get = Expect::new(Method::GET, PATH).respond(404, status(404, "NotFound", "gone"));
    let create =
        Expect::new(Method::POST, COLLECTION).respond(409, status(409, "AlreadyExists", "exists"));
    let (r, _) = tokio::join!(
        e.tick(t("2026-11-22T03:00:02Z")),
        scenario(&mut api, vec![get, create])
    );
    assert_eq!(r.unwrap(), Role::Follower);
}

#[tokio::test(start_paused = true)]
async fn handover_on_shutdown_lets_the_other_replica_lead_at_once() {
    let (mut a, mut api_a) = elector("runner-a");
    let (mut b, mut api_b) = elector("runner-b");
    let mine = lease(Some("runner-a"), "20", "2026-11-22T03:00:00.000000Z", 5);
    let renew = Expect::new(Method::PUT, PATH).respond(
        200,
        lease(Some("runner-a"), "21", "2026-11-22T03:00:05.000000Z", 5),
    );
    let (r, _) = tokio::join!(
        a.tick(t("2026-11-22T03:00:05Z")),
        scenario(
            &mut api_a,
            vec![Expect::new(Method::GET, PATH).respond(200, mine), renew]
        )
    );
    assert_eq!(r.unwrap(), Role::Leader);
    let (r, _) = tokio::join!(
        b.tick(t("2026-11-22T03:00:06Z")),
        scenario(
            &mut api_b,
            vec![Expect::new(Method::GET, PATH).respond(
                200,
                lease(Some("runner-a"), "21", "2026-11-22T03:00:05.000000Z", 5)
            )]
        )
    );
    assert_eq!(r.unwrap(), Role::Follower);

    // runner-a shuts down: clears the holder.
    let release = Expect::new(Method::PUT, PATH)
        .check(|s| {
            assert!(s.body["spec"]["holderIdentity"].is_null(), "{:#}", s.body);
            assert_eq!(s.body["spec"]["leaseDurationSeconds"], 1);
            assert_eq!(s.body["metadata"]["resourceVersion"], "21");
        })
        .respond(200, lease(None, "22", "2026-11-22T03:00:07.000000Z", 5));
    let get = Expect::new(Method::GET, PATH).respond(
        200,
        lease(Some("runner-a"), "21", "2026-11-22T03:00:05.000000Z", 5),
    );
    let (r, _) = tokio::join!(
        a.release(t("2026-11-22T03:00:07Z")),
        scenario(&mut api_a, vec![get, release])
    );
    r.unwrap();
    assert!(!a.is_leader());

    // runner-b takes over on its next tick, without waiting for expiry.
    let take = Expect::new(Method::PUT, PATH)
        .check(|s| {
            assert_eq!(s.body["spec"]["holderIdentity"], "runner-b");
            assert_eq!(s.body["spec"]["leaseTransitions"], 6);
        })
        .respond(
            200,
            lease(Some("runner-b"), "23", "2026-11-22T03:00:08.000000Z", 6),
        );
    let (r, _) = tokio::join!(
        b.tick(t("2026-11-22T03:00:08Z")),
        scenario(
            &mut api_b,
            vec![
                Expect::new(Method::GET, PATH)
                    .respond(200, lease(None, "22", "2026-11-22T03:00:07.000000Z", 5)),
                take
            ]
        )
    );
    assert_eq!(r.unwrap(), Role::Leader);
}

#[tokio::test(start_paused = true)]
async fn api_errors_and_timeouts_mean_not_leader() {
    let (mut e, mut api) = elector("runner-a");
    let mine = lease(Some("runner-a"), "1", "2026-11-22T03:00:00.000000Z", 0);
    let put = Expect::new(Method::PUT, PATH).respond(200, mine.clone());
    let (r, _) = tokio::join!(
        e.tick(t("2026-11-22T03:00:01Z")),
        scenario(
            &mut api,
            vec![Expect::new(Method::GET, PATH).respond(200, mine), put]
        )
    );
    assert_eq!(r.unwrap(), Role::Leader);

    let (r, _) = tokio::join!(
        e.tick(t("2026-11-22T03:00:02Z")),
        scenario(
            &mut api,
            vec![Expect::new(Method::GET, PATH).respond(
                500,
                status(500, "InternalError", "etcdserver: request timed out")
            )]
        )
    );
    assert!(r.unwrap_err().to_string().contains("get_lease"));
    assert_eq!(e.role(), Role::Unknown);
    assert!(!e.is_leader());

    let start = tokio::time::Instant::now();
    let (r, _) = tokio::join!(
        e.tick(t("2026-11-22T03:00:03Z")),
        scenario(&mut api, vec![Expect::new(Method::GET, PATH).hang()])
    );
    assert!(r.unwrap_err().to_string().contains("timed out"));
    assert!(start.elapsed() >= Duration::from_secs(5));
    assert!(!e.is_leader());
}
