//! The per-connection message table and lb API generation detection
//! (docs/vpp-wire.md §1.4, §3.5).

use std::collections::HashMap;

use crate::vpp::messages::lb::{LbAddDelVipV2, LbConfGet};
use crate::vpp::wire::{Message, MessageTableEntry};

/// `name_crc -> id` as announced by `sockclnt_create_reply`. Valid for one connection only.
#[derive(Debug, Clone, Default)]
pub struct MessageTable {
    by_name: HashMap<String, u16>,
    by_id: HashMap<u16, String>,
}

impl MessageTable {
    pub fn from_entries(entries: &[MessageTableEntry]) -> Self {
        let mut table = Self::default();
        for entry in entries {
            // govpp also trims a trailing 0x13 some builds leave in the name.
            let name = entry.name.as_str().trim_end_matches('\u{13}').to_string();
            table.by_id.insert(entry.index, name.clone());
            table.by_name.insert(name, entry.index);
        }
        table
    }

    /// Id of an exact `"<name>_<crc>"` key.
    pub fn id(&self, name_crc: &str) -> Option<u16> {
        self.by_name.get(name_crc).copied()
    }

    /// Id of message `M` on this connection.
    pub fn id_of<M: Message>(&self) -> Option<u16> {
        self.id(&M::name_crc())
    }

    pub fn contains<M: Message>(&self) -> bool {
        self.id_of::<M>().is_some()
    }

    /// The `name_crc` registered under `id`.
    pub fn name(&self, id: u16) -> Option<&str> {
        self.by_id.get(&id).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// Which lb plugin API the running VPP offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LbApiGeneration {
    /// lb API 1.2.0 (master / 26.10+): fixed handlers, `lb_conf_get`, AS weights.
    Weighted,
    /// lb API 1.1.0 (23.02–26.06): handler quirks (IPv4 `len + 96`, GRE4 only), no weights.
    Legacy,
    /// No usable lb plugin (not loaded, or older than 23.02).
    Absent,
}

impl LbApiGeneration {
    pub fn detect(table: &MessageTable) -> Self {
        if table.contains::<LbConfGet>() {
            LbApiGeneration::Weighted
        } else if table.contains::<LbAddDelVipV2>() {
            LbApiGeneration::Legacy
        } else {
            LbApiGeneration::Absent
        }
    }

    pub fn has_weights(self) -> bool {
        self == LbApiGeneration::Weighted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vpp::wire::FixedString;

    fn entry(index: u16, name: &str) -> MessageTableEntry {
        MessageTableEntry {
            index,
            name: FixedString::new(name),
        }
    }

    #[test]
    fn generation_follows_the_table() {
        let weighted = MessageTable::from_entries(&[
            entry(600, "lb_conf_get_51077d14"),
            entry(601, "lb_add_del_vip_v2_7c520e0f"),
        ]);
        assert_eq!(
            LbApiGeneration::detect(&weighted),
            LbApiGeneration::Weighted
        );
        let legacy = MessageTable::from_entries(&[entry(601, "lb_add_del_vip_v2_7c520e0f")]);
        assert_eq!(LbApiGeneration::detect(&legacy), LbApiGeneration::Legacy);
        // Same name, other CRC: not the message we know.
        let other = MessageTable::from_entries(&[entry(601, "lb_add_del_vip_v2_deadbeef")]);
        assert_eq!(LbApiGeneration::detect(&other), LbApiGeneration::Absent);
    }

    #[test]
    fn trailing_control_char_is_trimmed() {
        let t = MessageTable::from_entries(&[entry(23, "control_ping_51077d14\u{13}")]);
        assert_eq!(t.id("control_ping_51077d14"), Some(23));
        assert_eq!(t.name(23), Some("control_ping_51077d14"));
    }
}
