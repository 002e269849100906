//! The status pages and the request router: pure, tested on the host
//! (`cargo test -p httpd`). `main.rs` gathers the [`Status`] from the
//! supervisor and serves it on port 80.
//!
//! - `GET /` — an HTML page: the device, its profile, memory, tasks and
//!   services.
//! - `GET /status.json` — the same [`Status`] as JSON (serde_json).
//!
//! Any other path is 404, any other method 405, a malformed or oversized
//! request 400. Every response closes the connection.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use serde::Serialize;

/// Longest request (line and headers) read.
pub const MAX_REQUEST: usize = 4096;

#[derive(Serialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Memory {
    pub pool_total: u64,
    pub pool_free: u64,
    pub kernel_objects: u64,
    pub free_ram: u64,
    pub kernel_heap: u64,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub id: u64,
    pub name: String,
    pub state: String,
    pub memory_used: u64,
    pub memory_limit: u64,
    pub cpu_us: u64,
    pub restarts: u64,
    pub priority: u64,
    pub device: String,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: String,
    pub provider: String,
    pub clients: u64,
}

#[derive(Serialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    pub device: String,
    pub profile: String,
    pub uptime_ms: u64,
    pub memory: Memory,
    pub tasks: Vec<Task>,
    pub services: Vec<Service>,
}

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Html,
    Json,
    NotFound,
    MethodNotAllowed,
    BadRequest,
}

/// `None` while the request's headers are incomplete (read more);
/// otherwise the route.
pub fn route(request: &[u8]) -> Option<Route> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Request::new(&mut headers);
    match r.parse(request) {
        Ok(httparse::Status::Partial) if request.len() < MAX_REQUEST => None,
        Ok(httparse::Status::Partial) | Err(_) => Some(Route::BadRequest),
        Ok(httparse::Status::Complete(_)) => {
            if r.method != Some("GET") && r.method != Some("HEAD") {
                return Some(Route::MethodNotAllowed);
            }
            let path = r.path.unwrap_or("");
            let path = path.split('?').next().unwrap_or("");
            Some(match path {
                "/" | "/index.html" => Route::Html,
                "/status.json" => Route::Json,
                _ => Route::NotFound,
            })
        }
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn kib(bytes: u64) -> String {
    format!("{} KiB", bytes / 1024)
}

pub fn json(status: &Status) -> String {
    serde_json::to_string(status).unwrap_or_else(|_| String::from("{}"))
}

pub fn html(s: &Status) -> String {
    let mut h = String::new();
    let name = escape(&s.device);
    h.push_str(&format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{name} — Kestrel</title></head><body>\n\
         <h1>{name}</h1>\n<p>Profile <b>{}</b>, up {}.{:03} s. <a href=\"/status.json\">JSON</a></p>\n",
        escape(&s.profile),
        s.uptime_ms / 1000,
        s.uptime_ms % 1000
    ));
    let m = &s.memory;
    h.push_str(&format!(
        "<h2>Memory</h2>\n<p>init's pool {} of which {} free; kernel objects {}; free RAM {}; kernel heap {}</p>\n",
        kib(m.pool_total),
        kib(m.pool_free),
        kib(m.kernel_objects),
        kib(m.free_ram),
        kib(m.kernel_heap)
    ));
    h.push_str("<h2>Tasks</h2>\n<table>\n<tr><th>ID</th><th>Name</th><th>State</th><th>Memory</th><th>Limit</th><th>CPU µs</th><th>Restarts</th><th>Priority</th><th>Device</th></tr>\n");
    for t in &s.tasks {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            t.id,
            escape(&t.name),
            escape(&t.state),
            kib(t.memory_used),
            kib(t.memory_limit),
            t.cpu_us,
            t.restarts,
            t.priority,
            escape(&t.device)
        ));
    }
    h.push_str("</table>\n<h2>Services</h2>\n<table>\n<tr><th>Service</th><th>Provider</th><th>Clients</th></tr>\n");
    for v in &s.services {
        h.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&v.name),
            escape(&v.provider),
            v.clients
        ));
    }
    h.push_str("</table>\n</body></html>\n");
    h
}

/// The whole response for `route` (`head`: headers only).
pub fn response(route: Route, status: &Status, head: bool) -> Vec<u8> {
    let (code, kind, body) = match route {
        Route::Html => ("200 OK", "text/html; charset=utf-8", html(status)),
        Route::Json => ("200 OK", "application/json", json(status)),
        Route::NotFound => ("404 Not Found", "text/plain", String::from("not found\n")),
        Route::MethodNotAllowed => ("405 Method Not Allowed", "text/plain", String::from("GET only\n")),
        Route::BadRequest => ("400 Bad Request", "text/plain", String::from("bad request\n")),
    };
    let mut out = format!(
        "HTTP/1.1 {code}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\nServer: kestrel-httpd\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// Whether the request is a HEAD.
pub fn is_head(request: &[u8]) -> bool {
    request.starts_with(b"HEAD ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Status {
        Status {
            device: String::from("phone<1>"),
            profile: String::from("phone"),
            uptime_ms: 1234,
            memory: Memory {
                pool_total: 1 << 20,
                ..Memory::default()
            },
            tasks: alloc::vec![Task {
                id: 3,
                name: String::from("net"),
                state: String::from("running"),
                memory_used: 4096,
                memory_limit: 8192,
                cpu_us: 10,
                restarts: 1,
                priority: 16,
                device: String::new(),
            }],
            services: alloc::vec![Service {
                name: String::from("net"),
                provider: String::from("net"),
                clients: 2,
            }],
        }
    }

    #[test]
    fn routes() {
        assert_eq!(route(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Some(Route::Html));
        assert_eq!(route(b"GET /status.json?x=1 HTTP/1.1\r\n\r\n"), Some(Route::Json));
        assert_eq!(route(b"GET /etc/passwd HTTP/1.1\r\n\r\n"), Some(Route::NotFound));
        assert_eq!(route(b"POST / HTTP/1.1\r\n\r\n"), Some(Route::MethodNotAllowed));
        assert_eq!(route(b"GET / HTTP/1.1\r\nHost: x\r\n"), None, "headers not finished");
        assert_eq!(route(b"\x00\x01garbage\r\n\r\n"), Some(Route::BadRequest));
        let long: Vec<u8> = b"GET /"
            .iter()
            .copied()
            .chain(core::iter::repeat_n(b'a', MAX_REQUEST))
            .collect();
        assert_eq!(route(&long), Some(Route::BadRequest), "oversized");
    }

    #[test]
    fn json_has_every_part() {
        let j = json(&sample());
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["device"], "phone<1>");
        assert_eq!(v["profile"], "phone");
        assert_eq!(v["tasks"][0]["name"], "net");
        assert_eq!(v["services"][0]["clients"], 2);
        assert_eq!(v["memory"]["pool_total"], 1 << 20);
    }

    #[test]
    fn html_escapes_names() {
        let h = html(&sample());
        assert!(h.contains("<h1>phone&lt;1&gt;</h1>"));
        assert!(h.contains("<td>net</td>"));
        assert!(!h.contains("phone<1>"));
    }

    #[test]
    fn responses_have_lengths() {
        let r = response(Route::Json, &sample(), false);
        let text = String::from_utf8(r).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
        let h = response(Route::NotFound, &sample(), true);
        assert!(String::from_utf8(h).unwrap().ends_with("\r\n\r\n"));
    }
}
