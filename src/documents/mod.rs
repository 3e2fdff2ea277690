//! Where the bytes of uploaded photos live: the small [`DocumentStore`] interface (put, get,
//! delete by id) and its local-filesystem implementation under `data_dir/documents/`
//! ([`local`]). Object storage can be added as another implementation; the metadata
//! (filing, kind, size, SHA-256, uploader) is in the database (`store::documents`).

pub mod local;

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;

use crate::config::Config;

pub use local::LocalDocumentStore;

/// What a store operation answers, boxed so the store can be a trait object.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send + 'a>>;

/// Bytes by document id. `put` is all or nothing: after a crash a document is either whole
/// or absent, never half written.
pub trait DocumentStore: Send + Sync {
    /// Stores `bytes` under `id`, replacing nothing that a reader could see half written.
    fn put<'a>(&'a self, id: &'a str, bytes: &'a [u8]) -> StoreFuture<'a, ()>;
    /// The bytes of `id`, or `None` if there is no such document.
    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Vec<u8>>>;
    /// Removes `id`; removing what is not there is not an error.
    fn delete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()>;
}

/// The document store of the configuration: local files under `data_dir/documents/`.
pub fn from_config(config: &Config) -> Arc<dyn DocumentStore> {
    Arc::new(LocalDocumentStore::new(config.data_dir.join("documents")))
}

/// Document ids are store keys: 1–64 characters of `[0-9A-Za-z_-]`, so no id names a path
/// outside the store.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}
