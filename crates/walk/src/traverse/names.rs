//! A directory's entry names as the traversal holds them while it works through them.
use rustix::fs::FileType;
use std::ffi::CStr;

/// A directory's entry names, NUL-terminated in one buffer (one allocation, not one each),
/// with the type the listing gave each (d_type; `Unknown` where the filesystem gives none).
#[derive(Default)]
pub(super) struct Names {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    types: Vec<FileType>,
}

impl Names {
    pub(super) fn push(&mut self, name: &CStr, listed: FileType) {
        self.bytes.extend_from_slice(name.to_bytes_with_nul());
        self.ends.push(self.bytes.len());
        self.types.push(listed);
    }
    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }
    /// The type the directory listing gave entry `i` (a hint: the name may change).
    pub(super) fn listed(&self, i: usize) -> FileType {
        self.types[i]
    }
    pub(super) fn get(&self, i: usize) -> &CStr {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        CStr::from_bytes_with_nul(&self.bytes[start..self.ends[i]]).expect("pushed as a CStr")
    }
}
