//! A directory's entry names as the traversal holds them while it works through them.
use std::ffi::CStr;

/// A directory's entry names, NUL-terminated in one buffer (one allocation, not one each).
#[derive(Default)]
pub(super) struct Names {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl Names {
    pub(super) fn push(&mut self, name: &CStr) {
        self.bytes.extend_from_slice(name.to_bytes_with_nul());
        self.ends.push(self.bytes.len());
    }
    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }
    pub(super) fn get(&self, i: usize) -> &CStr {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        CStr::from_bytes_with_nul(&self.bytes[start..self.ends[i]]).expect("pushed as a CStr")
    }
}
