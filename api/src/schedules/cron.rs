//! Cron expressions as Temporal Schedules read them: checked field by field by the playbook
//! model, then parsed with croner in Temporal's semantics (5 fields, no seconds or years,
//! day-of-month AND day-of-week) for the next fire times. Pure: the caller passes "now".

use chrono::{DateTime, Duration, Utc};
use croner::parser::{CronParser, Seconds, Year};
use workflows::playbook::Cron;

/// What a cron expression will do: its next fire times (UTC), when they can be computed here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronPreview {
    /// Empty for a time zone other than UTC: Temporal's own preview is then authoritative.
    pub next: Vec<DateTime<Utc>>,
}

/// The expression checked, or why it is not one Temporal would run.
pub fn check(expression: &str) -> Result<Cron, String> {
    let cron = Cron::new(expression)?;
    if every(cron.as_str()).is_none() {
        parser()
            .parse(cron.as_str())
            .map_err(|err| format!("cron {:?}: {err}", cron.as_str()))?;
    }
    Ok(cron)
}

/// The next `n` fire times after `now`, for an expression in UTC.
pub fn next_fires(cron: &Cron, now: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
    if let Some(period) = every(cron.as_str()) {
        // Temporal aligns `@every` intervals to the Unix epoch.
        let secs = period.num_seconds().max(1);
        let first = (now.timestamp() / secs + 1) * secs;
        return (0..n as i64)
            .filter_map(|i| DateTime::from_timestamp(first + i * secs, 0))
            .collect();
    }
    match parser().parse(cron.as_str()) {
        Ok(parsed) => parsed.iter_after(now).take(n).collect(),
        Err(_) => Vec::new(),
    }
}

/// A preview for the schedule's zone: computed for UTC, left to Temporal otherwise.
pub fn preview(cron: &Cron, timezone: &str, now: DateTime<Utc>, n: usize) -> CronPreview {
    let utc = matches!(timezone, "" | "UTC" | "Etc/UTC");
    CronPreview {
        next: if utc {
            next_fires(cron, now, n)
        } else {
            Vec::new()
        },
    }
}

fn parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .dom_and_dow(true)
        .build()
}

/// `@every <n><s|m|h|d>`, which croner does not read.
fn every(expression: &str) -> Option<Duration> {
    let rest = expression.strip_prefix("@every ")?.trim();
    let (number, unit) = rest.split_at(rest.len().checked_sub(1)?);
    let n: i64 = number.parse().ok()?;
    match unit {
        "s" => Some(Duration::seconds(n)),
        "m" => Some(Duration::minutes(n)),
        "h" => Some(Duration::hours(n)),
        "d" => Some(Duration::days(n)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn fires(expression: &str, now: &str, n: usize) -> Vec<String> {
        let cron = check(expression).unwrap();
        next_fires(&cron, at(now), n)
            .iter()
            .map(|t| t.format("%Y-%m-%d %a %H:%M").to_string())
            .collect()
    }

    #[test]
    fn next_fires_follow_temporal_semantics() {
        assert_eq!(
            fires("*/15 * * * *", "2026-01-01T00:00:00Z", 2),
            ["2026-01-01 Thu 00:15", "2026-01-01 Thu 00:30"]
        );
        // Day-of-month AND day-of-week, as Temporal reads them: Friday the 13th only.
        assert_eq!(
            fires("0 0 13 * 5", "2026-01-01T00:00:00Z", 2),
            ["2026-02-13 Fri 00:00", "2026-03-13 Fri 00:00"]
        );
        assert_eq!(
            fires("0 6 * * mon", "2026-01-01T00:00:00Z", 1),
            ["2026-01-05 Mon 06:00"]
        );
        assert_eq!(
            fires("0 0 * * 7", "2026-01-01T00:00:00Z", 1),
            ["2026-01-04 Sun 00:00"]
        );
        assert_eq!(
            fires("@daily", "2026-01-01T10:00:00Z", 1),
            ["2026-01-02 Fri 00:00"]
        );
        assert_eq!(
            fires("@every 90m", "2026-01-01T00:00:00Z", 2),
            ["2026-01-01 Thu 01:30", "2026-01-01 Thu 03:00"]
        );
    }

    #[test]
    fn bad_expressions_are_refused_with_the_reason() {
        for (expression, want) in [
            ("0 0 9 * * 1", "expected 5 cron fields"),
            ("61 * * * *", "cron minute"),
            ("* * 31 2 *", ""),
            ("@every 0s", "expected @every"),
        ] {
            match check(expression) {
                Err(err) => assert!(err.contains(want), "{expression}: {err}"),
                // Feb 31 never fires, yet it is a valid expression for Temporal too.
                Ok(_) => assert_eq!(expression, "* * 31 2 *"),
            }
        }
    }

    #[test]
    fn previews_other_zones_to_temporal() {
        let cron = check("0 6 * * *").unwrap();
        let now = at("2026-01-01T00:00:00Z");
        assert_eq!(preview(&cron, "UTC", now, 1).next.len(), 1);
        assert!(preview(&cron, "Europe/Paris", now, 1).next.is_empty());
    }
}
