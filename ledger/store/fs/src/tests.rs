use super::*;
use acme_store::MemStorage;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};

/// A fresh, not yet created directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "acme-store-fs-test-{}-{n}-{tag}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&path);
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn rw(dir: &TempDir) -> FileStorage {
    FileStorage::open(dir.path(), Mode::ReadWrite).expect("open read-write")
}

fn read_all(s: &mut FileStorage, file: &str) -> Vec<u8> {
    let size = s.size(file).expect("size");
    let mut buf = vec![0xAA; size as usize + 8];
    let n = s.read_at(file, 0, &mut buf).expect("read");
    assert_eq!(n as u64, size, "a read from 0 returns the whole file");
    buf.truncate(n);
    buf
}

fn kind<T: std::fmt::Debug>(r: Result<T, StorageError>) -> StorageErrorKind {
    r.expect_err("expected an error").kind
}

#[test]
fn round_trip_at_offsets_with_a_gap_and_short_reads() {
    let dir = TempDir::new("roundtrip");
    let mut s = rw(&dir);
    assert!(!s.read_only());
    assert_eq!(s.dir(), dir.path());
    s.write_at("seg", 0, b"hello").unwrap();
    s.write_at("seg", 10, b"world").unwrap();
    assert_eq!(s.size("seg").unwrap(), 15);
    assert_eq!(read_all(&mut s, "seg"), b"hello\0\0\0\0\0world");

    // Short read at the end, nothing at or past it, and no panic far past it.
    let mut buf = [0u8; 10];
    assert_eq!(s.read_at("seg", 12, &mut buf).unwrap(), 3);
    assert_eq!(&buf[..3], b"rld");
    assert_eq!(s.read_at("seg", 15, &mut buf).unwrap(), 0);
    assert_eq!(s.read_at("seg", 1 << 40, &mut buf).unwrap(), 0);
    assert_eq!(s.read_at("seg", i64::MAX as u64, &mut buf).unwrap(), 0);
    assert_eq!(s.read_at("seg", u64::MAX, &mut buf).unwrap(), 0);
    assert_eq!(s.read_at("seg", 0, &mut []).unwrap(), 0);

    // Overwrite in the middle, across the gap.
    s.write_at("seg", 3, b"XXXXXXXX").unwrap();
    assert_eq!(read_all(&mut s, "seg"), b"helXXXXXXXXorld");
    // An empty write past the end extends with zeros, like MemStorage.
    s.write_at("seg", 20, b"").unwrap();
    assert_eq!(s.size("seg").unwrap(), 20);
    s.write_at("seg", 5, b"").unwrap();
    assert_eq!(s.size("seg").unwrap(), 20);
    s.sync("seg").unwrap();
    s.sync_dir().unwrap();

    // Out-of-range writes are errors, not panics.
    assert_eq!(
        kind(s.write_at("seg", u64::MAX, b"x")),
        StorageErrorKind::Io
    );
    assert_eq!(
        kind(s.write_at("seg", i64::MAX as u64, b"xy")),
        StorageErrorKind::Io
    );
    assert_eq!(kind(s.write_at("seg", 1 << 62, b"x")), StorageErrorKind::Io);
    assert_eq!(kind(s.truncate("seg", u64::MAX)), StorageErrorKind::Io);
    assert_eq!(s.size("seg").unwrap(), 20);

    // The contents are on disk, as another opener sees them.
    drop(s);
    let mut again = rw(&dir);
    assert_eq!(read_all(&mut again, "seg"), b"helXXXXXXXXorld\0\0\0\0\0");
    assert_eq!(
        fs::read(dir.path().join("seg")).unwrap(),
        b"helXXXXXXXXorld\0\0\0\0\0"
    );
}

#[test]
fn large_reads_and_writes_round_trip() {
    let dir = TempDir::new("large");
    let mut s = rw(&dir);
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    s.write_at("big", 4096, &data).unwrap();
    s.sync("big").unwrap();
    let mut buf = vec![0u8; data.len() + 4096 + 100];
    let n = s.read_at("big", 0, &mut buf).unwrap();
    assert_eq!(n, data.len() + 4096);
    assert!(buf[..4096].iter().all(|&b| b == 0));
    assert_eq!(&buf[4096..n], &data[..]);
}

#[test]
fn truncate_cuts_and_extends() {
    let dir = TempDir::new("truncate");
    let mut s = rw(&dir);
    s.write_at("f", 0, b"0123456789").unwrap();
    s.truncate("f", 4).unwrap();
    assert_eq!(s.size("f").unwrap(), 4);
    assert_eq!(read_all(&mut s, "f"), b"0123");
    s.truncate("f", 6).unwrap();
    assert_eq!(read_all(&mut s, "f"), b"0123\0\0");
    s.truncate("f", 0).unwrap();
    assert_eq!(s.size("f").unwrap(), 0);
    let mut buf = [0u8; 4];
    assert_eq!(s.read_at("f", 0, &mut buf).unwrap(), 0);
    s.sync("f").unwrap();
    assert_eq!(kind(s.truncate("missing", 0)), StorageErrorKind::NotFound);
}

#[test]
fn rename_replaces_and_moves_cached_handles() {
    let dir = TempDir::new("rename");
    let mut s = rw(&dir);
    s.write_at("a", 0, b"A").unwrap();
    s.write_at("b", 0, b"BBBB").unwrap();
    // Both handles are cached now; the rename must not leave a stale one behind.
    s.rename("a", "b").unwrap();
    assert_eq!(read_all(&mut s, "b"), b"A");
    assert_eq!(kind(s.size("a")), StorageErrorKind::NotFound);
    assert_eq!(s.list().unwrap(), ["b"]);
    s.write_at("b", 1, b"Z").unwrap();
    assert_eq!(fs::read(dir.path().join("b")).unwrap(), b"AZ");

    // Into a fresh name, to itself, and from a missing file.
    s.rename("b", "c").unwrap();
    assert_eq!(read_all(&mut s, "c"), b"AZ");
    s.rename("c", "c").unwrap();
    assert_eq!(read_all(&mut s, "c"), b"AZ");
    assert_eq!(kind(s.rename("a", "d")), StorageErrorKind::NotFound);
    assert_eq!(s.list().unwrap(), ["c"]);
    s.sync_dir().unwrap();

    // A directory is not renamed, nor renamed over.
    fs::create_dir(dir.path().join("sub")).unwrap();
    assert_eq!(kind(s.rename("sub", "x")), StorageErrorKind::Io);
    assert_eq!(kind(s.rename("c", "sub")), StorageErrorKind::Io);
    assert_eq!(read_all(&mut s, "c"), b"AZ");
}

#[test]
fn remove_deletes_and_forgets_the_handle() {
    let dir = TempDir::new("remove");
    let mut s = rw(&dir);
    s.write_at("f", 0, b"old contents").unwrap();
    s.remove("f").unwrap();
    assert!(!dir.path().join("f").exists());
    let mut buf = [0u8; 4];
    assert_eq!(
        kind(s.read_at("f", 0, &mut buf)),
        StorageErrorKind::NotFound
    );
    assert_eq!(kind(s.remove("f")), StorageErrorKind::NotFound);
    assert!(s.list().unwrap().is_empty());
    // A new file of the same name starts empty, not on the removed one's handle.
    s.write_at("f", 0, b"new").unwrap();
    assert_eq!(read_all(&mut s, "f"), b"new");
    assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"new");
    s.sync_dir().unwrap();
}

#[test]
fn missing_files_are_not_found_and_not_created() {
    let dir = TempDir::new("missing");
    let mut s = rw(&dir);
    let mut buf = [0u8; 4];
    assert_eq!(
        kind(s.read_at("m", 0, &mut buf)),
        StorageErrorKind::NotFound
    );
    assert_eq!(kind(s.size("m")), StorageErrorKind::NotFound);
    assert_eq!(kind(s.sync("m")), StorageErrorKind::NotFound);
    assert_eq!(kind(s.truncate("m", 3)), StorageErrorKind::NotFound);
    assert_eq!(kind(s.remove("m")), StorageErrorKind::NotFound);
    assert_eq!(kind(s.rename("m", "n")), StorageErrorKind::NotFound);
    assert!(s.list().unwrap().is_empty());
    assert!(!dir.path().join("m").exists());
    let err = s.size("m").unwrap_err();
    assert_eq!((err.op, err.file.as_str()), ("size", "m"));
}

#[test]
fn list_is_sorted_regular_files_without_lock() {
    let dir = TempDir::new("list");
    let mut s = rw(&dir);
    for name in ["c", "a", "b10", "b2"] {
        s.write_at(name, 0, name.as_bytes()).unwrap();
    }
    fs::create_dir(dir.path().join("subdir")).unwrap();
    fs::write(dir.path().join("x".repeat(65)), b"too long a name").unwrap();
    std::os::unix::fs::symlink(dir.path().join("a"), dir.path().join("link")).unwrap();
    assert!(dir.path().join(LOCK).is_file());
    assert_eq!(s.list().unwrap(), ["a", "b10", "b2", "c"]);
    // A subdirectory is not a file to read, write or size.
    let mut buf = [0u8; 4];
    assert_eq!(kind(s.read_at("subdir", 0, &mut buf)), StorageErrorKind::Io);
    assert_eq!(kind(s.write_at("subdir", 0, b"x")), StorageErrorKind::Io);
    assert_eq!(kind(s.size("subdir")), StorageErrorKind::Io);
    assert_eq!(kind(s.remove("subdir")), StorageErrorKind::Io);
}

#[test]
fn read_write_open_creates_missing_directories() {
    let dir = TempDir::new("nested");
    let nested = dir.path().join("one").join("two");
    let mut s = FileStorage::open(&nested, Mode::ReadWrite).unwrap();
    assert!(nested.join(LOCK).is_file());
    s.write_at("f", 0, b"x").unwrap();
    assert_eq!(s.list().unwrap(), ["f"]);
    // A path that is a file is refused, naming it.
    drop(s);
    let file = nested.join("f");
    let err = FileStorage::open(&file, Mode::ReadWrite).unwrap_err();
    assert!(err.reason.contains(&file.display().to_string()), "{err}");
    assert!(FileStorage::open(&file, Mode::ReadOnly).is_err());
    assert!(FileStorage::open(Path::new(""), Mode::ReadOnly).is_err());
}

#[test]
fn read_only_refuses_every_change() {
    let dir = TempDir::new("readonly");
    {
        let mut s = rw(&dir);
        s.write_at("a", 0, b"alpha").unwrap();
        s.write_at("b", 0, b"beta").unwrap();
        s.sync("a").unwrap();
        s.sync("b").unwrap();
        s.sync_dir().unwrap();
    }
    let snapshot = |p: &Path| -> Vec<(String, Vec<u8>)> {
        let mut v: Vec<_> = fs::read_dir(p)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().into_string().unwrap(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let before = snapshot(dir.path());

    let mut s = FileStorage::open(dir.path(), Mode::ReadOnly).unwrap();
    assert!(s.read_only());
    assert_eq!(read_all(&mut s, "a"), b"alpha");
    assert_eq!(s.list().unwrap(), ["a", "b"]);
    let mut buf = [0u8; 4];
    assert_eq!(
        kind(s.read_at("new", 0, &mut buf)),
        StorageErrorKind::NotFound
    );

    use StorageErrorKind::ReadOnly;
    assert_eq!(kind(s.write_at("a", 0, b"X")), ReadOnly);
    assert_eq!(kind(s.write_at("new", 0, b"X")), ReadOnly);
    assert_eq!(kind(s.write_at("a", 0, b"")), ReadOnly);
    assert_eq!(kind(s.sync("a")), ReadOnly);
    assert_eq!(kind(s.truncate("a", 1)), ReadOnly);
    assert_eq!(kind(s.rename("a", "b")), ReadOnly);
    assert_eq!(kind(s.rename("a", "c")), ReadOnly);
    assert_eq!(kind(s.remove("a")), ReadOnly);
    assert_eq!(kind(s.sync_dir()), ReadOnly);
    // Read-only wins over a bad name: the storage refuses every change.
    assert_eq!(kind(s.write_at("a/b", 0, b"X")), ReadOnly);
    assert_eq!(read_all(&mut s, "a"), b"alpha");
    assert_eq!(read_all(&mut s, "b"), b"beta");
    drop(s);
    assert_eq!(snapshot(dir.path()), before);

    // A missing directory is an error and stays missing, and so does a missing LOCK.
    let missing = dir.path().join("nope");
    let err = FileStorage::open(&missing, Mode::ReadOnly).unwrap_err();
    assert_eq!(err.kind, StorageErrorKind::NotFound);
    assert!(err.reason.contains(&missing.display().to_string()), "{err}");
    assert!(!missing.exists());
    let bare = dir.path().join("bare");
    fs::create_dir(&bare).unwrap();
    let mut s = FileStorage::open(&bare, Mode::ReadOnly).unwrap();
    assert!(s.list().unwrap().is_empty());
    drop(s);
    assert_eq!(fs::read_dir(&bare).unwrap().count(), 0);
}

#[test]
fn one_writer_at_a_time_and_readers_alongside() {
    let dir = TempDir::new("lock");
    let mut writer = rw(&dir);
    writer.write_at("f", 0, b"data").unwrap();

    let err = FileStorage::open(dir.path(), Mode::ReadWrite).unwrap_err();
    assert_eq!(err.kind, StorageErrorKind::Io);
    assert_eq!(err.op, "open");
    assert!(
        err.reason.contains(&dir.path().display().to_string()),
        "{err}"
    );
    assert!(err.reason.contains("locked"), "{err}");

    // A reader still opens (without the shared lock, which the writer's excludes).
    let mut reader = FileStorage::open(dir.path(), Mode::ReadOnly).unwrap();
    assert_eq!(read_all(&mut reader, "f"), b"data");
    drop(reader);

    // Once the writer is gone another may open; a reader holding the shared lock keeps writers
    // out, and readers share.
    drop(writer);
    let reader = FileStorage::open(dir.path(), Mode::ReadOnly).unwrap();
    let reader2 = FileStorage::open(dir.path(), Mode::ReadOnly).unwrap();
    assert!(FileStorage::open(dir.path(), Mode::ReadWrite).is_err());
    drop(reader);
    drop(reader2);
    let mut writer = rw(&dir);
    assert_eq!(read_all(&mut writer, "f"), b"data");
}

const HOLDER_ENV: &str = "ACME_STORE_FS_LOCK_HOLDER";

/// The child half of `another_process_holding_the_lock_keeps_writers_out`: does nothing unless
/// run by it.
#[test]
#[ignore = "run as a child process by another test"]
fn lock_holder_child() {
    let Ok(dir) = std::env::var(HOLDER_ENV) else {
        return;
    };
    let _storage = FileStorage::open(Path::new(&dir), Mode::ReadWrite).expect("child opens");
    println!("holding the lock");
    // Hold it until the parent closes our stdin.
    let mut line = String::new();
    while std::io::stdin()
        .read_line(&mut line)
        .map(|n| n > 0)
        .unwrap_or(false)
    {}
}

#[test]
fn another_process_holding_the_lock_keeps_writers_out() {
    let dir = TempDir::new("xproc");
    fs::create_dir(dir.path()).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "tests::lock_holder_child",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOLDER_ENV, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Keep the pipe open to the end: the child reports its result on it.
    let mut lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok);
    let holding = lines.any(|line| line.contains("holding the lock"));
    assert!(holding, "the child did not take the lock");

    let err = FileStorage::open(dir.path(), Mode::ReadWrite).unwrap_err();
    assert!(err.reason.contains("locked"), "{err}");
    assert!(
        err.reason.contains(&dir.path().display().to_string()),
        "{err}"
    );
    assert!(FileStorage::open(dir.path(), Mode::ReadOnly).is_ok());

    drop(child.stdin.take());
    let rest: Vec<String> = lines.collect();
    assert!(child.wait().unwrap().success(), "child: {rest:?}");
    assert!(FileStorage::open(dir.path(), Mode::ReadWrite).is_ok());
}

#[test]
fn bad_names_are_refused() {
    let dir = TempDir::new("names");
    let mut s = rw(&dir);
    s.write_at("ok", 0, b"x").unwrap();
    let long = "n".repeat(65);
    let bad = [
        "",
        "a/b",
        "/abs",
        "dir/",
        ".",
        "..",
        "a\0b",
        LOCK,
        long.as_str(),
    ];
    let mut buf = [0u8; 4];
    for name in bad {
        let check = |r: Result<(), StorageError>| {
            let err = r.expect_err(name);
            assert_eq!(err.kind, StorageErrorKind::Io, "{name:?}");
            assert!(err.reason.starts_with("bad file name"), "{name:?}: {err}");
        };
        check(s.read_at(name, 0, &mut buf).map(|_| ()));
        check(s.write_at(name, 0, b"x"));
        check(s.sync(name));
        check(s.truncate(name, 0));
        check(s.size(name).map(|_| ()));
        check(s.rename(name, "ok2"));
        check(s.rename("ok", name));
        check(s.remove(name));
    }
    assert_eq!(s.list().unwrap(), ["ok"]);
    assert_eq!(fs::read(dir.path().join(LOCK)).unwrap(), b"");
    // 64 bytes, dots and other punctuation inside a name are fine.
    let longest = "m".repeat(64);
    for name in [longest.as_str(), "...", ".hidden", "a.b-c_d", "é"] {
        s.write_at(name, 0, b"y").unwrap();
        assert_eq!(read_all(&mut s, name), b"y");
    }
}

/// A small deterministic generator, so the comparison below needs no dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

type Outcome = Result<Vec<u8>, StorageErrorKind>;

fn outcome<T: Into<Vec<u8>>>(r: Result<T, StorageError>) -> Outcome {
    r.map(Into::into).map_err(|e| e.kind)
}

/// One random call on a storage; the result as bytes (or the error kind) to compare.
fn step(s: &mut dyn Storage, op: u64, rng_vals: [u64; 4]) -> Outcome {
    let names = ["a", "b", "c"];
    let name = names[(rng_vals[0] % 3) as usize];
    let other = names[(rng_vals[1] % 3) as usize];
    let offset = rng_vals[2] % 80;
    let len = (rng_vals[3] % 40) as usize;
    match op {
        0..=3 => {
            let data: Vec<u8> = (0..len).map(|i| (i as u64 + rng_vals[3]) as u8).collect();
            outcome(s.write_at(name, offset, &data).map(|()| Vec::new()))
        }
        4..=5 => {
            let mut buf = vec![0u8; len];
            outcome(s.read_at(name, offset, &mut buf).map(|n| {
                buf.truncate(n);
                buf
            }))
        }
        6 => outcome(s.truncate(name, offset).map(|()| Vec::new())),
        7 => outcome(s.size(name).map(|n| n.to_le_bytes().to_vec())),
        8 => outcome(s.rename(name, other).map(|()| Vec::new())),
        9 => outcome(s.remove(name).map(|()| Vec::new())),
        10 => outcome(s.sync(name).map(|()| Vec::new())),
        _ => outcome(s.sync_dir().map(|()| Vec::new())),
    }
}

fn contents(s: &mut dyn Storage) -> Vec<(String, Vec<u8>)> {
    let names = s.list().unwrap();
    names
        .into_iter()
        .map(|name| {
            let size = s.size(&name).unwrap();
            let mut buf = vec![0u8; size as usize];
            assert_eq!(
                acme_store::read_exact_at(s, &name, 0, &mut buf).unwrap(),
                buf.len()
            );
            (name, buf)
        })
        .collect()
}

#[test]
fn behaves_like_mem_storage_on_random_calls() {
    for seed in 1..=8u64 {
        let dir = TempDir::new("differential");
        let mut real = rw(&dir);
        let mut mem = MemStorage::new();
        let mut rng = XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
        for i in 0..400 {
            let op = rng.below(12);
            let vals = [rng.next(), rng.next(), rng.next(), rng.next()];
            let a = step(&mut real, op, vals);
            let b = step(&mut mem, op, vals);
            assert_eq!(a, b, "seed {seed} step {i} op {op}");
            if i % 20 == 0 {
                assert_eq!(
                    contents(&mut real),
                    contents(&mut mem),
                    "seed {seed} step {i}"
                );
            }
        }
        assert_eq!(contents(&mut real), contents(&mut mem), "seed {seed}");
        // And what is on disk survives reopening.
        drop(real);
        let mut reopened = FileStorage::open(dir.path(), Mode::ReadOnly).unwrap();
        assert_eq!(contents(&mut reopened), contents(&mut mem), "seed {seed}");
    }
}
