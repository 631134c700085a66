//! The host's accounts: reading passwd/group/subuid/subgid (`etc`) and changing them through
//! shadow-utils (`shadow`, with its ports). What isolate makes of them (its own accounts
//! checked, repaired or refused) is the accounts capability's, in `src/accounts/`.
pub mod etc;
#[cfg(any(test, feature = "testing"))]
pub mod fake;
pub mod shadow;

pub use etc::Accounts;
pub use shadow::{AccountTools, Shadow};

use crate::ids::{IdMaps, Mapping};

impl Accounts {
    /// The mapping rootless podman gives `user`'s containers, from the host's files (podman's
    /// order of lines): None when there is no such user.
    pub fn mapping_of(&self, user: &str) -> Option<IdMaps> {
        let entry = self.user(user)?;
        Some(IdMaps {
            uid: Mapping::new(entry.uid, self.subuid.ranges_of(user, Some(entry.uid))),
            gid: Mapping::new(entry.gid, self.subgid.ranges_of(user, Some(entry.uid))),
        })
    }
}
