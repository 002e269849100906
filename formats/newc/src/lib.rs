//! A reader for cpio "newc" archives (`070701`/`070702`), the format of the
//! Kestrel boot archive.
//!
//! Written here rather than taken from crates.io: the format is a 110-byte
//! ASCII header, a name and the data, each padded to 4 bytes; a reader is
//! short enough to own and test, and it stays free of dependencies so that
//! the kernel, user space and the build tool can all share it.
//!
//! ```
//! fn list(archive: &[u8]) -> Result<(), newc::ParseError> {
//!     for entry in newc::Archive::new(archive) {
//!         let entry = entry?;
//!         let _ = (entry.name, entry.data.len());
//!     }
//!     Ok(())
//! }
//! assert!(list(b"").is_err()); // not even a trailer
//! ```
#![no_std]

/// Length of a newc header.
pub const HEADER_LEN: usize = 110;
/// Name of the entry that ends an archive.
pub const TRAILER: &str = "TRAILER!!!";
/// `mode` bits of a regular file.
pub const MODE_FILE: u32 = 0o100000;
/// Mask of the file-type bits of `mode`.
pub const MODE_TYPE_MASK: u32 = 0o170000;
/// The boot archive the build tool writes starts each file's data at a
/// multiple of this many bytes (its name is padded with NULs), so that a
/// program's read-only segments can be mapped straight from the archive's
/// pages. Readers do not depend on it.
pub const PAGE_ALIGN: usize = 4096;

/// What is wrong with an archive, and at which byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// The header does not start with `070701` or `070702`.
    BadMagic(usize),
    /// A header field is not 8 hex digits.
    BadField(usize),
    /// A header, name or data runs past the end of the archive.
    Truncated(usize),
    /// The name is not UTF-8 or lacks its terminating NUL.
    BadName(usize),
}

impl core::fmt::Display for ParseError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ParseError::BadMagic(o) => write!(f, "no cpio newc magic at offset {o}"),
            ParseError::BadField(o) => write!(f, "bad header field at offset {o}"),
            ParseError::Truncated(o) => write!(f, "entry at offset {o} is truncated"),
            ParseError::BadName(o) => write!(f, "bad file name at offset {o}"),
        }
    }
}

/// One archive member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    /// Path inside the archive, without a leading `./`.
    pub name: &'a str,
    pub ino: u32,
    pub mode: u32,
    pub mtime: u32,
    pub data: &'a [u8],
}

impl Entry<'_> {
    /// A regular file (not a directory, link or device).
    pub fn is_file(&self) -> bool {
        self.mode & MODE_TYPE_MASK == MODE_FILE
    }
}

/// Iterator over the entries of an archive, up to the trailer. After an
/// error it yields nothing more.
#[derive(Clone, Debug)]
pub struct Archive<'a> {
    bytes: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> Archive<'a> {
    pub fn new(bytes: &'a [u8]) -> Archive<'a> {
        Archive {
            bytes,
            offset: 0,
            done: false,
        }
    }

    /// The first regular file called `name`.
    pub fn find(&self, name: &str) -> Result<Option<Entry<'a>>, ParseError> {
        for e in self.clone() {
            let e = e?;
            if e.name == name && e.is_file() {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    fn parse_next(&mut self) -> Result<Option<Entry<'a>>, ParseError> {
        let start = self.offset;
        let header = self
            .bytes
            .get(start..start + HEADER_LEN)
            .ok_or(ParseError::Truncated(start))?;
        if &header[..6] != b"070701" && &header[..6] != b"070702" {
            return Err(ParseError::BadMagic(start));
        }
        // Fields after the magic, in order: ino, mode, uid, gid, nlink,
        // mtime, filesize, devmajor, devminor, rdevmajor, rdevminor,
        // namesize, check.
        // (One loop over all of them: one copy of the digit parser.)
        let mut fields = [0u32; 13];
        for (i, (value, digits)) in fields.iter_mut().zip(header[6..].chunks_exact(8)).enumerate() {
            *value = hex_field(digits).ok_or(ParseError::BadField(start + 6 + 8 * i))?;
        }
        let (ino, mode, mtime) = (fields[0], fields[1], fields[5]);
        let file_size = fields[6] as usize;
        let name_size = fields[11] as usize;

        let name_start = start + HEADER_LEN;
        let name_end = name_start.checked_add(name_size).ok_or(ParseError::Truncated(start))?;
        let name_bytes = self
            .bytes
            .get(name_start..name_end)
            .ok_or(ParseError::Truncated(start))?;
        // The name ends at its first NUL; more NULs may follow it up to
        // `namesize` (the build tool pads names so that file data starts
        // on a page boundary, see [`PAGE_ALIGN`]). The last byte is a NUL.
        if name_bytes.last() != Some(&0) {
            return Err(ParseError::BadName(start));
        }
        let len = name_bytes.iter().position(|&b| b == 0).unwrap_or(0);
        let name = core::str::from_utf8(&name_bytes[..len]).map_err(|_| ParseError::BadName(start))?;

        let data_start = align4(name_end);
        let data_end = data_start.checked_add(file_size).ok_or(ParseError::Truncated(start))?;
        let data = self
            .bytes
            .get(data_start..data_end)
            .ok_or(ParseError::Truncated(start))?;
        if name == TRAILER {
            return Ok(None);
        }
        self.offset = align4(data_end);
        let name = name.strip_prefix("./").unwrap_or(name);
        Ok(Some(Entry {
            name,
            ino,
            mode,
            mtime,
            data,
        }))
    }
}

impl<'a> Iterator for Archive<'a> {
    type Item = Result<Entry<'a>, ParseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.parse_next() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// Eight ASCII hex digits (either case).
fn hex_field(digits: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &d in digits {
        let n = (d as char).to_digit(16)?;
        v = (v << 4) | n;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::format;
    use std::vec::Vec;

    /// A minimal writer for the tests (the build tool has the real one).
    fn push(out: &mut Vec<u8>, name: &str, mode: u32, data: &[u8]) {
        let header = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            7,
            mode,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        );
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.resize(out.len().next_multiple_of(4), 0);
        out.extend_from_slice(data);
        out.resize(out.len().next_multiple_of(4), 0);
    }

    fn sample() -> Vec<u8> {
        let mut a = Vec::new();
        push(&mut a, ".", 0o040755, b"");
        push(&mut a, "./init", 0o100755, b"\x7fELF-init");
        push(&mut a, "test-a", 0o100755, b"abc");
        push(&mut a, TRAILER, 0, b"");
        a
    }

    #[test]
    fn reads_entries_until_trailer() {
        let a = sample();
        let v: Vec<Entry> = Archive::new(&a).map(Result::unwrap).collect();
        assert_eq!(v.len(), 3);
        assert!(!v[0].is_file());
        assert_eq!((v[1].name, v[1].data), ("init", &b"\x7fELF-init"[..]));
        assert_eq!((v[2].name, v[2].data, v[2].mode), ("test-a", &b"abc"[..], 0o100755));
        assert!(v[2].is_file());
        assert_eq!(Archive::new(&a).find("test-a").unwrap().unwrap().data, b"abc");
        assert_eq!(Archive::new(&a).find(".").unwrap(), None);
        assert_eq!(Archive::new(&a).find("nope").unwrap(), None);
    }

    #[test]
    fn name_ends_at_its_first_nul() {
        let mut a = Vec::new();
        push(&mut a, "init\0\0\0\0\0\0\0", 0o100755, b"\x7fELF");
        push(&mut a, TRAILER, 0, b"");
        let e = Archive::new(&a).find("init").unwrap().unwrap();
        assert_eq!(e.data, b"\x7fELF");
    }

    #[test]
    fn ignores_bytes_after_trailer() {
        let mut a = sample();
        a.extend_from_slice(&[0xff; 300]);
        assert_eq!(Archive::new(&a).count(), 3);
    }

    #[test]
    fn reports_errors_once() {
        let a = sample();
        let mut bad = a.clone();
        bad[0] = b'1';
        let v: Vec<_> = Archive::new(&bad).collect();
        assert_eq!(v, [Err(ParseError::BadMagic(0))]);

        let mut bad = a.clone();
        bad[6 + 8] = b'x'; // mode field of the first entry
        assert_eq!(Archive::new(&bad).next(), Some(Err(ParseError::BadField(14))));

        // Cut inside the second entry's data.
        let second = a.windows(6).skip(1).position(|w| w == b"070701").unwrap() + 1;
        let cut = &a[..second + HEADER_LEN + 8];
        let v: Vec<_> = Archive::new(cut).collect();
        assert_eq!(v.len(), 2);
        assert_eq!(v[1], Err(ParseError::Truncated(second)));
        assert!(Archive::new(&a[..50]).next().unwrap().is_err());
        assert_eq!(Archive::new(&[]).next(), Some(Err(ParseError::Truncated(0))));
    }

    #[test]
    fn rejects_name_without_nul() {
        let mut a = Vec::new();
        push(&mut a, "x", 0o100644, b"");
        a[HEADER_LEN + 1] = b'y';
        assert_eq!(Archive::new(&a).next(), Some(Err(ParseError::BadName(0))));
    }

    #[test]
    fn huge_sizes_do_not_overflow() {
        let mut a = Vec::new();
        push(&mut a, "x", 0o100644, b"");
        a[6 + 8 * 6..6 + 8 * 7].copy_from_slice(b"ffffffff");
        assert_eq!(Archive::new(&a).next(), Some(Err(ParseError::Truncated(0))));
    }

    #[test]
    fn hex_fields() {
        assert_eq!(hex_field(b"0000001A"), Some(26));
        assert_eq!(hex_field(b"ffffffff"), Some(u32::MAX));
        assert_eq!(hex_field(b"0000001g"), None);
    }
}
