//! test-rtc: the `rtc` service (rtc-pl031) answers with a plausible time
//! that advances, and refuses what it does not know.
#![no_std]
#![no_main]

use driver_tests::{board_has, wait_for};
use userlib::abi::boot_info::StartInfo;
use userlib::ipc::{Message, Timeout};
use userlib::services::rtc::{self, civil_from_unix, NAME};
use userlib::test::expect_err;
use userlib::{log, syscall, Error};

userlib::entry!(main);

/// 2020-01-01 00:00:00 UTC.
const YEAR_2020: u64 = 1_577_836_800;

fn main(_start: &StartInfo) {
    if !board_has("arm,pl031", "PL031 RTC") {
        return;
    }
    wait_for(NAME);
    let mut conn = rtc::connection();
    let t0 = rtc::now(&mut conn).expect("rtc GET");
    let (y, mo, d, h, mi, s) = civil_from_unix(t0);
    log::info!("rtc says {t0}: {y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC");
    assert!(t0 > YEAR_2020, "{t0} is before 2020");

    let start = syscall::now_us();
    syscall::sleep_ms(1100);
    let t1 = rtc::now(&mut conn).expect("rtc GET after the sleep");
    let slept_s = (syscall::now_us() - start) / 1_000_000;
    assert!(t1 > t0, "the RTC did not advance across 1.1 s: {t0} then {t1}");
    assert!(t1 - t0 <= slept_s + 2, "the RTC ran {} s in {slept_s} s", t1 - t0);

    expect_err(
        "an unknown request",
        conn.call(&Message::new(0x55), Timeout::millis(1000)),
        Error::InvalidArgument,
    );
    log::info!("rtc advanced {t0} -> {t1} across 1.1 s");
}
