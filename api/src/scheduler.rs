//! The day's jobs on a timer (`acme serve --day-jobs`): on each business day of the platform's
//! calendar (`acme_processes::calendar`: weekdays but bank holidays, the schedule's times in
//! London time, as the processes themselves count them) settlement at the settlement time, the
//! cut-off at the cut-off and the valuation at the valuation point. A job already due when the service starts
//! (it was down at the time) runs at once; every job is idempotent per (job, date), so running
//! one again is harmless. Off by default, so that tests and demos drive the jobs themselves.

use crate::http::App;
use acme_processes::calendar::{london_date, Date, Schedule, Ts};
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

/// A job that failed (the platform did not confirm it) is tried again this much later.
const RETRY: Duration = Duration::from_secs(10);

/// The jobs of a business day, in the order they fall, with their minute of the day.
fn day_plan(s: &Schedule) -> [(&'static str, u32); 3] {
    [
        ("settlement", s.settlement_min),
        ("cut-off", s.cutoff_min),
        ("valuation", s.valuation_min),
    ]
}

/// The jobs of `now`'s date that are due by `now` (none on a day that is not a business day).
pub fn due(now: Ts, s: &Schedule) -> Vec<(&'static str, Date)> {
    let today = london_date(now);
    if !today.is_business_day() {
        return Vec::new();
    }
    day_plan(s)
        .into_iter()
        .filter(|(_, minute)| s.at(today, *minute) <= now)
        .map(|(job, _)| (job, today))
        .collect()
}

/// When the next job after `now` falls.
pub fn next_after(now: Ts, s: &Schedule) -> Ts {
    let today = london_date(now);
    let mut day = today;
    loop {
        if day.is_business_day() {
            let next = day_plan(s)
                .into_iter()
                .map(|(_, minute)| s.at(day, minute))
                .find(|at| *at > now);
            if let Some(at) = next {
                return at;
            }
        }
        day = day.next_day();
    }
}

/// Runs the jobs as they fall due, until the service stops.
pub async fn run(app: Arc<App>) {
    let schedule = Schedule::default();
    let clock = app.platform.clock();
    let mut done: BTreeSet<(&'static str, Date)> = BTreeSet::new();
    loop {
        let now = clock.now();
        let mut failed = false;
        for (job, date) in due(now, &schedule) {
            if done.contains(&(job, date)) || !app.desk.runs(job) {
                continue;
            }
            match crate::jobs::run(&app, job, date).await {
                Ok(_) => {
                    done.insert((job, date));
                }
                Err(p) => {
                    eprintln!("acme serve: day job {job} {date}: {}", p.detail);
                    failed = true;
                }
            }
        }
        // Only today's are kept: a date's jobs never fall due again once it has passed.
        done.retain(|(_, d)| *d == london_date(now));
        if failed {
            tokio::time::sleep(RETRY).await;
        } else {
            acme_runtime::sleep_until(&*clock, next_after(now, &schedule)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_fall_on_business_days_in_order_and_a_late_start_catches_up() {
        let s = Schedule::default();
        let fri = Date::from_ymd(2026, 1, 9).expect("a Friday");
        assert!(due(fri.at_minute(6 * 60), &s).is_empty());
        assert_eq!(due(fri.at_minute(7 * 60), &s), vec![("settlement", fri)]);
        let late = due(fri.at_minute(20 * 60), &s);
        assert_eq!(
            late,
            vec![("settlement", fri), ("cut-off", fri), ("valuation", fri)]
        );
        assert_eq!(
            next_after(fri.at_minute(7 * 60), &s),
            fri.at_minute(s.cutoff_min)
        );
        // After Friday's valuation: Monday's settlement, over the weekend.
        let mon = fri.add_business_days(1);
        assert_eq!(mon.to_string(), "2026-01-12");
        assert_eq!(
            next_after(fri.at_minute(18 * 60), &s),
            mon.at_minute(s.settlement_min)
        );
        assert!(
            due(fri.next_day().at_minute(20 * 60), &s).is_empty(),
            "Saturday"
        );
        // In summer the jobs fall an hour earlier in UTC; Good Friday 2026 has none.
        let thu = Date::from_ymd(2026, 4, 2).expect("a Thursday");
        assert_eq!(
            next_after(thu.at_minute(7 * 60), &s),
            thu.at_minute(s.cutoff_min - 60)
        );
        assert!(due(thu.next_day().at_minute(20 * 60), &s).is_empty());
        assert_eq!(
            next_after(thu.at_minute(18 * 60), &s),
            s.at(
                Date::from_ymd(2026, 4, 7).expect("Tuesday"),
                s.settlement_min
            )
        );
    }
}
