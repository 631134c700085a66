//! The journal of one share tree: for every inode whose change taking isolate's entries out
//! could not undo (a mask or another user's entry cut, the top closed), its bits and ACLs
//! before and after, written and synced before the change. A rollback puts back the first
//! "before" of an inode still in one of its "after" states; so a crash between a line and
//! its change, or a second apply, leaves it exact.
use super::share::{Journalled, State};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// An inode's bits and ACL xattrs as saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Saved {
    pub perm: u32,
    pub access: Option<Vec<u8>>,
    pub default: Option<Vec<u8>>,
}

impl Saved {
    pub fn of(state: &State) -> Saved {
        Saved {
            perm: state.perm,
            access: state.access_value(),
            default: state.default_value(),
        }
    }

    pub fn state(&self) -> State {
        State::from_values(self.perm, self.access.as_deref(), self.default.as_deref())
    }
}

/// One journalled change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub ino: u64,
    /// With `ino`, the inode's identity where the filesystem keeps a creation time.
    pub btime: Option<(i64, u32)>,
    /// Relative to the share (for people reading the journal).
    pub rel: PathBuf,
    pub before: Saved,
    pub after: Saved,
}

fn hex_or_dash(v: &Option<Vec<u8>>) -> String {
    v.as_deref()
        .map_or_else(|| "-".to_string(), super::record::hex)
}

fn unhex_or_dash(s: &str) -> Option<Option<Vec<u8>>> {
    if s == "-" {
        Some(None)
    } else {
        super::record::unhex(s).map(Some)
    }
}

/// FNV-1a, 64 bit: tells a torn or garbled line from a whole one.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Line {
    /// `ino btime perm access default perm access default rel checksum`, hex values, `-`
    /// for none.
    pub fn encode(&self) -> String {
        let btime = self
            .btime
            .map_or_else(|| "-".to_string(), |(s, n)| format!("{s}.{n}"));
        let saved = |s: &Saved| {
            format!(
                "{:o} {} {}",
                s.perm,
                hex_or_dash(&s.access),
                hex_or_dash(&s.default)
            )
        };
        let body = format!(
            "{} {btime} {} {} {}",
            self.ino,
            saved(&self.before),
            saved(&self.after),
            hex_or_dash(&Some(self.rel.as_os_str().as_bytes().to_vec()))
        );
        format!("{body} {:016x}\n", checksum(body.as_bytes()))
    }

    pub fn decode(line: &str) -> Option<Line> {
        let (body, sum) = line.rsplit_once(' ')?;
        if u64::from_str_radix(sum, 16).ok()? != checksum(body.as_bytes()) {
            return None;
        }
        let f: Vec<&str> = body.split(' ').collect();
        let [ino, btime, p1, a1, d1, p2, a2, d2, rel] = f.as_slice() else {
            return None;
        };
        let btime = match *btime {
            "-" => None,
            t => {
                let (s, n) = t.split_once('.')?;
                Some((s.parse().ok()?, n.parse().ok()?))
            }
        };
        let saved = |p: &str, a: &str, d: &str| -> Option<Saved> {
            Some(Saved {
                perm: u32::from_str_radix(p, 8).ok()?,
                access: unhex_or_dash(a)?,
                default: unhex_or_dash(d)?,
            })
        };
        Some(Line {
            ino: ino.parse().ok()?,
            btime,
            before: saved(p1, a1, d1)?,
            after: saved(p2, a2, d2)?,
            rel: PathBuf::from(std::ffi::OsString::from_vec(unhex_or_dash(rel)??)),
        })
    }
}

/// What a journal holds, by inode number. Compact, for trees where every inode was
/// journalled: each distinct state is kept once (a tree's inodes share a handful) and an
/// inode is one sorted slot of 32 bytes holding indices into them (a million inodes take
/// 32 MiB, found by binary search; a hash map of them took twice that, and more growing).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entries {
    states: Vec<State>,
    index: HashMap<State, u32>,
    /// Sorted by inode number once read; in file order while reading.
    slots: Vec<Slot>,
    /// The afters beyond the first, of inodes changed more than once.
    more: HashMap<u64, Vec<u32>>,
}

/// One inode's entry: its number, its creation time (nanoseconds u32::MAX: unknown) and
/// its states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slot {
    ino: u64,
    btime: (i64, u32),
    before: u32,
    after: u32,
}

impl Slot {
    fn btime(&self) -> Option<(i64, u32)> {
        (self.btime.1 != u32::MAX).then_some(self.btime)
    }
}

impl Entries {
    /// The inode's entry: the same number and, where both are known, the same creation
    /// time (a later file that got a freed number is not the one journalled).
    pub fn get(&self, ino: u64, btime: Option<(i64, u32)>) -> Option<Journalled> {
        let slot = self.slot(ino, btime)?;
        let state = |i: &u32| self.states[*i as usize].clone();
        let mut afters = vec![state(&slot.after)];
        if let Some(more) = self.more.get(&ino) {
            afters.extend(more.iter().map(state));
        }
        Some(Journalled {
            before: state(&slot.before),
            afters,
        })
    }

    /// Whether the inode has an entry (as `get` finds it).
    pub fn contains(&self, ino: u64, btime: Option<(i64, u32)>) -> bool {
        self.slot(ino, btime).is_some()
    }

    fn slot(&self, ino: u64, btime: Option<(i64, u32)>) -> Option<&Slot> {
        let at = self.slots.binary_search_by_key(&ino, |s| s.ino).ok()?;
        let slot = &self.slots[at];
        match (slot.btime(), btime) {
            (Some(a), Some(b)) if a != b => None,
            _ => Some(slot),
        }
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn intern(&mut self, state: State) -> u32 {
        if let Some(i) = self.index.get(&state) {
            return *i;
        }
        let i = self.states.len() as u32;
        self.states.push(state.clone());
        self.index.insert(state, i);
        i
    }

    /// One line, in file order (`finish` sorts).
    fn add(&mut self, line: Line) {
        let before = self.intern(line.before.state());
        let after = self.intern(line.after.state());
        self.slots.push(Slot {
            ino: line.ino,
            btime: line.btime.unwrap_or((0, u32::MAX)),
            before,
            after,
        });
    }

    /// Sorts the slots by inode and folds each inode's lines in file order: a line with
    /// the creation time of the inode's entry adds an after (the first before is kept);
    /// one with another creation time is a later file with the freed number and starts a
    /// new entry.
    fn finish(&mut self) {
        // Stable: an inode's lines stay in file order.
        self.slots.sort_by_key(|s| s.ino);
        let mut kept = 0;
        for i in 0..self.slots.len() {
            let line = self.slots[i];
            if kept > 0 && self.slots[kept - 1].ino == line.ino {
                let entry = &mut self.slots[kept - 1];
                if entry.btime() == line.btime() {
                    self.more.entry(line.ino).or_default().push(line.after);
                } else {
                    *entry = line;
                    self.more.remove(&line.ino);
                }
                continue;
            }
            self.slots[kept] = line;
            kept += 1;
        }
        self.slots.truncate(kept);
        self.slots.shrink_to_fit();
    }
}

fn invalid(path: &Path, what: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}

/// Reads a journal; a missing one is empty. Only the last line may be torn (a crash while it
/// was written: its change was not made); a bad line before it is an error.
pub fn read(path: &Path) -> io::Result<Entries> {
    use std::io::BufRead;
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Entries::default()),
        Err(e) => return Err(e),
    };
    // Line by line: a journal of a million inodes is hundreds of megabytes.
    let mut reader = io::BufReader::new(file);
    let mut entries = Entries::default();
    let mut raw = Vec::new();
    // A line that did not decode: an error unless it turns out to be the last.
    let mut damaged: Option<usize> = None;
    let mut number = 0;
    loop {
        raw.clear();
        if reader.read_until(b'\n', &mut raw)? == 0 {
            entries.finish();
            return Ok(entries);
        }
        let whole = raw.last() == Some(&b'\n');
        let text = raw.strip_suffix(b"\n").unwrap_or(&raw);
        if text.is_empty() {
            continue;
        }
        number += 1;
        if let Some(n) = damaged {
            return Err(invalid(path, format!("line {n} is damaged")));
        }
        match std::str::from_utf8(text).ok().and_then(Line::decode) {
            // Without its newline it is the torn last line: its change was not made.
            Some(line) if whole => entries.add(line),
            Some(_) => {}
            None => damaged = Some(number),
        }
    }
}

/// Where a torn last line of `file` starts (just after its last newline, or 0 without
/// one), when the file does not end with a newline. Read backwards from the end a block at
/// a time: a journal of a million inodes is hundreds of megabytes, and a second apply must
/// not hold it in memory.
fn torn_tail(file: &File) -> io::Result<Option<u64>> {
    use std::os::unix::fs::FileExt;
    let len = file.metadata()?.len();
    let mut end = len;
    let mut block = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let chunk = &mut block[..(end - start) as usize];
        file.read_exact_at(chunk, start)?;
        if let Some(i) = chunk.iter().rposition(|b| *b == b'\n') {
            let whole = start + i as u64 + 1;
            return Ok((whole != len).then_some(whole));
        }
        end = start;
    }
    Ok((len != 0).then_some(0))
}

/// An open journal lines are appended to, synced before `append` returns. Appends of
/// several walk threads share a sync (group commit): one that finds its lines already
/// covered by a sync that began after they were written does not sync again.
pub struct Writer {
    /// The file and how many appends were written to it.
    file: Mutex<(File, u64)>,
    /// The same file, synced without holding `file`, and how many appends the last
    /// finished sync covers.
    synced: Mutex<(File, u64)>,
}

impl Writer {
    /// Opens (creating it, and its directory 0700) for appending, first cutting off a torn
    /// last line so the next one starts whole.
    pub fn open(path: &Path) -> io::Result<Writer> {
        if let Some(dir) = path.parent() {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
        }
        let existed = path.exists();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(path)?;
        if let Some(whole) = torn_tail(&file)? {
            file.set_len(whole)?;
            file.sync_data()?;
        }
        if !existed {
            file.sync_all()?;
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
        }
        let again = file.try_clone()?;
        Ok(Writer {
            file: Mutex::new((file, 0)),
            synced: Mutex::new((again, 0)),
        })
    }

    /// Appends and syncs: when this returns, the lines survive a crash.
    pub fn append<'l>(&self, lines: impl IntoIterator<Item = &'l Line>) -> io::Result<()> {
        let text: String = lines.into_iter().map(Line::encode).collect();
        if text.is_empty() {
            return Ok(());
        }
        let mine = {
            let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
            file.0.write_all(text.as_bytes())?;
            file.1 += 1;
            file.1
        };
        let mut synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        if synced.1 >= mine {
            return Ok(());
        }
        // Every append counted by now was written before this sync begins.
        let written = self.file.lock().unwrap_or_else(|e| e.into_inner()).1;
        synced.0.sync_data()?;
        synced.1 = written;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isolation::acl::Acl;

    fn line(ino: u64, before: u32, after: u32) -> Line {
        let mut acl = Acl::from_mode(after);
        acl.users.insert(34, 5);
        acl.recompute_mask();
        Line {
            ino,
            btime: Some((1_700_000_000, 7)),
            rel: PathBuf::from("photos/a b\n"),
            before: Saved {
                perm: before,
                access: None,
                default: None,
            },
            after: Saved {
                perm: 0o2000 | acl.mode_bits(),
                access: Some(acl.encode()),
                default: Some(acl.encode()),
            },
        }
    }

    #[test]
    fn lines_round_trip_and_a_torn_last_line_is_cut() {
        let l = line(9, 0o2755, 0o750);
        assert_eq!(Line::decode(l.encode().trim_end()), Some(l.clone()));
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("shares/s.acl");
        let w = Writer::open(&path).unwrap();
        w.append(&[l.clone(), line(9, 0o777, 0o700), line(10, 0o644, 0o640)])
            .unwrap();
        drop(w);
        let e = read(&path).unwrap();
        assert_eq!(e.len(), 2);
        let j = e.get(9, Some((1_700_000_000, 7))).unwrap();
        assert_eq!(j.before.perm, 0o2755, "the first before is kept");
        assert_eq!(j.afters.len(), 2);
        assert!(
            e.get(9, Some((1, 0))).is_none(),
            "another file, same number"
        );
        // A crash in the middle of a line: read ignores it, open cuts it off.
        let torn = line(11, 0o644, 0o600).encode();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(&torn.as_bytes()[..20])
            .unwrap();
        assert_eq!(read(&path).unwrap().len(), 2);
        Writer::open(&path)
            .unwrap()
            .append(&[line(12, 0o644, 0o600)])
            .unwrap();
        assert_eq!(read(&path).unwrap().len(), 3);
        // A damaged line before the last is an error, never a silent loss.
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replacen("9 ", "8 ", 1);
        std::fs::write(&path, text).unwrap();
        assert!(read(&path).is_err());
    }

    /// An inode's lines are folded in file order wherever they stand among other inodes':
    /// the first before is kept, afters add up, and a later file with the freed number
    /// starts over.
    #[test]
    fn an_inodes_lines_fold_in_file_order_among_others() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("s.acl");
        let w = Writer::open(&path).unwrap();
        let mut reused = line(7, 0o600, 0o640);
        reused.btime = Some((1_800_000_000, 1));
        w.append(&[
            line(9, 0o2755, 0o750),
            line(10, 0o644, 0o640),
            line(7, 0o700, 0o750),
            line(9, 0o777, 0o700),
            line(3, 0o644, 0o600),
            reused,
        ])
        .unwrap();
        let e = read(&path).unwrap();
        assert_eq!(e.len(), 4);
        let nine = e.get(9, Some((1_700_000_000, 7))).unwrap();
        assert_eq!(nine.before.perm, 0o2755);
        assert_eq!(nine.afters.len(), 2);
        assert!(
            e.get(7, Some((1_700_000_000, 7))).is_none(),
            "the old file 7"
        );
        assert_eq!(
            e.get(7, Some((1_800_000_000, 1))).unwrap().before.perm,
            0o600
        );
        assert!(e.contains(3, None) && e.contains(10, None) && !e.contains(8, None));
    }

    /// A torn last line longer than the block read backwards is cut whole, and the lines
    /// before it stay.
    #[test]
    fn a_torn_last_line_longer_than_a_block_is_cut() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("s.acl");
        Writer::open(&path)
            .unwrap()
            .append(&[line(5, 0o644, 0o600)])
            .unwrap();
        let whole = std::fs::metadata(&path).unwrap().len();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&vec![b'7'; 200 * 1024]).unwrap();
        drop(f);
        drop(Writer::open(&path).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), whole);
        assert_eq!(read(&path).unwrap().len(), 1);
        // Without any newline at all, nothing is whole.
        std::fs::write(&path, vec![b'7'; 70 * 1024]).unwrap();
        drop(Writer::open(&path).unwrap());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }
}
