//! `k8s-rollout`: a restore-phase step for Kubernetes Deployments, doing what `kubectl
//! rollout history|undo|pause|resume|status`, `kubectl set image`, `kubectl rollout restart`
//! and `kubectl scale` do, against the API server directly.
//!
//! [`params`] and [`rollout`] are pure and unit-tested on the host; [`actions`] runs the
//! rollback actions against the API and [`forward`] the roll-forward ones, over
//! `medic_step::http`.

mod actions;
mod forward;
mod params;
mod rollout;

use medic_step::{Failure, Invocation, Outcome, Step};
use params::Params;

struct K8sRollout;

impl Step for K8sRollout {
    type Params = params::Raw;
    const NAME: &'static str = "k8s-rollout";
    const SUMMARY: &'static str = "Kubernetes Deployment rollouts: history, undo (roll back), pause, resume, wait for status, set image, restart, scale (roll forward)";
    // The API server comes from the `server` param and the token's secret name from
    // `token_secret`: the workflow grants both.
    const PARAMS_SCHEMA: &'static str = params::PARAMS_SCHEMA;

    async fn run(raw: params::Raw, _: &Invocation) -> Result<Outcome, Failure> {
        let params = Params::check(raw)?;
        actions::run(&params).await
    }
}

medic_step::export_step!(K8sRollout);
