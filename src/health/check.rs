//! The checks themselves: TCP connect, HTTP GET, DNS query. Each returns
//! `Ok` or why it failed; the caller bounds it with the check's timeout.

use std::net::{IpAddr, SocketAddr};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::config::CheckKind;

/// The largest HTTP response read (headers and the start of the body).
const HTTP_READ_LIMIT: usize = 64 * 1024;

/// Runs one check of `kind` against `addr:port`.
pub async fn run(kind: &CheckKind, addr: IpAddr, port: u16) -> Result<(), String> {
    let target = SocketAddr::new(addr, port);
    match kind {
        CheckKind::Tcp => TcpStream::connect(target)
            .await
            .map(drop)
            .map_err(|e| format!("connect: {e}")),
        CheckKind::Http {
            path,
            expect,
            body,
            host,
        } => http(target, path, expect, body.as_deref(), host.as_deref()).await,
        CheckKind::Dns { name } => dns(target, name).await,
    }
}

async fn http(
    target: SocketAddr,
    path: &str,
    expect: &[u16],
    body: Option<&str>,
    host: Option<&str>,
) -> Result<(), String> {
    let mut stream = TcpStream::connect(target).await.map_err(|e| format!("connect: {e}"))?;
    let host = host.map_or_else(|| target.ip().to_string(), str::to_string);
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: lbdns-health\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("send: {e}"))?;
    let mut response = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..n]);
        // Enough to judge: the status, and the body if one is wanted.
        if response.len() >= HTTP_READ_LIMIT || (body.is_none() && response.windows(2).any(|w| w == b"\r\n")) {
            break;
        }
        if let Some(want) = body
            && response.windows(want.len().max(1)).any(|w| w == want.as_bytes())
            && header_end(&response).is_some()
        {
            break;
        }
    }
    let text = String::from_utf8_lossy(&response);
    let status_line = text.lines().next().unwrap_or_default();
    let code = status_line
        .strip_prefix("HTTP/")
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP response: {status_line:?}"))?;
    if !expect.contains(&code) {
        return Err(format!("HTTP status {code}, expected {expect:?}"));
    }
    if let Some(want) = body {
        let content = header_end(&response).map_or(&response[..0], |at| &response[at..]);
        if !content.windows(want.len().max(1)).any(|w| w == want.as_bytes()) {
            return Err(format!("HTTP body lacks {want:?}"));
        }
    }
    Ok(())
}

fn header_end(response: &[u8]) -> Option<usize> {
    response.windows(4).position(|w| w == b"\r\n\r\n").map(|at| at + 4)
}

async fn dns(target: SocketAddr, name: &str) -> Result<(), String> {
    let bind: SocketAddr = if target.is_ipv6() {
        "[::]:0".parse().expect("literal")
    } else {
        "0.0.0.0:0".parse().expect("literal")
    };
    let socket = UdpSocket::bind(bind).await.map_err(|e| format!("socket: {e}"))?;
    let id: u16 = rand::random();
    let mut query = id.to_be_bytes().to_vec();
    query.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.').filter(|l| !l.is_empty()) {
        query.push(label.len().min(63) as u8);
        query.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    query.extend_from_slice(&[0, 0, 1, 0, 1]);
    socket.send_to(&query, target).await.map_err(|e| format!("send: {e}"))?;
    let mut buf = [0u8; 4096];
    loop {
        let (len, from) = socket.recv_from(&mut buf).await.map_err(|e| format!("receive: {e}"))?;
        if from != target || len < 12 || buf[..2] != id.to_be_bytes() {
            continue; // not our reply
        }
        let reply = &buf[..len];
        if reply[2] & 0x80 == 0 {
            return Err("not a DNS response (QR is 0): the port echoes or reflects queries".into());
        }
        let rcode = reply[3] & 0x0F;
        if rcode != 0 {
            return Err(format!("RCODE {rcode} for {name}"));
        }
        // A response must carry our question back (names compare without
        // regard to letter case).
        let question = &query[12..];
        if u16::from_be_bytes([reply[4], reply[5]]) != 1
            || !reply
                .get(12..12 + question.len())
                .is_some_and(|echoed| echoed.eq_ignore_ascii_case(question))
        {
            return Err(format!("the response is not for the question {name} A"));
        }
        return match u16::from_be_bytes([reply[6], reply[7]]) {
            0 => Err(format!("no answer for {name}")),
            _ => Ok(()),
        };
    }
}
