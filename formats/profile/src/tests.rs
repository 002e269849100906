use super::*;
use alloc::string::ToString;
use alloc::vec;

const PHONE: &str = r#"
name = "phone"
description = "Handset"
[display]
width = 540
height = 1170
[qemu]
machine = "virt"
args = ["-drive", "file=@DISK@"]
disk = "2M"
[[driver]]
program = "uart-pl011"
match = ["arm,pl011"]
priority = 26
memory = "256K"
provides = ["console"]
[[driver]]
program = "virtio-blk"
match = ["virtio,device2"]
priority = 24
memory = 1048576
provides = ["blk*"]
uses = ["console"]
[[driver]]
program = "rpi-mbox-fb"
match = ["brcm,bcm2835-mbox"]
priority = 24
memory = "512K"
device_memory = [{ base = 0x3c000000, size = "64M" }]
[[server]]
program = "shell"
priority = 12
memory = "256K"
control = true
uses = ["console", "blk"]
"#;

fn phone() -> Profile {
    let p: Profile = toml::from_str(PHONE).unwrap();
    p.check().unwrap();
    p
}

fn problem_of(text: &str) -> Problem {
    let p: Profile = toml::from_str(text).unwrap();
    p.check().unwrap_err()
}

#[test]
fn reads_toml_and_round_trips_the_binary_form() {
    let p = phone();
    assert_eq!(
        p.display,
        Some(Display {
            width: 540,
            height: 1170,
            glyphs: Glyphs::All,
        })
    );
    assert_eq!(p.qemu.as_ref().unwrap().disk, Some(2 << 20));
    assert_eq!(p.qemu.as_ref().unwrap().card, None);
    let card: Profile = toml::from_str(&PHONE.replace("disk = \"2M\"", "card = \"rpi4\"")).unwrap();
    card.check().unwrap();
    assert_eq!(card.qemu.unwrap().card, Some(Card::Rpi4));
    let e = toml::from_str::<Profile>(&PHONE.replace("disk = \"2M\"", "card = \"rpi5\"")).unwrap_err();
    assert!(e.to_string().contains("unknown variant `rpi5`, expected `rpi4`"), "{e}");
    assert_eq!(p.drivers[0].memory, 256 << 10);
    assert_eq!(p.drivers[1].memory, 1 << 20);
    assert_eq!(
        p.drivers[2].device_memory,
        [Range {
            base: 0x3c00_0000,
            size: 64 << 20
        }]
    );
    assert!(p.servers[0].control && p.servers[0].args.is_empty());
    let bytes = encode(&p);
    assert_eq!(decode(&bytes).unwrap(), p);
    // Truncated or garbage bytes are an error, not a panic.
    for n in 0..bytes.len() {
        let _ = decode(&bytes[..n]);
    }
    assert!(decode(b"garbage").is_err());
    assert_eq!(decode_name(&bytes).as_deref(), Some(p.name.as_str()));
    assert_eq!(decode_name(b"\x03a b"), None, "not a profile name");
    assert_eq!(decode_name(b""), None);
}

#[test]
fn decode_checks_the_rules_too() {
    let mut p = phone();
    p.servers[0].priority = 31;
    let e = decode(&encode(&p)).unwrap_err();
    assert_eq!(e.to_string(), "`priority` in [[server]] #1: is 31, outside 1..=30");
}

#[test]
fn routes() {
    let p = phone();
    assert_eq!(p.provider_of("console").unwrap().program, "uart-pl011");
    assert_eq!(p.provider_of("blk3").unwrap().program, "virtio-blk");
    assert!(p.provider_of("blkx").is_none() && p.provider_of("display").is_none());
    let shell = &p.servers[0];
    assert!(shell.uses("console") && shell.uses("blk") && !shell.uses("blk1") && !shell.uses("rng"));
    assert!(!shell.provides("console"));
    assert!(name_matches("blk*", "blk") && name_matches("blk*", "blk12") && !name_matches("blk*", "blkx"));
    assert!(!name_matches("blk", "blk1") && !name_matches("console", "consol"));
}

#[test]
fn route_rules() {
    let e = problem_of(&PHONE.replace("uses = [\"console\", \"blk\"]", "uses = [\"display\"]"));
    assert_eq!(
        e.place,
        Some(Place::Task {
            kind: Kind::Server,
            index: 0,
            key: "uses"
        })
    );
    assert!(e.message.contains("no task of the profile provides `display`"), "{e}");
    let e = problem_of(
        &PHONE
            .replace("uses = [\"console\"]", "uses = [\"console\"]\nprovides = [\"console\"]")
            .replace("provides = [\"blk*\"]\n", ""),
    );
    assert!(e.message.contains("also provided by"), "{e}");
    let e = problem_of(&PHONE.replace("control = true", "provides = [\"blk2\"]"));
    assert_eq!(
        e.to_string(),
        "`provides` in [[driver]] #2: `blk*` is also provided by `shell`: a service has one provider"
    );
    let e = problem_of(&PHONE.replace("provides = [\"blk*\"]", "provides = [\"b k\"]"));
    assert!(e.message.contains("not a service name"), "{e}");
}

#[test]
fn device_memory_rules() {
    let p = phone();
    let fb = &p.drivers[2];
    assert!(fb.may_map(0x3c10_0000, 0x1000) && fb.may_map(0x3c00_0000, 64 << 20));
    assert!(
        !fb.may_map(0x3bff_f000, 0x2000) && !fb.may_map(0x4000_0000, 1) && !fb.may_map(0x3c00_0000, (64 << 20) + 1)
    );
    assert!(!fb.may_map(u64::MAX - 10, 100));
    assert!(
        !p.drivers[0].may_map(0x3c10_0000, 0x1000),
        "nothing declared, nothing granted"
    );
    let e = problem_of(&PHONE.replace("base = 0x3c000000", "base = 0x3c000010"));
    assert!(e.message.contains("whole pages"), "{e}");
    let e = problem_of(&PHONE.replace("control = true", "device_memory = [{ base = 0, size = 4096 }]"));
    assert!(e.message.contains("only a [[driver]]"), "{e}");
}

#[test]
fn task_rules() {
    for (from, to, want) in [
        (
            "priority = 26",
            "priority = 0",
            "`priority` in [[driver]] #1: is 0, outside 1..=30",
        ),
        (
            "memory = 1048576",
            "memory = 1000",
            "`memory` in [[driver]] #2: is 1000 bytes: it must be a positive multiple of 4 KiB",
        ),
        (
            "match = [\"arm,pl011\"]",
            "match = []",
            "`match` in [[driver]] #1: is empty or missing: a driver must match a device",
        ),
        (
            "control = true",
            "match = [\"x\"]",
            "`match` in [[server]] #1: only a [[driver]] matches devices",
        ),
        (
            "program = \"shell\"",
            "program = \"uart-pl011\"",
            "`program` in [[server]] #1: program `uart-pl011` is listed twice",
        ),
        (
            "program = \"shell\"",
            "program = \"init\"",
            "`program` in [[server]] #1: `init` is started by the kernel, not by a profile",
        ),
        (
            "width = 540",
            "width = 8193",
            "`width` in [display]: is 8193, outside 1..=8192",
        ),
        (
            "machine = \"virt\"",
            "machine = \"virt\"\nsmp = 9",
            "`smp` in [qemu]: is 9, outside 1..=8",
        ),
        (
            "args = [\"-drive\"",
            "args = [\"-m\", \"1G\", \"-drive\"",
            "`args` in [qemu]: must not contain -m: use `memory`",
        ),
        (
            "file=@DISK@",
            "file=@DSK@",
            "`args` in [qemu]: unknown placeholder in \"file=@DSK@\" (only @DISK@)",
        ),
        (
            "file=@DISK@",
            "file=x",
            "`disk` in [qemu]: is set but no argument uses @DISK@",
        ),
        (
            "disk = \"2M\"",
            "disk = \"1000\"",
            "`disk` in [qemu]: must be a positive multiple of 512 bytes",
        ),
        (
            "disk = \"2M\"",
            "disk = \"2M\"\ncard = \"rpi4\"",
            "`disk` in [qemu]: must not be set with `card`: the card's layout fixes its size",
        ),
        (
            "args = [\"-drive\", \"file=@DISK@\"]\ndisk = \"2M\"",
            "args = [\"-drive\", \"file=x\"]\ncard = \"rpi4\"",
            "`card` in [qemu]: is set but no argument uses @DISK@",
        ),
    ] {
        let text = PHONE.replace(from, to);
        assert_ne!(text, PHONE, "{from}");
        assert_eq!(problem_of(&text).to_string(), want);
    }
    assert!(
        problem_of(&PHONE.replace("program = \"shell\"", "program = \"Shell!\""))
            .message
            .contains("not a program name")
    );
    let long = format!("program = \"{}\"", "x".repeat(32));
    assert!(problem_of(&PHONE.replace("program = \"shell\"", &long))
        .message
        .contains("at most 31"));
}

#[test]
fn sizes() {
    assert_eq!(parse_size("256K").unwrap(), 262144);
    assert_eq!(parse_size("1MiB").unwrap(), 1 << 20);
    assert_eq!(parse_size("4096").unwrap(), 4096);
    assert_eq!(parse_size("4096B").unwrap(), 4096);
    assert!(parse_size("").is_err() && parse_size("K").is_err() && parse_size("99999999999G").is_err());
    assert!(parse_size("12Q").unwrap_err().contains("unknown unit `Q`"));
    assert_eq!(parse_qemu_memory("4M").unwrap(), 4 << 20);
    assert_eq!(parse_qemu_memory("512").unwrap(), 512 << 20);
    assert_eq!(parse_qemu_memory("2G").unwrap(), 2 << 30);
    let e = toml::from_str::<Profile>(&PHONE.replace("memory = \"256K\"", "memory = \"lots\"")).unwrap_err();
    assert!(e.message().contains("`lots` is not a size"), "{e}");
    let _ = vec![0u8];
}

#[test]
fn shared_services() {
    let p = phone();
    assert!(p.shared.is_empty(), "nothing is shared unless listed");
    let bus = "[[server]]\nprogram = \"bus\"\npriority = 12\nmemory = \"1M\"\nuses = [\"console\", \"blk\"]\n";
    let shared = |list: &str| PHONE.replacen("\n[", &format!("\nshared = {list}\n\n["), 1) + bus;
    let ok: Profile = toml::from_str(&shared("[\"console\", \"blk\"]")).unwrap();
    assert_eq!(ok.shared, ["console", "blk"]);
    ok.check().unwrap();
    assert_eq!(decode(&encode(&ok)).unwrap().shared, ["console", "blk"]);
    for (list, why) in [
        ("[\"display\"]", "no task of the profile provides `display`"),
        ("[\"blk*\"]", "not a service name"),
        ("[\"a b\"]", "not a service name"),
        ("[\"blk\", \"blk\"]", "listed twice"),
    ] {
        let e = problem_of(&shared(list));
        assert_eq!(e.place, Some(Place::Top("shared")), "{list}");
        assert!(e.message.contains(why), "{list}: {e}");
    }
    // The bus serves what is shared under its own routes.
    let unrouted = shared("[\"console\"]").replace("uses = [\"console\", \"blk\"]\n", "uses = [\"blk\"]\n");
    let e = problem_of(&unrouted);
    assert!(e.message.contains("its `uses` must list it"), "{e}");
    assert!(matches!(e.place, Some(Place::Task { key: "uses", .. })), "{e}");
    let no_bus = PHONE.replacen("\n[", "\nshared = [\"console\"]\n\n[", 1);
    assert!(problem_of(&no_bus).message.contains("runs no `bus` task"));
    let many: Vec<String> = (0..=MAX_SHARED).map(|i| format!("\"blk{i}\"")).collect();
    assert!(problem_of(&shared(&format!("[{}]", many.join(", "))))
        .message
        .contains("at most"));
}
