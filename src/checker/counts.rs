//! What decides a frontend's state, kept as counts so that a backend transition costs
//! the number of pools it is in, not the size of those pools (a start of 10,000 backends
//! in one pool is then linear, not quadratic). The counts give the same answer as
//! `health::frontend_weights` (a test below holds them to it); views with effective
//! weights are still computed in full, but only where a reader asks for them.

use std::collections::HashMap;

use crate::config::Config;
use crate::health::{FrontendState, PoolInput, State};

/// One place a backend sits in: a pool of a frontend.
#[derive(Debug, Clone)]
struct Membership {
    frontend: String,
    pool: usize,
    /// Its configured weight (or override) is above 0: up in the active pool, it serves.
    weighted: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct PoolCounts {
    up: usize,
    up_weighted: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FrontendCounts {
    pools: Vec<PoolCounts>,
    unknown: usize,
    members: usize,
}

impl FrontendCounts {
    /// Counts of a frontend's pool inputs (as `frontend_view` builds them).
    pub(crate) fn of(inputs: &[PoolInput]) -> FrontendCounts {
        let mut c = FrontendCounts {
            pools: vec![PoolCounts::default(); inputs.len()],
            unknown: 0,
            members: inputs.iter().map(|p| p.backends.len()).sum(),
        };
        for (i, pool) in inputs.iter().enumerate() {
            for b in &pool.backends {
                c.add(i, b.configured_weight() > 0, b.state, 1);
            }
        }
        c
    }

    fn add(&mut self, pool: usize, weighted: bool, state: State, n: isize) {
        let bump = |v: &mut usize| *v = v.saturating_add_signed(n);
        if state == State::Up
            && let Some(p) = self.pools.get_mut(pool)
        {
            bump(&mut p.up);
            if weighted {
                bump(&mut p.up_weighted);
            }
        }
        if state == State::Unknown {
            bump(&mut self.unknown);
        }
    }

    /// Same rule as `frontend_weights`: up when the active pool (the first with a member
    /// up) has a member up with a weight above 0; unknown while every member is unknown;
    /// else down.
    pub(crate) fn state(&self) -> FrontendState {
        let active = self.pools.iter().find(|p| p.up > 0);
        if active.is_some_and(|p| p.up_weighted > 0) {
            FrontendState::Up
        } else if self.unknown == self.members {
            FrontendState::Unknown
        } else {
            FrontendState::Down
        }
    }
}

/// Every frontend's counts and, per backend, where it sits.
#[derive(Debug, Default)]
pub(crate) struct Counts {
    memberships: HashMap<String, Vec<Membership>>,
    /// Per backend, the frontends it is in (sorted, once each).
    frontends_of: HashMap<String, Vec<String>>,
    frontends: HashMap<String, FrontendCounts>,
}

impl Counts {
    /// From the config and each frontend's current pool inputs.
    pub(crate) fn build<'a>(
        config: &Config,
        inputs: impl Iterator<Item = (&'a str, Vec<PoolInput>)>,
    ) -> Counts {
        let mut c = Counts::default();
        for (name, inputs) in inputs {
            let fc = FrontendCounts::of(&inputs);
            for (pool, p) in inputs.iter().enumerate() {
                for b in &p.backends {
                    c.memberships
                        .entry(b.name.clone())
                        .or_default()
                        .push(Membership {
                            frontend: name.to_string(),
                            pool,
                            weighted: b.configured_weight() > 0,
                        });
                }
            }
            c.frontends.insert(name.to_string(), fc);
        }
        for (backend, ms) in &c.memberships {
            let mut names: Vec<String> = ms.iter().map(|m| m.frontend.clone()).collect();
            names.sort();
            names.dedup();
            c.frontends_of.insert(backend.clone(), names);
        }
        debug_assert!(c.frontends.keys().all(|f| config.frontends.contains_key(f)));
        c
    }

    /// The frontends `backend` is in, in name order.
    pub(crate) fn frontends_of(&self, backend: &str) -> &[String] {
        self.frontends_of
            .get(backend)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// `backend` went from `from` to `to`: O(pools it is in).
    pub(crate) fn transition(&mut self, backend: &str, from: State, to: State) {
        let Some(ms) = self.memberships.get(backend) else {
            return;
        };
        for m in ms {
            if let Some(fc) = self.frontends.get_mut(&m.frontend) {
                fc.add(m.pool, m.weighted, from, -1);
                fc.add(m.pool, m.weighted, to, 1);
            }
        }
    }

    /// An override changed: recount the frontend from its inputs.
    pub(crate) fn recount(&mut self, frontend: &str, inputs: &[PoolInput]) {
        self.frontends
            .insert(frontend.to_string(), FrontendCounts::of(inputs));
        for (pool, p) in inputs.iter().enumerate() {
            for b in &p.backends {
                let weighted = b.configured_weight() > 0;
                if let Some(ms) = self.memberships.get_mut(&b.name) {
                    for m in ms
                        .iter_mut()
                        .filter(|m| m.frontend == frontend && m.pool == pool)
                    {
                        m.weighted = weighted;
                    }
                }
            }
        }
    }

    pub(crate) fn state(&self, frontend: &str) -> Option<FrontendState> {
        self.frontends.get(frontend).map(FrontendCounts::state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::{BackendInput, XorShift64, frontend_weights};

    const STATES: [State; 6] = [
        State::Unknown,
        State::Up,
        State::Down,
        State::Paused,
        State::Disabled,
        State::Removed,
    ];

    fn counted(inputs: &[PoolInput]) -> FrontendCounts {
        FrontendCounts::of(inputs)
    }

    #[test]
    fn counts_agree_with_frontend_weights_through_random_transitions() {
        let mut rng = XorShift64::new(0x5eed);
        let mut pick = |n: u64| usize::try_from(rng.next_u64() % n).unwrap_or(0);
        for round in 0..200 {
            let pools = 1 + pick(3);
            let mut inputs: Vec<PoolInput> = (0..pools)
                .map(|p| PoolInput {
                    name: format!("p{p}"),
                    backends: (0..pick(5))
                        .map(|b| {
                            let w = [0u8, 1, 50, 100][pick(4)];
                            let mut i = BackendInput::new(format!("b{p}.{b}"), w, State::Unknown);
                            if pick(5) == 0 {
                                i = i.with_override([0u8, 30][pick(2)]);
                            }
                            i
                        })
                        .collect(),
                })
                .collect();
            let mut counts = counted(&inputs);
            for step in 0..30 {
                let want = frontend_weights(&inputs, false).state;
                assert_eq!(
                    counts.state(),
                    want,
                    "round {round} step {step}: {inputs:?}"
                );
                let p = pick(inputs.len() as u64);
                if inputs[p].backends.is_empty() {
                    continue;
                }
                let b = pick(inputs[p].backends.len() as u64);
                let member = &mut inputs[p].backends[b];
                let to = STATES[pick(STATES.len() as u64)];
                let weighted = member.configured_weight() > 0;
                counts.add(p, weighted, member.state, -1);
                counts.add(p, weighted, to, 1);
                member.state = to;
            }
        }
    }

    #[test]
    fn no_members_is_unknown() {
        assert_eq!(counted(&[]).state(), FrontendState::Unknown);
    }
}
