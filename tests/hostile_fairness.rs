//! A few connections cannot starve everyone else of fetch slots: clients
//! take turns in the queue, and neither a trickling origin, a client that
//! reads a trickle, nor a client that uploads one can hold a slot for long.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use http::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LIMIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn a_second_client_is_not_queued_behind_all_of_the_first_ones_requests() {
    let gate = Gate::new();
    let g = gate.clone();
    let origin = Origin::start(move |_| Reply::text("ok").gate(&g)).await;
    let proxy = proxy(&[
        "--no-cache",
        "--max-concurrent",
        "1",
        "--allow-client",
        "127.0.0.0/8",
    ]);
    let greedy = ProxyClient::new(proxy.addr());
    let mut tasks = Vec::new();
    for i in 1..=5 {
        let (client, url) = (greedy.clone(), origin.url(&format!("/a{i}")));
        tasks.push(tokio::spawn(async move { client.get(&url).await.status }));
        // In this order: each is queued before the next.
        assert!(
            wait_until(LIMIT, || origin.requests().len()
                + proxy.metric("ferry_fetch_queue_length").unwrap_or(0) as usize
                == i)
            .await
        );
    }
    let other = ProxyClient::new(proxy.addr()).bind("127.0.0.2".parse().unwrap());
    let url = origin.url("/b");
    tasks.push(tokio::spawn(async move { other.get(&url).await.status }));
    assert!(
        wait_until(LIMIT, || proxy.metric("ferry_fetch_queue_length")
            == Some(5))
        .await
    );
    // One answer at a time: the slot goes round.
    for n in 1..=6 {
        assert!(wait_until(LIMIT, || origin.requests().len() == n).await);
        gate.release(1);
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let order: Vec<String> = origin.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        order[1], "/b",
        "the second client waited behind the first one's queue: {order:?}"
    );
}

/// An origin that sends a head announcing a large body, then one byte per
/// `every`.
async fn trickling_origin(every: Duration) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
                    .await;
                loop {
                    tokio::time::sleep(every).await;
                    if stream.write_all(b"x").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trickling_origin_cannot_hold_a_fetch_slot() {
    let trickle = trickling_origin(Duration::from_millis(200)).await;
    let origin = Origin::start(|_| Reply::text("ok")).await;
    let proxy = proxy(&[
        "--no-cache",
        "--max-concurrent",
        "1",
        "--transfer-window",
        "1",
        "--min-transfer-bytes",
        "100",
    ]);
    let client = ProxyClient::new(proxy.addr());
    let slow = tokio::time::timeout(
        Duration::from_secs(20),
        client.try_send(Method::GET, &format!("http://{trickle}/"), &[], ""),
    )
    .await
    .expect("the trickle was cut off");
    assert!(slow.is_err(), "a trickled body cannot complete: {slow:?}");
    let next = tokio::time::timeout(Duration::from_secs(20), client.get(&origin.url("/")))
        .await
        .expect("the slot came free");
    assert_eq!(next.status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_reading_a_trickle_cannot_hold_a_fetch_slot() {
    let origin = Origin::start(|req| {
        if req.path == "/big" {
            Reply::new(200).pattern(256 << 20)
        } else {
            Reply::text("ok")
        }
    })
    .await;
    let proxy = proxy(&[
        "--no-cache",
        "--max-concurrent",
        "1",
        "--transfer-window",
        "1",
        "--min-transfer-bytes",
        "1000",
    ]);
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut slow: TcpStream = socket.connect(proxy.addr()).await.unwrap();
    slow.write_all(format!("GET {} HTTP/1.1\r\nHost: x\r\n\r\n", origin.url("/big")).as_bytes())
        .await
        .unwrap();
    let closed = Arc::new(Mutex::new(false));
    let c = closed.clone();
    let reader = tokio::spawn(async move {
        let mut buf = [0u8; 10];
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => {
                    *c.lock().unwrap() = true;
                    return;
                }
                Ok(_) => {}
            }
        }
    });
    let client = ProxyClient::new(proxy.addr());
    let next = tokio::time::timeout(Duration::from_secs(30), client.get(&origin.url("/small")))
        .await
        .expect("the slot came free while the slow reader still read");
    assert_eq!(next.status, 200);
    // The proxy has closed its side (the client may still be reading what
    // its buffers hold): only the metrics request's own connection is open.
    assert!(
        wait_until(Duration::from_secs(30), || proxy
            .metric("ferry_connections_open")
            == Some(1))
        .await,
        "the slow reader's connection was not cut off (still reading: {})",
        !*closed.lock().unwrap()
    );
    reader.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_uploading_a_trickle_cannot_hold_a_fetch_slot() {
    let origin = Origin::start(|_| Reply::text("ok")).await;
    let proxy = proxy(&[
        "--no-cache",
        "--max-concurrent",
        "1",
        "--response-timeout",
        "2",
    ]);
    let mut slow = TcpStream::connect(proxy.addr()).await.unwrap();
    slow.write_all(
        format!(
            "POST {} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nx",
            origin.url("/upload")
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let trickle = tokio::spawn(async move {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(300)).await;
            if slow.write_all(b"x").await.is_err() {
                break;
            }
        }
    });
    // Give the upload its slot first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let next = tokio::time::timeout(
        Duration::from_secs(20),
        ProxyClient::new(proxy.addr()).get(&origin.url("/next")),
    )
    .await
    .expect("the slot came free");
    assert_eq!(next.status, 200);
    trickle.abort();
}
