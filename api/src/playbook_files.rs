//! Reading playbooks from the playbooks directory: one `<name>.yaml` per playbook. Parsing and
//! resolving are `workflows::playbook`'s; this is only the files.

use std::io::ErrorKind;
use std::path::Path;

use workflows::playbook::Playbook;

use crate::admission::check_playbook_name;
use crate::dto::PlaybookSummary;
use crate::error::ApiError;

/// Playbooks are small; anything larger is not one.
pub const MAX_PLAYBOOK_BYTES: u64 = 1024 * 1024;

/// The file name of a playbook.
pub fn file_name(name: &str) -> String {
    format!("{name}.yaml")
}

/// The content of playbook `name`; 404 naming it when there is no such file.
pub async fn read(dir: &Path, name: &str) -> Result<String, ApiError> {
    check_playbook_name(name)?;
    let path = dir.join(file_name(name));
    let not_found = || ApiError::not_found(format!("playbook {name} not found")).with_field("name");
    let metadata = match tokio::fs::metadata(&path).await {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == ErrorKind::NotFound => return Err(not_found()),
        Err(err) => {
            return Err(ApiError::internal(
                &format!("cannot read playbook {name}"),
                &err,
            ));
        }
    };
    if !metadata.is_file() {
        return Err(not_found());
    }
    if metadata.len() > MAX_PLAYBOOK_BYTES {
        return Err(ApiError::invalid(
            "name",
            format!("playbook {name} is larger than {MAX_PLAYBOOK_BYTES} bytes"),
        ));
    }
    tokio::fs::read_to_string(&path)
        .await
        .map_err(|err| ApiError::internal(&format!("cannot read playbook {name}"), &err))
}

/// Every `<name>.yaml` with a valid name, by name; a playbook that does not parse is listed
/// with its error. A missing directory holds no playbooks.
pub async fn list(dir: &Path) -> Result<Vec<PlaybookSummary>, ApiError> {
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => {
            return Err(ApiError::internal(
                "cannot list the playbooks directory",
                &err,
            ));
        }
    };
    let mut names = Vec::new();
    loop {
        let entry = match entries.next_entry().await {
            Ok(Some(entry)) => entry,
            Ok(None) => break,
            Err(err) => {
                return Err(ApiError::internal(
                    "cannot list the playbooks directory",
                    &err,
                ));
            }
        };
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str().and_then(|f| f.strip_suffix(".yaml")) else {
            continue;
        };
        if check_playbook_name(name).is_ok() {
            names.push(name.to_string());
        }
    }
    names.sort();
    let mut summaries = Vec::with_capacity(names.len());
    for name in names {
        let summary = match read(dir, &name).await {
            Ok(content) => match Playbook::parse(&file_name(&name), &content) {
                Ok(playbook) => PlaybookSummary {
                    name,
                    description: Some(playbook.description),
                    error: None,
                },
                Err(err) => PlaybookSummary {
                    name,
                    description: None,
                    error: Some(err.to_string()),
                },
            },
            // Vanished since the listing, or not a regular file: not a playbook.
            Err(err) if err.status == axum::http::StatusCode::NOT_FOUND => continue,
            Err(err) => PlaybookSummary {
                name,
                description: None,
                error: Some(err.message),
            },
        };
        summaries.push(summary);
    }
    Ok(summaries)
}
