//! Shared by the isolation and fault programs (one binary per expected
//! fault, in src/bin): each announces the fault it is about to cause with
//! `userlib::test::expect_fault`, then causes it. If the access succeeds
//! the program fails with a reason, which init reports.
#![no_std]

extern crate alloc;

use userlib::console::FixedText;

/// Reached only if the access that should have faulted did not.
pub fn not_faulted(what: core::fmt::Arguments) -> ! {
    let mut t = FixedText::<200>::new();
    let _ = core::fmt::Write::write_fmt(&mut t, what);
    userlib::fail(1, t.as_str())
}
