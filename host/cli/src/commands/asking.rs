//! The person at the terminal, asked when a plugin is denied something it
//! could be granted: a prompt on stderr, the answer read from stdin. Only
//! when both are a terminal and `--no-prompt` was not given; otherwise a
//! denial stays a denial, with the command that grants it.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Result;
use paracle_base::shown;
use paracle_project::{Asker, CallQuestion, Choice, Gatekeeper, Question, Registry, UserConfig};
use paracle_runtime::{Asking, Person};

static NO_PROMPT: AtomicBool = AtomicBool::new(false);

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
        let (answered, answer) = tokio::sync::oneshot::channel();
        // A thread of its own, not a blocking task: a question left
        // unanswered past its timeout must not hold the runtime's shutdown.
        std::thread::spawn(move || {
            let _ = answered.send(prompt(&question));
        });
        Box::pin(async move { answer.await.ok().flatten() })
    }

    fn approve(&self, question: CallQuestion) -> Asking<Option<bool>> {
        let (answered, answer) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let _ = answered.send(prompt_call(&question));
        });
        Box::pin(async move { answer.await.ok().flatten() })
    }
}

fn prompt_call(question: &CallQuestion) -> Option<bool> {
    let mut err = std::io::stderr().lock();
    let by = match (&question.agent, &question.run) {
        (Some(agent), Some(run)) => {
            format!("agent `{}` of run {}", shown::line(agent), shown::line(run))
        }
        (Some(agent), None) => format!("agent `{}`", shown::line(agent)),
        _ => shown::line(&question.caller).into_owned(),
    };
    let _ = writeln!(
        err,
        "\n{by} calls tool `{}` of plugin `{}` ({}), whose calls need your approval",
        shown::line(&question.tool),
        shown::line(&question.plugin),
        question.digest
    );
    let _ = writeln!(err, "  arguments: {}", shown::line(&question.arguments));
    let stdin = std::io::stdin();
    loop {
        let _ = write!(
            err,
            "Run it? [y]es, [n]o ({} s to answer): ",
            question.timeout_secs
        );
        let _ = err.flush();
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        match line.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => return Some(true),
            "n" | "no" => return Some(false),
            _ => {
                let _ = writeln!(err, "  answer y or n");
            }
        }
    }
}

fn own_uid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0)
}

fn prompt(question: &Question) -> Option<Choice> {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(
        err,
        "\nplugin `{}` ({}, {}) asks for {}",
        shown::line(&question.plugin),
        question.digest,
        shown::line(&question.signer),
        question.wants
    );
    if let Some(reason) = question.reason.as_deref().filter(|r| !r.is_empty()) {
        let _ = writeln!(err, "  its reason: {}", shown::line(reason));
    }
    let _ = writeln!(err, "  the grant: {}", question.grant);
    let choices = if question.can_save {
        "[o]nce, [a]lways for this plugin, [d]eny"
    } else {
        "[o]nce, [d]eny (not recorded in .paracle/registry.toml, so it cannot be saved)"
    };
    let stdin = std::io::stdin();
    loop {
        let _ = write!(
            err,
            "Allow? {choices} ({} s to answer): ",
            question.timeout_secs
        );
        let _ = err.flush();
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        match line.trim().to_ascii_lowercase().as_str() {
            "o" | "once" => return Some(Choice::Once),
            "a" | "always" if question.can_save => return Some(Choice::Always),
            "d" | "deny" | "n" | "no" => return Some(Choice::Deny),
            _ => {
                let _ = writeln!(
                    err,
                    "  answer o, {}d",
                    if question.can_save { "a or " } else { "" }
                );
            }
        }
    }
}
