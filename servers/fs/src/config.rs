//! The server's arguments (the profile's `args` for it), words separated
//! by spaces:
//!
//! - `mount=NAME:SERVICE[:ro][:part=N]`: mount the FAT volume of block
//!   service SERVICE (`blk`, `blk1`...) as NAME; `part=N` picks partition
//!   N (0-based; default: the first FAT partition, or the whole disk);
//!   `ro` mounts it read-only.
//! - `grant=PROGRAM:NAME:ro|rw`: task PROGRAM may open mount NAME's root
//!   directory with those rights.
//! - `private=PROGRAM:MOUNT:DIR`: directory DIR at the top of mount MOUNT
//!   is task PROGRAM's own: no other client may reach anything in it or
//!   it (the server's `private` check), whatever its grant. DIR is one
//!   name (no `/`); it need not exist yet.
//! - `cache=KIB`: block cache size per mount (default 1024).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub name: String,
    pub service: String,
    pub read_only: bool,
    pub partition: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    pub program: String,
    pub mount: String,
    pub write: bool,
}

/// A private directory: `dir`, at the top of mount `mount`, is
/// `program`'s own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Private {
    pub program: String,
    pub mount: usize,
    pub dir: String,
}

/// Most private directories (each is a bit of a handle's
/// [`Config::privates_of`] mask).
pub const MAX_PRIVATE: usize = 64;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub mounts: Vec<Mount>,
    pub grants: Vec<Grant>,
    pub privates: Vec<Private>,
    pub cache_kib: usize,
}

/// Parses the arguments; the error names the word that is wrong.
pub fn parse(args: &str) -> Result<Config, String> {
    let mut c = Config {
        mounts: Vec::new(),
        grants: Vec::new(),
        privates: Vec::new(),
        cache_kib: 1024,
    };
    for w in args.split_whitespace() {
        let bad = || alloc::format!("bad argument `{w}`");
        if let Some(v) = w.strip_prefix("mount=") {
            let mut it = v.split(':');
            let (Some(name), Some(service)) = (it.next(), it.next()) else {
                return Err(bad());
            };
            if name.is_empty() || service.is_empty() || c.mounts.iter().any(|m| m.name == name) {
                return Err(bad());
            }
            let mut m = Mount {
                name: name.into(),
                service: service.into(),
                read_only: false,
                partition: None,
            };
            for opt in it {
                match opt {
                    "ro" => m.read_only = true,
                    "rw" => m.read_only = false,
                    o => match o.strip_prefix("part=").and_then(|n| n.parse().ok()) {
                        Some(n) => m.partition = Some(n),
                        None => return Err(bad()),
                    },
                }
            }
            c.mounts.push(m);
        } else if let Some(v) = w.strip_prefix("grant=") {
            let parts: Vec<&str> = v.split(':').collect();
            let [program, mount, mode] = parts[..] else {
                return Err(bad());
            };
            let write = match mode {
                "rw" => true,
                "ro" => false,
                _ => return Err(bad()),
            };
            if !c.mounts.iter().any(|m| m.name == mount) {
                return Err(alloc::format!("`{w}`: no mount named {mount} (mounts come first)"));
            }
            c.grants.push(Grant {
                program: program.to_string(),
                mount: mount.into(),
                write,
            });
        } else if let Some(v) = w.strip_prefix("private=") {
            let parts: Vec<&str> = v.split(':').collect();
            let [program, mount, dir] = parts[..] else {
                return Err(bad());
            };
            if program.is_empty() || matches!(dir, "" | "." | "..") || dir.contains('/') {
                return Err(bad());
            }
            let Some(mount) = c.mounts.iter().position(|m| m.name == mount) else {
                return Err(alloc::format!("`{w}`: no mount named {mount} (mounts come first)"));
            };
            // One directory, one owner (names compare as FAT's do).
            let taken = c
                .privates
                .iter()
                .any(|p| p.mount == mount && fat::dir::same_name(&p.dir, dir));
            if taken || c.privates.len() >= MAX_PRIVATE {
                return Err(bad());
            }
            c.privates.push(Private {
                program: program.into(),
                mount,
                dir: dir.into(),
            });
        } else if let Some(v) = w.strip_prefix("cache=") {
            c.cache_kib = v.parse().ok().filter(|&k| (64..=65536).contains(&k)).ok_or_else(bad)?;
        } else {
            return Err(bad());
        }
    }
    Ok(c)
}

impl Config {
    /// The mounts `program` may open, with write permission or not.
    pub fn granted<'a>(&'a self, program: &'a str) -> impl Iterator<Item = (usize, bool)> + 'a {
        self.grants
            .iter()
            .filter(move |g| g.program == program)
            .filter_map(move |g| {
                let i = self.mounts.iter().position(|m| m.name == g.mount)?;
                Some((i, g.write && !self.mounts[i].read_only))
            })
    }
}

impl Config {
    /// The private directories a root handle of mount `mount` opened by
    /// `program` may enter: a mask of indexes into `privates`. `None`
    /// names no task (a task's client: a paired device through the soft
    /// bus), which enters none.
    pub fn privates_of(&self, program: Option<&str>, mount: usize) -> u64 {
        self.privates
            .iter()
            .enumerate()
            .filter(|(_, p)| p.mount == mount && Some(p.program.as_str()) == program)
            .fold(0, |m, (i, _)| m | 1 << i)
    }

    /// The private directories of mount `mount` outside `mask`: the
    /// names a handle with that mask may not reach.
    pub fn barred(&self, mount: usize, mask: u64) -> impl Iterator<Item = &str> + '_ {
        self.privates
            .iter()
            .enumerate()
            .filter(move |(i, p)| p.mount == mount && mask & 1 << i == 0)
            .map(|(_, p)| p.dir.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() {
        let c = parse("mount=data:blk mount=boot:blk1:ro:part=0 grant=shell:data:rw grant=shell:boot:rw grant=x:data:ro cache=256").unwrap();
        assert_eq!(c.mounts.len(), 2);
        assert_eq!(c.mounts[1].partition, Some(0));
        assert!(c.mounts[1].read_only);
        assert_eq!(c.cache_kib, 256);
        assert_eq!(
            c.granted("shell").collect::<Vec<_>>(),
            [(0, true), (1, false)],
            "a read-only mount stays read-only"
        );
        assert_eq!(c.granted("x").collect::<Vec<_>>(), [(0, false)]);
        assert_eq!(c.granted("nobody").count(), 0);
        assert!(c.privates.is_empty());
    }

    #[test]
    fn private_directories() {
        let c = parse("mount=data:blk mount=boot:blk1 grant=bus:data:rw grant=shell:data:rw private=bus:data:.bus private=bus:boot:.bus private=x:data:.x").unwrap();
        assert_eq!(c.privates_of(Some("bus"), 0), 0b001);
        assert_eq!(c.privates_of(Some("bus"), 1), 0b010);
        assert_eq!(c.privates_of(Some("shell"), 0), 0);
        assert_eq!(c.privates_of(None, 0), 0, "a task's client enters none");
        assert_eq!(c.barred(0, 0).collect::<Vec<_>>(), [".bus", ".x"]);
        assert_eq!(c.barred(0, c.privates_of(Some("bus"), 0)).collect::<Vec<_>>(), [".x"]);
        assert_eq!(c.barred(1, c.privates_of(Some("bus"), 1)).count(), 0);
        for bad in [
            "mount=data",
            "mount=:blk",
            "mount=d:blk mount=d:blk1",
            "mount=d:blk:part=x",
            "grant=shell:data:rw",
            "mount=d:blk grant=shell:d",
            "mount=d:blk grant=shell:d:rwx",
            "cache=1",
            "unknown",
            "private=bus:data:.bus",
            "mount=d:blk private=bus:d",
            "mount=d:blk private=:d:.bus",
            "mount=d:blk private=bus:d:",
            "mount=d:blk private=bus:d:..",
            "mount=d:blk private=bus:d:a/b",
            "mount=d:blk private=bus:d:.bus private=x:d:.BUS",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
