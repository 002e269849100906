//! The Kestrel kernel binary: everything lives in the `kernel` library; the
//! boot stub (crate `boot`) enters it at `kernel_main`.
#![no_std]
#![no_main]

extern crate boot;
extern crate kernel;
