//! The TCP framer against a reference split, for arbitrary messages and chunkings.

use dnswarden_core::wire::TcpFramer;
use proptest::prelude::*;

fn framed(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut s = Vec::new();
    for m in messages {
        s.extend_from_slice(&(m.len() as u16).to_be_bytes());
        s.extend_from_slice(m);
    }
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_chunking_yields_the_same_messages(
        messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..700), 0..12),
        cuts in prop::collection::vec(1usize..900, 0..40),
    ) {
        let stream = framed(&messages);
        let mut framer = TcpFramer::new(vec![0u8; 700]);
        let mut got = Vec::new();
        let mut rest = stream.as_slice();
        let mut cuts = cuts.into_iter();
        while !rest.is_empty() {
            let n = cuts.next().unwrap_or(rest.len()).min(rest.len());
            let (chunk, tail) = rest.split_at(n);
            framer.push(chunk, |m| got.push(m.to_vec())).unwrap();
            rest = tail;
        }
        prop_assert_eq!(got, messages);
        prop_assert!(framer.is_idle());
        prop_assert_eq!(framer.pending(), 0);
    }

    #[test]
    fn garbage_never_panics(stream in prop::collection::vec(any::<u8>(), 0..4000), chunk in 1usize..300) {
        let mut framer = TcpFramer::new([0u8; 512]);
        for c in stream.chunks(chunk) {
            let mut input = c;
            // Skip oversized frames and go on, as a passive observer would.
            while let Err(e) = framer.push(input, |m| { let _ = dnswarden_core::wire::Message::parse(m); }) {
                let dnswarden_core::wire::FrameError::TooLarge { unread, .. } = e else { unreachable!() };
                framer.skip_oversized();
                input = &input[input.len() - unread..];
            }
        }
    }
}

#[test]
fn one_octet_at_a_time_and_many_per_chunk() {
    let messages: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; usize::from(i) * 3]).collect();
    let stream = framed(&messages);
    for chunk in [1, 2, 3, 5, 64, stream.len()] {
        let mut framer = TcpFramer::new([0u8; 256]);
        let mut got = Vec::new();
        for c in stream.chunks(chunk) {
            framer.push(c, |m| got.push(m.to_vec())).unwrap();
        }
        assert_eq!(got, messages, "chunk {chunk}");
    }
}

#[test]
fn partial_state_is_visible() {
    let mut framer = TcpFramer::new([0u8; 64]);
    framer.push(&[0], |_| panic!("no message yet")).unwrap();
    assert_eq!(framer.pending(), 1);
    framer
        .push(&[5, 1, 2], |_| panic!("no message yet"))
        .unwrap();
    assert_eq!(framer.pending(), 4);
    assert!(!framer.is_idle());
    let mut n = 0;
    framer.push(&[3, 4, 5, 0, 0], |m| n += m.len() + 1).unwrap();
    // The 5-octet message, then an empty frame (a zero length prefix).
    assert_eq!(n, 6 + 1);
    assert!(framer.is_idle());
}

#[test]
fn a_real_pipelined_tcp_stream_from_knot() {
    // Three answers captured on one TCP connection (lab/capture-fixtures.sh).
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/knot-tcp-pipelined.stream"
    );
    let stream = std::fs::read(path).expect("fixture present");
    for chunk in [1, 2, 3, 100, stream.len()] {
        let mut framer = TcpFramer::new([0u8; 2048]);
        let mut ids = Vec::new();
        for c in stream.chunks(chunk) {
            framer
                .push(c, |m| {
                    let msg = dnswarden_core::wire::Message::parse(m).unwrap();
                    assert_eq!(msg.trailing_len(), Ok(0));
                    ids.push(msg.id());
                })
                .unwrap();
        }
        assert_eq!(ids.len(), 3, "chunk {chunk}");
        assert!(framer.is_idle());
    }
}
