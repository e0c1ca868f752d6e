//! Reaching a running server: its URL (`http://` or `https://`), the certificate authority to
//! trust beyond the system's (`TALLY_CA_FILE`), and the API key from `TALLY_API_KEY` (never
//! from the command line, where any user could read it in the process list).

use anyhow::Context;
use tally_client::Client;

pub fn client(url: &str) -> anyhow::Result<Client> {
    let client = match std::env::var_os("TALLY_CA_FILE").filter(|path| !path.is_empty()) {
        Some(path) => {
            let pem = std::fs::read(&path).with_context(|| format!("reading TALLY_CA_FILE {}", path.to_string_lossy()))?;
            Client::with_ca(url, &pem)?
        }
        None => Client::new(url),
    };
    Ok(match std::env::var("TALLY_API_KEY") {
        Ok(key) if !key.is_empty() => client.with_token(key),
        _ => client,
    })
}
