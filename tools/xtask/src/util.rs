//! Small helpers shared by the subcommands: paths, running commands, hashing.

use sha2::{Digest, Sha256};
use std::ffi::OsStr;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub type Result<T, E = String> = std::result::Result<T, E>;

/// Returns early with a formatted error message.
#[macro_export]
macro_rules! bail {
    ($($t:tt)*) => { return Err(format!($($t)*)) };
}

/// The workspace root (this crate lives in tools/xtask).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

/// `target/` of the workspace (honours CARGO_TARGET_DIR like cargo does).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => root().join(d),
        _ => root().join("target"),
    }
}

/// The cargo that runs us (so the pinned toolchain is used for nested builds).
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    c.current_dir(root());
    c
}

/// A command as a shell would show it.
pub fn shown(cmd: &Command) -> String {
    harness::runner::shell_quote(std::iter::once(cmd.get_program()).chain(cmd.get_args()))
}

/// Runs a command with inherited stdio; error if it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().map_err(|e| format!("cannot run `{}`: {e}", shown(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", shown(cmd));
    }
    Ok(())
}

/// Runs a command and returns its stdout; error (with stderr) if it fails.
pub fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", shown(cmd)))?;
    if !out.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            shown(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Is `program` on PATH (or an existing path)?
pub fn have(program: impl AsRef<OsStr>) -> bool {
    which(program).is_some()
}

/// Where `program` is: itself if it is a path to a file, else the first
/// match on PATH.
pub fn which(program: impl AsRef<OsStr>) -> Option<PathBuf> {
    let p = Path::new(program.as_ref());
    if p.components().count() > 1 {
        return p.is_file().then(|| p.to_path_buf());
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths).map(|d| d.join(p)).find(|f| f.is_file())
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| format!("{}: {e}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Ok if `actual` equals `expected` (hex, case-insensitive).
pub fn check_hash(what: &str, actual: &str, expected: &str) -> Result<()> {
    if actual.eq_ignore_ascii_case(expected.trim()) {
        Ok(())
    } else {
        Err(format!("{what}: SHA256 mismatch: got {actual}, expected {expected}"))
    }
}

/// The host's target triple and the toolchain's sysroot.
pub fn rustc_info() -> Result<(String, PathBuf)> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let vv = output(Command::new(&rustc).arg("-vV").current_dir(root()))?;
    let host = vv
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .ok_or("`rustc -vV` printed no host")?
        .trim()
        .to_string();
    let sysroot = output(Command::new(&rustc).args(["--print", "sysroot"]).current_dir(root()))?;
    Ok((host, PathBuf::from(sysroot.trim())))
}

/// A path beside `path` that no other writer uses: `NAME.PID-N.SUFFIX`.
/// Write there, then `rename` onto `path`: test cases run in parallel
/// threads (and several xtask processes may share the cache), so a fixed
/// scratch name would let two writers interleave.
pub fn scratch_beside(path: &Path, suffix: &str) -> PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}-{n}.{suffix}", std::process::id()));
    path.with_file_name(name)
}

/// Writes `bytes` to `path` through a scratch file and a rename, so a
/// reader never sees half a file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let tmp = scratch_beside(path, "tmp");
    std::fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn relative(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

/// Progress messages go to stderr so that stdout stays scriptable.
#[macro_export]
macro_rules! note {
    ($($t:tt)*) => { eprintln!("xtask: {}", format!($($t)*)) };
}

#[cfg(test)]
mod tests {
    #[test]
    fn scratch_paths_are_never_shared() {
        let dest = std::path::Path::new("/cache/raspi-firmware/extract");
        let paths: Vec<_> = std::thread::scope(|s| {
            let a = s.spawn(|| (0..100).map(|_| super::scratch_beside(dest, "tmp")).collect::<Vec<_>>());
            let b = s.spawn(|| (0..100).map(|_| super::scratch_beside(dest, "tmp")).collect::<Vec<_>>());
            [a.join().unwrap(), b.join().unwrap()].concat()
        });
        let unique: std::collections::BTreeSet<_> = paths.iter().collect();
        assert_eq!(unique.len(), 200);
        assert!(paths.iter().all(|p| p.parent() == dest.parent()
            && p.file_name().unwrap().to_str().unwrap().starts_with("extract.")
            && p.extension().unwrap() == "tmp"));
    }

    use super::*;

    #[test]
    fn sha256_known_vectors() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn sha256_of_file_matches_bytes() {
        let dir = std::env::temp_dir().join(format!("xtask-hash-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("x");
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        std::fs::write(&f, &data).unwrap();
        assert_eq!(sha256_file(&f).unwrap(), sha256_hex(&data));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hash_checking() {
        let h = sha256_hex(b"abc");
        assert!(check_hash("x", &h, &h.to_uppercase()).is_ok());
        let e = check_hash("x.deb", &h, "00").unwrap_err();
        assert!(e.contains("x.deb") && e.contains("mismatch"));
    }
}
