//! Kubernetes discovery: finds CoreDNS pods and the names that matter.
