//! Sharing plugins and templates through a real OCI registry on loopback:
//! publish, install into another project with an empty cache, tampering,
//! signatures, offline use, and templates from publish to a finished run.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::project::Project;
use paracle_testing::oci::OciRegistry;

/// A secret key made by `publisher`, and its public half.
fn keygen(publisher: &Project, name: &str) -> (PathBuf, String) {
    let file = publisher.home().join(format!("{name}.key"));
    std::fs::create_dir_all(publisher.home()).unwrap();
    let made = publisher.json(&["plugin", "keygen", "--out", file.to_str().unwrap()]);
    (file, made["public_key"].as_str().unwrap().to_string())
}

fn publish_text_tools(
    publisher: &Project,
    registry: &OciRegistry,
    tag: &str,
    key: Option<&Path>,
) -> Value {
    let reference = format!("oci://{}/plugins/text-tools:{tag}", registry.host());
    let mut args = vec![
        "plugin".to_string(),
        "publish".into(),
        paracle_guests::TEXT_TOOLS.into(),
        reference,
    ];
    if let Some(key) = key {
        args.push("--sign-key".into());
        args.push(key.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    publisher.json(&args)
}

/// The raw manifest of `reference` as skopeo, a client independent of
/// ours, reads it from the registry.
fn skopeo_manifest(registry: &OciRegistry, repository_and_tag: &str) -> Value {
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{}/{repository_and_tag}", registry.host()),
        ])
        .output()
        .expect("skopeo runs (Debian's skopeo package; `.ci/run` installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn count_vowels(project: &Project, plugin: &str) -> Value {
    project.json(&[
        "plugin",
        "call",
        plugin,
        "count_vowels",
        r#"{"text": "registry"}"#,
    ])
}

#[test]
fn a_plugin_published_to_a_registry_installs_elsewhere_pinned_and_runs() {
    let registry = OciRegistry::start();
    let publisher = Project::new();
    let (key, public) = keygen(&publisher, "team");
    let published = publish_text_tools(&publisher, &registry, "1.0", Some(&key));
    assert_eq!(published["signed_by"], public.as_str());
    let manifest_digest = published["manifest"].as_str().unwrap().to_string();

    // Another client reads the standard Wasm component layout.
    let manifest = skopeo_manifest(&registry, "plugins/text-tools:1.0");
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], "application/wasm");
    let component = std::fs::read(paracle_guests::TEXT_TOOLS).unwrap();
    assert_eq!(layers[0]["size"], component.len());
    assert_eq!(layers[0]["digest"], published["component"]);
    assert!(manifest["annotations"]["dev.paracle.signature"]
        .as_str()
        .unwrap()
        .contains(&public));
    // ...and pulls the plain component.
    let pulled = tempfile::tempdir().unwrap();
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--src-tls-verify=false",
            &format!("docker://{}/plugins/text-tools:1.0", registry.host()),
            &format!("dir:{}", pulled.path().display()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let layer_file = pulled.path().join(
        published["component"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    assert_eq!(std::fs::read(layer_file).unwrap(), component);

    // A plugin that imports `git`, and one that refuses to start without
    // its config, are published without being started: neither grant nor
    // config is asked for.
    for (file, name) in [
        (paracle_guests::GIT_WORKFLOW, "git-workflow"),
        (paracle_guests::OPENAI_PROVIDER, "openai-provider"),
    ] {
        let out = publisher.json(&[
            "plugin",
            "publish",
            file,
            &format!("oci://{}/plugins/{name}:1.0", registry.host()),
        ]);
        assert!(out["manifest"].as_str().unwrap().starts_with("sha256:"));
    }
    let error = publisher.fails(&[
        "plugin",
        "publish",
        paracle_guests::TEXT_TOOLS,
        &format!(
            "oci://{}/plugins/text-tools@{}",
            registry.host(),
            published["manifest"].as_str().unwrap()
        ),
    ]);
    assert!(error.contains("publish to a tag"), "{error}");

    // A second project, with an empty cache of its own, trusting the key.
    let user = Project::new();
    user.ok(&["trust", "add", "team", &public]);
    user.ok(&["trust", "policy", "require-signed"]);
    let reference = format!("oci://{}/plugins/text-tools:1.0", registry.host());
    let installed = user.json(&["plugin", "install", &reference, "--name", "vowels"]);
    assert_eq!(installed["manifest"], manifest_digest.as_str());
    assert_eq!(installed["from_pin"], false);
    assert_eq!(installed["signature"]["status"], "trusted");
    assert_eq!(count_vowels(&user, "vowels")["vowels"], 2);
    let lock = std::fs::read_to_string(user.path().join(".paracle/registry.toml")).unwrap();
    assert!(lock.contains(&manifest_digest), "{lock}");
    assert!(lock.contains(&reference), "{lock}");
    let cached = user.cache().join("oci/blobs/sha256").join(
        published["component"]
            .as_str()
            .unwrap()
            .trim_start_matches("sha256:"),
    );
    assert_eq!(std::fs::read(cached).unwrap(), component);

    // The tag moves; the project keeps its pin until it asks for the update.
    let unsigned = Project::new();
    let moved = publish_text_tools(&unsigned, &registry, "1.0", None);
    assert_ne!(moved["manifest"], manifest_digest.as_str());
    let again = user.json(&["plugin", "install", &reference]);
    assert_eq!(again["manifest"], manifest_digest.as_str());
    assert_eq!(again["from_pin"], true);
    assert_eq!(again["name"], "vowels", "installing again keeps its name");
    // The new version is unsigned, which this user's policy refuses.
    let error = user.fails(&["plugin", "update", "vowels"]);
    assert!(error.contains("is not signed"), "{error}");
    let lock_after = std::fs::read_to_string(user.path().join(".paracle/registry.toml")).unwrap();
    assert!(
        lock_after.contains(&manifest_digest),
        "the pin stays: {lock_after}"
    );
    // Nor, whatever the policy, in place of the signed one and its grants.
    user.ok(&["trust", "policy", "allow-unsigned"]);
    user.ok(&["plugin", "grant", "vowels", "env:HOME"]);
    let error = user.fails(&["plugin", "update", "vowels"]);
    assert!(
        error.contains("was signed by") && error.contains("unload"),
        "{error}"
    );
    user.ok(&["plugin", "unload", "vowels"]);
    let updated = user.json(&["plugin", "install", &reference, "--name", "vowels"]);
    assert_eq!(updated["manifest"], moved["manifest"]);
    assert_eq!(updated["signature"]["status"], "unsigned");
    assert_eq!(updated["grants"]["env"], serde_json::json!([]), "{updated}");
    // Installing again adds grants to those it has, under the name it has.
    let again = user.json(&["plugin", "install", &reference, "--grant", "env:HOME"]);
    assert_eq!(again["name"], "vowels");
    assert_eq!(
        again["grants"]["env"],
        serde_json::json!(["HOME"]),
        "{again}"
    );

    // The tag now serves another plugin: an update does not put it in the
    // place (and the grants) of the one installed.
    let other = unsigned.json(&["plugin", "publish", paracle_guests::FS_TOOLS, &reference]);
    let error = user.fails(&["plugin", "update", "vowels"]);
    assert!(error.contains("now serves another plugin"), "{error}");
    let lock = std::fs::read_to_string(user.path().join(".paracle/registry.toml")).unwrap();
    assert!(
        !lock.contains(other["manifest"].as_str().unwrap()),
        "{lock}"
    );

    // A component that names itself after a plugin the project has (here a
    // built-in) takes no one's place unless the operator names it.
    let fresh = Project::new();
    let error = fresh.fails(&["plugin", "install", moved["pinned"].as_str().unwrap()]);
    assert!(
        error.contains("taken") && error.contains("--name"),
        "{error}"
    );
    assert!(!fresh.path().join(".paracle/registry.toml").exists());
}

#[test]
fn tampered_blobs_and_manifests_and_bad_signatures_are_refused() {
    let registry = OciRegistry::start();
    let publisher = Project::new();
    let (key, public) = keygen(&publisher, "team");
    let published = publish_text_tools(&publisher, &registry, "1.0", Some(&key));
    let reference = format!("oci://{}/plugins/text-tools:1.0", registry.host());

    let refused = |project: &Project, needle: &str| {
        let error = project.fails(&["plugin", "install", &reference, "--name", "vowels"]);
        assert!(error.contains(needle), "expected `{needle}` in: {error}");
        assert!(
            !project.path().join(".paracle/registry.toml").exists(),
            "nothing written into the project"
        );
    };

    // One byte of the component changed in the registry's storage.
    let blob = registry.blob_file(published["component"].as_str().unwrap());
    let original = std::fs::read(&blob).unwrap();
    let mut tampered = original.clone();
    tampered[1000] ^= 0xff;
    std::fs::write(&blob, &tampered).unwrap();
    refused(&Project::new(), "component of");
    std::fs::write(&blob, &original).unwrap();

    // The manifest rewritten (still a valid manifest) under its old digest.
    let manifest_file = registry.blob_file(published["manifest"].as_str().unwrap());
    let manifest = std::fs::read_to_string(&manifest_file).unwrap();
    std::fs::write(&manifest_file, manifest.replace("text-tools", "text-toolz")).unwrap();
    refused(&Project::new(), "manifest of");
    std::fs::write(&manifest_file, &manifest).unwrap();

    // Under require-signed: an unsigned artifact, and one by an unknown key.
    let strict = Project::new();
    strict.ok(&["trust", "policy", "require-signed"]);
    refused(&strict, "not in the trust list");
    let unsigned = format!("oci://{}/plugins/unsigned:1.0", registry.host());
    publisher.ok(&["plugin", "publish", paracle_guests::TEXT_TOOLS, &unsigned]);
    let error = strict.fails(&["plugin", "install", &unsigned, "--name", "vowels"]);
    assert!(error.contains("is not signed"), "{error}");
    strict.ok(&["trust", "add", "team", &public]);
    strict.ok(&["plugin", "install", &reference, "--name", "vowels"]);

    // A signature that does not verify is refused under either policy: the
    // signature of one component carried by the manifest of another.
    let (other_key, _) = keygen(&publisher, "other");
    let other = publisher.json(&[
        "plugin",
        "publish",
        paracle_guests::FS_TOOLS,
        &format!("oci://{}/plugins/forged:1.0", registry.host()),
        "--sign-key",
        other_key.to_str().unwrap(),
    ]);
    let mut forged: Value = serde_json::from_slice(
        &std::fs::read(registry.blob_file(other["manifest"].as_str().unwrap())).unwrap(),
    )
    .unwrap();
    let ours: Value = serde_json::from_str(&manifest).unwrap();
    forged["annotations"]["dev.paracle.signature"] =
        ours["annotations"]["dev.paracle.signature"].clone();
    push_raw(
        &registry,
        "PUT",
        "plugins/forged/manifests/2.0",
        &serde_json::to_vec(&forged).unwrap(),
    );
    let relaxed = Project::new();
    let error = relaxed.fails(&[
        "plugin",
        "install",
        &format!("oci://{}/plugins/forged:2.0", registry.host()),
    ]);
    assert!(
        error.contains("signature") && error.contains("is bad"),
        "{error}"
    );
    assert!(!relaxed.path().join(".paracle").exists());

    // A layer that names somewhere else to download it from.
    let mut elsewhere: Value = serde_json::from_str(&manifest).unwrap();
    elsewhere["layers"][0]["urls"] = serde_json::json!(["http://127.0.0.1:9/blob"]);
    push_raw(
        &registry,
        "PUT",
        "plugins/text-tools/manifests/urls",
        &serde_json::to_vec(&elsewhere).unwrap(),
    );
    let error = Project::new().fails(&[
        "plugin",
        "install",
        &format!("oci://{}/plugins/text-tools:urls", registry.host()),
        "--name",
        "vowels",
    ]);
    assert!(error.contains("`urls`"), "{error}");
}

/// A request to the registry with plain HTTP, as any client could send;
/// returns the reply's `Location` or `Docker-Content-Digest` header.
fn push_raw(registry: &OciRegistry, method: &str, path: &str, body: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(registry.host()).unwrap();
    let path = path.trim_start_matches(&format!("http://{}", registry.host()));
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/v2/{path}")
    };
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/vnd.oci.image.manifest.v1+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        registry.host(),
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 20"), "{method} {path}: {reply}");
    reply
        .lines()
        .find_map(|l| {
            l.strip_prefix("Location: ")
                .or(l.strip_prefix("Docker-Content-Digest: "))
        })
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn sha256_of(bytes: &[u8]) -> String {
    let out = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(bytes)?;
            child.wait_with_output()
        })
        .unwrap();
    format!(
        "sha256:{}",
        String::from_utf8(out.stdout)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
    )
}

/// Push a blob by a monolithic upload; returns its descriptor.
fn push_blob(
    registry: &OciRegistry,
    repository: &str,
    media_type: &str,
    bytes: &[u8],
    title: Option<&str>,
) -> Value {
    let digest = sha256_of(bytes);
    let location = push_raw(
        registry,
        "POST",
        &format!("{repository}/blobs/uploads/"),
        b"",
    );
    let separator = if location.contains('?') { '&' } else { '?' };
    push_raw(
        registry,
        "PUT",
        &format!("{location}{separator}digest={digest}"),
        bytes,
    );
    let mut descriptor =
        serde_json::json!({"mediaType": media_type, "digest": digest, "size": bytes.len()});
    if let Some(title) = title {
        descriptor["annotations"] = serde_json::json!({"org.opencontainers.image.title": title});
    }
    descriptor
}

const TEMPLATE_YAML: &str = "name: vowel-team
version: 1.0.0
category: workflow
author: Ada Tester
tags: [text, vowels]
paracle_version: \">=0.1\"
description: One agent that counts vowels with a plugin from the registry.
plugins:
  - name: vowels
    ref: REF
";

const TEAM: &str = "[agents.counter]
provider = \"mock-provider\"
tools = [\"vowels\"]
system_prompt = \"Count the vowels.\"
config = { output_file = \"count.md\" }
";

const WORKFLOW: &str = "description = \"Count\"
task = \"Count the vowels in the brief.\"

[[phases]]
name = \"count\"
agents = [\"counter\"]
artifacts = [\"count.md\"]
";

fn write_template(dir: &Path, yaml: &str) {
    std::fs::create_dir_all(dir.join("agents")).unwrap();
    std::fs::create_dir_all(dir.join("workflows")).unwrap();
    std::fs::write(dir.join("template.yaml"), yaml).unwrap();
    std::fs::write(dir.join("agents/team.toml"), TEAM).unwrap();
    std::fs::write(dir.join("workflows/count.toml"), WORKFLOW).unwrap();
    std::fs::write(dir.join("README.md"), "# Vowel team\n").unwrap();
}

fn use_registry(project: &Project, registry: &OciRegistry) {
    std::fs::create_dir_all(project.home()).unwrap();
    std::fs::write(
        project.home().join("config.toml"),
        format!(
            "[registries.local]\nlocation = \"{}/templates\"\n",
            registry.host()
        ),
    )
    .unwrap();
}

#[test]
fn a_template_goes_from_publish_to_search_to_install_to_a_finished_run() {
    let mut registry = OciRegistry::start();
    let publisher = Project::new();
    use_registry(&publisher, &registry);
    let (key, public) = keygen(&publisher, "team");
    let plugin = publish_text_tools(&publisher, &registry, "1.0", Some(&key));
    let template_dir = publisher.path().join("vowel-team");
    write_template(
        &template_dir,
        &TEMPLATE_YAML.replace("REF", plugin["pinned"].as_str().unwrap()),
    );
    let published = publisher.json(&[
        "template",
        "publish",
        template_dir.to_str().unwrap(),
        "--sign-key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(
        published["reference"],
        format!("oci://{}/templates/vowel-team:1.0.0", registry.host()).as_str()
    );
    let manifest = skopeo_manifest(&registry, "templates/vowel-team:1.0.0");
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.paracle.template.config.v1+json"
    );
    assert_eq!(
        manifest["annotations"]["dev.paracle.template.tags"],
        "text,vowels"
    );
    let titles: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["annotations"]["org.opencontainers.image.title"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(
        titles,
        ["README.md", "agents/team.toml", "workflows/count.toml"]
    );

    let user = Project::new();
    use_registry(&user, &registry);
    user.ok(&["trust", "add", "team", &public]);
    let found = user.json(&["template", "search", "--tag", "vowels"]);
    let results = found["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{found}");
    assert_eq!(results[0]["name"], "vowel-team");
    assert_eq!(results[0]["trusted"], true);
    assert_eq!(results[0]["author"], "Ada Tester");
    // Ranked by name, tags and description; the built-in ones are listed too.
    let by_word = user.json(&["template", "search", "vowels"]);
    assert_eq!(by_word["results"][0]["name"], "vowel-team");
    let workflows = user.json(&["template", "search", "--category", "workflow"]);
    assert!(
        workflows["results"].as_array().unwrap().len() >= 4,
        "{workflows}"
    );

    let installed = user.json(&["template", "install", "vowel-team"]);
    assert_eq!(installed["version"], "1.0.0");
    assert_eq!(installed["plugins"][0]["name"], "vowels");
    assert!(installed["next"][0]
        .as_str()
        .unwrap()
        .contains("run start count"));
    assert!(user
        .path()
        .join(".paracle/templates/vowel-team/README.md")
        .exists());
    let listed = user.json(&["template", "list"]);
    assert_eq!(listed[0]["manifest"], published["manifest"]);

    let run = user.json(&["run", "start", "count"]);
    let id = run["id"].as_str().unwrap().to_string();
    let done = user.json(&["run", "next", "--run", &id]);
    assert_eq!(done["status"], "completed", "{done}");

    // A file the user changed is not overwritten by installing again.
    user.write(
        ".paracle/agents/team.toml",
        &TEAM.replace("Count the vowels.", "Mine."),
    );
    let error = user.fails(&["template", "install", "vowel-team"]);
    assert!(error.contains("--force"), "{error}");
    user.ok(&["template", "install", "vowel-team", "--force"]);

    // Offline: search works from the last listing and says so; a pinned
    // plugin install works from the cache; an unpinned one fails clearly.
    registry.stop();
    let out = user
        .command(&["template", "search", "vowels"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("vowel-team"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("offline"));
    user.ok(&["plugin", "install", plugin["pinned"].as_str().unwrap()]);
    let fresh = Project::new();
    let error = fresh.fails(&[
        "plugin",
        "install",
        &format!("oci://{}/plugins/text-tools:1.0", registry.host()),
    ]);
    assert!(
        error.contains("not pinned") && error.contains("cannot be reached"),
        "{error}"
    );
}

#[test]
fn a_bad_template_is_refused_with_its_file_and_line_and_nothing_written() {
    let registry = OciRegistry::start();
    let publisher = Project::new();
    use_registry(&publisher, &registry);
    let dir = publisher.path().join("t");
    let plain = TEMPLATE_YAML.split("plugins:").next().unwrap().to_string();
    let team = TEAM.replace("tools = [\"vowels\"]", "tools = [\"text-tools\"]");

    write_template(&dir, &format!("{plain}license: MIT\n"));
    std::fs::write(dir.join("agents/team.toml"), &team).unwrap();
    let error = publisher.fails(&["template", "publish", dir.to_str().unwrap()]);
    assert!(
        error.contains("template.yaml: line 8") && error.contains("license"),
        "{error}"
    );

    std::fs::write(dir.join("template.yaml"), &plain).unwrap();
    std::fs::write(
        dir.join("agents/team.toml"),
        format!("{team}temprature = 1\n"),
    )
    .unwrap();
    let error = publisher.fails(&["template", "publish", dir.to_str().unwrap()]);
    assert!(
        error.contains(&format!("{}:6:", dir.join("agents/team.toml").display()))
            && error.contains("temprature"),
        "{error}"
    );
    std::fs::write(dir.join("agents/team.toml"), &team).unwrap();

    std::fs::write(dir.join("template.yaml"), &plain).unwrap();
    publisher.ok(&["template", "publish", dir.to_str().unwrap()]);
    std::fs::write(dir.join("template.yaml"), plain.replace("1.0.0", "2.0.0")).unwrap();
    publisher.ok(&["template", "publish", dir.to_str().unwrap()]);
    // This Paracle does not publish a template for another...
    write_template(&dir, &plain.replace(">=0.1", ">=9"));
    std::fs::write(dir.join("agents/team.toml"), &team).unwrap();
    let error = publisher.fails(&["template", "publish", dir.to_str().unwrap()]);
    assert!(error.contains("needs Paracle >=9"), "{error}");
    // ...nor installs one that another client pushed.
    let repository = "templates/future";
    let meta = serde_json::json!({
        "name": "future", "version": "1.0.0", "category": "workflow", "author": "A",
        "tags": [], "paracle_version": ">=9", "description": "From the future",
    });
    let config = push_blob(
        &registry,
        repository,
        "application/vnd.paracle.template.config.v1+json",
        &serde_json::to_vec(&meta).unwrap(),
        None,
    );
    let layer = push_blob(
        &registry,
        repository,
        "application/vnd.paracle.template.file.v1",
        WORKFLOW.as_bytes(),
        Some("workflows/count.toml"),
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": [layer],
    });
    push_raw(
        &registry,
        "PUT",
        &format!("{repository}/manifests/1.0.0"),
        &serde_json::to_vec(&manifest).unwrap(),
    );

    let user = Project::new();
    use_registry(&user, &registry);
    let error = user.fails(&[
        "template",
        "install",
        &format!("oci://{}/{repository}:1.0.0", registry.host()),
    ]);
    assert!(error.contains("needs Paracle >=9"), "{error}");
    let error = user.fails(&["template", "install", "vowel-team@9.9.9"]);
    assert!(error.contains("no version 9.9.9"), "{error}");
    assert!(!user.path().join(".paracle").exists(), "nothing written");
    let installed = user.json(&["template", "install", "vowel-team"]);
    assert_eq!(installed["version"], "2.0.0", "the newest version");

    // A template from one registry that names a plugin on another registry
    // on this machine: the host is not sent there on its say-so.
    let other = OciRegistry::start();
    let plugin = publish_text_tools(&publisher, &other, "1.0", None);
    let elsewhere = publisher.path().join("elsewhere");
    write_template(
        &elsewhere,
        &TEMPLATE_YAML
            .replace("vowel-team", "elsewhere")
            .replace("REF", plugin["pinned"].as_str().unwrap()),
    );
    publisher.ok(&["template", "publish", elsewhere.to_str().unwrap()]);
    let fresh = Project::new();
    use_registry(&fresh, &registry);
    let error = fresh.fails(&["template", "install", "elsewhere"]);
    assert!(error.contains("only when it comes from it"), "{error}");
    assert!(!fresh.path().join(".paracle").exists(), "nothing written");
}

/// bcrypt of `s3cret-pass`, as htpasswd files hold it.
const PASSWORD_HASH: &str = "$2b$05$2QPxNNfzLpabWuWfabHP.el8qAkyu.vwST6q1N5ISbGebQuJERxcW";

#[test]
fn registry_credentials_come_from_stdin_or_the_docker_config_and_stay_out_of_the_project() {
    let registry = OciRegistry::start_with_login("tester", PASSWORD_HASH);
    let reference = format!("oci://{}/plugins/text-tools:1.0", registry.host());
    let project = Project::new();
    let error = project.fails(&["plugin", "publish", paracle_guests::TEXT_TOOLS, &reference]);
    assert!(error.contains("not authorized"), "{error}");

    let mut publish = project.command(&[
        "plugin",
        "publish",
        paracle_guests::TEXT_TOOLS,
        &reference,
        "--username",
        "tester",
        "--password-stdin",
    ]);
    let mut child = publish
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"s3cret-pass\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let error = project.fails(&["plugin", "install", &reference, "--name", "vowels"]);
    assert!(error.contains("not authorized"), "{error}");
    let docker = tempfile::tempdir().unwrap();
    std::fs::write(
        docker.path().join("config.json"),
        format!(
            r#"{{"auths": {{"{}": {{"auth": "dGVzdGVyOnMzY3JldC1wYXNz"}}}}}}"#,
            registry.host()
        ),
    )
    .unwrap();
    let out = project
        .command(&[
            "plugin", "install", &reference, "--name", "vowels", "--json",
        ])
        .env("DOCKER_CONFIG", docker.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(count_vowels(&project, "text-tools")["vowels"], 2);

    // Nothing in the project holds the password, in clear or encoded.
    for entry in walk(project.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("s3cret") && !text.contains("dGVzdGVyOnMzY3JldC1wYXNz"),
            "{} holds the credentials",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn a_registry_off_loopback_is_reached_over_https_unless_listed_as_insecure() {
    let registry = OciRegistry::start_off_loopback();
    let reference = format!("oci://{}/plugins/text-tools:1.0", registry.host());
    let project = Project::new();
    // The registry speaks plain HTTP: a client that insists on HTTPS fails.
    let error = project.fails(&["plugin", "publish", paracle_guests::TEXT_TOOLS, &reference]);
    assert!(
        error.contains(&format!("https://{}", registry.host())),
        "{error}"
    );
    std::fs::create_dir_all(project.home()).unwrap();
    std::fs::write(
        project.home().join("config.toml"),
        format!("insecure_registries = [\"{}\"]\n", registry.host()),
    )
    .unwrap();
    project.ok(&["plugin", "publish", paracle_guests::TEXT_TOOLS, &reference]);
    project.ok(&["plugin", "install", &reference, "--name", "vowels"]);
    // A project cannot make its user's host talk plain HTTP: the setting is
    // per user, and the project's files have no such key.
    project.write(
        "paracle.toml",
        &format!("insecure_registries = [\"{}\"]\n", registry.host()),
    );
    let error = project.fails(&["plugin", "list"]);
    assert!(error.contains("insecure_registries"), "{error}");
}

#[test]
fn a_template_carries_its_own_signed_plugin() {
    let registry = OciRegistry::start();
    let publisher = Project::new();
    use_registry(&publisher, &registry);
    let (key, public) = keygen(&publisher, "team");
    let dir = publisher.path().join("embedded");
    let yaml = TEMPLATE_YAML.replace("ref: REF", "file: plugins/vowels.wasm");
    write_template(&dir, &yaml);
    std::fs::create_dir_all(dir.join("plugins")).unwrap();
    std::fs::copy(paracle_guests::TEXT_TOOLS, dir.join("plugins/vowels.wasm")).unwrap();
    // A component the metadata does not list is refused.
    std::fs::copy(paracle_guests::TEXT_TOOLS, dir.join("plugins/stray.wasm")).unwrap();
    let error = publisher.fails(&["template", "publish", dir.to_str().unwrap()]);
    assert!(
        error.contains("stray.wasm") && error.contains("not listed"),
        "{error}"
    );
    std::fs::remove_file(dir.join("plugins/stray.wasm")).unwrap();
    publisher.ok(&[
        "template",
        "publish",
        dir.to_str().unwrap(),
        "--sign-key",
        key.to_str().unwrap(),
    ]);

    let user = Project::new();
    use_registry(&user, &registry);
    // A plugin of the project's own already has the name: nothing is written.
    user.ok(&[
        "plugin",
        "load",
        paracle_guests::TEXT_TOOLS,
        "--name",
        "vowels",
    ]);
    let lock = std::fs::read_to_string(user.path().join(".paracle/registry.toml")).unwrap();
    let error = user.fails(&["template", "install", "vowel-team"]);
    assert!(error.contains("would take the name"), "{error}");
    assert_eq!(
        std::fs::read_to_string(user.path().join(".paracle/registry.toml")).unwrap(),
        lock
    );
    assert!(!user.path().join(".paracle/agents").exists());
    user.ok(&["plugin", "unload", "vowels"]);
    user.ok(&["trust", "add", "team", &public]);
    user.ok(&["trust", "policy", "require-signed"]);
    let installed = user.json(&["template", "install", "vowel-team"]);
    assert_eq!(installed["signature"]["status"], "trusted");
    let shown = user.json(&["plugin", "show", "vowels"]);
    assert_eq!(shown["signature"]["status"], "trusted", "{shown}");
    let lock = std::fs::read_to_string(user.path().join(".paracle/registry.toml")).unwrap();
    assert!(
        lock.contains("templates/vowel-team#plugins/vowels.wasm"),
        "{lock}"
    );
    let id = user.json(&["run", "start", "count"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        user.json(&["run", "next", "--run", &id])["status"],
        "completed"
    );
}
