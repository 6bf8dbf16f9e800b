//! `sigwall mode enforce|monitor`: switch the global mode live.

use std::process::ExitCode;

use sigwall::control::Command;

use super::{
    Target,
    control::{call, done, report_change},
};

#[derive(clap::Args, Debug)]
pub struct ModeArgs {
    #[arg(value_parser = super::mode_parser())]
    mode: filter_common::Mode,
    #[command(flatten)]
    target: Target,
}

pub fn mode(a: ModeArgs) -> anyhow::Result<ExitCode> {
    done(call(&a.target, Command::Mode { mode: a.mode }), report_change)
}
