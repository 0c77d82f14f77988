//! Shared helpers for the dnswarden benchmarks (work in progress).
