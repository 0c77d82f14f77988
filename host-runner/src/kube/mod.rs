//! Kubernetes discovery: finds the CoreDNS pods and the names that matter, and what
//! every answer should be.
//!
//! * [`config`]: [`DiscoveryConfig`] and the cluster domain (config or resolv.conf).
//! * [`translate`]: pure Service + EndpointSlice → servers/targets functions.
//! * [`plan`]: the output, a [`ProbePlan`] of servers and targets with expected
//!   answer sets and a drift grace period.
//! * [`discovery`]: the kube-rs watchers/reflectors publishing the plan.
//! * [`api`]: the table of every API call made (and the RBAC it needs).
//! * [`settings`]: the `kube:` section of the YAML configuration.
//!
//! Wiring: `Discovery::new(client, cfg)?`, give `discovery.plan()` to the prober and
//! `discovery.pods()` to the healer, then `tokio::spawn(discovery.run(shutdown))`.

pub mod api;
pub mod config;
pub mod discovery;
pub mod plan;
pub mod settings;
pub mod translate;

pub use config::{DiscoveryConfig, DiscoveryError};
pub use discovery::Discovery;
pub use plan::{Expected, PlannedTarget, ProbePlan, RecordType, Server, ServerKind, Target};
pub use settings::KubeSettings;

/// A client from the in-cluster config, or the kubeconfig outside a cluster.
pub async fn client() -> Result<kube::Client, kube::Error> {
    kube::Client::try_default().await
}
