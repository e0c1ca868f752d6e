//! Reaching a running server: its URL, and the API key from `TALLY_API_KEY` (never from the
//! command line, where any user could read it in the process list).

use tally_client::Client;

pub fn client(url: &str) -> anyhow::Result<Client> {
    let client = Client::new(url);
    Ok(match std::env::var("TALLY_API_KEY") {
        Ok(key) if !key.is_empty() => client.with_token(key),
        _ => client,
    })
}
