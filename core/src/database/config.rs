//! The configuration number, advertised as `c#`.
//!
//! Controllers re-read `/accessories` when `c#` changes, so it must change whenever the
//! database's shape does (an accessory, service or characteristic added or removed, or
//! one's type, format or permissions changed) and never otherwise. It also changes with
//! an accessory's Firmware Revision, as HomeKitADK's does after a firmware update:
//! controllers cache that value too. The database feeds both into a [`ShapeDigest`];
//! [`ConfigNumber::observe`] compares the digest with the stored one and bumps the number
//! when they differ. Both are plain data to persist.

use sha2::{Digest, Sha512};

use crate::catalog::{Format, HapType, Perms};

/// The configuration number and the shape it describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigNumber {
    /// The number, 1 to 65535.
    pub number: u16,
    /// The first 16 bytes of the digest of the shape this number was issued for.
    pub shape: [u8; 16],
}

impl Default for ConfigNumber {
    /// Number 1, for no shape yet.
    fn default() -> Self {
        Self {
            number: 1,
            shape: [0; 16],
        }
    }
}

impl ConfigNumber {
    /// Records the database's current shape. Returns whether the number changed, in which
    /// case the caller persists it and re-announces mDNS.
    pub fn observe(&mut self, shape: ShapeDigest) -> bool {
        let digest = shape.finish();
        if digest == self.shape {
            return false;
        }
        let first = self.shape == [0; 16];
        self.shape = digest;
        if !first {
            // 65535 wraps to 1: 0 is not a valid configuration number.
            self.number = self.number.checked_add(1).unwrap_or(1);
        }
        true
    }
}

/// Accumulates the shape of a database: every accessory, service and characteristic in
/// order, with what controllers cache about them. Values are not part of the shape, but
/// for each accessory's Firmware Revision.
#[derive(Clone, Debug, Default)]
pub struct ShapeDigest(Sha512);

impl ShapeDigest {
    /// An empty shape.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an accessory.
    pub fn accessory(&mut self, aid: u64) {
        self.0.update([b'A']);
        self.0.update(aid.to_le_bytes());
    }

    /// Adds a service of the last accessory.
    pub fn service(&mut self, iid: u64, ty: HapType, primary: bool, hidden: bool) {
        self.0.update([b'S', u8::from(primary), u8::from(hidden)]);
        self.0.update(iid.to_le_bytes());
        self.0.update(ty.uuid_bytes());
    }

    /// Adds a link from the last service to the service `iid`.
    pub fn link(&mut self, iid: u64) {
        self.0.update([b'L']);
        self.0.update(iid.to_le_bytes());
    }

    /// Adds a characteristic of the last service.
    pub fn characteristic(&mut self, iid: u64, ty: HapType, format: Format, perms: Perms) {
        self.0.update([b'C']);
        self.0.update(iid.to_le_bytes());
        self.0.update(ty.uuid_bytes());
        self.0.update(format.as_str().as_bytes());
        self.0.update([0, perms.bits()]);
    }

    /// Adds the Firmware Revision of the last accessory: the one value that is part of
    /// the digest, so that a firmware update raises the number.
    pub fn firmware_revision(&mut self, revision: &str) {
        self.0.update([b'F']);
        self.0.update((revision.len() as u64).to_le_bytes());
        self.0.update(revision.as_bytes());
    }

    fn finish(self) -> [u8; 16] {
        let digest = self.0.finalize();
        let mut out = [0u8; 16];
        out.copy_from_slice(&digest[..16]);
        // All zeros means "no shape yet"; a real digest never lands there in practice,
        // but make sure.
        if out == [0; 16] {
            out[0] = 1;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{characteristic as c, service as s};

    fn light(with_brightness: bool) -> ShapeDigest {
        let mut shape = ShapeDigest::new();
        shape.accessory(1);
        shape.service(1, s::ACCESSORY_INFORMATION.uuid, false, false);
        shape.characteristic(2, c::NAME.uuid, c::NAME.format, c::NAME.perms);
        shape.service(8, s::LIGHTBULB.uuid, true, false);
        shape.characteristic(9, c::ON.uuid, c::ON.format, c::ON.perms);
        if with_brightness {
            shape.characteristic(
                10,
                c::BRIGHTNESS.uuid,
                c::BRIGHTNESS.format,
                c::BRIGHTNESS.perms,
            );
        }
        shape
    }

    #[test]
    fn the_number_changes_with_the_shape_only() {
        let mut config = ConfigNumber::default();
        assert!(config.observe(light(false)), "the first shape is recorded");
        assert_eq!(config.number, 1);
        assert!(
            !config.observe(light(false)),
            "the same shape after a restart"
        );
        assert_eq!(config.number, 1);
        assert!(config.observe(light(true)));
        assert_eq!(config.number, 2);
        assert!(config.observe(light(false)));
        assert_eq!(config.number, 3);
    }

    #[test]
    fn permissions_and_flags_are_part_of_the_shape() {
        let mut base = ConfigNumber::default();
        base.observe(light(false));
        let mut changed = light(false);
        changed.characteristic(11, c::HUE.uuid, c::HUE.format, Perms::READ);
        let mut config = base;
        assert!(config.observe(changed));
        let mut hidden = ShapeDigest::new();
        hidden.accessory(1);
        hidden.service(1, s::ACCESSORY_INFORMATION.uuid, false, true);
        let mut visible = ShapeDigest::new();
        visible.accessory(1);
        visible.service(1, s::ACCESSORY_INFORMATION.uuid, false, false);
        assert_ne!(hidden.finish(), visible.finish());
    }

    #[test]
    fn the_firmware_revision_is_part_of_the_digest() {
        let with = |revision: &str| {
            let mut shape = light(false);
            shape.firmware_revision(revision);
            shape
        };
        let mut config = ConfigNumber::default();
        config.observe(with("1.0"));
        assert!(!config.observe(with("1.0")));
        assert!(config.observe(with("1.0.1")));
        assert_eq!(config.number, 2);
        // Its length is hashed too: "1.0" then "1" differs from "1.01".
        let mut split = light(false);
        split.firmware_revision("1.0");
        split.firmware_revision("1");
        let mut joined = light(false);
        joined.firmware_revision("1.01");
        assert_ne!(split.finish(), joined.finish());
    }

    #[test]
    fn the_number_wraps_from_65535_to_1() {
        let mut config = ConfigNumber {
            number: u16::MAX,
            shape: [7; 16],
        };
        assert!(config.observe(light(true)));
        assert_eq!(config.number, 1);
    }
}
