//! The person at the terminal, asked when a plugin is denied something it
//! could be granted: a prompt on stderr, the answer read from stdin. Only
//! when both are a terminal and `--no-prompt` was not given; otherwise a
//! denial stays a denial, with the command that grants it.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use paracle_base::shown;
use paracle_project::{Asker, CallQuestion, Choice, Gatekeeper, Question, Registry, UserConfig};
use paracle_runtime::{Asking, Person};

static NO_PROMPT: AtomicBool = AtomicBool::new(false);
/// A question is on the terminal now.
static QUESTION_OPEN: AtomicBool = AtomicBool::new(false);

/// Whether a question is on the terminal: live status lines wait.
pub(crate) fn question_open() -> bool {
    QUESTION_OPEN.load(Ordering::Relaxed)
}

/// `--no-prompt`: never ask, for this process.
pub(crate) fn forbid_prompts() {
    NO_PROMPT.store(true, Ordering::Relaxed);
}

/// The person at the terminal, when there is one to ask.
pub(crate) fn terminal_person(registry: &Registry) -> Result<Option<Arc<dyn Person>>> {
    if NO_PROMPT.load(Ordering::Relaxed)
        || !std::io::stdin().is_terminal()
        || !std::io::stderr().is_terminal()
    {
        return Ok(None);
    }
    let config = UserConfig::load(&registry.paths().user_config)?;
    Ok(Some(Arc::new(Gatekeeper::new(
        registry,
        config.prompts,
        Arc::new(Terminal),
    ))))
}

/// Run `future` with the terminal's person at hand, if there is one.
pub(crate) async fn with_terminal<F: std::future::Future>(
    registry: &Registry,
    future: F,
) -> Result<F::Output> {
    Ok(match terminal_person(registry)? {
        Some(person) => paracle_runtime::with_person(person, future).await,
        None => future.await,
    })
}

struct Terminal;

impl Asker for Terminal {
    fn who(&self) -> String {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| format!("uid {}", own_uid()));
        format!("terminal:{user}")
    }

    fn ask(&self, question: Question) -> Asking<Option<Choice>> {
        let can_save = question.can_save;
        let choices = if can_save {
            "[o]nce, [a]lways for this plugin, [d]eny"
        } else {
            "[o]nce, [d]eny (not recorded in .paracle/registry.toml, so it cannot be saved)"
        };
        // Every part a plugin chose (its name, a path or host it wants, its
        // reason) is escaped: it must not draw lines of its own.
        let mut text = format!(
            "\nplugin `{}` ({}, {}) asks for {}\n",
            shown::line(&question.plugin),
            question.digest,
            shown::line(&question.signer),
            shown::line(&question.wants)
        );
        if let Some(reason) = question.reason.as_deref().filter(|r| !r.is_empty()) {
            text.push_str(&format!("  its reason: {}\n", shown::line(reason)));
        }
        text.push_str(&format!("  the grant: {}\n", shown::line(&question.grant)));
        let prompt = format!("Allow? {choices} ({} s to answer): ", question.timeout_secs);
        let hint = if can_save {
            "  answer o, a or d"
        } else {
            "  answer o or d"
        };
        ask_terminal(text, prompt, hint, move |answer| match answer {
            "o" | "once" => Some(Choice::Once),
            "a" | "always" if can_save => Some(Choice::Always),
            "d" | "deny" | "n" | "no" => Some(Choice::Deny),
            _ => None,
        })
    }

    fn approve(&self, question: CallQuestion) -> Asking<Option<bool>> {
        let by = match (&question.agent, &question.run) {
            (Some(agent), Some(run)) => {
                format!("agent `{}` of run {}", shown::line(agent), shown::line(run))
            }
            (Some(agent), None) => format!("agent `{}`", shown::line(agent)),
            _ => shown::line(&question.caller).into_owned(),
        };
        let mut text = format!(
            "\n{by} calls tool `{}` of plugin `{}` ({}), whose calls need your approval\n  arguments: {}\n",
            shown::line(&question.tool),
            shown::line(&question.plugin),
            question.digest,
            shown::line(&question.arguments)
        );
        if question.arguments_bytes > question.arguments.len() {
            text.push_str(&format!(
                "  (the first {} of {} bytes: deny it if you cannot judge it from these)\n",
                question.arguments.len(),
                question.arguments_bytes
            ));
        }
        let prompt = format!(
            "Run it? [y]es, [n]o ({} s to answer): ",
            question.timeout_secs
        );
        ask_terminal(text, prompt, "  answer y or n", |answer| match answer {
            "y" | "yes" => Some(true),
            "n" | "no" => Some(false),
            _ => None,
        })
    }
}

fn own_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0)
}

/// Show `text` and `prompt`, and read lines until `choose` takes one. On a
/// thread of its own, not a blocking task, and waiting on stdin in short
/// polls: a question whose asker gave up (its timeout) stops reading, so
/// the next question gets the next line, and the runtime's shutdown never
/// waits on a person.
fn ask_terminal<T: Send + 'static>(
    text: String,
    prompt: String,
    hint: &'static str,
    choose: impl Fn(&str) -> Option<T> + Send + 'static,
) -> Asking<Option<T>> {
    let (answered, answer) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        QUESTION_OPEN.store(true, Ordering::Relaxed);
        let _closed = CloseQuestion;
        // One question on the terminal at a time (the gatekeeper asks
        // them in turn); stderr is locked only to write, so the host's own
        // log lines never wait on the person.
        {
            let mut err = std::io::stderr().lock();
            // Below whatever status line was being drawn.
            let _ = err.write_all(b"\r\x1b[2K");
            let _ = err.write_all(text.as_bytes());
        }
        loop {
            {
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(prompt.as_bytes());
                let _ = err.flush();
            }
            let Some(line) = read_line_unless(|| answered.is_closed()) else {
                if answered.is_closed() {
                    eprintln!("\n  no answer in time: denied");
                }
                return;
            };
            if let Some(chosen) = choose(line.trim().to_ascii_lowercase().as_str()) {
                let _ = answered.send(chosen);
                return;
            }
            eprintln!("{hint}");
        }
    });
    Box::pin(async move { answer.await.ok() })
}

/// Marks the question closed when its thread ends, answered or not.
struct CloseQuestion;

impl Drop for CloseQuestion {
    fn drop(&mut self) {
        QUESTION_OPEN.store(false, Ordering::Relaxed);
    }
}

/// A line from stdin, or `None` at its end or once `given_up` says so.
fn read_line_unless(given_up: impl Fn() -> bool) -> Option<String> {
    let mut line = Vec::new();
    loop {
        if given_up() {
            return None;
        }
        let mut poll = libc::pollfd {
            fd: 0,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, for the duration of the call.
        let ready = unsafe { libc::poll(&mut poll, 1, 200) };
        if ready < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return None;
        }
        if ready == 0 {
            continue;
        }
        // Straight from the descriptor: std's buffered stdin would keep
        // the rest of the line where `poll` cannot see it.
        let mut byte = 0u8;
        // SAFETY: reads at most one byte into `byte`.
        let read = unsafe { libc::read(0, (&mut byte as *mut u8).cast(), 1) };
        match read {
            0 => return None,
            n if n < 0 => {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return None;
            }
            _ if byte == b'\n' => return Some(String::from_utf8_lossy(&line).into_owned()),
            // A line longer than any answer is not one.
            _ if line.len() < 256 => line.push(byte),
            _ => {}
        }
    }
}
