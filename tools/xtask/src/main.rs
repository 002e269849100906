//! `cargo xtask`: Kestrel's build tool. The command line is declared in
//! [`cli`]; each subcommand lives in its own module; this file only dispatches.

mod bench;
mod build;
mod cli;
mod disk;
mod dt;
mod fetch;
mod firmware;
mod flash;
mod fresh;
mod fuzz;
mod netbench;
mod profile;
mod qemu;
mod report;
mod screenshot;
mod sdimage;
mod setup;
mod test;
mod uboot;
mod uefi;
mod user;
mod util;

use clap::Parser;
use cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Build(a) => build::main(&a).map(|()| ExitCode::SUCCESS),
        Command::Run(a) if a.firmware().is_some() => firmware::run(&a).map(|()| ExitCode::SUCCESS),
        Command::Run(a) => qemu::main(&a).map(|()| ExitCode::SUCCESS),
        Command::Screenshot(a) => screenshot::main(&a).map(|()| ExitCode::SUCCESS),
        Command::Image(a) => sdimage::main(&a).map(|()| ExitCode::SUCCESS),
        Command::Flash(a) => flash::main(&a).map(|()| ExitCode::SUCCESS),
        Command::User(a) => user::main(&a).map(|()| ExitCode::SUCCESS),
        Command::Dt(a) => dt::main(&a),
        Command::Test(a) => test::main(&a),
        Command::Fuzz(a) => fuzz::main(&a.target, a.time).map(|()| ExitCode::SUCCESS),
        Command::Bench(a) => bench::main(&a),
        Command::Fetch => fetch::main().map(|()| ExitCode::SUCCESS),
        Command::Setup => setup::main().map(|()| ExitCode::SUCCESS),
        Command::Doctor => setup::doctor(),
        Command::FreshCheck(a) => fresh::main(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
