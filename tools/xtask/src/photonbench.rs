//! The input-to-photon row of `cargo xtask bench` (issue 13): the tv
//! profile's drivers and compositor on one CPU, with `bench-photon`
//! (`user/bench/src/photon.rs`) as the compositor's home surface. The host
//! presses a key through QMP each time the program says it is ready, and
//! releases it once the program has printed the sample; the program counts
//! the instructions from before the key's interrupt to the frame event
//! after the flush.

use crate::machines::{qemu, Machines};
use crate::util::Result;
use std::path::Path;
use std::time::{Duration, Instant};

/// The boot arguments: only the compositor among the tv's servers, with
/// the benchmark as its home (`user/init/src/config.rs`, `set_args`).
const APPEND: &str = "utest=bench-photon servers=compositor arg.compositor.home=bench-photon";
/// How long the machine is left idle before each key: the program's wait
/// must have begun (the console line comes just before it).
const SETTLE: Duration = Duration::from_millis(100);

/// `bench-photon`'s results on `tv` (the tv profile's image with the test
/// programs).
pub fn photon(tv: &Path) -> Result<Vec<(String, u64)>> {
    let sock = crate::build::out_dir().join(format!("photon-{}.qmp", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let devices: Vec<String> = [
        "-device",
        "virtio-gpu-device,xres=1920,yres=1080",
        "-device",
        "virtio-keyboard-device",
        "-qmp",
        &format!("unix:{},server=on,wait=off", sock.display()),
    ]
    .map(String::from)
    .into();
    let mut m = Machines::new();
    let id = m.spawn(qemu(tv, APPEND, &devices, 1))?;
    let result = press_keys(&mut m, id, &sock);
    let _ = std::fs::remove_file(&sock);
    result
}

fn press_keys(m: &mut Machines, id: usize, sock: &Path) -> Result<Vec<(String, u64)>> {
    let deadline = Instant::now() + Duration::from_secs(300);
    m.wait_for(id, "bench-photon: ready #0 ", deadline)?;
    let runs = m
        .of(id)
        .iter()
        .find_map(|l| l.split("bench-photon: samples ").nth(1)?.trim().parse::<usize>().ok())
        .ok_or("bench-photon did not say how many samples it takes")?;
    let mut q = harness::qmp::Qmp::connect(sock, Duration::from_secs(5)).map_err(|e| format!("QMP: {e}"))?;
    for i in 0..runs {
        m.wait_for(id, &format!("bench-photon: ready #{i} "), deadline)?;
        std::thread::sleep(SETTLE);
        key(&mut q, true)?;
        m.wait_for(id, &format!("bench-photon: sample #{i}: "), deadline)?;
        key(&mut q, false)?;
    }
    m.results(id, "bench-photon", deadline)
}

/// Presses or releases the `a` key.
fn key(q: &mut harness::qmp::Qmp, down: bool) -> Result<()> {
    let json = format!(
        r#"{{"execute":"input-send-event","arguments":{{"events":[{{"type":"key","data":{{"down":{down},"key":{{"type":"qcode","data":"a"}}}}}}]}}}}"#
    );
    q.execute(&json).map_err(|e| format!("QMP input-send-event: {e}"))?;
    Ok(())
}
