//! What a durable write costs on this machine, through `FileStorage`:
//! (a) 4 KiB append + fdatasync, (b) 1 MiB append + fdatasync, (c) 1 MiB overwrite of an
//! already written and synced region + fdatasync, and for comparison (d) 1 MiB written into a
//! region "preallocated" by `truncate` (a hole) + fdatasync. Each call is timed on its own; p50, p99, max
//! and throughput (bytes over the summed call times, MB = 10^6 bytes) are printed.
//!
//! `cargo run --release -p acme-store-fs --example fsync_cost -- DIR [ITERATIONS] [BIG_ITERATIONS]`
//!
//! DIR should be on the disk you care about (not tmpfs). The benchmark's files are removed at
//! the end; the directory and its `LOCK` stay.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use acme_store::Storage;
use acme_store_fs::{FileStorage, Mode};
use std::error::Error;
use std::path::PathBuf;
use std::time::{Duration, Instant};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args_os().skip(1);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: fsync_cost DIR [ITERATIONS] [BIG_ITERATIONS]");
        std::process::exit(2);
    };
    let parse = |a: Option<std::ffi::OsString>, default: usize| -> Result<usize, Box<dyn Error>> {
        match a {
            None => Ok(default),
            Some(s) => Ok(s.to_str().ok_or("bad number")?.parse()?),
        }
    };
    let iterations = parse(args.next(), 200)?.max(1);
    let big = parse(args.next(), iterations)?.max(1);

    let mut s = FileStorage::open(&dir, Mode::ReadWrite)?;
    println!("directory {}", s.dir().display());
    println!(
        "{:<50} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "operation", "calls", "p50 ms", "p99 ms", "max ms", "mean ms", "MB/s"
    );

    let small = append(&mut s, "fsync-cost-4k", 4 * KIB, iterations)?;
    report("(a) 4 KiB append + fdatasync", 4 * KIB, &small);
    let large = append(&mut s, "fsync-cost-1m", MIB, big)?;
    report("(b) 1 MiB append + fdatasync", MIB, &large);
    let over = overwrite(&mut s, "fsync-cost-over", MIB, big)?;
    report(
        "(c) 1 MiB overwrite (written, synced) + fdatasync",
        MIB,
        &over,
    );
    let holes = fill_holes(&mut s, "fsync-cost-holes", MIB, big)?;
    report(
        "(d) 1 MiB write into a hole (set_len) + fdatasync",
        MIB,
        &holes,
    );

    for name in [
        "fsync-cost-4k",
        "fsync-cost-1m",
        "fsync-cost-over",
        "fsync-cost-holes",
    ] {
        s.remove(name)?;
    }
    s.sync_dir()?;
    Ok(())
}

/// Creates `file` (one block, synced, directory synced: not timed), then times `n` appends of
/// `block` bytes, each followed by fdatasync.
fn append(
    s: &mut FileStorage,
    file: &str,
    block: usize,
    n: usize,
) -> Result<Vec<Duration>, Box<dyn Error>> {
    fresh(s, file)?;
    let mut offset = 0u64;
    s.write_at(file, offset, &pattern(block, 0))?;
    s.sync(file)?;
    s.sync_dir()?;
    offset += block as u64;
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let data = pattern(block, i as u64 + 1);
        let start = Instant::now();
        s.write_at(file, offset, &data)?;
        s.sync(file)?;
        times.push(start.elapsed());
        offset += block as u64;
    }
    Ok(times)
}

/// Writes and syncs `n` blocks of `file` (not timed), then times overwriting each in turn with
/// new bytes, each followed by fdatasync: no size change, so no metadata to journal.
fn overwrite(
    s: &mut FileStorage,
    file: &str,
    block: usize,
    n: usize,
) -> Result<Vec<Duration>, Box<dyn Error>> {
    fresh(s, file)?;
    for i in 0..n {
        s.write_at(file, (i * block) as u64, &pattern(block, i as u64))?;
    }
    s.sync(file)?;
    s.sync_dir()?;
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let data = pattern(block, (n + i) as u64 + 7);
        let start = Instant::now();
        s.write_at(file, (i * block) as u64, &data)?;
        s.sync(file)?;
        times.push(start.elapsed());
    }
    Ok(times)
}

/// Extends `file` to `n` blocks with `set_len` (a hole: no blocks allocated) and syncs it (not
/// timed), then times writing each block in turn, each followed by fdatasync: the size does not
/// change but every block must be allocated, as when a log is "preallocated" by truncate.
fn fill_holes(
    s: &mut FileStorage,
    file: &str,
    block: usize,
    n: usize,
) -> Result<Vec<Duration>, Box<dyn Error>> {
    fresh(s, file)?;
    s.write_at(file, 0, &[])?;
    s.truncate(file, (n * block) as u64)?;
    s.sync(file)?;
    s.sync_dir()?;
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let data = pattern(block, i as u64 + 3);
        let start = Instant::now();
        s.write_at(file, (i * block) as u64, &data)?;
        s.sync(file)?;
        times.push(start.elapsed());
    }
    Ok(times)
}

fn fresh(s: &mut FileStorage, file: &str) -> Result<(), Box<dyn Error>> {
    if s.list()?.iter().any(|f| f == file) {
        s.remove(file)?;
        s.sync_dir()?;
    }
    Ok(())
}

/// Bytes that differ per block and are not all zeros.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn report(what: &str, block: usize, times: &[Duration]) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let n = sorted.len();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let pick = |q: f64| sorted[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
    let total: Duration = sorted.iter().sum();
    let mb_s = (block * n) as f64 / total.as_secs_f64() / 1e6;
    println!(
        "{:<50} {:>6} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.1}",
        what,
        n,
        ms(pick(0.50)),
        ms(pick(0.99)),
        ms(sorted[n - 1]),
        ms(total) / n as f64,
        mb_s
    );
}
