use super::error::NotAdmin;
use moai_proto::v1::{self, usage_service_server::UsageService};
use tonic::{Request, Response, Status};

use super::principal;
use crate::budget::{Budget, UsageReport};

/// `moai.v1.UsageService`.
pub struct UsageApi {
    budget: Budget,
}

impl UsageApi {
    pub fn new(budget: Budget) -> Self {
        Self { budget }
    }
}

#[tonic::async_trait]
impl UsageService for UsageApi {
    #[tracing::instrument(skip_all)]
    async fn get_usage(
        &self,
        req: Request<v1::GetUsageRequest>,
    ) -> Result<Response<v1::GetUsageResponse>, Status> {
        let caller = principal(&req)?;
        let req = req.into_inner();
        let asks_for_others =
            req.all || (!req.principal.is_empty() && req.principal != caller.as_str());
        if asks_for_others && !self.budget.is_admin(caller.as_str()) {
            return Err(NotAdmin.into());
        }
        let names = if req.all {
            let mut names = self.budget.spenders().await?;
            if !names.iter().any(|n| n == caller.as_str()) {
                names.push(caller.as_str().to_owned());
                names.sort();
            }
            names
        } else if req.principal.is_empty() {
            vec![caller.as_str().to_owned()]
        } else {
            vec![req.principal]
        };
        let mut usages = Vec::with_capacity(names.len());
        for name in names {
            usages.push(usage(self.budget.usage(&name).await?));
        }
        Ok(Response::new(v1::GetUsageResponse { usages }))
    }
}

fn usage(r: UsageReport) -> v1::PrincipalUsage {
    v1::PrincipalUsage {
        principal: r.principal,
        spent_today_usd: r.spent_today_usd,
        spent_month_usd: r.spent_month_usd,
        daily_budget_usd: r.limits.daily_usd,
        monthly_budget_usd: r.limits.monthly_usd,
        resets_at: Some(crate::wire::timestamp(r.resets_at)),
        by_model: r
            .by_model
            .into_iter()
            .map(|m| v1::ModelUsage {
                model: m.model,
                cost_usd: m.cost_usd,
                calls: m.calls,
            })
            .collect(),
        discussion_budget_usd: r.limits.discussion_usd,
        max_active_runs: r.limits.max_active_runs,
    }
}
