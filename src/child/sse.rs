//! The client side of MCP's legacy "HTTP+SSE" transport (protocol 2024-11-05), which rmcp
//! does not have.
//!
//! The client opens `GET <url>` as a server-sent event stream. The server's first event,
//! `endpoint`, names the URL (often relative, with a session id) to POST messages to; each
//! later `message` event carries one JSON-RPC message from the server. Each message to the
//! server is one `POST <endpoint>` with a JSON body, whose response body says nothing (2xx is
//! success, usually 202).
//!
//! The endpoint must be on the stream's origin: a server must not send our headers, which
//! may hold credentials, elsewhere.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use reqwest::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use reqwest::{Client, Response, StatusCode, Url};
use rmcp::RoleClient;
use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;

/// How much of an error response's body goes into [`SseError::Status`].
const ERROR_BODY: usize = 200;

/// How much of a POST's response body is read (and ignored) so the connection can be reused.
const DRAIN: u64 = 64 * 1024;

/// How long a response body (of an error, or to drain) is waited for.
const BODY_WAIT: Duration = Duration::from_secs(2);

/// Why the transport could not connect or send.
#[derive(Debug, thiserror::Error)]
pub enum SseError {
    #[error("{url:?} is not a valid SSE URL: {reason}")]
    Url { url: String, reason: String },
    #[error("the header {name:?} for {url} is not a valid HTTP header")]
    Header { url: String, name: String },
    #[error("HTTP request to {url} failed: {source}")]
    Request {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered HTTP {status}{}", body_suffix(.body))]
    Status {
        url: String,
        status: StatusCode,
        /// The start of the response's body, if it had one.
        body: String,
    },
    #[error(
        "{url} answered with Content-Type {content_type:?}, not an event stream (text/event-stream)"
    )]
    NotEventStream { url: String, content_type: String },
    #[error("the event stream at {url} ended before its `endpoint` event")]
    NoEndpoint { url: String },
    #[error("the event stream at {url} sent an event over {max} bytes")]
    EventTooLarge { url: String, max: usize },
    #[error(
        "the event stream at {url} named the endpoint {endpoint:?}, which is not a URL: {reason}"
    )]
    BadEndpoint {
        url: String,
        endpoint: String,
        reason: String,
    },
    #[error("the event stream at {url} named the endpoint {endpoint}, on another origin: refused")]
    CrossOrigin { url: String, endpoint: String },
    #[error("cannot encode a message for {url}: {source}")]
    Encode {
        url: String,
        #[source]
        source: serde_json::Error,
    },
}

fn body_suffix(body: &str) -> String {
    if body.is_empty() {
        String::new()
    } else {
        format!(": {body}")
    }
}

/// A connected legacy SSE session: the event stream it reads and the endpoint it posts to.
#[derive(Debug)]
pub struct SseTransport {
    client: Client,
    /// Where messages are posted.
    endpoint: Url,
    /// The caller's headers plus `Content-Type: application/json`.
    post_headers: HeaderMap,
    events: Events,
}

impl SseTransport {
    /// Opens the event stream and waits for the `endpoint` event (caller wraps in a timeout).
    ///
    /// `headers` go on the GET and on every POST. `client` must not have a total request
    /// timeout, which would cut the stream.
    pub async fn connect(
        client: Client,
        url: &str,
        headers: &BTreeMap<String, String>,
        max_event_bytes: usize,
    ) -> Result<SseTransport, SseError> {
        let url = Url::parse(url).map_err(|err| SseError::Url {
            url: url.to_owned(),
            reason: err.to_string(),
        })?;
        let headers = header_map(&url, headers)?;
        let mut get_headers = headers.clone();
        get_headers
            .entry(ACCEPT)
            .or_insert(HeaderValue::from_static("text/event-stream"));
        get_headers
            .entry(CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-cache"));
        let response = client
            .get(url.clone())
            .headers(get_headers)
            .send()
            .await
            .map_err(|source| SseError::Request {
                url: url.to_string(),
                source,
            })?;
        if !response.status().is_success() {
            return Err(status_error(&url, response).await);
        }
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .unwrap_or_default();
        if !content_type
            .to_ascii_lowercase()
            .starts_with("text/event-stream")
        {
            return Err(SseError::NotEventStream {
                url: url.to_string(),
                content_type,
            });
        }

        let mut events = Events::new(response, max_event_bytes);
        let endpoint = loop {
            match events.next().await {
                Ok(Some(event)) if event.name == "endpoint" => break event.data,
                Ok(Some(event)) => {
                    tracing::debug!(%url, event = %event.name, "SSE event before `endpoint` skipped");
                }
                Ok(None) => {
                    return Err(SseError::NoEndpoint {
                        url: url.to_string(),
                    });
                }
                Err(ReadError::TooLarge) => {
                    return Err(SseError::EventTooLarge {
                        url: url.to_string(),
                        max: max_event_bytes,
                    });
                }
                Err(ReadError::Http(source)) => {
                    return Err(SseError::Request {
                        url: url.to_string(),
                        source,
                    });
                }
            }
        };
        let endpoint = resolve(&url, &endpoint)?;
        tracing::debug!(%url, %endpoint, "SSE session open");

        let mut post_headers = headers;
        post_headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        Ok(SseTransport {
            client,
            endpoint,
            post_headers,
            events,
        })
    }

    /// Where this session posts its messages.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }
}

impl Transport<RoleClient> for SseTransport {
    type Error = SseError;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), SseError>> + Send + 'static {
        // Everything the POST needs is built (or cloned) here, so sends run concurrently.
        let endpoint = self.endpoint.clone();
        let request = serde_json::to_vec(&item).map(|body| {
            self.client
                .post(endpoint.clone())
                .headers(self.post_headers.clone())
                .body(body)
        });
        async move {
            let request = request.map_err(|source| SseError::Encode {
                url: endpoint.to_string(),
                source,
            })?;
            let response = request.send().await.map_err(|source| SseError::Request {
                url: endpoint.to_string(),
                source,
            })?;
            if !response.status().is_success() {
                return Err(status_error(&endpoint, response).await);
            }
            // A short body is read so the connection can be reused; a long or endless one is
            // dropped with its connection.
            if response
                .content_length()
                .is_some_and(|length| length <= DRAIN)
            {
                read_some(response, usize::MAX).await;
            }
            Ok(())
        }
    }

    /// The next JSON-RPC message of a `message` event; `None` once the stream has ended,
    /// failed or sent an event over the limit. Cancel-safe: rmcp polls it in a `select!`.
    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        loop {
            let event = match self.events.next().await {
                Ok(Some(event)) => event,
                Ok(None) => {
                    tracing::debug!(endpoint = %self.endpoint, "SSE stream ended");
                    return None;
                }
                Err(ReadError::TooLarge) => {
                    tracing::warn!(
                        endpoint = %self.endpoint,
                        max = self.events.parser.max,
                        "SSE event too large: closing the session"
                    );
                    return None;
                }
                Err(ReadError::Http(err)) => {
                    tracing::info!(endpoint = %self.endpoint, error = %err, "SSE stream failed");
                    return None;
                }
            };
            if event.name != "message" {
                tracing::debug!(event = %event.name, "SSE event skipped");
                continue;
            }
            match serde_json::from_str(&event.data) {
                Ok(message) => return Some(message),
                Err(err) => {
                    tracing::debug!(error = %err, data = %event.data, "SSE message that is not JSON-RPC skipped");
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), SseError> {
        self.events.end();
        Ok(())
    }
}

/// The caller's headers as a [`HeaderMap`], their values marked sensitive (kept out of logs).
fn header_map(url: &Url, headers: &BTreeMap<String, String>) -> Result<HeaderMap, SseError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let invalid = || SseError::Header {
            url: url.to_string(),
            name: name.clone(),
        };
        let header = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        let mut value = HeaderValue::from_str(value).map_err(|_| invalid())?;
        value.set_sensitive(true);
        map.insert(header, value);
    }
    Ok(map)
}

/// The `endpoint` event's URL, resolved against the stream's; only the same origin.
fn resolve(url: &Url, endpoint: &str) -> Result<Url, SseError> {
    let resolved = url
        .join(endpoint.trim())
        .map_err(|err| SseError::BadEndpoint {
            url: url.to_string(),
            endpoint: endpoint.to_owned(),
            reason: err.to_string(),
        })?;
    if resolved.origin() != url.origin() {
        return Err(SseError::CrossOrigin {
            url: url.to_string(),
            endpoint: resolved.to_string(),
        });
    }
    Ok(resolved)
}

/// [`SseError::Status`] with the start of the response's body.
async fn status_error(url: &Url, response: Response) -> SseError {
    let status = response.status();
    let body = read_some(response, ERROR_BODY * 4).await;
    let body = String::from_utf8_lossy(&body);
    let body = body.trim();
    let body = match body.char_indices().nth(ERROR_BODY) {
        Some((cut, _)) => format!("{}…", &body[..cut]),
        None => body.to_owned(),
    };
    SseError::Status {
        url: url.to_string(),
        status,
        body,
    }
}

/// Up to about `limit` bytes of `response`'s body, for at most [`BODY_WAIT`]; a failure
/// ends it early.
async fn read_some(mut response: Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let read = async {
        while body.len() < limit {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
    };
    let _ = tokio::time::timeout(BODY_WAIT, read).await;
    body
}

/// Why [`Events::next`] has no event; either way the stream is over.
#[derive(Debug)]
enum ReadError {
    TooLarge,
    Http(reqwest::Error),
}

/// The events of a response's body.
#[derive(Debug)]
struct Events {
    /// `None` once the stream has ended, failed or been closed.
    response: Option<Response>,
    parser: Parser,
}

impl Events {
    fn new(response: Response, max_event_bytes: usize) -> Self {
        Events {
            response: Some(response),
            parser: Parser::new(max_event_bytes),
        }
    }

    /// Drops the response and whatever was read but not taken: no event comes after this.
    fn end(&mut self) {
        self.response = None;
        self.parser = Parser::new(self.parser.max);
    }

    /// The next event, or `None` at the end of the stream (a last, unfinished event is
    /// dropped, as the SSE spec says). Cancel-safe: nothing is awaited once a chunk is in.
    async fn next(&mut self) -> Result<Option<Event>, ReadError> {
        loop {
            match self.parser.next_event() {
                Ok(Some(event)) => return Ok(Some(event)),
                Ok(None) => {}
                Err(err) => {
                    self.end();
                    return Err(err);
                }
            }
            let Some(response) = self.response.as_mut() else {
                return Ok(None);
            };
            match response.chunk().await {
                Ok(Some(chunk)) => self.parser.feed(&chunk),
                Ok(None) => {
                    self.end();
                    return Ok(None);
                }
                Err(err) => {
                    self.end();
                    return Err(ReadError::Http(err));
                }
            }
        }
    }
}

/// One server-sent event; `name` is `message` when the event has no `event:` field.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Event {
    name: String,
    data: String,
}

/// An incremental parser of the `text/event-stream` format: lines end with `\n`, `\r\n` or
/// `\r`, in chunks split anywhere.
#[derive(Debug)]
struct Parser {
    /// Bytes not yet split into lines.
    buf: BytesMut,
    /// How much of `buf` is known to hold no line end.
    scanned: usize,
    /// The last line ended with `\r`: a `\n` that follows belongs to it.
    after_cr: bool,
    /// No line has been read yet (it may start with a byte order mark).
    first_line: bool,
    /// The event being read: its `event:` field and its `data:` lines, each ending with `\n`.
    name: String,
    data: String,
    max: usize,
}

impl Parser {
    fn new(max: usize) -> Self {
        Parser {
            buf: BytesMut::new(),
            scanned: 0,
            after_cr: false,
            first_line: true,
            name: String::new(),
            data: String::new(),
            max,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete event in what was fed; `None` until more is fed. An event (or an
    /// unfinished line) over `max` bytes is an error.
    fn next_event(&mut self) -> Result<Option<Event>, ReadError> {
        while let Some(bytes) = self.next_line() {
            let text = String::from_utf8_lossy(&bytes);
            let mut line: &str = &text;
            if std::mem::take(&mut self.first_line) {
                line = line.strip_prefix('\u{feff}').unwrap_or(line);
            }
            if let Some(event) = self.line(line) {
                return Ok(Some(event));
            }
            if self.name.len() + self.data.len() > self.max {
                return Err(ReadError::TooLarge);
            }
        }
        if self.name.len() + self.data.len() + self.buf.len() > self.max {
            return Err(ReadError::TooLarge);
        }
        Ok(None)
    }

    /// The next complete line, without its line end.
    fn next_line(&mut self) -> Option<BytesMut> {
        if self.after_cr {
            match self.buf.first() {
                None => return None,
                Some(b'\n') => self.buf.advance(1),
                Some(_) => {}
            }
            self.after_cr = false;
        }
        let Some(end) = self.buf[self.scanned..]
            .iter()
            .position(|&byte| byte == b'\n' || byte == b'\r')
        else {
            self.scanned = self.buf.len();
            return None;
        };
        let line = self.buf.split_to(self.scanned + end);
        self.after_cr = self.buf[0] == b'\r';
        self.buf.advance(1);
        self.scanned = 0;
        Some(line)
    }

    /// Takes one line in; a blank line ends the event.
    fn line(&mut self, line: &str) -> Option<Event> {
        if line.is_empty() {
            return self.dispatch();
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "event" => value.clone_into(&mut self.name),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
            }
            // `id` and `retry` are for reconnecting, which a legacy session cannot do.
            _ => {}
        }
        None
    }

    /// The event read so far, if it has data (the SSE spec drops events without).
    fn dispatch(&mut self) -> Option<Event> {
        let name = std::mem::take(&mut self.name);
        let mut data = std::mem::take(&mut self.data);
        if data.is_empty() {
            return None;
        }
        data.pop();
        let name = if name.is_empty() {
            "message".to_owned()
        } else {
            name
        };
        Some(Event { name, data })
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use rmcp::ServiceExt;
    use rmcp::model::CallToolRequestParams;
    use serde_json::{Value, json};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};
    use tokio::sync::mpsc;

    use super::*;

    fn event(name: &str, data: &str) -> Event {
        Event {
            name: name.to_owned(),
            data: data.to_owned(),
        }
    }

    /// Every event of `chunks`, fed one after the other.
    fn parse(chunks: &[&[u8]], max: usize) -> Result<Vec<Event>, ReadError> {
        let mut parser = Parser::new(max);
        let mut events = Vec::new();
        for chunk in chunks {
            parser.feed(chunk);
            while let Some(event) = parser.next_event()? {
                events.push(event);
            }
        }
        Ok(events)
    }

    const STREAM: &str = "\u{feff}: hello\n\
        event: endpoint\r\n\
        data: /messages?sessionId=1\r\n\
        \r\n\
        data: {\"a\":\r\
        data:1}\r\
        \r\
        event: message\n\
        data\n\
        id: 7\n\
        retry: 100\n\
        \n\
        event: ignored\n\
        \n\
        data:  two spaces\n\
        data: second line\n\
        \n\
        data: unfinished";

    fn expected() -> Vec<Event> {
        vec![
            event("endpoint", "/messages?sessionId=1"),
            event("message", "{\"a\":\n1}"),
            event("message", ""),
            event("message", " two spaces\nsecond line"),
        ]
    }

    #[test]
    fn parser_reads_names_data_comments_and_every_line_end() {
        assert_eq!(parse(&[STREAM.as_bytes()], 1 << 20).unwrap(), expected());
    }

    #[test]
    fn parser_reads_chunks_split_anywhere() {
        let bytes = STREAM.as_bytes();
        let one_by_one: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(parse(&one_by_one, 1 << 20).unwrap(), expected());
        for cut in 0..bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(parse(&[a, b], 1 << 20).unwrap(), expected(), "cut at {cut}");
        }
    }

    #[test]
    fn parser_refuses_events_over_the_limit() {
        let big = format!("data: {}\n\n", "x".repeat(100));
        assert!(matches!(
            parse(&[big.as_bytes()], 50),
            Err(ReadError::TooLarge)
        ));
        // Also while the line is still unfinished, and over several data lines.
        let unfinished = format!("data: {}", "x".repeat(100));
        assert!(matches!(
            parse(&[unfinished.as_bytes()], 50),
            Err(ReadError::TooLarge)
        ));
        let lines = "data: 0123456789\n".repeat(10);
        assert!(matches!(
            parse(&[lines.as_bytes()], 50),
            Err(ReadError::TooLarge)
        ));
        // Many small events in one chunk are not one large event.
        let many = "data: 0123456789\n\n".repeat(20);
        assert_eq!(parse(&[many.as_bytes()], 50).unwrap().len(), 20);
    }

    #[test]
    fn endpoints_resolve_against_the_stream_url_on_its_origin_only() {
        let url = Url::parse("http://127.0.0.1:8000/mcp/sse?x=1").unwrap();
        let ok = |endpoint: &str| resolve(&url, endpoint).unwrap().to_string();
        assert_eq!(
            ok("/messages/?session_id=ab"),
            "http://127.0.0.1:8000/messages/?session_id=ab"
        );
        assert_eq!(
            ok("message?sessionId=1"),
            "http://127.0.0.1:8000/mcp/message?sessionId=1"
        );
        assert_eq!(ok(" http://127.0.0.1:8000/m\n"), "http://127.0.0.1:8000/m");
        for other in [
            "http://evil.example/messages",
            "//evil.example/messages",
            "https://127.0.0.1:8000/m",
            "http://127.0.0.1:8001/m",
            "data:text/plain,hi",
        ] {
            let err = resolve(&url, other).unwrap_err();
            assert!(
                matches!(err, SseError::CrossOrigin { .. }),
                "{other}: {err}"
            );
        }
    }

    /// A request as the test server saw it.
    #[derive(Debug, Clone)]
    struct Seen {
        method: String,
        path: String,
        /// Lower-case names.
        headers: Vec<(String, String)>,
        body: String,
    }

    impl Seen {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        }
    }

    /// Raw text for the event stream; `None` ends it.
    type Frame = Option<String>;

    /// A hand-written legacy SSE MCP server for one session: `GET /mcp/sse` is the stream,
    /// `POST /mcp/messages…` takes messages and answers `initialize`, `tools/list` and
    /// `tools/call` on the stream; `/mcp/plain` is not an event stream; the rest is 404.
    struct TestServer {
        addr: SocketAddr,
        frames: mpsc::UnboundedSender<Frame>,
        seen: Arc<Mutex<Vec<Seen>>>,
    }

    struct State {
        endpoint: Option<&'static str>,
        frames: mpsc::UnboundedSender<Frame>,
        stream: Mutex<Option<mpsc::UnboundedReceiver<Frame>>>,
        seen: Arc<Mutex<Vec<Seen>>>,
    }

    impl TestServer {
        /// `endpoint` is the data of the first event; `None` sends none.
        async fn start(endpoint: Option<&'static str>) -> TestServer {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let (frames, stream) = mpsc::unbounded_channel();
            let seen = Arc::new(Mutex::new(Vec::new()));
            let state = Arc::new(State {
                endpoint,
                frames: frames.clone(),
                stream: Mutex::new(Some(stream)),
                seen: seen.clone(),
            });
            tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    tokio::spawn(connection(socket, state.clone()));
                }
            });
            TestServer { addr, frames, seen }
        }

        fn url(&self, path: &str) -> String {
            format!("http://{}{path}", self.addr)
        }

        fn push(&self, frame: &str) {
            self.frames.send(Some(frame.to_owned())).unwrap();
        }

        fn end_stream(&self) {
            self.frames.send(None).unwrap();
        }

        fn seen(&self) -> Vec<Seen> {
            self.seen.lock().unwrap().clone()
        }
    }

    async fn connection(mut socket: TcpStream, state: Arc<State>) {
        let mut buf = Vec::new();
        while let Some(request) = read_request(&mut socket, &mut buf).await {
            state.seen.lock().unwrap().push(request.clone());
            let path = request.path.as_str();
            if request.method == "GET" && path == "/mcp/sse" {
                let head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
                            Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
                socket.write_all(head.as_bytes()).await.unwrap();
                if let Some(endpoint) = state.endpoint {
                    let first = format!(": welcome\n\nevent: endpoint\ndata: {endpoint}\n\n");
                    socket.write_all(first.as_bytes()).await.unwrap();
                }
                let mut frames = state.stream.lock().unwrap().take().unwrap();
                while let Some(Some(frame)) = frames.recv().await {
                    if socket.write_all(frame.as_bytes()).await.is_err() {
                        break;
                    }
                }
                return;
            }
            let reply = if request.method == "POST" && path.starts_with("/mcp/messages") {
                if let Some(answer) = answer(&request.body) {
                    state.frames.send(Some(message_frame(&answer))).unwrap();
                }
                "HTTP/1.1 202 Accepted\r\nContent-Length: 8\r\n\r\nAccepted"
            } else if path == "/mcp/plain" {
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi"
            } else {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 12\r\n\r\nno such page"
            };
            socket.write_all(reply.as_bytes()).await.unwrap();
        }
    }

    /// One request off `socket`; `buf` keeps what was read past it.
    async fn read_request(socket: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Seen> {
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            let mut chunk = [0; 4096];
            let n = socket.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let mut start = lines.next()?.split(' ');
        let (method, path) = (start.next()?.to_owned(), start.next()?.to_owned());
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map_or(0, |(_, v)| v.parse().unwrap());
        let body_start = head_end + 4;
        while buf.len() < body_start + length {
            let mut chunk = [0; 4096];
            let n = socket.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        let body = String::from_utf8(buf[body_start..body_start + length].to_vec()).unwrap();
        buf.drain(..body_start + length);
        Some(Seen {
            method,
            path,
            headers,
            body,
        })
    }

    /// The canned answer to a request; notifications get none.
    fn answer(body: &str) -> Option<Value> {
        let message: Value = serde_json::from_str(body).unwrap();
        let id = message.get("id")?.clone();
        let result = match message["method"].as_str()? {
            "initialize" => json!({
                "protocolVersion": "2024-11-05",
                "capabilities": { "tools": {} },
                "serverInfo": { "name": "legacy", "version": "1.0.0" },
            }),
            "tools/list" => json!({ "tools": [{
                "name": "echo",
                "description": "Says it back.",
                "inputSchema": { "type": "object", "properties": { "text": { "type": "string" } } },
            }]}),
            "tools/call" => {
                let text = message["params"]["arguments"]["text"]
                    .as_str()
                    .unwrap_or("");
                json!({ "content": [{ "type": "text", "text": format!("echo: {text}") }] })
            }
            _ => {
                return Some(json!({
                    "jsonrpc": "2.0", "id": id,
                    "error": { "code": -32601, "message": "method not found" },
                }));
            }
        };
        Some(json!({ "jsonrpc": "2.0", "id": id, "result": result }))
    }

    /// A `message` event, its JSON pretty-printed over several `data:` lines with `\r\n`.
    fn message_frame(message: &Value) -> String {
        let mut frame = String::from(": keep-alive\r\nevent: message\r\n");
        for line in serde_json::to_string_pretty(message).unwrap().lines() {
            frame.push_str(&format!("data: {line}\r\n"));
        }
        frame.push_str("\r\n");
        frame
    }

    fn client() -> Client {
        crate::hooks::http_client().unwrap()
    }

    async fn connect(
        server: &TestServer,
        path: &str,
        max: usize,
    ) -> Result<SseTransport, SseError> {
        let headers = BTreeMap::from([("X-Token".to_owned(), "secret".to_owned())]);
        within(SseTransport::connect(
            client(),
            &server.url(path),
            &headers,
            max,
        ))
        .await
    }

    async fn within<T>(future: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(10), future)
            .await
            .expect("timed out")
    }

    fn text(result: &rmcp::model::CallToolResult) -> &str {
        &result.content[0].as_text().expect("a text block").text
    }

    #[tokio::test]
    async fn a_full_rmcp_session_runs_over_a_legacy_server() {
        let server = TestServer::start(Some("messages?sessionId=abc")).await;
        let transport = connect(&server, "/mcp/sse", 1 << 20).await.unwrap();
        let endpoint = server.url("/mcp/messages?sessionId=abc");
        assert_eq!(transport.endpoint().as_str(), endpoint);

        let client = within(().serve(transport)).await.unwrap();
        let info = client.peer_info().unwrap();
        assert_eq!(info.server_info.as_ref().unwrap().name, "legacy");
        let tools = within(client.list_tools(None)).await.unwrap();
        assert_eq!(tools.tools.len(), 1);
        assert_eq!(tools.tools[0].name, "echo");
        let call = |text: &str| {
            let arguments = json!({ "text": text }).as_object().unwrap().clone();
            client.call_tool(CallToolRequestParams::new("echo").with_arguments(arguments))
        };
        let result = within(call("hi")).await.unwrap();
        assert_eq!(text(&result), "echo: hi");
        // Concurrent calls: each POST runs on its own.
        let (a, b) = within(async { tokio::join!(call("a"), call("b")) }).await;
        assert_eq!(text(&a.unwrap()), "echo: a");
        assert_eq!(text(&b.unwrap()), "echo: b");

        let seen = server.seen();
        let get = &seen[0];
        assert_eq!(
            (get.method.as_str(), get.path.as_str()),
            ("GET", "/mcp/sse")
        );
        assert_eq!(get.header("accept"), Some("text/event-stream"));
        assert_eq!(get.header("x-token"), Some("secret"));
        let posts: Vec<&Seen> = seen.iter().filter(|s| s.method == "POST").collect();
        // initialize, initialized, tools/list and three calls.
        assert_eq!(posts.len(), 6, "{seen:#?}");
        for post in posts {
            assert_eq!(post.path, "/mcp/messages?sessionId=abc");
            assert_eq!(post.header("x-token"), Some("secret"));
            assert_eq!(post.header("content-type"), Some("application/json"));
        }

        // The server ending the stream ends the session.
        server.end_stream();
        let reason = within(client.waiting()).await.unwrap();
        assert!(
            matches!(reason, rmcp::service::QuitReason::Closed),
            "{reason:?}"
        );
    }

    #[tokio::test]
    async fn receive_skips_what_is_not_json_rpc_and_ends_with_the_stream() {
        let server = TestServer::start(Some("/mcp/messages")).await;
        let mut transport = connect(&server, "/mcp/sse", 1 << 20).await.unwrap();
        server.push("data: not json\n\nevent: other\ndata: {}\n\n");
        server.push(&message_frame(
            &json!({ "jsonrpc": "2.0", "method": "notifications/tools/list_changed" }),
        ));
        assert!(within(transport.receive()).await.is_some());
        server.end_stream();
        assert!(within(transport.receive()).await.is_none());
        assert!(within(transport.receive()).await.is_none());
    }

    #[tokio::test]
    async fn an_event_over_the_limit_ends_the_stream() {
        let server = TestServer::start(Some("/mcp/messages")).await;
        let mut transport = connect(&server, "/mcp/sse", 1024).await.unwrap();
        let small = message_frame(
            &json!({ "jsonrpc": "2.0", "method": "notifications/tools/list_changed" }),
        );
        let large =
            json!({ "jsonrpc": "2.0", "method": "x", "params": { "pad": "x".repeat(4096) } });
        server.push(&message_frame(&large));
        server.push(&small);
        assert!(within(transport.receive()).await.is_none());
        assert!(within(transport.receive()).await.is_none());

        // Under a higher limit, the same events arrive.
        let server = TestServer::start(Some("/mcp/messages")).await;
        let mut transport = connect(&server, "/mcp/sse", 8192).await.unwrap();
        server.push(&message_frame(&large));
        server.push(&small);
        assert!(within(transport.receive()).await.is_some());
        assert!(within(transport.receive()).await.is_some());
    }

    #[tokio::test]
    async fn a_cross_origin_endpoint_is_refused() {
        for endpoint in ["http://evil.example/messages", "//localhost:1/messages"] {
            let server = TestServer::start(Some(endpoint)).await;
            let err = connect(&server, "/mcp/sse", 1 << 20).await.unwrap_err();
            assert!(matches!(err, SseError::CrossOrigin { .. }), "{err}");
            assert!(err.to_string().contains(&server.url("/mcp/sse")), "{err}");
        }
    }

    #[tokio::test]
    async fn http_failures_name_the_url_and_status() {
        let server = TestServer::start(Some("/nowhere")).await;
        let err = connect(&server, "/missing", 1 << 20).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{} answered HTTP 404 Not Found: no such page",
                server.url("/missing")
            )
        );
        let err = connect(&server, "/mcp/plain", 1 << 20).await.unwrap_err();
        assert!(matches!(err, SseError::NotEventStream { .. }), "{err}");

        // The stream is fine, its endpoint is not.
        let mut transport = connect(&server, "/mcp/sse", 1 << 20).await.unwrap();
        let message = serde_json::from_value(
            json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }),
        )
        .unwrap();
        let err = within(transport.send(message)).await.unwrap_err();
        assert!(
            err.to_string()
                .starts_with(&format!("{} answered HTTP 404", server.url("/nowhere"))),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_stream_that_ends_before_its_endpoint_is_an_error() {
        let server = TestServer::start(None).await;
        server.end_stream();
        let err = connect(&server, "/mcp/sse", 1 << 20).await.unwrap_err();
        assert!(matches!(err, SseError::NoEndpoint { .. }), "{err}");
        let err = within(SseTransport::connect(
            client(),
            "not a url",
            &BTreeMap::new(),
            1024,
        ))
        .await
        .unwrap_err();
        assert!(matches!(err, SseError::Url { .. }), "{err}");
    }
}
