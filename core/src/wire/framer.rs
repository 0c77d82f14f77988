//! DNS over TCP framing: 2-octet big-endian length, then the message (RFC 1035 §4.2.2,
//! RFC 7766 §8).

use core::fmt;

/// Framing failed. The framer stays in a defined state: see [`TcpFramer::skip_oversized`]
/// and [`TcpFramer::reset`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FrameError {
    /// A frame declares more octets than the framer's buffer holds.
    TooLarge {
        /// The declared message length.
        declared: u16,
        /// The framer's buffer capacity.
        capacity: usize,
        /// Octets at the end of the pushed chunk that were not consumed.
        unread: usize,
    },
}

impl FrameError {
    /// A short, stable identifier, suitable as a metric label.
    pub const fn kind(self) -> &'static str {
        match self {
            FrameError::TooLarge { .. } => "frame_too_large",
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge {
                declared, capacity, ..
            } => write!(
                f,
                "frame of {declared} octets exceeds the {capacity}-octet buffer"
            ),
        }
    }
}

impl core::error::Error for FrameError {}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// At a frame boundary.
    Idle,
    /// One octet of the length prefix seen.
    HalfLength(u8),
    /// Collecting `need` octets into the buffer, `have` so far.
    Body { need: usize, have: usize },
    /// An oversized frame was reported; waiting for the caller's decision.
    Oversized { declared: u16 },
    /// Discarding the rest of an oversized frame.
    Skip { left: usize },
}

/// Turns a DNS-over-TCP byte stream, delivered in arbitrary chunks, into whole messages.
///
/// Messages that lie entirely inside one pushed chunk are handed out straight from the
/// chunk; only messages split across chunks are copied, into the caller-provided buffer.
/// A buffer of 65535 octets holds any DNS message.
///
/// ```
/// use dnswarden_core::wire::TcpFramer;
/// let mut framer = TcpFramer::new([0u8; 512]);
/// let stream = [0, 3, b'a', b'b', b'c', 0, 1, b'z'];
/// let mut seen = 0;
/// for byte in stream.chunks(1) {
///     framer.push(byte, |msg| { seen += msg.len(); })?;
/// }
/// assert_eq!(seen, 4);
/// # Ok::<(), dnswarden_core::wire::FrameError>(())
/// ```
#[derive(Clone, Debug)]
pub struct TcpFramer<B> {
    buf: B,
    state: State,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> TcpFramer<B> {
    /// A framer collecting split messages in `buf`.
    pub fn new(buf: B) -> Self {
        TcpFramer {
            buf,
            state: State::Idle,
        }
    }

    /// The largest message this framer can reassemble.
    pub fn capacity(&self) -> usize {
        self.buf.as_ref().len()
    }

    /// Whether the framer is at a message boundary (nothing partial buffered). At the end
    /// of a connection, `false` means a message was cut off.
    pub fn is_idle(&self) -> bool {
        self.state == State::Idle
    }

    /// Octets of the current, incomplete frame received so far (length prefix included).
    pub fn pending(&self) -> usize {
        match self.state {
            State::Idle | State::Oversized { .. } | State::Skip { .. } => 0,
            State::HalfLength(_) => 1,
            State::Body { have, .. } => 2 + have,
        }
    }

    /// After [`FrameError::TooLarge`]: discard the oversized message as its octets arrive,
    /// then go on with the next frame (the length prefix keeps the stream in sync).
    pub fn skip_oversized(&mut self) {
        if let State::Oversized { declared } = self.state {
            self.state = if declared == 0 {
                State::Idle
            } else {
                State::Skip {
                    left: usize::from(declared),
                }
            };
        }
    }

    /// Forgets any partial frame and starts over at a frame boundary (for example when
    /// giving up on a stream, or at a new connection).
    pub fn reset(&mut self) {
        self.state = State::Idle;
    }

    /// Feeds the next chunk of the stream and calls `on_message` with every message it
    /// completes, in order. Each message excludes its length prefix.
    ///
    /// On [`FrameError::TooLarge`] the octets after the offending length prefix are not
    /// consumed (`unread` of them); call [`skip_oversized`](Self::skip_oversized) or
    /// [`reset`](Self::reset) and push the rest again. Until then every push reports the
    /// same error and consumes nothing.
    pub fn push<F: FnMut(&[u8])>(
        &mut self,
        chunk: &[u8],
        mut on_message: F,
    ) -> Result<(), FrameError> {
        let mut input = chunk;
        while !input.is_empty() {
            match self.state {
                State::Oversized { declared } => return Err(self.too_large(declared, input.len())),
                State::Skip { left } => {
                    let n = left.min(input.len());
                    input = input.get(n..).unwrap_or_default();
                    self.state = if n == left {
                        State::Idle
                    } else {
                        State::Skip { left: left - n }
                    };
                }
                State::Idle => {
                    let Some((len, rest)) = split_prefix(input) else {
                        // A single octet: half a length prefix.
                        self.state = State::HalfLength(input.first().copied().unwrap_or(0));
                        return Ok(());
                    };
                    let need = usize::from(len);
                    // Whole message inside the chunk: no copy. The capacity applies here
                    // too, so the result never depends on how the stream was chunked.
                    if need <= self.capacity()
                        && let Some(msg) = rest.get(..need)
                    {
                        on_message(msg);
                        input = rest.get(need..).unwrap_or_default();
                    } else {
                        input = rest;
                        self.start_body(len, input.len())?;
                    }
                }
                State::HalfLength(hi) => {
                    let lo = input.first().copied().unwrap_or(0);
                    input = input.get(1..).unwrap_or_default();
                    let len = u16::from_be_bytes([hi, lo]);
                    self.start_body(len, input.len())?;
                }
                State::Body { need, have } => {
                    let take = (need - have).min(input.len());
                    let (part, rest) = input.split_at(take);
                    let buf = self.buf.as_mut();
                    if let Some(dst) = buf.get_mut(have..have + take) {
                        dst.copy_from_slice(part);
                    }
                    input = rest;
                    if have + take == need {
                        self.state = State::Idle;
                        on_message(self.buf.as_ref().get(..need).unwrap_or_default());
                    } else {
                        self.state = State::Body {
                            need,
                            have: have + take,
                        };
                    }
                }
            }
        }
        // A zero-length frame completes as soon as its prefix is read.
        if let State::Body { need: 0, .. } = self.state {
            self.state = State::Idle;
            on_message(&[]);
        }
        Ok(())
    }

    fn start_body(&mut self, len: u16, unread: usize) -> Result<(), FrameError> {
        if usize::from(len) > self.capacity() {
            self.state = State::Oversized { declared: len };
            return Err(self.too_large(len, unread));
        }
        self.state = State::Body {
            need: usize::from(len),
            have: 0,
        };
        Ok(())
    }

    fn too_large(&self, declared: u16, unread: usize) -> FrameError {
        FrameError::TooLarge {
            declared,
            capacity: self.capacity(),
            unread,
        }
    }
}

fn split_prefix(input: &[u8]) -> Option<(u16, &[u8])> {
    match input {
        [hi, lo, rest @ ..] => Some((u16::from_be_bytes([*hi, *lo]), rest)),
        _ => None,
    }
}
