//! Grafana unified alerting's webhook contact point.
//!
//! Grafana's notifications are built by its embedded Alertmanager, so the body has
//! Alertmanager's shape (`receiver`, `status`, `alerts[]` with `status`, `labels`,
//! `annotations`, `startsAt`, `endsAt`, `fingerprint`, `groupKey`, ...) plus Grafana's own
//! fields (`orgId`, `title`, `state`, `message`, and per alert `values`, `silenceURL`,
//! `dashboardURL`, `panelURL`, `imageURL`), which medic ignores. Its payload version is
//! `"1"`.

use crate::{Alert, IntakeError, Source};

/// The payload version of Grafana's webhook notifier.
pub const VERSION: &str = "1";

/// Every alert of a Grafana webhook notification, in payload order.
///
/// # Errors
///
/// As [`crate::alertmanager::parse`], with Grafana's [`VERSION`].
pub fn parse(body: &[u8]) -> Result<Vec<Alert>, IntakeError> {
    crate::read(Source::Grafana, body, None)?.into_alerts()
}
