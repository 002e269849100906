//! The file commands (`ls`, `cat`, `write`, `mkdir`, `rm`, `rmdir`, `mv`,
//! `df`, `sync`, `cd`, `pwd`) over the file server: paths are absolute
//! (`/data/notes.txt`) or relative to the current directory, inside the
//! mounts the profile grants the shell. Errors are one line:
//! `cat: /data/x: not found`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use shell::command::Command;
use shell::report;
use userlib::fs::{Error, Namespace};
use userlib::services::fs::absolute;

pub struct Files {
    ns: Namespace,
    cwd: String,
}

/// Largest file `cat` prints.
const CAT_LIMIT: u64 = 256 << 10;

impl Files {
    pub fn new() -> Files {
        Files {
            ns: Namespace::new(),
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
                let target = absolute(&self.cwd, p);
                if target == "/" {
                    return Some(self.ns.mounts().map_err(|e| fail("ls", "/", e)).map(|m| {
                        m.iter()
                            .map(|(n, w)| format!("{n}/{}\n", if *w & 2 != 0 { "" } else { "  (read-only)" }))
                            .collect()
                    }));
                }
                match self.ns.metadata(&target) {
                    Ok(st) if !st.is_dir => {
                        let name = target.rsplit('/').next().unwrap_or("");
                        let e = [userlib::fs::DirEntry {
                            name: name.into(),
                            stat: st,
                        }];
                        Ok(if *long { report::ls_long(&e) } else { report::ls(&e) })
                    }
                    Ok(_) => self
                        .ns
                        .read_dir(&target)
                        .map(|e| if *long { report::ls_long(&e) } else { report::ls(&e) })
                        .map_err(|e| fail("ls", &target, e)),
                    Err(e) => Err(fail("ls", &target, e)),
                }
            }
            Command::Cat(p) => {
                let target = absolute(&self.cwd, p);
                match self.ns.metadata(&target) {
                    Ok(st) if st.is_dir => Err(fail("cat", &target, Error::IsADirectory)),
                    Ok(st) if st.size > CAT_LIMIT => Err(format!(
                        "cat: {target}: {} is more than cat prints\n",
                        report::bytes(st.size)
                    )),
                    Ok(_) => match self.ns.read(&target) {
                        Ok(data) => {
                            let mut s = String::from_utf8_lossy(&data).into_owned();
                            if !s.is_empty() && !s.ends_with('\n') {
                                s.push('\n');
                            }
                            Ok(s)
                        }
                        Err(e) => Err(fail("cat", &target, e)),
                    },
                    Err(e) => Err(fail("cat", &target, e)),
                }
            }
            Command::Write(p, text) => {
                let target = absolute(&self.cwd, p);
                let mut data = Vec::from(text.as_bytes());
                data.push(b'\n');
                self.ns
                    .write(&target, &data)
                    .map(|()| String::new())
                    .map_err(|e| fail("write", &target, e))
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
        let target = absolute(&self.cwd, p);
        f(&mut self.ns, &target)
            .map(|()| String::new())
            .map_err(|e| format!("{name}: {target}: {e}\n"))
    }
}
