//! Files below a directory that plugins can write into (a run's workspace, a
//! git worktree), as the host itself reads and writes them.
//!
//! Everything in such a directory may have been planted by a plugin, so the
//! host resolves a path one component at a time from a directory it opened
//! itself, with `O_NOFOLLOW` at every step: a symbolic link anywhere in the
//! path is refused, never followed, whether it points outside or not. Each
//! step is relative to the descriptor of the step before, so swapping a
//! directory for a link between two steps changes nothing. Only regular files
//! are read (a FIFO or a device never blocks or feeds the host), and `.git`
//! is never a path the host reads or writes here.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path};
use std::sync::atomic::{AtomicU64, Ordering};

/// How many entries [`Beneath::files`] visits before it gives up: far more
/// than any phase writes, and few enough that a plugin that made millions of
/// files cannot keep the host walking.
pub const MAX_ENTRIES: usize = 100_000;

/// How many bytes of paths [`Beneath::files`] lists before it gives up: a
/// deep tree's paths grow with the square of its depth.
pub const MAX_LISTING_BYTES: usize = 16 << 20;

/// The largest file the host copies out of such a directory (into a bundle
/// or a commit): a plugin can make a sparse file of any size for free.
pub const MAX_FILE_BYTES: u64 = 256 << 20;

/// Why a path below the root was not read or written.
#[derive(Debug, thiserror::Error)]
pub enum BeneathError {
    #[error("`{0}` is not a relative path inside the directory")]
    NotRelative(String),
    #[error("`{0}` is or passes through a symbolic link, which the host never follows")]
    Link(String),
    #[error("`{0}` is not a regular file")]
    NotAFile(String),
    #[error("`{path}` is {size} bytes, over the {max} bytes the host reads")]
    TooLarge { path: String, size: u64, max: u64 },
    #[error("`{path}`: {source}")]
    Io { path: String, source: io::Error },
}

impl BeneathError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, BeneathError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// What is at a path below the root, without following it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    File { size: u64 },
    Dir,
    Link,
    Other,
    Missing,
}

/// What a walk found: regular files, and the links it did not follow, both
/// relative to the root with `/` separators and sorted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Listing {
    pub files: Vec<String>,
    pub links: Vec<String>,
    /// The walk stopped at [`MAX_ENTRIES`].
    pub truncated: bool,
}

/// A directory the host opened itself, from a path it chose.
#[derive(Debug)]
pub struct Beneath {
    root: OwnedFd,
}

fn c_name(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn open_at(
    dir: &OwnedFd,
    name: &OsStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    let name = c_name(name)?;
    // SAFETY: `dir` is an open descriptor and `name` a NUL-terminated string;
    // the descriptor returned, if any, is owned by nobody else.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            flags | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            libc::c_uint::from(mode),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by openat and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn lstat_at(dir: &OwnedFd, name: &OsStr) -> io::Result<libc::stat> {
    let name = c_name(name)?;
    let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `stat` is written by fstatat when it returns 0.
    let result = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            stat.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstatat returned 0, so it filled `stat`.
    Ok(unsafe { stat.assume_init() })
}

fn kind_of(stat: &libc::stat) -> Entry {
    match stat.st_mode & libc::S_IFMT {
        libc::S_IFREG => Entry::File {
            size: stat.st_size as u64,
        },
        libc::S_IFDIR => Entry::Dir,
        libc::S_IFLNK => Entry::Link,
        _ => Entry::Other,
    }
}

/// `relative` with `.` components left out, as git and listings name it,
/// or None where [`components`] refuses it.
pub fn normalized(relative: &str) -> Option<String> {
    let parts = components(relative)?;
    let parts: Option<Vec<&str>> = parts.iter().map(|p| p.to_str()).collect();
    Some(parts?.join("/"))
}

/// The components of a relative path, or None for an absolute path, `..`,
/// an empty path or one that names `.git`.
fn components(relative: &str) -> Option<Vec<&OsStr>> {
    let mut parts = Vec::new();
    for component in Path::new(relative).components() {
        match component {
            Component::Normal(part) if part != ".git" => parts.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!parts.is_empty()).then_some(parts)
}

impl Beneath {
    /// Open `root`, a path the host chose (not one read from the directory
    /// itself).
    pub fn open(root: &Path) -> io::Result<Beneath> {
        let dir = File::open(root)?;
        if !dir.metadata()?.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", root.display()),
            ));
        }
        Ok(Beneath { root: dir.into() })
    }

    /// The directory that holds `relative`, and the last component's name.
    /// With `create`, missing directories are made (never through a link).
    fn parent<'p>(
        &self,
        relative: &'p str,
        create: bool,
    ) -> Result<(OwnedFd, &'p OsStr), BeneathError> {
        let parts =
            components(relative).ok_or_else(|| BeneathError::NotRelative(relative.into()))?;
        let io_error = |source| BeneathError::Io {
            path: relative.to_string(),
            source,
        };
        let (last, dirs) = parts.split_last().expect("components are never empty");
        let mut dir = self.root.try_clone().map_err(io_error)?;
        for part in dirs {
            let opened = open_at(&dir, part, libc::O_RDONLY | libc::O_DIRECTORY, 0);
            let opened = match opened {
                Err(error) if create && error.kind() == io::ErrorKind::NotFound => {
                    let name = c_name(part).map_err(io_error)?;
                    // SAFETY: `dir` is open and `name` NUL-terminated.
                    let made = unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) };
                    if made != 0 {
                        let error = io::Error::last_os_error();
                        if error.kind() != io::ErrorKind::AlreadyExists {
                            return Err(io_error(error));
                        }
                    }
                    open_at(&dir, part, libc::O_RDONLY | libc::O_DIRECTORY, 0)
                }
                other => other,
            };
            dir = match opened {
                Ok(next) => next,
                Err(error) => {
                    return Err(match lstat_at(&dir, part).map(|s| kind_of(&s)) {
                        Ok(Entry::Link) => BeneathError::Link(relative.to_string()),
                        // A file where a directory would be: nothing is
                        // below it.
                        Ok(Entry::File { .. } | Entry::Other) => io_error(io::Error::new(
                            io::ErrorKind::NotFound,
                            format!("{} is not a directory", part.to_string_lossy()),
                        )),
                        _ => io_error(error),
                    });
                }
            };
        }
        Ok((dir, last))
    }

    /// What is at `relative`; a path through a link is [`Entry::Link`].
    pub fn entry(&self, relative: &str) -> Result<Entry, BeneathError> {
        let (dir, name) = match self.parent(relative, false) {
            Ok(found) => found,
            Err(BeneathError::Link(_)) => return Ok(Entry::Link),
            Err(error) if error.is_not_found() => return Ok(Entry::Missing),
            Err(error) => return Err(error),
        };
        match lstat_at(&dir, name) {
            Ok(stat) => Ok(kind_of(&stat)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Entry::Missing),
            Err(source) => Err(BeneathError::Io {
                path: relative.to_string(),
                source,
            }),
        }
    }

    /// Open the regular file at `relative` for reading, with its size.
    pub fn open_file(&self, relative: &str) -> Result<(File, u64), BeneathError> {
        let (dir, name) = self.parent(relative, false)?;
        let io_error = |source| BeneathError::Io {
            path: relative.to_string(),
            source,
        };
        // Non-blocking, so that opening a FIFO does not wait for a writer.
        let fd = match open_at(&dir, name, libc::O_RDONLY | libc::O_NONBLOCK, 0) {
            Ok(fd) => fd,
            Err(error) => {
                return Err(match lstat_at(&dir, name).map(|s| kind_of(&s)) {
                    Ok(Entry::Link) => BeneathError::Link(relative.to_string()),
                    _ => io_error(error),
                })
            }
        };
        let file = File::from(fd);
        let metadata = file.metadata().map_err(io_error)?;
        if !metadata.is_file() {
            return Err(BeneathError::NotAFile(relative.to_string()));
        }
        Ok((file, metadata.len()))
    }

    /// The bytes of the regular file at `relative`, refused over `max`.
    pub fn read(&self, relative: &str, max: u64) -> Result<Vec<u8>, BeneathError> {
        let (file, size) = self.open_file(relative)?;
        if size > max {
            return Err(BeneathError::TooLarge {
                path: relative.to_string(),
                size,
                max,
            });
        }
        let mut bytes = Vec::with_capacity(size as usize);
        // The file may grow after the size was read; never read past `max`.
        file.take(max + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| BeneathError::Io {
                path: relative.to_string(),
                source,
            })?;
        if bytes.len() as u64 > max {
            return Err(BeneathError::TooLarge {
                path: relative.to_string(),
                size: bytes.len() as u64,
                max,
            });
        }
        Ok(bytes)
    }

    /// Replace `relative` whole with `contents`: a temporary file beside it,
    /// renamed over it. A link at `relative` is replaced, not written
    /// through; a link on the way to it is refused. With `synced`, the file
    /// and its directory are flushed to the disk before this returns.
    pub fn write(&self, relative: &str, contents: &[u8], synced: bool) -> Result<(), BeneathError> {
        let (dir, name) = self.parent(relative, true)?;
        let io_error = |source| BeneathError::Io {
            path: relative.to_string(),
            source,
        };
        static WRITES: AtomicU64 = AtomicU64::new(0);
        // Not derived from `name`, which may be as long as a name can be.
        let temp = std::ffi::OsString::from(format!(
            ".paracle-{}-{}.tmp",
            std::process::id(),
            WRITES.fetch_add(1, Ordering::Relaxed)
        ));
        let fd = open_at(
            &dir,
            &temp,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
            0o644,
        )
        .map_err(io_error)?;
        let mut file = File::from(fd);
        let result = (|| {
            file.write_all(contents)?;
            if synced {
                file.sync_all()?;
            }
            let from = c_name(&temp)?;
            let to = c_name(name)?;
            // SAFETY: both descriptors are open and both names NUL-terminated.
            let renamed = unsafe {
                libc::renameat(dir.as_raw_fd(), from.as_ptr(), dir.as_raw_fd(), to.as_ptr())
            };
            if renamed != 0 {
                return Err(io::Error::last_os_error());
            }
            if synced {
                // Not every file system lets a directory be synced; the
                // rename itself is still atomic there.
                let _ = File::from(dir.try_clone()?).sync_all();
            }
            Ok(())
        })();
        if let Err(error) = result {
            if let Ok(temp) = c_name(&temp) {
                // SAFETY: `dir` is open and `temp` NUL-terminated.
                unsafe { libc::unlinkat(dir.as_raw_fd(), temp.as_ptr(), 0) };
            }
            return Err(io_error(error));
        }
        Ok(())
    }

    /// Flush the regular files at `relative` paths, and their directories,
    /// to the disk. A path that is gone, or is no longer a regular file
    /// (a plugin may have swapped it since), has nothing of the host's to
    /// flush.
    pub fn sync(&self, relative: &[String]) -> Result<(), BeneathError> {
        for path in relative {
            let (file, _) = match self.open_file(path) {
                Ok(opened) => opened,
                Err(BeneathError::Link(_) | BeneathError::NotAFile(_)) => continue,
                Err(error) if error.is_not_found() => continue,
                Err(error) => return Err(error),
            };
            file.sync_all().map_err(|source| BeneathError::Io {
                path: path.clone(),
                source,
            })?;
            if let Ok((dir, _)) = self.parent(path, false) {
                let _ = File::from(dir).sync_all();
            }
        }
        Ok(())
    }

    /// The directory at `relative` (the root for ""), opened without
    /// following a link on the way.
    fn open_dir(&self, relative: &str) -> io::Result<OwnedFd> {
        let mut dir = self.root.try_clone()?;
        for part in Path::new(relative).components() {
            dir = open_at(
                &dir,
                part.as_os_str(),
                libc::O_RDONLY | libc::O_DIRECTORY,
                0,
            )?;
        }
        Ok(dir)
    }

    /// Every regular file below the root, and every link, without following
    /// links or entering `.git`. Directories are opened one at a time as the
    /// walk reaches them, so a tree of many holds one descriptor.
    pub fn files(&self) -> Listing {
        let mut listing = Listing::default();
        let mut seen = 0usize;
        let mut listed_bytes = 0usize;
        let mut pending: Vec<String> = vec![String::new()];
        'walk: while let Some(prefix) = pending.pop() {
            let Ok(reader) = self
                .open_dir(prefix.trim_end_matches('/'))
                .and_then(|dir| cap_std::fs::Dir::from_std_file(File::from(dir)).entries())
            else {
                continue;
            };
            for entry in reader.flatten() {
                seen += 1;
                let name = entry.file_name();
                let relative = format!("{prefix}{}", name.to_string_lossy());
                listed_bytes += relative.len();
                if seen > MAX_ENTRIES || listed_bytes > MAX_LISTING_BYTES {
                    listing.truncated = true;
                    break 'walk;
                }
                if name == ".git" {
                    continue;
                }
                let Ok(kind) = entry.file_type() else {
                    continue;
                };
                if kind.is_symlink() {
                    listing.links.push(relative);
                } else if kind.is_file() {
                    listing.files.push(relative);
                } else if kind.is_dir() {
                    pending.push(format!("{relative}/"));
                }
            }
        }
        listing.files.sort();
        listing.links.sort();
        listing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A root with `inside/`, and a sibling `outside/` that holds a secret.
    fn planted() -> (tempfile::TempDir, Beneath) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("root/docs")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/secret"), "host secret").unwrap();
        std::fs::write(dir.path().join("root/docs/plan.md"), "plan").unwrap();
        symlink("../outside", dir.path().join("root/src")).unwrap();
        symlink("../outside/secret", dir.path().join("root/stolen.md")).unwrap();
        symlink("docs", dir.path().join("root/inner")).unwrap();
        let root = Beneath::open(&dir.path().join("root")).unwrap();
        (dir, root)
    }

    #[test]
    fn links_are_never_followed_for_reading() {
        let (_dir, root) = planted();
        assert_eq!(root.read("docs/plan.md", 100).unwrap(), b"plan");
        for path in ["stolen.md", "src/secret", "inner/plan.md"] {
            let refused = root.read(path, 100);
            assert!(
                matches!(refused, Err(BeneathError::Link(_))),
                "{path}: {refused:?}"
            );
            assert_eq!(root.entry(path).unwrap(), Entry::Link, "{path}");
        }
        for path in ["../outside/secret", "/etc/passwd", ".git/config", ""] {
            assert!(
                matches!(root.read(path, 100), Err(BeneathError::NotRelative(_))),
                "{path}"
            );
        }
        assert!(matches!(
            root.read("docs", 100),
            Err(BeneathError::NotAFile(_))
        ));
        assert!(matches!(
            root.read("docs/plan.md", 3),
            Err(BeneathError::TooLarge { .. })
        ));
        assert_eq!(root.entry("docs/none.md").unwrap(), Entry::Missing);
        // Below a file there is nothing, rather than an error.
        assert_eq!(root.entry("docs/plan.md/x").unwrap(), Entry::Missing);
        assert_eq!(
            normalized("./docs/./plan.md").as_deref(),
            Some("docs/plan.md")
        );
        assert_eq!(normalized("docs/../x"), None);
    }

    #[test]
    fn writes_replace_a_link_and_never_pass_through_one() {
        let (dir, root) = planted();
        let refused = root.write("src/secret", b"overwritten", true);
        assert!(matches!(refused, Err(BeneathError::Link(_))), "{refused:?}");
        let refused = root.write("src/new/deep.md", b"planted", false);
        assert!(matches!(refused, Err(BeneathError::Link(_))), "{refused:?}");
        // The link itself is replaced by a file; its target is untouched.
        root.write("stolen.md", b"mine", true).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("outside/secret")).unwrap(),
            b"host secret"
        );
        assert_eq!(
            std::fs::read(dir.path().join("root/stolen.md")).unwrap(),
            b"mine"
        );
        assert!(!dir.path().join("outside/new").exists());
        root.write("a/b/c.md", b"c", false).unwrap();
        root.sync(&["a/b/c.md".into()]).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("root/a/b/c.md")).unwrap(),
            b"c"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path().join("root/a/b"))
            .unwrap()
            .collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_walk_lists_links_apart_and_skips_git() {
        let (dir, root) = planted();
        std::fs::create_dir(dir.path().join("root/.git")).unwrap();
        std::fs::write(dir.path().join("root/.git/HEAD"), "ref").unwrap();
        let listing = root.files();
        assert_eq!(listing.files, ["docs/plan.md"]);
        assert_eq!(listing.links, ["inner", "src", "stolen.md"]);
        assert!(!listing.truncated);
    }
}
