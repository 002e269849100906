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
        console::with_writer(console::Source::Kernel, |w| {
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

/// Log a message at `level` through the `log` facade, without the `log`
/// macros' static record of each call site (target, module path, file and
/// line: 64 bytes a call), which this logger never prints. Use the
/// [`info!`](crate::info), [`warn!`](crate::warn) and [`error!`](crate::error)
/// macros.
#[inline(never)]
pub fn emit(level: Level, args: core::fmt::Arguments) {
    if level <= log::max_level() {
        log::logger().log(&Record::builder().level(level).target("kernel").args(args).build());
    }
}

/// `info!("...", args)`: see [`emit`].
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::logger::emit(log::Level::Info, format_args!($($arg)+)) };
}

/// `warn!("...", args)`: see [`emit`].
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::logger::emit(log::Level::Warn, format_args!($($arg)+)) };
}

/// `error!("...", args)`: see [`emit`].
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::logger::emit(log::Level::Error, format_args!($($arg)+)) };
}

/// `debug!("...", args)`: see [`emit`].
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::logger::emit(log::Level::Debug, format_args!($($arg)+)) };
}

/// Route `log` records to the console.
pub fn init() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(if cfg!(debug_assertions) {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    });
}
