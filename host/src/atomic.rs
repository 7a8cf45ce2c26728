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
/// may be lost if the machine does. For outputs written in bulk whose
/// caller syncs them once, with [`sync_filesystem`].
pub fn write_unsynced(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    replace(path, contents, false)
}

/// Flush everything written to the file system that holds `path`: one call
/// instead of one fsync per file.
pub fn sync_filesystem(path: &Path) -> std::io::Result<()> {
    let dir = std::fs::File::open(path)?;
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: the descriptor is open for the duration of the call.
        if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        drop(dir);
        // SAFETY: sync takes no arguments and cannot fail.
        unsafe { libc::sync() };
        Ok(())
    }
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
