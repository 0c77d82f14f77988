//! dnswarden-core: the allocation-free heart of dnswarden.
//!
//! * [`wire`]: zero-copy DNS message views, a query builder, a response matcher and a
//!   DNS-over-TCP framer. Nothing here allocates, panics or reads out of bounds,
//!   whatever the input.
//! * [`score`]: fixed-memory anomaly detectors fed with [`score::Observation`]s and
//!   fused into one explainable score and verdict.
//!
//! The crate is `#![no_std]`, uses no `alloc`, and forbids `unsafe`. Callers bring the
//! bytes, the timestamps (u64 microseconds) and the keys; `core` knows nothing about
//! clocks, sockets, Envoy or Kubernetes.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable
    )
)]
#![warn(missing_docs)]

pub mod score;
pub mod wire;
