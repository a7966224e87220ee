//! A mock LLM API on 127.0.0.1, OpenAI-compatible (`POST /v1/chat/completions`) and
//! Anthropic-shaped (`POST /v1/messages`), answering plain JSON or, for `"stream": true`,
//! server-sent events written chunk by chunk.
//!
//! What it reports is scripted by the request: `max_tokens` is the number of completion
//! tokens (each streamed delta is the one-token text `" hi"`), and the `x-mock-prompt-tokens`
//! header (default 10) is the prompt's count in `usage`. OpenAI streams carry a final usage
//! chunk only when the request sets `stream_options.include_usage`, as the real API does.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::wire::{self, Bound, Wire};

/// One request the mock received in full.
#[derive(Debug, Clone)]
pub struct LlmRequest {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

#[derive(Debug, Default)]
struct Shared {
    requests: Mutex<Vec<LlmRequest>>,
    connections: AtomicUsize,
    stop: Arc<AtomicBool>,
}

/// The mock; stops when dropped.
#[derive(Debug)]
pub struct MockLlm {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl MockLlm {
    pub fn start() -> Self {
        let listener = super::bind_loopback();
        let addr = listener.local_addr().expect("mock llm: local_addr");
        listener.set_nonblocking(true).expect("nonblocking");
        let shared = Arc::new(Shared::default());
        let s = Arc::clone(&shared);
        thread::Builder::new()
            .name("mock-llm-accept".into())
            .spawn(move || {
                while !s.stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            s.connections.fetch_add(1, Ordering::SeqCst);
                            let s = Arc::clone(&s);
                            let _ = thread::Builder::new()
                                .name("mock-llm-conn".into())
                                .spawn(move || serve(stream, &s));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(2)),
                    }
                }
            })
            .expect("spawn mock llm");
        Self { addr, shared }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests received in full, in order.
    pub fn requests(&self) -> Vec<LlmRequest> {
        self.shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Connections accepted.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }
}

fn serve(stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut w = Wire::new(stream.try_clone()?, Bound::Stop(Arc::clone(&shared.stop)))?;
    let mut out = stream;
    loop {
        let Some(head) = w.read_head()? else {
            return Ok(());
        };
        let body = w.read_framed_body(&head.headers)?;
        let path = head
            .start
            .split_whitespace()
            .nth(1)
            .unwrap_or("/")
            .to_owned();
        let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let prompt_tokens: u64 = wire::header(&head.headers, "x-mock-prompt-tokens")
            .and_then(|v| v.parse().ok())
            .unwrap_or(10);
        shared
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(LlmRequest {
                path: path.clone(),
                headers: head.headers.clone(),
                body: json.clone(),
            });
        let completion = json.get("max_tokens").and_then(Value::as_u64).unwrap_or(5);
        let stream = json.get("stream").and_then(Value::as_bool) == Some(true);
        let anthropic = path.ends_with("/messages");
        match (anthropic, stream) {
            (false, false) => plain(&mut out, &openai_json(prompt_tokens, completion))?,
            (true, false) => plain(&mut out, &anthropic_json(prompt_tokens, completion))?,
            (false, true) => {
                let usage = json.pointer("/stream_options/include_usage") == Some(&json!(true));
                events(&mut out, &openai_events(prompt_tokens, completion, usage))?;
            }
            (true, true) => events(&mut out, &anthropic_events(prompt_tokens, completion))?,
        }
    }
}

fn openai_json(prompt: u64, completion: u64) -> Value {
    json!({
        "id": "chatcmpl-mock", "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": " hi".repeat(completion as usize)}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    })
}

fn anthropic_json(prompt: u64, completion: u64) -> Value {
    json!({
        "id": "msg_mock", "type": "message", "role": "assistant",
        "content": [{"type": "text", "text": " hi".repeat(completion as usize)}],
        "usage": {"input_tokens": prompt, "output_tokens": completion},
    })
}

fn openai_events(prompt: u64, completion: u64, usage: bool) -> Vec<String> {
    let mut out: Vec<String> = (0..completion)
        .map(|_| {
            let c = json!({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": " hi"}}]});
            format!("data: {c}\n\n")
        })
        .collect();
    if usage {
        let u = json!({"choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion}});
        out.push(format!("data: {u}\n\n"));
    }
    out.push("data: [DONE]\n\n".into());
    out
}

fn anthropic_events(prompt: u64, completion: u64) -> Vec<String> {
    let ev = |name: &str, v: Value| format!("event: {name}\ndata: {v}\n\n");
    let mut out = vec![ev(
        "message_start",
        json!({"type": "message_start", "message": {"usage": {"input_tokens": prompt, "output_tokens": 1}}}),
    )];
    for _ in 0..completion {
        out.push(ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " hi"}}),
        ));
    }
    out.push(ev(
        "message_delta",
        json!({"type": "message_delta", "usage": {"output_tokens": completion}}),
    ));
    out.push(ev("message_stop", json!({"type": "message_stop"})));
    out
}

fn plain(out: &mut TcpStream, body: &Value) -> io::Result<()> {
    let body = body.to_string();
    write!(
        out,
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}

/// Each event in its own chunk, a few milliseconds apart, as a model streams.
fn events(out: &mut TcpStream, events: &[String]) -> io::Result<()> {
    write!(
        out,
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
    )?;
    out.flush()?;
    let deadline = Instant::now() + Duration::from_secs(10);
    for e in events {
        write!(out, "{:x}\r\n{e}\r\n", e.len())?;
        out.flush()?;
        if Instant::now() < deadline {
            thread::sleep(Duration::from_millis(2));
        }
    }
    write!(out, "0\r\n\r\n")?;
    out.flush()
}
