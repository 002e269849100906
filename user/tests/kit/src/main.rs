//! The virtio HAL's `dma_alloc` cannot report a failure (the trait returns
//! an address and a pointer). When the driver's pool is exhausted it must
//! not return physical address 0 and a dangling pointer (the device would
//! then DMA into physical page 0, the driver write through the pointer):
//! it panics, so the supervisor restarts the driver. This program asks for
//! more DMA memory than its pool holds and expects exactly that panic.
#![no_std]
#![no_main]

use driverkit::virtio::KitHal;
use userlib::abi::boot_info::StartInfo;
use userlib::abi::FaultKind;
use userlib::proto::PANIC_EXIT_CODE;
use userlib::test::expect_fault;
use userlib::{println, syscall};
use virtio_drivers::{BufferDirection, Hal};

userlib::entry!(main, heap = 64 * 1024);

/// 4 GiB of DMA memory: more than any test program's pool.
const PAGES: usize = 1 << 20;

fn main(_: &StartInfo) {
    println!("test-kit-dma: asking for {PAGES} pages of DMA memory; the driver must panic");
    expect_fault(FaultKind::Panic, Some(PANIC_EXIT_CODE));
    let (physical, _) = KitHal::dma_alloc(PAGES, BufferDirection::DriverToDevice);
    // Not reached with the fix: an exit code other than the panic's fails
    // the expectation above.
    println!("test-kit-dma: dma_alloc returned {physical:#x} instead of panicking");
    syscall::thread_exit(1);
}
