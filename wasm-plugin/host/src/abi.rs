//! Numeric values of the proxy-wasm ABI 0.2.1 enums, as the host sees them on the wire.
//!
//! The values follow the proxy-wasm spec (`abi-versions/v0.2.1`) and the Rust SDK's
//! `types.rs`; they are plain integers at the ABI boundary.

/// What a filter callback asks the host to do with the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Go on: forward what is buffered (0).
    Continue,
    /// Stop iteration and buffer (1).
    Pause,
    /// Any other value a broken filter may return.
    Other(u32),
}

impl Action {
    /// Decodes the integer a callback returned.
    #[must_use]
    pub fn from_raw(raw: u32) -> Self {
        match raw {
            0 => Self::Continue,
            1 => Self::Pause,
            other => Self::Other(other),
        }
    }
}

/// Status codes returned by host calls.
pub mod status {
    /// Success.
    pub const OK: i32 = 0;
    /// The thing asked for does not exist.
    pub const NOT_FOUND: i32 = 1;
    /// An argument is out of range or malformed.
    pub const BAD_ARGUMENT: i32 = 2;
    /// A value could not be serialized.
    pub const SERIALIZATION_FAILURE: i32 = 3;
    /// The host has no such feature.
    pub const UNIMPLEMENTED: i32 = 12;
}

/// Log levels (trace = 0 ... critical = 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// 0
    Trace,
    /// 1
    Debug,
    /// 2
    Info,
    /// 3
    Warn,
    /// 4
    Error,
    /// 5 (and anything larger)
    Critical,
}

impl LogLevel {
    /// Decodes a level; values above 5 are treated as critical.
    #[must_use]
    pub fn from_raw(raw: u32) -> Self {
        match raw {
            0 => Self::Trace,
            1 => Self::Debug,
            2 => Self::Info,
            3 => Self::Warn,
            4 => Self::Error,
            _ => Self::Critical,
        }
    }

    /// The ABI integer for this level.
    #[must_use]
    pub fn raw(self) -> u32 {
        match self {
            Self::Trace => 0,
            Self::Debug => 1,
            Self::Info => 2,
            Self::Warn => 3,
            Self::Error => 4,
            Self::Critical => 5,
        }
    }
}

/// Kinds of metric a filter can define.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// Monotonic counter (0).
    Counter,
    /// Gauge (1).
    Gauge,
    /// Histogram (2).
    Histogram,
}

impl MetricKind {
    /// Decodes a metric type, `None` when unknown.
    #[must_use]
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(Self::Counter),
            1 => Some(Self::Gauge),
            2 => Some(Self::Histogram),
            _ => None,
        }
    }
}

/// Buffer types for `proxy_get_buffer_bytes` / `proxy_set_buffer_bytes`.
pub mod buffer {
    /// HTTP request body.
    pub const HTTP_REQUEST_BODY: u32 = 0;
    /// HTTP response body.
    pub const HTTP_RESPONSE_BODY: u32 = 1;
    /// L4 data from the downstream (client).
    pub const DOWNSTREAM_DATA: u32 = 2;
    /// L4 data from the upstream (server).
    pub const UPSTREAM_DATA: u32 = 3;
    /// Body of an `http_call` response.
    pub const HTTP_CALL_RESPONSE_BODY: u32 = 4;
    /// The VM configuration.
    pub const VM_CONFIGURATION: u32 = 6;
    /// The plugin configuration.
    pub const PLUGIN_CONFIGURATION: u32 = 7;
}

/// Header map types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MapType {
    /// 0
    RequestHeaders,
    /// 1
    RequestTrailers,
    /// 2
    ResponseHeaders,
    /// 3
    ResponseTrailers,
}

impl MapType {
    /// Decodes a map type, `None` for gRPC / http-call maps this host does not keep.
    #[must_use]
    pub fn from_raw(raw: u32) -> Option<Self> {
        match raw {
            0 => Some(Self::RequestHeaders),
            1 => Some(Self::RequestTrailers),
            2 => Some(Self::ResponseHeaders),
            3 => Some(Self::ResponseTrailers),
            _ => None,
        }
    }
}

/// Who closed a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerType {
    /// 0
    Unknown,
    /// 1: closed by this proxy.
    Local,
    /// 2: closed by the peer.
    Remote,
}

impl PeerType {
    /// The ABI integer.
    #[must_use]
    pub fn raw(self) -> i32 {
        match self {
            Self::Unknown => 0,
            Self::Local => 1,
            Self::Remote => 2,
        }
    }
}
