//! The Files app's model: where it is inside the directory the profile
//! routes to it, what a listing shows, and whether a file is text.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use userlib::fs::DirEntry;
use userlib::services::fs::absolute;

/// Most bytes of a file the app shows.
pub const SHOW_LIMIT: u64 = 64 * 1024;

/// One row of a listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// What the row reads: `name/` for directories, `name  12 B` for files,
    /// `..` for the parent.
    pub label: String,
    /// The absolute path the row opens.
    pub path: String,
    pub is_dir: bool,
}

/// The current directory, never above `root`.
pub struct Browser {
    root: String,
    cwd: String,
}

impl Browser {
    /// At `root` (an absolute path: `/data`).
    pub fn new(root: &str) -> Browser {
        let root = absolute("/", root);
        Browser {
            cwd: root.clone(),
            root,
        }
    }

    pub fn cwd(&self) -> &str {
        &self.cwd
    }

    /// Goes into `path` if it is `root` or below it; `false` otherwise.
    pub fn enter(&mut self, path: &str) -> bool {
        let path = absolute("/", path);
        let inside = path == self.root || path.starts_with(&format!("{}/", self.root.trim_end_matches('/')));
        if inside {
            self.cwd = path;
        }
        inside
    }

    /// The rows for a listing of the current directory: the parent first
    /// (below the root only), then directories, then files, each by name.
    pub fn items(&self, entries: &[DirEntry]) -> Vec<Item> {
        let mut items = Vec::new();
        if self.cwd != self.root {
            items.push(Item {
                label: "..".into(),
                path: absolute(&self.cwd, ".."),
                is_dir: true,
            });
        }
        let mut sorted: Vec<&DirEntry> = entries.iter().filter(|e| e.name != "." && e.name != "..").collect();
        sorted.sort_by(|a, b| (!a.stat.is_dir, a.name.as_str()).cmp(&(!b.stat.is_dir, b.name.as_str())));
        for e in sorted {
            items.push(Item {
                label: if e.stat.is_dir {
                    format!("{}/", e.name)
                } else {
                    format!("{}  {}", e.name, size_text(e.stat.size))
                },
                path: absolute(&self.cwd, &e.name),
                is_dir: e.stat.is_dir,
            });
        }
        items
    }
}

/// `12 B`, `3 KiB`, `1 MiB` (whole units).
pub fn size_text(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..0x10_0000 => format!("{} KiB", n >> 10),
        _ => format!("{} MiB", n >> 20),
    }
}

/// A file's bytes as lines to show; `Err` with a line saying why not
/// (binary: a NUL byte or invalid UTF-8).
pub fn text_lines(data: &[u8]) -> Result<Vec<String>, String> {
    match core::str::from_utf8(data) {
        Ok(s) if !s.contains('\0') => Ok(s.lines().map(String::from).collect()),
        _ => Err(format!("(not a text file: {})", size_text(data.len() as u64))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use userlib::services::fs::Stat;

    fn entry(name: &str, is_dir: bool, size: u64) -> DirEntry {
        DirEntry {
            name: name.into(),
            stat: Stat {
                is_dir,
                size,
                date: 0,
                time: 0,
                read_only: false,
            },
        }
    }

    #[test]
    fn listings_sort_directories_first_and_stay_inside_the_root() {
        let mut b = Browser::new("/data");
        let entries = [
            entry("notes.txt", false, 2048),
            entry("b", true, 0),
            entry("README", false, 120),
            entry(".", true, 0),
            entry("a", true, 0),
        ];
        let labels: Vec<String> = b.items(&entries).into_iter().map(|i| i.label).collect();
        assert_eq!(labels, ["a/", "b/", "README  120 B", "notes.txt  2 KiB"]);
        assert!(b.enter("/data/a"));
        let items = b.items(&[]);
        assert_eq!(items[0].label, "..");
        assert_eq!(items[0].path, "/data");
        assert_eq!(b.items(&[entry("x", false, 1)])[1].path, "/data/a/x");
        for outside in ["/", "/datum", "/data/../etc", "/other"] {
            assert!(!b.enter(outside), "{outside}");
        }
        assert_eq!(b.cwd(), "/data/a");
        assert!(b.enter("/data/a/../b"));
        assert_eq!(b.cwd(), "/data/b");
    }

    #[test]
    fn text_and_binary_files() {
        assert_eq!(text_lines(b"one\ntwo\r\n"), Ok(alloc::vec!["one".into(), "two".into()]));
        assert_eq!(text_lines(b""), Ok(alloc::vec![]));
        assert_eq!(text_lines(b"a\0b"), Err("(not a text file: 3 B)".into()));
        assert!(text_lines(&[0xff, 0xfe]).is_err());
        assert_eq!(size_text(5 << 20), "5 MiB");
    }
}
