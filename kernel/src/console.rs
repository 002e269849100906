//! The kernel console: the PL011 the device tree names.

use crate::sync::ColdMutex as Mutex;
use core::fmt;
use hal::mmio::Mmio;
use pl011::{Pl011, Registers};

struct MmioRegisters(Mmio);

impl Registers for MmioRegisters {
    fn read(&self, offset: usize) -> u32 {
        self.0.read32(offset)
    }
    fn write(&self, offset: usize, value: u32) {
        self.0.write32(offset, value)
    }
}

static CONSOLE: Mutex<Option<Pl011<MmioRegisters>>> = Mutex::new(None);

/// Use the PL011 mapped at `regs`; program its baud rate only if firmware
/// left it disabled and its clock is known.
pub fn init(regs: Mmio, clock_hz: Option<u32>, baud: Option<u32>) {
    let uart = Pl011::new(MmioRegisters(regs));
    if !uart.is_enabled() {
        uart.init(clock_hz, baud.unwrap_or(115_200));
    }
    *CONSOLE.lock() = Some(uart);
}

/// Write with the console lock held for the whole of `f`, so that lines from
/// different CPUs do not interleave.
pub fn with_writer(f: impl FnOnce(&mut dyn fmt::Write)) {
    let guard = CONSOLE.lock();
    match guard.as_ref() {
        Some(uart) => f(&mut Writer(uart)),
        None => f(&mut EarlyWriter),
    }
}

struct Writer<'a>(&'a Pl011<MmioRegisters>);

impl fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write_str(s);
        Ok(())
    }
}

/// Before the console exists the test image can still speak through
/// semihosting; the production image has nowhere to write.
struct EarlyWriter;

impl fmt::Write for EarlyWriter {
    fn write_str(&mut self, _s: &str) -> fmt::Result {
        #[cfg(feature = "ktest")]
        hal::semihosting::write(_s);
        Ok(())
    }
}

/// For fault and panic reports: writes even if another context holds the
/// console lock (it may never release it).
pub struct EmergencyWriter {
    _private: (),
}

impl EmergencyWriter {
    pub fn new() -> Self {
        EmergencyWriter { _private: () }
    }
}

impl fmt::Write for EmergencyWriter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        // Try briefly for the lock, then write without it.
        for _ in 0..100_000 {
            if let Some(guard) = CONSOLE.try_lock() {
                return match guard.as_ref() {
                    Some(uart) => {
                        uart.write_str(s);
                        Ok(())
                    }
                    None => EarlyWriter.write_str(s),
                };
            }
            core::hint::spin_loop();
        }
        // SAFETY: the lock holder is stuck (we are dying); output may
        // interleave but the UART registers tolerate concurrent writes.
        unsafe { CONSOLE.force_unlock() };
        self.write_str(s)
    }
}
