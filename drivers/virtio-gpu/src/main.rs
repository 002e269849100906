//! virtio-gpu: the display driver (2D, one scanout) on virtio-mmio.
//!
//! At start it picks the mode (the profile's `width=W height=H`, else the
//! device's preferred one), creates the 2D resource over one DMA
//! framebuffer (BGRX, 32 bpp), sets the scanout, draws the boot splash
//! (`profile=NAME` names it, else the boot archive's `profile` file) and
//! flushes it. Then it serves `display` (protocol:
//! `userlib::services::display`).
//!
//! Memory: the framebuffer is the only large allocation; the driver and
//! its clients map that same memory object (no second copy). With
//! `rows=N` in its args (the watch) it holds only N rows: a band that
//! `PUT` moves over the screen, the device's resource (host memory, not
//! the guest's) keeping the whole picture; the splash is drawn and
//! transferred band by band.
//!
//! The device is driven through the kit's [`driverkit::virtio::gpu`]: a
//! FLUSH transfers and redraws only its rectangles, and the driver sleeps
//! on the device's interrupt while the device works.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]
// On the host only the pure parts are tested; the rest goes unused there.
#![cfg_attr(test, allow(dead_code, unused_imports))]

extern crate alloc;

mod draw;

use alloc::string::String;
use draw::Canvas;
use driverkit::virtio::gpu::Gpu;
use driverkit::virtio::virtio_drivers::transport::Transport;
use driverkit::virtio::{self};
use driverkit::{log, names, serve, Action, Device, DeviceError, Error, Message, Rights};
use userlib::abi::ObjectType;
use userlib::proto::{reply_error, OK};
use userlib::services::display::{self, Info, Rect, FORMAT_BGRX8888};
use userlib::{process, syscall};

#[cfg(not(test))]
userlib::entry!(main, heap = 24 * 1024);

/// Largest width or height accepted (virtio-gpu's own limit is far above
/// any panel Kestrel drives; this keeps `w * h * 4` well inside `u32`).
const MAX_SIDE: u32 = 8192;

/// The mode to set: the profile's `width`/`height` when both are given and
/// sane (a mismatch with the device's preferred mode is only worth a
/// warning: the device scales), else the device's preferred mode.
/// Returns the mode and a warning to log, if any.
fn choose_mode(
    width: Option<&str>,
    height: Option<&str>,
    preferred: Option<(u32, u32)>,
) -> Result<((u32, u32), Option<&'static str>), &'static str> {
    let side = |s: Option<&str>| {
        s.and_then(|v| v.parse::<u32>().ok())
            .filter(|v| (1..=MAX_SIDE).contains(v))
    };
    let preferred = preferred.filter(|&(w, h)| (1..=MAX_SIDE).contains(&w) && (1..=MAX_SIDE).contains(&h));
    match (side(width), side(height), preferred) {
        (Some(w), Some(h), p) => {
            let warn = p
                .filter(|&p| p != (w, h))
                .map(|_| "the profile's mode differs from the device's preferred one");
            Ok(((w, h), warn))
        }
        (_, _, Some(p)) => {
            let warn =
                (width.is_some() || height.is_some()).then_some("ignoring an invalid or partial width/height argument");
            Ok((p, warn))
        }
        (_, _, None) => Err("the device reports no mode and the profile gives none"),
    }
}

/// The splash's title: the `profile=` argument, else the `profile` line of
/// the boot archive's profile file, else "Kestrel".
fn title(device: &Device) -> String {
    if let Some(p) = device.arg("profile") {
        return p.into();
    }
    let from_archive = userlib::loader::archive()
        .and_then(|a| userlib::cpio::Archive::new(a).find("profile").ok().flatten())
        .and_then(|e| core::str::from_utf8(e.data).ok())
        .and_then(profile_name);
    from_archive.unwrap_or("Kestrel").into()
}

/// The name on the `profile NAME` line of init's profile file.
fn profile_name(text: &str) -> Option<&str> {
    text.lines()
        .find_map(|l| l.strip_prefix("profile "))
        .map(str::trim)
        .filter(|n| !n.is_empty())
}

fn main(_: &userlib::abi::boot_info::StartInfo) -> Result<(), DeviceError> {
    let device = Device::get()?;
    let (transport, _registers) = virtio::transport(&device)?;
    let irq = device.interrupt(0)?;
    let mut gpu = Gpu::new(transport, irq)?;
    let preferred = gpu.preferred_mode()?;
    let ((width, height), warning) =
        choose_mode(device.arg("width"), device.arg("height"), preferred).map_err(DeviceError::Unsupported)?;
    if let Some(w) = warning {
        log::warn!("{w} (device: {preferred:?}, using {width}x{height})");
    }
    let rows = band_rows(device.arg("rows"), height);
    let info = Info {
        width,
        height,
        stride: width * 4,
        format: FORMAT_BGRX8888,
        rows,
    };
    gpu.set_mode_rows(width, height, rows)?;
    let name = title(&device);
    for top in (0..height).step_by(rows as usize) {
        if let Some(fb) = gpu.framebuffer() {
            draw::splash(&mut canvas(fb, &info, top), &name);
        }
        let band = Rect {
            x: 0,
            y: top,
            w: width,
            h: rows.min(height - top),
        };
        gpu.put(top, &[band])?;
    }

    let me = process();
    let ep = syscall::create(me.pool, ObjectType::Endpoint, 0)?;
    names::register(display::NAME, ep)?;
    log::info!(
        "{}: {width}x{height} BGRX, framebuffer {} KiB ({rows} rows), splash \"{name}\"; serving `{}`",
        device.node(),
        info.bytes() / 1024,
        display::NAME
    );
    serve(ep, |msg, _badge| {
        Action::Reply(match handle(msg, &info, &mut gpu) {
            Ok(reply) => reply,
            Err(e) => reply_error(e),
        })
    })?;
    Ok(())
}

/// The rows the framebuffer holds: the `rows=N` argument (1..=`height`),
/// else all `height`.
fn band_rows(arg: Option<&str>, height: u32) -> u32 {
    arg.and_then(|v| v.parse::<u32>().ok())
        .filter(|r| (1..=height).contains(r))
        .unwrap_or(height)
}

fn canvas<'a>(fb: &'a mut [u8], info: &Info, top: u32) -> Canvas<'a> {
    Canvas {
        buf: fb,
        width: info.width,
        height: info.height,
        stride: info.stride as usize,
        top,
    }
}

/// One request. A FLUSH (a PUT) copies only its rectangles to the device
/// and redraws only them. FILL and FLUSH address the framebuffer's rows as
/// screen rows `0..rows`.
fn handle<T: Transport>(msg: &Message, info: &Info, gpu: &mut Gpu<T>) -> Result<Message, Error> {
    match msg.label {
        display::INFO => Ok(Message::with_words(OK, &info.to_words())),
        display::FILL => {
            let rect = Rect::clip(msg.words(), info.width, info.height)?;
            let rgb = u32::try_from(msg.word(4))
                .ok()
                .filter(|c| *c <= 0xff_ffff)
                .ok_or(Error::InvalidArgument)?;
            let fb = gpu.framebuffer().ok_or(Error::InvalidState)?;
            canvas(fb, info, 0).fill(rect, rgb);
            Ok(Message::new(OK))
        }
        display::FLUSH => {
            let rects = Rect::clip_all(msg.words(), info.width, info.height)?;
            gpu.flush(&rects)?;
            Ok(Message::new(OK))
        }
        display::PUT => {
            let (&top, words) = msg.words().split_first().ok_or(Error::InvalidArgument)?;
            let top = u32::try_from(top)
                .ok()
                .filter(|t| *t < info.height)
                .ok_or(Error::InvalidArgument)?;
            let rects = Rect::clip_all(words, info.width, info.height)?;
            gpu.put(top, &rects)?;
            Ok(Message::new(OK))
        }
        display::MAP => {
            let memory = gpu.framebuffer_memory().ok_or(Error::InvalidState)?;
            let mut m = Message::with_words(OK, &[info.bytes() as u64]);
            m.push_cap(memory, Rights::READ | Rights::WRITE | Rights::MAP);
            Ok(m)
        }
        _ => Err(Error::InvalidArgument),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        let dev = Some((1280, 800));
        assert_eq!(choose_mode(None, None, dev), Ok(((1280, 800), None)));
        assert_eq!(
            choose_mode(Some("540"), Some("1170"), Some((540, 1170))),
            Ok(((540, 1170), None))
        );
        let (m, warn) = choose_mode(Some("454"), Some("454"), dev).unwrap();
        assert_eq!(m, (454, 454));
        assert!(warn.is_some());
        assert_eq!(choose_mode(Some("454"), Some("454"), None), Ok(((454, 454), None)));
        for (w, h) in [
            (Some("0"), Some("10")),
            (Some("x"), Some("10")),
            (Some("99999"), Some("10")),
            (Some("10"), None),
        ] {
            let (m, warn) = choose_mode(w, h, dev).unwrap();
            assert_eq!(m, (1280, 800));
            assert!(warn.is_some());
            assert!(choose_mode(w, h, None).is_err());
        }
        assert!(choose_mode(None, None, Some((0, 0))).is_err());
        assert!(choose_mode(None, None, None).is_err());
    }

    #[test]
    fn band_rows_come_from_the_argument_or_are_the_screen() {
        assert_eq!(band_rows(None, 454), 454);
        assert_eq!(band_rows(Some("32"), 454), 32);
        assert_eq!(band_rows(Some("454"), 454), 454);
        for bad in ["0", "455", "-1", "x", ""] {
            assert_eq!(band_rows(Some(bad), 454), 454, "{bad}");
        }
    }

    #[test]
    fn profile_names() {
        let f = "# generated by cargo xtask from profiles/watch.toml\nprofile watch\ndisplay 454 454\n";
        assert_eq!(profile_name(f), Some("watch"));
        assert_eq!(profile_name("profile \n"), None);
        assert_eq!(profile_name(""), None);
    }
}
