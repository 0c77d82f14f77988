//! The seam between probe results and the core scorer ([`dnswarden_core::score`]).
//!
//! The runner keeps one [`Scorer`] per server (fed by every target probed on it; target
//! keys tell the targets apart) and one per target (fed by every server it is probed on;
//! server keys let the core attribute a SERVFAIL burst to one server). A probe result
//! becomes one core [`Observation`] — built by the core from the query and response
//! octets, so the answer summary and the drift members are the core's own — plus one
//! `Mismatch` observation per wrong response read before the right one.

use std::fmt::Write as _;
use std::net::IpAddr;

use dnswarden_core::score::{
    self as core_score, Fallback, Observation, Outcome as CoreOutcome, ScoreConfig,
};
use dnswarden_core::wire::{Message, Mismatch, Rtype};

pub use dnswarden_core::score::{Detector, Verdict, VerdictChange};

use crate::probe::{Outcome, ProbeResult};

/// Most mismatched responses of one probe fed as their own observations.
const MAX_MISMATCH_OBS: u32 = 4;

/// The gauge value of a verdict: 0 ok, 1 degraded, 2 critical.
pub fn verdict_level(v: Verdict) -> i64 {
    match v {
        Verdict::Ok => 0,
        Verdict::Degraded => 1,
        Verdict::Critical => 2,
    }
}

/// One raised detector, with owned text (names resolved).
#[derive(Debug, Clone, PartialEq)]
pub struct ReasonView {
    /// Detector label (`rtt`, `loss`, ...).
    pub detector: &'static str,
    /// Cause label (`servfail_concentrated`, ...): bounded, used in metrics.
    pub cause: &'static str,
    /// The core's explanation, with server/target names instead of keys.
    pub text: String,
    /// Severity in [0, 1].
    pub severity: f32,
    /// The server concerned, if one stands out.
    pub server: Option<String>,
}

/// What a scorer thinks after an observation or an evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// Fused score in [0, 1].
    pub score: f32,
    /// The verdict (with the core's hysteresis).
    pub verdict: Verdict,
    /// Set when this call changed the verdict.
    pub change: Option<VerdictChange>,
    /// The raised detectors (empty when the score is 0).
    pub reasons: Vec<ReasonView>,
}

impl Assessment {
    /// The cause labels, comma-separated (`-` for none).
    pub fn causes(&self) -> String {
        if self.reasons.is_empty() {
            return "-".into();
        }
        self.reasons
            .iter()
            .map(|r| r.cause)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// The expected answers of a target as core member hashes (for the drift detector).
/// `None` when the target expects nothing or its type has no member form here.
pub fn expected_members(qtype: Rtype, expect: &[String]) -> Option<Vec<u64>> {
    if expect.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(expect.len());
    for e in expect {
        let h = match qtype {
            Rtype::A | Rtype::AAAA => core_score::member_hash_ip(e.parse::<IpAddr>().ok()?),
            Rtype::CNAME | Rtype::PTR | Rtype::NS => {
                core_score::member_hash_name(qtype, dnswarden_core::wire::fingerprint_str(e).ok()?)
            }
            // Priority and weight are not compared (CoreDNS derives weights from the
            // set size): hashed as zero, like the answers (see `Scorer::observe_probe`).
            Rtype::SRV => {
                let mut it = e.split_whitespace();
                let (p, w, port, target) = (it.next()?, it.next()?, it.next()?, it.next()?);
                p.parse::<u16>().ok()?;
                w.parse::<u16>().ok()?;
                core_score::member_hash_srv(
                    0,
                    0,
                    port.parse().ok()?,
                    dnswarden_core::wire::fingerprint_str(target).ok()?,
                )
            }
            _ => return None,
        };
        out.push(h);
    }
    Some(out)
}

/// A core scorer for one server or one target, with the names of the keys it sees.
#[derive(Debug)]
pub struct Scorer {
    inner: Inner,
    server_names: Vec<String>,
    target_names: Vec<String>,
}

/// The core scorer in the width its role needs: a server's scorer (or a one-shot
/// probe's) sees every target, 64 target slots (94 KB); a target's scorer sees one
/// target from every server, one target slot (40 KB), which is what keeps a runner
/// with a hundred targets small.
#[derive(Debug)]
enum Inner {
    Wide(Box<core_score::Scorer>),
    OneTarget(Box<core_score::Scorer<16, 1>>),
}

/// Runs `$body` with `$s` bound to the core scorer, whichever its width.
macro_rules! with_core {
    ($inner:expr, $s:ident => $body:expr) => {
        match $inner {
            Inner::Wide($s) => $body,
            Inner::OneTarget($s) => $body,
        }
    };
}

impl Scorer {
    /// A scorer with a validated configuration. `server_names[k]` / `target_names[k]`
    /// name the keys `k` used in observations.
    pub fn new(
        cfg: ScoreConfig,
        server_names: Vec<String>,
        target_names: Vec<String>,
    ) -> Result<Scorer, core_score::ConfigError> {
        Ok(Scorer {
            inner: Inner::Wide(Box::new(core_score::Scorer::new(cfg)?)),
            server_names,
            target_names,
        })
    }

    /// Like [`Scorer::new`], for a scorer that is only ever fed one target (a target's
    /// own scorer): room for one target instead of 64.
    pub fn for_one_target(
        cfg: ScoreConfig,
        server_names: Vec<String>,
        target_names: Vec<String>,
    ) -> Result<Scorer, core_score::ConfigError> {
        Ok(Scorer {
            inner: Inner::OneTarget(Box::new(core_score::Scorer::new(cfg)?)),
            server_names,
            target_names,
        })
    }

    /// Sets a target's expected answer members (see [`expected_members`]).
    pub fn expect(&mut self, target: u32, now_us: u64, members: &[u64]) {
        // More than 64 members: fall back to the set fingerprint.
        with_core!(&mut self.inner, s => {
            if s.expect_members(target, now_us, members).is_err() {
                let _ = s.expect_fingerprint(
                    target,
                    now_us,
                    core_score::set_fingerprint(members),
                    u16::try_from(members.len()).ok(),
                );
            }
        });
    }

    /// Sets the name a target's CNAME chain must end at (a `fingerprint_str`).
    pub fn expect_final_name(&mut self, target: u32, now_us: u64, name_fingerprint: u64) {
        let _ =
            with_core!(&mut self.inner, s => s.expect_final_name(target, now_us, name_fingerprint));
    }

    /// Feeds one probe result. `server`/`target` are the keys.
    pub fn observe_probe(
        &mut self,
        server: u32,
        target: u32,
        at_us: u64,
        res: &ProbeResult,
    ) -> Assessment {
        let rtt_us = u32::try_from(res.rtt.as_micros()).unwrap_or(u32::MAX);
        let mut change = None;
        // Wrong responses read before the right one are integrity signals of their own.
        for _ in 0..res.mismatches.min(MAX_MISMATCH_OBS) {
            let m = res.last_mismatch.unwrap_or(Mismatch::ID);
            let obs = Observation::new(server, target, at_us, CoreOutcome::Mismatch(m));
            change = with_core!(&mut self.inner, s => s.observe(&obs).change).or(change);
        }
        let mut members = [0u64; 64];
        let query = Message::parse(&res.query).ok();
        let mut srv_members = [0u64; 64];
        let obs = match (res.outcome, &res.response, query) {
            (Outcome::Answer(_), Some(bytes), Some(q)) => {
                let o = Observation::from_response_bytes(
                    server,
                    target,
                    at_us,
                    rtt_us,
                    &q,
                    bytes,
                    &mut members,
                );
                let o = srv_without_priority_weight(o, &q, bytes, &mut srv_members);
                // The answer came over TCP after TC=1: say so.
                match (res.truncated, o.outcome) {
                    (true, CoreOutcome::Response(r)) => Observation {
                        outcome: CoreOutcome::Truncated(Fallback::Answered(r)),
                        ..o
                    },
                    _ => o,
                }
            }
            (Outcome::Truncated, _, _) => Observation::new(
                server,
                target,
                at_us,
                CoreOutcome::Truncated(Fallback::Failed),
            )
            .rtt(rtt_us),
            (Outcome::Mismatch, _, _) => Observation::new(
                server,
                target,
                at_us,
                CoreOutcome::Mismatch(res.last_mismatch.unwrap_or(Mismatch::ID)),
            )
            .rtt(rtt_us),
            (Outcome::Malformed, _, _) | (Outcome::Answer(_), _, _) => {
                Observation::new(server, target, at_us, CoreOutcome::Malformed).rtt(rtt_us)
            }
            // No answer: a refused connection or unreachable server is lost like a timeout.
            (Outcome::Timeout | Outcome::NetworkError(_), _, _) => {
                Observation::new(server, target, at_us, CoreOutcome::Timeout).rtt(rtt_us)
            }
        };
        let a = with_core!(&mut self.inner, s => s.observe(&obs));
        self.view(a.score, a.verdict, a.change.or(change))
    }

    /// Advances the scorer's clock without an observation (lets verdicts step down).
    pub fn evaluate(&mut self, now_us: u64) -> Assessment {
        let a = with_core!(&mut self.inner, s => s.evaluate(now_us));
        self.view(a.score, a.verdict, a.change)
    }

    /// The current verdict.
    pub fn verdict(&self) -> Verdict {
        with_core!(&self.inner, s => s.verdict())
    }

    /// Keeps this scorer across a probe-plan change in which servers or targets came
    /// and went: drops everything known about the keys that are gone (so they can be
    /// given to newcomers) and takes the new key names (`server_names[k]` /
    /// `target_names[k]` name key `k`). The verdict and the history of every other key
    /// stay.
    pub fn rekey(
        &mut self,
        server_names: Vec<String>,
        target_names: Vec<String>,
        gone_servers: &[u32],
        gone_targets: &[u32],
    ) {
        for &k in gone_servers {
            with_core!(&mut self.inner, s => s.forget_server(k));
        }
        for &k in gone_targets {
            with_core!(&mut self.inner, s => s.forget_target(k));
        }
        self.server_names = server_names;
        self.target_names = target_names;
    }

    /// Drops a target's expectation and statistics (it now expects no particular answer).
    pub fn forget_target(&mut self, target: u32) {
        with_core!(&mut self.inner, s => s.forget_target(target));
    }

    /// How many targets the core scorer tracks: 64, or 1 for [`Scorer::for_one_target`].
    pub fn target_slots(&self) -> usize {
        match &self.inner {
            Inner::Wide(_) => 64,
            Inner::OneTarget(_) => 1,
        }
    }

    /// Observations fed so far (kept across plan changes with [`Scorer::rekey`]).
    pub fn observations(&self) -> u64 {
        with_core!(&self.inner, s => s.observations())
    }

    fn view(&self, score: f32, verdict: Verdict, change: Option<VerdictChange>) -> Assessment {
        let mut reasons = Vec::new();
        if score > 0.0 || change.is_some() {
            // A detector with weight 0 is still reported by the core; it is not a reason.
            let core_reasons = with_core!(&self.inner, s => s.reasons());
            for r in core_reasons.iter().filter(|r| r.weighted > 0.0) {
                let server = r
                    .server
                    .and_then(|k| self.server_names.get(k as usize).cloned());
                let target = r
                    .target
                    .and_then(|k| self.target_names.get(k as usize).cloned());
                let mut text = r.cause.description().to_string();
                let mut parts = Vec::new();
                if let Some(s) = &server {
                    parts.push(format!("server {s}"));
                }
                if let Some(t) = &target {
                    parts.push(format!("target {t}"));
                }
                let ev = evidence(&r.evidence);
                if !ev.is_empty() {
                    parts.push(ev);
                }
                parts.push(format!("severity {:.2}", r.severity));
                let _ = write!(text, " ({})", parts.join("; "));
                reasons.push(ReasonView {
                    detector: r.detector.name(),
                    cause: r.cause.kind(),
                    text,
                    severity: r.severity,
                    server,
                });
            }
        }
        Assessment {
            score,
            verdict,
            change,
            reasons,
        }
    }
}

/// SRV answers hashed with priority and weight zeroed, matching [`expected_members`]
/// and the discovery's expectations (`member_hash_srv(0, 0, port, target)`): CoreDNS
/// derives weights from the set size, so they are not part of the answer *set*.
fn srv_without_priority_weight<'a>(
    obs: Observation<'a>,
    query: &Message<'_>,
    response: &[u8],
    buf: &'a mut [u64; 64],
) -> Observation<'a> {
    let is_srv = matches!(query.first_question(), Ok(Some(q)) if q.qtype == Rtype::SRV);
    if !is_srv || obs.answers.count == 0 {
        return obs;
    }
    let Ok(msg) = Message::parse(response) else {
        return obs;
    };
    let mut n = 0usize;
    let mut fingerprint = 0u64;
    let mut first = 0u64;
    let mut overflow = false;
    for record in msg.answers() {
        let Ok(record) = record else { return obs };
        if record.rtype() != Rtype::SRV || record.name().fingerprint() != obs.answers.final_name {
            continue;
        }
        let Ok(dnswarden_core::wire::RData::Srv(s)) = record.data() else {
            return obs;
        };
        let h = core_score::member_hash_srv(0, 0, s.port, s.target.fingerprint());
        if n == 0 {
            first = h;
        }
        match buf.get_mut(n) {
            Some(slot) => *slot = h,
            None => overflow = true,
        }
        n += 1;
        fingerprint = fingerprint.wrapping_add(h);
    }
    if n != usize::from(obs.answers.count) {
        // Not the records the core counted: leave its summary alone.
        return obs;
    }
    let kept = if overflow { 0 } else { n };
    let answers = core_score::AnswerSummary {
        set_fingerprint: fingerprint,
        first,
        members: buf.get(..kept).unwrap_or(&[]),
        ..obs.answers
    };
    obs.answers(answers)
}

fn evidence(e: &core_score::Evidence) -> String {
    use core_score::Evidence as E;
    match *e {
        E::None => String::new(),
        E::Share(s) => format!("share {:.0}%", s * 100.0),
        E::Count(c) => format!("count {c}"),
        E::Rtt {
            median_us,
            threshold_us,
        } => format!(
            "baseline median {:.2} ms, threshold {:.2} ms",
            f64::from(median_us) / 1000.0,
            f64::from(threshold_us) / 1000.0
        ),
        E::Entropy { bits, servers } => format!("entropy {bits:.2} bits over {servers} servers"),
        E::SetDiff { missing, extra } => format!(
            "missing {}, extra {}",
            missing.map_or("?".into(), |m| m.to_string()),
            extra.map_or("?".into(), |m| m.to_string())
        ),
        E::ChiSquare {
            statistic,
            critical,
        } => format!("chi-square {statistic:.1} vs {critical:.1}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name_bytes(dotted: &str) -> Vec<u8> {
        let mut out = Vec::new();
        for l in dotted.trim_end_matches('.').split('.') {
            out.push(l.len() as u8);
            out.extend_from_slice(l.as_bytes());
        }
        out.push(0);
        out
    }

    /// A query for `qname` SRV and its response with one SRV record.
    fn srv_exchange(
        qname: &str,
        prio: u16,
        weight: u16,
        port: u16,
        target: &str,
    ) -> (Vec<u8>, Vec<u8>) {
        let mut question = name_bytes(qname);
        question.extend_from_slice(&[0, 33, 0, 1]);
        let mut query = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        query.extend_from_slice(&question);
        let mut resp = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        resp.extend_from_slice(&question);
        let mut rdata = Vec::new();
        for v in [prio, weight, port] {
            rdata.extend_from_slice(&v.to_be_bytes());
        }
        rdata.extend_from_slice(&name_bytes(target));
        resp.extend_from_slice(&[0xc0, 0x0c, 0, 33, 0, 1, 0, 0, 0, 5]);
        resp.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        resp.extend_from_slice(&rdata);
        (query, resp)
    }

    #[test]
    fn srv_answers_hash_without_priority_and_weight() {
        let target = "web-0.web.default.svc.cluster.local";
        let (q, r) = srv_exchange(
            "_http._tcp.web.default.svc.cluster.local",
            10,
            100,
            80,
            target,
        );
        let query = Message::parse(&q).unwrap();
        let mut members = [0u64; 64];
        let mut srv = [0u64; 64];
        let obs = Observation::from_response_bytes(0, 0, 1, 1, &query, &r, &mut members);
        assert_eq!(obs.answers.count, 1);
        let obs = srv_without_priority_weight(obs, &query, &r, &mut srv);
        let want = core_score::member_hash_srv(
            0,
            0,
            80,
            dnswarden_core::wire::fingerprint_str(target).unwrap(),
        );
        assert_eq!(obs.answers.members, &[want]);
        assert_eq!(obs.answers.first, want);
        assert_eq!(
            obs.answers.set_fingerprint,
            core_score::set_fingerprint(&[want])
        );
        // Static `expect` entries and discovery expectations hash the same way.
        assert_eq!(
            expected_members(Rtype::SRV, &[format!("0 0 80 {target}.")]),
            Some(vec![want])
        );
        assert_eq!(
            expected_members(Rtype::SRV, &[format!("5 7 80 {target}.")]),
            Some(vec![want])
        );
    }

    #[test]
    fn expected_members_cover_addresses_names_and_srv() {
        assert_eq!(
            expected_members(Rtype::A, &["10.96.0.1".into()]),
            Some(vec![core_score::member_hash_ip(
                "10.96.0.1".parse().unwrap()
            )])
        );
        assert!(expected_members(Rtype::CNAME, &["a.example.".into()]).is_some());
        assert!(
            expected_members(
                Rtype::SRV,
                &["0 100 80 my-svc.default.svc.cluster.local.".into()]
            )
            .is_some()
        );
        assert_eq!(expected_members(Rtype::TXT, &["x".into()]), None);
        assert_eq!(expected_members(Rtype::A, &[]), None);
    }
}
