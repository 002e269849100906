//! Integer ratios without 128-bit arithmetic (the kernel's timer and
//! clock, and the user library's clock reading, which must agree).

/// `value * numerator / denominator` (rounded down, saturating at
/// `u64::MAX`), exact while numerator and denominator are below 2^40, as
/// counter frequencies and unit factors are: whole units and the remainder
/// are scaled separately with 64-bit hardware division. (A 128-bit product
/// would call a library division routine on every timer programming.)
pub fn scale(value: u64, numerator: u64, denominator: u64) -> u64 {
    let denominator = denominator.max(1);
    (value / denominator)
        .saturating_mul(numerator)
        .saturating_add(value % denominator * numerator / denominator)
}

#[cfg(test)]
mod tests {
    use super::scale;

    #[test]
    fn scale_matches_wide_arithmetic() {
        let exact = |v: u64, n: u64, d: u64| (v as u128 * n as u128 / d as u128).min(u64::MAX as u128) as u64;
        for &f in &[1u64, 19_200_000, 54_000_000, 62_500_000, 1_000_000_000, u32::MAX as u64] {
            for &v in &[0u64, 1, 999_999, 1_000_000, 123_456_789_012, 1 << 40, 1 << 50] {
                assert_eq!(scale(v, f, 1_000_000), exact(v, f, 1_000_000), "{v} us at {f} Hz");
                assert_eq!(scale(v, 1_000_000, f), exact(v, 1_000_000, f), "{v} ticks at {f} Hz");
            }
        }
    }
}
