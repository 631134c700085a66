//! A recording stand-in for shadow-utils, for apply's tests: records typed calls and fails
//! the calls it is told to.
use super::shadow::AccountTools;
use crate::error::{Error, Result};
use crate::ids::SubidRange;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One call made on the fake, with its arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountCall {
    CreateGroup {
        name: String,
        gid: Option<u32>,
    },
    CreateUser {
        name: String,
        uid: u32,
        gid: u32,
        home: PathBuf,
        shell: String,
    },
    AddToGroup {
        user: String,
        group: String,
    },
    AddSubids {
        user: String,
        range: SubidRange,
        subuid: bool,
        subgid: bool,
    },
}

impl AccountCall {
    /// The account the call is about (the group for CreateGroup).
    pub fn subject(&self) -> &str {
        match self {
            AccountCall::CreateGroup { name, .. } | AccountCall::CreateUser { name, .. } => name,
            AccountCall::AddToGroup { user, .. } | AccountCall::AddSubids { user, .. } => user,
        }
    }
}

#[derive(Default)]
pub struct RecordingAccounts {
    calls: Mutex<Vec<AccountCall>>,
    /// Calls about this account fail (after being recorded).
    fail_subject: Option<String>,
}

impl RecordingAccounts {
    pub fn failing_for(subject: &str) -> Self {
        RecordingAccounts {
            fail_subject: Some(subject.to_string()),
            ..Self::default()
        }
    }

    pub fn calls(&self) -> Vec<AccountCall> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn record(&self, call: AccountCall) -> Result<()> {
        let fail = self.fail_subject.as_deref() == Some(call.subject());
        let shown = format!("{call:?}");
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(call);
        if fail {
            return Err(Error::host(Injected { shown }));
        }
        Ok(())
    }
}

impl AccountTools for RecordingAccounts {
    fn create_group(&self, name: &str, gid: Option<u32>) -> Result<()> {
        self.record(AccountCall::CreateGroup {
            name: name.into(),
            gid,
        })
    }
    fn create_user(
        &self,
        name: &str,
        uid: u32,
        gid: u32,
        home: &Path,
        shell: &str,
        _comment: &str,
    ) -> Result<()> {
        self.record(AccountCall::CreateUser {
            name: name.into(),
            uid,
            gid,
            home: home.to_path_buf(),
            shell: shell.into(),
        })
    }
    fn add_to_group(&self, user: &str, group: &str) -> Result<()> {
        self.record(AccountCall::AddToGroup {
            user: user.into(),
            group: group.into(),
        })
    }
    fn add_subids(&self, user: &str, range: SubidRange, subuid: bool, subgid: bool) -> Result<()> {
        self.record(AccountCall::AddSubids {
            user: user.into(),
            range,
            subuid,
            subgid,
        })
    }
}

/// The error an injected failure returns: the call, as shown.
#[derive(Debug, thiserror::Error)]
#[error("injected failure: {shown}")]
pub struct Injected {
    pub shown: String,
}
