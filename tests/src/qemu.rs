//! Where every QEMU command line the project runs begins.
//!
//! `cargo xtask run`, `test`, `bench`, `dt`, the firmware boots and the
//! harness's device-tree dumps all start from [`Machine::args`], which puts
//! `-nodefaults` first: QEMU then adds no device of its own, and each command
//! names exactly the devices it needs. Without it `-M virt` adds a PCI
//! network card whose option ROM (`efi-virtio.rom`) comes from Debian's
//! `ipxe-qemu`, a package that `apt-get install --no-install-recommends
//! qemu-system-arm` skips, and QEMU then refuses to start. `-nodefaults` also
//! drops the default serial port, monitor and display, so the console is
//! always named too ([`Console`]).

/// The QEMU program.
pub const PROGRAM: &str = "qemu-system-aarch64";

/// What `-M`, `-cpu`, `-smp` and `-m` say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Machine<'a> {
    pub machine: &'a str,
    pub cpu: Option<&'a str>,
    pub smp: Option<u32>,
    pub mem: Option<&'a str>,
}

impl Machine<'_> {
    /// `-nodefaults -M MACHINE [-cpu CPU] [-smp N] [-m MEM]`.
    pub fn args(&self) -> Vec<String> {
        let mut a = vec!["-nodefaults".to_string(), "-M".to_string(), self.machine.to_string()];
        if let Some(cpu) = self.cpu {
            a.extend(["-cpu".to_string(), cpu.to_string()]);
        }
        if let Some(n) = self.smp {
            a.extend(["-smp".to_string(), n.to_string()]);
        }
        if let Some(m) = self.mem {
            a.extend(["-m".to_string(), m.to_string()]);
        }
        a
    }
}

/// Where the first serial port (the kernel's console) goes. There is never
/// a display window or a monitor unless a caller adds one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    /// On stdin/stdout (the harness reads it).
    Stdio,
    /// On stdin/stdout multiplexed with the monitor: `Ctrl-A X` quits,
    /// `Ctrl-A C` switches to the monitor (`cargo xtask run`).
    Terminal,
    /// Nowhere (QEMU runs only to dump its device tree).
    Null,
}

impl Console {
    pub fn args(self) -> [&'static str; 4] {
        let serial = match self {
            Console::Stdio => "stdio",
            Console::Terminal => "mon:stdio",
            Console::Null => "null",
        };
        ["-display", "none", "-serial", serial]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_machine_line_starts_without_defaults() {
        let m = Machine {
            machine: "virt",
            cpu: Some("cortex-a53"),
            smp: Some(2),
            mem: Some("1G"),
        };
        assert_eq!(
            m.args(),
            [
                "-nodefaults",
                "-M",
                "virt",
                "-cpu",
                "cortex-a53",
                "-smp",
                "2",
                "-m",
                "1G"
            ]
        );
        assert_eq!(
            Machine {
                machine: "raspi4b",
                ..Default::default()
            }
            .args(),
            ["-nodefaults", "-M", "raspi4b"]
        );
    }

    #[test]
    fn the_console_is_always_named() {
        assert_eq!(Console::Stdio.args(), ["-display", "none", "-serial", "stdio"]);
        assert_eq!(Console::Terminal.args()[3], "mon:stdio");
        assert_eq!(Console::Null.args()[3], "null");
    }
}
