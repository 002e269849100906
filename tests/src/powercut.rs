//! Power cuts under the file server (`BootCase::power_cuts`): QEMU is
//! killed (SIGKILL, the host's view of pulling the plug: nothing the
//! guest has not handed to the virtio disk reaches the image) at a random
//! point of `test-powercut`'s workload of writes, appends, renames and
//! fsyncs, then booted again on the same disk; after the last cut a boot
//! runs the workload to its end.
//!
//! After every boot the image must pass `fsck.fat -n` with nothing worse
//! than what a cut may leave ([`fatcheck::power_cut_damage`]), and the
//! next boot's `test-powercut` must mount the volume and list every file
//! reported synced before the cut (and not announced as removed since) as
//! intact, at least at its synced length (the program itself fails on any
//! file whose bytes are wrong).
//!
//! Each boot is kept cheap so that a hundred fit in the suite: one CPU,
//! 256 MiB, of the profile only the drivers and the file server
//! (`servers=fs`), and a short workload (see `test-powercut`).

use crate::cases::BootCase;
use crate::fatcheck;
use crate::process::{self, End, Line};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// `test-powercut: synced NAME LEN` / `test-powercut: intact NAME LEN`
/// (anywhere in a line: the shell's prompt may come first).
fn reports<'a>(lines: &'a [Line], what: &str) -> impl Iterator<Item = (String, u64)> + 'a {
    let prefix = format!("test-powercut: {what} ");
    lines.iter().filter_map(move |l| {
        let at = l.text.find(prefix.as_str())?;
        let rest = l.text[at + prefix.len()..].trim();
        let (name, len) = rest.split_once(' ')?;
        Some((name.to_string(), len.trim().parse().ok()?))
    })
}

/// `test-powercut: removing NAME`: files the program is about to remove.
fn removals(lines: &[Line]) -> impl Iterator<Item = String> + '_ {
    let prefix = "test-powercut: removing ";
    lines.iter().filter_map(move |l| {
        let at = l.text.find(prefix)?;
        Some(l.text[at + prefix.len()..].trim().to_string())
    })
}

/// A small deterministic generator (SplitMix64), so a failing cut can be
/// replayed: the log names each cut point.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

/// Synced lines one run of `test-powercut` prints (6 files, 2 appends).
const SYNCED_PER_RUN: u64 = 8;

/// Runs the case's boots on `disk` (already set up) with QEMU `args`:
/// the verdict of the last boot (from `judge`) or why a cut failed, and
/// every boot's log, one after the other.
pub fn run(
    case: &BootCase,
    qemu: &Path,
    args: &[OsString],
    disk: &Path,
    judge: impl Fn(&[Line], End) -> Result<String, String>,
) -> (Result<String, String>, Vec<Line>) {
    let mut log: Vec<Line> = Vec::new();
    let mut rng = Rng(0x6b65_7374_7265_6c21 ^ case.name.len() as u64);
    // Every file reported synced so far and not announced as removed since,
    // and its longest synced length; and how many were ever synced.
    let mut synced: BTreeMap<String, u64> = BTreeMap::new();
    let mut ever_synced = 0usize;
    let mut damage: Vec<String> = Vec::new();
    for boot in 0..=case.power_cuts {
        let cut = boot < case.power_cuts;
        let (after, grace_ms) = (1 + rng.below(SYNCED_PER_RUN - 2), rng.below(120));
        log.push(Line::out(&if cut {
            format!("harness: boot {boot}: power cut {grace_ms} ms after the {after}th synced report")
        } else {
            format!("harness: boot {boot}: runs to the end")
        }));
        let mut cmd = Command::new(qemu);
        cmd.args(args);
        let done = |lines: &[Line]| {
            lines.iter().any(|l| l.text.contains("utest: result:"))
                || (cut && reports(lines, "synced").count() as u64 >= after)
        };
        let grace = if cut {
            Duration::from_millis(grace_ms)
        } else {
            Duration::from_secs(1)
        };
        let cap = match process::run(cmd, Duration::from_secs(case.timeout_s), grace, done) {
            Ok(c) => c,
            Err(e) => return (Err(format!("could not start {}: {e}", qemu.display())), log),
        };
        let lines = cap.lines;
        log.extend(lines.iter().cloned());
        // The files synced before earlier cuts, each intact.
        let intact: BTreeMap<String, u64> = reports(&lines, "intact").collect();
        let lost: Vec<String> = synced
            .iter()
            .filter(|(name, len)| intact.get(*name).is_none_or(|l| l < len))
            .map(|(name, len)| format!("{name} ({len} bytes: {:?})", intact.get(name)))
            .collect();
        if !lost.is_empty() {
            return (
                Err(format!(
                    "boot {boot}: synced before the cut but not intact: {}",
                    lost.join(", ")
                )),
                log,
            );
        }
        if let Some(l) = lines
            .iter()
            .find(|l| l.text.contains("FAILED") || l.text.contains("panicked") || l.text.contains(" faulted"))
        {
            return (Err(format!("boot {boot}: {:?}", l.text)), log);
        }
        for name in removals(&lines) {
            synced.remove(&name);
        }
        for (name, len) in reports(&lines, "synced") {
            let e = synced.entry(name).or_insert_with(|| {
                ever_synced += 1;
                0
            });
            *e = (*e).max(len);
        }
        match fatcheck::power_cut_damage(disk) {
            Ok(d) => damage.extend(d),
            Err(e) => return (Err(format!("boot {boot}: fsck.fat -n: {e}")), log),
        }
        if !cut {
            let verdict = judge(&lines, cap.end).map(|s| {
                let mut kinds: Vec<&str> = damage.iter().map(|d| d.as_str()).collect();
                kinds.sort();
                kinds.dedup();
                format!(
                    "{s}{}{} power cuts, {} files synced and read back intact, fsck.fat: {}",
                    if s.is_empty() { "" } else { ", " },
                    case.power_cuts,
                    ever_synced,
                    if kinds.is_empty() {
                        "clean".into()
                    } else {
                        kinds.join("; ")
                    }
                )
            });
            return (verdict, log);
        }
        if cap.end != End::Stopped {
            // The workload ended before the cut point: no cut this time.
            log.push(Line::out(&format!(
                "harness: boot {boot} ended ({:?}) before the cut",
                cap.end
            )));
        }
    }
    unreachable!("the last boot returns")
}
