//! `[crashes]`: where each service's crashes are investigated.

use serde::{Deserialize, Serialize};

/// Where crashes are investigated when the request does not say (`?repo=`, `?agent=`):
/// the `[crashes]` section of the configuration, by service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashSettings {
    /// The agent program of services whose entry names none.
    #[serde(default)]
    pub agent: Option<String>,
    /// One entry per service (`[[crashes.services]]`).
    #[serde(default)]
    pub services: Vec<CrashService>,
}

impl CrashSettings {
    /// The entry of a service (names match exactly).
    pub fn service(&self, name: &str) -> Option<&CrashService> {
        self.services.iter().find(|s| s.service == name)
    }

    /// Refuses entries that cannot be used: an empty service or repository, a service named
    /// twice.
    pub fn check(&self) -> Result<(), String> {
        for (i, entry) in self.services.iter().enumerate() {
            if entry.service.trim().is_empty() || entry.repo.trim().is_empty() {
                return Err(format!(
                    "crashes.services[{i}]: service and repo must not be empty"
                ));
            }
            if self.services[..i]
                .iter()
                .any(|e| e.service == entry.service)
            {
                return Err(format!(
                    "crashes.services: service {:?} is mapped twice",
                    entry.service
                ));
            }
        }
        Ok(())
    }
}

/// Where one service's crashes are investigated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashService {
    /// The crash's service, as the group shows it.
    pub service: String,
    /// Git URL or path of the repository investigations work on.
    pub repo: String,
    /// The branch investigations start from; default `main`.
    #[serde(default)]
    pub base: Option<String>,
    /// The agent program; default `[crashes] agent`.
    #[serde(default)]
    pub agent: Option<String>,
    /// The playbook investigations follow; default `investigate-crash`.
    #[serde(default)]
    pub playbook: Option<String>,
}
