//! Effective weights (docs/design.md §5): what each AS of a frontend should look like in VPP,
//! given the states of its backends, which pool is active, and the frontend's own state.
//!
//! | backend state         | action                                   |
//! |-----------------------|------------------------------------------|
//! | up, in the active pool | weight = override or configured, no flush |
//! | up, in a standby pool  | weight 0, no flush                        |
//! | down                  | weight 0, flush = the frontend's flush-on-down |
//! | disabled              | weight 0, flush                          |
//! | unknown, paused       | weight 0, never flush                    |
//! | removed               | delete the AS, flush                     |
//!
//! Fail-open (docs/design.md §12): a frontend with `fail = "open"` that has no backend up and
//! at least one down in its first pool gives those down backends of the first pool their
//! configured weight (no flush) instead of 0, so clients reach whatever may still answer.
//! Disabled, paused, unknown and removed backends keep their row of the table: an
//! operator's decision and "not checked yet" are not failures. The frontend state stays
//! `down`; `FrontendWeights::failed_open` says the policy is in force.

use super::error::ActionError;
use super::result::State;

/// The highest AS weight VPP accepts.
pub const MAX_WEIGHT: u8 = 100;

/// Check an operator's runtime weight override: `0..=100`.
pub fn validate_weight(weight: u32) -> Result<u8, ActionError> {
    u8::try_from(weight)
        .ok()
        .filter(|w| *w <= MAX_WEIGHT)
        .ok_or(ActionError::InvalidWeight { weight })
}

/// A frontend's policy for when no backend is up and some are down (docs/design.md §12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum FailPolicy {
    /// Every AS weight 0: VPP drops new flows (`no_server`).
    #[default]
    Closed,
    /// The down backends of the first pool keep their configured weights, so clients
    /// reach whatever may still answer rather than nothing.
    Open,
}

impl FailPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            FailPolicy::Closed => "closed",
            FailPolicy::Open => "open",
        }
    }
}

/// What the reconciler should make of one AS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AsAction {
    /// The AS exists with this weight; `flush` = drop its existing flows when it goes to 0.
    Weight { weight: u8, flush: bool },
    /// The AS goes away (its backend was removed from the config).
    Delete { flush: bool },
}

impl AsAction {
    /// The weight new flows see: 0 for a deleted AS.
    pub fn weight(self) -> u8 {
        match self {
            AsAction::Weight { weight, .. } => weight,
            AsAction::Delete { .. } => 0,
        }
    }

    pub fn flush(self) -> bool {
        match self {
            AsAction::Weight { flush, .. } | AsAction::Delete { flush } => flush,
        }
    }
}

/// The state of a frontend, derived from its backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FrontendState {
    /// Every backend is still unknown.
    Unknown,
    /// At least one backend has an effective weight above 0.
    Up,
    /// Anything else: no backend takes new flows.
    Down,
}

impl FrontendState {
    pub const ALL: [FrontendState; 3] = [
        FrontendState::Unknown,
        FrontendState::Up,
        FrontendState::Down,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FrontendState::Unknown => "unknown",
            FrontendState::Up => "up",
            FrontendState::Down => "down",
        }
    }
}

impl std::fmt::Display for FrontendState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One backend as a member of one pool of a frontend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendInput {
    pub name: String,
    /// The pool weight from the config, 0..=100.
    pub weight: u8,
    /// A runtime override set by the operator; wins over `weight`.
    pub override_weight: Option<u8>,
    pub state: State,
}

impl BackendInput {
    pub fn new(name: impl Into<String>, weight: u8, state: State) -> Self {
        BackendInput {
            name: name.into(),
            weight,
            override_weight: None,
            state,
        }
    }

    pub fn with_override(mut self, weight: u8) -> Self {
        self.override_weight = Some(weight);
        self
    }

    /// The weight this member has when it is up in the active pool (at most 100).
    pub fn configured_weight(&self) -> u8 {
        self.override_weight.unwrap_or(self.weight).min(MAX_WEIGHT)
    }
}

/// One pool of a frontend, members in config order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolInput {
    pub name: String,
    pub backends: Vec<BackendInput>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendWeight {
    pub name: String,
    pub action: AsAction,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolWeights {
    pub name: String,
    pub backends: Vec<BackendWeight>,
}

/// The outcome for a whole frontend: same pools and members, in the same order, as the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrontendWeights {
    pub pools: Vec<PoolWeights>,
    /// Index of the first pool with a backend up; `None` when no backend is up.
    pub active_pool: Option<usize>,
    pub state: FrontendState,
    /// The frontend is `fail = "open"` and that policy is in force now.
    pub failed_open: bool,
}

impl FrontendWeights {
    /// The action for `backend` in pool `pool`, if both exist.
    pub fn action(&self, pool: &str, backend: &str) -> Option<AsAction> {
        self.pools
            .iter()
            .find(|p| p.name == pool)?
            .backends
            .iter()
            .find(|b| b.name == backend)
            .map(|b| b.action)
    }
}

/// One row of the effective-weight table. `weight` is the member's configured (or
/// overridden) weight; it only matters when the backend is up in the active pool.
pub fn as_action(state: State, in_active_pool: bool, weight: u8, flush_on_down: bool) -> AsAction {
    match state {
        State::Up if in_active_pool => AsAction::Weight {
            weight: weight.min(MAX_WEIGHT),
            flush: false,
        },
        State::Up => AsAction::Weight {
            weight: 0,
            flush: false,
        },
        State::Down => AsAction::Weight {
            weight: 0,
            flush: flush_on_down,
        },
        State::Disabled => AsAction::Weight {
            weight: 0,
            flush: true,
        },
        State::Unknown | State::Paused => AsAction::Weight {
            weight: 0,
            flush: false,
        },
        State::Removed => AsAction::Delete { flush: true },
    }
}

/// The active pool: the first (in order) with at least one backend up. An up backend with
/// weight 0 still makes its pool active.
pub fn active_pool(pools: &[PoolInput]) -> Option<usize> {
    pools
        .iter()
        .position(|p| p.backends.iter().any(|b| b.state == State::Up))
}

/// Effective weights, active pool and state of one frontend that fails closed.
pub fn frontend_weights(pools: &[PoolInput], flush_on_down: bool) -> FrontendWeights {
    frontend_weights_with(pools, flush_on_down, FailPolicy::Closed)
}

/// Effective weights, active pool and state of one frontend under its fail policy.
pub fn frontend_weights_with(
    pools: &[PoolInput],
    flush_on_down: bool,
    fail: FailPolicy,
) -> FrontendWeights {
    let mut fw = closed_weights(pools, flush_on_down);
    if fail == FailPolicy::Open && fw.active_pool.is_none() {
        fail_open(pools, &mut fw);
    }
    fw
}

/// Gives the down backends of the first pool their configured weights; records whether
/// there were any (no down backend there: nothing failed, the frontend is just empty).
fn fail_open(pools: &[PoolInput], fw: &mut FrontendWeights) {
    let (Some(input), Some(output)) = (pools.first(), fw.pools.first_mut()) else {
        return;
    };
    for (b, out) in input.backends.iter().zip(output.backends.iter_mut()) {
        if b.state == State::Down {
            out.action = AsAction::Weight {
                weight: b.configured_weight(),
                flush: false,
            };
            fw.failed_open = true;
        }
    }
}

fn closed_weights(pools: &[PoolInput], flush_on_down: bool) -> FrontendWeights {
    let active = active_pool(pools);
    let out: Vec<PoolWeights> = pools
        .iter()
        .enumerate()
        .map(|(index, pool)| PoolWeights {
            name: pool.name.clone(),
            backends: pool
                .backends
                .iter()
                .map(|b| BackendWeight {
                    name: b.name.clone(),
                    action: as_action(
                        b.state,
                        active == Some(index),
                        b.configured_weight(),
                        flush_on_down,
                    ),
                })
                .collect(),
        })
        .collect();

    let any_weight = out
        .iter()
        .flat_map(|p| &p.backends)
        .any(|b| b.action.weight() > 0);
    let all_unknown = pools
        .iter()
        .flat_map(|p| &p.backends)
        .all(|b| b.state == State::Unknown);
    let state = if any_weight {
        FrontendState::Up
    } else if all_unknown {
        FrontendState::Unknown
    } else {
        FrontendState::Down
    };

    FrontendWeights {
        pools: out,
        active_pool: active,
        state,
        failed_open: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(name: &str, backends: Vec<BackendInput>) -> PoolInput {
        PoolInput {
            name: name.to_string(),
            backends,
        }
    }

    fn w(weight: u8, flush: bool) -> AsAction {
        AsAction::Weight { weight, flush }
    }

    #[test]
    fn every_row_of_the_table() {
        for flush_on_down in [false, true] {
            for active in [false, true] {
                let row = |state| as_action(state, active, 70, flush_on_down);
                let up = if active { w(70, false) } else { w(0, false) };
                assert_eq!(row(State::Up), up);
                assert_eq!(row(State::Down), w(0, flush_on_down));
                assert_eq!(row(State::Disabled), w(0, true));
                assert_eq!(row(State::Unknown), w(0, false));
                assert_eq!(row(State::Paused), w(0, false));
                assert_eq!(row(State::Removed), AsAction::Delete { flush: true });
            }
        }
    }

    #[test]
    fn weight_above_100_is_capped() {
        assert_eq!(as_action(State::Up, true, 250, false), w(100, false));
        let b = BackendInput::new("a", 50, State::Up).with_override(200);
        assert_eq!(b.configured_weight(), 100);
    }

    #[test]
    fn override_wins_over_configured_weight() {
        let pools = [pool(
            "p",
            vec![
                BackendInput::new("a", 100, State::Up).with_override(10),
                BackendInput::new("b", 100, State::Up).with_override(0),
                BackendInput::new("c", 40, State::Up),
            ],
        )];
        let fw = frontend_weights(&pools, true);
        assert_eq!(fw.action("p", "a"), Some(w(10, false)));
        assert_eq!(fw.action("p", "b"), Some(w(0, false)));
        assert_eq!(fw.action("p", "c"), Some(w(40, false)));
        assert_eq!(fw.state, FrontendState::Up);
    }

    #[test]
    fn active_pool_is_the_first_with_a_backend_up() {
        let make = |s0, s1, s2| {
            [
                pool("primary", vec![BackendInput::new("a", 100, s0)]),
                pool("secondary", vec![BackendInput::new("b", 100, s1)]),
                pool("tertiary", vec![BackendInput::new("c", 100, s2)]),
            ]
        };
        use State::*;
        assert_eq!(active_pool(&make(Up, Up, Up)), Some(0));
        assert_eq!(active_pool(&make(Down, Up, Up)), Some(1));
        assert_eq!(active_pool(&make(Paused, Disabled, Up)), Some(2));
        assert_eq!(active_pool(&make(Down, Unknown, Removed)), None);

        // Standby pools' up backends get 0 without flush.
        let fw = frontend_weights(&make(Down, Up, Up), true);
        assert_eq!(fw.active_pool, Some(1));
        assert_eq!(fw.action("primary", "a"), Some(w(0, true)));
        assert_eq!(fw.action("secondary", "b"), Some(w(100, false)));
        assert_eq!(fw.action("tertiary", "c"), Some(w(0, false)));
    }

    #[test]
    fn up_backend_with_weight_zero_still_makes_its_pool_active() {
        let pools = [
            pool("primary", vec![BackendInput::new("a", 0, State::Up)]),
            pool("fallback", vec![BackendInput::new("b", 100, State::Up)]),
        ];
        let fw = frontend_weights(&pools, false);
        assert_eq!(fw.active_pool, Some(0));
        assert_eq!(fw.action("fallback", "b"), Some(w(0, false)));
        // Nobody has weight > 0 and not all are unknown: down.
        assert_eq!(fw.state, FrontendState::Down);
    }

    #[test]
    fn frontend_state() {
        let one = |states: &[State]| {
            let backends = states
                .iter()
                .enumerate()
                .map(|(i, s)| BackendInput::new(format!("b{i}"), 100, *s))
                .collect();
            frontend_weights(&[pool("p", backends)], true).state
        };
        use State::*;
        assert_eq!(one(&[Unknown, Unknown]), FrontendState::Unknown);
        assert_eq!(one(&[]), FrontendState::Unknown);
        assert_eq!(one(&[Unknown, Up]), FrontendState::Up);
        assert_eq!(one(&[Down, Up]), FrontendState::Up);
        assert_eq!(one(&[Unknown, Down]), FrontendState::Down);
        assert_eq!(one(&[Unknown, Paused]), FrontendState::Down);
        assert_eq!(one(&[Disabled, Removed]), FrontendState::Down);
        assert_eq!(one(&[Down, Down]), FrontendState::Down);
    }

    #[test]
    fn output_keeps_pool_and_member_order() {
        let pools = [
            pool(
                "x",
                vec![
                    BackendInput::new("z", 1, State::Down),
                    BackendInput::new("a", 2, State::Up),
                ],
            ),
            pool("y", vec![BackendInput::new("m", 3, State::Removed)]),
        ];
        let fw = frontend_weights(&pools, false);
        let names: Vec<_> = fw
            .pools
            .iter()
            .flat_map(|p| {
                p.backends
                    .iter()
                    .map(move |b| (p.name.as_str(), b.name.as_str()))
            })
            .collect();
        assert_eq!(names, [("x", "z"), ("x", "a"), ("y", "m")]);
        assert_eq!(fw.action("y", "m"), Some(AsAction::Delete { flush: true }));
        assert_eq!(fw.action("y", "nope"), None);
    }

    #[test]
    fn fail_open_gives_the_first_pools_down_backends_their_weights() {
        use State::*;
        let pools = |a, b, c| {
            [
                pool(
                    "primary",
                    vec![
                        BackendInput::new("a", 60, a),
                        BackendInput::new("b", 100, b).with_override(30),
                    ],
                ),
                pool("fallback", vec![BackendInput::new("c", 100, c)]),
            ]
        };
        // Everything down: open keeps a and b (b at its override), closed zeroes all.
        let open = frontend_weights_with(&pools(Down, Down, Down), true, FailPolicy::Open);
        assert!(open.failed_open);
        assert_eq!(open.action("primary", "a"), Some(w(60, false)));
        assert_eq!(open.action("primary", "b"), Some(w(30, false)));
        assert_eq!(open.action("fallback", "c"), Some(w(0, true)));
        assert_eq!(open.state, FrontendState::Down);
        assert_eq!(open.active_pool, None);
        let closed = frontend_weights_with(&pools(Down, Down, Down), true, FailPolicy::Closed);
        assert!(!closed.failed_open);
        assert_eq!(closed.action("primary", "a"), Some(w(0, true)));
        assert_eq!(closed, frontend_weights(&pools(Down, Down, Down), true));

        // Anything up anywhere: the policy is not in force, same as closed.
        for (a, b, c) in [(Up, Down, Down), (Down, Down, Up)] {
            let open = frontend_weights_with(&pools(a, b, c), true, FailPolicy::Open);
            assert_eq!(
                open,
                frontend_weights(&pools(a, b, c), true),
                "{a:?} {b:?} {c:?}"
            );
            assert!(!open.failed_open);
        }

        // Disabled and paused members stay at 0; the down one opens.
        let open = frontend_weights_with(&pools(Disabled, Down, Down), true, FailPolicy::Open);
        assert!(open.failed_open);
        assert_eq!(open.action("primary", "a"), Some(w(0, true)));
        assert_eq!(open.action("primary", "b"), Some(w(30, false)));
        let open = frontend_weights_with(&pools(Paused, Down, Down), false, FailPolicy::Open);
        assert_eq!(open.action("primary", "a"), Some(w(0, false)));

        // Not checked yet (start-up) or nothing down in the first pool: no failure to open.
        for (a, b, c) in [
            (Unknown, Unknown, Unknown),
            (Disabled, Paused, Down),
            (Unknown, Unknown, Down),
        ] {
            let open = frontend_weights_with(&pools(a, b, c), true, FailPolicy::Open);
            assert!(!open.failed_open, "{a:?} {b:?} {c:?}");
            assert_eq!(open, frontend_weights(&pools(a, b, c), true));
        }
        assert!(!frontend_weights_with(&[], true, FailPolicy::Open).failed_open);
    }

    #[test]
    fn fail_policy_names() {
        assert_eq!(FailPolicy::default(), FailPolicy::Closed);
        assert_eq!(FailPolicy::Open.as_str(), "open");
        assert_eq!(FailPolicy::Closed.as_str(), "closed");
    }

    #[test]
    fn weight_validation() {
        assert_eq!(validate_weight(0), Ok(0));
        assert_eq!(validate_weight(100), Ok(100));
        assert_eq!(
            validate_weight(101),
            Err(ActionError::InvalidWeight { weight: 101 })
        );
        assert_eq!(
            validate_weight(70_000),
            Err(ActionError::InvalidWeight { weight: 70_000 })
        );
        assert_eq!(
            ActionError::InvalidWeight { weight: 101 }.to_string(),
            "weight 101 is out of range; expected 0..=100"
        );
    }

    #[test]
    fn as_action_accessors() {
        assert_eq!((w(7, true).weight(), w(7, true).flush()), (7, true));
        let del = AsAction::Delete { flush: true };
        assert_eq!((del.weight(), del.flush()), (0, true));
    }

    #[test]
    fn state_names() {
        let names: Vec<_> = FrontendState::ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(names, ["unknown", "up", "down"]);
    }
}
