//! What `bench-bus` and `bench-bus-peer` agree on.

/// The TCP port the reading device connects to.
pub const PORT: u16 = 5002;
/// The file the reading device reads through the bus, in `/data`.
pub const FILE: &str = "bench4m";
pub const FILE_MIB: usize = 4;

/// The file's bytes from `offset` on, into `buf`.
pub fn pattern(offset: usize, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        let at = offset + i;
        *b = at as u8 ^ (at >> 12) as u8;
    }
}
