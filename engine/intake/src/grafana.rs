//! Grafana unified alerting's webhook contact point.
//!
//! Grafana's notifications are built by its embedded Alertmanager, so the body has
//! Alertmanager's shape (`receiver`, `status`, `alerts[]` with `status`, `labels`,
//! `annotations`, `startsAt`, `endsAt`, `fingerprint`, `groupKey`, ...) plus Grafana's own
//! fields (`orgId`, `title`, `state`, `message`, and per alert `values`, `silenceURL`,
//! `dashboardURL`, `panelURL`, `imageURL`), which medic ignores. Its payload version is
//! `"1"`.

use crate::{Alert, Ctx, IntakeError, Source, alertmanager::parse_group};

/// The payload version of Grafana's webhook notifier.
pub const VERSION: &str = "1";

/// Every alert of a Grafana webhook notification, in payload order.
pub fn parse(body: &[u8]) -> Result<Vec<Alert>, IntakeError> {
    let cx = Ctx(Source::Grafana);
    parse_group(cx, &cx.json(body)?, VERSION)
}
