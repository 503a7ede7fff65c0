//! Cron expressions evaluated on block time (UTC), with bounded work.
//!
//! The syntax is the classic five fields `minute hour day-of-month month day-of-week`:
//! `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, lists `a,b`, month names `jan`..`dec`,
//! weekday names `sun`..`sat` (0 and 7 are Sunday), and the shorthands `@hourly`, `@daily`,
//! `@weekly`, `@monthly`, `@yearly`. As in Vixie cron, when both the day-of-month and the
//! day-of-week fields are restricted (neither starts with `*`), a day matches if either does.
//!
//! The next occurrence is found by scanning at most [`SEARCH_DAYS`] days, which covers the
//! longest possible gap (a 29 February across a non-leap century year), so evaluation inside
//! the runtime costs a bounded amount of work whatever the expression. Written here rather than
//! taken from a crate: see `docs/decisions/0003-cron-on-chain.md`.

use std::fmt;

/// Days scanned before giving up: eight years plus a margin.
pub const SEARCH_DAYS: u64 = 8 * 366 + 2;

/// A parsed cron expression.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CronSchedule {
    minutes: u64,
    hours: u32,
    days_of_month: u32,
    months: u16,
    days_of_week: u8,
    day_of_month_restricted: bool,
    day_of_week_restricted: bool,
}

/// Why a cron expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CronError(String);

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DAY_OF_MONTH: Field = Field {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ],
};
const DAY_OF_WEEK: Field = Field {
    name: "day of week",
    min: 0,
    max: 7,
    names: &["sun", "mon", "tue", "wed", "thu", "fri", "sat"],
};

impl Field {
    fn value(&self, text: &str) -> Result<u32, CronError> {
        let lower = text.to_ascii_lowercase();
        if let Some(index) = self.names.iter().position(|n| *n == lower) {
            // Month names start at 1, weekday names at 0.
            return Ok(index as u32 + self.min);
        }
        let value: u32 = text
            .parse()
            .map_err(|_| CronError(format!("{} field: `{text}` is not a number", self.name)))?;
        if value < self.min || value > self.max {
            return Err(CronError(format!(
                "{} field: {value} is outside {}-{}",
                self.name, self.min, self.max
            )));
        }
        Ok(value)
    }

    /// Parses one field into a bit set (bit `n` = value `n`).
    fn parse(&self, text: &str) -> Result<u64, CronError> {
        let mut bits = 0u64;
        for part in text.split(',') {
            let (range, step) = match part.split_once('/') {
                Some((range, step)) => {
                    let step: u32 = step.parse().map_err(|_| {
                        CronError(format!(
                            "{} field: step `{step}` is not a number",
                            self.name
                        ))
                    })?;
                    if step == 0 {
                        return Err(CronError(format!("{} field: a step of 0", self.name)));
                    }
                    (range, step)
                }
                None => (part, 1),
            };
            let (low, high) = if range == "*" {
                (self.min, self.max)
            } else if let Some((low, high)) = range.split_once('-') {
                (self.value(low)?, self.value(high)?)
            } else {
                let low = self.value(range)?;
                // `5/15` means from 5 to the end in steps of 15.
                (low, if part.contains('/') { self.max } else { low })
            };
            if low > high {
                return Err(CronError(format!(
                    "{} field: range {low}-{high} is backwards",
                    self.name
                )));
            }
            let mut value = low;
            while value <= high {
                bits |= 1 << value;
                value = value.saturating_add(step);
            }
        }
        Ok(bits)
    }
}

impl CronSchedule {
    /// Parses an expression, refusing ones that can never fire.
    pub fn parse(expression: &str) -> Result<CronSchedule, CronError> {
        let expanded = match expression.trim() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, dom, month, dow] = fields.as_slice() else {
            return Err(CronError(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
                fields.len()
            )));
        };
        let mut days_of_week = DAY_OF_WEEK.parse(dow)? as u8;
        // 7 is another name for Sunday.
        if days_of_week & 0x80 != 0 {
            days_of_week = (days_of_week & 0x7f) | 1;
        }
        let schedule = CronSchedule {
            minutes: MINUTE.parse(minute)?,
            hours: HOUR.parse(hour)? as u32,
            days_of_month: DAY_OF_MONTH.parse(dom)? as u32,
            months: MONTH.parse(month)? as u16,
            days_of_week,
            day_of_month_restricted: !dom.starts_with('*'),
            day_of_week_restricted: !dow.starts_with('*'),
        };
        if !schedule.can_ever_fire() {
            return Err(CronError(format!(
                "`{expression}` names a day that never exists (such as 30 February)"
            )));
        }
        Ok(schedule)
    }

    fn can_ever_fire(&self) -> bool {
        if self.day_of_week_restricted && self.day_of_month_restricted {
            return true; // either field may match, and every weekday recurs
        }
        if !self.day_of_month_restricted {
            return true;
        }
        (1..=12u32).any(|month| {
            self.months & (1 << month) != 0
                && (1..=max_days_in_month(month)).any(|day| self.days_of_month & (1 << day) != 0)
        })
    }

    fn day_matches(&self, month: u32, day: u32, weekday: u32) -> bool {
        if self.months & (1 << month) == 0 {
            return false;
        }
        let dom = self.days_of_month & (1 << day) != 0;
        let dow = self.days_of_week & (1 << weekday) != 0;
        if self.day_of_month_restricted && self.day_of_week_restricted {
            dom || dow
        } else {
            dom && dow
        }
    }

    /// The first minute of `day` at or after `from_minute` (minute of the day) that matches.
    fn first_minute_of_day(&self, from_minute: u32) -> Option<u32> {
        (from_minute / 60..24).find_map(|hour| {
            if self.hours & (1 << hour) == 0 {
                return None;
            }
            let first = if hour == from_minute / 60 {
                from_minute % 60
            } else {
                0
            };
            let remaining = self.minutes >> first;
            (remaining != 0).then(|| hour * 60 + first + remaining.trailing_zeros())
        })
    }

    /// The first matching time strictly after `after_secs` (Unix seconds, UTC), in Unix
    /// seconds; `None` if nothing matches within [`SEARCH_DAYS`].
    pub fn next_after(&self, after_secs: u64) -> Option<u64> {
        let next_minute = after_secs.checked_div(60)?.checked_add(1)?;
        let start_day = next_minute / 1440;
        let start_minute = (next_minute % 1440) as u32;
        for offset in 0..SEARCH_DAYS {
            let day = start_day.checked_add(offset)?;
            let (_, month, dom) = civil_from_days(day);
            let weekday = ((day + 4) % 7) as u32; // 1970-01-01 was a Thursday
            if !self.day_matches(month, dom, weekday) {
                continue;
            }
            let from = if offset == 0 { start_minute } else { 0 };
            if let Some(minute) = self.first_minute_of_day(from) {
                return day.checked_mul(86_400)?.checked_add(u64::from(minute) * 60);
            }
        }
        None
    }
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CronSchedule")
            .field("minutes", &format_args!("{:#x}", self.minutes))
            .field("hours", &format_args!("{:#x}", self.hours))
            .finish_non_exhaustive()
    }
}

fn max_days_in_month(month: u32) -> u32 {
    match month {
        2 => 29,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// (year, month 1-12, day 1-31) of a day counted from 1970-01-01 (H. Hinnant's algorithm).
pub fn civil_from_days(days: u64) -> (u64, u32, u32) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-11-21T10:07:30Z, a Saturday.
    const NOW: u64 = 1_795_255_650;

    fn at(year: u64, month: u32, day: u32, hour: u64, minute: u64) -> u64 {
        let mut days = 0u64;
        let leap =
            |y: u64| y.is_multiple_of(4) && (!y.is_multiple_of(100) || y.is_multiple_of(400));
        for y in 1970..year {
            days += if leap(y) { 366 } else { 365 };
        }
        for m in 1..month {
            days += u64::from(match m {
                2 if leap(year) => 29,
                2 => 28,
                m => max_days_in_month(m),
            });
        }
        days += u64::from(day - 1);
        days * 86_400 + hour * 3600 + minute * 60
    }

    #[test]
    fn the_reference_time_is_what_the_tests_think() {
        assert_eq!(at(2026, 11, 21, 10, 7) + 30, NOW);
        assert_eq!(civil_from_days(NOW / 86_400), (2026, 11, 21));
    }

    #[test]
    fn every_five_minutes() {
        let s = CronSchedule::parse("*/5 * * * *").unwrap();
        assert_eq!(s.next_after(NOW), Some(at(2026, 11, 21, 10, 10)));
        assert_eq!(
            s.next_after(at(2026, 11, 21, 10, 10)),
            Some(at(2026, 11, 21, 10, 15))
        );
    }

    #[test]
    fn daily_at_a_time_rolls_to_the_next_day() {
        let s = CronSchedule::parse("30 9 * * *").unwrap();
        assert_eq!(s.next_after(NOW), Some(at(2026, 11, 22, 9, 30)));
        let s = CronSchedule::parse("@daily").unwrap();
        assert_eq!(s.next_after(NOW), Some(at(2026, 11, 22, 0, 0)));
    }

    #[test]
    fn weekdays_and_month_names() {
        // Next Monday 08:00 after Saturday 21 November 2026 is 23 November.
        let s = CronSchedule::parse("0 8 * * mon-fri").unwrap();
        assert_eq!(s.next_after(NOW), Some(at(2026, 11, 23, 8, 0)));
        let s = CronSchedule::parse("0 0 1 jan *").unwrap();
        assert_eq!(s.next_after(NOW), Some(at(2027, 1, 1, 0, 0)));
        // 7 is Sunday too.
        let s = CronSchedule::parse("0 12 * * 7").unwrap();
        assert_eq!(s.next_after(NOW), Some(at(2026, 11, 22, 12, 0)));
    }

    #[test]
    fn day_of_month_or_day_of_week_when_both_are_restricted() {
        // The 1st of the month or any Tuesday: Tuesday 24 November comes first.
        let s = CronSchedule::parse("0 0 1 * tue").unwrap();
        assert_eq!(s.next_after(NOW), Some(at(2026, 11, 24, 0, 0)));
    }

    #[test]
    fn leap_day_schedules_are_found_within_the_search_bound() {
        let s = CronSchedule::parse("0 0 29 2 *").unwrap();
        assert_eq!(s.next_after(NOW), Some(at(2028, 2, 29, 0, 0)));
        // Across 2100, which is not a leap year: 2096 -> 2104.
        assert_eq!(
            s.next_after(at(2096, 3, 1, 0, 0)),
            Some(at(2104, 2, 29, 0, 0))
        );
    }

    #[test]
    fn impossible_and_malformed_expressions_are_refused_with_the_reason() {
        for (expr, needle) in [
            ("0 0 30 2 *", "never exists"),
            ("* * * *", "expected 5 fields"),
            ("61 * * * *", "minute field: 61 is outside 0-59"),
            ("*/0 * * * *", "step of 0"),
            ("5-1 * * * *", "backwards"),
            ("x * * * *", "not a number"),
            ("* * * foo *", "month field"),
        ] {
            let err = CronSchedule::parse(expr).unwrap_err().to_string();
            assert!(err.contains(needle), "{expr}: {err}");
        }
    }

    #[test]
    fn evaluation_near_the_end_of_time_does_not_overflow() {
        let s = CronSchedule::parse("* * * * *").unwrap();
        assert_eq!(s.next_after(u64::MAX), None);
        assert!(s.next_after(u64::MAX - 10_000_000_000).is_some());
    }
}
