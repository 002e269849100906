//! httpd: serves this device's status (see the library's docs) on TCP
//! port 80 through the network stack (`userlib::net`). One connection at
//! a time, each with a deadline, so a client that never finishes its
//! request holds the page up for at most that long.
//!
//! Arguments (from the profile): `name=DEVICE profile=PROFILE`.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(test), no_main)]

extern crate alloc;

#[cfg(not(test))]
mod serve {
    #![forbid(unsafe_code)]

    use alloc::string::String;
    use alloc::vec::Vec;
    use httpd::{is_head, response, route, Memory, Route, Service, Status, Task, MAX_REQUEST};
    use userlib::abi::boot_info::StartInfo;
    use userlib::ipc::Timeout;
    use userlib::names::supervisor;
    use userlib::net::{TcpListener, TcpStream};
    use userlib::{log, process, syscall};

    /// How long one connection may take.
    const CONNECTION_TIMEOUT: Timeout = Timeout::millis(5000);

    fn arg(key: &str) -> Option<&'static str> {
        process()
            .args()
            .split_whitespace()
            .find_map(|w| w.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v))
    }

    pub fn main(_start: &StartInfo) {
        let port = arg("port").and_then(|p| p.parse().ok()).unwrap_or(80u16);
        let mut said = false;
        let listener = loop {
            match TcpListener::bind(port) {
                Ok(l) => break l,
                Err(e) => {
                    if !said {
                        log::warn!("listen on port {port}: {e}; retrying");
                        said = true;
                    }
                    syscall::sleep_ms(1000);
                }
            }
        };
        log::info!("serving status on port {port}");
        loop {
            match listener.accept() {
                Ok((mut stream, peer)) => {
                    if let Err(e) = answer(&mut stream) {
                        log::warn!("{peer}: {e}");
                    }
                }
                Err(e) => {
                    log::warn!("accept: {e}");
                    syscall::sleep_ms(100);
                }
            }
        }
    }

    fn answer(stream: &mut TcpStream) -> Result<(), userlib::Error> {
        stream.set_timeout(CONNECTION_TIMEOUT);
        let mut request = Vec::new();
        let mut buf = [0u8; 1024];
        let r = loop {
            let n = stream.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            request.extend_from_slice(&buf[..n.min(MAX_REQUEST + 1 - request.len().min(MAX_REQUEST))]);
            if let Some(r) = route(&request) {
                break r;
            }
        };
        let status = if matches!(r, Route::Html | Route::Json) {
            gather()
        } else {
            Status::default()
        };
        stream.write_all(&response(r, &status, is_head(&request)))
    }

    fn gather() -> Status {
        let tasks = supervisor::tasks().unwrap_or_default();
        let services = supervisor::services().unwrap_or_default();
        let m = supervisor::memory().unwrap_or_default();
        let profile = String::from(arg("profile").unwrap_or("unknown"));
        Status {
            device: arg("name").map(String::from).unwrap_or_else(|| profile.clone()),
            profile,
            uptime_ms: syscall::now_us() / 1000,
            memory: Memory {
                pool_total: m[0],
                pool_free: m[1],
                kernel_objects: m[2],
                free_ram: m[3],
                kernel_heap: m[4],
            },
            tasks: tasks
                .into_iter()
                .map(|t| Task {
                    id: t.id,
                    state: String::from(t.state.as_str()),
                    name: t.name,
                    memory_used: t.memory_used,
                    memory_limit: t.memory_limit,
                    cpu_us: t.cpu_us,
                    restarts: t.restarts,
                    priority: t.priority,
                    device: t.device,
                })
                .collect(),
            services: services
                .into_iter()
                .map(|(v, text)| {
                    let mut words = text.split(' ');
                    Service {
                        name: String::from(words.next().unwrap_or("")),
                        provider: String::from(words.next().unwrap_or("")),
                        clients: v.get(1).copied().unwrap_or(0),
                    }
                })
                .collect(),
        }
    }
}

#[cfg(not(test))]
userlib::entry!(serve::main, heap = 96 * 1024);
