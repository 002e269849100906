//! Kernel panics: report with location, then stop.

use crate::{console, percpu, power};
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

static PANICKING: AtomicBool = AtomicBool::new(false);

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    hal::cpu::disable_irqs();
    let mut out = console::EmergencyWriter::new();
    if PANICKING.swap(true, Ordering::SeqCst) {
        let _ = writeln!(out, "\nKERNEL PANIC on CPU {} while panicking", percpu::index());
        power::fatal(power::Fatal::Panic);
    }
    let _ = write!(out, "\nKERNEL PANIC on CPU {}: {}", percpu::index(), info.message());
    if let Some(location) = info.location() {
        let _ = write!(out, " at {}:{}", location.file(), u64::from(location.line()));
    }
    let _ = writeln!(out);
    power::fatal(power::Fatal::Panic)
}
