//! Without `MOAI_TEST_POSTGRES_URL` the PostgreSQL test variants are compiled
//! as ignored, with the reason, so that a run without PostgreSQL lists them as
//! skipped in the test summary instead of passing them silently. CI sets the
//! variable, so there they are compiled as ordinary tests and run.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(moai_no_postgres)");
    println!("cargo::rerun-if-env-changed=MOAI_TEST_POSTGRES_URL");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("MOAI_TEST_POSTGRES_URL").is_none_or(|v| v.is_empty()) {
        println!("cargo::rustc-cfg=moai_no_postgres");
    }
}
