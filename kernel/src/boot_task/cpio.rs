//! Reading the boot archive: cpio "newc" (the format Linux initramfs uses).

/// One file in the archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry<'a> {
    pub name: &'a str,
    pub mode: u32,
    pub data: &'a [u8],
}

/// Why an archive cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CpioError {
    BadMagic { offset: usize },
    Truncated { offset: usize },
    BadField { offset: usize },
}

impl core::fmt::Display for CpioError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CpioError::BadMagic { offset } => write!(f, "not a cpio newc header at offset {offset}"),
            CpioError::Truncated { offset } => write!(f, "archive truncated at offset {offset}"),
            CpioError::BadField { offset } => write!(f, "malformed cpio header field at offset {offset}"),
        }
    }
}

const HEADER: usize = 110;

fn hex_field(header: &[u8], index: usize, offset: usize) -> Result<u32, CpioError> {
    let start = 6 + index * 8;
    let text = core::str::from_utf8(&header[start..start + 8]).map_err(|_| CpioError::BadField { offset })?;
    u32::from_str_radix(text, 16).map_err(|_| CpioError::BadField { offset })
}

fn align4(x: usize) -> usize {
    (x + 3) & !3
}

/// Iterate the files of a newc archive, stopping at the trailer.
pub struct Archive<'a> {
    data: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> Archive<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Archive {
            data,
            offset: 0,
            done: data.is_empty(),
        }
    }

    /// The file called `name`.
    pub fn find(data: &'a [u8], name: &str) -> Result<Option<Entry<'a>>, CpioError> {
        for entry in Archive::new(data) {
            let entry = entry?;
            if entry.name == name {
                return Ok(Some(entry));
            }
        }
        Ok(None)
    }
}

impl<'a> Iterator for Archive<'a> {
    type Item = Result<Entry<'a>, CpioError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let result = self.read_entry();
        match result {
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

impl<'a> Archive<'a> {
    fn read_entry(&mut self) -> Result<Option<Entry<'a>>, CpioError> {
        let offset = self.offset;
        let header = self
            .data
            .get(offset..offset + HEADER)
            .ok_or(CpioError::Truncated { offset })?;
        if &header[..6] != b"070701" && &header[..6] != b"070702" {
            return Err(CpioError::BadMagic { offset });
        }
        let mode = hex_field(header, 1, offset)?;
        let size = hex_field(header, 6, offset)? as usize;
        let name_size = hex_field(header, 11, offset)? as usize;
        let name_start = offset + HEADER;
        let name_bytes = self
            .data
            .get(
                name_start
                    ..name_start
                        .checked_add(name_size)
                        .ok_or(CpioError::Truncated { offset })?,
            )
            .ok_or(CpioError::Truncated { offset })?;
        let name_bytes = name_bytes.strip_suffix(&[0]).unwrap_or(name_bytes);
        let name = core::str::from_utf8(name_bytes).map_err(|_| CpioError::BadField { offset })?;
        let data_start = align4(name_start + name_size);
        let data_end = data_start.checked_add(size).ok_or(CpioError::Truncated { offset })?;
        let data = self
            .data
            .get(data_start..data_end)
            .ok_or(CpioError::Truncated { offset })?;
        self.offset = align4(data_end);
        if name == "TRAILER!!!" {
            return Ok(None);
        }
        Ok(Some(Entry { name, mode, data }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec::Vec;

    /// A minimal newc writer for tests.
    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut push = |name: &str, data: &[u8], ino: usize| {
            let header = alloc::format!(
                "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
                ino,
                0o100644,
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
            while out.len() % 4 != 0 {
                out.push(0);
            }
            out.extend_from_slice(data);
            while out.len() % 4 != 0 {
                out.push(0);
            }
        };
        for (i, (name, data)) in files.iter().enumerate() {
            push(name, data, i + 1);
        }
        push("TRAILER!!!", &[], 0);
        out
    }

    #[test]
    fn lists_and_finds_files() {
        let a = archive(&[("init", b"\x7fELF..."), ("test-ipc", b"abc")]);
        let names: Vec<String> = Archive::new(&a).map(|e| String::from(e.unwrap().name)).collect();
        assert_eq!(names, ["init", "test-ipc"]);
        assert_eq!(Archive::find(&a, "test-ipc").unwrap().unwrap().data, b"abc");
        assert_eq!(Archive::find(&a, "missing").unwrap(), None);
    }

    #[test]
    fn empty_archive_has_no_files() {
        assert_eq!(Archive::new(&archive(&[])).count(), 0);
        assert_eq!(Archive::new(&[]).count(), 0);
    }

    #[test]
    fn corrupt_archives_are_errors_not_panics() {
        let a = archive(&[("init", b"0123456789")]);
        for cut in 0..a.len() {
            let _ = Archive::new(&a[..cut]).collect::<Vec<_>>();
        }
        let mut bad = a.clone();
        bad[0] = b'1';
        assert_eq!(Archive::new(&bad).next(), Some(Err(CpioError::BadMagic { offset: 0 })));
        let mut bad = a.clone();
        bad[6 + 6 * 8] = b'z'; // file size field
        assert!(matches!(
            Archive::new(&bad).next(),
            Some(Err(CpioError::BadField { .. }))
        ));
        let mut bad = a;
        bad[6 + 6 * 8..6 + 7 * 8].copy_from_slice(b"ffffffff");
        assert!(matches!(
            Archive::new(&bad).next(),
            Some(Err(CpioError::Truncated { .. }))
        ));
    }
}
