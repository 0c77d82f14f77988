//! The watchers: kube-rs reflectors over the CoreDNS Service/EndpointSlices/pods and
//! the watched Services/EndpointSlices, turned into a [`ProbePlan`] on a watch channel.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;

use futures::stream::{BoxStream, SelectAll};
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio::time::Instant;

use super::api::ApiCall;
use super::config::{DiscoveryConfig, DiscoveryError};
use super::plan::{Expected, PlannedTarget, ProbePlan, RecordType};
use super::translate::{SERVICE_NAME_LABEL, all_targets, coredns_servers, unready_coredns_pods};

/// Discovery: build it with [`Discovery::new`], hand the [`Discovery::plan`] receiver to
/// the prober and the [`Discovery::pods`] store to the healer, then drive
/// [`Discovery::run`] in a task.
pub struct Discovery {
    client: Client,
    config: DiscoveryConfig,
    domain: String,
    plan_tx: watch::Sender<Arc<ProbePlan>>,
    api_tx: watch::Sender<bool>,
    coredns_svc: (Store<Service>, reflector::store::Writer<Service>),
    coredns_slices: (
        Store<EndpointSlice>,
        reflector::store::Writer<EndpointSlice>,
    ),
    pods: (Store<Pod>, reflector::store::Writer<Pod>),
    services: (Store<Service>, reflector::store::Writer<Service>),
    slices: (
        Store<EndpointSlice>,
        reflector::store::Writer<EndpointSlice>,
    ),
}

impl fmt::Debug for Discovery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Discovery")
            .field("config", &self.config)
            .field("domain", &self.domain)
            .finish_non_exhaustive()
    }
}

/// The resolv.conf read when no cluster domain is configured.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

impl Discovery {
    /// Validates `config` and resolves the cluster domain (configured, else the
    /// search path of `/etc/resolv.conf`; the file is read, its resolver never asked).
    pub fn new(client: Client, config: DiscoveryConfig) -> Result<Discovery, DiscoveryError> {
        let text = if config.cluster_domain.is_none() {
            std::fs::read_to_string(RESOLV_CONF).ok()
        } else {
            None
        };
        Discovery::with_resolv_conf(client, config, text.as_deref())
    }

    /// Like [`Discovery::new`] with the resolv.conf text given (tests, other paths).
    pub fn with_resolv_conf(
        client: Client,
        config: DiscoveryConfig,
        resolv_conf: Option<&str>,
    ) -> Result<Discovery, DiscoveryError> {
        config.validate()?;
        let domain = config.resolve_cluster_domain(resolv_conf).ok_or_else(|| {
            DiscoveryError::NoClusterDomain {
                path: RESOLV_CONF.into(),
            }
        })?;
        let (plan_tx, _) = watch::channel(Arc::new(ProbePlan {
            cluster_domain: domain.clone(),
            ..ProbePlan::default()
        }));
        Ok(Discovery {
            client,
            config,
            domain,
            plan_tx,
            api_tx: watch::channel(true).0,
            coredns_svc: reflector::store(),
            coredns_slices: reflector::store(),
            pods: reflector::store(),
            services: reflector::store(),
            slices: reflector::store(),
        })
    }

    /// The cluster domain in use.
    pub fn cluster_domain(&self) -> &str {
        &self.domain
    }

    /// The plan channel. It holds an empty plan until every watcher has listed once,
    /// then a new plan whenever the cluster changes what is probed or expected.
    pub fn plan(&self) -> watch::Receiver<Arc<ProbePlan>> {
        self.plan_tx.subscribe()
    }

    /// Whether the last watch request succeeded (`false` after an error until the next
    /// success): the healer refuses to act on a stale view.
    pub fn api_status(&self) -> watch::Receiver<bool> {
        self.api_tx.subscribe()
    }

    /// The CoreDNS pods (readiness, restarts, ownerReferences), for the healer.
    pub fn pods(&self) -> Store<Pod> {
        self.pods.0.clone()
    }

    /// Runs the watchers until `shutdown` completes. Watch errors are logged and
    /// retried with kube-rs' default backoff; the last good plan stays published.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let Discovery {
            client,
            config,
            domain,
            plan_tx,
            api_tx,
            coredns_svc,
            coredns_slices,
            pods,
            services,
            slices,
        } = self;
        let core_ns = config.coredns_namespace.clone();
        let mut streams: SelectAll<BoxStream<'static, (ApiCall, Result<(), watcher::Error>)>> =
            SelectAll::new();

        let sel = watcher::Config::default().labels(&config.coredns_selector);
        streams.push(watch_into(
            ApiCall::CoreDnsServices,
            Api::namespaced(client.clone(), &core_ns),
            sel.clone(),
            coredns_svc.1,
        ));
        streams.push(watch_into(
            ApiCall::CoreDnsEndpointSlices,
            Api::namespaced(client.clone(), &core_ns),
            watcher::Config::default().labels(SERVICE_NAME_LABEL),
            coredns_slices.1,
        ));
        streams.push(watch_into(
            ApiCall::CoreDnsPods,
            Api::namespaced(client.clone(), &core_ns),
            sel,
            pods.1,
        ));

        let svc_cfg = match &config.service_selector {
            Some(s) => watcher::Config::default().labels(s),
            None => watcher::Config::default(),
        };
        let slice_cfg = watcher::Config::default().labels(SERVICE_NAME_LABEL);
        // One store per kind even with several namespaces: a reflector per namespace
        // would each need their own store, so watch cluster-wide when no list is
        // given and otherwise merge per-namespace watchers into per-namespace stores.
        let mut ns_stores: Vec<(Store<Service>, Store<EndpointSlice>)> = Vec::new();
        if config.namespaces.is_empty() {
            streams.push(watch_into(
                ApiCall::WatchedServices,
                Api::all(client.clone()),
                svc_cfg,
                services.1,
            ));
            streams.push(watch_into(
                ApiCall::WatchedEndpointSlices,
                Api::all(client.clone()),
                slice_cfg,
                slices.1,
            ));
            ns_stores.push((services.0, slices.0));
        } else {
            for ns in &config.namespaces {
                let (sr, sw) = reflector::store();
                let (er, ew) = reflector::store();
                streams.push(watch_into(
                    ApiCall::WatchedServices,
                    Api::namespaced(client.clone(), ns),
                    svc_cfg.clone(),
                    sw,
                ));
                streams.push(watch_into(
                    ApiCall::WatchedEndpointSlices,
                    Api::namespaced(client.clone(), ns),
                    slice_cfg.clone(),
                    ew,
                ));
                ns_stores.push((sr, er));
            }
        }

        let mut builder = PlanBuilder::new(domain, config);
        let shutdown = shutdown.fuse();
        futures::pin_mut!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                item = streams.next() => {
                    let Some((call, res)) = item else { return };
                    api_tx.send_if_modified(|ok| std::mem::replace(ok, res.is_ok()) != res.is_ok());
                    if let Err(e) = res {
                        tracing::warn!(api_call = call.as_str(), error = %e, "kubernetes watch failed; retrying with backoff");
                        continue;
                    }
                }
            }
            let ready = is_ready(&coredns_svc.0)
                && is_ready(&coredns_slices.0)
                && is_ready(&pods.0)
                && ns_stores.iter().all(|(s, e)| is_ready(s) && is_ready(e));
            if !ready {
                continue;
            }
            let core_services = coredns_svc.0.state();
            let core_slices = coredns_slices.0.state();
            let watched_services: Vec<Arc<Service>> =
                ns_stores.iter().flat_map(|(s, _)| s.state()).collect();
            let watched_slices: Vec<Arc<EndpointSlice>> =
                ns_stores.iter().flat_map(|(_, e)| e.state()).collect();
            let plan = builder.build(
                &core_services,
                &core_slices,
                &watched_services,
                &watched_slices,
            );
            plan_tx.send_if_modified(|cur| {
                if **cur == plan {
                    false
                } else {
                    tracing::info!(
                        servers = plan.servers.len(),
                        targets = plan.targets.len(),
                        "probe plan updated"
                    );
                    *cur = Arc::new(plan);
                    true
                }
            });
        }
    }
}

fn is_ready<K: kube::Resource + Clone>(store: &Store<K>) -> bool
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store
        .wait_until_ready()
        .now_or_never()
        .is_some_and(|r| r.is_ok())
}

fn watch_into<K>(
    call: ApiCall,
    api: Api<K>,
    cfg: watcher::Config,
    writer: reflector::store::Writer<K>,
) -> BoxStream<'static, (ApiCall, Result<(), watcher::Error>)>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + fmt::Debug + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Default,
{
    reflector::reflector(writer, watcher(api, cfg).default_backoff())
        .map(move |r| (call, r.map(|_| ())))
        .boxed()
}

/// Turns store contents into a plan, remembering since when each expectation holds.
#[derive(Debug)]
pub struct PlanBuilder {
    domain: String,
    config: DiscoveryConfig,
    since: BTreeMap<(String, RecordType), (Expected, u64)>,
    start: Instant,
}

impl PlanBuilder {
    /// A builder whose clock starts now (tokio time, so tests can pause it).
    pub fn new(domain: String, config: DiscoveryConfig) -> PlanBuilder {
        PlanBuilder {
            domain,
            config,
            since: BTreeMap::new(),
            start: Instant::now(),
        }
    }

    /// Microseconds since the builder started (the clock of `expected_since_us`).
    pub fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    /// Builds the plan. Targets whose expectation did not change keep their
    /// `expected_since_us`; new or changed ones start their grace period now.
    pub fn build(
        &mut self,
        core_services: &[Arc<Service>],
        core_slices: &[Arc<EndpointSlice>],
        services: &[Arc<Service>],
        slices: &[Arc<EndpointSlice>],
    ) -> ProbePlan {
        let now = self.now_us();
        let cs: Vec<&Service> = core_services.iter().map(AsRef::as_ref).collect();
        let ce: Vec<&EndpointSlice> = core_slices.iter().map(AsRef::as_ref).collect();
        let ws: Vec<&Service> = services.iter().map(AsRef::as_ref).collect();
        let we: Vec<&EndpointSlice> = slices.iter().map(AsRef::as_ref).collect();
        let servers = coredns_servers(&cs, &ce);
        let unready = unready_coredns_pods(&cs, &ce);
        let targets = all_targets(
            &ws,
            &we,
            &self.domain,
            self.config.opt_in_annotation.as_deref(),
        );
        let mut since = BTreeMap::new();
        let planned = targets
            .into_iter()
            .map(|t| {
                let key = (t.qname.clone(), t.rtype);
                let at = match self.since.get(&key) {
                    Some((e, at)) if *e == t.expected => *at,
                    _ => now,
                };
                since.insert(key, (t.expected.clone(), at));
                PlannedTarget {
                    target: t,
                    expected_since_us: at,
                    grace: self.config.drift_grace,
                }
            })
            .collect();
        self.since = since;
        ProbePlan {
            servers,
            unready,
            targets: planned,
            cluster_domain: self.domain.clone(),
        }
    }
}
