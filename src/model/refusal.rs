//! `Refusal`: why isolate will not go on, typed. A refusal is bad input or a host state
//! isolate will not build on; nothing was changed. Each carries the capability or check that
//! refused (`RefusalKind`) and its text, which says what is wrong and what to do. `Refusals` is
//! the list a plan collects and `Error::Refused` carries; the presenters print it (one
//! `isolate: ` line each, `render::refusals`), and `error.rs` gives it its exit code.
use serde::{Serialize, Serializer};
use std::fmt;

/// Who refused: the capability or check whose facts stand in the way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// An account or group name is taken by someone else.
    Accounts,
    /// A data path cannot be migrated or created (missing, shared, in use).
    Data,
    /// A declared cross-stack path cannot be made to work.
    Reach,
    /// Something the stack needs before it can run (a command, a reachable path).
    Preconditions,
    /// A close, reopen or share cannot be made (a filesystem without ACLs, ...).
    Isolation,
    /// Images, volumes, env files or the compose unit cannot be handed over.
    Handoff,
    /// NixOS: the configuration does not declare the accounts yet.
    NixOs,
    /// An export cannot be written as asked.
    Export,
    /// A rollback cannot be made as asked.
    Rollback,
    /// No systemd (or no logind) to talk to.
    Systemd,
    /// A capability plugged in through src/plugins.rs, by its folder's name.
    Plugged(&'static str),
    /// A disk budget the filesystem cannot hold (src/quota).
    Quota,
}

/// One refusal: who refused and the text saying what is wrong and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub kind: RefusalKind,
    pub text: String,
}

impl Refusal {
    pub fn new(kind: RefusalKind, text: impl Into<String>) -> Self {
        Refusal {
            kind,
            text: text.into(),
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// In JSON a refusal is its text, as it always was (`plan --format json`'s `refusals`).
impl Serialize for Refusal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// Tests compare a refusal with the text they expect.
impl PartialEq<&str> for Refusal {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

/// Every refusal of a run, in the order they were found. Its text is one line per refusal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Refusals(pub Vec<Refusal>);

impl Refusals {
    /// A list of one.
    pub fn one(kind: RefusalKind, text: impl Into<String>) -> Self {
        Refusals(vec![Refusal::new(kind, text)])
    }

    pub fn push(&mut self, kind: RefusalKind, text: impl Into<String>) {
        self.0.push(Refusal::new(kind, text));
    }

    /// Adds texts collected by a capability's planner, each refused by `kind`.
    pub fn extend_texts(&mut self, kind: RefusalKind, texts: impl IntoIterator<Item = String>) {
        self.0
            .extend(texts.into_iter().map(|t| Refusal::new(kind, t)));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Refusal> {
        self.0.iter()
    }
}

impl fmt::Display for Refusals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&r.text)?;
        }
        Ok(())
    }
}

impl std::ops::Index<usize> for Refusals {
    type Output = Refusal;
    fn index(&self, i: usize) -> &Refusal {
        &self.0[i]
    }
}

impl<'a> IntoIterator for &'a Refusals {
    type Item = &'a Refusal;
    type IntoIter = std::slice::Iter<'a, Refusal>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// Tests compare the list with the texts they expect.
impl PartialEq<Vec<&str>> for Refusals {
    fn eq(&self, other: &Vec<&str>) -> bool {
        self.0.len() == other.len() && self.0.iter().zip(other).all(|(r, t)| r == t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_is_one_line_per_refusal_and_json_is_the_texts() {
        let mut r = Refusals::one(RefusalKind::Data, "stack `a`: /srv/a is shared");
        r.push(RefusalKind::Accounts, "stack `b`: user stk-b exists");
        assert_eq!(
            r.to_string(),
            "stack `a`: /srv/a is shared\nstack `b`: user stk-b exists"
        );
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"["stack `a`: /srv/a is shared","stack `b`: user stk-b exists"]"#
        );
        assert_eq!(r[1].kind, RefusalKind::Accounts);
    }
}
