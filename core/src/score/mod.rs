//! Anomaly detectors and the fused score (work in progress).
