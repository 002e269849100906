//! The command language: a command word and its arguments, separated by
//! blanks. [`parse`] checks the arguments, so that running a command only
//! deals with the system's answers.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Longest task name the supervisor takes (`userlib::proto::MAX_NAME`).
pub const MAX_TARGET: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Ps,
    Mem,
    Devices,
    Services,
    Kill(String),
    Restart(String),
    Uptime,
    /// `date [DEVICE]`: this device's clock (`""`), or a paired device's
    /// through the soft bus.
    Date(String),
    /// `date DEVICE SECONDS`: the paired device's clock read again and
    /// again for that long (1 to [`MAX_DATE_SECONDS`]), to see how its
    /// remote calls answer: how many, and the slowest.
    DateFor(String, u32),
    Reboot,
    Poweroff,
    Ip,
    Ping(String),
    Fetch(String),
    Resolve(String),
    /// `bus`: the devices nearby on the soft bus.
    Bus,
    /// `cast DEVICE`: project a demo app onto that device's screen.
    Cast(String),
    /// `pair`: show a pairing code here (`None`); `pair DEVICE CODE`: pair
    /// with the device showing that six-digit code.
    Pair(Option<(String, u32)>),
    /// `pair list`: the pairings by code, with their keys.
    Pairings,
    /// `pair forget DEVICE|KEY`: ends a pairing by code, named by its
    /// device's name or its key's fingerprint (as `pair list` shows it).
    Unpair(String),
    /// `ls [-l] [PATH]`: long listing or not, and the path (`""`: here).
    Ls(bool, String),
    Cat(String),
    /// `write PATH TEXT...`: the text is the words joined by one space.
    Write(String, String),
    Mkdir(String),
    Rm(String),
    Rmdir(String),
    Mv(String, String),
    Df,
    Sync,
    /// `cd [PATH]` (`""`: the first mount).
    Cd(String),
    Pwd,
}

/// What a command takes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Args {
    None,
    /// One task, by name or id.
    Task,
    /// One word, named in the usage.
    Word(&'static str),
    /// `[DEVICE [SECONDS]]`.
    Date,
    /// One path.
    Path,
    /// A path, or none.
    OptPath,
    /// Two paths.
    TwoPaths,
    /// A path and text.
    PathText,
    /// `[-l] [PATH]`.
    Ls,
    /// Nothing, or `DEVICE CODE`.
    Pair,
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
    (
        "date",
        Args::Date,
        "date and time (UTC) from the real-time clock, or a paired device's; DEVICE SECONDS: read its clock for that long, and show the slowest call",
    ),
    ("ip", Args::None, "network: interface, MAC, address and DHCP lease"),
    ("ping", Args::Word("HOST"), "ICMP echo to a host, four times"),
    (
        "fetch",
        Args::Word("URL"),
        "HTTP/1.1 GET of an http:// URL; prints the body",
    ),
    ("resolve", Args::Word("NAME"), "IPv4 addresses of a name (DNS)"),
    (
        "bus",
        Args::None,
        "soft bus: this device, the paired devices nearby and what they share",
    ),
    (
        "pair",
        Args::Pair,
        "show a code to pair with; DEVICE CODE: pair with the device showing it; list: the pairings by code; forget DEVICE|KEY: unpair",
    ),
    (
        "cast",
        Args::Word("DEVICE"),
        "project a demo app onto a paired device's screen (if its profile shares compositor)",
    ),
    (
        "ls",
        Args::Ls,
        "list a directory (-l: sizes and dates); DEVICE:/PATH: a paired device's",
    ),
    ("cat", Args::Path, "print a file"),
    (
        "write",
        Args::PathText,
        "create or replace a file with the text and a newline",
    ),
    ("mkdir", Args::Path, "make a directory"),
    ("rm", Args::Path, "remove a file"),
    ("rmdir", Args::Path, "remove an empty directory"),
    ("mv", Args::TwoPaths, "rename or move a file or directory"),
    ("df", Args::None, "mounted file systems: size, used, free"),
    ("sync", Args::None, "write every cached change to the disks"),
    ("cd", Args::OptPath, "change the current directory"),
    ("pwd", Args::None, "print the current directory"),
    ("reboot", Args::None, "restart the machine"),
    ("poweroff", Args::None, "turn the machine off"),
];

/// Splits a line into words: blanks separate them, `'...'` and `"..."`
/// quote (blanks included, the quotes removed); `Err` for an unclosed quote.
pub fn words(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_ascii_whitespace() => {
                if in_word {
                    out.push(core::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(String::from("unclosed quote"));
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `Ok(None)` for a blank line; `Err` is the one-line message to show.
pub fn parse(line: &str) -> Result<Option<Command>, String> {
    let mut words = words(line)?.into_iter();
    let Some(name) = words.next() else {
        return Ok(None);
    };
    let mut args: Vec<String> = words.collect();
    let Some(&(name, kind, _)) = COMMANDS.iter().find(|(n, _, _)| *n == name) else {
        return Err(format!("{name}: unknown command (try 'help')"));
    };
    let usage = |u: &str| format!("usage: {name} {u}");
    let target = match (kind, args.as_slice()) {
        (Args::None, []) => String::new(),
        (Args::None, _) => return Err(format!("{name}: takes no arguments")),
        (Args::Task, []) => return Err(format!("{name}: missing task name or id (usage: {name} NAME|ID)")),
        (Args::Task, [t]) if t.len() > MAX_TARGET => {
            return Err(format!("{name}: '{t}' is too long for a task name"));
        }
        (Args::Task, [t]) => t.clone(),
        (Args::Task, _) => return Err(format!("{name}: too many arguments (usage: {name} NAME|ID)")),
        (Args::Word(w), []) => return Err(format!("{name}: missing {w} (usage: {name} {w})")),
        (Args::Word(_), [t]) => t.clone(),
        (Args::Word(w), _) => return Err(format!("{name}: too many arguments (usage: {name} {w})")),
        (Args::Date, [] | [_] | [_, _]) => args.first().cloned().unwrap_or_default(),
        (Args::Date, _) => return Err(format!("{name}: {}", usage("[DEVICE [SECONDS]]"))),
        (Args::Path, [p]) => p.clone(),
        (Args::Path, _) => return Err(format!("{name}: {}", usage("PATH"))),
        (Args::OptPath, [] | [_]) => args.pop().unwrap_or_default(),
        (Args::OptPath, _) => return Err(format!("{name}: {}", usage("[PATH]"))),
        (Args::TwoPaths, [_, _]) => String::new(),
        (Args::TwoPaths, _) => return Err(format!("{name}: {}", usage("FROM TO"))),
        (Args::PathText, [_, ..]) => String::new(),
        (Args::PathText, []) => return Err(format!("{name}: {}", usage("PATH TEXT..."))),
        (Args::Ls, _) => String::new(),
        (Args::Pair, [] | [_, _]) => String::new(),
        (Args::Pair, [list]) if list == "list" => String::new(),
        (Args::Pair, _) => return Err(format!("{name}: {}", usage(PAIR_USAGE))),
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
        "date" => match args.as_slice() {
            [_, seconds] => match seconds.parse::<u32>() {
                Ok(n @ 1..=MAX_DATE_SECONDS) => Command::DateFor(target, n),
                _ => return Err(format!("date: SECONDS is 1 to {MAX_DATE_SECONDS}, not '{seconds}'")),
            },
            _ => Command::Date(target),
        },
        "ls" => {
            let long = args.first().is_some_and(|a| a == "-l");
            let rest = &args[long as usize..];
            match rest {
                [] => Command::Ls(long, String::new()),
                [p] if !p.starts_with('-') || p == "-" => Command::Ls(long, p.clone()),
                _ => return Err(format!("ls: {}", usage("[-l] [PATH]"))),
            }
        }
        "cat" => Command::Cat(target),
        "write" => {
            let path = args.remove(0);
            Command::Write(path, args.join(" "))
        }
        "mkdir" => Command::Mkdir(target),
        "rm" => Command::Rm(target),
        "rmdir" => Command::Rmdir(target),
        "mv" => {
            let to = args.pop().unwrap_or_default();
            Command::Mv(args.pop().unwrap_or_default(), to)
        }
        "df" => Command::Df,
        "sync" => Command::Sync,
        "cd" => Command::Cd(target),
        "pwd" => Command::Pwd,
        "reboot" => Command::Reboot,
        "ip" => Command::Ip,
        "ping" => Command::Ping(target),
        "fetch" => Command::Fetch(target),
        "resolve" => Command::Resolve(target),
        "bus" => Command::Bus,
        "cast" => Command::Cast(target),
        "pair" => match args.as_slice() {
            [list] if list == "list" => Command::Pairings,
            [forget, device] if forget == "forget" && userlib::services::bus::parse_code(device).is_none() => {
                Command::Unpair(device.clone())
            }
            [device, code] => {
                let Some(code) = userlib::services::bus::parse_code(code) else {
                    return Err(format!("pair: '{code}' is not a six-digit code"));
                };
                Command::Pair(Some((device.clone(), code)))
            }
            _ => Command::Pair(None),
        },
        _ => Command::Poweroff,
    }))
}

/// The longest `date DEVICE SECONDS`.
pub const MAX_DATE_SECONDS: u32 = 60;

/// `pair`'s arguments.
const PAIR_USAGE: &str = "[DEVICE CODE | list | forget DEVICE|KEY]";

/// A paired device's path, `DEVICE:/PATH` (or `DEVICE:PATH`, from its
/// top): the device and the path; `None` for a path of this device.
pub fn device_path(p: &str) -> Option<(&str, &str)> {
    let (device, path) = p.split_once(':')?;
    let ok = !device.is_empty()
        && device
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some((device, path))
}

/// The `help` text: a table of usages and descriptions.
pub fn help() -> String {
    let mut t = crate::table::Table::new(&["COMMAND", "DESCRIPTION"]);
    for (name, args, what) in COMMANDS {
        let usage = match args {
            Args::None => String::from(*name),
            Args::Task => format!("{name} NAME|ID"),
            Args::Word(w) => format!("{name} {w}"),
            Args::Path => format!("{name} PATH"),
            Args::OptPath => format!("{name} [PATH]"),
            Args::TwoPaths => format!("{name} FROM TO"),
            Args::PathText => format!("{name} PATH TEXT..."),
            Args::Ls => format!("{name} [-l] [PATH]"),
            Args::Pair => format!("{name} {PAIR_USAGE}"),
            Args::Date => format!("{name} [DEVICE [SECONDS]]"),
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
        assert_eq!(parse("kill virtio-blk"), Ok(Some(Command::Kill("virtio-blk".into()))));
        assert_eq!(parse("date phone"), Ok(Some(Command::Date("phone".into()))));
        assert_eq!(device_path("phone:/data"), Some(("phone", "/data")));
        assert_eq!(device_path("tv-2:data/x"), Some(("tv-2", "data/x")));
        assert_eq!(device_path("/data/a:b"), None);
        assert_eq!(device_path(":/data"), None);
        assert_eq!(device_path("notes.txt"), None);
        assert!(parse("date phone tv").is_err());
        assert_eq!(parse("date phone 12"), Ok(Some(Command::DateFor("phone".into(), 12))));
        assert!(parse("date phone 0").is_err());
        assert!(parse("date phone 61").is_err());
        assert!(parse("date phone 1 2").is_err());
        assert_eq!(parse("pair"), Ok(Some(Command::Pair(None))));
        assert_eq!(parse("pair forget tv"), Ok(Some(Command::Unpair("tv".into()))));
        assert_eq!(parse("pair list"), Ok(Some(Command::Pairings)));
        // A pairing whose device's name is not known yet: by its key.
        assert_eq!(
            parse("pair forget 0123456789abcdef"),
            Ok(Some(Command::Unpair("0123456789abcdef".into())))
        );
        assert!(parse("pair list tv").is_err());
        assert!(parse("pair tv").is_err());
        assert!(parse("pair forget").is_err());
        assert_eq!(
            parse("pair phone 012345"),
            Ok(Some(Command::Pair(Some(("phone".into(), 12345)))))
        );
        assert!(parse("pair phone 12345").is_err());
        assert!(parse("pair phone").is_err());
        assert!(parse("pair phone 123456 x").is_err());
        assert_eq!(parse("restart\t7"), Ok(Some(Command::Restart("7".into()))));
        for (n, c) in [
            ("help", Command::Help),
            ("devices", Command::Devices),
            ("services", Command::Services),
            ("uptime", Command::Uptime),
            ("date", Command::Date(String::new())),
            ("reboot", Command::Reboot),
            ("ip", Command::Ip),
            ("bus", Command::Bus),
            ("poweroff", Command::Poweroff),
            ("df", Command::Df),
            ("sync", Command::Sync),
            ("pwd", Command::Pwd),
        ] {
            assert_eq!(parse(n), Ok(Some(c)));
        }
    }

    #[test]
    fn file_commands_and_quotes() {
        let s = |x: &str| String::from(x);
        assert_eq!(parse("ls"), Ok(Some(Command::Ls(false, s("")))));
        assert_eq!(parse("ls -l /data"), Ok(Some(Command::Ls(true, s("/data")))));
        assert_eq!(parse("ls 'my dir'"), Ok(Some(Command::Ls(false, s("my dir")))));
        assert_eq!(parse("cat notes.txt"), Ok(Some(Command::Cat(s("notes.txt")))));
        assert_eq!(
            parse("write \"a b.txt\" hello   big 'wide world'"),
            Ok(Some(Command::Write(s("a b.txt"), s("hello big wide world"))))
        );
        assert_eq!(parse("write x"), Ok(Some(Command::Write(s("x"), s("")))));
        assert_eq!(parse("mv a 'b c'"), Ok(Some(Command::Mv(s("a"), s("b c")))));
        assert_eq!(parse("cd"), Ok(Some(Command::Cd(s("")))));
        assert_eq!(parse("cd .."), Ok(Some(Command::Cd(s("..")))));
        assert_eq!(parse("rm ''"), Ok(Some(Command::Rm(s("")))));
        assert_eq!(words("a'b c'd \"e\""), Ok(alloc::vec![s("ab cd"), s("e")]));
        let err = |x| parse(x).unwrap_err();
        assert_eq!(err("cat 'open"), "unclosed quote");
        assert_eq!(err("cat"), "cat: usage: cat PATH");
        assert_eq!(err("cat a b"), "cat: usage: cat PATH");
        assert_eq!(err("mv a"), "mv: usage: mv FROM TO");
        assert_eq!(err("write"), "write: usage: write PATH TEXT...");
        assert_eq!(err("ls -x"), "ls: usage: ls [-l] [PATH]");
        assert_eq!(err("ls a b"), "ls: usage: ls [-l] [PATH]");
        assert_eq!(err("df x"), "df: takes no arguments");
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
        assert_eq!(
            parse("resolve example.org"),
            Ok(Some(Command::Resolve("example.org".into())))
        );
        assert_eq!(parse("ping 10.0.2.2"), Ok(Some(Command::Ping("10.0.2.2".into()))));
        assert_eq!(parse("fetch http://h/"), Ok(Some(Command::Fetch("http://h/".into()))));
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
