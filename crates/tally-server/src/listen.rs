//! Accepting connections. Each open connection holds a descriptor and buffers whether or not
//! it ever sends a byte, so connections are capped (below the process's descriptor limit, so
//! the store can always open a file), closed when their headers do not arrive in time (which
//! also closes idle kept-alive ones), and served by one service stack whose limits are global.
//!
//! Running out of descriptors while accepting is backpressure, not a failure: the loop waits
//! and tries again, and the connections waiting in the kernel's backlog are served once
//! others close.

use crate::tls::Tls;
use crate::App;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;
use tally_core::limits::{CONNECTIONS_MAX, DESCRIPTORS_RESERVED, HEADER_READ_TIMEOUT_MS, REQUEST_HEADERS_MAX, REQUEST_HEAD_BYTES_MAX};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

const HEADER_READ_TIMEOUT: Duration = Duration::from_millis(HEADER_READ_TIMEOUT_MS);

/// How long the accept loop waits after the process ran out of descriptors or memory.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// The connection cap: `CONNECTIONS_MAX`, or fewer if the descriptor limit (raised to its
/// hard limit first) leaves less than that above `DESCRIPTORS_RESERVED`.
pub fn connections_max() -> usize {
    let descriptors = raise_descriptor_limit();
    let available = descriptors.saturating_sub(DESCRIPTORS_RESERVED as u64);
    assert!(available > 0, "the descriptor limit ({descriptors}) leaves nothing above the {DESCRIPTORS_RESERVED} reserved");
    CONNECTIONS_MAX.min(usize::try_from(available).unwrap_or(usize::MAX))
}

/// Raises the soft descriptor limit to the hard one and returns it.
fn raise_descriptor_limit() -> u64 {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1_024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    limit.rlim_cur
}

/// How listeners serve: over TLS when set, and at most `connections_max` connections at once
/// over all the listeners sharing this (clones share the cap, so an operations address adds
/// no descriptors beyond it).
#[derive(Clone)]
pub struct Listening {
    connections_max: usize,
    open: Arc<Semaphore>,
    pub tls: Option<Arc<Tls>>,
}

impl Listening {
    pub fn new(connections_max: usize, tls: Option<Arc<Tls>>) -> Listening {
        assert!(connections_max > 0 && u32::try_from(connections_max).is_ok(), "a cap a semaphore can count");
        Listening { connections_max, open: Arc::new(Semaphore::new(connections_max)), tls }
    }

    /// Plain HTTP, with the cap `connections_max()` computes.
    pub fn plain() -> Listening {
        Listening::new(connections_max(), None)
    }
}

/// Serves `app` on `listener` until `stop` resolves, then stops accepting, lets every
/// request in flight finish and closes idle connections.
pub async fn serve(listener: TcpListener, app: App, listening: Listening, stop: impl Future<Output = ()>) -> io::Result<()> {
    serve_service(listener, crate::service(app), listening, stop).await
}

/// `serve` for any router: the operations address serves its own.
pub async fn serve_service(listener: TcpListener, router: Router, listening: Listening, stop: impl Future<Output = ()>) -> io::Result<()> {
    let service = TowerToHyperService::new(router);
    let open = listening.open.clone();
    let (stopping, stop_seen) = watch::channel(false);
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(true)
        .max_header_size(REQUEST_HEAD_BYTES_MAX)
        .max_headers(REQUEST_HEADERS_MAX);
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            () = &mut stop => break,
            permit = open.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let stream = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) if is_exhaustion(&error) => {
                    tracing::warn!(%error, "cannot accept a connection now; waiting");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
                // A connection that failed before it was accepted concerns only its client.
                Err(_) => continue,
            },
        };
        let _ = stream.set_nodelay(true);
        let (http, service, stop_seen) = (http.clone(), service.clone(), stop_seen.clone());
        let acceptor = listening.tls.as_ref().map(|tls| tls.acceptor());
        tokio::spawn(async move {
            metrics::gauge!("tally_connections_open").increment(1.0);
            match acceptor {
                None => drive(&http, stream, service, stop_seen).await,
                // The handshake counts towards the time a client has to send its headers.
                Some(acceptor) => match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => drive(&http, stream, service, stop_seen).await,
                    Ok(Err(_)) | Err(_) => metrics::counter!("tally_tls_handshakes_failed_total").increment(1),
                },
            }
            metrics::gauge!("tally_connections_open").decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    // Every connection holds a permit until it closes: holding them all means all closed
    // (this listener's and those of any listener sharing the cap).
    let all = u32::try_from(listening.connections_max).expect("checked in Listening::new");
    let _closed = open.acquire_many(all).await.expect("the semaphore is never closed");
    Ok(())
}

/// Serves one connection until it closes, or until the server stops (then it finishes the
/// request in flight and closes).
async fn drive<I>(http: &http1::Builder, io: I, service: TowerToHyperService<Router>, mut stop_seen: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let connection = http.serve_connection(TokioIo::new(WithErrorBodies::new(io)), service);
    tokio::pin!(connection);
    let stopped = tokio::select! {
        _ = connection.as_mut() => false,
        seen = stop_seen.wait_for(|stopping| *stopping) => seen.is_ok(),
    };
    if stopped {
        connection.as_mut().graceful_shutdown();
        let _ = connection.await;
    }
}

/// Errors that say the process is out of a resource, not that a client misbehaved.
fn is_exhaustion(error: &io::Error) -> bool {
    matches!(error.raw_os_error(), Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM))
}

/// A connection whose answers all carry the error object. hyper answers a request it cannot
/// parse (400, 414, 431) by itself, with an empty body and no way to supply one; every
/// error the service gives has a body, so an error status with `content-length: 0` is one of
/// hyper's, and this gives it the object the API promises.
struct WithErrorBodies<I> {
    inner: I,
    /// A rewritten answer not yet fully written, and how much of it was.
    pending: Vec<u8>,
    written: usize,
}

impl<I> WithErrorBodies<I> {
    fn new(inner: I) -> WithErrorBodies<I> {
        WithErrorBodies { inner, pending: Vec::new(), written: 0 }
    }
}

impl<I: AsyncWrite + Unpin> WithErrorBodies<I> {
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += written;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    /// Takes `head` as written when it is one of hyper's bare error answers, sending the
    /// rewritten answer in its place.
    fn replace(&mut self, cx: &mut Context<'_>, head: &[u8]) -> Option<Poll<io::Result<usize>>> {
        let replacement = with_error_body(head)?;
        self.pending = replacement;
        self.written = 0;
        // What is not written now goes out on the next write, flush or shutdown.
        if let Poll::Ready(Err(error)) = self.poll_pending(cx) {
            return Some(Poll::Ready(Err(error)));
        }
        Some(Poll::Ready(Ok(head.len())))
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for WithErrorBodies<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for WithErrorBodies<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        if let Some(replaced) = self.replace(cx, buf) {
            return replaced;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        ready!(self.poll_pending(cx))?;
        let mut filled = bufs.iter().filter(|buf| !buf.is_empty());
        if let (Some(only), None) = (filled.next(), filled.next()) {
            if let Some(replaced) = self.replace(cx, only) {
                return replaced;
            }
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.poll_pending(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The answer `head` should have been, if it is a whole error head with an empty body.
fn with_error_body(head: &[u8]) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(head).ok()?.strip_suffix("\r\n\r\n")?;
    // Exactly one head, starting at the beginning: never two answers written together.
    if text.contains("\r\n\r\n") {
        return None;
    }
    let mut lines = text.split("\r\n");
    let status: u16 = lines.next()?.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()?;
    if !(400..600).contains(&status) {
        return None;
    }
    let headers: Vec<&str> = lines.collect();
    if !headers.iter().any(|line| line.eq_ignore_ascii_case("content-length: 0")) {
        return None;
    }
    let (code, message) = match status {
        414 => ("uri_too_long", format!("the request line is limited to {REQUEST_HEAD_BYTES_MAX} bytes")),
        431 => {
            ("headers_too_large", format!("request headers are limited to {REQUEST_HEADERS_MAX} fields and {REQUEST_HEAD_BYTES_MAX} bytes"))
        }
        _ => ("bad_request", "the request is not valid HTTP/1.1".to_owned()),
    };
    let body = crate::error::ApiError::new(axum::http::StatusCode::from_u16(status).ok()?, code, message).body();
    let mut answer = format!("HTTP/1.1 {}\r\n", &text["HTTP/1.1 ".len()..text.find("\r\n").unwrap_or(text.len())]);
    for line in headers.iter().filter(|line| !line.eq_ignore_ascii_case("content-length: 0")) {
        answer.push_str(line);
        answer.push_str("\r\n");
    }
    answer.push_str(&format!("content-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len()));
    let mut answer = answer.into_bytes();
    answer.extend_from_slice(&body);
    Some(answer)
}
