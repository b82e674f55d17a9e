//! The file drop's file operations, each durable when it returns: a file is written under a
//! temporary name, synced, renamed into place and its directory synced, so a reader (or a
//! restart) sees the whole file or none of it; a move syncs both directories.

use super::format::Bad;
use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

/// Largest inbox file read: a day's notices are a few rows a fund.
pub const FILE_MAX: u64 = 8 << 20;

fn sync_dir(dir: &Path) -> Result<(), String> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("sync {}: {e}", dir.display()))
}

/// Writes `bytes` as `dir/name`, replacing any file of that name whole.
pub fn write_durable(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), String> {
    let tmp = dir.join(format!(".{name}.tmp"));
    let target = dir.join(name);
    let io = |e: std::io::Error| format!("write {}: {e}", target.display());
    let mut f = File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    fs::rename(&tmp, &target).map_err(io)?;
    sync_dir(dir)
}

/// Moves `from/name` to `to/name` (replacing a file of that name there).
pub fn move_durable(from: &Path, to: &Path, name: &str) -> Result<(), String> {
    fs::rename(from.join(name), to.join(name)).map_err(|e| {
        format!(
            "move {} to {}: {e}",
            from.join(name).display(),
            to.display()
        )
    })?;
    sync_dir(to)?;
    sync_dir(from)
}

/// Whether the file drop leaves a name alone: hidden files and files still being written
/// (`.tmp`, `.part`) are the writer's until it renames them.
pub fn ignored(name: &str) -> bool {
    name.starts_with('.') || name.ends_with(".tmp") || name.ends_with(".part")
}

/// The regular files of `dir` that are not [`ignored`], by name.
pub fn listing(dir: &Path) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| format!("list {}: {e}", dir.display()))?;
    for entry in entries {
        let entry = entry.map_err(|e| format!("list {}: {e}", dir.display()))?;
        let is_file = entry.file_type().is_ok_and(|t| t.is_file());
        match entry.file_name().into_string() {
            Ok(name) if is_file && !ignored(&name) => out.push(name),
            _ => {}
        }
    }
    out.sort();
    Ok(out)
}

/// The text of `dir/name`, or why it is not text a notices file could be (`Ok(Err)`); an I/O
/// failure is `Err` (the file is left for the next look).
pub fn read_text(dir: &Path, name: &str) -> Result<Result<String, Bad>, String> {
    let path = dir.join(name);
    let io = |e: std::io::Error| format!("read {}: {e}", path.display());
    let len = fs::metadata(&path).map_err(io)?.len();
    if len > FILE_MAX {
        return Ok(Err(Bad {
            line: None,
            field: "file".into(),
            reason: format!("{len} bytes, more than the {FILE_MAX} taken"),
        }));
    }
    let bytes = fs::read(&path).map_err(io)?;
    Ok(String::from_utf8(bytes).map_err(|e| {
        let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = upto.iter().filter(|b| **b == b'\n').count() + 1;
        Bad::at(line as u64, "file", "not UTF-8 text")
    }))
}
