//! How many threads the walks run on. A walk mostly waits: on the disk when the cache is
//! cold, on the CPU another program holds when the machine is busy. More threads than cores
//! keep more directory reads and inode updates in flight (measured: README, "Benchmark").
use crate::error::Error;

/// Threads per core by default, and the bounds of the default.
const PER_CORE: usize = 8;
const MIN_DEFAULT: usize = 8;
const MAX_DEFAULT: usize = 64;
/// The most `--threads` accepts: each thread holds a few descriptors and a stack.
pub const MAX: usize = 256;

/// The default: [`PER_CORE`] threads per core this process may run on, within bounds.
pub fn default_count() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores * PER_CORE).clamp(MIN_DEFAULT, MAX_DEFAULT)
}

/// Sets the walks' thread count for this process (the default when `None`); returns it.
/// Once per process: a second call keeps the first count.
pub fn configure(threads: Option<usize>) -> Result<usize, Error> {
    let count = threads.unwrap_or_else(default_count);
    if count == 0 || count > MAX {
        return Err(Error::Usage(format!(
            "--threads {count}: give a number from 1 to {MAX}"
        )));
    }
    // Err: the pool was already built (a second call in one process): it stays as it is.
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(count)
        .thread_name(|i| format!("isolate-walk-{i}"))
        .build_global();
    Ok(rayon::current_num_threads())
}
