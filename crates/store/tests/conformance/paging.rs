//! Keyset pages: every listing read a page at a time, with rows written and removed between
//! the pages, sees each row present throughout exactly once, in order, and nothing a filter
//! leaves out.

use std::collections::HashSet;

use stackdock_core::{
    ApiCall, OperationId, ProvisioningState, Resource, ResourceId, ResourceKind, Role, TokenId,
    UserId,
};
use stackdock_store::{
    AuditFilter, NewToken, OperationKey, Page, PageRequest, ResourceFilter, ResourceKey, Store,
};

use super::fixtures::*;

/// Reads every page of a listing, `limit` rows at a time, calling `between` after each page
/// (where a test writes or removes rows). Checks each page's `next` is the key of its last row.
async fn walk<T, K: Clone + PartialEq + std::fmt::Debug>(
    limit: u32,
    mut read: impl AsyncFnMut(PageRequest<K>) -> Page<T, K>,
    mut between: impl AsyncFnMut(usize),
    key: impl Fn(&T) -> K,
) -> Vec<T> {
    let mut seen = Vec::new();
    let mut after = None;
    for n in 0.. {
        let page = read(PageRequest { limit, after }).await;
        assert!(
            page.items.len() <= limit as usize,
            "page {n} is over its limit"
        );
        if let Some(next) = &page.next {
            assert_eq!(
                page.items.len(),
                limit as usize,
                "page {n} is short but not last"
            );
            assert_eq!(Some(next), page.items.last().map(&key).as_ref());
        }
        after = page.next.clone();
        seen.extend(page.items);
        if after.is_none() {
            break;
        }
        between(n).await;
    }
    seen
}

fn key_of(r: &Resource) -> ResourceKey {
    ResourceKey {
        created_at: r.created_at,
        id: r.id,
    }
}

/// `(created_at, id)` newest first, ids compared as the text every backend sorts.
fn newest_first(rows: &mut [Resource]) {
    rows.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id.to_string())));
}

pub async fn resources_page_newest_first_as_rows_come_and_go(store: &dyn Store) {
    let t = tenant(store).await;
    let d1 = add_dock(store, t.org, "one").await;
    let d2 = add_dock(store, t.org, "two").await;
    let gone = add_dock(store, t.org, "gone").await;
    let base = now() - chrono::TimeDelta::hours(1);
    let mut kept = Vec::new();
    for i in 0..30_i64 {
        let kind = ResourceKind::ALL[(i % 4) as usize];
        let mut r = resource(if i % 2 == 0 { &d1 } else { &d2 }, kind);
        if i % 3 == 0 {
            r.provisioning_state = ProvisioningState::Failed;
        }
        // Three rows to an instant, in different tables: the id breaks the ties.
        r.created_at = base + chrono::TimeDelta::seconds(i / 3);
        r.updated_at = r.created_at;
        kept.push(insert(store, r).await);
    }
    // Discovered rows of a dock that is removed halfway through the walk.
    for i in 0..6_i64 {
        let mut r = discovered(&gone, ResourceKind::ALL[(i % 4) as usize], &format!("g{i}"));
        r.created_at = base + chrono::TimeDelta::seconds(i * 2);
        insert(store, r).await;
    }
    let other = tenant(store).await;
    let od = add_dock(store, other.org, "one").await;
    let mut theirs = resource(&od, ResourceKind::Server);
    theirs.created_at = base + chrono::TimeDelta::seconds(5);
    insert(store, theirs).await;

    let all = ResourceFilter::default();
    let mut added = Vec::new();
    let seen = walk(
        4,
        async |p| store.list_resources(t.org, &all, &p).await.expect("page"),
        async |n| {
            // New rows at every page; the dock's rows go at the third.
            added.push(insert(store, resource(&d1, ResourceKind::Domain)).await.id);
            if n == 2 {
                store
                    .remove_dock(t.org, gone.id, audit(t.org, "dock.remove"))
                    .await
                    .expect("remove dock");
            }
        },
        key_of,
    )
    .await;
    let ids: Vec<ResourceId> = seen.iter().map(|r| r.id).collect();
    let unique: HashSet<ResourceId> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "a row was read twice");
    for r in &kept {
        assert!(unique.contains(&r.id), "{} was skipped", r.id);
    }
    assert!(seen.iter().all(|r| r.org_id == t.org), "another org's row");
    let keys: Vec<(chrono::DateTime<chrono::Utc>, String)> = seen
        .iter()
        .map(|r| (r.created_at, r.id.to_string()))
        .collect();
    assert!(keys.windows(2).all(|w| w[0] > w[1]), "not newest first");
    assert!(
        added.iter().all(|a| !unique.contains(a)),
        "rows newer than the first page come before it, not in a later one"
    );

    // Filters leave out what they must, across page boundaries.
    for filter in [
        ResourceFilter {
            state: Some(ProvisioningState::Failed),
            ..Default::default()
        },
        ResourceFilter {
            kind: Some(ResourceKind::Server),
            ..Default::default()
        },
        ResourceFilter {
            dock_id: Some(d2.id),
            state: Some(ProvisioningState::Provisioning),
            ..Default::default()
        },
    ] {
        let mut expected: Vec<Resource> = kept
            .iter()
            .filter(|r| {
                filter.state.is_none_or(|s| r.provisioning_state == s)
                    && filter.kind.is_none_or(|k| r.kind() == k)
                    && filter.dock_id.is_none_or(|d| r.dock_id == d)
            })
            .cloned()
            .collect();
        assert!(
            expected.len() > 2 && expected.len() < kept.len(),
            "{filter:?}"
        );
        newest_first(&mut expected);
        let got = walk(
            2,
            async |p| {
                store
                    .list_resources(t.org, &filter, &p)
                    .await
                    .expect("page")
            },
            async |_| {},
            key_of,
        )
        .await;
        assert_eq!(
            got.iter().map(|r| r.id).collect::<Vec<_>>(),
            expected.iter().map(|r| r.id).collect::<Vec<_>>(),
            "{filter:?}"
        );
    }

    // A page as large as the listing has no next.
    let whole = store
        .list_resources(t.org, &all, &PageRequest::first(1000))
        .await
        .expect("page");
    assert_eq!(whole.next, None);
}

pub async fn operations_and_the_journal_page_as_rows_come(store: &dyn Store) {
    let t = tenant(store).await;
    let d = add_dock(store, t.org, "ops").await;
    let r = insert(store, resource(&d, ResourceKind::Server)).await;
    let elsewhere = insert(store, resource(&d, ResourceKind::Server)).await;
    let base = now() - chrono::TimeDelta::hours(1);
    let mut mine = Vec::new();
    for i in 0..11_i64 {
        let mut op = operation(&d, Some(&r));
        op.created_at = base + chrono::TimeDelta::seconds(i / 2);
        mine.push(insert_operation(store, op).await);
        let mut not_mine = operation(&d, Some(&elsewhere));
        not_mine.created_at = base + chrono::TimeDelta::seconds(i / 2);
        insert_operation(store, not_mine).await;
    }
    let op_key = |o: &stackdock_core::Operation| OperationKey {
        created_at: o.created_at,
        id: o.id,
    };
    let got = walk(
        3,
        async |p| {
            store
                .list_operations(t.org, Some(r.id), &p)
                .await
                .expect("page")
        },
        async |_| {
            insert_operation(store, operation(&d, Some(&r))).await;
        },
        op_key,
    )
    .await;
    mine.sort_by_key(|o| std::cmp::Reverse((o.created_at, o.id.to_string())));
    assert_eq!(
        got.iter().map(|o| o.id).collect::<Vec<OperationId>>(),
        mine.iter().map(|o| o.id).collect::<Vec<_>>(),
        "exactly the resource's operations present at the start, newest first"
    );
    let every = walk(
        4,
        async |p| store.list_operations(t.org, None, &p).await.expect("page"),
        async |_| {},
        op_key,
    )
    .await;
    assert_eq!(
        every.len(),
        22 + 3,
        "both resources' and the ones added meanwhile"
    );

    // The journal: oldest first by id; entries written meanwhile come after, none twice.
    let call = |resource: ResourceId, path: String| ApiCall {
        id: 0,
        org_id: t.org,
        dock_id: d.id,
        resource_id: Some(resource),
        operation_id: None,
        method: "GET".into(),
        path,
        status: Some(200),
        duration_ms: 1,
        request_id: None,
        attempt: 1,
        error: None,
        at: now(),
        worker: None,
    };
    for i in 0..7 {
        store
            .record_api_calls(vec![
                call(r.id, format!("/mine/{i}")),
                call(elsewhere.id, format!("/theirs/{i}")),
            ])
            .await
            .expect("journal");
    }
    let mut more = 0;
    let calls = walk(
        3,
        async |p| store.api_calls(t.org, r.id, &p).await.expect("page"),
        async |_| {
            if more < 2 {
                more += 1;
                store
                    .record_api_call(call(r.id, format!("/later/{more}")))
                    .await
                    .expect("journal");
            }
        },
        |c: &ApiCall| c.id,
    )
    .await;
    let paths: Vec<&str> = calls.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/mine/0", "/mine/1", "/mine/2", "/mine/3", "/mine/4", "/mine/5", "/mine/6",
            "/later/1", "/later/2"
        ]
    );
}

pub async fn docks_members_tokens_and_audit_page(store: &dyn Store) {
    let t = tenant(store).await;
    let mut names = Vec::new();
    for n in ["delta", "alpha", "echo", "charlie", "bravo"] {
        names.push(add_dock(store, t.org, n).await.name.to_string());
    }
    let other = tenant(store).await;
    add_dock(store, other.org, "another").await;
    names.sort();
    let docks = walk(
        2,
        async |p| store.list_docks(t.org, &p).await.expect("page"),
        async |_| {},
        |d: &stackdock_core::Dock| d.name.clone(),
    )
    .await;
    assert_eq!(
        docks.iter().map(|d| d.name.to_string()).collect::<Vec<_>>(),
        names
    );

    let mut users = vec![t.user];
    for i in 0..4 {
        let m = store
            .add_member(
                t.org,
                &format!("m{i}-{}@example.test", t.org.as_uuid().simple()),
                Role::Viewer,
                audit(t.org, "member.add"),
            )
            .await
            .expect("member");
        users.push(m.user_id);
    }
    let members = walk(
        2,
        async |p| store.list_members(t.org, &p).await.expect("page"),
        async |_| {},
        |m: &stackdock_store::Member| stackdock_store::MemberKey {
            created_at: m.created_at,
            id: m.user_id,
        },
    )
    .await;
    let mut got: Vec<UserId> = members.iter().map(|m| m.user_id).collect();
    assert!(
        members
            .windows(2)
            .all(|w| (w[0].created_at, w[0].user_id.to_string())
                < (w[1].created_at, w[1].user_id.to_string())),
        "oldest first"
    );
    got.sort();
    users.sort();
    assert_eq!(
        got, users,
        "every member once, the other org's owner left out"
    );

    let dev = users
        .iter()
        .copied()
        .find(|u| *u != t.user)
        .expect("member");
    let mut devs = Vec::new();
    for i in 0..5 {
        let id = TokenId::new();
        let user = if i % 2 == 0 { dev } else { t.user };
        store
            .create_token(
                NewToken {
                    id,
                    org_id: t.org,
                    user_id: user,
                    token_hash: format!("page-{i}-{}", id.as_uuid().simple()),
                    name: None,
                    role: None,
                    expires_at: None,
                    invitation: false,
                },
                audit(t.org, "token.create"),
            )
            .await
            .expect("token");
        if user == dev {
            devs.push(id);
        }
    }
    let tokens = walk(
        1,
        async |p| store.list_tokens(t.org, Some(dev), &p).await.expect("page"),
        async |_| {},
        |k: &stackdock_store::TokenInfo| stackdock_store::TokenKey {
            created_at: k.created_at,
            id: k.id,
        },
    )
    .await;
    let mut got: Vec<TokenId> = tokens.iter().map(|k| k.id).collect();
    got.sort();
    devs.sort();
    assert_eq!(got, devs, "one member's tokens, every one once");

    // The audit log, filtered, while rows are appended: none of the first read twice or lost.
    let filter = AuditFilter {
        action: Some("token.create".into()),
        ..Default::default()
    };
    let seen = walk(
        2,
        async |p| store.search_audit(t.org, &filter, &p).await.expect("page"),
        async |_| {
            let batch = stackdock_store::Batch::new()
                .push(stackdock_store::Write::Audit(audit(t.org, "token.create")));
            store.apply(batch).await.expect("audit");
        },
        |a: &stackdock_core::AuditEntry| a.id,
    )
    .await;
    assert_eq!(
        seen.len(),
        5,
        "the five token rows, no member.add among them"
    );
    assert!(seen.iter().all(|a| a.action == "token.create"));
    assert!(seen.windows(2).all(|w| w[0].id > w[1].id), "newest first");
}
