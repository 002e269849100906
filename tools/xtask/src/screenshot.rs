//! `cargo xtask screenshot [--profile NAME] [--input STEPS] OUT.png`: boots
//! the profile headless, waits for its UI to be up, plays STEPS (taps,
//! swipes and keys through QMP: `harness::qmp`), then writes the screen as
//! a PNG.

use crate::build;
use crate::util::{self, Result};
use crate::{bail, note};
use harness::qemu::Console;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What the console shows when a graphical task's first frame is up.
const UI_UP: &str = "window ";
/// How long to wait for it (a profile without a UI is shot after this).
const BOOT_WAIT: Duration = Duration::from_secs(60);
/// Time for the rest of the UI to draw after the first window.
const SETTLE: Duration = Duration::from_millis(3000);

pub fn main(args: &crate::cli::ScreenshotArgs) -> Result<()> {
    let opts = args.build.options(crate::profile::DEFAULT);
    let profile = crate::profile::load(&opts.device)?;
    let (w, h) = match &profile.display {
        Some(d) => *d,
        None => bail!("profile {} has no [display]", profile.name),
    };
    let steps = harness::qmp::commands(args.input.as_deref().unwrap_or(""), w, h)?;
    crate::setup::ensure(crate::setup::Need::Qemu)?;
    let built = build::build(&opts)?;
    let dir = build::out_dir().join("screenshot");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let qmp = dir.join(format!("{}.qmp", std::process::id()));
    let ppm = dir.join(format!("{}.ppm", std::process::id()));
    let _ = std::fs::remove_file(&qmp);
    let mut a = crate::qemu::profile_args(
        &profile,
        &dir.join(format!("{}-disk.img", profile.name)),
        crate::qemu::DiskUse::Fresh,
        &built.img,
    )?;
    a.extend(Console::Stdio.args().map(String::from));
    a.extend([
        "-qmp".to_string(),
        format!("unix:{},server=on,wait=off", qmp.display()),
        "-kernel".to_string(),
        built.img.display().to_string(),
    ]);
    let mut cmd = Command::new(crate::qemu::QEMU);
    cmd.args(&a)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    note!("{}", util::shown(&cmd));
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", crate::qemu::QEMU))?;
    let result = shoot(&mut child, &qmp, &ppm, &steps, &args.out);
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&qmp);
    let _ = std::fs::remove_file(&ppm);
    result?;
    println!("{}", args.out.display());
    Ok(())
}

fn shoot(
    child: &mut std::process::Child,
    qmp: &std::path::Path,
    ppm: &std::path::Path,
    steps: &[harness::qmp::Command],
    out: &std::path::Path,
) -> Result<()> {
    let stdout = child.stdout.take().ok_or("no console")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(std::result::Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let until = Instant::now() + BOOT_WAIT;
    let mut up = false;
    while !up && Instant::now() < until {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => up = line.contains(UI_UP),
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => bail!("QEMU ended before the screen was shot"),
        }
    }
    if !up {
        note!(
            "warning: no window came up in {} s; shooting the screen anyway",
            BOOT_WAIT.as_secs()
        );
    }
    std::thread::sleep(SETTLE);
    let mut q = harness::qmp::Qmp::connect(qmp, Duration::from_secs(5)).map_err(|e| format!("QMP: {e}"))?;
    q.play(steps).map_err(|e| format!("QMP input: {e}"))?;
    std::thread::sleep(Duration::from_millis(1000));
    q.screendump(ppm).map_err(|e| format!("QMP screendump: {e}"))?;
    let bytes = std::fs::read(ppm).map_err(|e| format!("{}: {e}", ppm.display()))?;
    let png = harness::png::ppm_to_png(&bytes).ok_or("QEMU's screendump is not a PPM")?;
    std::fs::write(out, png).map_err(|e| format!("{}: {e}", out.display()))?;
    Ok(())
}
