//! End-to-end tests: the real server in-process on 127.0.0.1:0, over real gRPC.

mod budgets;
mod council;
mod crash;
mod frontdoors;
mod llm;
mod open;
mod platform;
mod projects;
mod reliability;
mod replicas;
mod scaleout;
mod store;
mod support;
mod tls;
mod turns;
