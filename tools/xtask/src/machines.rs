//! QEMUs of a benchmark that the host talks to while they run (the
//! networking and soft-bus rows, input to photon): their console lines on
//! one channel, timestamped, and the benchmark's results.

use crate::bench::{bench_qemu_sleeping, parse_bench_lines};
use crate::util::{self, Result};
use crate::{bail, note};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, Sender};
use std::time::Instant;

/// A console line: which machine, when it arrived, its text.
type Stamped = (usize, Instant, String);

/// QEMUs whose console lines arrive on one channel, timestamped; killed
/// when dropped.
pub struct Machines {
    children: Vec<Child>,
    tx: Sender<Stamped>,
    rx: Receiver<Stamped>,
    lines: Vec<Stamped>,
}

impl Machines {
    pub fn new() -> Machines {
        let (tx, rx) = mpsc::channel();
        Machines {
            children: Vec::new(),
            tx,
            rx,
            lines: Vec::new(),
        }
    }

    /// Starts `cmd`; its lines are machine number (the count so far).
    pub fn spawn(&mut self, mut cmd: Command) -> Result<usize> {
        note!("{}", util::shown(&cmd));
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", crate::qemu::QEMU))?;
        let id = self.children.len();
        let out: Box<dyn Read + Send> = Box::new(child.stdout.take().expect("piped"));
        let err: Box<dyn Read + Send> = Box::new(child.stderr.take().expect("piped"));
        for r in [out, err] {
            let tx = self.tx.clone();
            std::thread::spawn(move || {
                for l in BufReader::new(r).split(b'\n').map_while(|l| l.ok()) {
                    let text = String::from_utf8_lossy(&l).trim_end_matches('\r').to_string();
                    if tx.send((id, Instant::now(), text)).is_err() {
                        break;
                    }
                }
            });
        }
        self.children.push(child);
        Ok(id)
    }

    /// Waits (until `deadline`) for a line of machine `id` containing
    /// `text`; when it arrived.
    pub fn wait_for(&mut self, id: usize, text: &str, deadline: Instant) -> Result<Instant> {
        if let Some((_, t, _)) = self.lines.iter().find(|(i, _, l)| *i == id && l.contains(text)) {
            return Ok(*t);
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.0 == id && line.2.contains(text);
                    let t = line.1;
                    self.lines.push(line);
                    if hit {
                        return Ok(t);
                    }
                }
                Err(_) => bail!("no `{text}` from machine {id}; consoles:\n{}", self.log()),
            }
        }
    }

    /// Machine `id`'s lines.
    pub fn of(&self, id: usize) -> Vec<String> {
        self.lines.iter().filter(|l| l.0 == id).map(|l| l.2.clone()).collect()
    }

    pub fn log(&self) -> String {
        self.lines
            .iter()
            .map(|(i, _, l)| format!("    [{i}] {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Machine `id`'s `bench:` results, once it reports `program ... ok`
    /// (its notes go to the log).
    pub fn results(&mut self, id: usize, program: &str, deadline: Instant) -> Result<Vec<(String, u64)>> {
        self.wait_for(id, "utest: result:", deadline)?;
        let lines = self.of(id);
        for l in lines.iter().filter(|l| l.trim_start().starts_with("bench-note:")) {
            note!("{}", l.trim());
        }
        // A task that died meanwhile (a driver restarted, say) shows in
        // the figures: say so beside them.
        for (i, _, l) in self.lines.iter().filter(|(_, _, l)| l.contains("panicked")) {
            note!("machine {i}: {}", l.trim());
        }
        if !lines.iter().any(|l| l.contains(&format!("utest: {program} ... ok"))) {
            bail!("{program} did not finish; consoles:\n{}", self.log());
        }
        Ok(parse_bench_lines(&lines))
    }
}

impl Drop for Machines {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A QEMU on the benchmark machine (1 CPU, sleeping) booting `img` with
/// `append`, with `devices`, its random seed `seed` (`-seed`: two devices
/// on one link need two, or their virtio-rng gives both the same bytes and
/// so the same bus device id, and neither takes the other's announcements).
pub fn qemu(img: &Path, append: &str, devices: &[String], seed: u32) -> Command {
    let mut a = bench_qemu_sleeping(1);
    if let Some(i) = a.iter().position(|x| x == "-seed") {
        a[i + 1] = seed.to_string();
    }
    let mut cmd = Command::new(crate::qemu::QEMU);
    cmd.args(a)
        .args(["-global", "virtio-mmio.force-legacy=false"])
        .args(devices)
        .arg("-kernel")
        .arg(img)
        .args(["-append", append]);
    cmd
}
