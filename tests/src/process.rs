//! Running a child process (QEMU, or `xtask dt`) with a timeout while capturing
//! stdout and stderr line by line, with an optional early stop, and
//! optionally typing scripted input on its stdin (QEMU's serial console).

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
    /// What we typed (scripted input), logged where it was sent.
    Stdin,
}

impl Stream {
    /// How a console log marks its lines: `|` stdout, `!` stderr, `>` typed.
    pub fn mark(self) -> char {
        match self {
            Stream::Stdout => '|',
            Stream::Stderr => '!',
            Stream::Stdin => '>',
        }
    }
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

    /// A line the process wrote (not our input).
    pub fn is_output(&self) -> bool {
        self.stream != Stream::Stdin
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
    /// How many input steps were sent.
    pub sent: usize,
    /// How many monitor steps were sent.
    pub monitor_sent: usize,
    /// How many of each companion's steps were sent (in the order given).
    pub peer_sent: Vec<usize>,
    /// Indexes in `lines` of the lines the process had not finished (no
    /// newline yet) when it ended: a process killed in the middle of a
    /// line leaves its start, `intact 9-0 3127` of `intact 9-0 31272`.
    pub unfinished: Vec<usize>,
}

/// One step of scripted input: once the process's stdout shows `after`
/// (a substring of the output that arrived since the previous step was
/// sent, whole lines or an unfinished one such as a prompt), `send` is
/// written to its stdin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step<'a> {
    pub after: &'a str,
    pub send: &'a str,
}

/// A QEMU monitor (HMP, on a unix socket QEMU serves) and the command lines
/// to type on it, cued by stdout like the stdin script. After each command
/// the monitor's next prompt is awaited (so a `screendump` is written), then
/// `report(command)` may add a line to the log.
pub struct Monitor<'a> {
    pub socket: std::path::PathBuf,
    pub script: &'a [Step<'a>],
    pub report: &'a dyn Fn(&str) -> Option<String>,
}

/// Shell command lines run on the host (`sh -c`), cued by stdout like the
/// stdin script: each runs to its end (the console is read meanwhile by
/// the reader threads), and its output joins the log as `host: LINE`
/// lines, then `host: exit N`; a stdin step may wait for those lines with
/// a cue starting with [`HOST_CUE`] (`host: exit 0`, say). For real peers of a device: `curl` reading
/// its web page through a forwarded port, say.
pub struct HostScript<'a> {
    pub script: &'a [Step<'a>],
}

struct HostState<'a> {
    script: &'a [Step<'a>],
    sent: usize,
    since: String,
}

/// Runs `command` with `sh -c` (at most 60 s); its output and exit as log lines.
fn host_command(command: &str) -> Vec<String> {
    let mut out = vec![format!("host$ {command}")];
    let child = Command::new("sh")
        .args(["-c", command])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => KillOnDrop(c),
        Err(e) => {
            out.push(format!("host: cannot run sh: {e}"));
            return out;
        }
    };
    let until = Instant::now() + Duration::from_secs(60);
    let status = loop {
        match child.0.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < until => thread::sleep(Duration::from_millis(20)),
            _ => break None,
        }
    };
    let mut text = String::new();
    if let Some(mut o) = child.0.stdout.take() {
        let _ = o.read_to_string(&mut text);
    }
    if let Some(mut e) = child.0.stderr.take() {
        let _ = e.read_to_string(&mut text);
    }
    out.extend(text.lines().map(|l| format!("host: {l}")));
    out.push(match status.and_then(|s| s.code()) {
        Some(c) => format!("host: exit {c}"),
        None => String::from("host: timed out"),
    });
    out
}

/// A monitor being played: its socket once connected, steps sent, stdout
/// since the last one.
struct MonitorState<'a> {
    m: Monitor<'a>,
    conn: Option<std::os::unix::net::UnixStream>,
    sent: usize,
    since: String,
}

impl MonitorState<'_> {
    /// Types `command` and waits for the prompt after it (connecting and
    /// awaiting the first prompt on the first command). `input WxH STEPS`
    /// is not for HMP: its taps, swipes and keys go through QMP, on the
    /// socket next to the monitor's (extension `qmp`; see [`crate::qmp`]).
    fn send(&mut self, command: &str) -> std::io::Result<()> {
        if let Some(rest) = command.trim().strip_prefix("input ") {
            let (size, steps) = rest.split_once(' ').unwrap_or((rest, ""));
            let (w, h) = size
                .split_once('x')
                .and_then(|(w, h)| Some((w.parse().ok()?, h.parse().ok()?)))
                .ok_or_else(|| std::io::Error::other(format!("`{size}` is not WxH")))?;
            let commands = crate::qmp::commands(steps, w, h).map_err(std::io::Error::other)?;
            let mut q = crate::qmp::Qmp::connect(&self.m.socket.with_extension("qmp"), Duration::from_secs(5))?;
            return q.play(&commands);
        }
        // `pixels FILE X,Y ...` reads a screendump already taken: the
        // report says what is there, QEMU is not asked.
        if command.trim().starts_with("pixels ") {
            return Ok(());
        }
        if self.conn.is_none() {
            let until = Instant::now() + Duration::from_secs(5);
            let mut c = loop {
                match std::os::unix::net::UnixStream::connect(&self.m.socket) {
                    Ok(c) => break c,
                    Err(e) if Instant::now() >= until => return Err(e),
                    Err(_) => thread::sleep(Duration::from_millis(50)),
                }
            };
            c.set_read_timeout(Some(Duration::from_millis(100)))?;
            prompt(&mut c);
            self.conn = Some(c);
        }
        let c = self.conn.as_mut().unwrap();
        c.write_all(format!("{}\n", command.trim_end()).as_bytes())?;
        prompt(c);
        Ok(())
    }
}

/// Reads the monitor until its prompt shows (5 s at most).
fn prompt(c: &mut std::os::unix::net::UnixStream) {
    let (until, mut seen) = (Instant::now() + Duration::from_secs(5), Vec::new());
    let mut buf = [0u8; 1024];
    while !seen.windows(7).any(|w| w == b"(qemu) ") && Instant::now() < until {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
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

/// Output of a reader thread: bytes as they come (so that a prompt without
/// a newline is seen), then the end of the stream.
enum Chunk {
    Data(Stream, Vec<u8>),
    Eof(Stream),
    /// Output of companion machine N (stdout and stderr alike).
    Peer(usize, Vec<u8>),
}

fn spawn_reader<R: Read + Send + 'static>(r: R, stream: Stream, tx: mpsc::Sender<Chunk>) -> thread::JoinHandle<()> {
    spawn_reader_as(r, tx, move |b| Chunk::Data(stream, b), Some(Chunk::Eof(stream)))
}

/// A thread that sends what `r` gives as `chunk(bytes)`, then `eof`.
fn spawn_reader_as<R: Read + Send + 'static>(
    mut r: R,
    tx: mpsc::Sender<Chunk>,
    chunk: impl Fn(Vec<u8>) -> Chunk + Send + 'static,
    eof: Option<Chunk>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send(chunk(buf[..n].to_vec())).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
        if let Some(e) = eof {
            let _ = tx.send(e);
        }
    })
}

/// Another machine beside the first, on one virtual link (a run takes
/// any number): its console output joins the log line by line, each line
/// starting with `prefix` (its typed input too), and `script` is typed on
/// its stdin. A step's cue is matched against this machine's own output
/// since its previous step, or — when it starts with [`PEER_CUE`] —
/// against the other machines' output (the first machine's and every
/// other companion's, each one's bytes as they come) since its previous
/// step that waited for them (so a cue another machine shows while this
/// one waits for its own is not lost); the first machine's steps may
/// likewise wait for the companions' output with [`PEER_CUE`].
pub struct Companion<'a> {
    pub cmd: Command,
    pub script: &'a [Step<'a>],
    pub prefix: String,
}

/// A cue that starts with this waits for the other machines' output (the
/// rest of the cue), not for its own (see [`Companion`]).
pub const PEER_CUE: &str = "peer: ";

/// In a companion's step, [`PAIR_CODE`] stands for the last pairing code
/// the first machine's console showed (a line `pairing code NNNNNN ...`,
/// the shell's `pair`), and [`WRONG_CODE`] for that code plus one (modulo
/// 10^6): a code that is surely wrong. Cue the step on a line printed after
/// the code's, so that the code's line is complete.
pub const PAIR_CODE: &str = "@PAIR_CODE@";
/// A companion's step that sends this types nothing: the companion's QEMU
/// is killed (SIGKILL: the device loses its power, says goodbye to no
/// one), and the first machine runs on.
pub const KILL: &str = "@KILL@";
pub const WRONG_CODE: &str = "@WRONG_CODE@";

/// `send` with [`PAIR_CODE`] and [`WRONG_CODE`] filled in from the last
/// code in `lines` (left as they are if no line shows one).
pub fn fill_codes<'l>(send: &str, lines: impl DoubleEndedIterator<Item = &'l str>) -> String {
    let code = lines.rev().find_map(|l| {
        let rest = &l[l.find("pairing code ")? + "pairing code ".len()..];
        let digits = rest.get(..6).filter(|d| d.bytes().all(|b| b.is_ascii_digit()))?;
        digits.parse::<u32>().ok()
    });
    match code {
        Some(c) => send
            .replace(PAIR_CODE, &format!("{c:06}"))
            .replace(WRONG_CODE, &format!("{:06}", (c + 1) % 1_000_000)),
        None => send.to_string(),
    }
}

/// An input cue that starts with this waits for a host command's output
/// lines (`host: LINE`, the cue included), seen since the last step that
/// waited for one (see [`HostScript`]).
pub const HOST_CUE: &str = "host: ";

/// Whether `step` is due: its cue seen in `own` output, or with
/// [`PEER_CUE`] in one of the other machines' (`others`, one string each:
/// a cue is looked for in one machine's bytes, which another's arriving
/// meanwhile do not split).
fn cue_seen(step: &Step, own: &str, others: &[String]) -> bool {
    match step.after.strip_prefix(PEER_CUE) {
        Some(cue) => others.iter().any(|o| o.contains(cue)),
        None => own.contains(step.after),
    }
}

/// A companion being played.
struct PeerConsole<'a> {
    partial: Vec<u8>,
    script: &'a [Step<'a>],
    sent: usize,
    /// Its own output since its last step, and the other machines' since
    /// its last step that waited for them (the first machine's, then each
    /// companion's; its own slot stays empty).
    since: String,
    since_other: Vec<String>,
    stdin: Option<ChildStdin>,
    prefix: String,
    /// A [`KILL`] step came: the companion is to be killed.
    kill: bool,
}

/// Splits the byte streams into lines (`\n`, with trailing `\r`s dropped)
/// and plays the input script against stdout.
struct Console<'a> {
    lines: Vec<Line>,
    /// Unfinished last line of stdout and of stderr.
    partial: [Vec<u8>; 2],
    script: &'a [Step<'a>],
    sent: usize,
    /// Stdout since the last step was sent.
    since: String,
    stdin: Option<ChildStdin>,
    monitor: Option<MonitorState<'a>>,
    host: Option<HostState<'a>>,
    /// Each companion's output since the last step that waited for the
    /// companions was sent.
    since_peer: Vec<String>,
    /// Host commands' output (`host: ...` lines) since the last step that
    /// waited for it was sent.
    since_host: String,
    peers: Vec<PeerConsole<'a>>,
    /// Indexes in `lines` of the lines that ended without a newline.
    unfinished: Vec<usize>,
}

impl Console<'_> {
    fn slot(stream: Stream) -> usize {
        usize::from(stream == Stream::Stderr)
    }

    fn push_line(&mut self, stream: Stream, mut bytes: Vec<u8>) {
        while bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        self.lines.push(Line {
            stream,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        });
    }

    /// Takes a chunk; true if it completed a line.
    fn take(&mut self, c: Chunk) -> bool {
        match c {
            Chunk::Peer(i, bytes) => self.take_peer(i, bytes),
            Chunk::Data(stream, bytes) => {
                if stream == Stream::Stdout && self.sent < self.script.len() {
                    self.since.push_str(&String::from_utf8_lossy(&bytes));
                }
                for p in self
                    .peers
                    .iter_mut()
                    .filter(|p| stream == Stream::Stdout && p.sent < p.script.len())
                {
                    p.since_other[0].push_str(&String::from_utf8_lossy(&bytes));
                }
                if let Some(m) = self
                    .monitor
                    .as_mut()
                    .filter(|m| stream == Stream::Stdout && m.sent < m.m.script.len())
                {
                    m.since.push_str(&String::from_utf8_lossy(&bytes));
                }
                if let Some(h) = self
                    .host
                    .as_mut()
                    .filter(|h| stream == Stream::Stdout && h.sent < h.script.len())
                {
                    h.since.push_str(&String::from_utf8_lossy(&bytes));
                }
                let mut new_line = false;
                for b in bytes {
                    if b == b'\n' {
                        let l = std::mem::take(&mut self.partial[Self::slot(stream)]);
                        self.push_line(stream, l);
                        new_line = true;
                    } else {
                        self.partial[Self::slot(stream)].push(b);
                    }
                }
                self.play();
                new_line
            }
            Chunk::Eof(stream) => self.flush(stream),
        }
    }

    /// Output of companion `i`; true if it completed a line.
    fn take_peer(&mut self, i: usize, bytes: Vec<u8>) -> bool {
        let text = String::from_utf8_lossy(&bytes);
        for (j, p) in self.peers.iter_mut().enumerate() {
            if p.sent < p.script.len() {
                if j == i {
                    p.since.push_str(&text);
                } else {
                    p.since_other[i + 1].push_str(&text);
                }
            }
        }
        if self.sent < self.script.len() {
            self.since_peer[i].push_str(&text);
        }
        let Some(p) = self.peers.get_mut(i) else {
            return false;
        };
        let mut new_line = false;
        for b in bytes {
            if b == b'\n' {
                let l = std::mem::take(&mut p.partial);
                let prefix = p.prefix.clone();
                let text = String::from_utf8_lossy(&l);
                self.lines.push(Line {
                    stream: Stream::Stdout,
                    text: format!("{prefix}{}", text.trim_end_matches('\r')),
                });
                new_line = true;
            } else {
                p.partial.push(b);
            }
        }
        self.play();
        new_line
    }

    /// The companions' unfinished last lines become lines.
    fn flush_peers(&mut self) {
        for p in self.peers.iter_mut().filter(|p| !p.partial.is_empty()) {
            let l = std::mem::take(&mut p.partial);
            self.lines.push(Line {
                stream: Stream::Stdout,
                text: format!("{}{}", p.prefix, String::from_utf8_lossy(&l).trim_end_matches('\r')),
            });
            self.unfinished.push(self.lines.len() - 1);
        }
    }

    /// The unfinished last line of `stream` becomes a line; true if there was one.
    fn flush(&mut self, stream: Stream) -> bool {
        let l = std::mem::take(&mut self.partial[Self::slot(stream)]);
        if l.is_empty() {
            return false;
        }
        self.push_line(stream, l);
        self.unfinished.push(self.lines.len() - 1);
        true
    }

    /// Sends every step whose cue has shown, again while that makes more
    /// cues show (a host command's output may cue the input script).
    fn play(&mut self) {
        loop {
            let before = self.progress();
            self.play_input();
            self.play_peers();
            self.play_monitor();
            self.play_host();
            if self.progress() == before {
                break;
            }
        }
    }

    /// Steps sent so far, by script.
    fn progress(&self) -> [usize; 4] {
        [
            self.sent,
            self.peers.iter().map(|p| p.sent).sum(),
            self.monitor.as_ref().map_or(0, |m| m.sent),
            self.host.as_ref().map_or(0, |h| h.sent),
        ]
    }

    /// Types every input step whose cue has shown.
    fn play_input(&mut self) {
        while let Some(step) = self.script.get(self.sent) {
            let seen = match step.after.strip_prefix(HOST_CUE) {
                Some(_) => self.since_host.contains(step.after),
                None => cue_seen(step, &self.since, &self.since_peer),
            };
            if !seen {
                break;
            }
            if let Some(w) = self.stdin.as_mut() {
                if w.write_all(step.send.as_bytes()).and_then(|()| w.flush()).is_err() {
                    self.stdin = None;
                }
            }
            for l in step.send.trim_end_matches('\n').split('\n') {
                self.lines.push(Line {
                    stream: Stream::Stdin,
                    text: l.trim_end_matches('\r').to_string(),
                });
            }
            self.sent += 1;
            self.since.clear();
            if step.after.starts_with(PEER_CUE) {
                self.since_peer.iter_mut().for_each(String::clear);
            }
            if step.after.starts_with(HOST_CUE) {
                self.since_host.clear();
            }
        }
    }

    /// Types every companion step whose cue has shown.
    fn play_peers(&mut self) {
        for i in 0..self.peers.len() {
            self.play_peer(i);
        }
    }

    /// Types every step of companion `i` whose cue has shown.
    fn play_peer(&mut self, i: usize) {
        while let Some(&step) = self.peers[i].script.get(self.peers[i].sent) {
            let p = &self.peers[i];
            if !cue_seen(&step, &p.since, &p.since_other) {
                break;
            }
            // The first machine's lines: none of the companions' prefixes.
            let first = self
                .lines
                .iter()
                .filter(|l| l.stream == Stream::Stdout && !self.peers.iter().any(|p| l.text.starts_with(&p.prefix)))
                .map(|l| l.text.as_str());
            let send = fill_codes(step.send, first);
            let p = &mut self.peers[i];
            if send == KILL {
                p.kill = true;
                self.lines.push(Line {
                    stream: Stream::Stdout,
                    text: format!("{}harness: killed", p.prefix),
                });
            } else {
                if let Some(w) = p.stdin.as_mut() {
                    if w.write_all(send.as_bytes()).and_then(|()| w.flush()).is_err() {
                        p.stdin = None;
                    }
                }
                for l in send.trim_end_matches('\n').split('\n') {
                    self.lines.push(Line {
                        stream: Stream::Stdin,
                        text: format!("{}{}", p.prefix, l.trim_end_matches('\r')),
                    });
                }
            }
            p.sent += 1;
            p.since.clear();
            if step.after.starts_with(PEER_CUE) {
                p.since_other.iter_mut().for_each(String::clear);
            }
        }
    }

    /// Runs every host command whose cue has shown.
    fn play_host(&mut self) {
        let Some(h) = self.host.as_mut() else {
            return;
        };
        while let Some(step) = h.script.get(h.sent) {
            if !h.since.contains(step.after) {
                break;
            }
            for text in host_command(step.send.trim_end()) {
                // The input script may wait for a host command's output.
                if self.sent < self.script.len() {
                    self.since_host.push_str(&text);
                    self.since_host.push('\n');
                }
                self.lines.push(Line {
                    stream: Stream::Stdout,
                    text,
                });
            }
            h.sent += 1;
            h.since.clear();
        }
    }

    /// Types every monitor command whose cue has shown.
    fn play_monitor(&mut self) {
        let Some(m) = self.monitor.as_mut() else {
            return;
        };
        while let Some(step) = m.m.script.get(m.sent) {
            if !m.since.contains(step.after) {
                break;
            }
            self.lines.push(Line {
                stream: Stream::Stdin,
                text: format!("(qemu) {}", step.send.trim_end()),
            });
            let text = match m.send(step.send) {
                Ok(()) => (m.m.report)(step.send),
                Err(e) => Some(format!("harness: monitor {}: {e}", m.m.socket.display())),
            };
            for text in text.iter().flat_map(|t| t.lines()) {
                self.lines.push(Line {
                    stream: Stream::Stdout,
                    text: text.to_string(),
                });
            }
            m.sent += 1;
            m.since.clear();
        }
    }

    fn script_done(&self) -> bool {
        self.sent == self.script.len()
            && self.monitor.as_ref().is_none_or(|m| m.sent == m.m.script.len())
            && self.host.as_ref().is_none_or(|h| h.sent == h.script.len())
            && self.peers.iter().all(|p| p.sent == p.script.len())
    }
}

/// Runs `cmd` (stdin closed, stdout+stderr captured) for at most `timeout`.
///
/// After each new line `done(lines)` is asked whether everything expected has
/// been seen; once it says yes the process gets `grace` more time (to catch a
/// crash right after the banner, say) and is then killed (`End::Stopped`) —
/// unless it exits by itself first.
pub fn run(
    cmd: Command,
    timeout: Duration,
    grace: Duration,
    done: impl FnMut(&[Line]) -> bool,
) -> std::io::Result<Captured> {
    run_scripted(cmd, timeout, grace, &[], done)
}

/// [`run`], typing `script` on the process's stdin step by step (stdin is
/// a pipe then, kept open until the process ends). `done` is asked only
/// once every step has been sent.
pub fn run_scripted(
    cmd: Command,
    timeout: Duration,
    grace: Duration,
    script: &[Step],
    done: impl FnMut(&[Line]) -> bool,
) -> std::io::Result<Captured> {
    run_with_monitor(cmd, timeout, grace, script, None, None, Vec::new(), done)
}

/// [`run_scripted`], also typing commands on a QEMU monitor, running host
/// commands, and running other machines beside the first (`companions`,
/// each killed when the first ends).
#[allow(clippy::too_many_arguments)]
pub fn run_with_monitor(
    mut cmd: Command,
    timeout: Duration,
    grace: Duration,
    script: &[Step],
    monitor: Option<Monitor>,
    host: Option<HostScript>,
    companions: Vec<Companion>,
    mut done: impl FnMut(&[Line]) -> bool,
) -> std::io::Result<Captured> {
    let start = Instant::now();
    cmd.stdin(if script.is_empty() {
        Stdio::null()
    } else {
        Stdio::piped()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = KillOnDrop(cmd.spawn()?);
    let (tx, rx) = mpsc::channel();
    // The companions first: a failure to start one ends the run (and the
    // machines started, by their KillOnDrop).
    let mut peer_children = Vec::new();
    let mut peers = Vec::new();
    let machines = companions.len() + 1;
    for (i, mut c) in companions.into_iter().enumerate() {
        c.cmd
            .stdin(if c.script.is_empty() {
                Stdio::null()
            } else {
                Stdio::piped()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut ch = KillOnDrop(c.cmd.spawn()?);
        spawn_reader_as(
            ch.0.stdout.take().unwrap(),
            tx.clone(),
            move |b| Chunk::Peer(i, b),
            None,
        );
        spawn_reader_as(
            ch.0.stderr.take().unwrap(),
            tx.clone(),
            move |b| Chunk::Peer(i, b),
            None,
        );
        peers.push(PeerConsole {
            partial: Vec::new(),
            script: c.script,
            sent: 0,
            since: String::new(),
            since_other: vec![String::new(); machines],
            stdin: ch.0.stdin.take(),
            prefix: c.prefix,
            kill: false,
        });
        peer_children.push(ch);
    }
    let readers = [
        spawn_reader(child.0.stdout.take().unwrap(), Stream::Stdout, tx.clone()),
        spawn_reader(child.0.stderr.take().unwrap(), Stream::Stderr, tx),
    ];
    let mut con = Console {
        lines: Vec::new(),
        partial: [Vec::new(), Vec::new()],
        script,
        sent: 0,
        since: String::new(),
        stdin: child.0.stdin.take(),
        monitor: monitor.map(|m| MonitorState {
            m,
            conn: None,
            sent: 0,
            since: String::new(),
        }),
        host: host.map(|h| HostState {
            script: h.script,
            sent: 0,
            since: String::new(),
        }),
        since_peer: vec![String::new(); machines - 1],
        since_host: String::new(),
        peers,
        unfinished: Vec::new(),
    };
    // A step may be due before any output (an empty cue).
    con.play();
    let mut stop_at: Option<Instant> = None;
    let deadline = start + timeout;
    let end = loop {
        // Wait a little for output, then drain what is there.
        let mut new_line = false;
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(c) => new_line |= con.take(c),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            // Both pipes closed: the process is exiting.
            Err(mpsc::RecvTimeoutError::Disconnected) => thread::sleep(Duration::from_millis(20)),
        }
        while let Ok(c) = rx.try_recv() {
            new_line |= con.take(c);
        }
        for (p, ch) in con
            .peers
            .iter_mut()
            .zip(peer_children.iter_mut())
            .filter(|(p, _)| p.kill)
        {
            p.kill = false;
            p.stdin = None;
            let _ = ch.0.kill();
            let _ = ch.0.wait();
        }
        if new_line && stop_at.is_none() && con.script_done() && done(&con.lines) {
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
    };
    con.stdin = None;
    // The companions end with the first machine.
    drop(peer_children);
    // The pipes close when the process is gone; collect the rest. A grandchild
    // holding a pipe open could block this, so bound the wait.
    let drain_deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match rx.recv_timeout(Duration::from_millis(50)) {
            Ok(c) => {
                con.take(c);
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() >= drain_deadline => break,
            Err(_) => {}
        }
    }
    con.flush(Stream::Stdout);
    con.flush(Stream::Stderr);
    con.flush_peers();
    for r in readers {
        if r.is_finished() {
            let _ = r.join();
        }
    }
    Ok(Captured {
        lines: con.lines,
        end,
        elapsed: start.elapsed(),
        sent: con.sent,
        monitor_sent: con.monitor.map_or(0, |m| m.sent),
        peer_sent: con.peers.iter().map(|p| p.sent).collect(),
        unfinished: con.unfinished,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairing_codes_fill_in() {
        let lines = [
            "x",
            "pairing code 000123 (one attempt)",
            "pairing code 999999 (one attempt)",
            "on the",
        ];
        assert_eq!(
            fill_codes("pair phone @PAIR_CODE@ / @WRONG_CODE@\r", lines.iter().copied()),
            "pair phone 999999 / 000000\r"
        );
        assert_eq!(fill_codes("@PAIR_CODE@", lines[..2].iter().copied()), "000123");
        assert_eq!(
            fill_codes("@PAIR_CODE@", ["pairing code 12"].into_iter()),
            "@PAIR_CODE@"
        );
    }

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn two_machines_cue_each_other() {
        let main = sh("echo main-up; read a; echo main-got-$a; read b; echo main-got-$b");
        let main_script = [
            Step {
                after: "peer: peer-up",
                send: "one\n",
            },
            Step {
                after: "peer: peer-got-two",
                send: "three\n",
            },
        ];
        let peer_script = [Step {
            after: "peer: main-got-one",
            send: "two\n",
        }];
        let companion = Companion {
            cmd: sh("echo peer-up; read c; echo peer-got-$c; exec sleep 30"),
            script: &peer_script,
            prefix: "[b] ".into(),
        };
        let r = run_with_monitor(
            main,
            Duration::from_secs(20),
            Duration::ZERO,
            &main_script,
            None,
            None,
            vec![companion],
            |_| false,
        )
        .unwrap();
        assert_eq!(r.end, End::Exited(0));
        assert_eq!(r.sent, 2);
        let texts: Vec<&str> = r.lines.iter().map(|l| l.text.as_str()).collect();
        for want in [
            "main-up",
            "[b] peer-up",
            "main-got-one",
            "[b] two",
            "[b] peer-got-two",
            "main-got-three",
        ] {
            assert!(texts.contains(&want), "{want:?} missing from {texts:?}");
        }
        // The companion (sleeping 30 s) was stopped with the first machine.
        assert!(r.elapsed < Duration::from_secs(10), "{:?}", r.elapsed);
        let (one, two) = (
            texts.iter().position(|t| *t == "main-got-one").unwrap(),
            texts.iter().position(|t| *t == "[b] two").unwrap(),
        );
        assert!(one < two, "the companion waited for the first machine: {texts:?}");
    }

    #[test]
    fn three_machines_cue_each_other_and_one_is_killed() {
        // The first machine waits for c, c for b, b for the first; then b
        // is killed on c's cue while the others run on.
        let main = sh("echo main-up; read a; echo main-got-$a; read b; echo main-got-$b");
        let main_script = [
            Step {
                after: "peer: c-got-two",
                send: "one\n",
            },
            Step {
                after: "peer: c-saw-kill",
                send: "four\n",
            },
        ];
        let b_script = [
            Step {
                after: "peer: main-up",
                send: "two\n",
            },
            Step {
                after: "peer: main-got-one",
                send: KILL,
            },
        ];
        let c_script = [
            Step {
                after: "peer: b-got-two",
                send: "two\n",
            },
            // Typed once b is killed (the kill step came first).
            Step {
                after: "peer: main-got-one",
                send: "three\n",
            },
        ];
        let b = Companion {
            cmd: sh("echo b-up; read x; echo b-got-$x; exec sleep 30"),
            script: &b_script,
            prefix: "[b] ".into(),
        };
        let c = Companion {
            cmd: sh("read x; echo c-got-$x; read y; echo c-saw-kill; exec sleep 30"),
            script: &c_script,
            prefix: "[c] ".into(),
        };
        let r = run_with_monitor(
            main,
            Duration::from_secs(20),
            Duration::ZERO,
            &main_script,
            None,
            None,
            vec![b, c],
            |_| false,
        )
        .unwrap();
        assert_eq!(r.end, End::Exited(0));
        assert_eq!((r.sent, &r.peer_sent[..]), (2, &[2, 2][..]));
        let texts: Vec<&str> = r.lines.iter().map(|l| l.text.as_str()).collect();
        let at = |want: &str| {
            texts
                .iter()
                .position(|t| *t == want)
                .unwrap_or_else(|| panic!("{want:?} missing from {texts:?}"))
        };
        let order = [
            "main-up",
            "[b] two",
            "[b] b-got-two",
            "[c] two",
            "[c] c-got-two",
            "one",
            "main-got-one",
            "[b] harness: killed",
            "[c] three",
            "[c] c-saw-kill",
            "four",
            "main-got-four",
        ];
        for w in order.windows(2) {
            assert!(at(w[0]) < at(w[1]), "{:?} before {:?}: {texts:?}", w[0], w[1]);
        }
        // The companions (sleeping 30 s) were stopped with the first machine.
        assert!(r.elapsed < Duration::from_secs(10), "{:?}", r.elapsed);
    }

    #[test]
    fn a_cue_is_not_split_by_another_machine() {
        // The first machine writes `kestrel> sync` in two pieces; b's line
        // comes in between: c's cue is still seen in the first machine's bytes.
        let main = sh("printf 'kestrel> '; sleep 1; echo sync; read x; echo main-got-$x");
        let main_script = [Step {
            after: "peer: c-got-go",
            send: "end\n",
        }];
        let c_script = [Step {
            after: "peer: kestrel> sync",
            send: "go\n",
        }];
        let b = Companion {
            cmd: sh("sleep 0.5; echo noise; exec sleep 30"),
            script: &[],
            prefix: "[b] ".into(),
        };
        let c = Companion {
            cmd: sh("read x; echo c-got-$x; exec sleep 30"),
            script: &c_script,
            prefix: "[c] ".into(),
        };
        let r = run_with_monitor(
            main,
            Duration::from_secs(20),
            Duration::ZERO,
            &main_script,
            None,
            None,
            vec![b, c],
            |_| false,
        )
        .unwrap();
        let texts: Vec<&str> = r.lines.iter().map(|l| l.text.as_str()).collect();
        assert_eq!(r.end, End::Exited(0), "{texts:?}");
        assert!(texts.contains(&"[b] noise"), "{texts:?}");
        assert!(texts.contains(&"main-got-end"), "{texts:?}");
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
    fn scripted_input_waits_for_each_cue() {
        // A shell that prompts without a newline, like the system's shell.
        let script = "printf 'booting\\nkestrel> '; read a; echo \"got $a\"; printf 'kestrel> '; \
                      read b; echo \"got $b\"; echo bye; exec sleep 30";
        let steps = [
            Step {
                after: "kestrel> ",
                send: "help\n",
            },
            Step {
                after: "kestrel> ",
                send: "poweroff\n",
            },
        ];
        let r = run_scripted(sh(script), Duration::from_secs(20), Duration::ZERO, &steps, |l| {
            l.iter().any(|l| l.text == "bye")
        })
        .unwrap();
        assert_eq!(r.end, End::Stopped);
        assert_eq!(r.sent, 2);
        let text: Vec<(Stream, &str)> = r.lines.iter().map(|l| (l.stream, l.text.as_str())).collect();
        assert_eq!(
            text,
            [
                (Stream::Stdout, "booting"),
                (Stream::Stdin, "help"),
                (Stream::Stdout, "kestrel> got help"),
                (Stream::Stdin, "poweroff"),
                (Stream::Stdout, "kestrel> got poweroff"),
                (Stream::Stdout, "bye"),
            ]
        );
    }

    #[test]
    fn scripted_input_never_cued() {
        let steps = [Step {
            after: "login: ",
            send: "root\n",
        }];
        let r = run_scripted(
            sh("echo hi; exec sleep 30"),
            Duration::from_millis(500),
            Duration::ZERO,
            &steps,
            |_| true,
        )
        .unwrap();
        assert_eq!(
            (r.end, r.sent),
            (End::TimedOut, 0),
            "done is not asked before the script ran"
        );
    }

    #[test]
    fn partial_last_line_and_crlf() {
        let r = run(sh("printf 'a\\r\\nb'"), Duration::from_secs(10), Duration::ZERO, |_| {
            false
        })
        .unwrap();
        assert_eq!(r.lines, [Line::out("a"), Line::out("b")]);
    }

    #[test]
    fn monitor_commands_on_cue() {
        use std::io::BufRead;
        let dir = std::env::temp_dir().join(format!("harness-monitor-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("m.sock");
        let _ = std::fs::remove_file(&socket);
        let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
        // A monitor: a prompt, then each line read gets a prompt after it.
        let server = thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            c.write_all(b"QEMU monitor\r\n(qemu) ").unwrap();
            let mut got = Vec::new();
            let mut r = std::io::BufReader::new(c.try_clone().unwrap());
            for _ in 0..2 {
                let mut l = String::new();
                r.read_line(&mut l).unwrap();
                got.push(l);
                c.write_all(b"\r\n(qemu) ").unwrap();
            }
            got
        });
        let steps = [
            Step {
                after: "ready",
                send: "sendkey a",
            },
            Step {
                after: "again",
                send: "info status",
            },
        ];
        let report = |c: &str| (c == "info status").then(|| "reported".to_string());
        let monitor = Monitor {
            socket: socket.clone(),
            script: &steps,
            report: &report,
        };
        let r = run_with_monitor(
            sh("echo ready; sleep 0.5; echo again; sleep 0.5; echo end"),
            Duration::from_secs(20),
            Duration::ZERO,
            &[],
            Some(monitor),
            None,
            Vec::new(),
            |l| l.iter().any(|l| l.text == "end"),
        )
        .unwrap();
        assert_eq!(r.monitor_sent, 2);
        assert_eq!(server.join().unwrap(), ["sendkey a\n", "info status\n"]);
        let texts: Vec<&str> = r.lines.iter().map(|l| l.text.as_str()).collect();
        let at = |t: &str| {
            texts
                .iter()
                .position(|x| *x == t)
                .unwrap_or_else(|| panic!("{t}: {texts:?}"))
        };
        assert!(at("ready") < at("(qemu) sendkey a") && at("(qemu) info status") < at("reported"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn host_commands_run_on_their_cue() {
        let script = [
            Step {
                after: "ready",
                send: "echo from the host; exit 3",
            },
            Step {
                after: "again",
                send: "printf 'a\\nb\\n'",
            },
        ];
        let r = run_with_monitor(
            sh("echo ready; sleep 0.3; echo again; sleep 0.3; echo end"),
            Duration::from_secs(20),
            Duration::ZERO,
            &[],
            None,
            Some(HostScript { script: &script }),
            Vec::new(),
            |l| l.iter().any(|l| l.text == "end"),
        )
        .unwrap();
        let texts: Vec<&str> = r.lines.iter().map(|l| l.text.as_str()).collect();
        let at = |t: &str| {
            texts
                .iter()
                .position(|x| *x == t)
                .unwrap_or_else(|| panic!("{t:?} in {texts:?}"))
        };
        assert!(at("ready") < at("host: from the host"));
        assert!(at("host: from the host") < at("host: exit 3"));
        assert!(at("again") < at("host: a") && at("host: a") < at("host: b"));
    }

    #[test]
    fn input_may_wait_for_a_host_command() {
        let host = [Step {
            after: "up",
            send: "echo done on the host",
        }];
        // The first step, cued by the same line as the host command, is
        // sent first: the host's line still cues the second.
        let input = [
            Step {
                after: "up",
                send: "first\n",
            },
            Step {
                after: "host: done on the host",
                send: "typed\n",
            },
        ];
        let r = run_with_monitor(
            sh("echo up; read y; read x; echo got-$y-$x"),
            Duration::from_secs(20),
            Duration::ZERO,
            &input,
            None,
            Some(HostScript { script: &host }),
            Vec::new(),
            |_| false,
        )
        .unwrap();
        assert_eq!((r.end, r.sent), (End::Exited(0), 2));
        assert!(r.lines.iter().any(|l| l.text == "got-first-typed"));
    }
}
