//! A sign of life while a component compiles: the first load of a large
//! one (an 18 MB Python component) takes seconds. On a terminal, a live
//! line with the elapsed time; elsewhere (an MCP client's log), one line
//! when a compilation has taken a second and one when it ends. Quick
//! compilations and cache hits show nothing.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use paracle_base::shown;
use paracle_runtime::{CacheUse, CompileObserver};

/// How long a compilation runs before it is shown.
const QUIET_FOR: Duration = Duration::from_millis(400);
const QUIET_FOR_LOGS: Duration = Duration::from_secs(1);
const REDRAW: Duration = Duration::from_millis(100);

pub(super) struct CompileProgress {
    terminal: bool,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    active: Vec<Compilation>,
    ticking: bool,
    /// Whether the terminal line holds a progress line to clear.
    drawn: bool,
}

struct Compilation {
    path: PathBuf,
    bytes: usize,
    started: Instant,
    shown: bool,
}

impl CompileProgress {
    pub(super) fn on_stderr() -> Arc<Self> {
        Arc::new(CompileProgress {
            terminal: std::io::stderr().is_terminal(),
            state: Arc::default(),
        })
    }

    fn tick(&self) {
        let (terminal, state) = (self.terminal, self.state.clone());
        std::thread::Builder::new()
            .name("paracle-compile-progress".into())
            .spawn(move || loop {
                std::thread::sleep(REDRAW);
                let mut state = state.lock().unwrap();
                if state.active.is_empty() {
                    state.ticking = false;
                    return;
                }
                draw(terminal, &mut state);
            })
            .map(drop)
            .unwrap_or_else(|error| {
                tracing::debug!("no compile progress: {error}");
                // Let the next compilation try again.
                self.state.lock().unwrap().ticking = false;
            });
    }
}

fn draw(terminal: bool, state: &mut State) {
    let mut err = std::io::stderr().lock();
    if terminal {
        let Some(oldest) = state.active.first() else {
            return;
        };
        if oldest.started.elapsed() < QUIET_FOR {
            return;
        }
        let others = match state.active.len() - 1 {
            0 => String::new(),
            n => format!(" and {n} more"),
        };
        let _ = write!(
                err,
                "\r\x1b[Kcompiling {} ({}){others}, {:.1} s; the compiled code is cached for later loads",
                name_of(&oldest.path),
                megabytes(oldest.bytes),
                oldest.started.elapsed().as_secs_f64()
            );
        let _ = err.flush();
        state.drawn = true;
        for compilation in &mut state.active {
            compilation.shown = true;
        }
    } else {
        for compilation in &mut state.active {
            if !compilation.shown && compilation.started.elapsed() >= QUIET_FOR_LOGS {
                compilation.shown = true;
                let _ = writeln!(
                    err,
                    "compiling {} ({}); a first load takes a while, later loads use the cache",
                    name_of(&compilation.path),
                    megabytes(compilation.bytes)
                );
            }
        }
    }
}

impl CompileObserver for CompileProgress {
    fn compiling(&self, path: &Path, bytes: usize) {
        let mut state = self.state.lock().unwrap();
        state.active.push(Compilation {
            path: path.to_path_buf(),
            bytes,
            started: Instant::now(),
            shown: false,
        });
        let start_ticking = !state.ticking;
        state.ticking = true;
        drop(state);
        if start_ticking {
            self.tick();
        }
    }

    fn compiled(&self, path: &Path, elapsed: Duration, outcome: Result<CacheUse, &str>) {
        let mut state = self.state.lock().unwrap();
        let Some(index) = state.active.iter().position(|c| c.path == path) else {
            return;
        };
        let compilation = state.active.remove(index);
        let mut err = std::io::stderr().lock();
        if state.drawn {
            let _ = write!(err, "\r\x1b[K");
            state.drawn = false;
        }
        // A failure is reported by the load's own error; a compilation
        // nobody saw start needs no end either.
        if compilation.shown && outcome.is_ok() {
            let _ = writeln!(
                err,
                "compiled {} in {:.1} s",
                name_of(path),
                elapsed.as_secs_f64()
            );
        }
    }
}

fn name_of(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    shown::clipped(&name, 60)
}

fn megabytes(bytes: usize) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
