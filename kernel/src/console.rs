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

/// Who writes: the kernel itself (its log) or a task (through its console
/// capability; the kernel's task id).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Source {
    Kernel,
    Task(crate::object::Id),
}

struct Console {
    uart: Option<Pl011<MmioRegisters>>,
    /// The writer whose last line is unfinished (no newline yet), if any.
    open_line: Option<Source>,
}

static CONSOLE: Mutex<Console> = Mutex::new(Console {
    uart: None,
    open_line: None,
});

/// Use the PL011 mapped at `regs`; program its baud rate only if firmware
/// left it disabled and its clock is known.
pub fn init(regs: Mmio, clock_hz: Option<u32>, baud: Option<u32>) {
    let uart = Pl011::new(MmioRegisters(regs));
    if !uart.is_enabled() {
        uart.init(clock_hz, baud.unwrap_or(115_200));
    }
    CONSOLE.lock().uart = Some(uart);
}

/// Write as `source` with the console lock held for the whole of `f`, so
/// that lines from different CPUs do not interleave. If another writer left
/// its line unfinished (a shell's prompt, say), this one starts on a line of
/// its own: a line holds one writer's text.
pub fn with_writer(source: Source, f: impl FnOnce(&mut dyn fmt::Write)) {
    let mut guard = CONSOLE.lock();
    let console = &mut *guard;
    let mut line = LineEnd {
        newline: true,
        wrote: false,
    };
    match console.uart.as_ref() {
        Some(uart) => {
            let mut out = Writer { uart, line: &mut line };
            if console.open_line.is_some_and(|open| open != source) {
                let _ = fmt::Write::write_str(&mut out, "\n");
            }
            f(&mut out);
        }
        None => f(&mut EarlyWriter),
    }
    if line.wrote {
        console.open_line = (!line.newline).then_some(source);
    }
}

/// Whether the last byte written ended a line.
struct LineEnd {
    newline: bool,
    wrote: bool,
}

struct Writer<'a> {
    uart: &'a Pl011<MmioRegisters>,
    line: &'a mut LineEnd,
}

impl fmt::Write for Writer<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if let Some(&last) = s.as_bytes().last() {
            self.uart.write_str(s);
            *self.line = LineEnd {
                newline: last == b'\n',
                wrote: true,
            };
        }
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
                return match guard.uart.as_ref() {
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
