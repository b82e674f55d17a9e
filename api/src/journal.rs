//! The API's own durable log, `DIR/api/journal`: members registered, idempotency keys and the
//! answers given under them, and the outcomes intake reported. One JSON record a line, each
//! behind the first 8 bytes of its SHA-256 in hex, so a torn last line (a crash mid-write) is
//! told apart from damage further up, which refuses the start.
//!
//! Appends go through one writer thread that groups whatever is waiting into one write and one
//! `fdatasync` (group commit): under load many requests share a sync, and none is answered
//! before its record is on disk. A failed write or sync is fatal: the process aborts rather
//! than answer for something it may not have kept.

use serde::{de::DeserializeOwned, Serialize};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use tokio::sync::oneshot;

type Job = (Vec<u8>, oneshot::Sender<()>);

/// What the writer has done, for `/metrics`.
#[derive(Debug, Default)]
pub struct JournalStats {
    pub syncs: AtomicU64,
    pub records: AtomicU64,
    /// Sum of sync latencies, microseconds.
    pub sync_micros: AtomicU64,
    /// The largest group written by one sync.
    pub batch_max: AtomicU64,
}

#[derive(Clone)]
pub struct Journal {
    jobs: std_mpsc::Sender<Job>,
    pub stats: Arc<JournalStats>,
}

fn checksum(json: &[u8]) -> String {
    crate::auth::hex(&crate::auth::sha256(json)[..8])
}

/// Reads every record of the journal at `path` (creating it if missing), cutting off a torn
/// last line, and starts the writer on it.
pub fn open<R: DeserializeOwned>(path: &Path) -> Result<(Journal, Vec<R>), String> {
    let at = |e: &dyn std::fmt::Display| format!("journal {}: {e}", path.display());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| at(&e))?;
    }
    let mut file = OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .open(path)
        .map_err(|e| at(&e))?;
    let (records, good_len) = read_records(&file).map_err(|e| at(&e))?;
    let len = file.metadata().map_err(|e| at(&e))?.len();
    if good_len < len {
        eprintln!(
            "acme serve: journal {}: cut a torn last record ({} bytes)",
            path.display(),
            len - good_len
        );
        file.set_len(good_len).map_err(|e| at(&e))?;
        file.sync_all().map_err(|e| at(&e))?;
    }
    file.seek(SeekFrom::End(0)).map_err(|e| at(&e))?;
    if let Some(dir) = path.parent() {
        // The file's own entry must be durable too before anything in it is relied on.
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| at(&e))?;
    }
    let (tx, rx) = std_mpsc::channel();
    let stats = Arc::new(JournalStats::default());
    let writer_stats = stats.clone();
    let name = path.display().to_string();
    std::thread::Builder::new()
        .name("acme-api-journal".into())
        .spawn(move || write_loop(file, rx, &writer_stats, &name))
        .map_err(|e| at(&e))?;
    Ok((Journal { jobs: tx, stats }, records))
}

/// The records, and the length of the file up to the end of the last good one.
fn read_records<R: DeserializeOwned>(file: &File) -> Result<(Vec<R>, u64), String> {
    let mut reader = BufReader::new(file);
    let mut records = Vec::new();
    let mut good_len = 0u64;
    let mut line = Vec::new();
    let mut number = 0;
    loop {
        line.clear();
        let n = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok((records, good_len));
        }
        number += 1;
        let complete = line.last() == Some(&b'\n');
        let parsed = complete.then(|| parse_line::<R>(&line[..n - 1])).flatten();
        match parsed {
            Some(r) => {
                records.push(r);
                good_len += n as u64;
            }
            None => {
                // Torn only if nothing follows: a crash tears the last write, never one before.
                let mut rest = Vec::new();
                std::io::Read::read_to_end(&mut reader, &mut rest).map_err(|e| e.to_string())?;
                if rest.iter().all(|b| *b == 0 || *b == b'\n') {
                    return Ok((records, good_len));
                }
                return Err(format!("record {number} is damaged and more follow it"));
            }
        }
    }
}

fn parse_line<R: DeserializeOwned>(line: &[u8]) -> Option<R> {
    let (sum, json) = line.split_at(line.iter().position(|b| *b == b' ')?);
    let json = &json[1..];
    (sum == checksum(json).as_bytes())
        .then(|| serde_json::from_slice(json).ok())
        .flatten()
}

fn write_loop(mut file: File, rx: std_mpsc::Receiver<Job>, stats: &JournalStats, name: &str) {
    let mut waiting = Vec::new();
    let mut buf = Vec::new();
    while let Ok(first) = rx.recv() {
        waiting.push(first);
        while let Ok(more) = rx.try_recv() {
            waiting.push(more);
        }
        buf.clear();
        for (bytes, _) in &waiting {
            buf.extend_from_slice(bytes);
        }
        let started = std::time::Instant::now();
        if let Err(e) = file.write_all(&buf).and_then(|()| file.sync_data()) {
            // An fsync that failed may have lost what it was to keep; nothing may be answered.
            eprintln!("acme serve: FATAL: journal {name}: {e}");
            std::process::abort();
        }
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        stats.syncs.fetch_add(1, Ordering::Relaxed);
        stats.sync_micros.fetch_add(micros, Ordering::Relaxed);
        stats
            .records
            .fetch_add(waiting.len() as u64, Ordering::Relaxed);
        stats
            .batch_max
            .fetch_max(waiting.len() as u64, Ordering::Relaxed);
        for (_, done) in waiting.drain(..) {
            let _ = done.send(());
        }
    }
}

impl Journal {
    /// Appends `record`; returns once it is durable. `Err` only when the writer is gone (the
    /// process is stopping).
    pub async fn append<R: Serialize>(&self, record: &R) -> Result<(), String> {
        self.queue(record)?
            .await
            .map_err(|_| "the journal writer has stopped".to_string())
    }

    /// Appends `records` in order; returns once all are durable (they share the writer's
    /// syncs). `Err` only when the writer is gone.
    pub async fn append_all<R: Serialize>(&self, records: &[R]) -> Result<(), String> {
        let mut waiting = Vec::with_capacity(records.len());
        for record in records {
            waiting.push(self.queue(record)?);
        }
        for synced in waiting {
            synced
                .await
                .map_err(|_| "the journal writer has stopped".to_string())?;
        }
        Ok(())
    }

    /// Appends `record` behind everything queued before it, without waiting for its sync: for
    /// a record whose loss a restart makes good (see `idempotency::finish`). `Err` only when
    /// the writer is gone.
    pub fn append_later<R: Serialize>(&self, record: &R) -> Result<(), String> {
        // Nobody waits on the answer: the writer's send to a dropped receiver is ignored.
        self.queue(record).map(drop)
    }

    /// Queues `record` as a checksummed line; the receiver is told once it is synced. Lines
    /// are written in the order they were queued, each group synced before the next is
    /// written, so a durable line follows every line queued before it.
    pub fn queue<R: Serialize>(&self, record: &R) -> Result<oneshot::Receiver<()>, String> {
        let json = serde_json::to_vec(record).map_err(|e| e.to_string())?;
        let mut line = checksum(&json).into_bytes();
        line.push(b' ');
        line.extend_from_slice(&json);
        line.push(b'\n');
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send((line, tx))
            .map_err(|_| "the journal writer has stopped".to_string())?;
        Ok(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_come_back_and_a_torn_tail_is_cut_but_damage_is_refused() {
        let dir = std::env::temp_dir().join(format!("acme-api-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("journal");
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let (j, none) = open::<Vec<u32>>(&path).expect("opens");
        assert!(none.is_empty());
        rt.block_on(async {
            for i in 0..3u32 {
                j.append(&vec![i, i * 10]).await.expect("durable");
            }
        });
        drop(j);
        let mut f = OpenOptions::new().append(true).open(&path).expect("open");
        f.write_all(b"0123 [9, 9").expect("torn write");
        drop(f);
        let (_j, back) = open::<Vec<u32>>(&path).expect("a torn tail is cut");
        assert_eq!(back, vec![vec![0, 0], vec![1, 10], vec![2, 20]]);
        // Damage to a record that others follow refuses the start.
        let text = std::fs::read_to_string(&path).expect("read");
        std::fs::write(&path, text.replacen("[1,10]", "[1,11]", 1)).expect("write");
        let e = open::<Vec<u32>>(&path).err().expect("refused");
        assert!(e.contains("record 2 is damaged"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
