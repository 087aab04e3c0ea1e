//! The wire to a child: JSON lines on a stdio child's pipes, and the [`Intercept`] wrapper
//! every transport goes through, which sees the child's notifications in the order they
//! arrived.
//!
//! rmcp handles each incoming notification in a task of its own, so two progress
//! notifications can overtake each other, and one can be handled after the response of its
//! request. capmux forwards progress, log messages and `list_changed` from here instead,
//! in arrival order, through one queue per connection; a call that routed progress waits
//! for that queue to pass its response's position before it answers (see [`Routes`]).

// Logging, sampling and roots are deprecated by protocol 2026-07-28, and still what the
// children of a 2025-11-25 session use.
#![allow(deprecated)]

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use bytes::BytesMut;
use rmcp::RoleClient;
use rmcp::model::{
    JsonRpcMessage, LoggingMessageNotificationParam, ProgressNotificationParam, ProgressToken,
    ResourceUpdatedNotificationParam, ServerNotification,
};
use rmcp::service::{Peer, RoleServer, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{ChildStdin, ChildStdout};
use tokio::sync::{mpsc, oneshot};

/// What a connection's queue carries to the client, in arrival order.
pub(crate) enum Event {
    Progress(Peer<RoleServer>, ProgressNotificationParam),
    Log(LoggingMessageNotificationParam),
    ResourceUpdated(ResourceUpdatedNotificationParam),
    ListChanged,
    /// Answered once everything queued before it has been sent.
    Flush(oneshot::Sender<()>),
}

/// The capacity of a connection's queue; a full queue slows the child's reader down.
pub(crate) const QUEUE: usize = 1024;

/// How many progress notifications without a route are kept for a route about to be made.
const STASH: usize = 256;

/// Where a child's progress goes: the child's token (rmcp makes its own) to the client's
/// peer and token.
#[derive(Default)]
pub(crate) struct Routes {
    inner: Mutex<RoutesInner>,
}

#[derive(Default)]
struct RoutesInner {
    routes: HashMap<ProgressToken, Route>,
    /// Progress that came before its route was registered (the child answered faster than
    /// the caller could register it).
    stash: VecDeque<ProgressNotificationParam>,
}

struct Route {
    peer: Peer<RoleServer>,
    token: ProgressToken,
    last: Option<f64>,
}

impl Route {
    /// The notification to send upstream, or `None` for a value that does not increase
    /// (the spec requires progress to increase; a child that repeats one is dropped).
    fn forward(&mut self, params: &ProgressNotificationParam) -> Option<Event> {
        if self.last.is_some_and(|last| params.progress <= last) {
            return None;
        }
        self.last = Some(params.progress);
        let mut params = params.clone();
        params.progress_token = self.token.clone();
        Some(Event::Progress(self.peer.clone(), params))
    }
}

impl Routes {
    fn lock(&self) -> std::sync::MutexGuard<'_, RoutesInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn observe(&self, params: &ProgressNotificationParam) -> Option<Event> {
        let mut inner = self.lock();
        if let Some(route) = inner.routes.get_mut(&params.progress_token) {
            return route.forward(params);
        }
        if inner.stash.len() == STASH {
            inner.stash.pop_front();
        }
        inner.stash.push_back(params.clone());
        None
    }

    /// Routes the child's `token` to the client's; progress that came already is queued.
    pub(crate) fn register(
        &self,
        token: ProgressToken,
        peer: Peer<RoleServer>,
        upstream: ProgressToken,
        queue: &mpsc::Sender<Event>,
    ) {
        let mut inner = self.lock();
        let mut route = Route {
            peer,
            token: upstream,
            last: None,
        };
        let early: VecDeque<ProgressNotificationParam> = {
            let (mine, rest) = inner
                .stash
                .drain(..)
                .partition(|p| p.progress_token == token);
            inner.stash = rest;
            mine
        };
        for params in &early {
            if let Some(event) = route.forward(params) {
                let _ = queue.try_send(event);
            }
        }
        inner.routes.insert(token, route);
    }

    pub(crate) fn unregister(&self, token: &ProgressToken) {
        self.lock().routes.remove(token);
    }
}

/// A transport whose notifications are also queued, in order, for the client.
pub(crate) struct Intercept<T> {
    pub(crate) inner: T,
    pub(crate) routes: Arc<Routes>,
    pub(crate) queue: mpsc::Sender<Event>,
}

impl<T> Intercept<T> {
    pub(crate) fn new(inner: T, routes: &Arc<Routes>, queue: &mpsc::Sender<Event>) -> Self {
        Intercept {
            inner,
            routes: routes.clone(),
            queue: queue.clone(),
        }
    }
}

/// Queues what the client must see of `notification`.
async fn observe(routes: &Routes, queue: &mpsc::Sender<Event>, notification: &ServerNotification) {
    let event = match notification {
        ServerNotification::ProgressNotification(n) => routes.observe(&n.params),
        ServerNotification::LoggingMessageNotification(n) => Some(Event::Log(n.params.clone())),
        ServerNotification::ResourceUpdatedNotification(n) => {
            Some(Event::ResourceUpdated(n.params.clone()))
        }
        ServerNotification::ToolListChangedNotification(_)
        | ServerNotification::PromptListChangedNotification(_)
        | ServerNotification::ResourceListChangedNotification(_) => Some(Event::ListChanged),
        _ => None,
    };
    if let Some(event) = event {
        let _ = queue.send(event).await;
    }
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for Intercept<T> {
    type Error = T::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        {
            let message = self.inner.receive().await?;
            if let JsonRpcMessage::Notification(n) = &message {
                observe(&self.routes, &self.queue, &n.notification).await;
            }
            Some(message)
        }
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}

/// Reads lines of at most `max` bytes.
pub(crate) struct LineReader<R> {
    inner: R,
    buf: BytesMut,
    /// Bytes of `buf` known to hold no newline.
    scanned: usize,
    max: usize,
}

/// A line longer than the limit.
#[derive(Debug)]
pub(crate) struct TooLong;

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub(crate) fn new(inner: R, max: usize) -> Self {
        LineReader {
            inner,
            buf: BytesMut::new(),
            scanned: 0,
            max,
        }
    }

    /// The next line without its newline; `Ok(None)` at the end of the stream (a last line
    /// without a newline is returned first).
    pub(crate) async fn next(&mut self) -> Result<Option<BytesMut>, TooLong> {
        loop {
            if let Some(at) = self.buf[self.scanned..].iter().position(|b| *b == b'\n') {
                if self.scanned + at > self.max {
                    return Err(TooLong);
                }
                let mut line = self.buf.split_to(self.scanned + at + 1);
                self.scanned = 0;
                line.truncate(line.len() - 1);
                return Ok(Some(line));
            }
            self.scanned = self.buf.len();
            if self.buf.len() > self.max {
                return Err(TooLong);
            }
            match self.inner.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => {
                    self.scanned = 0;
                    return Ok((!self.buf.is_empty()).then(|| self.buf.split()));
                }
                Ok(_) => {}
            }
        }
    }

    /// Like [`LineReader::next`], but a long line is cut to `max` bytes and its rest
    /// skipped: for logs, which must always be drained.
    pub(crate) async fn next_cut(&mut self) -> Option<BytesMut> {
        match self.next().await {
            Ok(line) => line,
            Err(TooLong) => {
                let line = self.buf.split_to(self.max);
                // Skip to the end of the line.
                loop {
                    if let Some(at) = self.buf.iter().position(|b| *b == b'\n') {
                        let _ = self.buf.split_to(at + 1);
                        break;
                    }
                    self.buf.clear();
                    match self.inner.read_buf(&mut self.buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
                self.scanned = 0;
                Some(line)
            }
        }
    }
}

/// A stdio child's pipes as an rmcp transport: one JSON-RPC message per line. Lines that
/// are not JSON-RPC are skipped and logged; a line over the limit ends the connection, with
/// the reason left in `ended` for the supervisor.
pub(crate) struct StdioTransport {
    pub(crate) reader: LineReader<ChildStdout>,
    pub(crate) writer: Arc<tokio::sync::Mutex<Option<ChildStdin>>>,
    pub(crate) label: Arc<str>,
    pub(crate) ended: Arc<Mutex<Option<String>>>,
    pub(crate) skipped: u64,
}

impl Transport<RoleClient> for StdioTransport {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let writer = self.writer.clone();
        let bytes = serde_json::to_vec(&item).map(|mut bytes| {
            bytes.push(b'\n');
            bytes
        });
        async move {
            let bytes = bytes.map_err(std::io::Error::other)?;
            let mut writer = writer.lock().await;
            let Some(stdin) = writer.as_mut() else {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            };
            stdin.write_all(&bytes).await?;
            stdin.flush().await
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        {
            loop {
                let line = match self.reader.next().await {
                    Ok(Some(line)) => line,
                    Ok(None) => return None,
                    Err(TooLong) => {
                        let reason = format!(
                            "sent a line longer than {} bytes on stdout",
                            self.reader.max
                        );
                        tracing::warn!(server = %self.label, "{reason}; restarting it");
                        *self.ended.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason);
                        return None;
                    }
                };
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                match serde_json::from_slice(&line) {
                    Ok(message) => return Some(message),
                    Err(err) => {
                        self.skipped += 1;
                        // The first few, then every power of two: a chatty child cannot
                        // flood the log.
                        if self.skipped <= 10 || self.skipped.is_power_of_two() {
                            let shown =
                                String::from_utf8_lossy(&line[..line.len().min(200)]).into_owned();
                            tracing::warn!(server = %self.label, skipped = self.skipped, "skipped a line on stdout that is not JSON-RPC ({err}): {shown}");
                        }
                    }
                }
            }
        }
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let writer = self.writer.clone();
        async move {
            writer.lock().await.take();
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_split_capped_and_cut() {
        let input: &[u8] = b"one\ntwo\n\nthree-is-long\nfour";
        let mut reader = LineReader::new(input, 8);
        assert_eq!(&reader.next().await.unwrap().unwrap()[..], b"one");
        assert_eq!(&reader.next().await.unwrap().unwrap()[..], b"two");
        assert_eq!(&reader.next().await.unwrap().unwrap()[..], b"");
        assert!(reader.next().await.is_err());

        let mut reader = LineReader::new(input, 8);
        for _ in 0..3 {
            reader.next_cut().await;
        }
        assert_eq!(&reader.next_cut().await.unwrap()[..], b"three-is");
        assert_eq!(&reader.next_cut().await.unwrap()[..], b"four");
        assert!(reader.next_cut().await.is_none());
    }
}
