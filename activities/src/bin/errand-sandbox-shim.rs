//! The sandbox shim as a binary of its own, for this crate's tests (the `errand` binary carries
//! the same shim as its hidden `sandbox-shim` subcommand).

fn main() -> std::process::ExitCode {
    activities::sandbox::shim::main(std::env::args_os().skip(1).collect())
}
