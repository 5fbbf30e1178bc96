//! memclnt.api: socket client registration, ping and keepalive (docs/vpp-wire.md §1.3–§1.8).

use serde::Serialize;

use super::{dumps, message, replies};
use crate::vpp::wire::schema::{FieldDef, MessageDef};
use crate::vpp::wire::{
    FixedString, HeaderKind, Message, MessageTableEntry, ModuleVersion, Reader, VlaString,
    WireError, WireType, decode_counted,
};

/// Fixed ids of memclnt messages (declaration order in memclnt.api); only
/// `sockclnt_create` must be sent by its fixed id, the rest are looked up anyway.
pub const SOCKCLNT_CREATE_ID: u16 = 15;
pub const SOCKCLNT_CREATE_REPLY_ID: u16 = 16;

message! {
    /// Registers a socket client. The only message without `client_index`.
    SockclntCreate = "sockclnt_create", crc "455fb9c4", ContextOnly {
        name: FixedString<64>,
    }
}

/// `sockclnt_create_reply`: the client handle and the full `name_crc -> id` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SockclntCreateReply {
    /// Handle to use as `client_index` from now on (`0x80000000 | pool index`).
    pub index: u32,
    pub count: u16,
    pub message_table: Vec<MessageTableEntry>,
}

impl SockclntCreateReply {
    pub fn new(index: u32, message_table: Vec<MessageTableEntry>) -> Self {
        Self {
            index,
            count: u16::try_from(message_table.len()).unwrap_or(u16::MAX),
            message_table,
        }
    }
}

impl Message for SockclntCreateReply {
    const NAME: &'static str = "sockclnt_create_reply";
    const CRC: &'static str = "35166268";
    const HEADER: HeaderKind = HeaderKind::ClientContextResponse;
    const FIELDS: &'static [FieldDef] = &[
        FieldDef::of::<u32>("index"),
        FieldDef::of::<u16>("count"),
        FieldDef::counted("vl_api_message_table_entry_t", "message_table", "count"),
    ];

    fn encode_body(&self, buf: &mut Vec<u8>) {
        self.index.encode(buf);
        self.count.encode(buf);
        for entry in self.message_table.iter().take(usize::from(self.count)) {
            entry.encode(buf);
        }
    }

    fn decode_body(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let index = r.u32()?;
        let count = r.u16()?;
        let message_table = decode_counted(r, usize::from(count), "message_table")?;
        Ok(Self {
            index,
            count,
            message_table,
        })
    }
}

message! {
    /// Unregisters the client; `index` is the handle again.
    SockclntDelete = "sockclnt_delete", crc "8ac76db6", Request { index: u32 }
}
message! {
    /// `response` (in the header's retval slot) is 1 on success.
    SockclntDeleteReply = "sockclnt_delete_reply", crc "8f38b1ee", ContextResponse {}
}
message! {
    ControlPing = "control_ping", crc "51077d14", Request {}
}
message! {
    /// `vpe_pid` changes when VPP restarts.
    ControlPingReply = "control_ping_reply", crc "f6b0b8ca", Reply {
        client_index: u32,
        vpe_pid: u32,
    }
}
message! {
    /// Sent by VPP to shared-memory clients; answered if it ever arrives on the socket.
    MemclntKeepalive = "memclnt_keepalive", crc "51077d14", Request {}
}
message! {
    MemclntKeepaliveReply = "memclnt_keepalive_reply", crc "e8d4e804", Reply {}
}
message! {
    ApiVersions = "api_versions", crc "51077d14", Request {}
}

/// `api_versions_reply`: version of every loaded API module.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiVersionsReply {
    pub count: u32,
    pub api_versions: Vec<ModuleVersion>,
}

impl Message for ApiVersionsReply {
    const NAME: &'static str = "api_versions_reply";
    const CRC: &'static str = "5f0d99d6";
    const HEADER: HeaderKind = HeaderKind::Reply;
    const FIELDS: &'static [FieldDef] = &[
        FieldDef::of::<u32>("count"),
        FieldDef::counted("vl_api_module_version_t", "api_versions", "count"),
    ];

    fn encode_body(&self, buf: &mut Vec<u8>) {
        self.count.encode(buf);
        for v in self.api_versions.iter().take(self.count as usize) {
            v.encode(buf);
        }
    }

    fn decode_body(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let count = r.u32()?;
        let api_versions = decode_counted(r, count as usize, "api_versions")?;
        Ok(Self {
            count,
            api_versions,
        })
    }
}

message! {
    GetApiJson = "get_api_json", crc "51077d14", Request {}
}
message! {
    /// Every loaded API definition as JSON (VPP >= 24.06).
    GetApiJsonReply = "get_api_json_reply", crc "ea715b59", Reply { json: VlaString }
}

replies! {
    SockclntCreate => SockclntCreateReply,
    SockclntDelete => SockclntDeleteReply,
    ControlPing => ControlPingReply,
    MemclntKeepalive => MemclntKeepaliveReply,
    ApiVersions => ApiVersionsReply,
    GetApiJson => GetApiJsonReply,
}
dumps! {}

pub(crate) fn definitions() -> Vec<MessageDef> {
    vec![
        MessageDef::of::<SockclntCreate>(),
        MessageDef::of::<SockclntCreateReply>(),
        MessageDef::of::<SockclntDelete>(),
        MessageDef::of::<SockclntDeleteReply>(),
        MessageDef::of::<ControlPing>(),
        MessageDef::of::<ControlPingReply>(),
        MessageDef::of::<MemclntKeepalive>(),
        MessageDef::of::<MemclntKeepaliveReply>(),
        MessageDef::of::<ApiVersions>(),
        MessageDef::of::<ApiVersionsReply>(),
        MessageDef::of::<GetApiJson>(),
        MessageDef::of::<GetApiJsonReply>(),
    ]
}
