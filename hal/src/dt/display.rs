//! Human-readable summaries (`cargo xtask dt FILE.dtb`, boot logs).

use super::{EnableMethod, GicVersion, Machine, PsciConduit, Region, ReservedKind};
use core::fmt;

/// A byte count in the largest exact binary unit.
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 4] = [(1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
        match UNITS
            .iter()
            .find(|(unit, _)| self.0 >= *unit && self.0.is_multiple_of(*unit))
        {
            Some((unit, name)) => write!(f, "{} {name}", self.0 / unit),
            None => write!(f, "{:#x} bytes", self.0),
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}..{:#x} ({})", self.base, self.end(), Size(self.size))
    }
}

impl fmt::Display for PsciConduit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PsciConduit::Hvc => "hvc",
            PsciConduit::Smc => "smc",
        })
    }
}

impl fmt::Display for EnableMethod<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnableMethod::Psci => f.write_str("psci"),
            EnableMethod::SpinTable { release_addr } => write!(f, "spin-table @ {release_addr:#x}"),
            EnableMethod::Other(m) => write!(f, "\"{m}\" (not supported)"),
            EnableMethod::None => f.write_str("none"),
        }
    }
}

impl fmt::Display for Machine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "model       {}", self.model)?;
        if self.compatible != self.model {
            write!(f, " ({})", self.compatible)?;
        }
        writeln!(f)?;

        match self.memory.len() {
            0 => writeln!(f, "memory      none")?,
            n => writeln!(f, "memory      {} in {n} region(s)", Size(self.memory_total()))?,
        }
        for r in &self.memory {
            writeln!(f, "            {r}")?;
        }
        if self.reserved.is_empty() {
            writeln!(f, "reserved    none")?;
        }
        for (i, r) in self.reserved.iter().enumerate() {
            let label = if i == 0 { "reserved" } else { "" };
            let kind = match r.kind {
                ReservedKind::MemReserve => "memreserve",
                ReservedKind::ReservedMemory => "reserved-memory",
            };
            let no_map = if r.no_map { ", no-map" } else { "" };
            writeln!(f, "{label:<11} {} {kind} {}{no_map}", r.region, r.name)?;
        }
        match self.initrd {
            Some(r) => writeln!(f, "initrd      {r}")?,
            None => writeln!(f, "initrd      none")?,
        }
        writeln!(f, "bootargs    \"{}\"", self.bootargs)?;

        match &self.console {
            Some(c) => {
                write!(f, "console     PL011 {} at {}", c.path, c.regs)?;
                match c.irq {
                    Some(irq) => write!(f, ", INTID {irq}")?,
                    None => write!(f, ", no interrupt")?,
                }
                if let Some(hz) = c.clock_hz {
                    write!(f, ", clock {hz} Hz")?;
                }
                match c.baud {
                    Some(baud) => writeln!(f, ", {baud} baud")?,
                    None => writeln!(f, ", baud as set by firmware")?,
                }
            }
            None => writeln!(f, "console     none")?,
        }

        match &self.gic {
            Some(g) => {
                let v = if g.version == GicVersion::V2 { 2 } else { 3 };
                write!(
                    f,
                    "gic         GICv{v} ({}): GICD {:#x}",
                    g.compatible, g.distributor.base
                )?;
                if let Some(c) = g.cpu_interface {
                    write!(f, ", GICC {:#x}", c.base)?;
                }
                for r in &g.redistributors {
                    write!(f, ", GICR {r}")?;
                }
                if let Some(stride) = g.redistributor_stride {
                    write!(f, ", stride {stride:#x}")?;
                }
                writeln!(f)?;
            }
            None => writeln!(f, "gic         none")?,
        }

        match &self.timer {
            Some(t) => {
                write!(
                    f,
                    "timer       {}: phys INTID {}, virt INTID {}",
                    t.compatible, t.phys_irq, t.virt_irq
                )?;
                if let Some(hyp) = t.hyp_irq {
                    write!(f, ", hyp INTID {hyp}")?;
                }
                match t.frequency {
                    Some(hz) => writeln!(f, ", {hz} Hz (clock-frequency)")?,
                    None => writeln!(f, ", frequency from CNTFRQ_EL0")?,
                }
            }
            None => writeln!(f, "timer       none")?,
        }

        writeln!(f, "cpus        {}", self.cpus.len())?;
        for cpu in &self.cpus {
            write!(f, "            MPIDR {:#x} {} ", cpu.mpidr, cpu.compatible)?;
            match (cpu.enable, &self.psci) {
                (EnableMethod::Psci, Some(p)) => writeln!(f, "psci ({})", p.conduit)?,
                (EnableMethod::Psci, None) => writeln!(f, "psci (but no PSCI node)")?,
                (method, _) => writeln!(f, "{method}")?,
            }
        }

        match &self.psci {
            Some(p) => {
                write!(
                    f,
                    "psci        PSCI {} via {} ({}): CPU_ON {:#x}, CPU_OFF {:#x}",
                    p.version(),
                    p.conduit,
                    p.compatible,
                    p.cpu_on,
                    p.cpu_off
                )?;
                match p.system_off {
                    Some(id) => writeln!(f, ", SYSTEM_OFF {id:#x}")?,
                    None => writeln!(f)?,
                }
            }
            None => writeln!(f, "psci        none")?,
        }

        for (i, issue) in self.issues.iter().enumerate() {
            let label = if i == 0 { "problems" } else { "" };
            writeln!(f, "{label:<11} {}: {issue}", issue.part)?;
        }
        match self.check_bootable() {
            Ok(()) => write!(f, "bootable    yes"),
            Err(e) => write!(f, "bootable    NO: {e}"),
        }
    }
}
