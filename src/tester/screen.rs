//! The live view (ratatui over crossterm): a header, one row per VIP, the backend tally, and
//! the latest errors. Keys: `q` quits, `r` resets the figures, `p` pauses probing.

use std::io::Stdout;
use std::time::Duration;

use crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use crossterm::{cursor, execute, terminal};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Table};

use super::TesterError;
use super::report::rfc3339;
use super::run::Board;
use super::stats::{ErrorClass, VipStats, millis, millis_f};

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Quit,
    Reset,
    Pause,
}

/// The terminal in raw mode on the alternate screen; put back as it was on drop.
pub struct Screen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

fn local(what: &str) -> impl Fn(std::io::Error) -> TesterError + '_ {
    move |e| TesterError::Local(format!("terminal: {what}: {e}"))
}

impl Screen {
    pub fn start() -> Result<Screen, TesterError> {
        terminal::enable_raw_mode().map_err(local("raw mode (use --json without a terminal)"))?;
        let mut stdout = std::io::stdout();
        if let Err(e) = execute!(stdout, terminal::EnterAlternateScreen, cursor::Hide) {
            let _ = terminal::disable_raw_mode();
            return Err(local("alternate screen")(e));
        }
        let terminal = Terminal::new(CrosstermBackend::new(stdout)).map_err(local("setup"))?;
        Ok(Screen { terminal })
    }

    /// The keys pressed since the last call (never waits).
    pub fn keys(&mut self) -> Result<Vec<Key>, TesterError> {
        let mut keys = Vec::new();
        while event::poll(Duration::ZERO).map_err(local("keys"))? {
            let Event::Key(k) = event::read().map_err(local("keys"))? else {
                continue;
            };
            if k.kind != KeyEventKind::Press {
                continue;
            }
            let key = match k.code {
                KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => Key::Quit,
                KeyCode::Char('q' | 'Q') | KeyCode::Esc => Key::Quit,
                KeyCode::Char('r' | 'R') => Key::Reset,
                KeyCode::Char('p' | 'P') => Key::Pause,
                _ => continue,
            };
            keys.push(key);
        }
        Ok(keys)
    }

    pub fn draw(&mut self, board: &Board) -> Result<(), TesterError> {
        self.terminal
            .draw(|frame| {
                let vips = board.targets.len() as u16;
                let [header, table, tally, errors] = Layout::vertical([
                    Constraint::Length(2),
                    Constraint::Length(vips + 3),
                    Constraint::Length(vips + 2),
                    Constraint::Min(3),
                ])
                .areas(frame.area());
                frame.render_widget(header_lines(board), header);
                frame.render_widget(vip_table(board), table);
                frame.render_widget(tally_lines(board), tally);
                frame.render_widget(error_lines(board, errors.height), errors);
            })
            .map(|_| ())
            .map_err(local("draw"))
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = execute!(
            self.terminal.backend_mut(),
            terminal::LeaveAlternateScreen,
            cursor::Show
        );
        let _ = terminal::disable_raw_mode();
    }
}

fn clock(d: Duration) -> String {
    let s = d.as_secs();
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

fn header_lines(board: &Board) -> Paragraph<'static> {
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let mut first = vec![
        Span::styled("maglevt", bold),
        Span::raw(format!("  on {}", board.host)),
        Span::raw(format!("  targets: {}", board.settings.source_label)),
        Span::raw(format!("  running {}", clock(board.now()))),
    ];
    if let Some(d) = board.settings.duration {
        first.push(Span::raw(format!(" of {}", clock(d))));
    }
    if board.paused {
        first.push(Span::styled(
            "  PAUSED",
            Style::default()
                .fg(Color::Yellow)
                .add_modifier(Modifier::BOLD),
        ));
    }
    let second = Line::from(format!(
        "keys: q quit  r reset  p pause    every {} ms, timeout {} ms, window {} s",
        millis(board.settings.interval),
        millis(board.settings.timeout),
        board.settings.window.as_secs()
    ))
    .style(Style::default().fg(Color::DarkGray));
    Paragraph::new(vec![Line::from(first), second])
}

fn ms_cell(d: Duration, samples: usize) -> String {
    if samples == 0 {
        "-".to_string()
    } else {
        format!("{:.2}", millis_f(d))
    }
}

fn vip_table(board: &Board) -> Table<'static> {
    let now = board.now();
    let rows = board.targets.iter().zip(&board.stats).map(|(t, s)| {
        let p = s.window_percentiles();
        let (last, last_style) = match &s.last {
            Some(l) if l.ok => (l.text.clone(), Style::default().fg(Color::Green)),
            Some(l) => (l.text.clone(), Style::default().fg(Color::Red)),
            None => ("-".to_string(), Style::default()),
        };
        let outage = s.current_outage().map_or(String::new(), |o| {
            format!("OUT {} ms", millis(now.saturating_sub(o.start)))
        });
        Row::new(vec![
            ratatui::widgets::Cell::from(t.name.clone()),
            t.url().into(),
            ms_cell(p.p50, p.count).into(),
            ms_cell(p.p95, p.count).into(),
            ms_cell(p.p99, p.count).into(),
            ms_cell(p.max, p.count).into(),
            format!("{:.2}", s.ok_pct()).into(),
            s.failed.to_string().into(),
            ratatui::widgets::Cell::from(last).style(last_style),
            ratatui::widgets::Cell::from(outage).style(Style::default().fg(Color::Red)),
        ])
    });
    let widths = [
        Constraint::Min(8),
        Constraint::Min(12),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(14),
    ];
    Table::new(rows, widths)
        .header(
            Row::new([
                "VIP", "URL", "P50 ms", "P95 ms", "P99 ms", "MAX ms", "OK %", "FAIL", "LAST",
                "OUTAGE",
            ])
            .style(Style::default().add_modifier(Modifier::BOLD)),
        )
        .block(Block::bordered().title(" VIPs "))
}

fn tally_lines(board: &Board) -> Paragraph<'static> {
    let now = board.now();
    let lines: Vec<Line> = board
        .targets
        .iter()
        .zip(&board.stats)
        .map(|(t, s)| {
            let total = s.tallied().max(1) as f64;
            let mut spans = vec![Span::raw(format!("{}: ", t.name))];
            if s.backends.is_empty() {
                spans.push(Span::styled(
                    "(no answer carried the header)",
                    Style::default().fg(Color::DarkGray),
                ));
            }
            for (name, seen) in &s.backends {
                let style = if VipStats::backend_active(seen, now) {
                    Style::default()
                        .fg(Color::White)
                        .add_modifier(Modifier::BOLD)
                } else {
                    Style::default().fg(Color::DarkGray)
                };
                spans.push(Span::styled(
                    format!(
                        "{name} {:.1}% ({})",
                        seen.answers as f64 * 100.0 / total,
                        seen.answers
                    ),
                    style,
                ));
                spans.push(Span::raw("   "));
            }
            Line::from(spans)
        })
        .collect();
    Paragraph::new(lines)
        .block(Block::bordered().title(" backends (bright: answered in the last 5 s) "))
}

fn class_style(c: ErrorClass) -> Style {
    match c {
        ErrorClass::Spike => Style::default().fg(Color::Yellow),
        _ => Style::default().fg(Color::Red),
    }
}

fn error_lines(board: &Board, height: u16) -> Paragraph<'static> {
    let lines: Vec<Line> = board
        .errors
        .iter()
        .take(usize::from(height.saturating_sub(2)))
        .map(|e| {
            let when = rfc3339(board.wall(e.event.at));
            let name = board
                .targets
                .get(e.vip)
                .map_or("?", |t| t.name.as_str())
                .to_string();
            Line::from(vec![
                Span::raw(format!("{}  ", when.get(11..23).unwrap_or(&when))),
                Span::raw(format!("{name}  ")),
                Span::styled(
                    format!("{:<8}", e.event.class.as_str()),
                    class_style(e.event.class),
                ),
                Span::raw(format!("  {}", e.event.detail)),
            ])
        })
        .collect();
    Paragraph::new(lines).block(Block::bordered().title(" errors (newest first) "))
}
