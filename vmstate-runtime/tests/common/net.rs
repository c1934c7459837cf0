//! Networking for the migration tests: a proxy that cuts the connection at a
//! chosen point.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;

/// A TCP proxy that forwards the first `limit` bytes of the main stream (and the
/// return path untouched), then kills both directions: a network failure at a
/// chosen point of the stream. Returns the address to connect to.
pub fn cutting_proxy(limit: usize, to: SocketAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut a, _) = listener.accept().unwrap();
        let mut b = TcpStream::connect(to).unwrap();
        let (mut a2, mut b2) = (a.try_clone().unwrap(), b.try_clone().unwrap());
        thread::spawn(move || {
            let _ = std::io::copy(&mut b2, &mut a2);
        });
        let mut left = limit;
        let mut buf = [0u8; 4096];
        while left > 0 {
            let n = match a.read(&mut buf[..left.min(4096)]) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if b.write_all(&buf[..n]).is_err() {
                break;
            }
            left -= n;
        }
        let _ = a.shutdown(std::net::Shutdown::Both);
        let _ = b.shutdown(std::net::Shutdown::Both);
    });
    addr
}
