//! Rows measured in instructions retired (`userlib::arch::instructions`),
//! shared by `bench-display` and `bench-photon`: the cost of reading the
//! counter, and a row's report.

use alloc::vec::Vec;
use userlib::arch::instructions;
use userlib::println;
use userlib::test::median;

/// What reading the counter twice costs (the median of 101 tries): taken
/// off every sample.
pub fn counter_cost() -> u64 {
    let mut s = [0u64; 101];
    for x in s.iter_mut() {
        let a = instructions();
        let b = instructions();
        *x = b.wrapping_sub(a) as u64;
    }
    median(&mut s)
}

/// Prints a row: its median, then every sample (each distinct value and
/// how many times it came); fails when a sample is more than twice the
/// smallest (it was not the work measured).
pub fn report(name: &str, samples: &[u64]) {
    let mut s: Vec<u64> = samples.to_vec();
    let m = median(&mut s);
    let (min, max) = (s[0], s[s.len() - 1]);
    let mut line = alloc::format!("bench-note: {name}: median {m}, min {min}, max {max}; samples");
    let mut i = 0;
    while i < s.len() {
        let n = s[i..].iter().take_while(|&&v| v == s[i]).count();
        line.push_str(&alloc::format!(" {}x{n}", s[i]));
        i += n;
    }
    println!("{line}");
    assert!(
        max <= min.saturating_mul(2),
        "{name}: a sample of {max} instructions against a smallest of {min}: not the work measured"
    );
    println!("bench: {name} {m}");
}
