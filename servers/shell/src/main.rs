//! shell: the interactive task on the console.
//!
//! It reads keys from the console service, edits lines ([`shell::editor`]),
//! and runs commands ([`shell::command`]) against init's supervisor calls
//! (`userlib::names::supervisor`) and the RTC service. Output goes through
//! the console service too, so it is ordered with the echo. `kill`,
//! `restart`, `reboot` and `poweroff` need the supervisor's control right,
//! which the profile grants (`control = true`) and init checks.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

extern crate alloc;

mod files;
mod netcmd;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use shell::command::{self, Command};
use shell::editor::{Editor, Event};
use shell::report;
use userlib::abi::boot_info::StartInfo;
use userlib::ipc::Timeout;
use userlib::names::{self, supervisor, Connection};
use userlib::services::console::{self, Console};
use userlib::services::{rtc, MAX_BYTES};
use userlib::{log, syscall, Error, Handle};

// Heap: command output and the supervisor's records, a few KiB each, and
// `fetch`'s response, at most 16 KiB (the
// watch profile gives the whole task 256 KiB).
#[cfg(not(test))]
userlib::entry!(main, heap = 64 * 1024);

const PROMPT: &str = "kestrel> ";

#[cfg_attr(test, allow(dead_code))]
fn main(_start: &'static StartInfo) {
    let mut sh = Shell {
        console: Console::with_endpoint(wait_for_console()),
        rtc: rtc::connection(),
        editor: Editor::new(),
        files: files::Files::new(),
    };
    sh.files.go_home();
    sh.print("Kestrel shell: type 'help' for the commands.\n");
    sh.print(PROMPT);
    sh.run();
}

/// The console service's endpoint, once it is registered (the driver may
/// start after the shell); says once that it waits.
fn wait_for_console() -> Handle {
    let mut said = false;
    loop {
        match names::connect(console::NAME, Timeout::millis(1000)) {
            Ok(ep) => {
                if said {
                    log::info!("console service is up");
                }
                return ep;
            }
            Err(e) => {
                if !said {
                    log::warn!("waiting for the console service ({e})");
                    said = true;
                }
                if e != Error::TimedOut {
                    syscall::sleep_ms(1000);
                }
            }
        }
    }
}

struct Shell {
    console: Console,
    rtc: Connection,
    editor: Editor,
    files: files::Files,
}

impl Shell {
    fn run(&mut self) -> ! {
        let mut buf = [0u8; MAX_BYTES];
        let mut failing = false;
        loop {
            let n = match self.console.read(&mut buf, Timeout::Forever) {
                Ok(bytes) => bytes.len(),
                Err(e) => {
                    // The driver died or restarts: the client reconnects
                    // on the next call.
                    if !failing {
                        log::warn!("console read failed ({e}); retrying");
                        failing = true;
                    }
                    syscall::sleep_ms(100);
                    continue;
                }
            };
            let mut echo = Vec::new();
            if failing {
                // Other output may have come meanwhile: show the line afresh.
                failing = false;
                self.print(PROMPT);
                self.editor.redraw(&mut echo);
            }
            for &b in &buf[..n] {
                let Some(event) = self.editor.key(b, &mut echo) else {
                    continue;
                };
                self.write(&echo);
                echo.clear();
                if let Event::Line(line) = event {
                    let out = execute(&line, &mut self.rtc, &mut self.files);
                    self.print(&out);
                }
                self.print(PROMPT);
            }
            self.write(&echo);
        }
    }

    /// Text with `\n` line ends, sent with `\r\n` (the terminal is raw).
    fn print(&mut self, text: &str) {
        let mut bytes = Vec::with_capacity(text.len() + 16);
        for b in text.bytes() {
            if b == b'\n' {
                bytes.push(b'\r');
            }
            bytes.push(b);
        }
        self.write(&bytes);
    }

    fn write(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        // A failed write is retried once: the first call after the driver
        // restarted fails and drops the stale connection.
        if self.console.write(bytes).is_err() {
            let _ = self.console.write(bytes);
        }
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
        Command::Reboot => power("reboot", true),
        Command::Poweroff => power("poweroff", false),
        Command::Ip => netcmd::ip(),
        Command::Ping(host) => netcmd::ping(&host),
        Command::Fetch(url) => netcmd::fetch(&url),
        Command::Resolve(name) => netcmd::resolve(&name),
        Command::Bus => userlib::services::bus::status()
            .and_then(|(me, refused)| Ok(shell::bus::render(&me, refused, &userlib::services::bus::devices()?)))
            .map_err(|e| fail("bus", e)),
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

fn power(command: &str, reboot: bool) -> Result<String, String> {
    // Returns only on failure; init logs what it is doing.
    Err(fail(command, supervisor::power(reboot)))
}
