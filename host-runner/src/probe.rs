//! One probe: a DNS query to one server, and what came back.
//!
//! * UDP first (unless the target asks for TCP), from a fresh ephemeral port with a
//!   random id, with EDNS(0); a TC=1 answer is retried over TCP at once.
//! * Every datagram or TCP message is checked against the query with the core matcher
//!   ([`check_response`]); a response that does not match (wrong id, wrong question, not
//!   a response) is counted as an integrity signal and the prober keeps reading until
//!   the right answer or the deadline.
//! * TCP connections are kept per server and reused (RFC 7766 §6.2.1) when
//!   [`Prober::new`] is asked to; a reused connection that the server has closed is
//!   replaced once, transparently.
//!
//! Nothing here is an error: timeouts, refused connections and garbage are
//! [`Outcome`]s for the scorer.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use dnswarden_core::wire::{
    Message, Mismatch, QueryBuilder, RData, Rcode, Rtype, TcpFramer, check_response,
};
use serde::Serialize;
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

/// Idle TCP connections kept per server.
const MAX_IDLE_TCP: usize = 4;
/// Smallest UDP receive buffer. The buffer is the advertised EDNS size (at least this):
/// a longer datagram breaks the server's promise, is cut, fails to parse and is counted
/// as malformed.
const UDP_BUF: usize = 4096;

/// The transport a probe's final answer came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// DNS over UDP.
    Udp,
    /// DNS over TCP.
    Tcp,
}

impl Transport {
    /// A bounded metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

/// How a probe ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A matching answer with this RCODE (extended RCODE included).
    Answer(Rcode),
    /// No matching answer before the deadline, and nothing else seen.
    Timeout,
    /// Only TC=1 answers over UDP, and the TCP retry failed.
    Truncated,
    /// Only unparseable datagrams/messages before the deadline.
    Malformed,
    /// Only answers to some other query before the deadline.
    Mismatch,
    /// The network said no (connection refused, unreachable...).
    NetworkError(&'static str),
}

impl Outcome {
    /// A bounded metric label: the RCODE mnemonic in lower case, or the failure kind.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Answer(r) => match r {
                Rcode::NOERROR => "noerror",
                Rcode::FORMERR => "formerr",
                Rcode::SERVFAIL => "servfail",
                Rcode::NXDOMAIN => "nxdomain",
                Rcode::NOTIMP => "notimp",
                Rcode::REFUSED => "refused",
                _ => "rcode_other",
            },
            Outcome::Timeout => "timeout",
            Outcome::Truncated => "truncated",
            Outcome::Malformed => "malformed",
            Outcome::Mismatch => "mismatch",
            Outcome::NetworkError(_) => "network_error",
        }
    }

    /// Whether a matching answer arrived.
    pub fn answered(self) -> bool {
        matches!(self, Outcome::Answer(_))
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Answer(r) => write!(f, "{r}"),
            Outcome::NetworkError(kind) => write!(f, "network error ({kind})"),
            other => f.write_str(&other.label().to_ascii_uppercase()),
        }
    }
}

/// One answer record in presentation form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnswerRecord {
    /// Owner name, with trailing dot.
    pub owner: String,
    /// TTL in seconds.
    pub ttl: u32,
    /// Record type mnemonic.
    pub rtype: String,
    /// The rdata in presentation form (the form `expect` uses).
    pub data: String,
}

/// What to ask whom.
#[derive(Debug, Clone, Copy)]
pub struct ProbeSpec<'a> {
    /// The server.
    pub server: SocketAddr,
    /// The name (dotted).
    pub qname: &'a str,
    /// The type.
    pub qtype: Rtype,
    /// Skip UDP and ask over TCP.
    pub tcp: bool,
    /// Time allowed per transport attempt.
    pub timeout: Duration,
    /// EDNS(0) UDP payload size to advertise.
    pub edns_udp_size: u16,
}

/// The result of one probe.
#[derive(Debug, Clone)]
pub struct ProbeResult {
    /// How it ended.
    pub outcome: Outcome,
    /// From the first send to the final answer (or to the deadline).
    pub rtt: Duration,
    /// The clock [`ProbeResult::rtt`] was taken from.
    pub rtt_clock: RttClock,
    /// The transport of the last attempt.
    pub transport: Transport,
    /// A TC=1 answer was received over UDP.
    pub truncated: bool,
    /// TC=1 led to a TCP retry: `Some(true)` when it produced an answer.
    pub tcp_fallback: Option<bool>,
    /// Responses that did not match the query (integrity signal).
    pub mismatches: u32,
    /// Responses that could not be parsed (integrity signal).
    pub malformed: u32,
    /// The query id used.
    pub id: u16,
    /// The answer section of the matching response.
    pub answers: Vec<AnswerRecord>,
    /// A record of the answer section could not be read.
    pub answer_parse_error: Option<&'static str>,
    /// Extended DNS Error (RFC 8914) info-code and text, if the server sent one.
    pub ede: Option<(u16, String)>,
    /// A TCP connection was reused for this probe.
    pub tcp_reused: bool,
    /// The last mismatch seen (what did not match).
    pub last_mismatch: Option<Mismatch>,
    /// The query sent (without TCP prefix).
    pub query: Vec<u8>,
    /// The matching response (the TCP one after a fallback), without TCP prefix.
    pub response: Option<Vec<u8>>,
}

impl ProbeResult {
    fn new(id: u16, transport: Transport) -> Self {
        ProbeResult {
            outcome: Outcome::Timeout,
            rtt: Duration::ZERO,
            rtt_clock: RttClock::Runner,
            transport,
            truncated: false,
            tcp_fallback: None,
            mismatches: 0,
            malformed: 0,
            id,
            answers: Vec::new(),
            answer_parse_error: None,
            ede: None,
            tcp_reused: false,
            last_mismatch: None,
            query: Vec::new(),
            response: None,
        }
    }

    /// The RTT: the kernel-stamped one when there is one, else the monotonic time since
    /// `start`.
    fn set_rtt(&mut self, stamped: Option<Duration>, start: Instant) {
        (self.rtt, self.rtt_clock) = match stamped {
            Some(rtt) => (rtt, RttClock::Kernel),
            None => (start.elapsed(), RttClock::Runner),
        };
    }

    /// A bare result with this outcome (unit tests of code that classifies results).
    #[cfg(test)]
    pub(crate) fn for_tests(outcome: Outcome, transport: Transport) -> Self {
        ProbeResult {
            outcome,
            ..ProbeResult::new(0, transport)
        }
    }

    /// Whether a NOERROR answer's set differs from `expected` (sorted presentation
    /// forms; empty means no expectation).
    pub fn answer_drift(&self, expected: &[String], qtype: Rtype) -> bool {
        if expected.is_empty() || self.outcome != Outcome::Answer(Rcode::NOERROR) {
            return false;
        }
        if qtype == Rtype::SRV {
            // Priority and weight are not part of the set (CoreDNS derives weights
            // from the set size): compare port and target only.
            let norm = |set: &[String]| {
                let mut v: Vec<String> = set.iter().map(|e| srv_port_target(e)).collect();
                v.sort();
                v.dedup();
                v
            };
            return norm(&self.answer_set(qtype)) != norm(expected);
        }
        self.answer_set(qtype) != expected
    }

    /// The answer data of the records whose type is the query type, sorted and
    /// deduplicated: the answer *set* compared with `expect`.
    pub fn answer_set(&self, qtype: Rtype) -> Vec<String> {
        let want = qtype.to_string();
        let mut set: Vec<String> = self
            .answers
            .iter()
            .filter(|a| a.rtype == want)
            .map(|a| a.data.clone())
            .collect();
        set.sort();
        set.dedup();
        set
    }
}

enum Exchange {
    /// A matching response (owned bytes, without TCP prefix).
    Answer(Vec<u8>),
    /// Deadline passed.
    Deadline,
    /// The socket failed.
    Failed(&'static str),
}

/// Sends probes. Cheap to share (`Arc<Prober>`); holds the idle TCP connections.
#[derive(Debug)]
pub struct Prober {
    tcp_reuse: bool,
    idle: Mutex<HashMap<SocketAddr, Vec<TcpStream>>>,
    /// A loopback socket with `SO_TIMESTAMPNS` on for the prober's whole life. Linux
    /// stamps received packets only while some socket asks for it, and turns stamping on
    /// and off lazily (a deferred static-key switch): with one short-lived socket per
    /// probe, the answer often arrived before stamping was on again, and the kernel then
    /// stamps it when it is *read*, stall included. Holding one socket keeps it on.
    stamp_keeper: Option<std::net::UdpSocket>,
}

/// Which clock a probe's RTT comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RttClock {
    /// The kernel's receive timestamp of the answer (the UDP datagram, or the TCP
    /// segment that completed it; after a TC fallback, both exchanges stamped): leaves
    /// out how long the runner took to get the CPU back.
    Kernel,
    /// The runner's monotonic clock around the exchange (no answer, or no usable
    /// kernel stamp).
    Runner,
}

impl RttClock {
    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RttClock::Kernel => "kernel",
            RttClock::Runner => "runner",
        }
    }
}

/// How far the wall clock may drift from the monotonic clock during one exchange before
/// a kernel stamp (wall clock) is no longer trusted for it.
const CLOCK_SLACK: Duration = Duration::from_millis(2);

/// The RTT from a kernel receive stamp, if it can be trusted. `sent` and `read` are
/// wall-clock readings just before the send and just after the read, `mono` the
/// monotonic time between them. A wall clock stepped or slewed during the exchange
/// (NTP, a VM resumed) shows as wall and monotonic time disagreeing; a stamp outside
/// `[sent, read]` is not this exchange's. Either way the caller keeps its monotonic RTT.
fn kernel_rtt(
    sent: SystemTime,
    stamp: SystemTime,
    read: SystemTime,
    mono: Duration,
) -> Option<Duration> {
    let wall = read.duration_since(sent).ok()?;
    if wall.abs_diff(mono) > CLOCK_SLACK {
        return None;
    }
    let rtt = stamp.duration_since(sent).ok()?;
    (rtt <= wall).then_some(rtt)
}

/// When a request left, by both clocks.
#[derive(Clone, Copy)]
struct Sent {
    wall: SystemTime,
    mono: Instant,
}

impl Sent {
    fn now() -> Sent {
        Sent {
            wall: SystemTime::now(),
            mono: Instant::now(),
        }
    }

    /// The RTT up to a kernel receive stamp read just now, if it can be trusted
    /// ([`kernel_rtt`]).
    fn kernel_rtt(self, stamp: Option<SystemTime>) -> Option<Duration> {
        kernel_rtt(self.wall, stamp?, SystemTime::now(), self.mono.elapsed())
    }
}

/// Asks the kernel to stamp what this socket receives (`SO_TIMESTAMPNS`); `false` where
/// the option is not supported.
fn enable_stamps(sock: &impl std::os::fd::AsFd) -> bool {
    nix::sys::socket::setsockopt(sock, nix::sys::socket::sockopt::ReceiveTimestampns, &true).is_ok()
}

/// The socket that keeps kernel receive timestamps on (see [`Prober`]); `None` where
/// the option is not supported.
fn stamp_keeper() -> Option<std::net::UdpSocket> {
    let sock = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .or_else(|_| std::net::UdpSocket::bind((Ipv6Addr::LOCALHOST, 0)))
        .ok()?;
    sock.set_nonblocking(true).ok()?;
    enable_stamps(&sock).then_some(sock)
}

/// One datagram from a connected socket and the kernel's receive time
/// (`SO_TIMESTAMPNS`), without blocking (`WouldBlock` when none is queued). `cmsg` is
/// room for the timestamp (`nix::cmsg_space!(TimeSpec)`), reused across reads.
fn recv_stamped(
    sock: &impl AsRawFd,
    buf: &mut [u8],
    cmsg: &mut [u8],
) -> std::io::Result<(usize, Option<SystemTime>)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg};
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        sock.as_raw_fd(),
        &mut iov,
        Some(cmsg),
        MsgFlags::MSG_DONTWAIT,
    )
    .map_err(std::io::Error::from)?;
    let at = msg.cmsgs().ok().and_then(|mut c| {
        c.find_map(|c| match c {
            ControlMessageOwned::ScmTimestampns(ts) => {
                let secs = u64::try_from(ts.tv_sec()).ok()?;
                let nanos = u32::try_from(ts.tv_nsec()).ok()?;
                Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
            }
            _ => None,
        })
    });
    Ok((msg.bytes, at))
}

fn io_kind(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => "refused",
        K::ConnectionReset => "reset",
        K::ConnectionAborted => "aborted",
        K::UnexpectedEof => "eof",
        K::AddrNotAvailable | K::AddrInUse => "address",
        K::PermissionDenied => "permission",
        K::TimedOut => "timeout",
        _ => "io",
    }
}

impl Prober {
    /// A prober; `tcp_reuse` keeps TCP connections open between probes.
    pub fn new(tcp_reuse: bool) -> Self {
        Prober {
            tcp_reuse,
            idle: Mutex::new(HashMap::new()),
            stamp_keeper: stamp_keeper(),
        }
    }

    /// Whether the kernel stamps received packets when they arrive, checked now with a
    /// datagram the prober sends itself over loopback. Right after [`Prober::new`] this
    /// can be `false` for a few milliseconds while the kernel turns stamping on; it stays
    /// `false` where `SO_TIMESTAMPNS` is not supported (RTTs then come from the runner's
    /// clock, [`RttClock::Runner`]).
    pub fn kernel_stamps_live(&self) -> bool {
        let Some(sock) = &self.stamp_keeper else {
            return false;
        };
        let Ok(me) = sock.local_addr() else {
            return false;
        };
        // Drop anything left over from an earlier check.
        let mut buf = [0u8; 8];
        let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
        while recv_stamped(sock, &mut buf, &mut cmsg).is_ok() {}
        if sock.send_to(b"stamp", me).is_err() {
            return false;
        }
        let sent = SystemTime::now();
        // A stamp taken on arrival is no later than the return from the send; one filled
        // in at read time (stamping still off on arrival) is later. Loopback delivers the
        // datagram within the send; a few reads cover a softirq that runs just after.
        for _ in 0..100 {
            match recv_stamped(sock, &mut buf, &mut cmsg) {
                Ok((_, Some(at))) => return at <= sent,
                Ok((_, None)) => return false,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::yield_now(),
                Err(_) => return false,
            }
        }
        false
    }

    /// Runs one probe. Never fails: every failure is an [`Outcome`].
    pub async fn probe(&self, spec: &ProbeSpec<'_>) -> ProbeResult {
        let id: u16 = rand::random();
        let first = if spec.tcp {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        let mut res = ProbeResult::new(id, first);
        let mut query = [0u8; 300];
        let len = match QueryBuilder::new(id, spec.qname, spec.qtype)
            .edns(spec.edns_udp_size)
            .write(&mut query)
        {
            Ok(n) => n,
            // Names are validated by the config; a bad one here is reported, not panicked on.
            Err(_) => {
                res.outcome = Outcome::NetworkError("bad_query");
                return res;
            }
        };
        let query = query.get(..len).unwrap_or_default();
        res.query = query.to_vec();
        let start = Instant::now();
        // Over UDP, the kernel's receive timestamp gives an RTT that leaves out how long
        // this process took to get the CPU back (a throttled or busy runner would
        // otherwise see its own stalls as server latency).
        let mut stamped_rtt = None;

        let mut exchange = if spec.tcp {
            self.tcp_exchange(
                spec.server,
                query,
                start + spec.timeout,
                &mut res,
                &mut stamped_rtt,
            )
            .await
        } else {
            self.udp_exchange(
                spec.server,
                query,
                spec.timeout,
                &mut res,
                spec.edns_udp_size,
                &mut stamped_rtt,
            )
            .await
        };

        // TC=1: the answer did not fit; ask again over TCP (RFC 7766 §5).
        if let Exchange::Answer(bytes) = &exchange
            && !spec.tcp
            && Message::parse(bytes).is_ok_and(|m| m.header().tc())
        {
            res.truncated = true;
            res.transport = Transport::Tcp;
            let tcp_start = Instant::now();
            let mut tcp_stamped = None;
            let retry = self
                .tcp_exchange(
                    spec.server,
                    query,
                    tcp_start + spec.timeout,
                    &mut res,
                    &mut tcp_stamped,
                )
                .await;
            res.tcp_fallback = Some(matches!(retry, Exchange::Answer(_)));
            // The RTT covers both exchanges, each kernel-stamped when possible; without
            // both stamps, the monotonic time since the first send.
            stamped_rtt = stamped_rtt.zip(tcp_stamped).map(|(udp, tcp)| udp + tcp);
            exchange = match retry {
                Exchange::Answer(b) => Exchange::Answer(b),
                _ => {
                    res.set_rtt(stamped_rtt, start);
                    res.outcome = Outcome::Truncated;
                    return res;
                }
            };
        }
        res.set_rtt(stamped_rtt, start);
        match exchange {
            Exchange::Answer(bytes) => {
                read_answer(&bytes, &mut res);
                res.response = Some(bytes);
            }
            Exchange::Deadline => {
                res.outcome = if res.mismatches > 0 {
                    Outcome::Mismatch
                } else if res.malformed > 0 {
                    Outcome::Malformed
                } else {
                    Outcome::Timeout
                };
            }
            Exchange::Failed(kind) => res.outcome = Outcome::NetworkError(kind),
        }
        res
    }

    async fn udp_exchange(
        &self,
        server: SocketAddr,
        query: &[u8],
        timeout: Duration,
        res: &mut ProbeResult,
        edns_udp_size: u16,
        stamped_rtt: &mut Option<Duration>,
    ) -> Exchange {
        let bind: SocketAddr = if server.is_ipv4() {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        };
        // A fresh socket per probe: a random source port next to the random id, and
        // connect() so the kernel drops datagrams from anyone but the server.
        let sock = match UdpSocket::bind(bind).await {
            Ok(s) => s,
            Err(e) => return Exchange::Failed(io_kind(&e)),
        };
        if let Err(e) = sock.connect(server).await {
            return Exchange::Failed(io_kind(&e));
        }
        // Without kernel timestamps (an old kernel, another OS) reads carry no stamp and
        // the RTT falls back to the monotonic clock around the exchange.
        enable_stamps(&sock);
        let sent = Sent::now();
        if let Err(e) = sock.send(query).await {
            return Exchange::Failed(io_kind(&e));
        }
        // The server's time runs from the send: a runner that lost the CPU between
        // taking `start` and sending must not count that as the server's timeout.
        let deadline = Instant::now() + timeout;
        let Ok(qmsg) = Message::parse(query) else {
            return Exchange::Failed("bad_query");
        };
        let mut buf = vec![0u8; UDP_BUF.max(usize::from(edns_udp_size))];
        let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
        loop {
            let read = sock.async_io(Interest::READABLE, || {
                recv_stamped(&sock, &mut buf, &mut cmsg)
            });
            let (n, at) = match tokio::time::timeout_at(deadline, read).await {
                Err(_) => return Exchange::Deadline,
                Ok(Err(e)) => return Exchange::Failed(io_kind(&e)),
                Ok(Ok(got)) => got,
            };
            let bytes = buf.get(..n).unwrap_or_default();
            match Message::parse(bytes) {
                Err(_) => res.malformed += 1,
                Ok(msg) => match check_response(&qmsg, &msg) {
                    Ok(()) => {
                        *stamped_rtt = sent.kernel_rtt(at);
                        return Exchange::Answer(bytes.to_vec());
                    }
                    Err(m) => {
                        res.mismatches += 1;
                        res.last_mismatch = Some(m);
                    }
                },
            }
        }
    }

    fn take_idle(&self, server: SocketAddr) -> Option<TcpStream> {
        let mut idle = self.idle.lock().ok()?;
        idle.get_mut(&server)?.pop()
    }

    fn put_idle(&self, server: SocketAddr, conn: TcpStream) {
        if !self.tcp_reuse {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            let list = idle.entry(server).or_default();
            if list.len() < MAX_IDLE_TCP {
                list.push(conn);
            }
        }
    }

    /// Drops every idle TCP connection (at shutdown).
    pub fn close_idle(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }

    async fn tcp_exchange(
        &self,
        server: SocketAddr,
        query: &[u8],
        deadline: Instant,
        res: &mut ProbeResult,
        stamped_rtt: &mut Option<Duration>,
    ) -> Exchange {
        // A pooled connection may have been closed by the server since (idle timeout):
        // if it fails before any answer byte, try once more on a fresh one.
        if self.tcp_reuse
            && let Some(conn) = self.take_idle(server)
        {
            let sent = Sent::now();
            match self.tcp_on(conn, server, query, deadline, res).await {
                TcpTry::Done(x, at) => {
                    res.tcp_reused = true;
                    *stamped_rtt = sent.kernel_rtt(at);
                    return x;
                }
                TcpTry::Stale => {}
            }
        }
        // A fresh connection's RTT includes the handshake: the server's SYN-ACK is part
        // of what it took to get an answer.
        let sent = Sent::now();
        let conn = match tokio::time::timeout_at(deadline, TcpStream::connect(server)).await {
            Err(_) => return Exchange::Deadline,
            Ok(Err(e)) => return Exchange::Failed(io_kind(&e)),
            Ok(Ok(c)) => c,
        };
        let _ = conn.set_nodelay(true);
        // The kernel stamps TCP segments too (the cmsg carries the last one's time).
        enable_stamps(&conn);
        match self.tcp_on(conn, server, query, deadline, res).await {
            TcpTry::Done(x, at) => {
                *stamped_rtt = sent.kernel_rtt(at);
                x
            }
            TcpTry::Stale => Exchange::Failed("eof"),
        }
    }

    async fn tcp_on(
        &self,
        mut conn: TcpStream,
        server: SocketAddr,
        query: &[u8],
        deadline: Instant,
        res: &mut ProbeResult,
    ) -> TcpTry {
        let Ok(qmsg) = Message::parse(query) else {
            return TcpTry::Done(Exchange::Failed("bad_query"), None);
        };
        let Ok(len) = u16::try_from(query.len()) else {
            return TcpTry::Done(Exchange::Failed("bad_query"), None);
        };
        let mut framed = Vec::with_capacity(query.len() + 2);
        framed.extend_from_slice(&len.to_be_bytes());
        framed.extend_from_slice(query);
        match tokio::time::timeout_at(deadline, conn.write_all(&framed)).await {
            Err(_) => return TcpTry::Done(Exchange::Deadline, None),
            Ok(Err(_)) => return TcpTry::Stale,
            Ok(Ok(())) => {}
        }
        let mut framer = TcpFramer::new(vec![0u8; 65_535]);
        let mut chunk = vec![0u8; 4096];
        let mut cmsg = nix::cmsg_space!(nix::sys::time::TimeSpec);
        let mut got_any = false;
        loop {
            let read = conn.async_io(Interest::READABLE, || {
                recv_stamped(&conn, &mut chunk, &mut cmsg)
            });
            let (n, at) = match tokio::time::timeout_at(deadline, read).await {
                Err(_) => return TcpTry::Done(Exchange::Deadline, None),
                Ok(Ok((0, _))) | Ok(Err(_)) if !got_any => return TcpTry::Stale,
                Ok(Ok((0, _))) => return TcpTry::Done(Exchange::Failed("eof"), None),
                Ok(Err(e)) => return TcpTry::Done(Exchange::Failed(io_kind(&e)), None),
                Ok(Ok(got)) => got,
            };
            got_any = true;
            let mut answer = None;
            let pushed = framer.push(chunk.get(..n).unwrap_or_default(), |msg| {
                if answer.is_some() {
                    return;
                }
                match Message::parse(msg) {
                    Err(_) => res.malformed += 1,
                    Ok(m) => match check_response(&qmsg, &m) {
                        Ok(()) => answer = Some(msg.to_vec()),
                        Err(m) => {
                            res.mismatches += 1;
                            res.last_mismatch = Some(m);
                        }
                    },
                }
            });
            if pushed.is_err() {
                res.malformed += 1;
                return TcpTry::Done(Exchange::Failed("frame_too_large"), None);
            }
            if let Some(bytes) = answer {
                if framer.is_idle() {
                    self.put_idle(server, conn);
                }
                return TcpTry::Done(Exchange::Answer(bytes), at);
            }
        }
    }
}

enum TcpTry {
    /// How the exchange ended, and the kernel's receive stamp of the answer's last
    /// segment.
    Done(Exchange, Option<SystemTime>),
    /// The connection was dead before any answer byte.
    Stale,
}

fn read_answer(bytes: &[u8], res: &mut ProbeResult) {
    let Ok(msg) = Message::parse(bytes) else {
        res.outcome = Outcome::Malformed;
        return;
    };
    let rcode = msg.extended_rcode().unwrap_or(msg.header().rcode());
    res.outcome = Outcome::Answer(rcode);
    if let Ok(Some(opt)) = msg.edns()
        && let Some(ede) = opt.extended_error()
    {
        res.ede = Some((
            ede.info_code,
            String::from_utf8_lossy(ede.extra_text).into_owned(),
        ));
    }
    for record in msg.answers() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                res.answer_parse_error = Some(e.kind());
                break;
            }
        };
        let data = match record.data() {
            Ok(d) => present(&d),
            Err(e) => {
                res.answer_parse_error = Some(e.kind());
                continue;
            }
        };
        res.answers.push(AnswerRecord {
            owner: record.name().to_string(),
            ttl: record.ttl(),
            rtype: record.rtype().to_string(),
            data,
        });
    }
}

/// "priority weight port target" → "port target" (lower case, no trailing dot);
/// anything else is kept as is.
fn srv_port_target(e: &str) -> String {
    let parts: Vec<&str> = e.split_whitespace().collect();
    match parts.as_slice() {
        [_, _, port, target] => format!(
            "{port} {}",
            target.trim_end_matches('.').to_ascii_lowercase()
        ),
        _ => e.to_string(),
    }
}

/// Presentation form of rdata, as used in `expect`: addresses as usual, names in lower
/// case with a trailing dot, SRV as "priority weight port target".
pub fn present(data: &RData<'_>) -> String {
    let name = |n: &dnswarden_core::wire::Name<'_>| n.to_string().to_ascii_lowercase();
    match data {
        RData::A(a) => a.to_string(),
        RData::Aaaa(a) => a.to_string(),
        RData::Cname(n) | RData::Ns(n) | RData::Ptr(n) => name(n),
        RData::Mx(mx) => format!("{} {}", mx.preference, name(&mx.exchange)),
        RData::Srv(s) => format!("{} {} {} {}", s.priority, s.weight, s.port, name(&s.target)),
        RData::Txt(t) => {
            let mut out = String::new();
            for (i, s) in t.strings().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                let _ = write!(out, "{:?}", String::from_utf8_lossy(s));
            }
            out
        }
        RData::Soa(s) => format!(
            "{} {} {} {} {} {} {}",
            name(&s.mname),
            name(&s.rname),
            s.serial,
            s.refresh,
            s.retry,
            s.expire,
            s.minimum
        ),
        RData::Opt(_) => "OPT".to_string(),
        RData::Unknown(bytes) => {
            let mut out = format!("\\# {}", bytes.len());
            for b in *bytes {
                let _ = write!(out, " {b:02x}");
            }
            out
        }
        _ => "?".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn at(ms: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH
            + Duration::from_secs(1_700_000_000)
            + MS * u32::try_from(ms).unwrap()
    }

    #[test]
    fn a_kernel_stamp_inside_the_exchange_gives_the_rtt() {
        // Sent at 0, stamped at 3, read at 300 after a 300 ms stall: RTT 3 ms.
        assert_eq!(kernel_rtt(at(0), at(3), at(300), MS * 300), Some(MS * 3));
        // Stamped at the read itself (the kernel filled it in late): still accepted.
        assert_eq!(
            kernel_rtt(at(0), at(300), at(300), MS * 300),
            Some(MS * 300)
        );
    }

    #[test]
    fn a_stepped_wall_clock_or_a_foreign_stamp_is_not_trusted() {
        // The wall clock jumped 2 s forward during a 5 ms exchange.
        assert_eq!(kernel_rtt(at(0), at(2003), at(2005), MS * 5), None);
        // ... or backwards.
        assert_eq!(kernel_rtt(at(2000), at(3), at(5), MS * 5), None);
        // Slewed by more than the slack over the exchange.
        assert_eq!(kernel_rtt(at(0), at(3), at(10), MS * 5), None);
        // A stamp before the send or after the read is not this exchange's.
        assert_eq!(kernel_rtt(at(10), at(9), at(15), MS * 5), None);
        assert_eq!(kernel_rtt(at(10), at(16), at(15), MS * 5), None);
    }
}
