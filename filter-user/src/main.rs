//! `sigwall`: the operator's command line.

mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = cli::Cli::parse();
    match cli::dispatch(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sigwall: {e:#}");
            std::process::ExitCode::from(1)
        }
    }
}
