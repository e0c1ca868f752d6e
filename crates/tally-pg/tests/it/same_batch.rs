//! One batch record that creates accounts and changes them at once (as an embedded ledger's
//! group commit may hold, and `tally import` replays as it is): the rows must hold the
//! settings the batch ended with, not those the accounts were created with.

use tally_core::{batch, AccountPatch, AccountUpdate, AssetCode, Decimal, Id, NewAccount, NewAsset, Request, State};
use tally_ledger::dump::DumpWriter;
use tally_ledger::Ledger;
use tally_pg::{Config, PgLedger};
use tally_testkit::postgres::{ClusterOptions, PrivateCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_created_and_changed_in_one_batch_are_stored_as_they_ended() {
    let id = |text: &str| Id::parse(text).unwrap();
    let usd = || AssetCode::parse("USD").unwrap();
    let account = |name: &str| NewAccount {
        id: id(name),
        asset: usd(),
        parent: None,
        min_balance: Some(Decimal::ZERO),
        max_balance: None,
        metadata: None,
    };
    let closing = AccountPatch { closed: Some(true), max_balance: Some(Some(Decimal::parse("50").unwrap())), ..AccountPatch::default() };
    let requests = [
        Request::CreateAssets(vec![NewAsset { code: usd(), scale: 2 }]),
        Request::CreateAccounts(vec![account("shut"), account("open")]),
        Request::UpdateAccounts(vec![AccountUpdate { id: id("shut"), patch: closing }]),
    ];
    let mut state = State::new();
    let applied = batch::apply(&mut state, 1_700_000_000_000_000_000, &requests);
    let mut dump = DumpWriter::new(Vec::new(), applied.last_seq).unwrap();
    dump.frame(applied.last_seq, applied.payload.as_deref().unwrap()).unwrap();
    let dump = dump.finish().unwrap();

    let cluster = PrivateCluster::start(ClusterOptions::default()).expect("a private PostgreSQL cluster");
    tally_pg::offline::import(&cluster.url(), dump.as_slice(), |_, _| {}).await.unwrap();
    tally_pg::offline::verify(&cluster.url(), |_, _, _| {}).await.expect("the tables are what the record replays to");
    let ledger = PgLedger::start(Config::new(cluster.url())).await.unwrap();
    let shut = ledger.account(id("shut"), None).await.unwrap().unwrap();
    assert_eq!((shut.settings.closed, shut.settings.max_balance), (true, Some(5_000)));
    assert_eq!(shut.settings, state.account(&id("shut")).unwrap().settings);
    ledger.shutdown().await;
}
