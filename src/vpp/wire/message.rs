//! The [`Message`] trait and the common headers (docs/vpp-wire.md §1.5): requests start with
//! `u16 id, u32 client_index, u32 context`, replies with `u16 id, u32 context, i32 retval`,
//! details with `u16 id, u32 context`. A few memclnt messages differ and have their own kind.

use super::WireError;
use super::codec::Reader;
use super::schema::{FieldDef, Shape};

/// Which header fields follow the message id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderKind {
    /// `u32 client_index, u32 context`.
    Request,
    /// `u32 context, i32 retval`.
    Reply,
    /// `u32 context` only: details messages, and `sockclnt_create`.
    ContextOnly,
    /// `u32 context, i32 response` (`sockclnt_delete_reply`).
    ContextResponse,
    /// `u32 client_index, u32 context, i32 response` (`sockclnt_create_reply`).
    ClientContextResponse,
}

const fn scalar(ty: &'static str, name: &'static str) -> FieldDef {
    FieldDef {
        ty,
        name,
        shape: Shape::Scalar,
    }
}

impl HeaderKind {
    /// The header fields as declared in the `.api` file (they count for the CRC).
    pub const fn fields(self) -> &'static [FieldDef] {
        const REQUEST: &[FieldDef] = &[scalar("u32", "client_index"), scalar("u32", "context")];
        const REPLY: &[FieldDef] = &[scalar("u32", "context"), scalar("i32", "retval")];
        const CONTEXT: &[FieldDef] = &[scalar("u32", "context")];
        const RESPONSE: &[FieldDef] = &[scalar("u32", "context"), scalar("i32", "response")];
        const CREATE_REPLY: &[FieldDef] = &[
            scalar("u32", "client_index"),
            scalar("u32", "context"),
            scalar("i32", "response"),
        ];
        match self {
            HeaderKind::Request => REQUEST,
            HeaderKind::Reply => REPLY,
            HeaderKind::ContextOnly => CONTEXT,
            HeaderKind::ContextResponse => RESPONSE,
            HeaderKind::ClientContextResponse => CREATE_REPLY,
        }
    }

    /// Offset of `context` in the payload.
    pub const fn context_offset(self) -> usize {
        match self {
            HeaderKind::Request | HeaderKind::ClientContextResponse => 6,
            HeaderKind::Reply | HeaderKind::ContextOnly | HeaderKind::ContextResponse => 2,
        }
    }
}

/// The decoded common header. Fields a kind does not carry are zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Header {
    pub msg_id: u16,
    pub client_index: u32,
    pub context: u32,
    /// `retval` of replies, or `response` for the two memclnt socket replies.
    pub retval: i32,
}

/// A VPP API message with a fixed name, CRC and field list.
pub trait Message: Sized {
    /// Message name as in the `.api` file (`lb_add_del_vip_v2`).
    const NAME: &'static str;
    /// CRC as exactly 8 lowercase hex digits (`7c520e0f`).
    const CRC: &'static str;
    const HEADER: HeaderKind;
    /// Fields after the header, as declared in the `.api` file.
    const FIELDS: &'static [FieldDef];

    fn encode_body(&self, buf: &mut Vec<u8>);
    fn decode_body(r: &mut Reader<'_>) -> Result<Self, WireError>;

    /// The message-table key, `"<name>_<crc>"`.
    fn name_crc() -> String {
        format!("{}_{}", Self::NAME, Self::CRC)
    }
}

/// Encodes `msg` with the header fields its kind carries, taken from `header`.
pub fn encode_message<M: Message>(header: &Header, msg: &M) -> Vec<u8> {
    let mut buf = Vec::with_capacity(64);
    buf.extend_from_slice(&header.msg_id.to_be_bytes());
    match M::HEADER {
        HeaderKind::Request => {
            buf.extend_from_slice(&header.client_index.to_be_bytes());
            buf.extend_from_slice(&header.context.to_be_bytes());
        }
        HeaderKind::Reply | HeaderKind::ContextResponse => {
            buf.extend_from_slice(&header.context.to_be_bytes());
            buf.extend_from_slice(&header.retval.to_be_bytes());
        }
        HeaderKind::ContextOnly => buf.extend_from_slice(&header.context.to_be_bytes()),
        HeaderKind::ClientContextResponse => {
            buf.extend_from_slice(&header.client_index.to_be_bytes());
            buf.extend_from_slice(&header.context.to_be_bytes());
            buf.extend_from_slice(&header.retval.to_be_bytes());
        }
    }
    msg.encode_body(&mut buf);
    buf
}

/// Decodes the header and body of `M`. Trailing bytes are ignored, as VPP does.
/// The message id is returned in the header, not checked: ids are per connection.
pub fn decode_message<M: Message>(payload: &[u8]) -> Result<(Header, M), WireError> {
    let mut r = Reader::new(payload);
    let mut header = Header {
        msg_id: r.u16()?,
        ..Header::default()
    };
    match M::HEADER {
        HeaderKind::Request => {
            header.client_index = r.u32()?;
            header.context = r.u32()?;
        }
        HeaderKind::Reply | HeaderKind::ContextResponse => {
            header.context = r.u32()?;
            header.retval = r.i32()?;
        }
        HeaderKind::ContextOnly => header.context = r.u32()?,
        HeaderKind::ClientContextResponse => {
            header.client_index = r.u32()?;
            header.context = r.u32()?;
            header.retval = r.i32()?;
        }
    }
    let body = M::decode_body(&mut r)?;
    Ok((header, body))
}

/// The message id of a payload.
pub fn peek_msg_id(payload: &[u8]) -> Result<u16, WireError> {
    Reader::new(payload).u16()
}

/// The context of a payload whose header kind is `kind`.
pub fn peek_context(payload: &[u8], kind: HeaderKind) -> Result<u32, WireError> {
    let mut r = Reader::new(payload);
    r.take(kind.context_offset())?;
    r.u32()
}
