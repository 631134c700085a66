//! Isolation that holds: stack data closed to other stacks (`closed`), shares reached only
//! through ACL grants of mapped host uids (`share`, `grants`), the ACL model both use
//! (`acl`), and the record of what isolate changed so rollback restores it (`record`, and
//! `journal` for the inodes of a share tree).
pub mod acl;
pub mod apply;
pub mod closed;
pub mod error;
pub mod facts;
pub mod fs;
pub mod grants;
pub mod journal;
pub mod observe;
pub mod plan;
pub mod record;
pub mod share;
pub mod share_acl;
pub mod status;
pub mod steps;
