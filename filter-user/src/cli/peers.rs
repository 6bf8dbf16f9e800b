//! `sigwall peers`: peers with prefixes, classes, rate limits and live counters.

use std::process::ExitCode;

use sigwall::control::Command;

use super::control::{TargetOnly, call, done};

pub fn peers(a: TargetOnly) -> anyhow::Result<ExitCode> {
    done(call(&a.target, Command::Peers), |v| {
        if a.json {
            println!("{v}");
            return;
        }
        println!("generation {}", v["generation"]);
        println!(
            "{:<20} {:<40} {:<32} {:>10} {:>12} {:>12}",
            "peer", "prefixes", "allow", "rate pps", "passed", "dropped"
        );
        for p in v["peers"].as_array().into_iter().flatten() {
            let list = |k: &str| {
                p[k].as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(","))
                    .unwrap_or_default()
            };
            println!(
                "{:<20} {:<40} {:<32} {:>10} {:>12} {:>12}",
                p["name"].as_str().unwrap_or_default(),
                list("prefixes"),
                list("allow"),
                p["rate_limit_pps"].as_u64().map(|r| r.to_string()).unwrap_or("-".into()),
                p["passed"],
                p["dropped"]
            );
        }
    })
}
