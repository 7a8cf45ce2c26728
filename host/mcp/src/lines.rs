//! The stdio transport: one JSON-RPC message per line, in and out.
//!
//! rmcp's own line transport reads every message through its typed model,
//! whose untagged enums buffer the whole message and try each request type
//! in turn, so a 64 KiB `tools/call` was copied and parsed several times
//! before the handler built a tree of its arguments, which the runtime then
//! serialised again for the guest. Here a `tools/call` is taken apart once:
//! its arguments stay the text the client sent ([`RawArguments`], in the
//! request's extensions), checked by the runtime against the tool's schema
//! and handed to the guest as they are. Every other message goes through
//! rmcp's model as before.
//!
//! Answers are serialised by the task rmcp spawns for each, then queued for
//! one writer task, which writes whatever has gathered in one go: with many
//! requests in flight, many answers share a write.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequest, CallToolRequestParams, ClientNotification, ClientRequest, ErrorData,
    JsonObject, JsonRpcMessage, JsonRpcRequest, RequestId, RequestMetaObject, ServerResult,
};
use rmcp::service::{RoleServer, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::Notify;

/// The longest message read; a longer line is dropped, as rmcp does, so
/// that a client that never ends a line cannot grow the server without end.
pub(crate) const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// Past this many bytes of answers waiting for the client to read them, the
/// server reads no more requests until it does: a client that stops reading
/// holds the server's memory to this, and the answers of the calls it had
/// already sent.
const MAX_UNWRITTEN_BYTES: usize = 8 << 20;

/// A line buffer grown past this by a long message is given back.
const LINE_CAPACITY_KEPT: usize = 1 << 20;

/// How long a closing server waits for the client to read what is left.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// The arguments of a `tools/call`, as the JSON text the client sent: a
/// JSON object, checked to be well-formed.
#[derive(Clone, Debug)]
pub(crate) struct RawArguments(pub(crate) Arc<str>);

/// Where the handler leaves a plugin's JSON object answer, for the writer
/// to put into the result as `structuredContent` as it was written: parsing
/// it into a tree and serialising the tree took four times as long as
/// writing the answer's text (the MCP bench's last table).
#[derive(Clone, Debug, Default)]
pub(crate) struct AnswerSlot(Arc<Mutex<Slot>>);

#[derive(Debug, Default)]
enum Slot {
    #[default]
    Empty,
    Left(Arc<str>),
    /// Two calls in flight under one id: the writer cannot tell their
    /// answers apart, so both put their structured content inline.
    Shared,
}

impl AnswerSlot {
    /// Leave `object` (JSON text the runtime checked, starting with `{`)
    /// for the answer; false if it is not an object or the slot cannot
    /// take it, and the caller puts it into the result itself.
    pub(crate) fn leave(&self, object: Arc<str>) -> bool {
        if !object.starts_with('{') {
            return false;
        }
        let mut slot = self.0.lock().unwrap();
        match *slot {
            Slot::Empty => {
                *slot = Slot::Left(object);
                true
            }
            Slot::Left(_) | Slot::Shared => false,
        }
    }

    fn take(&self) -> Option<Arc<str>> {
        let mut slot = self.0.lock().unwrap();
        match std::mem::take(&mut *slot) {
            Slot::Left(object) => Some(object),
            Slot::Empty => None,
            Slot::Shared => {
                *slot = Slot::Shared;
                None
            }
        }
    }

    fn share(&self) {
        *self.0.lock().unwrap() = Slot::Shared;
    }
}

pub(crate) struct LineTransport<R> {
    read: BufReader<R>,
    line: Vec<u8>,
    /// Set while the rest of an oversized line is skipped.
    discarding: bool,
    writer: Arc<Writer>,
    writing: Option<tokio::task::JoinHandle<()>>,
}

impl<R: AsyncRead + Unpin + Send> LineTransport<R> {
    pub(crate) fn new<W: AsyncWrite + Unpin + Send + 'static>(read: R, write: W) -> Self {
        let writer = Arc::new(Writer::default());
        let writing = tokio::spawn(writer.clone().write_to(write));
        LineTransport {
            read: BufReader::with_capacity(64 << 10, read),
            line: Vec::new(),
            discarding: false,
            writer,
            writing: Some(writing),
        }
    }

    /// The next whole line into `self.line`, without its newline; false at
    /// the end of input. Cancel-safe: rmcp polls `receive` in a `select!`,
    /// and a partial line stays in `self.line` for the next call.
    async fn read_line(&mut self) -> std::io::Result<bool> {
        loop {
            let available = self.read.fill_buf().await?;
            if available.is_empty() {
                return Ok(false);
            }
            let newline = available.iter().position(|&b| b == b'\n');
            let take = newline.map_or(available.len(), |at| at + 1);
            if self.discarding {
                self.discarding = newline.is_none();
            } else if self.line.len() + take > MAX_MESSAGE_BYTES + 1 {
                tracing::error!(
                    "a message longer than {} MiB was dropped",
                    MAX_MESSAGE_BYTES >> 20
                );
                self.line.clear();
                self.discarding = newline.is_none();
            } else {
                self.line.extend_from_slice(&available[..take]);
                if newline.is_some() {
                    self.read.consume(take);
                    self.line.pop();
                    if self.line.last() == Some(&b'\r') {
                        self.line.pop();
                    }
                    return Ok(true);
                }
            }
            self.read.consume(take);
        }
    }
}

/// What one line is.
#[derive(Debug)]
enum Decoded {
    Message(Box<RxJsonRpcMessage<RoleServer>>),
    /// Not JSON, or a notification of no known shape: no answer, as the
    /// official SDKs do (there is no id to answer, and answering garbage can
    /// start an echo storm).
    Ignored,
    /// JSON that is not a message: Invalid Request, to the request's id
    /// when it has one.
    Invalid(Option<RequestId>),
}

fn decode(line: &[u8]) -> Decoded {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    if let Some(call) = tool_call(line) {
        return Decoded::Message(Box::new(call));
    }
    match serde_json::from_slice::<RxJsonRpcMessage<RoleServer>>(line) {
        Ok(message) => Decoded::Message(Box::new(message)),
        Err(error) if error.is_syntax() || error.is_eof() => {
            tracing::debug!("ignored a line that is not JSON: {error}");
            Decoded::Ignored
        }
        Err(error) => {
            #[derive(Deserialize)]
            struct Shape {
                id: Option<RequestId>,
                result: Option<serde::de::IgnoredAny>,
                error: Option<serde::de::IgnoredAny>,
            }
            match serde_json::from_slice::<Shape>(line) {
                // JSON-RPC never answers a notification, nor a response (a
                // client's answer to the server, whose id may also be one of
                // the client's own requests).
                Ok(Shape { id: None, .. }) => Decoded::Ignored,
                Ok(
                    Shape {
                        result: Some(_), ..
                    }
                    | Shape { error: Some(_), .. },
                ) => {
                    tracing::debug!("ignored a response that is not one: {error}");
                    Decoded::Ignored
                }
                Ok(Shape { id, .. }) => {
                    tracing::debug!("not a JSON-RPC message: {error}");
                    Decoded::Invalid(id)
                }
                Err(_) => Decoded::Invalid(None),
            }
        }
    }
}

/// A `tools/call` with object arguments, taken apart with its arguments
/// left as text; None for anything else, which rmcp's model then reads.
fn tool_call(line: &[u8]) -> Option<RxJsonRpcMessage<RoleServer>> {
    #[derive(Deserialize)]
    struct Envelope<'a> {
        #[serde(borrow)]
        jsonrpc: Cow<'a, str>,
        id: RequestId,
        #[serde(borrow)]
        method: Cow<'a, str>,
        #[serde(borrow)]
        params: &'a RawValue,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Params<'a> {
        #[serde(borrow)]
        name: Cow<'a, str>,
        #[serde(borrow)]
        arguments: Option<&'a RawValue>,
        #[serde(rename = "_meta")]
        meta: Option<JsonObject>,
        // Fields the fast path does not carry: such a call goes through
        // rmcp's model instead.
        #[serde(borrow)]
        input_responses: Option<&'a RawValue>,
        #[serde(borrow)]
        request_state: Option<&'a RawValue>,
    }
    // A duplicate key is an error here, so the call goes the typed way.
    let envelope: Envelope = serde_json::from_slice(line).ok()?;
    if envelope.jsonrpc != "2.0" || envelope.method != "tools/call" {
        return None;
    }
    let params: Params = serde_json::from_str(envelope.params.get()).ok()?;
    if params.input_responses.is_some() || params.request_state.is_some() {
        return None;
    }
    let arguments = match params.arguments {
        None => None,
        // Anything but an object is rmcp's to refuse, with its own message.
        Some(raw) if raw.get().starts_with('{') => Some(RawArguments(Arc::from(raw.get()))),
        Some(_) => return None,
    };
    let mut request = CallToolRequest::new(CallToolRequestParams::new(params.name.into_owned()));
    // Where rmcp's own reading puts `_meta` (the progress token).
    if let Some(meta) = params.meta {
        request.extensions.insert(RequestMetaObject::from(meta));
    }
    if let Some(arguments) = arguments {
        request.extensions.insert(arguments);
    }
    request.extensions.insert(AnswerSlot::default());
    Some(JsonRpcMessage::Request(JsonRpcRequest::new(
        envelope.id,
        ClientRequest::from(request),
    )))
}

/// The slot a decoded call carries, if it has one.
fn slot_of(message: &RxJsonRpcMessage<RoleServer>) -> Option<(RequestId, AnswerSlot)> {
    let JsonRpcMessage::Request(request) = message else {
        return None;
    };
    let ClientRequest::CallToolRequest(call) = &request.request else {
        return None;
    };
    let slot = call.extensions.get::<AnswerSlot>()?.clone();
    Some((request.id.clone(), slot))
}

/// `message` serialised as one line, with `structured` as its result's
/// `structuredContent` when there is one.
fn serialise(
    message: &TxJsonRpcMessage<RoleServer>,
    structured: Option<&str>,
) -> serde_json::Result<Vec<u8>> {
    let mut line = serde_json::to_vec(message)?;
    let takes_it = matches!(
        message,
        JsonRpcMessage::Response(response)
            if matches!(&response.result, ServerResult::CallToolResult(result)
                if result.structured_content.is_none() && !result.content.is_empty())
    );
    if let Some(object) = structured.filter(|_| takes_it) {
        // A response is `{"jsonrpc":..,"id":..,"result":{...}}`: the result
        // is the last member, so its object ends one byte before the line,
        // and it has members (its content) for this one to follow.
        if line.ends_with(b"}}") {
            line.truncate(line.len() - 2);
            line.extend_from_slice(b",\"structuredContent\":");
            let start = line.len();
            line.extend_from_slice(object.as_bytes());
            // The answer is the plugin's: valid JSON, but it may hold line
            // breaks between its tokens, and a line break here would end
            // this message and start one of the plugin's choosing (a forged
            // answer to another call). Inside a JSON string they are always
            // escaped, so every raw one is whitespace, and a space will do.
            let written = &mut line[start..];
            if memchr::memchr2(b'\n', b'\r', written).is_some() {
                for byte in written {
                    if matches!(byte, b'\n' | b'\r') {
                        *byte = b' ';
                    }
                }
            }
            line.extend_from_slice(b"}}");
        }
    }
    line.push(b'\n');
    Ok(line)
}

/// Answers serialised and waiting for the writer task.
#[derive(Default)]
struct Writer {
    state: Mutex<Unwritten>,
    /// The answer slots of the calls not answered yet, by request id.
    slots: Mutex<HashMap<RequestId, AnswerSlot>>,
    /// Wakes the writer task: something to write, or the end.
    queued: Notify,
    /// Wakes answers waiting for room.
    written: Notify,
}

#[derive(Default)]
struct Unwritten {
    bytes: Vec<u8>,
    closed: bool,
    /// Why writing stopped, if it did: every later answer fails with it.
    failed: Option<std::io::ErrorKind>,
}

impl<R> Drop for LineTransport<R> {
    /// A transport dropped without `close` (a handshake that failed) still
    /// lets its writer write what is queued, and end.
    fn drop(&mut self) {
        self.writer.close();
    }
}

impl Writer {
    fn close(&self) {
        self.state.lock().unwrap().closed = true;
        self.queued.notify_one();
        self.written.notify_waiters();
    }

    /// The answer slot of call `id`, no longer kept.
    fn slot_for(&self, id: &RequestId) -> Option<AnswerSlot> {
        self.slots.lock().unwrap().remove(id)
    }

    fn queue(&self, line: &[u8]) -> std::io::Result<()> {
        let mut state = self.state.lock().unwrap();
        if let Some(kind) = state.failed {
            return Err(std::io::Error::new(kind, "the client's end is closed"));
        }
        if state.closed {
            return Err(std::io::ErrorKind::NotConnected.into());
        }
        state.bytes.extend_from_slice(line);
        drop(state);
        self.queued.notify_one();
        Ok(())
    }

    /// Wait while more than [`MAX_UNWRITTEN_BYTES`] wait for the client to
    /// read them; false once nothing can be written any more. Reading the
    /// next request waits for this, so a client that stops reading stops
    /// the server from reading, and from starting calls whose answers would
    /// pile up.
    async fn room(&self) -> bool {
        loop {
            let written = self.written.notified();
            {
                let state = self.state.lock().unwrap();
                if state.failed.is_some() || state.closed {
                    return false;
                }
                if state.bytes.len() <= MAX_UNWRITTEN_BYTES {
                    return true;
                }
            }
            written.await;
        }
    }

    async fn write_to<W: AsyncWrite + Unpin>(self: Arc<Self>, mut write: W) {
        let mut batch = Vec::new();
        loop {
            let queued = self.queued.notified();
            let closed = {
                let mut state = self.state.lock().unwrap();
                std::mem::swap(&mut batch, &mut state.bytes);
                state.closed
            };
            if batch.is_empty() {
                if closed {
                    let _ = write.shutdown().await;
                    return;
                }
                queued.await;
                continue;
            }
            let outcome = match write.write_all(&batch).await {
                Ok(()) => write.flush().await,
                Err(error) => Err(error),
            };
            batch.clear();
            if batch.capacity() > LINE_CAPACITY_KEPT {
                batch = Vec::new();
            }
            if let Err(error) = outcome {
                tracing::debug!("stdout closed: {error}");
                let mut state = self.state.lock().unwrap();
                state.failed = Some(error.kind());
                state.bytes = Vec::new();
                drop(state);
                self.written.notify_waiters();
                return;
            }
            self.written.notify_waiters();
        }
    }
}

impl<R: AsyncRead + Unpin + Send> Transport<RoleServer> for LineTransport<R> {
    type Error = std::io::Error;

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleServer>,
    ) -> impl std::future::Future<Output = Result<(), Self::Error>> + Send + 'static {
        let writer = self.writer.clone();
        let slot = match &item {
            JsonRpcMessage::Response(response) => writer.slot_for(&response.id),
            JsonRpcMessage::Error(error) => error.id.as_ref().and_then(|id| writer.slot_for(id)),
            _ => None,
        };
        async move {
            let structured = match (&item, slot) {
                (JsonRpcMessage::Response(_), Some(slot)) => slot.take(),
                _ => None,
            };
            let line = serialise(&item, structured.as_deref())?;
            writer.queue(&line)
        }
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleServer>> {
        loop {
            // A client whose end is closed ends the session: nothing could
            // tell it what its calls did.
            if !self.writer.room().await {
                return None;
            }
            match self.read_line().await {
                Ok(true) => {}
                Ok(false) => return None,
                Err(error) => {
                    tracing::error!("cannot read stdin: {error}");
                    return None;
                }
            }
            let decoded = if self.line.iter().all(u8::is_ascii_whitespace) {
                Decoded::Ignored
            } else {
                decode(&self.line)
            };
            self.line.clear();
            if self.line.capacity() > LINE_CAPACITY_KEPT {
                self.line = Vec::new();
            }
            match decoded {
                Decoded::Message(message) => {
                    if let Some((id, slot)) = slot_of(&message) {
                        let mut slots = self.writer.slots.lock().unwrap();
                        match slots.get(&id) {
                            Some(earlier) => {
                                earlier.share();
                                slot.share();
                            }
                            None => {
                                slots.insert(id, slot);
                            }
                        }
                    }
                    // rmcp answers nothing to a cancelled call: its slot
                    // would wait for ever.
                    if let JsonRpcMessage::Notification(notification) = &*message {
                        if let ClientNotification::CancelledNotification(cancelled) =
                            &notification.notification
                        {
                            if let Some(id) = &cancelled.params.request_id {
                                self.writer.slot_for(id);
                            }
                        }
                    }
                    return Some(*message);
                }
                Decoded::Ignored => continue,
                Decoded::Invalid(id) => {
                    let error = TxJsonRpcMessage::<RoleServer>::error(
                        ErrorData::invalid_request("Invalid Request: not a JSON-RPC message", None),
                        id,
                    );
                    if self.send(error).await.is_err() {
                        return None;
                    }
                }
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.writer.close();
        // Every answer queued is written before the process may exit,
        // unless the client has stopped reading.
        if let Some(mut writing) = self.writing.take() {
            if tokio::time::timeout(CLOSE_WAIT, &mut writing)
                .await
                .is_err()
            {
                tracing::warn!("the client did not read the last answers; they are dropped");
                writing.abort();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    type ClientRead = tokio::io::ReadHalf<tokio::io::DuplexStream>;
    type ClientWrite = tokio::io::WriteHalf<tokio::io::DuplexStream>;

    /// A transport on one end of an in-memory pipe of `buffer` bytes, and
    /// the client's two halves of the other end.
    fn connected(buffer: usize) -> (LineTransport<ClientRead>, ClientRead, ClientWrite) {
        let (client, server) = tokio::io::duplex(buffer);
        let (read, write) = tokio::io::split(server);
        let (client_read, client_write) = tokio::io::split(client);
        (LineTransport::new(read, write), client_read, client_write)
    }

    fn typed(line: &str) -> RxJsonRpcMessage<RoleServer> {
        serde_json::from_str(line).expect("rmcp reads it")
    }

    fn call_parts(message: &RxJsonRpcMessage<RoleServer>) -> (Value, Option<String>) {
        let JsonRpcMessage::Request(request) = message else {
            panic!("a request: {message:?}")
        };
        let raw = match &request.request {
            ClientRequest::CallToolRequest(call) => call
                .extensions
                .get::<RawArguments>()
                .map(|raw| raw.0.to_string()),
            other => panic!("a tools/call: {other:?}"),
        };
        (serde_json::to_value(message).unwrap(), raw)
    }

    #[test]
    fn a_tool_call_keeps_its_arguments_as_sent_and_the_rest_as_rmcp_reads_it() {
        let line = r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"t__x","arguments":{ "text" : "a\"b\u00e9" },"_meta":{"progressToken":"p1"}}}"#;
        let Decoded::Message(fast) = decode(line.as_bytes()) else {
            panic!("decoded")
        };
        let (fast_json, raw) = call_parts(&fast);
        assert_eq!(raw.as_deref(), Some(r#"{ "text" : "a\"b\u00e9" }"#));
        // Without the arguments, what the handler sees is what rmcp would
        // have made of the line, progress token included.
        let mut slow_json = serde_json::to_value(typed(line)).unwrap();
        slow_json["params"]
            .as_object_mut()
            .unwrap()
            .remove("arguments");
        assert_eq!(fast_json, slow_json);
        assert_eq!(fast_json["params"]["_meta"]["progressToken"], "p1");
    }

    #[test]
    fn what_the_fast_path_does_not_carry_goes_through_rmcp() {
        for line in [
            // Not an object: rmcp's invalid-params answer.
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":"banana"}}"#,
            // No name.
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}"#,
            // Two `arguments`: no guessing which one the guest would read.
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{"a":1},"arguments":{"a":2}}}"#,
            // Two ids.
            r#"{"jsonrpc":"2.0","id":1,"id":2,"method":"tools/call","params":{"name":"t","arguments":{}}}"#,
            r#"{"jsonrpc":"1.0","id":1,"method":"tools/call","params":{"name":"t","arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#,
        ] {
            assert!(tool_call(line.as_bytes()).is_none(), "{line}");
        }
    }

    #[test]
    fn a_call_without_arguments_has_none() {
        let line = r#"{"jsonrpc":"2.0","id":"a","method":"tools/call","params":{"name":"t","arguments":null}}"#;
        let (json, raw) = call_parts(&tool_call(line.as_bytes()).expect("fast"));
        assert_eq!(raw, None);
        assert_eq!(json["id"], "a");
    }

    #[test]
    fn lines_that_are_not_messages() {
        assert!(matches!(decode(b"{not json"), Decoded::Ignored));
        assert!(matches!(
            decode(br#"{"jsonrpc":"2.0","method":"notifications/whatever","params":5}"#),
            Decoded::Ignored | Decoded::Message(_)
        ));
        // A response rmcp cannot read is not answered: its id may be one of
        // the client's own requests.
        assert!(matches!(
            decode(br#"{"jsonrpc":"2.0","id":2,"result":5,"error":7}"#),
            Decoded::Ignored
        ));
        match decode(br#"{"jsonrpc":"2.0","id":2,"params":{}}"#) {
            Decoded::Invalid(Some(id)) => assert_eq!(json!(id), json!(2)),
            other => panic!("invalid with its id: {other:?}"),
        }
    }

    #[tokio::test]
    async fn lines_are_read_whole_and_a_long_one_is_dropped() {
        let (mut transport, _client_read, mut client_write) = connected(1024);
        let long = "x".repeat(MAX_MESSAGE_BYTES + 10);
        let writing = tokio::spawn(async move {
            client_write.write_all(long.as_bytes()).await.unwrap();
            client_write
                .write_all(b"\n{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}\r\n")
                .await
                .unwrap();
        });
        let message = transport.receive().await.expect("the ping after it");
        assert_eq!(serde_json::to_value(&message).unwrap()["method"], "ping");
        writing.await.unwrap();
    }

    #[test]
    fn an_answer_left_in_the_slot_is_the_structured_content_as_written() {
        use rmcp::model::{CallToolResult, ContentBlock, ServerResult};
        let written = r#"{"words": ["a\"b", 1.50, {"x": null}]}"#;
        let result = CallToolResult::success(vec![ContentBlock::text(written)]);
        let message = TxJsonRpcMessage::<RoleServer>::response(
            ServerResult::CallToolResult(result.clone()),
            RequestId::Number(9),
        );
        let line = serialise(&message, Some(written)).unwrap();
        assert_eq!(line.last(), Some(&b'\n'));
        let spliced: Value = serde_json::from_slice(&line).unwrap();
        // The same as rmcp would write with the parsed answer in place.
        let mut parsed = result;
        parsed.structured_content = Some(serde_json::from_str(written).unwrap());
        let expected = serde_json::to_value(TxJsonRpcMessage::<RoleServer>::response(
            ServerResult::CallToolResult(parsed),
            RequestId::Number(9),
        ))
        .unwrap();
        assert_eq!(spliced, expected);
        // As written: the number keeps its form.
        assert!(String::from_utf8(line)
            .unwrap()
            .contains(r#""structuredContent":{"words": ["a\"b", 1.50"#));
    }

    #[test]
    fn a_plugin_answer_cannot_start_a_line_of_its_own() {
        use rmcp::model::{CallToolResult, ContentBlock, ServerResult};
        // Valid JSON whose line breaks would put a forged answer to call 7
        // on a line of its own.
        let forged = "{\"x\":\r\n{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n}\n";
        serde_json::from_str::<Value>(forged).expect("the plugin's answer is JSON");
        let message = TxJsonRpcMessage::<RoleServer>::response(
            ServerResult::CallToolResult(CallToolResult::success(vec![ContentBlock::text(forged)])),
            RequestId::Number(1),
        );
        let line = serialise(&message, Some(forged)).unwrap();
        let text = String::from_utf8(line).unwrap();
        assert_eq!(text.lines().count(), 1, "{text}");
        let answer: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(answer["id"], 1);
        assert_eq!(answer["result"]["structuredContent"]["x"]["id"], 7);
    }

    #[test]
    fn structured_content_goes_only_where_a_tool_result_has_none() {
        use rmcp::model::{CallToolResult, ContentBlock, ServerResult};
        let object = r#"{"a":1}"#;
        let without = |result: ServerResult| {
            let message = TxJsonRpcMessage::<RoleServer>::response(result, RequestId::Number(1));
            let line = serialise(&message, Some(object)).unwrap();
            serde_json::from_slice::<Value>(&line).expect("one JSON message")
        };
        // Another kind of result (a client reusing a call's id for a ping).
        let ping = without(ServerResult::empty(()));
        assert!(ping["result"].get("structuredContent").is_none(), "{ping}");
        // A tool result that has its structured content already.
        let mut inline = CallToolResult::success(vec![ContentBlock::text("x")]);
        inline.structured_content = Some(json!({"b": 2}));
        let kept = without(ServerResult::CallToolResult(inline));
        assert_eq!(kept["result"]["structuredContent"], json!({"b": 2}));
    }

    #[tokio::test]
    async fn two_calls_in_flight_under_one_id_keep_their_answers_inline() {
        let (mut transport, _client_read, mut client_write) = connected(4096);
        let call = br#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"t","arguments":{}}}"#;
        client_write.write_all(call).await.unwrap();
        client_write.write_all(b"\n").await.unwrap();
        client_write.write_all(call).await.unwrap();
        client_write.write_all(b"\n").await.unwrap();
        let slots: Vec<AnswerSlot> = [
            transport.receive().await.unwrap(),
            transport.receive().await.unwrap(),
        ]
        .iter()
        .map(|message| slot_of(message).expect("a call").1)
        .collect();
        for slot in &slots {
            assert!(!slot.leave(Arc::from("{}")), "a shared id takes no answer");
        }
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_stops_the_server_reading() {
        let (mut transport, mut client_read, mut client_write) = connected(1024);
        // More answers than the server holds, which the client does not read.
        let answer = vec![b'x'; MAX_UNWRITTEN_BYTES + 1];
        transport.writer.queue(&answer).unwrap();
        client_write
            .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"ping\"}\n")
            .await
            .unwrap();
        let waiting = tokio::time::timeout(Duration::from_millis(200), transport.receive()).await;
        assert!(waiting.is_err(), "a request was read while 8 MiB waited");
        // Once the client reads, the server reads again.
        let draining = tokio::spawn(async move {
            let mut sink = vec![0; 1 << 16];
            let mut read = 0;
            while read <= MAX_UNWRITTEN_BYTES {
                read += tokio::io::AsyncReadExt::read(&mut client_read, &mut sink)
                    .await
                    .unwrap();
            }
        });
        let message = transport
            .receive()
            .await
            .expect("the ping, once there is room");
        assert_eq!(serde_json::to_value(&message).unwrap()["method"], "ping");
        draining.await.unwrap();
    }

    #[test]
    fn a_slot_takes_objects_only() {
        let slot = AnswerSlot::default();
        assert!(!slot.leave(Arc::from("[1]")));
        assert!(!slot.leave(Arc::from("\"text\"")));
        assert!(slot.leave(Arc::from("{}")));
        assert_eq!(slot.take().as_deref(), Some("{}"));
        assert_eq!(slot.take(), None);
    }

    #[tokio::test]
    async fn answers_are_all_written_before_close_returns() {
        let (mut transport, mut client_read, client_write) = connected(64);
        let reading = tokio::spawn(async move {
            let mut all = String::new();
            tokio::io::AsyncReadExt::read_to_string(&mut client_read, &mut all)
                .await
                .unwrap();
            all
        });
        for id in 0..50 {
            let answer = TxJsonRpcMessage::<RoleServer>::error(
                ErrorData::invalid_request("x", None),
                Some(RequestId::Number(id)),
            );
            transport.send(answer).await.unwrap();
        }
        transport.close().await.unwrap();
        drop(transport);
        drop(client_write);
        let all = reading.await.unwrap();
        let ids: Vec<i64> = all
            .lines()
            .map(|line| {
                serde_json::from_str::<Value>(line).unwrap()["id"]
                    .as_i64()
                    .unwrap()
            })
            .collect();
        assert_eq!(ids, (0..50).collect::<Vec<_>>());
    }
}
