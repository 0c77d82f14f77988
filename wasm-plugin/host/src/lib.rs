//! A small proxy-wasm host on wasmtime, built to test and benchmark the dnswarden filter.
//!
//! It implements the host side of the proxy-wasm ABI 0.2.1 that the Rust SDK
//! (`proxy-wasm` 0.2.x) calls, plus the handful of WASI preview1 imports that Rust's
//! `std` pulls in on `wasm32-wasip1`. Everything a filter does is recorded so tests
//! can assert on it:
//!
//! * logs ([`Vm::logs`]), stdout / stderr,
//! * metrics by name ([`Vm::metric`]): counters, gauges and histogram samples,
//! * every callback's returned [`Action`] ([`Vm::calls`]),
//! * every modification of a buffer or header map, every stream continue / close and
//!   local response ([`Vm::events`]),
//! * the bytes each direction forwarded ([`Vm::stream`]), which is how a test proves
//!   that a filter passed the traffic through unchanged.
//!
//! Time only moves when the test says so ([`Vm::set_time_ns`], [`Vm::advance_ms`]);
//! random bytes come from a fixed-seed generator. Buffers follow Envoy's model: data
//! a callback pauses on stays buffered and is handed over again, together with the
//! next chunk; data a callback continues on is forwarded.
//!
//! A WebAssembly trap (a panic under `panic = "abort"`, an out-of-bounds pointer, an
//! unimplemented import) fails the call with an error and poisons the VM, as Envoy
//! would.

pub mod abi;

use std::collections::HashMap;
use std::fmt;

use wasmtime::{
    Caller, Engine, Extern, Func, Instance, Linker, Memory, Module, Store, TypedFunc, bail,
    format_err,
};

pub use abi::{Action, LogLevel, MapType, MetricKind, PeerType};
pub use wasmtime::{Error, Result};

const ENV: &str = "env";
const WASI: &str = "wasi_snapshot_preview1";
const ROOT_ID: u32 = 1;
/// WASI errno values used here.
const ERRNO_SUCCESS: i32 = 0;
const ERRNO_BADF: i32 = 8;
const ERRNO_INVAL: i32 = 28;

/// One log line the filter wrote through `proxy_log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    /// Level the filter chose.
    pub level: LogLevel,
    /// The message (lossy UTF-8).
    pub message: String,
}

/// A metric the filter defined, with its current value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metric {
    /// Name exactly as defined by the filter.
    pub name: String,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// Counter / gauge value (histograms: number of samples).
    pub value: i64,
    /// Recorded histogram samples, in order.
    pub samples: Vec<u64>,
}

/// Something the filter did that changes traffic or stream state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `proxy_set_buffer_bytes`.
    BufferModified {
        /// Context whose buffer was touched.
        context: u32,
        /// ABI buffer type.
        buffer: u32,
        /// Start offset.
        start: u32,
        /// Number of bytes replaced.
        size: u32,
        /// Replacement bytes.
        data: Vec<u8>,
    },
    /// A header / trailer map was changed (add, replace, remove or set pairs).
    HeadersModified {
        /// Context whose map was touched.
        context: u32,
        /// Which map.
        map: u32,
        /// `add`, `replace`, `remove` or `set_pairs`.
        op: &'static str,
        /// Key (empty for `set_pairs`).
        key: Vec<u8>,
    },
    /// `proxy_continue_stream`.
    ContinueStream {
        /// Current context.
        context: u32,
        /// ABI stream type.
        stream: u32,
    },
    /// `proxy_close_stream`.
    CloseStream {
        /// Current context.
        context: u32,
        /// ABI stream type.
        stream: u32,
    },
    /// `proxy_send_local_response`.
    LocalResponse {
        /// Current context.
        context: u32,
        /// HTTP status.
        status: u32,
    },
    /// `proxy_set_property`.
    SetProperty {
        /// Property path (segments joined by NUL).
        path: Vec<u8>,
    },
    /// `proxy_done`.
    Done,
}

/// One callback the host made into the filter, with the action it returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// Context the callback ran in.
    pub context: u32,
    /// Export name, e.g. `proxy_on_downstream_data`.
    pub callback: &'static str,
    /// The action returned, for callbacks that return one.
    pub action: Option<Action>,
}

/// One direction of a stream (L4 data or an HTTP body) as the host models it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flow {
    /// Everything the peer sent, in order.
    pub received: Vec<u8>,
    /// Bytes buffered because the filter paused (handed over again with the next chunk).
    pub pending: Vec<u8>,
    /// Bytes the host forwarded after the filter continued.
    pub forwarded: Vec<u8>,
}

/// Per-context state: L4 flows, HTTP headers, bodies and trailers.
#[derive(Debug, Clone, Default)]
pub struct StreamState {
    /// Client to server L4 data.
    pub downstream: Flow,
    /// Server to client L4 data.
    pub upstream: Flow,
    /// HTTP request body.
    pub request_body: Flow,
    /// HTTP response body.
    pub response_body: Flow,
    /// Header and trailer maps, indexed by [`MapType`] order.
    pub maps: [Vec<(Vec<u8>, Vec<u8>)>; 4],
    /// Set once the connection was closed by either side.
    pub closed: bool,
}

impl StreamState {
    fn flow_mut(&mut self, buffer: u32) -> Option<&mut Flow> {
        match buffer {
            abi::buffer::HTTP_REQUEST_BODY => Some(&mut self.request_body),
            abi::buffer::HTTP_RESPONSE_BODY => Some(&mut self.response_body),
            abi::buffer::DOWNSTREAM_DATA => Some(&mut self.downstream),
            abi::buffer::UPSTREAM_DATA => Some(&mut self.upstream),
            _ => None,
        }
    }

    fn map_mut(&mut self, map: MapType) -> &mut Vec<(Vec<u8>, Vec<u8>)> {
        let index = match map {
            MapType::RequestHeaders => 0,
            MapType::RequestTrailers => 1,
            MapType::ResponseHeaders => 2,
            MapType::ResponseTrailers => 3,
        };
        &mut self.maps[index]
    }
}

/// Everything the host keeps between calls (the wasmtime store data).
#[derive(Debug, Default)]
pub struct HostState {
    now_ns: u64,
    rng: u64,
    log_level: u32,
    logs: Vec<LogRecord>,
    metrics: Vec<Metric>,
    properties: HashMap<Vec<u8>, Vec<u8>>,
    vm_config: Vec<u8>,
    plugin_config: Vec<u8>,
    tick_period_ms: u32,
    current: u32,
    streams: HashMap<u32, StreamState>,
    events: Vec<Event>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    host_calls: u64,
    /// The guest's exports the host calls use, looked up once after instantiation
    /// (a lookup by name per host call was most of this host's own cost).
    exports: Exports,
}

/// The guest's `memory` and `proxy_on_memory_allocate`.
#[derive(Default)]
struct Exports {
    memory: Option<Memory>,
    alloc: Option<TypedFunc<i32, i32>>,
}

impl fmt::Debug for Exports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Exports")
            .field("memory", &self.memory.is_some())
            .field("alloc", &self.alloc.is_some())
            .finish()
    }
}

/// Options for a new VM.
#[derive(Debug, Clone)]
pub struct VmOptions {
    /// Bytes returned for `VmConfiguration`.
    pub vm_config: Vec<u8>,
    /// Start time in nanoseconds since the Unix epoch.
    pub start_ns: u64,
    /// What `proxy_get_log_level` reports (0 = trace).
    pub log_level: LogLevel,
}

impl Default for VmOptions {
    fn default() -> Self {
        Self {
            vm_config: Vec::new(),
            // 2026-01-01T00:00:00Z: a fixed, plausible wall clock.
            start_ns: 1_767_225_600_000_000_000,
            log_level: LogLevel::Trace,
        }
    }
}

/// A compiled filter module, ready to be instantiated many times.
pub struct Host {
    engine: Engine,
    module: Module,
    linker: Linker<HostState>,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host").finish_non_exhaustive()
    }
}

impl Host {
    /// Compiles a `.wasm` filter and links the proxy-wasm and WASI imports.
    ///
    /// # Errors
    /// The module does not compile, or an import cannot be linked.
    pub fn new(wasm: &[u8]) -> Result<Self> {
        // `DNSWARDEN_WASM_PERFMAP=1`: write /tmp/perf-<pid>.map so `perf report` names
        // the module's functions (profiling the filter through the benches).
        let mut config = wasmtime::Config::new();
        if std::env::var_os("DNSWARDEN_WASM_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config)?;
        let module = Module::new(&engine, wasm)?;
        let mut linker = Linker::new(&engine);
        link_proxy_wasm(&mut linker)?;
        link_wasi(&mut linker)?;
        // Imports this host does not implement trap when called, with the name.
        linker.define_unknown_imports_as_traps(&module)?;
        Ok(Self {
            engine,
            module,
            linker,
        })
    }

    /// Names of the module's imports, as `module::name`.
    #[must_use]
    pub fn imports(&self) -> Vec<String> {
        self.module
            .imports()
            .map(|i| format!("{}::{}", i.module(), i.name()))
            .collect()
    }

    /// Instantiates the filter and runs its `_initialize` (the SDK's `main!`).
    ///
    /// # Errors
    /// Instantiation or initialisation traps.
    pub fn instantiate(&self, options: VmOptions) -> Result<Vm> {
        let state = HostState {
            now_ns: options.start_ns,
            rng: 0x9E37_79B9_7F4A_7C15,
            log_level: options.log_level.raw(),
            vm_config: options.vm_config,
            ..HostState::default()
        };
        let mut store = Store::new(&self.engine, state);
        store.call_hook(|mut ctx, hook| {
            if matches!(hook, wasmtime::CallHook::CallingHost) {
                ctx.data_mut().host_calls += 1;
            }
            Ok(())
        });
        let instance = self.linker.instantiate(&mut store, &self.module)?;
        let memory = instance.get_memory(&mut store, "memory");
        let alloc = instance
            .get_typed_func::<i32, i32>(&mut store, "proxy_on_memory_allocate")
            .ok();
        store.data_mut().exports = Exports { memory, alloc };
        let mut vm = Vm {
            store,
            instance,
            next_id: ROOT_ID + 1,
            failed: None,
            calls: Vec::new(),
            recording: true,
            funcs: Vec::new(),
        };
        for init in ["_initialize", "_start"] {
            if vm.instance.get_func(&mut vm.store, init).is_some() {
                vm.invoke(0, init, &[])?;
                break;
            }
        }
        Ok(vm)
    }
}

/// A callback export: the data callbacks (`(context, size, end_of_stream) -> action`)
/// typed once, so a call does not check the types of its values again; any other with
/// its result count.
#[derive(Clone)]
enum Callback {
    Data(TypedFunc<(i32, i32, i32), i32>),
    Other(Func, usize),
}

/// One running filter VM with its root context.
pub struct Vm {
    store: Store<HostState>,
    instance: Instance,
    next_id: u32,
    failed: Option<String>,
    calls: Vec<CallRecord>,
    recording: bool,
    /// Callback exports by name, looked up on first use (`None`: not exported).
    funcs: Vec<(&'static str, Option<Callback>)>,
}

impl fmt::Debug for Vm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vm")
            .field("state", self.store.data())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl Vm {
    /// Creates the root context, then runs `on_vm_start` and `on_configure` with the
    /// given plugin configuration. Returns what `on_configure` returned.
    ///
    /// # Errors
    /// A callback trapped.
    pub fn start(&mut self, plugin_config: &[u8]) -> Result<bool> {
        self.invoke(ROOT_ID, "proxy_on_context_create", &[ROOT_ID as i32, 0])?;
        let vm_len = self.store.data().vm_config.len() as i32;
        let started = self.invoke(ROOT_ID, "proxy_on_vm_start", &[ROOT_ID as i32, vm_len])?;
        if started == Some(0) {
            return Ok(false);
        }
        self.configure(plugin_config)
    }

    /// Runs `on_configure` again with a new plugin configuration.
    ///
    /// # Errors
    /// The callback trapped.
    pub fn configure(&mut self, plugin_config: &[u8]) -> Result<bool> {
        self.store.data_mut().plugin_config = plugin_config.to_vec();
        let len = plugin_config.len() as i32;
        let ok = self.invoke(ROOT_ID, "proxy_on_configure", &[ROOT_ID as i32, len])?;
        Ok(ok.unwrap_or(1) != 0)
    }

    /// Calls the root context's `on_tick`.
    ///
    /// # Errors
    /// The callback trapped.
    pub fn tick(&mut self) -> Result<()> {
        self.invoke(ROOT_ID, "proxy_on_tick", &[ROOT_ID as i32])
            .map(drop)
    }

    /// The tick period the filter asked for, in milliseconds (0 = none).
    #[must_use]
    pub fn tick_period_ms(&self) -> u32 {
        self.store.data().tick_period_ms
    }

    /// Opens an L4 connection: creates a stream context and calls `on_new_connection`.
    ///
    /// # Errors
    /// A callback trapped.
    pub fn new_connection(&mut self) -> Result<(u32, Action)> {
        let id = self.create_context()?;
        let action = self.invoke_action(id, "proxy_on_new_connection", &[id as i32])?;
        Ok((id, action))
    }

    /// Hands a chunk of client data to the filter. `end_of_stream` marks a half close.
    ///
    /// # Errors
    /// The callback trapped.
    pub fn downstream_data(
        &mut self,
        id: u32,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> Result<Action> {
        self.flow_call(
            id,
            abi::buffer::DOWNSTREAM_DATA,
            "proxy_on_downstream_data",
            chunk,
            end_of_stream,
        )
    }

    /// Hands a chunk of server data to the filter.
    ///
    /// # Errors
    /// The callback trapped.
    pub fn upstream_data(&mut self, id: u32, chunk: &[u8], end_of_stream: bool) -> Result<Action> {
        self.flow_call(
            id,
            abi::buffer::UPSTREAM_DATA,
            "proxy_on_upstream_data",
            chunk,
            end_of_stream,
        )
    }

    /// Reports that the client side of a connection closed.
    ///
    /// # Errors
    /// The callback trapped.
    pub fn downstream_close(&mut self, id: u32, peer: PeerType) -> Result<()> {
        self.stream_mut(id).closed = true;
        self.invoke(
            id,
            "proxy_on_downstream_connection_close",
            &[id as i32, peer.raw()],
        )
        .map(drop)
    }

    /// Reports that the server side of a connection closed.
    ///
    /// # Errors
    /// The callback trapped.
    pub fn upstream_close(&mut self, id: u32, peer: PeerType) -> Result<()> {
        self.stream_mut(id).closed = true;
        self.invoke(
            id,
            "proxy_on_upstream_connection_close",
            &[id as i32, peer.raw()],
        )
        .map(drop)
    }

    /// Opens an HTTP stream: creates a context (the SDK picks the HTTP context kind).
    ///
    /// # Errors
    /// A callback trapped.
    pub fn new_http(&mut self) -> Result<u32> {
        self.create_context()
    }

    /// Sets the request headers and calls `on_request_headers`.
    ///
    /// # Errors
    /// The callback trapped.
    pub fn request_headers(
        &mut self,
        id: u32,
        headers: &[(&str, &[u8])],
        end_of_stream: bool,
    ) -> Result<Action> {
        self.headers_call(
            id,
            MapType::RequestHeaders,
            "proxy_on_request_headers",
            headers,
            Some(end_of_stream),
        )
    }

    /// Hands a request body chunk to the filter.
    ///
    /// # Errors
    /// The callback trapped.
    pub fn request_body(&mut self, id: u32, chunk: &[u8], end_of_stream: bool) -> Result<Action> {
        self.flow_call(
            id,
            abi::buffer::HTTP_REQUEST_BODY,
            "proxy_on_request_body",
            chunk,
            end_of_stream,
        )
    }

    /// Sets the request trailers and calls `on_request_trailers`.
    ///
    /// # Errors
    /// The callback trapped.
    pub fn request_trailers(&mut self, id: u32, trailers: &[(&str, &[u8])]) -> Result<Action> {
        self.headers_call(
            id,
            MapType::RequestTrailers,
            "proxy_on_request_trailers",
            trailers,
            None,
        )
    }

    /// Sets the response headers and calls `on_response_headers`.
    ///
    /// # Errors
    /// The callback trapped.
    pub fn response_headers(
        &mut self,
        id: u32,
        headers: &[(&str, &[u8])],
        end_of_stream: bool,
    ) -> Result<Action> {
        self.headers_call(
            id,
            MapType::ResponseHeaders,
            "proxy_on_response_headers",
            headers,
            Some(end_of_stream),
        )
    }

    /// Hands a response body chunk to the filter.
    ///
    /// # Errors
    /// The callback trapped.
    pub fn response_body(&mut self, id: u32, chunk: &[u8], end_of_stream: bool) -> Result<Action> {
        self.flow_call(
            id,
            abi::buffer::HTTP_RESPONSE_BODY,
            "proxy_on_response_body",
            chunk,
            end_of_stream,
        )
    }

    /// Sets the response trailers and calls `on_response_trailers`.
    ///
    /// # Errors
    /// The callback trapped.
    pub fn response_trailers(&mut self, id: u32, trailers: &[(&str, &[u8])]) -> Result<Action> {
        self.headers_call(
            id,
            MapType::ResponseTrailers,
            "proxy_on_response_trailers",
            trailers,
            None,
        )
    }

    /// Ends a context the way Envoy does: `on_done`, `on_log`, `on_delete`.
    ///
    /// # Errors
    /// A callback trapped.
    pub fn finish(&mut self, id: u32) -> Result<()> {
        self.invoke(id, "proxy_on_done", &[id as i32])?;
        self.invoke(id, "proxy_on_log", &[id as i32])?;
        self.invoke(id, "proxy_on_delete", &[id as i32])?;
        Ok(())
    }

    /// Turns recording of received / forwarded bytes and of callbacks on or off (on by
    /// default). Benchmarks turn it off so memory stays flat over millions of calls;
    /// buffers still follow Envoy's model, actions are still returned.
    pub fn set_recording(&mut self, on: bool) {
        self.recording = on;
    }

    /// Sets a property (`path` segments such as `["upstream", "address"]`).
    pub fn set_property(&mut self, path: &[&str], value: &[u8]) {
        let key = path.join("\0").into_bytes();
        self.store.data_mut().properties.insert(key, value.to_vec());
    }

    /// Removes a property.
    pub fn remove_property(&mut self, path: &[&str]) {
        let key = path.join("\0").into_bytes();
        self.store.data_mut().properties.remove(&key);
    }

    /// Sets the clock (nanoseconds since the Unix epoch).
    pub fn set_time_ns(&mut self, now_ns: u64) {
        self.store.data_mut().now_ns = now_ns;
    }

    /// Moves the clock forward.
    pub fn advance_ms(&mut self, ms: u64) {
        let state = self.store.data_mut();
        state.now_ns = state.now_ns.saturating_add(ms.saturating_mul(1_000_000));
    }

    /// Current clock value in nanoseconds.
    #[must_use]
    pub fn now_ns(&self) -> u64 {
        self.store.data().now_ns
    }

    /// Captured log lines.
    #[must_use]
    pub fn logs(&self) -> &[LogRecord] {
        &self.store.data().logs
    }

    /// Forgets captured logs (e.g. after configuration).
    pub fn clear_logs(&mut self) {
        self.store.data_mut().logs.clear();
    }

    /// All metrics, in definition order.
    #[must_use]
    pub fn metrics(&self) -> &[Metric] {
        &self.store.data().metrics
    }

    /// A metric by its exact name.
    #[must_use]
    pub fn metric(&self, name: &str) -> Option<&Metric> {
        self.store.data().metrics.iter().find(|m| m.name == name)
    }

    /// A counter or gauge value by name (0 when it was never defined).
    #[must_use]
    pub fn metric_value(&self, name: &str) -> i64 {
        self.metric(name).map_or(0, |m| m.value)
    }

    /// Traffic-changing events the filter caused.
    #[must_use]
    pub fn events(&self) -> &[Event] {
        &self.store.data().events
    }

    /// Every callback made so far with its action.
    #[must_use]
    pub fn calls(&self) -> &[CallRecord] {
        &self.calls
    }

    /// Per-context state (flows, headers), if the context exists.
    #[must_use]
    pub fn stream(&self, id: u32) -> Option<&StreamState> {
        self.store.data().streams.get(&id)
    }

    /// What the filter wrote to stdout.
    #[must_use]
    pub fn stdout(&self) -> &[u8] {
        &self.store.data().stdout
    }

    /// What the filter wrote to stderr.
    #[must_use]
    pub fn stderr(&self) -> &[u8] {
        &self.store.data().stderr
    }

    /// The size of the module's linear memory in bytes (it only grows: a module whose
    /// allocator reuses freed memory stops growing once its workload has peaked).
    #[must_use]
    pub fn memory_bytes(&mut self) -> usize {
        self.instance
            .get_memory(&mut self.store, "memory")
            .map_or(0, |m| m.data_size(&self.store))
    }

    /// How many times the module called an import (proxy-wasm or WASI) so far.
    #[must_use]
    pub fn host_calls(&self) -> u64 {
        self.store.data().host_calls
    }

    /// Why the VM failed, if a callback trapped.
    #[must_use]
    pub fn failure(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    fn create_context(&mut self) -> Result<u32> {
        let id = self.next_id;
        self.next_id += 1;
        self.store
            .data_mut()
            .streams
            .insert(id, StreamState::default());
        self.invoke(id, "proxy_on_context_create", &[id as i32, ROOT_ID as i32])?;
        Ok(id)
    }

    fn stream_mut(&mut self, id: u32) -> &mut StreamState {
        self.store.data_mut().streams.entry(id).or_default()
    }

    fn flow_call(
        &mut self,
        id: u32,
        buffer: u32,
        callback: &'static str,
        chunk: &[u8],
        eos: bool,
    ) -> Result<Action> {
        let recording = self.recording;
        let size = {
            let Some(flow) = self.stream_mut(id).flow_mut(buffer) else {
                bail!("buffer type {buffer} has no flow");
            };
            if recording {
                flow.received.extend_from_slice(chunk);
            }
            flow.pending.extend_from_slice(chunk);
            flow.pending.len()
        };
        let action = self.invoke_action(id, callback, &[id as i32, size as i32, i32::from(eos)])?;
        if action == Action::Continue
            && let Some(flow) = self.stream_mut(id).flow_mut(buffer)
        {
            if recording {
                let pending = std::mem::take(&mut flow.pending);
                flow.forwarded.extend_from_slice(&pending);
            } else {
                flow.pending.clear();
            }
        }
        Ok(action)
    }

    fn headers_call(
        &mut self,
        id: u32,
        map: MapType,
        callback: &'static str,
        pairs: &[(&str, &[u8])],
        eos: Option<bool>,
    ) -> Result<Action> {
        *self.stream_mut(id).map_mut(map) = pairs
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.to_vec()))
            .collect();
        let n = pairs.len() as i32;
        match eos {
            Some(eos) => self.invoke_action(id, callback, &[id as i32, n, i32::from(eos)]),
            None => self.invoke_action(id, callback, &[id as i32, n]),
        }
    }

    fn invoke_action(
        &mut self,
        context: u32,
        callback: &'static str,
        args: &[i32],
    ) -> Result<Action> {
        let raw = self.invoke(context, callback, args)?;
        let action = raw.map_or(Action::Continue, |r| Action::from_raw(r as u32));
        if self.recording
            && let Some(last) = self.calls.last_mut()
        {
            last.action = Some(action);
        }
        Ok(action)
    }

    /// Calls an export with i32 arguments (all proxy-wasm 0.2.1 callbacks take i32s on
    /// wasm32). Missing exports are skipped, as Envoy does for optional callbacks.
    fn invoke(
        &mut self,
        context: u32,
        callback: &'static str,
        args: &[i32],
    ) -> Result<Option<i32>> {
        if let Some(why) = &self.failed {
            bail!("vm failed earlier: {why}");
        }
        if self.recording {
            self.calls.push(CallRecord {
                context,
                callback,
                action: None,
            });
        }
        // By index, not cloned: a `TypedFunc` clone clones its registered type.
        let at = match self.funcs.iter().position(|(name, _)| *name == callback) {
            Some(at) => at,
            None => {
                let found = self.instance.get_func(&mut self.store, callback).map(|f| {
                    match f.typed::<(i32, i32, i32), i32>(&self.store) {
                        Ok(t) => Callback::Data(t),
                        Err(_) => Callback::Other(f, f.ty(&self.store).results().len()),
                    }
                });
                self.funcs.push((callback, found));
                self.funcs.len() - 1
            }
        };
        let Some(Some(found)) = self.funcs.get(at).map(|(_, f)| f) else {
            return Ok(None);
        };
        self.store.data_mut().current = context;
        let called = match (found, args) {
            (Callback::Data(f), &[a, b, c]) => f.call(&mut self.store, (a, b, c)).map(Some),
            (Callback::Data(_), _) => bail!("{callback}: {} arguments", args.len()),
            (Callback::Other(func, n_results), _) => {
                // proxy-wasm callbacks take at most 5 i32s (wasm32) and return at most
                // one value: fixed arrays, no allocation per call.
                let mut params = [wasmtime::Val::I32(0); 5];
                let Some(params) = params.get_mut(..args.len()) else {
                    bail!("{callback}: {} arguments", args.len());
                };
                for (p, &a) in params.iter_mut().zip(args) {
                    *p = wasmtime::Val::I32(a);
                }
                let mut results = [wasmtime::Val::I32(0); 1];
                let n = *n_results;
                let Some(results) = results.get_mut(..n) else {
                    bail!("{callback}: {n} results");
                };
                func.call(&mut self.store, params, results)
                    .map(|()| results.first().and_then(wasmtime::Val::i32))
            }
        };
        match called {
            Ok(r) => Ok(r),
            Err(e) => {
                let why = format!("{callback} trapped: {e:?}");
                self.failed = Some(why.clone());
                Err(format_err!(why))
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// Guest memory helpers.

fn memory(caller: &mut Caller<'_, HostState>) -> Result<Memory> {
    if let Some(m) = caller.data().exports.memory {
        return Ok(m);
    }
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => bail!("filter exports no memory"),
    }
}

fn read_bytes(caller: &mut Caller<'_, HostState>, ptr: i32, len: i32) -> Result<Vec<u8>> {
    let mem = memory(caller)?;
    let data = mem.data(&caller);
    let start = ptr as u32 as usize;
    let end = start
        .checked_add(len as u32 as usize)
        .ok_or_else(|| format_err!("pointer overflow"))?;
    match data.get(start..end) {
        Some(bytes) => Ok(bytes.to_vec()),
        None => bail!("guest range {start}..{end} out of bounds"),
    }
}

fn write_bytes(caller: &mut Caller<'_, HostState>, ptr: i32, bytes: &[u8]) -> Result<()> {
    let mem = memory(caller)?;
    mem.write(caller, ptr as u32 as usize, bytes)
        .map_err(|e| format_err!("guest write at {ptr}: {e}"))
}

fn write_u32(caller: &mut Caller<'_, HostState>, ptr: i32, value: u32) -> Result<()> {
    write_bytes(caller, ptr, &value.to_le_bytes())
}

fn write_u64(caller: &mut Caller<'_, HostState>, ptr: i32, value: u64) -> Result<()> {
    write_bytes(caller, ptr, &value.to_le_bytes())
}

/// Copies `data` into memory the guest allocates, and writes pointer and size to the
/// two return slots. Empty data returns a null pointer (the SDK reads that as "none").
fn return_bytes(
    caller: &mut Caller<'_, HostState>,
    data: &[u8],
    ret_ptr: i32,
    ret_len: i32,
) -> Result<()> {
    if data.is_empty() {
        write_u32(caller, ret_ptr, 0)?;
        return write_u32(caller, ret_len, 0);
    }
    // Taken out for the call and put back (a `TypedFunc` clone clones its registered type).
    let alloc = match caller.data_mut().exports.alloc.take() {
        Some(f) => f,
        None => match caller.get_export("proxy_on_memory_allocate") {
            Some(Extern::Func(f)) => f.typed::<i32, i32>(&caller)?,
            _ => bail!("filter exports no proxy_on_memory_allocate"),
        },
    };
    let called = alloc.call(&mut *caller, data.len() as i32);
    caller.data_mut().exports.alloc = Some(alloc);
    let ptr = called?;
    if ptr == 0 {
        bail!("proxy_on_memory_allocate({}) returned null", data.len());
    }
    write_bytes(caller, ptr, data)?;
    write_u32(caller, ret_ptr, ptr as u32)?;
    write_u32(caller, ret_len, data.len() as u32)
}

fn serialize_map(pairs: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (k, v) in pairs {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
}

fn deserialize_map(bytes: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let word = |at: usize| -> Option<usize> {
        let b = bytes.get(at..at + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
    };
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let n = word(0)?;
    let mut at = 4usize.checked_add(n.checked_mul(8)?)?;
    let mut out = Vec::with_capacity(n.min(1024));
    for i in 0..n {
        let klen = word(4 + i * 8)?;
        let vlen = word(8 + i * 8)?;
        let key = bytes.get(at..at + klen)?.to_vec();
        at += klen + 1;
        let value = bytes.get(at..at + vlen)?.to_vec();
        at += vlen + 1;
        out.push((key, value));
    }
    Some(out)
}

fn current_stream<'a>(caller: &'a mut Caller<'_, HostState>) -> Option<&'a mut StreamState> {
    let state = caller.data_mut();
    let current = state.current;
    state.streams.get_mut(&current)
}

// ---------------------------------------------------------------------------------
// proxy-wasm ABI 0.2.1 host functions.

fn link_proxy_wasm(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        ENV,
        "proxy_log",
        |mut c: Caller<'_, HostState>, level: i32, ptr: i32, len: i32| {
            let msg = read_bytes(&mut c, ptr, len)?;
            let message = String::from_utf8_lossy(&msg).into_owned();
            c.data_mut().logs.push(LogRecord {
                level: LogLevel::from_raw(level as u32),
                message,
            });
            Ok(abi::status::OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_get_log_level",
        |mut c: Caller<'_, HostState>, ret: i32| {
            let level = c.data().log_level;
            write_u32(&mut c, ret, level)?;
            Ok(abi::status::OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_get_current_time_nanoseconds",
        |mut c: Caller<'_, HostState>, ret: i32| {
            let now = c.data().now_ns;
            write_u64(&mut c, ret, now)?;
            Ok(abi::status::OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_set_tick_period_milliseconds",
        |mut c: Caller<'_, HostState>, ms: i32| {
            c.data_mut().tick_period_ms = ms as u32;
            abi::status::OK
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_set_effective_context",
        |mut c: Caller<'_, HostState>, ctx: i32| {
            c.data_mut().current = ctx as u32;
            abi::status::OK
        },
    )?;
    linker.func_wrap(ENV, "proxy_done", |mut c: Caller<'_, HostState>| {
        c.data_mut().events.push(Event::Done);
        abi::status::OK
    })?;
    linker.func_wrap(
        ENV,
        "proxy_get_buffer_bytes",
        |mut c: Caller<'_, HostState>,
         buffer: i32,
         start: i32,
         max: i32,
         ret_ptr: i32,
         ret_len: i32| {
            let buffer = buffer as u32;
            let data = match buffer {
                abi::buffer::VM_CONFIGURATION => c.data().vm_config.clone(),
                abi::buffer::PLUGIN_CONFIGURATION => c.data().plugin_config.clone(),
                _ => match current_stream(&mut c).and_then(|s| s.flow_mut(buffer)) {
                    Some(flow) => flow.pending.clone(),
                    None => return Ok(abi::status::NOT_FOUND),
                },
            };
            let start = (start as u32 as usize).min(data.len());
            let end = start.saturating_add(max as u32 as usize).min(data.len());
            return_bytes(&mut c, &data[start..end], ret_ptr, ret_len)?;
            Ok(abi::status::OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_set_buffer_bytes",
        |mut c: Caller<'_, HostState>, buffer: i32, start: i32, size: i32, ptr: i32, len: i32| {
            let data = read_bytes(&mut c, ptr, len)?;
            let buffer = buffer as u32;
            let context = c.data().current;
            let Some(flow) = current_stream(&mut c).and_then(|s| s.flow_mut(buffer)) else {
                return Ok(abi::status::NOT_FOUND);
            };
            let from = (start as u32 as usize).min(flow.pending.len());
            let to = from
                .saturating_add(size as u32 as usize)
                .min(flow.pending.len());
            flow.pending.splice(from..to, data.iter().copied());
            c.data_mut().events.push(Event::BufferModified {
                context,
                buffer,
                start: start as u32,
                size: size as u32,
                data,
            });
            Ok(abi::status::OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_get_header_map_pairs",
        |mut c: Caller<'_, HostState>, map: i32, ret_ptr: i32, ret_len: i32| {
            let Some(map) = MapType::from_raw(map as u32) else {
                return Ok(abi::status::NOT_FOUND);
            };
            let Some(stream) = current_stream(&mut c) else {
                return Ok(abi::status::NOT_FOUND);
            };
            let bytes = serialize_map(stream.map_mut(map));
            return_bytes(&mut c, &bytes, ret_ptr, ret_len)?;
            Ok(abi::status::OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_get_header_map_value",
        |mut c: Caller<'_, HostState>,
         map: i32,
         kptr: i32,
         klen: i32,
         ret_ptr: i32,
         ret_len: i32| {
            let key = read_bytes(&mut c, kptr, klen)?;
            let Some(map) = MapType::from_raw(map as u32) else {
                return Ok(abi::status::NOT_FOUND);
            };
            let Some(stream) = current_stream(&mut c) else {
                return Ok(abi::status::NOT_FOUND);
            };
            let found = stream
                .map_mut(map)
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&key))
                .map(|(_, v)| v.clone());
            let Some(value) = found else {
                return Ok(abi::status::NOT_FOUND);
            };
            return_bytes(&mut c, &value, ret_ptr, ret_len)?;
            Ok(abi::status::OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_set_header_map_pairs",
        |mut c: Caller<'_, HostState>, map: i32, ptr: i32, len: i32| {
            let bytes = read_bytes(&mut c, ptr, len)?;
            let (Some(map_type), Some(pairs)) =
                (MapType::from_raw(map as u32), deserialize_map(&bytes))
            else {
                return Ok(abi::status::BAD_ARGUMENT);
            };
            let context = c.data().current;
            let Some(stream) = current_stream(&mut c) else {
                return Ok(abi::status::NOT_FOUND);
            };
            *stream.map_mut(map_type) = pairs;
            c.data_mut().events.push(Event::HeadersModified {
                context,
                map: map as u32,
                op: "set_pairs",
                key: Vec::new(),
            });
            Ok(abi::status::OK)
        },
    )?;
    for (name, op) in [
        ("proxy_add_header_map_value", "add"),
        ("proxy_replace_header_map_value", "replace"),
    ] {
        linker.func_wrap(
            ENV,
            name,
            move |mut c: Caller<'_, HostState>,
                  map: i32,
                  kptr: i32,
                  klen: i32,
                  vptr: i32,
                  vlen: i32| {
                let key = read_bytes(&mut c, kptr, klen)?;
                let value = read_bytes(&mut c, vptr, vlen)?;
                let Some(map_type) = MapType::from_raw(map as u32) else {
                    return Ok(abi::status::BAD_ARGUMENT);
                };
                let context = c.data().current;
                let Some(stream) = current_stream(&mut c) else {
                    return Ok(abi::status::NOT_FOUND);
                };
                let pairs = stream.map_mut(map_type);
                if op == "replace" {
                    pairs.retain(|(k, _)| !k.eq_ignore_ascii_case(&key));
                }
                pairs.push((key.clone(), value));
                c.data_mut().events.push(Event::HeadersModified {
                    context,
                    map: map as u32,
                    op,
                    key,
                });
                Ok(abi::status::OK)
            },
        )?;
    }
    linker.func_wrap(
        ENV,
        "proxy_remove_header_map_value",
        |mut c: Caller<'_, HostState>, map: i32, kptr: i32, klen: i32| {
            let key = read_bytes(&mut c, kptr, klen)?;
            let Some(map_type) = MapType::from_raw(map as u32) else {
                return Ok(abi::status::BAD_ARGUMENT);
            };
            let context = c.data().current;
            let Some(stream) = current_stream(&mut c) else {
                return Ok(abi::status::NOT_FOUND);
            };
            stream
                .map_mut(map_type)
                .retain(|(k, _)| !k.eq_ignore_ascii_case(&key));
            c.data_mut().events.push(Event::HeadersModified {
                context,
                map: map as u32,
                op: "remove",
                key,
            });
            Ok(abi::status::OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_get_property",
        |mut c: Caller<'_, HostState>, pptr: i32, plen: i32, ret_ptr: i32, ret_len: i32| {
            let path = read_bytes(&mut c, pptr, plen)?;
            let Some(value) = c.data().properties.get(&path).cloned() else {
                return Ok(abi::status::NOT_FOUND);
            };
            return_bytes(&mut c, &value, ret_ptr, ret_len)?;
            Ok(abi::status::OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_set_property",
        |mut c: Caller<'_, HostState>, pptr: i32, plen: i32, vptr: i32, vlen: i32| {
            let path = read_bytes(&mut c, pptr, plen)?;
            let value = read_bytes(&mut c, vptr, vlen)?;
            let state = c.data_mut();
            state.properties.insert(path.clone(), value);
            state.events.push(Event::SetProperty { path });
            Ok(abi::status::OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_continue_stream",
        |mut c: Caller<'_, HostState>, stream: i32| {
            let context = c.data().current;
            c.data_mut().events.push(Event::ContinueStream {
                context,
                stream: stream as u32,
            });
            abi::status::OK
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_close_stream",
        |mut c: Caller<'_, HostState>, stream: i32| {
            let context = c.data().current;
            c.data_mut().events.push(Event::CloseStream {
                context,
                stream: stream as u32,
            });
            abi::status::OK
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_send_local_response",
        |mut c: Caller<'_, HostState>,
         status: i32,
         _dp: i32,
         _dl: i32,
         _bp: i32,
         _bl: i32,
         _hp: i32,
         _hl: i32,
         _grpc: i32| {
            let context = c.data().current;
            c.data_mut().events.push(Event::LocalResponse {
                context,
                status: status as u32,
            });
            abi::status::OK
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_define_metric",
        |mut c: Caller<'_, HostState>, kind: i32, nptr: i32, nlen: i32, ret: i32| {
            let name = String::from_utf8_lossy(&read_bytes(&mut c, nptr, nlen)?).into_owned();
            let Some(kind) = MetricKind::from_raw(kind as u32) else {
                return Ok(abi::status::BAD_ARGUMENT);
            };
            let metrics = &mut c.data_mut().metrics;
            let id = match metrics.iter().position(|m| m.name == name) {
                Some(i) if metrics[i].kind == kind => i,
                Some(_) => return Ok(abi::status::BAD_ARGUMENT),
                None => {
                    metrics.push(Metric {
                        name,
                        kind,
                        value: 0,
                        samples: Vec::new(),
                    });
                    metrics.len() - 1
                }
            };
            write_u32(&mut c, ret, id as u32)?;
            Ok(abi::status::OK)
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_increment_metric",
        |mut c: Caller<'_, HostState>, id: i32, offset: i64| {
            let Some(m) = c.data_mut().metrics.get_mut(id as u32 as usize) else {
                return abi::status::NOT_FOUND;
            };
            match m.kind {
                MetricKind::Histogram => abi::status::BAD_ARGUMENT,
                _ => {
                    m.value = m.value.saturating_add(offset);
                    abi::status::OK
                }
            }
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_record_metric",
        |mut c: Caller<'_, HostState>, id: i32, value: i64| {
            let Some(m) = c.data_mut().metrics.get_mut(id as u32 as usize) else {
                return abi::status::NOT_FOUND;
            };
            match m.kind {
                MetricKind::Histogram => {
                    m.samples.push(value as u64);
                    m.value += 1;
                }
                _ => m.value = value,
            }
            abi::status::OK
        },
    )?;
    linker.func_wrap(
        ENV,
        "proxy_get_metric",
        |mut c: Caller<'_, HostState>, id: i32, ret: i32| {
            let Some(value) = c.data().metrics.get(id as u32 as usize).map(|m| m.value) else {
                return Ok(abi::status::NOT_FOUND);
            };
            write_u64(&mut c, ret, value as u64)?;
            Ok(abi::status::OK)
        },
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------
// WASI preview1: only what Rust's std reaches for in a reactor.

fn link_wasi(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        WASI,
        "fd_write",
        |mut c: Caller<'_, HostState>, fd: i32, iovs: i32, iovs_len: i32, nwritten: i32| {
            if fd != 1 && fd != 2 {
                return Ok(ERRNO_BADF);
            }
            let table = read_bytes(&mut c, iovs, iovs_len.saturating_mul(8))?;
            let mut out = Vec::new();
            for iov in table.chunks_exact(8) {
                let ptr = i32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
                let len = i32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
                out.extend_from_slice(&read_bytes(&mut c, ptr, len)?);
            }
            let n = out.len() as u32;
            if fd == 1 {
                c.data_mut().stdout.extend_from_slice(&out);
            } else {
                c.data_mut().stderr.extend_from_slice(&out);
            }
            write_u32(&mut c, nwritten, n)?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    for name in ["environ_sizes_get", "args_sizes_get"] {
        linker.func_wrap(
            WASI,
            name,
            |mut c: Caller<'_, HostState>, count: i32, size: i32| {
                write_u32(&mut c, count, 0)?;
                write_u32(&mut c, size, 0)?;
                Ok(ERRNO_SUCCESS)
            },
        )?;
    }
    for name in ["environ_get", "args_get"] {
        linker.func_wrap(WASI, name, |_c: Caller<'_, HostState>, _a: i32, _b: i32| {
            ERRNO_SUCCESS
        })?;
    }
    linker.func_wrap(
        WASI,
        "clock_time_get",
        |mut c: Caller<'_, HostState>, clock: i32, _precision: i64, ret: i32| {
            // 0 realtime, 1 monotonic, 2/3 cpu time: all read the controllable clock.
            if !(0..=3).contains(&clock) {
                return Ok(ERRNO_INVAL);
            }
            let now = c.data().now_ns;
            write_u64(&mut c, ret, now)?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(
        WASI,
        "random_get",
        |mut c: Caller<'_, HostState>, buf: i32, len: i32| {
            let mut bytes = Vec::with_capacity(len as u32 as usize);
            let state = c.data_mut();
            while bytes.len() < len as u32 as usize {
                // xorshift64*: deterministic, so runs are reproducible.
                state.rng ^= state.rng >> 12;
                state.rng ^= state.rng << 25;
                state.rng ^= state.rng >> 27;
                bytes.extend_from_slice(
                    &state.rng.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes(),
                );
            }
            bytes.truncate(len as u32 as usize);
            write_bytes(&mut c, buf, &bytes)?;
            Ok(ERRNO_SUCCESS)
        },
    )?;
    linker.func_wrap(WASI, "sched_yield", |_c: Caller<'_, HostState>| {
        ERRNO_SUCCESS
    })?;
    linker.func_wrap(WASI, "fd_close", |_c: Caller<'_, HostState>, _fd: i32| {
        ERRNO_BADF
    })?;
    linker.func_wrap(
        WASI,
        "fd_prestat_get",
        |_c: Caller<'_, HostState>, _fd: i32, _p: i32| ERRNO_BADF,
    )?;
    linker.func_wrap(
        WASI,
        "fd_fdstat_get",
        |_c: Caller<'_, HostState>, _fd: i32, _p: i32| ERRNO_BADF,
    )?;
    linker.func_wrap(
        WASI,
        "fd_seek",
        |_c: Caller<'_, HostState>, _fd: i32, _off: i64, _whence: i32, _ret: i32| ERRNO_BADF,
    )?;
    linker.func_wrap(
        WASI,
        "proc_exit",
        |_c: Caller<'_, HostState>, code: i32| -> Result<()> { bail!("proc_exit({code})") },
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_map_round_trips() {
        let pairs = vec![
            (b":method".to_vec(), b"POST".to_vec()),
            (b"x".to_vec(), vec![0, 255]),
        ];
        let bytes = serialize_map(&pairs);
        assert_eq!(deserialize_map(&bytes), Some(pairs));
        assert_eq!(deserialize_map(&[]), Some(Vec::new()));
        assert_eq!(deserialize_map(&[5, 0, 0, 0]), None);
    }

    #[test]
    fn a_hand_written_module_logs_and_counts() {
        let wat = r#"(module
            (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
            (import "env" "proxy_define_metric" (func $def (param i32 i32 i32 i32) (result i32)))
            (import "env" "proxy_increment_metric" (func $inc (param i32 i64) (result i32)))
            (memory (export "memory") 1)
            (data (i32.const 16) "hello")
            (data (i32.const 32) "c_total")
            (func (export "proxy_on_vm_start") (param i32 i32) (result i32)
                (drop (call $log (i32.const 2) (i32.const 16) (i32.const 5)))
                (drop (call $def (i32.const 0) (i32.const 32) (i32.const 7) (i32.const 64)))
                (drop (call $inc (i32.load (i32.const 64)) (i64.const 3)))
                (i32.const 1))
            (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 0)))"#;
        let host = Host::new(wat.as_bytes()).expect("compiles");
        let mut vm = host
            .instantiate(VmOptions::default())
            .expect("instantiates");
        assert!(!vm.start(b"{}").expect("runs"));
        assert_eq!(
            vm.logs(),
            &[LogRecord {
                level: LogLevel::Info,
                message: "hello".into()
            }]
        );
        assert_eq!(vm.metric_value("c_total"), 3);
    }
}
