//! A key confined to account prefixes sees and moves only its share of the ledger. What it
//! may not see answers exactly as if absent (404, left out of listings and the journal); a
//! request that would touch anything outside its share is refused whole (403), nothing
//! applied. Transfer ids count too: a confined key's transfers take ids under its prefixes,
//! so tenants never collide on an id, and a retry can never reveal another tenant's transfer.

use crate::auth::Caller;
use crate::error::ApiError;
use crate::App;
use axum::http::StatusCode;
use tally_core::limits::ALLOCATION_SHARES_MAX;
use tally_core::{Id, JournalEntry, Request, TransferKind, TransferView};

fn forbidden(field: String, id: &str) -> ApiError {
    ApiError {
        field: Some(field),
        ..ApiError::new(StatusCode::FORBIDDEN, "forbidden", format!("{id} is outside the accounts this key may use; nothing was applied"))
    }
}

/// Refuses `request` whole if any id it names is outside the caller's share. A post or void
/// is also checked against the hold it names.
pub async fn check(app: &App, caller: &Caller, request: &Request) -> Result<(), ApiError> {
    if !caller.is_confined() {
        return Ok(());
    }
    let allow = |field: String, id: &str| if caller.permits(id) { Ok(()) } else { Err(forbidden(field, id)) };
    match request.unwrapped() {
        Request::CreateAssets(_) | Request::By { .. } => {}
        Request::CreateAccounts(accounts) => {
            for (n, account) in accounts.iter().enumerate() {
                allow(format!("accounts[{n}].id"), account.id.as_str())?;
                if let Some(parent) = &account.parent {
                    allow(format!("accounts[{n}].parent"), parent.as_str())?;
                }
            }
        }
        Request::UpdateAccounts(updates) => {
            for update in updates {
                allow("id".into(), update.id.as_str())?;
            }
        }
        Request::RenewHolds(renewals) => {
            for renewal in renewals {
                allow("id".into(), renewal.id.as_str())?;
                check_hold(app, caller, "id".into(), &renewal.id).await?;
            }
        }
        Request::CreateTransfers(transfers) => {
            for (n, transfer) in transfers.iter().enumerate() {
                let field = |name: &str| format!("transfers[{n}].{name}");
                allow(field("id"), transfer.id.as_str())?;
                match &transfer.kind {
                    TransferKind::Direct { debit, credit, .. } | TransferKind::Pending { debit, credit, .. } => {
                        allow(field("debit"), debit.as_str())?;
                        allow(field("credit"), credit.as_str())?;
                    }
                    TransferKind::Allocate { debit, shares, .. } => {
                        allow(field("debit"), debit.as_str())?;
                        for (m, share) in shares.iter().enumerate() {
                            allow(field(&format!("allocate[{m}].credit")), share.credit.as_str())?;
                        }
                    }
                    TransferKind::Post { pending_id, debit, credit, .. } | TransferKind::Void { pending_id, debit, credit } => {
                        let name = if matches!(transfer.kind, TransferKind::Post { .. }) { "post" } else { "void" };
                        allow(field(name), pending_id.as_str())?;
                        for (side, id) in [("debit", debit), ("credit", credit)] {
                            if let Some(id) = id {
                                allow(field(side), id.as_str())?;
                            }
                        }
                        check_hold(app, caller, field(name), pending_id).await?;
                    }
                }
            }
        }
    }
    Ok(())
}

/// A hold under the caller's prefix made by an unconfined key may still move accounts outside
/// it: so may the legs of an allocation under it (the allocation's own id has no record).
/// The ids are the caller's, so only an unconfined key could make such a hold between this
/// check and the writer.
async fn check_hold(app: &App, caller: &Caller, field: String, id: &Id) -> Result<(), ApiError> {
    let outside = |view: &TransferView| !sees_transfer(caller, view);
    if let Some(hold) = app.ledger.transfer(id.clone()).await? {
        return if outside(&hold) { Err(forbidden(field, id.as_str())) } else { Ok(()) };
    }
    for leg in 0..ALLOCATION_SHARES_MAX {
        let Some(view) = app.ledger.transfer(id.leg(leg)).await? else { break };
        if outside(&view) {
            return Err(forbidden(field, id.as_str()));
        }
    }
    Ok(())
}

/// Whether the caller may see a transfer: its id and both its accounts are in its share.
pub fn sees_transfer(caller: &Caller, view: &TransferView) -> bool {
    caller.permits(&view.id)
        && view.detail.as_ref().is_none_or(|detail| caller.permits(detail.debit.as_str()) && caller.permits(detail.credit.as_str()))
}

/// Whether a journal entry touches only accounts in the caller's share. Assets belong to no
/// tenant, so a confined key's feed leaves them out.
pub fn sees_entry(caller: &Caller, entry: &JournalEntry) -> bool {
    if !caller.is_confined() {
        return true;
    }
    match entry {
        JournalEntry::Asset { .. } => false,
        JournalEntry::Account { view, .. } => caller.permits(view.id.as_str()),
        JournalEntry::Update { id, .. } => caller.permits(id.as_str()),
        JournalEntry::Transfer(view) => sees_transfer(caller, view),
        JournalEntry::Expiry { pending_id, debit, credit, .. } => {
            caller.permits(pending_id) && caller.permits(debit.as_str()) && caller.permits(credit.as_str())
        }
        JournalEntry::Renewal { pending_id, .. } => caller.permits(pending_id),
    }
}
