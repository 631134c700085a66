//! Why setting or lifting a disk budget failed on its own terms: a call the kernel refused, a
//! tree that is no longer the one plan saw. The core error wraps them as the source.
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("{what} {}: {source}", path.display())]
    Sys {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is no longer btrfs subvolume {subvolume} on device {dev} as plan saw it; plan again", path.display())]
    Moved {
        path: PathBuf,
        dev: u64,
        subvolume: u64,
    },
    #[error("{} is not a directory (a link?); isolate never follows one", path.display())]
    NotADirectory { path: PathBuf },
}
