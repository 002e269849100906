//! `cargo xtask test [FILTER] [-j N] [--shard K/N]`: setup, fetch, host unit
//! tests, both kernel images, every device-tree and boot case; writes a JUnit
//! report and ends with `N passed, N failed`.

use crate::build::{self, Options};
use crate::cli::TestArgs;
use crate::report::{self, Report};
use crate::util::{self, Result};
use crate::{bail, fetch, note, profile};
use harness::cases::{Boot, Image};
use harness::{BootCase, Outcome};
use std::io::{BufRead, BufReader};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

/// `--shard K/N`: the cases whose position in their list (unit test runs,
/// device-tree cases, boot cases, each as declared) is K-1 modulo N. The
/// N shards together run every case exactly once, whatever the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    fn takes(self, position: usize) -> bool {
        position % self.count as usize == (self.index - 1) as usize
    }
}

pub fn parse_shard(s: &str) -> Result<Shard> {
    let (k, n) = s.split_once('/').ok_or("expected K/N, e.g. 1/4")?;
    let (index, count) = match (k.parse::<u32>(), n.parse::<u32>()) {
        (Ok(k), Ok(n)) => (k, n),
        _ => bail!("expected K/N with whole numbers, e.g. 1/4"),
    };
    if count == 0 || index == 0 || index > count {
        bail!("shard K/N needs 1 <= K <= N");
    }
    Ok(Shard { index, count })
}

/// The items of `list` that the shard (if any) takes.
fn shard_of<T: Copy>(list: &[T], shard: Option<Shard>) -> Vec<T> {
    list.iter()
        .enumerate()
        .filter(|(i, _)| shard.is_none_or(|s| s.takes(*i)))
        .map(|(_, t)| *t)
        .collect()
}

/// QEMU cases in parallel: one per core (TCG runs one vCPU thread each at a time).
fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4)
}

/// Runs one cargo test invocation, echoing its output, and reports each
/// test it ran. A run that fails without a failed test (say, a compile
/// error) is one failed case, named after the run, with the whole output.
fn cargo_tests(name: &str, args: &[&str], report: &mut Report) {
    let mut cmd = util::cargo();
    cmd.args(args).stdout(Stdio::piped());
    let suite = format!("unit {name}");
    println!("{suite}: {}", util::shown(&cmd));
    let start = Instant::now();
    let mut output = String::new();
    let status = cmd.spawn().and_then(|mut child| {
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line?;
            println!("{line}");
            output.push_str(&line);
            output.push('\n');
        }
        child.wait()
    });
    let cases = report::cargo_cases(&output);
    let (passed, failed) = (
        cases.iter().filter(|c| c.passed).count(),
        cases.iter().filter(|c| !c.passed).count(),
    );
    let why = match &status {
        Ok(s) if s.success() => None,
        Ok(s) => Some(s.to_string()),
        Err(e) => Some(format!("cannot run cargo: {e}")),
    };
    match &why {
        None => println!("{suite} ... ok ({passed} passed)"),
        Some(w) => println!("{suite} ... FAILED ({w}; {passed} passed, {failed} failed)"),
    }
    for c in cases {
        report.add(&suite, c);
    }
    if let (Some(w), 0) = (why, failed) {
        let mut c = report::Case::failed(name, &w, &output);
        c.time = start.elapsed();
        report.add(&suite, c);
    }
}

/// `fuzz fat` for 15 s as one case; without the nightly toolchain it is
/// reported and skipped (it needs nightly's sanitizer-coverage support).
fn fuzz_briefly(report: &mut Report) {
    let start = Instant::now();
    if !crate::fuzz::available() {
        println!("fuzz fat ... skipped: no nightly toolchain (rustup toolchain install nightly)");
        return;
    }
    let r = crate::fuzz::main("fat", 15);
    let mut c = match &r {
        Ok(()) => report::Case::passed("fuzz-fat"),
        Err(e) => report::Case::failed("fuzz-fat", e, ""),
    };
    c.time = start.elapsed();
    match &r {
        Ok(()) => println!("fuzz fat ... ok"),
        Err(e) => println!("fuzz fat ... FAILED: {e}"),
    }
    report.add("fuzz", c);
}

/// Runs `f` on every item with `jobs` threads; calls `done` in item order.
fn parallel<T: Sync, R: Send>(items: &[T], jobs: usize, f: impl Fn(&T) -> R + Sync, mut done: impl FnMut(&T, R)) {
    let next = AtomicUsize::new(0);
    let (tx, rx) = mpsc::channel();
    std::thread::scope(|s| {
        for _ in 0..jobs.min(items.len()) {
            let tx = tx.clone();
            let (next, f) = (&next, &f);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= items.len() {
                    break;
                }
                if tx.send((i, f(&items[i]))).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut pending: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
        let mut printed = 0;
        for (i, r) in rx {
            pending[i] = Some(r);
            while printed < items.len() {
                let Some(r) = pending[printed].take() else {
                    break;
                };
                done(&items[printed], r);
                printed += 1;
            }
        }
    });
}

/// The hostile fuzzer's system calls in one run, from the line each of
/// its runs prints (`test-hostile: N random calls on C CPUs in ...`).
#[derive(Default, Debug, PartialEq)]
struct FuzzTotal {
    cases: u64,
    smp_cases: u64,
    smp_calls: u64,
    one_cpu_calls: u64,
}

impl FuzzTotal {
    fn add<'a>(&mut self, lines: impl Iterator<Item = &'a str>) {
        for line in lines {
            let Some(rest) = line.split("test-hostile: ").nth(1) else {
                continue;
            };
            let words: Vec<&str> = rest.split_whitespace().collect();
            let (Some(calls), Some(cpus)) = (
                words.first().and_then(|w| w.parse::<u64>().ok()),
                words.get(4).and_then(|w| w.parse::<u64>().ok()),
            ) else {
                continue;
            };
            if words.get(1..4) != Some(&["random", "calls", "on"][..]) {
                continue;
            }
            self.cases += 1;
            if cpus > 1 {
                self.smp_cases += 1;
                self.smp_calls += calls;
            } else {
                self.one_cpu_calls += calls;
            }
        }
    }
}

/// A QEMU or device-tree case's outcome as a report case: its command and
/// console are the log.
fn case(name: &str, o: &Outcome) -> report::Case {
    let mut log = format!("command: {}\n", o.command);
    for l in &o.log {
        log.push_str(&format!("{} {}\n", l.stream.mark(), l.text));
    }
    report::Case {
        name: name.to_string(),
        passed: o.passed,
        time: o.elapsed,
        message: o.reason.clone(),
        log,
    }
}

/// The command and console of a passing case (`-v`).
fn print_log(o: &Outcome) {
    println!("    command: {}", o.command);
    for l in &o.log {
        println!("    {} {}", l.stream.mark(), l.text);
    }
}

/// The device-group file every profile image of the tests carries, so
/// that devices booted together pair on the bus (not a secret).
pub const TEST_GROUP: &str = "tests/data/test.group";

/// A device profile the selected cases need, and which of its images.
struct ProfileNeed {
    name: String,
    profile: Result<profile::Profile>,
    /// Booted as the device (`Boot::Profile`): its production image and
    /// QEMU options.
    boots: bool,
    /// Images of it that direct cases name (`BootCase::profile`).
    images: Vec<Image>,
    /// With the test group file (`BootCase::group`): a profile some cases
    /// need with it and others without is two needs.
    group: bool,
}

/// The profiles the selected boot cases need.
fn profile_needs(boot: &[&BootCase]) -> Vec<ProfileNeed> {
    let mut needs: Vec<ProfileNeed> = Vec::new();
    // A companion machine boots its profile as the device.
    let companions = boot
        .iter()
        .flat_map(|c| c.companions.iter().map(move |m| (c, m.profile)));
    let own = boot.iter().filter_map(|c| match (c.boot, c.profile) {
        (Boot::Profile(p), _) | (_, Some(p)) => Some((c, p)),
        _ => None,
    });
    for (c, name) in own.chain(companions) {
        let booted = matches!(c.boot, Boot::Profile(_)) || c.companions.iter().any(|m| m.profile == name);
        let i = match needs.iter().position(|n| n.name == name && n.group == c.group) {
            Some(i) => i,
            None => {
                needs.push(ProfileNeed {
                    name: name.to_string(),
                    profile: profile::load(name),
                    boots: false,
                    images: Vec::new(),
                    group: c.group,
                });
                needs.len() - 1
            }
        };
        let n = &mut needs[i];
        if booted {
            n.boots = true;
        } else if !n.images.contains(&c.image) {
            n.images.push(c.image);
        }
    }
    needs
}

/// Builds a profile's images and makes its QEMU options for the harness.
fn prepare_profile(need: &ProfileNeed, work_dir: &std::path::Path) -> harness::runner::ProfileBoot {
    let name = &need.name;
    let opts = |test_image: bool| Options {
        device: name.to_string(),
        test_image,
        group: need.group.then(|| crate::util::root().join(TEST_GROUP)),
        tag: if need.group { "" } else { "nogroup" },
        ..Options::default()
    };
    let mut boot = harness::runner::ProfileBoot {
        name: name.to_string(),
        image: build::image_path(&opts(false)),
        test_image: build::image_path(&opts(true)),
        args: Vec::new(),
        disk: None,
        error: None,
        group: need.group,
    };
    let made = need.profile.as_ref().map_err(String::clone).and_then(|p| {
        let mut args = Vec::new();
        if need.boots || need.images.contains(&Image::Production) {
            build::build(&opts(false))?;
        }
        if need.images.contains(&Image::Test) {
            build::build(&opts(true))?;
        }
        if need.boots {
            // Made as `cargo xtask run` makes it (a card carries the image
            // the profile boots), fresh.
            let dir = if need.group {
                format!("profile-{name}")
            } else {
                format!("profile-{name}-nogroup")
            };
            let disk = work_dir.join(dir).join("disk.img");
            args = crate::qemu::profile_args(p, &disk, crate::qemu::DiskUse::Fresh, &boot.image)?;
            // The path as it appears in `args`; the harness gives each case a copy.
            boot.disk = p.qemu.uses_disk().then(|| std::fs::canonicalize(&disk).unwrap_or(disk));
        }
        Ok(args)
    });
    match made {
        Ok(args) => boot.args = args.into_iter().map(Into::into).collect(),
        Err(e) => {
            println!("build profile {name} ... FAILED: {e}");
            boot.error = Some(e);
        }
    }
    boot
}

/// This program, for running `xtask dt` as a child. /proc/self/exe still
/// works when target/release/xtask is rebuilt (replaced) while we run.
fn self_exe() -> Result<std::path::PathBuf> {
    let proc = std::path::PathBuf::from("/proc/self/exe");
    if proc.exists() {
        return Ok(proc);
    }
    std::env::current_exe().map_err(|e| e.to_string())
}

pub fn main(a: &TestArgs) -> Result<ExitCode> {
    let start = Instant::now();
    let jobs = a.jobs.map_or_else(default_jobs, usize::from);
    let filter = a.filter.as_deref();
    let wanted = |name: &str| filter.is_none_or(|f| name.contains(f));
    crate::setup::ensure(crate::setup::Need::Test)?;

    let boot = shard_of(&harness::select(harness::BOOT_CASES, |c| c.name, filter), a.shard);
    let dt = shard_of(&harness::select(harness::DT_CASES, |c| c.name, filter), a.shard);
    // The device profiles the selected cases boot (a profile that does not
    // load fails its case, with the reason).
    let profiles = profile_needs(&boot);
    let profile_dtb = profiles
        .iter()
        .any(|n| n.boots && n.profile.as_ref().is_ok_and(|p| p.qemu.dtb.is_some()));
    let needs_rpi4 = profile_dtb
        || boot.iter().any(|c| c.dtb == harness::cases::Dtb::Rpi4)
        || dt
            .iter()
            .any(|c| matches!(c.tree, harness::cases::Tree::Rpi4 | harness::cases::Tree::Rpi4Booted));
    let rpi4_dtb = if needs_rpi4 || filter.is_none() {
        match fetch::rpi4_dtb() {
            Ok(p) => p,
            Err(e) => {
                println!("fetch {} ... FAILED: {e}", fetch::DTB_NAME);
                fetch::dtb_path()
            }
        }
    } else {
        fetch::dtb_path()
    };

    let mut report = Report::default();
    // Host unit tests: the default members (the crates that build on the
    // host), then the pure logic of the kernel and of user space (built
    // for the host too: message packing, init's configuration and verdicts,
    // the shell's line editor and commands, the compositor's scene and
    // composition, the UI kit, the soft bus with hostile peers).
    // Then the drivers' pure logic: the kit, and register sequences
    // against register models.
    let units: [(&str, &[&str]); 4] = [
        ("workspace", &["test"]),
        ("kernel-lib", &["test", "-p", "kernel", "--lib"]),
        (
            "user-lib",
            &[
                "test",
                "-p",
                "userlib",
                "-p",
                "init",
                "-p",
                "shell",
                "-p",
                "compositor",
                "-p",
                "ui",
                "-p",
                "sysui",
                "-p",
                "fs",
                "-p",
                "bus",
            ],
        ),
        (
            "driver-lib",
            &[
                "test",
                "-p",
                "driverkit",
                "-p",
                "rpi-gpio",
                "-p",
                "sdhci",
                "-p",
                "virtio-blk",
                "-p",
                "virtio-gpu",
            ],
        ),
    ];
    let units: Vec<_> = units.iter().filter(|(name, _)| wanted(name)).collect();
    for (name, args) in shard_of(&units, a.shard) {
        cargo_tests(name, args, &mut report);
    }
    // The FAT readers under the fuzzer, briefly (with the nightly
    // toolchain; `cargo xtask fuzz fat --time S` runs it longer).
    if wanted("fuzz-fat") && shard_of(&["fuzz-fat"], a.shard).len() == 1 {
        fuzz_briefly(&mut report);
    }
    // Kernel images needed by the selected boot cases (the default
    // profile's; the test image with every test program).
    let mut image_error: [Option<String>; 2] = [None, None];
    let flavour = |test_image: bool| Options {
        test_image,
        ..Options::default()
    };
    for (i, test_image) in [(0, false), (1, true)] {
        let image = if test_image {
            harness::cases::Image::Test
        } else {
            harness::cases::Image::Production
        };
        if !boot
            .iter()
            .any(|c| c.image == image && c.profile.is_none() && !matches!(c.boot, Boot::Profile(_)))
        {
            continue;
        }
        if let Err(e) = build::build(&flavour(test_image)) {
            println!(
                "build {} ... FAILED: {e}",
                util::relative(&build::image_path(&flavour(test_image)))
            );
            image_error[i] = Some(e);
        }
    }

    let work_dir = build::out_dir().join("harness");
    if let Err(e) = std::fs::create_dir_all(&work_dir) {
        bail!("{}: {e}", work_dir.display());
    }
    // Each profile's production image, and its QEMU options with a fresh
    // disk image of the case's own (a `cargo xtask run` may hold the
    // profile's disk).
    let profile_boots: Vec<harness::runner::ProfileBoot> =
        profiles.iter().map(|n| prepare_profile(n, &work_dir)).collect();

    let env = harness::Env {
        qemu: crate::qemu::QEMU.into(),
        test_image: build::image_path(&flavour(true)),
        prod_image: build::image_path(&flavour(false)),
        rpi4_dtb,
        work_dir,
        dt_command: vec![self_exe()?.into(), "dt".into()],
        media: Some(crate::firmware::media),
        profiles: profile_boots,
    };

    for c in &dt {
        let o = harness::run_dt(c, &env);
        println!("{}", o.report("dt", c.name));
        if a.verbose && o.passed {
            print_log(&o);
        }
        report.add("dt", case(c.name, &o));
    }

    let run_one = |c: &&BootCase| -> Outcome {
        let idx = usize::from(c.image == harness::cases::Image::Test);
        let image_error = match (c.boot, c.profile) {
            // A profile's image: a build error is in Env::profiles.
            (Boot::Profile(_), _) | (_, Some(_)) => &None,
            _ => &image_error[idx],
        };
        match image_error {
            Some(e) => Outcome {
                passed: false,
                elapsed: Default::default(),
                summary: String::new(),
                reason: format!("the image did not build: {e}"),
                command: String::new(),
                log: Vec::new(),
            },
            None => harness::run_boot(c, &env),
        }
    };
    let mut fuzzed = FuzzTotal::default();
    parallel(&boot, jobs, run_one, |c, o| {
        fuzzed.add(o.log.iter().map(|l| l.text.as_str()));
        println!("{}", o.report("boot", c.name));
        if a.verbose && o.passed {
            print_log(&o);
        }
        report.add("boot", case(c.name, &o));
    });

    let junit = a.junit.clone().unwrap_or_else(|| build::out_dir().join("junit.xml"));
    match report.write_junit(&junit) {
        Ok(()) => note!("JUnit report: {}", util::relative(&junit)),
        Err(e) => note!("warning: no JUnit report: {e}"),
    }
    if fuzzed.cases > 0 {
        note!(
            "hostile fuzzer: {} system calls in {} SMP cases (issue 11 asks for 10,000,000), {} on 1 CPU",
            fuzzed.smp_calls,
            fuzzed.smp_cases,
            fuzzed.one_cpu_calls
        );
    }
    let (passed, failed) = (report.passed(), report.failed());
    let total = passed + failed;
    note!("{total} checks in {:.1} s", start.elapsed().as_secs_f64());
    if total == 0 {
        note!("no test matches the filter {:?}", filter.unwrap_or(""));
    }
    println!("{passed} passed, {failed} failed");
    Ok(if failed == 0 && total > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_every_case_once() {
        assert_eq!(parse_shard("2/3"), Ok(Shard { index: 2, count: 3 }));
        for bad in ["0/2", "3/2", "1/0", "x/2", "2", "1/2/3", "-1/2"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
        let items: Vec<u32> = (0..10).collect();
        let mut all: Vec<u32> = (1..=3)
            .flat_map(|k| shard_of(&items, Some(Shard { index: k, count: 3 })))
            .collect();
        assert_eq!(shard_of(&items, Some(Shard { index: 1, count: 3 })), [0, 3, 6, 9]);
        all.sort();
        assert_eq!(all, items);
        assert_eq!(shard_of(&items, None), items);
    }

    #[test]
    fn profiles_the_cases_need() {
        use harness::cases::KTEST;
        let booted = BootCase {
            boot: Boot::Profile("tv"),
            image: Image::Production,
            ..KTEST
        };
        let direct = BootCase {
            profile: Some("rpi4"),
            ..KTEST
        };
        let other = KTEST;
        // Three machines on one link: the companions' profiles are booted too.
        let pair = BootCase {
            companions: &[
                harness::cases::Companion {
                    profile: "watch",
                    label: "watch",
                    qemu_args: &[],
                    input: &[],
                },
                harness::cases::Companion {
                    profile: "phone",
                    label: "phone",
                    qemu_args: &[],
                    input: &[],
                },
            ],
            ..booted
        };
        let needs = profile_needs(&[&booted, &direct, &other, &booted, &pair]);
        let got: Vec<(&str, bool, &[Image])> = needs
            .iter()
            .map(|n| (n.name.as_str(), n.boots, &n.images[..]))
            .collect();
        assert_eq!(
            got,
            [
                ("tv", true, &[][..]),
                ("rpi4", false, &[Image::Test][..]),
                ("watch", true, &[][..]),
                ("phone", true, &[][..])
            ]
        );
        assert!(needs.iter().all(|n| n.profile.is_ok()));
    }

    #[test]
    fn fuzz_total_counts_smp_and_one_cpu_runs() {
        let mut t = FuzzTotal::default();
        t.add(
            [
                "test-hostile: seed 0x1 (replay: utest=hostile seed=0x1), 120000 calls on 4 CPUs in children of 20000",
                "test-hostile: 141500 random calls on 4 CPUs in 6412 ms (22067 calls/s), 4 rounds",
                "[    1.0] INFO  test-hostile: 1000 random calls on 1 CPUs in 10 ms",
                "test-hostile: 7 random calls on x CPUs",
                "test-hostile: 9600123 random calls on 2 CPUs in 300000 ms",
            ]
            .into_iter(),
        );
        assert_eq!(
            t,
            FuzzTotal {
                cases: 3,
                smp_cases: 2,
                smp_calls: 9_741_623,
                one_cpu_calls: 1000
            }
        );
    }

    #[test]
    fn parallel_keeps_order() {
        let items: Vec<u64> = (0..20).collect();
        let mut seen = Vec::new();
        parallel(
            &items,
            4,
            |&i| {
                std::thread::sleep(std::time::Duration::from_millis((20 - i) * 2));
                i * 10
            },
            |&i, r| seen.push((i, r)),
        );
        assert_eq!(seen, items.iter().map(|&i| (i, i * 10)).collect::<Vec<_>>());
    }
}
