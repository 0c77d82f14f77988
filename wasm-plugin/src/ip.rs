//! IP address text for the configuration's expected answers.
//!
//! A small reader instead of `str::parse::<IpAddr>` (whose general parser costs the
//! `.wasm` about 3.5 KiB): IPv4 dotted quads (no leading zeros) and IPv6 in hex groups
//! with at most one `::`, without zone ids or an embedded IPv4 tail (write
//! `::ffff:a00:7`, not `::ffff:10.0.0.7`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The address written in `text`, or `None`.
#[must_use]
pub fn parse(text: &str) -> Option<IpAddr> {
    let text = text.as_bytes();
    if text.contains(&b':') {
        v6(text).map(IpAddr::V6)
    } else {
        v4(text).map(IpAddr::V4)
    }
}

fn v4(text: &[u8]) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split(|&b| b == b'.');
    for o in &mut octets {
        let p = parts.next()?;
        if p.is_empty() || (p.len() > 1 && p.first() == Some(&b'0')) {
            return None;
        }
        *o = u8::try_from(number(p, 10)?).ok()?;
    }
    parts.next().is_none().then_some(Ipv4Addr::from(octets))
}

/// Digits in `radix` (no sign), without overflow.
fn number(digits: &[u8], radix: u32) -> Option<u32> {
    digits.iter().try_fold(0u32, |acc, &b| {
        let d = char::from(b).to_digit(radix)?;
        acc.checked_mul(radix)?.checked_add(d)
    })
}

/// Hex groups of one side of `::` (empty text: no groups).
fn groups(text: &[u8], out: &mut [u16; 8]) -> Option<usize> {
    if text.is_empty() {
        return Some(0);
    }
    let mut n = 0;
    for g in text.split(|&b| b == b':') {
        if g.is_empty() || g.len() > 4 {
            return None;
        }
        *out.get_mut(n)? = u16::try_from(number(g, 16)?).ok()?;
        n += 1;
    }
    Some(n)
}

fn v6(text: &[u8]) -> Option<Ipv6Addr> {
    let mut head = [0u16; 8];
    let mut tail = [0u16; 8];
    let double = text.windows(2).position(|w| w == b"::");
    let (h, t) = match double.and_then(|at| Some((text.get(..at)?, text.get(at + 2..)?))) {
        Some((h, t)) => {
            let h = groups(h, &mut head)?;
            let t = groups(t, &mut tail)?;
            // `::` stands for at least one zero group.
            (h + t < 8).then_some((h, t))?
        }
        None => (groups(text, &mut head)?, 0),
    };
    if h + t != 8 && double.is_none() {
        return None;
    }
    let mut all = [0u16; 8];
    for (dst, src) in all.iter_mut().zip(head.iter().take(h)) {
        *dst = *src;
    }
    for (dst, src) in all.iter_mut().skip(8 - t).zip(tail.iter().take(t)) {
        *dst = *src;
    }
    Some(Ipv6Addr::from(all))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// std's parser is the oracle on the forms we accept.
    #[test]
    fn agrees_with_std() {
        for text in [
            "10.0.0.7",
            "0.0.0.0",
            "255.255.255.255",
            "::",
            "::1",
            "fe80::",
            "fd00::1:2",
            "2001:db8:0:0:1:0:0:1",
            "2001:db8::1:0:0:1",
            "1:2:3:4:5:6:7:8",
            "1::8",
            "::2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::",
            "FFFF::abcd",
        ] {
            assert_eq!(parse(text), text.parse().ok(), "{text}");
        }
    }

    #[test]
    fn rejects_what_std_rejects() {
        for text in [
            "",
            "10.0.0",
            "10.0.0.7.1",
            "256.0.0.1",
            "01.0.0.1",
            "1.2.3.-4",
            "1.2.3.+4",
            "a.b.c.d",
            ":",
            ":::",
            "1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "1:2:3:4:5:6:7:8::",
            "::1:2:3:4:5:6:7:8",
            "12345::",
            "g::",
            "1:",
            ":1",
            "+1::",
            "10.0.0.7 ",
        ] {
            assert_eq!(parse(text), None, "{text}");
            assert!(text.parse::<IpAddr>().is_err(), "{text}");
        }
    }
}
