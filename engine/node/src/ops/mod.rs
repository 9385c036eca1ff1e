//! The operations endpoint (Fabric's operations service, spec operations.md A.2): an HTTP/1.1
//! server on `operations.listenAddress`, optionally TLS (with client authentication when
//! `operations.tls.clientAuthRequired`), serving
//!
//! - `GET /metrics`: the Prometheus text format ([`metrics`]) when `metrics.provider` is
//!   `prometheus` (404 otherwise, as Fabric);
//! - `GET /healthz`: Fabric's health body ([`health`]);
//! - `GET /logspec` → `{"spec":"..."}`; `PUT /logspec` with `{"spec":"gossip=debug:info"}`
//!   swaps the log filter at run time (204), a bad spec gets 400 `{"Error":"..."}`;
//! - `GET /version` → `{"CommitSHA":"...","Version":"..."}`.
//!
//! Connections are bounded ([`CONNECTIONS_LEN_MAX`]); a connection that sends no complete header
//! within [`HEADER_READ_TIMEOUT`] (or no TLS handshake within it) is closed.

pub mod config;
mod families;
pub mod health;
pub mod metrics;
pub mod process;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use gossip_engine::{GossipHandle, clock};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::logspec::LiveLogSpec;
use config::{MetricsProvider, OperationsConfig};
use health::{FailedCheck, HealthStatus};
use metrics::MetricsSnapshot;

/// Connections served at once; more are closed on accept.
pub const CONNECTIONS_LEN_MAX: usize = 64;
/// How long a client has for its TLS handshake and then for its request header.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest `PUT /logspec` body taken.
const LOGSPEC_BODY_LEN_MAX_BYTES: usize = 64 * 1024;

/// The commit gossip-node was built from, as `/version` (`CommitSHA`) and the control protocol's
/// `stats` (`runtime.commit`) report it: `GOSSIP_NODE_COMMIT_SHA` at build time if set, else
/// `git rev-parse HEAD` of the repository it was built in, else `unknown` (`build.rs`).
pub const COMMIT_SHA: &str = env!("GOSSIP_NODE_BUILD_COMMIT");

/// Why the endpoint could not start.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    /// The listen address does not resolve or cannot be bound.
    #[error("operations.listenAddress = {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// A TLS file does not load.
    #[error("{key} = {path}: {reason}")]
    Tls {
        /// The key naming the file.
        key: &'static str,
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// What the handlers read.
pub struct OpsContext {
    /// The running gossip instance.
    pub handle: GossipHandle,
    /// The log filter, for `/logspec` (`None`: 503, e.g. in tests without a subscriber).
    pub log_spec: Option<Arc<LiveLogSpec>>,
    /// `metrics.provider`.
    pub metrics: MetricsProvider,
    /// The `/healthz` ledger-lag threshold ([`health::ledger_lag_max_blocks`]).
    pub ledger_lag_max_blocks: u64,
    /// The fault hook's drop counter, when on.
    pub fault_dropped: Option<Arc<AtomicU64>>,
    /// Whether the node has bootstrap peers (other than itself): with none alive, it is cut off
    /// ([`health::membership_check`]).
    pub has_bootstrap_peers: bool,
}

/// A running endpoint.
#[derive(Debug)]
pub struct OpsServer {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl OpsServer {
    /// The bound address (the real port when the configured one was 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Waits for the accept loop to end (after the shutdown signal).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// Binds and starts the endpoint; `None` when `operations.listenAddress` is empty. The accept
/// loop ends when `shutdown` turns `true`.
pub async fn start(
    cfg: &OperationsConfig,
    ctx: OpsContext,
    mut shutdown: watch::Receiver<bool>,
) -> Result<Option<OpsServer>, OpsError> {
    let Some(addr) = cfg.listen_addr.as_deref() else {
        return Ok(None);
    };
    let listen_err = |reason: String| OpsError::Listen {
        addr: addr.to_owned(),
        reason,
    };
    let acceptor = cfg.tls.as_ref().map(tls::acceptor).transpose()?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| listen_err(format!("cannot listen: {e}")))?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| listen_err(e.to_string()))?;
    let app = router(Arc::new(ctx));
    let slots = Arc::new(Semaphore::new(CONNECTIONS_LEN_MAX));
    let task = tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = crate_stopped(&mut shutdown) => break,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(target: "gossip-node.ops", error = %e, "accept failed");
                    continue;
                }
            };
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                tracing::debug!(target: "gossip-node.ops", %peer, "too many connections: closed");
                continue;
            };
            let app = app.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _slot = slot;
                let service = TowerToHyperService::new(app);
                let mut http = hyper::server::conn::http1::Builder::new();
                http.timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT);
                let served = match acceptor {
                    None => http.serve_connection(TokioIo::new(stream), service).await,
                    Some(acceptor) => {
                        let tls =
                            tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream));
                        match tls.await {
                            Ok(Ok(stream)) => {
                                http.serve_connection(TokioIo::new(stream), service).await
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(target: "gossip-node.ops", %peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => return,
                        }
                    }
                };
                if let Err(e) = served {
                    tracing::debug!(target: "gossip-node.ops", %peer, error = %e, "connection ended");
                }
            });
        }
    });
    Ok(Some(OpsServer { local_addr, task }))
}

async fn crate_stopped(rx: &mut watch::Receiver<bool>) {
    while !*rx.borrow_and_update() {
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// The routes.
pub fn router(ctx: Arc<OpsContext>) -> Router {
    let mut app = Router::new()
        .route("/healthz", get(healthz))
        .route("/logspec", get(get_logspec).put(put_logspec))
        .route("/version", get(version));
    if ctx.metrics == MetricsProvider::Prometheus {
        app = app.route("/metrics", get(metrics_text));
    }
    app.with_state(ctx)
}

fn json_reply(status: StatusCode, body: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        format!("{body}\n"),
    )
        .into_response()
}

fn error_reply(status: StatusCode, message: &str) -> Response {
    json_reply(status, json!({ "Error": message }))
}

/// The live snapshot `/metrics` renders.
pub async fn snapshot(ctx: &OpsContext) -> Result<MetricsSnapshot, gossip_engine::GossipError> {
    let stats = ctx.handle.stats().await?;
    let channels = ctx.handle.channel_summaries().await?;
    Ok(MetricsSnapshot {
        stats,
        channels,
        fault_dropped: ctx
            .fault_dropped
            .as_ref()
            .map_or(0, |c| c.load(Ordering::Relaxed)),
        process: metrics::ProcessGauges::read(),
    })
}

async fn metrics_text(State(ctx): State<Arc<OpsContext>>) -> Response {
    let snap = match snapshot(&ctx).await {
        Ok(s) => s,
        Err(e) => return error_reply(StatusCode::SERVICE_UNAVAILABLE, &e.to_string()),
    };
    match metrics::render(&snap) {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
            text,
        )
            .into_response(),
        Err(e) => error_reply(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

async fn healthz(State(ctx): State<Arc<OpsContext>>) -> Response {
    let answered = async {
        // Only what the checks read: the full stats snapshot would copy every counter per poll.
        let members_len = ctx.handle.members_len().await?;
        let channels = ctx.handle.channel_summaries().await?;
        Ok::<_, gossip_engine::GossipError>((members_len, channels))
    };
    let failed = match answered.await {
        Ok(((alive_len, dead_len), channels)) => {
            health::membership_check(alive_len, dead_len, ctx.has_bootstrap_peers)
                .into_iter()
                .chain(health::ledger_lag_checks(
                    &channels,
                    ctx.ledger_lag_max_blocks,
                ))
                .collect()
        }
        Err(e) => vec![FailedCheck {
            component: "gossip".into(),
            reason: format!("the gossip instance does not answer: {e}"),
        }],
    };
    let body = HealthStatus::new(failed, health::rfc3339_utc(clock::now().as_nanos()));
    let status = if body.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_reply(status, serde_json::to_value(&body).unwrap_or_default())
}

async fn get_logspec(State(ctx): State<Arc<OpsContext>>) -> Response {
    match &ctx.log_spec {
        Some(live) => json_reply(StatusCode::OK, json!({ "spec": live.spec() })),
        None => error_reply(StatusCode::SERVICE_UNAVAILABLE, "no log filter to read"),
    }
}

async fn put_logspec(State(ctx): State<Arc<OpsContext>>, body: Bytes) -> Response {
    let Some(live) = &ctx.log_spec else {
        return error_reply(StatusCode::SERVICE_UNAVAILABLE, "no log filter to change");
    };
    if body.len() > LOGSPEC_BODY_LEN_MAX_BYTES {
        return error_reply(StatusCode::PAYLOAD_TOO_LARGE, "body too long");
    }
    #[derive(serde::Deserialize)]
    struct Put {
        spec: String,
    }
    let put: Put = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return error_reply(
                StatusCode::BAD_REQUEST,
                &format!("bad body (expected {{\"spec\":\"...\"}}): {e}"),
            );
        }
    };
    match live.set(&put.spec) {
        Ok(()) => {
            tracing::info!(target: "gossip-node.ops", spec = %put.spec, "log spec changed");
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => error_reply(StatusCode::BAD_REQUEST, &e.to_string()),
    }
}

async fn version() -> Response {
    json_reply(
        StatusCode::OK,
        json!({ "CommitSHA": COMMIT_SHA, "Version": env!("CARGO_PKG_VERSION") }),
    )
}

#[cfg(test)]
mod tests {
    use super::COMMIT_SHA;

    /// build.rs embeds a full commit id, or `unknown`; never an empty string.
    #[test]
    fn the_build_commit_is_a_commit_id_or_unknown() {
        let hex = COMMIT_SHA.len() >= 40 && COMMIT_SHA.bytes().all(|b| b.is_ascii_hexdigit());
        let overridden = option_env!("GOSSIP_NODE_COMMIT_SHA").is_some();
        assert!(
            hex || COMMIT_SHA == "unknown" || overridden,
            "{COMMIT_SHA:?}"
        );
    }
}
