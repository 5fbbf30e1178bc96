//! The fast loopback backend: one listener per address (127.10.x.y:port), all on one
//! current-thread runtime. It answers any request with `200 OK` and closes; a connection
//! that is reset before it sends anything (a TCP-connect check) costs one accept.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// The address of backend `i` (up to 62,500 of them).
pub fn address(i: usize) -> IpAddr {
    let i = u32::try_from(i).unwrap_or(u32::MAX);
    IpAddr::V4(Ipv4Addr::new(
        127,
        10 + (i / 62_500) as u8,
        ((i / 250) % 250) as u8,
        (i % 250 + 1) as u8,
    ))
}

fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let s = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(1024)?;
    TcpListener::from_std(s.into())
}

/// Binds `count` listeners on `port`, prints `ready`, and serves until killed.
pub fn run(count: usize, port: u16) -> io::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        for i in 0..count {
            let l = listen(SocketAddr::new(address(i), port))?;
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                while let Ok((mut stream, _)) = l.accept().await {
                    // Serve inline: checks come one at a time per backend.
                    let _ = tokio::time::timeout(Duration::from_secs(1), async {
                        if let Ok(n) = stream.read(&mut buf).await
                            && n > 0
                        {
                            let _ = stream.write_all(RESPONSE).await;
                        }
                    })
                    .await;
                }
            });
        }
        println!("ready");
        std::future::pending::<()>().await;
        Ok(())
    })
}
