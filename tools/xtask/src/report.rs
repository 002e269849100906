//! What `cargo xtask test` reports: the count behind its closing line
//! `N passed, N failed`, and the same cases as JUnit XML for CI systems
//! (`target/kestrel/junit.xml`): one suite per kind of case (each cargo test
//! run, the device-tree cases, the boot cases), one test case per host test
//! or QEMU case, with its log when it failed.

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
use std::path::Path;
use std::time::Duration;

/// One case's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    pub name: String,
    pub passed: bool,
    pub time: Duration,
    /// Why it failed (one line).
    pub message: String,
    /// Its output; written to the report only when it failed.
    pub log: String,
}

impl Case {
    pub fn passed(name: &str) -> Case {
        Case {
            name: name.to_string(),
            passed: true,
            time: Duration::ZERO,
            message: String::new(),
            log: String::new(),
        }
    }

    pub fn failed(name: &str, message: &str, log: &str) -> Case {
        Case {
            passed: false,
            message: message.to_string(),
            log: log.to_string(),
            ..Case::passed(name)
        }
    }
}

/// Every case of a run, grouped into suites in the order they ran.
#[derive(Debug, Default)]
pub struct Report {
    suites: Vec<(String, Vec<Case>)>,
}

impl Report {
    pub fn add(&mut self, suite: &str, case: Case) {
        match self.suites.iter_mut().find(|(s, _)| s == suite) {
            Some((_, cases)) => cases.push(case),
            None => self.suites.push((suite.to_string(), vec![case])),
        }
    }

    fn cases(&self) -> impl Iterator<Item = &Case> {
        self.suites.iter().flat_map(|(_, c)| c)
    }

    pub fn passed(&self) -> usize {
        self.cases().filter(|c| c.passed).count()
    }

    pub fn failed(&self) -> usize {
        self.cases().filter(|c| !c.passed).count()
    }

    /// The JUnit XML document.
    pub fn junit(&self) -> String {
        let mut report = quick_junit::Report::new("kestrel");
        for (name, cases) in &self.suites {
            let mut suite = TestSuite::new(name.as_str());
            for c in cases {
                let status = if c.passed {
                    TestCaseStatus::success()
                } else {
                    let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    s.set_message(c.message.as_str());
                    s
                };
                let mut t = TestCase::new(c.name.as_str(), status);
                t.set_classname(name.as_str()).set_time(c.time);
                if !c.passed {
                    t.set_system_out(c.log.as_str());
                }
                suite.add_test_case(t);
            }
            report.add_test_suite(suite);
        }
        report.to_string().expect("JUnit XML serializes to a string")
    }

    pub fn write_junit(&self, path: &Path) -> Result<(), String> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        std::fs::write(path, self.junit()).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// The cases of one `cargo test` run's output: a `test NAME ... ok|FAILED`
/// line each (ignored tests are left out), a failed one with the output
/// libtest printed for it (`---- NAME stdout ----` up to the next section).
pub fn cargo_cases(output: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    for line in output.lines() {
        let Some(rest) = line.strip_prefix("test ") else {
            continue;
        };
        if let Some(name) = rest.strip_suffix(" ... ok") {
            cases.push(Case::passed(name));
        } else if let Some(name) = rest.strip_suffix(" ... FAILED") {
            cases.push(Case::failed(name, "the test failed", &failure_output(output, name)));
        }
    }
    cases
}

fn failure_output(output: &str, name: &str) -> String {
    let header = format!("---- {name} stdout ----");
    let mut lines = output.lines().skip_while(|l| *l != header);
    let Some(first) = lines.next() else {
        return String::new();
    };
    let mut out = vec![first];
    out.extend(lines.take_while(|l| !l.starts_with("---- ") && *l != "failures:"));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARGO: &str = "\
running 3 tests
test a::one ... ok
test a::two ... FAILED
test a::three ... ignored

failures:

---- a::two stdout ----
thread 'a::two' panicked at src/a.rs:9:5:
assertion failed: 1 == 2
---- a::four stdout ----
other

failures:
    a::two

test result: FAILED. 1 passed; 1 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s
";

    #[test]
    fn cargo_output_becomes_cases() {
        let c = cargo_cases(CARGO);
        assert_eq!(c.len(), 2, "{c:?}");
        assert!(c[0].passed && c[0].name == "a::one");
        assert!(!c[1].passed && c[1].name == "a::two");
        assert_eq!(
            c[1].log,
            "---- a::two stdout ----\nthread 'a::two' panicked at src/a.rs:9:5:\nassertion failed: 1 == 2"
        );
    }

    #[test]
    fn junit_has_a_case_each_and_logs_of_failures() {
        let mut r = Report::default();
        r.add("unit workspace", Case::passed("a::one"));
        r.add(
            "boot",
            Case::failed("virt-smp4", "no banner", "console \u{1b}[1mbold\u{1b}[0m <&> \u{7}"),
        );
        r.add("boot", Case::passed("virt-smp1"));
        assert_eq!((r.passed(), r.failed()), (2, 1));
        let x = r.junit();
        assert!(x.starts_with("<?xml"), "{x}");
        assert!(
            x.contains(r#"<testsuites name="kestrel" tests="3" skipped="0" failures="1""#),
            "{x}"
        );
        assert!(
            x.contains(r#"<testsuite name="boot" tests="2" skipped="0" errors="0" failures="1""#),
            "{x}"
        );
        assert!(x.contains(r#"<testcase name="virt-smp4" classname="boot""#), "{x}");
        assert!(x.contains(r#"<failure message="no banner""#), "{x}");
        // Escaped, and no character XML 1.0 forbids.
        assert!(x.contains("&lt;&amp;&gt;"), "{x}");
        assert!(!x.contains('\u{7}') && !x.contains('\u{1b}'), "{x}");
        assert_eq!(x.matches("<system-out>").count(), 1, "only the failure carries its log");
    }
}
