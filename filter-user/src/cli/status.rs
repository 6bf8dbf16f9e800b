//! `sigwall status`: the running daemon's interface, program, policy and generation.

use std::process::ExitCode;

use sigwall::control::Command;

use super::control::{TargetOnly, call, done};

pub fn status(a: TargetOnly) -> anyhow::Result<ExitCode> {
    done(call(&a.target, Command::Status), |v| {
        if a.json {
            println!("{v}");
            return;
        }
        for k in [
            "iface",
            "xdp_mode",
            "program_id",
            "adopted",
            "policy_file",
            "policy_sha256",
            "generation",
            "uptime_s",
            "mode",
            "persist",
        ] {
            println!("{k:<14} {}", v[k]);
        }
    })
}
