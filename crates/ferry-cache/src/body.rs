//! Bodies served from the cache. Small objects come from memory; larger ones
//! stream from their file in 512 KiB reads on one blocking task per response
//! (a bounded channel keeps at most a few chunks in memory). Every file read,
//! whole body or range, is checked against the stored checksum: a range read
//! runs through the whole body and holds its last bytes back until the
//! checksum matches. A mismatch ends the body with an error, so the client
//! sees a broken transfer rather than wrong bytes, and the damaged file is
//! removed.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;

use crate::CacheError;
use crate::store::disk;

const CHUNK: usize = 512 * 1024;
const CHANNEL_CHUNKS: usize = 3;

pub struct CacheBody {
    inner: Inner,
    remaining: u64,
}

enum Inner {
    Memory(Option<Bytes>),
    File(mpsc::Receiver<Result<Bytes, CacheError>>),
}

impl CacheBody {
    pub fn empty() -> CacheBody {
        CacheBody {
            inner: Inner::Memory(None),
            remaining: 0,
        }
    }

    pub fn memory(bytes: Bytes) -> CacheBody {
        CacheBody {
            remaining: bytes.len() as u64,
            inner: Inner::Memory(Some(bytes).filter(|b| !b.is_empty())),
        }
    }

    /// Streams body bytes `start..=end` of the object file at `path`. The file
    /// is checked when opened (its head must describe `expected_len` body
    /// bytes), and the whole body is verified against its checksum.
    /// `on_corrupt` runs (once) if the file turns out damaged.
    pub fn file(
        path: PathBuf,
        expected_len: u64,
        start: u64,
        end: u64,
        on_corrupt: impl FnOnce() + Send + 'static,
    ) -> CacheBody {
        let len = if expected_len == 0 {
            0
        } else {
            end - start + 1
        };
        let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
        tokio::task::spawn_blocking(move || {
            let result = stream_file(&path, expected_len, start, len, &tx);
            if let Err(e) = result {
                if matches!(e, CacheError::Corrupt(_)) {
                    tracing::warn!(path = %path.display(), error = %e, "damaged cache object removed");
                    let _ = std::fs::remove_file(&path);
                    on_corrupt();
                }
                let _ = tx.blocking_send(Err(e));
            }
        });
        CacheBody {
            inner: Inner::File(rx),
            remaining: len,
        }
    }
}

/// Sends body bytes `start..start + len`, reading the whole body to check its
/// checksum; the last bytes sent wait until the checksum is known.
fn stream_file(
    path: &PathBuf,
    expected_len: u64,
    start: u64,
    len: u64,
    tx: &mpsc::Sender<Result<Bytes, CacheError>>,
) -> Result<(), CacheError> {
    let mut file = File::open(path)?;
    // The head is read again here: the file may have been replaced since the
    // lookup, and offsets must come from the file actually opened.
    let head = disk::read_head(&mut file).map_err(|e| match e {
        disk::ReadError::Corrupt(why) => CacheError::Corrupt(why.into()),
        disk::ReadError::Missing => CacheError::Io(std::io::ErrorKind::NotFound.into()),
        disk::ReadError::Io(e) => CacheError::Io(e),
    })?;
    if head.body_len != expected_len {
        return Err(CacheError::Io(std::io::Error::other(
            "object replaced while reading",
        )));
    }
    file.seek(SeekFrom::Start(head.body_start))?;
    let end = start + len;
    let mut crc = 0u32;
    let mut at = 0u64;
    // The range's last bytes, held until the checksum is known.
    let mut held: Option<Bytes> = None;
    while at < expected_len {
        let n = ((expected_len - at) as usize).min(CHUNK);
        // Read into spare capacity: no zero-filling of a buffer about to be overwritten.
        let mut buf = Vec::with_capacity(n);
        (&mut file).take(n as u64).read_to_end(&mut buf)?;
        if buf.len() != n {
            return Err(CacheError::Corrupt(
                "object shorter than its trailer says".into(),
            ));
        }
        crc = crc32c::crc32c_append(crc, &buf);
        let chunk_end = at + n as u64;
        if chunk_end > start && at < end {
            let from = start.saturating_sub(at) as usize;
            let to = (end.min(chunk_end) - at) as usize;
            let buf = Bytes::from(buf);
            let part = if from == 0 && to == n {
                buf
            } else {
                buf.slice(from..to)
            };
            if chunk_end >= end {
                held = Some(part);
            } else if tx.blocking_send(Ok(part)).is_err() {
                // The client went away.
                return Ok(());
            }
        }
        at = chunk_end;
    }
    if crc != head.body_crc {
        return Err(CacheError::Corrupt("body checksum mismatch".into()));
    }
    if let Some(part) = held {
        let _ = tx.blocking_send(Ok(part));
    }
    Ok(())
}

impl Body for CacheBody {
    type Data = Bytes;
    type Error = CacheError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, CacheError>>> {
        let this = &mut *self;
        match &mut this.inner {
            Inner::Memory(bytes) => {
                this.remaining = 0;
                Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b))))
            }
            Inner::File(rx) => {
                if this.remaining == 0 {
                    return Poll::Ready(None);
                }
                match rx.poll_recv(cx) {
                    Poll::Pending => Poll::Pending,
                    Poll::Ready(Some(Ok(chunk))) => {
                        this.remaining = this.remaining.saturating_sub(chunk.len() as u64);
                        Poll::Ready(Some(Ok(Frame::data(chunk))))
                    }
                    Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                    Poll::Ready(None) => Poll::Ready(Some(Err(CacheError::Io(
                        std::io::Error::other("cache read ended early"),
                    )))),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::ObjectId;
    use crate::meta::{Kind, Meta};
    use http_body_util::BodyExt;

    fn write_object(dir: &std::path::Path, body: &[u8]) -> PathBuf {
        std::fs::create_dir_all(dir.join(disk::TMP)).unwrap();
        let mut meta = Meta::vary_marker("http://a.test/", vec![], 0);
        meta.kind = Kind::Object;
        let id = ObjectId::digest(b"x");
        let mut t = disk::TempObject::create(dir, id, &meta).unwrap();
        t.write(body).unwrap();
        let path = disk::object_path(dir, id);
        t.commit(&path).unwrap();
        path
    }

    #[tokio::test]
    async fn streams_whole_bodies_and_ranges() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        let path = write_object(dir.path(), &data);
        let len = data.len() as u64;
        let got = CacheBody::file(path.clone(), len, 0, len - 1, || {})
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(got.as_ref(), &data[..]);
        let got = CacheBody::file(path, len, 300_000, 600_000, || {})
            .collect()
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(got.as_ref(), &data[300_000..=600_000]);
    }

    #[tokio::test]
    async fn a_damaged_body_errors_instead_of_ending_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let data = vec![7u8; 600_000];
        let path = write_object(dir.path(), &data);
        let mut bytes = std::fs::read(&path).unwrap();
        let at = bytes.len() - 100;
        bytes[at] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let flagged = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let f = flagged.clone();
        let len = data.len() as u64;
        let result = CacheBody::file(path.clone(), len, 0, len - 1, move || {
            f.store(true, std::sync::atomic::Ordering::SeqCst)
        })
        .collect()
        .await;
        assert!(result.is_err());
        assert!(flagged.load(std::sync::atomic::Ordering::SeqCst));
        assert!(!path.exists(), "the damaged file is removed");
    }

    #[tokio::test]
    async fn a_range_of_a_damaged_body_errors_too() {
        let dir = tempfile::tempdir().unwrap();
        let data = vec![7u8; 1_500_000];
        let path = write_object(dir.path(), &data);
        let mut bytes = std::fs::read(&path).unwrap();
        // Damage a byte far outside the range asked for.
        let at = bytes.len() - 100;
        bytes[at] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let len = data.len() as u64;
        let result = CacheBody::file(path.clone(), len, 10, 20, || {})
            .collect()
            .await;
        assert!(result.is_err(), "a range read must not hide damage");
        assert!(!path.exists(), "the damaged file is removed");
    }
}
