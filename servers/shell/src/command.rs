//! The command language: a command word and its arguments, separated by
//! blanks. [`parse`] checks the arguments, so that running a command only
//! deals with the system's answers.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Longest task name the supervisor takes (`userlib::proto::MAX_NAME`).
pub const MAX_TARGET: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command<'a> {
    Help,
    Ps,
    Mem,
    Devices,
    Services,
    Kill(&'a str),
    Restart(&'a str),
    Uptime,
    Date,
    Reboot,
    Poweroff,
    Ip,
    Ping(&'a str),
    Fetch(&'a str),
    Resolve(&'a str),
}

/// What a command takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Args {
    None,
    /// One task, by name or id.
    Task,
    /// One word, named in the usage.
    Word(&'static str),
}

/// Every command: name, arguments, one-line description (`help` prints them in this order).
const COMMANDS: &[(&str, Args, &str)] = &[
    ("help", Args::None, "list the commands"),
    (
        "ps",
        Args::None,
        "tasks: state, memory, CPU time, restarts, priority, device",
    ),
    (
        "mem",
        Args::None,
        "memory: the pool, kernel objects, free RAM, kernel heap",
    ),
    ("devices", Args::None, "device-tree nodes and the driver of each"),
    (
        "services",
        Args::None,
        "registered services, their providers and clients",
    ),
    ("kill", Args::Task, "stop a task (it stays stopped)"),
    ("restart", Args::Task, "stop a task and start it again"),
    ("uptime", Args::None, "time since boot"),
    ("date", Args::None, "date and time from the real-time clock (UTC)"),
    ("ip", Args::None, "network: interface, MAC, address and DHCP lease"),
    ("ping", Args::Word("HOST"), "ICMP echo to a host, four times"),
    (
        "fetch",
        Args::Word("URL"),
        "HTTP/1.1 GET of an http:// URL; prints the body",
    ),
    ("resolve", Args::Word("NAME"), "IPv4 addresses of a name (DNS)"),
    ("reboot", Args::None, "restart the machine"),
    ("poweroff", Args::None, "turn the machine off"),
];

/// `Ok(None)` for a blank line; `Err` is the one-line message to show.
pub fn parse(line: &str) -> Result<Option<Command<'_>>, String> {
    let mut words = line.split_ascii_whitespace();
    let Some(name) = words.next() else {
        return Ok(None);
    };
    let args: Vec<&str> = words.collect();
    let Some(&(name, kind, _)) = COMMANDS.iter().find(|(n, _, _)| *n == name) else {
        return Err(format!("{name}: unknown command (try 'help')"));
    };
    let target = match (kind, args.as_slice()) {
        (Args::None, []) => "",
        (Args::None, _) => return Err(format!("{name}: takes no arguments")),
        (Args::Task, []) => return Err(format!("{name}: missing task name or id (usage: {name} NAME|ID)")),
        (Args::Task, [t]) if t.len() > MAX_TARGET => {
            return Err(format!("{name}: '{t}' is too long for a task name"));
        }
        (Args::Task, [t]) => t,
        (Args::Task, _) => return Err(format!("{name}: too many arguments (usage: {name} NAME|ID)")),
        (Args::Word(w), []) => return Err(format!("{name}: missing {w} (usage: {name} {w})")),
        (Args::Word(_), [t]) => t,
        (Args::Word(w), _) => return Err(format!("{name}: too many arguments (usage: {name} {w})")),
    };
    Ok(Some(match name {
        "help" => Command::Help,
        "ps" => Command::Ps,
        "mem" => Command::Mem,
        "devices" => Command::Devices,
        "services" => Command::Services,
        "kill" => Command::Kill(target),
        "restart" => Command::Restart(target),
        "uptime" => Command::Uptime,
        "date" => Command::Date,
        "reboot" => Command::Reboot,
        "ip" => Command::Ip,
        "ping" => Command::Ping(target),
        "fetch" => Command::Fetch(target),
        "resolve" => Command::Resolve(target),
        _ => Command::Poweroff,
    }))
}

/// The `help` text: a table of usages and descriptions.
pub fn help() -> String {
    let mut t = crate::table::Table::new(&["COMMAND", "DESCRIPTION"]);
    for (name, args, what) in COMMANDS {
        let usage = match args {
            Args::None => String::from(*name),
            Args::Task => format!("{name} NAME|ID"),
            Args::Word(w) => format!("{name} {w}"),
        };
        t.row([usage, String::from(*what)]);
    }
    let mut s = t.render();
    s.push_str("Keys: Up/Down history, Left/Right move, Ctrl-U erase to start, Ctrl-C cancel.\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands() {
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("   \t "), Ok(None));
        assert_eq!(parse("ps"), Ok(Some(Command::Ps)));
        assert_eq!(parse("  mem  "), Ok(Some(Command::Mem)));
        assert_eq!(parse("kill virtio-blk"), Ok(Some(Command::Kill("virtio-blk"))));
        assert_eq!(parse("restart\t7"), Ok(Some(Command::Restart("7"))));
        for (n, c) in [
            ("help", Command::Help),
            ("devices", Command::Devices),
            ("services", Command::Services),
            ("uptime", Command::Uptime),
            ("date", Command::Date),
            ("reboot", Command::Reboot),
            ("ip", Command::Ip),
            ("poweroff", Command::Poweroff),
        ] {
            assert_eq!(parse(n), Ok(Some(c)));
        }
    }

    #[test]
    fn errors() {
        let err = |s| parse(s).unwrap_err();
        assert_eq!(err("foo"), "foo: unknown command (try 'help')");
        assert_eq!(err("PS"), "PS: unknown command (try 'help')");
        assert_eq!(err("ps -a"), "ps: takes no arguments");
        assert_eq!(err("poweroff now"), "poweroff: takes no arguments");
        assert_eq!(err("kill"), "kill: missing task name or id (usage: kill NAME|ID)");
        assert_eq!(
            err("restart a b"),
            "restart: too many arguments (usage: restart NAME|ID)"
        );
        assert_eq!(err("ping"), "ping: missing HOST (usage: ping HOST)");
        assert_eq!(err("fetch a b"), "fetch: too many arguments (usage: fetch URL)");
        assert_eq!(parse("resolve example.org"), Ok(Some(Command::Resolve("example.org"))));
        assert_eq!(parse("ping 10.0.2.2"), Ok(Some(Command::Ping("10.0.2.2"))));
        assert_eq!(parse("fetch http://h/"), Ok(Some(Command::Fetch("http://h/"))));
        let long = format!("kill {}", "x".repeat(MAX_TARGET + 1));
        assert!(err(&long).ends_with("is too long for a task name"));
        assert!(parse(&format!("kill {}", "x".repeat(MAX_TARGET))).is_ok());
    }

    #[test]
    fn help_lists_every_command_aligned() {
        let h = help();
        let lines: Vec<&str> = h.lines().collect();
        assert!(lines[0].starts_with("COMMAND"));
        for (name, _, _) in COMMANDS {
            assert!(lines.iter().any(|l| l.starts_with(name)), "{name}");
        }
        let col = lines[0].find("DESCRIPTION").unwrap();
        for l in &lines[1..=COMMANDS.len()] {
            assert_eq!(l.as_bytes()[col - 1], b' ');
            assert_ne!(l.as_bytes()[col], b' ', "{l}");
        }
    }
}
