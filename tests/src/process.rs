//! Running a child process (QEMU, or `xtask dt`) with a timeout while capturing
//! stdout and stderr line by line, with an optional early stop.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub stream: Stream,
    pub text: String,
}

impl Line {
    pub fn out(text: &str) -> Line {
        Line {
            stream: Stream::Stdout,
            text: text.to_string(),
        }
    }
}

/// How the process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Exited by itself with this status code.
    Exited(i32),
    /// Died from a signal it did not get from us.
    Signaled,
    /// We killed it because everything expected had been seen.
    Stopped,
    /// We killed it because the time ran out.
    TimedOut,
}

#[derive(Debug, Clone)]
pub struct Captured {
    pub lines: Vec<Line>,
    pub end: End,
    pub elapsed: Duration,
}

/// Kills the child if we unwind or return early, so no QEMU outlives us.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn spawn_reader<R: Read + Send + 'static>(r: R, stream: Stream, tx: mpsc::Sender<Line>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut r = BufReader::new(r);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    while matches!(buf.last(), Some(b'\n' | b'\r')) {
                        buf.pop();
                    }
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    if tx.send(Line { stream, text }).is_err() {
                        break;
                    }
                }
            }
        }
    })
}

/// Runs `cmd` (stdin closed, stdout+stderr captured) for at most `timeout`.
///
/// After each new line `done(lines)` is asked whether everything expected has
/// been seen; once it says yes the process gets `grace` more time (to catch a
/// crash right after the banner, say) and is then killed (`End::Stopped`) —
/// unless it exits by itself first.
pub fn run(
    mut cmd: Command,
    timeout: Duration,
    grace: Duration,
    mut done: impl FnMut(&[Line]) -> bool,
) -> std::io::Result<Captured> {
    let start = Instant::now();
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = KillOnDrop(cmd.spawn()?);
    let (tx, rx) = mpsc::channel();
    let readers = [
        spawn_reader(child.0.stdout.take().unwrap(), Stream::Stdout, tx.clone()),
        spawn_reader(child.0.stderr.take().unwrap(), Stream::Stderr, tx),
    ];
    let mut lines = Vec::new();
    let mut stop_at: Option<Instant> = None;
    let deadline = start + timeout;
    let end = loop {
        // Drain what is there, then look at the process.
        let mut got_line = false;
        while let Ok(l) = rx.try_recv() {
            lines.push(l);
            got_line = true;
        }
        if got_line && stop_at.is_none() && done(&lines) {
            stop_at = Some(Instant::now() + grace);
        }
        if let Some(status) = child.0.try_wait()? {
            break match status.code() {
                Some(c) => End::Exited(c),
                None => End::Signaled,
            };
        }
        let now = Instant::now();
        if stop_at.is_some_and(|t| now >= t) {
            child.0.kill()?;
            child.0.wait()?;
            break End::Stopped;
        }
        if now >= deadline {
            child.0.kill()?;
            child.0.wait()?;
            break End::TimedOut;
        }
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(l) => {
                lines.push(l);
                if stop_at.is_none() && done(&lines) {
                    stop_at = Some(Instant::now() + grace);
                }
            }
            Err(_) => continue,
        }
    };
    // The pipes close when the process is gone; collect the rest. A grandchild
    // holding a pipe open could block this, so bound the wait.
    let drain_deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(l) => lines.push(l),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() >= drain_deadline => break,
            Err(_) => {}
        }
    }
    for r in readers {
        if r.is_finished() {
            let _ = r.join();
        }
    }
    Ok(Captured {
        lines,
        end,
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn captures_both_streams_and_exit_code() {
        let r = run(
            sh("echo out; echo err >&2; exit 3"),
            Duration::from_secs(10),
            Duration::ZERO,
            |_| false,
        )
        .unwrap();
        assert_eq!(r.end, End::Exited(3));
        assert!(r.lines.contains(&Line::out("out")));
        assert!(r.lines.contains(&Line {
            stream: Stream::Stderr,
            text: "err".into()
        }));
    }

    #[test]
    fn times_out() {
        let r = run(
            sh("echo hi; exec sleep 30"),
            Duration::from_millis(300),
            Duration::ZERO,
            |_| false,
        )
        .unwrap();
        assert_eq!(r.end, End::TimedOut);
        assert!(r.elapsed < Duration::from_secs(5));
        assert_eq!(r.lines, [Line::out("hi")]);
    }

    #[test]
    fn stops_early_after_grace() {
        let r = run(
            sh("echo banner; sleep 0.1; echo late; exec sleep 30"),
            Duration::from_secs(20),
            Duration::from_millis(500),
            |l| l.iter().any(|l| l.text == "banner"),
        )
        .unwrap();
        assert_eq!(r.end, End::Stopped);
        assert!(
            r.lines.contains(&Line::out("late")),
            "grace period collects later lines"
        );
        assert!(r.elapsed < Duration::from_secs(5));
    }

    #[test]
    fn partial_last_line_and_crlf() {
        let r = run(sh("printf 'a\\r\\nb'"), Duration::from_secs(10), Duration::ZERO, |_| {
            false
        })
        .unwrap();
        assert_eq!(r.lines, [Line::out("a"), Line::out("b")]);
    }
}
