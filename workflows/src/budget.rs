//! Budget arithmetic: periods (day, week, month, sprint) and the window of one that contains an
//! instant, budgets of dollars and tokens, and what is left of them. Pure: the caller passes
//! the instant (seconds since the Unix epoch, UTC), nothing here reads a clock.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

use crate::cost::MicroDollars;

const SECS_PER_DAY: i64 = 86_400;
/// A sprint longer than a year is not a sprint; the bound also keeps window arithmetic small.
pub const MAX_SPRINT_DAYS: u32 = 366;

/// Why a period, a date or a budget cannot be taken, naming the text at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BudgetError {
    #[error("date {0:?} is not a date like 2026-11-02")]
    Date(String),
    #[error(
        "period {0:?} is not one of day, week, month or sprint:<start date>:<days> (e.g. sprint:2026-11-02:14)"
    )]
    Period(String),
    #[error("sprint of {0} days: expected 1 to {MAX_SPRINT_DAYS} days")]
    SprintDays(u32),
}

/// A calendar date written exactly `YYYY-MM-DD`. chrono's `%Y`/`%m` alone would also take
/// `26-1-1` or a signed year, so the shape is checked before chrono checks the calendar.
fn parse_date(text: &str) -> Result<NaiveDate, BudgetError> {
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    shaped
        .then(|| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| BudgetError::Date(text.to_string()))
}

/// Seconds since the epoch of the date's midnight, UTC.
fn midnight(date: NaiveDate) -> i64 {
    date.and_time(NaiveTime::MIN).and_utc().timestamp()
}

/// How often a period budget starts afresh. Written `day`, `week` (Monday to Sunday), `month`,
/// or `sprint:<start date>:<days>` (back-to-back sprints of that many days from the start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Period {
    Day,
    Week,
    Month,
    Sprint { start: NaiveDate, days: u32 },
}

/// A half-open range of instants `[from, to)`, in seconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: i64,
    pub to: i64,
}

impl Window {
    pub fn contains(&self, instant: i64) -> bool {
        self.from <= instant && instant < self.to
    }
}

impl Period {
    /// The window of this period that contains `instant` (seconds since the epoch, UTC). An
    /// instant past the dates chrono can name (about 262,000 years either side of year 0)
    /// gets the window of the first or last such date.
    pub fn window(&self, instant: i64) -> Window {
        let today = match DateTime::from_timestamp(instant, 0) {
            Some(at) => at.date_naive(),
            None if instant < 0 => NaiveDate::MIN,
            None => NaiveDate::MAX,
        };
        // Days from the window's first day to today, and the window's length in days.
        let (into, len) = match *self {
            Period::Day => (0, 1),
            Period::Week => (i64::from(today.weekday().num_days_from_monday()), 7),
            Period::Month => (
                i64::from(today.day0()),
                i64::from(today.num_days_in_month()),
            ),
            Period::Sprint { start, days } => {
                // Parsing keeps days at least 1; the max keeps a corrupt value from dividing by 0.
                let len = i64::from(days.max(1));
                let since_start = today.signed_duration_since(start).num_days();
                (since_start.rem_euclid(len), len)
            }
        };
        let from = midnight(today) - into * SECS_PER_DAY;
        Window {
            from,
            to: from + len * SECS_PER_DAY,
        }
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Period::Day => f.write_str("day"),
            Period::Week => f.write_str("week"),
            Period::Month => f.write_str("month"),
            Period::Sprint { start, days } => write!(f, "sprint:{start}:{days}"),
        }
    }
}

impl FromStr for Period {
    type Err = BudgetError;
    fn from_str(text: &str) -> Result<Period, BudgetError> {
        match text {
            "day" => return Ok(Period::Day),
            "week" => return Ok(Period::Week),
            "month" => return Ok(Period::Month),
            _ => {}
        }
        let bad = || BudgetError::Period(text.to_string());
        let rest = text.strip_prefix("sprint:").ok_or_else(bad)?;
        let (start, days) = rest.split_once(':').ok_or_else(bad)?;
        let start = parse_date(start)?;
        let days: u32 = days.parse().map_err(|_| bad())?;
        if days == 0 || days > MAX_SPRINT_DAYS {
            return Err(BudgetError::SprintDays(days));
        }
        Ok(Period::Sprint { start, days })
    }
}

impl TryFrom<String> for Period {
    type Error = BudgetError;
    fn try_from(text: String) -> Result<Period, BudgetError> {
        text.parse()
    }
}

impl From<Period> for String {
    fn from(period: Period) -> String {
        period.to_string()
    }
}

/// Money and tokens spent so far (of a task, a playbook in a window, or everything).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spent {
    pub micro_dollars: MicroDollars,
    pub tokens: u64,
}

/// A limit on dollars, tokens, or both; `None` is no limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dollars: Option<MicroDollars>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<u64>,
}

/// Which limit of a budget is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    Dollars {
        limit: MicroDollars,
        spent: MicroDollars,
    },
    Tokens {
        limit: u64,
        spent: u64,
    },
}

impl fmt::Display for Exhausted {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Exhausted::Dollars { limit, spent } => {
                write!(f, "{spent} spent of a {limit} budget")
            }
            Exhausted::Tokens { limit, spent } => {
                write!(f, "{spent} tokens used of a {limit}-token budget")
            }
        }
    }
}

/// What is left of a budget; `None` where it sets no limit. Never below zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remaining {
    pub dollars: Option<MicroDollars>,
    pub tokens: Option<u64>,
}

impl Budget {
    pub fn is_unlimited(&self) -> bool {
        self.dollars.is_none() && self.tokens.is_none()
    }

    pub fn remaining(&self, spent: Spent) -> Remaining {
        Remaining {
            dollars: self
                .dollars
                .map(|limit| MicroDollars((limit.0 - spent.micro_dollars.0).max(0))),
            tokens: self.tokens.map(|limit| limit.saturating_sub(spent.tokens)),
        }
    }

    /// The first limit `spent` has reached: a limit reached is spent, since the next call's
    /// cost is unknown until it has been made. Dollars are checked first.
    pub fn exhausted(&self, spent: Spent) -> Option<Exhausted> {
        if let Some(limit) = self.dollars
            && spent.micro_dollars >= limit
        {
            return Some(Exhausted::Dollars {
                limit,
                spent: spent.micro_dollars,
            });
        }
        if let Some(limit) = self.tokens
            && spent.tokens >= limit
        {
            return Some(Exhausted::Tokens {
                limit,
                spent: spent.tokens,
            });
        }
        None
    }
}

/// A request's value for a capped limit: it may lower the cap, never raise it. `Err` carries
/// the cap the request tried to exceed.
pub fn lowered<T: Copy + PartialOrd>(cap: Option<T>, requested: Option<T>) -> Result<Option<T>, T> {
    match (cap, requested) {
        (Some(cap), Some(value)) if value > cap => Err(cap),
        (_, Some(value)) => Ok(Some(value)),
        (cap, None) => Ok(cap),
    }
}

/// The median and the 90th percentile (nearest rank) of amounts, with their count; None when
/// there are none. For estimates from a playbook's past tasks.
pub fn median_and_p90(amounts: &[MicroDollars]) -> Option<(MicroDollars, MicroDollars)> {
    if amounts.is_empty() {
        return None;
    }
    let mut sorted = amounts.to_vec();
    sorted.sort();
    let n = sorted.len();
    // The median of an even count is the mean of the middle two, rounded up like prices.
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        let sum = i128::from(sorted[n / 2 - 1].0) + i128::from(sorted[n / 2].0);
        MicroDollars(sum.div_euclid(2) as i64 + (sum.rem_euclid(2) as i64))
    };
    // Nearest rank: the smallest value with at least 90% of the values at or below it.
    let rank = (9 * n).div_ceil(10).max(1);
    Some((median, sorted[rank - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        parse_date(text).unwrap()
    }

    /// Seconds since the epoch of a date at a time of day.
    fn at(day: &str, hh: u32, mm: u32) -> i64 {
        date(day)
            .and_hms_opt(hh, mm, 0)
            .unwrap()
            .and_utc()
            .timestamp()
    }

    fn window(period: &str, instant: i64) -> (String, String) {
        let w = period.parse::<Period>().unwrap().window(instant);
        assert!(w.contains(instant), "{period}: {w:?} misses {instant}");
        let show = |secs: i64| {
            assert_eq!(
                secs.rem_euclid(SECS_PER_DAY),
                0,
                "windows start at midnight"
            );
            DateTime::from_timestamp(secs, 0)
                .unwrap()
                .date_naive()
                .to_string()
        };
        (show(w.from), show(w.to))
    }

    #[test]
    fn dates_parse_only_as_yyyy_mm_dd() {
        assert_eq!(midnight(date("1970-01-01")), 0);
        assert_eq!(midnight(date("2000-03-01")), 11_017 * SECS_PER_DAY);
        assert_eq!(midnight(date("1969-12-31")), -SECS_PER_DAY);
        // Every 997th day from 0001-01-01 to 9999-12-31 (the years `YYYY` can write) prints
        // in the form that parses back.
        let first = date("0001-01-01");
        for days in (0..=3_652_058).step_by(997) {
            let d = first + chrono::Days::new(days);
            assert_eq!(parse_date(&d.to_string()), Ok(d), "{d}");
        }
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-1-01",
            "26-01-01",
            "2026-01-00",
            "x",
            "+2026-01-01",
            " 2026-01-01",
            "2026-01-01 ",
            "2026/01/01",
            "",
        ] {
            assert_eq!(parse_date(bad), Err(BudgetError::Date(bad.into())), "{bad}");
        }
        assert!(parse_date("2024-02-29").is_ok());
    }

    #[test]
    fn windows_contain_the_instant_and_start_at_midnight_utc() {
        // A Saturday afternoon in a leap year's February.
        let t = at("2028-02-26", 15, 30);
        let cases = [
            ("day", ("2028-02-26", "2028-02-27")),
            ("week", ("2028-02-21", "2028-02-28")),
            ("month", ("2028-02-01", "2028-03-01")),
            ("sprint:2028-01-03:14", ("2028-02-14", "2028-02-28")),
            // A sprint that has not started yet: the windows run backwards from its start too.
            ("sprint:2028-03-01:10", ("2028-02-20", "2028-03-01")),
        ];
        for (period, (from, to)) in cases {
            assert_eq!(
                window(period, t),
                (from.to_string(), to.to_string()),
                "{period}"
            );
        }
        // Edges: midnight belongs to the new window; December rolls into the next year.
        assert_eq!(
            window("day", at("2026-11-21", 0, 0)),
            ("2026-11-21".into(), "2026-11-22".into())
        );
        assert_eq!(
            window("week", at("2026-11-23", 0, 0)).0,
            "2026-11-23",
            "a Monday starts its week"
        );
        assert_eq!(
            window("week", at("2026-11-22", 23, 59)).0,
            "2026-11-16",
            "a Sunday ends its week"
        );
        assert_eq!(
            window("month", at("2026-12-31", 23, 59)),
            ("2026-12-01".into(), "2027-01-01".into())
        );
        assert_eq!(
            window("sprint:2026-11-02:14", at("2026-11-16", 0, 0)),
            ("2026-11-16".into(), "2026-11-30".into())
        );
        assert_eq!(
            window("day", -1),
            ("1969-12-31".into(), "1970-01-01".into())
        );
        // Instants past chrono's calendar take its first or last day's window, without panics.
        for instant in [i64::MIN, i64::MAX] {
            for period in [Period::Day, Period::Week, Period::Month] {
                let w = period.window(instant);
                assert!(w.from < w.to, "{period} at {instant}: {w:?}");
            }
        }
    }

    #[test]
    fn periods_parse_and_print() {
        for text in ["day", "week", "month", "sprint:2026-11-02:14"] {
            assert_eq!(text.parse::<Period>().unwrap().to_string(), text);
        }
        let json = serde_json::to_string(&Period::Month).unwrap();
        assert_eq!(json, r#""month""#);
        assert_eq!(
            serde_json::from_str::<Period>(r#""sprint:2026-11-02:7""#).unwrap(),
            Period::Sprint {
                start: date("2026-11-02"),
                days: 7
            }
        );
        assert_eq!(
            "fortnight".parse::<Period>(),
            Err(BudgetError::Period("fortnight".into()))
        );
        assert_eq!(
            "sprint:2026-11-02:0".parse::<Period>(),
            Err(BudgetError::SprintDays(0))
        );
        assert_eq!(
            "sprint:2026-11-32:5".parse::<Period>(),
            Err(BudgetError::Date("2026-11-32".into()))
        );
        assert!("sprint:2026-11-02".parse::<Period>().is_err());
        assert!(serde_json::from_str::<Period>(r#""yearly""#).is_err());
    }

    #[test]
    fn budgets_are_spent_when_a_limit_is_reached() {
        let budget = Budget {
            dollars: Some(MicroDollars(2_000_000)),
            tokens: Some(10_000),
        };
        let spent = |micros, tokens| Spent {
            micro_dollars: MicroDollars(micros),
            tokens,
        };
        assert_eq!(budget.exhausted(spent(1_999_999, 9_999)), None);
        assert_eq!(
            budget.exhausted(spent(2_000_000, 0)),
            Some(Exhausted::Dollars {
                limit: MicroDollars(2_000_000),
                spent: MicroDollars(2_000_000)
            })
        );
        assert_eq!(
            budget.exhausted(spent(0, 10_001)),
            Some(Exhausted::Tokens {
                limit: 10_000,
                spent: 10_001
            })
        );
        assert_eq!(
            budget.remaining(spent(500_000, 12_000)),
            Remaining {
                dollars: Some(MicroDollars(1_500_000)),
                tokens: Some(0)
            }
        );
        assert_eq!(
            budget.remaining(spent(3_000_000, 0)).dollars,
            Some(MicroDollars(0))
        );
        let unlimited = Budget::default();
        assert!(unlimited.is_unlimited());
        assert_eq!(unlimited.exhausted(spent(i64::MAX, u64::MAX)), None);
        assert_eq!(
            Exhausted::Dollars {
                limit: MicroDollars(2_000_000),
                spent: MicroDollars(2_000_001)
            }
            .to_string(),
            "$2.000001 spent of a $2.000000 budget"
        );
    }

    #[test]
    fn a_request_lowers_a_cap_and_never_raises_it() {
        assert_eq!(lowered(Some(5), None), Ok(Some(5)));
        assert_eq!(lowered(Some(5), Some(3)), Ok(Some(3)));
        assert_eq!(lowered(Some(5), Some(5)), Ok(Some(5)));
        assert_eq!(lowered(Some(5), Some(6)), Err(5));
        assert_eq!(lowered(None, Some(6)), Ok(Some(6)));
        assert_eq!(lowered::<u64>(None, None), Ok(None));
    }

    #[test]
    fn median_and_p90_by_nearest_rank() {
        let m = |v: &[i64]| {
            let amounts: Vec<MicroDollars> = v.iter().map(|&x| MicroDollars(x)).collect();
            median_and_p90(&amounts).map(|(a, b)| (a.0, b.0))
        };
        assert_eq!(m(&[]), None);
        assert_eq!(m(&[7]), Some((7, 7)));
        assert_eq!(m(&[1, 2]), Some((2, 2)), "the mean of 1 and 2 rounds up");
        assert_eq!(m(&[10, 1, 4]), Some((4, 10)));
        let ten: Vec<i64> = (1..=10).rev().collect();
        assert_eq!(
            m(&ten),
            Some((6, 9)),
            "median of 5 and 6 rounds up; p90 is the 9th"
        );
        let hundred: Vec<i64> = (1..=100).collect();
        assert_eq!(m(&hundred), Some((51, 90)));
    }
}
