//! Budget periods on UTC calendar boundaries, from Unix seconds, without a date library.

use zentinel_config::model::BudgetPeriod;

const HOUR: u64 = 3600;
const DAY: u64 = 86_400;

/// The start of the period that holds `unix` (seconds since 1970-01-01T00:00:00Z).
pub(crate) fn start(period: BudgetPeriod, unix: u64) -> u64 {
    match period {
        BudgetPeriod::Hourly => unix - unix % HOUR,
        BudgetPeriod::Daily => unix - unix % DAY,
        BudgetPeriod::Monthly => {
            let (y, m, _) = civil(unix / DAY);
            days_from_civil(y, m, 1) * DAY
        }
    }
}

/// The start of the next period after the one that holds `unix`.
pub(crate) fn end(period: BudgetPeriod, unix: u64) -> u64 {
    match period {
        BudgetPeriod::Hourly => start(period, unix) + HOUR,
        BudgetPeriod::Daily => start(period, unix) + DAY,
        BudgetPeriod::Monthly => {
            let (y, m, _) = civil(unix / DAY);
            let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            days_from_civil(y, m, 1) * DAY
        }
    }
}

/// (year, month 1–12, day 1–31) of a day counted from 1970-01-01 (H. Hinnant's algorithm).
fn civil(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// Days from 1970-01-01 to a date on or after it.
fn days_from_civil(y: u64, m: u64, d: u64) -> u64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-04T20:30:15Z.
    const NOW: u64 = 1_796_416_215;

    #[test]
    fn calendar_round_trips_for_every_day_of_four_centuries() {
        for days in (0..146_097 * 2).step_by(7) {
            let (y, m, d) = civil(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(NOW / DAY), (2026, 12, 4));
        assert_eq!(civil(days_from_civil(2024, 2, 29)), (2024, 2, 29));
    }

    #[test]
    fn periods_start_and_end_on_utc_boundaries() {
        use BudgetPeriod::{Daily, Hourly, Monthly};
        assert_eq!(start(Hourly, NOW), NOW - 30 * 60 - 15);
        assert_eq!(end(Hourly, NOW), NOW - 30 * 60 - 15 + HOUR);
        assert_eq!(start(Daily, NOW), days_from_civil(2026, 12, 4) * DAY);
        assert_eq!(end(Daily, NOW), days_from_civil(2026, 12, 5) * DAY);
        assert_eq!(start(Monthly, NOW), days_from_civil(2026, 12, 1) * DAY);
        assert_eq!(end(Monthly, NOW), days_from_civil(2027, 1, 1) * DAY);
        let feb = days_from_civil(2028, 2, 10) * DAY;
        assert_eq!(
            end(Monthly, feb) - start(Monthly, feb),
            29 * DAY,
            "leap year"
        );
        let last = end(Monthly, NOW) - 1;
        assert_eq!(start(Monthly, last), start(Monthly, NOW));
    }
}
