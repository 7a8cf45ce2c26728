//! `paracle`: the command line. Thin: clap commands that call the library
//! crates and print what they answer.

mod commands;

use std::process::ExitCode;

fn main() -> ExitCode {
    // `paracle run list | head` should end quietly when head has read
    // enough, as other command-line tools do, not panic on a closed pipe.
    #[cfg(unix)]
    // SAFETY: called before any thread starts; SIG_DFL is always valid.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    commands::main()
}
