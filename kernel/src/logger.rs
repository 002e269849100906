//! `log` output on the console: `[seconds.micros] LEVEL message`.

use crate::{console, time};
use log::{Level, LevelFilter, Metadata, Record};

struct ConsoleLogger;

static LOGGER: ConsoleLogger = ConsoleLogger;

impl log::Log for ConsoleLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= Level::Info || cfg!(debug_assertions)
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let micros = time::uptime_micros();
        console::with_writer(|w| {
            let _ = writeln!(
                w,
                "[{:5}.{:06}] {:<5} {}",
                micros / 1_000_000,
                micros % 1_000_000,
                record.level(),
                record.args()
            );
        });
    }

    fn flush(&self) {}
}

/// Route `log` macros to the console.
pub fn init() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(if cfg!(debug_assertions) {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    });
}
