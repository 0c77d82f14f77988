//! The one-shot commands behind `dnswarden check-config` and `dnswarden probe`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use dnswarden_core::wire::Rtype;
use serde_json::json;

use crate::Result;
use crate::config::{Config, Overrides, TargetConfig};
use crate::probe::{ProbeSpec, Prober};
use crate::scoring::Scorer;

/// Validates a file; returns a one-paragraph summary.
pub fn check_config(path: &Path, overrides: &Overrides) -> Result<String> {
    let c = Config::load(path, overrides)?;
    let kube = match &c.kube {
        Some(k) => format!(
            "; plus Kubernetes discovery (CoreDNS in {}, healing {:?})",
            k.coredns_namespace, c.heal.mode
        ),
        None => String::new(),
    };
    Ok(format!(
        "{}: ok: {} server(s), {} target(s), {} probes/s, timeout {} ms, metrics on http://{}/metrics{kube}",
        path.display(),
        c.servers.len(),
        c.targets.len(),
        // `+ 0.0`: an empty sum is -0.0.
        (c.servers.len() as f64 * crate::config::server_qps(&c.targets)).round() + 0.0,
        c.probe.timeout.as_millis(),
        c.listen
    ))
}

/// Arguments of `dnswarden probe`.
#[derive(Debug, Clone)]
pub struct ProbeArgs {
    /// The name.
    pub qname: String,
    /// The type.
    pub qtype: Rtype,
    /// The server.
    pub server: SocketAddr,
    /// TCP only.
    pub tcp: bool,
    /// JSON output.
    pub json: bool,
    /// Number of probes.
    pub count: u32,
    /// Time between probes.
    pub interval: Duration,
    /// Timeout per attempt.
    pub timeout: Duration,
}

/// Runs `dnswarden probe`: `count` probes, each printed like dig with what the scorer
/// thinks after it. Returns the text to print.
pub async fn probe(args: &ProbeArgs) -> Result<String> {
    TargetConfig::check_qname("NAME", &args.qname)?;
    let mut scorer = Scorer::new(
        Config::single(args.server, Vec::new()).scoring,
        vec![args.server.to_string()],
        vec![args.qname.clone()],
    )
    .map_err(|e| crate::Error::config(e.field, e.problem, e.fix))?;
    let prober = Prober::new(true);
    let start = tokio::time::Instant::now();
    let mut out = String::new();
    let mut ticker = tokio::time::interval(args.interval);
    for i in 0..args.count.max(1) {
        ticker.tick().await;
        let spec = ProbeSpec {
            server: args.server,
            qname: &args.qname,
            qtype: args.qtype,
            tcp: args.tcp,
            timeout: args.timeout,
            edns_udp_size: crate::config::defaults::EDNS_UDP_SIZE,
        };
        let res = prober.probe(&spec).await;
        let at_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
        let a = scorer.observe_probe(0, 0, at_us, &res);
        if args.json {
            let v = json!({
                "seq": i,
                "server": args.server.to_string(),
                "qname": args.qname,
                "qtype": args.qtype.to_string(),
                "id": res.id,
                "transport": res.transport,
                "outcome": res.outcome.label(),
                "rtt_ms": res.rtt.as_secs_f64() * 1000.0,
                "truncated": res.truncated,
                "tcp_fallback": res.tcp_fallback,
                "mismatches": res.mismatches,
                "malformed": res.malformed,
                "ede": res.ede.as_ref().map(|(c, t)| json!({"code": c, "text": t})),
                "answers": res.answers,
                "score": a.score,
                "verdict": a.verdict.name(),
                "causes": a.reasons.iter().map(|r| r.cause).collect::<Vec<_>>(),
                "reasons": a.reasons.iter().map(|r| r.text.clone()).collect::<Vec<_>>(),
            });
            let _ = writeln!(out, "{v}");
        } else {
            let _ = writeln!(
                out,
                ";; {} {} @{} ({}) id {:#06x}",
                args.qname,
                args.qtype,
                args.server,
                res.transport.as_str(),
                res.id
            );
            let _ = writeln!(
                out,
                ";; outcome {}  rtt {:.3} ms{}{}",
                res.outcome,
                res.rtt.as_secs_f64() * 1000.0,
                if res.truncated {
                    format!(
                        "  truncated, tcp fallback {}",
                        if res.tcp_fallback == Some(true) {
                            "ok"
                        } else {
                            "failed"
                        }
                    )
                } else {
                    String::new()
                },
                if res.mismatches + res.malformed > 0 {
                    format!(
                        "  mismatched {} malformed {}",
                        res.mismatches, res.malformed
                    )
                } else {
                    String::new()
                }
            );
            if let Some((code, text)) = &res.ede {
                let _ = writeln!(out, ";; extended error {code}: {text}");
            }
            for a in &res.answers {
                let _ = writeln!(out, "{}\t{}\tIN\t{}\t{}", a.owner, a.ttl, a.rtype, a.data);
            }
            let _ = writeln!(
                out,
                ";; scorer: {} (score {:.2}, causes {}){}\n",
                a.verdict,
                a.score,
                a.causes(),
                a.reasons
                    .iter()
                    .map(|r| format!("\n;;   {}", r.text))
                    .collect::<String>()
            );
        }
    }
    Ok(out)
}

impl TargetConfig {
    /// Checks a name given on the command line.
    pub fn check_qname(field: &str, qname: &str) -> Result<()> {
        dnswarden_core::wire::fingerprint_str(qname)
            .map(|_| ())
            .map_err(|e| {
                crate::Error::config(
                    field,
                    format!("{qname:?} is not a valid DNS name: {e}"),
                    "use dot-separated labels of 1 to 63 characters",
                )
            })
    }
}
