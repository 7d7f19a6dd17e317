use anyhow::Result;

use crate::cli::DbAction;
use crate::context::Context;
use crate::error::Failure;
use crate::pg::embedded::Cluster;

pub fn run(action: DbAction, ctx: &Context) -> Result<()> {
    let cluster = Cluster::for_data_dir(&ctx.data_dir);
    match action {
        DbAction::Start => println!("{}", cluster.start()?),
        DbAction::Stop => {
            let was_running = cluster.stop()?;
            eprintln!("{}", if was_running { "stopped" } else { "not running" });
        }
        DbAction::Status => {
            let running = cluster.is_running()?;
            match (running, cluster.url()) {
                (true, Some(url)) => println!("running {url} ({})", cluster.dir.display()),
                _ if cluster.is_initialised() => println!("stopped ({})", cluster.dir.display()),
                _ => println!("not created ({})", cluster.dir.display()),
            }
        }
        DbAction::Url => match cluster.url() {
            Some(url) => println!("{url}"),
            None => {
                return Err(Failure::NoPostgres(format!("no local cluster in {} yet: run `tier db start`", cluster.dir.display())).into())
            }
        },
    }
    Ok(())
}
