//! `sigwall top --iface <if>`: a live terminal view of the pinned counters (ratatui, crossterm).
//!
//! The counters come from the pins under /sys/fs/bpf/sigwall/<iface>, as for `sigwall stats`, so
//! the view works without the daemon; when the control socket answers, it adds the XDP attach
//! mode and deep inspection's counters and latest events. Rates are deltas between two
//! snapshots over the time between them. Drawing is [`render`], a pure function of (previous
//! snapshot, current snapshot, elapsed, [`Context`]); the loop in [`main`] only gathers those.

use std::{
    collections::VecDeque,
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::Context as _;
use filter_common::Reason;
use ratatui::{
    Frame,
    crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers},
    layout::{Constraint, Layout},
    style::{Modifier, Style},
    text::Line,
    widgets::{Block, Cell, Paragraph, Row, Table},
};
use sigwall::{
    control,
    stats::{self, PeerStats, Snapshot},
};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Interface sigwall is attached to (counters are read from /sys/fs/bpf/sigwall/<iface>).
    #[arg(long, value_parser = sigwall::loader::iface_name)]
    iface: String,
    /// Control socket, if not /run/sigwall/<iface>.sock. Optional: without an answering daemon
    /// the view shows what the pins hold.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Refresh interval in milliseconds.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(100..=60_000))]
    interval_ms: u64,
}

/// The policy's defaults as the XDP program sees them (from the pinned GLOBAL map).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinPolicy {
    pub mode: &'static str,
    pub unknown_peer_pass: bool,
    pub non_signaling_pass: bool,
}

/// What the daemon adds when its control socket answers.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DaemonView {
    pub mode: Option<String>,
    pub xdp_mode: Option<String>,
    pub inspect_enabled: Option<bool>,
    /// Deep-inspection events so far, flagged packets read from the ring, ring overflows.
    pub events: u64,
    pub flagged: u64,
    pub overflow: u64,
    /// Latest events, oldest first, one line each.
    pub recent: Vec<String>,
}

/// Everything a frame shows besides the two snapshots.
pub struct Context<'a> {
    pub iface: &'a str,
    pub socket: &'a Path,
    pub interval: Duration,
    pub policy: Option<&'a PinPolicy>,
    /// `None`: no daemon answers on `socket`.
    pub daemon: Option<&'a DaemonView>,
    /// The last refresh failed (pins gone?): shown, and the last good snapshot stays.
    pub error: Option<&'a str>,
}

/// Per second, from two readings of a counter; `None` without a previous reading. A counter that
/// went backwards (a peer removed and added again) counts as zero.
fn rate(prev: Option<u64>, cur: u64, elapsed: Duration) -> Option<f64> {
    let secs = elapsed.as_secs_f64();
    if secs <= 0.0 {
        return None;
    }
    Some(cur.saturating_sub(prev?) as f64 / secs)
}

/// `12.5`, `12.5k`, `3.1M`, `1.0G`; `-` without a rate.
fn si(r: Option<f64>) -> String {
    match r {
        None => "-".into(),
        Some(v) if v < 1e3 => format!("{v:.1}"),
        Some(v) if v < 1e6 => format!("{:.1}k", v / 1e3),
        Some(v) if v < 1e9 => format!("{:.1}M", v / 1e6),
        Some(v) => format!("{:.1}G", v / 1e9),
    }
}

/// A peer's rates against the previous snapshot, matched by name (ids may change across
/// generations; a peer new in this one has no rate yet).
struct PeerRates {
    pps: Option<f64>,
    bps: Option<f64>,
    drops: Option<f64>,
    passes: Option<f64>,
}

fn peer_rates(prev: Option<&Snapshot>, p: &PeerStats, elapsed: Duration, unknown: bool) -> PeerRates {
    let before = prev.and_then(|s| if unknown { s.peers.iter().find(|q| q.id == 0) } else { s.peer(&p.name) });
    PeerRates {
        pps: rate(before.map(|b| b.packets), p.packets, elapsed),
        bps: rate(before.map(|b| b.bytes), p.bytes, elapsed),
        drops: rate(before.map(|b| b.dropped), p.dropped, elapsed),
        passes: rate(before.map(|b| b.passed), p.passed, elapsed),
    }
}

/// What a reason means for the packet, given the pinned defaults (see the README's table).
fn verdict(r: Reason, policy: Option<&PinPolicy>) -> &'static str {
    let pass_or_drop = |pass: bool| if pass { "pass" } else { "drop" };
    match r {
        Reason::Allowed | Reason::Monitored => "pass",
        Reason::NotAllowlisted => policy.map_or("policy", |p| pass_or_drop(p.unknown_peer_pass)),
        Reason::NonSignaling => policy.map_or("policy", |p| pass_or_drop(p.non_signaling_pass)),
        Reason::Fragment => "as first",
        Reason::Unclassifiable => "policy",
        Reason::ClassNotAllowed
        | Reason::RateLimited
        | Reason::Malformed
        | Reason::FlowBlocked
        | Reason::PeerBlocked
        | Reason::FragmentUntracked
        | Reason::FragmentPolicy
        | Reason::InspectOverload => "drop",
    }
}

/// A right-aligned table cell, for numbers and their headings.
fn num(s: impl Into<String>) -> Cell<'static> {
    Cell::from(Line::from(s.into()).right_aligned())
}

/// Draw one frame. Pure: the same inputs give the same screen.
pub fn render(f: &mut Frame, prev: Option<&Snapshot>, cur: &Snapshot, elapsed: Duration, ctx: &Context) {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let [head, peers_area, middle, events_area] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(5),
        Constraint::Length(Reason::ALL.len() as u16 + 3),
        Constraint::Length(7),
    ])
    .areas(f.area());

    // Header: what is shown, and how fresh it is.
    let mode = ctx.daemon.and_then(|d| d.mode.as_deref()).or(ctx.policy.map(|p| p.mode)).unwrap_or("?");
    let mut first = format!("sigwall top | iface {} | policy generation {} | mode {mode}", ctx.iface, cur.generation);
    if let Some(x) = ctx.daemon.and_then(|d| d.xdp_mode.as_deref()) {
        first += &format!(" | xdp {x}");
    }
    let second = match (ctx.error, prev) {
        (Some(e), _) => format!("refresh failed: {e}"),
        (None, Some(_)) => format!(
            "rates over the last {:.2} s, refresh every {:.1} s | q, Esc or Ctrl-C quits",
            elapsed.as_secs_f64(),
            ctx.interval.as_secs_f64()
        ),
        (None, None) => "rates appear after the next refresh | q, Esc or Ctrl-C quits".into(),
    };
    f.render_widget(Paragraph::new(vec![Line::styled(first, bold), Line::raw(second)]), head);

    // Configured peers, busiest first.
    let mut peers: Vec<(&PeerStats, PeerRates)> =
        cur.peers.iter().filter(|p| p.id != 0).map(|p| (p, peer_rates(prev, p, elapsed, false))).collect();
    peers.sort_by(|(a, ra), (b, rb)| {
        rb.pps
            .unwrap_or(0.0)
            .total_cmp(&ra.pps.unwrap_or(0.0))
            .then(b.packets.cmp(&a.packets))
            .then(a.name.cmp(&b.name))
    });
    let rows = peers.iter().map(|(p, r)| {
        Row::new(vec![
            Cell::from(p.name.clone()),
            num(si(r.pps)),
            num(si(r.bps)),
            num(si(r.drops)),
            num(p.packets.to_string()),
            num(p.bytes.to_string()),
            num(p.passed.to_string()),
            num(p.dropped.to_string()),
        ])
    });
    let widths = [
        Constraint::Min(16),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(13),
        Constraint::Length(15),
        Constraint::Length(13),
        Constraint::Length(13),
    ];
    let header = Row::new(
        [Cell::from("peer")]
            .into_iter()
            .chain(["pkts/s", "bytes/s", "drops/s", "packets", "bytes", "passed", "dropped"].map(num)),
    )
    .style(bold);
    let title = format!(" peers ({}), busiest first ", peers.len());
    f.render_widget(Table::new(rows, widths).header(header).block(Block::bordered().title(title)), peers_area);

    // Verdicts by reason | unknown sources over deep inspection.
    let [reasons_area, right] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(middle);
    let rows = Reason::ALL.iter().map(|r| {
        let before = prev.map(|s| s.reason(*r));
        Row::new(vec![
            Cell::from(r.name()),
            Cell::from(verdict(*r, ctx.policy)),
            num(si(rate(before, cur.reason(*r), elapsed))),
            num(cur.reason(*r).to_string()),
        ])
    });
    let widths = [Constraint::Min(18), Constraint::Length(9), Constraint::Length(9), Constraint::Length(14)];
    let header = Row::new([Cell::from("reason"), Cell::from("verdict"), num("pkts/s"), num("total")]).style(bold);
    f.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(Block::bordered().title(" packets by reason (drops and passes) ")),
        reasons_area,
    );

    let [unknown_area, inspect_area] = Layout::vertical([Constraint::Length(7), Constraint::Min(3)]).areas(right);
    let unknown = cur.peers.iter().find(|p| p.id == 0).cloned().unwrap_or_default();
    let r = peer_rates(prev, &unknown, elapsed, true);
    let line = |what: &str, v: Option<f64>, total: u64| Line::raw(format!("{what:<10} {:>9}/s  total {total}", si(v)));
    f.render_widget(
        Paragraph::new(vec![
            line("packets", r.pps, unknown.packets),
            line("bytes", r.bps, unknown.bytes),
            line("dropped", r.drops, unknown.dropped),
            line("passed", r.passes, unknown.passed),
            Line::raw("XDP keeps no source addresses: all in one slot"),
        ])
        .block(Block::bordered().title(" unknown sources (one aggregate slot) ")),
        unknown_area,
    );

    let inspect = match ctx.daemon {
        Some(d) => vec![
            Line::raw(format!(
                "enabled {}",
                match d.inspect_enabled {
                    Some(true) => "yes",
                    Some(false) => "no",
                    None => "?",
                }
            )),
            Line::raw(format!("events {}  flagged {}  ring overflow {}", d.events, d.flagged, d.overflow)),
        ],
        None => vec![
            Line::raw(format!("no daemon answers on {}", ctx.socket.display())),
            Line::raw("counters above come from the pins alone"),
        ],
    };
    f.render_widget(Paragraph::new(inspect).block(Block::bordered().title(" deep inspection ")), inspect_area);

    let events: Vec<Line> = match ctx.daemon {
        Some(d) if d.recent.is_empty() => vec![Line::raw("none yet")],
        Some(d) => d.recent.iter().map(|e| Line::raw(e.as_str())).collect(),
        None => vec![Line::raw("(needs the daemon's control socket)")],
    };
    f.render_widget(Paragraph::new(events).block(Block::bordered().title(" latest inspection events ")), events_area);
}

/// How many events the bottom panel keeps.
const RECENT: usize = 5;

/// Asks the daemon, when one answers, for what the pins do not hold.
struct Poller {
    socket: PathBuf,
    next_event: u64,
    recent: VecDeque<String>,
}

impl Poller {
    const TIMEOUT: Duration = Duration::from_millis(300);

    fn poll(&mut self) -> Option<DaemonView> {
        let status = control::call(&self.socket, control::Command::Status, Self::TIMEOUT).ok()?;
        let stats = control::call(&self.socket, control::Command::Stats, Self::TIMEOUT).ok()?;
        let events = control::call(
            &self.socket,
            control::Command::Events { since: self.next_event, limit: 10_000 },
            Self::TIMEOUT,
        )
        .ok()?;
        if let Some(list) = events["events"].as_array() {
            for e in list {
                self.recent.push_back(event_line(e));
                if self.recent.len() > RECENT {
                    self.recent.pop_front();
                }
            }
        }
        self.next_event = events["next"].as_u64().unwrap_or(self.next_event);
        let insp = &stats["inspect"];
        Some(DaemonView {
            mode: status["mode"].as_str().map(str::to_string),
            xdp_mode: status["xdp_mode"].as_str().map(str::to_string),
            inspect_enabled: insp["enabled"].as_bool(),
            events: insp["events"].as_u64().unwrap_or(0),
            flagged: insp["flagged"].as_u64().unwrap_or(0),
            overflow: insp["inspect_overflow"].as_u64().unwrap_or(0),
            recent: self.recent.iter().cloned().collect(),
        })
    }
}

fn event_line(e: &serde_json::Value) -> String {
    let s = |k: &str| match &e[k] {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".into(),
        v => v.to_string(),
    };
    format!("#{} peer {} rule {} action {} {}", s("seq"), s("peer"), s("rule"), s("action"), s("protocol"))
}

/// The pinned defaults of the generation in effect.
fn pin_policy(iface: &str) -> anyhow::Result<PinPolicy> {
    use filter_common::maps;
    use sigwall::loader::pins;
    let (active, global) = (pins::open(iface, maps::ACTIVE)?, pins::open(iface, maps::GLOBAL)?);
    let get = |name: &str| match name {
        maps::ACTIVE => Ok(&active),
        _ => Ok(&global),
    };
    let (_, g) = pins::active_generation(get)?;
    Ok(PinPolicy {
        mode: g.mode().name(),
        unknown_peer_pass: g.unknown_peer_pass != 0,
        non_signaling_pass: g.non_signaling_pass != 0,
    })
}

enum Wake {
    Quit,
    Redraw,
    Refresh,
}

/// Wait for a key, a resize or the deadline.
fn wait(deadline: Instant) -> anyhow::Result<Wake> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Wake::Refresh);
        }
        if !event::poll(left)? {
            continue;
        }
        match event::read()? {
            Event::Key(k) if k.kind == KeyEventKind::Press => {
                let ctrl_c = k.code == KeyCode::Char('c') && k.modifiers.contains(KeyModifiers::CONTROL);
                if ctrl_c || matches!(k.code, KeyCode::Char('q') | KeyCode::Char('Q') | KeyCode::Esc) {
                    return Ok(Wake::Quit);
                }
            }
            Event::Resize(..) => return Ok(Wake::Redraw),
            _ => {}
        }
    }
}

pub fn main(a: Args) -> anyhow::Result<ExitCode> {
    let socket = a.socket.clone().unwrap_or_else(|| control::socket_path(&a.iface));
    // Fail before taking over the terminal if there is nothing to show.
    let first = stats::of_pins(&a.iface).with_context(|| format!("reading sigwall counters of {}", a.iface))?;
    let mut terminal = ratatui::try_init().context("setting up the terminal")?;
    let res = run(&mut terminal, &a, &socket, first);
    ratatui::restore();
    res.map(|()| ExitCode::SUCCESS)
}

fn run(terminal: &mut ratatui::DefaultTerminal, a: &Args, socket: &Path, first: Snapshot) -> anyhow::Result<()> {
    let interval = Duration::from_millis(a.interval_ms);
    let mut poller = Poller { socket: socket.to_path_buf(), next_event: 0, recent: VecDeque::new() };
    let mut cur = (first, Instant::now());
    let mut prev: Option<(Snapshot, Instant)> = None;
    let mut policy = pin_policy(&a.iface).ok();
    let mut daemon = poller.poll();
    let mut error: Option<String> = None;
    let mut deadline = Instant::now() + interval;
    loop {
        let elapsed = prev.as_ref().map_or(Duration::ZERO, |(_, t)| cur.1.duration_since(*t));
        let ctx = Context {
            iface: &a.iface,
            socket,
            interval,
            policy: policy.as_ref(),
            daemon: daemon.as_ref(),
            error: error.as_deref(),
        };
        terminal.draw(|f| render(f, prev.as_ref().map(|(s, _)| s), &cur.0, elapsed, &ctx))?;
        match wait(deadline)? {
            Wake::Quit => return Ok(()),
            Wake::Redraw => continue,
            Wake::Refresh => {}
        }
        deadline += interval;
        if deadline < Instant::now() {
            deadline = Instant::now() + interval;
        }
        match stats::of_pins(&a.iface) {
            Ok(s) => {
                prev = Some(std::mem::replace(&mut cur, (s, Instant::now())));
                error = None;
            }
            Err(e) => error = Some(e.to_string()),
        }
        policy = pin_policy(&a.iface).ok().or(policy);
        daemon = poller.poll();
    }
}

#[cfg(test)]
mod tests {
    use filter_common::{CLASS_COUNT, Class, Counter, REASON_COUNT};
    use ratatui::{Terminal, backend::TestBackend};

    use super::*;

    fn snapshot(generation: u64, peers: &[(&str, u64, u64, u64)], reasons: &[(Reason, u64)]) -> Snapshot {
        let mut cells = [[Counter::default(); CLASS_COUNT]; REASON_COUNT];
        for (r, n) in reasons {
            cells[*r as usize][Class::GtpU as usize].packets = *n;
        }
        let peers = peers
            .iter()
            .enumerate()
            .map(|(id, (name, packets, bytes, dropped))| PeerStats {
                name: name.to_string(),
                id: id as u32,
                packets: *packets,
                bytes: *bytes,
                passed: packets - dropped,
                dropped: *dropped,
                copied: 0,
                copy_denied: 0,
            })
            .collect();
        Snapshot { generation, cells, peers, inpath: None, source_cache: None }
    }

    fn screen(t: &Terminal<TestBackend>) -> String {
        let b = t.backend().buffer();
        (0..b.area.height)
            .map(|y| (0..b.area.width).map(|x| b.cell((x, y)).map_or(" ", |c| c.symbol())).collect::<String>())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn line_with<'a>(screen: &'a str, needle: &str) -> &'a str {
        screen.lines().find(|l| l.contains(needle)).unwrap_or_else(|| panic!("no line with {needle:?} in\n{screen}"))
    }

    #[test]
    fn a_frame_from_two_snapshots_shows_peers_rates_and_reasons() {
        let prev = snapshot(
            3,
            &[("(unknown)", 40, 4_000, 40), ("partner-a", 100, 10_000, 0), ("partner-b", 10, 1_000, 0)],
            &[(Reason::Allowed, 110), (Reason::NotAllowlisted, 40)],
        );
        let cur = snapshot(
            4,
            &[("(unknown)", 90, 9_000, 80), ("partner-a", 350, 60_000, 0), ("partner-b", 15, 1_500, 5)],
            &[(Reason::Allowed, 360), (Reason::NotAllowlisted, 90), (Reason::RateLimited, 5)],
        );
        let policy = PinPolicy { mode: "enforce", unknown_peer_pass: false, non_signaling_pass: true };
        let daemon = DaemonView {
            mode: Some("enforce".into()),
            xdp_mode: Some("native".into()),
            inspect_enabled: Some(true),
            events: 7,
            recent: vec!["#6 peer partner-b rule ss7-category1 action block-flow map".into()],
            ..Default::default()
        };
        let ctx = Context {
            iface: "eth1",
            socket: Path::new("/run/sigwall/eth1.sock"),
            interval: Duration::from_secs(1),
            policy: Some(&policy),
            daemon: Some(&daemon),
            error: None,
        };
        let mut t = Terminal::new(TestBackend::new(120, 40)).unwrap();
        t.draw(|f| render(f, Some(&prev), &cur, Duration::from_millis(2500), &ctx)).unwrap();
        let s = screen(&t);

        assert!(s.contains("policy generation 4"), "{s}");
        assert!(s.contains("mode enforce"), "{s}");
        assert!(s.contains("xdp native"), "{s}");
        // partner-a: 250 packets and 50,000 bytes in 2.5 s; busiest, so listed first.
        let a = line_with(&s, "partner-a");
        assert!(a.contains("100.0") && a.contains("20.0k") && a.contains("350"), "{a}");
        let b = line_with(&s, "partner-b ");
        assert!(b.contains("2.0"), "{b}");
        assert!(s.find("partner-a").unwrap() < s.find("partner-b").unwrap(), "{s}");
        // Every reason has a row; these with their verdict, rate and total.
        for r in Reason::ALL {
            line_with(&s, r.name());
        }
        let na = line_with(&s, "not_allowlisted");
        assert!(na.contains("drop") && na.contains("20.0") && na.contains("90"), "{na}");
        let rl = line_with(&s, "rate_limited");
        assert!(rl.contains("drop") && rl.contains("2.0") && rl.contains(" 5"), "{rl}");
        // The unknown-source slot: 50 packets in 2.5 s, 40 of them dropped.
        assert!(s.contains("unknown sources (one aggregate slot)"), "{s}");
        assert!(line_with(&s, "20.0/s  total 90").contains("packets"), "{s}");
        assert!(line_with(&s, "16.0/s  total 80").contains("dropped"), "{s}");
        assert!(s.contains("events 7"), "{s}");
        assert!(s.contains("rule ss7-category1"), "{s}");
    }

    #[test]
    fn the_first_frame_has_no_rates_and_says_when_no_daemon_answers() {
        let cur = snapshot(1, &[("(unknown)", 0, 0, 0), ("partner", 3, 300, 0)], &[(Reason::Allowed, 3)]);
        let ctx = Context {
            iface: "eth1",
            socket: Path::new("/tmp/none.sock"),
            interval: Duration::from_secs(1),
            policy: None,
            daemon: None,
            error: None,
        };
        let mut t = Terminal::new(TestBackend::new(100, 30)).unwrap();
        t.draw(|f| render(f, None, &cur, Duration::ZERO, &ctx)).unwrap();
        let s = screen(&t);
        assert!(s.contains("policy generation 1"), "{s}");
        let p = line_with(&s, "partner");
        assert!(p.contains(" - ") && p.contains(" 3 "), "{p}");
        assert!(s.contains("no daemon answers on /tmp/none.sock"), "{s}");
        assert!(line_with(&s, "not_allowlisted").contains("policy"), "{s}");
    }

    #[test]
    fn rates_and_units() {
        assert_eq!(rate(None, 5, Duration::from_secs(1)), None);
        assert_eq!(rate(Some(5), 3, Duration::from_secs(1)), Some(0.0));
        assert_eq!(rate(Some(0), 3, Duration::ZERO), None);
        assert_eq!(si(Some(999.94)), "999.9");
        assert_eq!(si(Some(1_500.0)), "1.5k");
        assert_eq!(si(Some(2.5e6)), "2.5M");
        assert_eq!(si(None), "-");
    }
}
