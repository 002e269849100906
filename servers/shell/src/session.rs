//! A shell session: the commands of one shell instance, run line by line
//! against init's supervisor, the RTC, the file server and the network
//! stack. The console shell (`main.rs`) and the Terminal app on the
//! screen each run one; only how lines come in and text goes out differs.

use crate::command::{self, Command};
use crate::{files, netcmd, report};
use alloc::string::{String, ToString};
use userlib::names::{supervisor, Connection};
use userlib::services::rtc;
use userlib::{syscall, Error};

/// What the shell's prompt reads.
pub const PROMPT: &str = "kestrel> ";

/// One shell's state: its current directory and its connections.
pub struct Session {
    rtc: Connection,
    files: files::Files,
}

impl Session {
    /// A session in its home directory.
    pub fn new() -> Session {
        let mut s = Session {
            rtc: rtc::connection(),
            files: files::Files::new(),
        };
        s.files.go_home();
        s
    }

    /// Runs one command line; the text to show (lines ending in `\n`).
    pub fn run(&mut self, line: &str) -> String {
        execute(line, &mut self.rtc, &mut self.files)
    }
}

impl Default for Session {
    fn default() -> Self {
        Session::new()
    }
}

/// Runs one command line; the text to show (lines ending in `\n`).
fn execute(line: &str, rtc: &mut Connection, files: &mut files::Files) -> String {
    let cmd = match command::parse(line) {
        Ok(None) => return String::new(),
        Ok(Some(c)) => c,
        Err(message) => return message + "\n",
    };
    if let Some(out) = files.run(&cmd) {
        return match out {
            Ok(s) | Err(s) => s,
        };
    }
    let out = match cmd {
        Command::Help => Ok(command::help()),
        Command::Ps => supervisor::tasks().map(|t| report::ps(&t)).map_err(|e| fail("ps", e)),
        Command::Mem => supervisor::memory().map(report::mem).map_err(|e| fail("mem", e)),
        Command::Devices => supervisor::devices()
            .map(|d| report::devices(&d))
            .map_err(|e| fail("devices", e)),
        Command::Services => supervisor::services()
            .map(|s| report::services(&s))
            .map_err(|e| fail("services", e)),
        Command::Kill(target) => control("kill", &target, supervisor::kill),
        Command::Restart(target) => control("restart", &target, supervisor::restart),
        Command::Uptime => Ok(report::uptime(syscall::now_us()) + "\n"),
        Command::Date(device) if device.is_empty() => date(rtc),
        Command::Date(device) => remote_date(&device),
        Command::DateFor(device, seconds) => Ok(remote_date_for(&device, seconds)),
        Command::Reboot => power("reboot", true),
        Command::Poweroff => power("poweroff", false),
        Command::Ip => netcmd::ip(),
        Command::Ping(host) => netcmd::ping(&host),
        Command::Fetch(url) => netcmd::fetch(&url),
        Command::Resolve(name) => netcmd::resolve(&name),
        Command::Cast(device) => crate::cast::cast(&device),
        Command::Bus => userlib::services::bus::status()
            .and_then(|(me, refused, storage)| {
                let devices = userlib::services::bus::devices()?;
                let pairing = userlib::services::bus::pairing()?;
                Ok(crate::bus::render(&me, refused, &devices)
                    + crate::bus::storage(storage)
                    + &crate::bus::pairing(&pairing))
            })
            .map_err(|e| fail("bus", e)),
        Command::Pair(None) => crate::bus::show_code(),
        Command::Pair(Some((device, code))) => crate::bus::join(&device, code),
        Command::Pairings => userlib::services::bus::pairings()
            .map(|p| crate::bus::pairings(&p))
            .map_err(|e| fail("pair", e)),
        Command::Unpair(device) => crate::bus::forget(&device),
        // The file commands ran above.
        _ => Ok(String::new()),
    };
    match out {
        Ok(s) | Err(s) => s,
    }
}

/// `COMMAND: why` as a line.
fn fail(command: &str, e: Error) -> String {
    alloc::format!("{command}: {}\n", report::error(e))
}

/// `kill`/`restart`: the target is looked up first, so that a wrong name
/// gets a precise message and an ambiguous one is refused; the call then
/// names the task by id.
fn control(command: &str, target: &str, call: fn(&str) -> Result<(), Error>) -> Result<String, String> {
    let tasks = supervisor::tasks().map_err(|e| fail(command, e))?;
    let task = report::resolve(command, target, &tasks).map_err(|m| m + "\n")?;
    if command == "kill" && task.name == userlib::process().name() {
        return Err(alloc::format!(
            "kill: '{}' is this shell (use 'restart' to start it again)\n",
            task.name
        ));
    }
    call(&task.id.to_string()).map_err(|e| alloc::format!("{command}: {}: {}\n", task.name, report::error(e)))?;
    let done = if command == "kill" { "killed" } else { "restarted" };
    Ok(alloc::format!("{done} {} (task {})\n", task.name, task.id))
}

fn date(rtc: &mut Connection) -> Result<String, String> {
    // A driver restarted since the last call: the first call finds the old
    // endpoint dead, the second reconnects.
    let answer = match rtc::now(rtc) {
        Err(Error::PeerDied | Error::BadHandle | Error::WrongType) => rtc::now(rtc),
        other => other,
    };
    match answer {
        Ok(seconds) => Ok(report::date(seconds) + "\n"),
        Err(e) => {
            let registered = supervisor::services()
                .map(|s| {
                    s.iter()
                        .any(|(v, t)| v.get(2) != Some(&0) && t.split(' ').next() == Some(rtc::NAME))
                })
                .unwrap_or(true);
            if registered {
                Err(fail("date", e))
            } else {
                Err(String::from("date: no real-time clock (no 'rtc' service)\n"))
            }
        }
    }
}

/// `date DEVICE`: the paired device's clock, through the soft bus (the
/// same call as to the local clock).
fn remote_date(device: &str) -> Result<String, String> {
    let mut rtc = Connection::remote(device, rtc::NAME);
    let answer = rtc::now(&mut rtc);
    rtc.reset();
    match answer {
        Ok(seconds) => Ok(alloc::format!("{device}: {}\n", report::date(seconds))),
        Err(Error::TimedOut) => Err(alloc::format!("date: {device}: no answer (is it paired? see 'bus')\n")),
        Err(Error::NoRights) => Err(alloc::format!("date: {device} does not share its clock\n")),
        Err(Error::PeerDied | Error::BadHandle) => Err(alloc::format!("date: {device}: peer died (it left)\n")),
        Err(e) => Err(alloc::format!("date: {device}: {}\n", report::error(e))),
    }
}

/// `date DEVICE SECONDS`: the paired device's clock read over one
/// connection, one call after another, for `seconds`: how many calls
/// answered and failed, and the slowest (how long, and when, by this
/// device's clock): what a remote call waits while the other device's bus
/// is busy with something else.
fn remote_date_for(device: &str, seconds: u32) -> String {
    let mut rtc = Connection::remote(device, rtc::NAME);
    let start = syscall::now_us();
    let end = start + u64::from(seconds) * 1_000_000;
    let (mut calls, mut failed, mut worst, mut worst_at) = (0u64, 0u64, 0u64, 0u64);
    let mut first_error = None;
    loop {
        let t = syscall::now_us();
        if t >= end {
            break;
        }
        let r = rtc::now(&mut rtc);
        let took = syscall::now_us() - t;
        calls += 1;
        if took > worst {
            (worst, worst_at) = (took, t - start);
        }
        if let Err(e) = r {
            failed += 1;
            first_error.get_or_insert(e);
        }
    }
    rtc.reset();
    let errors = first_error.map_or_else(String::new, |e| alloc::format!(" (the first: {})", report::error(e)));
    alloc::format!(
        "{device}: {calls} calls in {seconds} s, {failed} failed{errors}; the slowest took {worst} us, {} ms in\n",
        worst_at / 1000
    )
}

fn power(command: &str, reboot: bool) -> Result<String, String> {
    // Returns only on failure; init logs what it is doing.
    Err(fail(command, supervisor::power(reboot)))
}
