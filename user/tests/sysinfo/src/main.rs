//! What a shell's `ps`, `reboot` and `poweroff` rely on: per-task and
//! per-thread CPU time and state (`TaskInfo`, `ThreadInfo`) and the
//! refusals of `SystemControl` (this program's console capability has no
//! MANAGE right, so nothing here can power the machine off).
//!
//! Started again with the argument `sleep`, it only sleeps: the child whose
//! CPU time must not grow.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use userlib::abi::boot_info::StartInfo;
use userlib::abi::{ObjectType, Syscall};
use userlib::loader::{self, Spawn};
use userlib::syscall::{self, SystemOp, TaskState, ThreadState};
use userlib::test::expect_err;
use userlib::{log, println, process, thread, Error, Handle, Rights};

userlib::entry!(main, heap = 256 * 1024);

/// How long the CPU-time checks spin.
const SPIN_MICROS: u64 = 20_000;
/// The longest step between two clock reads of a spin that still counts as
/// running: a longer one means the thread was off its CPU meanwhile
/// (preempted, or its QEMU CPU thread stalled by a loaded host), which the
/// kernel may or may not have charged to it.
const STEP_MICROS: u64 = 50;
/// Slack for the calls around a measurement.
const SLACK_MICROS: u64 = 2_000;

fn main(start: &StartInfo) {
    if start.args() == "sleep" {
        loop {
            syscall::sleep_ms(10_000);
        }
    }
    own_cpu_time();
    thread_cpu_time();
    sleeping_child();
    info_errors();
    system_control_refused();
    no_counters();
    println!("test-sysinfo: all checks passed");
}

/// An ordinary program gets no counters capability: `KernelStats` has
/// nothing to name (test-caps-counters tests the rest, the cycle counter's
/// fault included).
fn no_counters() {
    let me = process();
    assert_eq!(me.counters, Handle::NULL, "an ordinary program holds the counters");
    // READ on these, but they are no counters.
    for h in [me.pool, me.task] {
        expect_err(
            "KernelStats without the counters",
            syscall::kernel_stats(h),
            Error::WrongType,
        );
    }
    // No READ on these.
    for h in [me.thread, me.console] {
        expect_err(
            "KernelStats without the counters",
            syscall::kernel_stats(h),
            Error::NoRights,
        );
    }
}

/// Busy for `micros` microseconds of wall-clock time; returns the time it
/// saw itself run: the sum of the steps between clock reads no longer than
/// [`STEP_MICROS`]. The kernel must have charged at least that much to this
/// thread (less the slack), however loaded the host.
fn spin_for(micros: u64) -> u64 {
    let t0 = syscall::now_us();
    let (mut last, mut ran) = (t0, 0);
    while last - t0 < micros {
        let t = syscall::now_us();
        if t - last <= STEP_MICROS {
            ran += t - last;
        }
        last = t;
    }
    ran
}

/// Times a measurement may be taken before the thread it measures counts
/// as never having run for long enough.
const ATTEMPTS: usize = 50;

/// `measure` gives `(used, ran, wall)`: the CPU microseconds the kernel
/// charged over an interval, the microseconds the measured thread saw
/// itself run within it ([`spin_for`]), and the interval's wall-clock
/// length. Every attempt must lie between the two bounds: no more than the
/// wall time (accounting that doubles time fails), no less than the time
/// the thread saw itself run (accounting that misses time fails). The
/// attempts go on until the thread ran for at least a quarter of one: on a
/// loaded host, QEMU may leave its CPU unscheduled for most of an interval,
/// which makes the lower bound weak but never wrong.
#[track_caller]
fn assert_about(what: &str, mut measure: impl FnMut() -> (u64, u64, u64)) {
    for attempt in 1..=ATTEMPTS {
        let (used, ran, wall) = measure();
        log::info!("{what}: {used} us of CPU time, {ran} us seen running, in {wall} us (attempt {attempt})");
        assert!(
            used <= wall + SLACK_MICROS,
            "{what}: {used} us of CPU time in {wall} us"
        );
        assert!(
            used + SLACK_MICROS >= ran,
            "{what}: {used} us of CPU time, but it saw itself run {ran} us"
        );
        if ran * 4 >= SPIN_MICROS {
            return;
        }
    }
    panic!(
        "{what}: never ran {} us of {SPIN_MICROS} us in {ATTEMPTS} attempts",
        SPIN_MICROS / 4
    );
}

/// This task spins ~20 ms: its CPU time grows by about that much (the
/// spin in progress counts, before any switch charges it).
fn own_cpu_time() {
    let me = process();
    let mut last = 0;
    assert_about("own task", || {
        // The wall-clock interval encloses the one measured.
        let t0 = syscall::now_us();
        let before = syscall::task_info(me.task).expect("task_info(own task)");
        let ran = spin_for(SPIN_MICROS);
        let after = syscall::task_info(me.task).expect("task_info(own task)");
        let wall = syscall::now_us() - t0;
        assert_eq!(before.state, Some(TaskState::Running), "{before:?}");
        assert!(before.threads >= 1, "{before:?}");
        assert!(
            before.cpu_micros > 0,
            "a running task has used some CPU time: {before:?}"
        );
        last = after.cpu_micros - before.cpu_micros;
        (last, ran, wall)
    });

    let t = syscall::thread_info(me.thread).expect("thread_info(own thread)");
    assert_eq!(t.state, Some(ThreadState::Running), "{t:?}");
    assert_eq!(t.priority, me.priority, "{t:?}");
    assert!(t.cpu < me.cpus as usize, "{t:?}");
    // The spin was this thread's.
    assert!(t.cpu_micros >= last, "{t:?} vs {last} us in the last spin");
}

/// How long a thread may take to start or end: generous, since QEMU's CPUs
/// are host threads and a loaded host can leave one unscheduled for a while.
const SETTLE_MICROS: u64 = 10_000_000;

/// A second thread spins on another CPU (entering the kernel only to read
/// the clock, which switches nothing) and exits: its time shows while it
/// runs, stays when it is dead, and stays in the task's.
fn thread_cpu_time() {
    static STOP: AtomicBool = AtomicBool::new(false);
    // The time the spinner saw itself run, as `spin_for` counts it.
    static RAN: AtomicU64 = AtomicU64::new(0);
    let me = process();
    let mine = syscall::thread_info(me.thread).expect("thread_info(own thread)").cpu;
    let other = (mine + 1) % me.cpus.max(1) as usize;
    let task_before = syscall::task_info(me.task).expect("task_info");
    let spinner = thread::Builder::default()
        .cpu(other)
        .spawn(|| {
            let mut last = syscall::now_us();
            while !STOP.load(Ordering::Relaxed) {
                let t = syscall::now_us();
                if t - last <= STEP_MICROS {
                    RAN.fetch_add(t - last, Ordering::Relaxed);
                }
                last = t;
            }
        })
        .expect("spawn the spinner");
    let h = spinner.thread();
    let started = syscall::now_us();
    let (t0, i1) = loop {
        let t = syscall::now_us();
        let i = syscall::thread_info(h).expect("thread_info(spinner)");
        if i.state == Some(ThreadState::Running) || me.cpus == 1 {
            break (t, i);
        }
        assert!(t - started < SETTLE_MICROS, "the spinner does not start: {i:?}");
        syscall::sleep_ms(1);
    };
    if me.cpus > 1 {
        // It runs on the CPU it was given, and is charged for all the time
        // it saw itself run there, while it runs (no switch charged it).
        assert_eq!(i1.cpu, other, "{i1:?}");
        let (mut t0, mut i1, mut r1) = (t0, i1, RAN.load(Ordering::Relaxed));
        assert_about("spinner on another CPU", || {
            syscall::sleep(SPIN_MICROS);
            // Read in the opposite order to the start's, so that the
            // interval of `RAN` lies within the one of `thread_info`.
            let r2 = RAN.load(Ordering::Relaxed);
            let i2 = syscall::thread_info(h).expect("thread_info(spinner)");
            let t2 = syscall::now_us();
            // A thread of higher priority may have taken the spinner's CPU
            // meanwhile (on raspi4b the profile's servers run beside the
            // tests): then a switch charged it, and this sample is not the
            // one wanted. It counts as a sample in which it did not run,
            // and `assert_about` takes another (and fails if none comes).
            let measured = if i2.state == Some(ThreadState::Running) {
                (i2.cpu_micros - i1.cpu_micros, r2 - r1, t2 - t0)
            } else {
                log::info!("spinner on another CPU: not running at the sample's end ({i2:?}); again");
                (0, 0, t2 - t0)
            };
            t0 = syscall::now_us();
            i1 = syscall::thread_info(h).expect("thread_info(spinner)");
            r1 = RAN.load(Ordering::Relaxed);
            measured
        });
    } else {
        syscall::sleep(SPIN_MICROS);
    }
    let running = syscall::task_info(me.task).expect("task_info");
    assert_eq!(running.threads, task_before.threads + 1, "{running:?}");
    assert_eq!(running.state, Some(TaskState::Running), "{running:?}");

    STOP.store(true, Ordering::Relaxed);
    let t_end = syscall::now_us();
    let dead = loop {
        let i = syscall::thread_info(h).expect("thread_info(spinner)");
        if i.state == Some(ThreadState::Dead) {
            break i;
        }
        assert!(
            syscall::now_us() - t_end < SETTLE_MICROS,
            "the spinner does not end: {i:?}"
        );
        syscall::sleep_ms(1);
    };
    assert!(dead.cpu_micros >= i1.cpu_micros, "{dead:?} vs {i1:?}");
    let task_after = syscall::task_info(me.task).expect("task_info");
    assert_eq!(task_after.threads, task_before.threads, "{task_after:?}");
    // The dead thread's time is still the task's.
    assert!(
        task_after.cpu_micros >= task_before.cpu_micros + dead.cpu_micros,
        "task {task_before:?} -> {task_after:?}, exited thread {dead:?}"
    );
    // Without MANAGE: refused.
    let weak = syscall::cap_copy(h, Rights::READ).expect("copy the thread capability");
    expect_err(
        "thread_info without MANAGE",
        syscall::thread_info(weak),
        Error::NoRights,
    );
    syscall::cap_delete(weak).unwrap();
    spinner.join().expect("join the spinner");
    expect_err("thread_info(deleted handle)", syscall::thread_info(h), Error::BadHandle);
}

/// A sleeping child task: blocked, and its CPU time does not grow. Dead,
/// it keeps the time it used.
fn sleeping_child() {
    let me = process();
    let elf = loader::find_program(me.name()).expect("find myself in the archive");
    let child = loader::spawn(&Spawn {
        args: "sleep",
        pool_bytes: 2 << 20,
        console: false,
        ..Spawn::new(me.name(), elf)
    })
    .expect("start the sleeper");
    let (task, th) = (child.task, child.thread);
    let t0 = syscall::now_us();
    let i1 = loop {
        let i = syscall::task_info(task).expect("task_info(child)");
        if i.state == Some(TaskState::Blocked) {
            break i;
        }
        assert!(syscall::now_us() - t0 < 5_000_000, "the child never sleeps: {i:?}");
        syscall::sleep_ms(1);
    };
    assert_eq!(i1.threads, 1, "{i1:?}");
    assert!(i1.cpu_micros > 0, "starting up takes CPU time: {i1:?}");
    let t = syscall::thread_info(th).expect("thread_info(child)");
    assert_eq!(t.state, Some(ThreadState::Blocked), "{t:?}");
    spin_for(SPIN_MICROS);
    let i2 = syscall::task_info(task).expect("task_info(child)");
    assert_eq!(i2.state, Some(TaskState::Blocked), "{i2:?}");
    assert_eq!(i2.cpu_micros, i1.cpu_micros, "a sleeping task used CPU time");

    syscall::thread_suspend(th).expect("suspend the child");
    let s = syscall::task_info(task).expect("task_info(child)");
    assert_eq!(s.state, Some(TaskState::Stopped), "{s:?}");
    assert_eq!(
        syscall::thread_info(th).expect("thread_info(child)").state,
        Some(ThreadState::Suspended)
    );

    syscall::task_destroy(task).expect("destroy the child");
    let d = syscall::task_info(task).expect("task_info(dead child)");
    assert_eq!(d.state, Some(TaskState::Dead), "{d:?}");
    assert_eq!(d.threads, 0, "{d:?}");
    assert_eq!(d.cpu_micros, i2.cpu_micros, "a dead task keeps its CPU time");
    assert_eq!(
        syscall::thread_info(th).expect("thread_info(dead)").state,
        Some(ThreadState::Dead)
    );
    child.destroy().expect("delete the child");
    expect_err("task_info(deleted task)", syscall::task_info(task), Error::BadHandle);
}

/// Wrong types, missing rights, stale handles.
fn info_errors() {
    let me = process();
    let fresh = syscall::create(me.pool, ObjectType::Task, 0).expect("create a task");
    let i = syscall::task_info(fresh).expect("task_info(new task)");
    assert_eq!((i.state, i.threads, i.cpu_micros), (Some(TaskState::Stopped), 0, 0));
    let weak = syscall::cap_copy(fresh, Rights::WRITE | Rights::MAP).expect("copy the task capability");
    expect_err("task_info without READ", syscall::task_info(weak), Error::NoRights);
    syscall::cap_delete(weak).unwrap();
    // Capabilities with the rights asked for, to the wrong kind of object.
    let ep = syscall::create(me.pool, ObjectType::Endpoint, 0).expect("an endpoint");
    for (what, h) in [("endpoint", ep), ("pool", me.pool)] {
        expect_err(what, syscall::task_info(h), Error::WrongType);
    }
    syscall::cap_delete(ep).unwrap();
    for (what, h) in [("task", fresh), ("pool", me.pool)] {
        expect_err(what, syscall::thread_info(h), Error::WrongType);
    }
    // Rights are checked first: the console (no READ) is refused so.
    expect_err("task_info(console)", syscall::task_info(me.console), Error::NoRights);
    syscall::task_destroy(fresh).expect("destroy the new task");
    let dead = syscall::task_info(fresh).expect("task_info(destroyed)");
    assert_eq!(dead.state, Some(TaskState::Dead), "{dead:?}");
    syscall::cap_delete(fresh).unwrap();
    expect_err("task_info(stale)", syscall::task_info(fresh), Error::BadHandle);
    expect_err("task_info(NULL)", syscall::task_info(Handle::NULL), Error::BadHandle);
    expect_err("thread_info(stale)", syscall::thread_info(fresh), Error::BadHandle);
}

/// `SystemControl` with `x0` and `x1` as given.
fn raw_system_control(x0: u64, x1: u64) -> Result<(), Error> {
    // SAFETY: SystemControl reads only registers; refused, it returns
    // having changed nothing.
    let r = unsafe { userlib::sys::call(Syscall::SystemControl, &[x0, x1, 0, 0, 0, 0, 0, 0]) };
    Error::check(r[0])
}

/// This program's console is WRITE-only (what the loader gives): every
/// power request is refused, a bad operation first.
fn system_control_refused() {
    let me = process();
    let rights = syscall::cap_info(me.console).expect("cap_info(console)").rights;
    assert!(rights.contains(Rights::WRITE), "{rights:?}");
    assert!(
        !rights.contains(Rights::MANAGE),
        "a program's console has MANAGE: {rights:?}"
    );
    assert_eq!(syscall::system_control(me.console, SystemOp::PowerOff), Error::NoRights);
    assert_eq!(syscall::system_control(me.console, SystemOp::Reboot), Error::NoRights);
    // Copies never gain the right.
    let copy = syscall::cap_copy(me.console, Rights::all()).expect("copy the console");
    assert!(!syscall::cap_info(copy).unwrap().rights.contains(Rights::MANAGE));
    assert_eq!(syscall::system_control(copy, SystemOp::Reboot), Error::NoRights);
    syscall::cap_delete(copy).unwrap();
    assert_eq!(syscall::system_control(copy, SystemOp::PowerOff), Error::BadHandle);
    // (Operation 2 is the kernel's self-check, 3 the longest
    // interrupts-masked stretch, both in the test image; 3 is refused
    // without -icount, where it is not measured.)
    assert!(
        matches!(syscall::masked_max(), Ok(_) | Err(Error::NotSupported)),
        "{:?}",
        syscall::masked_max()
    );
    for op in [4, 5, u64::MAX] {
        expect_err(
            "SystemControl with a bad operation",
            raw_system_control(me.console.0 as u64, op),
            Error::InvalidArgument,
        );
    }
    // The right is on the console only: a pool with MANAGE is no key.
    assert_eq!(syscall::system_control(me.pool, SystemOp::PowerOff), Error::WrongType);
    assert_eq!(
        syscall::system_control(Handle::NULL, SystemOp::PowerOff),
        Error::BadHandle
    );
}
