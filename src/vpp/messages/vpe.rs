//! vpe.api / vlib.api: version and CLI (docs/vpp-wire.md §1.11).

use super::{message, replies};
use crate::vpp::wire::schema::MessageDef;
use crate::vpp::wire::{FixedString, VlaString};

message! {
    ShowVersion = "show_version", crc "51077d14", Request {}
}
message! {
    ShowVersionReply = "show_version_reply", crc "c919bde1", Reply {
        program: FixedString<32>,
        version: FixedString<32>,
        build_date: FixedString<32>,
        build_directory: FixedString<256>,
    }
}
message! {
    /// Runs a debug CLI command; mp-safe in VPP.
    CliInband = "cli_inband", crc "f8377302", Request { cmd: VlaString }
}
message! {
    /// A failing command has a non-zero retval *and* the error text in `reply`.
    CliInbandReply = "cli_inband_reply", crc "05879051", Reply { reply: VlaString }
}

replies! {
    ShowVersion => ShowVersionReply,
    CliInband => CliInbandReply,
}

pub(crate) fn definitions() -> Vec<MessageDef> {
    vec![
        MessageDef::of::<ShowVersion>(),
        MessageDef::of::<ShowVersionReply>(),
        MessageDef::of::<CliInband>(),
        MessageDef::of::<CliInbandReply>(),
    ]
}
