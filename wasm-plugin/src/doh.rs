//! RFC 8484 helpers: find the `dns` parameter of a GET and decode its base64url.

/// Why a DoH GET request could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DohError {
    /// The path has no `dns=` query parameter.
    NoDnsParam,
    /// The parameter is not unpadded base64url (RFC 8484 §4.1, RFC 4648 §5).
    BadBase64,
    /// The decoded message would exceed the limit.
    TooLarge,
}

impl DohError {
    /// Short label for metrics.
    #[must_use]
    pub fn kind(self) -> &'static str {
        match self {
            Self::NoDnsParam => "no_dns_param",
            Self::BadBase64 => "bad_base64",
            Self::TooLarge => "too_large",
        }
    }
}

/// Returns the raw value of the `dns` query parameter of a request path.
#[must_use]
pub fn dns_param(path: &[u8]) -> Option<&[u8]> {
    let query_start = path.iter().position(|&b| b == b'?')?;
    let query = path.get(query_start + 1..)?;
    let query = query.split(|&b| b == b'#').next().unwrap_or_default();
    query
        .split(|&b| b == b'&')
        .find_map(|pair| pair.strip_prefix(b"dns="))
}

fn sextet(b: u8) -> Option<u32> {
    Some(u32::from(match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    }))
}

/// Decodes base64url. Padding (`=`, or its percent-encoded form `%3D`) is tolerated at
/// the end although RFC 8484 says to leave it off.
///
/// # Errors
/// [`DohError::BadBase64`] for a character outside the alphabet or an impossible
/// length, [`DohError::TooLarge`] when the output would exceed `max`.
pub fn decode_base64url(input: &[u8], max: usize, out: &mut Vec<u8>) -> Result<(), DohError> {
    out.clear();
    let mut input = input;
    loop {
        if let Some(rest) = input.strip_suffix(b"=") {
            input = rest;
        } else if let Some(rest) = input
            .strip_suffix(b"%3D")
            .or_else(|| input.strip_suffix(b"%3d"))
        {
            input = rest;
        } else {
            break;
        }
    }
    if input.len() % 4 == 1 {
        return Err(DohError::BadBase64);
    }
    if input.len() / 4 * 3 + (input.len() % 4).saturating_sub(1) > max {
        return Err(DohError::TooLarge);
    }
    for group in input.chunks(4) {
        let mut acc = 0u32;
        for &b in group {
            acc = (acc << 6) | sextet(b).ok_or(DohError::BadBase64)?;
        }
        let bytes = match group.len() {
            4 => 3,
            3 => {
                acc <<= 6;
                2
            }
            _ => {
                acc <<= 12;
                1
            }
        };
        let word = acc.to_be_bytes();
        out.extend_from_slice(word.get(1..1 + bytes).unwrap_or_default());
    }
    Ok(())
}

/// Decodes the DNS query carried by a DoH GET request path.
///
/// # Errors
/// See [`DohError`].
pub fn query_from_path(path: &[u8], max: usize, out: &mut Vec<u8>) -> Result<(), DohError> {
    let param = dns_param(path).ok_or(DohError::NoDnsParam)?;
    decode_base64url(param, max, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_parameter() {
        assert_eq!(dns_param(b"/dns-query?dns=AAAB"), Some(&b"AAAB"[..]));
        assert_eq!(
            dns_param(b"/dns-query?ct=x&dns=AAAB&z=1"),
            Some(&b"AAAB"[..])
        );
        assert_eq!(dns_param(b"/dns-query?dns=AAAB#frag"), Some(&b"AAAB"[..]));
        assert_eq!(dns_param(b"/dns-query?xdns=AAAB"), None);
        assert_eq!(dns_param(b"/dns-query"), None);
    }

    #[test]
    fn decodes_rfc8484_example() {
        // RFC 8484 §4.1.1: www.example.com A, id 0.
        let q = b"AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB";
        let mut out = Vec::new();
        decode_base64url(q, 512, &mut out).expect("valid");
        assert_eq!(&out[..4], &[0, 0, 1, 0]);
        assert_eq!(out.len(), 33);
        assert_eq!(&out[13..16], b"www");
    }

    #[test]
    fn table() {
        type Case = (&'static [u8], Result<&'static [u8], DohError>);
        let cases: &[Case] = &[
            (b"", Ok(b"")),
            (b"_w", Ok(b"\xff")),
            (b"-_8", Ok(b"\xfb\xff")),
            (b"AAEC", Ok(b"\x00\x01\x02")),
            (b"AAE=", Ok(b"\x00\x01")),
            (b"AAE%3D", Ok(b"\x00\x01")),
            (b"A", Err(DohError::BadBase64)),
            (b"AA+/", Err(DohError::BadBase64)),
            (b"AA A", Err(DohError::BadBase64)),
        ];
        let mut out = Vec::new();
        for (input, want) in cases {
            let got = decode_base64url(input, 16, &mut out).map(|()| out.as_slice());
            assert_eq!(got, *want, "{}", String::from_utf8_lossy(input));
        }
        assert_eq!(
            decode_base64url(b"AAAAAAAA", 5, &mut out),
            Err(DohError::TooLarge)
        );
        assert_eq!(decode_base64url(b"AAAAAAAA", 6, &mut out), Ok(()));
    }
}
