//! `BackendHealth`: one backend's state machine (docs/design.md §5). It owns the health counter,
//! the last probe result and a bounded ring of transitions. Every method that changes the
//! state returns the `Transition` (and keeps it in the ring); a call that changes nothing
//! returns `Ok(None)`; a call not allowed in the current state returns a typed error and
//! changes nothing.
//!
//! | state    | probe result     | pause   | resume  | disable  | enable  | remove  | reload  |
//! |----------|------------------|---------|---------|----------|---------|---------|---------|
//! | unknown  | up / down        | paused  | -       | disabled | -       | removed | -       |
//! | up, down | up / down        | paused  | -       | disabled | -       | removed | unknown |
//! | paused   | error            | -       | unknown | disabled | -       | removed | -       |
//! | disabled | error            | error   | error   | -        | unknown | removed | -       |
//! | removed  | error            | error   | error   | error    | error   | -       | error   |
//!
//! (`-` = no change, `Ok(None)`.)

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::counter::HealthCounter;
use super::error::{ActionError, RecordError};
use super::interval::{IntervalPolicy, Jitter, jittered};
use super::result::{ProbeResult, State};
use super::transition::{Transition, TransitionReason};

/// What [`BackendHealth::history`] shows before the first transition.
static NO_HISTORY: VecDeque<Transition> = VecDeque::new();

/// The health of one backend. A clone (the checker's snapshots take one per probe result)
/// allocates nothing unless the last result carries a detail text: the history ring is
/// shared (`Arc`, copied on the next transition) and allocated only at the first one.
#[derive(Debug, Clone)]
pub struct BackendHealth {
    state: State,
    counter: HealthCounter,
    last_result: Option<ProbeResult>,
    history: Option<Arc<VecDeque<Transition>>>,
    history_capacity: usize,
    state_since: SystemTime,
}

impl BackendHealth {
    /// A new backend: `unknown` if enabled, else `disabled`. `transition_history` is the ring
    /// size (at least 1); `rise`/`fall` of 0 are treated as 1.
    pub fn new(
        rise: u32,
        fall: u32,
        transition_history: usize,
        enabled: bool,
        now: SystemTime,
    ) -> Self {
        let history_capacity = transition_history.max(1);
        BackendHealth {
            state: if enabled {
                State::Unknown
            } else {
                State::Disabled
            },
            counter: HealthCounter::new(rise, fall),
            last_result: None,
            history: None,
            history_capacity,
            state_since: now,
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn counter(&self) -> &HealthCounter {
        &self.counter
    }

    /// The HAProxy counter value, `0..=rise+fall-1`.
    pub fn health(&self) -> u32 {
        self.counter.health()
    }

    pub fn last_result(&self) -> Option<&ProbeResult> {
        self.last_result.as_ref()
    }

    /// Whether `result` says what the last one said (same code and detail): recording it
    /// then changes nothing a reader sees but its time and duration.
    pub fn repeats_last(&self, result: &ProbeResult) -> bool {
        self.last_result
            .as_ref()
            .is_some_and(|last| last.code == result.code && last.detail == result.detail)
    }

    /// Recent transitions, oldest first; at most `history_capacity()` of them.
    pub fn history(&self) -> &VecDeque<Transition> {
        self.history.as_deref().unwrap_or(&NO_HISTORY)
    }

    pub fn history_capacity(&self) -> usize {
        self.history_capacity
    }

    /// When the current state began (creation time if it never changed).
    pub fn state_since(&self) -> SystemTime {
        self.state_since
    }

    /// Change the ring size (on reload); the oldest transitions go if it shrinks.
    pub fn set_history_capacity(&mut self, transition_history: usize) {
        self.history_capacity = transition_history.max(1);
        self.trim_history();
    }

    /// Count one probe result. In `unknown` the first result decides (one pass = up, one
    /// fail = down); in `up`/`down` the state follows `health >= rise`. Refused, with nothing
    /// changed, in `paused`, `disabled` and `removed`.
    pub fn record(&mut self, result: ProbeResult) -> Result<Option<Transition>, RecordError> {
        if !self.state.is_probing() {
            return Err(RecordError::NotProbing { state: self.state });
        }
        self.counter.record(result.ok());
        let to = if self.counter.is_up() {
            State::Up
        } else {
            State::Down
        };
        let at = result.at;
        // Most probes change nothing: copy the result only for a transition.
        let cause = (to != self.state).then(|| result.clone());
        self.last_result = Some(result);
        Ok(self.change(to, at, cause, TransitionReason::Probe))
    }

    /// Stop probing. Refused when disabled or removed; a no-op when already paused.
    pub fn pause(&mut self, now: SystemTime) -> Result<Option<Transition>, ActionError> {
        match self.state {
            State::Disabled => Err(ActionError::Disabled),
            State::Removed => Err(ActionError::Removed),
            State::Paused => Ok(None),
            State::Unknown | State::Up | State::Down => {
                Ok(self.change(State::Paused, now, None, TransitionReason::Pause))
            }
        }
    }

    /// Paused -> unknown (probing again, the next result decides). Refused when disabled or
    /// removed; a no-op in the probing states.
    pub fn resume(&mut self, now: SystemTime) -> Result<Option<Transition>, ActionError> {
        match self.state {
            State::Disabled => Err(ActionError::Disabled),
            State::Removed => Err(ActionError::Removed),
            State::Paused => Ok(self.enter_unknown(now, TransitionReason::Resume)),
            State::Unknown | State::Up | State::Down => Ok(None),
        }
    }

    /// Take the backend out of service (weight 0, flushed). Idempotent; refused when removed.
    pub fn disable(&mut self, now: SystemTime) -> Result<Option<Transition>, ActionError> {
        match self.state {
            State::Removed => Err(ActionError::Removed),
            State::Disabled => Ok(None),
            State::Unknown | State::Up | State::Down | State::Paused => {
                Ok(self.change(State::Disabled, now, None, TransitionReason::Disable))
            }
        }
    }

    /// Disabled -> unknown. Idempotent (a no-op unless disabled); refused when removed.
    pub fn enable(&mut self, now: SystemTime) -> Result<Option<Transition>, ActionError> {
        match self.state {
            State::Removed => Err(ActionError::Removed),
            State::Disabled => Ok(self.enter_unknown(now, TransitionReason::Enable)),
            State::Unknown | State::Up | State::Down | State::Paused => Ok(None),
        }
    }

    /// The backend left the config. Final: every later action is refused. Idempotent, and
    /// allowed from every state, so it cannot fail.
    pub fn remove(&mut self, now: SystemTime) -> Option<Transition> {
        self.change(State::Removed, now, None, TransitionReason::Remove)
    }

    /// The backend's health check changed on reload: start over with the new `rise`/`fall`.
    /// Probing states go to `unknown`; paused and disabled stay as they are (with the new
    /// counter). Refused when removed.
    pub fn reload(
        &mut self,
        rise: u32,
        fall: u32,
        now: SystemTime,
    ) -> Result<Option<Transition>, ActionError> {
        if self.state == State::Removed {
            return Err(ActionError::Removed);
        }
        self.counter = HealthCounter::new(rise, fall);
        if self.state.is_probing() {
            Ok(self.change(State::Unknown, now, None, TransitionReason::Reload))
        } else {
            Ok(None)
        }
    }

    /// The delay before the next probe: the policy's base interval for this state and
    /// counter, with uniform ±10% jitter.
    pub fn next_delay(&self, policy: &IntervalPolicy, jitter: &mut dyn Jitter) -> Duration {
        jittered(policy.base(self.state, &self.counter), jitter)
    }

    fn enter_unknown(&mut self, now: SystemTime, reason: TransitionReason) -> Option<Transition> {
        self.counter.reset_to_unknown();
        self.change(State::Unknown, now, None, reason)
    }

    /// Move to `to` if that is a change: record it in the ring and return it.
    fn change(
        &mut self,
        to: State,
        at: SystemTime,
        result: Option<ProbeResult>,
        reason: TransitionReason,
    ) -> Option<Transition> {
        if to == self.state {
            return None;
        }
        let transition = Transition {
            from: self.state,
            to,
            at,
            result,
            reason,
        };
        self.state = to;
        self.state_since = at;
        let capacity = self.history_capacity;
        let history = Arc::make_mut(self.history.get_or_insert_with(Default::default));
        // The oldest goes first: a full ring never grows its buffer.
        while history.len() >= capacity {
            history.pop_front();
        }
        // Grown one slot at a time (transitions are rare): most backends have one or two
        // transitions, and a doubling ring would hold room for four.
        if history.len() == history.capacity() {
            history.reserve_exact(1);
        }
        history.push_back(transition.clone());
        Some(transition)
    }

    fn trim_history(&mut self) {
        let capacity = self.history_capacity;
        if let Some(history) = self.history.as_mut().filter(|h| h.len() > capacity) {
            let history = Arc::make_mut(history);
            while history.len() > capacity {
                history.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::result::ResultCode;

    fn t(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn pass(at: SystemTime) -> ProbeResult {
        ProbeResult::new_at(ResultCode::L7Ok, "HTTP 200", Duration::from_millis(3), at)
    }

    fn fail(at: SystemTime) -> ProbeResult {
        ProbeResult::new_at(ResultCode::L4Con, "connection refused", Duration::ZERO, at)
    }

    /// A backend (rise 1, fall 1, so a single result flips up/down) brought into `state`.
    fn in_state(state: State) -> BackendHealth {
        let enabled = state != State::Disabled;
        let mut b = BackendHealth::new(1, 1, 10, enabled, t(0));
        let reached = match state {
            State::Unknown | State::Disabled => Ok(()),
            State::Up => b.record(pass(t(1))).map(drop).map_err(|e| e.to_string()),
            State::Down => b.record(fail(t(1))).map(drop).map_err(|e| e.to_string()),
            State::Paused => b.pause(t(1)).map(drop).map_err(|e| e.to_string()),
            State::Removed => {
                b.remove(t(1));
                Ok(())
            }
        };
        assert_eq!(reached, Ok(()));
        assert_eq!(b.state(), state);
        b
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Input {
        Pass,
        Fail,
        Pause,
        Resume,
        Disable,
        Enable,
        Remove,
        Reload,
    }

    const INPUTS: [Input; 8] = [
        Input::Pass,
        Input::Fail,
        Input::Pause,
        Input::Resume,
        Input::Disable,
        Input::Enable,
        Input::Remove,
        Input::Reload,
    ];

    impl Input {
        fn reason(self) -> TransitionReason {
            match self {
                Input::Pass | Input::Fail => TransitionReason::Probe,
                Input::Pause => TransitionReason::Pause,
                Input::Resume => TransitionReason::Resume,
                Input::Disable => TransitionReason::Disable,
                Input::Enable => TransitionReason::Enable,
                Input::Remove => TransitionReason::Remove,
                Input::Reload => TransitionReason::Reload,
            }
        }

        /// Apply to `b` at `at`; errors are rendered as strings so both kinds compare.
        fn apply(
            self,
            b: &mut BackendHealth,
            at: SystemTime,
        ) -> Result<Option<Transition>, String> {
            let action = |r: Result<Option<Transition>, ActionError>| r.map_err(|e| e.to_string());
            match self {
                Input::Pass => b.record(pass(at)).map_err(|e| e.to_string()),
                Input::Fail => b.record(fail(at)).map_err(|e| e.to_string()),
                Input::Pause => action(b.pause(at)),
                Input::Resume => action(b.resume(at)),
                Input::Disable => action(b.disable(at)),
                Input::Enable => action(b.enable(at)),
                Input::Remove => Ok(b.remove(at)),
                Input::Reload => action(b.reload(1, 1, at)),
            }
        }
    }

    #[derive(Debug, Clone, Copy, PartialEq)]
    enum Expect {
        To(State),
        Same,
        NotProbing,
        Disabled,
        Removed,
    }

    /// The whole state machine, row by row (rise = fall = 1).
    fn expected(state: State, input: Input) -> Expect {
        use Expect::*;
        use Input as I;
        match (state, input) {
            (State::Unknown, I::Pass) => To(State::Up),
            (State::Unknown, I::Fail) => To(State::Down),
            (State::Up, I::Pass) => Same,
            (State::Up, I::Fail) => To(State::Down),
            (State::Down, I::Pass) => To(State::Up),
            (State::Down, I::Fail) => Same,
            (State::Paused | State::Disabled | State::Removed, I::Pass | I::Fail) => NotProbing,

            (State::Unknown | State::Up | State::Down, I::Pause) => To(State::Paused),
            (State::Paused, I::Pause) => Same,
            (State::Disabled, I::Pause | I::Resume) => Disabled,

            (State::Unknown | State::Up | State::Down, I::Resume) => Same,
            (State::Paused, I::Resume) => To(State::Unknown),

            (State::Unknown | State::Up | State::Down | State::Paused, I::Disable) => {
                To(State::Disabled)
            }
            (State::Disabled, I::Disable) => Same,

            (State::Unknown | State::Up | State::Down | State::Paused, I::Enable) => Same,
            (State::Disabled, I::Enable) => To(State::Unknown),

            (State::Removed, I::Remove) => Same,
            (_, I::Remove) => To(State::Removed),

            (State::Unknown, I::Reload) => Same,
            (State::Up | State::Down, I::Reload) => To(State::Unknown),
            (State::Paused | State::Disabled, I::Reload) => Same,

            (State::Removed, _) => Removed,
        }
    }

    #[test]
    fn every_state_times_every_input() {
        for state in State::ALL {
            for input in INPUTS {
                let mut b = in_state(state);
                let before = b.clone();
                let at = t(100);
                let got = input.apply(&mut b, at);
                let case = format!("{state} + {input:?}");
                match expected(state, input) {
                    Expect::To(to) => {
                        let tr = got
                            .unwrap_or_else(|e| panic!("{case}: unexpected error {e}"))
                            .unwrap_or_else(|| panic!("{case}: expected a transition"));
                        assert_eq!((tr.from, tr.to, tr.at), (state, to, at), "{case}");
                        assert_eq!(tr.reason, input.reason(), "{case}");
                        assert_eq!(tr.result.is_some(), tr.reason == TransitionReason::Probe);
                        assert_eq!(b.state(), to, "{case}");
                        assert_eq!(b.state_since(), at, "{case}");
                        assert_eq!(b.history().back(), Some(&tr), "{case}");
                        assert_eq!(b.history().len(), before.history().len() + 1, "{case}");
                        if to == State::Unknown {
                            assert_eq!(b.health(), b.counter().rise() - 1, "{case}");
                        }
                    }
                    Expect::Same => {
                        assert_eq!(got, Ok(None), "{case}");
                        assert_eq!(b.state(), state, "{case}");
                        assert_eq!(b.state_since(), before.state_since(), "{case}");
                        assert_eq!(b.history(), before.history(), "{case}");
                    }
                    Expect::NotProbing | Expect::Disabled | Expect::Removed => {
                        let want = match expected(state, input) {
                            Expect::NotProbing => RecordError::NotProbing { state }.to_string(),
                            Expect::Disabled => ActionError::Disabled.to_string(),
                            _ => ActionError::Removed.to_string(),
                        };
                        assert_eq!(got, Err(want), "{case}");
                        assert_eq!(b.state(), state, "{case}");
                        assert_eq!(b.counter(), before.counter(), "{case}");
                        assert_eq!(b.last_result(), before.last_result(), "{case}");
                        assert_eq!(b.history(), before.history(), "{case}");
                    }
                }
            }
        }
    }

    #[test]
    fn new_backend_is_unknown_or_disabled() {
        let b = BackendHealth::new(2, 3, 5, true, t(7));
        assert_eq!(
            (b.state(), b.health(), b.state_since()),
            (State::Unknown, 1, t(7))
        );
        assert!(b.history().is_empty() && b.last_result().is_none());
        let b = BackendHealth::new(2, 3, 5, false, t(7));
        assert_eq!(b.state(), State::Disabled);
    }

    #[test]
    fn hysteresis_with_rise_two_fall_three() {
        let mut b = BackendHealth::new(2, 3, 5, true, t(0));
        // First pass decides: up.
        assert!(b.record(pass(t(1))).is_ok_and(|tr| tr.is_some()));
        assert_eq!(b.state(), State::Up);
        // Climb to max (4), then it takes three fails to go down.
        for s in 2..=4 {
            assert_eq!(b.record(pass(t(s))), Ok(None));
        }
        assert_eq!(b.health(), 4);
        assert_eq!(b.record(fail(t(5))), Ok(None));
        assert_eq!(b.record(fail(t(6))), Ok(None));
        let tr = b.record(fail(t(7))).ok().flatten();
        assert_eq!(
            tr.map(|tr| (tr.from, tr.to)),
            Some((State::Up, State::Down))
        );
        // Going down jumps to 0 (HAProxy): it takes `rise` passes to come back.
        assert_eq!(b.health(), 0);
        b.record(fail(t(8))).ok();
        assert_eq!(b.health(), 0);
        assert_eq!(b.record(pass(t(9))), Ok(None));
        assert!(b.record(pass(t(10))).is_ok_and(|tr| tr.is_some()));
        assert_eq!(b.state(), State::Up);
    }

    #[test]
    fn last_result_is_kept_even_without_a_transition() {
        let mut b = in_state(State::Up);
        let r = pass(t(50));
        assert_eq!(b.record(r.clone()), Ok(None));
        assert_eq!(b.last_result(), Some(&r));
    }

    #[test]
    fn a_clone_shares_the_history_until_the_next_transition() {
        let mut b = BackendHealth::new(1, 1, 3, true, t(0));
        assert!(b.history.is_none(), "no ring before the first transition");
        assert!(b.record(pass(t(1))).is_ok_and(|tr| tr.is_some()));
        let held = b.clone();
        let ptr = |h: &BackendHealth| h.history.as_ref().map(Arc::as_ptr);
        assert_eq!(ptr(&held), ptr(&b), "a clone copies a pointer");
        assert!(b.record(pass(t(2))).is_ok_and(|tr| tr.is_none()));
        assert_eq!(
            ptr(&held),
            ptr(&b),
            "a result without transition shares it still"
        );
        assert!(b.record(fail(t(3))).is_ok_and(|tr| tr.is_some()));
        assert_ne!(ptr(&held), ptr(&b));
        assert_eq!(held.history().len(), 1, "the held clone is unchanged");
        assert_eq!(b.history().len(), 2);
        // A full ring keeps its buffer: the oldest goes before the newest comes.
        for s in 4..=20 {
            let r = if s % 2 == 1 { pass(t(s)) } else { fail(t(s)) };
            b.record(r).ok();
        }
        assert_eq!(b.history().len(), 3);
        assert!(b.history().capacity() <= 4, "{}", b.history().capacity());
    }

    #[test]
    fn history_is_a_ring_that_drops_the_oldest() {
        let mut b = BackendHealth::new(1, 1, 3, true, t(0));
        for s in 1..=6 {
            let r = if s % 2 == 1 { pass(t(s)) } else { fail(t(s)) };
            assert!(b.record(r).is_ok_and(|tr| tr.is_some()));
        }
        let times: Vec<_> = b.history().iter().map(|tr| tr.at).collect();
        assert_eq!(times, vec![t(4), t(5), t(6)]);
        b.set_history_capacity(1);
        assert_eq!(b.history().len(), 1);
        assert_eq!(b.history().back().map(|tr| tr.at), Some(t(6)));
        b.set_history_capacity(0);
        assert_eq!(b.history_capacity(), 1);
    }

    #[test]
    fn reload_takes_the_new_rise_and_fall() {
        let mut b = in_state(State::Up);
        let tr = b.reload(3, 4, t(9));
        assert_eq!(tr.ok().flatten().map(|tr| tr.to), Some(State::Unknown));
        assert_eq!(
            (b.counter().rise(), b.counter().fall(), b.health()),
            (3, 4, 2)
        );
        let mut paused = in_state(State::Paused);
        assert_eq!(paused.reload(3, 4, t(9)), Ok(None));
        assert_eq!(
            (paused.state(), paused.counter().rise()),
            (State::Paused, 3)
        );
    }

    #[test]
    fn next_delay_follows_the_counter() {
        let policy = IntervalPolicy::new(
            Duration::from_secs(2),
            Duration::from_millis(500),
            Duration::from_secs(5),
        );
        let mut none = crate::health::interval::FixedJitter(0.5);
        let mut b = BackendHealth::new(2, 2, 5, true, t(0));
        assert_eq!(b.next_delay(&policy, &mut none), policy.fast_interval);
        for s in 1..=3 {
            b.record(pass(t(s))).ok();
        }
        assert_eq!(b.next_delay(&policy, &mut none), policy.interval);
        for s in 4..=7 {
            b.record(fail(t(s))).ok();
        }
        assert_eq!(b.next_delay(&policy, &mut none), policy.down_interval);
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        #[derive(Debug, Clone)]
        enum Op {
            Result(ResultCode),
            Pause,
            Resume,
            Disable,
            Enable,
            Remove,
            Reload(u32, u32),
        }

        fn op() -> impl Strategy<Value = Op> {
            // Removal is final, so it is rare: most sequences explore the live states.
            prop_oneof![
                30 => proptest::sample::select(ResultCode::ALL.to_vec()).prop_map(Op::Result),
                3 => Just(Op::Pause),
                3 => Just(Op::Resume),
                3 => Just(Op::Disable),
                3 => Just(Op::Enable),
                1 => Just(Op::Remove),
                2 => (1u32..5, 1u32..5).prop_map(|(r, f)| Op::Reload(r, f)),
            ]
        }

        proptest! {
            #[test]
            fn invariants_hold_under_any_sequence(
                rise in 1u32..6,
                fall in 1u32..6,
                capacity in 1usize..6,
                enabled in any::<bool>(),
                ops in proptest::collection::vec(op(), 0..200),
            ) {
                let mut b = BackendHealth::new(rise, fall, capacity, enabled, t(0));
                for (i, op) in ops.into_iter().enumerate() {
                    let at = t(i as u64 + 1);
                    let before = b.clone();
                    let transition = match op {
                        Op::Result(code) => {
                            let got = b.record(ProbeResult::new_at(code, "", Duration::ZERO, at));
                            if before.state().is_probing() {
                                let tr = got.map_err(|e| TestCaseError::fail(e.to_string()))?;
                                prop_assert_eq!(b.last_result().map(|r| r.code), Some(code));
                                if before.state() == State::Unknown {
                                    // The first result decides at once.
                                    let want = if code.is_ok() { State::Up } else { State::Down };
                                    prop_assert_eq!(b.state(), want);
                                }
                                tr
                            } else {
                                prop_assert_eq!(got, Err(RecordError::NotProbing { state: before.state() }));
                                prop_assert_eq!(b.counter(), before.counter());
                                prop_assert_eq!(b.last_result(), before.last_result());
                                None
                            }
                        }
                        Op::Pause => b.pause(at).ok().flatten(),
                        Op::Resume => b.resume(at).ok().flatten(),
                        Op::Disable => b.disable(at).ok().flatten(),
                        Op::Enable => b.enable(at).ok().flatten(),
                        Op::Remove => b.remove(at),
                        Op::Reload(r, f) => b.reload(r, f, at).ok().flatten(),
                    };

                    let c = b.counter();
                    prop_assert_eq!(c.max(), c.rise() + c.fall() - 1);
                    prop_assert!(c.health() <= c.max());
                    match b.state() {
                        State::Up => prop_assert!(c.health() >= c.rise()),
                        State::Down => prop_assert!(c.health() < c.rise()),
                        State::Unknown => prop_assert_eq!(c.health(), c.rise() - 1),
                        _ => {}
                    }
                    prop_assert!(b.history().len() <= capacity);
                    if before.state() == State::Removed {
                        prop_assert_eq!(b.state(), State::Removed);
                    }
                    match transition {
                        Some(tr) => {
                            prop_assert_ne!(tr.from, tr.to);
                            prop_assert_eq!((tr.from, tr.to), (before.state(), b.state()));
                            prop_assert_eq!(b.history().back(), Some(&tr));
                            prop_assert_eq!(b.state_since(), at);
                        }
                        None => {
                            prop_assert_eq!(b.state(), before.state());
                            prop_assert_eq!(b.history(), before.history());
                        }
                    }
                    // The ring is a chain: each transition starts where the previous ended.
                    let chained = b.history().iter().zip(b.history().iter().skip(1))
                        .all(|(a, n)| a.to == n.from);
                    prop_assert!(chained);
                }
            }
        }
    }
}
