//! What one sandboxed agent run gets of the gateway: a token of its own, the environment that
//! points its SDKs at the gateway inside the sandbox, and, when it ends, whether a call was
//! refused (which ends the task for its budget).

use std::path::{Path, PathBuf};

use workflows::cost::BudgetRefusal;

use crate::cost_guard::CallContext;
use crate::sandbox::GATEWAY_PORT;

use super::{GatewayHandle, RunSummary, TokenLease};

/// A run's access to the gateway; `finish` it after the run (dropping it also revokes).
#[derive(Debug)]
pub struct RunAccess {
    lease: TokenLease,
    socket: PathBuf,
}

impl GatewayHandle {
    /// Registers a token for `call`'s run.
    pub fn open_run(&self, call: CallContext) -> std::io::Result<RunAccess> {
        Ok(RunAccess {
            lease: self.tokens().register(call)?,
            socket: self.socket_path().to_owned(),
        })
    }
}

impl RunAccess {
    /// The gateway's socket on the host, for `SandboxSpec::model_gateway`.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Base URLs of the gateway as the sandbox reaches it, and the run's token as the API key
    /// (the variables the OpenAI and Anthropic SDKs, Codex and Claude Code read).
    pub fn env(&self) -> Vec<(String, String)> {
        let base = format!("http://127.0.0.1:{GATEWAY_PORT}");
        let token = self.lease.token();
        [
            ("ERRAND_MODEL_BASE_URL", base.clone()),
            ("OPENAI_BASE_URL", format!("{base}/v1")),
            ("ANTHROPIC_BASE_URL", base),
            ("OPENAI_API_KEY", token.to_owned()),
            ("ANTHROPIC_API_KEY", token.to_owned()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value))
        .collect()
    }

    /// Revokes the token; what the gateway saw of the run.
    pub fn finish(self) -> RunSummary {
        self.lease.finish()
    }
}

impl RunSummary {
    /// The refusal the agent run reports to the workflow, if a call was refused.
    pub fn budget_refusal(&self) -> Option<BudgetRefusal> {
        self.refusal.as_ref().map(|refusal| BudgetRefusal {
            budget: refusal.budget.clone(),
            message: refusal.message.clone(),
        })
    }
}
