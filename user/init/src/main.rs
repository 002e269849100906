//! init: the first user task.
//!
//! The kernel starts it with all free memory in a pool, the console, the
//! device tree and the boot archive (see `abi::boot_info`); init reads the
//! devices from the tree and makes their regions and interrupt objects.
//! Init is the system's supervisor ([`supervisor`]): it reads the device
//! profile from the archive (the `profile` crate's binary form), matches the device-tree nodes
//! against the profile's drivers and starts one driver task per matched
//! device with only that device's resources ([`devices`]), starts the
//! profile's servers, serves the name service and the control calls, and
//! restarts what fails. With `utest` on the kernel command line it then
//! runs the user-space tests ([`config`]), one at a time, on that system.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

extern crate alloc;

mod config;
mod devices;
mod supervisor;
mod verdict;

use alloc::string::String;
use alloc::vec::Vec;
use config::Mode;
use profile::{Profile, Task as TaskSpec};
use supervisor::{timeout_until, Supervisor};
use userlib::abi::boot_info::BootInfo;
use userlib::abi::{FaultKind, ObjectType};
use userlib::ipc::{unpack_text, Message};
use userlib::loader;
use userlib::{log, println, proto, syscall, vspace, Error, Rights};
use verdict::{End, Expected, Fault};

#[cfg(not(test))]
userlib::entry!(main, heap = 256 << 10);

/// Priority of programs started from the command line and of tests: below
/// init's own, so that supervision always gets to run.
const CHILD_PRIORITY: u8 = 16;
/// A test program's pool, at most (a quarter of init's if that is less).
const TEST_POOL_BYTES: u64 = 64 << 20;
/// The pool of a program named by `start=` (not in the profile).
const SERVICE_POOL_BYTES: u64 = 1 << 20;

#[cfg_attr(test, allow(dead_code))]
fn main(boot: &'static BootInfo) -> i32 {
    log::info!(
        "Kestrel init: {} MiB free in pool, {} CPUs, device tree {} bytes, archive {} bytes, bootargs \"{}\"",
        boot.pool_bytes >> 20,
        boot.cpus,
        boot.dtb_size,
        boot.archive_size,
        boot.bootargs()
    );
    let Some(archive) = loader::archive() else {
        log::error!("no boot archive");
        return 1;
    };
    let programs: Vec<&'static str> = userlib::cpio::Archive::new(archive)
        .filter_map(|e| match e {
            Ok(e) if e.is_file() && e.name != "init" => Some(e.name),
            Ok(_) => None,
            Err(err) => {
                log::error!("boot archive: {err}");
                None
            }
        })
        .collect();
    log::info!("{} programs in the archive", programs.len());

    let me = userlib::process();
    let ep = match syscall::create(me.pool, ObjectType::Endpoint, 0) {
        Ok(ep) => ep,
        Err(e) => {
            log::error!("cannot create init's endpoint: {e}");
            return 1;
        }
    };
    let profile = read_profile(archive, boot.bootargs());
    let devices = match devices::device_tree(boot) {
        Some(dtb) => {
            let mut kernel = devices::Kernel {
                pool: me.pool,
                system: me.console,
            };
            devices::collect(dtb, &mut kernel, devices::read_virtio_id)
        }
        None => {
            log::warn!("no device tree from the kernel: no devices");
            Vec::new()
        }
    };
    log::info!(
        "devices: {} nodes, {} regions, {} interrupt lines",
        devices.len(),
        devices.iter().map(|d| d.regions.len()).sum::<usize>(),
        devices.iter().map(|d| d.irqs.len()).sum::<usize>()
    );
    let mut sup = Supervisor::new(ep, devices, boot.pool_bytes);
    let mode = config::parse(boot.bootargs());
    let started = profile.as_ref().map_or(0, |p| sup.start_profile(p));
    if let Mode::Serve { programs } = &mode {
        for name in programs {
            sup.add(adhoc(name, SERVICE_POOL_BYTES, false), None, false);
        }
    }
    match &profile {
        Some(p) => println!("init: profile {} up: {started} tasks started", p.name),
        None => log::info!("no device profile in the boot archive: no drivers started"),
    }
    match mode {
        Mode::Test { filters, timeout_s } => {
            // `seed=N` and `calls=N` on the command line go to every test
            // program (the hostile fuzzer replays a run with them), and
            // `fwd=PORT` (a host port QEMU forwards, for test-net-hostile).
            let passed: Vec<&str> = boot
                .bootargs()
                .split_whitespace()
                .filter(|w| w.starts_with("seed=") || w.starts_with("calls=") || w.starts_with("fwd="))
                .collect();
            let seed = passed.join(" ");
            run_tests(&mut sup, &config::select(&programs, &filters), timeout_s, &seed)
        }
        Mode::Serve { .. } => serve(&mut sup),
    }
}

/// The archive's `profile` file, unless the command line says
/// `profile=none` (tests that drive devices themselves); `servers=none`
/// keeps its drivers only (tests of a device a server would otherwise own:
/// the compositor takes the display, keyboard and touch), `servers=A,B`
/// its drivers and those servers (the file benchmarks: `servers=fs`);
/// `arg.PROGRAM.KEY=VALUE` sets a server's argument ([`config::set_args`]).
fn read_profile(archive: &'static [u8], bootargs: &str) -> Option<Profile> {
    if bootargs.split_whitespace().any(|w| w == "profile=none") {
        log::info!("profile=none: no drivers or servers started");
        return None;
    }
    let file = userlib::cpio::Archive::new(archive)
        .filter_map(Result::ok)
        .find(|e| e.is_file() && e.name == "profile")?;
    match profile::decode(file.data) {
        Ok(mut p) => {
            if let Some(keep) = bootargs.split_whitespace().find_map(|w| w.strip_prefix("servers=")) {
                log::info!("servers={keep}: drivers and only these servers");
                p.servers.retain(|s| keep.split(',').any(|k| k == s.program));
            }
            for s in &mut p.servers {
                let args = config::set_args(bootargs, &s.program, &s.args);
                if args != s.args {
                    log::info!("{}: arguments `{args}` (command line)", s.program);
                    s.args = args;
                }
            }
            Some(p)
        }
        Err(e) => {
            log::error!("profile: {e}; no drivers started");
            None
        }
    }
}

/// A program that is not in the profile (`start=` or a test): routed to
/// nothing (a test gets `config::TEST_ROUTES` on top).
fn adhoc(name: &str, memory: u64, test: bool) -> TaskSpec {
    TaskSpec {
        program: name.into(),
        matches: Vec::new(),
        priority: CHILD_PRIORITY,
        memory,
        args: String::new(),
        control: test,
        archive: test,
        provides: Vec::new(),
        uses: Vec::new(),
        device_memory: Vec::new(),
    }
}

/// Service mode: supervise forever.
fn serve(sup: &mut Supervisor) -> i32 {
    loop {
        let next = sup.run_due();
        let (mut msg, badge) = match sup.reply_recv(timeout_until(next, None)) {
            Ok(m) => m,
            Err(Error::TimedOut) => continue,
            Err(e) => {
                log::error!("receive failed: {e}");
                syscall::sleep_ms(1000);
                continue;
            }
        };
        sup.handle(&mut msg, badge, None);
    }
}

/// Test mode: each program in turn, one report line each, then the
/// result line; the return value is init's exit code.
fn run_tests(sup: &mut Supervisor, names: &[&str], timeout_s: Option<u64>, test_args: &str) -> i32 {
    // Map the loader's scratch window once, so that the translation
    // tables it needs are not counted against the first test's pool
    // check.
    let me = userlib::process();
    if let Ok(mem) = syscall::create(me.pool, ObjectType::Memory, 1) {
        let _ = vspace::with_scratch(mem, 1, Rights::READ | Rights::WRITE, |_| ());
        let _ = syscall::cap_delete(mem);
    }
    println!("utest: running {} programs", names.len());
    let (mut passed, mut failed) = (0u32, 0u32);
    for name in names {
        match run_test(
            sup,
            name,
            timeout_s.or_else(|| config::default_timeout(name)),
            test_args,
        ) {
            Ok(()) => {
                passed += 1;
                println!("utest: {name} ... ok");
            }
            Err(reason) => {
                failed += 1;
                println!("utest: {name} ... FAILED: {reason}");
            }
        }
    }
    println!("utest: result: {passed} passed, {failed} failed");
    if names.is_empty() {
        log::error!("no program matches the utest filter");
        return 1;
    }
    i32::from(failed > 0)
}

/// The device a test program drives itself: `test-devices` gets the PL031
/// RTC's region and interrupt, and so does `test-hostile` (its fuzzers get
/// a read-only copy of the region and the interrupt among their handles).
fn test_device(sup: &Supervisor, name: &str) -> Option<usize> {
    (name == "test-devices" || name == "test-hostile")
        .then(|| sup.devices.iter().position(|d| d.compatible == "arm,pl031"))
        .flatten()
}

fn run_test(sup: &mut Supervisor, name: &str, timeout_s: Option<u64>, test_args: &str) -> Result<(), String> {
    let pool = userlib::process().pool;
    let pool_before = syscall::cap_info(pool).map(|i| i.size).ok();
    let changes_before = sup.changes;
    let memory = TEST_POOL_BYTES.min(pool_before.unwrap_or(0) / 4);
    let device = test_device(sup, name);
    // The profile running beside it, for tests whose figures depend on
    // what else runs (`profile=none`: nothing).
    let profile = if sup.profile.is_empty() {
        "none"
    } else {
        sup.profile.as_str()
    };
    let spec = TaskSpec {
        uses: config::test_routes(name),
        args: alloc::format!("profile={profile} {test_args}").trim_end().into(),
        ..adhoc(name, memory, true)
    };
    let id = sup.add(spec, device, true);
    if sup.tasks.last().is_none_or(|t| t.child.is_none()) {
        sup.tasks.pop();
        return Err("cannot start (see the log)".into());
    }
    let deadline = timeout_s.map(|s| syscall::now_us() + s * 1_000_000);
    let mut expected = None;
    let mut reason: Option<String> = None;
    let end = loop {
        let next = sup.run_due();
        // The clock is read only for a deadline (benchmarks have none).
        let left = match (deadline, timeout_s) {
            (Some(d), Some(s)) => {
                let now = syscall::now_us();
                if now >= d {
                    break End::TimedOut(s);
                }
                Some(d - now)
            }
            _ => None,
        };
        let (mut msg, badge) = match sup.reply_recv(timeout_until(left, next)) {
            Ok(m) => m,
            Err(Error::TimedOut) => continue,
            Err(e) => {
                sup.stop(id);
                sup.tasks.pop();
                return Err(alloc::format!("init's receive failed: {e}"));
            }
        };
        if !sup.handle(&mut msg, badge, Some(id)) {
            continue;
        }
        match msg.label {
            proto::EXPECT_FAULT => {
                let far = msg.word(1);
                expected = Some(Expected {
                    kind: FaultKind::from_word(msg.word(0)),
                    far: (far != proto::ANY_ADDRESS).then_some(far),
                });
                sup.set_reply(Message::new(proto::EXPECT_FAULT));
            }
            proto::REASON => {
                let mut buf = [0u8; proto::TEXT_BYTES];
                reason = Some(unpack_text(&msg, &mut buf).into());
            }
            proto::EXIT => break End::Exit(msg.word(0)),
            _ => {
                let f = Fault::from_words(msg.words());
                if expected.is_none() || f.kind == FaultKind::Panic {
                    log::info!("{name} faulted: {}", verdict::describe(&f));
                }
                break End::Fault(f);
            }
        }
    };
    // A request answered just before the end (the test's own, or another
    // task's) gets its reply now, not at the next test's first receive.
    sup.flush_reply();
    sup.stop(id);
    sup.tasks.retain(|t| t.id != id);
    let pool_after = syscall::cap_info(pool).map(|i| i.size).ok();
    let verdict = verdict::judge(expected, end, reason.as_deref());
    // Everything the program had came from its own pool, carved from
    // init's: once it is destroyed, all of it must be back — unless the
    // rest of the system changed meanwhile (a service restarted or
    // registered), which moves init's pool too.
    let quiet = sup.changes == changes_before + 2;
    match (pool_before, pool_after) {
        (Some(b), Some(a)) if a != b && quiet => {
            let leak = alloc::format!("init's pool had {b} bytes before the program and {a} after it was destroyed");
            Err(match verdict {
                Ok(()) => leak,
                Err(e) => alloc::format!("{e}; and {leak}"),
            })
        }
        _ => verdict,
    }
}
