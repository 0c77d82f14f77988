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
//! # Wiring into the runner
//!
//! ```no_run
//! use dnswarden::heal::{self, HealMetrics, HealSettings, Healer, HealthSnapshot, LeaderElector};
//! use dnswarden::kube::{self as dkube, Discovery, KubeSettings};
//!
//! # async fn wire(
//! #     kube_cfg: KubeSettings,
//! #     heal_cfg: HealSettings,
//! #     registry: &mut prometheus_client::registry::Registry,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! let client = dkube::client().await?; // in-cluster config, else kubeconfig
//! let discovery = Discovery::new(client.clone(), kube_cfg.discovery()?)?;
//! // Probe plan.servers (pods + ClusterIP) and, when healing, plan.unready, for every
//! // plan.targets entry; hand target.core_expectation() to the core scorer.
//! let plan = discovery.plan(); // watch::Receiver<Arc<ProbePlan>>, updated live
//! let pods = discovery.pods();
//! let api_ok = discovery.api_status();
//! tokio::spawn(discovery.run(std::future::pending()));
//!
//! let ns = std::env::var("POD_NAMESPACE").unwrap_or_default();
//! let me = std::env::var("POD_NAME").unwrap_or_default();
//! let (heal_cfg, lease) = heal_cfg.into_configs(&kube_cfg.coredns_namespace, &ns, &me, true)?;
//! let metrics = HealMetrics::default();
//! metrics.register(registry);
//! // On every server verdict change of a pod server (server name = pod name):
//! // health_tx.send_modify(|s| { s.pods.insert(pod, PodHealth::from_change(&change, causes)); });
//! let (health_tx, health_rx) = tokio::sync::watch::channel(HealthSnapshot::default());
//! let healer = Healer::new(client.clone(), heal_cfg, metrics);
//! let elector = lease.map(|l| LeaderElector::new(client, l));
//! // The clock must be the one PodHealth::since_us uses (the runner's µs clock).
//! let start = tokio::time::Instant::now();
//! let clock = move || start.elapsed().as_micros() as u64;
//! tokio::spawn(heal::run_healer(healer, pods, health_rx, api_ok, elector, clock, std::future::pending()));
//! # drop((plan, health_tx));
//! # Ok(())
//! # }
//! ```

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
