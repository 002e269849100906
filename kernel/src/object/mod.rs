//! Kernel objects and the one lock that guards them.
//!
//! All object state lives in [`Kernel`], behind a single lock taken on every
//! kernel entry and released before returning to user space (the kernel
//! never blocks while holding it and handlers run to completion on a per-CPU
//! stack). Objects are named by generational [`Id`]s, so a reference to a
//! destroyed object is detected instead of followed.
//!
//! Memory accounting: every object is charged to the [`Pool`] it was created
//! from and refunded when destroyed, so a task can only use the kernel
//! memory its pools hold.

pub mod chunks;
pub mod keyed;
pub mod queue;
pub mod slab;
mod types;

pub use queue::IdQueue;
pub use slab::{Id, Slab};
pub use types::*;

#[cfg(all(target_os = "none", feature = "ktest"))]
pub mod check;
#[cfg(target_os = "none")]
mod table;
#[cfg(target_os = "none")]
pub use table::*;
