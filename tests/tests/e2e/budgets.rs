//! Spend control: budgets enforced before every model call, reserve then
//! settle, periods on an injected clock, and `UsageService.GetUsage`.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use moai_proto::v1::{self, usage_service_client::UsageServiceClient};
use moai_server::budget::{BudgetSettings, Clock, Limits};
use moai_server::config::Settings;
use moai_server::llm::ModelPrice;
use moai_tests::events::collect;
use moai_tests::fake_llm::Script;
use moai_tests::server::{Backend, GATEWAY_KEY, TestOptions, TestServer};

use crate::on_both_backends;
use crate::support::{LIMIT, completed, discussion_id, failed, project};

/// A model whose call is estimated at $1.00 (1000 completion tokens at
/// $1000 per million) and reported by the provider to cost exactly that.
const PAID: &str = "x/paid";
/// Another model at the same price.
const OTHER: &str = "x/other";

// 2026-12-01T10:27:00Z
const START: i64 = 1_796_120_820_000;
const DAY_MS: i64 = 86_400_000;

fn priced(budgets: BudgetSettings, admins: &[&str]) -> Box<dyn FnOnce(&mut Settings) + Send> {
    let admins: Vec<String> = admins.iter().map(|a| (*a).to_owned()).collect();
    Box::new(move |s: &mut Settings| {
        s.budgets = budgets;
        s.admin_principals = admins;
        for model in [PAID, OTHER] {
            s.llm.prices.insert(
                model.into(),
                ModelPrice {
                    prompt_per_million: 0.0,
                    completion_per_million: 1000.0,
                },
            );
        }
    })
}

async fn spawn(backend: Backend, budgets: BudgetSettings, admins: &[&str]) -> TestServer {
    let ts = TestServer::spawn_with(TestOptions {
        backend,
        settings: priced(budgets, admins),
        ..Default::default()
    })
    .await;
    for model in [PAID, OTHER] {
        ts.llm
            .script(model, Script::new().text("Paid answer.").usage(10, 5, 1.0));
    }
    ts
}

fn daily(limit: f64) -> BudgetSettings {
    BudgetSettings {
        daily_usd: Some(limit),
        ..Default::default()
    }
}

/// OpenDiscussion as whoever `channel` authenticates: the events, or the refusal.
async fn open_as(
    ts: &TestServer,
    key: &str,
    user: Option<&str>,
    project_id: &str,
) -> Result<Vec<moai_tests::events::Timed>, tonic::Status> {
    let mut client = v1::discussion_service_client::DiscussionServiceClient::new(
        ts.auth_channel(key, user).await,
    );
    let stream = client
        .open_discussion(v1::OpenDiscussionRequest {
            project_id: project_id.into(),
            question: "What does it cost?".into(),
        })
        .await?
        .into_inner();
    Ok(collect(stream, LIMIT).await)
}

async fn project_as(ts: &TestServer, key: &str, user: Option<&str>, models: &[&str]) -> String {
    let mut client =
        v1::project_service_client::ProjectServiceClient::new(ts.auth_channel(key, user).await);
    client
        .create_project(v1::CreateProjectRequest {
            name: "budget".into(),
            models: models.iter().map(|m| (*m).to_owned()).collect(),
            ..Default::default()
        })
        .await
        .expect("create project")
        .into_inner()
        .project
        .expect("project")
        .id
}

async fn usage_of(
    ts: &TestServer,
    key: &str,
    principal: &str,
) -> Result<v1::GetUsageResponse, tonic::Status> {
    let mut client = UsageServiceClient::new(ts.auth_channel(key, None).await);
    Ok(client
        .get_usage(v1::GetUsageRequest {
            principal: principal.into(),
            all: false,
        })
        .await?
        .into_inner())
}

async fn spent_today(ts: &TestServer) -> f64 {
    let mut client = ts.usage().await;
    let r = client
        .get_usage(v1::GetUsageRequest::default())
        .await
        .expect("usage")
        .into_inner();
    r.usages[0].spent_today_usd
}

async fn a_daily_budget_that_covers_two_calls_refuses_the_third(backend: Backend) {
    let ts = spawn(backend, daily(2.5), &[]).await;
    let p = project(&ts, "two calls", &[PAID]).await;
    for _ in 0..2 {
        let events = open_as(&ts, &ts.key, None, &p.id)
            .await
            .expect("within budget");
        assert_eq!(completed(&events).len(), 1);
    }
    let refused = open_as(&ts, &ts.key, None, &p.id)
        .await
        .expect_err("the third call is over budget");
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert_eq!(
        refused.message(),
        "daily budget of $2.50 reached ($2.00 spent); resets at 00:00 UTC"
    );
    let spent = spent_today(&ts).await;
    assert!(
        (2.0..=2.5 + 1.0).contains(&spent),
        "spend {spent} stays within one call of the budget"
    );
    assert_eq!(ts.llm.requests_for(PAID).len(), 2, "no third call was made");
}
on_both_backends!(
    two_calls_then_refused,
    a_daily_budget_that_covers_two_calls_refuses_the_third
);

async fn mid_run_a_call_the_budget_cannot_cover_fails_alone(backend: Backend) {
    let ts = spawn(backend, daily(1.5), &[]).await;
    // Two models at once against $1.50: one call is reserved, the other is
    // not made and fails with the budget's reason while the first finishes.
    let p = project(&ts, "parallel", &[PAID, OTHER]).await;
    let events = open_as(&ts, &ts.key, None, &p.id).await.expect("starts");
    assert_eq!(completed(&events).len(), 1, "one answer within the budget");
    let failures = failed(&events);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0]
            .error
            .starts_with("daily budget of $1.50 reached"),
        "{:?}",
        failures[0]
    );
    assert_eq!(
        failures[0].reason,
        v1::FailureReason::BudgetExceeded as i32,
        "{:?}",
        failures[0]
    );
    assert_eq!(ts.llm.request_count(), 1, "the refused call was not made");

    // A mention counts like any other call: with $0.50 left it cannot start.
    let refusal = ts
        .discussions()
        .await
        .mention(v1::MentionRequest {
            discussion_id: discussion_id(&events),
            model: PAID.into(),
            content: "Once more?".into(),
            ..Default::default()
        })
        .await
        .expect_err("0.50 left cannot start a $1.00 call");
    assert_eq!(refusal.code(), tonic::Code::ResourceExhausted);
    assert!(refusal.message().contains("($1.00 spent)"), "{refusal:?}");
}
on_both_backends!(
    mid_run_refusal,
    mid_run_a_call_the_budget_cannot_cover_fails_alone
);

async fn twenty_simultaneous_runs_against_a_budget_for_five_overshoot_by_nothing(backend: Backend) {
    let ts = spawn(backend, daily(5.0), &[]).await;
    ts.llm.script(
        PAID,
        Script::new()
            .text("Slow paid answer.")
            .token_pace(std::time::Duration::from_millis(20))
            .usage(10, 5, 1.0),
    );
    let p = project(&ts, "twenty", &[PAID]).await;
    let runs = (0..20).map(|_| open_as(&ts, &ts.key, None, &p.id));
    let outcomes = futures::future::join_all(runs).await;
    let mut answered = 0;
    for outcome in &outcomes {
        match outcome {
            Ok(events) => answered += completed(events).len(),
            Err(status) => assert_eq!(status.code(), tonic::Code::ResourceExhausted),
        }
    }
    // Every estimate is exact, so what is in flight can never pass the budget.
    assert_eq!(answered, 5, "five calls fit in the budget");
    assert_eq!(ts.llm.requests_for(PAID).len(), 5);
    let spent = spent_today(&ts).await;
    assert!((spent - 5.0).abs() < 1e-9, "spent {spent}");
}
on_both_backends!(
    twenty_runs,
    twenty_simultaneous_runs_against_a_budget_for_five_overshoot_by_nothing
);

async fn the_day_rolls_over_and_the_budget_is_back(backend: Backend) {
    let now = Arc::new(AtomicI64::new(START));
    let budgets = BudgetSettings {
        clock: Clock::manual(now.clone()),
        ..daily(1.0)
    };
    let ts = spawn(backend, budgets, &[]).await;
    let p = project(&ts, "days", &[PAID]).await;
    open_as(&ts, &ts.key, None, &p.id)
        .await
        .expect("today's first call");
    let refused = open_as(&ts, &ts.key, None, &p.id)
        .await
        .expect_err("today's budget is spent");
    assert!(refused.message().contains("resets at 00:00 UTC"));
    let before = usage_of(&ts, &ts.key, "").await.expect("usage");
    assert_eq!(
        before.usages[0].resets_at.as_ref().map(|t| t.seconds),
        Some((START / DAY_MS + 1) * DAY_MS / 1000)
    );

    now.store(START + DAY_MS, Ordering::SeqCst);
    let events = open_as(&ts, &ts.key, None, &p.id)
        .await
        .expect("a new day, a new budget");
    assert_eq!(completed(&events).len(), 1);
    let after = usage_of(&ts, &ts.key, "").await.expect("usage");
    assert!((after.usages[0].spent_today_usd - 1.0).abs() < 1e-9);
    assert!((after.usages[0].spent_month_usd - 2.0).abs() < 1e-9);
}
on_both_backends!(day_rollover, the_day_rolls_over_and_the_budget_is_back);

async fn own_and_namespace_limits_apply_to_the_right_callers_only(backend: Backend) {
    let mut budgets = BudgetSettings::default();
    budgets.principals.insert(
        "alice".into(),
        Limits {
            daily_usd: Some(1.0),
            ..Default::default()
        },
    );
    budgets.namespaces.insert(
        "telegram".into(),
        Limits {
            daily_usd: Some(0.5),
            ..Default::default()
        },
    );
    let ts = spawn(backend, budgets, &[]).await;
    let alice = project_as(&ts, &ts.key, None, &[PAID]).await;
    let bob = project_as(&ts, &ts.key_b, None, &[PAID]).await;
    let tg = project_as(&ts, GATEWAY_KEY, Some("telegram:42"), &[PAID]).await;

    open_as(&ts, &ts.key, None, &alice)
        .await
        .expect("alice's first call");
    let refused = open_as(&ts, &ts.key, None, &alice)
        .await
        .expect_err("alice's own limit");
    assert!(
        refused
            .message()
            .starts_with("daily budget of $1.00 reached")
    );
    let refused = open_as(&ts, GATEWAY_KEY, Some("telegram:42"), &tg)
        .await
        .expect_err("the telegram namespace's limit");
    assert!(
        refused
            .message()
            .starts_with("daily budget of $0.50 reached ($0.00 spent)"),
        "{refused:?}"
    );
    for _ in 0..3 {
        open_as(&ts, &ts.key_b, None, &bob)
            .await
            .expect("bob has no limit");
    }
}
on_both_backends!(
    own_and_namespace_limits,
    own_and_namespace_limits_apply_to_the_right_callers_only
);

async fn max_active_runs_refuses_a_run_beyond_it(backend: Backend) {
    let budgets = BudgetSettings {
        max_active_runs: Some(1),
        ..Default::default()
    };
    let ts = spawn(backend, budgets, &[]).await;
    ts.llm.script(
        PAID,
        Script::new()
            .text("a long slow answer that takes its time to arrive")
            .token_pace(std::time::Duration::from_millis(300)),
    );
    let p = project(&ts, "runs", &[PAID]).await;
    let mut first = ts
        .discussions()
        .await
        .open_discussion(v1::OpenDiscussionRequest {
            project_id: p.id.clone(),
            question: "Slowly?".into(),
        })
        .await
        .expect("the first run")
        .into_inner();
    let started = crate::support::next_event(&mut first).await;
    let refused = open_as(&ts, &ts.key, None, &p.id)
        .await
        .expect_err("a second run at once");
    assert_eq!(refused.code(), tonic::Code::ResourceExhausted);
    assert!(
        refused.message().contains("max_active_runs of 1"),
        "{refused:?}"
    );
    // Another principal is not counted against alice.
    let bob = project_as(&ts, &ts.key_b, None, &[OTHER]).await;
    open_as(&ts, &ts.key_b, None, &bob)
        .await
        .expect("bob's own run");
    ts.discussions()
        .await
        .stop_discussion(v1::StopDiscussionRequest {
            discussion_id: started.discussion_id.clone(),
        })
        .await
        .expect("stop");
    crate::support::wait_idle(&ts, &started.discussion_id).await;
    ts.llm
        .script(PAID, Script::new().text("Quick.").usage(1, 1, 0.01));
    open_as(&ts, &ts.key, None, &p.id)
        .await
        .expect("once the first run ended, a new one starts");
}
on_both_backends!(max_active_runs, max_active_runs_refuses_a_run_beyond_it);

async fn get_usage_for_self_and_for_others_only_by_an_admin(backend: Backend) {
    let budgets = BudgetSettings {
        daily_usd: Some(10.0),
        ..Default::default()
    };
    let ts = spawn(backend, budgets, &["bob"]).await;
    let p = project(&ts, "usage", &[PAID, OTHER]).await;
    open_as(&ts, &ts.key, None, &p.id).await.expect("spend");

    let own = usage_of(&ts, &ts.key, "").await.expect("own usage");
    let u = &own.usages[0];
    assert_eq!(u.principal, "alice");
    assert!((u.spent_today_usd - 2.0).abs() < 1e-9);
    assert!((u.spent_month_usd - 2.0).abs() < 1e-9);
    assert_eq!(u.daily_budget_usd, Some(10.0));
    assert_eq!(u.monthly_budget_usd, None, "absent when unlimited");
    let mut models: Vec<_> = u
        .by_model
        .iter()
        .map(|m| (m.model.as_str(), m.calls))
        .collect();
    models.sort();
    assert_eq!(models, [(OTHER, 1), (PAID, 1)]);

    let denied = usage_of(&ts, &ts.key, "bob")
        .await
        .expect_err("not an admin");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    let by_admin = usage_of(&ts, &ts.key_b, "alice")
        .await
        .expect("an admin reads alice");
    assert!((by_admin.usages[0].spent_today_usd - 2.0).abs() < 1e-9);
    let mut client = UsageServiceClient::new(ts.auth_channel(&ts.key_b, None).await);
    let all = client
        .get_usage(v1::GetUsageRequest {
            principal: String::new(),
            all: true,
        })
        .await
        .expect("an admin lists all")
        .into_inner();
    let names: Vec<_> = all.usages.iter().map(|u| u.principal.as_str()).collect();
    assert_eq!(names, ["alice", "bob"]);
}
on_both_backends!(
    get_usage,
    get_usage_for_self_and_for_others_only_by_an_admin
);

#[tokio::test]
async fn a_namespace_no_gateway_produces_stops_the_server_naming_the_key() {
    let mut budgets = BudgetSettings::default();
    budgets.namespaces.insert("slack".into(), Limits::default());
    let data = tempfile::tempdir().expect("dir");
    let llm = moai_tests::fake_llm::FakeLlm::start().await;
    let mut settings = moai_tests::server::test_settings(
        data.path(),
        None,
        &llm,
        moai_tests::server::Limits::default(),
        Box::new(|_| {}),
        true,
    );
    settings.budgets = budgets;
    let err = moai_server::Application::build(settings)
        .await
        .err()
        .expect("refused at start-up");
    assert!(
        err.to_string().contains("budgets.namespaces.slack"),
        "{err}"
    );
}
