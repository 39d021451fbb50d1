//! A smart-HTTP git server: each request runs `git upload-pack --stateless-rpc` on a bare
//! repository under its root. It listens on the loopback interface, or on a listener the test
//! made (say, inside a network namespace of its own); it speaks plain HTTP or, with a rustls
//! configuration, HTTPS; it can require HTTP Basic auth, throttle its answers and redirect every
//! request, and it counts what it saw.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use base64::Engine as _;

use crate::git;

/// What the server saw.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub requests: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub unauthorized: AtomicU64,
    pub authorization_headers: AtomicU64,
}

#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// Serve HTTPS with this configuration (e.g. [`crate::TestCa::server_config`]).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// `(username, password)` required as HTTP Basic auth.
    pub basic_auth: Option<(String, String)>,
    /// Pause after each 4 KiB of a response body.
    pub throttle: Option<Duration>,
    /// Answer every (authorized) request with a redirect to this base URL.
    pub redirect_to: Option<String>,
}

/// A smart-HTTP(S) git server serving the bare repositories under `root`, until dropped.
#[derive(Debug)]
pub struct GitServer {
    addr: SocketAddr,
    scheme: &'static str,
    stop: Arc<AtomicBool>,
    pub stats: Arc<ServerStats>,
}

impl GitServer {
    /// Serves on 127.0.0.1, on a port of the system's choosing.
    pub fn start(root: &Path, config: ServerConfig) -> Self {
        Self::serve_on(
            TcpListener::bind("127.0.0.1:0").expect("bind loopback"),
            root,
            config,
        )
    }

    /// Serves on `listener`, wherever it was bound.
    pub fn serve_on(listener: TcpListener, root: &Path, config: ServerConfig) -> Self {
        let addr = listener.local_addr().expect("addr");
        let scheme = if config.tls.is_some() {
            "https"
        } else {
            "http"
        };
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(ServerStats::default());
        let (root, config) = (root.to_path_buf(), Arc::new(config));
        let (stop2, stats2) = (stop.clone(), stats.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (root, config, stats) = (root.clone(), config.clone(), stats2.clone());
                thread::spawn(move || {
                    // A client that goes away mid-response (or refuses our certificate) is not
                    // a test failure.
                    let _ = match &config.tls {
                        Some(tls) => rustls::ServerConnection::new(tls.clone())
                            .map_err(std::io::Error::other)
                            .and_then(|conn| {
                                let tls = rustls::StreamOwned::new(conn, stream);
                                serve(tls, &root, &config, &stats)
                            }),
                        None => serve(stream, &root, &config, &stats),
                    };
                });
            }
        });
        Self {
            addr,
            scheme,
            stop,
            stats,
        }
    }

    /// `http(s)://<address>/<repo>`.
    pub fn url(&self, repo: &str) -> String {
        format!("{}://{}/{repo}", self.scheme, self.addr)
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn serve(
    stream: impl Read + Write,
    root: &Path,
    config: &ServerConfig,
    stats: &ServerStats,
) -> std::io::Result<()> {
    // Requests are read through the buffer; answers are written to the stream beneath it.
    let mut reader = BufReader::new(stream);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut parts = request_line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or_default().to_owned(),
            parts.next().unwrap_or_default().to_owned(),
        );
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let body = read_body(&mut reader, &headers)?;
        stats.requests.fetch_add(1, Ordering::Relaxed);
        if headers.contains_key("authorization") {
            stats.authorization_headers.fetch_add(1, Ordering::Relaxed);
        }
        assert!(
            !headers.contains_key("content-encoding"),
            "compressed request bodies are not handled"
        );

        if let Some((user, pass)) = &config.basic_auth {
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
            );
            if headers.get("authorization") != Some(&expected) {
                stats.unauthorized.fetch_add(1, Ordering::Relaxed);
                reader.get_mut().write_all(
                    b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"test\"\r\n\
                      Content-Length: 0\r\n\r\n",
                )?;
                reader.get_mut().flush()?;
                continue;
            }
        }

        if let Some(base) = &config.redirect_to {
            write!(
                reader.get_mut(),
                "HTTP/1.1 302 Found\r\nLocation: {base}{target}\r\nContent-Length: 0\r\n\r\n"
            )?;
            reader.get_mut().flush()?;
            continue;
        }

        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let (repo, action) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or_default();
        let repo_dir = root.join(repo);
        let response = match (method.as_str(), action, query) {
            ("GET", "info/refs", "service=git-upload-pack") if repo_dir.is_dir() => {
                let mut body = b"001e# service=git-upload-pack\n0000".to_vec();
                body.extend(upload_pack(&repo_dir, true, &[]));
                Some(("application/x-git-upload-pack-advertisement", body))
            }
            ("POST", "git-upload-pack", _) if repo_dir.is_dir() => Some((
                "application/x-git-upload-pack-result",
                upload_pack(&repo_dir, false, &body),
            )),
            _ => None,
        };
        let Some((content_type, body)) = response else {
            reader
                .get_mut()
                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
            reader.get_mut().flush()?;
            continue;
        };
        write!(
            reader.get_mut(),
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nCache-Control: no-cache\r\n\
             Content-Length: {}\r\n\r\n",
            body.len()
        )?;
        for chunk in body.chunks(4096) {
            reader.get_mut().write_all(chunk)?;
            stats
                .bytes_sent
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if let Some(pause) = config.throttle {
                reader.get_mut().flush()?;
                thread::sleep(pause);
            }
        }
        reader.get_mut().flush()?;
    }
}

fn read_body(
    reader: &mut impl BufRead,
    headers: &HashMap<String, String>,
) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    if let Some(len) = headers.get("content-length") {
        body.resize(len.parse().unwrap_or(0), 0);
        reader.read_exact(&mut body)?;
    } else if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size_line = String::new();
            reader.read_line(&mut size_line)?;
            let size_hex = size_line.trim().split(';').next().unwrap_or("0");
            let size = usize::from_str_radix(size_hex, 16).unwrap_or(0);
            if size == 0 {
                // Trailers (none expected), then the final empty line.
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line)?;
                    if line.trim().is_empty() {
                        break;
                    }
                }
                break;
            }
            let start = body.len();
            body.resize(start + size, 0);
            reader.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            reader.read_exact(&mut crlf)?;
        }
    }
    Ok(body)
}

fn upload_pack(repo: &Path, advertise: bool, input: &[u8]) -> Vec<u8> {
    let mut cmd = git(repo);
    cmd.args(["upload-pack", "--stateless-rpc"]);
    if advertise {
        cmd.arg("--advertise-refs");
    }
    let mut child = cmd
        .arg(".")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn upload-pack");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // Written from another thread: upload-pack may answer before it has read everything.
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("upload-pack");
    let _ = writer.join();
    out.stdout
}
