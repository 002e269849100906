//! `rtc`: wall-clock time (the PL031 driver serves it).
//!
//! | label | words in | reply |
//! |---|---|---|
//! | [`GET`] | — | `[seconds since 1970-01-01 00:00:00 UTC]` |

use crate::ipc::Timeout;
use crate::names::Connection;
use crate::Error;

pub const NAME: &str = "rtc";
pub const GET: u16 = 1;

/// Seconds since the Unix epoch, from the RTC service.
pub fn now(conn: &mut Connection) -> Result<u64, Error> {
    Ok(conn.call_fast(GET, [0; 4], 0, Timeout::millis(1000))?[0])
}

/// A client connection to the RTC.
pub fn connection() -> Connection {
    Connection::new(NAME)
}

/// Calendar date and time (UTC) of `seconds` since the epoch:
/// `(year, month 1-12, day 1-31, hour, minute, second)`.
pub fn civil_from_unix(seconds: u64) -> (u64, u32, u32, u32, u32, u32) {
    let days = seconds / 86_400;
    let rem = seconds % 86_400;
    // Howard Hinnant's days-to-civil algorithm, for days >= 0.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + u64::from(month <= 2);
    (
        year,
        month,
        day,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_unix(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(civil_from_unix(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(civil_from_unix(1_795_000_000), (2026, 11, 18, 11, 6, 40));
        assert_eq!(civil_from_unix(4_102_444_799), (2099, 12, 31, 23, 59, 59));
    }
}
