//! VPP binary-API wire format: socket framing, big-endian packed-struct codec, the
//! common message headers and the schema (field lists) each message carries for CRC
//! checks and vpp-papi JSON. Facts: docs/vpp-wire.md §1.2, §1.5, §2.

mod codec;
mod frame;
mod message;
pub mod schema;
mod types;

pub use codec::{Reader, WireType, decode_counted};
pub use frame::{
    FRAME_HEADER_LEN, FrameError, FrameSplitter, MAX_FRAME_LEN, READ_CHUNK, encode_frame,
    parse_frame_header, read_frame, write_frame,
};
pub use message::{
    Header, HeaderKind, Message, decode_message, encode_message, peek_context, peek_msg_id,
};
pub use types::{
    EncapType, FixedString, InterfaceIndex, IpDscp, IpProto, LbVip, MessageTableEntry,
    ModuleVersion, Prefix, PrefixMatcher, SrvType, VlaString,
};

/// Why bytes could not be turned into a message (or a frame).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The payload ended before the field being read.
    #[error(
        "message truncated: needed {needed} more bytes at offset {offset}, {available} available"
    )]
    Truncated {
        offset: usize,
        needed: usize,
        available: usize,
    },
    /// A frame header announced more than [`MAX_FRAME_LEN`] bytes: the stream is corrupt.
    #[error("frame length {len} exceeds the {max} byte cap (corrupt stream)")]
    FrameTooLarge { len: u32, max: u32 },
    /// A field holds a value the type cannot represent (e.g. address family 7).
    #[error("invalid {what}: {value}")]
    InvalidValue { what: &'static str, value: u64 },
    /// A VLA count field is larger than the bytes left could possibly hold.
    #[error("count {count} for {what} exceeds the {available} bytes left")]
    CountTooLarge {
        what: &'static str,
        count: usize,
        available: usize,
    },
    /// The payload is a different message than the one asked for.
    #[error("expected message id {expected}, got {got}")]
    UnexpectedMessageId { expected: u16, got: u16 },
}
