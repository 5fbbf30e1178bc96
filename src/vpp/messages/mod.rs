//! Typed VPP API messages: memclnt (socket handshake, ping), vpe/vlib (version, CLI) and
//! every lb plugin message of API 1.1.0 and 1.2.0, and ip_route_lookup (docs/vpp-wire.md §1.11,
//! §3.3, §4.6, Appendix B).
//! Each type carries its `.api` name, CRC and field list; the codec is generated from the
//! same field list, so the CRC test also guards the wire layout.

pub mod ip;
pub mod lb;
pub mod memclnt;
pub mod vpe;

use crate::vpp::wire::Message;
use crate::vpp::wire::schema::MessageDef;

/// A request answered by exactly one reply.
pub trait Request: Message {
    type Reply: Message;
}

/// A dump answered by zero or more details, ended by `control_ping_reply`.
pub trait Dump: Message {
    type Details: Message;
}

/// Defines a message struct whose codec follows its field list.
macro_rules! message {
    (
        $(#[$meta:meta])*
        $name:ident = $api:literal, crc $crc:literal, $kind:ident {
            $( $(#[$fmeta:meta])* $field:ident $(as $rename:literal)? : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
        pub struct $name {
            $( $(#[$fmeta])* $(#[serde(rename = $rename)])? pub $field: $ty, )*
        }

        impl $crate::vpp::wire::Message for $name {
            const NAME: &'static str = $api;
            const CRC: &'static str = $crc;
            const HEADER: $crate::vpp::wire::HeaderKind = $crate::vpp::wire::HeaderKind::$kind;
            const FIELDS: &'static [$crate::vpp::wire::schema::FieldDef] = &[
                $( $crate::vpp::wire::schema::FieldDef::of::<$ty>(
                    $crate::vpp::messages::api_field_name!($field $(, $rename)?)
                ), )*
            ];

            #[allow(unused_variables)]
            fn encode_body(&self, buf: &mut Vec<u8>) {
                $( $crate::vpp::wire::WireType::encode(&self.$field, buf); )*
            }

            #[allow(unused_variables)]
            fn decode_body(
                r: &mut $crate::vpp::wire::Reader<'_>,
            ) -> Result<Self, $crate::vpp::wire::WireError> {
                Ok(Self { $( $field: <$ty as $crate::vpp::wire::WireType>::decode(r)?, )* })
            }
        }
    };
}

/// The `.api` spelling of a field: its Rust name unless renamed (`srv_type as "type"`).
macro_rules! api_field_name {
    ($field:ident) => {
        stringify!($field)
    };
    ($field:ident, $rename:literal) => {
        $rename
    };
}

/// Declares the reply (or details) type of requests (or dumps).
macro_rules! replies {
    ($($req:ty => $rep:ty),* $(,)?) => {
        $( impl $crate::vpp::messages::Request for $req { type Reply = $rep; } )*
    };
}

macro_rules! dumps {
    ($($req:ty => $det:ty),* $(,)?) => {
        $( impl $crate::vpp::messages::Dump for $req { type Details = $det; } )*
    };
}

pub(crate) use {api_field_name, dumps, message, replies};

/// Every message this crate knows, for the CRC test and vpp-papi JSON emission.
pub fn all_messages() -> Vec<MessageDef> {
    let mut out = memclnt::definitions();
    out.extend(vpe::definitions());
    out.extend(lb::definitions());
    out.extend(ip::definitions());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vpp::wire::schema::compute_crc;

    #[test]
    fn every_crc_matches_its_field_list() {
        let all = all_messages();
        assert!(all.len() >= 40, "only {} messages", all.len());
        for def in all {
            let computed = compute_crc(&def).unwrap();
            assert_eq!(
                format!("{computed:08x}"),
                def.crc,
                "{}: field list does not hash to the declared CRC",
                def.name
            );
        }
    }

    #[test]
    fn names_are_unique() {
        let all = all_messages();
        let mut names: Vec<_> = all.iter().map(|d| d.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }
}

#[cfg(test)]
mod golden_tests;
