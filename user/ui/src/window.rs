//! A window: one compositor surface whose pixels live in this task's own
//! memory (from its pool), shared read-only with the compositor.
//!
//! One buffer, drawn in place between frames (the watch cannot afford
//! two full-screen buffers per task; the protocol allows two, see
//! `userlib::services::compositor`). If the compositor restarts, the next
//! [`Window::present`] makes the surface again and shows the whole buffer.

use crate::canvas::{Canvas, Rect};
use userlib::abi::ObjectType;
use userlib::ipc::{Message, Timeout};
use userlib::services::compositor::{self as proto, Client, Event, Info, MAX_EVENTS};
use userlib::vspace::{pages_for, Mapping};
use userlib::{process, syscall, Error, Rights};

pub struct Window {
    client: Client,
    pub info: Info,
    surface: u64,
    buf: Mapping,
    pub width: i32,
    pub height: i32,
    stride: usize,
    alpha: bool,
    /// The surface must be made (again) before the next commit.
    stale: bool,
}

impl Window {
    /// A window filling this client's area (the compositor says where:
    /// its role decides). `alpha`: blended over what is below.
    pub fn open(alpha: bool) -> Result<Window, Error> {
        let n = syscall::create(process().pool, ObjectType::Notification, 0)?;
        let mut client = Client::new(n);
        let info = loop {
            match client.info() {
                Ok(i) => break i,
                Err(_) => syscall::sleep_ms(100),
            }
        };
        let (_, _, w, h) = info.area;
        let stride = w as usize * 4;
        let buf = Mapping::new(pages_for((stride * h as usize) as u64), Rights::READ | Rights::WRITE)?;
        Ok(Window {
            client,
            info,
            surface: 0,
            buf,
            width: w as i32,
            height: h as i32,
            stride,
            alpha,
            stale: true,
        })
    }

    pub fn canvas(&mut self) -> Canvas<'_> {
        Canvas::new(self.buf.as_mut_slice(), self.width, self.height, self.stride)
    }

    fn make_surface(&mut self) -> Result<(), Error> {
        let flags = if self.alpha { proto::FLAG_ALPHA } else { 0 };
        let r = self.client.call(&Message::with_words(
            proto::CREATE,
            &[self.width as u64, self.height as u64, flags],
        ))?;
        self.surface = r.word(0);
        let mut m = Message::with_words(
            proto::ATTACH,
            &[
                self.surface,
                self.width as u64,
                self.height as u64,
                self.stride as u64,
                1,
            ],
        );
        m.push_cap(self.buf.handle(), Rights::READ | Rights::MAP);
        self.client.call(&m)?;
        self.stale = false;
        Ok(())
    }

    /// Shows what was drawn in `damage` (all of it the first time and after
    /// a compositor restart).
    pub fn present(&mut self, damage: &[Rect]) -> Result<(), Error> {
        for attempt in 0..2 {
            let r = self.try_present(damage);
            match r {
                Err(Error::PeerDied) if attempt == 0 => {
                    self.stale = true;
                    syscall::sleep_ms(50);
                }
                other => return other,
            }
        }
        Err(Error::PeerDied)
    }

    fn try_present(&mut self, damage: &[Rect]) -> Result<(), Error> {
        if self.stale {
            self.make_surface()?;
            userlib::log::info!("window {}x{} up", self.width, self.height);
        } else {
            for d in damage {
                self.client.call(&Message::with_words(
                    proto::DAMAGE,
                    &[self.surface, d.x as u64, d.y as u64, d.w as u64, d.h as u64],
                ))?;
            }
        }
        self.client.call(&Message::with_words(proto::COMMIT, &[self.surface]))?;
        Ok(())
    }

    /// Waits up to `timeout` for events; returns how many are in `out`.
    pub fn wait(&mut self, out: &mut [Event; MAX_EVENTS], timeout: Timeout) -> usize {
        let _ = syscall::wait(self.client.notification, timeout);
        match self.client.events(out) {
            Ok((n, _)) => n,
            Err(_) => {
                self.stale = true;
                0
            }
        }
    }

    /// Waits until `deadline_us` (`syscall::now_us` time) for events a
    /// task acts on (input, shown/hidden), skipping frame and release
    /// notices: returns how many are in `out` (0: the deadline passed).
    pub fn next(&mut self, out: &mut [Event; MAX_EVENTS], deadline_us: u64) -> usize {
        loop {
            let now = syscall::now_us();
            if now >= deadline_us {
                return 0;
            }
            let n = self.wait(out, Timeout::Micros(deadline_us - now));
            let mut kept = 0;
            for i in 0..n {
                if !matches!(out[i].kind, proto::EV_FRAME | proto::EV_RELEASE) {
                    out[kept] = out[i];
                    kept += 1;
                }
            }
            if kept > 0 {
                return kept;
            }
        }
    }

    pub fn client(&mut self) -> &mut Client {
        &mut self.client
    }
}
