//! Metric names with labels encoded in them.
//!
//! The proxy-wasm ABI has no labels, so a metric such as "responses with rcode
//! SERVFAIL from upstream 10.0.0.1:53 over tcp" is defined under one flat name:
//!
//! ```text
//! dnswarden.responses.transport.tcp.upstream.10_0_0_1_53.rcode.SERVFAIL
//! ```
//!
//! that is `<prefix>.<metric>` followed by `.<label>.<value>` pairs in a fixed order.
//! Values are sanitized to `[A-Za-z0-9_-]` (everything else becomes `_`) and capped in
//! length, so they never contain the `.` separator. Envoy prefixes the name with
//! `wasmcustom.`; the `stats_tags` shipped in `envoy/` turn each pair back into a
//! Prometheus label (`dns_transport`, `dns_upstream`, `dns_rcode`, ...).

/// Longest label value kept (longer values are cut).
pub const MAX_VALUE_LEN: usize = 64;

/// Appends `value` to `out`, replacing characters outside `[A-Za-z0-9_-]` with `_`.
pub fn push_sanitized(out: &mut String, value: &str) {
    if value.is_empty() {
        out.push_str("none");
        return;
    }
    for c in value.chars().take(MAX_VALUE_LEN) {
        out.push(if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
            c
        } else {
            '_'
        });
    }
}

/// Builds `<prefix>.<metric>(.<label>.<value>)*`.
#[must_use]
pub fn metric_name(prefix: &str, metric: &str, labels: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(prefix.len() + metric.len() + 16 * labels.len() + 16);
    out.push_str(prefix);
    out.push('.');
    out.push_str(metric);
    for (label, value) in labels {
        out.push('.');
        out.push_str(label);
        out.push('.');
        push_sanitized(&mut out, value);
    }
    out
}

/// The parts joined, without `format!` (one small non-generic body in the `.wasm`
/// instead of formatting machinery at every call site).
#[must_use]
pub fn concat(parts: &[&str]) -> String {
    let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        out.push_str(p);
    }
    out
}

/// Label used for the rcode of a response: the mnemonic, or `RCODE<n>`.
#[must_use]
pub fn rcode_label(rcode: u16) -> String {
    match dnswarden_core::wire::Rcode(rcode).mnemonic() {
        Some(m) => m.into(),
        None => concat(&["RCODE", &rcode.to_string()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_flat_and_dot_free_per_value() {
        assert_eq!(
            metric_name(
                "dnswarden",
                "responses",
                &[
                    ("transport", "tcp"),
                    ("upstream", "10.0.0.1:53"),
                    ("rcode", "NOERROR")
                ]
            ),
            "dnswarden.responses.transport.tcp.upstream.10_0_0_1_53.rcode.NOERROR"
        );
        assert_eq!(metric_name("p", "m", &[]), "p.m");
        assert_eq!(
            metric_name("p", "m", &[("upstream", "")]),
            "p.m.upstream.none"
        );
        assert_eq!(
            metric_name("p", "m", &[("upstream", "[::1]:53")]),
            "p.m.upstream.___1__53"
        );
    }

    #[test]
    fn values_are_bounded() {
        let long = "a.".repeat(100);
        let name = metric_name("p", "m", &[("upstream", &long)]);
        assert_eq!(name.len(), "p.m.upstream.".len() + MAX_VALUE_LEN);
        assert!(!name["p.m.upstream.".len()..].contains('.'));
        let odd = metric_name("p", "m", &[("upstream", "é\u{0}x")]);
        assert_eq!(odd, "p.m.upstream.__x");
    }

    #[test]
    fn rcode_labels() {
        assert_eq!(rcode_label(0), "NOERROR");
        assert_eq!(rcode_label(2), "SERVFAIL");
        assert_eq!(rcode_label(3), "NXDOMAIN");
        assert_eq!(rcode_label(3000), "RCODE3000");
    }
}
