//! Exports in object storage (`s3://bucket/prefix/`, a glob such as
//! `s3://bucket/raw/dt=2019-05-*/*.json.gz`, or one object), through the `object_store`
//! crate (its only user). Objects are listed, then streamed block by block into the same
//! reader as local files: never held whole in memory, decompressed and hashed on the way.
//!
//! Credentials and endpoint come the way AWS tools take them: `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION` / `AWS_DEFAULT_REGION`, and
//! `AWS_ENDPOINT_URL` for S3-compatible stores (MinIO, Ceph, R2; plain `http://` is allowed
//! for those); without keys in the environment, the keys and region of `AWS_PROFILE` (or
//! `default`) from the shared credentials and config files, as the AWS CLI reads them. Transient errors (5xx, timeouts, a dropped connection) are retried by
//! object_store with exponential backoff, at most `RETRIES` times within `RETRY_WINDOW`.
//! Messages name the object's URL, never a credential.

use std::io::{self, Read};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path as ObjectPath;
use object_store::{BackoffConfig, ObjectStore, RetryConfig};

use crate::error::Failure;

const RETRIES: usize = 5;
const RETRY_WINDOW: Duration = Duration::from_secs(60);

/// Whether an input names an object store rather than a local path.
pub fn is_url(spec: &str) -> bool {
    spec.starts_with("s3://")
}

/// One object to load: its URL, size and ETag (what a re-run compares without downloading).
#[derive(Clone)]
pub struct ObjectRef {
    pub url: String,
    pub size: u64,
    pub etag: Option<String>,
    store: Arc<dyn ObjectStore>,
    location: ObjectPath,
    /// Why the object cannot be read at all (a key object_store cannot address), if so.
    unreadable: Option<String>,
}

impl std::fmt::Debug for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectRef").field("url", &self.url).field("size", &self.size).field("etag", &self.etag).finish()
    }
}

/// The runtime that drives object_store's futures (and the lake's Iceberg files) for the
/// blocking threads that wait on them.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tier-objects")
            .enable_all()
            .build()
            .expect("a tokio runtime for object storage")
    })
}

/// The objects a spec names, sorted by key: every export under a prefix (one ending in `/`,
/// or a bucket), those matching a glob, or the one object. None is an error, unless
/// `none_ok` (a landing prefix followed before anything lands).
pub fn list(spec: &str, endings: &[&str], none_ok: bool) -> Result<Vec<ObjectRef>> {
    let rest = spec.strip_prefix("s3://").ok_or_else(|| Failure::Input(format!("{spec}: not an s3:// URL")))?;
    let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(Failure::Input(format!("{spec}: no bucket in the URL")).into());
    }
    let store = s3(bucket, spec)?;
    let url_of = |location: &ObjectPath| format!("s3://{bucket}/{location}");
    let is_export_key = |key: &str| {
        let name = key.to_ascii_lowercase();
        endings.iter().any(|x| name.ends_with(x))
    };
    let is_export = |location: &ObjectPath| is_export_key(location.as_ref());
    let glob_at = key.find(['*', '?', '[']);
    let (found, bad): (Vec<object_store::ObjectMeta>, Vec<String>) = if let Some(at) = glob_at {
        let pattern = glob::Pattern::new(key).map_err(|e| Failure::Input(format!("{spec}: not a valid pattern: {e}")))?;
        let prefix = &key[..key[..at].rfind('/').map_or(0, |i| i + 1)];
        let (found, bad) = list_prefix(&store, prefix, spec)?;
        (
            found.into_iter().filter(|m| pattern.matches(m.location.as_ref())).collect(),
            bad.into_iter().filter(|k| pattern.matches(k)).collect(),
        )
    } else if key.is_empty() || key.ends_with('/') {
        let (found, bad) = list_prefix(&store, key, spec)?;
        (found.into_iter().filter(|m| is_export(&m.location)).collect(), bad.into_iter().filter(|k| is_export_key(k)).collect())
    } else {
        // One object; or, when there is none by that name, a prefix written without its `/`.
        match runtime().block_on(store.head(&ObjectPath::from(key))) {
            Ok(meta) => (vec![meta], Vec::new()),
            Err(object_store::Error::NotFound { .. }) => {
                let (found, bad) = list_prefix(&store, &format!("{key}/"), spec)?;
                (found.into_iter().filter(|m| is_export(&m.location)).collect(), bad.into_iter().filter(|k| is_export_key(k)).collect())
            }
            Err(e) => return Err(failure(spec, e)),
        }
    };
    if found.is_empty() && bad.is_empty() && !none_ok {
        return Err(Failure::Input(format!("{spec}: no export objects there")).into());
    }
    let shared: Arc<dyn ObjectStore> = store.clone();
    let mut objects: Vec<ObjectRef> = found
        .into_iter()
        .map(|m| ObjectRef {
            url: url_of(&m.location),
            size: m.size,
            etag: m.e_tag,
            store: shared.clone(),
            location: m.location,
            unreadable: None,
        })
        .chain(bad.into_iter().map(|k| ObjectRef {
            url: format!("s3://{bucket}/{k}"),
            size: 0,
            etag: None,
            store: shared.clone(),
            location: ObjectPath::default(),
            unreadable: Some("a key with an empty or `..` segment, which object storage clients cannot address; not loaded".into()),
        }))
        .collect();
    objects.sort_by(|a, b| a.url.cmp(&b.url));
    Ok(objects)
}

/// The objects under a prefix, and the keys of those object_store cannot address (an
/// empty or `..` segment: `ev/x//y.json`). object_store refuses a whole page of a listing
/// over one such key; the page is then listed again a key at a time (S3's `start-after`
/// and `max-keys`), so that key alone is set apart and every other object is found.
fn list_prefix(store: &AmazonS3, prefix: &str, spec: &str) -> Result<(Vec<object_store::ObjectMeta>, Vec<String>)> {
    let prefix = prefix.trim_end_matches('/');
    let prefix = (!prefix.is_empty()).then(|| format!("{prefix}/"));
    let (mut found, mut bad) = (Vec::new(), Vec::new());
    let (mut token, mut after, mut one_by_one): (Option<String>, Option<String>, bool) = (None, None, false);
    loop {
        let opts = PaginatedListOptions {
            offset: if token.is_none() { after.clone() } else { None },
            max_keys: one_by_one.then_some(1),
            page_token: token.clone(),
            ..Default::default()
        };
        match runtime().block_on(store.list_paginated(prefix.as_deref(), opts)) {
            Ok(page) => {
                let (more, empty) = (page.page_token.is_some(), page.result.objects.is_empty());
                if let Some(last) = page.result.objects.last() {
                    after = Some(last.location.to_string());
                }
                found.extend(page.result.objects);
                if one_by_one {
                    // A key past the one that failed a page: whole pages again from it.
                    one_by_one = false;
                    token = None;
                    if empty && !more {
                        break;
                    }
                } else {
                    token = page.page_token;
                    if !more {
                        break;
                    }
                }
            }
            Err(e) => match unaddressable(&e) {
                Some(key) if one_by_one => {
                    after = Some(key.clone());
                    bad.push(key);
                    token = None;
                    one_by_one = false;
                }
                Some(_) => {
                    token = None;
                    one_by_one = true;
                }
                None => return Err(failure(spec, e)),
            },
        }
    }
    Ok((found, bad))
}

/// The key an error says object_store cannot make a path of.
fn unaddressable(e: &object_store::Error) -> Option<String> {
    use object_store::path::Error as PathError;
    match e {
        object_store::Error::InvalidPath { source: PathError::EmptySegment { path } | PathError::BadSegment { path, .. } } => {
            Some(path.clone())
        }
        _ => None,
    }
}

/// An S3 client for a bucket, configured from the AWS environment variables.
pub fn s3(bucket: &str, spec: &str) -> Result<Arc<AmazonS3>> {
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket).with_retry(RetryConfig {
        backoff: BackoffConfig { init_backoff: Duration::from_millis(200), max_backoff: Duration::from_secs(10), base: 2.0 },
        max_retries: RETRIES,
        retry_timeout: RETRY_WINDOW,
    });
    if std::env::var_os("AWS_ACCESS_KEY_ID").is_none() {
        builder = with_profile(builder);
    }
    if std::env::var("AWS_ENDPOINT_URL").or_else(|_| std::env::var("AWS_ENDPOINT")).is_ok_and(|e| e.starts_with("http://")) {
        builder = builder.with_allow_http(true);
    }
    let store = builder.build().map_err(|e| Failure::Input(format!("{spec}: cannot reach object storage: {}", quiet(&e))))?;
    Ok(Arc::new(store))
}

/// The keys (and region) of a named profile, from the AWS CLI's files: `AWS_PROFILE` (else
/// `default`) in `AWS_SHARED_CREDENTIALS_FILE` (else `~/.aws/credentials`), its region in
/// `AWS_CONFIG_FILE` (else `~/.aws/config`, section `[profile NAME]`). object_store reads
/// profiles only through the AWS SDK, which tier does not build.
fn with_profile(mut builder: AmazonS3Builder) -> AmazonS3Builder {
    let profile = std::env::var("AWS_PROFILE").unwrap_or_else(|_| "default".to_string());
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from).unwrap_or_default();
    let file = |var: &str, name: &str| std::env::var_os(var).map(std::path::PathBuf::from).unwrap_or_else(|| home.join(".aws").join(name));
    let credentials = ini_section(&file("AWS_SHARED_CREDENTIALS_FILE", "credentials"), &profile);
    let config_section = if profile == "default" { profile.clone() } else { format!("profile {profile}") };
    let config = ini_section(&file("AWS_CONFIG_FILE", "config"), &config_section);
    if let Some(v) = credentials.get("aws_access_key_id") {
        builder = builder.with_access_key_id(v);
    }
    if let Some(v) = credentials.get("aws_secret_access_key") {
        builder = builder.with_secret_access_key(v);
    }
    if let Some(v) = credentials.get("aws_session_token") {
        builder = builder.with_token(v);
    }
    if let (Some(v), true) = (config.get("region"), std::env::var_os("AWS_REGION").or(std::env::var_os("AWS_DEFAULT_REGION")).is_none()) {
        builder = builder.with_region(v);
    }
    builder
}

/// The `key = value` lines of one `[section]` of an INI file (none if it cannot be read).
fn ini_section(path: &std::path::Path, section: &str) -> std::collections::HashMap<String, String> {
    let mut found = std::collections::HashMap::new();
    let Ok(text) = std::fs::read_to_string(path) else { return found };
    let mut inside = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
        } else if let (true, Some((k, v))) = (inside, line.split_once('=')) {
            found.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    found
}

/// An object_store error as a failure naming the URL (the store's own message carries the
/// status and the key, not credentials).
fn failure(url: &str, e: object_store::Error) -> anyhow::Error {
    match e {
        object_store::Error::NotFound { .. } => Failure::Input(format!("{url}: no such object (gone since it was listed?)")).into(),
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
            Failure::Input(format!("{url}: access denied")).into()
        }
        other => Failure::Input(format!("{url}: object storage failed: {}", quiet(&other))).into(),
    }
}

/// The first line of an error's text: enough to say what happened.
fn quiet(e: &dyn std::fmt::Display) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

impl ObjectRef {
    /// Streams the object's bytes as stored.
    pub fn open(&self) -> Result<Box<dyn Read + Send>> {
        if let Some(why) = &self.unreadable {
            return Err(Failure::Input(format!("{}: {why}", self.url)).into());
        }
        let result = runtime().block_on(self.store.get(&self.location)).map_err(|e| failure(&self.url, e))?;
        Ok(Box::new(ObjectRead { url: self.url.clone(), stream: result.into_stream(), block: Bytes::new() }))
    }
}

/// A blocking reader over an object's byte stream, one block at a time.
struct ObjectRead {
    url: String,
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    block: Bytes,
}

impl Read for ObjectRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.block.is_empty() {
            match runtime().block_on(self.stream.next()) {
                Some(Ok(block)) => self.block = block,
                Some(Err(e)) => return Err(io::Error::other(format!("{}: {}", self.url, quiet(&e)))),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.block.len());
        buf[..n].copy_from_slice(&self.block[..n]);
        self.block = self.block.slice(n..);
        Ok(n)
    }
}

/// A place in object storage that tier writes to (the lake): keys relative to a base prefix.
pub struct Prefix {
    pub url: String,
    store: Arc<AmazonS3>,
    base: String,
}

/// A writable prefix from a URL (`s3://bucket/lake`).
pub fn prefix(url: &str) -> Result<Prefix> {
    let rest = url.strip_prefix("s3://").ok_or_else(|| Failure::Input(format!("{url}: not an s3:// URL")))?;
    let (bucket, base) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(Failure::Input(format!("{url}: no bucket in the URL")).into());
    }
    Ok(Prefix { url: url.trim_end_matches('/').to_string(), store: s3(bucket, url)?, base: base.trim_matches('/').to_string() })
}

impl Prefix {
    fn key(&self, rel: &str) -> ObjectPath {
        match self.base.is_empty() {
            true => ObjectPath::from(rel),
            false => ObjectPath::from(format!("{}/{rel}", self.base)),
        }
    }

    fn url_of(&self, rel: &str) -> String {
        format!("{}/{rel}", self.url)
    }

    /// Uploads a local file (streamed, in parts), whole or not at all.
    pub fn put_file(&self, rel: &str, local: &std::path::Path) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        let (store, key, url) = (self.store.clone(), self.key(rel), self.url_of(rel));
        runtime()
            .block_on(async move {
                let mut file = tokio::fs::File::open(local).await?;
                let mut upload = object_store::buffered::BufWriter::new(store, key);
                if let Err(e) = tokio::io::copy(&mut file, &mut upload).await {
                    upload.abort().await.ok();
                    return Err(e);
                }
                upload.shutdown().await
            })
            .map_err(|e| Failure::Input(format!("{url}: upload failed: {}", quiet(&e))).into())
    }

    /// Writes a small object in one request (atomic: readers see it whole or not at all).
    pub fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        runtime().block_on(self.store.put(&self.key(rel), bytes.into())).map_err(|e| failure(&self.url_of(rel), e))?;
        Ok(())
    }

    pub fn get(&self, rel: &str) -> Result<Vec<u8>> {
        let url = self.url_of(rel);
        let bytes = runtime().block_on(async { self.store.get(&self.key(rel)).await?.bytes().await }).map_err(|e| failure(&url, e))?;
        Ok(bytes.to_vec())
    }

    /// Downloads an object into a local file, streamed.
    pub fn download(&self, rel: &str, local: &std::path::Path) -> Result<()> {
        let url = self.url_of(rel);
        let mut reader =
            ObjectRef { url: url.clone(), size: 0, etag: None, store: self.store.clone(), location: self.key(rel), unreadable: None }
                .open()?;
        let mut file = std::fs::File::create(local).map_err(|e| Failure::Input(format!("{}: {e}", local.display())))?;
        io::copy(&mut reader, &mut file).map_err(|e| Failure::Input(format!("{url}: download failed: {e}")))?;
        Ok(())
    }

    /// The keys under `rel` (relative to the base), sorted.
    pub fn list(&self, rel: &str) -> Result<Vec<String>> {
        let strip = match self.base.is_empty() {
            true => String::new(),
            false => format!("{}/", self.base),
        };
        let (metas, unaddressable) = list_prefix(&self.store, self.key(rel).as_ref(), &self.url_of(rel))?;
        for key in unaddressable {
            // Not a key tier writes: no part of the lake.
            tracing::warn!("{}: passing over {key:?}, a key object storage clients cannot address", self.url);
        }
        let mut keys: Vec<String> = metas
            .into_iter()
            .map(|m| m.location.as_ref().strip_prefix(strip.as_str()).unwrap_or(m.location.as_ref()).to_string())
            .collect();
        keys.sort();
        Ok(keys)
    }

    pub fn delete(&self, rel: &str) -> Result<()> {
        match runtime().block_on(self.store.delete(&self.key(rel))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(failure(&self.url_of(rel), e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_read_as_the_aws_cli_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("credentials");
        std::fs::write(
            &path,
            "[default]\naws_access_key_id = A\n# a comment\n[tier]\naws_access_key_id=B\n aws_secret_access_key = s=c=r\n[other]\nx = 1\n",
        )
        .unwrap();
        let tier = ini_section(&path, "tier");
        assert_eq!(tier.get("aws_access_key_id").map(String::as_str), Some("B"));
        assert_eq!(tier.get("aws_secret_access_key").map(String::as_str), Some("s=c=r"));
        assert_eq!(tier.len(), 2);
        assert_eq!(ini_section(&path, "default").get("aws_access_key_id").map(String::as_str), Some("A"));
        assert!(ini_section(&dir.path().join("missing"), "tier").is_empty());
    }
}
