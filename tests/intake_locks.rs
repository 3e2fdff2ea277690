//! Group commit and intake locks (issue 10, hole 4): filing intakes lock the filer, the
//! vehicle and the owner's phone. If their effects shared group commits, a lane holding the
//! locks of several intakes could wait on another lane holding the rest, a deadlock that
//! PostgreSQL breaks by failing a batch. Intake commits alone; 200 concurrent filings over
//! overlapping filers, vehicles and owners on 4 lanes end with no deadlock and one attempt
//! each.

mod common;

use common::fakes::spawn_filing_app;
use common::world::{Car, Person, World};
use common::{Backend, answer, eventually};

async fn deadlocks(app: &common::TestApp) -> i64 {
    let pool = app.services().db.pool();
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query_scalar(
        "SELECT CAST(deadlocks AS BIGINT) FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_intakes_never_deadlock_across_lanes() {
    let (app, _sms, _face) = spawn_filing_app(
        Backend::Postgres,
        &[
            ("BEIAN__QUEUE__EFFECT_LANES", "4"),
            ("BEIAN__QUEUE__EFFECT_BATCH_MAX", "100"),
            ("BEIAN__JOBS__FILING__CONCURRENCY", "64"),
            ("BEIAN__FILING__MAX_APPLICATIONS_PER_DAY", "1000"),
            ("BEIAN__FILING__MAX_APPLICATIONS_PER_YEAR", "1000"),
            ("BEIAN__SMS__LIMIT_PER_MINUTE", "1000"),
            ("BEIAN__SMS__LIMIT_PER_HOUR", "1000"),
            ("BEIAN__SMS__LIMIT_PER_DAY", "1000"),
        ],
    )
    .await;
    let w = World::new(&app);
    let before = deadlocks(&app).await;
    // 4 owners, 10 vehicles, 20 filers: every filer asks for every other vehicle, so each
    // intake's locks overlap with many others'.
    let mut owners = Vec::new();
    for _ in 0..4 {
        owners.push(w.driver().await);
    }
    let mut cars: Vec<Car> = Vec::new();
    for i in 0..10 {
        cars.push(w.vehicle_of(&owners[i % owners.len()]).await);
    }
    let filers: Vec<Person> = w.drivers(20).await;
    let mut pairs = Vec::new();
    for (i, filer) in filers.iter().enumerate() {
        for (j, car) in cars.iter().enumerate() {
            if (i + j) % 2 == 0 {
                pairs.push((filer.clone(), car.clone()));
            }
        }
    }
    assert_eq!(pairs.len(), 100);
    // Each pair twice (two applications), so 200 intakes.
    let pairs: Vec<(Person, Car)> = pairs.iter().chain(pairs.iter()).cloned().collect();

    let mut tasks = tokio::task::JoinSet::new();
    for (filer, car) in &pairs {
        let request = app
            .request(reqwest::Method::POST, "/v1/filings", filer.who())
            .header("Idempotency-Key", uuid::Uuid::new_v4().to_string())
            .json(&car.filing_body());
        tasks.spawn(async move { answer(request.send().await.unwrap()).await });
    }
    while let Some(done) = tasks.join_next().await {
        let (status, body) = done.unwrap();
        assert_eq!(status, 202, "{body}");
    }

    let pool = app.services().db.pool().clone();
    let rows: Vec<(i64, String)> = eventually(60, "all 200 intakes finished", || {
        let pool = pool.clone();
        async move {
            let rows: Vec<(i64, String, String)> = sqlx::query_as(
                "SELECT attempts, state, history FROM jobs WHERE kind = 'filing.intake'",
            )
            .fetch_all(&pool)
            .await
            .unwrap();
            (rows.len() == 200 && rows.iter().all(|(_, state, _)| state == "done"))
                .then(|| rows.into_iter().map(|(a, _, h)| (a, h)).collect())
        }
    })
    .await;
    let retried: Vec<&(i64, String)> = rows.iter().filter(|(a, _)| *a != 1).collect();
    assert!(
        retried.is_empty(),
        "{} intakes needed more than one attempt: {:?}",
        retried.len(),
        retried.iter().take(3).collect::<Vec<_>>()
    );
    assert!(
        rows.iter()
            .all(|(_, history)| !history.contains("deadlock")),
        "an intake failed on a deadlock"
    );
    assert_eq!(
        deadlocks(&app).await - before,
        0,
        "PostgreSQL detected deadlocks"
    );
    app.stop().await;
}
