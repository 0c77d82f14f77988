//! Deterministic DNS traffic simulator for the scorer tests: a seeded PRNG, clean traffic
//! with log-normal RTT jitter, and one generator per fault class. Nothing here allocates,
//! so whole simulations can run under the counting allocator.
#![allow(dead_code)]

use std::net::Ipv4Addr;

use dnswarden_core::score::{
    AnswerSummary, Fallback, Observation, Outcome, Scorer, member_hash_ip,
};
use dnswarden_core::wire::{Mismatch, Rcode};

/// splitmix64: small, fast, seeded, good enough for simulations.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-300);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

pub const SERVERS: u32 = 3;
/// Single-answer targets 0..SINGLE_TARGETS; each answers one A record.
pub const SINGLE_TARGETS: u32 = 5;
/// A headless service with four ready pods, shuffled by the server (CoreDNS `loadbalance`).
pub const HEADLESS: u32 = 10;
/// Queries for names that do not exist (legitimate background NXDOMAIN).
pub const MISSING: u32 = 20;

/// The fault classes of the issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    None,
    ServfailAll,
    ServfailOne(u32),
    NxFlood,
    Latency { extra_us: u32 },
    Blackhole,
    TcStorm,
    Drift,
    StuckRoundRobin,
    SpoofedIds,
}

/// One generated observation, owning its member buffer.
#[derive(Clone, Copy, Debug)]
pub struct SimObs {
    pub server: u32,
    pub target: u32,
    pub at_us: u64,
    pub outcome: Outcome,
    pub rtt_us: u32,
    pub members: [u64; 4],
    pub n: usize,
}

impl SimObs {
    pub fn observation(&self) -> Observation<'_> {
        let answers = if self.n == 0 {
            AnswerSummary::EMPTY
        } else {
            AnswerSummary::from_members(&self.members[..self.n])
        };
        Observation::new(self.server, self.target, self.at_us, self.outcome)
            .rtt(self.rtt_us)
            .answers(answers)
    }
}

pub fn pod(i: u8) -> u64 {
    member_hash_ip(Ipv4Addr::new(10, 244, 1, i).into())
}

pub fn headless_members() -> [u64; 4] {
    [pod(1), pod(2), pod(3), pod(4)]
}

fn single_member(target: u32) -> u64 {
    member_hash_ip(Ipv4Addr::new(10, 96, 0, target as u8 + 1).into())
}

/// Clean traffic knobs.
#[derive(Clone, Copy, Debug)]
pub struct Noise {
    /// Median RTT (µs) and log-normal sigma.
    pub median_us: f64,
    pub sigma: f64,
    /// Probability of a 10–20 ms outlier.
    pub outlier: f64,
    /// Probability of a legitimate query for a missing name (NXDOMAIN).
    pub missing: f64,
    /// Probability of an isolated timeout / SERVFAIL.
    pub timeout: f64,
    pub servfail: f64,
}

impl Noise {
    pub const REALISTIC: Noise = Noise {
        median_us: 1_000.0,
        sigma: 0.35,
        outlier: 0.01,
        missing: 0.02,
        timeout: 0.0,
        servfail: 0.0,
    };
    pub const NOISY: Noise = Noise {
        timeout: 0.001,
        servfail: 0.0005,
        ..Noise::REALISTIC
    };
}

pub struct Sim {
    pub rng: Rng,
    pub noise: Noise,
}

impl Sim {
    pub fn new(seed: u64, noise: Noise) -> Self {
        Sim {
            rng: Rng::new(seed),
            noise,
        }
    }

    pub fn rtt(&mut self) -> u32 {
        if self.rng.chance(self.noise.outlier) {
            10_000 + self.rng.below(10_001) as u32
        } else {
            let ln = self.noise.median_us.ln() + self.noise.sigma * self.rng.normal();
            ln.exp().clamp(1.0, 1e9) as u32
        }
    }

    /// A target for the next query: mostly the single-answer targets and the headless
    /// service, sometimes a missing name.
    pub fn pick_target(&mut self) -> u32 {
        if self.rng.chance(self.noise.missing) {
            return MISSING;
        }
        let r = self.rng.below(u64::from(SINGLE_TARGETS) + 1) as u32;
        if r == SINGLE_TARGETS { HEADLESS } else { r }
    }

    /// A clean exchange.
    pub fn clean(&mut self, server: u32, target: u32, at_us: u64) -> SimObs {
        let mut o = SimObs {
            server,
            target,
            at_us,
            outcome: Outcome::Response(Rcode::NOERROR),
            rtt_us: self.rtt(),
            members: [0; 4],
            n: 0,
        };
        if self.rng.chance(self.noise.timeout) {
            o.outcome = Outcome::Timeout;
            o.rtt_us = 100_000;
            return o;
        }
        if self.rng.chance(self.noise.servfail) {
            o.outcome = Outcome::Response(Rcode::SERVFAIL);
            return o;
        }
        match target {
            MISSING => o.outcome = Outcome::Response(Rcode::NXDOMAIN),
            HEADLESS => {
                let mut m = headless_members();
                // Fisher–Yates: the server shuffles the records.
                for i in (1..m.len()).rev() {
                    let j = self.rng.below(i as u64 + 1) as usize;
                    m.swap(i, j);
                }
                o.members = m;
                o.n = 4;
            }
            t => {
                o.members[0] = single_member(t);
                o.n = 1;
            }
        }
        o
    }

    /// An exchange under `fault`.
    pub fn faulty(&mut self, fault: Fault, server: u32, target: u32, at_us: u64) -> SimObs {
        let mut o = self.clean(server, target, at_us);
        // Faults replace whatever noise the clean generator added.
        let fresh = |o: &mut SimObs, outcome| {
            o.outcome = outcome;
            o.n = 0;
        };
        match fault {
            Fault::None => {}
            Fault::ServfailAll => fresh(&mut o, Outcome::Response(Rcode::SERVFAIL)),
            Fault::ServfailOne(s) => {
                if server == s {
                    fresh(&mut o, Outcome::Response(Rcode::SERVFAIL));
                }
            }
            Fault::NxFlood => {
                o.target = MISSING;
                fresh(&mut o, Outcome::Response(Rcode::NXDOMAIN));
            }
            Fault::Latency { extra_us } => {
                if matches!(o.outcome, Outcome::Timeout) {
                    o = self.clean(server, target, at_us);
                    o.outcome = Outcome::Response(Rcode::NOERROR);
                }
                o.rtt_us = o.rtt_us.saturating_add(extra_us);
            }
            Fault::Blackhole => {
                fresh(&mut o, Outcome::Timeout);
                o.rtt_us = 100_000;
            }
            Fault::TcStorm => fresh(&mut o, Outcome::Truncated(Fallback::Failed)),
            Fault::Drift => {
                // Pods 2..4 replaced by one unknown address: 3 missing? No: 2 and 3 gone,
                // 9 appeared -> answers {1, 4, 9}: 2 missing, 1 extra.
                o.target = HEADLESS;
                o.outcome = Outcome::Response(Rcode::NOERROR);
                o.members = [pod(1), pod(4), pod(9), 0];
                o.n = 3;
            }
            Fault::StuckRoundRobin => {
                o.target = HEADLESS;
                o.outcome = Outcome::Response(Rcode::NOERROR);
                o.members = headless_members();
                o.n = 4;
            }
            Fault::SpoofedIds => fresh(&mut o, Outcome::Mismatch(Mismatch::ID)),
        }
        o
    }
}

/// Sets the expectation of the headless service (as the runner would from its
/// EndpointSlice).
pub fn expect_headless<const S: usize, const T: usize>(scorer: &mut Scorer<S, T>, now_us: u64) {
    scorer
        .expect_members(HEADLESS, now_us, &headless_members())
        .expect("one expectation fits");
}

pub mod alloc_counter {
    //! A thread-local allocation counter for `#[global_allocator]`.
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    pub struct Counting;

    thread_local! {
        static ARMED: Cell<bool> = const { Cell::new(false) };
        static COUNT: Cell<usize> = const { Cell::new(0) };
    }

    fn note() {
        let _ = ARMED.try_with(|a| {
            if a.get() {
                let _ = COUNT.try_with(|c| c.set(c.get() + 1));
            }
        });
    }

    // SAFETY: forwards every call unchanged to the system allocator; only counts.
    #[allow(unsafe_code)]
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            note();
            // SAFETY: same contract as the caller's.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: same contract as the caller's.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            note();
            // SAFETY: same contract as the caller's.
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
            note();
            // SAFETY: same contract as the caller's.
            unsafe { System.realloc(ptr, layout, new) }
        }
    }

    /// Runs `f` and returns how many allocations this thread made meanwhile.
    pub fn count<R>(f: impl FnOnce() -> R) -> (R, usize) {
        COUNT.with(|c| c.set(0));
        ARMED.with(|a| a.set(true));
        let r = f();
        ARMED.with(|a| a.set(false));
        (r, COUNT.with(Cell::get))
    }
}
