//! Guarded self-healing of CoreDNS (modes `off`, `dry-run` (default), `enforce`).
//!
//! * [`decide`](mod@decide): the pure decision over verdicts, Kubernetes' view, health endpoints,
//!   the clock and the guardrail state — property-tested.
//! * [`actions`]: eviction, rollout restart, owner lookup, Events, health endpoints.
//! * [`lease`]: leader election over a coordination.k8s.io/v1 Lease.
//! * [`audit`]: the JSON audit line and the `dnswarden_selfheal_*` metrics.
//! * [`healer`]: the loop tying them together.
//! * [`settings`]: the `heal:` section of the YAML configuration.

pub mod actions;
pub mod audit;
pub mod decide;
pub mod healer;
pub mod lease;
pub mod settings;

pub use audit::HealMetrics;
pub use decide::{
    Action, ClusterView, Decision, GuardState, Mode, PodHealth, PodView, Policy, Refusal, Verdict,
    decide,
};
pub use healer::{HealConfig, Healer, HealthSnapshot, run_healer};
pub use lease::{LeaderElector, LeaseConfig, Role};
pub use settings::HealSettings;
