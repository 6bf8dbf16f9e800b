//! `sigwall events`: deep-inspection events (JSON lines), optionally following new ones.

use std::{process::ExitCode, time::Duration};

use sigwall::control::Command;

use super::{Target, control::call};

#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    #[command(flatten)]
    target: Target,
    /// Keep waiting for new events (until interrupted or --for expires).
    #[arg(long)]
    follow: bool,
    /// With --follow: stop after this many seconds.
    #[arg(long = "for")]
    for_s: Option<u64>,
    /// Start from this sequence number (events are numbered from 1).
    #[arg(long, default_value_t = 1)]
    since: u64,
}

pub fn events(a: EventsArgs) -> anyhow::Result<ExitCode> {
    // A --for beyond what the clock can add (years) is no deadline, not a panic.
    let deadline = a.for_s.and_then(|s| std::time::Instant::now().checked_add(Duration::from_secs(s)));
    let mut since = a.since;
    loop {
        let v = match call(&a.target, Command::Events { since, limit: 1000 }) {
            Ok(v) => v,
            Err(code) => return Ok(code),
        };
        for e in v["events"].as_array().into_iter().flatten() {
            println!("{e}");
        }
        since = v["next"].as_u64().unwrap_or(since);
        if !a.follow || deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            return Ok(ExitCode::SUCCESS);
        }
        if v["events"].as_array().is_none_or(|e| e.is_empty()) {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}
