//! The DigitalOcean sandbox seen through real HTTP: auth, droplet lifecycle,
//! validation, pagination, filters and the catalog.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use stackdock_sandbox::{DigitalOceanSandbox, DoSandboxConfig};

const TOKEN: &str = "dop_v1_sandbox_test";

async fn sandbox() -> DigitalOceanSandbox {
    DigitalOceanSandbox::start(DoSandboxConfig {
        tokens: vec![TOKEN.to_owned()],
        ready_after: Duration::from_millis(150),
        ..DoSandboxConfig::default()
    })
    .await
    .expect("sandbox starts")
}

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn call(
    sb: &DigitalOceanSandbox,
    method: Method,
    path_or_url: &str,
    body: Option<Value>,
) -> Answer {
    call_with(sb, method, path_or_url, body, Some(TOKEN)).await
}

async fn call_with(
    sb: &DigitalOceanSandbox,
    method: Method,
    path_or_url: &str,
    body: Option<Value>,
    token: Option<&str>,
) -> Answer {
    let url = if path_or_url.starts_with("http") {
        path_or_url.to_owned()
    } else {
        format!("{}{}", sb.base_url(), path_or_url)
    };
    let mut request = reqwest::Client::new().request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request reaches the sandbox");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("JSON body")
    };
    Answer {
        status,
        headers,
        body,
    }
}

fn create_body(name: &str) -> Value {
    json!({
        "name": name,
        "region": "nyc3",
        "size": "s-1vcpu-1gb",
        "image": "ubuntu-24-04-x64",
        "ipv6": true,
        "tags": ["stackdock", "env:test"],
        "user_data": "#cloud-config\n",
        "ssh_keys": [289794, "3b:16:e4:bf:8b:00:8b:b8:59:8c:a9:d3:f0:19:fa:45"],
    })
}

/// Polls until the droplet is active, failing loudly at the deadline.
async fn wait_active(sb: &DigitalOceanSandbox, id: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = call(sb, Method::GET, &format!("/v2/droplets/{id}"), None).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        if answer.body["droplet"]["status"] == "active" {
            return answer.body["droplet"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "droplet {id} never became active"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn assert_do_error(answer: &Answer, status: StatusCode, id: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["id"], id, "{}", answer.body);
    assert!(answer.body["message"].is_string(), "{}", answer.body);
    let request_id = answer.body["request_id"].as_str().expect("request_id");
    assert_eq!(
        answer.headers["x-request-id"].to_str().unwrap(),
        request_id,
        "body and header carry the same request id"
    );
    assert!(
        answer.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}

fn public_ipv4(droplet: &Value) -> Option<String> {
    droplet["networks"]["v4"]
        .as_array()?
        .iter()
        .find(|n| n["type"] == "public")
        .and_then(|n| n["ip_address"].as_str())
        .map(str::to_owned)
}

#[tokio::test]
async fn auth_is_required_on_every_route() {
    let sb = sandbox().await;

    let missing = call_with(&sb, Method::GET, "/v2/account", None, None).await;
    assert_do_error(&missing, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(missing.body["message"], "Unable to authenticate you.");

    let wrong = call_with(&sb, Method::GET, "/v2/droplets", None, Some("dop_v1_nope")).await;
    assert_do_error(&wrong, StatusCode::UNAUTHORIZED, "unauthorized");

    let unknown_route_no_auth = call_with(&sb, Method::GET, "/v2/nothing", None, None).await;
    assert_eq!(unknown_route_no_auth.status, StatusCode::UNAUTHORIZED);

    let ok = call(&sb, Method::GET, "/v2/account", None).await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body["account"]["status"], "active");
    for answer in [&missing, &wrong, &ok] {
        for header in [
            "ratelimit-limit",
            "ratelimit-remaining",
            "ratelimit-reset",
            "x-request-id",
        ] {
            assert!(answer.headers.contains_key(header), "missing {header}");
        }
    }
    let log = sb.requests();
    let statuses: Vec<u16> = log.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [401, 401, 401, 200]);
    assert_eq!(log[1].path, "/v2/droplets");
    sb.shutdown().await;
}

#[tokio::test]
async fn droplet_lifecycle_create_poll_delete() {
    let sb = sandbox().await;

    let created = call(
        &sb,
        Method::POST,
        "/v2/droplets",
        Some(create_body("web-1")),
    )
    .await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.body);
    let droplet = &created.body["droplet"];
    assert_eq!(droplet["status"], "new");
    assert_eq!(droplet["name"], "web-1");
    assert_eq!(droplet["size_slug"], "s-1vcpu-1gb");
    assert_eq!(droplet["region"]["slug"], "nyc3");
    assert_eq!(droplet["image"]["slug"], "ubuntu-24-04-x64");
    assert_eq!(droplet["tags"], json!(["stackdock", "env:test"]));
    assert_eq!(droplet["networks"], json!({"v4": [], "v6": []}));
    let id = droplet["id"].as_u64().expect("integer id");
    let action = &created.body["links"]["actions"][0];
    assert_eq!(action["rel"], "create");
    let action_href = action["href"].as_str().unwrap();
    assert_eq!(
        action_href,
        format!("{}/v2/actions/{}", sb.base_url(), action["id"])
    );

    let active = wait_active(&sb, id).await;
    let ip = public_ipv4(&active).expect("public IPv4 once active");
    assert!(
        ip.starts_with("203.0.113.") || ip.starts_with("198.51.100."),
        "{ip}"
    );
    let v6 = active["networks"]["v6"][0]["ip_address"]
        .as_str()
        .expect("IPv6 requested");
    assert!(v6.starts_with("2001:db8:"), "{v6}");

    let action = call(&sb, Method::GET, action_href, None).await;
    assert_eq!(action.body["action"]["status"], "completed");
    assert_eq!(action.body["action"]["resource_id"], id);

    let inventory = sb.droplets();
    assert_eq!(inventory.len(), 1);
    assert_eq!(inventory[0]["id"], id);
    assert_eq!(inventory[0]["status"], "active");

    let deleted = call(&sb, Method::DELETE, &format!("/v2/droplets/{id}"), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.body, Value::Null);
    assert!(sb.droplets().is_empty());

    let again = call(&sb, Method::DELETE, &format!("/v2/droplets/{id}"), None).await;
    assert_do_error(&again, StatusCode::NOT_FOUND, "not_found");
    let gone = call(&sb, Method::GET, &format!("/v2/droplets/{id}"), None).await;
    assert_do_error(&gone, StatusCode::NOT_FOUND, "not_found");
    sb.shutdown().await;
}

#[tokio::test]
async fn ipv6_only_when_requested_and_addresses_are_unique() {
    let sb = sandbox().await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut body = create_body(&format!("plain-{i}"));
        body["ipv6"] = json!(false);
        let created = call(&sb, Method::POST, "/v2/droplets", Some(body)).await;
        assert_eq!(created.status, StatusCode::ACCEPTED);
        ids.push(created.body["droplet"]["id"].as_u64().unwrap());
    }
    let mut ips = HashSet::new();
    for id in ids {
        let droplet = wait_active(&sb, id).await;
        assert_eq!(droplet["networks"]["v6"], json!([]));
        assert!(ips.insert(public_ipv4(&droplet).unwrap()));
    }
}

#[tokio::test]
async fn multi_create_makes_one_droplet_per_name() {
    let sb = sandbox().await;
    let mut body = create_body("unused");
    body.as_object_mut().unwrap().remove("name");
    body["names"] = json!(["multi-1", "multi-2"]);
    let created = call(&sb, Method::POST, "/v2/droplets", Some(body)).await;
    assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.body);
    assert_eq!(created.body["droplets"].as_array().unwrap().len(), 2);
    assert_eq!(
        created.body["links"]["actions"].as_array().unwrap().len(),
        2
    );
    let names: Vec<Value> = sb.droplets().iter().map(|d| d["name"].clone()).collect();
    assert_eq!(names, [json!("multi-1"), json!("multi-2")]);
}

#[tokio::test]
async fn invalid_creates_get_422_and_create_nothing() {
    let sb = sandbox().await;
    let cases = [
        (
            "size",
            json!("s-64vcpu-1tb"),
            "You specified an invalid size for Droplet creation.",
        ),
        (
            "region",
            json!("mars1"),
            "You specified an invalid region for Droplet creation.",
        ),
        (
            "image",
            json!("windows-11"),
            "You specified an invalid image for Droplet creation.",
        ),
        (
            "image",
            json!(42),
            "You specified an invalid image for Droplet creation.",
        ),
        (
            "name",
            json!("web_01!"),
            "Only valid hostname characters are allowed. (a-z, A-Z, 0-9, . and -)",
        ),
    ];
    for (field, value, message) in cases {
        let mut body = create_body("web-1");
        body[field] = value;
        let answer = call(&sb, Method::POST, "/v2/droplets", Some(body)).await;
        assert_do_error(
            &answer,
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_entity",
        );
        assert_eq!(answer.body["message"], message, "{field}");
    }

    let mut missing_size = create_body("web-1");
    missing_size.as_object_mut().unwrap().remove("size");
    let answer = call(&sb, Method::POST, "/v2/droplets", Some(missing_size)).await;
    assert_do_error(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable_entity",
    );

    let mut bad_tag = create_body("web-1");
    bad_tag["tags"] = json!(["stack=web"]);
    let answer = call(&sb, Method::POST, "/v2/droplets", Some(bad_tag)).await;
    assert_do_error(
        &answer,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unprocessable_entity",
    );

    let malformed = reqwest::Client::new()
        .post(format!("{}/v2/droplets", sb.base_url()))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("{\"name\": \"web-1\", \"size\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(body["id"], "bad_request");

    assert!(sb.droplets().is_empty());
}

#[tokio::test]
async fn pagination_walks_every_droplet_exactly_once() {
    let sb = sandbox().await;
    for i in 0..45 {
        sb.create_droplet_directly(
            &format!("node-{i:02}"),
            "nyc3",
            "s-1vcpu-1gb",
            "debian-12-x64",
            &["fleet"],
        );
    }
    let base = sb.base_url();

    let first = call(&sb, Method::GET, "/v2/droplets?per_page=20", None).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["meta"]["total"], 45);
    assert_eq!(first.body["droplets"].as_array().unwrap().len(), 20);
    let pages = &first.body["links"]["pages"];
    assert_eq!(
        pages["next"],
        format!("{base}/v2/droplets?page=2&per_page=20")
    );
    assert_eq!(
        pages["last"],
        format!("{base}/v2/droplets?page=3&per_page=20")
    );
    assert!(pages.get("first").is_none() && pages.get("prev").is_none());

    let mut seen = Vec::new();
    let mut next = Some(format!("{base}/v2/droplets?per_page=20"));
    let mut visited = 0;
    while let Some(url) = next {
        visited += 1;
        assert!(visited <= 3, "more pages than expected");
        let page = call(&sb, Method::GET, &url, None).await;
        assert_eq!(page.status, StatusCode::OK);
        for droplet in page.body["droplets"].as_array().unwrap() {
            seen.push(droplet["id"].as_u64().unwrap());
        }
        next = page.body["links"]["pages"]["next"]
            .as_str()
            .map(str::to_owned);
        if next.is_none() {
            let pages = &page.body["links"]["pages"];
            assert_eq!(page.body["droplets"].as_array().unwrap().len(), 5);
            assert_eq!(
                pages["first"],
                format!("{base}/v2/droplets?page=1&per_page=20")
            );
            assert_eq!(
                pages["prev"],
                format!("{base}/v2/droplets?page=2&per_page=20")
            );
            assert!(pages.get("last").is_none());
        }
    }
    assert_eq!(visited, 3);
    let unique: HashSet<u64> = seen.iter().copied().collect();
    assert_eq!(seen.len(), 45);
    assert_eq!(unique.len(), 45);
    let inventory: Vec<u64> = sb
        .droplets()
        .iter()
        .map(|d| d["id"].as_u64().unwrap())
        .collect();
    assert_eq!(seen, inventory, "pages come back in id order");

    let small = call(&sb, Method::GET, "/v2/droplets?per_page=200", None).await;
    assert_eq!(small.body["droplets"].as_array().unwrap().len(), 45);
    assert_eq!(small.body["links"], json!({}));
}

#[tokio::test]
async fn tag_and_name_filters_and_delete_by_tag() {
    let sb = sandbox().await;
    sb.create_droplet_directly(
        "web-1",
        "nyc3",
        "s-1vcpu-1gb",
        "ubuntu-24-04-x64",
        &["env:prod", "web"],
    );
    sb.create_droplet_directly(
        "web-2",
        "fra1",
        "s-1vcpu-1gb",
        "ubuntu-24-04-x64",
        &["env:prod"],
    );
    sb.create_droplet_directly(
        "db-1",
        "nyc3",
        "s-2vcpu-4gb",
        "debian-12-x64",
        &["env:staging"],
    );

    let prod = call(&sb, Method::GET, "/v2/droplets?tag_name=env%3Aprod", None).await;
    let names: Vec<&str> = prod.body["droplets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web-1", "web-2"]);
    assert_eq!(prod.body["meta"]["total"], 2);

    let none = call(&sb, Method::GET, "/v2/droplets?tag_name=nothing", None).await;
    assert_eq!(none.body["droplets"], json!([]));
    assert_eq!(none.body["meta"]["total"], 0);

    let by_name = call(&sb, Method::GET, "/v2/droplets?name=DB-1", None).await;
    assert_eq!(by_name.body["droplets"][0]["name"], "db-1");
    assert_eq!(by_name.body["meta"]["total"], 1);

    let deleted = call(&sb, Method::DELETE, "/v2/droplets?tag_name=env:prod", None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let left: Vec<Value> = sb.droplets().iter().map(|d| d["name"].clone()).collect();
    assert_eq!(left, [json!("db-1")]);
}

#[tokio::test]
async fn directly_created_droplets_are_active_and_visible() {
    let sb = sandbox().await;
    let droplet =
        sb.create_droplet_directly("console-made", "ams3", "s-2vcpu-2gb", "fedora-40-x64", &[]);
    assert_eq!(droplet["status"], "active");
    assert!(public_ipv4(&droplet).is_some());
    let id = droplet["id"].as_u64().unwrap();
    let fetched = call(&sb, Method::GET, &format!("/v2/droplets/{id}"), None).await;
    assert_eq!(fetched.body["droplet"], droplet);
    assert!(
        sb.requests().len() == 1,
        "direct creation is not an API request"
    );
}

#[tokio::test]
async fn unknown_routes_and_ids_are_404() {
    let sb = sandbox().await;
    for path in [
        "/v2/nothing",
        "/v2/droplets/abc",
        "/v2/droplets/999",
        "/v1/droplets",
    ] {
        let answer = call(&sb, Method::GET, path, None).await;
        assert_do_error(&answer, StatusCode::NOT_FOUND, "not_found");
        assert_eq!(
            answer.body["message"],
            "The resource you were accessing could not be found."
        );
    }
    let wrong_method = call(&sb, Method::PUT, "/v2/droplets", Some(json!({}))).await;
    assert_do_error(&wrong_method, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn catalog_lists_regions_and_sizes() {
    let sb = sandbox().await;
    let regions = call(&sb, Method::GET, "/v2/regions", None).await;
    let slugs: Vec<&str> = regions.body["regions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["slug"].as_str().unwrap())
        .collect();
    for wanted in ["nyc1", "nyc3", "sfo3", "ams3", "fra1", "lon1", "sgp1"] {
        assert!(slugs.contains(&wanted), "{wanted}");
    }
    assert_eq!(regions.body["meta"]["total"], slugs.len());

    let sizes = call(&sb, Method::GET, "/v2/sizes?per_page=2", None).await;
    assert_eq!(sizes.body["sizes"].as_array().unwrap().len(), 2);
    assert!(sizes.body["meta"]["total"].as_u64().unwrap() >= 6);
    assert_eq!(
        sizes.body["links"]["pages"]["next"],
        format!("{}/v2/sizes?page=2&per_page=2", sb.base_url())
    );
    let all = call(&sb, Method::GET, "/v2/sizes?per_page=200", None).await;
    let one_gb = all.body["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["slug"] == "s-1vcpu-1gb")
        .expect("s-1vcpu-1gb offered");
    assert_eq!(one_gb["memory"], 1024);
    assert_eq!(one_gb["vcpus"], 1);
}

/// StackDock tags every droplet with `stackdock` and its own marker; a benchmark then
/// pages through thousands of droplets by either tag.
#[tokio::test]
async fn listing_by_tag_pages_through_thousands_of_droplets() {
    let sb = sandbox().await;
    let mut api_ids = Vec::new();
    for i in 0..20 {
        let mut body = create_body(&format!("sd-{i}"));
        body["tags"] = json!(["stackdock", format!("stackdock-{i}")]);
        let created = call(&sb, Method::POST, "/v2/droplets", Some(body)).await;
        assert_eq!(created.status, StatusCode::ACCEPTED, "{}", created.body);
        assert_eq!(
            created.body["droplet"]["tags"],
            json!(["stackdock", format!("stackdock-{i}")]),
            "an API create keeps all its tags"
        );
        api_ids.push(created.body["droplet"]["id"].as_u64().unwrap());
    }
    for i in 0..1500 {
        let tags: &[&str] = if i % 3 == 0 {
            &["other"]
        } else {
            &["stackdock"]
        };
        sb.create_droplet_directly(
            &format!("bulk-{i}"),
            "nyc3",
            "s-1vcpu-1gb",
            "debian-12-x64",
            tags,
        );
    }
    let expected: Vec<u64> = sb
        .droplets()
        .iter()
        .filter(|d| d["tags"].as_array().unwrap().contains(&json!("stackdock")))
        .map(|d| d["id"].as_u64().unwrap())
        .collect();
    assert_eq!(expected.len(), 1020);

    let started = Instant::now();
    let mut seen = Vec::new();
    for page in 1..=6 {
        let url = format!("/v2/droplets?tag_name=stackdock&per_page=200&page={page}");
        let answer = call(&sb, Method::GET, &url, None).await;
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(answer.body["meta"]["total"], 1020);
        let droplets = answer.body["droplets"].as_array().unwrap();
        assert_eq!(
            droplets.len(),
            if page == 6 { 20 } else { 200 },
            "page {page}"
        );
        for droplet in droplets {
            assert!(
                droplet["tags"]
                    .as_array()
                    .unwrap()
                    .contains(&json!("stackdock"))
            );
            seen.push(droplet["id"].as_u64().unwrap());
        }
    }
    assert_eq!(seen, expected, "every tagged droplet once, in id order");
    // A generous bound: rendering the whole inventory for every page would still pass
    // it on a fast machine, but the unit test in `droplets` pins that down exactly.
    assert!(started.elapsed() < Duration::from_secs(10));

    for (i, id) in api_ids.iter().enumerate() {
        let url = format!("/v2/droplets?tag_name=stackdock-{i}&per_page=200&page=1");
        let answer = call(&sb, Method::GET, &url, None).await;
        assert_eq!(answer.body["meta"]["total"], 1);
        assert_eq!(answer.body["droplets"][0]["id"], *id);
    }

    let deleted = call(
        &sb,
        Method::DELETE,
        &format!("/v2/droplets/{}", api_ids[3]),
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    let gone = call(&sb, Method::GET, "/v2/droplets?tag_name=stackdock-3", None).await;
    assert_eq!(gone.body["meta"]["total"], 0);
    let rest = call(
        &sb,
        Method::GET,
        "/v2/droplets?tag_name=stackdock&per_page=1",
        None,
    )
    .await;
    assert_eq!(rest.body["meta"]["total"], 1019);

    assert_eq!(
        sb.creates_by_tag("stackdock"),
        1020,
        "deleted droplets still count"
    );
    assert_eq!(sb.creates_by_tag("stackdock-3"), 1);
    assert_eq!(sb.creates_by_tag("other"), 500);
    assert_eq!(sb.creates_by_tag("nobody"), 0);
}

#[tokio::test]
async fn creates_by_tag_counts_every_create_of_a_marker() {
    let sb = sandbox().await;
    let mut body = create_body("dup");
    body["tags"] = json!(["stackdock", "stackdock-7"]);
    for _ in 0..2 {
        let created = call(&sb, Method::POST, "/v2/droplets", Some(body.clone())).await;
        assert_eq!(created.status, StatusCode::ACCEPTED);
    }
    let deleted = call(
        &sb,
        Method::DELETE,
        "/v2/droplets?tag_name=stackdock-7",
        None,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert!(sb.droplets().is_empty());
    assert_eq!(
        sb.creates_by_tag("stackdock-7"),
        2,
        "a duplicate create is still seen"
    );
}

/// A benchmark measures its polling against `ready_after`, so the clock must start
/// at the create, whether or not anyone looks at the droplet in between.
#[tokio::test]
async fn a_droplet_turns_active_ready_after_its_create_not_its_first_read() {
    let ready_after = Duration::from_millis(600);
    let sb = DigitalOceanSandbox::start(DoSandboxConfig {
        tokens: vec![TOKEN.to_owned()],
        ready_after,
        ..DoSandboxConfig::default()
    })
    .await
    .unwrap();
    let before_create = Instant::now();
    let watched = call(
        &sb,
        Method::POST,
        "/v2/droplets",
        Some(create_body("watched")),
    )
    .await;
    let unread = call(
        &sb,
        Method::POST,
        "/v2/droplets",
        Some(create_body("unread")),
    )
    .await;
    let created = Instant::now();
    let watched = watched.body["droplet"]["id"].as_u64().unwrap();
    let unread = unread.body["droplet"]["id"].as_u64().unwrap();

    tokio::time::sleep_until((before_create + ready_after - Duration::from_millis(150)).into())
        .await;
    let early = call(&sb, Method::GET, &format!("/v2/droplets/{watched}"), None).await;
    assert_eq!(
        early.body["droplet"]["status"], "new",
        "not active before ready_after"
    );

    tokio::time::sleep_until((created + ready_after + Duration::from_millis(20)).into()).await;
    let first_read = call(&sb, Method::GET, &format!("/v2/droplets/{unread}"), None).await;
    assert_eq!(
        first_read.body["droplet"]["status"], "active",
        "ready_after counts from the create, not from the first read"
    );
    assert!(
        first_read.body["droplet"]["networks"]["v4"]
            .as_array()
            .unwrap()
            .len()
            >= 2
    );
    let watched_now = call(&sb, Method::GET, &format!("/v2/droplets/{watched}"), None).await;
    assert_eq!(watched_now.body["droplet"]["status"], "active");
}
