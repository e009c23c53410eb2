//! Severity lanes for the service: which lane an alert's severity goes to (`[lanes]` in
//! medic.toml), and the inbox keyed by lane so the processor reads critical alerts first.
//!
//! The mapping is case-insensitive. Defaults: `critical` for `critical`, `emergency`,
//! `alert`, `fatal`, `page`, PagerDuty's `high` urgency and priorities `P1`/`P2`; `info`
//! for `info`, `informational`, `debug`, `none`, PagerDuty's `low` urgency and `P4`/`P5`;
//! everything else (`warning`, `P3`, `unknown`, ...) is `warning`.

use medic_core::lanes::Lane;
use serde::Deserialize;

/// `[lanes]`: which severities go to which lane, and each lane's weight.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LanesConfig {
    /// Severities (Alertmanager/Grafana/generic `severity`, PagerDuty priority names and
    /// urgencies) served first. Replaces the default list when given.
    #[serde(default)]
    pub critical: Option<Vec<String>>,
    /// Severities served last. Replaces the default list when given.
    #[serde(default)]
    pub info: Option<Vec<String>>,
    /// Relative shares of free slots when several lanes wait (default critical 16,
    /// warning 4, info 1): a lower lane always gets some.
    #[serde(default)]
    pub weights: Option<LaneWeights>,
    /// Step-attempt slots beyond `concurrency` that only critical incidents' attempts
    /// take (default 1; 0 turns the reserve off): in a storm, a critical attempt starts
    /// at once instead of waiting for a warning's attempt to end.
    #[serde(default)]
    pub critical_reserve: Option<usize>,
}

/// Per-lane weights (`[lanes.weights]`).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LaneWeights {
    /// The critical lane's weight.
    pub critical: u32,
    /// The warning lane's weight.
    pub warning: u32,
    /// The info lane's weight.
    pub info: u32,
}

// One list of severities for lanes and for which alert describes an incident.
const CRITICAL: &[&str] = medic_intake::CRITICAL_SEVERITIES;
const INFO: &[&str] = medic_intake::INFO_SEVERITIES;

/// The resolved mapping: severity → lane.
#[derive(Debug, Clone)]
pub(crate) struct LaneMap {
    critical: Vec<String>,
    info: Vec<String>,
    pub(crate) weights: [u32; 3],
    pub(crate) critical_reserve: usize,
}

impl LanesConfig {
    /// The mapping this config describes.
    ///
    /// # Errors
    ///
    /// A message naming a severity listed in both lanes, or a weight of 0.
    pub(crate) fn resolve(&self) -> Result<LaneMap, String> {
        let list = |given: &Option<Vec<String>>, default: &[&str]| -> Vec<String> {
            match given {
                Some(v) => v.iter().map(|s| s.to_lowercase()).collect(),
                None => default.iter().map(|s| (*s).to_string()).collect(),
            }
        };
        let critical = list(&self.critical, CRITICAL);
        let info = list(&self.info, INFO);
        if let Some(both) = critical.iter().find(|s| info.contains(s)) {
            return Err(format!(
                "lanes: severity `{both}` is listed as both critical and info"
            ));
        }
        let weights = match self.weights {
            None => [16, 4, 1],
            Some(w) => [w.critical, w.warning, w.info],
        };
        if weights.contains(&0) {
            return Err(
                "lanes.weights: every weight must be at least 1 (a weight of 0 would starve its lane)"
                    .into(),
            );
        }
        Ok(LaneMap {
            critical,
            info,
            weights,
            critical_reserve: self.critical_reserve.unwrap_or(1),
        })
    }
}

impl LaneMap {
    /// The lane of an alert or incident with this severity.
    pub(crate) fn lane(&self, severity: &str) -> Lane {
        let s = severity.to_lowercase();
        if self.critical.contains(&s) {
            Lane::Critical
        } else if self.info.contains(&s) {
            Lane::Info
        } else {
            Lane::Warning
        }
    }
}

/// Inbox keys: `inbox/<lane digit>/<id u64 BE>`, so a prefix scan per lane reads that
/// lane in arrival order. Stores written before lanes existed hold `inbox/<id u64 BE>`;
/// ids come from sled's counter and stay far below 2^56, so those keys all start with a
/// zero byte, which no lane digit is: they are read as the warning lane.
pub(crate) fn inbox_key(lane: Lane, id: u64) -> Vec<u8> {
    let mut k = lane_prefix(Some(lane));
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// Every inbox prefix a lane reads, oldest first: the warning lane also reads the keys
/// written before lanes existed, which are older than any other.
pub(crate) fn lane_prefixes(lane: Lane) -> Vec<Vec<u8>> {
    match lane {
        Lane::Warning => vec![lane_prefix(None), lane_prefix(Some(lane))],
        _ => vec![lane_prefix(Some(lane))],
    }
}

/// The inbox prefix of `lane`; `None`: the keys written before lanes existed.
pub(crate) fn lane_prefix(lane: Option<Lane>) -> Vec<u8> {
    match lane {
        Some(l) => format!("inbox/{}/", l as usize).into_bytes(),
        None => b"inbox/\0".to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_map_to_lanes_case_insensitively() {
        let m = LanesConfig::default().resolve().unwrap();
        assert_eq!(m.critical_reserve, 1, "one reserve slot unless configured");
        let off: LanesConfig = toml::from_str("critical_reserve = 0").unwrap();
        assert_eq!(off.resolve().unwrap().critical_reserve, 0);
        for (sev, lane) in [
            ("critical", Lane::Critical),
            ("P1", Lane::Critical),
            ("high", Lane::Critical),
            ("warning", Lane::Warning),
            ("P3", Lane::Warning),
            ("unknown", Lane::Warning),
            ("low", Lane::Info),
            ("Info", Lane::Info),
        ] {
            assert_eq!(m.lane(sev), lane, "{sev}");
        }
        let c = LanesConfig {
            critical: Some(vec!["SEV1".into()]),
            info: None,
            weights: None,
            critical_reserve: None,
        };
        let m = c.resolve().unwrap();
        assert_eq!(m.lane("sev1"), Lane::Critical);
        assert_eq!(m.lane("critical"), Lane::Warning);
        let bad = LanesConfig {
            critical: Some(vec!["low".into()]),
            ..LanesConfig::default()
        };
        assert!(bad.resolve().unwrap_err().contains("`low`"));
    }

    #[test]
    fn lane_keys_sort_by_arrival_and_never_meet_old_keys() {
        assert!(inbox_key(Lane::Info, 255) < inbox_key(Lane::Info, 256));
        let old = [b"inbox/".as_slice(), &7u64.to_be_bytes()].concat();
        assert!(old.starts_with(&lane_prefix(None)));
        for l in Lane::ALL {
            assert!(!old.starts_with(&lane_prefix(Some(l))));
            assert!(!inbox_key(l, 7).starts_with(&lane_prefix(None)));
        }
    }
}
