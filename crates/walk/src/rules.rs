//! The id rules of a migration (shift / reown / auto, and the inverse shift of a rollback):
//! what each uid and gid of an inode becomes, and the ids inside ACLs and capabilities.
//! Pure decisions; the actions in `action/` carry them out.
use super::xattr::{self, AclRemap};
use isolate_model::ids::{Mapping, Shift};
use isolate_model::migration::MigrateMode;

/// What happens to one id (a uid or a gid) of one inode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// In the source mapping: moves to the same container id in the target mapping.
    Shift(u32),
    /// Becomes the target owner (container root); the original is journalled.
    Reown(u32),
    /// Already where it should be.
    Already,
    /// Outside the source mapping and not reowned: stays.
    Outside,
}

impl Decision {
    pub fn new_id(self, old: u32) -> u32 {
        match self {
            Decision::Shift(id) | Decision::Reown(id) => id,
            Decision::Already | Decision::Outside => old,
        }
    }
}

/// The id rule of one direction (uid or gid).
#[derive(Clone, Debug)]
pub struct IdRule {
    pub from: Mapping,
    pub to: Mapping,
    pub mode: MigrateMode,
    pub target: u32,
}

impl IdRule {
    pub fn decide(&self, id: u32) -> Decision {
        match self.mode {
            MigrateMode::Reown if id == self.target => Decision::Already,
            MigrateMode::Reown => Decision::Reown(self.target),
            MigrateMode::Shift | MigrateMode::Auto => {
                if let Some(c) = self.from.to_container(id) {
                    match self.to.to_host(c) {
                        Some(h) => Decision::Shift(h),
                        // The target mapping is smaller than the source: the container
                        // could not see this id after the move either.
                        None => Decision::Outside,
                    }
                } else if self.to.contains_host(id) {
                    Decision::Already
                } else if self.mode == MigrateMode::Auto {
                    Decision::Reown(self.target)
                } else {
                    Decision::Outside
                }
            }
        }
    }

    /// The rule for ids inside attributes (ACL entries, capability rootids): shift only.
    /// Reowning them would merge distinct entries; ids outside the mapping name host users
    /// and groups, which stay who they are.
    pub fn shift_only(&self, id: u32) -> u32 {
        self.from
            .to_container(id)
            .and_then(|c| self.to.to_host(c))
            .unwrap_or(id)
    }
}

/// Both directions' rules.
#[derive(Clone, Debug)]
pub struct Rules {
    pub uid: IdRule,
    pub gid: IdRule,
}

impl Rules {
    pub fn new(shift: &Shift, mode: MigrateMode, target_uid: u32, target_gid: u32) -> Rules {
        Rules {
            uid: IdRule {
                from: shift.from.uid.clone(),
                to: shift.to.uid.clone(),
                mode,
                target: target_uid,
            },
            gid: IdRule {
                from: shift.from.gid.clone(),
                to: shift.to.gid.clone(),
                mode,
                target: target_gid,
            },
        }
    }

    /// Whether any named id of an ACL lies in the source mapping (still to be moved).
    pub fn acl_pending(&self, value: &[u8]) -> bool {
        xattr::acl_ids(value).into_iter().any(|(user, id)| {
            let rule = if user { &self.uid } else { &self.gid };
            rule.from.to_container(id).is_some() && rule.shift_only(id) != id
        })
    }

    /// The owner an inode owned by `uid:gid` ends up with.
    pub fn owner(&self, uid: u32, gid: u32) -> (u32, u32) {
        (
            self.uid.decide(uid).new_id(uid),
            self.gid.decide(gid).new_id(gid),
        )
    }

    pub fn cap(&self, value: &[u8]) -> Vec<u8> {
        xattr::remap_cap(value, |id| self.uid.shift_only(id))
    }

    pub fn acl(&self, value: &[u8]) -> AclRemap {
        xattr::remap_acl(
            value,
            |id| self.uid.shift_only(id),
            |id| self.gid.shift_only(id),
        )
    }
}
