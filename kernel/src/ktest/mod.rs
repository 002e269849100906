//! In-kernel tests on stable Rust.
//!
//! A test is a function registered with [`ktest!`](crate::ktest): the macro
//! places a [`KTest`] record in the `.ktests` linker section, and the test
//! image (`--features ktest`) runs every record after boot, printing one line
//! per test and a summary (see docs/CONTRACTS.md), then leaves QEMU with a
//! semihosting exit code. In the production image the macro expands to nothing.

use alloc::string::String;

#[cfg(feature = "ktest")]
mod crash;
#[cfg(feature = "ktest")]
pub mod exhaust;
#[cfg(feature = "ktest")]
mod system;

/// What a test returns: `Err` carries the failure message.
pub type TestResult = Result<(), String>;

/// One registered test.
#[repr(C)]
pub struct KTest {
    pub name: &'static str,
    pub run: fn() -> TestResult,
}

/// Register an in-kernel test: `ktest!(fn name() { ...; Ok(()) });`
#[macro_export]
macro_rules! ktest {
    (fn $name:ident() $body:block) => {
        #[cfg(feature = "ktest")]
        const _: () = {
            fn $name() -> $crate::ktest::TestResult $body
            #[used]
            #[link_section = ".ktests"]
            static TEST: $crate::ktest::KTest = $crate::ktest::KTest {
                name: concat!(module_path!(), "::", stringify!($name)),
                run: $name,
            };
        };
    };
}

/// Fail the current test unless `cond` holds.
#[macro_export]
macro_rules! kassert {
    ($cond:expr) => {
        if !$cond {
            return Err(alloc::format!("assertion failed: {} at {}:{}", stringify!($cond), file!(), line!()));
        }
    };
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(alloc::format!("{} at {}:{}", alloc::format!($($fmt)+), file!(), line!()));
        }
    };
}

/// Fail the current test unless the two values are equal.
#[macro_export]
macro_rules! kassert_eq {
    ($left:expr, $right:expr) => {{
        let (l, r) = (&$left, &$right);
        if l != r {
            return Err(alloc::format!(
                "{} == {} failed: {:?} != {:?} at {}:{}",
                stringify!($left),
                stringify!($right),
                l,
                r,
                file!(),
                line!()
            ));
        }
    }};
}

/// Every registered test, in link order.
pub fn all() -> &'static [KTest] {
    let layout = boot::image_layout();
    let count = (layout.ktests_end - layout.ktests_start) as usize / core::mem::size_of::<KTest>();
    // SAFETY: the linker script gathers exactly the `.ktests` statics, each
    // a KTest, contiguously and aligned, between these two symbols.
    unsafe { core::slice::from_raw_parts(layout.ktests_start as *const KTest, count) }
}

/// Value of `key=value` in the kernel command line.
pub fn bootarg<'a>(bootargs: &'a str, key: &str) -> Option<&'a str> {
    bootargs
        .split_whitespace()
        .find_map(|arg| arg.strip_prefix(key)?.strip_prefix('='))
}

/// Run the tests the command line selects and report. Then leave QEMU,
/// unless the command line asks for the user-space tests (`utest`) and all
/// kernel tests passed: then return, and init runs them.
#[cfg(feature = "ktest")]
pub fn run(machine: &hal::dt::Machine<'static>) {
    system::set_machine(machine);
    if let Some(kind) = bootarg(machine.bootargs, "ktest.crash") {
        crash::crash(kind);
    }
    let filter = bootarg(machine.bootargs, "ktest.filter").unwrap_or("");
    let tests = all().iter().filter(|t| t.name.contains(filter));
    let total = tests.clone().count();
    crate::info!("ktest: running {total} tests");
    let (mut passed, mut failed) = (0, 0);
    for test in tests {
        let free_before = crate::mm::available_bytes();
        match (test.run)() {
            Ok(()) => {
                let free_after = crate::mm::available_bytes();
                if free_after == free_before {
                    passed += 1;
                    crate::info!("ktest: {} ... ok", test.name);
                } else {
                    failed += 1;
                    crate::error!(
                        "ktest: {} ... FAILED: leaked {} bytes of kernel memory",
                        test.name,
                        free_before as i64 - free_after as i64
                    );
                }
            }
            Err(reason) => {
                failed += 1;
                crate::error!("ktest: {} ... FAILED: {reason}", test.name);
            }
        }
    }
    crate::info!("ktest: result: {passed} passed, {failed} failed");
    let wants_user_tests = machine
        .bootargs
        .split_whitespace()
        .any(|a| a == "utest" || a.starts_with("utest="));
    if wants_user_tests && failed == 0 {
        return;
    }
    let use_psci = bootarg(machine.bootargs, "ktest.exit") == Some("psci");
    crate::power::test_exit(u32::from(failed != 0), use_psci)
}
