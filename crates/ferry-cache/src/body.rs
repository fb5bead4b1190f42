//! Bodies served from the cache. Small objects come from memory; larger ones
//! stream from their file in 512 KiB reads, each its own short blocking task,
//! one chunk ahead of the client: a client that reads slowly holds memory
//! for two chunks and no blocking-pool thread. Every file read,
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
use tokio::task::JoinHandle;

use crate::error::CacheError;
use crate::store::disk;

const CHUNK: usize = 512 * 1024;

pub struct CacheBody {
    source: Source,
    remaining: u64,
}

enum Source {
    Memory(Option<Bytes>),
    File(FileRead),
}

/// A file body read one chunk per blocking task, one chunk ahead of the
/// client: no blocking-pool thread waits while a slow client reads.
enum FileRead {
    Reading(ReadTask),
    Done,
}

/// One chunk's read: the reader handed back, and the part to send.
type ReadTask = JoinHandle<(Box<Reader>, Result<Option<Bytes>, CacheError>)>;

/// Where a file read stands between chunks.
struct Reader {
    path: PathBuf,
    expected_len: u64,
    /// Body bytes `start..end` are sent.
    start: u64,
    end: u64,
    file: Option<File>,
    body_crc: u32,
    crc: u32,
    /// Body bytes read so far.
    at: u64,
    /// The range's last bytes, held until the checksum is known.
    held: Option<Bytes>,
    on_corrupt: Option<Box<dyn FnOnce() + Send>>,
}

impl CacheBody {
    pub fn empty() -> CacheBody {
        CacheBody {
            source: Source::Memory(None),
            remaining: 0,
        }
    }

    pub fn memory(bytes: Bytes) -> CacheBody {
        CacheBody {
            remaining: bytes.len() as u64,
            source: Source::Memory(Some(bytes).filter(|b| !b.is_empty())),
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
        let reader = Box::new(Reader {
            path,
            expected_len,
            start,
            end: start + len,
            file: None,
            body_crc: 0,
            crc: 0,
            at: 0,
            held: None,
            on_corrupt: Some(Box::new(on_corrupt)),
        });
        CacheBody {
            source: Source::File(FileRead::Reading(read_next(reader))),
            remaining: len,
        }
    }
}

/// Reads the next part to send on the blocking pool.
fn read_next(mut reader: Box<Reader>) -> ReadTask {
    tokio::task::spawn_blocking(move || {
        let result = reader.next_part();
        if let Err(e) = &result {
            if matches!(e, CacheError::Corrupt(_)) {
                tracing::warn!(path = %reader.path.display(), error = %e, "damaged cache object removed");
                let _ = std::fs::remove_file(&reader.path);
                if let Some(report) = reader.on_corrupt.take() {
                    report();
                }
            }
        }
        (reader, result)
    })
}

impl Reader {
    fn open(&mut self) -> Result<File, CacheError> {
        let mut file = File::open(&self.path)?;
        // The head is read again here: the file may have been replaced since the
        // lookup, and offsets must come from the file actually opened.
        let head = disk::read_head(&mut file).map_err(|e| match e {
            disk::ReadError::Corrupt(why) => CacheError::Corrupt(why.into()),
            disk::ReadError::Missing => CacheError::Io(std::io::ErrorKind::NotFound.into()),
            disk::ReadError::Io(e) => CacheError::Io(e),
        })?;
        if head.body_len != self.expected_len {
            return Err(CacheError::Io(std::io::Error::other(
                "object replaced while reading",
            )));
        }
        file.seek(SeekFrom::Start(head.body_start))?;
        self.body_crc = head.body_crc;
        Ok(file)
    }

    /// Reads on (the whole body, for the checksum) until there is a part of
    /// the range to send; `None` once everything was sent.
    fn next_part(&mut self) -> Result<Option<Bytes>, CacheError> {
        let mut file = match self.file.take() {
            Some(file) => file,
            None if self.at == 0 => self.open()?,
            None => return Ok(None),
        };
        while self.at < self.expected_len {
            let n = ((self.expected_len - self.at) as usize).min(CHUNK);
            // Read into spare capacity: no zero-filling of a buffer about to be overwritten.
            let mut buf = Vec::with_capacity(n);
            (&mut file).take(n as u64).read_to_end(&mut buf)?;
            if buf.len() != n {
                return Err(CacheError::Corrupt(
                    "object shorter than its trailer says".into(),
                ));
            }
            self.crc = crc32c::crc32c_append(self.crc, &buf);
            let chunk_start = self.at;
            let chunk_end = self.at + n as u64;
            self.at = chunk_end;
            if chunk_end <= self.start || chunk_start >= self.end {
                continue;
            }
            let from = self.start.saturating_sub(chunk_start) as usize;
            let to = (self.end.min(chunk_end) - chunk_start) as usize;
            let buf = Bytes::from(buf);
            let part = if from == 0 && to == n {
                buf
            } else {
                buf.slice(from..to)
            };
            if chunk_end >= self.end {
                self.held = Some(part);
                continue;
            }
            self.file = Some(file);
            return Ok(Some(part));
        }
        if self.crc != self.body_crc {
            return Err(CacheError::Corrupt("body checksum mismatch".into()));
        }
        Ok(self.held.take())
    }
}

impl Body for CacheBody {
    type Data = Bytes;
    type Error = CacheError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, CacheError>>> {
        let this = &mut *self;
        match &mut this.source {
            Source::Memory(bytes) => {
                this.remaining = 0;
                Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b))))
            }
            Source::File(read) => {
                let FileRead::Reading(handle) = read else {
                    return Poll::Ready(None);
                };
                let joined = std::task::ready!(Pin::new(handle).poll(cx));
                *read = FileRead::Done;
                match joined {
                    Ok((reader, Ok(Some(chunk)))) => {
                        this.remaining = this.remaining.saturating_sub(chunk.len() as u64);
                        if this.remaining > 0 {
                            // One chunk ahead while the client takes this one.
                            *read = FileRead::Reading(read_next(reader));
                        }
                        Poll::Ready(Some(Ok(Frame::data(chunk))))
                    }
                    Ok((_, Ok(None))) if this.remaining == 0 => Poll::Ready(None),
                    Ok((_, Ok(None))) => Poll::Ready(Some(Err(CacheError::Io(
                        std::io::Error::other("cache read ended early"),
                    )))),
                    Ok((_, Err(e))) => Poll::Ready(Some(Err(e))),
                    Err(e) => Poll::Ready(Some(Err(CacheError::Io(std::io::Error::other(
                        e.to_string(),
                    ))))),
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

use std::future::Future as _;

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

    /// With a single blocking thread, a body whose client stopped reading
    /// must not keep another body from being read.
    #[test]
    fn a_client_that_stops_reading_holds_no_blocking_thread() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let data = vec![3u8; 8 * CHUNK];
            let path = write_object(dir.path(), &data);
            let len = data.len() as u64;
            let mut stalled = CacheBody::file(path.clone(), len, 0, len - 1, || {});
            // One chunk, then this client stops reading.
            let first = stalled.frame().await.unwrap().unwrap();
            assert_eq!(first.data_ref().unwrap().len(), CHUNK);
            let other = tokio::time::timeout(
                std::time::Duration::from_secs(10),
                CacheBody::file(path, len, 0, len - 1, || {}).collect(),
            )
            .await
            .expect("the stalled body held the only blocking thread")
            .unwrap()
            .to_bytes();
            assert_eq!(other.len(), data.len());
            drop(stalled);
        });
    }
}
