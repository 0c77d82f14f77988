//! The API side of healing: eviction, rollout restart, owner lookup, Events, and the
//! pod's own health endpoints. Every request names its [`ApiCall`] and has a timeout.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ObjectReference, Pod};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::Client;
use kube::api::{Api, EvictParams, Patch, PatchParams, PostParams};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::kube::api::ApiCall;

/// The field manager and reporting controller name.
pub const FIELD_MANAGER: &str = "dnswarden";
/// `reportingController` of the Events.
pub const REPORTING_CONTROLLER: &str = "dnswarden.io/healer";
/// The annotation a rollout restart sets (as `kubectl rollout restart` does).
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// A failed API request.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// The eviction was refused because a PodDisruptionBudget forbids it (HTTP 429).
    #[error("{call}: blocked by a PodDisruptionBudget")]
    BlockedByPdb {
        /// The call.
        call: &'static str,
    },
    /// The API answered with an error.
    #[error("{call}: {source}")]
    Api {
        /// The call.
        call: &'static str,
        /// The error.
        source: kube::Error,
    },
    /// No answer in time.
    #[error("{call}: timed out")]
    Timeout {
        /// The call.
        call: &'static str,
    },
}

impl ActionError {
    /// Bounded label.
    pub fn kind(&self) -> &'static str {
        match self {
            ActionError::BlockedByPdb { .. } => "blocked_by_pdb",
            ActionError::Api { .. } => "api_error",
            ActionError::Timeout { .. } => "timeout",
        }
    }
}

/// API calls against the CoreDNS namespace.
pub struct KubeActions {
    client: Client,
    namespace: String,
    identity: String,
    timeout: Duration,
    /// ReplicaSet name → owning Deployment (ReplicaSets never change owner).
    rs_owner: HashMap<String, Option<String>>,
    seq: AtomicU64,
}

impl fmt::Debug for KubeActions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeActions")
            .field("namespace", &self.namespace)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

/// The strategic merge patch of a rollout restart.
pub fn restart_patch(now: Timestamp) -> serde_json::Value {
    serde_json::json!({
        "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now.to_string()}}}}
    })
}

fn owner_of_kind<'a>(meta: &'a ObjectMeta, kind: &str) -> Option<&'a str> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.kind == kind && o.controller == Some(true))
        .map(|o| o.name.as_str())
}

impl KubeActions {
    /// Actions in `namespace` (the CoreDNS namespace), reporting as `identity`.
    pub fn new(
        client: Client,
        namespace: impl Into<String>,
        identity: impl Into<String>,
        timeout: Duration,
    ) -> KubeActions {
        KubeActions {
            client,
            namespace: namespace.into(),
            identity: identity.into(),
            timeout,
            rs_owner: HashMap::new(),
            seq: AtomicU64::new(0),
        }
    }

    async fn timed<T>(
        &self,
        call: ApiCall,
        fut: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, ActionError> {
        match tokio::time::timeout(self.timeout, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(kube::Error::Api(s))) if call == ApiCall::EvictPod && s.code == 429 => {
                Err(ActionError::BlockedByPdb {
                    call: call.as_str(),
                })
            }
            Ok(Err(source)) => Err(ActionError::Api {
                call: call.as_str(),
                source,
            }),
            Err(_) => Err(ActionError::Timeout {
                call: call.as_str(),
            }),
        }
    }

    /// Evicts a pod through the Eviction API (PodDisruptionBudgets apply).
    pub async fn evict(&self, pod: &str) -> Result<(), ActionError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        self.timed(ApiCall::EvictPod, api.evict(pod, &EvictParams::default()))
            .await
            .map(|_| ())
    }

    /// Rollout-restarts a Deployment: strategic merge patch of the pod template's
    /// `kubectl.kubernetes.io/restartedAt` annotation.
    pub async fn rollout_restart(
        &self,
        deployment: &str,
        now: Timestamp,
    ) -> Result<(), ActionError> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), &self.namespace);
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        self.timed(
            ApiCall::PatchDeployment,
            api.patch(deployment, &pp, &Patch::Strategic(restart_patch(now))),
        )
        .await
        .map(|_| ())
    }

    /// The Deployment owning a pod: Pod → (controller) ReplicaSet → (controller)
    /// Deployment. One GET per ReplicaSet, cached.
    pub async fn deployment_of(&mut self, pod: &Pod) -> Result<Option<String>, ActionError> {
        let Some(rs) = owner_of_kind(&pod.metadata, "ReplicaSet") else {
            return Ok(None);
        };
        if let Some(d) = self.rs_owner.get(rs) {
            return Ok(d.clone());
        }
        let api: Api<ReplicaSet> = Api::namespaced(self.client.clone(), &self.namespace);
        let found = self.timed(ApiCall::GetReplicaSet, api.get(rs)).await?;
        let dep = owner_of_kind(&found.metadata, "Deployment").map(str::to_owned);
        self.rs_owner.insert(rs.to_owned(), dep.clone());
        Ok(dep)
    }

    /// Creates an `events.k8s.io/v1` Event about `regarding` (a Pod or Deployment in
    /// the CoreDNS namespace).
    pub async fn event(
        &self,
        regarding: Regarding<'_>,
        ev: EventSpec<'_>,
        now: Timestamp,
    ) -> Result<(), ActionError> {
        let api: Api<Event> = Api::namespaced(self.client.clone(), &self.namespace);
        let (kind, api_version) = match regarding {
            Regarding::Pod(_) => ("Pod", "v1"),
            Regarding::Deployment(_) => ("Deployment", "apps/v1"),
        };
        let name = regarding.name();
        let note: String = ev.note.chars().take(1000).collect();
        let event = Event {
            metadata: ObjectMeta {
                // Unique per object and step: wall time plus a sequence number.
                name: Some(format!(
                    "{name}.dnswarden.{:x}.{}",
                    now.as_nanosecond(),
                    self.seq.fetch_add(1, Ordering::Relaxed)
                )),
                namespace: Some(self.namespace.clone()),
                ..ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some(ev.action.into()),
            reason: Some(ev.reason.into()),
            note: Some(note),
            type_: Some(if ev.warning { "Warning" } else { "Normal" }.into()),
            reporting_controller: Some(REPORTING_CONTROLLER.into()),
            reporting_instance: Some(self.identity.clone()),
            regarding: Some(ObjectReference {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
                name: Some(name.into()),
                namespace: Some(self.namespace.clone()),
                ..ObjectReference::default()
            }),
            ..Event::default()
        };
        self.timed(
            ApiCall::CreateEvent,
            api.create(&PostParams::default(), &event),
        )
        .await
        .map(|_| ())
    }
}

/// The object an Event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Regarding<'a> {
    /// A CoreDNS pod.
    Pod(&'a str),
    /// The CoreDNS Deployment.
    Deployment(&'a str),
}

impl Regarding<'_> {
    /// The object name.
    pub fn name(&self) -> &str {
        match self {
            Regarding::Pod(n) | Regarding::Deployment(n) => n,
        }
    }
}

/// The content of an Event.
#[derive(Debug, Clone, Copy)]
pub struct EventSpec<'a> {
    /// `action` (e.g. `EvictPod`).
    pub action: &'a str,
    /// `reason` (e.g. `Refused`, `Taken`).
    pub reason: &'a str,
    /// Human-readable note (cut to 1000 characters).
    pub note: &'a str,
    /// Warning rather than Normal.
    pub warning: bool,
}

/// GETs `http://<addr><path>` and says whether it answered 200 within `timeout`
/// (CoreDNS `:8181/ready` and `:8080/health`). In-cluster only: the caller passes
/// pod addresses from the EndpointSlices.
pub async fn http_ok(addr: SocketAddr, path: &str, timeout: Duration) -> bool {
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        let req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\nUser-Agent: dnswarden\r\n\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut buf = [0u8; 32];
        let mut n = 0;
        while n < 12 {
            let got = s.read(&mut buf[n..]).await?;
            if got == 0 {
                break;
            }
            n += got;
        }
        Ok::<bool, std::io::Error>(
            buf[..n].starts_with(b"HTTP/1.") && buf.get(9..12) == Some(b"200"),
        )
    };
    matches!(tokio::time::timeout(timeout, attempt).await, Ok(Ok(true)))
}
