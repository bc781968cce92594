//! The `command` adapter: any program, started as its argv in the workspace; it may report
//! progress, usage and a summary with the JSON-lines protocol (`protocol`).

use super::{AdapterError, AgentAdapter, AgentEvent, Invocation, RunInputs, protocol};

#[derive(Debug, Clone)]
pub struct Command {
    pub command: Vec<String>,
}

impl AgentAdapter for Command {
    fn command(&self, _run: &RunInputs) -> Result<Invocation, AdapterError> {
        if self.command.first().is_none_or(|p| p.trim().is_empty()) {
            return Err(AdapterError::BadSpec {
                field: "command".into(),
                message: "expected the program to run and its arguments".into(),
            });
        }
        Ok(Invocation {
            argv: self.command.clone(),
            env: Vec::new(),
        })
    }

    fn parse_line(&self, line: &str) -> Vec<AgentEvent> {
        protocol::parse(line)
    }
}
