//! Differential test: `wire::check_and_summarize` (one pass) against the slower path it
//! replaces (`Message::parse`, `check_response`, `Observation::from_exchange`) over every
//! captured fixture and systematic corruptions of each.

mod common;

use dnswarden_core::score::{AnswerSummary, Observation, Outcome};
use dnswarden_core::wire::{
    Asked, MAX_QUESTION_LEN, Message, Unanswered, check_and_summarize, question_wire,
};

type Seen = Result<(Outcome, AnswerSummary<'static>, u64), Outcome>;

fn slow(query: &Message<'_>, response: &[u8]) -> Seen {
    let Ok(r) = Message::parse(response) else {
        return Err(Outcome::Malformed);
    };
    let obs = Observation::from_exchange(0, 0, 0, 0, query, &r, &mut []);
    match obs.outcome {
        Outcome::Malformed | Outcome::Mismatch(_) => Err(obs.outcome),
        o => {
            let q = query.first_question().unwrap().unwrap();
            Ok((o, obs.answers, q.name.fingerprint()))
        }
    }
}

fn fast(asked: &Asked<'_>, response: &[u8]) -> Seen {
    match check_and_summarize(response, asked) {
        Ok(s) => Ok((s.outcome(), s.answers, s.qname)),
        Err(u) => {
            // Unparseable octets are a parse error of the message itself.
            if let Unanswered::Unparseable(e) = u {
                assert_eq!(Message::parse(response).err(), Some(e));
            }
            Err(u.outcome())
        }
    }
}

/// Pairs (query, response) for every fixture: its captured query, or the response's own
/// question standing in for it (as the filter's key did).
fn pairs() -> Vec<(String, Vec<u8>, Vec<u8>)> {
    let fixtures = common::fixtures();
    assert!(fixtures.len() >= 40, "only {} fixtures", fixtures.len());
    fixtures
        .into_iter()
        .map(|(name, response)| {
            let query = common::fixture_query(&name).unwrap_or_else(|| {
                let mut q = response.clone();
                q[2] &= 0x7F;
                q
            });
            (name, query, response)
        })
        .collect()
}

fn compare(name: &str, query: &[u8], response: &[u8]) -> bool {
    let q = Message::parse(query).unwrap();
    let mut buf = [0u8; MAX_QUESTION_LEN];
    let Some(n) = question_wire(&q, &mut buf) else {
        return false;
    };
    let asked = Asked::new(q.id(), q.header().opcode(), &buf[..n]).unwrap();
    assert_eq!(asked.name_fingerprint(), {
        q.first_question().unwrap().unwrap().name.fingerprint()
    });
    let want = slow(&q, response);
    assert_eq!(fast(&asked, response), want, "{name}: {response:02x?}");
    want.is_ok()
}

#[test]
fn every_fixture_summarises_like_the_slow_path() {
    let mut answered = 0;
    let pairs = pairs();
    for (name, query, response) in &pairs {
        answered += usize::from(compare(name, query, response));
    }
    // Nearly every real answer answers its query: a broken matcher would fail them all.
    assert!(
        answered * 10 >= pairs.len() * 9,
        "{answered} of {}",
        pairs.len()
    );
}

#[test]
fn corrupted_fixtures_summarise_like_the_slow_path() {
    let (mut cases, mut answered) = (0usize, 0usize);
    for (name, query, response) in pairs() {
        for cut in 0..response.len() {
            compare(&name, &query, &response[..cut]);
        }
        for at in 0..response.len() {
            for value in [0x00, 0xFF, 0xC0, 0x3F, 0x01, response[at] ^ 0x20] {
                let mut r = response.clone();
                r[at] = value;
                {
                    cases += 1;
                    answered += usize::from(compare(&name, &query, &r));
                }
            }
            // A pointer to every earlier offset (loops, mid-label landings).
            if at + 1 < response.len() && at < 600 && at % 4 == 0 {
                for target in (0..at).step_by(7) {
                    let mut r = response.clone();
                    r[at] = 0xC0 | (target >> 8) as u8;
                    r[at + 1] = target as u8;
                    {
                        cases += 1;
                        answered += usize::from(compare(&name, &query, &r));
                    }
                }
            }
        }
    }
    // Many corruptions leave an answer (rdata, TTLs, case): both paths must agree there.
    assert!(answered * 4 > cases, "{answered} of {cases}");
}
