//! The write-ahead journal of a migration: the owner, mode and capability of every inode a
//! migration cannot recompute (reowned ones, and ones whose setuid bits or capability a chown
//! drops), synced before the chown, so a crash anywhere leaves rollback exact; then, after the
//! change (and after every step isolate later takes on a privileged one: crash repair,
//! rollback), the inode's status-change time, which proves whether it is still the file
//! isolate left. A locked walk adds the data top's lock and unlock lines, and a locked
//! migration the chowns of privileged files it is about to make (`LockedIntent`).
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Which change a record is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The owner was reowned: only the record knows the original.
    Reown,
    /// The owner was shifted (recomputable) but the chown drops setuid/setgid bits or a
    /// capability, or the capability's rootid was rewritten.
    Privilege,
}

impl Kind {
    fn letter(self) -> &'static str {
        match self {
            Kind::Reown => "R",
            Kind::Privilege => "P",
        }
    }
}

/// One line of the journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Line {
    /// Written ahead of the change.
    Before(Record),
    /// Written after the change: the inode's ctime then. A later write, chmod, chown or
    /// link change moves ctime, which userspace cannot set back.
    After(Applied),
    /// Written (synced) before a walk makes the data top root's alone: what it was.
    Lock(TopLock),
    /// Written once the top has its previous owner and mode back (inode number).
    Unlock(u64),
    /// Written by a rollback right before it gives a proven inode its original owner back:
    /// what the inode will look like after that chown, for a run killed before its `After`.
    Intent(Intent),
    /// Written by a migration in a locked tree right before it chowns a privileged inode to
    /// the stack: what the chown leaves (`proven_ctime` is the ctime it was planned at). Only
    /// a run that finds the tree still locked may trust it (the stack could not touch the
    /// file since); see `replay::Proofs::own_while_locked`.
    LockedIntent(Intent),
}

/// The data top before a walk locked it (owner 0:0, mode 0700): what unlocking gives back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopLock {
    pub ino: u64,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits including setuid/setgid/sticky.
    pub perm: u32,
    /// Its ctime then: whether that state was one isolate left (a proof) carries over.
    pub ctime: (i64, u32),
}

/// A rollback's chown of a proven privileged inode back to its original owner (never one
/// of the stack's ids), announced before it happens: the ctime it was proven at, and the
/// owner the chown gives and the mode, mtime, size and link count it had. Killed between the chown and
/// its `After` line, the next run finds exactly that: the stack cannot have changed it
/// since without moving mtime (a write sets it to now, and only the owner or root may set
/// it), the mode (owner only), the owner or the link count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Intent {
    pub path: PathBuf,
    pub ino: u64,
    pub proven_ctime: (i64, u32),
    pub uid: u32,
    pub gid: u32,
    /// The mode before the chown (which drops setuid, and setgid with group execute).
    pub perm: u32,
    pub mtime: (i64, u32),
    pub size: u64,
    pub nlink: u32,
}

impl Intent {
    /// Whether `st` is exactly what the announced chown leaves: owner, mtime, size, links,
    /// the mode but for setuid/setgid bits the chown may have dropped.
    pub fn left(&self, st: &crate::sys::Stat) -> bool {
        (st.uid, st.gid, st.mtime, st.size, st.nlink)
            == (self.uid, self.gid, self.mtime, self.size, self.nlink)
            && st.perm() & !0o6000 == self.perm & !0o6000
            && st.perm() & 0o6000 & !self.perm == 0
    }
}

impl Record {
    /// Whether the inode had setuid/setgid bits or a capability: what only a proof that
    /// nobody else changed it since gives back.
    pub fn privileged(&self) -> bool {
        self.perm & 0o6000 != 0 || self.caps.is_some()
    }
}

/// The state of one journalled inode right after isolate (a migration, its crash repair or
/// a rollback) changed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub path: PathBuf,
    pub ino: u64,
    pub ctime: (i64, u32),
}

/// What one inode looked like before the migration touched it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub kind: Kind,
    /// Relative to the data path; empty for the data path itself.
    pub path: PathBuf,
    pub ino: u64,
    /// Creation time, where the filesystem keeps one: with `ino`, the file's identity.
    pub btime: Option<(i64, u32)>,
    pub uid: u32,
    pub gid: u32,
    /// Permission bits including setuid/setgid/sticky.
    pub perm: u32,
    /// The raw `security.capability` value, if it had one.
    pub caps: Option<Vec<u8>>,
}

/// FNV-1a, 64 bit: enough to tell a torn or garbled line from a whole one.
fn checksum(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn escape_path(path: &Path, out: &mut Vec<u8>) {
    let bytes = path.as_os_str().as_bytes();
    if bytes.is_empty() {
        out.push(b'.');
        return;
    }
    for &b in bytes {
        if b <= b' ' || b >= 0x7f || b == b'%' {
            out.extend_from_slice(format!("%{b:02x}").as_bytes());
        } else {
            out.push(b);
        }
    }
}

fn unescape_path(text: &[u8]) -> Option<PathBuf> {
    if text == b"." {
        return Some(PathBuf::new());
    }
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'%' {
            let hex = std::str::from_utf8(text.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(text[i]);
            i += 1;
        }
    }
    Some(PathBuf::from(std::ffi::OsString::from_vec(out)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn time(t: Option<(i64, u32)>) -> String {
    t.map_or_else(|| "-".into(), |(s, n)| format!("{s}.{n:09}"))
}

fn untime(text: &str) -> Option<Option<(i64, u32)>> {
    if text == "-" {
        return Some(None);
    }
    let (s, n) = text.split_once('.')?;
    Some(Some((s.parse().ok()?, n.parse().ok()?)))
}

fn seal(mut body: Vec<u8>, path: &Path, out: &mut Vec<u8>) {
    escape_path(path, &mut body);
    out.extend_from_slice(format!("{:016x} ", checksum(&body)).as_bytes());
    out.extend_from_slice(&body);
    out.push(b'\n');
}

impl Line {
    /// `CHECKSUM R|P ino btime uid gid perm caps path\n`, `CHECKSUM A ino ctime path\n` or
    /// `CHECKSUM I ino ctime uid gid perm mtime size nlink path\n`; the checksum covers
    /// everything after it.
    pub fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Line::Before(r) => {
                let body = format!(
                    "{} {} {} {} {} {:o} {} ",
                    r.kind.letter(),
                    r.ino,
                    time(r.btime),
                    r.uid,
                    r.gid,
                    r.perm,
                    r.caps.as_deref().map(hex).unwrap_or_else(|| "-".into())
                );
                seal(body.into_bytes(), &r.path, out);
            }
            Line::After(a) => {
                let body = format!("A {} {} ", a.ino, time(Some(a.ctime)));
                seal(body.into_bytes(), &a.path, out);
            }
            Line::Lock(l) => {
                let body = format!(
                    "L {} {} {} {:o} {} ",
                    l.ino,
                    l.uid,
                    l.gid,
                    l.perm,
                    time(Some(l.ctime))
                );
                seal(body.into_bytes(), Path::new(""), out);
            }
            Line::Unlock(ino) => seal(format!("U {ino} ").into_bytes(), Path::new(""), out),
            Line::Intent(i) | Line::LockedIntent(i) => {
                let letter = if matches!(self, Line::Intent(_)) {
                    "I"
                } else {
                    "M"
                };
                let body = format!(
                    "{letter} {} {} {} {} {:o} {} {} {} ",
                    i.ino,
                    time(Some(i.proven_ctime)),
                    i.uid,
                    i.gid,
                    i.perm,
                    time(Some(i.mtime)),
                    i.size,
                    i.nlink
                );
                seal(body.into_bytes(), &i.path, out);
            }
        }
    }

    /// A whole line without its newline; None when torn or garbled.
    pub fn decode(line: &[u8]) -> Option<Line> {
        let (sum, body) = (line.get(..16)?, line.get(17..)?);
        if line.get(16) != Some(&b' ') {
            return None;
        }
        if u64::from_str_radix(std::str::from_utf8(sum).ok()?, 16).ok()? != checksum(body) {
            return None;
        }
        let kind = match body.first()? {
            b'R' => Kind::Reown,
            b'P' => Kind::Privilege,
            b'A' => {
                let mut fields = body.get(2..)?.splitn(3, |b| *b == b' ');
                let mut text = || std::str::from_utf8(fields.next()?).ok();
                let ino = text()?.parse().ok()?;
                let ctime = untime(text()?)??;
                let path = unescape_path(fields.next()?)?;
                return Some(Line::After(Applied { path, ino, ctime }));
            }
            b'L' => {
                let mut fields = body.get(2..)?.splitn(6, |b| *b == b' ');
                let mut text = || std::str::from_utf8(fields.next()?).ok();
                return Some(Line::Lock(TopLock {
                    ino: text()?.parse().ok()?,
                    uid: text()?.parse().ok()?,
                    gid: text()?.parse().ok()?,
                    perm: u32::from_str_radix(text()?, 8).ok()?,
                    ctime: untime(text()?)??,
                }));
            }
            b'U' => {
                let mut fields = body.get(2..)?.splitn(2, |b| *b == b' ');
                return Some(Line::Unlock(
                    std::str::from_utf8(fields.next()?).ok()?.parse().ok()?,
                ));
            }
            letter @ (b'I' | b'M') => {
                let mut fields = body.get(2..)?.splitn(9, |b| *b == b' ');
                let mut text = || std::str::from_utf8(fields.next()?).ok();
                let ino = text()?.parse().ok()?;
                let proven_ctime = untime(text()?)??;
                let uid = text()?.parse().ok()?;
                let gid = text()?.parse().ok()?;
                let perm = u32::from_str_radix(text()?, 8).ok()?;
                let mtime = untime(text()?)??;
                let size = text()?.parse().ok()?;
                let nlink = text()?.parse().ok()?;
                let path = unescape_path(fields.next()?)?;
                let wrap = if *letter == b'I' {
                    Line::Intent
                } else {
                    Line::LockedIntent
                };
                return Some(wrap(Intent {
                    path,
                    ino,
                    proven_ctime,
                    uid,
                    gid,
                    perm,
                    mtime,
                    size,
                    nlink,
                }));
            }
            _ => return None,
        };
        let mut fields = body.get(2..)?.splitn(7, |b| *b == b' ');
        let mut text = || std::str::from_utf8(fields.next()?).ok();
        let ino = text()?.parse().ok()?;
        let btime = untime(text()?)?;
        let uid = text()?.parse().ok()?;
        let gid = text()?.parse().ok()?;
        let perm = u32::from_str_radix(text()?, 8).ok()?;
        let caps = match text()? {
            "-" => None,
            h => Some(unhex(h)?),
        };
        let path = unescape_path(fields.next()?)?;
        Some(Line::Before(Record {
            kind,
            path,
            ino,
            btime,
            uid,
            gid,
            perm,
            caps,
        }))
    }
}

/// Reads every whole record in order. Returns the byte length of the valid prefix: only the
/// last line may be torn (a crash mid-append; its chown never ran), anything else is an error.
pub fn read(path: &Path, mut each: impl FnMut(Line) -> io::Result<()>) -> io::Result<u64> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut line = Vec::new();
    let mut valid: u64 = 0;
    let mut line_no = 0u64;
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(valid);
        }
        line_no += 1;
        let whole = line.last() == Some(&b'\n');
        let record = if whole {
            Line::decode(&line[..line.len() - 1])
        } else {
            None
        };
        match record {
            Some(r) => {
                each(r)?;
                valid += n as u64;
            }
            None => {
                // Torn only if nothing follows.
                let mut rest = Vec::new();
                std::io::Read::read_to_end(&mut reader, &mut rest)?;
                if rest.is_empty() {
                    return Ok(valid);
                }
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("journal record {line_no} is damaged and not the last one"),
                ));
            }
        }
    }
}

/// An open journal that records are appended to, each batch synced before it returns.
/// Syncs are shared (group commit): a thread whose lines a sync already covered, started
/// after they were written, does not sync again, so threads do not queue one fsync each.
pub struct Journal {
    file: Mutex<File>,
    /// A second descriptor of the same file, for syncs: they do not hold up writers.
    syncer: File,
    /// Writes so far (counted under `file`'s lock) and the count the last finished sync
    /// covers (under its own lock, held while syncing).
    written: std::sync::atomic::AtomicU64,
    synced: Mutex<u64>,
}

impl Journal {
    /// Opens (creating it and its directory) for appending, first cutting off a torn last
    /// record so the next append starts on a fresh line.
    pub fn open(path: &Path, valid_len: u64) -> io::Result<Journal> {
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
            .mode(0o600)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(path)?;
        if file.metadata()?.len() != valid_len {
            file.set_len(valid_len)?;
            file.sync_data()?;
        }
        if !existed {
            file.sync_all()?;
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
        }
        Ok(Journal {
            syncer: file.try_clone()?,
            file: Mutex::new(file),
            written: Default::default(),
            synced: Mutex::new(0),
        })
    }

    /// Appends and syncs: when this returns, the lines survive a crash.
    pub fn append(&self, lines: &[Line]) -> io::Result<()> {
        if lines.is_empty() {
            return Ok(());
        }
        let mine = self.write_counted(lines)?;
        let mut synced = self.synced.lock().unwrap_or_else(|e| e.into_inner());
        if *synced >= mine {
            // A sync that started after this write finished meanwhile.
            return Ok(());
        }
        let upto = self.written.load(std::sync::atomic::Ordering::Acquire);
        self.syncer.sync_data()?;
        *synced = upto;
        Ok(())
    }

    /// Appends without waiting for the disk (for `After` lines: losing one only makes a
    /// rollback more careful).
    pub fn write(&self, lines: &[Line]) -> io::Result<()> {
        self.write_counted(lines).map(drop)
    }

    /// Writes `lines` in one write; returns this write's number.
    fn write_counted(&self, lines: &[Line]) -> io::Result<u64> {
        use std::sync::atomic::Ordering;
        let mut bytes = Vec::with_capacity(lines.len() * 96);
        for l in lines {
            l.encode(&mut bytes);
        }
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if !bytes.is_empty() {
            file.write_all(&bytes)?;
        }
        Ok(self.written.fetch_add(1, Ordering::AcqRel) + 1)
    }

    pub fn sync(&self) -> io::Result<()> {
        self.syncer.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(path: &str) -> Line {
        Line::Before(Record {
            kind: Kind::Reown,
            path: PathBuf::from(path),
            ino: 42,
            btime: Some((1_700_000_000, 5)),
            uid: 0,
            gid: 100_998,
            perm: 0o4755,
            caps: Some(vec![1, 2, 0xff]),
        })
    }

    #[test]
    fn records_round_trip_with_odd_paths() {
        for p in ["", "a b/%c\nd", "plain/file", "ünï"] {
            let mut r = sample(p);
            if let (true, Line::Before(rec)) = (p.is_empty(), &mut r) {
                rec.caps = None;
                rec.btime = None;
                rec.kind = Kind::Privilege;
            }
            let after = Line::After(Applied {
                path: PathBuf::from(p),
                ino: 7,
                ctime: (-3, 999_999_999),
            });
            let lock = Line::Lock(TopLock {
                ino: 9,
                uid: 1000,
                gid: 100,
                perm: 0o2775,
                ctime: (1_700_000_000, 12),
            });
            let intent = Line::Intent(Intent {
                path: PathBuf::from(p),
                ino: 7,
                proven_ctime: (5, 6),
                uid: 0,
                gid: 100_005,
                perm: 0o755,
                mtime: (1, 2),
                size: 9,
                nlink: 2,
            });
            let Line::Intent(i) = &intent else {
                unreachable!()
            };
            let locked_intent = Line::LockedIntent(i.clone());
            for l in [r, after, lock, Line::Unlock(9), intent, locked_intent] {
                let mut line = Vec::new();
                l.encode(&mut line);
                assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);
                assert_eq!(Line::decode(&line[..line.len() - 1]), Some(l));
            }
        }
    }

    #[test]
    fn torn_tail_is_ignored_and_cut_damage_inside_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j/x.journal");
        let journal = Journal::open(&path, 0).unwrap();
        journal.append(&[sample("a"), sample("b")]).unwrap();
        drop(journal);
        let whole = std::fs::read(&path).unwrap();
        let mut torn = whole.clone();
        torn.extend_from_slice(b"0123456789abcdef 12 0 0 7");
        std::fs::write(&path, &torn).unwrap();
        let mut seen = Vec::new();
        let valid = read(&path, |l| {
            if let Line::Before(r) = l {
                seen.push(r.path);
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, vec![PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(valid, whole.len() as u64);
        let journal = Journal::open(&path, valid).unwrap();
        journal.append(&[sample("c")]).unwrap();
        let mut count = 0;
        read(&path, |_| {
            count += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!(count, 3);

        let mut bad = whole.clone();
        bad[20] ^= 1;
        std::fs::write(&path, &bad).unwrap();
        assert!(read(&path, |_| Ok(())).is_err());
    }
}
