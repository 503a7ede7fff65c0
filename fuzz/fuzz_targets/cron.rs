//! Cron expressions from manifests: parsing never panics, and evaluation is bounded and moves
//! forward in time.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wetee_types::cron::CronSchedule;

fuzz_target!(|input: (&str, u64)| {
    let (expression, after) = input;
    if let Ok(schedule) = CronSchedule::parse(expression) {
        if let Some(next) = schedule.next_after(after) {
            assert!(next > after);
            assert_eq!(next % 60, 0);
        }
    }
});
