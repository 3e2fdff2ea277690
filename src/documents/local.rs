//! The document store on the local filesystem: one file per document, named by its id, in
//! one folder. A put writes a temporary file in that folder, syncs it and renames it into
//! place (then syncs the folder), so a crash leaves the old state or the new, never half a
//! file; a stray temporary file (`.<id>.<nonce>.part`) is all a crash can leave behind.

use std::io;
use std::path::{Path, PathBuf};

use tokio::io::AsyncWriteExt;

use super::{DocumentStore, StoreFuture, valid_id};

pub struct LocalDocumentStore {
    root: PathBuf,
}

impl LocalDocumentStore {
    pub fn new(root: impl Into<PathBuf>) -> LocalDocumentStore {
        LocalDocumentStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path_of(&self, id: &str) -> io::Result<PathBuf> {
        if !valid_id(id) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a document id",
            ));
        }
        Ok(self.root.join(id))
    }

    async fn put_file(&self, id: &str, bytes: &[u8]) -> io::Result<()> {
        let target = self.path_of(id)?;
        tokio::fs::create_dir_all(&self.root).await?;
        let temp = self
            .root
            .join(format!(".{id}.{}.part", uuid::Uuid::new_v4().simple()));
        let written = async {
            let mut file = tokio::fs::File::create(&temp).await?;
            file.write_all(bytes).await?;
            file.sync_all().await?;
            drop(file);
            tokio::fs::rename(&temp, &target).await
        }
        .await;
        if let Err(e) = written {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(e);
        }
        // The rename is durable once the folder is synced (best effort where a folder
        // cannot be opened for that).
        if let Ok(dir) = tokio::fs::File::open(&self.root).await {
            let _ = dir.sync_all().await;
        }
        Ok(())
    }

    async fn get_file(&self, id: &str) -> io::Result<Option<Vec<u8>>> {
        match tokio::fs::read(self.path_of(id)?).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn delete_file(&self, id: &str) -> io::Result<()> {
        match tokio::fs::remove_file(self.path_of(id)?).await {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

impl DocumentStore for LocalDocumentStore {
    fn put<'a>(&'a self, id: &'a str, bytes: &'a [u8]) -> StoreFuture<'a, ()> {
        Box::pin(self.put_file(id, bytes))
    }

    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        Box::pin(self.get_file(id))
    }

    fn delete<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(self.delete_file(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_get_delete_and_no_path_escapes() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalDocumentStore::new(dir.path().join("documents"));
        assert_eq!(store.get("d1").await.unwrap(), None);
        store.put("d1", b"first").await.unwrap();
        store.put("d1", b"second").await.unwrap();
        assert_eq!(
            store.get("d1").await.unwrap().as_deref(),
            Some(&b"second"[..])
        );
        let leftovers: Vec<_> = std::fs::read_dir(store.root())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(leftovers, ["d1"], "no temporary file is left");
        store.delete("d1").await.unwrap();
        store.delete("d1").await.unwrap();
        assert_eq!(store.get("d1").await.unwrap(), None);
        for bad in ["", "../x", "a/b", ".hidden", &"x".repeat(65)] {
            assert!(store.put(bad, b"x").await.is_err(), "{bad}");
            assert!(store.get(bad).await.is_err(), "{bad}");
        }
    }
}
