//! proxy-wasm glue: the root context, the L4 (DNS over TCP) stream context and the HTTP
//! (DNS over HTTPS) context.
//!
//! Fail open everywhere: every callback returns [`Action::Continue`], never touches a
//! buffer or header, and gives up quietly (`let ... else { return Action::Continue }`)
//! when the host cannot give it what it asked for.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use dnswarden_core::score::AnswerSummary;
use dnswarden_core::wire::{
    Asked, FrameError, MAX_QUESTION_LEN, Message, Opcode, Rcode, TcpFramer, Unanswered,
    check_and_summarize, question_wire,
};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType, PeerType};

use crate::config::{Config, Level, Mode};
use crate::doh;
use dnswarden_core::score::Verdict;
use dnswarden_core::wire::Mismatch;

use crate::health::{Health, Outcome, TARGETS, fixed2, gauge};
use crate::names::{concat, metric_name, rcode_label};
use crate::pending::{Outstanding, Pending};
use crate::targets::{Targets, question_key};

/// Outstanding queries tracked per connection.
const PENDING_CAPACITY: usize = 64;
/// After this many unparseable messages in a row, a direction is not parsed any more
/// (its bytes still pass untouched): a garbage stream costs nothing after that.
const MAX_MALFORMED_RUN: u32 = 8;
/// Label for upstreams beyond `max_upstreams`.
const OVERFLOW_UPSTREAM: &str = "other";
/// Label when the host does not expose the upstream.
const UNKNOWN_UPSTREAM: &str = "unknown";
/// A tracked question may lose its target slot after this long without answers.
const TARGET_IDLE_US: u64 = 60_000_000;

/// Installs the root context factory (called from `main!`).
pub fn start() {
    proxy_wasm::set_root_context(|_| {
        Box::new(Conn::Root(Root {
            shared: Rc::new(RefCell::new(Shared::new(Config::default(), 0))),
        }))
    });
}

/// The host's wall clock in microseconds, 0 if the host refuses.
///
/// The raw ABI call rather than `hostcalls::get_current_time`, which builds a
/// `SystemTime` (128-bit arithmetic on every message, ~450 instructions per exchange in
/// the wasmtime profile) and aborts the module on a status other than OK.
#[allow(unsafe_code)]
fn now_us() -> u64 {
    #[link(wasm_import_module = "env")]
    unsafe extern "C" {
        fn proxy_get_current_time_nanoseconds(return_time: *mut u64) -> u32;
    }
    let mut ns = 0u64;
    // SAFETY: the host writes one u64 through the pointer, valid for the whole call.
    let status = unsafe { proxy_get_current_time_nanoseconds(&mut ns) };
    if status == 0 { ns / 1000 } else { 0 }
}

/// A query's id, opcode and question octets (in `question[..len]`), or the label of why
/// it cannot be tracked.
fn read_query(
    msg: &[u8],
    question: &mut [u8; MAX_QUESTION_LEN],
) -> Result<(u16, Opcode, usize), &'static str> {
    match Message::parse(msg) {
        Ok(m) if !m.header().qr() => match question_wire(&m, question) {
            Some(n) => Ok((m.id(), m.header().opcode(), n)),
            None => Err("no_question"),
        },
        Ok(_) => Err("not_a_query"),
        Err(e) => Err(e.kind()),
    }
}

/// Judges a response against its query, in one pass: outcome, metric label (malformed or
/// mismatch kind, `answer_section` when it cannot be summarised), question key
/// ([`question_key`]) and answer summary. The response is parsed only here
/// (inside [`check_and_summarize`]); octets that are no DNS message are the one case
/// judged [`Outcome::Malformed`] without a question key (see [`answered`]).
fn judge(asked: Option<Asked<'_>>, msg: &[u8]) -> Seen0 {
    let none = AnswerSummary::EMPTY;
    let Some(asked) = asked else {
        return match Message::parse(msg) {
            Ok(_) => (
                Outcome::Mismatch(Mismatch::MALFORMED_QUESTION),
                "malformed_question",
                None,
                none,
            ),
            Err(e) => (Outcome::Malformed, e.kind(), None, none),
        };
    };
    let key = |qname| Some(question_key(qname, asked.qtype().0));
    match check_and_summarize(msg, &asked) {
        Ok(s) => (s.outcome(), "answer_section", key(s.qname), s.answers),
        Err(Unanswered::Mismatch(m)) => (Outcome::Mismatch(m), m.kind(), None, none),
        Err(Unanswered::Malformed(_)) => {
            let question = key(asked.name_fingerprint());
            (Outcome::Malformed, "answer_section", question, none)
        }
        Err(Unanswered::Unparseable(e)) => (Outcome::Malformed, e.kind(), None, none),
    }
}

/// What [`judge`] says of one response.
type Seen0 = (Outcome, &'static str, Option<u64>, AnswerSummary<'static>);

/// Whether what [`judge`] said means the response answered its query (anything but
/// octets that are no DNS message: those leave the query pending).
fn answered(seen: &Seen0) -> bool {
    !(seen.0 == Outcome::Malformed && seen.2.is_none())
}

fn log(config: &Config, level: Level, message: &str) {
    if level < config.log_level {
        return;
    }
    let level = match level {
        Level::Trace => LogLevel::Trace,
        Level::Debug => LogLevel::Debug,
        Level::Info => LogLevel::Info,
        Level::Warn => LogLevel::Warn,
        Level::Error => LogLevel::Error,
    };
    let _ = hostcalls::log(level, message);
}

fn define(kind: MetricType, name: &str) -> Option<u32> {
    hostcalls::define_metric(kind, name).ok()
}

fn bump(id: Option<u32>, by: i64) {
    if let Some(id) = id {
        let _ = hostcalls::increment_metric(id, by);
    }
}

fn record(id: Option<u32>, value: u64) {
    if let Some(id) = id {
        let _ = hostcalls::record_metric(id, value);
    }
}

/// The index of the upstream Envoy picked (`upstream.address`); when it is not known
/// (yet), `unknown` with `force`, else `None`.
fn upstream_index(shared: &mut Shared, force: bool) -> Option<usize> {
    let bytes = match hostcalls::get_property(vec!["upstream", "address"]) {
        Ok(Some(bytes)) if !bytes.is_empty() => bytes,
        _ if force => UNKNOWN_UPSTREAM.as_bytes().to_vec(),
        _ => return None,
    };
    Some(shared.upstream(std::str::from_utf8(&bytes).unwrap_or_default()))
}

/// A counter's metric id and the increments not yet handed to the host.
#[derive(Debug, Clone, Copy)]
struct Counter {
    id: Option<u32>,
    delta: i64,
}

impl Counter {
    fn new(id: Option<u32>) -> Self {
        Self { id, delta: 0 }
    }

    /// Adds `by`: kept in module memory when `batched` (handed over by `flush`), else
    /// one host call now.
    fn add(&mut self, by: i64, batched: bool) {
        if batched {
            self.delta += by;
        } else {
            bump(self.id, by);
        }
    }

    fn flush(&mut self) {
        if self.delta != 0 {
            bump(self.id, std::mem::take(&mut self.delta));
        }
    }
}

/// Per-upstream state: its label and the ids of its hot metrics.
#[derive(Debug)]
struct Upstream {
    label: String,
    queries: Counter,
    rtt: Option<u32>,
    score: Option<u32>,
    verdict: Option<u32>,
    rcodes: Vec<(u16, Counter)>,
    /// Score and verdict gauge values last written.
    published: Option<(u64, u64)>,
}

/// State shared by the root context and every stream of one plugin instance.
#[derive(Debug)]
struct Shared {
    config: Config,
    transport: &'static str,
    upstreams: Vec<Upstream>,
    /// Address to upstream index (bounded; a small linear table keeps the `.wasm` small).
    by_address: Vec<(String, usize)>,
    /// Rarely used counters, by full name.
    other_metrics: Vec<(String, Counter)>,
    /// The core scorer, keyed by upstream index (`None` only if the configuration could
    /// not be mapped, which `Config::parse` rules out).
    health: Option<Health>,
    /// Which questions have a target slot in the scorer.
    targets: Targets,
}

impl Shared {
    fn new(config: Config, now: u64) -> Self {
        let transport = match config.mode {
            Mode::Network => "tcp",
            Mode::Http => "doh",
        };
        let mut health = Health::new(&config).ok();
        let mut targets = Targets::new(TARGETS, TARGET_IDLE_US);
        // Configured names first, into the empty table: pinned slots 1..=n in
        // configuration order (the configuration caps n well below the slot count), with
        // their expected answer sets. `publish` names them by that order.
        for e in &config.expected {
            if let (Some(slot), Some(h)) = (targets.pin(e.key, now), health.as_mut()) {
                let _ = h.expect(slot.target, now, &e.members);
            }
        }
        Self {
            config,
            transport,
            upstreams: Vec::new(),
            by_address: Vec::new(),
            other_metrics: Vec::new(),
            health,
            targets,
        }
    }

    fn name(&self, metric: &str, upstream: usize, extra: &[(&str, &str)]) -> String {
        let label = self
            .upstreams
            .get(upstream)
            .map_or(UNKNOWN_UPSTREAM, |u| u.label.as_str());
        self.name_for(label, metric, extra)
    }

    /// Index of the upstream with this address, creating it (bounded) on first sight.
    fn upstream(&mut self, address: &str) -> usize {
        if let Some((_, i)) = self.by_address.iter().find(|(a, _)| a == address) {
            return *i;
        }
        let max = self.config.max_upstreams as usize;
        let label = if self.upstreams.len() + 1 >= max && address != UNKNOWN_UPSTREAM {
            OVERFLOW_UPSTREAM
        } else {
            address
        };
        let index = match self.upstreams.iter().position(|u| u.label == label) {
            Some(i) => i,
            None => {
                let up = Upstream {
                    label: label.to_string(),
                    queries: Counter::new(define(
                        MetricType::Counter,
                        &self.name_for(label, "queries", &[]),
                    )),
                    rtt: define(MetricType::Histogram, &self.name_for(label, "rtt_us", &[])),
                    score: define(
                        MetricType::Gauge,
                        &self.name_for(label, "score_permille", &[]),
                    ),
                    verdict: define(MetricType::Gauge, &self.name_for(label, "verdict", &[])),
                    rcodes: Vec::new(),
                    published: None,
                };
                self.upstreams.push(up);
                self.upstreams.len() - 1
            }
        };
        if self.by_address.len() < 4 * max {
            self.by_address.push((address.to_string(), index));
        }
        index
    }

    fn name_for(&self, label: &str, metric: &str, extra: &[(&str, &str)]) -> String {
        let mut labels = vec![("transport", self.transport), ("upstream", label)];
        labels.extend_from_slice(extra);
        metric_name(&self.config.metric_prefix, metric, &labels)
    }

    /// Counter increments are batched in module memory and handed to the host on each
    /// tick (and when a TCP connection closes) instead of one host call per message;
    /// without a tick (`tick_ms` 0) they go out at once.
    fn batched(&self) -> bool {
        self.config.tick_ms > 0
    }

    fn count(&mut self, metric: &str, upstream: usize, extra: &[(&str, &str)], by: i64) {
        let name = self.name(metric, upstream, extra);
        let batched = self.batched();
        match self.other_metrics.iter_mut().find(|(n, _)| *n == name) {
            Some((_, c)) => c.add(by, batched),
            None => {
                let mut c = Counter::new(define(MetricType::Counter, &name));
                c.add(by, batched);
                self.other_metrics.push((name, c));
            }
        }
    }

    fn count_query(&mut self, upstream: usize, n: i64) {
        let batched = self.batched();
        if let Some(u) = self.upstreams.get_mut(upstream) {
            u.queries.add(n, batched);
        }
    }

    /// Hands every batched counter increment to the host.
    fn flush(&mut self) {
        for u in &mut self.upstreams {
            u.queries.flush();
            for (_, c) in &mut u.rcodes {
                c.flush();
            }
        }
        for (_, c) in &mut self.other_metrics {
            c.flush();
        }
    }

    /// Feeds one outcome to the upstream's health, updates metrics, logs a verdict change.
    /// `question` ([`question_key`]) and `answers` come with answers: a question with a
    /// target slot (configured, or admitted by [`Targets`] when it has an answer set to
    /// rotate) is also scored per target.
    fn observe(
        &mut self,
        upstream: usize,
        outcome: Outcome,
        rtt_us: u32,
        now: u64,
        question: Option<u64>,
        answers: AnswerSummary<'static>,
    ) {
        let batched = self.batched();
        match outcome {
            Outcome::Response(Rcode(rcode)) => {
                let (transport, prefix) = (self.transport, &self.config.metric_prefix);
                let Some(u) = self.upstreams.get_mut(upstream) else {
                    return;
                };
                match u.rcodes.iter_mut().find(|(r, _)| *r == rcode) {
                    Some((_, c)) => c.add(1, batched),
                    None => {
                        let label = rcode_label(rcode);
                        let name = metric_name(
                            prefix,
                            "responses",
                            &[
                                ("transport", transport),
                                ("upstream", &u.label),
                                ("rcode", &label),
                            ],
                        );
                        let mut c = Counter::new(define(MetricType::Counter, &name));
                        // Past 32 distinct rcodes (never in practice) a new one is counted
                        // at once instead of kept.
                        c.add(1, batched && u.rcodes.len() < 32);
                        if u.rcodes.len() < 32 {
                            u.rcodes.push((rcode, c));
                        }
                    }
                }
                record(u.rtt, u64::from(rtt_us));
            }
            Outcome::Truncated(_) => {
                if let Some(u) = self.upstreams.get(upstream) {
                    record(u.rtt, u64::from(rtt_us));
                }
                self.count("truncated", upstream, &[], 1);
            }
            Outcome::Timeout => self.count("timeouts", upstream, &[], 1),
            Outcome::Malformed | Outcome::Mismatch(_) => {}
        }
        let Some(health) = self.health.as_mut() else {
            return;
        };
        let slot = match question {
            // Worth a slot of its own: an answer set that round-robin could rotate.
            Some(q) if answers.count >= 2 => self.targets.lookup(q, now),
            // Otherwise only a slot it already has (e.g. a configured name).
            Some(q) => self.targets.find(q, now),
            None => None,
        };
        let (target, answers) = match slot {
            Some(slot) => {
                if slot.fresh {
                    health.forget_target(slot.target);
                }
                (slot.target, answers)
            }
            None => (0, AnswerSummary::EMPTY),
        };
        let change = health.observe(upstream as u32, target, outcome, rtt_us, now, answers);
        self.publish(change, Some(upstream));
    }

    fn evaluate_all(&mut self, now: u64) {
        let Some(health) = self.health.as_mut() else {
            return;
        };
        let change = health.evaluate(now);
        self.publish(change, None);
    }

    /// Updates every upstream's score and verdict gauges; logs an overall verdict change
    /// once, with the reasons and the upstream that stands out.
    ///
    /// With batching (a tick set) the gauges are written on ticks only (`only` is
    /// `None` there): a verdict change is still logged at once. Without it, after one
    /// observation (`only`: its upstream) and without a verdict change, only that
    /// upstream's gauges are looked at. A gauge is written only when its value changed.
    fn publish(&mut self, change: Option<crate::health::Change>, only: Option<usize>) {
        let batched = self.batched();
        let Some(health) = self.health.as_ref() else {
            return;
        };
        for (i, u) in self.upstreams.iter_mut().enumerate() {
            if only.is_some() && (batched || change.is_none() && only != Some(i)) {
                continue;
            }
            let score = (health.server_score(i as u32).clamp(0.0, 1.0) * 1000.0) as u64;
            let verdict = gauge(health.server_verdict(i as u32)) as u64;
            if u.published != Some((score, verdict)) {
                u.published = Some((score, verdict));
                record(u.score, score);
                record(u.verdict, verdict);
            }
        }
        let Some(c) = change else {
            return;
        };
        let level = if c.to == Verdict::Ok {
            Level::Info
        } else {
            Level::Warn
        };
        let label = |s: u32| {
            self.upstreams
                .get(s as usize)
                .map_or_else(|| UNKNOWN_UPSTREAM.to_string(), |u| u.label.clone())
        };
        let target = |t: u32| match self.config.expected.get((t as usize).wrapping_sub(1)) {
            Some(e) => concat(&[&e.name, if e.qtype == 28 { " AAAA" } else { " A" }]),
            None => t.to_string(),
        };
        log(
            &self.config,
            level,
            &concat(&[
                "dnswarden: ",
                self.transport,
                " verdict ",
                c.from.name(),
                " -> ",
                c.to.name(),
                " (score ",
                &fixed2(c.score),
                "): ",
                &health.reasons(label, target),
            ]),
        );
    }
}

// ---------------------------------------------------------------------------------
// Root context.

struct Root {
    shared: Rc<RefCell<Shared>>,
}

/// Root callbacks (inherent: see [`Conn`]).
impl Root {
    fn on_vm_start(&mut self, _vm_configuration_size: usize) -> bool {
        true
    }

    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        let bytes = match hostcalls::get_buffer(
            BufferType::PluginConfiguration,
            0,
            plugin_configuration_size,
        ) {
            Ok(Some(bytes)) => bytes,
            _ => Vec::new(),
        };
        match Config::parse(&bytes) {
            Ok(config) => {
                if config.tick_ms > 0 {
                    let _ = hostcalls::set_tick_period(Duration::from_millis(u64::from(
                        config.tick_ms,
                    )));
                }
                log(
                    &config,
                    Level::Info,
                    &concat(&[
                        "dnswarden: configured (",
                        match config.mode {
                            Mode::Network => "network",
                            Mode::Http => "http",
                        },
                        " filter, metric prefix ",
                        &config.metric_prefix,
                        ")",
                    ]),
                );
                let Ok(mut shared) = self.shared.try_borrow_mut() else {
                    return false;
                };
                // Increments still batched belong to the old metrics: hand them over.
                shared.flush();
                *shared = Shared::new(config, now_us());
                true
            }
            Err(e) => {
                let _ = hostcalls::log(LogLevel::Error, &concat(&["dnswarden: ", &e.message()]));
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let Ok(mut shared) = self.shared.try_borrow_mut() else {
            return;
        };
        shared.evaluate_all(now_us());
        shared.flush();
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(match self.shared.try_borrow().map(|s| s.config.mode) {
            Ok(Mode::Http) => ContextType::HttpContext,
            _ => ContextType::StreamContext,
        })
    }

    fn create_stream_context(&self) -> Option<Box<dyn StreamContext>> {
        let max = self
            .shared
            .try_borrow()
            .map_or(4096, |s| s.config.max_message_bytes as usize);
        Some(Box::new(Conn::Tcp(Box::new(Tcp::new(
            self.shared.clone(),
            max,
        )))))
    }

    fn create_http_context(&self) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Conn::Doh(Box::new(Doh::new(self.shared.clone())))))
    }
}

// ---------------------------------------------------------------------------------
// DNS over TCP.

/// Every context, root, L4 or HTTP, behind a single type: the SDK's many default
/// trait methods are then instantiated once, which keeps the `.wasm` small.
enum Conn {
    Root(Root),
    Tcp(Box<Tcp>),
    Doh(Box<Doh>),
}

impl Context for Conn {
    crate::stubs::context!();
}

impl RootContext for Conn {
    crate::stubs::root_context!();

    fn on_vm_start(&mut self, vm_configuration_size: usize) -> bool {
        match self {
            Conn::Root(r) => r.on_vm_start(vm_configuration_size),
            _ => true,
        }
    }

    fn on_configure(&mut self, plugin_configuration_size: usize) -> bool {
        match self {
            Conn::Root(r) => r.on_configure(plugin_configuration_size),
            _ => true,
        }
    }

    fn on_tick(&mut self) {
        if let Conn::Root(r) = self {
            r.on_tick();
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        match self {
            Conn::Root(r) => r.get_type(),
            Conn::Tcp(_) => Some(ContextType::StreamContext),
            Conn::Doh(_) => Some(ContextType::HttpContext),
        }
    }

    fn create_stream_context(&self, _context_id: u32) -> Option<Box<dyn StreamContext>> {
        match self {
            Conn::Root(r) => r.create_stream_context(),
            _ => None,
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        match self {
            Conn::Root(r) => r.create_http_context(),
            _ => None,
        }
    }
}

impl StreamContext for Conn {
    crate::stubs::stream_context!();

    fn on_new_connection(&mut self) -> Action {
        Action::Continue
    }

    fn on_downstream_data(&mut self, data_size: usize, end_of_stream: bool) -> Action {
        if let Conn::Tcp(t) = self {
            t.on_downstream_data(data_size, end_of_stream);
        }
        Action::Continue
    }

    fn on_upstream_data(&mut self, data_size: usize, end_of_stream: bool) -> Action {
        if let Conn::Tcp(t) = self {
            t.on_upstream_data(data_size, end_of_stream);
        }
        Action::Continue
    }

    fn on_downstream_close(&mut self, peer_type: PeerType) {
        if let Conn::Tcp(t) = self {
            t.on_downstream_close(peer_type);
        }
    }

    fn on_upstream_close(&mut self, peer_type: PeerType) {
        if let Conn::Tcp(t) = self {
            t.on_upstream_close(peer_type);
        }
    }
}

impl HttpContext for Conn {
    crate::stubs::http_context!();

    fn on_http_request_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        if let Conn::Doh(d) = self {
            d.on_http_request_headers(num_headers, end_of_stream);
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if let Conn::Doh(d) = self {
            d.on_http_request_body(body_size, end_of_stream);
        }
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, num_trailers: usize) -> Action {
        if let Conn::Doh(d) = self {
            d.on_http_request_trailers(num_trailers);
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        if let Conn::Doh(d) = self {
            d.on_http_response_headers(num_headers, end_of_stream);
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if let Conn::Doh(d) = self {
            d.on_http_response_body(body_size, end_of_stream);
        }
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, num_trailers: usize) -> Action {
        if let Conn::Doh(d) = self {
            d.on_http_response_trailers(num_trailers);
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        if let Conn::Doh(d) = self {
            d.on_log();
        }
    }
}

/// One direction of a TCP connection.
#[derive(Debug)]
struct Direction {
    framer: TcpFramer<Box<[u8]>>,
    malformed_run: u32,
    given_up: bool,
}

impl Direction {
    fn new(max: usize) -> Self {
        Self {
            framer: TcpFramer::new(vec![0u8; max].into_boxed_slice()),
            malformed_run: 0,
            given_up: false,
        }
    }

    /// Frames `data`, calling `on_frame` with each whole message, and with `None` for
    /// each message too large to buffer (skipped; the stream stays in sync).
    fn push(&mut self, data: &[u8], mut on_frame: impl FnMut(Option<&[u8]>)) {
        let mut input = data;
        // Each round either consumes the input or skips one oversized frame, so this
        // ends; the bound is a belt-and-braces guard.
        for _ in 0..=data.len() {
            // One `&mut dyn` callback type: a single instance of the framer in the .wasm.
            let mut deliver = |msg: &[u8]| on_frame(Some(msg));
            let deliver: &mut dyn FnMut(&[u8]) = &mut deliver;
            match self.framer.push(input, deliver) {
                Ok(()) => return,
                Err(FrameError::TooLarge { unread, .. }) => {
                    on_frame(None);
                    self.framer.skip_oversized();
                    let Some(rest) = input.get(input.len().saturating_sub(unread)..) else {
                        return;
                    };
                    input = rest;
                }
                Err(_) => {
                    self.framer.reset();
                    return;
                }
            }
        }
    }
}

/// What a TCP connection saw before its upstream was known.
#[derive(Debug, Default)]
struct Deferred {
    queries: i64,
    malformed: Vec<&'static str>,
}

struct Tcp {
    shared: Rc<RefCell<Shared>>,
    upstream: Option<usize>,
    queries: Direction,
    responses: Direction,
    pending: Pending,
    deferred: Deferred,
}

impl Tcp {
    fn new(shared: Rc<RefCell<Shared>>, max: usize) -> Self {
        Self {
            shared,
            upstream: None,
            queries: Direction::new(max),
            responses: Direction::new(max),
            pending: Pending::new(PENDING_CAPACITY),
            deferred: Deferred::default(),
        }
    }

    /// Resolves the upstream from Envoy's `upstream.address` once it is known, and
    /// flushes what was counted before. With `force`, falls back to `unknown`.
    fn resolve(&mut self, shared: &mut Shared, force: bool) -> Option<usize> {
        if let Some(u) = self.upstream {
            return Some(u);
        }
        let u = upstream_index(shared, force)?;
        self.upstream = Some(u);
        shared.count_query(u, self.deferred.queries);
        for kind in std::mem::take(&mut self.deferred.malformed) {
            shared.count("malformed", u, &[("direction", "query"), ("kind", kind)], 1);
        }
        self.deferred.queries = 0;
        Some(u)
    }

    fn expire(&mut self, shared: &mut Shared, now: u64) {
        let timeout = u64::from(shared.config.thresholds.query_timeout_ms) * 1000;
        let expired = self.pending.expire(now, timeout);
        if expired > 0
            && let Some(u) = self.resolve(shared, true)
        {
            for _ in 0..expired {
                shared.observe(u, Outcome::Timeout, 0, now, None, AnswerSummary::EMPTY);
            }
        }
    }

    fn on_queries(&mut self, data: &[u8]) {
        let rc = self.shared.clone();
        let Ok(mut shared) = rc.try_borrow_mut() else {
            return;
        };
        let now = now_us();
        self.resolve(&mut shared, false);
        let Self {
            queries,
            pending,
            deferred,
            upstream,
            ..
        } = self;
        if queries.given_up {
            return;
        }
        let mut evicted = 0usize;
        let mut malformed: Vec<&'static str> = Vec::new();
        let mut count = 0i64;
        let mut question = [0u8; MAX_QUESTION_LEN];
        queries.push(data, |frame| {
            let Some(msg) = frame else {
                malformed.push("too_large");
                return;
            };
            count += 1;
            match read_query(msg, &mut question) {
                Ok((id, opcode, n)) => {
                    let q = question.get(..n).unwrap_or_default();
                    evicted += usize::from(pending.insert(id, opcode, q, now));
                }
                Err(kind) => malformed.push(kind),
            }
        });
        if malformed.is_empty() {
            queries.malformed_run = 0;
        } else {
            queries.malformed_run = queries.malformed_run.saturating_add(malformed.len() as u32);
            if queries.malformed_run >= MAX_MALFORMED_RUN {
                queries.given_up = true;
                malformed.push("gave_up");
            }
        }
        match *upstream {
            Some(u) => {
                shared.count_query(u, count);
                for kind in malformed {
                    shared.count("malformed", u, &[("direction", "query"), ("kind", kind)], 1);
                }
                for _ in 0..evicted {
                    shared.observe(u, Outcome::Timeout, 0, now, None, AnswerSummary::EMPTY);
                }
            }
            None => {
                deferred.queries += count;
                if deferred.malformed.len() < 64 {
                    deferred.malformed.extend(malformed);
                }
            }
        }
        self.expire(&mut shared, now);
    }

    fn on_responses(&mut self, data: &[u8]) {
        let rc = self.shared.clone();
        let Ok(mut shared) = rc.try_borrow_mut() else {
            return;
        };
        let now = now_us();
        let Some(u) = self.resolve(&mut shared, true) else {
            return;
        };
        if self.responses.given_up {
            return;
        }
        // Each message is judged and applied as the framer hands it over.
        let pending = &mut self.pending;
        let sh = &mut *shared;
        let mut bad = 0u32;
        self.responses.push(data, |frame| {
            let none = AnswerSummary::EMPTY;
            let (outcome, rtt, kind, question, answers) = match frame {
                None => (Outcome::Malformed, 0, "too_large", None, none),
                Some(msg) => {
                    // The id from the octets: the message is parsed once, by `judge`, and a
                    // query stays pending when its id comes with octets that are no DNS
                    // message.
                    let id = msg.first_chunk().map_or(0, |&id| u16::from_be_bytes(id));
                    let judged = pending.answer(id, |q| {
                        let rtt = u32::try_from(now.saturating_sub(q.sent_us)).unwrap_or(u32::MAX);
                        let j = judge(q.asked(), msg);
                        let (outcome, kind, question, answers) = j;
                        let rtt = if answered(&j) { rtt } else { 0 };
                        ((outcome, rtt, kind, question, answers), answered(&j))
                    });
                    judged.unwrap_or_else(|| match Message::parse(msg) {
                        Ok(_) => (Outcome::Mismatch(Mismatch::ID), 0, "id", None, none),
                        Err(e) => (Outcome::Malformed, 0, e.kind(), None, none),
                    })
                }
            };
            match outcome {
                Outcome::Malformed => {
                    bad += 1;
                    sh.count(
                        "malformed",
                        u,
                        &[("direction", "response"), ("kind", kind)],
                        1,
                    );
                }
                Outcome::Mismatch(_) => sh.count("mismatches", u, &[("kind", kind)], 1),
                _ => {}
            }
            sh.observe(u, outcome, rtt, now, question, answers);
        });
        if bad == 0 {
            self.responses.malformed_run = 0;
        } else {
            self.responses.malformed_run = self.responses.malformed_run.saturating_add(bad);
            if self.responses.malformed_run >= MAX_MALFORMED_RUN {
                self.responses.given_up = true;
                shared.count(
                    "malformed",
                    u,
                    &[("direction", "response"), ("kind", "gave_up")],
                    1,
                );
            }
        }
        self.expire(&mut shared, now);
    }

    fn on_close(&mut self) {
        let rc = self.shared.clone();
        let Ok(mut shared) = rc.try_borrow_mut() else {
            return;
        };
        let now = now_us();
        let unanswered = self.pending.clear();
        let Some(u) = self.resolve(&mut shared, true) else {
            return;
        };
        for _ in 0..unanswered {
            shared.observe(u, Outcome::Timeout, 0, now, None, AnswerSummary::EMPTY);
        }
        shared.flush();
    }
}

/// Callbacks of the L4 filter (inherent: only [`Conn`] implements the SDK traits, so
/// the SDK's default trait methods are instantiated once, which keeps the `.wasm` small).
impl Tcp {
    fn on_downstream_data(&mut self, data_size: usize, _end_of_stream: bool) -> Action {
        let Ok(Some(data)) = hostcalls::get_buffer(BufferType::DownstreamData, 0, data_size) else {
            return Action::Continue;
        };
        self.on_queries(&data);
        Action::Continue
    }

    fn on_upstream_data(&mut self, data_size: usize, _end_of_stream: bool) -> Action {
        let Ok(Some(data)) = hostcalls::get_buffer(BufferType::UpstreamData, 0, data_size) else {
            return Action::Continue;
        };
        self.on_responses(&data);
        Action::Continue
    }

    fn on_downstream_close(&mut self, _peer_type: PeerType) {
        self.on_close();
    }

    fn on_upstream_close(&mut self, _peer_type: PeerType) {
        self.on_close();
    }
}

// ---------------------------------------------------------------------------------
// DNS over HTTPS (RFC 8484).

const DNS_MESSAGE: &[u8] = b"application/dns-message";

fn header(map: MapType, name: &str) -> Option<Vec<u8>> {
    hostcalls::get_map_value_bytes(map, name).ok().flatten()
}

fn is_dns_message(content_type: Option<&[u8]>) -> bool {
    content_type.is_some_and(|ct| {
        let main = ct.split(|&b| b == b';').next().unwrap_or_default();
        main.trim_ascii().eq_ignore_ascii_case(DNS_MESSAGE)
    })
}

struct Doh {
    shared: Rc<RefCell<Shared>>,
    /// Query body being collected (POST).
    request_body: Option<Vec<u8>>,
    /// The query, once read, and when.
    query: Option<Outstanding>,
    /// Response body being collected (200 with application/dns-message).
    response_body: Option<Vec<u8>>,
    answered: bool,
    /// Query-side counts, kept until the upstream is known (Envoy picks it after the
    /// request headers): `queries`, then malformed kinds.
    deferred_query: bool,
    deferred_malformed: Option<&'static str>,
}

impl Doh {
    fn new(shared: Rc<RefCell<Shared>>) -> Self {
        Self {
            shared,
            request_body: None,
            query: None,
            response_body: None,
            answered: false,
            deferred_query: false,
            deferred_malformed: None,
        }
    }

    fn max(&self) -> usize {
        self.shared
            .try_borrow()
            .map_or(4096, |s| s.config.max_message_bytes as usize)
    }

    fn upstream(shared: &mut Shared) -> usize {
        upstream_index(shared, true).unwrap_or(0)
    }

    fn malformed_query(&mut self, kind: &'static str) {
        self.deferred_malformed = Some(kind);
    }

    /// The upstream (known once Envoy routed the request), with the deferred query-side
    /// counts flushed to it.
    fn flush(&mut self, shared: &mut Shared) -> usize {
        let u = Self::upstream(shared);
        if std::mem::take(&mut self.deferred_query) {
            shared.count_query(u, 1);
        }
        if let Some(kind) = self.deferred_malformed.take() {
            shared.count("malformed", u, &[("direction", "query"), ("kind", kind)], 1);
        }
        u
    }

    fn read_query(&mut self, bytes: &[u8]) {
        let mut question = [0u8; MAX_QUESTION_LEN];
        match read_query(bytes, &mut question) {
            Ok((id, opcode, n)) => {
                let q = question.get(..n).unwrap_or_default();
                self.query = Some(Outstanding::new(id, opcode, q, now_us()));
                self.deferred_query = true;
            }
            Err(kind) => self.malformed_query(kind),
        }
    }

    fn finish_response(&mut self) {
        let Some(body) = self.response_body.take() else {
            return;
        };
        let Some(query) = self.query.take() else {
            return;
        };
        self.answered = true;
        let rc = self.shared.clone();
        let Ok(mut shared) = rc.try_borrow_mut() else {
            return;
        };
        let now = now_us();
        let u = self.flush(&mut shared);
        let rtt = u32::try_from(now.saturating_sub(query.sent_us)).unwrap_or(u32::MAX);
        let (outcome, kind, question, answers) = judge(query.asked(), &body);
        match outcome {
            Outcome::Mismatch(_) => shared.count("mismatches", u, &[("kind", kind)], 1),
            Outcome::Malformed => shared.count(
                "malformed",
                u,
                &[("direction", "response"), ("kind", kind)],
                1,
            ),
            _ => {}
        }
        shared.observe(u, outcome, rtt, now, question, answers);
    }
}

/// Callbacks of the HTTP filter (see [`Conn`]).
impl Doh {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(method) = header(MapType::HttpRequestHeaders, ":method") else {
            return Action::Continue;
        };
        if method.eq_ignore_ascii_case(b"GET") {
            let Some(path) = header(MapType::HttpRequestHeaders, ":path") else {
                return Action::Continue;
            };
            if doh::dns_param(&path).is_none() {
                return Action::Continue; // not DoH: not ours to judge
            }
            let mut query = Vec::new();
            match doh::query_from_path(&path, self.max(), &mut query) {
                Ok(()) => self.read_query(&query),
                Err(e) => self.malformed_query(e.kind()),
            }
        } else if method.eq_ignore_ascii_case(b"POST")
            && is_dns_message(header(MapType::HttpRequestHeaders, "content-type").as_deref())
        {
            if end_of_stream {
                self.malformed_query("empty_body");
            } else {
                self.request_body = Some(Vec::new());
            }
        }
        Action::Continue
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let max = self.max();
        let Some(buf) = self.request_body.as_mut() else {
            return Action::Continue;
        };
        if let Ok(Some(chunk)) = hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size) {
            if buf.len() + chunk.len() > max {
                self.request_body = None;
                self.malformed_query("too_large");
                return Action::Continue;
            }
            buf.extend_from_slice(&chunk);
        }
        if end_of_stream && let Some(body) = self.request_body.take() {
            self.read_query(&body);
        }
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if let Some(body) = self.request_body.take() {
            self.read_query(&body);
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let rc = self.shared.clone();
        if let Ok(mut shared) = rc.try_borrow_mut() {
            self.flush(&mut shared);
        }
        if self.query.is_none() {
            return Action::Continue;
        }
        let status = header(MapType::HttpResponseHeaders, ":status").unwrap_or_default();
        let content_type = header(MapType::HttpResponseHeaders, "content-type");
        if status == b"200" && is_dns_message(content_type.as_deref()) && !end_of_stream {
            self.response_body = Some(Vec::new());
            return Action::Continue;
        }
        // No DNS answer will come: an HTTP-level failure.
        self.answered = true;
        let rc = self.shared.clone();
        let Ok(mut shared) = rc.try_borrow_mut() else {
            return Action::Continue;
        };
        let u = self.flush(&mut shared);
        let status = String::from_utf8(status).unwrap_or_default();
        let status = if status.len() == 3 && status.bytes().all(|b| b.is_ascii_digit()) {
            status
        } else {
            "bad".into()
        };
        shared.count("http_errors", u, &[("status", &status)], 1);
        shared.observe(u, Outcome::Timeout, 0, now_us(), None, AnswerSummary::EMPTY);
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let max = self.max();
        let Some(buf) = self.response_body.as_mut() else {
            return Action::Continue;
        };
        if let Ok(Some(chunk)) = hostcalls::get_buffer(BufferType::HttpResponseBody, 0, body_size) {
            if buf.len() + chunk.len() > max {
                // Too large to read (answers this big are legitimate): count, stop reading.
                self.response_body = None;
                self.answered = true;
                if let Ok(mut shared) = self.shared.try_borrow_mut() {
                    let u = Self::upstream(&mut shared);
                    shared.count(
                        "malformed",
                        u,
                        &[("direction", "response"), ("kind", "too_large")],
                        1,
                    );
                }
                return Action::Continue;
            }
            buf.extend_from_slice(&chunk);
        }
        if end_of_stream {
            self.finish_response();
        }
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        self.finish_response();
        Action::Continue
    }

    fn on_log(&mut self) {
        let rc = self.shared.clone();
        let Ok(mut shared) = rc.try_borrow_mut() else {
            return;
        };
        let u = self.flush(&mut shared);
        if self.query.is_some() && !self.answered {
            self.answered = true;
            shared.observe(u, Outcome::Timeout, 0, now_us(), None, AnswerSummary::EMPTY);
        }
    }
}
