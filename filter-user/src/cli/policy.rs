//! `sigwall policy reload|diff`: reload the policy, or show what a file would change.

use std::process::ExitCode;

use sigwall::control::Command;

use super::{
    Target,
    control::{absolute, call, done, report_change},
};

#[derive(clap::Args, Debug)]
pub struct PolicyArgs {
    #[command(subcommand)]
    op: PolicyOp,
}

#[derive(clap::Subcommand, Debug)]
enum PolicyOp {
    /// Reload the policy file (or load FILE, which becomes the policy file).
    Reload {
        file: Option<std::path::PathBuf>,
        #[command(flatten)]
        target: Target,
    },
    /// What loading FILE would change, without applying it.
    Diff {
        file: std::path::PathBuf,
        #[command(flatten)]
        target: Target,
    },
}

pub fn policy(a: PolicyArgs) -> anyhow::Result<ExitCode> {
    match a.op {
        PolicyOp::Reload { file, target } => {
            done(call(&target, Command::PolicyReload { file: file.as_deref().map(absolute) }), report_change)
        }
        PolicyOp::Diff { file, target } => done(call(&target, Command::PolicyDiff { file: absolute(&file) }), |v| {
            let changes = v["changes"].as_array().cloned().unwrap_or_default();
            if changes.is_empty() {
                println!("no changes");
            }
            for c in changes {
                println!("{}", c.as_str().unwrap_or_default());
            }
        }),
    }
}
