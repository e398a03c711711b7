//! The SQL migrations of each backend, embedded at build time (`build.rs`
//! lists `migrations/<backend>/NNNN_name.sql`), resolved as `sqlx::migrate!`
//! resolves them, so databases migrated by earlier builds match.

use std::borrow::Cow;

use sqlx::SqlStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};

use super::Backend;

mod list {
    include!(concat!(env!("OUT_DIR"), "/migrations.rs"));
}

/// The migrator of `backend`.
pub(super) fn migrator(backend: Backend) -> Migrator {
    let files = match backend {
        Backend::Sqlite => list::SQLITE,
        Backend::Postgres => list::POSTGRES,
    };
    Migrator::with_migrations(
        files
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    SqlStr::from_static(sql),
                    sql.starts_with("-- no-transaction"),
                )
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_backends_have_the_same_migration_versions() {
        let versions = |b| migrator(b).iter().map(|m| m.version).collect::<Vec<_>>();
        let sqlite = versions(Backend::Sqlite);
        assert!(sqlite.starts_with(&[1, 2]), "{sqlite:?}");
        assert_eq!(sqlite, versions(Backend::Postgres));
    }
}
