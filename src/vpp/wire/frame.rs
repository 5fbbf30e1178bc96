//! Socket framing (docs/vpp-wire.md §1.2): a 16-byte header mirroring VPP's `msgbuf_t`
//! (`u64 q`, `u32 data_len` big-endian, `u32 gc_mark_timestamp`), then the payload.
//! We send zeros in the two ignored fields; VPP sends garbage there, which we ignore.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::WireError;

/// Size of the frame header.
pub const FRAME_HEADER_LEN: usize = 16;

/// Largest payload accepted (64 MiB). Anything longer means the stream is corrupt:
/// real replies top out at a few hundred KiB (`sockclnt_create_reply`, `cli_inband`).
pub const MAX_FRAME_LEN: u32 = 64 * 1024 * 1024;

/// Returns the payload length announced by a frame header, rejecting absurd values.
pub fn parse_frame_header(header: &[u8; FRAME_HEADER_LEN]) -> Result<u32, WireError> {
    let len = u32::from_be_bytes([header[8], header[9], header[10], header[11]]);
    if len > MAX_FRAME_LEN {
        return Err(WireError::FrameTooLarge {
            len,
            max: MAX_FRAME_LEN,
        });
    }
    Ok(len)
}

/// Header + payload as one buffer, with the ignored fields set to `q` and `gc_mark`.
pub fn encode_frame(payload: &[u8], q: u64, gc_mark: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER_LEN + payload.len());
    out.extend_from_slice(&q.to_be_bytes());
    // Payloads are built by us and are far below 4 GiB; saturate rather than wrap.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&gc_mark.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Errors of the framed transport.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// First allocation for a payload; the buffer then grows with the bytes that arrive.
const INITIAL_PAYLOAD_CAPACITY: usize = 64 * 1024;

/// Reads one frame; `Ok(None)` on a clean EOF before the header. The length must pass the
/// cap, and the payload buffer grows with the bytes actually received, so a corrupt header
/// on a short stream costs no more memory than the stream carried.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Result<Option<Vec<u8>>, FrameError> {
    let mut header = [0u8; FRAME_HEADER_LEN];
    let mut filled = 0;
    while filled < FRAME_HEADER_LEN {
        let n = r.read(&mut header[filled..]).await?;
        if n == 0 {
            if filled == 0 {
                return Ok(None);
            }
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        filled += n;
    }
    let len = parse_frame_header(&header)?;
    let mut payload = Vec::with_capacity((len as usize).min(INITIAL_PAYLOAD_CAPACITY));
    (&mut *r)
        .take(u64::from(len))
        .read_to_end(&mut payload)
        .await?;
    if payload.len() != len as usize {
        return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
    }
    Ok(Some(payload))
}

/// Bytes offered to one read of [`FrameSplitter::read_space`]: a burst of replies (a dump's
/// details, several callers' answers) arrives in one `recv`.
pub const READ_CHUNK: usize = 64 * 1024;

/// Above this capacity, a buffer that a large frame grew is given back once drained.
const KEEP_CAPACITY: usize = 4 * READ_CHUNK;

/// Splits a received byte stream into frames, whatever the read boundaries: several frames
/// in one read, a frame split across reads, a header split in two. Pure (no I/O): the read
/// loop appends what it received and takes every complete frame; the partial tail stays.
/// The buffer grows with the bytes received, never with the length a header announces.
#[derive(Debug, Default)]
pub struct FrameSplitter {
    buf: Vec<u8>,
    /// Start of the first byte not yet returned as part of a frame.
    start: usize,
}

impl FrameSplitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(bytes);
    }

    /// The buffer to read into, with at least [`READ_CHUNK`] bytes of spare capacity; a
    /// read appends to it (`AsyncReadExt::read_buf`). Consumed frames are dropped first.
    pub fn read_space(&mut self) -> &mut Vec<u8> {
        self.compact();
        self.buf.reserve(READ_CHUNK);
        &mut self.buf
    }

    /// The next complete frame's payload, `Ok(None)` when only a partial frame (or nothing)
    /// is buffered. `Err` when a header announces more than [`MAX_FRAME_LEN`]: the stream is
    /// corrupt and the splitter must not be used any more.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, WireError> {
        let rest = &self.buf[self.start..];
        let Some(header) = rest.first_chunk::<FRAME_HEADER_LEN>() else {
            return Ok(None);
        };
        let len = parse_frame_header(header)? as usize;
        let Some(payload) = rest.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len) else {
            return Ok(None);
        };
        let payload = payload.to_vec();
        self.start += FRAME_HEADER_LEN + len;
        Ok(Some(payload))
    }

    /// Bytes received but not yet returned in a frame (a partial frame at EOF is an error).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        self.buf.drain(..self.start);
        self.start = 0;
        if self.buf.capacity() > KEEP_CAPACITY && self.buf.len() < READ_CHUNK {
            self.buf.shrink_to(READ_CHUNK);
        }
    }
}

/// Writes one frame (header and payload in a single write, zeros in the ignored fields).
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, payload: &[u8]) -> std::io::Result<()> {
    w.write_all(&encode_frame(payload, 0, 0)).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_control_ping_frame() {
        let payload = [0x00, 0x17, 0x80, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x09];
        let framed = encode_frame(&payload, 0, 0);
        let expected = hex("0000000000000000 0000000a 00000000 00178000000100000009");
        assert_eq!(framed, expected);
    }

    #[test]
    fn header_ignores_garbage_fields_and_caps_length() {
        let mut h = [0xAAu8; FRAME_HEADER_LEN];
        h[8..12].copy_from_slice(&42u32.to_be_bytes());
        assert_eq!(parse_frame_header(&h), Ok(42));
        h[8..12].copy_from_slice(&(MAX_FRAME_LEN + 1).to_be_bytes());
        assert!(matches!(
            parse_frame_header(&h),
            Err(WireError::FrameTooLarge { .. })
        ));
        h[8..12].copy_from_slice(&MAX_FRAME_LEN.to_be_bytes());
        assert_eq!(parse_frame_header(&h), Ok(MAX_FRAME_LEN));
    }

    #[tokio::test]
    async fn reads_frames_split_and_joined() {
        let mut bytes = encode_frame(b"abc", 0xdead_beef, 7);
        bytes.extend(encode_frame(b"", 1, 2));
        let mut r = std::io::Cursor::new(bytes);
        assert_eq!(read_frame(&mut r).await.unwrap(), Some(b"abc".to_vec()));
        assert_eq!(read_frame(&mut r).await.unwrap(), Some(Vec::new()));
        assert!(read_frame(&mut r).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn absurd_length_is_rejected_before_allocation() {
        let mut h = vec![0u8; FRAME_HEADER_LEN];
        h[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
        let mut r = std::io::Cursor::new(h);
        let err = read_frame(&mut r).await.unwrap_err();
        assert!(matches!(
            err,
            FrameError::Wire(WireError::FrameTooLarge { .. })
        ));
    }

    /// A stream that records the largest read buffer it was offered.
    struct Recording {
        data: std::io::Cursor<Vec<u8>>,
        largest_offer: usize,
    }

    impl AsyncRead for Recording {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            self.largest_offer = self.largest_offer.max(buf.remaining());
            std::pin::Pin::new(&mut self.data).poll_read(cx, buf)
        }
    }

    /// Fuzz finding (vpp_frame): a header announcing the 64 MiB cap followed by a few bytes
    /// made `read_frame` allocate the whole 64 MiB before reading.
    #[tokio::test]
    async fn announced_length_is_not_allocated_up_front() {
        let mut bytes = vec![0u8; FRAME_HEADER_LEN];
        bytes[8..12].copy_from_slice(&MAX_FRAME_LEN.to_be_bytes());
        bytes.extend_from_slice(b"short");
        let mut r = Recording {
            data: std::io::Cursor::new(bytes),
            largest_offer: 0,
        };
        let err = read_frame(&mut r).await.unwrap_err();
        assert!(
            matches!(err, FrameError::Io(ref e) if e.kind() == std::io::ErrorKind::UnexpectedEof)
        );
        assert!(
            r.largest_offer <= 1024 * 1024,
            "read buffer of {} bytes for a 5-byte stream",
            r.largest_offer
        );
    }

    #[tokio::test]
    async fn large_frame_arrives_whole() {
        let payload: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let mut r = std::io::Cursor::new(encode_frame(&payload, 0, 0));
        assert_eq!(read_frame(&mut r).await.unwrap(), Some(payload));
    }

    #[tokio::test]
    async fn eof_inside_a_frame_is_an_error() {
        let mut bytes = encode_frame(b"abcdef", 0, 0);
        bytes.truncate(19);
        let mut r = std::io::Cursor::new(bytes);
        assert!(read_frame(&mut r).await.is_err());
    }

    /// Three frames (empty payload, garbage in the ignored fields, one larger than a read
    /// chunk would be in the real loop) as one golden byte stream.
    fn golden_stream() -> (Vec<u8>, Vec<Vec<u8>>) {
        let payloads = vec![
            hex("00178000000100000009"),
            Vec::new(),
            (0..300u32).map(|i| (i * 7) as u8).collect::<Vec<u8>>(),
        ];
        let mut bytes = encode_frame(&payloads[0], 0, 0);
        bytes.extend(encode_frame(
            &payloads[1],
            0xdead_beef_0000_0001,
            0xffff_ffff,
        ));
        bytes.extend(encode_frame(&payloads[2], 7, 9));
        (bytes, payloads)
    }

    fn drain(s: &mut FrameSplitter, out: &mut Vec<Vec<u8>>) {
        while let Some(p) = s.next_frame().unwrap() {
            out.push(p);
        }
    }

    #[test]
    fn splitter_finds_every_frame_in_one_read() {
        let (bytes, payloads) = golden_stream();
        let mut s = FrameSplitter::new();
        s.push(&bytes);
        let mut got = Vec::new();
        drain(&mut s, &mut got);
        assert_eq!(got, payloads);
        assert_eq!(s.buffered(), 0);
    }

    #[test]
    fn splitter_handles_every_split_point() {
        let (bytes, payloads) = golden_stream();
        for cut in 0..=bytes.len() {
            let mut s = FrameSplitter::new();
            let mut got = Vec::new();
            s.push(&bytes[..cut]);
            drain(&mut s, &mut got);
            // Only the frames wholly inside the first part come out before the rest arrives.
            let mut end = 0;
            let whole = payloads
                .iter()
                .take_while(|p| {
                    end += FRAME_HEADER_LEN + p.len();
                    end <= cut
                })
                .count();
            assert_eq!(got, payloads[..whole], "cut at {cut}");
            s.push(&bytes[cut..]);
            drain(&mut s, &mut got);
            assert_eq!(got, payloads, "cut at {cut}");
            assert_eq!(s.buffered(), 0, "cut at {cut}");
        }
    }

    #[test]
    fn splitter_handles_every_pair_of_split_points_and_single_bytes() {
        let (bytes, payloads) = golden_stream();
        for a in 0..=bytes.len() {
            for b in a..=bytes.len() {
                let mut s = FrameSplitter::new();
                let mut got = Vec::new();
                for part in [&bytes[..a], &bytes[a..b], &bytes[b..]] {
                    s.push(part);
                    drain(&mut s, &mut got);
                }
                assert_eq!(got, payloads, "cuts at {a}, {b}");
            }
        }
        let mut s = FrameSplitter::new();
        let mut got = Vec::new();
        for byte in &bytes {
            s.push(std::slice::from_ref(byte));
            drain(&mut s, &mut got);
        }
        assert_eq!(got, payloads);
    }

    #[test]
    fn splitter_keeps_a_partial_tail_and_reads_into_spare_space() {
        let (bytes, payloads) = golden_stream();
        let mut s = FrameSplitter::new();
        let cut = bytes.len() - 5;
        let space = s.read_space();
        assert!(space.capacity() - space.len() >= READ_CHUNK);
        space.extend_from_slice(&bytes[..cut]);
        let mut got = Vec::new();
        drain(&mut s, &mut got);
        assert_eq!(got, payloads[..2]);
        assert_eq!(s.buffered(), FRAME_HEADER_LEN + payloads[2].len() - 5);
        s.read_space().extend_from_slice(&bytes[cut..]);
        drain(&mut s, &mut got);
        assert_eq!(got, payloads);
    }

    #[test]
    fn splitter_rejects_an_absurd_length_without_allocating_it() {
        let mut h = vec![0u8; FRAME_HEADER_LEN];
        h[8..12].copy_from_slice(&(MAX_FRAME_LEN + 1).to_be_bytes());
        let mut s = FrameSplitter::new();
        s.push(&h[..FRAME_HEADER_LEN - 1]);
        assert_eq!(s.next_frame(), Ok(None));
        s.push(&h[FRAME_HEADER_LEN - 1..]);
        assert!(matches!(
            s.next_frame(),
            Err(WireError::FrameTooLarge { .. })
        ));
        // A header announcing the cap with a few bytes behind it is just a partial frame.
        let mut s = FrameSplitter::new();
        h[8..12].copy_from_slice(&MAX_FRAME_LEN.to_be_bytes());
        s.push(&h);
        s.push(b"short");
        assert_eq!(s.next_frame(), Ok(None));
        assert!(s.read_space().capacity() <= 1024 * 1024);
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
