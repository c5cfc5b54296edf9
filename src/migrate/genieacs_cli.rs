//! The `migrate genieacs-devices` command: into the data dir's store when
//! the ACS is stopped, or through the running ACS (`--server`), whose API
//! takes the export in batches (bounded memory on both sides).

use std::io::{BufReader, IsTerminal, Write};
use std::path::{Path, PathBuf};

use super::genieacs::{self, Document};
use super::genieacs_run::{self, ImportReport, InvalidDocument};
use super::progress::Progress;
use crate::config::Config;

/// Bytes of documents sent per request with `--server`.
const BATCH_BYTES: usize = 32 << 20;

/// What the command was asked.
#[derive(Clone, Debug)]
pub struct Args {
    pub file: PathBuf,
    pub apply: bool,
    pub json: bool,
    /// Base URL of the running ACS's Ops API.
    pub server: Option<String>,
}

/// Why the command failed (exit 2: usage or configuration; 1: the run).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    #[error("{0}")]
    Usage(String),
    #[error("{0}")]
    Run(String),
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => 2,
            CliError::Run(_) => 1,
        }
    }
}

fn open_input(path: &Path) -> Result<BufReader<std::fs::File>, CliError> {
    std::fs::File::open(path)
        .map(|f| BufReader::with_capacity(1 << 20, f))
        .map_err(|e| CliError::Usage(format!("cannot open {}: {e}", path.display())))
}

/// Runs the command; prints the report on stdout.
pub fn run(config: &Config, args: &Args) -> Result<(), CliError> {
    let report = match &args.server {
        Some(url) => through_server(config, args, url)?,
        None => into_store(config, args)?,
    };
    let text = if args.json {
        serde_json::to_string_pretty(&report).unwrap_or_else(|_| "{}".into())
    } else {
        report.human()
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.trim_end());
    Ok(())
}

fn into_store(config: &Config, args: &Args) -> Result<ImportReport, CliError> {
    let input = open_input(&args.file)?;
    let store = crate::store::open_configured(config).map_err(|e| {
        CliError::Usage(format!(
            "{e}; if the ACS is running, import through it: --server http://{}",
            config.api_listen
        ))
    })?;
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let report = genieacs_run::import(
        input,
        store.as_ref(),
        args.apply,
        crate::app::now_ms(std::time::SystemTime::now()),
        &mut |n| progress.count("documents", n),
    )
    .map_err(|e| CliError::Run(e.to_string()));
    progress.clear();
    report
}

/// The API token: `ACS_API_TOKEN` / `api_tokens`, else the data dir's
/// generated one.
fn api_token(config: &Config) -> Result<String, CliError> {
    if let Some(t) = config.api_tokens.first() {
        return Ok(t.expose().to_owned());
    }
    let path = config.data_dir.join(crate::api::TOKEN_FILE);
    std::fs::read_to_string(&path)
        .map(|t| t.trim().to_owned())
        .map_err(|e| {
            CliError::Usage(format!(
                "no API token: set ACS_API_TOKEN, or run where {} is readable ({e})",
                path.display()
            ))
        })
}

/// Sends the export in batches of whole documents (JSON lines); documents
/// that are not JSON are reported here, positions are the file's.
fn through_server(config: &Config, args: &Args, url: &str) -> Result<ImportReport, CliError> {
    let base = url.trim().trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(CliError::Usage(format!(
            "--server `{base}` must be an http:// or https:// URL"
        )));
    }
    let token = api_token(config)?;
    let endpoint = format!("{base}/api/v1/import/genieacs-devices?apply={}", args.apply);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Run(format!("cannot start the runtime: {e}")))?;
    let tls = crate::http_client::tls_config(base.starts_with("https://"))
        .map_err(|e| CliError::Usage(format!("TLS: {e}")))?;
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| CliError::Usage(format!("HTTP client: {e}")))?;
    let mut total = ImportReport {
        dry_run: !args.apply,
        ..ImportReport::default()
    };
    let mut batch: Vec<u8> = Vec::new();
    // Position in the file of each document of the batch.
    let mut positions: Vec<usize> = Vec::new();
    let mut failure: Option<CliError> = None;
    let mut progress = Progress::new(std::io::stderr().is_terminal());
    let send = |batch: &mut Vec<u8>, positions: &mut Vec<usize>, total: &mut ImportReport| {
        if batch.is_empty() {
            return Ok(());
        }
        let body = std::mem::take(batch);
        let answer = runtime.block_on(async {
            let r = client
                .post(&endpoint)
                .bearer_auth(&token)
                .header("content-type", "application/x-ndjson")
                .body(body)
                .send()
                .await
                .map_err(|e| CliError::Run(format!("{endpoint}: {e}")))?;
            let status = r.status();
            let text = r
                .text()
                .await
                .map_err(|e| CliError::Run(format!("{endpoint}: {e}")))?;
            if !status.is_success() {
                let message = serde_json::from_str::<serde_json::Value>(&text)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
                    .unwrap_or_else(|| text.chars().take(200).collect());
                return Err(CliError::Run(format!("{endpoint}: {status}: {message}")));
            }
            serde_json::from_str::<ImportReport>(&text)
                .map_err(|e| CliError::Run(format!("{endpoint}: unexpected answer: {e}")))
        })?;
        merge(total, answer, positions);
        positions.clear();
        Ok::<(), CliError>(())
    };
    let input = open_input(&args.file)?;
    let mut documents = 0usize;
    genieacs::documents(input, &mut |position, doc: Document| {
        if failure.is_some() {
            return;
        }
        documents += 1;
        progress.count("documents", documents);
        match doc {
            Ok(v) => {
                let _ = serde_json::to_writer(&mut batch, &v);
                batch.push(b'\n');
                positions.push(position);
            }
            Err(reason) => {
                total.documents += 1;
                total.invalid.push(InvalidDocument {
                    document: position,
                    reason,
                });
            }
        }
        if batch.len() >= BATCH_BYTES {
            if let Err(e) = send(&mut batch, &mut positions, &mut total) {
                failure = Some(e);
            }
        }
    })
    .map_err(|e| CliError::Run(e.to_string()))?;
    if let Some(e) = failure {
        return Err(e);
    }
    send(&mut batch, &mut positions, &mut total)?;
    progress.clear();
    total.invalid.sort_by_key(|i| i.document);
    Ok(total)
}

/// Adds a batch's report to the total, mapping its positions (lines of
/// the batch) back to the file's.
fn merge(total: &mut ImportReport, batch: ImportReport, positions: &[usize]) {
    total.documents += batch.documents;
    total.devices += batch.devices;
    total.created += batch.created;
    total.updated += batch.updated;
    total.unchanged += batch.unchanged;
    total.parameters += batch.parameters;
    total.live_here.extend(batch.live_here);
    total.truncated.extend(batch.truncated);
    total.renamed.extend(batch.renamed);
    for mut i in batch.invalid {
        if let Some(p) = i.document.checked_sub(1).and_then(|k| positions.get(k)) {
            i.document = *p;
        }
        total.invalid.push(i);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_positions_map_back_to_the_file() {
        let mut total = ImportReport::default();
        let batch = ImportReport {
            documents: 2,
            devices: 1,
            created: 1,
            invalid: vec![InvalidDocument {
                document: 2,
                reason: "no `_id`".into(),
            }],
            ..ImportReport::default()
        };
        merge(&mut total, batch, &[3, 7]);
        assert_eq!(total.invalid[0].document, 7);
        assert_eq!((total.documents, total.created), (2, 1));
    }
}
