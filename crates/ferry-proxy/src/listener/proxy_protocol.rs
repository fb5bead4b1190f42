//! The PROXY protocol (v1 text and v2 binary, as HAProxy sends it): the
//! header a load balancer puts in front of a connection to say which client
//! it carries. Read only from `proxy_protocol_from` addresses, before any
//! client rule, so access rules, caps, fairness and logs see the client and
//! not the balancer. The header is consumed here and never forwarded.
//!
//! Parsing is the `ppp` crate's; this module only reads exactly the header's
//! bytes off the socket (no more, so the request that follows is untouched
//! and no buffer has to be handed on to the HTTP server).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// The v2 header's fixed start.
const V2_SIGNATURE: &[u8; 12] = b"\r\n\r\n\0\r\nQUIT\n";
/// The v1 header's start.
const V1_PREFIX: &[u8; 6] = b"PROXY ";
/// A v1 header is at most 107 bytes, CRLF included (the specification's
/// bound).
const V1_MAX: usize = 107;
/// Largest v2 address-and-TLV block accepted. HAProxy sends 12 (IPv4) or
/// 36 (IPv6) bytes plus a few optional TLVs; the protocol allows 64 KiB,
/// which no balancer needs and a trusted-but-broken one should not make us
/// buffer.
const V2_MAX_PAYLOAD: usize = 2048;

/// Who the balancer says the connection is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announced {
    /// A client's connection, relayed: its address.
    Client(SocketAddr),
    /// The balancer's own connection (v2 `LOCAL`, v1 `UNKNOWN`: health
    /// checks): the connection's real endpoints apply.
    Balancer,
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyHeaderError {
    #[error("no PROXY protocol header from a balancer address")]
    Missing,
    #[error("malformed PROXY protocol header: {0}")]
    Malformed(String),
    #[error("PROXY protocol header not complete within {0:?}")]
    Timeout(Duration),
    #[error("reading the PROXY protocol header: {0}")]
    Io(#[from] io::Error),
}

/// Reads the PROXY header that must start a connection from a balancer.
pub async fn read_header(
    stream: &mut TcpStream,
    limit: Duration,
) -> Result<Announced, ProxyHeaderError> {
    tokio::time::timeout(limit, read_header_unbounded(stream))
        .await
        .map_err(|_| ProxyHeaderError::Timeout(limit))?
}

async fn read_header_unbounded(stream: &mut TcpStream) -> Result<Announced, ProxyHeaderError> {
    let mut start = [0u8; 12];
    // Every header is at least 15 bytes, so the first 12 are the header's
    // whatever follows.
    stream.read_exact(&mut start).await?;
    if &start == V2_SIGNATURE {
        read_v2(stream).await
    } else if start.starts_with(V1_PREFIX) {
        read_v1(stream, start).await
    } else {
        Err(ProxyHeaderError::Missing)
    }
}

async fn read_v2(stream: &mut TcpStream) -> Result<Announced, ProxyHeaderError> {
    let mut header = Vec::with_capacity(16 + 36);
    header.extend_from_slice(V2_SIGNATURE);
    let mut fixed = [0u8; 4];
    stream.read_exact(&mut fixed).await?;
    header.extend_from_slice(&fixed);
    let payload = u16::from_be_bytes([fixed[2], fixed[3]]) as usize;
    if payload > V2_MAX_PAYLOAD {
        return Err(ProxyHeaderError::Malformed(format!(
            "v2 header announces {payload} bytes of addresses and TLVs (at most {V2_MAX_PAYLOAD})"
        )));
    }
    header.resize(16 + payload, 0);
    stream.read_exact(&mut header[16..]).await?;
    parse(&header)
}

async fn read_v1(stream: &mut TcpStream, start: [u8; 12]) -> Result<Announced, ProxyHeaderError> {
    let mut header = Vec::with_capacity(V1_MAX);
    header.extend_from_slice(&start);
    let mut window = [0u8; V1_MAX];
    // Peek to find the line's end, then consume exactly up to it: the
    // request after the header stays in the socket for the HTTP server.
    // Bytes before the end are consumed as they come, so a peek never sees
    // the same incomplete data twice.
    while !header.ends_with(b"\n") {
        let room = V1_MAX + 1 - header.len();
        if room == 0 {
            return Err(ProxyHeaderError::Malformed(format!(
                "v1 header longer than {V1_MAX} bytes"
            )));
        }
        let seen = stream.peek(&mut window[..room]).await?;
        if seen == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        let take = window[..seen]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(seen, |at| at + 1);
        let from = header.len();
        header.resize(from + take, 0);
        stream.read_exact(&mut header[from..]).await?;
    }
    if header.len() > V1_MAX {
        return Err(ProxyHeaderError::Malformed(format!(
            "v1 header longer than {V1_MAX} bytes"
        )));
    }
    parse(&header)
}

/// Parses one complete header (exactly its bytes).
fn parse(header: &[u8]) -> Result<Announced, ProxyHeaderError> {
    use ppp::{v1, v2};
    let malformed = |e: &dyn std::fmt::Display| ProxyHeaderError::Malformed(e.to_string());
    let announced = if header.starts_with(V2_SIGNATURE) {
        let parsed = v2::Header::try_from(header).map_err(|e| malformed(&e))?;
        match (parsed.command, parsed.addresses) {
            (v2::Command::Local, _) => Announced::Balancer,
            (v2::Command::Proxy, v2::Addresses::IPv4(a)) => {
                Announced::Client(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port))
            }
            (v2::Command::Proxy, v2::Addresses::IPv6(a)) => {
                Announced::Client(SocketAddr::new(IpAddr::V6(a.source_address), a.source_port))
            }
            // UNIX sockets or an unspecified family carry no client address
            // the rules could use; the specification says to use the real
            // endpoints then.
            (v2::Command::Proxy, _) => Announced::Balancer,
        }
    } else {
        let text = std::str::from_utf8(header).map_err(|e| malformed(&e))?;
        let parsed = v1::Header::try_from(text).map_err(|e| malformed(&e))?;
        match parsed.addresses {
            v1::Addresses::Tcp4(a) => {
                Announced::Client(SocketAddr::new(IpAddr::V4(a.source_address), a.source_port))
            }
            v1::Addresses::Tcp6(a) => {
                Announced::Client(SocketAddr::new(IpAddr::V6(a.source_address), a.source_port))
            }
            v1::Addresses::Unknown => Announced::Balancer,
        }
    };
    Ok(announced)
}

/// Whether a connection's first bytes look like a PROXY header (from a
/// peer that is not a balancer, which must not be believed). Looks at what
/// has arrived without consuming it, and waits at most `limit` for it.
pub async fn starts_with_header(stream: &TcpStream, limit: Duration) -> bool {
    let mut first = [0u8; 12];
    let Ok(Ok(seen)) = tokio::time::timeout(limit, stream.peek(&mut first)).await else {
        return false;
    };
    let first = &first[..seen];
    // A request line never starts with "PROXY " (no such method is
    // defined, and the space rules out PROXYx) or with CR LF CR LF NUL.
    (seen >= V1_PREFIX.len() && first.starts_with(V1_PREFIX))
        || (seen >= 5 && V2_SIGNATURE.starts_with(first))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    /// Sends `bytes` in the given pieces over a real socket and reads the
    /// header on the other side; returns what was announced and what the
    /// HTTP server would read next.
    async fn over_socket(pieces: &[&[u8]]) -> (Result<Announced, String>, Vec<u8>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let pieces: Vec<Vec<u8>> = pieces.iter().map(|p| p.to_vec()).collect();
        let writer = tokio::spawn(async move {
            let mut out = TcpStream::connect(addr).await.unwrap();
            out.set_nodelay(true).unwrap();
            for piece in pieces {
                out.write_all(&piece).await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
        let (mut stream, _) = listener.accept().await.unwrap();
        let announced = read_header(&mut stream, Duration::from_secs(2))
            .await
            .map_err(|e| e.to_string());
        writer.await.unwrap();
        let mut rest = Vec::new();
        if announced.is_ok() {
            stream.read_to_end(&mut rest).await.unwrap();
        }
        (announced, rest)
    }

    fn v2(command: u8, family: u8, addresses: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&(addresses.len() as u16).to_be_bytes());
        h.extend_from_slice(addresses);
        h
    }

    #[tokio::test]
    async fn a_v1_header_gives_the_client_and_leaves_the_request_alone() {
        let (got, rest) = over_socket(&[
            b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 3128\r\nGET http://a.test/ HTTP/1.1\r\n",
        ])
        .await;
        assert_eq!(
            got,
            Ok(Announced::Client("203.0.113.7:40000".parse().unwrap()))
        );
        assert_eq!(rest, b"GET http://a.test/ HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn a_v1_header_split_over_several_segments_is_read_whole() {
        let (got, rest) = over_socket(&[
            b"PROXY TCP6 2001:db8::1 ",
            b"::1 5",
            b"1 3128\r",
            b"\nGET / HTTP/1.1\r\n",
        ])
        .await;
        assert_eq!(
            got,
            Ok(Announced::Client("[2001:db8::1]:51".parse().unwrap()))
        );
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn a_v2_header_gives_the_client_and_local_means_the_balancer() {
        let mut ipv4 = vec![198, 51, 100, 9, 127, 0, 0, 1];
        ipv4.extend_from_slice(&4242u16.to_be_bytes());
        ipv4.extend_from_slice(&3128u16.to_be_bytes());
        let mut sent = v2(1, 0x11, &ipv4);
        sent.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let (got, rest) = over_socket(&[&sent]).await;
        assert_eq!(
            got,
            Ok(Announced::Client("198.51.100.9:4242".parse().unwrap()))
        );
        assert_eq!(rest, b"GET / HTTP/1.1\r\n");

        let mut sent = v2(0, 0x00, &[]);
        sent.extend_from_slice(b"GET /healthz HTTP/1.1\r\n");
        let (got, rest) = over_socket(&[&sent]).await;
        assert_eq!(got, Ok(Announced::Balancer));
        assert_eq!(rest, b"GET /healthz HTTP/1.1\r\n");
    }

    #[tokio::test]
    async fn no_header_a_bad_header_or_an_oversized_one_is_refused() {
        let (got, _) = over_socket(&[b"GET http://a.test/ HTTP/1.1\r\n\r\n"]).await;
        assert!(got.unwrap_err().contains("no PROXY protocol header"));
        let (got, _) = over_socket(&[b"PROXY TCP4 not-an-address 127.0.0.1 1 2\r\n"]).await;
        assert!(got.unwrap_err().contains("malformed"));
        let long = format!("PROXY TCP4 {}\r\n", "1".repeat(200));
        let (got, _) = over_socket(&[long.as_bytes()]).await;
        assert!(got.unwrap_err().contains("longer than 107"));
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend_from_slice(&[0x21, 0x11, 0xff, 0xff]);
        let (got, _) = over_socket(&[&huge]).await;
        assert!(got.unwrap_err().contains("65535 bytes"));
    }

    #[tokio::test]
    async fn a_header_that_never_completes_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        client.write_all(b"PROXY TCP4 1.2.3.4").await.unwrap();
        let (mut stream, _) = listener.accept().await.unwrap();
        let got = read_header(&mut stream, Duration::from_millis(200)).await;
        assert!(matches!(got, Err(ProxyHeaderError::Timeout(_))), "{got:?}");
    }

    #[tokio::test]
    async fn a_header_from_anyone_else_is_recognised_without_being_consumed() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        for (sent, expected) in [
            (&b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"[..], true),
            (&v2(1, 0x11, &[0; 12])[..], true),
            (&b"GET http://a.test/ HTTP/1.1\r\n"[..], false),
            (&b"POST / HTTP/1.1\r\n"[..], false),
        ] {
            let mut client = TcpStream::connect(addr).await.unwrap();
            client.write_all(sent).await.unwrap();
            let (stream, _) = listener.accept().await.unwrap();
            assert_eq!(
                starts_with_header(&stream, Duration::from_secs(1)).await,
                expected,
                "{sent:?}"
            );
            let mut still = vec![0u8; sent.len()];
            stream.peek(&mut still).await.unwrap();
            assert_eq!(still, sent);
        }
    }
}
