//! Stable accessory ids (aid) and instance ids (iid).
//!
//! Controllers keep rooms, scenes and automations by aid and iid, so an id must never
//! change for the same thing, across restarts and across configuration changes; unstable
//! ids are how HAP-python (#384) and Home Assistant (#81509) lost users' setups. The
//! [`IdMap`] assigns ids by keys the application chooses: a key per accessory (a serial
//! number, say), and per service its type plus a subtype for duplicates. Ids are never
//! reused: an accessory that leaves and comes back gets its old ids, and a new one gets
//! fresh ids.
//!
//! The map is plain data that the caller persists alongside the accessory state; ask
//! [`IdMap::take_changed`] after building the database. It needs a heap. Without one,
//! assign ids statically, as HomeKitADK requires.

use alloc::string::String;
use alloc::vec::Vec;

use crate::catalog::HapType;

/// What an instance id belongs to: a service, or one characteristic of a service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceKey {
    /// The service's type.
    pub service: HapType,
    /// Distinguishes services of the same type on one accessory (such as the outlets of
    /// a power strip); empty when there is only one.
    pub subtype: String,
    /// The characteristic's type, or `None` for the service itself.
    pub characteristic: Option<HapType>,
}

impl InstanceKey {
    fn matches(&self, service: HapType, subtype: &str, characteristic: Option<HapType>) -> bool {
        self.service == service && self.subtype == subtype && self.characteristic == characteristic
    }
}

/// The ids of one accessory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessoryIds {
    /// The application's key for the accessory.
    pub key: String,
    /// Its accessory id.
    pub aid: u64,
    /// The next instance id to hand out.
    pub next_iid: u64,
    /// Instance ids handed out so far.
    pub instances: Vec<(InstanceKey, u64)>,
}

/// Every id handed out, for as long as the accessory lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdMap {
    /// The next accessory id to hand out. Starts at 1, the bridge's or the single
    /// accessory's id.
    pub next_aid: u64,
    /// Ids per accessory, in the order they were first seen.
    pub accessories: Vec<AccessoryIds>,
    /// Whether ids were handed out since [`IdMap::take_changed`]; not persisted.
    changed: bool,
}

impl Default for IdMap {
    fn default() -> Self {
        Self {
            next_aid: 1,
            accessories: Vec::new(),
            changed: false,
        }
    }
}

impl IdMap {
    /// An empty map; the first accessory asked for gets aid 1.
    pub fn new() -> Self {
        Self::default()
    }

    /// A map restored from persisted parts.
    pub fn from_parts(next_aid: u64, accessories: Vec<AccessoryIds>) -> Self {
        Self {
            next_aid,
            accessories,
            changed: false,
        }
    }

    /// The aid for the accessory with key `accessory`, handing out a new one the first
    /// time. Register the bridge first so that it gets aid 1.
    pub fn aid(&mut self, accessory: &str) -> u64 {
        if let Some(ids) = self.accessories.iter().find(|a| a.key == accessory) {
            return ids.aid;
        }
        let aid = self.next_aid;
        self.next_aid += 1;
        self.accessories.push(AccessoryIds {
            key: accessory.into(),
            aid,
            next_iid: 1,
            instances: Vec::new(),
        });
        self.changed = true;
        aid
    }

    /// The iid of a service (`characteristic` is `None`) or of one of its
    /// characteristics, on accessory `aid`, handing out a new one the first time. `None`
    /// if `aid` was never handed out.
    pub fn iid(
        &mut self,
        aid: u64,
        service: HapType,
        subtype: &str,
        characteristic: Option<HapType>,
    ) -> Option<u64> {
        let ids = self.accessories.iter_mut().find(|a| a.aid == aid)?;
        if let Some((_, iid)) = ids
            .instances
            .iter()
            .find(|(key, _)| key.matches(service, subtype, characteristic))
        {
            return Some(*iid);
        }
        let iid = ids.next_iid;
        ids.next_iid += 1;
        let key = InstanceKey {
            service,
            subtype: subtype.into(),
            characteristic,
        };
        ids.instances.push((key, iid));
        self.changed = true;
        Some(iid)
    }

    /// Forgets an accessory for good, so that the map does not grow with accessories
    /// that will never return. Its ids are still never reused.
    pub fn forget(&mut self, accessory: &str) {
        let before = self.accessories.len();
        self.accessories.retain(|a| a.key != accessory);
        self.changed |= self.accessories.len() != before;
    }

    /// Whether ids were handed out or forgotten since the last call: if so, persist the
    /// map before serving the database that uses them.
    pub fn take_changed(&mut self) -> bool {
        core::mem::take(&mut self.changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{characteristic as c, service as s};
    use std::format;
    use std::vec::Vec;

    /// Ids for a bridge and `lights`, each with accessory information and a lightbulb.
    fn build(map: &mut IdMap, lights: &[usize]) -> Vec<(u64, [u64; 4])> {
        let mut out = vec_of(map, "bridge");
        for n in lights {
            out.extend(vec_of(map, &format!("light-{n}")));
        }
        out
    }

    fn vec_of(map: &mut IdMap, key: &str) -> Vec<(u64, [u64; 4])> {
        let aid = map.aid(key);
        let ids = [
            map.iid(aid, s::ACCESSORY_INFORMATION.uuid, "", None)
                .unwrap(),
            map.iid(aid, s::ACCESSORY_INFORMATION.uuid, "", Some(c::NAME.uuid))
                .unwrap(),
            map.iid(aid, s::LIGHTBULB.uuid, "", None).unwrap(),
            map.iid(aid, s::LIGHTBULB.uuid, "", Some(c::ON.uuid))
                .unwrap(),
        ];
        std::vec![(aid, ids)]
    }

    #[test]
    fn ids_start_at_one_and_count_up() {
        let mut map = IdMap::new();
        let ids = build(&mut map, &[0]);
        assert_eq!(ids, [(1, [1, 2, 3, 4]), (2, [1, 2, 3, 4])]);
        assert!(map.take_changed());
        assert!(!map.take_changed());
    }

    #[test]
    fn ids_survive_restart_and_removal_in_the_middle() {
        let all: Vec<usize> = (1..150).collect();
        let mut map = IdMap::new();
        let first = build(&mut map, &all);
        assert_eq!(first.len(), 150);
        let mut aids: Vec<u64> = first.iter().map(|(aid, _)| *aid).collect();
        aids.dedup();
        assert_eq!(aids.len(), 150, "aids are unique");

        // A restart: the map comes back from its persisted parts.
        let mut restored = IdMap::from_parts(map.next_aid, map.accessories.clone());
        assert_eq!(build(&mut restored, &all), first);
        assert!(!restored.take_changed(), "nothing new was handed out");

        // Light 75 leaves: everyone else keeps their ids.
        let without: Vec<usize> = all.iter().copied().filter(|n| *n != 75).collect();
        let mut expected = first.clone();
        expected.remove(75);
        assert_eq!(build(&mut restored, &without), expected);

        // A new light gets a fresh aid, and light 75 returns with its old one.
        let newcomer = vec_of(&mut restored, "light-new")[0].0;
        assert_eq!(newcomer, 151);
        assert_eq!(vec_of(&mut restored, "light-75"), std::vec![first[75]]);
    }

    #[test]
    fn services_of_the_same_type_are_told_apart_by_subtype() {
        let mut map = IdMap::new();
        let aid = map.aid("strip");
        let one = map.iid(aid, s::OUTLET.uuid, "1", None).unwrap();
        let two = map.iid(aid, s::OUTLET.uuid, "2", None).unwrap();
        assert_ne!(one, two);
        assert_eq!(map.iid(aid, s::OUTLET.uuid, "1", None), Some(one));
        assert_eq!(map.iid(99, s::OUTLET.uuid, "1", None), None);
    }

    #[test]
    fn forgotten_ids_are_not_reused() {
        let mut map = IdMap::new();
        build(&mut map, &[1, 2]);
        map.take_changed();
        map.forget("light-1");
        assert!(map.take_changed());
        assert_eq!(
            map.aid("light-1"),
            4,
            "a forgotten accessory comes back as a new one"
        );
        assert_eq!(map.aid("light-2"), 3);
    }
}
