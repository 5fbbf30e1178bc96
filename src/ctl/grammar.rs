//! The one command tree of `maglev ctl`. Dispatch (`parse`), `?` help (`help_at`), TAB
//! completion (`complete`) and the `help` listing (`usage_lines`) are all derived from `TREE`.
//!
//! Matching rules: any unique prefix of a keyword works, an exact keyword wins over a prefix,
//! an ambiguous prefix lists the candidates, and an unknown word is reported with its byte
//! position and what was possible there. Names (backends, frontends, pools, healthchecks) are
//! taken verbatim (the daemon says NOT_FOUND); their completion comes from a `NameSource`.
//!
//! Option groups: the children of a node marked `options` may be given in any order, each at
//! most once (`watch events num 5 log level debug backend`). Inside an option's subtree, a node
//! that may end the command also lets the remaining options of its group follow.

use std::fmt;

use crate::events::LogLevel;

/// What one grammar node matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Word {
    Key(&'static str),
    Slot(Slot),
}

/// A value position in a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Slot {
    Name(NameKind),
    /// A backend weight, 0..=100.
    Weight,
    /// A positive count.
    Count,
    /// A log level name (prefixes allowed, like keywords).
    Level,
}

/// Kinds of names that live in the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameKind {
    Backend,
    Frontend,
    Pool,
    HealthCheck,
}

impl Slot {
    /// How the slot is shown in help: `<backend>`, `<0-100>`.
    pub fn placeholder(self) -> &'static str {
        match self {
            Slot::Name(NameKind::Backend) => "<backend>",
            Slot::Name(NameKind::Frontend) => "<frontend>",
            Slot::Name(NameKind::Pool) => "<pool>",
            Slot::Name(NameKind::HealthCheck) => "<healthcheck>",
            Slot::Weight => "<0-100>",
            Slot::Count => "<n>",
            Slot::Level => "<level>",
        }
    }
}

/// What a complete command does: one variant per place the command may end, so building
/// the `Command` needs no guess about which words were given (`build`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    ShowVersion,
    ListFrontends,
    FrontendDetail,
    ListBackends,
    BackendDetail,
    ListHealthChecks,
    HealthCheckDetail,
    ShowVppInfo,
    ShowVppLbState,
    ShowVppLbCounters,
    SyncAllFrontends,
    SyncFrontend,
    SetBackend(BackendAction),
    SetWeight,
    /// `watch events` and each of its options: the spec is the union of the options given.
    WatchEvents(WatchOption),
    ConfigCheck,
    ConfigReload,
    Help,
    Quit,
}

/// What one word (or value) of `watch events` selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchOption {
    /// `watch events` itself: adds nothing.
    Events,
    Num,
    Log,
    LogLevel,
    Backend,
    Frontend,
}

/// One node of the command tree.
#[derive(Debug)]
pub struct Node {
    pub word: Word,
    pub help: &'static str,
    /// The command may end here, doing this.
    pub end: Option<Action>,
    /// The children are options: any order, each at most once.
    pub options: bool,
    pub children: &'static [Node],
}

const fn key(word: &'static str, help: &'static str, children: &'static [Node]) -> Node {
    Node {
        word: Word::Key(word),
        help,
        end: None,
        options: false,
        children,
    }
}

const fn slot(slot: Slot, help: &'static str, children: &'static [Node]) -> Node {
    Node {
        word: Word::Slot(slot),
        help,
        end: None,
        options: false,
        children,
    }
}

impl Node {
    const fn ends(mut self, action: Action) -> Node {
        self.end = Some(action);
        self
    }

    const fn with_options(mut self) -> Node {
        self.options = true;
        self
    }

    fn keyword(&self) -> Option<&'static str> {
        match self.word {
            Word::Key(k) => Some(k),
            Word::Slot(_) => None,
        }
    }

    /// The word as shown in help and errors.
    pub fn label(&self) -> &'static str {
        match self.word {
            Word::Key(k) => k,
            Word::Slot(s) => s.placeholder(),
        }
    }
}

const BACKEND: Slot = Slot::Name(NameKind::Backend);
const FRONTEND: Slot = Slot::Name(NameKind::Frontend);
const POOL: Slot = Slot::Name(NameKind::Pool);
const HEALTHCHECK: Slot = Slot::Name(NameKind::HealthCheck);

use Action as A;

/// The root's children: every command of `maglev ctl` (docs/design.md §9).
pub static TREE: &[Node] = &[
    key(
        "show",
        "show daemon and VPP state",
        &[
            key("version", "versions of ctl and the daemon", &[]).ends(A::ShowVersion),
            key(
                "frontends",
                "frontends (VIPs), or one in detail",
                &[slot(FRONTEND, "a frontend: pools and weights", &[]).ends(A::FrontendDetail)],
            )
            .ends(A::ListFrontends),
            key(
                "backends",
                "backends and their health, or one in detail",
                &[slot(BACKEND, "a backend: last probe and transitions", &[])
                    .ends(A::BackendDetail)],
            )
            .ends(A::ListBackends),
            key(
                "healthchecks",
                "health checks, or one in detail",
                &[slot(HEALTHCHECK, "a health check", &[]).ends(A::HealthCheckDetail)],
            )
            .ends(A::ListHealthChecks),
            key(
                "vpp",
                "VPP connection and lb plugin state",
                &[
                    key("info", "VPP connection, version and API", &[]).ends(A::ShowVppInfo),
                    key(
                        "lb",
                        "lb plugin",
                        &[
                            key("state", "VIPs and ASes as VPP has them", &[])
                                .ends(A::ShowVppLbState),
                            key("counters", "per-VIP packet counters", &[])
                                .ends(A::ShowVppLbCounters),
                        ],
                    ),
                ],
            ),
        ],
    ),
    key(
        "sync",
        "push the desired state to VPP now",
        &[key(
            "vpp",
            "VPP",
            &[key(
                "lb",
                "lb plugin",
                &[key(
                    "state",
                    "sync all frontends, or one",
                    &[slot(FRONTEND, "sync only this frontend", &[]).ends(A::SyncFrontend)],
                )
                .ends(A::SyncAllFrontends)],
            )],
        )],
    ),
    key(
        "set",
        "operator actions",
        &[
            key(
                "backend",
                "pause, resume, enable or disable a backend",
                &[slot(
                    BACKEND,
                    "the backend",
                    &[
                        key("pause", "stop probing, keep the weight at 0", &[])
                            .ends(A::SetBackend(BackendAction::Pause)),
                        key("resume", "probe again (state unknown)", &[])
                            .ends(A::SetBackend(BackendAction::Resume)),
                        key("enable", "re-enable a disabled backend", &[])
                            .ends(A::SetBackend(BackendAction::Enable)),
                        key("disable", "weight 0 with flush, no probes", &[])
                            .ends(A::SetBackend(BackendAction::Disable)),
                    ],
                )],
            ),
            key(
                "frontend",
                "runtime weight of a backend in a pool",
                &[slot(
                    FRONTEND,
                    "the frontend",
                    &[key(
                        "pool",
                        "choose a pool of the frontend",
                        &[slot(
                            POOL,
                            "the pool",
                            &[key(
                                "backend",
                                "choose a backend of the pool",
                                &[slot(
                                    BACKEND,
                                    "the backend",
                                    &[key(
                                        "weight",
                                        "set its weight",
                                        &[slot(Slot::Weight, "weight 0..100", &[])
                                            .ends(A::SetWeight)],
                                    )],
                                )],
                            )],
                        )],
                    )],
                )],
            ),
        ],
    ),
    key(
        "watch",
        "stream live events",
        &[key(
            "events",
            "until N events, a key, or Ctrl-C; no filter = everything",
            &[
                key(
                    "num",
                    "stop after N events",
                    &[slot(Slot::Count, "number of events", &[])
                        .ends(A::WatchEvents(WatchOption::Num))],
                ),
                key(
                    "log",
                    "include log events",
                    &[key(
                        "level",
                        "minimum log level (default info)",
                        &[slot(Slot::Level, "trace, debug, info, warn or error", &[])
                            .ends(A::WatchEvents(WatchOption::LogLevel))],
                    )],
                )
                .ends(A::WatchEvents(WatchOption::Log)),
                key("backend", "include backend transitions", &[])
                    .ends(A::WatchEvents(WatchOption::Backend)),
                key("frontend", "include frontend state changes", &[])
                    .ends(A::WatchEvents(WatchOption::Frontend)),
            ],
        )
        .with_options()
        .ends(A::WatchEvents(WatchOption::Events))],
    ),
    key(
        "config",
        "the daemon's configuration",
        &[
            key("check", "validate the config file on disk", &[]).ends(A::ConfigCheck),
            key("reload", "validate and apply the config file", &[]).ends(A::ConfigReload),
        ],
    ),
    key("help", "list all commands", &[]).ends(A::Help),
    key("quit", "leave the shell", &[]).ends(A::Quit),
    key("exit", "leave the shell", &[]).ends(A::Quit),
];

// ---------------------------------------------------------------- commands

/// Operator actions on one backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendAction {
    Pause,
    Resume,
    Enable,
    Disable,
}

impl BackendAction {
    pub fn as_str(self) -> &'static str {
        match self {
            BackendAction::Pause => "pause",
            BackendAction::Resume => "resume",
            BackendAction::Enable => "enable",
            BackendAction::Disable => "disable",
        }
    }
}

/// What `watch events` selects. No selection at all means everything (log at `info`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WatchSpec {
    pub num: Option<u64>,
    pub log: bool,
    pub log_level: Option<LogLevel>,
    pub backend: bool,
    pub frontend: bool,
}

impl WatchSpec {
    /// The selection with the "nothing chosen = everything" default applied.
    pub fn effective(&self) -> WatchSpec {
        let mut spec = self.clone();
        if !spec.log && !spec.backend && !spec.frontend {
            spec.log = true;
            spec.backend = true;
            spec.frontend = true;
        }
        spec
    }
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    ShowVersion,
    ShowFrontends(Option<String>),
    ShowBackends(Option<String>),
    ShowHealthChecks(Option<String>),
    ShowVppInfo,
    ShowVppLbState,
    ShowVppLbCounters,
    SyncVppLbState(Option<String>),
    SetBackend {
        name: String,
        action: BackendAction,
    },
    SetWeight {
        frontend: String,
        pool: String,
        backend: String,
        weight: u32,
    },
    WatchEvents(WatchSpec),
    ConfigCheck,
    ConfigReload,
    Help,
    Quit,
}

// ---------------------------------------------------------------- names

/// Context of a name slot: the frontend and pool chosen earlier on the line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scope<'a> {
    pub frontend: Option<&'a str>,
    pub pool: Option<&'a str>,
}

/// Where completion gets names from (a snapshot of the daemon's, provided by the caller).
pub trait NameSource {
    /// The names that fit `kind` in `scope` (e.g. the pools of `scope.frontend`).
    fn names(&self, kind: NameKind, scope: Scope<'_>) -> Vec<String>;
}

/// No names: keywords still complete (one-shot mode, daemon unreachable).
pub struct NoNames;

impl NameSource for NoNames {
    fn names(&self, _kind: NameKind, _scope: Scope<'_>) -> Vec<String> {
        Vec::new()
    }
}

// ---------------------------------------------------------------- errors

/// A usage error, pointing at a byte offset of the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("no command given")]
    Empty,
    #[error("{}", unknown(word, expected))]
    Unknown {
        word: String,
        pos: usize,
        expected: Vec<String>,
    },
    #[error("{word:?} is ambiguous: {}", candidates.join(", "))]
    Ambiguous {
        word: String,
        pos: usize,
        candidates: Vec<String>,
    },
    #[error("incomplete command; expected {}", list(expected))]
    Incomplete { pos: usize, expected: Vec<String> },
    #[error("bad value {word:?}: {reason}")]
    BadValue {
        word: String,
        pos: usize,
        reason: String,
    },
    /// The line was complete by the tree but the action lacks a value: a bug, not a typo.
    #[error("{missing}")]
    Internal { pos: usize, missing: MissingSlot },
}

fn unknown(word: &str, expected: &[String]) -> String {
    if expected.is_empty() {
        format!("unexpected word {word:?}: the command is complete without it")
    } else {
        format!("unknown word {word:?}; expected {}", list(expected))
    }
}

fn list(items: &[String]) -> String {
    match items {
        [] => "nothing more".to_string(),
        [one] => one.clone(),
        _ => format!("one of {}", items.join(", ")),
    }
}

impl ParseError {
    /// Byte offset in the line of the word the error is about.
    pub fn pos(&self) -> usize {
        match self {
            ParseError::Empty => 0,
            ParseError::Unknown { pos, .. }
            | ParseError::Ambiguous { pos, .. }
            | ParseError::Incomplete { pos, .. }
            | ParseError::BadValue { pos, .. }
            | ParseError::Internal { pos, .. } => *pos,
        }
    }

    /// The words that were possible at the error's position.
    pub fn choices(&self) -> &[String] {
        match self {
            ParseError::Unknown { expected, .. } | ParseError::Incomplete { expected, .. } => {
                expected
            }
            ParseError::Ambiguous { candidates, .. } => candidates,
            ParseError::Empty | ParseError::BadValue { .. } | ParseError::Internal { .. } => &[],
        }
    }

    /// The line, a caret under the offending word, and the message:
    /// ```text
    ///   show bogus
    ///        ^
    /// error: unknown word "bogus"; expected one of version, frontends, ...
    /// ```
    pub fn pointed(&self, line: &str) -> String {
        let col = line
            .get(..self.pos())
            .map_or(self.pos(), |s| s.chars().count());
        format!("  {line}\n  {}^\nerror: {self}", " ".repeat(col))
    }
}

// ---------------------------------------------------------------- tokens

/// A word of the line and its byte offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token<'a> {
    pub text: &'a str,
    pub pos: usize,
}

/// Splits on whitespace, keeping byte offsets.
pub fn tokenize(line: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                tokens.push(Token {
                    text: &line[s..i],
                    pos: s,
                });
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        tokens.push(Token {
            text: &line[s..],
            pos: s,
        });
    }
    tokens
}

// ---------------------------------------------------------------- the walk

/// A matched slot's value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Name(String),
    Weight(u32),
    Count(u64),
    Level(LogLevel),
}

/// The values given for the slots of one line. A command has at most one slot of each kind
/// (the tree test checks), so each kind has one place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Slots {
    frontend: Option<String>,
    pool: Option<String>,
    backend: Option<String>,
    healthcheck: Option<String>,
    weight: Option<u32>,
    count: Option<u64>,
    level: Option<LogLevel>,
}

impl Slots {
    /// Stores `value` for `slot`; false when that slot was filled already.
    fn put(&mut self, slot: Slot, value: Value) -> bool {
        fn fill<T>(place: &mut Option<T>, value: T) -> bool {
            let empty = place.is_none();
            if empty {
                *place = Some(value);
            }
            empty
        }
        match (slot, value) {
            (Slot::Name(NameKind::Frontend), Value::Name(n)) => fill(&mut self.frontend, n),
            (Slot::Name(NameKind::Pool), Value::Name(n)) => fill(&mut self.pool, n),
            (Slot::Name(NameKind::Backend), Value::Name(n)) => fill(&mut self.backend, n),
            (Slot::Name(NameKind::HealthCheck), Value::Name(n)) => fill(&mut self.healthcheck, n),
            (Slot::Weight, Value::Weight(w)) => fill(&mut self.weight, w),
            (Slot::Count, Value::Count(n)) => fill(&mut self.count, n),
            (Slot::Level, Value::Level(l)) => fill(&mut self.level, l),
            // `slot_value` makes the value from the slot, so the kinds always agree.
            _ => false,
        }
    }

    fn name(&self, kind: NameKind, action: Action) -> Result<String, MissingSlot> {
        let name = match kind {
            NameKind::Frontend => &self.frontend,
            NameKind::Pool => &self.pool,
            NameKind::Backend => &self.backend,
            NameKind::HealthCheck => &self.healthcheck,
        };
        name.clone().ok_or(MissingSlot {
            action,
            slot: Slot::Name(kind),
        })
    }

    fn value<T: Copy>(place: Option<T>, slot: Slot, action: Action) -> Result<T, MissingSlot> {
        place.ok_or(MissingSlot { action, slot })
    }
}

/// The tree let a command end without a value its action needs: a bug in `TREE`, refused
/// rather than filled with a default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{action:?} needs a value for {} (a bug in the command tree)", slot.placeholder())]
pub struct MissingSlot {
    pub action: Action,
    pub slot: Slot,
}

/// Where the walk stands after some words.
#[derive(Debug, Clone)]
struct Cursor {
    /// The root's children.
    tree: &'static [Node],
    /// None = at the root.
    node: Option<&'static Node>,
    /// The innermost option group entered, with the options already used.
    group: Option<(&'static Node, Vec<usize>)>,
    slots: Slots,
    /// The `watch events` options given so far.
    watch: Vec<WatchOption>,
}

impl Cursor {
    fn root(tree: &'static [Node]) -> Cursor {
        Cursor {
            tree,
            node: None,
            group: None,
            slots: Slots::default(),
            watch: Vec::new(),
        }
    }

    /// The nodes that may match the next word.
    fn candidates(&self) -> Vec<&'static Node> {
        let Some(node) = self.node else {
            return self.tree.iter().collect();
        };
        let mut out: Vec<&'static Node> = Vec::new();
        let group_is_here = self
            .group
            .as_ref()
            .is_some_and(|(g, _)| std::ptr::eq(*g, node));
        if !group_is_here {
            out.extend(node.children.iter());
        }
        if let Some((group, used)) = &self.group
            && (group_is_here || node.end.is_some())
        {
            out.extend(
                group
                    .children
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| !used.contains(i))
                    .map(|(_, n)| n),
            );
        }
        out
    }

    /// The action if the command may end here.
    fn end(&self) -> Option<Action> {
        self.node.and_then(|n| n.end)
    }

    /// The frontend and pool named so far (for name completion).
    fn scope(&self) -> Scope<'_> {
        Scope {
            frontend: self.slots.frontend.as_deref(),
            pool: self.slots.pool.as_deref(),
        }
    }

    fn advance(&mut self, node: &'static Node) {
        if let Some((group, used)) = &mut self.group
            && let Some(i) = group.children.iter().position(|c| std::ptr::eq(c, node))
        {
            used.push(i);
        }
        if node.options {
            self.group = Some((node, Vec::new()));
        }
        if let Some(Action::WatchEvents(option)) = node.end {
            self.watch.push(option);
        }
        self.node = Some(node);
    }

    /// Matches one word against the candidates and moves on.
    fn step(&mut self, token: Token<'_>) -> Result<(), ParseError> {
        let candidates = self.candidates();
        let word = token.text;
        let expected = || candidates.iter().map(|n| n.label().to_string()).collect();
        if let Some(exact) = candidates.iter().find(|n| n.keyword() == Some(word)) {
            self.advance(exact);
            return Ok(());
        }
        let prefixed: Vec<&'static Node> = candidates
            .iter()
            .copied()
            .filter(|n| n.keyword().is_some_and(|k| k.starts_with(word)))
            .collect();
        match prefixed.as_slice() {
            [one] => {
                self.advance(one);
                return Ok(());
            }
            [] => {}
            many => {
                return Err(ParseError::Ambiguous {
                    word: word.to_string(),
                    pos: token.pos,
                    candidates: many.iter().map(|n| n.label().to_string()).collect(),
                });
            }
        }
        let Some((slot_node, slot)) = candidates.iter().find_map(|n| match n.word {
            Word::Slot(s) => Some((*n, s)),
            Word::Key(_) => None,
        }) else {
            return Err(ParseError::Unknown {
                word: word.to_string(),
                pos: token.pos,
                expected: expected(),
            });
        };
        let value = slot_value(slot, token)?;
        if !self.slots.put(slot, value) {
            return Err(ParseError::BadValue {
                word: word.to_string(),
                pos: token.pos,
                reason: format!("{} was given already", slot.placeholder()),
            });
        }
        self.advance(slot_node);
        Ok(())
    }
}

fn slot_value(slot: Slot, token: Token<'_>) -> Result<Value, ParseError> {
    let bad = |reason: &str| ParseError::BadValue {
        word: token.text.to_string(),
        pos: token.pos,
        reason: reason.to_string(),
    };
    match slot {
        Slot::Name(_) => Ok(Value::Name(token.text.to_string())),
        Slot::Weight => match token.text.parse::<u32>() {
            Ok(w) if w <= 100 => Ok(Value::Weight(w)),
            _ => Err(bad("the weight is a whole number from 0 to 100")),
        },
        Slot::Count => match token.text.parse::<u64>() {
            Ok(n) if n > 0 => Ok(Value::Count(n)),
            _ => Err(bad("the count is a whole number above 0")),
        },
        Slot::Level => {
            let matches: Vec<LogLevel> = LogLevel::ALL
                .into_iter()
                .filter(|l| l.as_str().starts_with(token.text))
                .collect();
            match matches.as_slice() {
                [one] => Ok(Value::Level(*one)),
                _ => Err(bad("the level is one of trace, debug, info, warn, error")),
            }
        }
    }
}

fn walk(tokens: &[Token<'_>]) -> Result<Cursor, ParseError> {
    walk_in(TREE, tokens)
}

fn walk_in(tree: &'static [Node], tokens: &[Token<'_>]) -> Result<Cursor, ParseError> {
    let mut cursor = Cursor::root(tree);
    for token in tokens {
        cursor.step(*token)?;
    }
    Ok(cursor)
}

// ---------------------------------------------------------------- parse

/// Parses one command line.
pub fn parse(line: &str) -> Result<Command, ParseError> {
    parse_in(TREE, line)
}

fn parse_in(tree: &'static [Node], line: &str) -> Result<Command, ParseError> {
    let tokens = tokenize(line);
    if tokens.is_empty() {
        return Err(ParseError::Empty);
    }
    let cursor = walk_in(tree, &tokens)?;
    // Where a missing word would go: one character past the last word (which may be a
    // multi-byte space), or one past the end of the line.
    let end = line.trim_end().len();
    let missing_at = end + line[end..].chars().next().map_or(1, char::len_utf8);
    let Some(action) = cursor.end() else {
        return Err(ParseError::Incomplete {
            pos: missing_at,
            expected: cursor
                .candidates()
                .iter()
                .map(|n| n.label().to_string())
                .collect(),
        });
    };
    build(action, &cursor.watch, &cursor.slots).map_err(|missing| ParseError::Internal {
        pos: missing_at,
        missing,
    })
}

/// The command for `action` from the slot values given; `watch` lists the `watch events`
/// options given (only `WatchEvents` reads it). A value the action needs but the line did
/// not give is an error, never a default.
fn build(action: Action, watch: &[WatchOption], slots: &Slots) -> Result<Command, MissingSlot> {
    let name = |kind| slots.name(kind, action);
    Ok(match action {
        A::ShowVersion => Command::ShowVersion,
        A::ListFrontends => Command::ShowFrontends(None),
        A::FrontendDetail => Command::ShowFrontends(Some(name(NameKind::Frontend)?)),
        A::ListBackends => Command::ShowBackends(None),
        A::BackendDetail => Command::ShowBackends(Some(name(NameKind::Backend)?)),
        A::ListHealthChecks => Command::ShowHealthChecks(None),
        A::HealthCheckDetail => Command::ShowHealthChecks(Some(name(NameKind::HealthCheck)?)),
        A::ShowVppInfo => Command::ShowVppInfo,
        A::ShowVppLbState => Command::ShowVppLbState,
        A::ShowVppLbCounters => Command::ShowVppLbCounters,
        A::SyncAllFrontends => Command::SyncVppLbState(None),
        A::SyncFrontend => Command::SyncVppLbState(Some(name(NameKind::Frontend)?)),
        A::SetBackend(backend_action) => Command::SetBackend {
            name: name(NameKind::Backend)?,
            action: backend_action,
        },
        A::SetWeight => Command::SetWeight {
            frontend: name(NameKind::Frontend)?,
            pool: name(NameKind::Pool)?,
            backend: name(NameKind::Backend)?,
            weight: Slots::value(slots.weight, Slot::Weight, action)?,
        },
        A::WatchEvents(_) => {
            let mut spec = WatchSpec::default();
            for option in watch {
                match option {
                    WatchOption::Events => {}
                    WatchOption::Num => {
                        spec.num = Some(Slots::value(slots.count, Slot::Count, action)?);
                    }
                    WatchOption::Log => spec.log = true,
                    WatchOption::LogLevel => {
                        spec.log_level = Some(Slots::value(slots.level, Slot::Level, action)?);
                    }
                    WatchOption::Backend => spec.backend = true,
                    WatchOption::Frontend => spec.frontend = true,
                }
            }
            Command::WatchEvents(spec)
        }
        A::ConfigCheck => Command::ConfigCheck,
        A::ConfigReload => Command::ConfigReload,
        A::Help => Command::Help,
        A::Quit => Command::Quit,
    })
}

// ---------------------------------------------------------------- help and completion

/// One line of `?` help: what may come next and what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpEntry {
    /// A keyword, a slot placeholder (`<backend>`), or `<cr>` when the command may end here.
    pub word: String,
    pub help: String,
}

impl fmt::Display for HelpEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<14} {}", self.word, self.help)
    }
}

/// `?` at the end of `line`: what may come next. When the line ends inside a word, only the
/// keywords that word is a prefix of (`sh ba?` lists `backends`).
pub fn help_at(line: &str) -> Result<Vec<HelpEntry>, ParseError> {
    let tokens = tokenize(line);
    let in_word = !line.is_empty() && !line.ends_with(char::is_whitespace);
    let (done, partial) = match (in_word, tokens.split_last()) {
        (true, Some((last, rest))) => (rest, Some(*last)),
        _ => (tokens.as_slice(), None),
    };
    let cursor = walk(done)?;
    let mut entries: Vec<HelpEntry> = cursor
        .candidates()
        .into_iter()
        .filter(|n| match (partial, n.word) {
            (None, _) => true,
            (Some(p), Word::Key(k)) => k.starts_with(p.text),
            (Some(_), Word::Slot(_)) => true,
        })
        .map(|n| HelpEntry {
            word: n.label().to_string(),
            help: n.help.to_string(),
        })
        .collect();
    if partial.is_none() && cursor.end().is_some() {
        entries.push(HelpEntry {
            word: "<cr>".to_string(),
            help: "run the command".to_string(),
        });
    }
    Ok(entries)
}

/// A completion candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub text: String,
    pub help: String,
}

/// TAB at byte `pos` of `line`: the byte offset where the word being completed starts, and
/// the candidates for it (keywords, names from `names`, log levels). Nothing when the words
/// before it do not parse.
pub fn complete(line: &str, pos: usize, names: &dyn NameSource) -> (usize, Vec<Candidate>) {
    let head = line.get(..pos).unwrap_or(line);
    let tokens = tokenize(head);
    let in_word = !head.is_empty() && !head.ends_with(char::is_whitespace);
    let (done, partial, start) = match (in_word, tokens.split_last()) {
        (true, Some((last, rest))) => (rest, last.text, last.pos),
        _ => (tokens.as_slice(), "", head.len()),
    };
    let Ok(cursor) = walk(done) else {
        return (start, Vec::new());
    };
    let mut out = Vec::new();
    for node in cursor.candidates() {
        match node.word {
            Word::Key(k) => out.push(Candidate {
                text: k.to_string(),
                help: node.help.to_string(),
            }),
            Word::Slot(Slot::Name(kind)) => out.extend(
                names
                    .names(kind, cursor.scope())
                    .into_iter()
                    .map(|n| Candidate {
                        text: n,
                        help: node.help.to_string(),
                    }),
            ),
            Word::Slot(Slot::Level) => out.extend(LogLevel::ALL.iter().map(|l| Candidate {
                text: l.as_str().to_string(),
                help: node.help.to_string(),
            })),
            Word::Slot(Slot::Weight | Slot::Count) => {}
        }
    }
    out.retain(|c| c.text.starts_with(partial));
    (start, out)
}

/// The `help` listing: one line per command form, derived from the tree.
pub fn usage_lines() -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    for node in TREE {
        usage(node, String::new(), &mut out);
    }
    out
}

fn usage(node: &'static Node, prefix: String, out: &mut Vec<(String, &'static str)>) {
    let here = if prefix.is_empty() {
        node.label().to_string()
    } else {
        format!("{prefix} {}", node.label())
    };
    let leaves = node.children.iter().all(|c| c.children.is_empty());
    if node.children.is_empty() {
        out.push((here, node.help));
    } else if node.options {
        let opts: Vec<String> = node
            .children
            .iter()
            .map(|c| format!("[{}]", optional_syntax(c)))
            .collect();
        out.push((format!("{here} {}", opts.join(" ")), node.help));
    } else if node.end.is_some() && node.children.len() == 1 {
        out.push((
            format!("{here} [{}]", optional_syntax(&node.children[0])),
            node.help,
        ));
    } else if leaves && matches!(node.word, Word::Slot(_)) && node.children.len() > 1 {
        let alts: Vec<&str> = node.children.iter().map(|c| c.label()).collect();
        out.push((format!("{here} {}", alts.join("|")), node.help));
    } else {
        for child in node.children {
            usage(child, here.clone(), out);
        }
    }
}

/// A linear subtree as syntax: `log [level <level>]`, `num <n>`.
fn optional_syntax(node: &'static Node) -> String {
    match node.children {
        [] => node.label().to_string(),
        [only] if node.end.is_some() => format!("{} [{}]", node.label(), optional_syntax(only)),
        [only] => format!("{} {}", node.label(), optional_syntax(only)),
        many => {
            let alts: Vec<String> = many.iter().map(optional_syntax).collect();
            format!("{} {}", node.label(), alts.join("|"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn cmd(line: &str) -> Command {
        match parse(line) {
            Ok(c) => c,
            Err(e) => panic!("{line:?} should parse: {e}"),
        }
    }

    fn err(line: &str) -> ParseError {
        match parse(line) {
            Ok(c) => panic!("{line:?} should not parse, got {c:?}"),
            Err(e) => e,
        }
    }

    // ------------------------------------------------------------ tree authoring

    /// Walks every node: no duplicate or prefix-shadowed siblings (including the options
    /// of an enclosing group), at most one slot per choice point, never a slot beside
    /// keywords, no dead end, no nested option groups, options end with the group's action.
    fn check_tree(
        nodes: &'static [Node],
        group: Option<&'static Node>,
        path: &str,
        problems: &mut Vec<String>,
    ) {
        for node in nodes {
            let here = format!("{path} {}", node.label());
            if node.children.is_empty() && node.end.is_none() {
                problems.push(format!("{here}: dead end without an action"));
            }
            if node.options && group.is_some() {
                problems.push(format!("{here}: option group nested in a group"));
            }
            if let (Some(g), Some(end)) = (group, node.end)
                && g.end.as_ref().map(std::mem::discriminant) != Some(std::mem::discriminant(&end))
            {
                problems.push(format!(
                    "{here}: option ends with another action than its group"
                ));
            }
            // The choice set after this node, as the walker computes it.
            let mut choices: Vec<&'static Node> = Vec::new();
            if !node.options {
                choices.extend(node.children.iter());
            }
            let inner_group = if node.options { Some(node) } else { group };
            if let Some(g) = inner_group
                && (node.options || node.end.is_some())
            {
                choices.extend(g.children.iter().filter(|c| !std::ptr::eq(*c, node)));
            }
            check_choices(&choices, &here, problems);
            check_tree(node.children, inner_group, &here, problems);
        }
    }

    fn check_choices(choices: &[&'static Node], here: &str, problems: &mut Vec<String>) {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for c in choices {
            *seen.entry(c.label()).or_default() += 1;
        }
        for (label, count) in seen {
            if count > 1 {
                problems.push(format!("{here}: {count} children named {label:?}"));
            }
        }
        let slots = choices
            .iter()
            .filter(|c| matches!(c.word, Word::Slot(_)))
            .count();
        if slots > 1 {
            problems.push(format!("{here}: {slots} slots at one choice point"));
        }
        if slots == 1 && choices.len() > 1 {
            problems.push(format!("{here}: a slot beside keywords"));
        }
    }

    #[test]
    fn the_command_tree_is_well_formed() {
        let mut problems = Vec::new();
        let roots: Vec<&'static Node> = TREE.iter().collect();
        check_choices(&roots, "<root>", &mut problems);
        check_tree(TREE, None, "", &mut problems);
        assert!(
            problems.is_empty(),
            "tree problems:\n{}",
            problems.join("\n")
        );
    }

    #[test]
    fn the_tree_checker_catches_authoring_mistakes() {
        static BAD: &[Node] = &[
            key(
                "show",
                "",
                &[
                    key("x", "", &[]).ends(A::Help),
                    key("x", "", &[]).ends(A::Help),
                ],
            ),
            key(
                "set",
                "",
                &[
                    slot(BACKEND, "", &[]).ends(A::Help),
                    slot(FRONTEND, "", &[]).ends(A::Help),
                ],
            ),
            key("dead", "", &[key("end", "", &[])]),
        ];
        let mut problems = Vec::new();
        check_tree(BAD, None, "", &mut problems);
        let text = problems.join("\n");
        assert!(text.contains("2 children named \"x\""), "{text}");
        assert!(text.contains("2 slots at one choice point"), "{text}");
        assert!(
            text.contains("dead end: dead end without an action"),
            "{text}"
        );
    }

    // ------------------------------------------------------------ parsing

    #[test]
    fn full_words_parse_to_commands() {
        assert_eq!(cmd("show version"), Command::ShowVersion);
        assert_eq!(cmd("show backends"), Command::ShowBackends(None));
        assert_eq!(
            cmd("show backends web1"),
            Command::ShowBackends(Some("web1".into()))
        );
        assert_eq!(
            cmd("show frontends vip1"),
            Command::ShowFrontends(Some("vip1".into()))
        );
        assert_eq!(cmd("show healthchecks"), Command::ShowHealthChecks(None));
        assert_eq!(cmd("show vpp info"), Command::ShowVppInfo);
        assert_eq!(cmd("show vpp lb state"), Command::ShowVppLbState);
        assert_eq!(cmd("show vpp lb counters"), Command::ShowVppLbCounters);
        assert_eq!(cmd("sync vpp lb state"), Command::SyncVppLbState(None));
        assert_eq!(
            cmd("sync vpp lb state vip1"),
            Command::SyncVppLbState(Some("vip1".into()))
        );
        assert_eq!(cmd("config check"), Command::ConfigCheck);
        assert_eq!(cmd("config reload"), Command::ConfigReload);
        assert_eq!(cmd("help"), Command::Help);
        assert_eq!(cmd("quit"), Command::Quit);
        assert_eq!(cmd("exit"), Command::Quit);
        assert_eq!(cmd("  show   version  "), Command::ShowVersion);
    }

    #[test]
    fn backend_actions_and_weights() {
        for (word, action) in [
            ("pause", BackendAction::Pause),
            ("resume", BackendAction::Resume),
            ("enable", BackendAction::Enable),
            ("disable", BackendAction::Disable),
        ] {
            assert_eq!(
                cmd(&format!("set backend web1 {word}")),
                Command::SetBackend {
                    name: "web1".into(),
                    action
                }
            );
        }
        assert_eq!(
            cmd("set frontend vip1 pool primary backend web2 weight 42"),
            Command::SetWeight {
                frontend: "vip1".into(),
                pool: "primary".into(),
                backend: "web2".into(),
                weight: 42
            }
        );
        // A backend *named* like a keyword is still a name in a name slot.
        assert_eq!(
            cmd("set backend pause pause"),
            Command::SetBackend {
                name: "pause".into(),
                action: BackendAction::Pause
            }
        );
    }

    #[test]
    fn unique_prefixes_work() {
        assert_eq!(cmd("sh ba"), Command::ShowBackends(None));
        assert_eq!(cmd("sh f x"), Command::ShowFrontends(Some("x".into())));
        assert_eq!(cmd("sh vp l c"), Command::ShowVppLbCounters);
        assert_eq!(cmd("sy v l s"), Command::SyncVppLbState(None));
        assert_eq!(
            cmd("se b web1 dis"),
            Command::SetBackend {
                name: "web1".into(),
                action: BackendAction::Disable
            }
        );
        assert_eq!(cmd("q"), Command::Quit);
        assert_eq!(cmd("e"), Command::Quit);
    }

    #[test]
    fn an_exact_match_beats_a_prefix() {
        // The real tree has no keyword that is a prefix of a sibling; this one does.
        static T: &[Node] = &[
            key("show", "", &[]).ends(A::Help),
            key("showall", "", &[]).ends(A::Quit),
        ];
        assert_eq!(parse_in(T, "show"), Ok(Command::Help));
        assert_eq!(parse_in(T, "showa"), Ok(Command::Quit));
        assert_eq!(
            parse_in(T, "sho"),
            Err(ParseError::Ambiguous {
                word: "sho".into(),
                pos: 0,
                candidates: vec!["show".into(), "showall".into()]
            })
        );
    }

    #[test]
    fn exact_and_prefix_options_in_the_real_tree() {
        let spec = |line: &str| match cmd(line) {
            Command::WatchEvents(s) => s,
            other => panic!("{other:?}"),
        };
        assert!(spec("watch events backend").backend);
        assert!(spec("watch events back").backend);
        assert!(spec("w e f").frontend);
    }

    #[test]
    fn ambiguous_prefix_lists_the_candidates() {
        // "s" starts show, sync and set.
        assert_eq!(
            err("s ba"),
            ParseError::Ambiguous {
                word: "s".into(),
                pos: 0,
                candidates: vec!["show".into(), "sync".into(), "set".into()]
            }
        );
        // Deeper in the line, with a test tree: the position is that of the word.
        static T: &[Node] = &[key(
            "show",
            "",
            &[
                key("backends", "", &[]).ends(A::Help),
                key("backups", "", &[]).ends(A::Help),
            ],
        )];
        let e = parse_in(T, "show  back").expect_err("ambiguous");
        assert_eq!(e.pos(), 6);
        assert_eq!(e.choices(), ["backends", "backups"]);
        assert!(
            e.to_string()
                .contains("\"back\" is ambiguous: backends, backups"),
            "{e}"
        );
    }

    #[test]
    fn unknown_word_points_at_it_and_lists_choices() {
        let e = err("sh bogus");
        assert_eq!(
            e,
            ParseError::Unknown {
                word: "bogus".into(),
                pos: 3,
                expected: ["version", "frontends", "backends", "healthchecks", "vpp"]
                    .map(String::from)
                    .to_vec()
            }
        );
        let pointed = e.pointed("sh bogus");
        let lines: Vec<&str> = pointed.lines().collect();
        assert_eq!(lines[0], "  sh bogus");
        assert_eq!(lines[1], "     ^");
        assert!(lines[2].starts_with("error: unknown word \"bogus\"; expected one of version,"));
    }

    #[test]
    fn incomplete_command_lists_what_is_missing() {
        let e = err("show vpp");
        assert_eq!(
            e,
            ParseError::Incomplete {
                pos: 9,
                expected: vec!["info".into(), "lb".into()]
            }
        );
        let e = err("set backend web1");
        assert_eq!(e.choices(), ["pause", "resume", "enable", "disable"]);
        assert_eq!(
            err("set frontend f pool p backend b weight").choices(),
            ["<0-100>"]
        );
        assert_eq!(err("   "), ParseError::Empty);
    }

    /// Fuzz finding (ctl_parse): after a multi-byte space (U+3000) the position of an
    /// incomplete command fell inside that character.
    #[test]
    fn incomplete_position_is_on_a_char_boundary() {
        let line = "show vpp\u{3000}";
        let e = err(line);
        assert!(matches!(e, ParseError::Incomplete { .. }), "{e:?}");
        assert_eq!(e.pos(), line.len());
        assert!(line.is_char_boundary(e.pos()));
        assert_eq!(err("show vpp ").pos(), 9);
    }

    #[test]
    fn bad_values_are_refused() {
        let e = err("set frontend f pool p backend b weight 101");
        assert!(matches!(e, ParseError::BadValue { pos: 39, .. }), "{e:?}");
        assert!(matches!(
            err("set frontend f pool p backend b weight -1"),
            ParseError::BadValue { .. }
        ));
        assert!(matches!(
            err("watch events num 0"),
            ParseError::BadValue { .. }
        ));
        assert!(matches!(
            err("watch events num x"),
            ParseError::BadValue { .. }
        ));
        assert!(matches!(
            err("watch events log level loud"),
            ParseError::BadValue { .. }
        ));
    }

    #[test]
    fn watch_options_in_any_order_each_once() {
        let spec = |line: &str| match cmd(line) {
            Command::WatchEvents(s) => s,
            other => panic!("{other:?}"),
        };
        assert_eq!(spec("watch events"), WatchSpec::default());
        assert_eq!(
            spec("watch events num 5 log level debug backend frontend"),
            WatchSpec {
                num: Some(5),
                log: true,
                log_level: Some(LogLevel::Debug),
                backend: true,
                frontend: true
            }
        );
        assert_eq!(
            spec("w e fr log n 3"),
            WatchSpec {
                num: Some(3),
                log: true,
                frontend: true,
                ..WatchSpec::default()
            }
        );
        assert_eq!(
            spec("watch events log le w").log_level,
            Some(LogLevel::Warn)
        );
        // An option given twice is not offered again.
        let e = err("watch events backend backend");
        assert!(matches!(e, ParseError::Unknown { pos: 21, .. }), "{e:?}");
        assert!(!e.choices().contains(&"backend".to_string()));
        // `num` needs its count before the next option.
        assert!(matches!(
            err("watch events num log"),
            ParseError::BadValue { .. }
        ));
    }

    #[test]
    fn watch_defaults_to_everything() {
        let all = WatchSpec::default().effective();
        assert!(all.log && all.backend && all.frontend);
        let only = WatchSpec {
            backend: true,
            ..WatchSpec::default()
        }
        .effective();
        assert!(only.backend && !only.log && !only.frontend);
    }

    // ------------------------------------------------------------ every leaf, typed

    /// Every node where a command may end, with the nodes leading to it. The options of a
    /// group appear one at a time here; `watch_option_combinations` mixes them.
    fn leaves() -> Vec<Vec<&'static Node>> {
        fn visit(
            nodes: &'static [Node],
            path: &mut Vec<&'static Node>,
            out: &mut Vec<Vec<&'static Node>>,
        ) {
            for node in nodes {
                path.push(node);
                if node.end.is_some() {
                    out.push(path.clone());
                }
                visit(node.children, path, out);
                path.pop();
            }
        }
        let mut out = Vec::new();
        visit(TREE, &mut Vec::new(), &mut out);
        out
    }

    /// Values for every slot kind.
    #[derive(Debug, Clone)]
    struct Sample {
        frontend: String,
        pool: String,
        backend: String,
        healthcheck: String,
        weight: u32,
        count: u64,
        level: LogLevel,
        /// How many letters of the level name are typed (any unique prefix works).
        level_typed: usize,
    }

    impl Sample {
        fn word(&self, node: &Node) -> String {
            match node.word {
                Word::Key(k) => k.to_string(),
                Word::Slot(Slot::Name(NameKind::Frontend)) => self.frontend.clone(),
                Word::Slot(Slot::Name(NameKind::Pool)) => self.pool.clone(),
                Word::Slot(Slot::Name(NameKind::Backend)) => self.backend.clone(),
                Word::Slot(Slot::Name(NameKind::HealthCheck)) => self.healthcheck.clone(),
                Word::Slot(Slot::Weight) => self.weight.to_string(),
                Word::Slot(Slot::Count) => self.count.to_string(),
                Word::Slot(Slot::Level) => {
                    let name = self.level.as_str();
                    name[..self.level_typed.clamp(1, name.len())].to_string()
                }
            }
        }

        fn slots(&self, path: &[&'static Node]) -> Slots {
            let mut slots = Slots::default();
            for node in path {
                let Word::Slot(slot) = node.word else {
                    continue;
                };
                let value = match slot {
                    Slot::Name(_) => Value::Name(self.word(node)),
                    Slot::Weight => Value::Weight(self.weight),
                    Slot::Count => Value::Count(self.count),
                    Slot::Level => Value::Level(self.level),
                };
                assert!(slots.put(slot, value), "{slot:?} twice on one path");
            }
            slots
        }
    }

    /// What each leaf must build, written from the command reference rather than from
    /// `build`.
    fn expected(action: Action, v: &Sample) -> Command {
        match action {
            A::ShowVersion => Command::ShowVersion,
            A::ListFrontends => Command::ShowFrontends(None),
            A::FrontendDetail => Command::ShowFrontends(Some(v.frontend.clone())),
            A::ListBackends => Command::ShowBackends(None),
            A::BackendDetail => Command::ShowBackends(Some(v.backend.clone())),
            A::ListHealthChecks => Command::ShowHealthChecks(None),
            A::HealthCheckDetail => Command::ShowHealthChecks(Some(v.healthcheck.clone())),
            A::ShowVppInfo => Command::ShowVppInfo,
            A::ShowVppLbState => Command::ShowVppLbState,
            A::ShowVppLbCounters => Command::ShowVppLbCounters,
            A::SyncAllFrontends => Command::SyncVppLbState(None),
            A::SyncFrontend => Command::SyncVppLbState(Some(v.frontend.clone())),
            A::SetBackend(action) => Command::SetBackend {
                name: v.backend.clone(),
                action,
            },
            A::SetWeight => Command::SetWeight {
                frontend: v.frontend.clone(),
                pool: v.pool.clone(),
                backend: v.backend.clone(),
                weight: v.weight,
            },
            A::WatchEvents(option) => Command::WatchEvents(watch_spec(&[option], v)),
            A::ConfigCheck => Command::ConfigCheck,
            A::ConfigReload => Command::ConfigReload,
            A::Help => Command::Help,
            A::Quit => Command::Quit,
        }
    }

    fn watch_spec(options: &[WatchOption], v: &Sample) -> WatchSpec {
        let mut spec = WatchSpec::default();
        for option in options {
            match option {
                WatchOption::Events => {}
                WatchOption::Num => spec.num = Some(v.count),
                WatchOption::Log => spec.log = true,
                WatchOption::LogLevel => {
                    spec.log = true;
                    spec.log_level = Some(v.level);
                }
                WatchOption::Backend => spec.backend = true,
                WatchOption::Frontend => spec.frontend = true,
            }
        }
        spec
    }

    fn sample(name: &'static str) -> impl Strategy<Value = Sample> {
        (
            (name, name, name, name),
            0u32..=100,
            1u64..=u64::MAX,
            proptest::sample::select(LogLevel::ALL.to_vec()),
            1usize..6,
        )
            .prop_map(
                |((frontend, pool, backend, healthcheck), weight, count, level, level_typed)| {
                    Sample {
                        frontend,
                        pool,
                        backend,
                        healthcheck,
                        weight,
                        count,
                        level,
                        level_typed,
                    }
                },
            )
    }

    fn line_of(path: &[&'static Node], v: &Sample) -> String {
        path.iter().map(|n| v.word(n)).collect::<Vec<_>>().join(" ")
    }

    /// The watch options as the walk records them for this path.
    fn watch_of(path: &[&'static Node]) -> Vec<WatchOption> {
        path.iter()
            .filter_map(|n| match n.end {
                Some(A::WatchEvents(o)) => Some(o),
                _ => None,
            })
            .collect()
    }

    use proptest::prelude::*;

    proptest! {
        /// A complete line for any leaf builds exactly that leaf's command, with the values
        /// typed in its slots (names verbatim, whatever they look like).
        #[test]
        fn every_leaf_builds_its_own_command(
            path in proptest::sample::select(leaves()),
            v in sample("[^\\s]{1,12}"),
        ) {
            let action = path.last().and_then(|n| n.end);
            prop_assert!(action.is_some());
            let action = action.unwrap_or(A::Help);
            let line = line_of(&path, &v);
            prop_assert_eq!(parse(&line), Ok(expected(action, &v)), "{}", line);
        }

        /// Any slot left out of a leaf's line: the line is refused, or (when the slot was an
        /// optional last word) it is the shorter command; never the leaf's command with a
        /// default. Building the leaf's action without that slot's value is an error.
        #[test]
        fn a_missing_slot_is_refused(
            path in proptest::sample::select(leaves()),
            v in sample("[a-z]{1,6}[0-9]{1,3}"),
        ) {
            let action = path.last().and_then(|n| n.end).unwrap_or(A::Help);
            let full = v.slots(&path);
            prop_assert_eq!(build(action, &watch_of(&path), &full), Ok(expected(action, &v)));
            for (i, node) in path.iter().enumerate() {
                let Word::Slot(slot) = node.word else { continue };
                let mut short = path.clone();
                short.remove(i);
                let line = line_of(&short, &v);
                let parent_ends = path[i - 1].end.filter(|_| i == path.len() - 1);
                match parent_ends {
                    Some(shorter) => {
                        prop_assert_eq!(parse(&line), Ok(expected(shorter, &v)), "{}", line);
                    }
                    None => prop_assert!(parse(&line).is_err(), "{} parsed", line),
                }
                let mut partial = full.clone();
                match slot {
                    Slot::Name(NameKind::Frontend) => partial.frontend = None,
                    Slot::Name(NameKind::Pool) => partial.pool = None,
                    Slot::Name(NameKind::Backend) => partial.backend = None,
                    Slot::Name(NameKind::HealthCheck) => partial.healthcheck = None,
                    Slot::Weight => partial.weight = None,
                    Slot::Count => partial.count = None,
                    Slot::Level => partial.level = None,
                }
                prop_assert_eq!(
                    build(action, &watch_of(&path), &partial),
                    Err(MissingSlot { action, slot })
                );
            }
        }

        /// The options of `watch events` in any order and any subset add up.
        #[test]
        fn watch_option_combinations(
            chosen in proptest::sample::subsequence(
                vec![
                    WatchOption::Num,
                    WatchOption::Log,
                    WatchOption::Backend,
                    WatchOption::Frontend,
                ],
                0..=4,
            ).prop_shuffle(),
            with_level in any::<bool>(),
            v in sample("[a-z]{1,6}"),
        ) {
            let mut options = vec![WatchOption::Events];
            let mut line = "watch events".to_string();
            for option in &chosen {
                options.push(*option);
                match option {
                    WatchOption::Num => line.push_str(&format!(" num {}", v.count)),
                    WatchOption::Log if with_level => {
                        options.push(WatchOption::LogLevel);
                        line.push_str(&format!(" log level {}", v.level.as_str()));
                    }
                    WatchOption::Log => line.push_str(" log"),
                    WatchOption::Backend => line.push_str(" backend"),
                    WatchOption::Frontend => line.push_str(" frontend"),
                    WatchOption::Events | WatchOption::LogLevel => {}
                }
            }
            prop_assert_eq!(
                parse(&line),
                Ok(Command::WatchEvents(watch_spec(&options, &v))),
                "{}",
                line
            );
        }
    }

    #[test]
    fn leaves_cover_every_action_once_per_place() {
        let all = leaves();
        let actions: Vec<Action> = all.iter().filter_map(|p| p.last()?.end).collect();
        assert!(actions.contains(&A::SetBackend(BackendAction::Disable)));
        assert!(actions.contains(&A::WatchEvents(WatchOption::LogLevel)));
        // No two leaves share an action except `quit`/`exit`.
        let mut seen: Vec<Action> = Vec::new();
        for a in actions {
            assert!(a == A::Quit || !seen.contains(&a), "{a:?} on two leaves");
            seen.push(a);
        }
    }

    #[test]
    fn a_slot_given_twice_is_refused_not_overwritten() {
        let mut slots = Slots::default();
        assert!(slots.put(BACKEND, Value::Name("a".into())));
        assert!(!slots.put(BACKEND, Value::Name("b".into())));
        assert_eq!(slots.backend.as_deref(), Some("a"));
        // A value of another kind than the slot's is never stored.
        assert!(!slots.put(Slot::Weight, Value::Count(3)));
        assert_eq!(slots.weight, None);
    }

    // ------------------------------------------------------------ completion and help

    struct FakeNames;

    impl NameSource for FakeNames {
        fn names(&self, kind: NameKind, scope: Scope<'_>) -> Vec<String> {
            let v: &[&str] = match (kind, scope.frontend, scope.pool) {
                (NameKind::Backend, None, _) => &["web1", "web2", "db1"],
                (NameKind::Backend, Some("vip1"), Some("primary")) => &["web1", "web2"],
                (NameKind::Backend, Some(_), _) => &["db1"],
                (NameKind::Frontend, _, _) => &["vip1", "vip2"],
                (NameKind::Pool, Some("vip1"), _) => &["primary", "fallback"],
                (NameKind::Pool, _, _) => &["other"],
                (NameKind::HealthCheck, _, _) => &["http", "icmp"],
            };
            v.iter().map(|s| s.to_string()).collect()
        }
    }

    fn texts(line: &str) -> (usize, Vec<String>) {
        let (start, c) = complete(line, line.len(), &FakeNames);
        (start, c.into_iter().map(|c| c.text).collect())
    }

    #[test]
    fn completes_keywords_at_each_position() {
        assert_eq!(
            texts(""),
            (
                0,
                [
                    "show", "sync", "set", "watch", "config", "help", "quit", "exit"
                ]
                .map(String::from)
                .to_vec()
            )
        );
        assert_eq!(
            texts("s"),
            (0, vec!["show".into(), "sync".into(), "set".into()])
        );
        assert_eq!(texts("sh"), (0, vec!["show".into()]));
        assert_eq!(
            texts("show "),
            (
                5,
                ["version", "frontends", "backends", "healthchecks", "vpp"]
                    .map(String::from)
                    .to_vec()
            )
        );
        assert_eq!(texts("sh v"), (3, vec!["version".into(), "vpp".into()]));
        assert_eq!(
            texts("sh vp l "),
            (8, vec!["state".into(), "counters".into()])
        );
        assert_eq!(
            texts("set backend web1 "),
            (
                17,
                ["pause", "resume", "enable", "disable"]
                    .map(String::from)
                    .to_vec()
            )
        );
        assert_eq!(
            texts("watch events log level "),
            (
                23,
                ["trace", "debug", "info", "warn", "error"]
                    .map(String::from)
                    .to_vec()
            )
        );
        assert_eq!(
            texts("watch events backend "),
            (21, ["num", "log", "frontend"].map(String::from).to_vec())
        );
        assert_eq!(texts("watch events num "), (17, vec![]));
        // Nothing after a word that does not parse.
        assert_eq!(texts("bogus "), (6, vec![]));
        // Completion in the middle of the line uses only the text before the cursor.
        let (start, c) = complete("sh ba web1", 5, &FakeNames);
        assert_eq!((start, c.len()), (3, 1));
        assert_eq!(c[0].text, "backends");
    }

    #[test]
    fn completes_names_from_the_source_in_scope() {
        assert_eq!(
            texts("show backends "),
            (14, vec!["web1".into(), "web2".into(), "db1".into()])
        );
        assert_eq!(
            texts("show backends w"),
            (14, vec!["web1".into(), "web2".into()])
        );
        assert_eq!(
            texts("sh healthchecks "),
            (16, vec!["http".into(), "icmp".into()])
        );
        assert_eq!(
            texts("set frontend "),
            (13, vec!["vip1".into(), "vip2".into()])
        );
        // Pools are those of the chosen frontend, backends those of the chosen pool.
        assert_eq!(
            texts("set frontend vip1 pool "),
            (23, vec!["primary".into(), "fallback".into()])
        );
        assert_eq!(texts("set frontend vip2 pool "), (23, vec!["other".into()]));
        assert_eq!(
            texts("set frontend vip1 pool primary backend "),
            (39, vec!["web1".into(), "web2".into()])
        );
        assert_eq!(texts("se fr vip2 po other b "), (22, vec!["db1".into()]));
        // No names without a daemon, keywords still work.
        let (_, c) = complete("show backends ", 14, &NoNames);
        assert!(c.is_empty());
        let (_, c) = complete("show b", 6, &NoNames);
        assert_eq!(c[0].text, "backends");
    }

    fn words(entries: Vec<HelpEntry>) -> Vec<String> {
        entries.into_iter().map(|e| e.word).collect()
    }

    #[test]
    fn question_mark_lists_what_may_come_next() {
        let root = help_at("").expect("root help");
        assert_eq!(root.len(), TREE.len());
        assert!(root.iter().all(|e| !e.help.is_empty()));
        assert_eq!(
            words(help_at("show ").expect("ok")),
            ["version", "frontends", "backends", "healthchecks", "vpp"].map(String::from)
        );
        // The command may end here, or take a name.
        assert_eq!(
            words(help_at("show backends ").expect("ok")),
            ["<backend>", "<cr>"]
        );
        assert_eq!(words(help_at("sh ba ").expect("ok")), ["<backend>", "<cr>"]);
        assert_eq!(
            words(help_at("set frontend f pool p backend b weight ").expect("ok")),
            ["<0-100>"]
        );
        // Inside a word: the keywords it may become.
        assert_eq!(words(help_at("sh v").expect("ok")), ["version", "vpp"]);
        assert_eq!(
            words(help_at("watch events log ").expect("ok")),
            ["level", "num", "backend", "frontend", "<cr>"]
        );
        // An error earlier on the line is reported, pointed.
        let e = help_at("show bogus ").expect_err("bogus");
        assert_eq!(e.pos(), 5);
    }

    #[test]
    fn help_listing_is_derived_from_the_tree() {
        let lines: Vec<String> = usage_lines().into_iter().map(|(l, _)| l).collect();
        for expected in [
            "show version",
            "show frontends [<frontend>]",
            "show backends [<backend>]",
            "show healthchecks [<healthcheck>]",
            "show vpp info",
            "show vpp lb state",
            "show vpp lb counters",
            "sync vpp lb state [<frontend>]",
            "set backend <backend> pause|resume|enable|disable",
            "set frontend <frontend> pool <pool> backend <backend> weight <0-100>",
            "watch events [num <n>] [log [level <level>]] [backend] [frontend]",
            "config check",
            "config reload",
            "help",
            "quit",
            "exit",
        ] {
            assert!(
                lines.contains(&expected.to_string()),
                "{expected:?} missing from {lines:#?}"
            );
        }
        assert_eq!(lines.len(), 16);
        // Every listed form parses (with sample values for the slots).
        for line in lines {
            let sample = line
                .replace("[<frontend>]", "vip1")
                .replace("[<backend>]", "web1")
                .replace("[<healthcheck>]", "hc")
                .replace("pause|resume|enable|disable", "pause")
                .replace(['[', ']'], "")
                .replace("<frontend>", "vip1")
                .replace("<backend>", "web1")
                .replace("<pool>", "p")
                .replace("<0-100>", "7")
                .replace("<n>", "2")
                .replace("<level>", "debug");
            assert!(parse(&sample).is_ok(), "{sample:?} does not parse");
        }
    }

    #[test]
    fn tokenize_keeps_byte_offsets() {
        let t = tokenize(" ab  c\td ");
        assert_eq!(
            t,
            vec![
                Token { text: "ab", pos: 1 },
                Token { text: "c", pos: 5 },
                Token { text: "d", pos: 7 }
            ]
        );
    }
}
