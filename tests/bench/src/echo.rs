//! `hap-echo`: the side-by-side benchmark's floor, a TCP echo server with no HAP in it.
//!
//! It runs on smol exactly as the virtual light does (one task per connection on smol's
//! executor, `TCP_NODELAY`, a main thread that only waits), so that its CPU per round
//! trip is what the runtime and the kernel cost before any protocol work.
//!
//! hap-echo [--bind 127.0.0.1]
//!
//! It prints `listening on ADDRESS:PORT` and echoes every connection until killed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::process::ExitCode;

use smol::io::{AsyncReadExt as _, AsyncWriteExt as _};
use smol::Async;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let mut bind = IpAddr::V4(Ipv4Addr::LOCALHOST);
    while let Some(flag) = args.next() {
        match (flag.as_str(), args.next().map(|v| v.parse::<IpAddr>())) {
            ("--bind", Some(Ok(address))) => bind = address,
            _ => {
                eprintln!("usage: hap-echo [--bind ADDRESS]");
                return ExitCode::from(2);
            }
        }
    }
    let listener = match Async::<TcpListener>::bind(SocketAddr::new(bind, 0)) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("hap-echo: cannot bind {bind}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match listener.get_ref().local_addr() {
        Ok(address) => println!("listening on {address}"),
        Err(e) => {
            eprintln!("hap-echo: {e}");
            return ExitCode::FAILURE;
        }
    }
    smol::future::block_on(smol::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                // Out of descriptors, say: wait instead of spinning.
                smol::Timer::after(std::time::Duration::from_millis(50)).await;
                continue;
            };
            let _ = stream.get_ref().set_nodelay(true);
            smol::spawn(echo(stream)).detach();
        }
    }))
}

async fn echo(mut stream: Async<std::net::TcpStream>) {
    let mut buffer = [0u8; 4096];
    while let Ok(n @ 1..) = stream.read(&mut buffer).await {
        if stream.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
