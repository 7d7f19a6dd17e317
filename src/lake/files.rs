//! Where an Iceberg lake table's files live, for the iceberg crate's `FileIO`: a local
//! directory (`file://`), or object storage (`s3://bucket/...`) through tier's S3 client,
//! configured as the sources are (the AWS environment variables or profile). Data files
//! are uploaded in parts as they are written; metadata files in one request each.

use std::ops::Range;
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Result;
use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt};
use iceberg::io::{
    FileIO, FileIOBuilder, FileMetadata, FileRead, FileWrite, InputFile, OutputFile, Storage, StorageConfig, StorageFactory,
};
use object_store::aws::AmazonS3;
use object_store::path::Path as ObjectPath;
use object_store::ObjectStore;
use serde::{Deserialize, Serialize};

use crate::error::Failure;

/// Runs one of the iceberg crate's file operations (async) to its end on tier's runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    crate::source::object::runtime().block_on(f)
}

/// The file access for a table at `location` (a `file://` or `s3://` URL).
pub fn file_io(location: &str) -> Result<FileIO> {
    match location.strip_prefix("s3://") {
        Some(rest) => {
            let bucket = rest.split('/').next().unwrap_or_default();
            if bucket.is_empty() {
                return Err(Failure::Input(format!("{location}: no bucket in the URL")).into());
            }
            let storage = S3Storage { bucket: bucket.to_string(), store: Some(crate::source::object::s3(bucket, location)?) };
            Ok(FileIOBuilder::new(Arc::new(S3Factory { storage })).build())
        }
        None => Ok(FileIO::new_with_fs()),
    }
}

/// Every file under `location`, with when it was last written.
pub fn list(location: &str) -> Result<Vec<(String, SystemTime)>> {
    let mut out = Vec::new();
    match location.strip_prefix("s3://") {
        Some(rest) => {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            let store = crate::source::object::s3(bucket, location)?;
            let prefix = ObjectPath::from(prefix);
            let metas: Vec<object_store::ObjectMeta> = block_on(async {
                let mut found = Vec::new();
                let mut listing = store.list(Some(&prefix));
                while let Some(meta) = listing.next().await {
                    found.push(meta?);
                }
                Ok::<_, object_store::Error>(found)
            })
            .map_err(|e| Failure::Input(format!("lake: cannot list {location}: {e}")))?;
            for m in metas {
                out.push((format!("s3://{bucket}/{}", m.location), SystemTime::from(m.last_modified)));
            }
        }
        None => {
            let root = location.strip_prefix("file://").unwrap_or(location);
            walk(std::path::Path::new(root), &mut out)?;
        }
    }
    out.sort();
    Ok(out)
}

fn walk(dir: &std::path::Path, out: &mut Vec<(String, SystemTime)>) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let path = entry?.path();
        let meta = std::fs::metadata(&path)?;
        if meta.is_dir() {
            walk(&path, out)?;
        } else {
            out.push((format!("file://{}", path.display()), meta.modified()?));
        }
    }
    Ok(())
}

/// One bucket of object storage as the iceberg crate's `Storage`. Serialized (as the
/// crate's trait asks) by its bucket name only; tier never deserializes one.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct S3Storage {
    bucket: String,
    #[serde(skip)]
    store: Option<Arc<AmazonS3>>,
}

#[derive(Debug, Serialize, Deserialize)]
struct S3Factory {
    storage: S3Storage,
}

#[typetag::serde]
impl StorageFactory for S3Factory {
    fn build(&self, _config: &StorageConfig) -> iceberg::Result<Arc<dyn Storage>> {
        Ok(Arc::new(self.storage.clone()))
    }
}

fn io_error(path: &str, e: impl std::fmt::Display) -> iceberg::Error {
    iceberg::Error::new(iceberg::ErrorKind::Unexpected, format!("{path}: {e}"))
}

impl S3Storage {
    fn store(&self) -> iceberg::Result<&Arc<AmazonS3>> {
        self.store.as_ref().ok_or_else(|| iceberg::Error::new(iceberg::ErrorKind::Unexpected, "object storage not connected"))
    }

    /// The key of an `s3://bucket/key` URL of this bucket.
    fn key(&self, path: &str) -> iceberg::Result<ObjectPath> {
        path.strip_prefix("s3://")
            .and_then(|rest| rest.strip_prefix(self.bucket.as_str()))
            .and_then(|rest| rest.strip_prefix('/'))
            .map(ObjectPath::from)
            .ok_or_else(|| io_error(path, format!("not in the bucket {}", self.bucket)))
    }
}

#[async_trait::async_trait]
#[typetag::serde]
impl Storage for S3Storage {
    async fn exists(&self, path: &str) -> iceberg::Result<bool> {
        match self.store()?.head(&self.key(path)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(io_error(path, e)),
        }
    }

    async fn metadata(&self, path: &str) -> iceberg::Result<FileMetadata> {
        let meta = self.store()?.head(&self.key(path)?).await.map_err(|e| io_error(path, e))?;
        Ok(FileMetadata { size: meta.size })
    }

    async fn read(&self, path: &str) -> iceberg::Result<Bytes> {
        let got = self.store()?.get(&self.key(path)?).await.map_err(|e| io_error(path, e))?;
        got.bytes().await.map_err(|e| io_error(path, e))
    }

    async fn reader(&self, path: &str) -> iceberg::Result<Box<dyn FileRead>> {
        Ok(Box::new(S3Read { store: self.store()?.clone(), key: self.key(path)?, path: path.to_string() }))
    }

    async fn write(&self, path: &str, bs: Bytes) -> iceberg::Result<()> {
        self.store()?.put(&self.key(path)?, bs.into()).await.map_err(|e| io_error(path, e))?;
        Ok(())
    }

    async fn writer(&self, path: &str) -> iceberg::Result<Box<dyn FileWrite>> {
        let upload = object_store::buffered::BufWriter::new(self.store()?.clone(), self.key(path)?);
        Ok(Box::new(S3Write { upload, path: path.to_string() }))
    }

    async fn delete(&self, path: &str) -> iceberg::Result<()> {
        match self.store()?.delete(&self.key(path)?).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(io_error(path, e)),
        }
    }

    async fn delete_prefix(&self, path: &str) -> iceberg::Result<()> {
        let store = self.store()?;
        let mut listing = store.list(Some(&self.key(path)?));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| io_error(path, e))?;
            store.delete(&meta.location).await.map_err(|e| io_error(path, e))?;
        }
        Ok(())
    }

    async fn delete_stream(&self, mut paths: BoxStream<'static, String>) -> iceberg::Result<()> {
        while let Some(path) = paths.next().await {
            self.delete(&path).await?;
        }
        Ok(())
    }

    fn new_input(&self, path: &str) -> iceberg::Result<InputFile> {
        Ok(InputFile::new(Arc::new(self.clone()), path.to_string()))
    }

    fn new_output(&self, path: &str) -> iceberg::Result<OutputFile> {
        Ok(OutputFile::new(Arc::new(self.clone()), path.to_string()))
    }
}

struct S3Read {
    store: Arc<AmazonS3>,
    key: ObjectPath,
    path: String,
}

#[async_trait::async_trait]
impl FileRead for S3Read {
    async fn read(&self, range: Range<u64>) -> iceberg::Result<Bytes> {
        self.store.get_range(&self.key, range).await.map_err(|e| io_error(&self.path, e))
    }
}

/// A file uploaded in parts while it is written (one request when it stays small); it
/// appears whole at `close`, or not at all.
struct S3Write {
    upload: object_store::buffered::BufWriter,
    path: String,
}

#[async_trait::async_trait]
impl FileWrite for S3Write {
    async fn write(&mut self, bs: Bytes) -> iceberg::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.upload.write_all(&bs).await.map_err(|e| io_error(&self.path, e))
    }

    async fn close(&mut self) -> iceberg::Result<()> {
        use tokio::io::AsyncWriteExt;
        self.upload.shutdown().await.map_err(|e| io_error(&self.path, e))
    }
}
