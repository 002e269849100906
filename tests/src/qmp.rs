//! Input for the screen, through QEMU's QMP: taps, swipes and keys written
//! as STEPS (`swipe 270,5 270,600; tap 100,300; key ret`), turned into
//! `input-send-event` / `send-key` commands for a `WxH` screen (the
//! virtio tablet's axes run 0..=32767), and a minimal QMP client to send
//! them and take screendumps. `cargo xtask screenshot` and the harness's
//! `input WxH STEPS` monitor steps use it.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// One QMP command and the pause after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    pub json: String,
    pub pause_ms: u64,
}

fn abs(x: u32, y: u32, w: u32, h: u32) -> String {
    let s = |v: u32, size: u32| v.min(size - 1) as u64 * 32767 / (size.max(2) - 1) as u64;
    format!(
        r#"{{"type":"abs","data":{{"axis":"x","value":{}}}}},{{"type":"abs","data":{{"axis":"y","value":{}}}}}"#,
        s(x, w),
        s(y, h)
    )
}

fn events(list: &str, pause_ms: u64) -> Command {
    Command {
        json: format!(r#"{{"execute":"input-send-event","arguments":{{"events":[{list}]}}}}"#),
        pause_ms,
    }
}

fn button(down: bool) -> String {
    format!(r#"{{"type":"btn","data":{{"down":{down},"button":"left"}}}}"#)
}

fn point(s: &str) -> Result<(u32, u32), String> {
    let (x, y) = s.split_once(',').ok_or(format!("`{s}` is not X,Y"))?;
    let n = |v: &str| v.trim().parse::<u32>().map_err(|_| format!("`{s}` is not X,Y"));
    Ok((n(x)?, n(y)?))
}

/// The commands for `steps` on a `w` x `h` screen. Steps, `;`-separated:
/// `tap X,Y`; `swipe X0,Y0 X1,Y1` (eight moves in between); `key NAME...`
/// (QEMU qcodes: `ret`, `esc`, `up`, `a`, `f1`; each pressed and released);
/// `sleep MS`.
pub fn commands(steps: &str, w: u32, h: u32) -> Result<Vec<Command>, String> {
    if w == 0 || h == 0 {
        return Err("the screen has no size".into());
    }
    let mut out = Vec::new();
    for step in steps.split(';').map(str::trim).filter(|s| !s.is_empty()) {
        let words: Vec<&str> = step.split_whitespace().collect();
        match words.as_slice() {
            ["tap", p] => {
                let (x, y) = point(p)?;
                out.push(events(&abs(x, y, w, h), 50));
                out.push(events(&button(true), 100));
                out.push(events(&button(false), 300));
            }
            ["swipe", a, b] => {
                let ((x0, y0), (x1, y1)) = (point(a)?, point(b)?);
                out.push(events(&abs(x0, y0, w, h), 50));
                out.push(events(&button(true), 30));
                for i in 1..=8i64 {
                    let lerp = |a: u32, b: u32| (a as i64 + (b as i64 - a as i64) * i / 8) as u32;
                    out.push(events(&abs(lerp(x0, x1), lerp(y0, y1), w, h), 30));
                }
                out.push(events(&button(false), 300));
            }
            ["key", keys @ ..] if !keys.is_empty() => {
                for k in keys {
                    if !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                        return Err(format!("bad key name `{k}`"));
                    }
                    out.push(Command {
                        json: format!(
                            r#"{{"execute":"send-key","arguments":{{"keys":[{{"type":"qcode","data":"{k}"}}]}}}}"#
                        ),
                        pause_ms: 300,
                    });
                }
            }
            ["sleep", ms] => {
                let ms = ms.parse().map_err(|_| format!("bad pause `{ms}`"))?;
                if let Some(last) = out.last_mut() {
                    last.pause_ms += ms;
                } else {
                    out.push(Command {
                        json: r#"{"execute":"query-status"}"#.into(),
                        pause_ms: ms,
                    });
                }
            }
            _ => {
                return Err(format!(
                    "unknown step `{step}` (tap X,Y; swipe X,Y X,Y; key NAME; sleep MS)"
                ))
            }
        }
    }
    Ok(out)
}

/// A QMP connection, capabilities negotiated.
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects to QEMU's `-qmp unix:PATH,server=on,wait=off`, retrying
    /// for up to `wait`.
    pub fn connect(path: &Path, wait: Duration) -> std::io::Result<Qmp> {
        let until = Instant::now() + wait;
        let s = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e) if Instant::now() >= until => return Err(e),
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut q = Qmp {
            reader: BufReader::new(s.try_clone()?),
            writer: s,
        };
        let mut greeting = String::new();
        q.reader.read_line(&mut greeting)?;
        q.execute(r#"{"execute":"qmp_capabilities"}"#)?;
        Ok(q)
    }

    /// Sends one command; its reply line (events before it are skipped).
    /// An `error` reply is an error.
    pub fn execute(&mut self, json: &str) -> std::io::Result<String> {
        self.writer.write_all(json.as_bytes())?;
        self.writer.write_all(b"\n")?;
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::Error::other("QMP closed"));
            }
            if line.contains("\"return\"") {
                return Ok(line);
            }
            if line.contains("\"error\"") {
                return Err(std::io::Error::other(line.trim().to_string()));
            }
        }
    }

    /// Plays `commands` with their pauses.
    pub fn play(&mut self, commands: &[Command]) -> std::io::Result<()> {
        for c in commands {
            self.execute(&c.json)?;
            std::thread::sleep(Duration::from_millis(c.pause_ms));
        }
        Ok(())
    }

    /// Writes the screen to `file` (PPM).
    pub fn screendump(&mut self, file: &Path) -> std::io::Result<()> {
        let f = file.to_string_lossy().replace('\\', "\\\\").replace('"', "\\\"");
        self.execute(&format!(
            r#"{{"execute":"screendump","arguments":{{"filename":"{f}"}}}}"#
        ))
        .map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_become_qmp_commands() {
        let c = commands("swipe 270,5 270,600; tap 100,300; key ret f1; sleep 200", 540, 1170).unwrap();
        assert_eq!(c.len(), 11 + 3 + 2);
        assert!(c[0].json.contains(r#""axis":"x","value":16413"#), "{}", c[0].json);
        assert!(c[1].json.contains(r#""down":true"#));
        assert!(c[10].json.contains(r#""down":false"#));
        assert!(c[11].json.contains(r#""value":6079"#), "x=100 of 540: {}", c[11].json);
        assert!(c[14].json.contains(r#""data":"ret""#));
        assert_eq!(c[15].pause_ms, 500);
        // Corners map to the axis ends; beyond the screen is clamped.
        let c = commands("tap 539,1169; tap 9999,0", 540, 1170).unwrap();
        assert!(c[0]
            .json
            .contains(r#""value":32767}},{"type":"abs","data":{"axis":"y","value":32767"#));
        assert!(c[3].json.contains(r#""value":32767"#));
        for bad in [
            "tap 1",
            "swipe 1,2",
            "key",
            "key a\"b",
            "poke 1,1",
            "sleep x",
            "tap a,b",
        ] {
            assert!(commands(bad, 540, 1170).is_err(), "{bad}");
        }
        assert!(commands("tap 1,1", 0, 10).is_err());
        assert_eq!(commands(" ; ", 10, 10).unwrap(), vec![]);
    }
}
