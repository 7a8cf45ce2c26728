//! State files are replaced whole or not at all: write a temporary file in
//! the same directory, fsync it, rename it over the target, fsync the directory.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

pub fn write(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    replace(path, contents, true)
}

/// Replace `path` whole, as [`write`] does, but leave flushing to the disk
/// to the caller: the file is complete or absent if the process dies, and
/// may be lost if the machine does, until the caller syncs it with
/// [`sync_files`].
pub fn write_unsynced(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    replace(path, contents, false)
}

/// Flush `files`, and the directories that name them, to the disk.
pub fn sync_files(files: &[std::path::PathBuf]) -> std::io::Result<()> {
    let mut dirs = std::collections::BTreeSet::new();
    for file in files {
        std::fs::File::open(file)?.sync_all()?;
        if let Some(dir) = file.parent() {
            dirs.insert(dir.to_path_buf());
        }
    }
    for dir in dirs {
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

fn replace(path: &Path, contents: &[u8], synced: bool) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("state");
    // Unique per write, so that two tasks replacing the same file at once
    // each rename a whole file of their own.
    static WRITES: AtomicU64 = AtomicU64::new(0);
    let temp = dir.join(format!(
        ".{file_name}.{}.{}.tmp",
        std::process::id(),
        WRITES.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(contents)?;
        if synced {
            file.sync_all()?;
        }
        std::fs::rename(&temp, path)?;
        if !synced {
            return Ok(());
        }
        if let Ok(dir) = std::fs::File::open(dir) {
            // Not every file system lets a directory be synced; the rename
            // itself is still atomic there.
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}
