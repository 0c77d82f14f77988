//! The dnswarden runner library (work in progress).
pub mod heal;
pub mod kube;
