//! The host's account files (passwd, shadow, group, gshadow, subuid, subgid).
pub mod check;
