//! Parsing the kernel console as fixed by docs/CONTRACTS.md: the boot banner,
//! the `ktest:` lines and cargo's `test result:` lines.

use crate::process::Line;
use regex_lite::Regex;
use std::sync::LazyLock;

/// The banner regex, verbatim from docs/CONTRACTS.md (plus the optional cycles).
pub const BANNER: &str = r"Kestrel v(\S+) booted on (.+): (\d+) MiB RAM usable, (\d+)/(\d+) CPUs online, GICv([23])(?:, boot took (\d+) cycles)?";

/// Lines that mean something went fatally wrong, unless a case expects them.
/// Lines that mean the kernel itself failed. (User programs may panic on
/// purpose in tests; init reports those as `utest: ... FAILED` when they
/// are not expected.)
pub const FATAL_MARKERS: &[&str] = &["KERNEL PANIC", "KERNEL FAULT", "BOOT ERROR"];

static BANNER_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(BANNER).unwrap());

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Banner {
    pub version: String,
    pub machine: String,
    pub ram_mib: u64,
    pub cpus_online: u32,
    pub cpus_total: u32,
    pub gic: u8,
    /// `boot took N cycles` (instructions under `-icount`), when there is a PMU.
    pub boot_cycles: Option<u64>,
}

pub fn parse_banner(line: &str) -> Option<Banner> {
    let c = BANNER_RE.captures(line)?;
    Some(Banner {
        version: c[1].to_string(),
        machine: c[2].to_string(),
        ram_mib: c[3].parse().ok()?,
        cpus_online: c[4].parse().ok()?,
        cpus_total: c[5].parse().ok()?,
        gic: c[6].parse().ok()?,
        boot_cycles: c.get(7).and_then(|m| m.as_str().parse().ok()),
    })
}

/// The first banner on the console.
pub fn find_banner(lines: &[Line]) -> Option<Banner> {
    lines.iter().find_map(|l| parse_banner(&l.text))
}

/// What the in-kernel test image reported.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ktest {
    /// `ktest: running N tests`
    pub running: Option<u32>,
    pub ok: Vec<String>,
    /// (name, reason)
    pub failed: Vec<(String, String)>,
    /// `ktest: result: X passed, Y failed`
    pub result: Option<(u32, u32)>,
}

/// One `ktest:` line, wherever it sits on the line (log lines have a
/// timestamp and level in front).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KtestLine {
    Running(u32),
    Ok(String),
    Failed(String, String),
    Result(u32, u32),
}

pub fn parse_ktest_line(line: &str) -> Option<KtestLine> {
    let rest = &line[line.find("ktest: ")? + "ktest: ".len()..];
    if let Some(r) = rest.strip_prefix("result: ") {
        let (p, f) = r.split_once(" passed, ")?;
        let f = f.strip_suffix(" failed").unwrap_or(f);
        return Some(KtestLine::Result(p.trim().parse().ok()?, f.trim().parse().ok()?));
    }
    if let Some(r) = rest.strip_prefix("running ") {
        let n = r.strip_suffix(" tests").or_else(|| r.strip_suffix(" test"))?;
        return Some(KtestLine::Running(n.trim().parse().ok()?));
    }
    if let Some((name, status)) = rest.split_once(" ... ") {
        if status.trim_end() == "ok" {
            return Some(KtestLine::Ok(name.to_string()));
        }
        if let Some(reason) = status.strip_prefix("FAILED") {
            let reason = reason.strip_prefix(':').unwrap_or(reason).trim();
            return Some(KtestLine::Failed(name.to_string(), reason.to_string()));
        }
    }
    None
}

pub fn parse_ktest(lines: &[Line]) -> Ktest {
    let mut k = Ktest::default();
    for l in lines {
        match parse_ktest_line(&l.text) {
            Some(KtestLine::Running(n)) => k.running = Some(n),
            Some(KtestLine::Ok(n)) => k.ok.push(n),
            Some(KtestLine::Failed(n, r)) => k.failed.push((n, r)),
            Some(KtestLine::Result(p, f)) => k.result = Some((p, f)),
            None => {}
        }
    }
    k
}

impl Ktest {
    /// Ok(summary) when a result line says everything passed and agrees with
    /// the individual lines; Err(reason) otherwise.
    pub fn verdict(&self) -> Result<String, String> {
        let Some((passed, failed)) = self.result else {
            return Err(match self.running {
                Some(n) => format!(
                    "no `ktest: result:` line ({n} tests announced, {} ok, {} failed seen)",
                    self.ok.len(),
                    self.failed.len()
                ),
                None => "no ktest output (`ktest: running N tests` never printed)".into(),
            });
        };
        let mut why = Vec::new();
        if failed > 0 || !self.failed.is_empty() {
            let names: Vec<String> = self.failed.iter().map(|(n, r)| format!("{n}: {r}")).collect();
            why.push(format!("{failed} ktest(s) failed [{}]", names.join("; ")));
        }
        if passed as usize != self.ok.len() {
            why.push(format!(
                "result says {passed} passed but {} `... ok` lines",
                self.ok.len()
            ));
        }
        if let Some(n) = self.running {
            if n != passed + failed {
                why.push(format!("{n} tests announced but {} reported", passed + failed));
            }
        }
        if passed + failed == 0 {
            why.push("ran no ktest".into());
        }
        if why.is_empty() {
            Ok(format!("{passed} ktests"))
        } else {
            Err(why.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn banner_with_and_without_cycles() {
        let b = parse_banner("[    0.051234] INFO  Kestrel v0.1.0 booted on QEMU virt (linux,dummy-virt): 2044 MiB RAM usable, 4/4 CPUs online, GICv3, boot took 812345 cycles").unwrap();
        assert_eq!(b.version, "0.1.0");
        assert_eq!(b.machine, "QEMU virt (linux,dummy-virt)");
        assert_eq!((b.ram_mib, b.cpus_online, b.cpus_total, b.gic), (2044, 4, 4, 3));
        assert_eq!(b.boot_cycles, Some(812345));
        let b = parse_banner(
            "Kestrel v0.1.0-dev booted on Raspberry Pi 4 Model B: 948 MiB RAM usable, 3/4 CPUs online, GICv2",
        )
        .unwrap();
        assert_eq!((b.cpus_online, b.cpus_total, b.gic, b.boot_cycles), (3, 4, 2, None));
        assert!(parse_banner("Kestrel v0.1 booted on x: 1 MiB RAM usable, 1/1 CPUs online, GICv4").is_none());
    }

    #[test]
    fn ktest_lines() {
        use KtestLine::*;
        assert_eq!(
            parse_ktest_line("[    0.1] INFO  ktest: running 12 tests"),
            Some(Running(12))
        );
        assert_eq!(parse_ktest_line("ktest: running 1 test"), Some(Running(1)));
        assert_eq!(
            parse_ktest_line("ktest: mm::buddy::split ... ok"),
            Some(Ok("mm::buddy::split".into()))
        );
        assert_eq!(
            parse_ktest_line("ktest: sched::yield ... FAILED: expected 2, got 3 ... really"),
            Some(Failed("sched::yield".into(), "expected 2, got 3 ... really".into()))
        );
        assert_eq!(
            parse_ktest_line("[ 1.0] INFO  ktest: result: 11 passed, 1 failed"),
            Some(Result(11, 1))
        );
        assert_eq!(parse_ktest_line("ktest: something else"), None);
        assert_eq!(parse_ktest_line("no marker here ... ok"), None);
    }

    fn lines(v: &[&str]) -> Vec<Line> {
        v.iter().map(|s| Line::out(s)).collect()
    }

    #[test]
    fn ktest_verdicts() {
        let good = parse_ktest(&lines(&[
            "ktest: running 2 tests",
            "ktest: a ... ok",
            "ktest: b ... ok",
            "ktest: result: 2 passed, 0 failed",
        ]));
        assert_eq!(good.verdict(), Ok("2 ktests".into()));

        let failed = parse_ktest(&lines(&[
            "ktest: running 2 tests",
            "ktest: a ... ok",
            "ktest: b ... FAILED: boom",
            "ktest: result: 1 passed, 1 failed",
        ]));
        let why = failed.verdict().unwrap_err();
        assert!(why.contains("b: boom"), "{why}");

        let cut = parse_ktest(&lines(&["ktest: running 2 tests", "ktest: a ... ok"]));
        assert!(cut.verdict().unwrap_err().contains("no `ktest: result:`"));

        let liar = parse_ktest(&lines(&[
            "ktest: running 3 tests",
            "ktest: a ... ok",
            "ktest: result: 2 passed, 0 failed",
        ]));
        let why = liar.verdict().unwrap_err();
        assert!(
            why.contains("2 passed but 1") && why.contains("3 tests announced"),
            "{why}"
        );

        assert!(parse_ktest(&[]).verdict().unwrap_err().contains("no ktest output"));
        let none = parse_ktest(&lines(&["ktest: running 0 tests", "ktest: result: 0 passed, 0 failed"]));
        assert!(none.verdict().is_err());
    }
}
