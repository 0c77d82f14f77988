//! The DNS-over-TCP framer under arbitrary chunk splits of an arbitrary stream: the
//! messages it hands out must equal those of a reference split of the whole stream.
//!
//! Input layout: `[capacity selector][split seed: 8 octets][stream ...]`.
#![no_main]

use dnswarden_core::wire::{FrameError, TcpFramer};
use libfuzzer_sys::fuzz_target;

/// Splits a whole stream into frames: complete messages that fit `capacity` in order,
/// skipping oversized ones (as `skip_oversized` does); returns them and whether the
/// stream ended exactly at a frame boundary.
fn reference(stream: &[u8], capacity: usize) -> (Vec<Vec<u8>>, bool) {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        let Some(prefix) = stream.get(pos..pos + 2) else {
            return (out, false);
        };
        let len = usize::from(u16::from_be_bytes([prefix[0], prefix[1]]));
        let end = pos + 2 + len;
        if end > stream.len() {
            return (out, false);
        }
        if len <= capacity {
            out.push(stream[pos + 2..end].to_vec());
        }
        pos = end;
    }
    (out, true)
}

struct Splitter(u64);

impl Splitter {
    fn next(&mut self, max: usize) -> usize {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let r = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        1 + (r % max as u64) as usize
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let Some((seed, stream)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let capacity = match sel % 4 {
        0 => 65535,
        1 => 512,
        2 => usize::from(sel >> 2),
        _ => 0,
    };
    let max_chunk = match (sel >> 2) % 4 {
        0 => 1,
        1 => 3,
        2 => 64,
        _ => stream.len().max(1),
    };
    let mut split = Splitter(u64::from_le_bytes(*seed) | 1);

    let mut framer = TcpFramer::new(vec![0u8; capacity]);
    let mut got: Vec<Vec<u8>> = Vec::new();
    let mut pos = 0;
    while pos < stream.len() {
        let n = split.next(max_chunk).min(stream.len() - pos);
        let mut chunk = &stream[pos..pos + n];
        pos += n;
        loop {
            match framer.push(chunk, |m| got.push(m.to_vec())) {
                Ok(()) => break,
                Err(FrameError::TooLarge {
                    declared,
                    capacity: cap,
                    unread,
                }) => {
                    assert!(usize::from(declared) > cap);
                    assert_eq!(cap, capacity);
                    assert!(unread <= chunk.len());
                    // The same error again until the caller decides.
                    let again = framer.push(chunk, |_| panic!("no message while oversized"));
                    assert!(again.is_err() || chunk.is_empty());
                    framer.skip_oversized();
                    chunk = &chunk[chunk.len() - unread..];
                }
                Err(e) => panic!("unexpected framer error {e:?}"),
            }
        }
        assert!(framer.pending() <= 2 + capacity);
    }
    let (want, at_boundary) = reference(stream, capacity);
    assert_eq!(got, want);
    assert_eq!(framer.is_idle(), at_boundary);
});
