//! Strict structural validation, done before anything else reads the blob.
//!
//! The `fdt` crate unwraps and indexes freely (a bad block offset, a property
//! name offset past the strings block, a non-UTF-8 name all panic), and boot
//! code must never panic on a device tree, so every one of those conditions is
//! checked here first and reported with the byte offset at fault.

use super::error::{Block, DtError};
use super::index::Index;
use super::tree::{ascii_name_end, be32, prop_at, read_token, Token, FDT_BEGIN_NODE, FDT_END_NODE, FDT_NOP, FDT_PROP};

/// Size of the version-17 header.
pub(crate) const HEADER_LEN: usize = 40;
const MAGIC: u32 = 0xd00d_feed;
/// The only layout this reader understands (version 17 added `size_dt_struct`).
const VERSION: u32 = 17;
/// Largest tree accepted: the arm64 boot protocol caps the DTB at 2 MiB.
pub const MAX_TOTAL_SIZE: usize = 2 << 20;
/// Deepest node nesting accepted (root = 1); real trees stay below 10.
pub const MAX_DEPTH: usize = 32;

/// Where the blocks are, once validated (offsets from the start of the tree).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Layout {
    pub totalsize: usize,
    /// Bytes from the start to the end of the last block: what a reader
    /// needs. The rest, up to `totalsize`, is free space for bootloaders
    /// to edit the tree in, which the kernel gives back as free memory.
    pub used: usize,
    pub structs: (usize, usize),
    pub strings: (usize, usize),
}

struct Header {
    totalsize: u32,
    off_dt_struct: u32,
    off_dt_strings: u32,
    off_mem_rsvmap: u32,
    size_dt_strings: u32,
    size_dt_struct: u32,
}

fn read_header(blob: &[u8]) -> Result<Header, DtError> {
    if blob.len() < HEADER_LEN {
        return Err(DtError::TooShort { len: blob.len() });
    }
    // In bounds after the length check; 0 only to avoid any panic path.
    let word = |i: usize| be32(blob, i * 4).unwrap_or(0);
    let magic = word(0);
    if magic != MAGIC {
        return Err(DtError::BadMagic { magic });
    }
    let (version, last_compatible) = (word(5), word(6));
    if version < VERSION || last_compatible > VERSION {
        return Err(DtError::BadVersion {
            version,
            last_compatible,
        });
    }
    Ok(Header {
        totalsize: word(1),
        off_dt_struct: word(2),
        off_dt_strings: word(3),
        off_mem_rsvmap: word(4),
        size_dt_strings: word(8),
        size_dt_struct: word(9),
    })
}

/// The tree's `totalsize`, from its first 40 bytes (the kernel maps the header first, then the whole tree).
///
/// Checks magic, version and that the size is between the header size and [`MAX_TOTAL_SIZE`].
pub fn header_total_size(first_40_bytes: &[u8]) -> Result<usize, DtError> {
    let totalsize = read_header(first_40_bytes)?.totalsize;
    let problem = if (totalsize as usize) < HEADER_LEN {
        "is smaller than the 40-byte header"
    } else if totalsize as usize > MAX_TOTAL_SIZE {
        "exceeds the 2 MiB limit of the arm64 boot protocol"
    } else {
        return Ok(totalsize as usize);
    };
    Err(DtError::BadTotalSize { totalsize, problem })
}

fn check_block(block: Block, offset: u32, size: u32, totalsize: usize, align: u32) -> Result<(), DtError> {
    let problem = if (offset as usize) < HEADER_LEN {
        "overlaps the header"
    } else if u64::from(offset) + u64::from(size) > totalsize as u64 {
        "extends past the end of the tree (totalsize)"
    } else if !offset.is_multiple_of(align) || !size.is_multiple_of(align) {
        if align == 8 {
            "is not 8-byte aligned"
        } else {
            "is not 4-byte aligned"
        }
    } else {
        return Ok(());
    };
    Err(DtError::BadBlock {
        block,
        offset,
        size,
        problem,
    })
}

/// Validate everything the rest of the reader (and `fdt`) relies on, and
/// fill `index` on the way (it is only meaningful if this succeeds).
///
/// `trimmed`: the buffer may stop short of `totalsize` after the last block
/// (a tree whose free space was given back); otherwise it must hold
/// `totalsize` bytes.
pub(crate) fn validate(blob: &[u8], index: &mut Index, trimmed: bool) -> Result<Layout, DtError> {
    let h = read_header(blob)?;
    let totalsize = header_total_size(blob)?;
    check_block(Block::Struct, h.off_dt_struct, h.size_dt_struct, totalsize, 4)?;
    check_block(Block::Strings, h.off_dt_strings, h.size_dt_strings, totalsize, 1)?;
    check_block(Block::MemReserve, h.off_mem_rsvmap, 0, totalsize, 8)?;
    let past_buffer = DtError::TotalSizePastBuffer {
        totalsize: h.totalsize,
        available: blob.len(),
    };
    let block_end = |off: u32, size: u32| off as usize + size as usize;
    let blocks_end = block_end(h.off_dt_struct, h.size_dt_struct).max(block_end(h.off_dt_strings, h.size_dt_strings));
    if blocks_end > blob.len() || (!trimmed && totalsize > blob.len()) {
        return Err(past_buffer);
    }
    let tree = blob.get(..totalsize.min(blob.len())).unwrap_or_default();
    let reservations_end = match check_reservations(tree, h.off_mem_rsvmap as usize) {
        Err(_) if blob.len() < totalsize => return Err(past_buffer),
        r => r?,
    };

    let structs = (h.off_dt_struct as usize, h.size_dt_struct as usize);
    let strings = (h.off_dt_strings as usize, h.size_dt_strings as usize);
    let block = |(off, size): (usize, usize)| tree.get(off..off + size).unwrap_or_default();
    check_structure(block(structs), block(strings), structs.0, index)?;
    Ok(Layout {
        totalsize,
        used: blocks_end.max(reservations_end),
        structs,
        strings,
    })
}

/// 16-byte (address, size) entries, ending with (0, 0) inside the tree.
/// Checks the `/memreserve/` entries; returns the offset past the terminator.
fn check_reservations(tree: &[u8], mut at: usize) -> Result<usize, DtError> {
    loop {
        let entry = (
            be32(tree, at),
            be32(tree, at + 4),
            be32(tree, at + 8),
            be32(tree, at + 12),
        );
        let (Some(a_hi), Some(a_lo), Some(s_hi), Some(s_lo)) = entry else {
            return Err(DtError::Truncated {
                offset: at,
                what: "memory reservation block has no (0, 0) terminator before the end of the tree",
            });
        };
        at += 16;
        if a_hi | a_lo | s_hi | s_lo == 0 {
            return Ok(at);
        }
    }
}

/// The token stream: aligned, in bounds, properties before children, balanced, one root, FDT_END.
/// Each node and property is also handed to `index`.
fn check_structure(structs: &[u8], strings: &[u8], base: usize, index: &mut Index) -> Result<(), DtError> {
    let malformed = |at: usize, what| DtError::Malformed {
        offset: base + at,
        what,
    };
    // A strings block that is UTF-8 throughout and ends with a NUL (the usual
    // case) makes every property name that starts on a character boundary
    // inside it valid: checked once here instead of once per property.
    let all_names_ok = strings.last() == Some(&0) && core::str::from_utf8(strings).is_ok();
    let name_ok =
        |name_off: u32| all_names_ok && matches!(strings.get(name_off as usize), Some(b) if !(0x80..0xc0).contains(b));
    let mut at = 0;
    // Number of open nodes, and per level whether that node has had a child yet.
    let mut depth = 0usize;
    let mut has_children = 0u64;
    let mut root_closed = false;
    loop {
        // Fast path: the common well-formed tokens, with the checks and state
        // changes of the full path below, which takes everything else (FDT_END,
        // the root's first and last token, and any token in error, which it
        // then explains).
        let tag = be32(structs, at).filter(|_| at.is_multiple_of(4));
        match tag {
            Some(FDT_PROP) if depth > 0 && has_children & (1 << (depth - 1)) == 0 => {
                if let Some((name_off, value, next)) = prop_at(structs, at) {
                    if name_ok(name_off) {
                        index.prop(strings, depth, at, name_off, value);
                        at = next;
                        continue;
                    }
                }
            }
            Some(FDT_BEGIN_NODE) if !root_closed && depth > 0 && depth < MAX_DEPTH => {
                if let Some(next) = ascii_name_end(structs, at) {
                    has_children |= 1 << (depth - 1);
                    has_children &= !(1 << depth);
                    index.open(at, next, depth);
                    depth += 1;
                    at = next;
                    continue;
                }
            }
            Some(FDT_END_NODE) if depth > 1 => {
                depth -= 1;
                at += 4;
                continue;
            }
            Some(FDT_NOP) => {
                at += 4;
                continue;
            }
            _ => {}
        }
        let (token, next) = read_token(structs, at).map_err(|b| {
            if b.truncated {
                DtError::Truncated {
                    offset: base + b.at,
                    what: b.what,
                }
            } else {
                malformed(b.at, b.what)
            }
        })?;
        match token {
            Token::Begin => {
                if root_closed {
                    return Err(malformed(at, "a second root node"));
                }
                if depth >= MAX_DEPTH {
                    return Err(DtError::TooDeep {
                        offset: base + at,
                        max: MAX_DEPTH,
                    });
                }
                if depth > 0 {
                    has_children |= 1 << (depth - 1);
                }
                has_children &= !(1 << depth);
                index.open(at, next, depth);
                depth += 1;
            }
            Token::Prop { name_off, value } => {
                if depth == 0 {
                    return Err(malformed(at, "property outside any node"));
                }
                if has_children & (1 << (depth - 1)) != 0 {
                    return Err(malformed(
                        at,
                        "property after a child node (properties must come first)",
                    ));
                }
                if !name_ok(name_off) {
                    check_prop_name(strings, name_off).map_err(|what| malformed(at, what))?;
                }
                index.prop(strings, depth, at, name_off, value);
            }
            Token::EndNode => {
                if depth == 0 {
                    return Err(malformed(at, "FDT_END_NODE without a matching FDT_BEGIN_NODE"));
                }
                depth -= 1;
                root_closed = depth == 0;
            }
            Token::Nop => {}
            Token::End => {
                if depth > 0 {
                    return Err(malformed(at, "FDT_END inside an unclosed node (unbalanced nesting)"));
                }
                if !root_closed {
                    return Err(malformed(at, "no root node"));
                }
                return Ok(());
            }
        }
        at = next;
    }
}

fn check_prop_name(strings: &[u8], name_off: u32) -> Result<(), &'static str> {
    let rest = strings.get(name_off as usize..).filter(|r| !r.is_empty());
    let rest = rest.ok_or("property name offset is outside the strings block")?;
    let len = rest
        .iter()
        .position(|&b| b == 0)
        .ok_or("property name is not NUL-terminated within the strings block")?;
    core::str::from_utf8(rest.get(..len).unwrap_or_default()).map_err(|_| "property name is not UTF-8")?;
    Ok(())
}
