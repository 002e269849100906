//! Choosing the console UART.

use super::devices::{first_gic_irq, first_region, Reader, PL011};
use super::error::Part;
use super::tree::{be32, Node, Want};
use super::{Console, UartKind};

impl<'a> Reader<'_, '_, 'a> {
    /// `/chosen` stdout-path if it is a usable PL011, else alias serial0, else the first usable PL011.
    pub(super) fn console(&mut self, chosen: Option<Node<'a>>, gic: Option<&Node<'a>>) -> Option<Console<'a>> {
        let aliases = self.tree.find_path("/aliases");
        let mut tried = [usize::MAX; 2];
        let stdout = chosen.and_then(|c| c.str("stdout-path").or_else(|| c.str("linux,stdout-path")));
        if let Some(stdout) = stdout {
            let (path, options) = stdout.split_once(':').unwrap_or((stdout, ""));
            if let Some((node, path)) = self.resolve(aliases, path) {
                tried[0] = node.off();
                if let Some(console) = self.pl011(node, path, parse_baud(options), gic) {
                    return Some(console);
                }
            }
        }
        if let Some((node, path)) = self.resolve(aliases, "serial0") {
            if !tried.contains(&node.off()) {
                tried[1] = node.off();
                if let Some(console) = self.pl011(node, path, None, gic) {
                    return Some(console);
                }
            }
        }
        let mut candidates = self
            .tree
            .all_with(Want::Compatible(PL011))
            .filter(|n| !tried.contains(&n.off()) && n.compatible_with(PL011).is_some());
        candidates.find_map(|node| self.pl011(node, node.name(), None, gic))
    }

    /// A path or `alias[/rest]` to a node, with the path text to report.
    fn resolve(&self, aliases: Option<Node<'a>>, spec: &'a str) -> Option<(Node<'a>, &'a str)> {
        if spec.starts_with('/') {
            return Some((self.tree.find_path(spec)?, spec));
        }
        let (alias, rest) = spec.split_once('/').unwrap_or((spec, ""));
        let target = aliases?.str(alias)?;
        let node = self.tree.descend(&self.tree.find_path(target)?, rest)?;
        Some((node, if rest.is_empty() { target } else { node.name() }))
    }

    /// The node as a console, if it is an enabled PL011 with usable registers.
    fn pl011(
        &mut self,
        node: Node<'a>,
        path: &'a str,
        baud: Option<u32>,
        gic: Option<&Node<'a>>,
    ) -> Option<Console<'a>> {
        if node.compatible_with(PL011).is_none() || !node.is_enabled() {
            return None;
        }
        let lin = self.tree.lineage(&node)?;
        let regs = match first_region(&lin) {
            Ok(r) => r,
            Err(p) => {
                self.note(Part::Console, lin.path(), p);
                return None;
            }
        };
        // Without a usable interrupt the console still works by polling.
        let irq = match first_gic_irq(&self.tree, &lin, gic) {
            Ok(irq) => irq,
            Err(p) => {
                self.note(Part::Console, lin.path(), p);
                None
            }
        };
        let clock_hz = self.uart_clock(&node);
        Some(Console {
            kind: UartKind::Pl011,
            path,
            regs,
            irq,
            clock_hz,
            baud,
        })
    }

    /// `clock-frequency`, else the `uartclk` entry of `clocks` if it is a fixed clock.
    fn uart_clock(&self, node: &Node<'a>) -> Option<u32> {
        if let Some(hz) = node.u32("clock-frequency") {
            return Some(hz);
        }
        let clocks = node.prop("clocks")?;
        let index = node.strings("clock-names").position(|n| n == "uartclk").unwrap_or(0);
        let mut at = 0;
        for i in 0..=index {
            let provider = self.tree.find_phandle(be32(clocks, at)?)?;
            let cells = provider.u32("#clock-cells").filter(|&c| c <= 4)? as usize;
            if i == index {
                return if cells == 0 {
                    provider.u32("clock-frequency")
                } else {
                    None
                };
            }
            at += 4 + cells * 4;
        }
        None
    }
}

/// The baud rate at the start of `stdout-path` options ("115200n8" -> 115200).
fn parse_baud(options: &str) -> Option<u32> {
    let mut digits = options.bytes().take_while(u8::is_ascii_digit);
    let baud = digits.try_fold(0u32, |n, d| n.checked_mul(10)?.checked_add(u32::from(d - b'0')));
    baud.filter(|&b| b > 0)
}

#[cfg(test)]
mod tests {
    use super::parse_baud;

    #[test]
    fn baud_is_the_leading_number() {
        assert_eq!(parse_baud("115200n8"), Some(115200));
        assert_eq!(parse_baud("9600"), Some(9600));
        assert_eq!(parse_baud(""), None);
        assert_eq!(parse_baud("n8"), None);
        assert_eq!(parse_baud("0"), None);
        assert_eq!(parse_baud("99999999999"), None, "overflow is no baud rate");
    }
}
