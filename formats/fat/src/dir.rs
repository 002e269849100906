//! Directory entries: the 32-byte short (8.3) entry, long-name (VFAT)
//! entries, short-name aliases and checksums, name rules. Pure functions
//! on bytes, so they are tested without a disk.

use crate::{le16, le32, Error};
use alloc::string::String;
use alloc::vec::Vec;

pub const ENTRY: usize = 32;
pub const ATTR_READ_ONLY: u8 = 0x01;
pub const ATTR_HIDDEN: u8 = 0x02;
pub const ATTR_SYSTEM: u8 = 0x04;
pub const ATTR_VOLUME: u8 = 0x08;
pub const ATTR_DIRECTORY: u8 = 0x10;
pub const ATTR_ARCHIVE: u8 = 0x20;
pub const ATTR_LFN: u8 = 0x0f;
/// First byte of a deleted entry.
pub const DELETED: u8 = 0xe5;
/// Case flags (byte 12, as Windows NT and Linux write them): the base or
/// the extension of a short name is shown in lower case.
pub const CASE_LOWER_BASE: u8 = 0x08;
pub const CASE_LOWER_EXT: u8 = 0x10;
/// Longest name in UTF-16 units.
pub const MAX_NAME: usize = 255;

/// Reads of a short entry.
pub fn attr(e: &[u8]) -> u8 {
    e[11]
}

pub fn first_cluster(e: &[u8]) -> u32 {
    (le16(e, 20) as u32) << 16 | le16(e, 26) as u32
}

pub fn size(e: &[u8]) -> u32 {
    le32(e, 28)
}

pub fn set_first_cluster(e: &mut [u8], c: u32) {
    e[20..22].copy_from_slice(&((c >> 16) as u16).to_le_bytes());
    e[26..28].copy_from_slice(&(c as u16).to_le_bytes());
}

pub fn set_size(e: &mut [u8], size: u32) {
    e[28..32].copy_from_slice(&size.to_le_bytes());
}

/// Sets the modification (and access) time; `t` is FAT `(date, time)`.
pub fn set_mtime(e: &mut [u8], t: (u16, u16)) {
    e[22..24].copy_from_slice(&t.1.to_le_bytes());
    e[24..26].copy_from_slice(&t.0.to_le_bytes());
    e[18..20].copy_from_slice(&t.0.to_le_bytes());
}

/// A new short entry.
pub fn short_entry(name: &[u8; 11], case: u8, attr: u8, cluster: u32, t: (u16, u16)) -> [u8; ENTRY] {
    let mut e = [0u8; ENTRY];
    e[..11].copy_from_slice(name);
    e[11] = attr;
    e[12] = case;
    e[14..16].copy_from_slice(&t.1.to_le_bytes());
    e[16..18].copy_from_slice(&t.0.to_le_bytes());
    set_mtime(&mut e, t);
    set_first_cluster(&mut e, cluster);
    e
}

/// The name a short entry shows (`README.TXT`, or `readme.txt` with the
/// case flags).
pub fn short_display(e: &[u8]) -> String {
    let mut s = String::new();
    let push = |s: &mut String, part: &[u8], lower: bool| {
        for (i, &b) in part.iter().enumerate() {
            let b = if i == 0 && b == 0x05 { 0xe5 } else { b };
            let c = if b < 0x80 { b as char } else { '_' };
            s.push(if lower { c.to_ascii_lowercase() } else { c });
        }
    };
    let base = trim_spaces(&e[0..8]);
    let ext = trim_spaces(&e[8..11]);
    push(&mut s, base, e[12] & CASE_LOWER_BASE != 0);
    if !ext.is_empty() {
        s.push('.');
        push(&mut s, ext, e[12] & CASE_LOWER_EXT != 0);
    }
    s
}

fn trim_spaces(b: &[u8]) -> &[u8] {
    let n = b.iter().rposition(|&c| c != b' ').map_or(0, |i| i + 1);
    &b[..n]
}

/// Checks a name for creating: not empty, not `.`/`..`, at most
/// [`MAX_NAME`] UTF-16 units, no control characters or `"*/:<>?\|`, and
/// no trailing dot or space (Windows would not find it).
pub fn validate(name: &str) -> Result<(), Error> {
    if name.is_empty() || name == "." || name == ".." || name.encode_utf16().count() > MAX_NAME {
        return Err(Error::InvalidName);
    }
    if name.ends_with('.') || name.ends_with(' ') {
        return Err(Error::InvalidName);
    }
    if name
        .chars()
        .any(|c| (c as u32) < 0x20 || "\"*/:<>?\\|\u{7f}".contains(c))
    {
        return Err(Error::InvalidName);
    }
    Ok(())
}

fn short_char(c: char) -> Option<u8> {
    match c {
        'A'..='Z' | '0'..='9' => Some(c as u8),
        '!' | '#' | '$' | '%' | '&' | '\'' | '(' | ')' | '-' | '@' | '^' | '_' | '`' | '{' | '}' | '~' => Some(c as u8),
        _ => None,
    }
}

/// The short entry name and case flags if `name` is an exact 8.3 name
/// (each part all upper or all lower case): no long-name entries needed.
pub fn exact_short(name: &str) -> Option<([u8; 11], u8)> {
    let (base, ext) = match name.rfind('.') {
        Some(i) => (&name[..i], &name[i + 1..]),
        None => (name, ""),
    };
    if base.is_empty() || base.len() > 8 || ext.len() > 3 || (name.contains('.') && ext.is_empty()) {
        return None;
    }
    let mut out = [b' '; 11];
    let mut case = 0;
    for (part, at, flag) in [(base, 0, CASE_LOWER_BASE), (ext, 8, CASE_LOWER_EXT)] {
        let lower = part.chars().any(|c| c.is_ascii_lowercase());
        let upper = part.chars().any(|c| c.is_ascii_uppercase());
        if lower && upper {
            return None;
        }
        if lower {
            case |= flag;
        }
        for (i, c) in part.chars().enumerate() {
            out[at + i] = short_char(c.to_ascii_uppercase())?;
        }
    }
    if out[0] == 0xe5 {
        out[0] = 0x05;
    }
    Some((out, case))
}

/// The short alias `BASE~N.EXT` of a long name (Windows' scheme: upper
/// case, invalid characters as `_`, spaces and dots dropped, the base cut
/// so that `~N` fits in 8).
pub fn alias(name: &str, n: u32) -> [u8; 11] {
    let (base, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i + 1..]),
        _ => (name, ""),
    };
    let conv = |c: char| -> Option<u8> {
        match c {
            ' ' | '.' => None,
            c => Some(short_char(c.to_ascii_uppercase()).unwrap_or(b'_')),
        }
    };
    let mut out = [b' '; 11];
    let mut digits = [0u8; 10];
    let mut nd = 0;
    let mut v = n;
    loop {
        digits[nd] = b'0' + (v % 10) as u8;
        nd += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let room = 8 - 1 - nd;
    let mut len = 0;
    for b in base.chars().filter_map(conv).take(room) {
        out[len] = b;
        len += 1;
    }
    if len == 0 {
        out[0] = b'_';
        len = 1;
    }
    out[len] = b'~';
    for k in 0..nd {
        out[len + 1 + k] = digits[nd - 1 - k];
    }
    for (i, b) in ext.chars().filter_map(conv).take(3).enumerate() {
        out[8 + i] = b;
    }
    out
}

/// The checksum long-name entries carry of their short entry's name.
pub fn checksum(name: &[u8]) -> u8 {
    name[..11].iter().fold(0u8, |s, &b| s.rotate_right(1).wrapping_add(b))
}

/// The long-name entries for `name`, in on-disk order (last part first).
pub fn lfn_entries(name: &str, sum: u8) -> Vec<[u8; ENTRY]> {
    let units: Vec<u16> = name.encode_utf16().collect();
    let n = units.len().div_ceil(13);
    let mut out = Vec::with_capacity(n);
    for seq in (1..=n).rev() {
        let mut e = [0u8; ENTRY];
        e[0] = seq as u8 | if seq == n { 0x40 } else { 0 };
        e[11] = ATTR_LFN;
        e[13] = sum;
        for (k, &at) in LFN_OFFSETS.iter().enumerate() {
            let i = (seq - 1) * 13 + k;
            let u = match i.cmp(&units.len()) {
                core::cmp::Ordering::Less => units[i],
                core::cmp::Ordering::Equal => 0,
                core::cmp::Ordering::Greater => 0xffff,
            };
            e[at..at + 2].copy_from_slice(&u.to_le_bytes());
        }
        out.push(e);
    }
    out
}

const LFN_OFFSETS: [usize; 13] = [1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30];

/// Gathers the long-name entries before a short entry. A sequence that
/// breaks (wrong order, wrong checksum, orphaned) is dropped and the short
/// name used, as the tools do.
#[derive(Default)]
pub struct LfnCollector {
    units: Vec<u16>,
    next: u8,
    sum: u8,
    count: u32,
    active: bool,
}

impl LfnCollector {
    pub fn feed(&mut self, e: &[u8]) {
        let seq = e[0] & 0x1f;
        if e[0] & 0x40 != 0 {
            if seq == 0 || seq as usize * 13 > 20 * 13 {
                self.reset();
                return;
            }
            self.units.clear();
            self.units.resize(seq as usize * 13, 0xffff);
            self.next = seq;
            self.sum = e[13];
            self.count = 0;
            self.active = true;
        } else if !self.active || seq != self.next || e[13] != self.sum {
            self.reset();
            return;
        }
        if seq == 0 {
            self.reset();
            return;
        }
        for (k, &at) in LFN_OFFSETS.iter().enumerate() {
            self.units[(seq as usize - 1) * 13 + k] = le16(e, at);
        }
        self.next = seq - 1;
        self.count += 1;
    }

    pub fn reset(&mut self) {
        self.active = false;
        self.count = 0;
    }

    /// The long name for short entry `e` if a complete sequence precedes
    /// it, and how many entries it used.
    pub fn finish(&mut self, e: &[u8]) -> Option<(String, u32)> {
        let ok = self.active && self.next == 0 && self.sum == checksum(e);
        let count = self.count;
        self.reset();
        if !ok {
            return None;
        }
        let end = self.units.iter().position(|&u| u == 0).unwrap_or(self.units.len());
        let name: String = char::decode_utf16(self.units[..end].iter().copied())
            .map(|r| r.unwrap_or('\u{fffd}'))
            .collect();
        if name.is_empty() {
            return None;
        }
        Some((name, count))
    }
}

/// FAT names compare without case.
pub fn same_name(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_uppercase)
        .eq(b.chars().flat_map(char::to_uppercase))
}
