-- Job indexes that hold only the rows their query looks for, so a job's state changes
-- touch fewer index entries (each change of state writes a new row version):
--   jobs_waiting  queued rows not handed to the broker: the embedded transport's queue
--                 (where nothing is ever published) and the AMQP relay's outbox
--   jobs_in_broker queued rows handed to the broker (counted for the queue depth)
--   jobs_leased   leases that may have expired (crashed workers)
--   jobs_finished pruning and recent throughput
--   jobs_dead     the operator's list of dead jobs
DROP INDEX jobs_claim;
DROP INDEX jobs_state;
DROP INDEX jobs_unpublished;
CREATE INDEX jobs_waiting ON jobs (queue, run_at) WHERE state = 'queued' AND NOT published;
CREATE INDEX jobs_in_broker ON jobs (queue) WHERE state = 'queued' AND published;
CREATE INDEX jobs_leased ON jobs (lease_until) WHERE state = 'running';
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state = 'done';
CREATE INDEX jobs_dead ON jobs (id) WHERE state = 'dead';
