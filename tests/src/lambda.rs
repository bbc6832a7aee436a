//! Runs a built function binary the way Lambda does: a clean environment, Lambda's reserved
//! variables, and an emulated Runtime API
//! (<https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>) that the binary's own
//! runtime client polls. End-to-end tests thus exercise the real `bootstrap` without Docker.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex as SyncMutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::task::JoinHandle;

use crate::capture::Capture;
use crate::{json_or_text, process, random};

const DEFAULT_REGION: &str = "us-east-1";
const ACCOUNT_ID: &str = "123456789012";
/// Lambda's default is 3 s; the project's functions are configured longer and tests run on a
/// busy 2-core machine, so give handlers room before their context deadline bites.
const DEFAULT_FUNCTION_TIMEOUT: Duration = Duration::from_secs(20);

/// How one invocation ended, as the Runtime API saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Invocation {
    /// Body the function POSTed to `/invocation/{id}/response` (JSON, or a JSON string if the
    /// bytes were not JSON).
    Response(Value),
    /// Body POSTed to `/invocation/{id}/error`: `{"errorType", "errorMessage"}` from Rust runtimes.
    Error(Value),
    /// The function neither answered nor failed within the caller's timeout.
    Timeout,
}

struct Pending {
    request_id: String,
    event: Value,
    deadline_ms: u128,
    outcome: oneshot::Sender<Invocation>,
}

/// State shared by the Runtime API handlers.
struct RuntimeApi {
    queue: Mutex<mpsc::UnboundedReceiver<Pending>>,
    in_flight: SyncMutex<HashMap<String, oneshot::Sender<Invocation>>>,
    init_error: SyncMutex<Option<Value>>,
    first_next: OnceLock<Instant>,
    function_arn: String,
}

/// A function binary running under the emulated Runtime API. The child is killed on drop.
pub struct LambdaProcess {
    api: Arc<RuntimeApi>,
    queue: mpsc::UnboundedSender<Pending>,
    turn: Mutex<()>,
    child: Mutex<Child>,
    output: Arc<Capture>,
    spawned_at: Instant,
    function_timeout: Duration,
    server: JoinHandle<()>,
}

impl LambdaProcess {
    /// Starts `binary` with only `PATH`, Lambda's own variables and `env` (which may override
    /// Lambda's, e.g. `AWS_LAMBDA_LOG_FORMAT`, but never `AWS_LAMBDA_RUNTIME_API`).
    ///
    /// Keep the process within the test that made it: the child is tied to the spawning thread.
    pub async fn start(binary: &Path, env: &[(String, String)]) -> LambdaProcess {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Runtime API listener");
        let addr = listener.local_addr().expect("Runtime API address");

        let name = binary
            .file_name()
            .and_then(|n| n.to_str())
            .expect("binary path ends in a UTF-8 file name")
            .to_owned();
        let region = env
            .iter()
            .find(|(k, _)| k == "AWS_REGION")
            .map_or(DEFAULT_REGION, |(_, v)| v.as_str());
        let (queue, receiver) = mpsc::unbounded_channel();
        let api = Arc::new(RuntimeApi {
            queue: Mutex::new(receiver),
            in_flight: SyncMutex::default(),
            init_error: SyncMutex::default(),
            first_next: OnceLock::new(),
            function_arn: format!("arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}"),
        });
        let server = tokio::spawn(serve(listener, api.clone()));

        let (output, output_pipe) = Capture::start().expect("create the output pipe");
        let mut cmd = Command::new(binary);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .envs(lambda_env(&name, region))
            .envs(env.iter().map(|(k, v)| (k, v)))
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::from(
                output_pipe.try_clone().expect("duplicate the output pipe"),
            ))
            .stderr(Stdio::from(output_pipe))
            .kill_on_drop(true);
        process::die_with_parent(cmd.as_std_mut());
        let spawned_at = Instant::now();
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));

        LambdaProcess {
            api,
            queue,
            turn: Mutex::new(()),
            child: Mutex::new(child),
            output,
            spawned_at,
            function_timeout: DEFAULT_FUNCTION_TIMEOUT,
            server,
        }
    }

    /// Sets the function's configured timeout, which only shapes the deadline header the
    /// function sees (its context's remaining time).
    pub fn with_function_timeout(mut self, timeout: Duration) -> LambdaProcess {
        self.function_timeout = timeout;
        self
    }

    /// Delivers `event` to the function's next `/invocation/next` and waits up to `timeout`
    /// (counted once it is this call's turn) for its answer. Concurrent calls queue up and run
    /// one at a time, in order, as in a real sandbox.
    ///
    /// Unlike Lambda, a timeout does not reset the sandbox: the function keeps working on the
    /// event, its late answer is dropped, and the next event waits until it polls again.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Invocation {
        let _turn = self.turn.lock().await;
        let deadline = SystemTime::now() + self.function_timeout;
        let (outcome, answer) = oneshot::channel();
        let pending = Pending {
            request_id: random::uuid(),
            event,
            deadline_ms: deadline
                .duration_since(UNIX_EPOCH)
                .expect("clock after 1970")
                .as_millis(),
            outcome,
        };
        self.queue
            .send(pending)
            .expect("Runtime API server is running");
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(invocation)) => invocation,
            _ => Invocation::Timeout,
        }
    }

    /// Body of the function's `POST /runtime/init/error`, if it reported one.
    pub fn init_error(&self) -> Option<Value> {
        lock(&self.api.init_error).clone()
    }

    /// Waits up to `timeout` for the process to exit (e.g. a start-up failure).
    pub async fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.lock().await;
        tokio::time::timeout(timeout, child.wait()).await.ok()?.ok()
    }

    /// Everything the process wrote to stdout and stderr so far, interleaved as written;
    /// includes all it wrote before answering an invocation or exiting.
    pub fn logs(&self) -> String {
        self.output.text()
    }

    /// Init duration: from spawn to the function's first `/invocation/next`, once it happened.
    pub fn time_to_first_next(&self) -> Option<Duration> {
        self.api
            .first_next
            .get()
            .map(|at| at.duration_since(self.spawned_at))
    }
}

impl Drop for LambdaProcess {
    fn drop(&mut self) {
        // The child itself is killed by `kill_on_drop`.
        self.server.abort();
    }
}

/// Where cargo put workspace binary `name`: the profile directory of the running
/// executable — a test (`<target>/<profile>/deps/<test>-<hash>`) or a workspace binary
/// (`<target>/<profile>/<bin>`) — else `$CARGO_TARGET_DIR/<profile>`.
pub fn binary_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("path of the running executable");
    let dir = exe.parent().expect("the executable lives in a directory");
    let profile_dir = if dir.ends_with("deps") {
        dir.parent().expect("deps has a parent")
    } else {
        dir
    };
    let mut candidates = vec![profile_dir.join(name)];
    if let (Some(target_dir), Some(profile)) = (
        std::env::var_os("CARGO_TARGET_DIR"),
        profile_dir.file_name(),
    ) {
        candidates.push(PathBuf::from(target_dir).join(profile).join(name));
    }
    candidates
        .iter()
        .find(|path| path.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "binary `{name}` not found (looked at {candidates:?}); \
                 build the functions first: cargo build --workspace --bins"
            )
        })
}

/// What Lambda itself sets in a sandbox; `AWS_REGION` and the rest can be overridden by the test.
fn lambda_env(name: &str, region: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_REGION", region.to_owned()),
        ("AWS_DEFAULT_REGION", region.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".to_owned()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            format!("local/[$LATEST]{}", random::hex(32)),
        ),
        ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand".to_owned()),
        ("_HANDLER", "bootstrap".to_owned()),
        ("TZ", ":UTC".to_owned()),
    ]
}

/// A handler that panicked while holding a lock must not hide the state from the test.
fn lock<T>(mutex: &SyncMutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

async fn serve(listener: tokio::net::TcpListener, api: Arc<RuntimeApi>) {
    let router = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
        .route("/2018-06-01/runtime/init/error", post(init_error))
        .with_state(api);
    let _ = axum::serve(listener, router).await;
}

/// Long-polls until the test invokes; events the caller already gave up on are skipped.
async fn next(State(api): State<Arc<RuntimeApi>>) -> Response {
    api.first_next.get_or_init(Instant::now);
    let mut queue = api.queue.lock().await;
    while let Some(pending) = queue.recv().await {
        if pending.outcome.is_closed() {
            continue;
        }
        lock(&api.in_flight).insert(pending.request_id.clone(), pending.outcome);
        let headers = [
            ("lambda-runtime-aws-request-id", pending.request_id),
            (
                "lambda-runtime-deadline-ms",
                pending.deadline_ms.to_string(),
            ),
            (
                "lambda-runtime-invoked-function-arn",
                api.function_arn.clone(),
            ),
            ("lambda-runtime-trace-id", trace_id()),
        ];
        return (headers, Json(pending.event)).into_response();
    }
    // The LambdaProcess is gone; Lambda would be tearing the sandbox down too.
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

async fn response(api: State<Arc<RuntimeApi>>, id: UrlPath<String>, body: Bytes) -> Response {
    complete(&api, &id, Invocation::Response(json_or_text(&body)))
}

async fn error(api: State<Arc<RuntimeApi>>, id: UrlPath<String>, body: Bytes) -> Response {
    complete(&api, &id, Invocation::Error(json_or_text(&body)))
}

async fn init_error(State(api): State<Arc<RuntimeApi>>, body: Bytes) -> Response {
    *lock(&api.init_error) = Some(json_or_text(&body));
    accepted()
}

fn complete(api: &RuntimeApi, request_id: &str, invocation: Invocation) -> Response {
    let Some(outcome) = lock(&api.in_flight).remove(request_id) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"})),
        )
            .into_response();
    };
    // The caller may have timed out meanwhile; the function still did nothing wrong.
    let _ = outcome.send(invocation);
    accepted()
}

fn accepted() -> Response {
    (StatusCode::ACCEPTED, Json(json!({"status": "OK"}))).into_response()
}

/// X-Ray trace header in the shape Lambda passes it (`Root=1-<epoch hex>-<96-bit id>`).
fn trace_id() -> String {
    let epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    format!(
        "Root=1-{epoch:08x}-{};Parent={};Sampled=0",
        random::hex(24),
        random::hex(16)
    )
}
