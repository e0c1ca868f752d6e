//! Requests and helpers shared by the recovery tests.

use tally_core::*;

pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(future)
}

pub fn id(text: &str) -> Id {
    Id::parse(text).unwrap()
}

pub fn setup_requests() -> Vec<Request> {
    let account = |name: &str, min: Option<Decimal>| NewAccount {
        id: id(name),
        asset: AssetCode::parse("USD").unwrap(),
        parent: None,
        min_balance: min,
        max_balance: None,
        metadata: None,
    };
    vec![
        Request::CreateAssets(vec![NewAsset { code: AssetCode::parse("USD").unwrap(), scale: 2 }]),
        Request::CreateAccounts(vec![account("world", None), account("alice", Some(Decimal::ZERO))]),
    ]
}

pub fn fund(name: &str, amount: &str) -> Request {
    Request::CreateTransfers(vec![NewTransfer {
        id: id(name),
        kind: TransferKind::Direct { debit: id("world"), credit: id("alice"), amount: Decimal::parse(amount).unwrap() },
        asset: None,
        linked: false,
        metadata: Some(Metadata::parse(r#"{"note":"x"}"#).unwrap()),
        if_debit_version: None,
        if_credit_version: None,
        balancing: false,
    }])
}
