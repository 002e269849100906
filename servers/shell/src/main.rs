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

use alloc::vec::Vec;
use shell::editor::{Editor, Event};
use shell::session::{Session, PROMPT};
use userlib::abi::boot_info::StartInfo;
use userlib::ipc::Timeout;
use userlib::names;
use userlib::services::console::{self, Console};
use userlib::services::MAX_BYTES;
use userlib::{log, syscall, Error, Handle};

// Heap: command output and the supervisor's records, a few KiB each, and
// `fetch`'s response, at most 16 KiB (the
// watch profile gives the whole task 256 KiB).
#[cfg(not(test))]
userlib::entry!(main, heap = 64 * 1024);

#[cfg_attr(test, allow(dead_code))]
fn main(_start: &'static StartInfo) {
    let mut sh = Shell {
        console: Console::with_endpoint(wait_for_console()),
        editor: Editor::new(),
        session: Session::new(),
    };
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
    editor: Editor,
    session: Session,
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
                    let out = self.session.run(&line);
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
