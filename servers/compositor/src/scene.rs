//! The scene: every client's surfaces, their double-buffered state, where
//! each role's surfaces go, which are shown, stacking, hit-testing and
//! focus. Generic over the buffer type, so that the host tests use plain
//! sizes where the compositor uses mapped client memory.

use crate::geom::{Damage, Rect};
use alloc::vec::Vec;
use userlib::services::compositor::{MAX_SIDE, MAX_SURFACES, ROLE_APP, ROLE_BAR, ROLE_HOME, ROLE_PANEL};
use userlib::Error;

/// A committed or pending buffer.
pub trait Buffer {
    /// Width and height in pixels.
    fn size(&self) -> (i32, i32);
    /// The client's name for it (sent back in the release event).
    fn tag(&self) -> u64;
    /// Centred in its area rather than at its top left (a projected
    /// app's buffer, smaller than the screen it is projected on).
    fn centered(&self) -> bool {
        false
    }
}

/// Most damage rectangles pending per surface (more: the whole surface).
const MAX_PENDING_DAMAGE: usize = 16;
/// Most surfaces in all.
pub const MAX_ALL_SURFACES: usize = 64;

pub struct Surface<B> {
    pub id: u16,
    pub owner: u64,
    pub role: u64,
    pub alpha: bool,
    pending: Option<B>,
    pending_damage: Vec<Rect>,
    /// Damage beyond what the list holds: the whole surface.
    pending_all: bool,
    pub current: Option<B>,
}

/// Screen layout and what is shown.
pub struct Scene<B> {
    pub width: i32,
    pub height: i32,
    pub bar_height: i32,
    surfaces: Vec<Surface<B>>,
    next_id: u16,
    pub panel_open: bool,
    /// The app shown (its owner), if any.
    pub active_app: Option<u64>,
    pub damage: Damage,
}

impl<B: Buffer> Scene<B> {
    pub fn new(width: i32, height: i32, bar_height: i32) -> Scene<B> {
        let mut damage = Damage::new(width, height);
        damage.add(Rect::new(0, 0, width, height));
        Scene {
            width,
            height,
            bar_height,
            surfaces: Vec::new(),
            next_id: 1,
            panel_open: false,
            active_app: None,
            damage,
        }
    }

    /// Where a role's surfaces go.
    pub fn area(&self, role: u64) -> Rect {
        match role {
            ROLE_BAR => Rect::new(0, 0, self.width, self.bar_height),
            _ => Rect::new(0, self.bar_height, self.width, self.height - self.bar_height),
        }
    }

    /// Stacking rank: higher is on top.
    fn rank(role: u64) -> u8 {
        match role {
            ROLE_HOME => 0,
            ROLE_APP => 1,
            ROLE_BAR => 2,
            _ => 3,
        }
    }

    pub fn shown(&self, s: &Surface<B>) -> bool {
        match s.role {
            ROLE_HOME | ROLE_BAR => true,
            ROLE_PANEL => self.panel_open,
            _ => self.active_app == Some(s.owner),
        }
    }

    /// A surface's place on the screen (its committed size, cut to its area).
    pub fn rect(&self, s: &Surface<B>) -> Option<Rect> {
        let b = s.current.as_ref()?;
        let (w, h) = b.size();
        let a = self.area(s.role);
        let (w, h) = (w.min(a.w), h.min(a.h));
        if b.centered() {
            return Some(Rect::new(a.x + (a.w - w) / 2, a.y + (a.h - h) / 2, w, h));
        }
        Some(Rect::new(a.x, a.y, w, h))
    }

    /// Shown surfaces with a buffer, bottom first.
    pub fn visible(&self) -> Vec<(&Surface<B>, Rect)> {
        let mut v: Vec<_> = self
            .surfaces
            .iter()
            .filter(|s| self.shown(s))
            .filter_map(|s| self.rect(s).map(|r| (s, r)))
            .collect();
        v.sort_by_key(|(s, _)| Self::rank(s.role));
        v
    }

    fn find(&mut self, owner: u64, id: u64) -> Result<&mut Surface<B>, Error> {
        self.surfaces
            .iter_mut()
            .find(|s| s.owner == owner && s.id as u64 == id)
            .ok_or(Error::InvalidArgument)
    }

    pub fn create(&mut self, owner: u64, role: u64, alpha: bool) -> Result<u16, Error> {
        let mine = self.surfaces.iter().filter(|s| s.owner == owner).count();
        if mine >= MAX_SURFACES || self.surfaces.len() >= MAX_ALL_SURFACES {
            return Err(Error::InvalidArgument);
        }
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        self.surfaces.push(Surface {
            id,
            owner,
            role,
            alpha,
            pending: None,
            pending_damage: Vec::new(),
            pending_all: false,
            current: None,
        });
        Ok(id)
    }

    /// Sets the pending buffer; returns the one it replaces (never shown).
    pub fn attach(&mut self, owner: u64, id: u64, b: B) -> Result<Option<B>, Error> {
        let (w, h) = b.size();
        if !(1..=MAX_SIDE as i32).contains(&w) || !(1..=MAX_SIDE as i32).contains(&h) {
            return Err(Error::InvalidArgument);
        }
        Ok(self.find(owner, id)?.pending.replace(b))
    }

    /// The buffer a write goes to: the pending one if one waits, else the
    /// committed one.
    pub fn target_mut(&mut self, owner: u64, id: u64) -> Result<&mut B, Error> {
        let s = self.find(owner, id)?;
        match s.pending {
            Some(ref mut b) => Ok(b),
            None => s.current.as_mut().ok_or(Error::InvalidArgument),
        }
    }

    /// The pending buffer, if one waits.
    pub fn pending(&self, owner: u64, id: u64) -> Option<&B> {
        self.surfaces
            .iter()
            .find(|s| s.owner == owner && s.id as u64 == id)?
            .pending
            .as_ref()
    }

    pub fn add_damage(&mut self, owner: u64, id: u64, r: Rect) -> Result<(), Error> {
        if r.is_empty() {
            return Err(Error::InvalidArgument);
        }
        let s = self.find(owner, id)?;
        if s.pending_damage.len() >= MAX_PENDING_DAMAGE {
            s.pending_all = true;
        } else {
            s.pending_damage.push(r);
        }
        Ok(())
    }

    /// Applies the pending state; returns the buffer it retires (release it).
    pub fn commit(&mut self, owner: u64, id: u64) -> Result<Option<B>, Error> {
        let idx = self
            .surfaces
            .iter()
            .position(|s| s.owner == owner && s.id as u64 == id)
            .ok_or(Error::InvalidArgument)?;
        let old_rect = self.rect(&self.surfaces[idx]);
        let s = &mut self.surfaces[idx];
        let new_buffer = s.pending.is_some();
        let retired = match s.pending.take() {
            Some(b) => s.current.replace(b),
            None => None,
        };
        let damage = core::mem::take(&mut s.pending_damage);
        let all = core::mem::take(&mut s.pending_all) || (new_buffer && damage.is_empty());
        let s = &self.surfaces[idx];
        if self.shown(s) {
            let new_rect = self.rect(s);
            let resized = old_rect.map(|r| (r.w, r.h)) != new_rect.map(|r| (r.w, r.h));
            match new_rect {
                Some(nr) if !all && !resized => {
                    for d in damage {
                        self.damage.add(d.offset(nr.x, nr.y).intersect(&nr));
                    }
                }
                _ => {
                    for r in [old_rect, new_rect].into_iter().flatten() {
                        self.damage.add(r);
                    }
                }
            }
        }
        Ok(retired)
    }

    fn damage_surface(&mut self, i: usize) {
        let s = &self.surfaces[i];
        if self.shown(s) {
            if let Some(r) = self.rect(s) {
                self.damage.add(r);
            }
        }
    }

    /// Removes one surface; returns its buffers (to unmap).
    pub fn destroy(&mut self, owner: u64, id: u64) -> Result<Surface<B>, Error> {
        let i = self
            .surfaces
            .iter()
            .position(|s| s.owner == owner && s.id as u64 == id)
            .ok_or(Error::InvalidArgument)?;
        self.damage_surface(i);
        Ok(self.surfaces.swap_remove(i))
    }

    /// Removes every surface of `owner` (a client that died or broke the
    /// protocol); its area is recomposed without it.
    pub fn remove_owner(&mut self, owner: u64) -> Vec<Surface<B>> {
        let mut gone = Vec::new();
        while let Some(i) = self.surfaces.iter().position(|s| s.owner == owner) {
            self.damage_surface(i);
            gone.push(self.surfaces.swap_remove(i));
        }
        if self.active_app == Some(owner) {
            self.active_app = None;
        }
        gone
    }

    /// Drops a surface's current buffer (its memory was revoked).
    pub fn drop_current(&mut self, owner: u64, id: u16) -> Option<B> {
        let i = self.surfaces.iter().position(|s| s.owner == owner && s.id == id)?;
        self.damage_surface(i);
        self.surfaces[i].current.take()
    }

    /// The topmost shown surface under `(x, y)`: owner, id and the point
    /// in its coordinates.
    pub fn hit(&self, x: i32, y: i32) -> Option<(u64, u16, i32, i32)> {
        self.visible()
            .iter()
            .rev()
            .find(|(_, r)| r.contains_point(x, y))
            .map(|(s, r)| (s.owner, s.id, x - r.x, y - r.y))
    }

    /// Where keys go: the panel when open, else the shown app, else home.
    pub fn focus(&self) -> Option<(u64, u16)> {
        let pick = |role: u64, owner: Option<u64>| {
            self.surfaces
                .iter()
                .find(|s| s.role == role && owner.is_none_or(|o| s.owner == o) && s.current.is_some())
                .map(|s| (s.owner, s.id))
        };
        if self.panel_open {
            if let Some(f) = pick(ROLE_PANEL, None) {
                return Some(f);
            }
        }
        if let Some(app) = self.active_app {
            if let Some(f) = pick(ROLE_APP, Some(app)) {
                return Some(f);
            }
        }
        pick(ROLE_HOME, None)
    }

    fn damage_area(&mut self, role: u64) {
        let a = self.area(role);
        self.damage.add(a);
    }

    /// Shows or hides the control-center panel.
    pub fn set_panel(&mut self, open: bool) {
        if self.panel_open != open {
            self.panel_open = open;
            self.damage_area(ROLE_PANEL);
        }
    }

    /// Shows app `owner` (None: home).
    pub fn activate(&mut self, owner: Option<u64>) {
        if self.active_app != owner {
            self.active_app = owner;
            self.damage_area(ROLE_APP);
        }
    }

    pub fn owners(&self) -> impl Iterator<Item = u64> + '_ {
        self.surfaces.iter().map(|s| s.owner)
    }

    pub fn surfaces(&self) -> &[Surface<B>] {
        &self.surfaces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Buf(i32, i32, u64);
    impl Buffer for Buf {
        fn size(&self) -> (i32, i32) {
            (self.0, self.1)
        }
        fn tag(&self) -> u64 {
            self.2
        }
        fn centered(&self) -> bool {
            self.2 == CENTERED
        }
    }

    /// The tag of a test buffer that is centred.
    const CENTERED: u64 = 99;

    fn scene() -> Scene<Buf> {
        let mut s = Scene::new(540, 1170, 48);
        s.damage.take();
        s
    }

    #[test]
    fn commit_is_atomic_and_damages_only_what_changed() {
        let mut s = scene();
        let home = s.create(10, ROLE_HOME, false).unwrap();
        s.attach(10, home as u64, Buf(540, 1122, 1)).unwrap();
        assert!(s.visible().is_empty(), "nothing shows before the commit");
        assert!(s.damage.is_empty());
        assert_eq!(s.commit(10, home as u64).unwrap(), None);
        assert_eq!(s.damage.rects(), &[Rect::new(0, 48, 540, 1122)]);
        s.damage.take();
        s.add_damage(10, home as u64, Rect::new(0, 0, 64, 64)).unwrap();
        assert!(s.damage.is_empty(), "damage waits for the commit");
        s.commit(10, home as u64).unwrap();
        assert_eq!(s.damage.rects(), &[Rect::new(0, 48, 64, 64)]);
        s.damage.take();
        // A new buffer retires the old one.
        s.attach(10, home as u64, Buf(540, 1122, 2)).unwrap();
        s.add_damage(10, home as u64, Rect::new(1, 1, 1, 1)).unwrap();
        assert_eq!(s.commit(10, home as u64).unwrap(), Some(Buf(540, 1122, 1)));
        assert_eq!(s.damage.rects(), &[Rect::new(1, 49, 1, 1)]);
    }

    #[test]
    fn writes_go_to_the_pending_buffer_else_the_committed_one() {
        let mut s = scene();
        let a = s.create(1, ROLE_APP, false).unwrap() as u64;
        assert_eq!(s.target_mut(1, a), Err(Error::InvalidArgument), "no buffer yet");
        s.attach(1, a, Buf(4, 4, 1)).unwrap();
        assert_eq!(s.pending(1, a), Some(&Buf(4, 4, 1)));
        assert_eq!(s.target_mut(1, a).map(|b| b.2), Ok(1));
        assert!(s.target_mut(2, a).is_err(), "not its surface");
        s.commit(1, a).unwrap();
        assert_eq!(s.pending(1, a), None);
        assert_eq!(s.target_mut(1, a).map(|b| b.2), Ok(1), "the committed one");
        s.attach(1, a, Buf(4, 4, 2)).unwrap();
        assert_eq!(s.target_mut(1, a).map(|b| b.2), Ok(2), "the pending one");
        // A centred buffer (a projection) sits in the middle of its area.
        s.attach(1, a, Buf(40, 22, CENTERED)).unwrap();
        s.commit(1, a).unwrap();
        let r = s.rect(s.surfaces().iter().find(|x| x.id as u64 == a).unwrap());
        assert_eq!(r, Some(Rect::new(250, 48 + 550, 40, 22)));
    }

    #[test]
    fn one_device_cannot_reach_another_devices_surfaces() {
        // Two devices projecting through the bus (task 15): each is the
        // bus's client of its own, a badge apart.
        use userlib::proto::client_badge;
        let (a, b) = (client_badge(15, 1), client_badge(15, 2));
        let mut s = scene();
        let sa = s.create(a, ROLE_APP, false).unwrap() as u64;
        let sb = s.create(b, ROLE_APP, false).unwrap() as u64;
        assert_eq!(s.attach(b, sa, Buf(4, 4, 0)), Err(Error::InvalidArgument));
        assert!(s.target_mut(b, sa).is_err(), "no WRITE into another's");
        assert_eq!(s.commit(b, sa), Err(Error::InvalidArgument));
        assert!(s.destroy(b, sa).is_err());
        // Nor does the bus's own badge reach them.
        assert!(s.destroy(15, sa).is_err());
        // Device b leaves (its BYE): its surface goes, a's stays.
        assert_eq!(s.remove_owner(b).len(), 1);
        assert!(s.destroy(a, sb).is_err());
        assert_eq!(s.surfaces().len(), 1);
        assert_eq!(s.surfaces()[0].owner, a);
    }

    #[test]
    fn ownership_and_limits() {
        let mut s = scene();
        let a = s.create(1, ROLE_APP, false).unwrap();
        assert_eq!(
            s.attach(2, a as u64, Buf(1, 1, 0)),
            Err(Error::InvalidArgument),
            "not its surface"
        );
        assert_eq!(s.commit(2, a as u64), Err(Error::InvalidArgument));
        assert!(s.destroy(2, a as u64).is_err());
        assert_eq!(s.attach(1, a as u64, Buf(0, 1, 0)), Err(Error::InvalidArgument));
        assert_eq!(s.attach(1, a as u64, Buf(5000, 1, 0)), Err(Error::InvalidArgument));
        assert_eq!(
            s.add_damage(1, a as u64, Rect::new(0, 0, 0, 5)),
            Err(Error::InvalidArgument)
        );
        for _ in 1..MAX_SURFACES {
            s.create(1, ROLE_APP, false).unwrap();
        }
        assert!(s.create(1, ROLE_APP, false).is_err());
        assert_eq!(s.remove_owner(1).len(), MAX_SURFACES);
        assert!(s.surfaces().is_empty());
    }

    #[test]
    fn stacking_hit_testing_focus_and_gestures() {
        let mut s = scene();
        let mk = |s: &mut Scene<Buf>, owner, role, w, h| {
            let id = s.create(owner, role, false).unwrap();
            s.attach(owner, id as u64, Buf(w, h, 0)).unwrap();
            s.commit(owner, id as u64).unwrap();
            id
        };
        let home = mk(&mut s, 1, ROLE_HOME, 540, 1122);
        let bar = mk(&mut s, 2, ROLE_BAR, 540, 48);
        let panel = mk(&mut s, 3, ROLE_PANEL, 540, 1122);
        let app = mk(&mut s, 4, ROLE_APP, 540, 1122);
        assert_eq!(s.hit(10, 10), Some((2, bar, 10, 10)));
        assert_eq!(s.hit(10, 100), Some((1, home, 10, 52)));
        assert_eq!(s.focus(), Some((1, home)));
        s.activate(Some(4));
        assert_eq!(s.hit(10, 100), Some((4, app, 10, 52)));
        assert_eq!(s.focus(), Some((4, app)));
        s.damage.take();
        s.set_panel(true);
        assert_eq!(s.damage.rects(), &[Rect::new(0, 48, 540, 1122)]);
        assert_eq!(s.hit(10, 100), Some((3, panel, 10, 52)));
        assert_eq!(s.focus(), Some((3, panel)));
        let order: Vec<u64> = s.visible().iter().map(|(x, _)| x.owner).collect();
        assert_eq!(order, [1, 4, 2, 3]);
        s.set_panel(false);
        // The app dies: home again.
        s.remove_owner(4);
        assert_eq!(s.active_app, None);
        assert_eq!(s.hit(10, 100), Some((1, home, 10, 52)));
        // A surface larger than its area is cut to it.
        let big = mk(&mut s, 5, ROLE_BAR, 4096, 4096);
        let r = s.rect(s.surfaces().iter().find(|x| x.id == big).unwrap());
        assert_eq!(r, Some(Rect::new(0, 0, 540, 48)));
    }
}
