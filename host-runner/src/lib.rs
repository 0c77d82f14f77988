//! The dnswarden runner library (work in progress).
