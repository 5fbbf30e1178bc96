//! Log setup: text or JSON to stderr at the operator's level, plus a second layer that feeds
//! log lines to the event bus (for `watch events log`): debug only when `--log-level` asks for it.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::cli::{LogFormat, LogLevel};
use crate::events::{Event, EventBus, LogEvent};

/// Installs the global subscriber. Call once, before anything logs.
pub fn init(level: LogLevel, format: LogFormat, bus: EventBus) -> anyhow::Result<()> {
    // Our own crate at the chosen level; dependencies one step quieter unless trace/debug
    // was asked for explicitly through RUST_LOG.
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.is_empty() => EnvFilter::try_new(s)?,
        _ => EnvFilter::try_new(format!("warn,maglev={}", level.as_str()))?,
    };
    let style = LogStyle::choose(
        format,
        std::io::stderr().is_terminal(),
        std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
    );
    let fmt_layer = if style == LogStyle::Json {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(style == LogStyle::Colour)
            .with_filter(filter)
            .boxed()
    };
    // The bus never carries more than the operator asked for, except that watchers may
    // always see info and above (`WatchEvents` has its own minimum level down to info).
    // Nothing but watchers listens to it: the reconciler has its own trigger. The
    // per-probe and per-call records (`RECORDS`) are for the log only: they would never
    // let a watcher go quiet.
    let ours = bus_level(level);
    let bus_filter = Targets::new()
        .with_default(ours.min(LevelFilter::INFO))
        .with_target("maglev", ours)
        .with_target(RECORDS, LevelFilter::INFO);
    let bus_layer = BusLayer { bus }.with_filter(bus_filter);
    tracing_subscriber::registry()
        .with(fmt_layer)
        .with(bus_layer)
        .try_init()?;
    Ok(())
}

/// Target prefix of the DEBUG records written once per probe and per VPP API call (the
/// Go tool's debug log): on stderr at `--log-level debug`, never on the event bus.
pub const RECORDS: &str = "maglev::records";

/// How stderr log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStyle {
    /// One JSON object per line (journald, log shippers).
    Json,
    /// Human-readable lines, coloured.
    Colour,
    /// Human-readable lines without escape codes.
    Plain,
}

impl LogStyle {
    /// `auto` is text on a terminal and JSON otherwise; colour only on a terminal and
    /// only without `NO_COLOR` (https://no-color.org: set and not empty).
    pub fn choose(format: LogFormat, stderr_is_tty: bool, no_color: bool) -> LogStyle {
        let text = match format {
            LogFormat::Json => return LogStyle::Json,
            LogFormat::Text => LogStyle::Plain,
            LogFormat::Auto if !stderr_is_tty => return LogStyle::Json,
            LogFormat::Auto => LogStyle::Plain,
        };
        if stderr_is_tty && !no_color {
            LogStyle::Colour
        } else {
            text
        }
    }
}

/// The most verbose level forwarded to the bus for `--log-level`: debug only when asked
/// for (never trace: a trace-heavy path could flood watchers), else info.
pub fn bus_level(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Error | LogLevel::Warn | LogLevel::Info => LevelFilter::INFO,
        LogLevel::Debug | LogLevel::Trace => LevelFilter::DEBUG,
    }
}

/// Turns tracing events into `LogEvent`s on the bus.
pub struct BusLayer {
    pub bus: EventBus,
}

impl<S: tracing::Subscriber> Layer<S> for BusLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        // Formatting costs something: skip it when nobody is watching.
        if self.bus.subscriber_count() == 0 {
            return;
        }
        let mut visitor = FieldCollector::default();
        event.record(&mut visitor);
        let meta = event.metadata();
        self.bus.publish(Event::Log(LogEvent {
            at: SystemTime::now(),
            level: crate::events::LogLevel::from_tracing(meta.level()),
            target: meta.target().to_string(),
            message: visitor.message,
            fields: visitor.fields,
        }));
    }
}

#[derive(Default)]
struct FieldCollector {
    message: String,
    fields: BTreeMap<String, String>,
}

impl Visit for FieldCollector {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = value.to_string();
        } else {
            self.fields
                .insert(field.name().to_string(), value.to_string());
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = format!("{value:?}");
        } else {
            self.fields
                .insert(field.name().to_string(), format!("{value:?}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn style_by_format_terminal_and_no_color() {
        use LogFormat::{Auto, Json, Text};
        use LogStyle::{Colour, Plain};
        let cases = [
            // (format, tty, NO_COLOR) -> style
            ((Auto, true, false), Colour),
            ((Auto, true, true), Plain),
            ((Auto, false, false), LogStyle::Json),
            ((Auto, false, true), LogStyle::Json),
            ((Json, true, false), LogStyle::Json),
            ((Json, false, false), LogStyle::Json),
            ((Text, true, false), Colour),
            ((Text, true, true), Plain),
            ((Text, false, false), Plain),
        ];
        for ((format, tty, no_color), want) in cases {
            assert_eq!(
                LogStyle::choose(format, tty, no_color),
                want,
                "{format:?} tty={tty} NO_COLOR={no_color}"
            );
        }
    }

    #[test]
    fn the_bus_honours_the_log_level() {
        assert_eq!(bus_level(LogLevel::Info), LevelFilter::INFO);
        assert_eq!(bus_level(LogLevel::Warn), LevelFilter::INFO);
        assert_eq!(bus_level(LogLevel::Debug), LevelFilter::DEBUG);
        assert_eq!(bus_level(LogLevel::Trace), LevelFilter::DEBUG);
        // info: debug lines of our crate are not forwarded.
        assert!(bus_level(LogLevel::Info) < LevelFilter::DEBUG);
    }
}
