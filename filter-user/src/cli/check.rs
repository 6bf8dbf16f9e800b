use std::{path::PathBuf, process::ExitCode};

use sigwall::policy;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Policy file (TOML).
    policy: PathBuf,
}

pub fn main(a: Args) -> anyhow::Result<ExitCode> {
    match policy::load(&a.policy, &policy::Limits::default()) {
        Ok(p) => {
            print!("{}: ok\n{}", a.policy.display(), p.summary());
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{e}");
            Ok(ExitCode::from(1))
        }
    }
}
