//! The builtin agent loop as a binary of its own, for this crate's tests (the `errand` binary
//! carries the same loop as its hidden `agent-loop` subcommand).

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let code = activities::agents::builtin::main(std::env::args_os().skip(1).collect()).await;
    std::process::exit(code)
}
