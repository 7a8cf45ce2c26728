use std::process::ExitCode;

fn main() -> ExitCode {
    paracle::cli::main()
}
