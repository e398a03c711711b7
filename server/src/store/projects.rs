//! Projects and their ordered model lists.

use super::to_i64;
use sqlx::AssertSqlSafe;
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::{
    NewProject, PageCursor, ProjectRecord, Store, StoreError, is_unique_violation, now_ms,
};

const COLUMNS: &str = "id, owner, name, system_prompt, summarizer_model, create_time, update_time";

fn conflict(name: &str) -> StoreError {
    StoreError::Conflict(format!("a project named {name:?} already exists"))
}

impl Store {
    /// Creates a project owned by `owner`; a name already used by that owner is a conflict.
    pub async fn create_project(
        &self,
        owner: &str,
        new: &NewProject,
    ) -> Result<ProjectRecord, StoreError> {
        let _writer = self.writer().await;
        let now = now_ms();
        let record = ProjectRecord {
            id: uuid::Uuid::now_v7().to_string(),
            owner: owner.to_owned(),
            name: new.name.as_str().to_owned(),
            models: new.models.to_strings(),
            system_prompt: new.system_prompt.clone(),
            summarizer_model: new.summarizer_model.clone(),
            create_time: now,
            update_time: now,
        };
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO projects (id, owner, name, system_prompt, summarizer_model, create_time, update_time) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&record.id)
        .bind(&record.owner)
        .bind(&record.name)
        .bind(&record.system_prompt)
        .bind(&record.summarizer_model)
        .bind(record.create_time)
        .bind(record.update_time)
        .execute(&mut *tx)
        .await;
        match inserted {
            Err(e) if is_unique_violation(&e) => return Err(conflict(&record.name)),
            other => other?,
        };
        insert_models(&mut tx, &record.id, &record.models).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// One of `owner`'s projects.
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
        Ok(Some(p))
    }

    /// `owner`'s projects, oldest first, after `cursor`.
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
            out.push(p);
        }
        Ok(out)
    }

    /// Writes every field of `project` (owner and id select the row); returns
    /// `None` when it does not exist for that owner.
    pub async fn update_project(
        &self,
        project: &ProjectRecord,
    ) -> Result<Option<ProjectRecord>, StoreError> {
        let _writer = self.writer().await;
        let mut updated = project.clone();
        updated.update_time = now_ms().max(project.create_time);
        let mut tx = self.pool.begin().await?;
        let result = sqlx::query(
            "UPDATE projects SET name = $1, system_prompt = $2, summarizer_model = $3, update_time = $4 \
             WHERE id = $5 AND owner = $6",
        )
        .bind(&updated.name)
        .bind(&updated.system_prompt)
        .bind(&updated.summarizer_model)
        .bind(updated.update_time)
        .bind(&updated.id)
        .bind(&updated.owner)
        .execute(&mut *tx)
        .await;
        let result = match result {
            Err(e) if is_unique_violation(&e) => return Err(conflict(&updated.name)),
            other => other?,
        };
        if result.rows_affected() == 0 {
            return Ok(None);
        }
        sqlx::query("DELETE FROM project_models WHERE project_id = $1")
            .bind(&updated.id)
            .execute(&mut *tx)
            .await?;
        insert_models(&mut tx, &updated.id, &updated.models).await?;
        tx.commit().await?;
        Ok(Some(updated))
    }

    /// Deletes a project with its discussions; `false` when there was none.
    pub async fn delete_project(&self, owner: &str, id: &str) -> Result<bool, StoreError> {
        let _writer = self.writer().await;
        let mut tx = self.pool.begin().await?;
        // Children first, explicitly: the cascade is not relied on, so a
        // database without foreign-key enforcement leaves nothing behind.
        for sql in [
            "DELETE FROM events WHERE discussion_id IN (SELECT id FROM discussions WHERE project_id = $1 AND owner = $2)",
            "DELETE FROM messages WHERE discussion_id IN (SELECT id FROM discussions WHERE project_id = $1 AND owner = $2)",
            "DELETE FROM rounds WHERE discussion_id IN (SELECT id FROM discussions WHERE project_id = $1 AND owner = $2)",
            "DELETE FROM discussions WHERE project_id = $1 AND owner = $2",
            "DELETE FROM project_models WHERE project_id IN (SELECT id FROM projects WHERE id = $1 AND owner = $2)",
        ] {
            sqlx::query(sql)
                .bind(id)
                .bind(owner)
                .execute(&mut *tx)
                .await?;
        }
        let deleted = sqlx::query("DELETE FROM projects WHERE id = $1 AND owner = $2")
            .bind(id)
            .bind(owner)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted > 0)
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

async fn insert_models(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    project_id: &str,
    models: &[String],
) -> Result<(), StoreError> {
    for (position, model) in models.iter().enumerate() {
        sqlx::query("INSERT INTO project_models (project_id, position, model) VALUES ($1, $2, $3)")
            .bind(project_id)
            .bind(to_i64(position))
            .bind(model)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

fn project_from_row(row: &AnyRow) -> Result<ProjectRecord, StoreError> {
    Ok(ProjectRecord {
        id: row.try_get("id")?,
        owner: row.try_get("owner")?,
        name: row.try_get("name")?,
        models: Vec::new(),
        system_prompt: row.try_get("system_prompt")?,
        summarizer_model: row.try_get("summarizer_model")?,
        create_time: row.try_get("create_time")?,
        update_time: row.try_get("update_time")?,
    })
}
