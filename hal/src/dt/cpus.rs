//! CPUs and how to start them: `/cpus`, enable methods, PSCI.

use super::addr::first_address;
use super::devices::{Reader, PSCI};
use super::error::{NodePath, NodeProblem, Part};
use super::tree::{exact_u32, u32_or_u64, Node, Want};
use super::{Cpu, EnableMethod, Psci, PsciConduit};

/// Standard function IDs of PSCI 0.2 and later (CPU_ON is the SMC64 one).
const PSCI_CPU_ON_64: u32 = 0xC400_0003;
const PSCI_CPU_OFF: u32 = 0x8400_0002;
const PSCI_SYSTEM_OFF: u32 = 0x8400_0008;

impl<'a> Reader<'_, '_, 'a> {
    pub(super) fn cpus(&mut self, out: &mut heapless::Vec<Cpu<'a>, 16>) {
        let Some(cpus) = self.tree.find_path("/cpus") else {
            self.note(Part::Cpus, NodePath::new("/cpus"), NodeProblem::Absent);
            return;
        };
        let inherited = cpus.str("enable-method");
        for node in self.tree.children(&cpus) {
            // `cpu-map`, `idle-states` and the like are not CPUs.
            match node.str("device_type") {
                Some("cpu") => {}
                None if node.base_name() == "cpu" => {}
                _ => continue,
            }
            if !node.is_enabled() {
                continue;
            }
            let Some(lin) = self.tree.lineage(&node) else {
                continue;
            };
            let mpidr = match first_address(&lin) {
                Ok(mpidr) => mpidr,
                Err(p) => {
                    self.note(Part::Cpus, lin.path(), p);
                    continue;
                }
            };
            let enable = match node.str("enable-method").or(inherited) {
                None => EnableMethod::None,
                Some("psci") => EnableMethod::Psci,
                Some(method @ "spin-table") => match node.prop("cpu-release-addr").map(u32_or_u64) {
                    Some(Some(release_addr)) => EnableMethod::SpinTable { release_addr },
                    Some(None) => {
                        let problem = "is not 4 or 8 bytes";
                        self.note(
                            Part::Cpus,
                            lin.path(),
                            NodeProblem::BadProperty {
                                name: "cpu-release-addr",
                                problem,
                            },
                        );
                        EnableMethod::Other(method)
                    }
                    None => {
                        self.note(Part::Cpus, lin.path(), NodeProblem::SpinTableWithoutReleaseAddr);
                        EnableMethod::Other(method)
                    }
                },
                Some(other) => EnableMethod::Other(other),
            };
            let compatible = node.strings("compatible").next().unwrap_or("");
            if out
                .push(Cpu {
                    mpidr,
                    enable,
                    compatible,
                })
                .is_err()
            {
                let max = out.capacity();
                self.note(
                    Part::Cpus,
                    NodePath::new("/cpus"),
                    NodeProblem::TooMany { what: "CPUs", max },
                );
                break;
            }
        }
    }

    pub(super) fn psci(&mut self) -> Option<Psci<'a>> {
        for node in self.all(Want::Compatible(PSCI)) {
            let compatible = node.first_listed(PSCI);
            let Some(compatible) = compatible.filter(|_| node.is_enabled()) else {
                continue;
            };
            match psci_from(&node, compatible) {
                Ok(psci) => return Some(psci),
                Err(p) => {
                    let path = self.path_of(&node);
                    self.note(Part::Psci, path, p);
                }
            }
        }
        None
    }
}

fn psci_from<'a>(node: &Node<'a>, compatible: &'a str) -> Result<Psci<'a>, NodeProblem> {
    let conduit = match node.str("method") {
        Some("hvc") => PsciConduit::Hvc,
        Some("smc") => PsciConduit::Smc,
        None => return Err(NodeProblem::MissingProperty("method")),
        Some(_) => {
            return Err(NodeProblem::BadProperty {
                name: "method",
                problem: "is neither \"hvc\" nor \"smc\"",
            })
        }
    };
    if compatible != "arm,psci" {
        let (cpu_on, cpu_off, system_off) = (PSCI_CPU_ON_64, PSCI_CPU_OFF, Some(PSCI_SYSTEM_OFF));
        return Ok(Psci {
            conduit,
            compatible,
            cpu_on,
            cpu_off,
            system_off,
        });
    }
    // PSCI 0.1 has no standard IDs: the firmware names them.
    let id = |name| match node.prop(name) {
        None => Err(NodeProblem::MissingProperty(name)),
        Some(v) => exact_u32(v).ok_or(NodeProblem::BadProperty {
            name,
            problem: "is not a single 32-bit cell",
        }),
    };
    Ok(Psci {
        conduit,
        compatible,
        cpu_on: id("cpu_on")?,
        cpu_off: id("cpu_off")?,
        system_off: None,
    })
}
