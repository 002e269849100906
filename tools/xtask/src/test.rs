//! `cargo xtask test [FILTER] [-j N]`: setup, fetch, host unit tests, both
//! kernel images, every device-tree and boot case; ends with `N passed, N failed`.

use crate::build::{self, Options};
use crate::util::{self, Result};
use crate::{bail, fetch, note, profile};
use harness::cases::{Boot, Image};
use harness::console::parse_cargo_result;
use harness::{BootCase, Outcome};
use std::io::{BufRead, BufReader};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub passed: u32,
    pub failed: u32,
}

impl Tally {
    fn add(&mut self, ok: bool) {
        if ok {
            self.passed += 1
        } else {
            self.failed += 1
        }
    }
}

struct Args {
    filter: Option<String>,
    jobs: usize,
    /// Print the console log of passing cases too.
    verbose: bool,
}

fn parse_args(args: &[String]) -> Result<Args> {
    let mut a = Args {
        filter: None,
        jobs: default_jobs(),
        verbose: false,
    };
    let mut it = args.iter();
    while let Some(x) = it.next() {
        match x.as_str() {
            "-v" | "--verbose" => a.verbose = true,
            "-j" | "--jobs" => {
                let n = it.next().ok_or("-j needs a number")?;
                a.jobs = n
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(format!("bad job count `{n}`"))?;
            }
            s if s.starts_with('-') => {
                bail!("test: unknown option `{s}` (usage: cargo xtask test [FILTER] [-j N] [-v])")
            }
            s if a.filter.is_none() => a.filter = Some(s.to_string()),
            s => bail!("test: only one FILTER allowed (got `{s}` too)"),
        }
    }
    Ok(a)
}

/// QEMU cases in parallel: one per core (TCG runs one vCPU thread each at a time).
fn default_jobs() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 4)
}

/// Runs one cargo test invocation, echoing its output, and adds its counts.
/// A run that fails without reporting a failed test (say, a compile error)
/// counts as one failure.
fn cargo_tests(name: &str, args: &[&str], tally: &mut Tally) {
    let mut cmd = util::cargo();
    cmd.args(args).stdout(Stdio::piped());
    println!("unit {name}: {}", util::shown(&cmd));
    let mut t = Tally::default();
    let status = cmd.spawn().and_then(|mut child| {
        for line in BufReader::new(child.stdout.take().unwrap()).lines() {
            let line = line?;
            println!("{line}");
            if let Some((p, f)) = parse_cargo_result(&line) {
                t.passed += p;
                t.failed += f;
            }
        }
        child.wait()
    });
    let ok = matches!(&status, Ok(s) if s.success());
    if !ok && t.failed == 0 {
        t.failed = 1;
    }
    match status {
        Ok(s) if s.success() => println!("unit {name} ... ok ({} passed)", t.passed),
        Ok(s) => println!("unit {name} ... FAILED ({s}; {} passed, {} failed)", t.passed, t.failed),
        Err(e) => println!("unit {name} ... FAILED (cannot run cargo: {e})"),
    }
    tally.passed += t.passed;
    tally.failed += t.failed;
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

/// The command and console of a passing case (`-v`).
fn print_log(o: &Outcome) {
    println!("    command: {}", o.command);
    for l in &o.log {
        println!("    {} {}", l.stream.mark(), l.text);
    }
}

/// A device profile the selected cases need, and which of its images.
struct ProfileNeed {
    name: String,
    profile: Result<profile::Profile>,
    /// Booted as the device (`Boot::Profile`): its production image and
    /// QEMU options.
    boots: bool,
    /// Images of it that direct cases name (`BootCase::profile`).
    images: Vec<Image>,
}

/// The profiles the selected boot cases need.
fn profile_needs(boot: &[&BootCase]) -> Vec<ProfileNeed> {
    let mut needs: Vec<ProfileNeed> = Vec::new();
    for c in boot {
        let name = match (c.boot, c.profile) {
            (Boot::Profile(p), _) | (_, Some(p)) => p,
            _ => continue,
        };
        let i = match needs.iter().position(|n| n.name == name) {
            Some(i) => i,
            None => {
                needs.push(ProfileNeed {
                    name: name.to_string(),
                    profile: profile::load(name),
                    boots: false,
                    images: Vec::new(),
                });
                needs.len() - 1
            }
        };
        let n = &mut needs[i];
        if matches!(c.boot, Boot::Profile(_)) {
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
        ..Options::default()
    };
    let mut boot = harness::runner::ProfileBoot {
        name: name.to_string(),
        image: build::image_path(&opts(false)),
        test_image: build::image_path(&opts(true)),
        args: Vec::new(),
        disk: None,
        error: None,
    };
    let made = need.profile.as_ref().map_err(String::clone).and_then(|p| {
        let mut args = Vec::new();
        if need.boots {
            let disk = work_dir.join(format!("profile-{name}")).join("disk.img");
            args = crate::qemu::profile_args(p, &disk, true)?;
            // The path as it appears in `args`; the harness gives each case a copy.
            boot.disk = p.qemu.uses_disk().then(|| std::fs::canonicalize(&disk).unwrap_or(disk));
        }
        if need.boots || need.images.contains(&Image::Production) {
            build::build(&opts(false))?;
        }
        if need.images.contains(&Image::Test) {
            build::build(&opts(true))?;
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

pub fn main(args: &[String]) -> Result<ExitCode> {
    let a = parse_args(args)?;
    let start = Instant::now();
    let filter = a.filter.as_deref();
    let wanted = |name: &str| filter.is_none_or(|f| name.contains(f));
    crate::setup::ensure(crate::setup::Need::Test)?;

    let boot = harness::select(harness::BOOT_CASES, |c| c.name, filter);
    let dt = harness::select(harness::DT_CASES, |c| c.name, filter);
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

    let mut tally = Tally::default();
    // Host unit tests: the default members (the crates that build on the
    // host), then the pure logic of the kernel and of user space (built
    // for the host too: message packing, init's configuration and verdicts,
    // the shell's line editor and commands).
    if wanted("workspace") {
        cargo_tests("workspace", &["test"], &mut tally);
    }
    if wanted("kernel-lib") {
        cargo_tests("kernel-lib", &["test", "-p", "kernel", "--lib"], &mut tally);
    }
    if wanted("user-lib") {
        cargo_tests(
            "user-lib",
            &["test", "-p", "userlib", "-p", "init", "-p", "shell"],
            &mut tally,
        );
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
        tally.add(o.passed);
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
    parallel(&boot, a.jobs, run_one, |c, o| {
        println!("{}", o.report("boot", c.name));
        if a.verbose && o.passed {
            print_log(&o);
        }
        tally.add(o.passed);
    });

    let total = tally.passed + tally.failed;
    note!("{total} checks in {:.1} s", start.elapsed().as_secs_f64());
    if total == 0 {
        note!("no test matches the filter {:?}", filter.unwrap_or(""));
    }
    println!("{} passed, {} failed", tally.passed, tally.failed);
    Ok(if tally.failed == 0 && total > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn args() {
        let a = parse_args(&s(&["crash", "-j", "3", "-v"])).unwrap();
        assert_eq!((a.filter.as_deref(), a.jobs, a.verbose), (Some("crash"), 3, true));
        assert!(parse_args(&s(&["a", "b"])).is_err());
        assert!(parse_args(&s(&["-j", "0"])).is_err());
        assert!(parse_args(&s(&["--frob"])).is_err());
        assert_eq!(parse_args(&[]).unwrap().filter, None);
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
        let needs = profile_needs(&[&booted, &direct, &other, &booted]);
        let got: Vec<(&str, bool, &[Image])> = needs
            .iter()
            .map(|n| (n.name.as_str(), n.boots, &n.images[..]))
            .collect();
        assert_eq!(got, [("tv", true, &[][..]), ("rpi4", false, &[Image::Test][..])]);
        assert!(needs.iter().all(|n| n.profile.is_ok()));
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
