//! ProjectService: round trips, pagination, validation, isolation, auth and
//! durability, on SQLite and (when MOAI_TEST_POSTGRES_URL is set) PostgreSQL.

use moai_proto::v1::{self, ModelList};
use moai_tests::server::{Backend, TestOptions, TestServer};

use crate::on_both_backends;
use tonic::Code;

fn create(name: &str, models: &[&str]) -> v1::CreateProjectRequest {
    v1::CreateProjectRequest {
        name: name.into(),
        models: models.iter().map(|m| (*m).to_owned()).collect(),
        system_prompt: String::new(),
        summarizer_model: String::new(),
        ..Default::default()
    }
}

async fn crud_round_trip(backend: Backend) {
    let ts = TestServer::spawn_on(backend).await;
    let mut projects = ts.projects().await;

    let created = projects
        .create_project(v1::CreateProjectRequest {
            system_prompt: "Be concrete.".into(),
            ..create(
                "  Rust async  ",
                &["openai/gpt-4o", "anthropic/claude-sonnet-4"],
            )
        })
        .await
        .expect("create")
        .into_inner()
        .project
        .expect("project");
    assert_eq!(created.name, "Rust async");
    assert_eq!(
        created.models,
        ["openai/gpt-4o", "anthropic/claude-sonnet-4"]
    );
    assert_eq!(created.system_prompt, "Be concrete.");
    assert!(created.create_time.is_some());

    let got = projects
        .get_project(v1::GetProjectRequest {
            project_id: created.id.clone(),
        })
        .await
        .expect("get")
        .into_inner()
        .project
        .expect("project");
    assert_eq!(got, created);

    let renamed = projects
        .update_project(v1::UpdateProjectRequest {
            project_id: created.id.clone(),
            name: Some("Async Rust".into()),
            add_models: vec!["google/gemini-2.5-pro".into()],
            remove_models: vec!["openai/gpt-4o".into()],
            system_prompt: Some(String::new()),
            ..Default::default()
        })
        .await
        .expect("update")
        .into_inner()
        .project
        .expect("project");
    assert_eq!(renamed.name, "Async Rust");
    assert_eq!(
        renamed.models,
        ["anthropic/claude-sonnet-4", "google/gemini-2.5-pro"]
    );
    assert_eq!(renamed.system_prompt, "");

    let replaced = projects
        .update_project(v1::UpdateProjectRequest {
            project_id: created.id.clone(),
            models: Some(ModelList {
                models: vec!["x/one".into(), "y/two".into()],
            }),
            ..Default::default()
        })
        .await
        .expect("replace models")
        .into_inner()
        .project
        .expect("project");
    assert_eq!(replaced.models, ["x/one", "y/two"]);
    assert_eq!(
        replaced.name, "Async Rust",
        "unset fields stay as they were"
    );

    projects
        .delete_project(v1::DeleteProjectRequest {
            project_id: created.id.clone(),
        })
        .await
        .expect("delete");
    let gone = projects
        .get_project(v1::GetProjectRequest {
            project_id: created.id.clone(),
        })
        .await
        .expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);
    let again = projects
        .delete_project(v1::DeleteProjectRequest {
            project_id: created.id,
        })
        .await
        .expect_err("deleted twice");
    assert_eq!(again.code(), Code::NotFound);
}
on_both_backends!(crud, crud_round_trip);

async fn pagination(backend: Backend) {
    let ts = TestServer::spawn_on(backend).await;
    let mut projects = ts.projects().await;
    for i in 0..7 {
        projects
            .create_project(create(&format!("project {i}"), &["a/b"]))
            .await
            .expect("create");
    }
    let mut names = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let page = projects
            .list_projects(v1::ListProjectsRequest {
                page_size: 3,
                page_token: token.clone(),
            })
            .await
            .expect("list")
            .into_inner();
        pages += 1;
        assert!(page.projects.len() <= 3);
        names.extend(page.projects.into_iter().map(|p| p.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..7).map(|i| format!("project {i}")).collect();
    assert_eq!(names, expected, "every project once, oldest first");

    let bad = projects
        .list_projects(v1::ListProjectsRequest {
            page_size: 3,
            page_token: "garbage".into(),
        })
        .await
        .expect_err("bad token");
    assert_eq!(bad.code(), Code::InvalidArgument);
}
on_both_backends!(paging, pagination);

async fn durability(backend: Backend) {
    let ts = TestServer::spawn_on(backend).await;
    let id = ts
        .projects()
        .await
        .create_project(create("kept", &["a/one", "b/two"]))
        .await
        .expect("create")
        .into_inner()
        .project
        .expect("project")
        .id;
    let reuse = ts.stop().await;

    let ts = TestServer::spawn_with(TestOptions {
        reuse: Some(reuse),
        ..Default::default()
    })
    .await;
    let got = ts
        .projects()
        .await
        .get_project(v1::GetProjectRequest { project_id: id })
        .await
        .expect("still there after restart")
        .into_inner()
        .project
        .expect("project");
    assert_eq!(got.name, "kept");
    assert_eq!(got.models, ["a/one", "b/two"]);
}
on_both_backends!(restart, durability);

#[tokio::test]
async fn validation_errors_are_invalid_argument() {
    let ts = TestServer::spawn().await;
    let mut projects = ts.projects().await;
    let too_many: Vec<String> = (0..17).map(|i| format!("v/m{i}")).collect();
    let cases = vec![
        ("empty name", create("   ", &["a/b"])),
        ("long name", create(&"n".repeat(101), &["a/b"])),
        ("bad model id", create("p", &["gpt 4"])),
        ("model without vendor", create("p", &["gpt-4o"])),
        ("duplicate model", create("p", &["a/b", "a/b"])),
        (
            "too many models",
            v1::CreateProjectRequest {
                models: too_many,
                ..create("p", &[])
            },
        ),
        (
            "huge system prompt",
            v1::CreateProjectRequest {
                system_prompt: "x".repeat(20_000),
                ..create("p", &["a/b"])
            },
        ),
    ];
    for (what, req) in cases {
        let err = projects.create_project(req).await.expect_err(what);
        assert_eq!(err.code(), Code::InvalidArgument, "{what}: {err:?}");
        assert!(!err.message().is_empty(), "{what} says why");
    }
    projects
        .create_project(create("taken", &["a/b"]))
        .await
        .expect("first");
    let dup = projects
        .create_project(create("taken", &["a/b"]))
        .await
        .expect_err("dup name");
    assert_eq!(dup.code(), Code::AlreadyExists);

    let p = projects
        .create_project(create("edit me", &["a/b"]))
        .await
        .expect("create")
        .into_inner()
        .project
        .expect("project");
    let err = projects
        .update_project(v1::UpdateProjectRequest {
            project_id: p.id.clone(),
            remove_models: vec!["not/there".into()],
            ..Default::default()
        })
        .await
        .expect_err("removing an absent model");
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = projects
        .update_project(v1::UpdateProjectRequest {
            project_id: p.id,
            add_models: vec!["a/b".into()],
            ..Default::default()
        })
        .await
        .expect_err("adding a present model");
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn another_principal_gets_not_found_for_every_rpc() {
    let ts = TestServer::spawn().await;
    let id = ts
        .projects()
        .await
        .create_project(create("alice's", &["a/b"]))
        .await
        .expect("create")
        .into_inner()
        .project
        .expect("project")
        .id;
    let mut bob = moai_proto::v1::project_service_client::ProjectServiceClient::new(
        ts.auth_channel(&ts.key_b, None).await,
    );
    let get = bob
        .get_project(v1::GetProjectRequest {
            project_id: id.clone(),
        })
        .await;
    assert_eq!(get.expect_err("bob get").code(), Code::NotFound);
    let upd = bob
        .update_project(v1::UpdateProjectRequest {
            project_id: id.clone(),
            name: Some("mine".into()),
            ..Default::default()
        })
        .await;
    assert_eq!(upd.expect_err("bob update").code(), Code::NotFound);
    let del = bob
        .delete_project(v1::DeleteProjectRequest {
            project_id: id.clone(),
        })
        .await;
    assert_eq!(del.expect_err("bob delete").code(), Code::NotFound);
    let listed = bob
        .list_projects(v1::ListProjectsRequest::default())
        .await
        .expect("bob lists")
        .into_inner();
    assert!(
        listed.projects.is_empty(),
        "bob sees none of alice's projects"
    );
    let mut bob_d = moai_proto::v1::discussion_service_client::DiscussionServiceClient::new(
        ts.auth_channel(&ts.key_b, None).await,
    );
    let open = bob_d
        .open_discussion(v1::OpenDiscussionRequest {
            project_id: id.clone(),
            question: "hi?".into(),
        })
        .await;
    assert_eq!(open.expect_err("bob open").code(), Code::NotFound);
    // Alice still has it, unchanged.
    let still = ts
        .projects()
        .await
        .get_project(v1::GetProjectRequest { project_id: id })
        .await
        .expect("alice get")
        .into_inner()
        .project
        .expect("project");
    assert_eq!(still.name, "alice's");
}

#[tokio::test]
async fn missing_and_wrong_keys_are_unauthenticated() {
    let ts = TestServer::spawn().await;
    let mut anonymous =
        moai_proto::v1::project_service_client::ProjectServiceClient::new(ts.channel().await);
    let err = anonymous
        .list_projects(v1::ListProjectsRequest::default())
        .await
        .expect_err("no key");
    assert_eq!(err.code(), Code::Unauthenticated);
    let mut wrong = moai_proto::v1::project_service_client::ProjectServiceClient::new(
        ts.auth_channel("not-a-real-key", None).await,
    );
    let err = wrong
        .list_projects(v1::ListProjectsRequest::default())
        .await
        .expect_err("wrong key");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(
        !err.message().contains("not-a-real-key"),
        "the key is never echoed"
    );
}

#[tokio::test]
async fn gateway_acts_only_for_the_user_it_names() {
    let ts = TestServer::spawn().await;
    let client = |user: Option<&'static str>, key: String| {
        let ts = &ts;
        async move {
            moai_proto::v1::project_service_client::ProjectServiceClient::new(
                ts.auth_channel(&key, user).await,
            )
        }
    };
    let mut user1 = client(Some("telegram:1001"), ts.gateway_key.clone()).await;
    let mut user2 = client(Some("telegram:1002"), ts.gateway_key.clone()).await;
    let p = user1
        .create_project(create("tg project", &["a/b"]))
        .await
        .expect("gateway creates for user 1")
        .into_inner()
        .project
        .expect("project");
    let err = user2
        .get_project(v1::GetProjectRequest {
            project_id: p.id.clone(),
        })
        .await
        .expect_err("user 2 cannot see it");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        user2
            .list_projects(v1::ListProjectsRequest::default())
            .await
            .expect("list")
            .into_inner()
            .projects
            .len(),
        0
    );
    let mut no_user = client(None, ts.gateway_key.clone()).await;
    let err = no_user
        .list_projects(v1::ListProjectsRequest::default())
        .await
        .expect_err("gateway without a user");
    assert_eq!(err.code(), Code::Unauthenticated);

    // A user key cannot borrow someone else's identity with the header.
    let mut alice_as_tg = client(Some("telegram:1001"), ts.key.clone()).await;
    let err = alice_as_tg
        .get_project(v1::GetProjectRequest { project_id: p.id })
        .await
        .expect_err("user key with x-moai-user");
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn local_key_is_generated_when_no_keys_are_configured() {
    let ts = TestServer::spawn_with(TestOptions {
        configured_keys: false,
        ..Default::default()
    })
    .await;
    let path = ts.data_dir.path().join("local.key");
    let key = std::fs::read_to_string(&path).expect("local key written");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "readable only by its owner");
    }
    let mut client = moai_proto::v1::project_service_client::ProjectServiceClient::new(
        ts.auth_channel(key.trim(), None).await,
    );
    client
        .create_project(create("local", &["a/b"]))
        .await
        .expect("the local key works");
    let mut alice = ts.projects().await;
    let err = alice
        .list_projects(v1::ListProjectsRequest::default())
        .await
        .expect_err("unconfigured key");
    assert_eq!(err.code(), Code::Unauthenticated);
}
