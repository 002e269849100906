//! The file commands (`ls`, `cat`, `write`, `mkdir`, `rm`, `rmdir`, `mv`,
//! `df`, `sync`, `cd`, `pwd`) over the file server: paths are absolute
//! (`/data/notes.txt`) or relative to the current directory, inside the
//! mounts the profile grants the shell. Errors are one line:
//! `cat: /data/x: not found`.
//!
//! `ls`, `cat`, `write`, `mkdir`, `rm` and `rmdir` also take a paired
//! device's path, `DEVICE:/PATH` (`ls phone:/data`): the same calls, to
//! the device's file server through the soft bus (`docs/BUS.md`), inside
//! the mounts that device's profile grants its bus.

use crate::command::{device_path, Command};
use crate::report;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use userlib::fs::{Error, Namespace};
use userlib::services::fs::absolute;

pub struct Files {
    ns: Namespace,
    /// Paired devices' file servers, by device name.
    remote: Vec<(String, Namespace)>,
    cwd: String,
}

/// Largest file `cat` prints.
const CAT_LIMIT: u64 = 256 << 10;

impl Default for Files {
    fn default() -> Self {
        Files::new()
    }
}

impl Files {
    pub fn new() -> Files {
        Files {
            ns: Namespace::new(),
            remote: Vec::new(),
            cwd: String::from("/"),
        }
    }

    /// The first mount granted (where `cd` alone goes, and the start).
    fn home(&mut self) -> String {
        match self.ns.mounts() {
            Ok(m) if !m.is_empty() => format!("/{}", m[0].0),
            _ => String::from("/"),
        }
    }

    /// Goes to the first mount, if there is one (at start).
    pub fn go_home(&mut self) {
        self.cwd = self.home();
    }

    /// Where `p` is: the namespace (this device's, or a paired device's
    /// for `DEVICE:/PATH`), the absolute path in it, and the path as shown.
    fn place(&mut self, p: &str) -> (&mut Namespace, String, String) {
        match device_path(p) {
            Some((device, path)) => {
                let path = absolute("/", path);
                let shown = format!("{device}:{path}");
                let i = match self.remote.iter().position(|(d, _)| d == device) {
                    Some(i) => i,
                    None => {
                        self.remote.push((device.into(), Namespace::remote(device)));
                        self.remote.len() - 1
                    }
                };
                (&mut self.remote[i].1, path, shown)
            }
            None => {
                let path = absolute(&self.cwd, p);
                (&mut self.ns, path.clone(), path)
            }
        }
    }

    /// Runs a file command; `None` if `cmd` is not one.
    pub fn run(&mut self, cmd: &Command) -> Option<Result<String, String>> {
        let fail = |name: &str, path: &str, e: Error| format!("{name}: {path}: {e}\n");
        let r = match cmd {
            Command::Pwd => Ok(format!("{}\n", self.cwd)),
            Command::Cd(p) => {
                let target = if p.is_empty() {
                    self.home()
                } else {
                    absolute(&self.cwd, p)
                };
                if target == "/" {
                    self.cwd = target;
                    return Some(Ok(String::new()));
                }
                match self.ns.metadata(&target) {
                    Ok(st) if st.is_dir => {
                        self.cwd = target;
                        Ok(String::new())
                    }
                    Ok(_) => Err(fail("cd", &target, Error::NotADirectory)),
                    Err(e) => Err(fail("cd", &target, e)),
                }
            }
            Command::Ls(long, p) => {
                let (ns, target, shown) = self.place(p);
                if target == "/" {
                    return Some(ns.mounts().map_err(|e| fail("ls", &shown, e)).map(|m| {
                        m.iter()
                            .map(|(n, w)| format!("{n}/{}\n", if *w & 2 != 0 { "" } else { "  (read-only)" }))
                            .collect()
                    }));
                }
                match ns.metadata(&target) {
                    Ok(st) if !st.is_dir => {
                        let name = target.rsplit('/').next().unwrap_or("");
                        let e = [userlib::fs::DirEntry {
                            name: name.into(),
                            stat: st,
                        }];
                        Ok(if *long { report::ls_long(&e) } else { report::ls(&e) })
                    }
                    Ok(_) => ns
                        .read_dir(&target)
                        .map(|e| if *long { report::ls_long(&e) } else { report::ls(&e) })
                        .map_err(|e| fail("ls", &shown, e)),
                    Err(e) => Err(fail("ls", &shown, e)),
                }
            }
            Command::Cat(p) => {
                let (ns, target, shown) = self.place(p);
                match ns.metadata(&target) {
                    Ok(st) if st.is_dir => Err(fail("cat", &shown, Error::IsADirectory)),
                    Ok(st) if st.size > CAT_LIMIT => Err(format!(
                        "cat: {shown}: {} is more than cat prints\n",
                        report::bytes(st.size)
                    )),
                    Ok(_) => match ns.read(&target) {
                        Ok(data) => {
                            let mut s = String::from_utf8_lossy(&data).into_owned();
                            if !s.is_empty() && !s.ends_with('\n') {
                                s.push('\n');
                            }
                            Ok(s)
                        }
                        Err(e) => Err(fail("cat", &shown, e)),
                    },
                    Err(e) => Err(fail("cat", &shown, e)),
                }
            }
            Command::Write(p, text) => {
                let (ns, target, shown) = self.place(p);
                let mut data = Vec::from(text.as_bytes());
                data.push(b'\n');
                ns.write(&target, &data)
                    .map(|()| String::new())
                    .map_err(|e| fail("write", &shown, e))
            }
            Command::Mkdir(p) => self.simple("mkdir", p, Namespace::create_dir),
            Command::Rm(p) => self.simple("rm", p, Namespace::remove_file),
            Command::Rmdir(p) => self.simple("rmdir", p, Namespace::remove_dir),
            Command::Mv(from, to) => {
                let (from, mut to) = (absolute(&self.cwd, from), absolute(&self.cwd, to));
                // Into a directory: keep the name.
                if let Ok(st) = self.ns.metadata(&to) {
                    if st.is_dir {
                        let name = from.rsplit('/').next().unwrap_or("");
                        to = format!("{to}/{name}");
                    }
                }
                self.ns
                    .rename(&from, &to)
                    .map(|()| String::new())
                    .map_err(|e| format!("mv: {from} -> {to}: {e}\n"))
            }
            Command::Df => match self.ns.mounts() {
                Ok(mounts) => {
                    let rows: Vec<(String, Result<[u64; 4], Error>)> = mounts
                        .into_iter()
                        .map(|(n, _)| (n.clone(), self.ns.statfs(&format!("/{n}"))))
                        .collect();
                    Ok(report::df(&rows))
                }
                Err(e) => Err(format!("df: {e}\n")),
            },
            Command::Sync => match self.ns.mounts() {
                Ok(mounts) => {
                    let mut out = Ok(String::new());
                    for (n, w) in mounts {
                        if w & 2 != 0 {
                            if let Err(e) = self.ns.sync(&format!("/{n}")) {
                                out = Err(format!("sync: /{n}: {e}\n"));
                            }
                        }
                    }
                    out
                }
                Err(e) => Err(format!("sync: {e}\n")),
            },
            _ => return None,
        };
        Some(r)
    }

    fn simple(
        &mut self,
        name: &str,
        p: &str,
        f: fn(&mut Namespace, &str) -> Result<(), Error>,
    ) -> Result<String, String> {
        let (ns, target, shown) = self.place(p);
        f(ns, &target)
            .map(|()| String::new())
            .map_err(|e| format!("{name}: {shown}: {e}\n"))
    }
}
