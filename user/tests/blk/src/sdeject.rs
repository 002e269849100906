//! test-sdeject: the SD card pulled out while a client uses it. The
//! harness ejects the card through QEMU's monitor once this test asks;
//! every request after that must fail with an error within seconds (the
//! driver's bounded waits), never hang, and the driver must stay up to
//! answer the next one (INFO still works).
#![no_std]
#![no_main]

use userlib::abi::boot_info::StartInfo;
use userlib::ipc::Timeout;
use userlib::names::{self, supervisor};
use userlib::proto::TaskState;
use userlib::services::blk::{self, Blk};
use userlib::{log, syscall, Error};

userlib::entry!(main);

fn main(_start: &StartInfo) {
    if !supervisor::tasks()
        .expect("supervisor::tasks")
        .iter()
        .any(|t| t.name == "sdhci")
    {
        log::info!("no sdhci driver on this machine: nothing to test");
        return;
    }
    match names::connect(blk::NAME, Timeout::millis(10_000)) {
        Ok(ep) => syscall::cap_delete(ep).expect("cap_delete"),
        Err(e) => {
            log::info!("no task registered {} ({e}): no card to test", blk::NAME);
            return;
        }
    }
    let mut card = Blk::new(blk::NAME, 64 << 10).expect("Blk::new");
    card.set_timeout(Timeout::millis(30_000));
    card.read(0, 128, 0).expect("read before the card is pulled");
    card.write(1, 1, 0).expect("write before the card is pulled");
    // The harness's monitor command follows this line.
    log::info!("pull the card now");
    // Requests fail once the card is gone: each within the driver's
    // bounds (and the client's 30 s), none hangs.
    let start = syscall::now_us();
    let mut failures: [Option<Error>; 4] = [None; 4];
    let mut i = 0;
    while i < failures.len() {
        let before = syscall::now_us();
        let r = if i % 2 == 0 {
            card.read(0, 128, 0)
        } else {
            card.write(8, 16, 0)
        };
        let took = (syscall::now_us() - before) / 1000;
        match r {
            Ok(()) => {
                assert!(
                    syscall::now_us() - start < 20_000_000,
                    "requests still succeed 20 s after the card was pulled"
                );
                syscall::sleep_ms(100);
            }
            Err(e) => {
                log::info!("request {i} after the pull: {e} after {took} ms");
                assert!(took < 10_000, "a failed request took {took} ms");
                failures[i] = Some(e);
                i += 1;
            }
        }
    }
    for e in failures.iter().flatten() {
        assert!(
            matches!(e, Error::TimedOut | Error::InvalidState),
            "a pulled card is TimedOut or InvalidState to the client, not {e}"
        );
    }
    // The driver is still there and answers.
    let info = card.info().expect("INFO after the card was pulled");
    let t = supervisor::tasks()
        .expect("supervisor::tasks")
        .into_iter()
        .find(|t| t.name == "sdhci" && t.state == TaskState::Running && t.device.contains("7e300000"))
        .expect("the card's driver");
    log::info!(
        "card pulled: 4 requests failed cleanly, the driver still answers ({} sectors), restarts {}",
        info.sectors,
        t.restarts
    );
}
