//! What the subcommands that talk to a running daemon share: the target, the call over the
//! control socket, and how a change is reported. The subcommands are `status`, `peers`,
//! `peer`, `policy`, `mode` and `events`, one file each.

use std::{process::ExitCode, time::Duration};

use serde_json::Value;
use sigwall::control::{self, Command};

use super::Target;

/// A 100,000-prefix reload can take a while; status is quick.
const TIMEOUT: Duration = Duration::from_secs(300);

#[derive(clap::Args, Debug)]
pub struct TargetOnly {
    #[command(flatten)]
    pub(super) target: Target,
    /// Print the reply as JSON.
    #[arg(long)]
    pub(super) json: bool,
}

pub type Json = TargetOnly;

pub(super) fn call(target: &Target, cmd: Command) -> Result<Value, ExitCode> {
    control::call(&target.socket(), cmd, TIMEOUT).map_err(|e| {
        eprintln!("sigwall: {e}");
        ExitCode::from(1)
    })
}

pub(super) fn absolute(p: &std::path::Path) -> String {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()).display().to_string()
}

/// Print the outcome of a change: its generation and each change line.
pub(super) fn report_change(v: &Value) {
    if v["changed"] == Value::Bool(false) {
        println!("no change (generation {})", v["generation"]);
        return;
    }
    println!("applied as generation {}", v["generation"]);
    for c in v["changes"].as_array().into_iter().flatten() {
        println!("  {}", c.as_str().unwrap_or_default());
    }
}

pub(super) fn done(r: Result<Value, ExitCode>, print: impl FnOnce(&Value)) -> anyhow::Result<ExitCode> {
    Ok(match r {
        Ok(v) => {
            print(&v);
            ExitCode::SUCCESS
        }
        Err(code) => code,
    })
}
