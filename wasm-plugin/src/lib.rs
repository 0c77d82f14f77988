//! dnswarden as a proxy-wasm filter (work in progress).
