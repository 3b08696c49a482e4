//! `ReqwestHttpClient` against a real HTTP/1.1 server on loopback: what it returns, what it
//! refuses, and that its errors never carry the URL.
#![cfg(feature = "reqwest")]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cx_sso::{HttpClient, HttpError, HttpErrorKind, ReqwestHttpClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const TIMEOUT: Duration = Duration::from_millis(300);
const CAP: usize = 1024;

/// A request as the server read it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A loopback server that hands every request, with its connection, to `handler`.
struct Server {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Server {
    async fn start<F, Fut>(handler: F) -> Self
    where
        F: Fn(Seen, TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self::start_on("127.0.0.1:0", handler).await
    }

    async fn start_on<F, Fut>(bind: &str, handler: F) -> Self
    where
        F: Fn(Seen, TcpStream) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind(bind).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (handler, log) = (Arc::new(handler), seen.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (handler, log) = (handler.clone(), log.clone());
                tokio::spawn(async move {
                    if let Some(req) = read_request(&mut stream).await {
                        log.lock().unwrap().push(req.clone());
                        handler(req, stream).await;
                    }
                });
            }
        });
        Self { addr, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn targets(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.target.clone())
            .collect()
    }
}

async fn read_request(stream: &mut TcpStream) -> Option<Seen> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let method = request_line.next()?.to_owned();
    let target = request_line.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Seen {
        method,
        target,
        headers,
        body,
    })
}

/// Writes `bytes`, ignoring a client that hung up (it does, when it refuses a body).
async fn send(stream: &mut TcpStream, bytes: &[u8]) {
    let _ = stream.write_all(bytes).await;
    let _ = stream.flush().await;
}

fn client() -> ReqwestHttpClient {
    ReqwestHttpClient::builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .max_response_bytes(CAP)
        .build()
        .unwrap()
}

fn get(url: &str) -> http::Request<Vec<u8>> {
    http::Request::builder().uri(url).body(Vec::new()).unwrap()
}

async fn call_err(url: &str) -> HttpError {
    match client().call(get(url)).await {
        Ok(resp) => panic!("expected an error, got {}", resp.status()),
        Err(e) => e,
    }
}

/// A server that reads the request and then never answers, holding the connection open.
async fn silent_server() -> Server {
    Server::start(|_, stream| async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(stream);
    })
    .await
}

/// A port nothing listens on.
async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    addr
}

#[tokio::test]
async fn ok_response_round_trips_status_headers_and_body() {
    let server = Server::start(|req, mut stream| async move {
        let mut body = format!("{} {} {}\n", req.method, req.target, req.header("x-req").unwrap_or("-"))
            .into_bytes();
        body.extend_from_slice(&req.body);
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nX-Reply: yes\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        send(&mut stream, head.as_bytes()).await;
        send(&mut stream, &body).await;
    })
    .await;

    let request = http::Request::builder()
        .method("POST")
        .uri(server.url("/token?a=1"))
        .header("x-req", "abc")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(b"\x00\xffgrant".to_vec())
        .unwrap();
    let response = client().call(request).await.unwrap();

    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(response.headers()["x-reply"], "yes");
    assert_eq!(
        response.headers()["content-type"],
        "application/octet-stream"
    );
    assert_eq!(
        response.body().as_slice(),
        b"POST /token?a=1 abc\n\x00\xffgrant"
    );
    let seen = server.seen.lock().unwrap()[0].clone();
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
}

#[tokio::test]
async fn non_2xx_status_is_ok_with_that_status() {
    let server = Server::start(|_, mut stream| async move {
        send(
            &mut stream,
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops",
        )
        .await;
    })
    .await;
    let response = client().call(get(&server.url("/"))).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.body().as_slice(), b"oops");
}

#[tokio::test]
async fn redirect_is_returned_not_followed() {
    let server = Server::start(|req, mut stream| async move {
        if req.target == "/start" {
            let port = stream.local_addr().unwrap().port();
            let head = format!(
                "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/target\r\nContent-Length: 0\r\n\r\n"
            );
            send(&mut stream, head.as_bytes()).await;
        } else {
            send(&mut stream, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi").await;
        }
    })
    .await;
    let response = client().call(get(&server.url("/start"))).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::FOUND);
    assert_eq!(
        response.headers()["location"],
        format!("http://{}/target", server.addr).as_str()
    );
    assert_eq!(
        server.targets(),
        ["/start"],
        "the redirect target must never be requested"
    );
}

#[tokio::test]
async fn body_over_cap_with_content_length_is_refused() {
    let server = Server::start(|_, mut stream| async move {
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", 4 * CAP);
        send(&mut stream, head.as_bytes()).await;
        send(&mut stream, &vec![b'x'; 4 * CAP]).await;
    })
    .await;
    let err = call_err(&server.url("/")).await;
    assert_eq!(err.kind(), HttpErrorKind::BodyTooLarge, "{err}");
}

#[tokio::test]
async fn chunked_body_over_cap_is_refused() {
    let server = Server::start(|_, mut stream| async move {
        send(
            &mut stream,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .await;
        for _ in 0..8 {
            send(&mut stream, format!("{:x}\r\n", CAP / 2).as_bytes()).await;
            send(&mut stream, &vec![b'x'; CAP / 2]).await;
            send(&mut stream, b"\r\n").await;
        }
        send(&mut stream, b"0\r\n\r\n").await;
    })
    .await;
    let err = call_err(&server.url("/")).await;
    assert_eq!(err.kind(), HttpErrorKind::BodyTooLarge, "{err}");
}

#[tokio::test]
async fn close_delimited_body_over_cap_is_refused() {
    let server = Server::start(|_, mut stream| async move {
        send(&mut stream, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").await;
        send(&mut stream, &vec![b'x'; 4 * CAP]).await;
    })
    .await;
    let err = call_err(&server.url("/")).await;
    assert_eq!(err.kind(), HttpErrorKind::BodyTooLarge, "{err}");
}

#[tokio::test]
async fn chunked_body_of_exactly_the_cap_is_accepted() {
    let server = Server::start(|_, mut stream| async move {
        send(
            &mut stream,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .await;
        for _ in 0..2 {
            send(&mut stream, format!("{:x}\r\n", CAP / 2).as_bytes()).await;
            send(&mut stream, &vec![b'x'; CAP / 2]).await;
            send(&mut stream, b"\r\n").await;
        }
        send(&mut stream, b"0\r\n\r\n").await;
    })
    .await;
    let response = client().call(get(&server.url("/"))).await.unwrap();
    assert_eq!(response.body().len(), CAP);
}

#[tokio::test]
async fn silent_server_times_out_within_the_timeout() {
    let server = silent_server().await;
    let started = Instant::now();
    let err = call_err(&server.url("/")).await;
    let elapsed = started.elapsed();
    assert_eq!(err.kind(), HttpErrorKind::Timeout, "{err}");
    assert!(err.is_transient());
    assert!(
        elapsed >= TIMEOUT,
        "gave up after {elapsed:?}, before the timeout"
    );
    // The server would hold on for 30 s: giving up well before proves the timeout fired. The
    // bound is loose on purpose, so a loaded CI machine does not make this flaky.
    assert!(
        elapsed < Duration::from_secs(10),
        "took {elapsed:?} for a {TIMEOUT:?} timeout"
    );
}

#[tokio::test]
async fn body_that_stalls_times_out_within_the_timeout() {
    let server = Server::start(|_, mut stream| async move {
        send(
            &mut stream,
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789",
        )
        .await;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    let started = Instant::now();
    let err = call_err(&server.url("/")).await;
    let elapsed = started.elapsed();
    assert_eq!(err.kind(), HttpErrorKind::Timeout, "{err}");
    // The server would hold on for 30 s: giving up well before proves the timeout fired. The
    // bound is loose on purpose, so a loaded CI machine does not make this flaky.
    assert!(
        elapsed < Duration::from_secs(10),
        "took {elapsed:?} for a {TIMEOUT:?} timeout"
    );
}

#[tokio::test]
async fn connection_refused_is_connect() {
    let addr = closed_port().await;
    let err = call_err(&format!("http://{addr}/")).await;
    assert_eq!(err.kind(), HttpErrorKind::Connect, "{err}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn plain_http_off_loopback_is_refused_without_connecting() {
    // A `.invalid` name never resolves (RFC 6761): had the client tried to resolve or connect,
    // the error would be `Connect`. `InsecureUrl` shows it refused before either, with no
    // timing involved (a timed bound was flaky on a loaded machine).
    let err = call_err("http://cx-sso-never-resolves.invalid/").await;
    assert_eq!(err.kind(), HttpErrorKind::InsecureUrl, "{err}");

    // A server this machine reaches over a non-loopback address: http to it is refused and the
    // server never sees a connection.
    let Some(ip) = non_loopback_local_ip() else {
        eprintln!("no non-loopback address on this machine; skipping the server half");
        return;
    };
    let server = Server::start_on("0.0.0.0:0", |_, mut stream| async move {
        send(&mut stream, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n").await;
    })
    .await;
    let url = format!("http://{ip}:{}/", server.addr.port());
    let err = call_err(&url).await;
    assert_eq!(err.kind(), HttpErrorKind::InsecureUrl, "{err}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(server.targets().is_empty(), "no request may reach {url}");
}

/// The address this machine would use to reach the outside, if it has one (a UDP "connect"
/// sends nothing).
fn non_loopback_local_ip() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn errors_never_contain_the_url_or_its_query() {
    let closed = closed_port().await;
    let silent = silent_server().await;
    let big = Server::start(|_, mut stream| async move {
        send(&mut stream, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n").await;
        send(&mut stream, &vec![b'x'; 4 * CAP]).await;
    })
    .await;
    let path = "/callback?code=SECRETCODE&state=SECRETSTATE";
    for (addr, kind) in [
        (closed, HttpErrorKind::Connect),
        (silent.addr, HttpErrorKind::Timeout),
        (big.addr, HttpErrorKind::BodyTooLarge),
    ] {
        let err = call_err(&format!("http://{addr}{path}")).await;
        assert_eq!(err.kind(), kind, "{err}");
        // The error, every cause below it, and the crate error that carries it.
        let mut texts = vec![err.to_string(), format!("{err:?}")];
        let mut source = std::error::Error::source(&err);
        while let Some(s) = source {
            texts.push(s.to_string());
            texts.push(format!("{s:?}"));
            source = s.source();
        }
        let wrapped = cx_sso::Error::from(err);
        texts.push(wrapped.to_string());
        texts.push(format!("{wrapped:?}"));
        for text in texts {
            for secret in [
                "SECRETCODE",
                "SECRETSTATE",
                "/callback",
                "code=",
                &addr.to_string(),
            ] {
                assert!(
                    !text.contains(secret),
                    "{kind:?} error shows {secret:?}: {text}"
                );
            }
        }
    }
}

#[tokio::test]
async fn connect_error_keeps_the_os_error_as_its_source() {
    let addr = closed_port().await;
    let err = call_err(&format!("http://{addr}/?code=SECRETCODE")).await;
    let mut io = None;
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        if let Some(e) = s.downcast_ref::<std::io::Error>() {
            io = Some(e.kind());
        }
        source = s.source();
    }
    assert_eq!(io, Some(std::io::ErrorKind::ConnectionRefused), "{err:?}");
}

#[tokio::test]
async fn connect_error_names_its_cause() {
    let addr = closed_port().await;
    let err = call_err(&format!("http://{addr}/")).await;
    assert!(
        err.to_string().to_lowercase().contains("refused"),
        "the OS cause must be in the message: {err}"
    );
}
