//! A frontend as the health core sees it right now: its pools with configured and
//! effective weights, the active pool and the frontend state. One pure computation shared
//! by the gRPC API, metrics and the VPP desired state.

use crate::config::Frontend;
use crate::health::weight::frontend_weights_with;
use crate::health::{BackendInput, FrontendWeights, PoolInput, State};

use super::snapshot::HealthSnapshot;
use super::state::CheckerState;

#[derive(Debug, Clone)]
pub struct FrontendView {
    pub frontend: Frontend,
    /// Per pool, per member (config order), the inputs used.
    pub inputs: Vec<PoolInput>,
    pub weights: FrontendWeights,
}

/// The view of one frontend as of `snap` (a copy; `HealthSnapshot::frontend` borrows it);
/// None when the name is unknown.
pub fn frontend_view(snap: &HealthSnapshot, name: &str) -> Option<FrontendView> {
    snap.frontend(name).cloned()
}

/// Computes the view of one frontend from the live state; None when the name is unknown.
pub(crate) fn view_of(st: &CheckerState, name: &str) -> Option<FrontendView> {
    let frontend = st.config.frontends.get(name)?;
    let inputs = pool_inputs(st, name)?;
    let weights = frontend_weights_with(&inputs, frontend.flush_on_down, frontend.fail);
    Some(FrontendView {
        frontend: frontend.clone(),
        inputs,
        weights,
    })
}

/// Per pool, per member (config order): the state and weights the health core sees.
pub(crate) fn pool_inputs(st: &CheckerState, name: &str) -> Option<Vec<PoolInput>> {
    let frontend = st.config.frontends.get(name)?;
    let inputs: Vec<PoolInput> = frontend
        .pools
        .iter()
        .map(|pool| PoolInput {
            name: pool.name.clone(),
            backends: pool
                .backends
                .iter()
                .map(|m| {
                    let state = st
                        .backends
                        .get(&m.backend)
                        .map(|e| e.health.state())
                        .unwrap_or(State::Unknown);
                    let input = BackendInput::new(m.backend.clone(), m.weight, state);
                    // Overrides are rare: build the owned lookup key only when there are some.
                    if st.overrides.is_empty() {
                        return input;
                    }
                    let key = (name.to_string(), pool.name.clone(), m.backend.clone());
                    match st.overrides.get(&key) {
                        Some(w) => input.with_override(*w),
                        None => input,
                    }
                })
                .collect(),
        })
        .collect();
    Some(inputs)
}
