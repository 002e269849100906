//! Every boot case and device-tree case, as data. This is the one place to
//! read (or extend) what `cargo xtask test` checks beyond the unit tests.
//!
//! Boot cases run QEMU with `-semihosting -display none -serial stdio
//! -monitor none` plus the fields below; see `runner::qemu_command`.

use crate::fdt::Select;

/// Which kernel image a boot case runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Image {
    /// `target/kestrel/kernel-test.img` (`--features ktest`).
    Test,
    /// `target/kestrel/kernel.img`.
    Production,
}

/// How the kernel reaches the machine (see `media`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boot {
    /// QEMU loads the image itself (`-kernel`).
    Direct,
    /// AAVMF (UEFI) starts it as `EFI/BOOT/BOOTAA64.EFI` from an ESP.
    Uefi,
    /// U-Boot's distro boot finds it through `extlinux/extlinux.conf` on a
    /// disk image; `append` becomes the APPEND line.
    UBoot,
    /// The Raspberry Pi 4 SD card image is built, and the kernel and device
    /// tree (with config.txt's overlay applied) are copied out of it and
    /// booted on raspi4b, as the Pi's firmware would.
    RpiSdCard,
}

/// How a (possibly broken) device tree is derived from a good one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    None,
    /// Remove the matching nodes (the tree is re-serialised).
    Remove(Select),
    /// Overwrite the matching nodes with FDT_NOP tokens, in place (in the
    /// compacted tree).
    Nop(Select),
    /// Set the root `#address-cells` (so `reg`s no longer fit).
    RootAddressCells(u32),
    /// Cut the (compacted) tree in half.
    Truncate,
    /// Corrupt the magic number.
    BadMagic,
    /// Not a tree at all: an empty file.
    Empty,
}

/// The device tree given to QEMU with `-dtb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtb {
    /// No `-dtb`: QEMU's own tree on virt, no tree at all on raspi4b.
    Builtin,
    /// The fetched Raspberry Pi 4 tree (`target/cache/bcm2711-rpi-4-b.dtb`).
    Rpi4,
    /// QEMU's virt tree for the same -M/-cpu/-smp/-m (`-machine dumpdtb=`), edited.
    Virt(Edit),
}

/// How QEMU must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// QEMU exits by itself with this status (semihosting exit or PSCI off).
    Code(i32),
    /// QEMU keeps running (production image idles); it is killed once every
    /// expectation is met.
    Running,
    /// Either: killed once every expectation is met, or exits by itself
    /// with this status first (the production image powers off when init
    /// exits).
    RunningOr(i32),
}

/// What the banner must say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Banner {
    /// Online and total CPUs.
    pub cpus: u32,
    /// Inclusive range for "N MiB RAM usable" (usable is a little below the total).
    pub ram_mib: (u64, u64),
    pub gic: u8,
}

#[derive(Debug, Clone, Copy)]
pub struct BootCase {
    pub name: &'static str,
    pub image: Image,
    pub boot: Boot,
    /// `-M` value.
    pub machine: &'static str,
    pub cpu: Option<&'static str>,
    pub smp: Option<u32>,
    pub mem: Option<&'static str>,
    pub dtb: Dtb,
    /// `-append` (kernel bootargs).
    pub append: Option<&'static str>,
    /// Regexes that must each match some console line (stdout or stderr).
    /// A fatal marker (`KERNEL PANIC`, ...) written here is no longer forbidden.
    pub expect: &'static [&'static str],
    /// Extra regexes that must not match any line (on top of the fatal markers).
    pub forbid: &'static [&'static str],
    pub exit: Exit,
    /// Require `ktest: result: N passed, 0 failed` (consistent with the test lines).
    pub ktest: bool,
    pub banner: Option<Banner>,
    pub timeout_s: u64,
    /// Run with `-semihosting` (all cases but one that proves an exit did
    /// not go through semihosting).
    pub semihosting: bool,
}

/// A run of `cargo xtask dt FILE` on the host.
#[derive(Debug, Clone, Copy)]
pub struct DtCase {
    pub name: &'static str,
    pub tree: Tree,
    pub edit: Edit,
    /// Must exit 0 and print the summary (true) or exit non-zero with `error:` (false).
    pub ok: bool,
    /// Regexes the output (stdout+stderr) must match.
    pub expect: &'static [&'static str],
}

/// Where a DtCase's tree comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tree {
    /// Dumped from QEMU virt (`-M MACHINE -cpu CPU -smp N -m MEM`).
    Virt {
        machine: &'static str,
        cpu: &'static str,
        smp: u32,
        mem: &'static str,
    },
    /// The Pi 4 tree as shipped (Debian kernel package).
    Rpi4,
    /// The Pi 4 tree as QEMU's raspi4b hands it to the kernel (memory filled in).
    Rpi4Booted,
}

pub const GIC: &[&str] = &["arm,gic-v3", "arm,cortex-a15-gic", "arm,gic-400"];
pub const TIMER: &[&str] = &["arm,armv8-timer", "arm,armv7-timer"];
pub const PL011: &[&str] = &["arm,pl011"];

/// Defaults for a ktest-image case on virt: all tests must pass and the
/// image must exit 0 through semihosting.
pub const KTEST: BootCase = BootCase {
    name: "",
    image: Image::Test,
    boot: Boot::Direct,
    machine: "virt,gic-version=3",
    cpu: Some("cortex-a72"),
    smp: Some(1),
    mem: Some("128M"),
    dtb: Dtb::Builtin,
    append: None,
    expect: &[],
    forbid: &[],
    exit: Exit::Code(0),
    ktest: true,
    banner: None,
    timeout_s: 60,
    semihosting: true,
};

/// A deliberate crash: the report is checked, not the tests.
const CRASH: BootCase = BootCase {
    machine: "virt,gic-version=3,virtualization=on",
    smp: Some(2),
    mem: Some("256M"),
    ktest: false,
    timeout_s: 30,
    ..KTEST
};

/// A broken device tree: the kernel must say so and exit 103, never panic.
/// Each case names the reason it expects, so one failure cannot pass for another.
const BAD_DT: BootCase = BootCase {
    expect: &[r"BOOT ERROR: \S"],
    exit: Exit::Code(103),
    ktest: false,
    timeout_s: 30,
    ..KTEST
};

const MIB_128: (u64, u64) = (96, 128);
const GIB_2: (u64, u64) = (1984, 2048);

pub static BOOT_CASES: &[BootCase] = &[
    // ---- ktest image on virt: GICv2/v3 x 1/4 CPUs x EL1/EL2 entry, 128M/2G RAM.
    BootCase {
        name: "ktest-virt-gicv3-el2-smp4-2g",
        machine: "virt,gic-version=3,virtualization=on",
        smp: Some(4),
        mem: Some("2G"),
        banner: Some(Banner {
            cpus: 4,
            ram_mib: GIB_2,
            gic: 3,
        }),
        ..KTEST
    },
    BootCase {
        name: "ktest-virt-gicv3-el1-smp1-128m",
        machine: "virt,gic-version=3",
        banner: Some(Banner {
            cpus: 1,
            ram_mib: MIB_128,
            gic: 3,
        }),
        ..KTEST
    },
    BootCase {
        name: "ktest-virt-gicv3-el1-smp4-2g-a53",
        machine: "virt,gic-version=3",
        cpu: Some("cortex-a53"),
        smp: Some(4),
        mem: Some("2G"),
        banner: Some(Banner {
            cpus: 4,
            ram_mib: GIB_2,
            gic: 3,
        }),
        ..KTEST
    },
    BootCase {
        name: "ktest-virt-gicv3-el2-smp1-128m-a57",
        machine: "virt,gic-version=3,virtualization=on",
        cpu: Some("cortex-a57"),
        banner: Some(Banner {
            cpus: 1,
            ram_mib: MIB_128,
            gic: 3,
        }),
        ..KTEST
    },
    BootCase {
        name: "ktest-virt-gicv2-el2-smp1-2g-a53",
        machine: "virt,gic-version=2,virtualization=on",
        cpu: Some("cortex-a53"),
        mem: Some("2G"),
        banner: Some(Banner {
            cpus: 1,
            ram_mib: GIB_2,
            gic: 2,
        }),
        ..KTEST
    },
    BootCase {
        name: "ktest-virt-gicv2-el1-smp4-128m-a57",
        machine: "virt,gic-version=2",
        cpu: Some("cortex-a57"),
        smp: Some(4),
        banner: Some(Banner {
            cpus: 4,
            ram_mib: MIB_128,
            gic: 2,
        }),
        ..KTEST
    },
    BootCase {
        name: "ktest-virt-gicv2-el2-smp4-128m",
        machine: "virt,gic-version=2,virtualization=on",
        smp: Some(4),
        banner: Some(Banner {
            cpus: 4,
            ram_mib: MIB_128,
            gic: 2,
        }),
        ..KTEST
    },
    BootCase {
        name: "ktest-virt-gicv2-el1-smp1-2g",
        machine: "virt,gic-version=2",
        mem: Some("2G"),
        banner: Some(Banner {
            cpus: 1,
            ram_mib: GIB_2,
            gic: 2,
        }),
        ..KTEST
    },
    // ---- ktest image on the Raspberry Pi 4 (fixed 2 GiB, 4 CPUs via spin-table,
    // GIC-400). QEMU's tree only describes the low 960 MiB (memory@0) — the
    // upper GiB is not added by QEMU 10 — hence the wide RAM range.
    BootCase {
        name: "ktest-raspi4b",
        machine: "raspi4b",
        cpu: None,
        smp: None,
        mem: None,
        dtb: Dtb::Rpi4,
        banner: Some(Banner {
            cpus: 4,
            ram_mib: (900, 2048),
            gic: 2,
        }),
        timeout_s: 90,
        ..KTEST
    },
    // A CPU with PAN (ARMv8.1+): the kernel must turn it on (a ktest checks
    // PSTATE.PAN against ID_AA64MMFR1_EL1), and user space must still work.
    BootCase {
        name: "utest-virt-cpu-max-pan",
        machine: "virt,gic-version=3",
        cpu: Some("max"),
        smp: Some(2),
        mem: Some("512M"),
        append: Some("utest=basic,iso"),
        expect: &[
            r"pan_is_on_where_the_cpu_has_it \.\.\. ok",
            r"^utest: result: \d+ passed, 0 failed$",
        ],
        forbid: &[r"^utest: .* FAILED"],
        timeout_s: 120,
        ..KTEST
    },
    // ---- user space: after the kernel tests pass, init runs every test-*
    // program of the boot archive (isolation, capabilities, IPC, faults,
    // SMP stress, the hostile fuzzer); each must pass and return its memory.
    BootCase {
        name: "utest-virt-gicv2-smp1",
        machine: "virt,gic-version=2",
        smp: Some(1),
        mem: Some("1G"),
        append: Some("utest"),
        expect: &[
            r"^utest: result: \d+ passed, 0 failed$",
            r"utest: test-hostile \.\.\. ok",
        ],
        forbid: &[r"^utest: .* FAILED"],
        timeout_s: 120,
        ..KTEST
    },
    BootCase {
        name: "utest-virt-gicv3-el2-smp4",
        machine: "virt,gic-version=3,virtualization=on",
        smp: Some(4),
        mem: Some("1G"),
        append: Some("utest"),
        expect: &[
            r"^utest: result: \d+ passed, 0 failed$",
            r"utest: test-smp-stress \.\.\. ok",
        ],
        forbid: &[r"^utest: .* FAILED"],
        timeout_s: 240,
        ..KTEST
    },
    BootCase {
        name: "utest-virt-gicv3-smp8",
        machine: "virt,gic-version=3",
        smp: Some(8),
        mem: Some("1G"),
        append: Some("utest"),
        expect: &[
            r"^utest: result: \d+ passed, 0 failed$",
            r"utest: test-smp-stress \.\.\. ok",
        ],
        forbid: &[r"^utest: .* FAILED"],
        timeout_s: 300,
        ..KTEST
    },
    BootCase {
        name: "utest-raspi4b",
        machine: "raspi4b",
        cpu: None,
        smp: None,
        mem: None,
        dtb: Dtb::Rpi4,
        append: Some("utest"),
        expect: &[r"^utest: result: \d+ passed, 0 failed$"],
        forbid: &[r"^utest: .* FAILED"],
        timeout_s: 300,
        ..KTEST
    },
    // ---- as on real devices: through UEFI or U-Boot, or from the Pi 4 SD
    // card image. Firmware boots take seconds each: keep these few.
    BootCase {
        name: "uefi-ktest-virt-gicv3-el2-smp4-2g",
        boot: Boot::Uefi,
        // AAVMF hands over a device tree only without ACPI.
        machine: "virt,gic-version=3,virtualization=on,acpi=off",
        smp: Some(4),
        mem: Some("2G"),
        expect: &[
            r"Kestrel: started by UEFI",
            r"mm: RAM from the UEFI memory map \(\d+ ranges\)",
        ],
        banner: Some(Banner {
            cpus: 4,
            ram_mib: GIB_2,
            gic: 3,
        }),
        timeout_s: 120,
        ..KTEST
    },
    BootCase {
        name: "uefi-acpi-only",
        boot: Boot::Uefi,
        machine: "virt,gic-version=3,acpi=on",
        mem: Some("512M"),
        expect: &[r"Kestrel needs a device tree; this firmware offers only ACPI\. On QEMU use -M virt,acpi=off"],
        forbid: &[r"Kestrel v\S+ booted"],
        exit: Exit::Running,
        ktest: false,
        timeout_s: 90,
        ..KTEST
    },
    BootCase {
        name: "uboot-ktest-virt-gicv3-el1-smp2",
        boot: Boot::UBoot,
        smp: Some(2),
        mem: Some("1G"),
        append: Some("kestrel.loader=u-boot console=ttyAMA0"),
        expect: &[r#"boot: bootargs "kestrel\.loader=u-boot console=ttyAMA0""#],
        banner: Some(Banner {
            cpus: 2,
            ram_mib: (960, 1024),
            gic: 3,
        }),
        timeout_s: 90,
        ..KTEST
    },
    BootCase {
        name: "rpi4-sdcard-ktest",
        boot: Boot::RpiSdCard,
        machine: "raspi4b",
        cpu: None,
        smp: None,
        mem: None,
        banner: Some(Banner {
            cpus: 4,
            ram_mib: (900, 2048),
            gic: 2,
        }),
        timeout_s: 90,
        ..KTEST
    },
    // ---- production image: banner, no fatal line, then killed — or a clean
    // power-off (exit 0) when init exits first.
    BootCase {
        name: "prod-virt-gicv3-el2-smp4-2g",
        image: Image::Production,
        machine: "virt,gic-version=3,virtualization=on",
        smp: Some(4),
        mem: Some("2G"),
        expect: &[r"Kestrel v\S+ booted on "],
        exit: Exit::RunningOr(0),
        ktest: false,
        banner: Some(Banner {
            cpus: 4,
            ram_mib: GIB_2,
            gic: 3,
        }),
        ..KTEST
    },
    // ---- ways out. Without -semihosting a semihosting exit would fault
    // (HLT #0xF000 is undefined then), so exit 0 can only be PSCI SYSTEM_OFF.
    BootCase {
        name: "ktest-exit-psci",
        machine: "virt,gic-version=3,virtualization=on",
        smp: Some(2),
        append: Some("ktest.exit=psci"),
        semihosting: false,
        banner: Some(Banner {
            cpus: 2,
            ram_mib: MIB_128,
            gic: 3,
        }),
        ..KTEST
    },
    BootCase {
        name: "crash-panic",
        append: Some("ktest.crash=panic"),
        expect: &[r"KERNEL PANIC on CPU \d+: .+ at \S+:\d+"],
        exit: Exit::Code(101),
        ..CRASH
    },
    BootCase {
        name: "crash-null",
        append: Some("ktest.crash=null"),
        expect: &[r"KERNEL FAULT on CPU \d+: .*Data Abort", r"FAR\s*[=:]?\s*(0x)?0+\b"],
        exit: Exit::Code(102),
        ..CRASH
    },
    BootCase {
        name: "crash-stack",
        append: Some("ktest.crash=stack"),
        expect: &[r"KERNEL FAULT on CPU \d+: ", r"(?i)stack overflow"],
        exit: Exit::Code(102),
        ..CRASH
    },
    BootCase {
        name: "crash-undef",
        append: Some("ktest.crash=undef"),
        expect: &[r"KERNEL FAULT on CPU \d+: .*(?i:undefined|unknown)"],
        exit: Exit::Code(102),
        ..CRASH
    },
    // ---- broken device trees (derived from QEMU's own virt tree).
    BootCase {
        name: "baddt-no-gic",
        dtb: Dtb::Virt(Edit::Remove(Select::Compatible(GIC))),
        expect: &[r"BOOT ERROR: .*(?i:interrupt controller|gic)"],
        ..BAD_DT
    },
    BootCase {
        name: "baddt-no-timer",
        machine: "virt,gic-version=2",
        dtb: Dtb::Virt(Edit::Remove(Select::Compatible(TIMER))),
        expect: &[r"BOOT ERROR: .*(?i:timer)"],
        ..BAD_DT
    },
    // No UART left: the test image also prints the error through semihosting.
    BootCase {
        name: "baddt-no-uart",
        dtb: Dtb::Virt(Edit::Remove(Select::Compatible(PL011))),
        expect: &[r"BOOT ERROR: .*(?i:console|uart|pl011)"],
        ..BAD_DT
    },
    BootCase {
        name: "baddt-root-address-cells",
        dtb: Dtb::Virt(Edit::RootAddressCells(1)),
        expect: &[r"BOOT ERROR: .*(?i:address-cells|\breg\b)"],
        ..BAD_DT
    },
    BootCase {
        name: "baddt-nop-cpus",
        smp: Some(2),
        dtb: Dtb::Virt(Edit::Nop(Select::Path("/cpus"))),
        expect: &[r"BOOT ERROR: .*(?i:cpu)"],
        ..BAD_DT
    },
    // raspi4b without -dtb: x0 holds no tree at all.
    BootCase {
        name: "baddt-raspi4b-no-dtb",
        machine: "raspi4b",
        cpu: None,
        smp: None,
        mem: None,
        expect: &[r"BOOT ERROR: .*(?i:device tree|dtb)"],
        ..BAD_DT
    },
];

const VIRT3: Tree = Tree::Virt {
    machine: "virt,gic-version=3,virtualization=on",
    cpu: "cortex-a72",
    smp: 4,
    mem: "2G",
};
const VIRT2: Tree = Tree::Virt {
    machine: "virt,gic-version=2",
    cpu: "cortex-a53",
    smp: 1,
    mem: "128M",
};

const DT_OK: DtCase = DtCase {
    name: "",
    tree: VIRT3,
    edit: Edit::None,
    ok: true,
    expect: &[],
};

const DT_BAD: DtCase = DtCase {
    expect: &[r"^error: \S"],
    ok: false,
    ..DT_OK
};

/// `cargo xtask dt` prints `hal::dt`'s summary: one `key   value` line per
/// part (model, memory, console, gic, timer, cpus, psci, bootable).
pub static DT_CASES: &[DtCase] = &[
    DtCase {
        name: "dt-virt-gicv3-el2-smp4-2g",
        expect: &[
            r"^memory\s+2 GiB\b",
            r"^console\s+PL011 ",
            r"^gic\s+GICv3 ",
            r"^timer\s+arm,armv8-timer",
            r"^cpus\s+4$",
            r"^psci\s+.* via smc",
            r"^bootable\s+yes",
        ],
        ..DT_OK
    },
    DtCase {
        name: "dt-virt-gicv2-smp1-128m",
        tree: VIRT2,
        expect: &[
            r"^memory\s+128 MiB\b",
            r"^gic\s+GICv2 ",
            r"^cpus\s+1$",
            r"^psci\s+.* via hvc",
            r"^bootable\s+yes",
        ],
        ..DT_OK
    },
    // The Pi 4 tree as QEMU's raspi4b passes it (memory filled in).
    DtCase {
        name: "dt-rpi4-as-booted",
        tree: Tree::Rpi4Booted,
        expect: &[
            r"^model\s+Raspberry Pi 4",
            r"^memory\s+960 MiB\b",
            r"^console\s+PL011 /soc/serial@7e201000",
            r"^gic\s+GICv2 \(arm,gic-400\)",
            r"^cpus\s+4$",
            r"spin-table @ 0xd8",
            r"^bootable\s+yes",
        ],
        ..DT_OK
    },
    // The Pi 4 tree as shipped: everything is read, but /memory has size 0
    // (the firmware fills it in), so it is rightly not bootable as is.
    DtCase {
        name: "dt-rpi4-as-shipped",
        tree: Tree::Rpi4,
        expect: &[
            r"^model\s+Raspberry Pi 4",
            r"^gic\s+GICv2 \(arm,gic-400\)",
            r"^cpus\s+4$",
            r"^error: .*memory.*zero-sized",
        ],
        ..DT_BAD
    },
    DtCase {
        name: "dt-nop-unused-node",
        // NOPs are legal anywhere: NOP-ing a node the kernel does not use changes nothing.
        edit: Edit::Nop(Select::Path("/pl061")),
        expect: &[r"^bootable\s+yes"],
        ..DT_OK
    },
    DtCase {
        name: "dt-truncated",
        edit: Edit::Truncate,
        ..DT_BAD
    },
    DtCase {
        name: "dt-bad-magic",
        edit: Edit::BadMagic,
        ..DT_BAD
    },
    DtCase {
        name: "dt-empty-file",
        edit: Edit::Empty,
        ..DT_BAD
    },
    DtCase {
        name: "dt-no-memory",
        edit: Edit::Remove(Select::DeviceType("memory")),
        expect: &[r"^error: .*memory"],
        ..DT_BAD
    },
    DtCase {
        name: "dt-no-cpus",
        edit: Edit::Remove(Select::Path("/cpus")),
        expect: &[r"^error: .*(?i)cpu"],
        ..DT_BAD
    },
    DtCase {
        name: "dt-nop-cpus",
        edit: Edit::Nop(Select::Path("/cpus")),
        expect: &[r"^error: .*(?i)cpu"],
        ..DT_BAD
    },
    DtCase {
        name: "dt-no-gic",
        edit: Edit::Remove(Select::Compatible(GIC)),
        expect: &[r"^error: .*(?i)gic"],
        ..DT_BAD
    },
    DtCase {
        name: "dt-root-address-cells",
        edit: Edit::RootAddressCells(1),
        ..DT_BAD
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_unique_and_regexes_compile() {
        let mut seen = HashSet::new();
        for c in BOOT_CASES {
            assert!(seen.insert(c.name), "duplicate {}", c.name);
            for re in c.expect.iter().chain(c.forbid) {
                regex_lite::Regex::new(re).unwrap_or_else(|e| panic!("{}: {re}: {e}", c.name));
            }
        }
        for c in DT_CASES {
            assert!(seen.insert(c.name), "duplicate {}", c.name);
            for re in c.expect {
                regex_lite::Regex::new(re).unwrap_or_else(|e| panic!("{}: {re}: {e}", c.name));
            }
        }
    }

    #[test]
    fn required_coverage() {
        let ktest_virt: Vec<_> = BOOT_CASES
            .iter()
            .filter(|c| c.ktest && c.machine.starts_with("virt"))
            .collect();
        for gic in ["gic-version=2", "gic-version=3"] {
            for el2 in [true, false] {
                for smp in [1, 4] {
                    assert!(ktest_virt.iter().any(|c| c.machine.contains(gic)
                        && c.machine.contains("virtualization=on") == el2
                        && c.smp == Some(smp)));
                }
            }
        }
        for mem in ["128M", "2G"] {
            assert!(ktest_virt.iter().any(|c| c.mem == Some(mem)));
        }
        for crash in ["panic", "null", "stack", "undef"] {
            let arg = format!("ktest.crash={crash}");
            assert!(BOOT_CASES.iter().any(|c| c.append == Some(arg.as_str())));
        }
        assert!(BOOT_CASES.iter().any(|c| c.append == Some("ktest.exit=psci")));
        assert!(BOOT_CASES.iter().any(|c| c.image == Image::Production));
        for boot in [Boot::Uefi, Boot::UBoot, Boot::RpiSdCard] {
            assert!(BOOT_CASES.iter().any(|c| c.boot == boot && c.ktest), "{boot:?}");
        }
        // Firmware boots take seconds: a handful, not a matrix.
        assert!(
            BOOT_CASES
                .iter()
                .filter(|c| matches!(c.boot, Boot::Uefi | Boot::UBoot))
                .count()
                <= 4
        );
    }
}
