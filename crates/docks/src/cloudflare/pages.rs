//! Provisioning Cloudflare web services (a Pages project and a direct-upload deployment) on
//! the v2 contract.
//!
//! Pages projects have no tags, and their name is their identity in every path, so a project
//! StackDock creates is named after its marker ([`project_name`]: the marker itself,
//! `stackdock-<12 hex digits>`, which Cloudflare's `^[a-z0-9][a-z0-9-]*$` takes) and found
//! again with `GET .../pages/projects/{name}`. The row tracks the project by that name. The
//! name the user gave is StackDock's name for the row. So that adoption never takes over a
//! project the user had, a first run reads the name before it records that it sends the
//! create, and refuses one already taken.
//!
//! Steps, recorded in order:
//! 1. [`PagesStep::ProjectCreateSent`] — before `POST .../pages/projects`. From here on the
//!    project may exist; undoing it deletes the project of that name, if there is one.
//! 2. [`PagesStep::ProjectCreated`] — the project, created or adopted; tracks its name.
//!    Undoing it deletes the project, which deletes its deployments.
//!
//! Then the files go up the way Cloudflare's CLI, wrangler, sends them (see `api.rs`): an
//! upload token for the project, the hashes Cloudflare lacks (`check-missing`), only those
//! uploaded in buckets, every hash upserted. As wrangler does, the site's `_headers` and
//! `_redirects` are not served files but go with the deployment as parts of their own, what
//! wrangler leaves out is left out, and a `_worker.js` or `_routes.json` (a Worker to bundle)
//! is refused ([`Role`]). An asset is named by its contents, so this part
//! is simply done again by a resumed run, and asks nothing twice that Cloudflare holds.
//!
//! 3. [`PagesStep::DeploymentCreateSent`] — before the multipart `POST .../deployments` with
//!    the `manifest` (`{"/path": hash}`). A lost answer is looked up among the project's
//!    deployments: the project is this resource's own, so a deployment in it is this one's.
//!    For the same reason a run that did not make the project itself looks there first.
//! 4. [`PagesStep::DeploymentCreated`] — its id.
//!
//! Undoing the deployment steps does nothing of its own: Cloudflare refuses to delete a
//! project's live production deployment, and the project's own undo, which always follows,
//! deletes the project with every deployment.
//!
//! Readiness is the deployment's own: ready when `latest_stage` is `deploy` with `success`,
//! failed when a stage ends in `failure` or `canceled`. Deprovision deletes the project.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use stackdock_docks::prelude::*;

use super::api::{AssetMetadata, AssetUpload, CloudflareApi, PagesDeployment, PagesProject};

/// How soon a deployment still going through its stages is checked again.
const CHECK_IN: Duration = Duration::from_secs(2);

/// The branch a project's production deployments come from, and the one StackDock deploys
/// to, so that a deployment is the project's production one.
pub const PRODUCTION_BRANCH: &str = "main";

/// The largest file Pages serves: wrangler's `MAX_ASSET_SIZE` (`pages/constants.ts`).
pub const MAX_ASSET_SIZE: u64 = 25 * 1024 * 1024;

/// One upload request holds at most this many bytes of files, and this many files:
/// wrangler's `MAX_BUCKET_SIZE` and `MAX_BUCKET_FILE_COUNT` (`pages/constants.ts`).
const MAX_BUCKET_SIZE: u64 = 40 * 1024 * 1024;
const MAX_BUCKET_FILES: usize = 2000;

/// What a file of the site is to Pages, sorted as wrangler sorts a directory it deploys
/// (`pages/validate.ts`, `api/pages/deploy.ts`).
#[derive(Debug, PartialEq, Eq)]
enum Role {
    /// Served as it is: uploaded and named in the manifest.
    Asset,
    /// The site's configuration (`_headers`, `_redirects` at its root): sent with the
    /// deployment as a part of that name, never served.
    Config(&'static str),
    /// Left out, as wrangler leaves it out: `.DS_Store`, `node_modules`, `.git`, and at the
    /// root `.wrangler` and `functions` (Functions are built from it, not served).
    Left,
    /// A Worker the deployment would have to bundle (`_worker.js`, `_routes.json` at the
    /// root), which StackDock does not build: refused, with why.
    Refused(&'static str),
}

fn role(path: &str) -> Role {
    let segments: Vec<&str> = path.split('/').collect();
    let anywhere = segments
        .iter()
        .any(|s| matches!(*s, "node_modules" | ".git"))
        || segments.last() == Some(&".DS_Store");
    let at_root = segments.len() > 1 && matches!(segments[0], ".wrangler" | "functions");
    if anywhere || at_root {
        return Role::Left;
    }
    match path {
        "_headers" => Role::Config("_headers"),
        "_redirects" => Role::Config("_redirects"),
        "_worker.js" | "_routes.json" => Role::Refused(
            "Pages Functions and advanced-mode Workers are not deployed by StackDock; \
             leave the file out",
        ),
        _ => Role::Asset,
    }
}

/// The config of a web service: its files (see `stackdock_docks::files`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebServiceConfig {
    /// StackDock's name for the project. At Cloudflare the project is named after its marker.
    pub name: Text,
    /// The files to deploy: `[{path, sha256, size}]`, uploaded to StackDock beforehand
    /// (`stackdock provision web-service --dir` does both). Pages takes files of 25 MiB at
    /// most.
    pub files: Files,
}

/// The steps of a web service's provision.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum PagesStep {
    ProjectCreateSent {
        marker: Marker,
        project: String,
    },
    ProjectCreated {
        project: String,
        project_id: String,
        adopted: bool,
    },
    DeploymentCreateSent {
        project: String,
        /// How many files the manifest names, and how many of them were uploaded by this run.
        files: usize,
        uploaded: usize,
    },
    DeploymentCreated {
        project: String,
        deployment_id: String,
        adopted: bool,
    },
}

impl AdapterStep for PagesStep {
    fn name(&self) -> &'static str {
        match self {
            Self::ProjectCreateSent { .. } => "project_create_sent",
            Self::ProjectCreated { .. } => "project_created",
            Self::DeploymentCreateSent { .. } => "deployment_create_sent",
            Self::DeploymentCreated { .. } => "deployment_created",
        }
    }

    fn tracks(&self) -> Option<&str> {
        match self {
            Self::ProjectCreated { project, .. } => Some(project),
            _ => None,
        }
    }
}

/// Whether a step named `name` is one of a web service's (the others are a domain's).
pub fn is_pages_step(name: &str) -> bool {
    name.starts_with("project_") || name.starts_with("deployment_")
}

/// The Pages name of the project carrying `marker`.
pub fn project_name(marker: &Marker) -> String {
    marker.as_str().to_string()
}

/// The name Cloudflare gives a file's contents, as wrangler computes it
/// (`packages/wrangler/src/pages/hash.ts`, now `hashFile` in `@cloudflare/deploy-helpers`):
/// BLAKE3 of the contents in base64 followed by the file's extension without its dot, in
/// hex, its first 32 digits. The extension is Node's `extname`: after the last dot of the
/// last segment, none for a name that only starts with one (`.well-known`'s files, `_headers`).
pub fn asset_hash(path: &str, bytes: &[u8]) -> String {
    let mut input = base64::engine::general_purpose::STANDARD.encode(bytes);
    input.push_str(extension(path));
    let digest = blake3::hash(input.as_bytes()).to_hex();
    digest.as_str()[..32].to_string()
}

fn extension(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    match file.rfind('.') {
        Some(dot) if dot > 0 => &file[dot + 1..],
        _ => "",
    }
}

/// The content type an asset is uploaded with: what wrangler's `mime` lookup answers for the
/// common files of a static site, else `application/octet-stream` as wrangler falls back to.
pub fn content_type(path: &str) -> &'static str {
    match extension(path).to_ascii_lowercase().as_str() {
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" | "mjs" => "application/javascript",
        "json" | "map" => "application/json",
        "txt" => "text/plain",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/vnd.microsoft.icon",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        _ => "application/octet-stream",
    }
}

/// A project as StackDock shows it, with `deployment` (else the project's newest).
pub fn observe(project: PagesProject, deployment: Option<&PagesDeployment>) -> Observed {
    let deployment = deployment.or(project.latest_deployment.as_ref());
    let failure = deployment.and_then(|d| d.failed.as_ref().map(|f| (d, f)));
    let failure = failure.map(|(d, (stage, status))| ProviderFailure {
        code: format!("deployment_{status}"),
        message: format!(
            "Cloudflare reports the deployment {} ended its {stage} stage in {status}",
            d.id
        ),
    });
    let production_url = deployment
        .and_then(|d| d.url.clone())
        .or_else(|| project.subdomain.as_ref().map(|s| format!("https://{s}")));
    let mut raw = project.raw;
    if let (Some(d), Value::Object(map)) = (deployment, &mut raw) {
        map.insert("deployment".into(), d.raw.clone());
    }
    Observed {
        provider_resource_id: project.name.clone(),
        marker: Marker::try_from(project.name.clone()).ok(),
        name: project.name,
        ready: deployment.is_some_and(PagesDeployment::is_ready),
        status: deployment.map(PagesDeployment::status),
        failure,
        details: ResourceDetails::WebService(WebServiceDetails {
            production_url,
            source: Some("files".into()),
        }),
        full_api_data: raw,
    }
}

/// What the engine should do with a deployment in its stage.
fn progress(project: PagesProject, deployment: &PagesDeployment) -> Result<Progress, DockError> {
    let seen = observe(project, Some(deployment));
    if let Some(failure) = seen.failure {
        return Err(DockError::ResourceFailed {
            provider: Provider::Cloudflare,
            code: failure.code,
            message: failure.message,
        });
    }
    if seen.ready {
        return Ok(Progress::Done(Some(Box::new(seen))));
    }
    Ok(Progress::Pending {
        status: seen.status,
        check_in: CHECK_IN,
    })
}

fn gone(what: String) -> DockError {
    DockError::ResourceFailed {
        provider: Provider::Cloudflare,
        code: "gone".into(),
        message: format!("{what} was deleted while it was provisioned"),
    }
}

/// A file of the manifest with the name Cloudflare gives its contents.
struct Asset<'a> {
    entry: &'a FileEntry,
    hash: String,
}

pub async fn provision(
    ctx: &mut Ctx,
    api: &CloudflareApi,
    config: &Map<String, Value>,
) -> Result<Progress, DockError> {
    let config: WebServiceConfig = config::parse(config)?;
    if let Some(big) = config
        .files
        .entries()
        .iter()
        .find(|e| e.size > MAX_ASSET_SIZE)
    {
        return Err(ConfigError::new(
            "files",
            format!(
                "{} is {} bytes; Cloudflare Pages serves files of 25 MiB at most",
                big.path, big.size
            ),
        )
        .into());
    }
    let marker = ctx.marker()?.clone();
    let name = project_name(&marker);

    // The hashes are computed from the bytes before anything is created, so contents never
    // uploaded to StackDock leave nothing at Cloudflare.
    let mut assets = Vec::with_capacity(config.files.entries().len());
    let mut config_files: Vec<(&'static str, Vec<u8>)> = Vec::new();
    for entry in config.files.entries() {
        match role(entry.path.as_str()) {
            Role::Asset => {
                let hash = asset_hash(entry.path.as_str(), &ctx.file(entry).await?);
                assets.push(Asset { entry, hash });
            }
            Role::Config(name) => config_files.push((name, ctx.file(entry).await?)),
            Role::Left => {}
            Role::Refused(why) => {
                return Err(ConfigError::new("files", format!("{}: {why}", entry.path)).into());
            }
        }
    }
    if assets.is_empty() {
        return Err(ConfigError::new("files", "no file to serve: Pages needs at least one").into());
    }

    let (project, fresh) = own_project(ctx, api, &marker).await?;

    let deployment = match ctx.step::<PagesStep>("deployment_created")? {
        Some(PagesStep::DeploymentCreated { deployment_id, .. }) => api
            .get_deployment(&name, &deployment_id)
            .await?
            .ok_or_else(|| gone(format!("deployment {deployment_id}")))?,
        _ => {
            let uploaded = upload_missing(ctx, api, &name, &assets).await?;
            let manifest: BTreeMap<String, String> = assets
                .iter()
                .map(|a| (format!("/{}", a.entry.path), a.hash.clone()))
                .collect();
            // A project this run did not just make is the resource's own from an earlier
            // run, which may have made the deployment before its record was kept: one in the
            // project is that one.
            let sent_before = !fresh || ctx.step::<PagesStep>("deployment_create_sent")?.is_some();
            ctx.record(&PagesStep::DeploymentCreateSent {
                project: name.clone(),
                files: assets.len(),
                uploaded,
            })
            .await?;
            let made = create_or_adopt(
                ctx,
                sent_before,
                |attempt| {
                    api.create_deployment(
                        &name,
                        &manifest,
                        PRODUCTION_BRANCH,
                        &config_files,
                        attempt,
                    )
                },
                || api.latest_deployment(&name),
            )
            .await?;
            let adopted = made.adopted();
            let deployment = made.into_inner();
            ctx.record(&PagesStep::DeploymentCreated {
                project: name.clone(),
                deployment_id: deployment.id.clone(),
                adopted,
            })
            .await?;
            deployment
        }
    };
    progress(project, &deployment)
}

/// The project named after `marker`, made by an earlier run of this operation or now (steps
/// [`PagesStep::ProjectCreateSent`] and [`PagesStep::ProjectCreated`]), and whether this run
/// made it.
async fn own_project(
    ctx: &mut Ctx,
    api: &CloudflareApi,
    marker: &Marker,
) -> Result<(PagesProject, bool), DockError> {
    let name = project_name(marker);
    if ctx.step::<PagesStep>("project_created")?.is_some() {
        let project = api
            .get_project(&name)
            .await?
            .ok_or_else(|| gone(format!("Pages project {name}")))?;
        return Ok((project, false));
    }
    let sent_before = ctx.step::<PagesStep>("project_create_sent")?.is_some();
    if !sent_before && api.get_project(&name).await?.is_some() {
        return Err(ConfigError::new(
            "name",
            format!(
                "a Pages project named {name} already exists in this Cloudflare account; \
                 StackDock does not take over a project it did not create (a sync lists it as \
                 a manual resource)"
            ),
        )
        .into());
    }
    ctx.record_before_sending(&PagesStep::ProjectCreateSent {
        marker: marker.clone(),
        project: name.clone(),
    })
    .await?;
    let made = create_or_adopt(
        ctx,
        sent_before,
        |attempt| api.create_project(&name, PRODUCTION_BRANCH, attempt),
        || api.get_project(&name),
    )
    .await?;
    let adopted = made.adopted();
    let project = made.into_inner();
    ctx.record(&PagesStep::ProjectCreated {
        project: project.name.clone(),
        project_id: project.id.clone(),
        adopted,
    })
    .await?;
    Ok((project, !adopted))
}

/// Uploads the contents Cloudflare lacks, as wrangler does (`pages/upload.ts`): an upload
/// token, `check-missing` with every hash, the missing ones in buckets, then every hash
/// upserted. Answers how many contents were uploaded.
async fn upload_missing(
    ctx: &Ctx,
    api: &CloudflareApi,
    project: &str,
    assets: &[Asset<'_>],
) -> Result<usize, DockError> {
    let mut token = UploadToken {
        api,
        project,
        jwt: api.upload_token(project).await?,
    };
    let mut hashes: Vec<String> = assets.iter().map(|a| a.hash.clone()).collect();
    hashes.sort();
    hashes.dedup();
    let hashes = &hashes;
    let missing = token
        .call(|jwt| async move { api.missing_assets(&jwt, hashes).await })
        .await?;

    // One upload per content: paths sharing contents and extension share a hash.
    let mut first_of: HashMap<&str, &Asset<'_>> = HashMap::new();
    for a in assets {
        first_of.entry(a.hash.as_str()).or_insert(a);
    }
    let mut wanted = Vec::with_capacity(missing.len());
    for hash in &missing {
        let Some(asset) = first_of.get(hash.as_str()) else {
            return Err(DockError::Protocol {
                provider: Provider::Cloudflare,
                detail: format!("Cloudflare asks for {hash}, which no file has"),
            });
        };
        wanted.push(*asset);
    }
    // Largest first, as wrangler sorts them, each bucket filled up to its limits.
    wanted.sort_by_key(|a| std::cmp::Reverse(a.entry.size));
    let mut bucket = Vec::new();
    let mut bucket_size = 0;
    for asset in &wanted {
        if !bucket.is_empty()
            && (bucket_size + asset.entry.size > MAX_BUCKET_SIZE
                || bucket.len() >= MAX_BUCKET_FILES)
        {
            let full = &bucket;
            token
                .call(|jwt| async move { api.upload_assets(&jwt, full).await })
                .await?;
            bucket.clear();
            bucket_size = 0;
        }
        let bytes = ctx.file(asset.entry).await?;
        bucket.push(AssetUpload {
            key: asset.hash.clone(),
            value: base64::engine::general_purpose::STANDARD.encode(&bytes),
            metadata: AssetMetadata {
                content_type: content_type(asset.entry.path.as_str()).to_string(),
            },
            base64: true,
        });
        bucket_size += asset.entry.size;
    }
    if !bucket.is_empty() {
        let last = &bucket;
        token
            .call(|jwt| async move { api.upload_assets(&jwt, last).await })
            .await?;
    }
    token
        .call(|jwt| async move { api.upsert_hashes(&jwt, hashes).await })
        .await?;
    Ok(wanted.len())
}

/// Cloudflare's code for an upload token it no longer takes (wrangler's `pages/errors.ts`:
/// `ApiErrorCodes.UNAUTHORIZED`).
const UPLOAD_TOKEN_REFUSED: &str = "8000013";

/// A project's upload token for the asset calls. An upload token expires; as wrangler does
/// (`upload.ts`: a call refused with `UNAUTHORIZED` fetches another JWT), a call refused for
/// it is made once more with a new one.
struct UploadToken<'a> {
    api: &'a CloudflareApi,
    project: &'a str,
    jwt: SecretString,
}

impl UploadToken<'_> {
    async fn call<T, F, Fut>(&mut self, mut call: F) -> Result<T, DockError>
    where
        F: FnMut(SecretString) -> Fut,
        Fut: Future<Output = Result<T, DockError>>,
    {
        match call(self.jwt.clone()).await {
            Err(DockError::Provider(p)) if p.code == UPLOAD_TOKEN_REFUSED => {
                self.jwt = self.api.upload_token(self.project).await?;
                call(self.jwt.clone()).await
            }
            other => other,
        }
    }
}

pub async fn undo(api: &CloudflareApi, step: PagesStep) -> Result<(), DockError> {
    match step {
        // Nobody had a project of this name when the create was recorded as sent.
        PagesStep::ProjectCreateSent { project, .. }
        | PagesStep::ProjectCreated { project, .. } => api.delete_project(&project).await,
        // The project's undo, which follows, deletes it with its deployments.
        PagesStep::DeploymentCreateSent { .. } | PagesStep::DeploymentCreated { .. } => Ok(()),
    }
}

/// One listing of the account's projects answers for every tracked one: each shows its
/// newest deployment with its stage.
pub async fn observe_many(
    api: &CloudflareApi,
    targets: &[Tracked],
) -> Result<Vec<Option<Observed>>, DockError> {
    let mut projects: HashMap<String, PagesProject> = api
        .list_projects()
        .await?
        .into_iter()
        .map(|p| (p.name.clone(), p))
        .collect();
    Ok(targets
        .iter()
        .map(|t| {
            projects
                .remove(&t.provider_resource_id)
                .map(|p| observe(p, None))
        })
        .collect())
}

pub async fn find_by_marker(
    api: &CloudflareApi,
    marker: &Marker,
) -> Result<Option<Observed>, DockError> {
    Ok(api
        .get_project(&project_name(marker))
        .await?
        .map(|p| observe(p, None)))
}

pub async fn discover(api: &CloudflareApi) -> Result<Vec<Observed>, DockError> {
    Ok(api
        .list_projects()
        .await?
        .into_iter()
        .map(|p| observe(p, None))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sites_files_are_sorted_as_wrangler_sorts_them() {
        assert_eq!(role("index.html"), Role::Asset);
        assert_eq!(
            role("css/_headers"),
            Role::Asset,
            "only the root's configures"
        );
        assert_eq!(role("docs/functions/a.html"), Role::Asset);
        assert_eq!(role("_headers"), Role::Config("_headers"));
        assert_eq!(role("_redirects"), Role::Config("_redirects"));
        for left in [
            "node_modules/x/index.js",
            "a/.git/HEAD",
            ".DS_Store",
            "img/.DS_Store",
            ".wrangler/state",
            "functions/api.js",
        ] {
            assert_eq!(role(left), Role::Left, "{left}");
        }
        assert!(matches!(role("_worker.js"), Role::Refused(_)));
        assert!(matches!(role("_routes.json"), Role::Refused(_)));
    }

    #[test]
    fn asset_hashes_follow_wrangler() {
        // blake3("PGgxPmhpPC9oMT4=" + "html"): the base64 of `<h1>hi</h1>`, then the
        // extension without its dot.
        let expected = blake3::hash(b"PGgxPmhpPC9oMT4=html").to_hex();
        assert_eq!(asset_hash("index.html", b"<h1>hi</h1>"), &expected[..32]);
        assert_eq!(asset_hash("index.html", b"<h1>hi</h1>").len(), 32);
        // The same contents under another extension are another asset; the folder does not
        // count.
        assert_ne!(
            asset_hash("a.html", b"x"),
            asset_hash("a.txt", b"x"),
            "the extension is part of the hash"
        );
        assert_eq!(asset_hash("a/b.css", b"x"), asset_hash("c.css", b"x"));
        assert_eq!(extension(".well-known/.hidden"), "");
        assert_eq!(extension("_headers"), "");
        assert_eq!(extension("v1.2/app.min.js"), "js");
        assert_eq!(extension("v1.2/README"), "");
    }

    #[test]
    fn content_types_of_a_static_site() {
        assert_eq!(content_type("index.html"), "text/html");
        assert_eq!(content_type("css/site.CSS"), "text/css");
        assert_eq!(content_type("blob"), "application/octet-stream");
    }

    #[test]
    fn deployments_are_ready_at_deploy_success_and_failed_at_failure() {
        let deployment = |stage: Value| {
            PagesDeployment::from_value(json!({"id": "d", "latest_stage": stage, "stages": []}))
                .expect("a deployment")
        };
        assert!(deployment(json!({"name": "deploy", "status": "success"})).is_ready());
        let building = deployment(json!({"name": "build", "status": "active"}));
        assert!(!building.is_ready() && building.failed.is_none());
        assert_eq!(building.status(), "build:active");
        let failed = deployment(json!({"name": "build", "status": "failure"}));
        assert_eq!(failed.failed, Some(("build".into(), "failure".into())));
        let canceled = deployment(json!({"name": "deploy", "status": "canceled"}));
        assert!(!canceled.is_ready() && canceled.failed.is_some());
    }
}
