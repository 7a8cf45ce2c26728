//! State files are replaced whole or not at all: write a temporary file in
//! the same directory, fsync it, rename it over the target, fsync the directory.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

pub fn write(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_with(path, |file| file.write_all(contents))
}

/// [`write`] for a file only its owner may read: the temporary file is
/// made with mode 0600, so no moment exists when another user could open
/// it, and it is made new, never an existing file or a link put in its way.
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    write_opened(path, true, |file| file.write_all(contents))
}

/// Replace `path` whole with what `fill` writes into a new file, as
/// [`write`] does: for contents too large to hold in memory.
pub fn write_with(
    path: &Path,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
    write_opened(path, false, fill)
}

fn write_opened(
    path: &Path,
    private: bool,
    fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>,
) -> std::io::Result<()> {
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
        let mut file = if private {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&temp)?
        } else {
            std::fs::File::create(&temp)?
        };
        fill(&mut file)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)?;
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
