//! How a capability's own `[stacks.NAME.X]` table plugs into the policy: its key, its reader
//! and its rows of the reference, named once in `policy::STACK_TABLES`; the parser and the
//! reference pick every table up from there (no per-key edits in parse.rs or reference.rs).
use super::{PolicyKey, Problem, StackPolicy};
use std::borrow::Cow;
use toml::de::DeValue;
use toml::Spanned;

/// Reads the table's key and value into the stack's policy; problems go to the list.
pub type ReadTable =
    fn(&mut StackPolicy, &Spanned<Cow<'_, str>>, &Spanned<DeValue<'_>>, &mut Vec<Problem>);

/// One capability's table of `[stacks.NAME]`.
#[derive(Clone, Copy)]
pub struct StackTable {
    /// The key in `[stacks.NAME]` that holds the table.
    pub key: &'static str,
    pub read: ReadTable,
    /// Its rows of the policy reference, in the order the reference shows them.
    pub reference: &'static [PolicyKey],
}

/// How many keys `keys` names plus one per table.
pub const fn count_keys(keys: &[&str], tables: &[StackTable]) -> usize {
    keys.len() + tables.len()
}

/// `keys`, then each table's key.
pub const fn with_table_keys<const N: usize>(
    keys: &[&'static str],
    tables: &[StackTable],
) -> [&'static str; N] {
    let mut out = [""; N];
    let mut n = 0;
    while n < keys.len() {
        out[n] = keys[n];
        n += 1;
    }
    let mut t = 0;
    while t < tables.len() {
        out[n] = tables[t].key;
        n += 1;
        t += 1;
    }
    assert!(n == N, "with_table_keys: wrong length");
    out
}

/// How many rows `before`, every table and `after` hold together.
pub const fn count_rows(before: &[PolicyKey], tables: &[StackTable], after: &[PolicyKey]) -> usize {
    let mut n = before.len() + after.len();
    let mut t = 0;
    while t < tables.len() {
        n += tables[t].reference.len();
        t += 1;
    }
    n
}

/// The reference's rows: `before`, each table's rows in table order, then `after`.
pub const fn with_table_rows<const N: usize>(
    before: &[PolicyKey],
    tables: &[StackTable],
    after: &[PolicyKey],
) -> [PolicyKey; N] {
    let blank = PolicyKey {
        key: "",
        default: "",
        meaning: "",
    };
    let mut out = [blank; N];
    let mut n = 0;
    let mut i = 0;
    while i < before.len() {
        out[n] = before[i];
        n += 1;
        i += 1;
    }
    let mut t = 0;
    while t < tables.len() {
        let rows = tables[t].reference;
        let mut r = 0;
        while r < rows.len() {
            out[n] = rows[r];
            n += 1;
            r += 1;
        }
        t += 1;
    }
    let mut a = 0;
    while a < after.len() {
        out[n] = after[a];
        n += 1;
        a += 1;
    }
    assert!(n == N, "with_table_rows: wrong length");
    out
}
