//! Reading an HTTP/1.x response without I/O: the head (status and body framing, parsed by
//! `httparse`) and a body decoder that keeps only as much as a body match needs.

use std::fmt;

/// The response head may be at most this long (HAProxy's default buffer size).
pub const HEAD_CAP: usize = 16 * 1024;

/// Header lines looked at; a longer head is refused as malformed.
const MAX_HEADERS: usize = 64;

/// Why a response cannot be judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Malformed {
    Head(httparse::Error),
    HeadTooLarge,
    ContentLength,
    ChunkSize,
    ChunkEnd,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Malformed::Head(e) => write!(f, "{e}"),
            Malformed::HeadTooLarge => write!(f, "head longer than {HEAD_CAP} bytes"),
            Malformed::ContentLength => write!(f, "invalid content-length"),
            Malformed::ChunkSize => write!(f, "invalid chunk size"),
            Malformed::ChunkEnd => write!(f, "chunk not followed by CRLF"),
        }
    }
}

/// How the body after a head ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (204, 304).
    Empty,
    Length(u64),
    Chunked,
    /// Everything until the server closes.
    UntilClose,
}

/// A complete response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    /// Bytes of the head, including the blank line.
    pub len: usize,
    pub framing: Framing,
}

impl Head {
    /// A 1xx other than 101: another head follows it.
    pub fn is_interim(&self) -> bool {
        (100..200).contains(&self.status) && self.status != 101
    }
}

/// The head at the start of `buf`: None while it is incomplete.
pub fn parse_head(buf: &[u8]) -> Result<Option<Head>, Malformed> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= HEAD_CAP => {
            return Err(Malformed::HeadTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(Malformed::Head(e)),
    };
    if len > HEAD_CAP {
        return Err(Malformed::HeadTooLarge);
    }
    let status = resp.code.unwrap_or(0);
    let mut chunked = false;
    let mut length: Option<u64> = None;
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked only if it is the last coding applied (RFC 9112 §6.3).
            chunked = h
                .value
                .rsplit(|b| *b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("content-length") {
            let v = content_length(h.value)?;
            if length.is_some_and(|l| l != v) {
                return Err(Malformed::ContentLength);
            }
            length = Some(v);
        }
    }
    let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if let Some(l) = length {
        Framing::Length(l)
    } else {
        Framing::UntilClose
    };
    Ok(Some(Head {
        status,
        len,
        framing,
    }))
}

fn content_length(value: &[u8]) -> Result<u64, Malformed> {
    let digits = value.trim_ascii();
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(Malformed::ContentLength);
    }
    digits
        .iter()
        .try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .ok_or(Malformed::ContentLength)
}

/// Decodes a body as it arrives, keeping at most `cap` bytes of it.
#[derive(Debug)]
pub struct Body {
    state: State,
    cap: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `n` more body bytes (Length framing, or inside a chunk).
    Bytes {
        left: u64,
        chunked: bool,
    },
    /// A chunk-size line comes next.
    ChunkSize,
    /// The CRLF after a chunk's data comes next.
    ChunkEnd,
    UntilClose,
    Done,
}

impl Body {
    pub fn new(framing: Framing, cap: usize) -> Body {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Bytes {
                left: n,
                chunked: false,
            },
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        };
        Body { state, cap }
    }

    /// Whether the body has ended or `out` holds all that will be kept of it.
    pub fn is_done(&self, out: &[u8]) -> bool {
        self.state == State::Done || out.len() >= self.cap
    }

    /// Whether the server closing now ends the body properly.
    pub fn ends_at_close(&self) -> bool {
        matches!(self.state, State::UntilClose | State::Done)
    }

    /// Decodes what it can of `input` into `out`; returns the bytes of `input` used (the
    /// rest is an incomplete chunk-size line or CRLF: feed it again with more after it).
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, Malformed> {
        let mut used = 0;
        while used < input.len() && !self.is_done(out) {
            let rest = &input[used..];
            match self.state {
                State::Done => break,
                State::UntilClose => {
                    used += self.keep(rest, out);
                }
                State::Bytes { left, chunked } => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(rest.len());
                    self.keep(&rest[..take], out);
                    used += take;
                    let left = left - take as u64;
                    self.state = match (left, chunked) {
                        (0, true) => State::ChunkEnd,
                        (0, false) => State::Done,
                        (left, chunked) => State::Bytes { left, chunked },
                    };
                }
                State::ChunkSize => match httparse::parse_chunk_size(rest) {
                    Ok(httparse::Status::Complete((n, 0))) => {
                        // The last chunk; trailers are of no interest.
                        used += n;
                        self.state = State::Done;
                    }
                    Ok(httparse::Status::Complete((n, size))) => {
                        used += n;
                        self.state = State::Bytes {
                            left: size,
                            chunked: true,
                        };
                    }
                    Ok(httparse::Status::Partial) if rest.len() > 1024 => {
                        return Err(Malformed::ChunkSize);
                    }
                    Ok(httparse::Status::Partial) => break,
                    Err(_) => return Err(Malformed::ChunkSize),
                },
                State::ChunkEnd => {
                    if rest.len() < 2 {
                        if rest != &b"\r"[..rest.len()] {
                            return Err(Malformed::ChunkEnd);
                        }
                        break;
                    }
                    if &rest[..2] != b"\r\n" {
                        return Err(Malformed::ChunkEnd);
                    }
                    used += 2;
                    self.state = State::ChunkSize;
                }
            }
        }
        Ok(used)
    }

    /// Appends what fits under the cap; returns all of `bytes` as used (the rest is
    /// not needed).
    fn keep(&self, bytes: &[u8], out: &mut Vec<u8>) -> usize {
        let room = self.cap.saturating_sub(out.len());
        out.extend_from_slice(&bytes[..bytes.len().min(room)]);
        bytes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        parse_head(text.as_bytes()).unwrap().unwrap()
    }

    #[test]
    fn heads_and_their_framing() {
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        assert_eq!((h.status, h.framing), (200, Framing::Length(5)));
        assert_eq!(h.len, 38);
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n");
        assert_eq!(h.framing, Framing::Chunked);
        let h = head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n");
        assert_eq!(h.framing, Framing::UntilClose);
        // Chunked wins over a content-length.
        let h = head("HTTP/1.1 200 OK\r\ncontent-length: 3\r\ntransfer-encoding: Chunked\r\n\r\n");
        assert_eq!(h.framing, Framing::Chunked);
        let h = head("HTTP/1.0 503 Busy\r\n\r\n");
        assert_eq!((h.status, h.framing), (503, Framing::UntilClose));
        let h = head("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n");
        assert_eq!(h.framing, Framing::Empty);
        let h = head("HTTP/1.1 100 Continue\r\n\r\n");
        assert!(h.is_interim());
        assert!(!head("HTTP/1.1 101 Switching\r\n\r\n").is_interim());
    }

    #[test]
    fn incomplete_and_malformed_heads() {
        assert_eq!(parse_head(b"HTTP/1.1 200 OK\r\nContent-"), Ok(None));
        assert_eq!(parse_head(b""), Ok(None));
        assert!(matches!(
            parse_head(b"SSH-2.0-OpenSSH\r\n\r\n"),
            Err(Malformed::Head(_))
        ));
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(parse_head(two), Err(Malformed::ContentLength));
        let same = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n";
        assert_eq!(
            parse_head(same).unwrap().unwrap().framing,
            Framing::Length(2)
        );
        for bad in ["-1", "", "1 2", "99999999999999999999", "0x10"] {
            let text = format!("HTTP/1.1 200 OK\r\nContent-Length: {bad}\r\n\r\n");
            assert_eq!(
                parse_head(text.as_bytes()),
                Err(Malformed::ContentLength),
                "{bad}"
            );
        }
        let long = format!("HTTP/1.1 200 OK\r\nX: {}", "a".repeat(HEAD_CAP));
        assert_eq!(parse_head(long.as_bytes()), Err(Malformed::HeadTooLarge));
        let many = format!(
            "HTTP/1.1 200 OK\r\n{}\r\n",
            "X: y\r\n".repeat(MAX_HEADERS + 1)
        );
        assert_eq!(
            parse_head(many.as_bytes()),
            Err(Malformed::Head(httparse::Error::TooManyHeaders))
        );
    }

    /// Feeds `input` in pieces of `step` bytes, as reads would deliver it.
    fn decode(framing: Framing, input: &[u8], step: usize, cap: usize) -> (Vec<u8>, bool) {
        let mut body = Body::new(framing, cap);
        let mut out = Vec::new();
        let mut pending = Vec::new();
        for piece in input.chunks(step) {
            pending.extend_from_slice(piece);
            let used = body.feed(&pending, &mut out).unwrap();
            pending.drain(..used);
            if body.is_done(&out) {
                break;
            }
        }
        let done = body.is_done(&out);
        (out, done)
    }

    #[test]
    fn bodies_in_every_framing_and_piece_size() {
        let chunked = b"4\r\nok 4\r\n3;ext=1\r\n 42\r\n0\r\nTrailer: x\r\n\r\n";
        for step in [1, 2, 3, 7, 100] {
            assert_eq!(
                decode(Framing::Chunked, chunked, step, 100),
                (b"ok 4 42".to_vec(), true),
                "step {step}"
            );
            assert_eq!(
                decode(Framing::Length(5), b"hello world", step, 100),
                (b"hello".to_vec(), true)
            );
            assert_eq!(
                decode(Framing::UntilClose, b"to the end", step, 100),
                (b"to the end".to_vec(), false)
            );
        }
        assert_eq!(
            decode(Framing::Empty, b"ignored", 1, 100),
            (Vec::new(), true)
        );
    }

    #[test]
    fn the_cap_ends_reading() {
        assert_eq!(
            decode(Framing::Length(1 << 40), &[b'x'; 64], 16, 10),
            (vec![b'x'; 10], true)
        );
        let huge = b"FFFFFFFFFFFFFFFF\r\nxxxxxxxxxxxxxxxxxxxx";
        assert_eq!(decode(Framing::Chunked, huge, 4, 8), (vec![b'x'; 8], true));
    }

    #[test]
    fn broken_chunks_are_malformed() {
        let mut body = Body::new(Framing::Chunked, 100);
        let mut out = Vec::new();
        assert_eq!(body.feed(b"zz\r\n", &mut out), Err(Malformed::ChunkSize));
        let mut body = Body::new(Framing::Chunked, 100);
        assert_eq!(body.feed(b"2\r\nokXX", &mut out), Err(Malformed::ChunkEnd));
        let mut body = Body::new(Framing::Chunked, 100);
        assert_eq!(
            body.feed(&[b'1'; 2000], &mut out),
            Err(Malformed::ChunkSize)
        );
    }
}
