//! One input is a disk image (cut after its last non-zero byte; the rest
//! of an 8 MiB disk reads as zeros): mount it, walk it, read, write,
//! rename, remove and sync. Any panic or hang is a bug.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    fat::fuzz::exercise(data);
});
