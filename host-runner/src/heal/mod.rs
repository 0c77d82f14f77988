//! Guarded self-healing of CoreDNS.
