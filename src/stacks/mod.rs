//! Root drives every stack after the split, from one place: the journal records of a stack
//! (`logs`), every stack's containers (`ps`), a command run as a stack user in its own session
//! (`exec`). Only recorded stacks (isolate's state file) have a user to drive; each is checked
//! against the host's passwd before anything runs.
pub mod exec;
pub mod logs;
pub mod ps;

use crate::error::{Error, Result};
use crate::host::accounts::etc::{Accounts, PasswdEntry};
use crate::layout::Root;
use crate::state::{Allocation, State};

/// The recorded allocation of `stack` and its user's passwd entry, which must still have the
/// recorded uid (a user renumbered or replaced by hand is not the stack's user any more).
pub fn recorded(root: &Root, stack: &str) -> Result<(Allocation, PasswdEntry)> {
    let state = State::read(root)?;
    let acc = Accounts::read(root)?;
    user_of(&state, &acc, stack)
}

fn user_of(state: &State, acc: &Accounts, stack: &str) -> Result<(Allocation, PasswdEntry)> {
    let Some(rec) = state.stacks.get(stack) else {
        let known: Vec<&str> = state.stacks.keys().map(String::as_str).collect();
        return Err(Error::Usage(format!(
            "stack `{stack}` has no user yet (recorded stacks: {}); run `isolate apply --stack {stack}` first",
            if known.is_empty() { "none".to_string() } else { known.join(", ") }
        )));
    };
    let a = &rec.allocation;
    match acc.user(&a.user) {
        Some(p) if p.uid == a.uid => Ok((a.clone(), p.clone())),
        Some(p) => Err(Error::HostState(vec![format!(
            "user {} has uid {} in passwd, but stack `{stack}` recorded uid {}: isolate drives no account it cannot tell is the stack's",
            a.user, p.uid, a.uid
        )])),
        None => Err(Error::HostState(vec![format!(
            "user {} of stack `{stack}` is not in passwd (recorded uid {})",
            a.user, a.uid
        )])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::accounts::etc::{parse_group, parse_passwd, parse_subid};
    use crate::ids::SubidRange;
    use crate::state::StackRecord;
    use std::path::Path;

    pub(crate) fn state_with(stack: &str, user: &str, uid: u32) -> State {
        let mut s = State::default();
        s.stacks.insert(
            stack.into(),
            StackRecord {
                allocation: Allocation {
                    user: user.into(),
                    uid,
                    gid: uid,
                    subids: SubidRange::new(0x7000_0000, 65_536).unwrap(),
                },
                migrations: vec![],
            },
        );
        s
    }

    fn acc(passwd: &str) -> Accounts {
        Accounts {
            passwd: parse_passwd(Path::new("/etc/passwd"), passwd).unwrap(),
            group: parse_group(Path::new("/etc/group"), "").unwrap(),
            subuid: parse_subid(Path::new("/etc/subuid"), "").unwrap(),
            subgid: parse_subid(Path::new("/etc/subgid"), "").unwrap(),
        }
    }

    #[test]
    fn only_a_recorded_stack_whose_user_kept_its_uid_is_driven() {
        let state = state_with("app", "stk-app", 70_000);
        let ok = acc("stk-app:x:70000:70000::/var/lib/isolate/home/stk-app:/usr/sbin/nologin\n");
        assert_eq!(user_of(&state, &ok, "app").unwrap().1.uid, 70_000);
        let err = user_of(&state, &ok, "other").unwrap_err();
        assert!(matches!(err, Error::Usage(_)), "{err}");
        let moved = acc("stk-app:x:1000:1000::/home/x:/bin/sh\n");
        assert!(matches!(
            user_of(&state, &moved, "app"),
            Err(Error::HostState(_))
        ));
        assert!(matches!(
            user_of(&state, &acc(""), "app"),
            Err(Error::HostState(_))
        ));
    }
}
