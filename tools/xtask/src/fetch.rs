//! The Raspberry Pi 4 device tree (`bcm2711-rpi-4-b.dtb`), taken from Debian's
//! arm64 kernel package: download (pinned, hash-checked), extract, verify.
//!
//! Cache: `$XDG_CACHE_HOME/kestrel` or `~/.cache/kestrel`; the tree is also
//! copied to `target/cache/` where host unit tests of `hal` look for it.

use crate::util::{self, check_hash, Result};
use crate::{bail, note};
use std::cmp::Ordering;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const MIRROR: &str = "http://deb.debian.org/debian/";
/// The pinned package (relative to MIRROR) and its SHA256.
pub const PIN_DEB: &str = "pool/main/l/linux-signed-arm64/linux-image-6.1.0-50-arm64_6.1.176-1_arm64.deb";
pub const PIN_DEB_SHA256: &str = "914f75b57a8e165d85fb910c3e2dcc7000a05a9fea3f42f90b26e8dd590d5f06";
/// SHA256 of `bcm2711-rpi-4-b.dtb` inside the pinned package.
pub const PIN_DTB_SHA256: &str = "b61443b9dcd7af9ebefa113114af77ec0cd3b477be22bd060f99b3bf376b2ae8";
/// Where to look for a newer package if the pinned one has left the mirror.
pub const PACKAGES_INDEX: &str = "dists/bookworm/main/binary-arm64/Packages.xz";
pub const DTB_NAME: &str = "bcm2711-rpi-4-b.dtb";
const DTB_IN_DEB: &str = "*/broadcom/bcm2711-rpi-4-b.dtb";
/// File name of the pinned package in the cache.
const PIN_CACHE_NAME: &str = "linux-image.deb";

pub fn cache_dir() -> PathBuf {
    cache_dir_from(
        std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

fn cache_dir_from(xdg: Option<PathBuf>, home: Option<PathBuf>) -> PathBuf {
    // The XDG spec says to ignore relative paths.
    let base = match xdg {
        Some(x) if x.is_absolute() => x,
        _ => home.unwrap_or_else(|| PathBuf::from("/tmp")).join(".cache"),
    };
    base.join("kestrel")
}

/// `target/cache/bcm2711-rpi-4-b.dtb`
pub fn dtb_path() -> PathBuf {
    util::target_dir().join("cache").join(DTB_NAME)
}

/// Makes sure `target/cache/bcm2711-rpi-4-b.dtb` exists and is the right file.
pub fn rpi4_dtb() -> Result<PathBuf> {
    let cache = cache_dir();
    std::fs::create_dir_all(&cache).map_err(|e| format!("{}: {e}", cache.display()))?;
    let cached = cache.join(DTB_NAME);
    let recorded = cache.join(format!("{DTB_NAME}.sha256"));
    let dest = dtb_path();

    let hash = match cached_dtb_hash(&cached, &recorded) {
        Some(h) => h,
        None => {
            let (deb, pinned) = obtain_deb(&cache)?;
            let bytes = extract_dtb(&deb)?;
            let h = util::sha256_hex(&bytes);
            if pinned {
                check_hash(&format!("{DTB_NAME} from {}", deb.display()), &h, PIN_DTB_SHA256)?;
            } else if h != PIN_DTB_SHA256 {
                note!("warning: {DTB_NAME} from the fallback package has SHA256 {h} (not pinned)");
            }
            util::write_atomic(&cached, &bytes)?;
            util::write_atomic(&recorded, format!("{h}  {DTB_NAME}\n").as_bytes())?;
            h
        }
    };
    let dest_ok = dest.is_file() && util::sha256_file(&dest).is_ok_and(|d| d == hash);
    if !dest_ok {
        let bytes = std::fs::read(&cached).map_err(|e| format!("{}: {e}", cached.display()))?;
        check_hash(&cached.display().to_string(), &util::sha256_hex(&bytes), &hash)?;
        util::write_atomic(&dest, &bytes)?;
    }
    Ok(dest)
}

/// The hash of the cached tree if it is the pinned one, or the one recorded
/// when it was extracted from a (hash-checked) fallback package.
fn cached_dtb_hash(cached: &Path, recorded: &Path) -> Option<String> {
    let h = util::sha256_file(cached).ok()?;
    if h == PIN_DTB_SHA256 {
        return Some(h);
    }
    let rec = std::fs::read_to_string(recorded).ok()?;
    let rec = rec.split_whitespace().next()?;
    (rec == h).then_some(h)
}

/// The kernel package, hash-checked: (path, is_the_pinned_one).
fn obtain_deb(cache: &Path) -> Result<(PathBuf, bool)> {
    let pinned = cache.join(PIN_CACHE_NAME);
    if pinned.is_file() {
        match util::sha256_file(&pinned) {
            Ok(h) if h == PIN_DEB_SHA256 => return Ok((pinned, true)),
            _ => note!("{} is not the pinned package; downloading it again", pinned.display()),
        }
    }
    let url = format!("{MIRROR}{PIN_DEB}");
    note!("downloading {url} (59 MB)");
    match download(&url, &pinned, Some(PIN_DEB_SHA256)) {
        Ok(()) => return Ok((pinned, true)),
        Err(Download::NotFound(code)) => {
            note!("warning: the pinned kernel package is gone from the mirror (HTTP {code}); falling back to the newest one in {PACKAGES_INDEX}");
        }
        Err(Download::Failed(e)) => return Err(e),
    }

    // Fallback: the newest linux-image-*-arm64 in the index, checked against
    // the index's own SHA256.
    let index_url = format!("{MIRROR}{PACKAGES_INDEX}");
    let xz = cache.join("Packages.xz");
    download(&index_url, &xz, None).map_err(|e| format!("{index_url}: {}", e.message()))?;
    let text = util::output(Command::new("xz").arg("-dc").arg(&xz))?;
    let entries = parse_packages(&text);
    let Some(newest) = newest_kernel(&entries) else {
        bail!("{index_url} lists no linux-image-*-arm64 package");
    };
    let name = newest.filename.rsplit('/').next().unwrap_or("linux-image-fallback.deb");
    let deb = cache.join(name);
    let have = deb.is_file() && util::sha256_file(&deb).is_ok_and(|h| h.eq_ignore_ascii_case(&newest.sha256));
    if !have {
        let url = format!("{MIRROR}{}", newest.filename);
        note!("downloading {url}");
        download(&url, &deb, Some(&newest.sha256)).map_err(|e| format!("{url}: {}", e.message()))?;
    }
    note!(
        "warning: using {} {} instead of the pinned package; update the pin in tools/xtask/src/fetch.rs: PIN_DEB = \"{}\", PIN_DEB_SHA256 = \"{}\" (and PIN_DTB_SHA256 from {}.sha256 in the cache)",
        newest.package,
        newest.version,
        newest.filename,
        newest.sha256,
        DTB_NAME
    );
    Ok((deb, false))
}

#[derive(Debug)]
pub enum Download {
    /// The server answered 404/410: the file is gone.
    NotFound(u32),
    Failed(String),
}

impl Download {
    pub fn message(&self) -> String {
        match self {
            Download::NotFound(c) => format!("HTTP {c}"),
            Download::Failed(e) => e.clone(),
        }
    }
}

/// Downloads with curl to a `.part` file of its own, checks the hash,
/// renames to `dest`.
pub fn download(url: &str, dest: &Path, sha256: Option<&str>) -> Result<(), Download> {
    let part = util::scratch_beside(dest, "part");
    let out = Command::new("curl")
        .args([
            "-sS",
            "-L",
            "--retry",
            "3",
            "--connect-timeout",
            "30",
            "-w",
            "%{http_code}",
            "-o",
        ])
        .arg(&part)
        .arg(url)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| Download::Failed(format!("cannot run curl: {e}")))?;
    let code: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or(0);
    if code == 404 || code == 410 {
        let _ = std::fs::remove_file(&part);
        return Err(Download::NotFound(code));
    }
    if !out.status.success() || code != 200 {
        let _ = std::fs::remove_file(&part);
        return Err(Download::Failed(format!(
            "downloading {url} failed (curl {}, HTTP {code})",
            out.status
        )));
    }
    if let Some(want) = sha256 {
        let got = util::sha256_file(&part).map_err(Download::Failed)?;
        if let Err(e) = check_hash(url, &got, want) {
            let _ = std::fs::remove_file(&part);
            return Err(Download::Failed(e));
        }
    }
    std::fs::rename(&part, dest).map_err(|e| Download::Failed(format!("{}: {e}", dest.display())))
}

/// Extracts only the Pi 4 tree: `dpkg-deb --fsys-tarfile DEB | tar -xO PATTERN`.
fn extract_dtb(deb: &Path) -> Result<Vec<u8>> {
    let mut dpkg = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run dpkg-deb: {e}"))?;
    let out = Command::new("tar")
        .args(["-xO", "--wildcards", DTB_IN_DEB])
        .stdin(dpkg.stdout.take().unwrap())
        .output()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    let dpkg_status = dpkg.wait().map_err(|e| e.to_string())?;
    if !dpkg_status.success() || !out.status.success() || out.stdout.is_empty() {
        bail!(
            "extracting {DTB_IN_DEB} from {} failed (dpkg-deb {dpkg_status}, tar {}): {}",
            deb.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// One stanza of a Debian `Packages` index (the fields we use).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Package {
    pub package: String,
    pub version: String,
    pub filename: String,
    pub sha256: String,
}

pub fn parse_packages(text: &str) -> Vec<Package> {
    let mut out = Vec::new();
    let mut cur = Package::default();
    let mut flush = |cur: &mut Package| {
        if !cur.package.is_empty() && !cur.filename.is_empty() && !cur.sha256.is_empty() {
            out.push(std::mem::take(cur));
        } else {
            *cur = Package::default();
        }
    };
    for line in text.lines() {
        if line.trim().is_empty() {
            flush(&mut cur);
            continue;
        }
        if line.starts_with([' ', '\t']) {
            continue; // continuation of a multi-line field
        }
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().to_string();
        match k {
            "Package" => cur.package = v,
            "Version" => cur.version = v,
            "Filename" => cur.filename = v,
            "SHA256" => cur.sha256 = v,
            _ => {}
        }
    }
    flush(&mut cur);
    out
}

/// Is this a versioned, signed, generic arm64 kernel image package
/// (`linux-image-6.1.0-50-arm64`, not `-cloud-`, `-rt-`, `-unsigned`, `-dbg`)?
pub fn is_generic_kernel(name: &str) -> bool {
    let Some(mid) = name.strip_prefix("linux-image-").and_then(|s| s.strip_suffix("-arm64")) else {
        return false;
    };
    let Some((ver, abi)) = mid.split_once('-') else {
        return false;
    };
    let nums: Vec<&str> = ver.split('.').collect();
    nums.len() == 3
        && nums
            .iter()
            .chain([&abi])
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

pub fn newest_kernel(entries: &[Package]) -> Option<&Package> {
    entries
        .iter()
        .filter(|p| is_generic_kernel(&p.package))
        .max_by(|a, b| compare_versions(&a.version, &b.version))
}

/// Debian version ordering (dpkg's algorithm: epoch, upstream, revision;
/// `~` sorts before everything, letters before other symbols).
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn split(v: &str) -> (u64, &str, &str) {
        let (epoch, rest) = match v.split_once(':') {
            Some((e, r)) => (e.parse().unwrap_or(0), r),
            None => (0, v),
        };
        match rest.rsplit_once('-') {
            Some((u, r)) => (epoch, u, r),
            None => (epoch, rest, ""),
        }
    }
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| verrevcmp(ua, ub))
        .then_with(|| verrevcmp(ra, rb))
}

fn verrevcmp(a: &str, b: &str) -> Ordering {
    fn order(c: Option<&u8>) -> i32 {
        match c {
            None => 0,
            Some(c) if c.is_ascii_digit() => 0,
            Some(c) if c.is_ascii_alphabetic() => *c as i32,
            Some(b'~') => -1,
            Some(c) => *c as i32 + 256,
        }
    }
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    let digit = |s: &[u8], k: usize| s.get(k).is_some_and(|c| c.is_ascii_digit());
    while i < a.len() || j < b.len() {
        while (i < a.len() && !digit(a, i)) || (j < b.len() && !digit(b, j)) {
            let (ac, bc) = (order(a.get(i)), order(b.get(j)));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while a.get(i) == Some(&b'0') {
            i += 1;
        }
        while b.get(j) == Some(&b'0') {
            j += 1;
        }
        let mut first_diff = Ordering::Equal;
        while digit(a, i) && digit(b, j) {
            if first_diff == Ordering::Equal {
                first_diff = a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
        if digit(a, i) {
            return Ordering::Greater;
        }
        if digit(b, j) {
            return Ordering::Less;
        }
        if first_diff != Ordering::Equal {
            return first_diff;
        }
    }
    Ordering::Equal
}

/// `cargo xtask fetch`: fetch the Pi 4 tree and print its path.
pub fn main() -> Result<()> {
    crate::setup::ensure(crate::setup::Need::Fetch)?;
    let p = rpi4_dtb()?;
    println!("{}", p.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = "\
Package: linux-image-6.1.0-49-arm64
Source: linux-signed-arm64 (6.1.170+1)
Version: 6.1.170-1
Installed-Size: 400000
Description: Linux 6.1 for 64-bit ARMv8 machines (signed)
 The Linux kernel 6.1 and modules for use on ARMv8 machines.
Filename: pool/main/l/linux-signed-arm64/linux-image-6.1.0-49-arm64_6.1.170-1_arm64.deb
SHA256: aaaa

Package: linux-image-6.1.0-50-arm64
Version: 6.1.176-1
Filename: pool/main/l/linux-signed-arm64/linux-image-6.1.0-50-arm64_6.1.176-1_arm64.deb
SHA256: 914f75b57a8e165d85fb910c3e2dcc7000a05a9fea3f42f90b26e8dd590d5f06

Package: linux-image-6.1.0-51-cloud-arm64
Version: 6.1.180-1
Filename: pool/main/l/linux-signed-arm64/linux-image-6.1.0-51-cloud-arm64_6.1.180-1_arm64.deb
SHA256: cccc

Package: linux-image-6.1.0-51-arm64-unsigned
Version: 6.1.180-1
Filename: pool/main/l/linux/linux-image-6.1.0-51-arm64-unsigned_6.1.180-1_arm64.deb
SHA256: dddd

Package: linux-image-arm64
Version: 6.1.180-1
Filename: pool/main/l/linux-signed-arm64/linux-image-arm64_6.1.180-1_arm64.deb
SHA256: eeee
";

    #[test]
    fn packages_index() {
        let p = parse_packages(INDEX);
        assert_eq!(p.len(), 5);
        assert_eq!(p[0].sha256, "aaaa");
        assert_eq!(p[0].version, "6.1.170-1");
        let newest = newest_kernel(&p).unwrap();
        assert_eq!(newest.package, "linux-image-6.1.0-50-arm64");
        assert_eq!(format!("{MIRROR}{}", newest.filename), format!("{MIRROR}{PIN_DEB}"));
        assert_eq!(newest.sha256, PIN_DEB_SHA256);
        assert!(newest_kernel(&parse_packages("Package: foo\nFilename: x\nSHA256: 1\n")).is_none());
    }

    #[test]
    fn kernel_package_names() {
        assert!(is_generic_kernel("linux-image-6.1.0-50-arm64"));
        assert!(is_generic_kernel("linux-image-6.12.10-3-arm64"));
        for bad in [
            "linux-image-arm64",
            "linux-image-6.1.0-50-rt-arm64",
            "linux-image-6.1.0-50-cloud-arm64",
            "linux-image-6.1.0-50-arm64-dbg",
            "linux-image-6.1.0-50-arm64-unsigned",
            "linux-image-6.1-50-arm64",
        ] {
            assert!(!is_generic_kernel(bad), "{bad}");
        }
    }

    #[test]
    fn debian_version_order() {
        use Ordering::*;
        let cases = [
            ("6.1.176-1", "6.1.170-1", Greater),
            ("6.1.9-1", "6.1.10-1", Less),
            ("6.1.176-1", "6.1.176-1", Equal),
            ("6.1.176-2", "6.1.176-1", Greater),
            ("1:1.0", "2.0", Greater),
            ("1.0~rc1-1", "1.0-1", Less),
            ("1.0a", "1.0", Greater),
            ("1.0+b1", "1.0a", Greater),
            ("6.1.176-1~bpo11+1", "6.1.176-1", Less),
            ("007", "7", Equal),
        ];
        for (a, b, want) in cases {
            assert_eq!(compare_versions(a, b), want, "{a} vs {b}");
            assert_eq!(compare_versions(b, a), want.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn cache_location() {
        assert_eq!(
            cache_dir_from(Some("/x/cache".into()), Some("/home/u".into())),
            PathBuf::from("/x/cache/kestrel")
        );
        assert_eq!(
            cache_dir_from(Some("relative".into()), Some("/home/u".into())),
            PathBuf::from("/home/u/.cache/kestrel")
        );
        assert_eq!(
            cache_dir_from(None, Some("/root".into())),
            PathBuf::from("/root/.cache/kestrel")
        );
    }

    #[test]
    fn cached_tree_needs_a_good_hash() {
        let dir = std::env::temp_dir().join(format!("xtask-fetch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dtb = dir.join("t.dtb");
        let rec = dir.join("t.dtb.sha256");
        std::fs::write(&dtb, b"not the pinned tree").unwrap();
        assert_eq!(cached_dtb_hash(&dtb, &rec), None, "no record, not pinned");
        std::fs::write(&rec, "0000  t.dtb\n").unwrap();
        assert_eq!(cached_dtb_hash(&dtb, &rec), None, "record does not match");
        let h = util::sha256_hex(b"not the pinned tree");
        std::fs::write(&rec, format!("{h}  t.dtb\n")).unwrap();
        assert_eq!(cached_dtb_hash(&dtb, &rec), Some(h));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
