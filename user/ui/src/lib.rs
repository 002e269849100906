//! The UI kit every graphical task shares (status bar, home, control
//! center, apps): nothing draws by hand twice.
//!
//! - [`canvas`]: pixels (`0xAARRGGBB`, premultiplied) with clipping:
//!   rectangles, rounded rectangles, circles, glyph coverage;
//! - [`text`]: antialiased TrueType text (DejaVu Sans from the boot
//!   archive, rasterized by `ab_glyph`), a glyph cache, UTF-8 throughout;
//! - [`widgets`]: label, button, list, card, text field and a column/grid
//!   layout, with hit-testing and keyboard focus;
//! - [`window`]: a compositor surface in this task's own memory
//!   (`userlib::services::compositor`), reconnected after a compositor
//!   restart.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod canvas;
pub mod text;
pub mod widgets;
#[cfg(not(test))]
pub mod window;

pub use canvas::{Canvas, Rect};
