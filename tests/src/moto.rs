//! A real AWS emulator for DynamoDB and Secrets Manager: moto's server
//! (`pip install 'moto[server]'`), shared by all tests of one test binary.

use std::fs::File;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aws_config::{Region, SdkConfig};
use aws_sdk_dynamodb::error::DisplayErrorContext;
use tokio::sync::OnceCell;

use crate::{process, random};

const REGION: &str = "us-east-1";
const ACCESS_KEY: &str = "testing";
const SECRET_KEY: &str = "testing";
/// moto imports every service backend at start; on a loaded 2-core machine that takes a while.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const INSTALL_HINT: &str =
    "install it with `pip install 'moto[server]'` (or point MOTO_ENDPOINT at a running moto)";

/// A moto server endpoint. Clients are built per call: an SDK client keeps connections on the
/// tokio runtime that opened them, and every `#[tokio::test]` has its own runtime.
pub struct Moto {
    endpoint: String,
}

static SHARED: OnceCell<Moto> = OnceCell::const_new();

impl Moto {
    /// The server at `MOTO_ENDPOINT`, or else one started for this test binary, which the
    /// kernel kills when the test process ends.
    pub async fn shared() -> &'static Moto {
        SHARED
            .get_or_init(|| async {
                match std::env::var("MOTO_ENDPOINT") {
                    Ok(endpoint) => {
                        let moto = Moto { endpoint };
                        moto.wait_ready(|| None).await;
                        moto
                    }
                    Err(_) => Moto::start().await,
                }
            })
            .await
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Variables pointing a function's AWS SDK at this moto (for `LambdaProcess::start`).
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
            ("AWS_REGION", REGION),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    pub async fn sdk_config(&self) -> SdkConfig {
        lago_sync::transport::aws_config_loader()
            .endpoint_url(&self.endpoint)
            .region(Region::new(REGION))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                ACCESS_KEY, SECRET_KEY, None, None, "moto",
            ))
            .load()
            .await
    }

    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk_config().await)
    }

    pub async fn secrets(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.sdk_config().await)
    }

    /// The project's idempotency table, as template.yaml defines it: partition key `pk` (S)
    /// only, on-demand billing, TTL on `expires_at`.
    /// Creates table `name` with the schema of template.yaml (the library's own definition).
    pub async fn create_table(&self, name: &str) {
        lago_sync::store::create_table(&self.dynamodb().await, name)
            .await
            .unwrap_or_else(|e| panic!("create table {name}: {e}"));
    }

    /// Creates secret `name` holding `json`; returns its ARN.
    pub async fn create_secret(&self, name: &str, json: &str) -> String {
        let created = self
            .secrets()
            .await
            .create_secret()
            .name(name)
            .secret_string(json)
            .send()
            .await
            .unwrap_or_else(|e| panic!("create secret {name}: {}", DisplayErrorContext(e)));
        created.arn().expect("created secret has an ARN").to_owned()
    }

    /// Stores a new current version of secret `name`, as a rotation does.
    pub async fn put_secret(&self, name: &str, json: &str) {
        self.secrets()
            .await
            .put_secret_value()
            .secret_id(name)
            .secret_string(json)
            .send()
            .await
            .unwrap_or_else(|e| panic!("put secret {name}: {}", DisplayErrorContext(e)));
    }

    async fn start() -> Moto {
        let port = unused_port();
        let log_path = std::env::temp_dir().join(format!("moto-server-{port}.log"));
        let exited = spawn_server(port, &log_path);
        let moto = Moto {
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        moto.wait_ready(|| {
            exited.get().map(|status| {
                format!(
                    "moto_server exited ({status}) before answering; {INSTALL_HINT}. Its output:\n{}",
                    std::fs::read_to_string(&log_path).unwrap_or_default()
                )
            })
        })
        .await;
        moto
    }

    /// Polls until moto answers HTTP; `failed` reports why waiting is pointless.
    async fn wait_ready(&self, failed: impl Fn() -> Option<String>) {
        let http = reqwest::Client::new();
        let probe = format!("{}/moto-api/", self.endpoint);
        let started = Instant::now();
        loop {
            if http.get(&probe).send().await.is_ok() {
                return;
            }
            if let Some(reason) = failed() {
                panic!("{reason}");
            }
            if started.elapsed() > READY_TIMEOUT {
                panic!(
                    "moto at {} did not answer within {READY_TIMEOUT:?}; {INSTALL_HINT}",
                    self.endpoint
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Runs `moto_server` from a thread that lives as long as the process, so the parent-death
/// signal fires only when the test process ends. Output goes to `log`. The returned cell is set
/// if the server exits.
fn spawn_server(port: u16, log: &Path) -> Arc<OnceLock<ExitStatus>> {
    let output = File::create(log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
    let mut cmd = Command::new("moto_server");
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(output.try_clone().expect("duplicate log file handle"))
        .stderr(output);
    process::die_with_parent(&mut cmd);

    let exited = Arc::new(OnceLock::new());
    let (spawned, spawn_result) = std::sync::mpsc::channel();
    let exit_cell = exited.clone();
    std::thread::Builder::new()
        .name("moto-server".into())
        .spawn(move || match cmd.spawn() {
            Ok(mut child) => {
                let _ = spawned.send(Ok(()));
                if let Ok(status) = child.wait() {
                    let _ = exit_cell.set(status);
                }
            }
            Err(e) => {
                let _ = spawned.send(Err(e));
            }
        })
        .expect("start the moto-server thread");
    match spawn_result
        .recv()
        .expect("moto-server thread reports its spawn")
    {
        Ok(()) => exited,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("moto_server is not on PATH; {INSTALL_HINT}")
        }
        Err(e) => panic!("spawn moto_server: {e}"),
    }
}

/// `prefix` plus a random suffix, valid as a DynamoDB table or secret name, so tests sharing one
/// moto never collide.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", random::hex(12))
}

/// An `http://127.0.0.1:<port>` URL where nothing listens, for outage tests.
pub fn closed_endpoint() -> String {
    format!("http://127.0.0.1:{}", unused_port())
}

/// A port the OS just handed out and that is free again (another process could take it, but
/// the OS does not reuse it right away).
fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind an ephemeral port")
        .port()
}
