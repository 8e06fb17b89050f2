//! Turning a repository URL plus options into an object store.
//!
//! Settings come from three places, later ones winning: the environment each cloud SDK user
//! already has (`AWS_*`, `AZURE_*`, `GOOGLE_*`, AWS profiles, Azure connection strings), then
//! the URL (`s3://bucket/prefix`), then explicit options (`endpoint`, `region`, ...). Secret
//! values are collected on the way so that no error message can show them.

use super::create::{AzureSharedKey, Creator};
use super::{Backend, Kind, Redactor};
use crate::error::{Error, Result};
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, RetryConfig};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Azurite's published development account key (not a secret).
const AZURITE_ACCOUNT_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Options given next to the URL (Python keyword arguments, CLI `--option key=value`).
pub type Options = BTreeMap<String, String>;

/// Multipart settings: objects at least `threshold` bytes upload in `part_size` parts.
const DEFAULT_MULTIPART_THRESHOLD: usize = 8 * 1024 * 1024;
const DEFAULT_PART_SIZE: usize = 8 * 1024 * 1024;
/// S3 refuses parts under 5 MiB (except the last).
const MIN_PART_SIZE: usize = 5 * 1024 * 1024;

/// Option keys this crate handles itself (everything else goes to object_store's builder).
const OWN_KEYS: &[&str] = &[
    "max_retries",
    "retry_timeout",
    "backoff_initial",
    "backoff_max",
    "multipart_threshold",
    "multipart_part_size",
    "profile",
    "connection_string",
];

/// Words that mark an option or environment variable as a secret.
fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "secret",
        "password",
        "token",
        "sas",
        "account_key",
        "access_key",
        "master_key",
        "connection_string",
        "service_account_key",
        "encryption_key",
        "customer_key",
    ]
    .iter()
    .any(|word| key.contains(word))
        && !key.ends_with("access_key_id")
        && !key.ends_with("_file")
        && !key.ends_with("_path")
}

/// Settings shared by every cloud backend.
struct Common {
    retry: RetryConfig,
    multipart_threshold: usize,
    part_size: usize,
}

fn parse_duration(key: &str, value: &str) -> Result<Duration> {
    let value = value.trim();
    let (number, scale) = if let Some(n) = value.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = value.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = value.strip_suffix('m') {
        (n, 60.0)
    } else {
        (value, 1.0)
    };
    number
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .map(|n| Duration::from_secs_f64(n * scale))
        .ok_or_else(|| {
            Error::invalid(format!(
                "option {key}={value:?} is not a duration (seconds, or a number with ms/s/m)"
            ))
        })
}

fn parse_usize(key: &str, value: &str) -> Result<usize> {
    value
        .trim()
        .parse()
        .map_err(|_| Error::invalid(format!("option {key}={value:?} is not a whole number")))
}

fn common(options: &Options) -> Result<Common> {
    // object_store's defaults: 10 retries within 3 minutes, backoff from 100 ms to 15 s with
    // full jitter; retried are timeouts, connection errors, 5xx and 429.
    let mut retry = RetryConfig::default();
    let mut common = Common {
        retry: RetryConfig::default(),
        multipart_threshold: DEFAULT_MULTIPART_THRESHOLD,
        part_size: DEFAULT_PART_SIZE,
    };
    for (key, value) in options {
        match key.as_str() {
            "max_retries" => retry.max_retries = parse_usize(key, value)?,
            "retry_timeout" => retry.retry_timeout = parse_duration(key, value)?,
            "backoff_initial" => retry.backoff.init_backoff = parse_duration(key, value)?,
            "backoff_max" => retry.backoff.max_backoff = parse_duration(key, value)?,
            "multipart_threshold" => common.multipart_threshold = parse_usize(key, value)?,
            "multipart_part_size" => {
                common.part_size = parse_usize(key, value)?;
                if common.part_size < MIN_PART_SIZE {
                    return Err(Error::invalid(format!(
                        "multipart_part_size must be at least {MIN_PART_SIZE} bytes (S3's minimum)"
                    )));
                }
            }
            _ => {}
        }
    }
    common.retry = retry;
    Ok(common)
}

/// Split `scheme://bucket/prefix` into (bucket, prefix); refuses credentials in the URL.
fn bucket_and_prefix(url: &str, what: &str) -> Result<(String, String)> {
    // Checked before parsing: the URL parser would silently resolve `..`.
    if url.split(['/', '?', '#']).skip(3).any(|part| {
        let part = part.to_ascii_lowercase().replace("%2e", ".");
        part == "." || part == ".."
    }) {
        return Err(Error::invalid(format!(
            "repository URL {url:?}: the prefix must not contain '.' or '..'"
        )));
    }
    let parsed =
        url::Url::parse(url).map_err(|e| Error::invalid(format!("bad URL {url:?}: {e}")))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(Error::invalid(format!(
            "put credentials in options or the environment, not in the repository URL ({}://...)",
            parsed.scheme()
        )));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(Error::invalid(format!(
            "repository URL {}://{}/... must not carry a query or fragment: pass settings as options",
            parsed.scheme(),
            parsed.host_str().unwrap_or_default()
        )));
    }
    let bucket = parsed.host_str().unwrap_or_default().to_string();
    if bucket.is_empty() {
        return Err(Error::invalid(format!(
            "repository URL {url:?} names no {what} ({}://{what}/prefix)",
            parsed.scheme()
        )));
    }
    let prefix = parsed.path().trim_matches('/').to_string();
    Ok((bucket, prefix))
}

/// Credentials of a named profile from `~/.aws/credentials` (and its region from
/// `~/.aws/config`), as the AWS CLI and SDKs read them.
fn aws_profile(name: &str, explicit: bool) -> Result<Vec<(AmazonS3ConfigKey, String)>> {
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let credentials_path = std::env::var_os("AWS_SHARED_CREDENTIALS_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/credentials")));
    let config_path = std::env::var_os("AWS_CONFIG_FILE")
        .map(std::path::PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/config")));
    let read = |path: &Option<std::path::PathBuf>, section: &str| -> BTreeMap<String, String> {
        let Some(text) = path.as_ref().and_then(|p| std::fs::read_to_string(p).ok()) else {
            return BTreeMap::new();
        };
        ini_section(&text, section)
    };
    let credentials = read(&credentials_path, name);
    let config_section = if name == "default" {
        name.to_string()
    } else {
        format!("profile {name}")
    };
    let config = read(&config_path, &config_section);
    let mut settings = Vec::new();
    for (file_key, config_key) in [
        ("aws_access_key_id", AmazonS3ConfigKey::AccessKeyId),
        ("aws_secret_access_key", AmazonS3ConfigKey::SecretAccessKey),
        ("aws_session_token", AmazonS3ConfigKey::Token),
    ] {
        if let Some(value) = credentials.get(file_key).or_else(|| config.get(file_key)) {
            settings.push((config_key, value.clone()));
        }
    }
    if explicit && settings.is_empty() {
        return Err(Error::invalid(format!(
            "AWS profile {name:?} has no aws_access_key_id/aws_secret_access_key in {} or {}",
            credentials_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            config_path
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        )));
    }
    if let Some(region) = config.get("region") {
        settings.push((AmazonS3ConfigKey::Region, region.clone()));
    }
    if let Some(endpoint) = config.get("endpoint_url") {
        settings.push((AmazonS3ConfigKey::Endpoint, endpoint.clone()));
    }
    Ok(settings)
}

/// The `key = value` pairs of one `[section]` of an INI file.
fn ini_section(text: &str, section: &str) -> BTreeMap<String, String> {
    let mut in_section = false;
    let mut values = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_section = name.trim() == section;
            continue;
        }
        if in_section {
            if let Some((key, value)) = line.split_once('=') {
                values.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
            }
        }
    }
    values
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The options meant for object_store's builder, as its configuration keys; secret values
/// join the redactor.
fn builder_options<K: std::str::FromStr>(
    options: &Options,
    service: &str,
    redactor: &mut Redactor,
) -> Result<Vec<(K, String)>> {
    let mut keys = Vec::new();
    for (key, value) in options {
        if OWN_KEYS.contains(&key.as_str()) {
            continue;
        }
        let config_key: K = key
            .to_ascii_lowercase()
            .parse()
            .map_err(|_| Error::invalid(format!("unknown {service} option {key:?}")))?;
        if is_secret_key(key) {
            redactor.add(value);
        }
        keys.push((config_key, value.clone()));
    }
    Ok(keys)
}

/// Secret values of the SDK's environment variables (`AWS_`, `AZURE_`, `GOOGLE_`).
fn redact_environment(prefix: &str, redactor: &mut Redactor) {
    for (key, value) in std::env::vars() {
        if key.starts_with(prefix) && is_secret_key(&key) {
            redactor.add(&value);
        }
    }
}

fn s3(url: &str, options: &Options, redactor: &mut Redactor) -> Result<Backend> {
    let (bucket, prefix) = bucket_and_prefix(url, "bucket")?;
    let common = common(options)?;
    let mut builder = AmazonS3Builder::from_env();
    redact_environment("AWS_", redactor);
    let explicit_profile = options
        .get("profile")
        .cloned()
        .or_else(|| env("AWS_PROFILE"));
    let has_env_keys = env("AWS_ACCESS_KEY_ID").is_some() || options.contains_key("access_key_id");
    let mut profile_keys = false;
    if explicit_profile.is_some() || !has_env_keys {
        let name = explicit_profile.clone().unwrap_or_else(|| "default".into());
        for (key, value) in aws_profile(&name, explicit_profile.is_some())? {
            profile_keys |= key == AmazonS3ConfigKey::AccessKeyId;
            if matches!(
                key,
                AmazonS3ConfigKey::SecretAccessKey | AmazonS3ConfigKey::Token
            ) {
                redactor.add(&value);
            }
            // A profile's region does not override AWS_REGION.
            if key == AmazonS3ConfigKey::Region
                && (env("AWS_REGION").is_some() || env("AWS_DEFAULT_REGION").is_some())
            {
                continue;
            }
            builder = builder.with_config(key, value);
        }
    }
    builder = builder.with_bucket_name(&bucket);
    for (key, value) in builder_options::<AmazonS3ConfigKey>(options, "S3", redactor)? {
        builder = builder.with_config(key, value);
    }
    // An http:// endpoint (MinIO, a local test server) is clearly meant: allow it.
    let endpoint = builder.get_config_value(&AmazonS3ConfigKey::Endpoint);
    let allow_http_given = env("AWS_ALLOW_HTTP").is_some()
        || options.contains_key("allow_http")
        || options.contains_key("aws_allow_http");
    if endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"))
        && !allow_http_given
    {
        builder = builder.with_allow_http(true);
    }
    if endpoint.is_some()
        && builder
            .get_config_value(&AmazonS3ConfigKey::Region)
            .is_none_or(|v| v.is_empty())
    {
        // S3-compatible servers accept any region; the SDK default keeps signing well-defined.
        builder = builder.with_config(AmazonS3ConfigKey::Region, "us-east-1");
    }
    // With no key, profile, web identity or container credentials, only the instance metadata
    // service is left: when it does not answer, say that no credentials were found anywhere.
    let unsigned = ["skip_signature", "aws_skip_signature"]
        .iter()
        .any(|key| options.get(*key).is_some_and(|v| v == "true"));
    let other_sources = has_env_keys
        || profile_keys
        || unsigned
        || env("AWS_WEB_IDENTITY_TOKEN_FILE").is_some()
        || env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI").is_some()
        || env("AWS_CONTAINER_CREDENTIALS_FULL_URI").is_some();
    let metadata_only = (!other_sources).then(|| {
        builder
            .get_config_value(&AmazonS3ConfigKey::MetadataEndpoint)
            .unwrap_or_else(|| "http://169.254.169.254".into())
    });
    let region = builder
        .get_config_value(&AmazonS3ConfigKey::Region)
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "us-east-1".into());
    let store = Arc::new(
        builder
            .with_retry(common.retry.clone())
            .build()
            .map_err(|e| open_error("S3", &bucket, e, redactor))?,
    );
    let creator = Creator::S3 {
        store: store.clone(),
        region,
    };
    let location = display_location("s3", &bucket, &prefix);
    let hint = format!(
        "check the bucket {bucket:?}, the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE) and the endpoint{}",
        endpoint.map(|e| format!(" ({e})")).unwrap_or_default()
    );
    Ok(finish(
        store,
        prefix,
        location,
        Kind::S3 {
            bucket,
            hint,
            creator,
            metadata_only,
        },
        common,
    ))
}

/// The parts of an Azure Storage connection string this backend uses.
fn azure_connection_string(
    text: &str,
    redactor: &mut Redactor,
) -> Result<Vec<(AzureConfigKey, String)>> {
    redactor.add(text);
    let mut fields = BTreeMap::new();
    for part in text.split(';').filter(|p| !p.trim().is_empty()) {
        let (key, value) = part.split_once('=').ok_or_else(|| {
            Error::invalid("the Azure connection string is malformed (expected Key=Value;...)")
        })?;
        fields.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
    }
    let mut settings = Vec::new();
    if fields
        .get("usedevelopmentstorage")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    {
        settings.push((AzureConfigKey::UseEmulator, "true".to_string()));
    }
    if let Some(name) = fields.get("accountname") {
        settings.push((AzureConfigKey::AccountName, name.clone()));
    }
    if let Some(key) = fields.get("accountkey") {
        redactor.add(key);
        settings.push((AzureConfigKey::AccessKey, key.clone()));
    }
    if let Some(sas) = fields.get("sharedaccesssignature") {
        redactor.add(sas);
        settings.push((AzureConfigKey::SasKey, sas.clone()));
    }
    let endpoint = fields.get("blobendpoint").cloned().or_else(|| {
        let account = fields.get("accountname")?;
        let protocol = fields
            .get("defaultendpointsprotocol")
            .map(String::as_str)
            .unwrap_or("https");
        let suffix = fields
            .get("endpointsuffix")
            .map(String::as_str)
            .unwrap_or("core.windows.net");
        Some(format!("{protocol}://{account}.blob.{suffix}"))
    });
    if let Some(endpoint) = endpoint {
        if endpoint.starts_with("http://") {
            settings.push((
                AzureConfigKey::Client(object_store::ClientConfigKey::AllowHttp),
                "true".into(),
            ));
        }
        settings.push((AzureConfigKey::Endpoint, endpoint));
    }
    Ok(settings)
}

/// The shared key, when the configuration has one (needed only to create a container).
fn azure_shared_key(
    builder: &MicrosoftAzureBuilder,
    endpoint: Option<&str>,
) -> Option<AzureSharedKey> {
    use base64::Engine;
    let value = |key| builder.get_config_value(&key).filter(|v| !v.is_empty());
    let emulator = value(AzureConfigKey::UseEmulator).is_some_and(|v| v == "true");
    let (account, key, account_url) = if emulator {
        let account =
            value(AzureConfigKey::AccountName).unwrap_or_else(|| "devstoreaccount1".into());
        let base =
            env("AZURITE_BLOB_STORAGE_URL").unwrap_or_else(|| "http://127.0.0.1:10000".into());
        let key = value(AzureConfigKey::AccessKey).unwrap_or_else(|| AZURITE_ACCOUNT_KEY.into());
        let url = format!("{}/{account}", base.trim_end_matches('/'));
        (account, key, url)
    } else {
        let account = value(AzureConfigKey::AccountName)?;
        let key = value(AzureConfigKey::AccessKey)?;
        let url = endpoint
            .map(str::to_string)
            .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
        (account, key, url)
    };
    let key = base64::engine::general_purpose::STANDARD.decode(key).ok()?;
    Some(AzureSharedKey {
        account,
        key,
        account_url,
    })
}

fn azure(url: &str, options: &Options, redactor: &mut Redactor) -> Result<Backend> {
    let (container, prefix) = bucket_and_prefix(url, "container")?;
    let common = common(options)?;
    let mut builder = MicrosoftAzureBuilder::from_env();
    redact_environment("AZURE_", redactor);
    let connection_string = options
        .get("connection_string")
        .cloned()
        .or_else(|| env("AZURE_STORAGE_CONNECTION_STRING"));
    if let Some(text) = connection_string {
        for (key, value) in azure_connection_string(&text, redactor)? {
            builder = builder.with_config(key, value);
        }
    }
    builder = builder.with_container_name(&container);
    for (key, value) in builder_options::<AzureConfigKey>(options, "Azure", redactor)? {
        builder = builder.with_config(key, value);
    }
    let endpoint = builder.get_config_value(&AzureConfigKey::Endpoint);
    let creator = Creator::Azure(azure_shared_key(&builder, endpoint.as_deref()).map(Arc::new));
    let store = builder
        .with_retry(common.retry.clone())
        .build()
        .map_err(|e| open_error("Azure Blob", &container, e, redactor))?;
    let location = display_location("az", &container, &prefix);
    let hint = format!(
        "check the container {container:?}, the account and its credentials (AZURE_STORAGE_ACCOUNT_NAME / AZURE_STORAGE_ACCOUNT_KEY / AZURE_STORAGE_CONNECTION_STRING){}",
        endpoint.map(|e| format!(" and the endpoint ({e})")).unwrap_or_default()
    );
    Ok(finish(
        Arc::new(store),
        prefix,
        location,
        Kind::Azure {
            container,
            hint,
            creator,
        },
        common,
    ))
}

fn gcs(url: &str, options: &Options, redactor: &mut Redactor) -> Result<Backend> {
    let (bucket, prefix) = bucket_and_prefix(url, "bucket")?;
    let common = common(options)?;
    let mut builder = GoogleCloudStorageBuilder::from_env().with_bucket_name(&bucket);
    redact_environment("GOOGLE_", redactor);
    for (key, value) in
        builder_options::<GoogleConfigKey>(options, "Google Cloud Storage", redactor)?
    {
        builder = builder.with_config(key, value);
    }
    let store = builder
        .with_retry(common.retry.clone())
        .build()
        .map_err(|e| open_error("Google Cloud Storage", &bucket, e, redactor))?;
    let location = display_location("gs", &bucket, &prefix);
    let hint = format!(
        "check the bucket {bucket:?} and the credentials (GOOGLE_APPLICATION_CREDENTIALS / GOOGLE_SERVICE_ACCOUNT)"
    );
    Ok(finish(
        Arc::new(store),
        prefix,
        location,
        Kind::Gcs { bucket, hint },
        common,
    ))
}

fn display_location(scheme: &str, bucket: &str, prefix: &str) -> String {
    if prefix.is_empty() {
        format!("{scheme}://{bucket}")
    } else {
        format!("{scheme}://{bucket}/{prefix}")
    }
}

fn open_error(
    service: &str,
    bucket: &str,
    error: object_store::Error,
    redactor: &Redactor,
) -> Error {
    Error::invalid(redactor.redact(&format!(
        "cannot configure {service} for {bucket:?}: {error}"
    )))
}

fn finish(
    store: Arc<dyn ObjectStore>,
    prefix: String,
    location: String,
    kind: Kind,
    common: Common,
) -> Backend {
    let store: Arc<dyn ObjectStore> = if prefix.is_empty() {
        store
    } else {
        Arc::new(PrefixStore::new(store, prefix.as_str()))
    };
    let mut backend = Backend::new(store, location);
    backend.kind = kind;
    backend.multipart = Some((common.multipart_threshold, common.part_size));
    backend
}

/// Open a cloud repository URL; `None` when the scheme is not a cloud one.
pub(super) fn open_cloud(url: &str, options: &Options) -> Option<Result<Backend>> {
    let scheme = url.split("://").next()?.to_ascii_lowercase();
    let mut redactor = Redactor::default();
    for (key, value) in options {
        if is_secret_key(key) {
            redactor.add(value);
        }
    }
    let result = match scheme.as_str() {
        "s3" | "s3a" => s3(url, options, &mut redactor),
        "az" | "azure" | "abfs" | "abfss" => azure(url, options, &mut redactor),
        "gs" | "gcs" => gcs(url, options, &mut redactor),
        _ => return None,
    };
    Some(result.map(|mut backend| {
        backend.redactor = Arc::new(redactor);
        backend
    }))
}

/// Options are only meaningful for cloud stores; refuse them elsewhere instead of ignoring.
pub(super) fn refuse_options(url: &str, options: &Options) -> Result<()> {
    let foreign: Vec<&str> = options
        .keys()
        .map(String::as_str)
        .filter(|k| !matches!(*k, "max_retries" | "retry_timeout"))
        .collect();
    if foreign.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "options {foreign:?} do not apply to {url:?} (they are for s3://, az:// and gs:// repositories)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys() {
        for key in [
            "aws_secret_access_key",
            "AWS_SESSION_TOKEN",
            "account_key",
            "sas_token",
            "connection_string",
            "AZURE_STORAGE_ACCOUNT_KEY",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in ["aws_access_key_id", "region", "endpoint", "account_name"] {
            assert!(!is_secret_key(key), "{key}");
        }
    }

    #[test]
    fn url_parts() {
        assert_eq!(
            bucket_and_prefix("s3://b/x/y/", "bucket").unwrap(),
            ("b".into(), "x/y".into())
        );
        assert_eq!(
            bucket_and_prefix("az://c", "container").unwrap(),
            ("c".into(), String::new())
        );
        for bad in [
            "s3://key:secret@b/x",
            "s3:///x",
            "s3://b/x?token=1",
            "s3://b/../x",
            "s3://b/x/%2E%2E/y",
        ] {
            let error = bucket_and_prefix(bad, "bucket").unwrap_err().to_string();
            assert!(!error.contains("secret"), "{error}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(
            parse_duration("t", "250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert_eq!(parse_duration("t", "2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("t", "1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("t", "soon").is_err());
        assert!(parse_duration("t", "-1").is_err());
    }

    #[test]
    fn connection_strings() {
        let mut redactor = Redactor::default();
        let settings = azure_connection_string(
            "DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=c2VjcmV0;BlobEndpoint=http://127.0.0.1:10000/dev;",
            &mut redactor,
        )
        .unwrap();
        assert!(settings.contains(&(AzureConfigKey::AccountName, "dev".into())));
        assert!(settings.contains(&(
            AzureConfigKey::Endpoint,
            "http://127.0.0.1:10000/dev".into()
        )));
        assert_eq!(redactor.redact("key c2VjcmV0 here"), "key *** here");
        let settings =
            azure_connection_string("AccountName=acct;AccountKey=k", &mut redactor).unwrap();
        assert!(settings.contains(&(
            AzureConfigKey::Endpoint,
            "https://acct.blob.core.windows.net".into()
        )));
        assert!(azure_connection_string("garbage", &mut redactor).is_err());
    }

    #[test]
    fn ini() {
        let text = "[default]\naws_access_key_id = A\n[profile x]\nregion=eu-west-1\n# c\n";
        assert_eq!(
            ini_section(text, "default")
                .get("aws_access_key_id")
                .unwrap(),
            "A"
        );
        assert_eq!(
            ini_section(text, "profile x").get("region").unwrap(),
            "eu-west-1"
        );
        assert!(ini_section(text, "nope").is_empty());
    }
}
