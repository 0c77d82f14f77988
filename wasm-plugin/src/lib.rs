//! dnswarden as a proxy-wasm filter for Envoy and Istio.
//!
//! The filter passively reads the DNS that real clients exchange through Envoy and
//! scores each upstream's health with `dnswarden-core`:
//!
//! * as a **network (L4) filter** in front of DNS over TCP: both directions are framed
//!   with the core TCP framer, answers are matched to queries by id (then question) for
//!   RTT, and each outcome feeds the upstream's health, keyed by Envoy's
//!   `upstream.address`;
//! * as an **HTTP filter** in front of DNS over HTTPS (RFC 8484): `POST
//!   application/dns-message` and `GET ?dns=` queries, response bodies read as they
//!   pass.
//!
//! proxy-wasm cannot see UDP: plain DNS over UDP is covered by the `dnswarden` runner.
//!
//! The filter fails open: it never modifies, delays or drops traffic, every callback
//! returns `Continue`, and no input or configuration can make it panic. Metrics are
//! defined with labels encoded in their names (see [`names`]); `envoy/stats_tags.yaml`
//! turns them into Prometheus labels.
//!
//! Pure logic ([`config`], [`doh`], [`names`], [`pending`], [`health`], [`targets`]) is native code
//! with unit tests; `filter` is the proxy-wasm glue, exercised through the wasmtime host
//! in `host/` and through a real Envoy.

pub mod config;
pub mod doh;
pub mod health;
pub mod ip;
pub mod json;
pub mod names;
pub mod pending;
pub mod targets;

mod filter;
#[cfg(target_arch = "wasm32")]
mod heap;
mod stubs;

proxy_wasm::main! {{
    filter::start();
}}
