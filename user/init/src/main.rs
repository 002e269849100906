//! init: the first user task.
//!
//! The kernel starts it with all free memory in a pool, the console, the
//! device regions, the IRQs and the boot archive (see `abi::boot_info`).
//! It greets, then either runs the user-space tests (`utest` on the kernel
//! command line, see [`config`]) or starts and supervises the programs the
//! command line names. Every child gets a badged copy of init's endpoint as
//! its parent endpoint and as its threads' fault handler, so one receive
//! loop sees exits, fault reports and test announcements, and the badge
//! says whose they are.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

extern crate alloc;

mod config;
mod verdict;

use alloc::string::String;
use alloc::vec::Vec;
use config::Mode;
use userlib::abi::boot_info::{nul_terminated, BootInfo};
use userlib::abi::{FaultKind, ObjectType};
use userlib::ipc::{unpack_text, Message, Timeout};
use userlib::loader::{self, Child, Spawn};
use userlib::{log, println, proto, syscall, vspace, Error, Handle, Rights};
use verdict::{End, Expected, Fault};

#[cfg(not(test))]
userlib::entry!(main, heap = 1 << 20);

/// Priority of the programs init starts: below init's own, so that init's
/// supervision always gets to run.
const CHILD_PRIORITY: u8 = 16;
/// A test program's pool, at most (a quarter of init's if that is less).
const TEST_POOL_BYTES: u64 = 64 << 20;
/// A service's pool.
const SERVICE_POOL_BYTES: u64 = 16 << 20;
/// Restarts of a faulting service before init gives up on it.
const MAX_RESTARTS: u32 = 5;
/// First restart delay; doubles with each restart.
const FIRST_BACKOFF_MS: u64 = 100;

#[cfg_attr(test, allow(dead_code))]
fn main(boot: &'static BootInfo) -> i32 {
    log::info!(
        "Kestrel init: {} MiB free in pool, {} CPUs, {} device regions, {} IRQs, archive {} bytes, bootargs \"{}\"",
        boot.pool_bytes >> 20,
        boot.cpus,
        boot.device_count,
        boot.irq_count,
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
    let mut init = Init {
        ep,
        next_badge: 1,
        rtc: rtc(boot),
    };
    match config::parse(boot.bootargs()) {
        Mode::Test { filters, timeout_s } => init.run_tests(&config::select(&programs, &filters), timeout_s),
        Mode::Serve { programs } => init.serve(&programs),
    }
}

struct Init {
    ep: Handle,
    next_badge: u64,
    /// The PL031 RTC's device region and IRQ, for the program that drives it.
    rtc: Option<(Handle, Handle)>,
}

/// The first PL031 RTC in the boot info, with its interrupt line.
fn rtc(boot: &BootInfo) -> Option<(Handle, Handle)> {
    let devices = &boot.devices[..(boot.device_count as usize).min(boot.devices.len())];
    let irqs = &boot.irqs[..(boot.irq_count as usize).min(boot.irqs.len())];
    let device = devices.iter().find(|d| nul_terminated(&d.compatible) == "arm,pl031")?;
    let irq = irqs.iter().find(|i| i.node == device.node)?;
    Some((Handle(device.handle), Handle(irq.handle)))
}

impl Init {
    /// Starts program `name` from the archive with a fresh badge.
    fn start(&mut self, name: &str, pool_bytes: u64) -> Result<Child, String> {
        let elf = loader::find_program(name).map_err(|e| alloc::format!("{e}"))?;
        let badge = self.next_badge;
        self.next_badge += 1;
        let pool_left = syscall::cap_info(userlib::process().pool).map(|i| i.size).unwrap_or(0);
        // Only the program that drives the RTC gets it.
        let rtc = [
            self.rtc
                .map(|(r, _)| (r, Rights::READ | Rights::WRITE | Rights::MAP | Rights::MANAGE)),
            self.rtc.map(|(_, i)| (i, Rights::MANAGE)),
        ];
        let extra: Vec<(Handle, Rights)> = if name == "test-devices" {
            rtc.iter().flatten().copied().collect()
        } else {
            Vec::new()
        };
        let spawn = Spawn {
            pool_bytes: pool_bytes.min(pool_left / 4),
            priority: CHILD_PRIORITY,
            archive: true,
            supervisor: Some((self.ep, badge)),
            extra: &extra,
            ..Spawn::new(name, elf)
        };
        loader::spawn(&spawn).map_err(|e| alloc::format!("cannot start: {e}"))
    }

    /// Test mode: each program in turn, one report line each, then the
    /// result line; the return value is init's exit code.
    fn run_tests(&mut self, names: &[&str], timeout_s: Option<u64>) -> i32 {
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
            match self.run_test(name, timeout_s.unwrap_or_else(|| config::default_timeout(name))) {
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

    fn run_test(&mut self, name: &str, timeout_s: u64) -> Result<(), String> {
        let pool = userlib::process().pool;
        let pool_before = syscall::cap_info(pool).map(|i| i.size).ok();
        let child = self.start(name, TEST_POOL_BYTES)?;
        let deadline = syscall::now_us() + timeout_s * 1_000_000;
        let mut expected = None;
        let mut reason: Option<String> = None;
        let end = loop {
            let now = syscall::now_us();
            if now >= deadline {
                break End::TimedOut(timeout_s);
            }
            let (msg, badge) = match syscall::recv(self.ep, Timeout::Micros(deadline - now)) {
                Ok(m) => m,
                Err(Error::TimedOut) => break End::TimedOut(timeout_s),
                Err(e) => {
                    let _ = child.destroy();
                    return Err(alloc::format!("init's receive failed: {e}"));
                }
            };
            if badge != child.badge {
                log::warn!(
                    "message {:#x} from a finished program (badge {badge}) ignored",
                    msg.label
                );
                let _ = syscall::reply(&Message::new(0));
                continue;
            }
            match msg.label {
                proto::EXPECT_FAULT => {
                    let far = msg.word(1);
                    expected = Some(Expected {
                        kind: FaultKind::from_word(msg.word(0)),
                        far: (far != proto::ANY_ADDRESS).then_some(far),
                    });
                    let _ = syscall::reply(&Message::new(proto::EXPECT_FAULT));
                }
                proto::REASON => {
                    let mut buf = [0u8; 504];
                    reason = Some(unpack_text(&msg, &mut buf).into());
                }
                proto::EXIT => break End::Exit(msg.word(0)),
                FaultKind::LABEL => {
                    let f = Fault::from_words(msg.words());
                    if expected.is_none() || f.kind == FaultKind::Panic {
                        log::info!("{name} faulted: {}", verdict::describe(&f));
                    }
                    break End::Fault(f);
                }
                other => {
                    log::warn!("{name}: unexpected message label {other:#x} ignored");
                    let _ = syscall::reply(&Message::new(0));
                }
            }
        };
        if let Err(e) = child.destroy() {
            log::warn!("{name}: cleaning up: {e}");
        }
        let pool_after = syscall::cap_info(pool).map(|i| i.size).ok();
        let verdict = verdict::judge(expected, end, reason.as_deref());
        // Everything the program had came from its own pool, carved from
        // init's: once it is destroyed, all of it must be back.
        match (pool_before, pool_after) {
            (Some(b), Some(a)) if a != b => {
                let leak =
                    alloc::format!("init's pool had {b} bytes before the program and {a} after it was destroyed");
                Err(match verdict {
                    Ok(()) => leak,
                    Err(e) => alloc::format!("{e}; and {leak}"),
                })
            }
            _ => verdict,
        }
    }

    /// Service mode: start the named programs and restart them after
    /// faults, with exponential backoff, up to [`MAX_RESTARTS`] times.
    fn serve(&mut self, names: &[String]) -> i32 {
        let mut services: Vec<Service> = Vec::new();
        for name in names {
            let mut s = Service {
                name: name.clone(),
                child: None,
                restarts: 0,
            };
            s.child = self.start_service(&s.name);
            services.push(s);
        }
        if services.is_empty() {
            log::info!("nothing to start (kernel command line: start=NAME,... or utest); idle");
        }
        loop {
            let (msg, badge) = match syscall::recv(self.ep, Timeout::Forever) {
                Ok(m) => m,
                Err(e) => {
                    log::error!("receive failed: {e}");
                    syscall::sleep_ms(1000);
                    continue;
                }
            };
            let Some(s) = services
                .iter_mut()
                .find(|s| s.child.as_ref().is_some_and(|c| c.badge == badge))
            else {
                let _ = syscall::reply(&Message::new(0));
                continue;
            };
            match msg.label {
                FaultKind::LABEL => {
                    let f = Fault::from_words(msg.words());
                    log::info!("{} faulted: {}", s.name, verdict::describe(&f));
                    if let Some(c) = s.child.take() {
                        let _ = c.destroy();
                    }
                    if s.restarts >= MAX_RESTARTS {
                        log::warn!("{}: faulted {} times; leaving it dead", s.name, s.restarts + 1);
                        continue;
                    }
                    let delay = FIRST_BACKOFF_MS << s.restarts;
                    s.restarts += 1;
                    log::info!(
                        "restarting {} in {delay} ms (restart {}/{MAX_RESTARTS})",
                        s.name,
                        s.restarts
                    );
                    syscall::sleep_ms(delay);
                    s.child = self.start_service(&s.name);
                }
                proto::EXIT => {
                    log::info!("{} exited with code {}", s.name, msg.word(0));
                    if let Some(c) = s.child.take() {
                        let _ = c.destroy();
                    }
                }
                proto::REASON => {
                    let mut buf = [0u8; 504];
                    log::info!("{} is failing: {}", s.name, unpack_text(&msg, &mut buf));
                }
                _ => {
                    let _ = syscall::reply(&Message::new(0));
                }
            }
        }
    }

    fn start_service(&mut self, name: &str) -> Option<Child> {
        match self.start(name, SERVICE_POOL_BYTES) {
            Ok(c) => {
                log::info!("started {name}");
                Some(c)
            }
            Err(e) => {
                log::error!("{name}: {e}");
                None
            }
        }
    }
}

struct Service {
    name: String,
    child: Option<Child>,
    restarts: u32,
}
