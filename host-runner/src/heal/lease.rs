//! Leader election over a `coordination.k8s.io/v1` Lease: only the leader heals.
//!
//! A small state machine, one [`LeaderElector::tick`] per period:
//! get the Lease; absent → create it holding it; held by us → renew (replace with
//! the read resourceVersion); held by another and renewed within its duration (as
//! observed on *our* clock, so clock skew does not matter) → follower; expired or
//! released → take it over (replace, `leaseTransitions + 1`). A conflict (409) on
//! create/replace means someone else won: follower. Any API error or timeout →
//! not leader (never heal on a stale view). [`LeaderElector::release`] hands the
//! Lease over on shutdown by clearing the holder.

use std::fmt;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, PostParams};
use tokio::time::Instant;

use crate::kube::api::ApiCall;

/// Lease settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseConfig {
    /// Lease name (default `dnswarden-healer`).
    pub name: String,
    /// Namespace of the runner.
    pub namespace: String,
    /// This replica's identity (pod name).
    pub identity: String,
    /// Lease duration (default 15 s); renew at least every third of it.
    pub duration: Duration,
    /// Timeout of each API request (default 5 s).
    pub request_timeout: Duration,
}

impl LeaseConfig {
    /// Defaults for a namespace and identity.
    pub fn new(namespace: impl Into<String>, identity: impl Into<String>) -> LeaseConfig {
        LeaseConfig {
            name: "dnswarden-healer".into(),
            namespace: namespace.into(),
            identity: identity.into(),
            duration: Duration::from_secs(15),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// The elector's view of itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Holds the Lease.
    Leader,
    /// Another replica holds it.
    Follower,
    /// The last attempt failed (API error or timeout): treated as not leader.
    Unknown,
}

/// Why a tick failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The API answered with an error.
    #[error("lease {call}: {source}")]
    Api {
        /// The call.
        call: &'static str,
        /// The error.
        source: kube::Error,
    },
    /// The API did not answer in time.
    #[error("lease {call}: timed out")]
    Timeout {
        /// The call.
        call: &'static str,
    },
}

/// What identifies one version of the Lease: holder, renewTime, resourceVersion.
type Observed = (Option<String>, Option<Timestamp>, Option<String>);

/// The leader-election state machine.
pub struct LeaderElector {
    api: Api<Lease>,
    cfg: LeaseConfig,
    role: Role,
    /// (holder, renewTime, resourceVersion) last seen, and when we first saw it.
    observed: Option<(Observed, Instant)>,
}

impl fmt::Debug for LeaderElector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LeaderElector")
            .field("cfg", &self.cfg)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}
fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

impl LeaderElector {
    /// An elector (no request is made until the first tick).
    pub fn new(client: Client, cfg: LeaseConfig) -> LeaderElector {
        LeaderElector {
            api: Api::namespaced(client, &cfg.namespace),
            cfg,
            role: Role::Unknown,
            observed: None,
        }
    }

    /// The current role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether this replica is the leader.
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }

    async fn timed<T>(
        &self,
        call: ApiCall,
        fut: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, LeaseError> {
        match tokio::time::timeout(self.cfg.request_timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(source)) => Err(LeaseError::Api {
                call: call.as_str(),
                source,
            }),
            Err(_) => Err(LeaseError::Timeout {
                call: call.as_str(),
            }),
        }
    }

    fn spec(&self, now: Timestamp, acquire: Option<Timestamp>, transitions: i32) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.cfg.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(self.cfg.duration.as_secs()).unwrap_or(i32::MAX),
            ),
            acquire_time: acquire.map(MicroTime),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..LeaseSpec::default()
        }
    }

    /// One election step at wall-clock `now` (written into the Lease).
    pub async fn tick(&mut self, now: Timestamp) -> Result<Role, LeaseError> {
        let res = self.step(now).await;
        self.role = match &res {
            Ok(r) => *r,
            Err(e) => {
                tracing::warn!(error = %e, "leader election failed; not healing until it succeeds");
                Role::Unknown
            }
        };
        res
    }

    async fn step(&mut self, now: Timestamp) -> Result<Role, LeaseError> {
        let name = self.cfg.name.clone();
        let current = match self.timed(ApiCall::GetLease, self.api.get(&name)).await {
            Ok(l) => Some(l),
            Err(LeaseError::Api { source, .. }) if is_not_found(&source) => None,
            Err(e) => return Err(e),
        };
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name),
                    namespace: Some(self.cfg.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(self.spec(now, Some(now), 0)),
            };
            return match self
                .timed(
                    ApiCall::CreateLease,
                    self.api.create(&PostParams::default(), &lease),
                )
                .await
            {
                Ok(_) => Ok(Role::Leader),
                Err(LeaseError::Api { source, .. }) if is_conflict(&source) => Ok(Role::Follower),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let key = (
            holder.clone(),
            spec.renew_time.as_ref().map(|t| t.0),
            lease.metadata.resource_version.clone(),
        );
        let first_seen = match &self.observed {
            Some((k, at)) if *k == key => *at,
            _ => Instant::now(),
        };
        self.observed = Some((key, first_seen));
        let duration = spec.lease_duration_seconds.map_or(self.cfg.duration, |s| {
            Duration::from_secs(u64::try_from(s).unwrap_or(0))
        });
        let mine = holder.as_deref() == Some(self.cfg.identity.as_str());
        let expired = holder.is_none() || first_seen.elapsed() >= duration;
        if !mine && !expired {
            return Ok(Role::Follower);
        }
        let transitions = spec.lease_transitions.unwrap_or(0);
        lease.spec = Some(if mine {
            self.spec(now, spec.acquire_time.map(|t| t.0), transitions)
        } else {
            self.spec(now, Some(now), transitions.saturating_add(1))
        });
        match self
            .timed(
                ApiCall::ReplaceLease,
                self.api.replace(&name, &PostParams::default(), &lease),
            )
            .await
        {
            Ok(_) => Ok(Role::Leader),
            Err(LeaseError::Api { source, .. }) if is_conflict(&source) => Ok(Role::Follower),
            Err(e) => Err(e),
        }
    }

    /// Hands the Lease over (clears the holder) if we hold it; call on shutdown.
    pub async fn release(&mut self, now: Timestamp) -> Result<(), LeaseError> {
        if self.role != Role::Leader {
            return Ok(());
        }
        self.role = Role::Unknown;
        let name = self.cfg.name.clone();
        let mut lease = self.timed(ApiCall::GetLease, self.api.get(&name)).await?;
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(MicroTime(now));
        self.timed(
            ApiCall::ReplaceLease,
            self.api.replace(&name, &PostParams::default(), &lease),
        )
        .await
        .map(|_| ())
    }
}
