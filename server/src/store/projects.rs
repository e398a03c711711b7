//! Projects and their ordered model lists.

use std::collections::BTreeMap;

use super::to_i64;
use sqlx::AssertSqlSafe;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::statements::{ProjectUpdate, conflict};
use super::writer::Statement;
use super::{NewProject, PageCursor, ProjectRecord, Store, StoreError, now_ms};

const COLUMNS: &str = "id, owner, name, system_prompt, summarizer_model, create_time, update_time";

impl Store {
    /// Creates a project owned by `owner`; a name already used by that owner is a conflict.
    #[tracing::instrument(level = "debug", skip(self, new))]
    pub async fn create_project(
        &self,
        owner: &str,
        new: &NewProject,
    ) -> Result<ProjectRecord, StoreError> {
        let now = now_ms();
        let record = ProjectRecord {
            id: uuid::Uuid::now_v7().to_string(),
            owner: owner.to_owned(),
            name: new.name.as_str().to_owned(),
            models: new.models.to_strings(),
            system_prompt: new.system_prompt.clone(),
            summarizer_model: new.summarizer_model.clone(),
            fallbacks: new.fallbacks.as_map().clone(),
            create_time: now,
            update_time: now,
        };
        let inserted = self
            .statement(|reply| Statement::CreateProject {
                record: record.clone(),
                reply,
            })
            .await?;
        if inserted {
            Ok(record)
        } else {
            Err(conflict(&record.name))
        }
    }

    /// One of `owner`'s projects.
    #[tracing::instrument(level = "debug", skip(self), fields(project = %id))]
    pub async fn get_project(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<ProjectRecord>, StoreError> {
        // One round trip: the project's row once per model (or once, with
        // no model), models in order. Every run starts with this read.
        let rows = sqlx::query(
            "SELECT p.id, p.owner, p.name, p.system_prompt, p.summarizer_model, p.create_time, \
             p.update_time, m.model FROM projects p \
             LEFT JOIN project_models m ON m.project_id = p.id \
             WHERE p.id = $1 AND p.owner = $2 ORDER BY m.position",
        )
        .bind(id)
        .bind(owner)
        .fetch_all(&self.pool)
        .await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let mut p = project_from_row(first)?;
        for row in &rows {
            if let Some(model) = row.try_get::<Option<String>, _>("model")? {
                p.models.push(model);
            }
        }
        p.fallbacks = self.project_fallbacks(&p.id).await?;
        Ok(Some(p))
    }

    /// `owner`'s projects, oldest first, after `cursor`.
    #[tracing::instrument(level = "debug", skip(self, cursor))]
    pub async fn list_projects(
        &self,
        owner: &str,
        limit: usize,
        cursor: Option<&PageCursor>,
    ) -> Result<Vec<ProjectRecord>, StoreError> {
        let (time, id) = cursor.map_or((i64::MIN, String::new()), |c| (c.time, c.id.clone()));
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM projects WHERE owner = $1 \
             AND (create_time > $2 OR (create_time = $2 AND id > $3)) \
             ORDER BY create_time, id LIMIT $4"
        )))
        .bind(owner)
        .bind(time)
        .bind(id)
        .bind(to_i64(limit))
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let mut p = project_from_row(&row)?;
            p.models = self.project_models(&p.id).await?;
            p.fallbacks = self.project_fallbacks(&p.id).await?;
            out.push(p);
        }
        Ok(out)
    }

    /// Writes every field of `project` (owner and id select the row); returns
    /// `None` when it does not exist for that owner.
    #[tracing::instrument(level = "debug", skip_all, fields(project = %project.id))]
    pub async fn update_project(
        &self,
        project: &ProjectRecord,
    ) -> Result<Option<ProjectRecord>, StoreError> {
        let mut updated = project.clone();
        updated.update_time = now_ms().max(project.create_time);
        let outcome = self
            .statement(|reply| Statement::UpdateProject {
                record: updated.clone(),
                reply,
            })
            .await?;
        match outcome {
            ProjectUpdate::Updated => Ok(Some(updated)),
            ProjectUpdate::Missing => Ok(None),
            ProjectUpdate::NameTaken => Err(conflict(&updated.name)),
        }
    }

    /// Deletes a project with its discussions; `false` when there was none.
    #[tracing::instrument(level = "debug", skip(self), fields(project = %id))]
    pub async fn delete_project(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        self.statement(|reply| Statement::DeleteProject {
            owner: owner.to_owned(),
            id: id.to_owned(),
            reply,
        })
        .await
    }

    async fn project_models(&self, project_id: &str) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query("SELECT model FROM project_models WHERE project_id = $1 ORDER BY position")
                .bind(project_id)
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("model").map_err(StoreError::from))
            .collect()
    }
}

impl Store {
    async fn project_fallbacks(
        &self,
        project_id: &str,
    ) -> Result<BTreeMap<String, Vec<String>>, StoreError> {
        let rows = sqlx::query(
            "SELECT seat, model FROM project_fallbacks WHERE project_id = $1 ORDER BY seat, position",
        )
        .bind(project_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for row in &rows {
            out.entry(row.try_get("seat")?)
                .or_default()
                .push(row.try_get("model")?);
        }
        Ok(out)
    }
}

fn project_from_row(row: &AnyRow) -> Result<ProjectRecord, StoreError> {
    Ok(ProjectRecord {
        id: row.try_get("id")?,
        owner: row.try_get("owner")?,
        name: row.try_get("name")?,
        models: Vec::new(),
        fallbacks: BTreeMap::new(),
        system_prompt: row.try_get("system_prompt")?,
        summarizer_model: row.try_get("summarizer_model")?,
        create_time: row.try_get("create_time")?,
        update_time: row.try_get("update_time")?,
    })
}
