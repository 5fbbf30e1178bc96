//! The checker's backend entries: a slab indexed by slot id, plus a name index in name
//! order. The probe path (queue entries, results in flight) carries the slot id and the
//! entry's generation, so starting a probe and recording its result cost no string
//! hashing or compares; names are looked up only for operator actions, reloads and
//! readers. A freed slot is reused, and the generation (unique per entry and restart)
//! tells a stale id from the live entry.

use std::collections::BTreeMap;

use super::state::BackendEntry;

#[derive(Default)]
pub struct Backends {
    slots: Vec<Option<BackendEntry>>,
    free: Vec<u32>,
    index: BTreeMap<String, u32>,
}

impl Backends {
    /// Adds (or replaces) the entry of `name`; its slot id.
    pub(crate) fn insert(&mut self, name: String, entry: BackendEntry) -> u32 {
        if let Some(&id) = self.index.get(&name)
            && let Some(slot) = self.slots.get_mut(id as usize)
        {
            *slot = Some(entry);
            return id;
        }
        let id = match self.free.pop() {
            Some(id) => {
                if let Some(slot) = self.slots.get_mut(id as usize) {
                    *slot = Some(entry);
                }
                id
            }
            None => {
                let id = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.push(Some(entry));
                id
            }
        };
        self.index.insert(name, id);
        id
    }

    pub(crate) fn remove(&mut self, name: &str) -> Option<BackendEntry> {
        let id = self.index.remove(name)?;
        let entry = self.slots.get_mut(id as usize).and_then(Option::take);
        self.free.push(id);
        entry
    }

    pub fn id_of(&self, name: &str) -> Option<u32> {
        self.index.get(name).copied()
    }

    /// The entry in slot `id` if it is still of `generation` (else it was removed,
    /// restarted or the slot reused).
    pub(crate) fn live_mut(&mut self, id: u32, generation: u64) -> Option<&mut BackendEntry> {
        self.slots
            .get_mut(id as usize)
            .and_then(Option::as_mut)
            .filter(|e| e.generation == generation)
    }

    /// The entry in slot `id`, whatever its generation (the publish marks changes by id).
    pub(crate) fn get_by_id(&self, id: u32) -> Option<&BackendEntry> {
        self.slots.get(id as usize).and_then(Option::as_ref)
    }

    /// Slot ids in name order (the publish maps them to the snapshot's positions).
    pub(crate) fn ids(&self) -> impl Iterator<Item = u32> + '_ {
        self.index.values().copied()
    }

    /// One past the highest slot id.
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    pub fn get(&self, name: &str) -> Option<&BackendEntry> {
        let id = *self.index.get(name)?;
        self.slots.get(id as usize).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut BackendEntry> {
        let id = *self.index.get(name)?;
        self.slots.get_mut(id as usize).and_then(Option::as_mut)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// In name order.
    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.index.keys()
    }

    /// In name order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &BackendEntry)> {
        self.index.iter().filter_map(|(name, &id)| {
            self.slots
                .get(id as usize)
                .and_then(Option::as_ref)
                .map(|e| (name, e))
        })
    }

    pub fn values(&self) -> impl Iterator<Item = &BackendEntry> {
        self.iter().map(|(_, e)| e)
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

impl FromIterator<(String, BackendEntry)> for Backends {
    fn from_iter<I: IntoIterator<Item = (String, BackendEntry)>>(iter: I) -> Self {
        // Slots in the iterator's order; the index collected in one go (a name-ordered
        // input, such as the config's, is bulk-built with full nodes).
        let mut slots = Vec::new();
        let mut names = Vec::new();
        for (name, entry) in iter {
            let id = u32::try_from(slots.len()).unwrap_or(u32::MAX);
            slots.push(Some(entry));
            names.push((name, id));
        }
        Backends {
            slots,
            free: Vec::new(),
            index: names.into_iter().collect(),
        }
    }
}

impl<'a> IntoIterator for &'a Backends {
    type Item = (&'a String, &'a BackendEntry);
    type IntoIter = Box<dyn Iterator<Item = (&'a String, &'a BackendEntry)> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::SystemTime;

    use super::super::state::CheckerState;

    fn state() -> CheckerState {
        let c = "[vpp.lb]\nipv4-src-address = \"192.0.2.254\"\n\
            [healthchecks.tcp]\ntype = \"tcp\"\nport = 80\n\
            [backends.b0]\naddress = \"127.0.0.1\"\nhealthcheck = \"tcp\"\n\
            [backends.b1]\naddress = \"127.0.0.2\"\nhealthcheck = \"tcp\"\n\
            [backends.b2]\naddress = \"127.0.0.3\"\nhealthcheck = \"tcp\"\n";
        match crate::config::load_str(c, Path::new("t.toml")) {
            Ok(config) => CheckerState::new(Arc::new(config), SystemTime::UNIX_EPOCH),
            Err(e) => panic!("test config: {}", e.lines().join("\n")),
        }
    }

    #[test]
    fn a_slot_id_finds_its_entry_until_the_slot_is_reused() {
        let mut st = state();
        let b = &mut st.backends;
        let (Some(id0), Some(id1)) = (b.id_of("b0"), b.id_of("b1")) else {
            panic!("b0 and b1 have slots");
        };
        assert_ne!(id0, id1);
        let g0 = b.get("b0").map(|e| e.generation).unwrap_or_default();
        assert_eq!(
            b.live_mut(id0, g0).map(|e| e.name.to_string()),
            Some("b0".into())
        );
        // A stale generation (a restart since) finds nothing.
        assert!(b.live_mut(id0, g0 + 1_000).is_none());

        let Some(mut entry) = b.remove("b0") else {
            panic!("b0 was there");
        };
        assert!(b.live_mut(id0, g0).is_none());
        assert!(b.get("b0").is_none());
        assert_eq!(b.len(), 2);

        // A new backend takes the freed slot with a new generation: the old id and
        // generation (say, of a result still in flight) do not reach it.
        entry.generation = g0 + 1_000;
        entry.name = Arc::from("a9");
        let id = b.insert("a9".into(), entry);
        assert_eq!(id, id0);
        assert!(b.live_mut(id0, g0).is_none());
        assert_eq!(
            b.live_mut(id0, g0 + 1_000).map(|e| e.name.to_string()),
            Some("a9".into())
        );
        assert_eq!(b.id_of("a9"), Some(id0));
        // Readers still see name order.
        let names: Vec<&str> = b.keys().map(String::as_str).collect();
        assert_eq!(names, ["a9", "b1", "b2"]);
        let by_iter: Vec<&str> = b.iter().map(|(_, e)| &*e.name).collect();
        assert_eq!(by_iter, ["a9", "b1", "b2"]);
    }
}
