//! The host side of the `git` interface: git2 on the repository that holds
//! the project, and nothing outside it.
//!
//! Each operation opens the repository afresh: `git2::Repository` is not
//! `Sync`, opening is cheap next to the work, and another process (a second
//! run, the user's own git) may have changed it since the last call.

use std::path::{Component, Path, PathBuf};

use git2::{
    build::CheckoutBuilder, BranchType, CheckoutNotificationType, ErrorCode, Oid, Repository,
    Status, StatusOptions, WorktreeAddOptions, WorktreePruneOptions,
};

use paracle_base::beneath::{normalized, Beneath, BeneathError, Entry, MAX_FILE_BYTES};
use paracle_contract::{
    BranchInfo, CommitInfo, DiffStat, FileStat, MergeOutcome, RepositoryInfo, WitError,
};
use paracle_runtime::{GitBackend, GitResult};

/// At most this many paths are named in one message.
const PATHS_SHOWN: usize = 20;

/// The repository that holds a project, as the `git` grant reaches it.
#[derive(Debug)]
pub struct GitRepo {
    project: PathBuf,
    worktrees: PathBuf,
}

/// A git2 error as the plugin should see it.
fn failed(what: &str, error: git2::Error) -> WitError {
    let message = format!("{what}: {}", error.message());
    match error.code() {
        ErrorCode::NotFound => WitError::NotFound(message),
        ErrorCode::Exists | ErrorCode::InvalidSpec | ErrorCode::Invalid => {
            WitError::InvalidInput(message)
        }
        ErrorCode::Locked | ErrorCode::Modified => WitError::Unavailable(format!(
            "{message} (another git process is at work; try again)"
        )),
        _ => WitError::Internal(message),
    }
}

fn commit_info(commit: &git2::Commit<'_>) -> CommitInfo {
    CommitInfo {
        id: commit.id().to_string(),
        summary: commit.summary().unwrap_or_default().to_string(),
        timestamp_ms: u64::try_from(commit.time().seconds()).unwrap_or(0) * 1000,
    }
}

fn listed(paths: &[String]) -> String {
    let mut text = paths
        .iter()
        .take(PATHS_SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if paths.len() > PATHS_SHOWN {
        text.push_str(&format!(" and {} more", paths.len() - PATHS_SHOWN));
    }
    text
}

/// Worktree names become directory names and git's own admin names.
fn check_worktree_name(name: &str) -> GitResult<()> {
    let valid = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(WitError::InvalidInput(format!(
            "worktree name `{name}`: use 1 to 100 letters, digits, `-`, `_` or `.`, not starting with `.`"
        )))
    }
}

fn check_branch_name(name: &str) -> GitResult<()> {
    if name.starts_with('-')
        || name.starts_with("refs/")
        || !git2::Branch::name_is_valid(name).unwrap_or(false)
    {
        return Err(WitError::InvalidInput(format!(
            "`{name}` is not a valid branch name"
        )));
    }
    Ok(())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    std::fs::canonicalize(a)
        .ok()
        .zip(std::fs::canonicalize(b).ok())
        .is_some_and(|(a, b)| a == b)
}

/// What decides what later runs may reach: Paracle's own configuration, and
/// plugin components (which `paracle.toml` names by path, unpinned). A merge
/// never brings these into the user's tree by itself. Compared without case,
/// as a case-insensitive file system would.
fn is_paracle_config(path: &str) -> bool {
    let path = path.to_ascii_lowercase();
    path == "paracle.toml"
        || path == ".paracle"
        || path.starts_with(".paracle/")
        || path.ends_with(".wasm")
        || path.ends_with(".wasm.sig")
}

/// A path a plugin names inside a worktree: relative, and never into `.git`.
fn check_relative(path: &str) -> GitResult<&Path> {
    let relative = Path::new(path);
    let mut parts = relative.components().peekable();
    let plain = parts.peek().is_some()
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(part) if part != ".git"));
    if plain {
        Ok(relative)
    } else {
        Err(WitError::InvalidInput(format!(
            "`{path}` is not a relative path inside the worktree"
        )))
    }
}

impl GitRepo {
    /// The repository holding `project`, with worktrees kept in `worktrees`.
    /// Nothing is opened until the first call.
    pub fn new(project: &Path, worktrees: PathBuf) -> Self {
        GitRepo {
            project: project.to_path_buf(),
            worktrees,
        }
    }

    fn open(&self) -> GitResult<Repository> {
        let repo = Repository::discover(&self.project).map_err(|_| {
            WitError::Unavailable(format!(
                "{} is not in a git repository; run `git init` there and make a first commit",
                self.project.display()
            ))
        })?;
        if repo.is_bare() {
            return Err(WitError::Unavailable(format!(
                "the repository at {} is bare; the git workflow needs a working tree",
                repo.path().display()
            )));
        }
        Ok(repo)
    }

    fn worktree_dir(&self, name: &str) -> GitResult<PathBuf> {
        check_worktree_name(name)?;
        Ok(self.worktrees.join(name))
    }

    /// A worktree of ours, opened as a repository of its own from git's own
    /// record of it in the repository's admin directory, where no plugin
    /// writes. The `.git` file inside the worktree is never read: a plugin
    /// that can write the worktree could point it at any repository.
    fn open_worktree(&self, name: &str) -> GitResult<Repository> {
        let dir = self.worktree_dir(name)?;
        let repo = self.open()?;
        let missing = || {
            WitError::NotFound(format!(
                "no worktree `{name}` in {}",
                self.worktrees.display()
            ))
        };
        let worktree = repo.find_worktree(name).map_err(|_| missing())?;
        if !same_dir(worktree.path(), &dir) {
            return Err(WitError::Denied(format!(
                "worktree `{name}` is at {}, outside {}",
                worktree.path().display(),
                self.worktrees.display()
            )));
        }
        Self::open_admin(&repo, name).map_err(|e| failed(&format!("worktree `{name}`"), e))
    }

    /// A linked worktree, opened from its admin directory in the common git
    /// directory: git's `gitdir` record there says where its files are.
    /// (`Repository::open_from_worktree` would read the `.git` file in the
    /// worktree itself.)
    fn open_admin(repo: &Repository, name: &str) -> Result<Repository, git2::Error> {
        Repository::open(repo.commondir().join("worktrees").join(name))
    }

    /// The working tree that has a branch checked out, opened from git's
    /// record: the user's own from the common directory, ours by name.
    fn open_checkout(repo: &Repository, holder: Option<&str>) -> GitResult<Repository> {
        let opened = match holder {
            None => Repository::open(repo.commondir()),
            Some(name) => Self::open_admin(repo, name),
        };
        opened.map_err(|e| failed("opening the target's working tree", e))
    }

    fn commit_of<'r>(repo: &'r Repository, revision: &str) -> GitResult<git2::Commit<'r>> {
        if revision.starts_with('-') {
            return Err(WitError::InvalidInput(format!(
                "`{revision}` is not a branch or commit"
            )));
        }
        repo.revparse_single(revision)
            .and_then(|object| object.peel_to_commit())
            .map_err(|e| failed(&format!("`{revision}`"), e))
    }

    /// Which branch each working tree has checked out: the user's own (None)
    /// and ours, by name.
    fn checkouts(repo: &Repository) -> Vec<(Option<String>, String, PathBuf)> {
        let mut found = Vec::new();
        let branch_of = |r: &Repository| -> Option<String> {
            let head = r.find_reference("HEAD").ok()?;
            let target = head.symbolic_target()?.to_string();
            target.strip_prefix("refs/heads/").map(str::to_string)
        };
        if let Ok(main) = Repository::open(repo.commondir()) {
            if let (Some(branch), Some(dir)) = (branch_of(&main), main.workdir()) {
                found.push((None, branch, dir.to_path_buf()));
            }
        }
        if let Ok(names) = repo.worktrees() {
            for name in names.iter().flatten() {
                let Ok(worktree) = repo.find_worktree(name) else {
                    continue;
                };
                let Ok(opened) = Self::open_admin(repo, name) else {
                    continue;
                };
                if let Some(branch) = branch_of(&opened) {
                    found.push((
                        Some(name.to_string()),
                        branch,
                        worktree.path().to_path_buf(),
                    ));
                }
            }
        }
        found
    }

    /// Keep our worktrees out of the user's `git status` through the
    /// repository's own exclude file, which is not part of the working tree.
    fn hide_worktrees(&self, repo: &Repository) -> GitResult<()> {
        let Some(root) = repo.workdir() else {
            return Ok(());
        };
        let worktrees = std::fs::canonicalize(&self.worktrees).unwrap_or(self.worktrees.clone());
        let root = std::fs::canonicalize(root).unwrap_or(root.to_path_buf());
        let Ok(relative) = worktrees.strip_prefix(&root) else {
            return Ok(());
        };
        let line = format!("/{}/", relative.display());
        let exclude = repo.commondir().join("info").join("exclude");
        let existing = std::fs::read_to_string(&exclude).unwrap_or_default();
        if existing.lines().any(|l| l.trim() == line) {
            return Ok(());
        }
        let mut text = existing;
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        text.push_str("# paracle's execution worktrees\n");
        text.push_str(&line);
        text.push('\n');
        paracle_base::atomic::write(&exclude, text.as_bytes())
            .map_err(|e| WitError::Internal(format!("cannot write {}: {e}", exclude.display())))
    }

    /// Every path whose state differs between the worktree, its index and
    /// its head. git's status looks at each entry without following links.
    fn statuses(repo: &Repository) -> GitResult<Vec<(String, Status)>> {
        let mut options = StatusOptions::new();
        options
            .include_untracked(true)
            .recurse_untracked_dirs(true)
            .exclude_submodules(true);
        let statuses = repo
            .statuses(Some(&mut options))
            .map_err(|e| failed("reading the worktree's status", e))?;
        Ok(statuses
            .iter()
            .filter_map(|s| Some((s.path()?.to_string(), s.status())))
            .collect())
    }

    fn uncommitted(&self, repo: &Repository) -> GitResult<Vec<String>> {
        Ok(Self::statuses(repo)?
            .into_iter()
            .map(|(path, _)| path)
            .collect())
    }

    /// The paths whose state in the worktree differs from its index.
    fn changed(repo: &Repository) -> GitResult<Vec<String>> {
        let in_worktree = Status::WT_NEW
            | Status::WT_MODIFIED
            | Status::WT_DELETED
            | Status::WT_TYPECHANGE
            | Status::WT_RENAMED;
        Ok(Self::statuses(repo)?
            .into_iter()
            .filter(|(_, status)| status.intersects(in_worktree))
            .map(|(path, _)| path)
            .collect())
    }

    /// Put the file at `path` into the index as the worktree has it, read
    /// beneath the worktree without following links. A link, or a path
    /// through one, is never staged (whatever it points at), nor is a file
    /// over [`MAX_FILE_BYTES`]: the index keeps what it had there. A path
    /// that is gone is removed.
    fn stage(
        repo: &Repository,
        index: &mut git2::Index,
        root: &Beneath,
        path: &str,
    ) -> GitResult<()> {
        let staging = |e| failed(&format!("staging `{path}`"), e);
        let unreadable = |e: BeneathError| WitError::InvalidInput(format!("cannot stage: {e}"));
        match root.entry(path).map_err(unreadable)? {
            Entry::Missing => {
                let path = normalized(path).unwrap_or_default();
                match index.get_path(Path::new(&path), 0) {
                    Some(_) => index.remove_path(Path::new(&path)).map_err(staging),
                    None => Ok(()),
                }
            }
            Entry::File { .. } => {
                let (mut file, size) = root.open_file(path).map_err(unreadable)?;
                // Too large to copy into the repository: a plugin can make a
                // sparse file of any size for free. Checked on the file as
                // opened, which is what is copied.
                if size > MAX_FILE_BYTES {
                    return Ok(());
                }
                let executable = file.metadata().is_ok_and(|m| {
                    std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
                });
                let mut writer = repo.blob_writer(None).map_err(staging)?;
                let copied = std::io::copy(&mut std::io::Read::take(&mut file, size), &mut writer)
                    .map_err(|e| WitError::Internal(format!("reading `{path}`: {e}")))?;
                let id = writer.commit().map_err(staging)?;
                index
                    .add(&git2::IndexEntry {
                        ctime: git2::IndexTime::new(0, 0),
                        mtime: git2::IndexTime::new(0, 0),
                        dev: 0,
                        ino: 0,
                        mode: if executable { 0o100755 } else { 0o100644 },
                        uid: 0,
                        gid: 0,
                        file_size: u32::try_from(copied).unwrap_or(u32::MAX),
                        id,
                        flags: 0,
                        flags_extended: 0,
                        path: normalized(path).unwrap_or_default().into_bytes(),
                    })
                    .map_err(staging)
            }
            // A directory named as a path stages nothing, as `git add` of an
            // empty directory does; links and devices are never staged.
            Entry::Dir | Entry::Link | Entry::Other => Ok(()),
        }
    }

    fn signature(repo: &Repository) -> GitResult<git2::Signature<'static>> {
        repo.signature()
            .or_else(|_| git2::Signature::now("Paracle", "paracle@localhost"))
            .map_err(|e| failed("making a signature", e))
    }

    /// A merge brings into the user's tree only regular files outside
    /// Paracle's own configuration. A link could point anywhere once checked
    /// out, and a `paracle.toml` or `.paracle/` file would decide what later
    /// runs may reach; a branch that changes either is left to the user.
    fn check_mergeable(
        repo: &Repository,
        ours: &git2::Commit<'_>,
        theirs: &git2::Commit<'_>,
        source: &str,
    ) -> GitResult<()> {
        let fork = repo
            .merge_base(ours.id(), theirs.id())
            .and_then(|id| repo.find_commit(id))
            .and_then(|c| c.tree())
            .ok();
        let new = theirs
            .tree()
            .map_err(|e| failed(&format!("reading branch `{source}`"), e))?;
        let diff = repo
            .diff_tree_to_tree(fork.as_ref(), Some(&new), None)
            .map_err(|e| failed("diffing", e))?;
        let mut links = Vec::new();
        let mut config = Vec::new();
        for delta in diff.deltas() {
            let file = delta.new_file();
            let Some(path) = file.path().map(|p| p.to_string_lossy().into_owned()) else {
                continue;
            };
            if delta.status() != git2::Delta::Deleted && file.mode() == git2::FileMode::Link {
                links.push(path.clone());
            }
            if is_paracle_config(&path) {
                config.push(path);
            }
        }
        if !links.is_empty() {
            return Err(WitError::Denied(format!(
                "branch `{source}` adds symbolic links ({}); paracle never merges links into your tree: review them and merge with git yourself",
                listed(&links)
            )));
        }
        if !config.is_empty() {
            return Err(WitError::Denied(format!(
                "branch `{source}` changes paracle's own configuration or plugins ({}); paracle never merges those itself: review them and merge with git yourself",
                listed(&config)
            )));
        }
        Ok(())
    }
}

impl GitBackend for GitRepo {
    fn repository(&self) -> GitResult<RepositoryInfo> {
        let repo = self.open()?;
        let root = repo
            .workdir()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let (head_branch, head) = match repo.head() {
            Ok(head) => (
                head.is_branch()
                    .then(|| head.shorthand().map(str::to_string))
                    .flatten(),
                head.peel_to_commit().ok().map(|c| commit_info(&c)),
            ),
            Err(_) => (None, None),
        };
        Ok(RepositoryInfo {
            root,
            head_branch,
            head,
        })
    }

    fn list_branches(&self, prefix: &str) -> GitResult<Vec<BranchInfo>> {
        let repo = self.open()?;
        let checkouts = Self::checkouts(&repo);
        let mut branches = Vec::new();
        let all = repo
            .branches(Some(BranchType::Local))
            .map_err(|e| failed("listing branches", e))?;
        for item in all {
            let (branch, _) = item.map_err(|e| failed("listing branches", e))?;
            let Ok(Some(name)) = branch.name() else {
                continue;
            };
            if !name.starts_with(prefix) {
                continue;
            }
            let head = branch
                .get()
                .peel_to_commit()
                .map_err(|e| failed(&format!("branch `{name}`"), e))?;
            let holders = checkouts.iter().filter(|(_, b, _)| b == name);
            let mut worktree = None;
            let mut current = false;
            for (holder, _, _) in holders {
                match holder {
                    Some(w) => worktree = Some(w.clone()),
                    None => current = true,
                }
            }
            branches.push(BranchInfo {
                name: name.to_string(),
                head: commit_info(&head),
                worktree,
                current,
            });
        }
        branches.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(branches)
    }

    fn create_branch(&self, name: &str, start: &str) -> GitResult<CommitInfo> {
        check_branch_name(name)?;
        let repo = self.open()?;
        let commit = Self::commit_of(&repo, start)?;
        repo.branch(name, &commit, false)
            .map_err(|e| failed(&format!("creating branch `{name}`"), e))?;
        Ok(commit_info(&commit))
    }

    fn delete_branch(&self, name: &str) -> GitResult<()> {
        check_branch_name(name)?;
        let repo = self.open()?;
        if let Some((holder, _, _)) = Self::checkouts(&repo).iter().find(|(_, b, _)| b == name) {
            return Err(WitError::InvalidInput(format!(
                "branch `{name}` is checked out in {}; it was not deleted",
                match holder {
                    Some(worktree) => format!("worktree `{worktree}`"),
                    None => "the user's working tree".to_string(),
                }
            )));
        }
        let mut branch = repo
            .find_branch(name, BranchType::Local)
            .map_err(|e| failed(&format!("branch `{name}`"), e))?;
        branch
            .delete()
            .map_err(|e| failed(&format!("deleting branch `{name}`"), e))
    }

    fn add_worktree(&self, name: &str, branch: &str) -> GitResult<String> {
        let dir = self.worktree_dir(name)?;
        check_branch_name(branch)?;
        let repo = self.open()?;
        if dir.exists() {
            return Err(WitError::InvalidInput(format!(
                "{} already exists",
                dir.display()
            )));
        }
        let reference = repo
            .find_branch(branch, BranchType::Local)
            .map_err(|e| failed(&format!("branch `{branch}`"), e))?
            .into_reference();
        std::fs::create_dir_all(&self.worktrees).map_err(|e| {
            WitError::Internal(format!("cannot create {}: {e}", self.worktrees.display()))
        })?;
        self.hide_worktrees(&repo)?;
        let mut options = WorktreeAddOptions::new();
        options.reference(Some(&reference));
        repo.worktree(name, &dir, Some(&options))
            .map_err(|e| failed(&format!("adding worktree `{name}`"), e))?;
        Ok(dir
            .strip_prefix(&self.project)
            .unwrap_or(&dir)
            .display()
            .to_string())
    }

    fn remove_worktree(&self, name: &str, force: bool) -> GitResult<()> {
        let dir = self.worktree_dir(name)?;
        let repo = self.open()?;
        let worktree = repo
            .find_worktree(name)
            .map_err(|e| failed(&format!("worktree `{name}`"), e))?;
        if worktree.path().exists() && !same_dir(worktree.path(), &dir) {
            return Err(WitError::Denied(format!(
                "worktree `{name}` is at {}, outside {}; only paracle's worktrees can be removed",
                worktree.path().display(),
                self.worktrees.display()
            )));
        }
        if !force && dir.exists() {
            let changed = self.uncommitted(&self.open_worktree(name)?)?;
            if !changed.is_empty() {
                return Err(WitError::InvalidInput(format!(
                    "worktree `{name}` has uncommitted changes ({}); commit them or remove it with force",
                    listed(&changed)
                )));
            }
        }
        worktree
            .prune(Some(
                WorktreePruneOptions::new()
                    .valid(true)
                    .locked(false)
                    .working_tree(true),
            ))
            .map_err(|e| failed(&format!("removing worktree `{name}`"), e))?;
        // libgit2 leaves a directory behind when it holds ignored files.
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .map_err(|e| WitError::Internal(format!("cannot remove {}: {e}", dir.display())))?;
        }
        Ok(())
    }

    fn commit(
        &self,
        worktree: &str,
        message: &str,
        paths: &[String],
    ) -> GitResult<Option<CommitInfo>> {
        if message.trim().is_empty() {
            return Err(WitError::InvalidInput("the commit message is empty".into()));
        }
        let repo = self.open_worktree(worktree)?;
        let root = repo
            .workdir()
            .ok_or_else(|| WitError::Internal(format!("worktree `{worktree}` has no directory")))
            .and_then(|dir| {
                Beneath::open(dir).map_err(|e| {
                    WitError::Internal(format!("cannot open worktree `{worktree}`: {e}"))
                })
            })?;
        let mut index = repo.index().map_err(|e| failed("reading the index", e))?;
        let paths = if paths.is_empty() {
            Self::changed(&repo)?
        } else {
            for path in paths {
                check_relative(path)?;
            }
            paths.to_vec()
        };
        for path in &paths {
            Self::stage(&repo, &mut index, &root, path)?;
        }
        index.write().map_err(|e| failed("writing the index", e))?;
        let tree_id = index
            .write_tree()
            .map_err(|e| failed("writing the tree", e))?;
        let parent = repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        if parent.as_ref().is_some_and(|p| p.tree_id() == tree_id) {
            return Ok(None);
        }
        let tree = repo
            .find_tree(tree_id)
            .map_err(|e| failed("reading the tree", e))?;
        let signature = Self::signature(&repo)?;
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        let id = repo
            .commit(
                Some("HEAD"),
                &signature,
                &signature,
                message,
                &tree,
                &parents,
            )
            .map_err(|e| failed("committing", e))?;
        let commit = repo
            .find_commit(id)
            .map_err(|e| failed("reading the new commit", e))?;
        Ok(Some(commit_info(&commit)))
    }

    fn merge(&self, source: &str, target: &str, message: &str) -> GitResult<MergeOutcome> {
        check_branch_name(source)?;
        check_branch_name(target)?;
        let repo = self.open()?;
        let find = |name: &str| {
            repo.find_branch(name, BranchType::Local)
                .and_then(|b| b.get().peel_to_commit())
                .map_err(|e| failed(&format!("branch `{name}`"), e))
        };
        let ours = find(target)?;
        let theirs = find(source)?;
        if repo
            .graph_descendant_of(ours.id(), theirs.id())
            .map_err(|e| failed("comparing branches", e))?
            || ours.id() == theirs.id()
        {
            return Ok(MergeOutcome::UpToDate);
        }
        Self::check_mergeable(&repo, &ours, &theirs, source)?;
        let fast_forward = repo
            .graph_descendant_of(theirs.id(), ours.id())
            .map_err(|e| failed("comparing branches", e))?;
        let new_head = if fast_forward {
            theirs.clone()
        } else {
            let mut merged = repo
                .merge_commits(&ours, &theirs, None)
                .map_err(|e| failed("merging", e))?;
            if merged.has_conflicts() {
                let mut paths: Vec<String> = merged
                    .conflicts()
                    .map_err(|e| failed("reading conflicts", e))?
                    .flatten()
                    .filter_map(|c| c.our.or(c.their).or(c.ancestor))
                    .map(|entry| String::from_utf8_lossy(&entry.path).into_owned())
                    .collect();
                paths.sort();
                paths.dedup();
                return Ok(MergeOutcome::Conflict(paths));
            }
            let tree_id = merged
                .write_tree_to(&repo)
                .map_err(|e| failed("writing the merged tree", e))?;
            let tree = repo
                .find_tree(tree_id)
                .map_err(|e| failed("reading the merged tree", e))?;
            let signature = Self::signature(&repo)?;
            let id = repo
                .commit(
                    None,
                    &signature,
                    &signature,
                    message,
                    &tree,
                    &[&ours, &theirs],
                )
                .map_err(|e| failed("making the merge commit", e))?;
            repo.find_commit(id)
                .map_err(|e| failed("reading the merge commit", e))?
        };
        // A working tree that has the target checked out follows the branch,
        // as with `git merge`; one whose edits would be overwritten blocks it.
        let holder = Self::checkouts(&repo)
            .into_iter()
            .find(|(_, branch, _)| branch == target);
        if let Some((holder, _, _)) = holder {
            let checkout = Self::open_checkout(&repo, holder.as_deref())?;
            let mut blocked = Vec::new();
            let mut builder = CheckoutBuilder::new();
            builder
                .safe()
                .notify_on(CheckoutNotificationType::CONFLICT)
                .notify(|_, path, _, _, _| {
                    if let Some(path) = path {
                        blocked.push(path.display().to_string());
                    }
                    true
                });
            // The object must come from the repository that checks it out.
            let target_commit = checkout
                .find_commit(new_head.id())
                .map_err(|e| failed("reading the merged commit", e))?;
            let result = checkout.checkout_tree(target_commit.as_object(), Some(&mut builder));
            drop(builder);
            if !blocked.is_empty() {
                blocked.sort();
                return Ok(MergeOutcome::Blocked(blocked));
            }
            result.map_err(|e| failed("updating the target's working tree", e))?;
        }
        repo.reference_matching(
            &format!("refs/heads/{target}"),
            new_head.id(),
            true,
            ours.id(),
            &format!("paracle: merge {source}"),
        )
        .map_err(|e| failed(&format!("moving branch `{target}`"), e))?;
        let info = commit_info(&new_head);
        Ok(if fast_forward {
            MergeOutcome::FastForward(info)
        } else {
            MergeOutcome::Merged(info)
        })
    }

    fn count_commits(&self, base: &str, head: &str) -> GitResult<u32> {
        let repo = self.open()?;
        let base = Self::commit_of(&repo, base)?.id();
        let head = Self::commit_of(&repo, head)?.id();
        let (ahead, _) = repo
            .graph_ahead_behind(head, base)
            .map_err(|e| failed("counting commits", e))?;
        Ok(ahead as u32)
    }

    fn diff_stats(&self, base: &str, head: &str) -> GitResult<DiffStat> {
        let repo = self.open()?;
        let base = Self::commit_of(&repo, base)?;
        let head = Self::commit_of(&repo, head)?;
        let fork: Oid = repo
            .merge_base(base.id(), head.id())
            .map_err(|e| failed("finding where the branches forked", e))?;
        let old = repo
            .find_commit(fork)
            .and_then(|c| c.tree())
            .map_err(|e| failed("reading the fork point", e))?;
        let new = head.tree().map_err(|e| failed("reading the head", e))?;
        let diff = repo
            .diff_tree_to_tree(Some(&old), Some(&new), None)
            .map_err(|e| failed("diffing", e))?;
        let mut stat = DiffStat {
            files: Vec::new(),
            insertions: 0,
            deletions: 0,
        };
        for index in 0..diff.deltas().len() {
            let Ok(Some(patch)) = git2::Patch::from_diff(&diff, index) else {
                continue;
            };
            let delta = patch.delta();
            let path = delta
                .new_file()
                .path()
                .or(delta.old_file().path())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            let (_, insertions, deletions) = patch
                .line_stats()
                .map_err(|e| failed("counting lines", e))?;
            stat.insertions += insertions as u32;
            stat.deletions += deletions as u32;
            stat.files.push(FileStat {
                path,
                insertions: insertions as u32,
                deletions: deletions as u32,
            });
        }
        Ok(stat)
    }
}

#[cfg(test)]
mod tests_support {
    use super::*;

    /// A repository with one commit on `main`, and the GitRepo of a project
    /// at its root.
    pub(super) fn repository() -> (tempfile::TempDir, GitRepo) {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init_opts(
            dir.path(),
            git2::RepositoryInitOptions::new().initial_head("main"),
        )
        .unwrap();
        std::fs::write(dir.path().join("a.txt"), "a\n").unwrap();
        let mut index = repo.index().unwrap();
        index.add_path(Path::new("a.txt")).unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let me = git2::Signature::now("T", "t@example.com").unwrap();
        repo.commit(Some("HEAD"), &me, &me, "first", &tree, &[])
            .unwrap();
        let git = GitRepo::new(dir.path(), dir.path().join(".paracle/worktrees"));
        (dir, git)
    }

    /// Commit `index` on the head of `repo`, as a user's git would.
    pub(super) fn commit_index(repo: &Repository, index: &mut git2::Index, message: &str) {
        index.write().unwrap();
        let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
        let me = git2::Signature::now("T", "t@example.com").unwrap();
        let parent = repo.head().unwrap().peel_to_commit().unwrap();
        repo.commit(Some("HEAD"), &me, &me, message, &tree, &[&parent])
            .unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::*;
    use super::*;

    #[test]
    fn names_and_paths_that_would_leave_their_place_are_refused() {
        for name in ["", "../up", ".hidden", "a/b", "x y"] {
            assert!(check_worktree_name(name).is_err(), "worktree {name:?}");
        }
        assert!(check_worktree_name("20261122_101010_000-abcdef").is_ok());
        for name in ["-delete", "refs/heads/main", "a..b", "ends.lock", ""] {
            assert!(check_branch_name(name).is_err(), "branch {name:?}");
        }
        assert!(check_branch_name("exec/run-1/20261122_101010").is_ok());
        for path in ["../escape", "/etc/passwd", ".git/config", "a/../../b", ""] {
            assert!(check_relative(path).is_err(), "path {path:?}");
        }
        assert!(check_relative("docs/plan.md").is_ok());
        for path in [
            "paracle.toml",
            "PARACLE.TOML",
            ".paracle/registry.toml",
            "plugins/x.wasm",
            "x.WASM.sig",
        ] {
            assert!(is_paracle_config(path), "{path}");
        }
        assert!(!is_paracle_config("docs/paracle.toml.md"));
    }

    #[test]
    fn a_worktree_commits_only_inside_itself_and_is_kept_while_dirty() {
        let (dir, git) = repository();
        git.create_branch("exec/r/1", "main").unwrap();
        let relative = git.add_worktree("r", "exec/r/1").unwrap();
        assert_eq!(relative, ".paracle/worktrees/r");
        let worktree = dir.path().join(&relative);
        std::fs::write(worktree.join("b.txt"), "b\n").unwrap();
        std::fs::write(dir.path().join("outside.txt"), "no\n").unwrap();

        let refused = git.commit("r", "escape", &["../../../outside.txt".into()]);
        assert!(
            matches!(refused, Err(WitError::InvalidInput(_))),
            "{refused:?}"
        );
        let removed = git.remove_worktree("r", false);
        assert!(
            matches!(&removed, Err(WitError::InvalidInput(m)) if m.contains("b.txt")),
            "{removed:?}"
        );

        let commit = git.commit("r", "add b", &["b.txt".into()]).unwrap();
        assert!(commit.is_some());
        assert!(git
            .commit("r", "again", &["b.txt".into()])
            .unwrap()
            .is_none());
        assert_eq!(git.count_commits("main", "exec/r/1").unwrap(), 1);
        // The user's branch and index did not move.
        let repo = Repository::open(dir.path()).unwrap();
        assert_eq!(repo.head().unwrap().shorthand(), Some("main"));
        assert!(repo
            .index()
            .unwrap()
            .get_path(Path::new("b.txt"), 0)
            .is_none());

        let deleted = git.delete_branch("exec/r/1");
        assert!(
            matches!(deleted, Err(WitError::InvalidInput(_))),
            "checked out: {deleted:?}"
        );
        git.remove_worktree("r", false).unwrap();
        assert!(!worktree.exists());
        git.delete_branch("exec/r/1").unwrap();
    }
}

#[cfg(test)]
mod planted {
    //! What a plugin that can write a worktree may plant there, and what the
    //! host's git must still do.

    use super::tests_support::*;
    use super::*;
    use std::os::unix::fs::symlink;

    fn user_state(dir: &Path) -> (Oid, Option<String>, usize) {
        let repo = Repository::open(dir).unwrap();
        let head = repo.head().unwrap();
        let state = (
            head.peel_to_commit().unwrap().id(),
            head.shorthand().map(str::to_string),
            repo.index().unwrap().len(),
        );
        state
    }

    #[test]
    fn a_git_file_pointed_at_the_users_repository_changes_nothing_outside_the_branch() {
        let (dir, git) = repository();
        git.create_branch("exec/r/1", "main").unwrap();
        let worktree = dir.path().join(git.add_worktree("r", "exec/r/1").unwrap());
        let before = user_state(dir.path());
        std::fs::write(
            worktree.join(".git"),
            format!("gitdir: {}\n", dir.path().join(".git").display()),
        )
        .unwrap();
        std::fs::write(worktree.join("b.txt"), "b\n").unwrap();
        git.commit("r", "add b", &["b.txt".into()])
            .unwrap()
            .unwrap();
        assert_eq!(user_state(dir.path()), before);
        assert_eq!(git.count_commits("main", "exec/r/1").unwrap(), 1);

        // A whole fake git directory, with its working tree set to a host
        // directory, is not opened either.
        let secret = tempfile::tempdir().unwrap();
        std::fs::write(secret.path().join("passwd"), "host file\n").unwrap();
        std::fs::remove_file(worktree.join(".git")).unwrap();
        Repository::init(worktree.join(".git-fake")).unwrap();
        std::fs::rename(worktree.join(".git-fake/.git"), worktree.join(".git")).unwrap();
        let mut config = git2::Config::open(&worktree.join(".git/config")).unwrap();
        config
            .set_str("core.worktree", &secret.path().display().to_string())
            .unwrap();
        std::fs::write(worktree.join("c.txt"), "c\n").unwrap();
        let all = git.commit("r", "everything", &[]).unwrap().unwrap();
        let repo = Repository::open(dir.path()).unwrap();
        let tree = repo
            .find_commit(Oid::from_str(&all.id).unwrap())
            .unwrap()
            .tree()
            .unwrap();
        assert!(
            tree.get_path(Path::new("passwd")).is_err(),
            "a host file was committed"
        );
        assert_eq!(user_state(dir.path()), before);
    }

    #[test]
    fn commits_never_read_through_a_link_and_merges_bring_no_links() {
        let (dir, git) = repository();
        git.create_branch("exec/r/1", "main").unwrap();
        let worktree = dir.path().join(git.add_worktree("r", "exec/r/1").unwrap());
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.txt"), "host secret\n").unwrap();
        symlink(outside.path(), worktree.join("src")).unwrap();
        symlink(
            outside.path().join("secret.txt"),
            worktree.join("stolen.txt"),
        )
        .unwrap();

        // A path through a link, or a link itself, is never staged, whether
        // it is named or found.
        assert!(git
            .commit("r", "through a link", &["src/secret.txt".into()])
            .unwrap()
            .is_none());
        assert!(git
            .commit("r", "a link", &["stolen.txt".into()])
            .unwrap()
            .is_none());
        assert!(git.commit("r", "all", &[]).unwrap().is_none());
        assert_eq!(git.count_commits("main", "exec/r/1").unwrap(), 0);

        // A branch that carries a link (committed by hand, say) or paracle's
        // own configuration is not merged by the host.
        let repo = GitRepo::open_admin(&Repository::open(dir.path()).unwrap(), "r").unwrap();
        let mut index = repo.index().unwrap();
        let link_blob = repo
            .blob(outside.path().display().to_string().as_bytes())
            .unwrap();
        let mut entry = git2::IndexEntry {
            ctime: git2::IndexTime::new(0, 0),
            mtime: git2::IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode: 0o120000,
            uid: 0,
            gid: 0,
            file_size: 0,
            id: link_blob,
            flags: 0,
            flags_extended: 0,
            path: b"evil".to_vec(),
        };
        index.add(&entry).unwrap();
        commit_index(&repo, &mut index, "a link by hand");
        let before = user_state(dir.path());
        let merged = git.merge("exec/r/1", "main", "merge");
        assert!(
            matches!(&merged, Err(WitError::Denied(m)) if m.contains("evil")),
            "{merged:?}"
        );
        index.remove_path(Path::new("evil")).unwrap();
        entry.mode = 0o100644;
        entry.path = b"paracle.toml".to_vec();
        entry.id = repo.blob(b"[plugins.x]\n").unwrap();
        index.add(&entry).unwrap();
        commit_index(&repo, &mut index, "config");
        let merged = git.merge("exec/r/1", "main", "merge");
        assert!(
            matches!(&merged, Err(WitError::Denied(m)) if m.contains("paracle.toml")),
            "{merged:?}"
        );
        assert_eq!(user_state(dir.path()), before);
        assert!(!dir.path().join("evil").exists() && !dir.path().join("paracle.toml").exists());
    }
}
