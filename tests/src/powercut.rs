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
//! Each boot is kept cheap so that a hundred fit in the suite (one CPU,
//! 256 MiB, one ktest, of the profile only the drivers and the file server,
//! `servers=fs`, a short workload: see the case), and [`LANES`] disks are
//! cut at once, each in its own sequence of boots.

use crate::cases::BootCase;
use crate::fatcheck;
use crate::process::{self, Captured, End, Line};
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

/// The lines of a boot that it finished printing (the harness reads its
/// reports from these): a cut kills QEMU at any byte of a line, and the
/// start of `test-powercut: intact 9-0 31272` reads as file 9-0 intact at
/// 3127 bytes.
fn finished_lines(cap: &Captured) -> Vec<Line> {
    cap.lines
        .iter()
        .enumerate()
        .filter(|(i, _)| !cap.unfinished.contains(i))
        .map(|(_, l)| l.clone())
        .collect()
}

/// The files of `synced` (name, longest synced length) that a boot's
/// `lines` show lost: every one the program listed must be listed at least
/// at its synced length, and once it has been through the whole directory
/// (a cut may stop it before), every one must be listed. Files the boot
/// did not reach stay to be checked by the next. Each as `NAME (LEN bytes:
/// LISTED)`.
fn lost(synced: &BTreeMap<String, u64>, lines: &[Line]) -> Vec<String> {
    let intact: BTreeMap<String, u64> = reports(lines, "intact").collect();
    let checked_all = lines.iter().any(|l| l.text.contains(CHECKED));
    synced
        .iter()
        .filter(|(name, len)| match intact.get(*name) {
            Some(l) => l < len,
            None => checked_all,
        })
        .map(|(name, len)| format!("{name} ({len} bytes: {:?})", intact.get(name)))
        .collect()
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

/// The line `test-powercut` prints as its workload starts (after the
/// boot and the mount, before it touches `/data/cut`): the start of its
/// first phase, checking and removing earlier files.
const START: &str = "test-powercut: start";

/// The end of the first phase and the start of the second, writing
/// (`run N: X files intact, Y temporary files removed, Z old files
/// removed in T ms`).
const CHECKED: &str = " files intact, ";

/// The end of the second phase (`run N: 6 files written in T ms`).
const WRITTEN: &str = " files written";

/// A phase's length (ms) assumed until a boot reports it.
const FIRST_SPAN_MS: u64 = 100;

/// `... in T ms` at the end of a line containing `what`: how long the
/// program took for the phase that line ends.
fn span(lines: &[Line], what: &str) -> Option<u64> {
    lines.iter().find_map(|l| {
        if !l.text.contains(what) {
            return None;
        }
        let at = l.text.rfind(" in ")?;
        l.text[at + 4..].trim().strip_suffix(" ms")?.parse().ok()
    })
}

/// Disks cut in parallel, each in its own sequence of boots: a QEMU that
/// boots and runs the workload mostly waits, so a few at once take little
/// more time than one.
const LANES: u32 = 4;

/// Runs the case's cuts on `disk` (already set up) and on copies of it,
/// [`LANES`] sequences of boots at once, with QEMU `args`: the verdict
/// (every lane's last boot judged by `judge`, or why a cut failed) and
/// every boot's log, lane after lane.
pub fn run(
    case: &BootCase,
    qemu: &Path,
    args: &[OsString],
    disk: &Path,
    judge: impl Fn(&[Line], End) -> Result<String, String> + Sync,
) -> (Result<String, String>, Vec<Line>) {
    let lanes = LANES.clamp(1, case.power_cuts.max(1));
    let results: Vec<(Result<Lane, String>, Vec<Line>)> = std::thread::scope(|s| {
        let judge = &judge;
        let workers: Vec<_> = (0..lanes)
            .map(|k| {
                s.spawn(move || {
                    let cuts = case.power_cuts / lanes + u32::from(k < case.power_cuts % lanes);
                    if k == 0 {
                        return run_lane(case, k, cuts, qemu, args, disk, judge);
                    }
                    // The same fresh disk, copied, under another name.
                    let copy = disk.with_extension(format!("lane{k}.img"));
                    if let Err(e) = std::fs::copy(disk, &copy) {
                        return (Err(format!("lane {k}: copy {}: {e}", disk.display())), Vec::new());
                    }
                    let (from, to) = (disk.to_string_lossy(), copy.to_string_lossy());
                    let lane_args: Vec<OsString> = args
                        .iter()
                        .map(|a| a.to_string_lossy().replace(from.as_ref(), to.as_ref()).into())
                        .collect();
                    let r = run_lane(case, k, cuts, qemu, &lane_args, &copy, judge);
                    let _ = std::fs::remove_file(&copy);
                    r
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .unwrap_or_else(|_| (Err("a lane's thread panicked".into()), Vec::new()))
            })
            .collect()
    });
    let mut log = Vec::new();
    let mut summary: Option<String> = None;
    let (mut synced, mut verified, mut kinds, mut boots, mut in_check) = (0, 0, Vec::new(), 0, 0);
    let mut failed = None;
    for (k, (r, lines)) in results.into_iter().enumerate() {
        log.push(Line::out(&format!("harness: ---- lane {k} ----")));
        log.extend(lines);
        match r {
            Ok(lane) => {
                summary.get_or_insert(lane.judged);
                synced += lane.synced;
                verified += lane.verified;
                boots += lane.boots;
                in_check += lane.in_check;
                kinds.extend(lane.damage);
            }
            Err(e) => {
                failed.get_or_insert(format!("lane {k}: {e}"));
            }
        }
    }
    if let Some(e) = failed {
        return (Err(e), log);
    }
    kinds.sort();
    kinds.dedup();
    let s = summary.unwrap_or_default();
    let verdict = format!(
        "{s}{}{} power cuts inside the workload ({in_check} while it checked and removed earlier files, the rest while it wrote; {lanes} disks at once, {boots} boots), {synced} files synced, {verified} read back intact by a later boot, fsck.fat: {}",
        if s.is_empty() { "" } else { ", " },
        case.power_cuts,
        if kinds.is_empty() { "clean".into() } else { kinds.join("; ") }
    );
    (Ok(verdict), log)
}

/// What a lane that passed found.
struct Lane {
    /// The judge's summary of its last boot.
    judged: String,
    /// Files reported synced.
    synced: usize,
    /// Of them, those a later boot read back intact.
    verified: usize,
    /// What fsck.fat found after its boots.
    damage: Vec<String>,
    /// Boots, the last one (run to the end) included.
    boots: u32,
    /// Cuts while the program checked and removed earlier files.
    in_check: u32,
}

/// Lane `lane`: `cuts` boots cut short on `disk`, then one run to the end.
fn run_lane(
    case: &BootCase,
    lane: u32,
    cuts: u32,
    qemu: &Path,
    args: &[OsString],
    disk: &Path,
    judge: &(impl Fn(&[Line], End) -> Result<String, String> + Sync),
) -> (Result<Lane, String>, Vec<Line>) {
    let mut log: Vec<Line> = Vec::new();
    let mut rng = Rng(0x6b65_7374_7265_6c21 ^ case.name.len() as u64 ^ (u64::from(lane) << 32));
    // Every file reported synced so far and not announced as removed since,
    // and its longest synced length; and how many were ever synced.
    let mut synced: BTreeMap<String, u64> = BTreeMap::new();
    let mut ever_synced = 0usize;
    // Files found intact by a boot after the one that synced them.
    let mut verified: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let mut damage: Vec<String> = Vec::new();
    // Cuts that landed inside the workload (before its last file was
    // written): a boot whose workload ended before the cut point does not
    // count, and another boot is cut in its place.
    let mut landed = 0u32;
    let mut in_check = 0u32;
    // How long each phase took the last time a boot ran it to its end (as
    // the program measured it), in ms: a cut lands at a random point of
    // one phase, of the first (checking) one time in four, else of the
    // second (writing, renaming, syncing).
    let (mut check_ms, mut write_ms) = (FIRST_SPAN_MS, FIRST_SPAN_MS);
    for boot in 0..=2 * cuts + 2 {
        let cut = landed < cuts;
        let (from, phase_ms) = if rng.below(4) == 0 {
            (START, check_ms)
        } else {
            (CHECKED, write_ms)
        };
        let at_ms = rng.below(phase_ms.max(1));
        log.push(Line::out(&if cut {
            format!(
                "harness: boot {boot}: power cut {at_ms} ms after {from:?} (the phase took {phase_ms} ms last time)"
            )
        } else {
            format!("harness: boot {boot}: runs to the end")
        }));
        let mut cmd = Command::new(qemu);
        cmd.args(args);
        let done = |lines: &[Line]| {
            lines
                .iter()
                .any(|l| l.text.contains("utest: result:") || (cut && l.text.contains(from)))
        };
        let grace = if cut {
            Duration::from_millis(at_ms)
        } else {
            Duration::from_secs(1)
        };
        let cap = match process::run(cmd, Duration::from_secs(case.timeout_s), grace, done) {
            Ok(c) => c,
            Err(e) => return (Err(format!("could not start {}: {e}", qemu.display())), log),
        };
        log.extend(cap.lines.iter().cloned());
        let lines = finished_lines(&cap);
        let lost = lost(&synced, &lines);
        if !lost.is_empty() {
            return (
                Err(format!(
                    "boot {boot}: synced before the cut but not intact: {}",
                    lost.join(", ")
                )),
                log,
            );
        }
        if let Some(l) = cap
            .lines
            .iter()
            .find(|l| l.text.contains("FAILED") || l.text.contains("panicked") || l.text.contains(" faulted"))
        {
            return (Err(format!("boot {boot}: {:?}", l.text)), log);
        }
        let intact: BTreeMap<String, u64> = reports(&lines, "intact").collect();
        verified.extend(synced.keys().filter(|n| intact.contains_key(*n)).cloned());
        // An announcement counts even unfinished: the program announces a
        // file before it removes it.
        for name in removals(&cap.lines) {
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
            let verdict = judge(&cap.lines, cap.end).map(|judged| Lane {
                judged,
                synced: ever_synced,
                verified: verified.len(),
                damage: damage.clone(),
                boots: boot + 1,
                in_check,
            });
            return (verdict, log);
        }
        let finished = lines.iter().any(|l| l.text.contains(WRITTEN));
        check_ms = span(&lines, CHECKED).unwrap_or(check_ms);
        write_ms = span(&lines, WRITTEN).unwrap_or(write_ms);
        match cap.end {
            End::Stopped if !finished => {
                landed += 1;
                in_check += u32::from(!lines.iter().any(|l| l.text.contains(CHECKED)));
            }
            End::TimedOut => {
                return (
                    Err(format!(
                        "boot {boot}: timed out after {} s (hung before the cut point)",
                        case.timeout_s
                    )),
                    log,
                );
            }
            end => log.push(Line::out(&format!(
                "harness: boot {boot} ({end:?}): the workload ended before the cut; not counted"
            ))),
        }
    }
    (
        Err(format!(
            "only {landed} of {cuts} cuts landed inside the workload in {} boots",
            2 * cuts + 3
        )),
        log,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A boot killed in the middle of a report line (as in CI: `boot 17:
    /// synced before the cut but not intact: 9-0 (31272 bytes:
    /// Some(3127))`, the file read back whole and the line cut after
    /// `3127`): the unfinished line is no report, and nothing is lost.
    #[test]
    fn a_report_cut_short_is_not_a_report() {
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "printf 'test-powercut: start\\ntest-powercut: intact 8-1 8082\\ntest-powercut: intact 9-0 3127'; exec sleep 10",
        ]);
        let cap = process::run(cmd, Duration::from_secs(20), Duration::from_millis(300), |lines| {
            lines.iter().any(|l| l.text.contains(START))
        })
        .expect("sh");
        assert_eq!(cap.end, End::Stopped);
        assert_eq!(
            cap.lines.last().map(|l| l.text.as_str()),
            Some("test-powercut: intact 9-0 3127")
        );
        let synced: BTreeMap<String, u64> = [("8-1".to_string(), 8082), ("9-0".to_string(), 31272)].into();
        let lines = finished_lines(&cap);
        assert_eq!(lost(&synced, &lines), Vec::<String>::new());
        // Once the directory has been checked whole, a file not listed is lost.
        let mut lines = lines;
        lines.push(Line::out(
            "test-powercut: run 10: 1 files intact, 0 temporary files removed, 0 old files removed in 9 ms",
        ));
        assert_eq!(lost(&synced, &lines), vec!["9-0 (31272 bytes: None)".to_string()]);
    }
}
