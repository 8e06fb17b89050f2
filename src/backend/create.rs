//! Creating the bucket or container itself, when the operator asks for it at init.
//!
//! object_store reads and writes objects but cannot create buckets, so these are the two raw
//! requests that do: S3 `CreateBucket` through a URL presigned by object_store with the very
//! credentials the repository uses, and Azure `Create Container` signed with the account's
//! shared key.

use super::{Backend, Kind};
use crate::error::{BackendFailure, Error, Result};
use object_store::aws::AmazonS3;
use object_store::path::Path;
use object_store::signer::Signer;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// What Azure needs to sign a `Create Container` request.
pub(crate) struct AzureSharedKey {
    pub account: String,
    pub key: Vec<u8>,
    /// The account URL, e.g. `https://acct.blob.core.windows.net`.
    pub account_url: String,
}

impl std::fmt::Debug for AzureSharedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureSharedKey")
            .field("account", &self.account)
            .field("key", &"***")
            .field("account_url", &self.account_url)
            .finish()
    }
}

/// How a bucket or container can be created, kept next to the store.
#[derive(Clone, Debug)]
pub(crate) enum Creator {
    S3 {
        store: Arc<AmazonS3>,
        region: String,
    },
    Azure(Option<Arc<AzureSharedKey>>),
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

impl Backend {
    /// Create the bucket or container this repository lives in. Returns `false` when it
    /// already existed (and belongs to these credentials).
    ///
    /// # Errors
    /// `InvalidInput` for a store that cannot create one (local folders need nothing; Google
    /// Cloud Storage buckets are created with `gcloud`); `Backend` when the service refuses.
    pub async fn create_location(&self) -> Result<bool> {
        let (creator, name) = match &self.kind {
            Kind::Memory | Kind::Local { .. } => return Ok(false),
            Kind::S3 {
                creator, bucket, ..
            } => (creator, bucket),
            Kind::Azure {
                creator, container, ..
            } => (creator, container),
            Kind::Gcs { bucket, .. } => {
                return Err(Error::invalid(format!(
                    "cannot create Google Cloud Storage bucket {bucket:?} from here: create it with `gcloud storage buckets create gs://{bucket}`"
                )))
            }
        };
        // Look first: S3 in us-east-1 answers 200 to creating a bucket one already owns.
        match self.check_location().await {
            Ok(()) => return Ok(false),
            Err(Error::Backend {
                failure: BackendFailure::LocationNotFound,
                ..
            }) => {}
            Err(other) => return Err(other),
        }
        let client = reqwest::Client::new();
        let request = match creator {
            Creator::S3 { store, region } => {
                let url = store
                    .signed_url(reqwest::Method::PUT, &Path::from(""), Duration::from_secs(300))
                    .await
                    .map_err(|e| self.failure("create bucket", BackendFailure::Other, e.to_string()))?;
                let body = if region == "us-east-1" {
                    String::new()
                } else {
                    format!("<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><LocationConstraint>{region}</LocationConstraint></CreateBucketConfiguration>")
                };
                client
                    .put(url.as_str())
                    .header("Content-Length", body.len().to_string())
                    .body(body)
            }
            Creator::Azure(None) => {
                return Err(Error::invalid(format!(
                    "creating container {name:?} needs the account key (AZURE_STORAGE_ACCOUNT_KEY or a connection string); with other credentials create it with `az storage container create --name {name}`"
                )))
            }
            Creator::Azure(Some(shared)) => {
                let url = format!(
                    "{}/{name}?restype=container",
                    shared.account_url.trim_end_matches('/')
                );
                let path = url::Url::parse(&url)
                    .map_err(|e| Error::invalid(format!("bad Azure endpoint: {e}")))?
                    .path()
                    .to_string();
                let date = chrono::Utc::now()
                    .format("%a, %d %b %Y %H:%M:%S GMT")
                    .to_string();
                let version = "2021-08-06";
                let to_sign = format!(
                    "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{}{path}\nrestype:container",
                    shared.account
                );
                use base64::Engine;
                let signature = base64::engine::general_purpose::STANDARD
                    .encode(hmac_sha256(&shared.key, to_sign.as_bytes()));
                client
                    .put(url)
                    .header("x-ms-date", date)
                    .header("x-ms-version", version)
                    .header("Content-Length", "0")
                    .header(
                        "Authorization",
                        format!("SharedKey {}:{signature}", shared.account),
                    )
            }
        };
        let response = request
            .timeout(Duration::from_secs(60))
            .send()
            .await
            .map_err(|e| self.failure("create", BackendFailure::Transient, e.to_string()))?;
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        match status.as_u16() {
            200..=299 => Ok(true),
            409 if text.contains("BucketAlreadyOwnedByYou")
                || text.contains("ContainerAlreadyExists") =>
            {
                Ok(false)
            }
            401 | 403 => Err(self.failure(
                "create",
                BackendFailure::Auth,
                format!("{status}: {}", text.chars().take(300).collect::<String>()),
            )),
            _ => Err(self.failure(
                "create",
                if status.is_server_error() {
                    BackendFailure::Transient
                } else {
                    BackendFailure::Other
                },
                format!("{status}: {}", text.chars().take(300).collect::<String>()),
            )),
        }
    }

    /// Blocking form of [`Backend::create_location`].
    pub fn create_location_blocking(&self) -> Result<bool> {
        crate::runtime::block_on(self.create_location())
    }

    fn failure(&self, operation: &'static str, failure: BackendFailure, message: String) -> Error {
        let hint = match &self.kind {
            Kind::S3 { hint, .. } | Kind::Azure { hint, .. } | Kind::Gcs { hint, .. } => {
                hint.as_str()
            }
            Kind::Memory | Kind::Local { .. } => "",
        };
        Error::Backend {
            operation,
            path: self.location.clone(),
            message: self.redactor.redact(&format!("{message}; {hint}")),
            failure,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::hmac_sha256;

    #[test]
    fn hmac_matches_rfc_4231() {
        // RFC 4231 test case 2.
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block.
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            hex::encode(mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
